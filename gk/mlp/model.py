"""The two-layer network of seed 001 and its hand-written gradients.

Seed 001, eqs. 1–2 (mean-field parametrisation)::

    h = W1 x,    z = φ(h),    f = (2/N) W2 z,

with W1 ∈ R^{N×2p}, W2 ∈ R^{p×N}, no biases, and W ~ N(0, 1) at initialisation. The input
``x = e_a ⊕ e_b`` is a one-hot pair, so ``h = W1[:, a] + W1[:, p + b]`` is a gather and the
gradient of W1 is a scatter-add; no one-hot matrix is ever multiplied.

All arrays carry a leading ``model`` axis (M models trained as one array program); a
:class:`Params` may also hold a single model without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gk import backend
from gk.backend import array_namespace, erf, scatter_add_rows
from gk.losses import per_sample_loss
from gk.tasks import Task


def _gelu(h: Any) -> Any:
    return 0.5 * h * (1 + erf(h / math.sqrt(2)))


def _gelu_derivative(h: Any) -> Any:
    xp = array_namespace(h)
    return 0.5 * (1 + erf(h / math.sqrt(2))) + h * xp.exp(-0.5 * h * h) / math.sqrt(2 * math.pi)


def _tanh_derivative(h: Any) -> Any:
    return 1 - array_namespace(h).tanh(h) ** 2


ACTIVATIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "quadratic": (lambda h: h * h, lambda h: 2 * h),
    "relu": (lambda h: array_namespace(h).maximum(h, 0), lambda h: (h > 0).astype(h.dtype)),
    "gelu": (_gelu, _gelu_derivative),
    "tanh": (lambda h: array_namespace(h).tanh(h), _tanh_derivative),
    "identity": (lambda h: h, lambda h: array_namespace(h).ones_like(h)),
}
"""Activation φ and its derivative φ′ by name (GELU is the exact, erf-based one)."""

def check_activation(activation: str) -> None:
    """Raise ValueError unless ``activation`` is in :data:`ACTIVATIONS`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not an activation; "
                         f"allowed: {', '.join(ACTIVATIONS)}")


@dataclass
class Params:
    """Weights of the two-layer network.

    Attributes
    ----------
    W1 : array, shape (N, 2p) or (M, N, 2p)
        First layer; columns 0..p−1 read operand a, columns p..2p−1 operand b.
    W2 : array, shape (p, N) or (M, p, N)
        Read-out layer.
    activation : str
        Name of φ (:data:`ACTIVATIONS`).
    """

    W1: Any
    W2: Any
    activation: str = "quadratic"

    @property
    def width(self) -> int:
        """N, the number of hidden neurons."""
        return self.W1.shape[-2]

    @property
    def p(self) -> int:
        """The modulus (number of outputs)."""
        return self.W2.shape[-2]

    @property
    def batched(self) -> bool:
        """True if the arrays carry a leading model axis."""
        return self.W1.ndim == 3

    def as_batch(self) -> Params:
        """The same weights with a leading model axis (a view, no copy)."""
        if self.batched:
            return self
        return Params(self.W1[None], self.W2[None], self.activation)

    def model(self, index: int) -> Params:
        """One model's weights, without the model axis."""
        batch = self.as_batch()
        return Params(batch.W1[index], batch.W2[index], self.activation)


def init(p: int, width: int, seed: int | list[int] = 0, activation: str = "quadratic",
         init_scale: float = 1.0, dtype: Any = "float64") -> Params:
    """Draw W1, W2 ~ N(0, init_scale²) (seed 001: init_scale = 1).

    A list of seeds gives one model per seed along a leading model axis. The numbers come
    from ``gk.backend.rng((seed, 0))``, the same on every backend.

    Returns
    -------
    Params
        W1 is stored so that ``W1[m].T`` is contiguous: the forward pass gathers its rows.
    """
    check_activation(activation)
    seeds = [seed] if np.isscalar(seed) else list(seed)
    xp = backend.namespace()
    W1T = xp.empty((len(seeds), 2 * p, width), dtype=backend.check_dtype(dtype))
    W2 = xp.empty((len(seeds), p, width), dtype=W1T.dtype)
    for m, s in enumerate(seeds):
        generator = backend.rng((int(s), 0))
        W1T[m] = init_scale * backend.standard_normal(generator, (width, 2 * p), dtype).T
        W2[m] = init_scale * backend.standard_normal(generator, (p, width), dtype)
    params = Params(W1T.transpose(0, 2, 1), W2, activation)
    return params if not np.isscalar(seed) else params.model(0)


def forward(params: Params, a: Any, b: Any) -> tuple[Any, tuple[Any, Any]]:
    """Network outputs f = (2/N) W2 φ(W1 x) for the pairs (a, b) (seed 001, eqs. 1–2).

    Parameters
    ----------
    params : Params
        Batched weights, W1 (M, N, 2p), W2 (M, p, N).
    a, b : int arrays, shape (M, n)
        The operands of each model's n pairs.

    Returns
    -------
    f : array, shape (M, n, p)
    cache : tuple
        ``(h, z)``, what :func:`backward` needs.
    """
    xp = array_namespace(params.W1)
    W1T = params.W1.transpose(0, 2, 1)
    models = xp.arange(W1T.shape[0])[:, None]
    h = W1T[models, a] + W1T[models, params.p + b]          # W1 x as a gather, (M, n, N)
    z = ACTIVATIONS[params.activation][0](h)
    f = (2 / params.width) * xp.matmul(z, params.W2.transpose(0, 2, 1))
    if xp.iscomplexobj(f):  # complex weights (seed 001, App. A): the output is the real part
        f = f.real
    return f, (h, z)


def backward(params: Params, a: Any, b: Any, cache: tuple[Any, Any], G: Any) -> dict[str, Any]:
    """Gradients of a loss with ∂L/∂f = G (shape (M, n, p)) through :func:`forward`.

    With c = 2/N: ∂L/∂W2 = c Gᵀ z; ∂L/∂z = c G W2; ∂L/∂h = ∂L/∂z ⊙ φ′(h); and
    ∂L/∂W1[:, j] = Σ_{i: a_i = j} ∂L/∂h_i + Σ_{i: p + b_i = j} ∂L/∂h_i (a scatter-add).
    """
    xp = array_namespace(G)
    h, z = cache
    c = 2 / params.width
    dW2 = c * xp.matmul(G.transpose(0, 2, 1), z)
    dh = c * xp.matmul(G, params.W2) * ACTIVATIONS[params.activation][1](h)
    dW1T = xp.zeros((h.shape[0], 2 * params.p, params.width), dtype=h.dtype)
    scatter_add_rows(dW1T, a, dh)
    scatter_add_rows(dW1T, params.p + b, dh)
    return {"W1": dW1T.transpose(0, 2, 1), "W2": dW2}


def loss_and_grads(params: Params, a: Any, b: Any, c: Any, weights: Any,
                   loss: str = "mse") -> tuple[Any, dict[str, Any]]:
    """Weighted loss L = Σ_i w_i ℓ_i per model and its gradients.

    ``weights`` (M, n) are 1/n on a model's real pairs and 0 on padding, so L is the mean
    loss over each model's batch.
    """
    f, cache = forward(params, a, b)
    ell, dell_df = per_sample_loss(f, c, loss)
    grads = backward(params, a, b, cache, dell_df * weights[..., None])
    return (ell * weights).sum(axis=1), grads


def pair_metrics(params: Params, a: Any, b: Any, c: Any, loss: str = "mse",
                 chunk: int = 4096) -> tuple[Any, Any]:
    """Loss and correctness (argmax f == c) of every pair, in chunks of ``chunk`` pairs.

    ``a, b, c`` have shape (n,) and are shared by all models; returns two (M, n) arrays.
    """
    xp = array_namespace(params.W1)
    batch = params.as_batch()
    M = batch.W1.shape[0]
    losses, correct = [], []
    for start in range(0, len(a), chunk):
        part = slice(start, start + chunk)
        a_, b_, c_ = (xp.broadcast_to(v[part], (M, len(v[part]))) for v in (a, b, c))
        f, _ = forward(batch, a_, b_)
        losses.append(per_sample_loss(f, c_, loss)[0])
        correct.append(f.argmax(axis=-1) == c_)
    return xp.concatenate(losses, axis=1), xp.concatenate(correct, axis=1)


def evaluate(params: Params, task: Task, loss: str = "mse") -> dict[str, Any]:
    """Loss and accuracy of the network on all of the task's pairs.

    Returns
    -------
    dict
        ``{"loss": ..., "accuracy": ...}``: floats for one model, (M,) NumPy arrays for a
        batch.
    """
    xp = array_namespace(params.W1)
    a, b, c = (xp.asarray(v) for v in (task.a, task.b, task.c))
    losses, correct = pair_metrics(params, a, b, c, loss)
    result = {"loss": backend.to_numpy(losses.mean(axis=1)),
              "accuracy": backend.to_numpy(correct.mean(axis=1))}
    if params.batched:
        return result
    return {key: float(value[0]) for key, value in result.items()}
