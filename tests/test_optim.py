import numpy as np
import pytest

from gk import optim


def _setup(value=1.0, grad=0.5):
    params = {"W": np.full((1, 2, 2), value)}
    grads = {"W": np.full((1, 2, 2), grad)}
    return params, grads


def _hyper(lr=0.1, weight_decay=0.0, linf=None):
    return optim.Hyper(np.array([lr]), np.array([weight_decay]),
                       None if linf is None else np.array([linf]))


def test_gd_step_with_l2_weight_decay():
    params, grads = _setup()
    optim.update("gd", params, grads, {}, _hyper(0.1, 0.2), step=1)
    assert np.allclose(params["W"], 1.0 - 0.1 * (0.5 + 0.2 * 1.0))


def test_momentum_two_steps_by_hand():
    params, grads = _setup()
    state = optim.init_state("momentum", params)
    optim.update("momentum", params, grads, state, _hyper(0.1), step=1, momentum=0.9)
    assert np.allclose(params["W"], 1.0 - 0.1 * 0.5)
    _, grads = _setup()
    optim.update("momentum", params, grads, state, _hyper(0.1), step=2, momentum=0.9)
    assert np.allclose(params["W"], 1.0 - 0.05 - 0.1 * (0.9 * 0.5 + 0.5))


def test_adamw_two_steps_by_hand():
    params, grads = _setup()
    state = optim.init_state("adamw", params)
    lr, decay, b1, b2, eps = 0.01, 1.0, 0.9, 0.98, 1e-8
    theta, m, v = 1.0, 0.0, 0.0
    for step, g in ((1, 0.5), (2, -0.25)):
        grads = {"W": np.full((1, 2, 2), g)}
        optim.update("adamw", params, grads, state, _hyper(lr, decay), step=step,
                     betas=(b1, b2), eps=eps)
        theta *= 1 - lr * decay
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta -= lr * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + eps)
        assert np.allclose(params["W"], theta, rtol=1e-13)


def test_per_model_learning_rates_are_independent():
    params = {"W": np.ones((2, 3))}
    grads = {"W": np.ones((2, 3))}
    optim.update("gd", params, grads, {}, optim.Hyper(np.array([0.1, 0.3]), np.zeros(2)), 1)
    assert np.allclose(params["W"][0], 0.9) and np.allclose(params["W"][1], 0.7)


def test_linf_subgradient_hits_only_the_largest_entries():
    params = {"A": np.array([[[0.5, -2.0]], [[1.0, 1.0]]]), "B": np.array([[[2.0]], [[0.1]]])}
    sub = optim.linf_subgradient(params)
    # model 0: |-2| and |2| tie, shared half each; model 1: the two ones tie
    np.testing.assert_allclose(sub["A"], [[[0, -0.5]], [[0.5, 0.5]]])
    np.testing.assert_allclose(sub["B"], [[[0.5]], [[0.0]]])


def test_linf_penalty_enters_gd_step():
    params = {"W": np.array([[1.0, -3.0]])}
    grads = {"W": np.zeros((1, 2))}
    optim.update("gd", params, grads, {}, _hyper(0.1, linf=2.0), step=1)
    np.testing.assert_allclose(params["W"], [[1.0, -3.0 + 0.1 * 2.0]])


def test_linf_subgradient_matches_finite_difference_of_max_norm():
    params = {"W": np.random.default_rng(0).standard_normal((1, 4, 3))}
    sub = optim.linf_subgradient(params)["W"]
    index = np.unravel_index(np.abs(params["W"]).argmax(), params["W"].shape)
    bumped = params["W"].copy()
    bumped[index] += 1e-7 * np.sign(params["W"][index])
    assert (np.abs(bumped).max() - np.abs(params["W"]).max()) / 1e-7 == pytest.approx(
        np.abs(sub).sum())


def test_unknown_optimizer_refused():
    with pytest.raises(ValueError, match="optimizer='sgdx'"):
        optim.init_state("sgdx", {"W": np.ones((1, 1))})


def test_normalised_gd_steps_lr_along_the_whole_gradient():
    params = {"W1": np.array([[1.0, 2.0], [0.0, 0.0]]), "W2": np.array([[3.0], [0.0]])}
    grads = {"W1": np.array([[3.0, 0.0], [0.0, 0.0]]), "W2": np.array([[4.0], [0.0]])}
    optim.update("normalised_gd", params, grads, {}, optim.Hyper(np.array([0.5, 0.5]),
                                                                  np.zeros(2)), step=1)
    # model 0: ‖g‖ = 5 over both arrays, so the step is 0.5·(3, 0, 4)/5
    np.testing.assert_allclose(params["W1"][0], [1.0 - 0.3, 2.0])
    np.testing.assert_allclose(params["W2"][0], [3.0 - 0.4])
    # model 1 has a zero gradient and does not move (no division by zero)
    assert (params["W1"][1] == 0).all() and (params["W2"][1] == 0).all()
