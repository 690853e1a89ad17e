"""Exact neural tangent kernel of the two-layer network, in closed form (seed 002).

For f_k(x) = c Σ_i W2[k, i] φ(h_i), h = W1 x (c = 2/N for gk's mean-field network, 1 for
seed 002's unnormalised one: :attr:`gk.mlp.Params.output_scale`), the
gradients are ∂f_k/∂W2[m, i] = c δ_km φ(h_i) and ∂f_k/∂W1[i, j] = c W2[k, i] φ′(h_i) x_j, so

    Θ_kl(x, x′) = c² [ δ_kl Σ_i φ(h_i) φ(h′_i) + (x·x′) Σ_i W2[k, i] W2[l, i] φ′(h_i) φ′(h′_i) ].

No Jacobian is ever formed: with Z = φ(H), D = φ′(H) (rows = inputs) every kind is a few
matrix products. For one-hot pairs x·x′ = [a = a′] + [b = b′] and H is a gather; the same
holds for inputs of k one-hot operands (seed 002's regression network reads triples
e_a ⊕ e_b ⊕ e_c and has one output).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from gk import backend, io
from gk.backend import array_namespace, scatter_add_rows, solve_ridge, to_numpy
from gk.config import check_int, check_number
from gk.mlp.model import ACTIVATIONS, Params, input_columns, pre_activations

KINDS = ("trace", "full", "block")
INPUTS = ("train", "test", "all")
"""Which of a run's examples :func:`gram_of_run` takes."""
FULL_LIMIT = 2**28
"""Largest number of entries (n·n2·p², 2 GiB in float64) that ``kind="full"`` will build."""


def _features(params: Params, x: Any) -> tuple[Any, Any]:
    """Z = φ(W1 x) and D = φ′(W1 x) for inputs x (dense (n, d) or operands (a, b, ...))."""
    W1 = params.W1
    if isinstance(x, tuple):
        H = pre_activations(params.as_batch(), tuple(operand[None] for operand in x))[1][0]
    else:
        if x.ndim != 2 or x.shape[1] != W1.shape[1]:
            raise ValueError(f"x has shape {x.shape}; expected (n, {W1.shape[1]}) to match W1")
        H = x @ W1.T
    phi, dphi = ACTIVATIONS[params.activation]
    return phi(H), dphi(H)


def _overlap(x: Any, x2: Any, dtype: Any) -> Any:
    """x·x′ for every pair of inputs: X X′ᵀ, or Σ_j [x_j = x′_j] for one-hot operands."""
    if isinstance(x, tuple):
        xp = array_namespace(x[0])
        overlap = xp.zeros((len(x[0]), len(x2[0])), dtype=dtype)
        for u, v in zip(x, x2, strict=True):
            overlap += u[:, None] == v[None, :]
        return overlap
    return x @ x2.T


def _check(params: Params, kind: str) -> float:
    """Validate the arguments; return c."""
    if params.batched:
        raise ValueError(f"params holds {params.W1.shape[0]} models (W1 of shape "
                         f"{tuple(params.W1.shape)}); params must hold one model: pass "
                         "params.model(m)")
    if params.W2.shape[1] != params.W1.shape[0]:
        raise ValueError(f"W1 has {params.W1.shape[0]} neurons but W2 has {params.W2.shape[1]}")
    check_kind(kind)
    return params.output_scale


def check_kind(kind: str, outputs: Any = (0, 0), p: int | None = None) -> None:
    """Raise unless ``kind`` is one of :data:`KINDS` and ``outputs`` a pair of output indices
    (in 0..p−1 where ``p``, the number of outputs, is given)."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a kind; allowed: {', '.join(KINDS)}")
    top = "p−1" if p is None else p - 1
    try:
        k, l = (int(v) for v in outputs)
        valid = all(int(v) == v for v in outputs) and k >= 0 and l >= 0
    except (TypeError, ValueError):
        valid = False
    if valid and p is not None:
        valid = k < p and l < p
    if not valid:
        raise ValueError(f"outputs={outputs!r} is not allowed; outputs must be a pair (k, l) "
                         f"of output indices in 0..{top}")


def _rows(x: Any, rows: slice) -> Any:
    return tuple(operand[rows] for operand in x) if isinstance(x, tuple) else x[rows]


def _length(x: Any) -> int:
    return len(x[0]) if isinstance(x, tuple) else len(x)


def gram(params: Params, x: Any, x2: Any = None, kind: str = "trace",
         outputs: tuple[int, int] = (0, 0), chunk: int = 2048) -> Any:
    """The NTK Gram matrix of a network between inputs x and x2.

    Parameters
    ----------
    params : Params
        One model's weights.
    x, x2 : array (n, d), or a tuple of k int arrays (n,) for one-hot operands
        Inputs, dense or as operands ``(a, b)`` (pairs) or ``(a, b, c)`` (triples);
        ``x2`` defaults to ``x``.
    kind : {"trace", "full", "block"}
        ``trace``: Σ_k Θ_kk(x, x′), shape (n, n2) — the sum over outputs (neural-tangents'
        ``trace_axes`` returns the mean, 1/p of this). ``full``: Θ_kl(x, x′), shape
        (n, n2, p, p), refused above :data:`FULL_LIMIT` entries. ``block``: Θ_kl for the
        output pair ``outputs = (k, l)``, shape (n, n2).
    chunk : int
        Rows of x processed at a time.
    """
    c = _check(params, kind)
    check_kind(kind, outputs, params.p)
    check_int("chunk", chunk, 1)
    x2 = x if x2 is None else x2
    if kind == "full":
        n, n2 = _length(x), _length(x2)
        if n * n2 * params.p**2 > FULL_LIMIT:
            raise ValueError(f"kind='full' would hold {n}·{n2}·{params.p}² entries, over the "
                             f"limit of {FULL_LIMIT} (2 GiB): use kind='trace' or matvec()")
    Z2, D2 = _features(params, x2)
    xp = array_namespace(params.W2)
    n, n2 = _length(x), _length(x2)
    shape = (n, n2) if kind != "full" else (n, n2, params.p, params.p)
    theta = xp.empty(shape, dtype=Z2.dtype)
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        part = _rows(x, rows)
        Z, D = _features(params, part)
        _fill(theta[rows], kind, params, c * c, part, x2, Z, D, Z2, D2, outputs)
    return theta


def _add_derivative_term(out: Any, x: Any, x2: Any, D: Any, D2: Any, left: Any,
                         right: Any = None) -> None:
    """out += (x·x′) Σ_i u_i v_i φ′(h_i) φ′(h′_i) for every pair of inputs, with u = ``left``
    and v = ``right`` (default 1) weighting the neurons.

    Dense inputs: S ⊙ (D ⊙ u)(D2 ⊙ v)ᵀ with S = X X2ᵀ. One-hot operands: S = Σ_j [x_j = x′_j]
    is nonzero on only a 1/p share of the entries per operand, so the sum is formed there
    alone — for each operand j and value q, the block of inputs with x_j = q against those
    with x′_j = q — which costs n·n2·N·k/p instead of n·n2·N.
    """
    U, V = D * left, D2 if right is None else D2 * right
    if not isinstance(x, tuple):
        term = U @ V.T
        term *= _overlap(x, x2, term.dtype)
        out += term
        return
    xp = array_namespace(U)
    for u, v in zip(x, x2, strict=True):
        order, order2 = xp.argsort(u), xp.argsort(v)
        values = int(max(u.max(), v.max())) + 1
        bounds = to_numpy(xp.searchsorted(u[order], xp.arange(values + 1)))
        bounds2 = to_numpy(xp.searchsorted(v[order2], xp.arange(values + 1)))
        for q in range(values):
            rows, cols = order[bounds[q]:bounds[q + 1]], order2[bounds2[q]:bounds2[q + 1]]
            if len(rows) and len(cols):
                out[rows[:, None], cols[None, :]] += U[rows] @ V[cols].T


def _fill(out: Any, kind: str, params: Params, c2: float, x: Any, x2: Any, Z: Any, D: Any,
          Z2: Any, D2: Any, outputs: tuple[int, int]) -> None:
    """Write Θ of one chunk of rows x against all of x2 into ``out``; c2 = c²."""
    xp = array_namespace(Z)
    W2 = params.W2
    if kind == "trace":
        xp.matmul(Z * (c2 * W2.shape[0]), Z2.T, out=out)      # scale (n, N), not (n, n2)
        _add_derivative_term(out, x, x2, D, D2, c2 * (W2 * W2).sum(axis=0))
    elif kind == "block":
        k, l = outputs
        if k == l:
            xp.matmul(Z * c2, Z2.T, out=out)
        else:
            out[...] = 0
        _add_derivative_term(out, x, x2, D, D2, c2 * W2[k], W2[l])
    else:
        S = _overlap(x, x2, Z.dtype)
        p = W2.shape[0]
        A = (D[:, None, :] * W2[None]).reshape(-1, W2.shape[1])       # (n·p, N)
        A2 = (D2[:, None, :] * W2[None]).reshape(-1, W2.shape[1])
        second = (A @ A2.T).reshape(len(Z), p, len(Z2), p).transpose(0, 2, 1, 3)
        first = (Z @ Z2.T)[:, :, None, None] * xp.eye(p, dtype=Z.dtype)
        out[...] = c2 * (first + S[:, :, None, None] * second)


def matvec(params: Params, x: Any, v: Any) -> Any:
    """Multiply the full (n·p)×(n·p) NTK on inputs x by v (n, p), without forming it.

    (Θv)[x, k] = c² [ Σ_y (Z Zᵀ)[x, y] v[y, k]
                     + Σ_i W2[k, i] D[x, i] Σ_y (x·y) D[y, i] (v[y] · W2[:, i]) ],

    O(n·N·p) time and memory; for one-hot operands Σ_y (x·y)(...) is a scatter-add into the
    input slots followed by a gather.
    """
    c = _check(params, "trace")
    xp = array_namespace(params.W2)
    Z, D = _features(params, x)
    W2 = params.W2
    first = Z @ (Z.T @ v)
    U = D * (v @ W2)                                                     # (n, N)
    if isinstance(x, tuple):
        columns = input_columns(params, x)
        slots = xp.zeros((1, params.W1.shape[1], U.shape[1]), dtype=U.dtype)
        for column in columns:
            scatter_add_rows(slots, column[None], U[None])
        R = sum(slots[0, column] for column in columns)
    else:
        R = x @ (x.T @ U)
    return c * c * (first + (D * R) @ W2.T)


def regression(params: Params, task: Any, split: Any, ridge: float = 0.0,
               chunk: int = 4096) -> dict[str, float]:
    """Kernel ridge regression with the network's NTK: the "lazy" predictor (seed 002).

    Solves (Θ(X, X) + λI) α = Y by Cholesky with Θ the trace kind (the same kernel for every
    output) and predicts f(x) = Θ(x, X) α, starting from zero output. A network that stays in
    the kernel regime can do no better.

    With quadratic φ the NTK is a polynomial of degree 2 in x, so its rank is at most the
    number of degree-≤2 monomials of one-hot inputs: p² + 2p for pairs, 3p² + 3p for triples.
    More training inputs than that cannot all be interpolated, whatever the width.

    Parameters
    ----------
    params : Params
        One model's weights (usually at initialisation).
    task : gk.tasks.Task or gk.tasks.Triples
        Pairs with one-hot targets (classification) or seed 002's triples (regression).
    split : gk.tasks.Split
    ridge : float
        λ; 0 interpolates (with the jitter of :func:`gk.backend.solve_ridge` if needed).
    chunk : int
        Test inputs predicted at a time.

    Returns
    -------
    dict
        ``train_acc``, ``test_acc`` (:meth:`gk.tasks.Task.accuracy`) and ``jitter``.
    """
    _check(params, "trace")
    check_number("ridge", ridge, allow_zero=True)
    check_int("chunk", chunk, 1)
    xp = array_namespace(params.W1)
    inputs = lambda indices: tuple(xp.asarray(v) for v in task.operands(indices))  # noqa: E731
    train = inputs(split.train)
    K = gram(params, train)
    alpha, jitter = solve_ridge(K, xp.asarray(split.targets("train"), dtype=K.dtype), ridge)
    predicted = [gram(params, inputs(split.test[start:start + chunk]), train) @ alpha
                 for start in range(0, len(split.test), chunk)]
    test_acc = task.accuracy(xp.concatenate(predicted), split.test) if predicted else math.nan
    return {"train_acc": task.accuracy(K @ alpha, split.train), "test_acc": test_acc,
            "jitter": jitter}


def gram_of_run(source: Any, step: int | None = None, model: int = 0, inputs: str = "train",
                kind: str = "trace", outputs: tuple[int, int] = (0, 0),
                limit: int | None = None) -> Any:
    """The NTK Gram matrix of one model of a saved network run, as a labelled dataset.

    Parameters
    ----------
    source : path or xarray.Dataset
        A trajectory of :func:`gk.mlp.train` (it keeps the examples and the snapshots).
    step : int, optional
        The snapshot step; default the last.
    model : int
        Which model of the run.
    inputs : {"train", "test", "all"}
        The model's training examples, its test examples, or all of them.
    kind, outputs
        As in :func:`gram`.
    limit : int, optional
        Keep only the first ``limit`` of those examples (in the run's order).

    Returns
    -------
    xarray.Dataset
        ``ntk`` with dims (``example``, ``example2``) (plus ``output``, ``output2`` for
        ``full``), coordinates ``pair`` (the example's index in the run) and its operands,
        attributes naming the source, step, model and kind.
    """
    from gk.mlp.train import load_params  # gk.mlp.train imports this module

    if inputs not in INPUTS:
        raise ValueError(f"inputs={inputs!r} is not allowed; allowed: {', '.join(INPUTS)}")
    check_kind(kind, outputs)
    check_int("model", model, 0)
    if limit is not None:
        check_int("limit", limit, 1)
    ds = source if isinstance(source, xr.Dataset) else io.open_run(source)
    if model >= ds.sizes["model"]:
        raise ValueError(f"model={model} is not a model of the run; the run has "
                         f"{ds.sizes['model']}, so model must be in 0..{ds.sizes['model'] - 1}")
    is_train = ds.is_train.values[model].astype(bool)
    keep = {"train": is_train, "test": ~is_train, "all": np.ones_like(is_train)}[inputs]
    rows = np.flatnonzero(keep)[:limit]
    names = ["a", "b", "c"] if io.config(ds).get("task") == "triples" else ["a", "b"]
    operands = tuple(backend.asarray(ds[name].values[rows]) for name in names)
    params = load_params(ds, step).model(model)
    K = backend.to_numpy(gram(params, operands, kind=kind, outputs=outputs))
    dims = ("example", "example2", "output", "output2")[:K.ndim]
    coords = {"pair": ("example", rows), **{name: ("example", ds[name].values[rows])
                                            for name in names}}
    attrs = {"source": "" if isinstance(source, xr.Dataset) else str(source),
             "step": int(ds.snapshot[-1]) if step is None else int(step), "model": model,
             "inputs": inputs, "kind": kind, "outputs": list(outputs),
             "output_scale": params.output_scale, "gk_version": ds.attrs.get("gk_version", "")}
    return xr.Dataset({"ntk": (dims, K, {"long_name": f"NTK Gram matrix ({kind})"})},
                      coords, attrs)
