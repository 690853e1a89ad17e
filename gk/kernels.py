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


def count_inputs(inputs: Any) -> int:
    """The number of inputs: rows of a dense array, or pairs ``(a, b)``."""
    return len(inputs[0]) if isinstance(inputs, tuple) else inputs.shape[0]


def take_inputs(inputs: Any, rows: Any) -> Any:
    """The inputs at ``rows`` (a slice or an index array), in the form they were given."""
    return (inputs[0][rows], inputs[1][rows]) if isinstance(inputs, tuple) else inputs[rows]


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
    n = count_inputs(X)
    K = xp.empty((n, count_inputs(Z)), dtype=M.dtype)
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        part = K[rows]
        products = inner_products(M, take_inputs(X, rows), Z, p, out=part)
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


def weighted_moments(X: Any, V: Any, p: int | None = None) -> Any:
    """A_c = Xᵀ diag(v_c) X for every column v_c of V, shape (columns, d, d).

    For one-hot pairs that are all different (the pairs of a split), A_c is v_c placed on a
    p×p grid (the off-diagonal blocks) with that grid's row and column sums on the diagonals.
    """
    xp = array_namespace(V)
    if not isinstance(X, tuple):
        return xp.einsum("jc,jd,je->cde", V, X, X)
    a, b = X
    columns = V.shape[1]
    grid = xp.zeros((columns, p, p), dtype=V.dtype)
    grid[:, a, b] = V.T
    A = xp.zeros((columns, 2 * p, 2 * p), dtype=V.dtype)
    diagonal = xp.arange(p)
    A[:, :p, p:] = grid
    A[:, p:, :p] = grid.transpose(0, 2, 1)
    A[:, diagonal, diagonal] = grid.sum(axis=2)
    A[:, p + diagonal, p + diagonal] = grid.sum(axis=1)
    return A


def quadratic_matmul(M: Any, X: Any, Z: Any, V: Any, p: int | None = None,
                     chunk: int = 16) -> Any:
    """K(X, Z; M) V for the quadratic kernel, without K.

    Σ_j v_j (xᵀMz_j)² = xᵀ M A M x with A = Zᵀ diag(v) Z (:func:`weighted_moments`), so a
    column of the product costs O(d³ + n + m) instead of O(n·m). Columns are processed
    ``chunk`` at a time (memory 3·chunk·d²). One-hot pairs ``Z`` must all be different.
    """
    xp = array_namespace(M, V)
    product = xp.empty((count_inputs(X), V.shape[1]), dtype=V.dtype)
    for start in range(0, V.shape[1], chunk):
        columns = slice(start, start + chunk)
        B = M @ weighted_moments(Z, V[:, columns], p) @ M            # (chunk, d, d)
        if isinstance(X, tuple):
            a, b = X
            forms = B[:, a, a] + 2 * B[:, a, p + b] + B[:, p + b, p + b]   # B symmetric
        else:
            forms = xp.einsum("id,cde,ie->ci", X, B, X)
        product[:, columns] = forms.T
    return product
