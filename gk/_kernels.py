"""CPU loops that array operations cannot express efficiently, compiled with numba.

A scatter-add with repeated indices (the gradient of a gather) is such a loop: ``np.add.at``
is an order of magnitude slower, and a product with a one-hot matrix wastes a factor of the
number of rows.
"""

import numba
import numpy as np


# One thread: the loop is bound by memory traffic, and numba's worker threads would fight
# the BLAS threads of the matrix products around it (measured: 200x slower on 2 cores).
@numba.njit(cache=True, nogil=True)
def _scatter_add_rows(target, rows, values):
    models, samples = rows.shape
    for m in range(models):
        for i in range(samples):
            target[m, rows[m, i], :] += values[m, i, :]


def scatter_add_rows_cpu(target: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``target[m, rows[m, i]] += values[m, i]`` for NumPy arrays (see gk.backend)."""
    _scatter_add_rows(target, np.ascontiguousarray(rows, dtype=np.int64),
                      np.ascontiguousarray(values, dtype=target.dtype))
