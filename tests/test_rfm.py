import numpy as np
import pytest

from gk import backend, io, kernels, rfm, tasks


def _random_psd(d, seed=0):
    R = np.random.default_rng(seed).standard_normal((d, d))
    return R @ R.T / d


def _kernel_gradient(kernel, M, x, z, L):
    """∇_x k(x, z) from the kernel's definition, for one pair of points."""
    if kernel == "quadratic":
        return 2 * (x @ M @ z) * (M @ z)
    d2 = (x - z) @ M @ (x - z)
    if kernel == "gaussian":
        return -(2 / L) * np.exp(-d2 / L) * (M @ (x - z))
    d = np.sqrt(max(d2, 0.0))
    return np.zeros_like(x) if d == 0 else -np.exp(-d / L) * (M @ (x - z)) / (L * d)


def _agop_loop(kernel, M, alpha, X, L, centering):
    """The AGOP by its definition: one Jacobian per training point, summed pair by pair."""
    jacobians = np.array([sum(np.outer(alpha[j], _kernel_gradient(kernel, M, x, X[j], L))
                              for j in range(len(X))) for x in X])
    if centering:
        jacobians -= jacobians.mean(axis=0)
    return np.einsum("icd,ice->de", jacobians, jacobians) / len(X)


def _setup(p=7, op="add", seed=0):
    task = tasks.modular(op, p)
    split = task.split(0.5, seed)
    pairs = (task.a[split.train], task.b[split.train])
    alpha = np.random.default_rng(seed).standard_normal((len(split.train), p))
    return task, split, pairs, alpha


@pytest.mark.parametrize("centering", [True, False])
@pytest.mark.parametrize("kernel", kernels.KERNELS)
@pytest.mark.parametrize("p", [5, 11])
def test_agop_closed_form_equals_per_sample_loop(kernel, centering, p):
    task, split, pairs, alpha = _setup(p)
    M = _random_psd(2 * p, seed=p)
    L = kernels.DEFAULT_BANDWIDTH[kernel]
    expected = _agop_loop(kernel, M, alpha, rfm.dense(pairs, p), L, centering)
    scale = np.abs(expected).max()
    for X in (pairs, rfm.dense(pairs, p)):
        G = rfm.agop(kernel, M, alpha, X, L, p, centering)
        assert np.abs(G - expected).max() <= 1e-10 * scale
    general = rfm.agop_general(kernel, M, alpha, pairs, L, p, centering, chunk=4)
    assert np.abs(general - expected).max() <= 1e-10 * scale


@pytest.mark.parametrize("kernel", kernels.KERNELS)
def test_agop_matches_finite_difference_jacobians(kernel):
    p = 5
    task, split, pairs, alpha = _setup(p, seed=1)
    X = rfm.dense(pairs, p)
    M = _random_psd(2 * p, seed=3)
    L = kernels.DEFAULT_BANDWIDTH[kernel]

    def f(x):
        return kernels.gram(kernel, M, x[None], X, L) @ alpha

    jacobians = []
    for x in X:
        steps = np.eye(2 * p) * 1e-5
        jacobians.append(np.stack([(f(x + s) - f(x - s))[0] / 2e-5 for s in steps], axis=1))
    jacobians = np.array(jacobians)
    expected = np.einsum("icd,ice->de", jacobians, jacobians) / len(X)
    G = rfm.agop(kernel, M, alpha, pairs, L, p, centering=False)
    np.testing.assert_allclose(G, expected, rtol=1e-5, atol=1e-7 * np.abs(expected).max())


def test_solve_ridge_matches_dense_solve():
    generator = np.random.default_rng(0)
    X = generator.standard_normal((40, 60))
    K = X @ X.T
    Y = generator.standard_normal((40, 3))
    alpha, jitter = backend.solve_ridge(K, Y, ridge=0.1)
    np.testing.assert_allclose(alpha, np.linalg.solve(K + 0.1 * np.eye(40), Y), rtol=1e-9)
    assert jitter == 0


def test_singular_kernel_gets_recorded_jitter_not_nan():
    X = np.random.default_rng(1).standard_normal((30, 3))
    K = X @ X.T  # rank 3: not positive definite
    alpha, jitter = backend.solve_ridge(K, np.ones((30, 2)))
    assert 0 < jitter <= backend.JITTER_STOP and np.isfinite(alpha).all()
    system = K + jitter * np.mean(np.diag(K)) * np.eye(30)
    residual = np.linalg.norm(system @ alpha - 1)
    # a backward-stable solve of a system this ill-conditioned: tiny residual relative to
    # ‖A‖‖α‖, though not to ‖Y‖
    assert residual <= 1e-12 * np.linalg.norm(system, 2) * np.linalg.norm(alpha)


def test_rfm_add_p31_emerges_after_flat_phase():
    ds = rfm.run(op="add", p=31, train_fraction=0.7, iterations=14)
    test_acc = ds.test_acc.isel(model=0).values
    assert (ds.train_acc.values == 1).all()
    assert (test_acc[:7] < 0.02).all()                # flat: nothing generalises
    assert test_acc[-1] >= 0.95                       # then a sharp rise
    assert np.diff(test_acc[7:]).max() > 0.3
    deviation = ds.circulant_deviation.isel(model=0).values
    assert deviation[-1] < deviation[2] / 5           # features become circulant meanwhile
    alignment = ds.agop_alignment.isel(model=0).values
    assert (np.diff(alignment[:8]) > 0).all() and alignment[-1] == pytest.approx(1.0)


def test_estimator_on_dense_inputs_follows_run_on_pairs():
    p = 11
    ds = rfm.run(op="sub", p=p, iterations=4, kernel="gaussian")
    task = tasks.modular("sub", p)
    split = task.split(0.5, 0)
    model = rfm.RFM(kernel="gaussian", iterations=4).fit(task.one_hot_inputs(split.train),
                                                         task.one_hot_targets(split.train))
    # eigenvalues of G at round-off level become ~√ε after the square root, so the two
    # paths agree to ~1e-8 of M's scale, not to machine precision
    expected = ds.M.sel(snapshot=3).isel(model=0).values
    np.testing.assert_allclose(model.M_, expected, atol=1e-6 * np.abs(expected).max())
    accuracy = (model.predict(task.one_hot_inputs(split.test)).argmax(1)
                == task.c[split.test]).mean()
    assert accuracy == pytest.approx(float(ds.test_acc[-1, 0]))


def test_random_circulant_features_generalise_at_once():
    p = 31
    task = tasks.modular("add", p)
    split = task.split(0.5, 0)
    X, Y = task.one_hot_inputs(split.train), task.one_hot_targets(split.train)
    X_test, c_test = task.one_hot_inputs(split.test), task.c[split.test]
    M = rfm.random_circulant_features(p, seed=0, op="add")
    circulant = rfm.RFM(iterations=1).fit(X, Y, M=M)
    plain = rfm.RFM(iterations=1).fit(X, Y)
    assert (circulant.predict(X_test).argmax(1) == c_test).mean() > 0.7
    assert (plain.predict(X_test).argmax(1) == c_test).mean() < 0.05


def test_run_file_round_trip(tmp_path):
    path = tmp_path / "rfm.nc"
    ds = rfm.run(op="mul", p=13, iterations=3, seed=[0, 1], out=path)
    on_disk = io.open_run(path)
    for name in ("train_loss", "test_loss", "train_acc", "test_acc", "circulant_deviation",
                 "agop_alignment", "agop_trace", "jitter", "solver_iterations",
                 "solver_residual", "M", "is_train"):
        np.testing.assert_array_equal(on_disk[name].values, ds[name].values)
        assert on_disk[name].attrs["long_name"]
    assert on_disk.M.dims == ("snapshot", "model", "input", "input_2")
    assert on_disk.sizes["iteration"] == 3 and on_disk.sizes["model"] == 2
    config = io.config(on_disk)
    assert config["kernel"] == "quadratic" and config["centering"] is True
    assert config["ridge"] == 0.0 and on_disk.attrs["status"] == "complete"


@pytest.mark.parametrize("options, error, match", [
    (dict(kernel="cubic"), ValueError, "kernel='cubic'"),
    (dict(kernel="gaussian", bandwidth=0.0), ValueError, "bandwidth=0.0"),
    (dict(kernel="quadratic", bandwidth=2.0), ValueError, "no meaning"),
    (dict(ridge=-1.0), ValueError, "ridge=-1.0"),
    (dict(power=0.0), ValueError, "power=0.0"),
    (dict(iterations=0), ValueError, "iterations=0"),
    (dict(op="div", p=15), ValueError, "prime p"),
    (dict(train_fraction=1.0), ValueError, "leaves no test pairs"),
    (dict(centering="yes"), TypeError, "centering"),
    (dict(width=3), TypeError, "unknown option"),
])
def test_run_refuses_bad_input_before_any_file(tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        rfm.run(**{"p": 7, **options}, out=tmp_path / "never.nc")
    assert list(tmp_path.iterdir()) == []


def test_estimator_refuses_bad_input():
    X, Y = np.eye(4), np.ones((4, 2))
    with pytest.raises(ValueError, match="Y has 3 rows but X has 4"):
        rfm.RFM().fit(X, Y[:3])
    with pytest.raises(ValueError, match="X contains NaN"):
        rfm.RFM().fit(np.full((4, 4), np.nan), Y)
    with pytest.raises(ValueError, match="symmetric 4×4"):
        rfm.RFM().fit(X, Y, M=np.eye(3))
    with pytest.raises(ValueError, match="not symmetric"):
        rfm.RFM().fit(X, Y, M=np.triu(np.ones((4, 4))))
    with pytest.raises(ValueError, match="kernel='rbf'"):
        rfm.RFM(kernel="rbf").fit(X, Y)
    with pytest.raises(RuntimeError, match="not fitted"):
        rfm.RFM().predict(X)


def test_discrete_log_is_right_for_every_prime_below_1000():
    for p in (q for q in range(2, 1000) if tasks.is_prime(q)):
        g, log, antilog = tasks.discrete_log(p)
        assert sorted(antilog.tolist()) == list(range(1, p))
        x = np.arange(1, p)
        assert np.array_equal(antilog[log[x]], x)
