"""The two-layer network of seeds 001 and 002 and its hand-written gradients.

Seed 001, eqs. 1–2 (mean-field parametrisation)::

    h = W1 x,    z = φ(h),    f = c W2 z,    c = 2/N,

with W1 ∈ R^{N×2p}, W2 ∈ R^{p×N}, no biases, and W ~ N(0, 1) at initialisation. Seed 002
uses the same network unnormalised (c = 1, f = V (W x)^{⊙2}) with He-style initialisation:
the two parametrisations are :data:`PARAMETRISATIONS`. The input ``x = e_a ⊕ e_b`` is a
one-hot pair, so ``h = W1[:, a] + W1[:, p + b]`` is a gather and the gradient of W1 is a
scatter-add; no one-hot matrix is ever multiplied. Inputs of more operands (seed 002's
triples ``e_a ⊕ e_b ⊕ e_c``) work the same way, operand j reading columns j·p .. j·p + p − 1.

All arrays carry a leading ``model`` axis (M models trained as one array program); a
:class:`Params` may also hold a single model without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from gk import backend
from gk._kernels import FUSED_ACTIVATIONS, hidden_layer_cpu, hidden_layer_gradient_cpu
from gk.backend import array_namespace, erf, scatter_add_rows
from gk.config import check_int, check_number
from gk.losses import check_loss, score, weighted_loss_and_gradient
from gk.tasks import Task, Triples


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


def _gelu_second_derivative(h: Any) -> Any:
    return array_namespace(h).exp(-0.5 * h * h) / math.sqrt(2 * math.pi) * (2 - h * h)


def _tanh_second_derivative(h: Any) -> Any:
    t = array_namespace(h).tanh(h)
    return -2 * t * (1 - t * t)


SECOND_DERIVATIVES: dict[str, Callable[[Any], Any]] = {
    "quadratic": lambda h: 2 * array_namespace(h).ones_like(h),
    "relu": lambda h: array_namespace(h).zeros_like(h),
    "gelu": _gelu_second_derivative,
    "tanh": _tanh_second_derivative,
    "identity": lambda h: array_namespace(h).zeros_like(h),
}
"""φ″ by name, for the gradient of the AGOP trace (ReLU's is 0 almost everywhere)."""

PARAMETRISATIONS = ("mean_field", "standard")
"""``mean_field``: c = 2/N, W ~ N(0, s²) (seed 001). ``standard``: c = 1 and He-style
W ~ N(0, 2 s²/fan_in), fan_in = 2p for W1 and N for W2 (seed 002); s is ``init_scale``."""


def check_activation(activation: str) -> None:
    """Raise ValueError unless ``activation`` is in :data:`ACTIVATIONS`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not an activation; "
                         f"allowed: {', '.join(ACTIVATIONS)}")


def check_parametrisation(parametrisation: str) -> None:
    """Raise ValueError unless ``parametrisation`` is in :data:`PARAMETRISATIONS`."""
    if parametrisation not in PARAMETRISATIONS:
        raise ValueError(f"parametrisation={parametrisation!r} is not a parametrisation; "
                         f"allowed: {', '.join(PARAMETRISATIONS)}")


@dataclass
class Params:
    """Weights of the two-layer network.

    Attributes
    ----------
    W1 : array, shape (N, 2p) or (M, N, 2p)
        First layer; columns 0..p−1 read operand a, columns p..2p−1 operand b (k·p columns
        for k operands).
    W2 : array, shape (p, N) or (M, p, N)
        Read-out layer (one row per output; seed 002's regression network has one).
    activation : str
        Name of φ (:data:`ACTIVATIONS`).
    scale : float or None
        c in f = c W2 φ(W1 x): None for the mean-field 2/N (seed 001), 1 for the standard,
        unnormalised network (seed 002).
    """

    W1: Any
    W2: Any
    activation: str = "quadratic"
    scale: float | None = None

    @property
    def output_scale(self) -> float:
        """c in f = c W2 φ(W1 x)."""
        return 2 / self.width if self.scale is None else self.scale

    @property
    def width(self) -> int:
        """N, the number of hidden neurons."""
        return self.W1.shape[-2]

    @property
    def p(self) -> int:
        """The number of outputs (the modulus for a classifier)."""
        return self.W2.shape[-2]

    @property
    def batched(self) -> bool:
        """True if the arrays carry a leading model axis."""
        return self.W1.ndim == 3

    def as_batch(self) -> Params:
        """The same weights with a leading model axis (a view, no copy)."""
        if self.batched:
            return self
        return replace(self, W1=self.W1[None], W2=self.W2[None])

    def model(self, index: int) -> Params:
        """One model's weights, without the model axis."""
        batch = self.as_batch()
        return replace(self, W1=batch.W1[index], W2=batch.W2[index])


def init(p: int, width: int, seed: int | list[int] = 0, activation: str = "quadratic",
         init_scale: float = 1.0, dtype: Any = "float64", parametrisation: str = "mean_field",
         operands: int = 2, outputs: int | None = None) -> Params:
    """Draw the initial weights of :data:`PARAMETRISATIONS` ``parametrisation``.

    ``mean_field`` (seed 001): W1, W2 ~ N(0, s²), s = ``init_scale`` = 1 in the paper.
    ``standard`` (seed 002): W1 ~ N(0, 2s²/(k·p)), W2 ~ N(0, 2s²/N) (He et al.) and c = 1.
    Both scale the same N(0, 1) draws, so one seed gives the same directions in either.

    A list of seeds gives one model per seed along a leading model axis. The numbers come
    from ``gk.backend.rng((seed, 0))``, the same on every backend.

    Parameters
    ----------
    operands : int
        k, the number of one-hot operands of an input (2 for pairs, 3 for seed 002's
        triples); W1 has k·p columns.
    outputs : int, optional
        Rows of W2; default p.

    Returns
    -------
    Params
        W1 is stored so that ``W1[m].T`` is contiguous: the forward pass gathers its rows.
    """
    check_int("p", p, 2)
    check_int("width", width, 1)
    check_int("operands", operands, 1)
    if outputs is not None:
        check_int("outputs", outputs, 1)
    check_activation(activation)
    check_parametrisation(parametrisation)
    check_number("init_scale", init_scale)
    seeds = [seed] if np.isscalar(seed) else list(seed)
    if not seeds:
        raise ValueError(f"seed={seed!r} is not allowed; give one seed, or a non-empty list")
    for s in seeds:
        check_int("seed", s, 0)
    inputs, outputs = operands * p, p if outputs is None else outputs
    std1, std2 = init_scale, init_scale
    if parametrisation == "standard":
        std1, std2 = init_scale * math.sqrt(2 / inputs), init_scale * math.sqrt(2 / width)
    xp = backend.namespace()
    W1T = xp.empty((len(seeds), inputs, width), dtype=backend.check_dtype(dtype))
    W2 = xp.empty((len(seeds), outputs, width), dtype=W1T.dtype)
    for m, s in enumerate(seeds):
        generator = backend.rng((int(s), 0))
        W1T[m] = std1 * backend.standard_normal(generator, (width, inputs), dtype).T
        W2[m] = std2 * backend.standard_normal(generator, (outputs, width), dtype)
    scale = 1.0 if parametrisation == "standard" else None
    params = Params(W1T.transpose(0, 2, 1), W2, activation, scale)
    return params if not np.isscalar(seed) else params.model(0)


class Cache(NamedTuple):
    """What :func:`forward` keeps for :func:`backward`: the W1 columns each operand
    selects, the pre-activations h = W1 x and the hidden features z = φ(h), (M, n, N)."""

    columns: list
    h: Any
    z: Any


class Workspace:
    """Arrays reused from one call to the next, so that a training loop allocates its large
    (M, n, N) arrays once rather than at every step.

    Pass the same workspace to every :func:`loss_and_grads` of a loop. The arrays of a
    :class:`Cache` made with a workspace are overwritten by the next call that uses it.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, Any] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype: Any, xp: Any) -> Any:
        """The array kept under ``name``, (re)allocated if its shape or dtype changed."""
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = xp.empty(shape, dtype=dtype)
        return array


def _empty(workspace: Workspace | None, name: str, shape: tuple[int, ...], dtype: Any,
           xp: Any) -> Any:
    if workspace is None:
        return xp.empty(shape, dtype=dtype)
    return workspace.empty(name, shape, dtype, xp)


def input_columns(params: Params, operands: tuple[Any, ...]) -> list[Any]:
    """The W1 column that each one-hot operand selects: j·p + x_j for operand j."""
    inputs = params.W1.shape[-1]
    block = inputs // len(operands)
    if block * len(operands) != inputs:
        raise ValueError(f"x has {len(operands)} operands but W1 has {inputs} input columns, "
                         f"not a multiple of {len(operands)}")
    return [j * block + x for j, x in enumerate(operands)]


def pre_activations(params: Params, operands: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """h = W1 x for one-hot inputs, as a gather of W1's columns: (columns, h (M, n, N))."""
    xp = array_namespace(params.W1)
    W1T = params.W1.transpose(0, 2, 1)
    models = xp.arange(W1T.shape[0])[:, None]
    columns = input_columns(params, operands)
    h = W1T[models, columns[0]]
    for column in columns[1:]:
        h = h + W1T[models, column]
    return columns, h


def _fused(params: Params) -> bool:
    """True where the hidden layer runs as the one-pass CPU loops of :mod:`gk._kernels`."""
    return (array_namespace(params.W1) is np and params.activation in FUSED_ACTIVATIONS
            and params.W1.dtype.kind == "f")


def _stacked(columns: list[Any]) -> np.ndarray:
    return np.stack(columns).astype(np.int64, copy=False)


def hidden_layer(params: Params, operands: tuple[Any, ...],
                 workspace: Workspace | None = None) -> Cache:
    """h = W1 x (a gather of W1's columns) and z = φ(h), shapes (M, n, N).

    On the CPU, for φ in :data:`gk._kernels.FUSED_ACTIVATIONS`, one pass over each row
    gathers, adds and applies φ; elsewhere array operations do the same.
    """
    xp = array_namespace(params.W1)
    if not _fused(params):
        columns, h = pre_activations(params, operands)
        return Cache(columns, h, ACTIVATIONS[params.activation][0](h))
    columns = input_columns(params, operands)
    shape = (*operands[0].shape, params.width)
    h = _empty(workspace, "h", shape, params.W1.dtype, xp)
    z = _empty(workspace, "z", shape, params.W1.dtype, xp)
    hidden_layer_cpu(params.W1.transpose(0, 2, 1), _stacked(columns), params.activation, h, z)
    return Cache(columns, h, z)


def forward(params: Params, *operands: Any, workspace: Workspace | None = None
            ) -> tuple[Any, Cache]:
    """Network outputs f = c W2 φ(W1 x) for one-hot inputs (seed 001, eqs. 1–2).

    Parameters
    ----------
    params : Params
        Batched weights, W1 (M, N, k·p), W2 (M, outputs, N).
    *operands : int arrays, shape (M, n)
        The k operands of each model's n inputs: ``a, b`` for pairs, ``a, b, c`` for
        seed 002's triples.
    workspace : Workspace, optional
        Reuse its arrays for h and z instead of allocating them.

    Returns
    -------
    f : array, shape (M, n, outputs)
    cache : Cache
        What :func:`backward` needs (also h and z, for analysis).
    """
    xp = array_namespace(params.W1)
    cache = hidden_layer(params, operands, workspace)
    f = xp.matmul(cache.z, params.W2.transpose(0, 2, 1))
    f *= params.output_scale
    if xp.iscomplexobj(f):  # complex weights (seed 001, App. A): the output is the real part
        f = f.real
    return f, cache


def backward(params: Params, cache: Cache, G: Any, workspace: Workspace | None = None
             ) -> dict[str, Any]:
    """Gradients of a loss with ∂L/∂f = G (shape (M, n, outputs)) through :func:`forward`.

    ∂L/∂W2 = c Gᵀ z; ∂L/∂z = c G W2; ∂L/∂h = ∂L/∂z ⊙ φ′(h); and ∂L/∂W1[:, j] is the sum
    of ∂L/∂h_i over the inputs i whose one-hot x_i has a 1 in column j (a scatter-add).
    c multiplies the small G (n × outputs) once, not the products.
    """
    return _scaled_backward(params, cache, params.output_scale * G, workspace)


def _scaled_backward(params: Params, cache: Cache, cG: Any, workspace: Workspace | None
                     ) -> dict[str, Any]:
    """:func:`backward` given cG = c ∂L/∂f."""
    xp = array_namespace(cG)
    columns, h, z = cache
    dW2 = xp.matmul(cG.transpose(0, 2, 1), z)
    dz = xp.matmul(cG, params.W2, out=_empty(workspace, "dz", h.shape, h.dtype, xp))
    dW1T = xp.zeros((h.shape[0], params.W1.shape[-1], params.width), dtype=h.dtype)
    if _fused(params):
        hidden_layer_gradient_cpu(dz, h, _stacked(columns), params.activation, dW1T)
    else:
        dh = dz * ACTIVATIONS[params.activation][1](h)
        for column in columns:
            scatter_add_rows(dW1T, column, dh)
    return {"W1": dW1T.transpose(0, 2, 1), "W2": dW2}


def _agop_factors(params: Params, operands: tuple[Any, ...], weights: Any) -> tuple:
    """Q = W2ᵀW2, P = Dᵀ diag(w) D, D = φ′(h), the W1 columns and h, for the AGOP and its
    trace (the network's outputs are not needed)."""
    xp = array_namespace(params.W1)
    columns, h = pre_activations(params, operands)
    D = ACTIVATIONS[params.activation][1](h)                             # (M, n, N)
    Q = xp.matmul(params.W2.transpose(0, 2, 1), params.W2)
    P = xp.matmul(D.transpose(0, 2, 1), D * weights[..., None])
    return Q, P, D, columns, h


def input_agop(params: Params, *operands: Any, weights: Any = None) -> Any:
    """Average gradient outer product of the network with respect to its input (seed 000).

    AGOP = Σ_x w_x J(x)ᵀ J(x) with J(x) = ∂f/∂x = c W2 diag(φ′(h)) W1 (outputs × inputs) and
    w_x = 1/n by default. Summing diag(d) Q diag(d) over inputs gives Q ⊙ Σ_x w_x d dᵀ, so,
    with Q = W2ᵀW2 and the rows of D = φ′(H) the inputs' φ′(h),

        AGOP = c² W1ᵀ [ (W2ᵀ W2) ⊙ (Dᵀ diag(w) D) ] W1,

    exact and built from three products, no per-input Jacobian.

    Parameters
    ----------
    params : Params
        Batched weights (M, ...).
    *operands : int arrays, shape (M, n)
        The one-hot inputs, as for :func:`forward`.
    weights : array (M, n), optional
        w_x; default 1/n.

    Returns
    -------
    array, shape (M, d, d)
        d = k·p, the input dimension (2p for pairs).
    """
    xp = array_namespace(params.W1)
    if weights is None:
        weights = xp.full(operands[0].shape, 1 / operands[0].shape[1], dtype=params.W1.dtype)
    Q, P, *_ = _agop_factors(params, operands, weights)
    W1 = params.W1
    return params.output_scale**2 * xp.matmul(W1.transpose(0, 2, 1), xp.matmul(Q * P, W1))


def agop_trace_and_grads(params: Params, operands: tuple[Any, ...],
                         weights: Any) -> tuple[Any, dict[str, Any]]:
    """tr(AGOP) per model and its gradients: the AGOP penalty of seed 000.

    With R = W1 W1ᵀ, tr(AGOP) = c² Σ_ii′ Q_ii′ P_ii′ R_ii′ (:func:`input_agop`), so

    - ∂/∂W2 = 2c² W2 (P ⊙ R);
    - ∂/∂W1 = 2c² (Q ⊙ P) W1 through R, plus, through P = Dᵀ diag(w) D with D = φ′(H),
      ∂/∂D = 2c² diag(w) D (Q ⊙ R), ∂/∂H = ∂/∂D ⊙ φ″(H), scattered into W1's columns as in
      :func:`backward`.
    """
    xp = array_namespace(params.W1)
    Q, P, D, columns, h = _agop_factors(params, operands, weights)
    W1, W2 = params.W1, params.W2
    R = xp.matmul(W1, W1.transpose(0, 2, 1))
    c2 = params.output_scale**2
    trace = c2 * (Q * P * R).sum(axis=(1, 2))
    dW2 = 2 * c2 * xp.matmul(W2, P * R)
    dW1 = 2 * c2 * xp.matmul(Q * P, W1)
    dD = 2 * c2 * xp.matmul(D * weights[..., None], Q * R)
    dh = dD * SECOND_DERIVATIVES[params.activation](h)
    dW1T = xp.zeros((W1.shape[0], W1.shape[2], W1.shape[1]), dtype=dh.dtype)
    for column in columns:
        scatter_add_rows(dW1T, column, dh)
    return trace, {"W1": dW1 + dW1T.transpose(0, 2, 1), "W2": dW2}


def loss_and_grads(params: Params, operands: tuple[Any, ...], labels: Any, weights: Any,
                   loss: str = "mse", workspace: Workspace | None = None
                   ) -> tuple[Any, dict[str, Any]]:
    """Weighted loss L = Σ_i w_i ℓ_i per model and its gradients.

    ``operands`` are the (M, n) index arrays of :func:`forward`; ``labels`` the classes
    (M, n) or real targets (M, n, outputs) of :func:`gk.losses.per_sample_loss`.
    ``weights`` (M, n) are 1/n on a model's real examples and 0 on padding, so L is the mean
    loss over each model's batch. A :class:`Workspace` keeps the large arrays of one call
    for the next.
    """
    f, cache = forward(params, *operands, workspace=workspace)
    total, cG = weighted_loss_and_gradient(f, labels, weights, loss, params.output_scale,
                                           overwrite=True)
    return total, _scaled_backward(params, cache, cG, workspace)


CHUNK_VALUES = 2**21
"""Values in one (M, rows, N) array of a chunked evaluation (16 MiB in float64): the rows
per chunk shrink as the models grow, so an ensemble's evaluation stays in memory that the
allocator reuses instead of fresh pages at every chunk."""


def _chunks(params: Params, operands: tuple[Any, ...], chunk: int | None):
    """Yield ``(rows, f)`` for consecutive slices of the shared inputs ``operands`` (each
    (n,)): the batched outputs f (M, rows, outputs) on ``chunk`` inputs at a time (None: as
    many as :data:`CHUNK_VALUES` allows), h and z reused from chunk to chunk."""
    xp = array_namespace(params.W1)
    batch = params.as_batch()
    M = batch.W1.shape[0]
    chunk = chunk or max(1, CHUNK_VALUES // (M * batch.width))
    workspace = Workspace()
    for start in range(0, len(operands[0]), chunk):
        rows = slice(start, start + chunk)
        yield rows, forward(batch, *(xp.broadcast_to(x[rows], (M, len(x[rows])))
                                     for x in operands), workspace=workspace)[0]


def outputs(params: Params, operands: tuple[Any, ...], chunk: int | None = None) -> Any:
    """Outputs (M, n, outputs) of every model on the shared inputs ``operands`` (each (n,)),
    ``chunk`` inputs at a time (e.g. the logits on all p² pairs for seed 003's ablations)."""
    xp = array_namespace(params.W1)
    return xp.concatenate([f for _, f in _chunks(params, operands, chunk)], axis=1)


def metrics(params: Params, operands: tuple[Any, ...], labels: Any, loss: str = "mse",
            tolerance: float | None = None, chunk: int | None = None) -> tuple[Any, Any]:
    """:func:`score` of every example, the outputs formed ``chunk`` examples at a time.

    ``operands`` (each (n,)) and ``labels`` are shared by all models. Returns two (M, n)
    arrays.
    """
    xp = array_namespace(params.W1)
    parts = [score(f, labels[rows], loss, tolerance)
             for rows, f in _chunks(params, operands, chunk)]
    return tuple(xp.concatenate(part, axis=1) for part in zip(*parts, strict=True))


def evaluate(params: Params, task: Task | Triples, loss: str = "mse") -> dict[str, Any]:
    """Loss and accuracy of the network on all of the task's examples.

    Returns
    -------
    dict
        ``{"loss": ..., "accuracy": ...}``: floats for one model, (M,) NumPy arrays for a
        batch.
    """
    check_loss(loss)
    xp = array_namespace(params.W1)
    operands = tuple(xp.asarray(x) for x in task.operands())
    losses, correct = metrics(params, operands, xp.asarray(task.labels()), loss, task.tolerance)
    result = {"loss": backend.to_numpy(losses.mean(axis=1)),
              "accuracy": backend.to_numpy(correct.mean(axis=1))}
    if params.batched:
        return result
    return {key: float(value[0]) for key, value in result.items()}
