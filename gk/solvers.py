"""Kernel systems (K + λI) α = Y solved without forming K, for when K does not fit in memory.

The dense path of :func:`gk.rfm.run` builds the n×n Gram matrix K and factors a copy of it
(:func:`gk.backend.solve_ridge`): 2n² numbers, 16 GiB in float64 at p = 256 with half of
the pairs for training (n = 32,768). The iterative path here needs O(n·(s + k + p)) numbers
and one block of rows of K at a time:

* :func:`kernel_matmul` computes K(X, Z; M) V one block of ``chunk`` rows of K at a time: the
  block is formed by :func:`gk.kernels.gram`, multiplied and discarded. :func:`chunk_rows`
  sizes the blocks so that a block and its temporaries take at most ``chunk_bytes``. The
  quadratic kernel on one-hot pairs skips K altogether
  (:func:`gk.kernels.quadratic_matmul`).
* :func:`block_cg` runs preconditioned block conjugate gradients (O'Leary 1980) on all the
  right-hand sides (the p one-hot columns of Y) at once. The search directions of every step
  span a block Krylov space and are orthonormalised (a QR factorisation), so the p×p systems
  of the method stay positive definite even when columns converge or become dependent.
* :func:`nystrom_preconditioner` builds the preconditioner of Frangella, Tropp & Udell (2023)
  from the top-k eigenpairs U Λ Uᵀ of a Nyström approximation of K on s random landmarks,
  with μ = λ::

      P⁻¹ = (λ_k + μ) U (Λ + μI)⁻¹ Uᵀ + (I − U Uᵀ),

  which brings the top k eigenvalues of K + λI down to about λ_k + λ and leaves the rest.

The kernel matrices of RFM on a + b and a · b mod 61 have about d = 2p large eigenvalues
(directions that depend on one operand only) above a bulk that is well conditioned even when
λ = 0 (condition number 33 to 780 with the quadratic kernel; with the Gaussian kernel about
6 once the top 10% are set aside). Block CG therefore reaches a relative residual of 10⁻⁸ in
at most 20 to 35 steps without any ridge at p = 61 and 97, and the preconditioner (rank 3d/2
from 4d landmarks by default) saves 15–20% of the steps with the quadratic kernel and 30%
with the Gaussian one (``docs/rfm.rst``, "Beyond memory", gives the measurements). Nothing is
added to the diagonal: where K is (numerically) singular and Y has a part outside its range,
no α solves the system; the residual stops falling, :func:`block_cg` warns when it runs out
of steps, and the run records the residual.

References
----------
D. P. O'Leary, "The block conjugate gradient algorithm and related methods", Linear Algebra
Appl. 29 (1980). Z. Frangella, J. A. Tropp, M. Udell, "Randomized Nyström preconditioning",
SIAM J. Matrix Anal. Appl. 44 (2023).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gk import backend
from gk.backend import array_namespace, cholesky_solve
from gk.config import check_choice
from gk.kernels import count_inputs, gram, quadratic_matmul, take_inputs

SOLVERS = ("auto", "cholesky", "cg")
"""``solver=`` of :func:`gk.rfm.run`: dense Cholesky, block CG, or the one that fits."""

TOLERANCE = 1e-8
"""Default relative residual at which :func:`block_cg` stops."""

MAX_ITERATIONS = 300
"""Default most steps of :func:`block_cg`."""

CHUNK_BYTES = 2**28
"""Default memory (256 MiB) of one block of kernel rows and its temporaries."""

MEMORY_FRACTION = 0.5
"""Share of the available memory that ``solver="auto"`` lets the dense path use."""

LANDMARKS_PER_INPUT = 4
RANK_PER_INPUT = 1.5
"""Default preconditioner: s = 4d landmarks and rank k = 3d/2 (d: input dimension)."""

EIGENVALUE_CUTOFF = 1e-10
"""Eigenvalues of the landmark kernel below this share of the largest are dropped."""

LANDMARK_STREAM = 7
"""Stream of :func:`gk.backend.rng` that draws the landmarks: ``rng((seed, 7))``."""


def check_solver(solver: str) -> None:
    """Raise ValueError unless ``solver`` is one of :data:`SOLVERS`."""
    check_choice("solver", solver, SOLVERS)


def chunk_rows(columns: int, itemsize: int = 8, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows of a kernel block with ``columns`` columns that fit in ``chunk_bytes``.

    :func:`gk.kernels.gram` holds the block and one temporary of its size (a column gather
    of pairs, or the distances of the Gaussian and Laplace kernels), so a row costs
    ``2 · columns · itemsize`` bytes.
    """
    return max(1, int(chunk_bytes) // (2 * max(1, columns) * itemsize))


def kernel_matmul(kernel: str, M: Any, X: Any, Z: Any, V: Any, bandwidth: float | None = None,
                  p: int | None = None, chunk: int | None = None,
                  structured: bool = True) -> Any:
    """K(X, Z; M) V, one block of ``chunk`` rows of K at a time (never all of K).

    The quadratic kernel on one-hot pairs (all of Z's different) has a closed form that
    never forms K, :func:`gk.kernels.quadratic_matmul`: O(outputs·d³) operations instead of
    O(n·m·outputs) and no n·m gathers. It is used unless ``structured=False``.

    Parameters
    ----------
    kernel, M, bandwidth, p
        As in :func:`gk.kernels.gram`.
    X, Z : array (n, d), (m, d) or one-hot pairs ``(a, b)``
        Rows and columns of K.
    V : array, shape (m, outputs)
    chunk : int, optional
        Rows of K per block; by default :func:`chunk_rows` of ``CHUNK_BYTES``.
    structured : bool
        Use the closed form where there is one.

    Returns
    -------
    array, shape (n, outputs)
    """
    xp = array_namespace(M, V)
    if structured and kernel == "quadratic" and _distinct_pairs(X, Z, p):
        columns = max(1, CHUNK_BYTES // (3 * M.shape[0] ** 2 * M.dtype.itemsize))
        return quadratic_matmul(M, X, Z, V, p, columns)
    n, m = count_inputs(X), count_inputs(Z)
    chunk = chunk_rows(m, M.dtype.itemsize) if chunk is None else chunk
    product = xp.empty((n, V.shape[1]), dtype=V.dtype)
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        product[rows] = gram(kernel, M, take_inputs(X, rows), Z, bandwidth, p, chunk) @ V
    return product


def _distinct_pairs(X: Any, Z: Any, p: int | None) -> bool:
    """Whether X and Z are one-hot pairs and Z's are all different."""
    if not (isinstance(X, tuple) and isinstance(Z, tuple)):
        return False
    xp = array_namespace(Z[0])
    return int(xp.unique(Z[0] * p + Z[1]).shape[0]) == count_inputs(Z)


@dataclass(frozen=True)
class NystromPreconditioner:
    """P⁻¹ R = R + U ((λ_k + μ)/(Λ + μ) − 1) Uᵀ R (Frangella, Tropp & Udell 2023).

    Attributes
    ----------
    U : array, shape (n, k)
        Orthonormal eigenvectors of the Nyström approximation, largest first.
    eigenvalues : array, shape (k,)
        Λ, decreasing.
    shift : float
        μ, the ridge λ of the system.
    """

    U: Any
    eigenvalues: Any
    shift: float

    @property
    def rank(self) -> int:
        """k, the number of eigenpairs."""
        return int(self.eigenvalues.shape[0])

    def __call__(self, R: Any) -> Any:
        """P⁻¹ R for a block R (n, columns)."""
        scale = (self.eigenvalues[-1] + self.shift) / (self.eigenvalues + self.shift) - 1
        return R + self.U @ (scale[:, None] * (self.U.T @ R))


def preconditioner_size(n: int, d: int, landmarks: int | None = None,
                      rank: int | None = None) -> tuple[int, int]:
    """(s, k): landmarks and rank of the preconditioner, 4d and 3d/2 unless given.

    s is at most n and k at most s/2 (the smallest Nyström eigenvalues are the least
    accurate).
    """
    s = LANDMARKS_PER_INPUT * d if landmarks is None else int(landmarks)
    s = min(n, s)
    k = int(RANK_PER_INPUT * d) if rank is None else int(rank)
    return s, min(k, s // 2)


def nystrom_preconditioner(kernel: str, M: Any, X: Any, bandwidth: float | None = None,
                           p: int | None = None, ridge: float = 0.0,
                           landmarks: int | None = None, rank: int | None = None,
                           seed: int = 0, chunk: int | None = None
                           ) -> NystromPreconditioner | None:
    """The Nyström preconditioner of K(X, X; M) + λI from s random landmarks.

    With C = K(X, X_s) (n×s), W = K(X_s, X_s) = V Θ Vᵀ and T = V Θ^{-1/2} (eigenvalues below
    ``EIGENVALUE_CUTOFF`` of the largest dropped), K ≈ (CT)(CT)ᵀ. The eigenpairs of
    Tᵀ CᵀC T = Q Σ Qᵀ give U = C T Q Σ^{-1/2} (orthonormal) and Λ = Σ; the top k are kept.
    Memory: C (n×s) and U (n×k); cost O(n·s² + s³).

    Parameters
    ----------
    kernel, M, X, bandwidth, p
        As in :func:`gk.kernels.gram`.
    ridge : float
        λ ≥ 0, the shift μ of the preconditioner.
    landmarks, rank : int, optional
        s and k (:func:`preconditioner_size`); ``rank=0`` gives no preconditioner (None).
    seed : int
        Draws the landmarks, uniformly without replacement, from ``rng((seed, 7))``.
    chunk : int, optional
        Rows of C per block of :func:`gk.kernels.gram`; by default :func:`chunk_rows`.
    """
    xp = array_namespace(M)
    n = count_inputs(X)
    s, k = preconditioner_size(n, M.shape[0], landmarks, rank)
    if k < 1:
        return None
    chosen = np.sort(backend.rng((int(seed), LANDMARK_STREAM)).choice(n, s, replace=False))
    chosen = xp.asarray(chosen)
    C = gram(kernel, M, X, take_inputs(X, chosen), bandwidth, p,
             chunk_rows(s, M.dtype.itemsize) if chunk is None else chunk)
    W = C[chosen]
    theta, V = xp.linalg.eigh((W + W.T) / 2)
    keep = theta > EIGENVALUE_CUTOFF * theta[-1]
    T = V[:, keep] / xp.sqrt(theta[keep])
    inner = T.T @ (C.T @ C) @ T
    sigma, Q = xp.linalg.eigh((inner + inner.T) / 2)
    sigma, Q = sigma[::-1][:k], Q[:, ::-1][:, :k]                      # largest first
    positive = sigma > EIGENVALUE_CUTOFF * sigma[0]
    sigma, Q = sigma[positive], Q[:, positive]
    U = C @ (T @ (Q / xp.sqrt(sigma)))
    return NystromPreconditioner(U, sigma, float(ridge))


@dataclass(frozen=True)
class CGResult:
    """What :func:`block_cg` found.

    Attributes
    ----------
    alpha : array, shape (n, outputs)
        The solution α.
    fitted : array, shape (n, outputs)
        K α, from one last product (the predictions on the training inputs).
    iterations : int
        Steps taken (each one product of K with an n×outputs block).
    residual : float
        :func:`relative_residual` of α, from ``fitted`` (not from the recurrence).
    converged : bool
        Whether the recurrence residual reached the tolerance within the steps allowed.
    """

    alpha: Any
    fitted: Any
    iterations: int
    residual: float
    converged: bool


def relative_residual(fitted: Any, alpha: Any, Y: Any, ridge: float = 0.0) -> float:
    """max over columns c of ‖K α_c + λ α_c − y_c‖ / ‖y_c‖, given ``fitted`` = K α.

    Columns of Y that are zero count by their absolute residual.
    """
    return _max_relative(Y - fitted - ridge * alpha, _column_scale(Y))


def _column_scale(Y: Any) -> Any:
    xp = array_namespace(Y)
    norms = xp.linalg.norm(Y, axis=0)
    return xp.where(norms > 0, norms, 1)


def _max_relative(R: Any, scale: Any) -> float:
    xp = array_namespace(R)
    return float((xp.linalg.norm(R, axis=0) / scale).max()) if R.shape[1] else 0.0


def _orthonormal(block: Any) -> Any:
    return array_namespace(block).linalg.qr(block)[0]


def _positive_solve(A: Any, B: Any) -> Any:
    return cholesky_solve((A + A.T) / 2, B)


def block_cg(matmul: Callable[[Any], Any], Y: Any, ridge: float = 0.0,
             preconditioner: Callable[[Any], Any] | None = None, tol: float = TOLERANCE,
             max_iterations: int = MAX_ITERATIONS) -> CGResult:
    """Solve (K + λI) α = Y for all columns of Y at once by preconditioned block CG.

    Each step takes P (n×c, orthonormal), Q = (K + λI) P, and solves the c×c systems
    (PᵀQ) a = PᵀR and (PᵀQ) b = QᵀZ by Cholesky: α ← α + P a, R ← R − Q a, Z = P⁻¹R, and the
    next P = orth(Z − P b) (O'Leary 1980, with orthonormalised directions). It stops when
    :func:`relative_residual` of the recurrence R reaches ``tol`` or after ``max_iterations``.

    Parameters
    ----------
    matmul : callable
        V ↦ K V for an (n, c) block V; K symmetric positive (semi-)definite.
    Y : array, shape (n, c)
    ridge : float
        λ ≥ 0.
    preconditioner : callable, optional
        R ↦ P⁻¹ R, symmetric positive definite (e.g. :class:`NystromPreconditioner`).

    Returns
    -------
    CGResult

    Warns
    -----
    RuntimeWarning
        If the tolerance was not reached within ``max_iterations`` steps.
    """
    precondition = preconditioner if preconditioner is not None else (lambda R: R)
    alpha, R, scale = array_namespace(Y).zeros_like(Y), Y.copy(), _column_scale(Y)
    iterations, residual = 0, _max_relative(R, scale)
    if residual > tol:
        P = _orthonormal(precondition(R))
    while residual > tol and iterations < max_iterations:
        Q = matmul(P) + ridge * P
        PQ = P.T @ Q
        step = _positive_solve(PQ, P.T @ R)
        alpha += P @ step
        R -= Q @ step
        iterations, residual = iterations + 1, _max_relative(R, scale)
        if residual > tol and iterations < max_iterations:
            Z = precondition(R)
            P = _orthonormal(Z - P @ _positive_solve(PQ, Q.T @ Z))
    fitted = matmul(alpha)
    result = CGResult(alpha, fitted, iterations, relative_residual(fitted, alpha, Y, ridge),
                      residual <= tol)
    if not result.converged:
        warnings.warn(f"block CG stopped after max_iterations={max_iterations} steps at a "
                      f"relative residual of {result.residual:.3g} > tol={tol:g}",
                      RuntimeWarning, stacklevel=2)
    return result


def solve_kernel_system(kernel: str, M: Any, X: Any, Y: Any, ridge: float = 0.0,
                        bandwidth: float | None = None, p: int | None = None, *,
                        tol: float = TOLERANCE, max_iterations: int = MAX_ITERATIONS,
                        landmarks: int | None = None, rank: int | None = None, seed: int = 0,
                        chunk: int | None = None) -> CGResult:
    """Solve (K(X, X; M) + λI) α = Y by :func:`block_cg` with the Nyström preconditioner.

    Memory beyond the inputs: one block of kernel rows (``chunk``, by default
    :data:`CHUNK_BYTES`), the preconditioner (n×(s + k)) and a few n×outputs blocks; see
    :func:`memory_estimate`. Parameters are those of :func:`kernel_matmul`,
    :func:`nystrom_preconditioner` and :func:`block_cg`.
    """
    preconditioner = nystrom_preconditioner(kernel, M, X, bandwidth, p, ridge, landmarks,
                                            rank, seed, chunk)

    def matmul(V: Any) -> Any:
        return kernel_matmul(kernel, M, X, X, V, bandwidth, p, chunk)

    return block_cg(matmul, Y, ridge, preconditioner, tol, max_iterations)


def memory_estimate(n: int, d: int, outputs: int, n_test: int = 0, dtype: Any = "float64",
                    solver: str = "cholesky", chunk_bytes: int = CHUNK_BYTES,
                    landmarks: int | None = None, rank: int | None = None) -> int:
    """Bytes at the peak of one kernel solve and its predictions, by ``solver``.

    Common to both: the feature matrix and its products (8 d²), dense inputs (n·d, as the
    AGOP's second moments use), targets, coefficients and predictions (about 3(n + n_test)
    outputs) and one block of kernel rows (``chunk_bytes``, or less where all rows take
    less).

    ``"cholesky"`` (:func:`gk.backend.solve_ridge`) adds K and the copy it factors, 2n².
    ``"cg"`` adds the preconditioner while it is built (C, n×s, and U, n×k, and 4 s×s
    matrices) and the blocks of :func:`block_cg` (6 n×outputs).

    Parameters
    ----------
    n, n_test : int
        Training and test inputs.
    d, outputs : int
        Input dimension (2p) and columns of Y (p).
    dtype : {"float64", "float32"}
    solver : {"cholesky", "cg"}
    chunk_bytes, landmarks, rank
        As in :func:`chunk_rows` and :func:`preconditioner_size`.

    Returns
    -------
    int
        Bytes; the interpreter and the imported libraries come on top (about 0.2 GiB).
    """
    check_choice("solver", solver, SOLVERS[1:])
    itemsize = backend.check_dtype(dtype).itemsize
    common = 8 * d * d + n * d + 3 * (n + n_test) * outputs
    block = min(chunk_bytes, 2 * itemsize * n * max(n, n_test))
    if solver == "cholesky":
        return itemsize * (common + 2 * n * n) + block
    s, k = preconditioner_size(n, d, landmarks, rank)
    return itemsize * (common + n * (s + k) + 4 * s * s + 6 * n * outputs) + block


def choose_solver(solver: str, n: int, d: int, outputs: int, n_test: int = 0,
                  dtype: Any = "float64", memory_gb: float | None = None) -> str:
    """The solver that ``solver`` means: ``"auto"`` becomes ``"cholesky"`` when the dense
    path's :func:`memory_estimate` fits the budget, ``"cg"`` otherwise.

    The budget is ``memory_gb`` GiB, or :data:`MEMORY_FRACTION` of
    :func:`gk.backend.available_memory` when it is None.
    """
    check_solver(solver)
    if solver != "auto":
        return solver
    if memory_gb is None:
        budget = MEMORY_FRACTION * backend.available_memory()
    else:
        budget = memory_gb * 2**30
    dense = memory_estimate(n, d, outputs, n_test, dtype, "cholesky")
    return "cholesky" if dense <= budget else "cg"
