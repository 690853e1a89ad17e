"""Exact neural tangent kernel of the two-layer network, in closed form (seed 002).

For f_k(x) = c Σ_i W2[k, i] φ(h_i), h = W1 x (c = 2/N for gk's mean-field network), the
gradients are ∂f_k/∂W2[m, i] = c δ_km φ(h_i) and ∂f_k/∂W1[i, j] = c W2[k, i] φ′(h_i) x_j, so

    Θ_kl(x, x′) = c² [ δ_kl Σ_i φ(h_i) φ(h′_i) + (x·x′) Σ_i W2[k, i] W2[l, i] φ′(h_i) φ′(h′_i) ].

No Jacobian is ever formed: with Z = φ(H), D = φ′(H) (rows = inputs) every kind is a few
matrix products. For one-hot pairs x·x′ = [a = a′] + [b = b′] and H is a gather.
"""

from __future__ import annotations

from typing import Any

from gk.backend import array_namespace, scatter_add_rows, solve_ridge, to_numpy
from gk.mlp.model import ACTIVATIONS, Params

KINDS = ("trace", "full", "block")
FULL_LIMIT = 2**28
"""Largest number of entries (n·n2·p², 2 GiB in float64) that ``kind="full"`` will build."""


def _features(params: Params, x: Any) -> tuple[Any, Any]:
    """Z = φ(W1 x) and D = φ′(W1 x) for inputs x (dense (n, d) or pairs (a, b))."""
    W1 = params.W1
    if isinstance(x, tuple):
        a, b = x
        W1T = W1.T
        H = W1T[a] + W1T[params.p + b]
    else:
        if x.ndim != 2 or x.shape[1] != W1.shape[1]:
            raise ValueError(f"x has shape {x.shape}; expected (n, {W1.shape[1]}) to match W1")
        H = x @ W1.T
    phi, dphi = ACTIVATIONS[params.activation]
    return phi(H), dphi(H)


def _overlap(x: Any, x2: Any) -> Any:
    """x·x′ for every pair of inputs: X X′ᵀ, or [a = a′] + [b = b′] for one-hot pairs."""
    if isinstance(x, tuple):
        return (x[0][:, None] == x2[0][None, :]) * 1.0 + (x[1][:, None] == x2[1][None, :])
    return x @ x2.T


def _check(params: Params, kind: str) -> float:
    if params.batched:
        raise ValueError("params must hold one model (use params.model(m))")
    if params.W2.shape[1] != params.W1.shape[0]:
        raise ValueError(f"W1 has {params.W1.shape[0]} neurons but W2 has {params.W2.shape[1]}")
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a kind; allowed: {', '.join(KINDS)}")
    return 2 / params.width


def gram(params: Params, x: Any, x2: Any = None, kind: str = "trace",
         outputs: tuple[int, int] = (0, 0), scale: float | None = None,
         chunk: int = 2048) -> Any:
    """The NTK Gram matrix of a network between inputs x and x2.

    Parameters
    ----------
    params : Params
        One model's weights.
    x, x2 : array (n, d) or pair ``(a, b)`` of int arrays
        Inputs; ``x2`` defaults to ``x``.
    kind : {"trace", "full", "block"}
        ``trace``: Σ_k Θ_kk(x, x′), shape (n, n2) — the sum over outputs (neural-tangents'
        ``trace_axes`` returns the mean, 1/p of this). ``full``: Θ_kl(x, x′), shape
        (n, n2, p, p), refused above :data:`FULL_LIMIT` entries. ``block``: Θ_kl for the
        output pair ``outputs = (k, l)``, shape (n, n2).
    scale : float, optional
        c of f = c W2 φ(W1 x); default 2/N (gk's network), 1 for an unnormalised one.
    chunk : int
        Rows of x processed at a time.
    """
    c = _check(params, kind)
    c = c if scale is None else scale
    x2 = x if x2 is None else x2
    if kind == "full":
        n, n2 = (len(v[0]) if isinstance(v, tuple) else len(v) for v in (x, x2))
        if n * n2 * params.p**2 > FULL_LIMIT:
            raise ValueError(f"kind='full' would hold {n}·{n2}·{params.p}² entries, over the "
                             f"limit of {FULL_LIMIT} (2 GiB): use kind='trace' or matvec()")
    Z2, D2 = _features(params, x2)
    W2 = params.W2
    xp = array_namespace(W2)
    n = len(x[0]) if isinstance(x, tuple) else len(x)
    parts = []
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        part = (x[0][rows], x[1][rows]) if isinstance(x, tuple) else x[rows]
        Z, D = _features(params, part)
        S = _overlap(part, x2)
        parts.append(c * c * _kind(kind, Z, D, Z2, D2, S, W2, outputs))
    return parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=0)


def _kind(kind: str, Z: Any, D: Any, Z2: Any, D2: Any, S: Any, W2: Any,
          outputs: tuple[int, int]) -> Any:
    """Θ / c² of one chunk of rows."""
    xp = array_namespace(Z)
    if kind == "trace":
        return W2.shape[0] * (Z @ Z2.T) + S * ((D * (W2 * W2).sum(axis=0)) @ D2.T)
    if kind == "block":
        k, l = outputs
        same = Z @ Z2.T if k == l else 0
        return same + S * ((D * W2[k]) @ (D2 * W2[l]).T)
    p = W2.shape[0]
    A = (D[:, None, :] * W2[None]).reshape(-1, W2.shape[1])           # (n·p, N)
    A2 = (D2[:, None, :] * W2[None]).reshape(-1, W2.shape[1])
    second = (A @ A2.T).reshape(len(Z), p, len(Z2), p).transpose(0, 2, 1, 3)
    first = (Z @ Z2.T)[:, :, None, None] * xp.eye(p)
    return first + S[:, :, None, None] * second


def matvec(params: Params, x: Any, v: Any, scale: float | None = None) -> Any:
    """Multiply the full (n·p)×(n·p) NTK on inputs x by v (n, p), without forming it.

    (Θv)[x, k] = c² [ Σ_y (Z Zᵀ)[x, y] v[y, k]
                     + Σ_i W2[k, i] D[x, i] Σ_y (x·y) D[y, i] (v[y] · W2[:, i]) ],

    O(n·N·p) time and memory; for one-hot pairs Σ_y (x·y)(...) is a scatter-add into the 2p
    input slots followed by a gather.
    """
    c = _check(params, "trace")
    c = c if scale is None else scale
    xp = array_namespace(params.W2)
    Z, D = _features(params, x)
    W2 = params.W2
    first = Z @ (Z.T @ v)
    U = D * (v @ W2)                                                     # (n, N)
    if isinstance(x, tuple):
        a, b = x
        p = params.p
        slots = xp.zeros((1, 2 * p, U.shape[1]), dtype=U.dtype)
        scatter_add_rows(slots, a[None], U[None])
        scatter_add_rows(slots, (p + b)[None], U[None])
        R = slots[0, a] + slots[0, p + b]
    else:
        R = x @ (x.T @ U)
    return c * c * (first + (D * R) @ W2.T)


def regression(params: Params, task: Any, split: Any, ridge: float = 0.0) -> dict[str, float]:
    """Kernel ridge regression with the network's NTK: the "lazy" predictor (seed 002).

    Solves (Θ(X, X) + λI) α = Y by Cholesky with Θ the trace kind (the same kernel for every
    output) and predicts f(x) = Θ(x, X) α, starting from zero output. A network that stays in
    the kernel regime can do no better.

    Returns
    -------
    dict
        ``train_acc``, ``test_acc``, ``jitter`` (see :func:`gk.backend.solve_ridge`).
    """
    xp = array_namespace(params.W1)
    train = (xp.asarray(task.a[split.train]), xp.asarray(task.b[split.train]))
    test = (xp.asarray(task.a[split.test]), xp.asarray(task.b[split.test]))
    Y = xp.asarray(split.targets("train"), dtype=params.W1.dtype)
    K = gram(params, train)
    alpha, jitter = solve_ridge(K, Y, ridge)
    result = {"jitter": jitter}
    for part, inputs, c in (("train", train, task.c[split.train]),
                            ("test", test, task.c[split.test])):
        predicted = K @ alpha if part == "train" else gram(params, inputs, train) @ alpha
        result[f"{part}_acc"] = float((to_numpy(predicted.argmax(axis=1)) == c).mean())
    return result
