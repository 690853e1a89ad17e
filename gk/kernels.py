"""Mahalanobis kernels of Recursive Feature Machines and the input gradients the AGOP needs.

Each kernel depends on its inputs only through the three inner products xᵀMz, xᵀMx and
zᵀMz (M symmetric PSD, 2p×2p), so its gradient in x has the form (seed 000, RFM)::

    ∇_x k(x, z) = M (β(x, z) · z + γ(x, z) · x),

and the Jacobian of the predictor f_c(x) = Σ_j α_jc k(x, x_j) at a training point x_i is

    ∇f_c(x_i) = M ( Σ_j β_ij α_jc x_j + (Σ_j γ_ij α_jc) x_i ).

:func:`gradient_weights` returns β and γ for each kernel; :mod:`gk.rfm` turns them into the
AGOP without ever forming per-sample Jacobians.

Conventions (``bandwidth`` L > 0, d²_M(x, z) = (x − z)ᵀ M (x − z))::

    quadratic   k = (xᵀMz)²                 β = 2 xᵀMz,          γ = 0
    gaussian    k = exp(−d²_M / L)          β = 2k / L,          γ = −2k / L
    laplace     k = exp(−d_M / L)           β = k / (L d_M),     γ = −k / (L d_M)   (0 where x = z)

Seed 000's code multiplies the quadratic kernel by 3 (ridgeless regression cancels it) and
writes the Gaussian as exp(−d²/(2σ²)) with σ = 2.5: that is L = 2σ² = 12.5 here.

Inputs may be dense rows (n, 2p) or one-hot pairs given as index arrays ``(a, b)``; with pairs,
XM is a row gather and XMZᵀ a column gather, so a Gram matrix costs O(n·m), not O(n·m·p).
"""

from __future__ import annotations

from typing import Any

from gk.backend import array_namespace

KERNELS = ("quadratic", "gaussian", "laplace")
"""Names of the kernels, for ``kernel=``."""

DEFAULT_BANDWIDTH = {"quadratic": None, "gaussian": 12.5, "laplace": 2.5}
"""Default L of each kernel (the quadratic kernel has none)."""


def check_kernel(kernel: str) -> None:
    """Raise ValueError unless ``kernel`` is one of :data:`KERNELS`."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r} is not a kernel; allowed: {', '.join(KERNELS)}")


def inner_products(M: Any, X: Any, Z: Any, p: int | None = None,
                   out: Any = None) -> tuple[Any, Any, Any]:
    """``(X M Zᵀ, diag(X M Xᵀ), diag(Z M Zᵀ))`` for dense rows or one-hot pairs.

    Parameters
    ----------
    M : array, shape (2p, 2p)
    X, Z : array of shape (n, 2p), or a pair ``(a, b)`` of int arrays of shape (n,)
        One-hot pairs ``e_a ⊕ e_b`` are given by their operands (then ``p`` is needed).
    out : array, shape (n, m), optional
        Where to write X M Zᵀ.
    """
    xp = array_namespace(M)
    if isinstance(X, tuple):
        a, b = X
        XM = M[a] + M[p + b]                                   # rows of M: (n, 2p)
        x_norm = XM[_rows(XM), a] + XM[_rows(XM), p + b]
    else:
        XM = X @ M
        x_norm = (XM * X).sum(axis=1)
    if isinstance(Z, tuple):
        c, d = Z
        XMZ = xp.take(XM, c, axis=1, out=out)                  # column gathers: O(n·m)
        XMZ += xp.take(XM, p + d, axis=1)
        z_norm = M[c, c] + M[c, p + d] + M[p + d, c] + M[p + d, p + d]
    else:
        XMZ = xp.matmul(XM, Z.T, out=out)
        z_norm = ((Z @ M) * Z).sum(axis=1)
    return XMZ, x_norm, z_norm


def _rows(array: Any) -> Any:
    return array_namespace(array).arange(array.shape[0])


def _mahalanobis_sq(XMZ: Any, x_norm: Any, z_norm: Any, out: Any = None) -> Any:
    xp = array_namespace(XMZ)
    squared = xp.multiply(XMZ, -2, out=out)
    squared += x_norm[:, None]
    squared += z_norm[None, :]
    return xp.clip(squared, 0, None, out=squared)


def from_inner_products(kernel: str, XMZ: Any, x_norm: Any, z_norm: Any,
                        bandwidth: float | None, out: Any = None) -> Any:
    """The Gram matrix from the inner products of :func:`inner_products`.

    With ``out`` (which may be ``XMZ`` itself) the result is computed in that array.
    """
    xp = array_namespace(XMZ)
    if kernel == "quadratic":
        return xp.multiply(XMZ, XMZ, out=out)
    K = _mahalanobis_sq(XMZ, x_norm, z_norm, out=out)
    if kernel == "laplace":
        K = xp.sqrt(K, out=K)
    K *= -1 / bandwidth
    return xp.exp(K, out=K)


def gram(kernel: str, M: Any, X: Any, Z: Any, bandwidth: float | None = None,
         p: int | None = None, chunk: int = 4096) -> Any:
    """The Gram matrix K[i, j] = k(x_i, z_j; M), built ``chunk`` rows at a time.

    ``X`` and ``Z`` are dense (n, 2p) arrays or one-hot pairs ``(a, b)``
    (see :func:`inner_products`). Each chunk is computed in place in the result, so memory
    beyond it is O(chunk·(m + p)).
    """
    check_kernel(kernel)
    xp = array_namespace(M)
    n = len(X[0]) if isinstance(X, tuple) else X.shape[0]
    m = len(Z[0]) if isinstance(Z, tuple) else Z.shape[0]
    K = xp.empty((n, m), dtype=M.dtype)
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        X_part = (X[0][rows], X[1][rows]) if isinstance(X, tuple) else X[rows]
        part = K[rows]
        products = inner_products(M, X_part, Z, p, out=part)
        from_inner_products(kernel, *products, bandwidth, out=part)
    return K


def gradient_weights(kernel: str, K: Any, XMZ: Any, x_norm: Any, z_norm: Any,
                     bandwidth: float | None) -> tuple[Any, Any]:
    """β and γ of ∇_x k(x_i, z_j) = M (β_ij z_j + γ_ij x_i), see the module docstring.

    Returns ``(β, None)`` for the quadratic kernel, whose γ is zero.
    """
    xp = array_namespace(K)
    if kernel == "quadratic":
        return 2 * XMZ, None
    if kernel == "gaussian":
        beta = (2 / bandwidth) * K
        return beta, -beta
    squared = _mahalanobis_sq(XMZ, x_norm, z_norm)
    # d² from inner products carries round-off of order ε(xᵀMx + zᵀMz): below that the
    # points coincide, and the gradient of exp(−d/L) there is taken to be 0
    apart = squared > 1e-12 * (x_norm[:, None] + z_norm[None, :])
    distance = xp.sqrt(xp.where(apart, squared, 1))
    beta = xp.where(apart, K / (bandwidth * distance), 0)
    return beta, -beta
