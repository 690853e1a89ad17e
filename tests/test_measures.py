import numpy as np
import pytest
import scipy.linalg

from gk import measures, tasks


def test_circulant_deviation_zero_on_circulant_positive_on_random():
    column = np.random.default_rng(0).standard_normal(9)
    C = scipy.linalg.circulant(column).T  # C[i, j] = column[j - i]: constant shifted diagonals
    assert measures.circulant_deviation(C) == pytest.approx(0, abs=1e-15)
    random = np.random.default_rng(1).standard_normal((9, 9))
    assert measures.circulant_deviation(random) > 0.1


def test_circulant_deviation_matches_definition_loop():
    A = np.random.default_rng(2).standard_normal((7, 7))
    total = sum(np.var([A[i, (i + j) % 7] for i in range(7)]) for j in range(7))
    assert measures.circulant_deviation(A) == pytest.approx(total / (A**2).sum(), rel=1e-12)
    assert np.isnan(measures.circulant_deviation(np.zeros((3, 3))))
    assert measures.circulant_deviation(np.stack([A, A])).shape == (2,)


@pytest.mark.parametrize("op, combine", [
    ("add", lambda a, b, p: (a - b) % p),
    ("sub", lambda a, b, p: (a + b) % p),
])
def test_feature_block_orders_additive_ops_circulant(op, combine):
    p = 11
    values = np.random.default_rng(3).standard_normal(p)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    M = np.zeros((2 * p, 2 * p))
    M[p:, :p] = values[combine(a, b, p)].T  # C[b, a]
    assert measures.circulant_deviation(measures.feature_block(M, p, op)) < 1e-28
    assert measures.circulant_deviation(M[p:, :p][::-1] if op == "add" else M[p:, :p]) > 0.01


@pytest.mark.parametrize("op, log_combine", [
    ("mul", lambda la, lb, n: (la - lb) % n),
    ("div", lambda la, lb, n: (la + lb) % n),
])
def test_discrete_log_reordering_makes_multiplicative_structure_circulant(op, log_combine):
    p = 13
    _, log, _ = tasks.discrete_log(p)
    values = np.random.default_rng(4).standard_normal(p - 1)
    M = np.zeros((2 * p, 2 * p))
    for a in range(1, p):
        for b in range(1, p):
            M[p + b, a] = values[log_combine(log[a], log[b], p - 1)]
    assert measures.circulant_deviation(measures.feature_block(M, p, op)) < 1e-28
    assert measures.circulant_deviation(M[p + 1:, 1:p]) > 0.01


def test_agop_alignment_is_cosine_similarity():
    generator = np.random.default_rng(5)
    A, B = generator.standard_normal((2, 4, 4))
    expected = (A * B).sum() / np.linalg.norm(A) / np.linalg.norm(B)
    assert measures.agop_alignment(A, B) == pytest.approx(expected)
    assert measures.agop_alignment(np.stack([B, 2 * B]), B) == pytest.approx([1.0, 1.0])


def test_nfm_correlation_is_one_when_w1tw1_is_the_agop_root_by_construction():
    """Identity φ and W2 = W1ᵀ/c give AGOP = c²(W2W1)ᵀ(W2W1) = (W1ᵀW1)², whose root is W1ᵀW1."""
    from gk import mlp

    p, width = 5, 7
    params = mlp.init(p, width, seed=0, activation="identity", outputs=2 * p)
    params.W2[:] = params.W1.T / params.output_scale
    task = tasks.modular("add", p)
    agop = measures.network_agop(params, task.operands())
    gram = params.W1.T @ params.W1
    np.testing.assert_allclose(agop, gram @ gram, rtol=1e-10)
    assert measures.nfm_correlation(params, task.operands()) == pytest.approx(1.0, abs=1e-10)
    random = mlp.init(p, width, seed=[1, 2])
    correlation = measures.nfm_correlation(random, task.operands())
    assert correlation.shape == (2,) and (correlation < 0.99).all()
