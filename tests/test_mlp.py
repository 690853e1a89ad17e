import numpy as np
import pytest

from gk import mlp, tasks
from gk.losses import LOSSES, per_sample_loss, weighted_loss_and_gradient
from gk.mlp import model


def _finite_difference(params, a, b, c, weights, loss, eps=1e-6):
    """Central differences of the summed per-model losses with respect to every weight."""
    numeric = {}
    for key in ("W1", "W2"):
        array = getattr(params, key)
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            old = array[index]
            array[index] = old + eps
            up = model.loss_and_grads(params, (a, b), c, weights, loss)[0].sum()
            array[index] = old - eps
            down = model.loss_and_grads(params, (a, b), c, weights, loss)[0].sum()
            array[index] = old
            grad[index] = (up - down) / (2 * eps)
        numeric[key] = grad
    return numeric


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", sorted(model.ACTIVATIONS))
def test_gradients_match_finite_differences(activation, loss):
    p, width, n = 5, 4, 7
    params = mlp.init(p, width, seed=[0, 1], activation=activation, init_scale=0.7)
    generator = np.random.default_rng(3)
    a, b, c = (generator.integers(0, p, (2, n)) for _ in range(3))
    a[0, :3] = 2  # repeated operands: the scatter-add must accumulate
    weights = np.full((2, n), 1 / n)
    weights[1, -2:] = 0  # padding entries contribute nothing
    _, grads = model.loss_and_grads(params, (a, b), c, weights, loss)
    numeric = _finite_difference(params, a, b, c, weights, loss)
    for key in ("W1", "W2"):
        error = np.abs(grads[key] - numeric[key]).max() / np.abs(numeric[key]).max()
        assert error <= 1e-6, (key, error)


def test_forward_matches_dense_one_hot_product():
    p, width = 7, 6
    params = mlp.init(p, width, seed=[2], activation="tanh")
    task = tasks.modular("add", p)
    x = task.one_hot_inputs()
    f, _ = model.forward(params, task.a[None], task.b[None])
    dense = (2 / width) * np.tanh(x @ params.W1[0].T) @ params.W2[0].T  # seed 001, eqs. 1–2
    np.testing.assert_allclose(f[0], dense, rtol=1e-12)


def _dense_hidden_layer(params, operands, activation):
    """h, z and, for ∂L/∂z = dz, ∂L/∂W1ᵀ from products with the dense one-hot inputs X."""
    models, inputs = params.W1.shape[0], params.W1.shape[-1]
    block = inputs // len(operands)
    X = np.zeros((*operands[0].shape, inputs))
    for j, x in enumerate(operands):
        X[np.arange(models)[:, None], np.arange(x.shape[1]), j * block + x] = 1
    h = X @ params.W1.transpose(0, 2, 1)
    phi, dphi = model.ACTIVATIONS[activation]
    return X, h, phi(h), dphi(h)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_operands", [2, 3])
@pytest.mark.parametrize("activation", ["quadratic", "relu", "identity", "tanh"])
def test_hidden_layer_and_its_gradient_match_dense_one_hot_products(activation, n_operands,
                                                                     dtype):
    p, width, n, models = 5, 6, 40, 3
    params = mlp.init(p, width, seed=[0, 1, 2], activation=activation, dtype=dtype,
                      operands=n_operands)
    rng = np.random.default_rng(0)
    operands = tuple(rng.integers(0, p, (models, n)) for _ in range(n_operands))
    X, h, z, dphi = _dense_hidden_layer(params, operands, activation)
    cache = model.hidden_layer(params, operands)
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(cache.h, h, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(cache.z, z, rtol=tolerance, atol=tolerance)
    G = rng.standard_normal((models, n, p)).astype(dtype)
    grads = model.backward(params, cache, G)
    dz = params.output_scale * G @ params.W2
    dW1 = (dz * dphi).transpose(0, 2, 1) @ X                    # (∂L/∂h)ᵀ X, dense
    np.testing.assert_allclose(grads["W1"], dW1, rtol=10 * tolerance, atol=10 * tolerance)


def test_workspace_is_reused_and_gives_the_same_gradients():
    p, width = 7, 8
    task = tasks.modular("add", p)
    params = mlp.init(p, width, seed=[0, 1])
    a, b, c = (np.broadcast_to(v, (2, p * p)) for v in (task.a, task.b, task.c))
    weights = np.full((2, p * p), 1 / p**2)
    workspace = model.Workspace()
    first = model.loss_and_grads(params, (a, b), c, weights, "mse", workspace)
    h = workspace.empty("h", (2, p * p, width), params.W1.dtype, np)
    again = model.loss_and_grads(params, (a, b), c, weights, "mse", workspace)
    assert workspace.empty("h", (2, p * p, width), params.W1.dtype, np) is h
    plain = model.loss_and_grads(params, (a, b), c, weights)
    for result in (again, plain):
        np.testing.assert_array_equal(result[0], first[0])
        for key in ("W1", "W2"):
            np.testing.assert_array_equal(result[1][key], first[1][key])
    assert workspace.empty("h", (1, 3, width), params.W1.dtype, np).shape == (1, 3, width)


def test_cross_entropy_is_stable_for_large_logits():
    f = np.array([[[1000.0, 0.0, -1000.0]]])
    ell, grad = per_sample_loss(f, np.array([[1]]), "cross_entropy")
    assert np.isfinite(ell).all() and np.isclose(ell[0, 0], 1000.0)
    np.testing.assert_allclose(grad[0, 0], [1.0, -1.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", LOSSES)
def test_weighted_loss_and_gradient_matches_a_loop_over_examples(loss, dtype):
    rng = np.random.default_rng(3)
    f = (30 * rng.standard_normal((2, 9, 5))).astype(dtype)       # large logits included
    labels = rng.integers(0, 5, (2, 9))
    weights = rng.random((2, 9)).astype(dtype)
    total, G = weighted_loss_and_gradient(f, labels, weights, loss, scale=0.25)
    expected_total, expected_G = np.zeros(2), np.zeros(f.shape)
    for m, i in np.ndindex(2, 9):
        x = f[m, i].astype(np.float64)
        target = np.eye(5)[labels[m, i]]
        if loss == "mse":
            ell, grad = 0.5 * ((x - target) ** 2).sum(), x - target
        else:
            log_softmax = x - x.max() - np.log(np.exp(x - x.max()).sum())
            ell, grad = -log_softmax[labels[m, i]], np.exp(log_softmax) - target
        expected_total[m] += weights[m, i] * ell
        expected_G[m, i] = 0.25 * weights[m, i] * grad
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(total, expected_total, rtol=tolerance)
    np.testing.assert_allclose(G, expected_G, rtol=tolerance, atol=tolerance * np.abs(G).max())
    real = rng.standard_normal(f.shape).astype(dtype)         # real targets: the array path
    if loss == "mse":
        total, G = weighted_loss_and_gradient(f, real, weights, loss, scale=0.25)
        np.testing.assert_allclose(G, 0.25 * weights[..., None] * (f - real), rtol=tolerance)


def test_init_is_reproducible_and_batches_agree_with_single_models():
    batch = mlp.init(11, 8, seed=[4, 5])
    single = mlp.init(11, 8, seed=5)
    assert single.W1.shape == (8, 22) and single.W2.shape == (11, 8)
    np.testing.assert_array_equal(batch.W1[1], single.W1)
    np.testing.assert_array_equal(batch.W2[1], single.W2)
    assert not np.allclose(batch.W1[0], batch.W1[1])


def test_init_float32_and_scale():
    params = mlp.init(11, 300, seed=0, init_scale=0.1, dtype="float32")
    assert params.W1.dtype == np.float32
    assert 0.09 < params.W1.std() < 0.11


def test_evaluate_single_and_batched():
    task = tasks.modular("add", 7)
    params = mlp.init(7, 16, seed=[0, 1])
    batched = mlp.evaluate(params, task)
    single = mlp.evaluate(params.model(1), task)
    assert batched["accuracy"].shape == (2,)
    assert single["accuracy"] == pytest.approx(batched["accuracy"][1])
    assert single["loss"] == pytest.approx(batched["loss"][1])


def test_unknown_activation_refused():
    with pytest.raises(ValueError, match="activation='swish'"):
        mlp.init(7, 4, activation="swish")


def test_standard_parametrisation_is_unnormalised_with_he_init():
    p, width, scale = 40, 300, 0.5
    params = mlp.init(p, width, seed=[3], init_scale=scale, parametrisation="standard")
    assert params.output_scale == 1.0
    assert np.std(params.W1) == pytest.approx(scale * np.sqrt(2 / (2 * p)), rel=0.02)
    assert np.std(params.W2) == pytest.approx(scale * np.sqrt(2 / width), rel=0.02)
    mean_field = mlp.init(p, width, seed=[3], init_scale=scale)
    np.testing.assert_allclose(params.W1 / np.sqrt(2 / (2 * p)), mean_field.W1, rtol=1e-12)
    task = tasks.modular("add", p)
    f, _ = model.forward(params, task.a[None], task.b[None])
    dense = (task.one_hot_inputs() @ params.W1[0].T) ** 2 @ params.W2[0].T   # V (W x)^2
    np.testing.assert_allclose(f[0], dense, rtol=1e-12)


def test_triples_network_gradients_match_finite_differences():
    """Seed 002's regression network: three one-hot operands, one output, c = 1."""
    p, width, n = 4, 3, 6
    params = mlp.init(p, width, seed=[0, 1], operands=3, outputs=1, parametrisation="standard")
    generator = np.random.default_rng(5)
    operands = [generator.integers(0, p, (2, n)) for _ in range(3)]
    y = generator.normal(size=(2, n))

    def loss():
        f, cache = model.forward(params, *operands)
        return 0.5 * ((f[..., 0] - y) ** 2).sum(), f, cache

    _, f, cache = loss()
    grads = model.backward(params, cache, f - y[..., None])
    for key in ("W1", "W2"):
        array, numeric = getattr(params, key), np.zeros_like(getattr(params, key))
        for index in np.ndindex(array.shape):
            old = array[index]
            array[index] = old + 1e-6
            up = loss()[0]
            array[index] = old - 1e-6
            numeric[index] = (up - loss()[0]) / 2e-6
            array[index] = old
        assert np.abs(grads[key] - numeric).max() <= 1e-6 * np.abs(numeric).max(), key


@pytest.mark.parametrize("activation", sorted(model.ACTIVATIONS))
def test_input_agop_matches_per_sample_finite_difference_jacobians(activation):
    p, width = 5, 6
    params = mlp.init(p, width, seed=[0, 1], activation=activation, init_scale=0.8)
    task = tasks.modular("add", p)
    rows = np.arange(0, task.size, 2)
    agop = model.input_agop(params, *(np.tile(x[rows], (2, 1)) for x in task.operands()))
    phi = model.ACTIVATIONS[activation][0]
    for m in range(2):
        W1, W2 = params.W1[m], params.W2[m]
        brute = np.zeros((2 * p, 2 * p))
        for x in task.one_hot_inputs(rows):                 # J(x) by central differences
            J = np.stack([(2 / width) * (W2 @ phi(W1 @ (x + 1e-6 * e))
                                         - W2 @ phi(W1 @ (x - 1e-6 * e))) / 2e-6
                          for e in np.eye(2 * p)], axis=1)
            brute += J.T @ J / len(rows)
        np.testing.assert_allclose(agop[m], brute, rtol=1e-7, atol=1e-9 * np.abs(brute).max())


@pytest.mark.parametrize("activation", ["quadratic", "gelu", "tanh"])
def test_agop_trace_gradients_match_finite_differences(activation):
    p, width, n = 4, 5, 6
    params = mlp.init(p, width, seed=[3, 4], activation=activation, init_scale=0.7)
    generator = np.random.default_rng(1)
    operands = tuple(generator.integers(0, p, (2, n)) for _ in range(2))
    weights = np.full((2, n), 1 / n)
    weights[1, -1] = 0                                          # padding counts for nothing
    trace, grads = model.agop_trace_and_grads(params, operands, weights)
    np.testing.assert_allclose(trace, np.trace(model.input_agop(params, *operands,
                                                                weights=weights), axis1=1, axis2=2))
    for key in ("W1", "W2"):
        array, numeric = getattr(params, key), np.zeros_like(getattr(params, key))
        for index in np.ndindex(array.shape):
            old = array[index]
            array[index] = old + 1e-6
            up = model.agop_trace_and_grads(params, operands, weights)[0].sum()
            array[index] = old - 1e-6
            down = model.agop_trace_and_grads(params, operands, weights)[0].sum()
            array[index] = old
            numeric[index] = (up - down) / 2e-6
        assert np.abs(grads[key] - numeric).max() <= 1e-6 * np.abs(numeric).max(), key
