"""Losses of a model's outputs against integer classes, with their output gradients.

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
    """Loss of each pair and its gradient with respect to the outputs.

    ``mse``: ℓ = ½‖f − e_c‖² (seed 001 uses MSE on one-hot targets), ∂ℓ/∂f = f − e_c.
    ``cross_entropy``: ℓ = logsumexp(f) − f_c, ∂ℓ/∂f = softmax(f) − e_c.

    Parameters
    ----------
    f : array, shape (n, p) or (M, n, p)
    c : int array, shape (n,) or (M, n)
        The correct class of each pair.

    Returns
    -------
    ell : array, shape (n,) or (M, n)
    dell_df : array, shape (n, p) or (M, n, p)
    """
    xp = array_namespace(f)
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
