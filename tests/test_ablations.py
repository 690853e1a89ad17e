"""Seed 003's Fourier ablations: key frequencies, restricted and excluded loss, phases."""

import numpy as np
import pytest
from scipy.special import logsumexp

import gk.mlp
from gk import analytic, fourier, measures, tasks


def _operands(p):
    return np.divmod(np.arange(p * p), p)  # row-major pairs: row n = a·p + b


def _sum_waves(p, amplitudes, bias, seed=0):
    """Logits (p², p) made only of a constant per output and waves cos/sin(w_k(a + b)) of
    the given frequencies, with random coefficients per output: Σ_k A_k cos(w_k(a+b) + φ_kc)."""
    generator = np.random.default_rng(seed)
    a, b = _operands(p)
    logits = np.tile(np.asarray(bias, dtype=float), (p * p, 1))
    for k, amplitude in amplitudes.items():
        phase = generator.uniform(0, 2 * np.pi, p)
        scale = amplitude * generator.uniform(0.5, 1.5, p)
        logits += scale * np.cos(2 * np.pi * k * (a + b)[:, None] / p + phase)
    return logits


def _plain_loss(logits, c, loss):
    """Mean loss computed here from its definition, independently of gk.losses."""
    n = np.arange(len(c))
    if loss == "cross_entropy":
        return np.mean(logsumexp(logits, axis=-1) - logits[n, c])
    target = np.zeros_like(logits)
    target[n, c] = 1
    return np.mean(0.5 * ((logits - target) ** 2).sum(axis=-1))


def test_pairs_are_in_the_row_major_order_of_tasks():
    a, b = _operands(7)
    task = tasks.modular("add", 7)
    np.testing.assert_array_equal(task.a, a)
    np.testing.assert_array_equal(task.b, b)


def test_sum_basis_is_orthonormal_and_matches_its_definition():
    p = 13
    B = fourier.sum_basis(p, [2, 5])
    np.testing.assert_allclose(B @ B.T, np.eye(5), atol=1e-13)
    a, b = _operands(p)
    np.testing.assert_allclose(B[0], np.full(p * p, 1 / p))
    np.testing.assert_allclose(B[3], np.sqrt(2) / p * np.cos(2 * np.pi * 5 * (a + b) / p),
                               atol=1e-14)
    np.testing.assert_allclose(B[4], np.sqrt(2) / p * np.sin(2 * np.pi * 5 * (a + b) / p),
                               atol=1e-14)


def test_projections_are_idempotent_and_complementary():
    p = 11
    logits = np.random.default_rng(0).standard_normal((p * p, p))
    keys = [1, 4]
    restricted = measures.restricted_logits(logits, p, keys)
    excluded = measures.excluded_logits(logits, p, keys)
    np.testing.assert_allclose(measures.restricted_logits(restricted, p, keys), restricted,
                               atol=1e-12)
    np.testing.assert_allclose(measures.excluded_logits(excluded, p, keys), excluded, atol=1e-12)
    # restricted + excluded = logits + each output's mean over the pairs (the constant is in both)
    np.testing.assert_allclose(restricted + excluded - logits,
                               np.tile(logits.mean(axis=0), (p * p, 1)), atol=1e-12)
    assert not np.allclose(restricted, logits)


def test_sum_frequency_power_equals_diagonal_of_logits_dft2():
    p = 11
    logits = np.random.default_rng(1).standard_normal((p * p, 3))
    F = fourier.logits_dft2(logits, p)                         # (outputs, p, p), [c, k_a, k_b]
    k = np.arange(1, (p - 1) // 2 + 1)
    expected = 2 * (np.abs(F[:, k, k]) ** 2).sum(axis=0)
    expected /= ((logits - logits.mean(axis=0)) ** 2).sum()
    np.testing.assert_allclose(fourier.sum_frequency_power(logits, p), expected, rtol=1e-12)
    # the grid is indexed [c, a, b]
    np.testing.assert_allclose(np.fft.ifft2(F, norm="ortho").real[2, 3, 5], logits[3 * p + 5, 2])


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_restricted_loss_of_fourier_sparse_logits_equals_plain_loss(loss):
    p = 13
    logits = _sum_waves(p, {2: 1.5, 5: 0.7}, bias=np.linspace(-1, 1, p))
    task = tasks.modular("add", p)
    plain = _plain_loss(logits, task.c, loss)
    assert measures.restricted_loss(logits, task.c, p, [5, 2], loss) == pytest.approx(
        plain, abs=1e-12)
    train = task.split(0.3, seed=0).train
    assert measures.restricted_loss(logits, task.c, p, [2, 5], loss, train) == pytest.approx(
        _plain_loss(logits[train], task.c[train], loss), abs=1e-12)
    # dropping one of the planted frequencies changes the loss
    assert abs(measures.restricted_loss(logits, task.c, p, [2], loss) - plain) > 1e-3


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_excluded_loss_of_key_frequency_logits_is_that_of_constant_logits(loss):
    p = 13
    bias = np.random.default_rng(2).standard_normal(p)
    logits = _sum_waves(p, {1: 2.0, 3: 1.0, 6: 0.5}, bias=bias)
    task = tasks.modular("add", p)
    train = task.split(0.4, seed=1).train
    c = task.c[train]
    if loss == "cross_entropy":
        expected = logsumexp(bias) - bias[c].mean()
    else:  # ½‖m − e_c‖² = ½‖m‖² − m_c + ½
        expected = 0.5 * (bias**2).sum() - bias[c].mean() + 0.5
    excluded = measures.excluded_loss(logits, task.c, p, [3, 1, 6], loss, train)
    assert excluded == pytest.approx(expected, abs=1e-12)
    assert excluded != pytest.approx(_plain_loss(logits[train], c, loss), abs=1e-3)


def test_excluded_loss_of_equal_constants_is_chance():
    p = 11
    logits = _sum_waves(p, {4: 3.0}, bias=np.full(p, 0.3))
    task = tasks.modular("add", p)
    value = measures.excluded_loss(logits, task.c, p, [4], "cross_entropy")
    assert value == pytest.approx(np.log(p), abs=1e-12)


def test_model_axis_equals_each_model_alone():
    p = 11
    task = tasks.modular("add", p)
    stack = np.random.default_rng(3).standard_normal((2, 3, p * p, p))
    keys = [5, 2]
    for measure in (measures.restricted_loss, measures.excluded_loss):
        together = measure(stack, task.c, p, keys, "cross_entropy", task.split(0.5).train)
        assert together.shape == (2, 3)
        for i in range(2):
            for j in range(3):
                alone = measure(stack[i, j], task.c, p, keys, "cross_entropy",
                                task.split(0.5).train)
                assert together[i, j] == pytest.approx(float(alone), abs=1e-12)
    assert fourier.sum_frequency_power(stack, p).shape == (2, 3, 5)
    assert fourier.logits_dft2(stack, p).shape == (2, 3, p, p, p)


def test_key_frequencies_recover_planted_frequencies_strongest_first():
    p = 17
    logits = _sum_waves(p, {4: 3.0, 1: 1.0, 6: 0.5}, bias=np.zeros(p), seed=4)
    logits += 0.01 * np.random.default_rng(5).standard_normal(logits.shape)
    np.testing.assert_array_equal(fourier.key_frequencies(logits, p, count=3), [4, 1, 6])
    np.testing.assert_array_equal(fourier.key_frequencies(logits, p, count=1), [4])
    power = fourier.sum_frequency_power(logits, p)
    assert power[[3, 0, 5]].sum() > 0.99
    # the rule: fewest frequencies whose power reaches `fraction` of the a + b power
    strongest = np.sort(power)[::-1]
    share = np.cumsum(strongest) / power.sum()
    for fraction in (0.5, 0.9, 0.99, 0.999):
        expected = int(np.argmax(share >= fraction)) + 1
        assert len(fourier.key_frequencies(logits, p, fraction=fraction)) == expected
    assert set(fourier.key_frequencies(logits, p, fraction=0.99)) == {1, 4, 6}


def test_key_frequencies_from_weights_recover_planted_frequencies():
    p, width = 19, 30
    generator = np.random.default_rng(6)
    ks = generator.choice([2, 7, 9], size=width, p=[0.6, 0.3, 0.1])
    n = np.arange(p)
    phase = generator.uniform(0, 2 * np.pi, (2, width, 1))
    W1 = np.concatenate([np.cos(2 * np.pi * ks[:, None] * n / p + phase[0]),
                         np.cos(2 * np.pi * ks[:, None] * n / p + phase[1])], axis=1)
    counts = [np.sum(ks == k) for k in (2, 7, 9)]
    assert counts[0] > counts[1] > counts[2] > 0
    np.testing.assert_array_equal(fourier.key_frequencies_from_weights(W1, p, count=3),
                                  [2, 7, 9])
    assert set(fourier.key_frequencies_from_weights(W1, p, fraction=0.999)) == {2, 7, 9}


def test_key_frequencies_of_analytic_solution_are_its_neurons_frequencies():
    p, width = 23, 6
    params = analytic.weights("add", p, width, seed=1)
    task = tasks.modular("add", p)
    logits = gk.mlp.forward(params.as_batch(), task.a[None], task.b[None])[0][0]
    planted = set(fourier.neuron_phases(params.W1, params.W2, p)["frequency"].tolist())
    assert len(planted) == width
    assert set(fourier.key_frequencies_from_weights(params.W1, p, fraction=0.9999)) == planted
    assert set(fourier.key_frequencies(logits, p, fraction=0.9999)) == planted


def test_ablations_of_analytic_solution():
    p = 23
    params = analytic.weights("add", p, 3 * p, seed=0)
    task = tasks.modular("add", p)
    logits = gk.mlp.forward(params.as_batch(), task.a[None], task.b[None])[0]  # (1, p², p)
    keys = fourier.key_frequencies(logits[0], p, fraction=0.99)
    assert len(keys) == (p - 1) // 2  # eq. 6 spreads the neurons over every frequency
    everything = np.arange(p * p)
    assert task.accuracy(logits[0], everything) == 1
    # the one-hot targets lie in the span of the constant and all waves along a + b, so the
    # projection onto that span can only bring the outputs nearer to them
    restricted = measures.restricted_loss(logits, task.c, p, keys, "mse")
    assert restricted.shape == (1,) and restricted[0] < _plain_loss(logits[0], task.c, "mse")
    assert task.accuracy(measures.restricted_logits(logits, p, keys)[0], everything) == 1
    # without its key frequencies the network is at chance on the training pairs
    train = task.split(0.3).train
    assert task.accuracy(measures.excluded_logits(logits, p, keys)[0][train], train) < 2 / p
    excluded = measures.excluded_loss(logits, task.c, p, keys, "cross_entropy", train)
    assert excluded[0] > 0.99 * np.log(p) > _plain_loss(logits[0][train], task.c[train],
                                                        "cross_entropy")


def test_bad_arguments_name_the_argument():
    p = 13
    task = tasks.modular("add", p)
    logits = np.random.default_rng(7).standard_normal((p * p, p))
    with pytest.raises(ValueError, match=r"count=7 .*1\.\.6"):
        fourier.key_frequencies(logits, p, count=7)
    with pytest.raises(ValueError, match="count=0"):
        fourier.key_frequencies(logits, p, count=0)
    with pytest.raises(ValueError, match="fraction=1.5"):
        fourier.key_frequencies(logits, p, fraction=1.5)
    with pytest.raises(ValueError, match="logits has shape"):
        fourier.key_frequencies(logits[:-1], p)
    with pytest.raises(ValueError, match="one model's"):
        fourier.key_frequencies(logits[None], p)
    with pytest.raises(ValueError, match="logits has shape"):
        measures.restricted_loss(logits[: p * (p - 1)], task.c, p, [1], "mse")
    with pytest.raises(ValueError, match="W1 has shape"):
        fourier.key_frequencies_from_weights(np.ones((4, 2 * p + 1)), p)
    with pytest.raises(ValueError, match="count=7"):
        fourier.key_frequencies_from_weights(np.ones((4, 2 * p)), p, count=7)
    for frequencies in ([0], [7], [2, 2], [1.5]):
        with pytest.raises(ValueError, match=r"frequencies=.*1\.\.6 for p=13"):
            measures.excluded_loss(logits, task.c, p, frequencies, "mse")
    with pytest.raises(ValueError, match="c has shape"):
        measures.restricted_loss(logits, task.c[:-1], p, [1], "mse")
    with pytest.raises(ValueError, match="loss='hinge'"):
        measures.restricted_loss(logits, task.c, p, [1], "hinge")
    with pytest.raises(ValueError, match="no power"):
        fourier.key_frequencies(np.ones((p * p, p)), p)


def sigmoid(t, centre, width):
    return 1 / (1 + np.exp(-(t - centre) / width))


def _grokking_curves():
    steps = np.arange(0, 10_000, 10)
    train = 4.0 * (1 - sigmoid(steps, 700, 100)) + 1e-3
    excluded = train + 6.0 * sigmoid(steps, 4_000, 800)          # falls with train, then rises
    test = 4.0 + 0.3 * sigmoid(steps, 2_000, 300) - 4.29 * sigmoid(steps, 9_000, 150)
    return steps, train, test, excluded


def test_grokking_phases_on_synthetic_curves():
    steps, _, test, excluded = _grokking_curves()
    phases = measures.grokking_phases(steps, test, excluded)
    assert phases.memorisation_end == steps[np.argmin(excluded)]
    assert 1_200 < phases.memorisation_end < 2_500
    peak = np.argmax(test)
    expected = steps[peak + np.argmax(test[peak:] <= 0.9 * test[peak])]
    assert phases.circuit_formation_end == expected
    assert 8_000 < phases.circuit_formation_end < 9_000


def test_grokking_phases_not_reached_give_nan():
    steps, train, test, excluded = _grokking_curves()
    no_grokking = np.full_like(test, 4.0) + 0.01 * np.sin(steps)
    phases = measures.grokking_phases(steps, no_grokking, excluded)
    assert phases.memorisation_end > 0 and np.isnan(phases.circuit_formation_end)
    # excluded loss that follows the train loss down and never rises: no circuit formed
    assert all(np.isnan(measures.grokking_phases(steps, test, train)))
    # one that rises, but to less than twice its minimum (level 0.5): still none
    small_rise = train + 0.9e-3 * sigmoid(steps, 4_000, 800)
    assert all(np.isnan(measures.grokking_phases(steps, test, small_rise)))
    assert not np.isnan(measures.grokking_phases(steps, test, small_rise, level=0.6)[0])
    with pytest.raises(ValueError, match="test_loss has shape"):
        measures.grokking_phases(steps, test[:-1], excluded)
    with pytest.raises(ValueError, match="drop=0.7"):
        measures.grokking_phases(steps, test, excluded, drop=0.7)
