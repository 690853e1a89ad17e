"""Fourier analysis over Z_p: spectra of weights and the inverse participation ratio."""

from __future__ import annotations

from typing import Any

from gk.backend import array_namespace


def input_spectrum(W1: Any, p: int) -> Any:
    """Fourier transform of first-layer weights over each operand's input index.

    ``W1`` has shape (..., N, 2p): columns 0..p−1 read operand a, columns p..2p−1 operand b.
    Each half is transformed over Z_p separately (unitary DFT), giving 2p complex
    coefficients per neuron: ``[ DFT_p(W1[..., :p]), DFT_p(W1[..., p:]) ]``.
    """
    xp = array_namespace(W1)
    halves = W1.reshape(*W1.shape[:-1], 2, p)
    return xp.fft.fft(halves, axis=-1, norm="ortho").reshape(W1.shape)


def ipr(W1: Any, p: int, r: int = 2) -> Any:
    """Average inverse participation ratio of the first layer (seed 001, App. C, eq. 28).

    ``IPR_r(k) = Σ_ν |w̃_νk|^{2r}`` with ``w̃_k`` neuron k's Fourier coefficients
    (:func:`input_spectrum`) normalised to unit ℓ2 norm over all D = 2p of them, and the
    result averaged over the N neurons: ``mean_k IPR_r(k)``.

    It equals ``1/(2p)`` for weights spread evenly over all frequencies and ``1/4`` for the
    analytic solution (eqs. 6–7), whose neurons each hold one frequency ±k in each half.

    Parameters
    ----------
    W1 : array, shape (..., N, 2p)
    p : int
    r : int
        The power; ``r = 1`` gives 1 for every neuron, the paper takes ``r = 2``.

    Returns
    -------
    array, shape (...)
        One value per leading index (e.g. per model).
    """
    xp = array_namespace(W1)
    power = xp.abs(input_spectrum(W1, p)) ** 2
    norm = power.sum(axis=-1, keepdims=True)
    return ((power / norm) ** r).sum(axis=-1).mean(axis=-1)
