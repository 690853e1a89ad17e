import numpy as np
import pytest

from gk import analytic, fourier, mlp, tasks


def _accuracy(params, op, p):
    return mlp.evaluate(params, tasks.modular(op, p))["accuracy"]


@pytest.mark.parametrize("op", ["add", "sub", "x2+y2"])
def test_analytic_weights_solve_the_task_table(op):
    assert _accuracy(analytic.weights(op, p=23, width=512, seed=0), op, 23) == 1.0


def test_analytic_weights_solve_x2_plus_y2_and_half_of_square_of_sum():
    p = 31
    assert _accuracy(analytic.weights("x2+y2", p, 512), "x2+y2", p) == 1.0
    one = _accuracy(analytic.weights("(x+y)2", p, 512), "(x+y)2", p)
    assert 0.4 < one < 0.6                                       # two branches of √q
    assert analytic.encoding("(x+y)2", p).branches == 2
    assert _accuracy(analytic.weights("(x+y)2", p, 512, branches="all"), "(x+y)2", p) == 1.0


def test_user_functions_claim_ii_and_corollary():
    p = 19
    task = tasks.modular(lambda a, b: (3 * a + 5 * b + 2) % p, p)
    params = analytic.weights(None, p, 512, f1=lambda n: 3 * n + 2, f2=lambda m: 5 * m)
    assert mlp.evaluate(params, task)["accuracy"] == 1.0
    cube = tasks.modular(lambda a, b: (a + b) ** 3 % p, p)  # s³ has 3 branches mod 19
    assert analytic.encoding(None, p, lambda n: n, lambda m: m, lambda s: s**3).branches == 3
    params = analytic.weights(None, p, 512, f1=lambda n: n, f2=lambda m: m,
                              F=lambda s: s**3, branches="all")
    assert mlp.evaluate(params, cube)["accuracy"] == 1.0


@pytest.mark.parametrize("op, lost", [("mul", lambda p: 2 * p - 2),
                                       ("div", lambda p: p - 1)])
def test_multiplicative_ops_through_discrete_log_miss_only_zero_operands(op, lost):
    p = 23
    task = tasks.modular(op, p)
    params = analytic.weights(op, p, 512, seed=1)
    f, _ = mlp.forward(params.as_batch(), task.a[None], task.b[None])
    correct = f[0].argmax(axis=1) == task.c
    nonzero = (task.a != 0) & (task.b != 0)
    assert correct[nonzero].all()
    assert (~correct).sum() == lost(p)  # (0, 0) of mul is right: every output is 0


def test_complex_network_is_exact_at_full_width():
    p = 13
    params = analytic.weights("add", p, width=p, complex=True)
    assert np.iscomplexobj(params.W1)
    assert _accuracy(params, "add", p) == 1.0


def test_output_is_the_constructive_interference_term():
    """Seed 001, eq. 13: with φ⁽³⁾ = φ⁽¹⁾ + φ⁽²⁾ the network output contains
    (1/N) Σ_k cos(2πν_k (n + m − q)/p); the rest is the sum of the other waves of eq. 11."""
    p, width = 11, 40
    params = analytic.weights("add", p, width, seed=3)
    task = tasks.modular("add", p)
    f, _ = mlp.forward(params.as_batch(), task.a[None], task.b[None])
    nu, phase1, phase2 = _planted(width, p, seed=3)
    n, m = task.a[:, None, None], task.b[:, None, None]
    q = np.arange(p)[None, :, None]
    w = 2 * np.pi * nu / p
    phase3 = phase1 + phase2
    terms = (0.25 * np.cos(w * (2 * n - q) + 2 * phase1 - phase3)
             + 0.25 * np.cos(w * (2 * n + q) + 2 * phase1 + phase3)
             + 0.25 * np.cos(w * (2 * m - q) + 2 * phase2 - phase3)
             + 0.25 * np.cos(w * (2 * m + q) + 2 * phase2 + phase3)
             + 0.5 * np.cos(w * (n + m - q))
             + 0.5 * np.cos(w * (n + m + q) + 2 * phase3)
             + 0.5 * np.cos(w * (n - m - q) + phase1 - phase2 - phase3)
             + 0.5 * np.cos(w * (n - m + q) + phase1 - phase2 + phase3)
             + np.cos(w * q + phase3))
    np.testing.assert_allclose(f[0], (2 / width) * terms.sum(axis=-1), atol=1e-12)
    constructive = (1 / width) * np.cos(w * (n + m - q)).sum(axis=-1)
    at_answer = constructive[np.arange(task.size), task.c]
    np.testing.assert_allclose(at_answer, 1.0)


def _planted(width, p, seed):
    """The frequencies and phases analytic.weights draws, from the same stream."""
    nu = analytic.frequencies(width, p, np.random.default_rng((seed, 4)))
    phase1, phase2 = np.random.default_rng((seed, 6)).uniform(0, 2 * np.pi, (width, 2)).T
    return nu, phase1, phase2


def test_phase_extraction_recovers_planted_phases():
    p, width = 17, 30
    params = analytic.weights("add", p, width, seed=5)
    nu, phase1, phase2 = _planted(width, p, seed=5)
    found = fourier.neuron_phases(params.W1, params.W2, p)
    assert (found["frequency"] == nu).all() and (found["frequency_out"] == nu).all()
    wrap = lambda x: np.angle(np.exp(1j * x))  # noqa: E731
    np.testing.assert_allclose(wrap(found["phase1"] - phase1), 0, atol=1e-10)
    np.testing.assert_allclose(wrap(found["phase2"] - phase2), 0, atol=1e-10)
    np.testing.assert_allclose(found["mismatch"], 0, atol=1e-10)
    mean, concentration = fourier.circular_statistics(found["mismatch"])
    assert abs(mean) < 1e-10 and concentration == pytest.approx(1.0)


def test_frequencies_cover_all_before_repeating():
    nu = analytic.frequencies(20, 11, np.random.default_rng(0))
    assert sorted(nu[:5].tolist()) == [1, 2, 3, 4, 5]
    assert sorted(nu[5:10].tolist()) == [1, 2, 3, 4, 5]


def test_width_curve_matches_single_networks_and_rises():
    ds = analytic.width_curve("add", 23, widths=[4, 16, 64], activations=["quadratic", "relu"],
                              seeds=[0, 1])
    assert ds.accuracy.dims == ("width", "activation", "seed")
    single = _accuracy(analytic.weights("add", 23, 16, seed=1, activation="relu"), "add", 23)
    widest = analytic.weights("add", 23, 64, seed=1, activation="relu")
    np.testing.assert_array_equal(_truncate(widest, 16).W1,
                                  analytic.weights("add", 23, 16, seed=1).W1)
    assert ds.accuracy.sel(width=16, activation="relu", seed=1) == pytest.approx(single)
    assert (ds.accuracy.sel(activation="quadratic").diff("width") >= -0.05).all()
    assert float(ds.accuracy.sel(width=64, activation="quadratic").mean()) > 0.9


def _truncate(params, width):
    return mlp.Params(params.W1[:width], params.W2[:, :width], params.activation)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(op="x2+xy+y2"), ValueError, "no closed form"),
    (dict(op="mul", p=12), ValueError, "prime p"),
    (dict(width=0), ValueError, "width=0"),
    (dict(activation="swish"), ValueError, "activation='swish'"),
    (dict(branches="some"), ValueError, "branches='some'"),
    (dict(op=None, f1=lambda n: n), ValueError, "f1 and f2"),
    (dict(complex=True, activation="relu"), ValueError, "App. A"),
    (dict(op=None, f1=lambda n: n, f2=lambda m: m, F=lambda s: s / 2), ValueError,
     "F must map"),
])
def test_bad_input_is_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        analytic.weights(**{"p": 11, "width": 8, **kwargs})


def test_fourier_round_trips_and_ipr_limits():
    p = 13
    x = np.random.default_rng(0).standard_normal(p)
    for kind in ("complex", "real"):
        F = fourier.dft_matrix(p, kind)
        np.testing.assert_allclose(F.conj().T @ (F @ x), x, atol=1e-12)
    np.testing.assert_allclose(fourier.dft_matrix(p) @ x, np.fft.fft(x, norm="ortho"))
    grid = np.random.default_rng(1).standard_normal((p, p))
    np.testing.assert_allclose(np.fft.ifft2(fourier.dft2(grid), norm="ortho").real, grid,
                               atol=1e-12)
    tone = np.concatenate([np.exp(2j * np.pi * 3 * np.arange(p) / p), np.zeros(p)])
    assert fourier.ipr(tone[None], p)[()] == pytest.approx(1.0)   # one coefficient
