"""Recursive Feature Machines (seed 000): kernel ridge regression that learns its features.

One iteration (seed 000, "Recursive Feature Machines")::

    α   = (K(X, X; M_t) + λI)⁻¹ Y                      by Cholesky
    G   = (1/n) Σ_j J_jᵀ J_j,   J_j = ∂f(x_j)/∂x       the AGOP of f(x) = K(x, X; M_t) α
    M_{t+1} = G^s                                      s = 1/2, by eigh with clipping

from M₀ = I. The AGOP is computed in closed form from matrix products (no per-sample
Jacobian), using the structure of the kernel (:mod:`gk.kernels`) and, for the runs of
:func:`run`, that inputs are one-hot pairs.

Seed 000's code centres the Jacobians (subtracts their mean over the training points) before
the outer product; ``centering=True`` does the same and is the default that reproduces the
paper's figures. Its code solves by LU; gk by Cholesky (the matrix is symmetric PSD).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gk import backend
from gk.backend import array_namespace
from gk.kernels import (
    DEFAULT_BANDWIDTH,
    check_kernel,
    gradient_weights,
    gram,
    inner_products,
)

Inputs = Any
"""Dense rows (n, 2p) or one-hot pairs ``(a, b)`` of int arrays (see :mod:`gk.kernels`)."""

JITTER_START = 1e-12
JITTER_STOP = 1e-3


def _count(inputs: Inputs) -> int:
    return len(inputs[0]) if isinstance(inputs, tuple) else inputs.shape[0]


def _take(inputs: Inputs, rows: Any) -> Inputs:
    return (inputs[0][rows], inputs[1][rows]) if isinstance(inputs, tuple) else inputs[rows]


def dense(inputs: Inputs, p: int | None, xp: Any = np) -> Any:
    """One-hot rows ``e_a ⊕ e_b`` (n, 2p) of pairs; dense inputs come back unchanged."""
    if not isinstance(inputs, tuple):
        return inputs
    a, b = inputs
    X = xp.zeros((len(a), 2 * p))
    rows = xp.arange(len(a))
    X[rows, a] = 1
    X[rows, p + b] = 1
    return X


def solve_ridge(K: Any, Y: Any, ridge: float = 0.0) -> tuple[Any, float]:
    """Solve (K + λI) α = Y by Cholesky; return α and the jitter that had to be added.

    Ridgeless kernel matrices (λ = 0) of low-rank features are often not numerically
    positive definite. Then a jitter ε·mean(diag K) is added to the diagonal, with ε
    rising from 1e-12 by factors of 10 until the factorisation succeeds (at most 1e-3);
    the ε used is returned so that it can be recorded. Nothing fails silently: past 1e-3
    the last error is raised.
    """
    xp = array_namespace(K)
    scale = float(xp.mean(xp.diagonal(K)))
    epsilon = 0.0
    while True:
        system = K + (ridge + epsilon * scale) * xp.eye(K.shape[0], dtype=K.dtype)
        try:
            return backend.cholesky_solve(system, Y), epsilon
        except np.linalg.LinAlgError:
            if epsilon >= JITTER_STOP:
                raise
            epsilon = JITTER_START if epsilon == 0 else epsilon * 10


def predict(kernel: str, M: Any, inputs: Inputs, centers: Inputs, alpha: Any,
            bandwidth: float | None, p: int | None = None, chunk: int = 4096) -> Any:
    """f(x) = K(x, centers; M) α for every input, ``chunk`` rows of the kernel at a time."""
    xp = array_namespace(M)
    parts = []
    for start in range(0, _count(inputs), chunk):
        rows = slice(start, start + chunk)
        parts.append(gram(kernel, M, _take(inputs, rows), centers, bandwidth, p) @ alpha)
    return xp.concatenate(parts, axis=0)


def _second_moments(X: Inputs, p: int | None, centering: bool) -> Any:
    """(1/n) Σ x xᵀ of the inputs, minus x̄ x̄ᵀ when centering."""
    xp = array_namespace(X if not isinstance(X, tuple) else X[0])
    dense_X = dense(X, p, xp)
    S = dense_X.T @ dense_X / dense_X.shape[0]
    if centering:
        mean = dense_X.mean(axis=0)
        S = S - xp.outer(mean, mean)
    return S


def _class_moments(X: Inputs, alpha: Any, p: int | None) -> Any:
    """A_c = Xᵀ diag(α_c) X for every output c, shape (classes, d, d).

    For one-hot pairs each (a, b) occurs once, so A_c is α_c placed on a p×p grid (the
    off-diagonal blocks) with that grid's row and column sums on the diagonals.
    """
    xp = array_namespace(alpha)
    if not isinstance(X, tuple):
        return xp.einsum("jc,jd,je->cde", alpha, X, X)
    a, b = X
    classes = alpha.shape[1]
    grid = xp.zeros((classes, p, p), dtype=alpha.dtype)
    grid[:, a, b] = alpha.T
    A = xp.zeros((classes, 2 * p, 2 * p), dtype=alpha.dtype)
    diagonal = xp.arange(p)
    A[:, :p, p:] = grid
    A[:, p:, :p] = grid.transpose(0, 2, 1)
    A[:, diagonal, diagonal] = grid.sum(axis=2)
    A[:, p + diagonal, p + diagonal] = grid.sum(axis=1)
    return A


def agop_quadratic(M: Any, alpha: Any, X: Inputs, p: int | None = None,
                   centering: bool = True, class_chunk: int = 16) -> Any:
    """AGOP of the quadratic-kernel predictor, in closed form.

    With k(x, z) = (xᵀMz)², ∇f_c(x) = 2 M A_c M x where A_c = Xᵀ diag(α_c) X, so

        G = 4 M [ Σ_c A_c (M S M) A_c ] M,     S = (1/n) Σ_i x_i x_iᵀ  (− x̄x̄ᵀ if centred).

    Cost O(n·p + p·d³) instead of O(n²·p·d); classes are processed ``class_chunk`` at a time.
    """
    T = M @ _second_moments(X, p, centering) @ M
    inner = 0
    for start in range(0, alpha.shape[1], class_chunk):
        A = _class_moments(X, alpha[:, start:start + class_chunk], p)
        inner = inner + (A @ T @ A).sum(axis=0)
    return 4 * M @ inner @ M


def _jacobian_vectors(beta: Any, alpha: Any, centers: Inputs, p: int | None) -> Any:
    """V[i, c] = Σ_j β_ij α_jc x_j for every row i of β, shape (rows, classes, d).

    For one-hot pairs the sum over j is grouped by a_j (first half) and b_j (second half):
    2p products of β's columns in each group with α, O(rows·n·p) in all.
    """
    xp = array_namespace(beta)
    if not isinstance(centers, tuple):
        return (beta @ (alpha[:, :, None] * centers[:, None, :]).reshape(len(alpha), -1)
                ).reshape(beta.shape[0], alpha.shape[1], -1)
    V = xp.zeros((beta.shape[0], alpha.shape[1], 2 * p), dtype=beta.dtype)
    for half, operand in enumerate(centers):
        host = backend.to_numpy(operand)
        for value in np.unique(host):
            group = xp.asarray(np.flatnonzero(host == value))
            V[:, :, half * p + int(value)] = beta[:, group] @ alpha[group]
    return V


def agop_general(kernel: str, M: Any, alpha: Any, X: Inputs, bandwidth: float | None,
                 p: int | None = None, centering: bool = True, chunk: int = 1024) -> Any:
    """AGOP of any kernel's predictor from the gradient weights β, γ of :mod:`gk.kernels`.

    ∇f_c(x_i) = M u_ic with u_ic = Σ_j β_ij α_jc x_j + (Σ_j γ_ij α_jc) x_i, and
    G = M [ (1/n) Σ_ic u_ic u_icᵀ − Σ_c ū_c ū_cᵀ (if centred) ] M. Training points are
    processed ``chunk`` at a time, so memory stays O(chunk·(n + p·d)).
    """
    xp = array_namespace(M)
    n = _count(X)
    second, mean = 0, 0
    for start in range(0, n, chunk):
        rows = _take(X, slice(start, start + chunk))
        XMZ, x_norm, z_norm = inner_products(M, rows, X, p)
        K = gram(kernel, M, rows, X, bandwidth, p)
        beta, gamma = gradient_weights(kernel, K, XMZ, x_norm, z_norm, bandwidth)
        U = _jacobian_vectors(beta, alpha, X, p)
        if gamma is not None:
            U += (gamma @ alpha)[:, :, None] * dense(rows, p, xp)[:, None, :]
        flat = U.reshape(-1, U.shape[-1])
        second = second + flat.T @ flat
        mean = mean + U.sum(axis=0)
    inner = second / n
    if centering:
        mean = mean / n
        inner = inner - mean.T @ mean
    return M @ inner @ M


def agop(kernel: str, M: Any, alpha: Any, X: Inputs, bandwidth: float | None = None,
         p: int | None = None, centering: bool = True) -> Any:
    """The AGOP G = (1/n) Σ_j J_jᵀ J_j of f(x) = K(x, X; M) α over the training inputs X."""
    check_kernel(kernel)
    if kernel == "quadratic":
        return agop_quadratic(M, alpha, X, p, centering)
    return agop_general(kernel, M, alpha, X, bandwidth, p, centering)


def resolve_bandwidth(kernel: str, bandwidth: float | None) -> float | None:
    """The bandwidth a kernel uses: the given one, or the kernel's default."""
    check_kernel(kernel)
    if bandwidth is None:
        return DEFAULT_BANDWIDTH[kernel]
    if not np.isfinite(bandwidth) or bandwidth <= 0:
        raise ValueError(f"bandwidth={bandwidth!r} is not allowed; it must be finite and > 0")
    return float(bandwidth)
