"""CPU loops that array operations cannot express efficiently, compiled with numba.

A scatter-add with repeated indices (the gradient of a gather) is such a loop: ``np.add.at``
is an order of magnitude slower, and a product with a one-hot matrix wastes a factor of the
number of rows. The network's hidden layer is another: gathering W1's columns, adding them
and applying φ in one pass over each row (and, backwards, multiplying by φ′ and
scatter-adding in one pass) reads and writes each (n, N) array once instead of four times.

Every loop here runs on one thread: it is bound by memory traffic, and numba's worker
threads would fight the BLAS threads of the matrix products around it (measured: 200×
slower on 2 cores).
"""

import numba
import numpy as np

FUSED_ACTIVATIONS = {"quadratic": 0, "relu": 1, "identity": 2}
"""Activations whose φ and φ′ the fused loops apply, by code. tanh and GELU are left to
NumPy, whose vectorised transcendental functions are ~10× faster than numba's scalar ones."""


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


@numba.njit(cache=True, nogil=True)
def _hidden_layer(W1T, columns, code, h, z):
    operands, models, samples = columns.shape
    width = W1T.shape[2]
    for m in range(models):
        for i in range(samples):
            row, features = h[m, i], z[m, i]
            first = W1T[m, columns[0, m, i]]
            for k in range(width):
                row[k] = first[k]
            for j in range(1, operands):
                other = W1T[m, columns[j, m, i]]
                for k in range(width):
                    row[k] += other[k]
            if code == 0:
                for k in range(width):
                    features[k] = row[k] * row[k]
            elif code == 1:
                for k in range(width):
                    features[k] = row[k] if row[k] > 0 else 0
            else:
                for k in range(width):
                    features[k] = row[k]


@numba.njit(cache=True, nogil=True)
def _hidden_layer_gradient(dz, h, columns, code, dW1T):
    operands, models, samples = columns.shape
    width = h.shape[2]
    dh = np.empty(width, dtype=dW1T.dtype)
    for m in range(models):
        for i in range(samples):
            row, gradient = h[m, i], dz[m, i]
            if code == 0:
                for k in range(width):
                    dh[k] = gradient[k] * (2 * row[k])
            elif code == 1:
                for k in range(width):
                    dh[k] = gradient[k] if row[k] > 0 else 0
            else:
                for k in range(width):
                    dh[k] = gradient[k]
            for j in range(operands):
                target = dW1T[m, columns[j, m, i]]
                for k in range(width):
                    target[k] += dh[k]


def hidden_layer_cpu(W1T: np.ndarray, columns: np.ndarray, activation: str,
                     h: np.ndarray, z: np.ndarray) -> None:
    """Fill h = Σ_j W1ᵀ[columns[j]] and z = φ(h), (M, n, N), in one pass per row.

    ``W1T`` is (M, inputs, N) and ``columns`` (k, M, n), the W1 column each operand selects.
    """
    _hidden_layer(W1T, columns, FUSED_ACTIVATIONS[activation], h, z)


def hidden_layer_gradient_cpu(dz: np.ndarray, h: np.ndarray, columns: np.ndarray,
                              activation: str, dW1T: np.ndarray) -> None:
    """Add ∂L/∂h = ∂L/∂z ⊙ φ′(h) into the rows of ``dW1T`` (M, inputs, N) that each operand
    selected, without forming ∂L/∂h."""
    _hidden_layer_gradient(dz, h, columns, FUSED_ACTIVATIONS[activation], dW1T)


@numba.njit(cache=True, nogil=True)
def _weighted_class_loss(f, labels, weights, scale, cross_entropy, total):
    models, samples, outputs = f.shape
    for m in range(models):
        loss = 0.0
        for i in range(samples):
            row, label = f[m, i], labels[m, i]
            if cross_entropy:  # ℓ = log Σ_k exp(f_k − f_max) − (f_c − f_max)
                largest = row.max()
                correct = row[label] - largest
                normaliser = 0.0
                for k in range(outputs):
                    row[k] = np.exp(row[k] - largest)
                    normaliser += row[k]
                loss += weights[m, i] * (np.log(normaliser) - correct)
                for k in range(outputs):
                    row[k] /= normaliser
                row[label] -= 1
            else:
                row[label] -= 1
                squares = 0.0
                for k in range(outputs):
                    squares += row[k] * row[k]
                loss += weights[m, i] * 0.5 * squares
            gradient_weight = weights[m, i] * scale
            for k in range(outputs):
                row[k] *= gradient_weight
        total[m] = loss


def weighted_class_loss_cpu(f: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                            scale: float, loss: str) -> np.ndarray:
    """L = Σ_i w_i ℓ_i per model (M,), accumulated in float64, for class labels (M, n);
    overwrites f (M, n, outputs) with scale · w_i · ∂ℓ_i/∂f_i (see gk.losses)."""
    total = np.empty(f.shape[0])
    _weighted_class_loss(f, labels.astype(np.int64, copy=False), weights, scale,
                         loss == "cross_entropy", total)
    return total
