"""Losses of a model's outputs against integer classes or real targets, with their output
gradients.

Shared by every model: the network's training loop and RFM's metrics use the same
definitions, so ``train_loss`` means the same in every file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gk.backend import array_namespace

LOSSES = ("mse", "cross_entropy")
"""Names of the losses, for ``loss=``."""


def check_loss(loss: str) -> None:
    """Raise ValueError unless ``loss`` is in :data:`LOSSES`."""
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not a loss; allowed: {', '.join(LOSSES)}")


def per_sample_loss(f: Any, c: Any, loss: str = "mse") -> tuple[Any, Any]:
    """Loss of each example and its gradient with respect to the outputs.

    ``mse``: ℓ = ½‖f − e_c‖² (seed 001 uses MSE on one-hot targets), ∂ℓ/∂f = f − e_c; with
    real targets y in place of classes (seed 002's regression), ℓ = ½‖f − y‖².
    ``cross_entropy``: ℓ = logsumexp(f) − f_c, ∂ℓ/∂f = softmax(f) − e_c.

    Parameters
    ----------
    f : array, shape (n, p) or (M, n, p)
    c : int array of shape (n,) or (M, n), or real array of f's shape
        The correct class of each example, or its real target (``mse`` only).

    Returns
    -------
    ell : array, shape (n,) or (M, n)
    dell_df : array, shape (n, p) or (M, n, p)
    """
    check_loss(loss)
    xp = array_namespace(f)
    if c.ndim == f.ndim:
        if loss != "mse":
            raise ValueError(f"loss={loss!r} needs class targets; real targets take 'mse'")
        residual = f - c
        return 0.5 * (residual * residual).sum(axis=-1), residual
    batched = f.ndim == 3
    if not batched:
        f, c = f[None], c[None]
    models, samples = xp.ogrid[: f.shape[0], : f.shape[1]]
    if loss == "mse":
        residual = f.copy()
        residual[models, samples, c] -= 1
        ell, grad = 0.5 * (residual * residual).sum(axis=-1), residual
    else:
        shifted = f - f.max(axis=-1, keepdims=True)
        log_prob = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
        grad = xp.exp(log_prob)
        grad[models, samples, c] -= 1
        ell = -log_prob[models, samples, c]
    return (ell, grad) if batched else (ell[0], grad[0])


def weighted_loss_and_gradient(f: Any, labels: Any, weights: Any, loss: str = "mse",
                               scale: float = 1.0, overwrite: bool = False) -> tuple[Any, Any]:
    """L = Σ_i w_i ℓ_i per model and the scaled gradient G_i = scale · w_i ∂ℓ_i/∂f_i.

    ℓ is :func:`per_sample_loss`'s. On the CPU, with class labels, one pass over each row
    of f computes both (L accumulated in float64), writing G over f if ``overwrite``;
    elsewhere array operations do the same.

    Parameters
    ----------
    f : array, shape (M, n, outputs)
    labels : int array (M, n), or real array of f's shape
    weights : array, shape (M, n)
    scale : float
        Folded into G (the network's c, so that its backward pass needs no extra pass).

    Returns
    -------
    L : array, shape (M,)
    G : array, shape (M, n, outputs)
    """
    check_loss(loss)
    xp = array_namespace(f)
    if xp is np and labels.ndim == 2 and f.dtype.kind == "f":
        from gk._kernels import weighted_class_loss_cpu

        G = f if overwrite else f.copy()
        return weighted_class_loss_cpu(G, labels, weights, scale, loss), G
    ell, G = per_sample_loss(f, labels, loss)
    G *= (weights * scale)[..., None]
    return (ell * weights).sum(axis=1), G


def score(f: Any, labels: Any, loss: str = "mse", tolerance: float | None = None
          ) -> tuple[Any, Any]:
    """Loss and correctness of outputs f (M, n, outputs) against labels shared by all models.

    An example is correct when argmax f = c (classes), or when every output is within
    ``tolerance`` of its real target. Returns two (M, n) arrays.
    """
    xp = array_namespace(f)
    target = xp.broadcast_to(labels, (f.shape[0], *labels.shape))
    losses = per_sample_loss(f, target, loss)[0]
    if tolerance is None:
        return losses, f.argmax(axis=-1) == target
    return losses, (xp.abs(f - target) < tolerance).all(axis=-1)
