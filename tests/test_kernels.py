import numpy as np
import pytest

from gk import kernels, tasks


def _random_psd(d, seed=0):
    R = np.random.default_rng(seed).standard_normal((d, d))
    return R @ R.T / d


def _direct(kernel, M, X, Z, L):
    """k(x_i, z_j) by the defining formula, one pair at a time."""
    K = np.zeros((len(X), len(Z)))
    for i, x in enumerate(X):
        for j, z in enumerate(Z):
            if kernel == "quadratic":
                K[i, j] = (x @ M @ z) ** 2
            else:
                d2 = (x - z) @ M @ (x - z)
                K[i, j] = np.exp(-d2 / L) if kernel == "gaussian" else np.exp(-np.sqrt(d2) / L)
    return K


@pytest.mark.parametrize("kernel", kernels.KERNELS)
def test_gram_matches_direct_formula_dense_and_pairs(kernel):
    p = 6
    task = tasks.modular("add", p)
    rows, cols = np.arange(0, 36, 3), np.arange(1, 36, 5)
    X, Z = task.one_hot_inputs(rows), task.one_hot_inputs(cols)
    M = _random_psd(2 * p)
    L = kernels.DEFAULT_BANDWIDTH[kernel]
    expected = _direct(kernel, M, X, Z, L)
    dense = kernels.gram(kernel, M, X, Z, L)
    pairs = kernels.gram(kernel, M, (task.a[rows], task.b[rows]), (task.a[cols], task.b[cols]),
                         L, p, chunk=5)
    np.testing.assert_allclose(dense, expected, rtol=1e-12)
    np.testing.assert_allclose(pairs, expected, rtol=1e-12)


@pytest.mark.parametrize("kernel", kernels.KERNELS)
def test_gradient_weights_match_finite_differences(kernel):
    generator = np.random.default_rng(1)
    d = 5
    M = _random_psd(d, 2)
    x, z = generator.standard_normal(d), generator.standard_normal(d)
    L = kernels.DEFAULT_BANDWIDTH[kernel]
    parts = kernels.inner_products(M, x[None], z[None])
    K = kernels.from_inner_products(kernel, *parts, L)
    beta, gamma = kernels.gradient_weights(kernel, K, *parts, L)
    analytic = M @ (beta[0, 0] * z + (0 if gamma is None else gamma[0, 0]) * x)
    numeric = np.zeros(d)
    for k in range(d):
        step = np.zeros(d)
        step[k] = 1e-6
        up = kernels.from_inner_products(kernel, *kernels.inner_products(M, (x + step)[None],
                                                                          z[None]), L)
        down = kernels.from_inner_products(kernel, *kernels.inner_products(M, (x - step)[None],
                                                                            z[None]), L)
        numeric[k] = (up - down)[0, 0] / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_unknown_kernel_refused():
    with pytest.raises(ValueError, match="kernel='polynomial'"):
        kernels.gram("polynomial", np.eye(2), np.ones((1, 2)), np.ones((1, 2)))
