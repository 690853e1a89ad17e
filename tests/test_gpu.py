"""CuPy path: the same numbers as NumPy to a stated tolerance (run where a GPU exists)."""

import numpy as np
import pytest

from gk import backend, mlp, tasks

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy_backend(monkeypatch):
    monkeypatch.setenv("GK_BACKEND", "cupy")
    import cupy

    return cupy


def test_new_arrays_live_on_the_gpu(cupy_backend):
    assert backend.namespace() is cupy_backend
    params = mlp.init(11, 8, seed=[0])
    assert isinstance(params.W1, cupy_backend.ndarray)
    assert backend.device_name().startswith("cuda:")


def test_initialisation_is_identical_on_both_backends(cupy_backend, monkeypatch):
    on_gpu = mlp.init(11, 8, seed=[0, 1])
    monkeypatch.setenv("GK_BACKEND", "numpy")
    on_cpu = mlp.init(11, 8, seed=[0, 1])
    np.testing.assert_array_equal(backend.to_numpy(on_gpu.W1), on_cpu.W1)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["quadratic", "relu", "tanh"])
def test_gradients_agree_with_numpy(cupy_backend, monkeypatch, activation, loss):
    # NumPy runs the fused CPU loops of gk._kernels, CuPy the array operations.
    params = mlp.init(13, 32, seed=[0, 1], activation=activation)
    generator = np.random.default_rng(0)
    a, b, c = (generator.integers(0, 13, (2, 40)) for _ in range(3))
    weights = np.full((2, 40), 1 / 40)
    xp = cupy_backend
    total_gpu, on_gpu = mlp.loss_and_grads(params, (xp.asarray(a), xp.asarray(b)),
                                           xp.asarray(c), xp.asarray(weights), loss)
    cpu_params = mlp.Params(backend.to_numpy(params.W1), backend.to_numpy(params.W2),
                            activation)
    total_cpu, on_cpu = mlp.loss_and_grads(cpu_params, (a, b), c, weights, loss)
    np.testing.assert_allclose(backend.to_numpy(total_gpu), total_cpu, rtol=1e-12)
    for key in ("W1", "W2"):
        np.testing.assert_allclose(backend.to_numpy(on_gpu[key]), on_cpu[key], rtol=1e-10,
                                   atol=1e-12)


def test_training_agrees_with_numpy(cupy_backend, monkeypatch):
    options = dict(p=23, width=64, steps=200, log_every=50, seed=[0, 1], lr=5.0)
    on_gpu = mlp.train(**options)
    monkeypatch.setenv("GK_BACKEND", "numpy")
    on_cpu = mlp.train(**options)
    assert on_gpu.attrs["backend"] == "cupy"
    np.testing.assert_allclose(on_gpu.train_loss, on_cpu.train_loss, rtol=1e-8)
    np.testing.assert_allclose(on_gpu.W1, on_cpu.W1, rtol=1e-7, atol=1e-9)


def test_cholesky_solve_and_psd_power_on_gpu(cupy_backend):
    xp = cupy_backend
    generator = np.random.default_rng(0)
    X = generator.standard_normal((20, 20))
    A = X @ X.T + 20 * np.eye(20)
    B = generator.standard_normal((20, 3))
    np.testing.assert_allclose(backend.to_numpy(backend.cholesky_solve(xp.asarray(A),
                                                                       xp.asarray(B))),
                               np.linalg.solve(A, B), rtol=1e-10)
    root = backend.psd_power(xp.asarray(A), 0.5)
    np.testing.assert_allclose(backend.to_numpy(root @ root), A, rtol=1e-10)
    with pytest.raises(np.linalg.LinAlgError):
        backend.cholesky_solve(xp.asarray(np.diag([1.0, -1.0])), xp.ones(2))


def test_evaluate_on_gpu_task(cupy_backend):
    task = tasks.modular("add", 11)
    result = mlp.evaluate(mlp.init(11, 16, seed=0), task)
    assert 0 <= result["accuracy"] <= 1


def test_rfm_run_agrees_with_numpy(cupy_backend, monkeypatch):
    from gk import rfm

    options = dict(op="mul", p=13, iterations=5, kernel="gaussian")
    on_gpu = rfm.run(**options)
    monkeypatch.setenv("GK_BACKEND", "numpy")
    on_cpu = rfm.run(**options)
    assert on_gpu.attrs["backend"] == "cupy"
    np.testing.assert_allclose(on_gpu.test_loss, on_cpu.test_loss, rtol=1e-8)
    np.testing.assert_allclose(on_gpu.M, on_cpu.M, atol=1e-6 * float(abs(on_cpu.M).max()))


def test_rfm_agop_on_gpu_matches_numpy(cupy_backend):
    from gk import rfm, tasks

    xp = cupy_backend
    p = 11
    task = tasks.modular("add", p)
    split = task.split(0.5, 0)
    a, b = task.a[split.train], task.b[split.train]
    alpha = np.random.default_rng(0).standard_normal((len(a), p))
    M = np.eye(2 * p) + 0.1
    for kernel in ("quadratic", "laplace"):
        on_cpu = rfm.agop(kernel, M, alpha, (a, b), 2.5, p)
        on_gpu = rfm.agop(kernel, xp.asarray(M), xp.asarray(alpha),
                          (xp.asarray(a), xp.asarray(b)), 2.5, p)
        np.testing.assert_allclose(backend.to_numpy(on_gpu), on_cpu, rtol=1e-10)


@pytest.mark.parametrize("options", [{}, {"layers": 2, "tied": True},
                                     {"mlp": False, "attention": "linear", "sequence": "a b"}])
def test_transformer_gradients_agree_with_numpy(cupy_backend, monkeypatch, options):
    from gk.transformer import model as tm

    params = tm.init(13, d_model=16, n_heads=4, d_mlp=32, seed=[0, 1], **options)
    generator = np.random.default_rng(0)
    a, b = (generator.integers(0, 13, (2, 40)) for _ in range(2))
    tokens = tm.sequence_tokens(options.get("sequence", "a b ="), 13, cupy_backend.asarray(a),
                                cupy_backend.asarray(b))
    labels, weights = (a + b) % 13, np.full((2, 40), 1 / 40)
    loss, grads = tm.loss_and_grads(params, tokens, cupy_backend.asarray(labels),
                                    cupy_backend.asarray(weights))
    monkeypatch.setenv("GK_BACKEND", "numpy")
    cpu = tm.init(13, d_model=16, n_heads=4, d_mlp=32, seed=[0, 1], **options)
    cpu_loss, cpu_grads = tm.loss_and_grads(
        cpu, tm.sequence_tokens(options.get("sequence", "a b ="), 13, a, b), labels, weights)
    np.testing.assert_allclose(backend.to_numpy(loss), cpu_loss, rtol=1e-12)
    for key, value in cpu_grads.items():
        np.testing.assert_allclose(backend.to_numpy(grads[key]), value, rtol=1e-9, atol=1e-12)
