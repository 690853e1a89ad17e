import numpy as np
import pytest

from gk.fourier import input_spectrum, ipr


def _fourier_weights(p, width, seed=0):
    """Weights of the form of seed 001, eq. 6: cos(2πk n/p + φ) in each half."""
    generator = np.random.default_rng(seed)
    k = generator.integers(1, (p - 1) // 2 + 1, size=width)[:, None]
    n = np.arange(p)[None, :]
    phase1, phase2 = generator.uniform(0, 2 * np.pi, (2, width, 1))
    return np.concatenate([np.cos(2 * np.pi * k * n / p + phase1),
                           np.cos(2 * np.pi * k * n / p + phase2)], axis=1)


def test_ipr_of_analytic_solution_is_one_quarter():
    assert np.isclose(ipr(_fourier_weights(31, 40), 31), 0.25)


def test_ipr_of_flat_spectrum_is_one_over_2p():
    p = 13
    delta = np.zeros((3, 2 * p))
    delta[:, [0, p]] = 1  # a delta in each half has a flat spectrum over all 2p coefficients
    assert np.isclose(ipr(delta, p), 1 / (2 * p))
    delta[:, p] = 0  # only half of the coefficients are nonzero now
    assert np.isclose(ipr(delta, p), 1 / p)


def test_ipr_r1_is_one_and_random_weights_are_delocalised():
    W1 = np.random.default_rng(0).standard_normal((2, 64, 62))
    assert np.allclose(ipr(W1, 31, r=1), 1.0)
    assert (ipr(W1, 31) < 0.1).all()
    assert ipr(W1, 31).shape == (2,)


def test_spectrum_matches_explicit_dft_sum():
    p = 7
    W1 = np.random.default_rng(1).standard_normal((3, 2 * p))
    n = np.arange(p)
    basis = np.exp(-2j * np.pi * np.outer(n, n) / p) / np.sqrt(p)
    expected = np.concatenate([W1[:, :p] @ basis.T, W1[:, p:] @ basis.T], axis=1)
    np.testing.assert_allclose(input_spectrum(W1, p), expected, atol=1e-12)


def test_frequency_power_holds_all_of_the_weights_and_finds_a_wave():
    from gk.fourier import frequency_power, key_frequencies_from_weights

    p = 13
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, p))
    power = frequency_power(W, p)
    assert power.shape == (7,)
    assert power.sum() == pytest.approx((W**2).sum(), rel=1e-12)   # Parseval, odd p
    wave = np.outer(rng.standard_normal(4), np.cos(2 * np.pi * 3 * np.arange(p) / p + 0.4))
    power = frequency_power(wave, p)
    assert power[3] == pytest.approx(power.sum(), rel=1e-12)
    assert list(key_frequencies_from_weights(wave + 1e-3 * W[:4], p, count=1)) == [3]
