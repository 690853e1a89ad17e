"""Losses of a model's outputs against integer classes or real targets, with their output
gradients.

Shared by every model: the network's training loop and RFM's metrics use the same
definitions, so ``train_loss`` means the same in every file.
"""

from __future__ import annotations

from typing import Any

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
