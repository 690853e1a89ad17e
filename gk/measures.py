"""Progress measures: plain arrays in, numbers out, for any model's feature matrices.

Seed 000 (RFM) proposes two measures of hidden progress on a 2p×2p feature matrix M,
whose blocks are ``M = [[A, Cᵀ], [C, A']]`` (C couples operand b to operand a):

- the circulant deviation of C (:func:`circulant_deviation`, after a discrete-log
  reordering for × and ÷: :func:`feature_block`), and
- the AGOP alignment ρ(M_t, M*) with the final features (:func:`agop_alignment`).

They apply equally to RFM's M, a network's W1ᵀW1 or its AGOP.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gk.backend import array_namespace
from gk.tasks import discrete_log

MULTIPLICATIVE = ("mul", "div")


def circulant_deviation(A: Any) -> Any:
    """Distance of a square matrix from being circulant (seed 000).

    ``D(A) = Σ_j Var(S(A)[j]) / ‖A‖²_F`` where ``S(A)[j] = (A[i, (i + j) mod k])_i`` is the
    j-th shifted diagonal of the k×k matrix A and Var is the population variance over its k
    entries. A circulant matrix (``A[i, l]`` a function of ``l − i mod k``) has D = 0.

    Parameters
    ----------
    A : array, shape (..., k, k)

    Returns
    -------
    array, shape (...)
        NaN for a zero matrix (such as the off-diagonal block of M₀ = I), where D is 0/0.
    """
    xp = array_namespace(A)
    k = A.shape[-1]
    i = xp.arange(k)
    shifted = A[..., i[None, :], (i[None, :] + i[:, None]) % k]   # [..., j, i]
    norm = (A * A).sum(axis=(-2, -1))
    variance = shifted.var(axis=-1).sum(axis=-1)
    return xp.where(norm > 0, variance / xp.where(norm > 0, norm, 1), xp.nan)


def feature_block(M: Any, p: int, op: str | None = None) -> Any:
    """The block C = M[p:, :p] that couples operand b (rows) to operand a (columns), with its
    rows and columns ordered so that the operation's structure is circulant.

    For addition the learned C[b, a] depends on a − b: it is circulant as it is. The other
    operations are brought to that form (seed 000 reorders × and ÷ by the discrete log):

    - ``sub`` (a function of a + b): rows in the order b = 0, −1, −2, ... (mod p);
    - ``mul``: rows and columns in discrete-log order g⁰, g¹, ..., 0 dropped, (p−1)×(p−1);
    - ``div``: columns in log order, rows in reversed log order g⁰, g⁻¹, g⁻², ...

    Any other op (or None) returns the p×p block unchanged.
    """
    C = M[..., p:, :p]
    xp = array_namespace(M)
    if op == "sub":
        return C[..., (-xp.arange(p)) % p, :]
    if op not in MULTIPLICATIVE:
        return C
    antilog = discrete_log(p)[2]
    rows = antilog[(-np.arange(p - 1)) % (p - 1)] if op == "div" else antilog
    return C[..., xp.asarray(rows)[:, None], xp.asarray(antilog)[None, :]]


def agop_alignment(M: Any, M_final: Any) -> Any:
    """Cosine similarity ρ(M, M*) = ⟨M, M*⟩_F / (‖M‖_F ‖M*‖_F) (seed 000).

    ``M`` may carry leading axes (e.g. iterations); ``M_final`` is one matrix.
    """
    xp = array_namespace(M)
    inner = (M * M_final).sum(axis=(-2, -1))
    return inner / (xp.sqrt((M * M).sum(axis=(-2, -1))) * xp.sqrt((M_final**2).sum()))


def relative_distance(K: Any, K0: Any) -> Any:
    """‖K − K₀‖_F / ‖K₀‖_F over the last two axes: how far a kernel moved (seed 002, the NTK
    distance from initialisation)."""
    xp = array_namespace(K)
    return xp.sqrt(((K - K0) ** 2).sum(axis=(-2, -1)) / (K0**2).sum(axis=(-2, -1)))


def kernel_alignment(K: Any, Y: Any) -> Any:
    """Kernel–target alignment ⟨K, YYᵀ⟩_F / (‖K‖_F ‖YYᵀ‖_F) of a Gram matrix with targets
    Y (n, outputs); 1 when K is a multiple of YYᵀ."""
    xp = array_namespace(K)
    target = Y @ Y.T
    inner = (K * target).sum(axis=(-2, -1))
    return inner / (xp.sqrt((K * K).sum(axis=(-2, -1))) * xp.sqrt((target**2).sum()))
