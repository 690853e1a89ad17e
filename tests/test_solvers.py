import numpy as np
import pytest

from gk import backend, io, kernels, rfm, solvers, tasks
from gk.cli import main


def _pairs(p=31, fraction=0.5, seed=0):
    task = tasks.modular("add", p)
    split = task.split(fraction, seed)
    n = len(split.train)
    Y = np.zeros((n, p))
    Y[np.arange(n), task.c[split.train]] = 1
    return (task.a[split.train], task.b[split.train]), Y


def _random_psd(d, seed=0):
    R = np.random.default_rng(seed).standard_normal((d, d))
    return R @ R.T / d


def _smooth_problem(n=500, d=2, seed=0):
    """Points in R^d for a Gaussian kernel, whose eigenvalues fall fast (condition number
    10⁵ with a ridge of 10⁻³ of the diagonal), and three right-hand sides."""
    generator = np.random.default_rng(seed)
    X = generator.standard_normal((n, d))
    return X, generator.standard_normal((n, 3)), np.eye(d)


def test_block_cg_matches_cholesky_on_a_ridge_system():
    p = 31
    X, Y = _pairs(p)
    M = _random_psd(2 * p, seed=1)
    K = kernels.gram("quadratic", M, X, X, None, p)
    ridge = 1e-3 * float(np.mean(np.diag(K)))
    expected, _ = backend.solve_ridge(K, Y, ridge)
    result = solvers.solve_kernel_system("quadratic", M, X, Y, ridge, None, p, tol=1e-12)
    assert result.converged and result.residual <= 1e-11
    assert np.abs(result.alpha - expected).max() <= 1e-6 * np.abs(expected).max()
    np.testing.assert_allclose(result.fitted, K @ result.alpha, atol=1e-10)


@pytest.mark.parametrize("kernel", kernels.KERNELS)
def test_kernel_matmul_equals_dense_product_whatever_the_chunk(kernel):
    p = 13
    X, _ = _pairs(p)
    Z = (X[0][:40], X[1][:40])
    M = _random_psd(2 * p, seed=2)
    L = kernels.DEFAULT_BANDWIDTH[kernel]
    V = np.random.default_rng(0).standard_normal((40, 5))
    for inputs, columns in ((X, Z), (rfm.dense(X, p), rfm.dense(Z, p))):
        expected = kernels.gram(kernel, M, inputs, columns, L, p) @ V
        scale = np.abs(expected).max()
        for chunk in (1, 7, 10_000, None):
            for structured in (True, False):   # the closed form of quadratic on pairs
                product = solvers.kernel_matmul(kernel, M, inputs, columns, V, L, p, chunk,
                                                structured)
                assert np.abs(product - expected).max() <= 1e-13 * scale


def test_quadratic_matmul_equals_the_gram_product_in_any_column_chunks():
    p = 11
    X, _ = _pairs(p)
    M = _random_psd(2 * p, seed=4)
    V = np.random.default_rng(1).standard_normal((len(X[0]), 6))
    expected = kernels.gram("quadratic", M, X, X, None, p) @ V
    for chunk in (1, 4, 6):
        for inputs in (X, rfm.dense(X, p)):
            product = kernels.quadratic_matmul(M, inputs, X, V, p, chunk)
            assert np.abs(product - expected).max() <= 1e-13 * np.abs(expected).max()


def test_chunk_rows_bounds_the_block():
    assert solvers.chunk_rows(32_768, 8, 2**28) == 512
    assert solvers.chunk_rows(10**9, 8, 2**20) == 1          # never zero rows
    assert solvers.chunk_rows(100, 4, 800) == 1


def test_nystrom_preconditioner_cuts_the_iterations():
    X, Y, M = _smooth_problem()
    ridge = 1e-3                                       # the kernel's diagonal is 1

    def matmul(V):
        return solvers.kernel_matmul("gaussian", M, X, X, V, 1.0)

    plain = solvers.block_cg(matmul, Y, ridge, None, tol=1e-8)
    preconditioner = solvers.nystrom_preconditioner("gaussian", M, X, 1.0, None, ridge,
                                                    landmarks=200, rank=100)
    preconditioned = solvers.block_cg(matmul, Y, ridge, preconditioner, tol=1e-8)
    assert plain.converged and preconditioned.converged
    assert preconditioned.iterations <= plain.iterations / 5     # measured: 11 against 157
    np.testing.assert_allclose(preconditioned.alpha, plain.alpha,
                               atol=1e-5 * np.abs(plain.alpha).max())


def test_nystrom_preconditioner_is_seeded_and_orthonormal():
    X, _ = _pairs(23)
    M = _random_psd(46, seed=3)
    first, again, other = (solvers.nystrom_preconditioner("quadratic", M, X, None, 23,
                                                          seed=seed) for seed in (0, 0, 1))
    assert first.rank == 69                                   # 3d/2 with d = 2p
    np.testing.assert_array_equal(first.U, again.U)
    assert not np.array_equal(first.U, other.U)
    np.testing.assert_allclose(first.U.T @ first.U, np.eye(first.rank), atol=1e-10)
    assert (np.diff(first.eigenvalues) <= 0).all()
    assert solvers.nystrom_preconditioner("quadratic", M, X, None, 23, rank=0) is None


def test_block_cg_warns_when_it_runs_out_of_steps():
    X, Y, M = _smooth_problem(n=200)

    def matmul(V):
        return solvers.kernel_matmul("gaussian", M, X, X, V, 1.0)

    with pytest.warns(RuntimeWarning, match="max_iterations=2"):
        result = solvers.block_cg(matmul, Y, 1e-3, None, tol=1e-12, max_iterations=2)
    assert result.iterations == 2 and not result.converged and result.residual > 1e-12


def test_block_cg_stops_at_once_on_zero_targets():
    result = solvers.block_cg(lambda V: 2 * V, np.zeros((5, 2)))
    assert result.iterations == 0 and result.residual == 0 and not result.alpha.any()


def test_rfm_cg_follows_cholesky_through_grokking():
    options = dict(op="add", p=31, train_fraction=0.7, iterations=12)
    dense = rfm.run(**options, solver="cholesky")
    iterative = rfm.run(**options, solver="cg")
    test_pairs = int((dense.is_train[0] == 0).sum())
    correct = [np.rint(ds.test_acc.isel(model=0).values * test_pairs) for ds in (dense, iterative)]
    assert np.abs(correct[0] - correct[1]).max() <= 1
    emerged = [int(np.argmax(ds.test_acc.isel(model=0).values >= 0.5))
               for ds in (dense, iterative)]
    assert emerged[0] == emerged[1] > 3                        # after a flat phase
    assert float(dense.test_acc[-1, 0]) >= 0.9                 # grokked within the window
    assert (iterative.train_acc == 1).all()
    assert (iterative.solver_iterations > 0).all() and (dense.solver_iterations == 0).all()
    assert float(iterative.solver_residual.max()) <= solvers.TOLERANCE
    assert float(dense.solver_residual.max()) <= 1e-12
    assert io.config(iterative)["solver"] == "cg" and (iterative.jitter == 0).all()


@pytest.mark.parametrize("options, error, match", [
    (dict(solver="lu"), ValueError, "solver='lu'.*'auto', 'cholesky', 'cg'"),
    (dict(solver=None), ValueError, "solver=None"),
    (dict(cg_tolerance=0.0), ValueError, "cg_tolerance=0.0"),
    (dict(cg_max_iterations=0), ValueError, "cg_max_iterations=0"),
    (dict(memory_gb=-1.0), ValueError, "memory_gb=-1.0"),
])
def test_run_refuses_bad_solver_options_before_any_file(tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        rfm.run(p=7, **options, out=tmp_path / "never.nc")
    assert list(tmp_path.iterdir()) == []


def test_memory_estimate_of_both_paths():
    n, d, p = 32_768, 512, 256                   # add mod 256, half of the pairs for training
    dense = solvers.memory_estimate(n, d, p, n, "float64", "cholesky")
    iterative = solvers.memory_estimate(n, d, p, n, "float64", "cg")
    assert 2 * n * n * 8 < dense < 2 * n * n * 8 + 2**30         # K and its copy, 17.2 GB
    assert iterative < 2**31                                    # the preconditioner and blocks
    assert solvers.memory_estimate(n, d, p, n, "float32", "cholesky") < dense
    smaller = solvers.memory_estimate(n, d, p, n, "float64", "cg", chunk_bytes=2**20)
    assert iterative - smaller == 2**28 - 2**20
    with pytest.raises(ValueError, match="solver='auto'"):
        solvers.memory_estimate(n, d, p, solver="auto")


def test_auto_takes_cholesky_when_it_fits_and_cg_otherwise(tmp_path):
    choose = solvers.choose_solver
    assert choose("auto", 32_768, 512, 256, 32_768, memory_gb=16) == "cg"
    assert choose("auto", 32_768, 512, 256, 32_768, memory_gb=24) == "cholesky"
    assert choose("auto", 1_000, 20, 10) == "cholesky"          # against the memory available
    assert choose("cg", 10, 2, 1) == "cg"
    ds = rfm.run(p=7, iterations=2, memory_gb=1e-6, out=tmp_path / "auto.nc")
    assert io.config(io.open_run(tmp_path / "auto.nc"))["solver"] == "cg"
    assert (ds.solver_iterations > 0).all()


def test_rfm_command_takes_solver(tmp_path, capsys):
    out = tmp_path / "rfm.nc"
    assert main(["rfm", "--p", "7", "--iterations", "2", "--solver", "cg", "--out", str(out),
                 "--no-progress"]) == 0
    assert io.config(io.open_run(out))["solver"] == "cg"
    with pytest.raises(SystemExit) as exit_info:
        main(["rfm", "--solver", "lu"])
    assert exit_info.value.code == 2 and "invalid choice: 'lu'" in capsys.readouterr().err
    assert main(["rfm", "--memory-gb", "-2"]) == 2
    assert "memory_gb=-2.0" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", ["quadratic", "gaussian"])
def test_cg_on_the_gpu_follows_numpy(monkeypatch, kernel):
    options = dict(op="add", p=23, iterations=5, kernel=kernel, solver="cg")
    monkeypatch.setenv("GK_BACKEND", "cupy")
    on_gpu = rfm.run(**options)
    monkeypatch.setenv("GK_BACKEND", "numpy")
    on_cpu = rfm.run(**options)
    assert on_gpu.attrs["backend"] == "cupy"
    np.testing.assert_array_equal(on_gpu.test_acc, on_cpu.test_acc)
    np.testing.assert_allclose(on_gpu.test_loss, on_cpu.test_loss, rtol=1e-6)
    assert float(on_gpu.solver_residual.max()) <= solvers.TOLERANCE
