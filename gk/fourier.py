"""Fourier analysis over Z_p: spectra of weights and the inverse participation ratio, the 2-D
DFT of a model's outputs over all pairs, and seed 003's key frequencies."""

from __future__ import annotations

from typing import Any

import numpy as np

from gk.backend import array_namespace, to_numpy
from gk.config import check_int


def input_spectrum(W1: Any, p: int) -> Any:
    """Fourier transform of first-layer weights over each operand's input index.

    ``W1`` has shape (..., N, 2p): columns 0..p−1 read operand a, columns p..2p−1 operand b
    (k·p columns for k operands, as in seed 002's triples). Each block is transformed over
    Z_p separately (unitary DFT), giving 2p complex coefficients per neuron:
    ``[ DFT_p(W1[..., :p]), DFT_p(W1[..., p:]) ]``.
    """
    check_int("p", p, 2)
    shape = getattr(W1, "shape", ())
    if len(shape) < 2 or shape[-1] % p or shape[-1] == 0:
        raise ValueError(f"W1 has shape {tuple(shape)}; its last axis must hold k·p columns, "
                         f"p={p} per operand")
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
    check_int("p", p, 1)
    n = np.arange(p)
    if kind == "complex":
        return np.exp(-2j * np.pi * np.outer(n, n) / p) / np.sqrt(p)
    if kind != "real":
        raise ValueError(f"kind={kind!r} is not allowed; allowed: 'complex', 'real'")
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


# --- Outputs over all pairs and their key frequencies (seed 003) -------------------------------


def check_logits(logits: Any, p: int) -> None:
    """Raise unless ``logits`` has shape (..., p², outputs): one row per pair (a, b) of Z_p²
    in row-major order (``n = a·p + b``, the order of ``gk.tasks.modular(op, p).pairs`` for
    every op defined on all pairs)."""
    check_int("p", p, 3)
    shape = getattr(logits, "shape", None)
    if shape is None or len(shape) < 2 or shape[-2] != p * p:
        raise ValueError(f"logits has shape {shape}; it must be (..., p², outputs) = "
                         f"(..., {p * p}, outputs), one row per pair (a, b) in row-major order")


def logits_dft2(logits: Any, p: int) -> Any:
    """Unitary 2-D DFT over (a, b) of every output of a model (seed 003: the logits'
    Fourier components over the inputs).

    ``logits[..., a·p + b, c]`` is rearranged into the grid ``[..., c, a, b]`` and transformed
    with :func:`dft2`:
    ``out[..., c, k_a, k_b] = (1/p) Σ_{a,b} f_c(a, b) e^{−2πi(k_a a + k_b b)/p}``.
    A wave along a + b of frequency k sits on the diagonal, at (k, k) and (−k, −k).

    Parameters
    ----------
    logits : array, shape (..., p², outputs)
        Outputs on all pairs in row-major order (:func:`check_logits`); leading axes
        (models, snapshots) are kept.
    p : int

    Returns
    -------
    complex array, shape (..., outputs, p, p)
    """
    check_logits(logits, p)
    xp = array_namespace(logits)
    grid = logits.reshape(*logits.shape[:-2], p, p, logits.shape[-1])
    return dft2(xp.moveaxis(grid, -1, -3))


def check_frequencies(frequencies: Any, p: int) -> np.ndarray:
    """Return ``frequencies`` as a host int array after checking that they are distinct
    integers in 1..⌊(p−1)/2⌋ (repeats would project a component twice)."""
    check_int("p", p, 3)
    ks = to_numpy(frequencies)
    top = (p - 1) // 2
    if ks.ndim == 0:
        ks = ks[None]
    integral = ks.size == 0 or np.issubdtype(ks.dtype, np.integer)
    if (ks.ndim != 1 or not integral or ((ks < 1) | (ks > top)).any()
            or len(np.unique(ks)) != ks.size):
        raise ValueError(f"frequencies={ks.tolist()} is not allowed; frequencies must be "
                         f"distinct integers in 1..{top} for p={p}")
    return ks.astype(np.int64)


def sum_basis(p: int, frequencies: Any, constant: bool = True) -> np.ndarray:
    """Orthonormal functions of a + b on the p² pairs, one row each (seed 003's directions).

    Rows: ``1/p`` (with ``constant``), then for each k in ``frequencies`` the pair
    ``(√2/p)·cos(w_k(a + b))`` and ``(√2/p)·sin(w_k(a + b))``, w_k = 2πk/p, over the pairs in
    row-major order. They are orthonormal for every p ≥ 3 and k in 1..⌊(p−1)/2⌋, since
    Σ_{a,b} cos²(w_k(a + b)) = p²/2. Built from the rows of :func:`dft_matrix` ("real")
    evaluated at n = (a + b) mod p (each n occurs p times, hence the extra 1/√p).

    Returns
    -------
    numpy.ndarray, shape (2K + 1, p²) with ``constant``, else (2K, p²); K = len(frequencies)
    """
    ks = check_frequencies(frequencies, p)
    rows = np.stack([2 * ks - 1, 2 * ks], axis=1).ravel()  # cos, sin rows of dft_matrix
    if constant:
        rows = np.concatenate([[0], rows])
    n = np.add.outer(np.arange(p), np.arange(p)).ravel() % p
    return dft_matrix(p, "real")[rows][:, n] / np.sqrt(p)


def sum_frequency_power(logits: Any, p: int) -> Any:
    """Share of the logits' centred squared norm along cos/sin(w_k(a + b)), k = 1..⌊(p−1)/2⌋.

    ``power[..., k−1] = Σ_c (⟨f_c, u_k⟩² + ⟨f_c, v_k⟩²) / Σ_c ‖f_c − mean f_c‖²``, with f_c
    output c's values on all p² pairs and u_k, v_k the rows of :func:`sum_basis`: how much of
    the logits (after removing each output's mean over pairs) the waves along a + b of
    frequency k carry (seed 003). Equivalently ``2 Σ_c |F_c[k, k]|²`` over the
    centred norm, with F = :func:`logits_dft2`. The shares sum to ≤ 1; the rest lies in
    directions that are not functions of a + b (e.g. waves along a − b, or memorised noise).

    Returns
    -------
    array, shape (...)+(⌊(p−1)/2⌋,)
        NaN where the logits are constant over the pairs.
    """
    check_logits(logits, p)
    xp = array_namespace(logits)
    basis = xp.asarray(sum_basis(p, np.arange(1, (p - 1) // 2 + 1), constant=False))
    coefficients = basis @ logits                                      # (..., 2K, outputs)
    power = (coefficients**2).sum(axis=-1)
    power = power.reshape(*power.shape[:-1], -1, 2).sum(axis=-1)       # cos² + sin²
    centred = logits - logits.mean(axis=-2, keepdims=True)
    norm = (centred**2).sum(axis=(-2, -1))[..., None]
    return xp.where(norm > 0, power / xp.where(norm > 0, norm, 1), xp.nan)


def _strongest(power: np.ndarray, count: int | None, fraction: float, argument: str) -> Any:
    """Frequencies (1-based) by decreasing power: the first ``count``, or the fewest whose
    power reaches ``fraction`` of the total."""
    top = len(power)
    if count is not None:
        check_int("count", count, 1)
        if count > top:
            raise ValueError(f"count={count} is too large; count must be in 1..{top} "
                             f"(= ⌊(p−1)/2⌋ for p={2 * top + 1})")
    elif isinstance(fraction, bool) or not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction!r} is not allowed; fraction must be in (0, 1]")
    if not np.isfinite(power).all() or power.sum() <= 0:
        raise ValueError(f"{argument} carries no power at any frequency 1..{top}; "
                         "key frequencies are undefined")
    order = np.argsort(-power, kind="stable")
    if count is None:
        cumulative = np.cumsum(power[order]) / power.sum()
        count = min(int(np.searchsorted(cumulative, fraction * (1 - 1e-12))) + 1, top)
    return order[:count] + 1


def key_frequencies(logits: Any, p: int, count: int | None = None,
                    fraction: float = 0.9) -> np.ndarray:
    """Key frequencies of a model read from its logits (seed 003).

    Rule: each k in 1..⌊(p−1)/2⌋ is scored by :func:`sum_frequency_power`, the share of the
    centred logits along cos(w_k(a + b)) and sin(w_k(a + b)), summed over the outputs. The
    frequencies are sorted by score, strongest first, and either the first ``count`` are
    taken, or (``count=None``) the fewest whose scores add up to at least ``fraction`` of the
    summed scores of all frequencies, i.e. of all of the logits' power along a + b.

    Parameters
    ----------
    logits : array, shape (p², outputs)
        One model's outputs on all pairs (:func:`check_logits`); no leading axis: the
        ablations of seed 003 fix the key frequencies of the final model and apply them to
        every earlier step.
    p : int
    count : int, optional
        How many to take, 1..⌊(p−1)/2⌋; overrides ``fraction``.
    fraction : float
        Share of the a + b power to reach when ``count`` is None, in (0, 1].

    Returns
    -------
    numpy.ndarray of int
        The key frequencies, strongest first.

    Raises
    ------
    ValueError
        For logits of another shape, ``count`` outside 1..⌊(p−1)/2⌋, ``fraction`` outside
        (0, 1], or logits without any component along a + b.

    Examples
    --------
    >>> import numpy as np
    >>> p = 11
    >>> a, b = np.divmod(np.arange(p * p), p)
    >>> logits = np.stack([np.cos(2 * np.pi * 3 * (a + b - c) / p) for c in range(p)], axis=1)
    >>> key_frequencies(logits, p)
    array([3])
    """
    check_logits(logits, p)
    if logits.ndim != 2:
        raise ValueError(f"logits has shape {logits.shape}; key_frequencies takes one model's "
                         f"logits, shape (p², outputs) = ({p * p}, outputs)")
    power = to_numpy(sum_frequency_power(logits, p))
    return _strongest(power, count, fraction, "logits")


def frequency_power(W1: Any, p: int) -> np.ndarray:
    """Power of one model's first-layer (embedding) weights at each frequency k of Z_p
    (seed 003 reads its key frequencies off these norms of W_E's Fourier components).

    ``power[k] = Σ_neurons Σ_operands |W̃[k]|² + |W̃[p−k]|²`` for k = 1..⌊(p−1)/2⌋ (cos and
    sin of frequency k together; for even p the last one, k = p/2, is not a wave pair and is
    left out) and ``power[0]`` the constant's, with W̃ = :func:`input_spectrum`. By
    Parseval the powers add up to ‖W1‖² for odd p.

    Parameters
    ----------
    W1 : array, shape (N, k·p)
        One model's first layer, operand blocks of p columns each (the transformer's
        ``W_E[:p].T``).
    p : int

    Returns
    -------
    numpy.ndarray, shape (⌊(p−1)/2⌋ + 1,)
    """
    check_int("p", p, 3)
    shape = getattr(W1, "shape", None)
    if shape is None or len(shape) != 2 or shape[-1] % p or shape[-1] == 0:
        raise ValueError(f"W1 has shape {shape}; it must be one model's (N, k·p) weights "
                         f"with p={p} columns per operand")
    spectrum = input_spectrum(W1, p).reshape(shape[0], -1, p)
    power = to_numpy((array_namespace(W1).abs(spectrum) ** 2).sum(axis=(0, 1)))
    top = (p - 1) // 2
    return np.concatenate([power[:1], power[1:top + 1] + power[p - top:][::-1]])


def key_frequencies_from_weights(W1: Any, p: int, count: int | None = None,
                                 fraction: float = 0.9) -> np.ndarray:
    """Key frequencies of a model read from its first-layer (embedding) weights (seed 003,
    the norms of the Fourier components of W_E).

    Rule: each k in 1..⌊(p−1)/2⌋ is scored by :func:`frequency_power` (the constant, k = 0,
    is not a candidate). Then, as in :func:`key_frequencies`, the ``count`` strongest or the
    fewest that reach ``fraction`` of the summed scores, strongest first.

    Parameters
    ----------
    W1 : array, shape (N, k·p)
        One model's first layer, operand blocks of p columns each.
    p : int
    count, fraction
        As in :func:`key_frequencies`.

    Returns
    -------
    numpy.ndarray of int
    """
    return _strongest(frequency_power(W1, p)[1:], count, fraction, "W1")
