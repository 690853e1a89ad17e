import numpy as np
import pytest

from gk import mlp, ntk, tasks
from gk.mlp.model import ACTIVATIONS


def _jacobian(params, X):
    """∂f_k(x)/∂θ built entry by entry from the definition f = c W2 φ(W1 x)."""
    phi, dphi = ACTIVATIONS[params.activation]
    N, d = params.W1.shape
    p = params.p
    c = params.output_scale
    J = np.zeros((len(X), p, N * d + p * N))
    for s, x in enumerate(X):
        h = params.W1 @ x
        for k in range(p):
            for i in range(N):
                for j in range(d):
                    J[s, k, i * d + j] = c * params.W2[k, i] * dphi(h[i]) * x[j]
                J[s, k, N * d + k * N + i] = c * phi(h[i])
    return J


def _small(activation="quadratic", p=5, width=6, seed=0):
    params = mlp.init(p, width, seed=seed, activation=activation, init_scale=0.8)
    task = tasks.modular("add", p)
    rows = np.arange(0, task.size, 3)
    return params, task, rows


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_closed_form_equals_jacobian_product_for_every_kind(activation):
    params, task, rows = _small(activation)
    X = task.one_hot_inputs(rows)
    J = _jacobian(params, X)
    full = np.einsum("akt,blt->abkl", J, J)
    scale = np.abs(full).max()
    pairs = (task.a[rows], task.b[rows])
    for x in (X, pairs):
        assert np.abs(ntk.gram(params, x, kind="full") - full).max() <= 1e-10 * scale
        trace = np.einsum("abkk->ab", full)
        assert np.abs(ntk.gram(params, x, kind="trace", chunk=4) - trace).max() <= 1e-10 * scale
        block = ntk.gram(params, x, kind="block", outputs=(1, 3))
        assert np.abs(block - full[:, :, 1, 3]).max() <= 1e-10 * scale
    v = np.random.default_rng(1).standard_normal((len(rows), params.p))
    dense = np.einsum("abkl,bl->ak", full, v)
    for x in (X, pairs):
        assert np.abs(ntk.matvec(params, x, v) - dense).max() <= 1e-10 * np.abs(dense).max()


@pytest.mark.parametrize("activation", ["quadratic", "relu"])
def test_regression_network_on_triples_equals_jacobian_product(activation):
    """Seed 002's f = V (W x)^2 (c = 1, one output) on one-hot triples."""
    p = 4
    params = mlp.init(p, 5, seed=2, activation=activation, operands=3, outputs=1,
                      parametrisation="standard")
    task = tasks.triples(p)
    rows = np.arange(0, task.size, 5)
    X = task.one_hot_inputs(rows)
    J = _jacobian(params, X)[:, 0]
    expected = J @ J.T
    scale = np.abs(expected).max()
    for x in (X, task.operands(rows)):
        assert np.abs(ntk.gram(params, x) - expected).max() <= 1e-10 * scale
        assert np.abs(ntk.gram(params, x, kind="full")[:, :, 0, 0] - expected).max() <= (
            1e-10 * scale)
        v = np.random.default_rng(0).standard_normal((len(rows), 1))
        assert np.abs(ntk.matvec(params, x, v) - expected @ v).max() <= (
            1e-10 * np.abs(expected @ v).max())


def test_ntk_agrees_with_backward_pass_jacobian():
    """Rows of the Jacobian from gk.mlp.backward (an independent code path)."""
    params, task, rows = _small("gelu")
    batch = params.as_batch()
    a, b = task.a[rows][None], task.b[rows][None]
    _, cache = mlp.forward(batch, a, b)
    columns = []
    for s in range(len(rows)):
        for k in range(params.p):
            G = np.zeros((1, len(rows), params.p))
            G[0, s, k] = 1
            grads = mlp.backward(batch, cache, G)
            columns.append(np.concatenate([grads["W1"].ravel(), grads["W2"].ravel()]))
    J = np.array(columns)
    expected = (J @ J.T).reshape(len(rows), params.p, len(rows), params.p).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(ntk.gram(params, (task.a[rows], task.b[rows]), kind="full"),
                               expected, rtol=1e-10, atol=1e-12)


def test_gram_is_symmetric_positive_semidefinite():
    params, task, rows = _small("relu", p=7, width=16)
    K = ntk.gram(params, (task.a, task.b))
    np.testing.assert_allclose(K, K.T, rtol=1e-12)
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()


def test_quadratic_ntk_at_init_has_the_derived_mean():
    """E[Θ_kk(x, x′)] = (4/N)(4 + 6s²), s = x·x′, for W ~ N(0, 1) and φ = z².

    First term: c² Σ_i E[h_i² h′_i²] with (h, h′) Gaussian of variances 2, 2 and covariance s:
    E = 4 + 2s², so c²·N·(4 + 2s²). Second: c² s Σ_i E[W2²] E[4 h h′] = c²·N·4s² (s·4s).
    Sum: (4/N²)·N·(4 + 6s²) = (4/N)(4 + 6s²).
    """
    p, width = 5, 64
    task = tasks.modular("add", p)
    pairs = (np.array([0, 0, 0]), np.array([0, 0, 1]))       # (0,0) against (0,0), (0,1)
    x2 = (np.array([0, 1, 2]), np.array([0, 0, 3]))           # s = 2, 1, 0
    values = np.array([np.diagonal(ntk.gram(mlp.init(p, width, seed=s), pairs, x2, "block"))
                       for s in range(400)])
    expected = (4 / width) * (4 + 6 * np.array([2.0, 1.0, 0.0]) ** 2)
    np.testing.assert_allclose(values.mean(axis=0), expected, rtol=0.05)
    del task


def test_bad_input_is_refused():
    params, task, rows = _small()
    with pytest.raises(ValueError, match="kind='diag'"):
        ntk.gram(params, task.one_hot_inputs(rows), kind="diag")
    with pytest.raises(ValueError, match="expected"):
        ntk.gram(params, np.ones((3, 4)))
    with pytest.raises(ValueError, match="neurons"):
        ntk.gram(mlp.Params(params.W1, params.W2[:, :3]), task.one_hot_inputs(rows))
    big = (np.zeros(3000, dtype=int), np.zeros(3000, dtype=int))
    with pytest.raises(ValueError, match="use kind='trace' or matvec"):
        ntk.gram(mlp.init(97, 8), big, kind="full")


def test_training_logs_ntk_distance_and_alignment_on_a_probe():
    ds = mlp.train(p=11, width=16, steps=40, lr=1.0, log_every=5, measure_every=20,
                   measures=["ntk_distance", "ntk_alignment"], snapshot_every=20, ntk_probe=30,
                   seed=[0, 1])
    measured = ds.ntk_distance.dropna("step", how="all")
    assert measured.step.values.tolist() == [0, 20, 40]
    assert np.isnan(ds.ntk_distance.sel(step=5)).all()
    assert (measured.sel(step=0) == 0).all() and (measured.sel(step=40) > 0).all()
    task = tasks.modular("add", 11)
    order = np.random.default_rng((0, 5)).permutation(task.size)[:30]
    probe = (task.a[order], task.b[order])
    params = mlp.load_params(ds, step=40).model(1)
    start = mlp.load_params(ds, step=0).model(1)
    K, K0 = ntk.gram(params, probe), ntk.gram(start, probe)
    expected = np.linalg.norm(K - K0) / np.linalg.norm(K0)
    assert float(ds.ntk_distance.sel(step=40)[1]) == pytest.approx(expected, rel=1e-10)
    Y = task.one_hot_targets(order)
    alignment = (K * (Y @ Y.T)).sum() / np.linalg.norm(K) / np.linalg.norm(Y @ Y.T)
    assert float(ds.ntk_alignment.sel(step=40)[1]) == pytest.approx(alignment, rel=1e-10)


@pytest.mark.parametrize("options, match", [
    (dict(measures=["ntk_distance"], measure_every=7, log_every=5), "multiple of log_every"),
    (dict(measures=["ntk_distance"], ntk_probe=500), "larger than the task"),
])
def test_training_refuses_bad_ntk_options(options, match):
    with pytest.raises(ValueError, match=match):
        mlp.train(**{"p": 11, "width": 8, "steps": 5, "log_every": 5, **options})


def test_ntk_regression_fits_all_training_pairs_but_does_not_generalise():
    p = 23
    task = tasks.modular("add", p)
    result = ntk.regression(mlp.init(p, 256, seed=0), task, task.split(0.9, 0))
    assert result["train_acc"] == 1.0
    assert result["test_acc"] < 0.2        # the lazy predictor: no grokking (seed 002)


def test_ntk_regression_on_triples_fits_its_training_triples():
    """Below the rank bound 3p² + 3p of the quadratic kernel (p = 7: 168 > 103 triples)."""
    p = 7
    task = tasks.triples(p)
    params = mlp.init(p, 8 * p, seed=0, operands=3, outputs=1, parametrisation="standard")
    result = ntk.regression(params, task, task.split(0.3, 0))
    assert result["train_acc"] == 1.0 and result["jitter"] == 0.0
    assert 0 < result["test_acc"] < 1


def test_gram_of_run_is_the_gram_of_the_saved_weights_on_the_chosen_examples():
    ds = mlp.train(p=11, width=16, lr=1.0, steps=20, seed=[0, 1], snapshot_every=10)
    gram = ntk.gram_of_run(ds, step=10, model=1, inputs="test", limit=12)
    rows = np.flatnonzero(~ds.is_train.values[1])[:12]
    params = mlp.load_params(ds, step=10).model(1)
    expected = ntk.gram(params, (ds.a.values[rows], ds.b.values[rows]))
    np.testing.assert_array_equal(gram.pair.values, rows)
    np.testing.assert_allclose(gram.ntk.values, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="inputs='val'"):
        ntk.gram_of_run(ds, inputs="val")


def test_gram_of_a_triples_run_reads_all_three_operands():
    ds = mlp.train(task="triples", p=5, width=8, lr=0.01, steps=4, parametrisation="standard",
                   train_fraction=0.3, log_every=2)
    gram = ntk.gram_of_run(ds, limit=9)
    rows = np.flatnonzero(ds.is_train.values[0])[:9]
    operands = tuple(ds[name].values[rows] for name in "abc")
    expected = ntk.gram(mlp.load_params(ds).model(0), operands)
    np.testing.assert_allclose(gram.ntk.values, expected, rtol=1e-12)
    assert gram.attrs["output_scale"] == 1.0


@pytest.mark.parametrize("activation", ["quadratic", "tanh"])
def test_float32_weights_give_a_float32_gram(activation):
    params = mlp.init(7, 16, seed=0, activation=activation, dtype="float32")
    task = tasks.modular("add", 7)
    for kind in ntk.KINDS:
        assert ntk.gram(params, task.operands(), kind=kind).dtype == np.float32, kind
