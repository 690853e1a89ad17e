"""The array namespace gk computes with: NumPy on the CPU or CuPy on a GPU.

``GK_BACKEND=numpy|cupy`` (default ``numpy``) decides where *new* arrays are made.
Functions that receive arrays work out the namespace from the arrays themselves
(:func:`array_namespace`), so a CuPy array stays on its device whatever the variable says.

Random numbers are always drawn on the host from NumPy's PCG64 generator and then moved to
the backend, so a seed gives the same numbers on the CPU and on a GPU.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np
import scipy.linalg

BACKENDS = ("numpy", "cupy")
DTYPES = ("float64", "float32")

_cupy: ModuleType | None = None


def backend_name() -> str:
    """Return the backend named by ``GK_BACKEND`` (``"numpy"`` when unset).

    Raises
    ------
    ValueError
        If ``GK_BACKEND`` names anything other than ``numpy`` or ``cupy``.
    RuntimeError
        If ``GK_BACKEND=cupy`` but CuPy cannot be imported or sees no GPU.
    """
    name = os.environ.get("GK_BACKEND", "numpy").strip().lower() or "numpy"
    if name not in BACKENDS:
        raise ValueError(
            f"GK_BACKEND={os.environ['GK_BACKEND']!r} is not a backend; allowed: numpy, cupy"
        )
    if name == "cupy":
        _load_cupy()
    return name


def _load_cupy() -> ModuleType:
    """Import CuPy and check that a device exists; never fall back silently."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError:
        raise RuntimeError(
            "GK_BACKEND=cupy but CuPy is not installed: pip install -e '.[cuda]', "
            "or unset GK_BACKEND to compute with NumPy"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken
        raise RuntimeError(f"GK_BACKEND=cupy but CUDA reports no usable GPU: {error}") from None
    if count < 1:
        raise RuntimeError("GK_BACKEND=cupy but CUDA reports no GPU on this machine")
    _cupy = cupy
    return cupy


def namespace() -> ModuleType:
    """Return the module (``numpy`` or ``cupy``) in which new arrays are made."""
    return _load_cupy() if backend_name() == "cupy" else np


def array_namespace(*arrays: Any) -> ModuleType:
    """Return ``cupy`` if any of ``arrays`` is a CuPy array, else ``numpy``."""
    for array in arrays:
        if type(array).__module__.startswith("cupy"):
            return _load_cupy()
    return np


def device_name() -> str:
    """Describe the device new arrays live on, e.g. ``"cpu"`` or ``"cuda:0 NVIDIA H100"``."""
    if backend_name() != "cupy":
        return "cpu"
    cupy = _load_cupy()
    device = cupy.cuda.Device()
    name = cupy.cuda.runtime.getDeviceProperties(device.id)["name"]
    return f"cuda:{device.id} {name.decode() if isinstance(name, bytes) else name}"


def check_dtype(dtype: Any) -> np.dtype:
    """Return ``dtype`` as a NumPy dtype, accepting only float64 and float32."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; allowed: 'float64', 'float32'")
    return resolved


def asarray(values: Any, dtype: Any = None) -> Any:
    """Copy host data onto the backend (a no-op for arrays already there)."""
    return namespace().asarray(values, dtype=dtype)


def to_numpy(array: Any) -> np.ndarray:
    """Return ``array`` as a NumPy array, copying it from the GPU if needed."""
    if type(array).__module__.startswith("cupy"):
        return array.get()
    return np.asarray(array)


def rng(seed: int | tuple[int, ...] | list[int]) -> np.random.Generator:
    """A NumPy PCG64 generator: the same seed gives the same numbers on every backend.

    ``seed`` may be a tuple, e.g. ``(seed, stream)``, to draw independent streams
    (initialisation, split, minibatches) from one user seed.
    """
    return np.random.default_rng(seed)


def standard_normal(generator: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> Any:
    """Draw N(0, 1) numbers in float64 on the host and move them to the backend as ``dtype``."""
    return asarray(generator.standard_normal(shape), dtype=check_dtype(dtype))


def erf(x: Any) -> Any:
    """The error function on either backend."""
    if array_namespace(x) is np:
        import scipy.special

        return scipy.special.erf(x)
    import cupyx.scipy.special

    return cupyx.scipy.special.erf(x)


def cholesky_solve(A: Any, B: Any, overwrite: bool = False) -> Any:
    """Solve ``A X = B`` for symmetric positive-definite ``A`` by a Cholesky factorisation.

    With ``overwrite=True`` the factor may replace ``A`` in memory (no n×n copy on NumPy).

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``A`` is not positive definite (on both backends; CuPy would otherwise return NaN).
    """
    xp = array_namespace(A, B)
    if xp is np:
        # A is symmetric, so its transpose (Fortran order for a C array) is the same matrix
        # and LAPACK can factor it in place.
        factor = scipy.linalg.cho_factor(A.T, lower=True, overwrite_a=overwrite,
                                         check_finite=False)
        return scipy.linalg.cho_solve(factor, B, check_finite=False)
    import cupyx
    import cupyx.scipy.linalg

    with cupyx.errstate(linalg="raise"):
        L = xp.linalg.cholesky(A)
    Y = cupyx.scipy.linalg.solve_triangular(L, B, lower=True)
    return cupyx.scipy.linalg.solve_triangular(L, Y, lower=True, trans="T")


JITTER_START = 1e-12
JITTER_STOP = 1e-3


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
    diagonal = xp.arange(K.shape[0])
    epsilon = 0.0
    while True:
        system = K.copy()  # the one n×n copy: the factorisation overwrites it
        system[diagonal, diagonal] += ridge + epsilon * scale
        try:
            return cholesky_solve(system, Y, overwrite=True), epsilon
        except np.linalg.LinAlgError:
            if epsilon >= JITTER_STOP:
                raise
            epsilon = JITTER_START if epsilon == 0 else epsilon * 10


def psd_power(A: Any, power: float) -> Any:
    """Return ``A**power`` for a symmetric positive semi-definite ``A`` (..., k, k) via
    ``eigh``, over any leading axes.

    Eigenvalues below zero (round-off) are clipped to zero before taking the power.
    """
    xp = array_namespace(A)
    eigenvalues, eigenvectors = xp.linalg.eigh((A + xp.swapaxes(A, -1, -2)) / 2)
    eigenvalues = xp.clip(eigenvalues, 0, None) ** power
    return (eigenvectors * eigenvalues[..., None, :]) @ xp.swapaxes(eigenvectors, -1, -2)


def scatter_add_rows(target: Any, rows: Any, values: Any) -> None:
    """Add ``values[m, i]`` into ``target[m, rows[m, i]]`` in place, repeated rows included.

    This is the gradient of a row gather ``target[m, rows[m, i]]``; it replaces a product
    with a one-hot matrix. Shapes: ``target (M, R, N)``, ``rows (M, n)``, ``values (M, n, N)``.
    """
    xp = array_namespace(target)
    if xp is np:
        from gk._kernels import scatter_add_rows_cpu

        scatter_add_rows_cpu(target, rows, values)
        return
    import cupyx

    models = xp.arange(target.shape[0])[:, None]
    cupyx.scatter_add(target, (models, rows), values)


def available_memory(xp: Any = None) -> int:
    """Bytes that new arrays of the namespace ``xp`` may still take.

    On the CPU, ``MemAvailable`` of /proc/meminfo (free physical pages where there is none);
    on a GPU, the device's free memory plus the blocks CuPy's pool holds unused.
    """
    xp = namespace() if xp is None else xp
    if xp is not np:
        return int(xp.cuda.Device().mem_info[0] + xp.get_default_memory_pool().free_bytes())
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")

