"""Thread settings of a benchmark process (standard library only).

OpenBLAS, MKL, OpenMP and numba read their thread counts once, when they load, so the
variables must be set before NumPy is imported: the entry point re-executes itself with them
set, and every worker process it starts gets them in its environment.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def all_threads() -> int:
    """The number of cores in this process's affinity mask (all cores where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                         # not Linux
        return os.cpu_count() or 1


def thread_env(threads: int, **extra: str) -> dict[str, str]:
    """A copy of the environment with every thread variable set to ``threads``."""
    return {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}, **extra}


def threads_fixed(threads: int) -> bool:
    """True if every thread variable of this process already says ``threads``."""
    return all(os.environ.get(name) == str(threads) for name in THREAD_VARIABLES)
