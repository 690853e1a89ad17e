"""Fourier analysis over Z_p: spectra of weights and the inverse participation ratio."""

from __future__ import annotations

from typing import Any

import numpy as np

from gk.backend import array_namespace


def input_spectrum(W1: Any, p: int) -> Any:
    """Fourier transform of first-layer weights over each operand's input index.

    ``W1`` has shape (..., N, 2p): columns 0..p−1 read operand a, columns p..2p−1 operand b
    (k·p columns for k operands, as in seed 002's triples). Each block is transformed over
    Z_p separately (unitary DFT), giving 2p complex coefficients per neuron:
    ``[ DFT_p(W1[..., :p]), DFT_p(W1[..., p:]) ]``.
    """
    xp = array_namespace(W1)
    blocks = W1.reshape(*W1.shape[:-1], W1.shape[-1] // p, p)
    return xp.fft.fft(blocks, axis=-1, norm="ortho").reshape(W1.shape)


def ipr(W1: Any, p: int, r: int = 2) -> Any:
    """Average inverse participation ratio of the first layer (seed 001, App. C, eq. 28).

    ``IPR_r(k) = Σ_ν |w̃_νk|^{2r}`` with ``w̃_k`` neuron k's Fourier coefficients
    (:func:`input_spectrum`) normalised to unit ℓ2 norm over all D = 2p of them, and the
    result averaged over the N neurons: ``mean_k IPR_r(k)``.

    It equals ``1/(2p)`` for a flat spectrum (equal amplitude on all 2p coefficients),
    about ``1/p`` for random N(0, 1) weights as at initialisation (their power fluctuates
    from coefficient to coefficient), and ``1/4`` for the analytic solution (eqs. 6–7), whose
    neurons each hold one frequency ±k in each half.

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


def dft_matrix(p: int, kind: str = "complex") -> Any:
    """An orthonormal Fourier basis of functions on Z_p, rows indexed by frequency.

    ``complex``: F[k, n] = e^{−2πikn/p} / √p, k = 0..p−1 (F @ x is ``fft(x, norm="ortho")``).
    ``real``: rows 1/√p, then √(2/p)·cos(2πkn/p) and √(2/p)·sin(2πkn/p) for k = 1..⌊(p−1)/2⌋,
    and (−1)ⁿ/√p for even p; an orthogonal p×p matrix.
    """
    n = np.arange(p)
    if kind == "complex":
        return np.exp(-2j * np.pi * np.outer(n, n) / p) / np.sqrt(p)
    if kind != "real":
        raise ValueError(f"kind={kind!r}; allowed: 'complex', 'real'")
    rows = [np.full(p, 1 / np.sqrt(p))]
    for k in range(1, (p - 1) // 2 + 1):
        rows.append(np.sqrt(2 / p) * np.cos(2 * np.pi * k * n / p))
        rows.append(np.sqrt(2 / p) * np.sin(2 * np.pi * k * n / p))
    if p % 2 == 0:
        rows.append((-1.0) ** n / np.sqrt(p))
    return np.array(rows)


def output_spectrum(W2: Any) -> Any:
    """Fourier transform of read-out weights W2 (..., p, N) over the output index q."""
    xp = array_namespace(W2)
    return xp.fft.fft(W2, axis=-2, norm="ortho")


def dominant_waves(spectrum: Any) -> tuple[Any, Any]:
    """Frequency ν in 1..⌊(p−1)/2⌋ of largest amplitude, and its phase, along the last axis.

    For a wave cos(2πνn/p + φ) the transform peaks at ±ν and its phase at +ν is φ.
    """
    xp = array_namespace(spectrum)
    p = spectrum.shape[-1]
    positive = spectrum[..., 1:(p - 1) // 2 + 1]
    nu = xp.abs(positive).argmax(axis=-1)
    phase = xp.angle(xp.take_along_axis(positive, nu[..., None], axis=-1)[..., 0])
    return nu + 1, phase


def neuron_phases(W1: Any, W2: Any, p: int) -> dict[str, Any]:
    """Each neuron's frequency and phases φ⁽¹⁾, φ⁽²⁾, φ⁽³⁾ (seed 001, Fig. 3).

    φ⁽¹⁾ and φ⁽²⁾ are read from the a- and b-halves of W1 (N, 2p), φ⁽³⁾ from W2 (p, N) at
    the frequency of the a-half; for the analytic solution (eq. 12) ``mismatch`` =
    φ⁽¹⁾ + φ⁽²⁾ − φ⁽³⁾, wrapped to (−π, π], is 0. Leading axes (models) are kept.

    Returns
    -------
    dict
        ``frequency``, ``frequency_b``, ``frequency_out``, ``phase1``, ``phase2``,
        ``phase3``, ``mismatch``: arrays of shape (..., N).
    """
    xp = array_namespace(W1)
    halves = W1.reshape(*W1.shape[:-1], 2, p)
    spectra = xp.fft.fft(halves, axis=-1, norm="ortho")               # (..., N, 2, p)
    nu_a, phase1 = dominant_waves(spectra[..., 0, :])
    nu_b, _ = dominant_waves(spectra[..., 1, :])
    out = xp.moveaxis(output_spectrum(W2), -1, -2)                     # (..., N, p)
    nu_out, _ = dominant_waves(out)
    pick = lambda spectrum: xp.angle(xp.take_along_axis(  # noqa: E731
        spectrum, nu_a[..., None], axis=-1)[..., 0])
    phase2, phase3 = pick(spectra[..., 1, :]), pick(out)
    mismatch = xp.angle(xp.exp(1j * (phase1 + phase2 - phase3)))
    return {"frequency": nu_a, "frequency_b": nu_b, "frequency_out": nu_out,
            "phase1": phase1, "phase2": phase2, "phase3": phase3, "mismatch": mismatch}


def circular_statistics(angles: Any) -> tuple[float, float]:
    """Circular mean and mean resultant length R ∈ [0, 1] (concentration) of angles."""
    xp = array_namespace(angles)
    resultant = xp.exp(1j * angles).mean()
    return float(xp.angle(resultant)), float(xp.abs(resultant))


def dft2(grid: Any) -> Any:
    """Unitary 2-D DFT over the two operand axes of a (..., p, p) array indexed [a, b]
    (seed 001, Fig. 2, second row: pre-activations or logits over all pairs)."""
    xp = array_namespace(grid)
    return xp.fft.fft2(grid, axes=(-2, -1), norm="ortho")
