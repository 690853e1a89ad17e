"""Analytic Fourier weights that solve modular tasks without training (seed 001, Sec. 3).

Claim I (eqs. 6–7) for a + b mod p, with neuron k holding frequency ν_k::

    W1[k, n]     = cos(2π ν_k n / p + φ⁽¹⁾_k)          n = 0..p−1     (operand a)
    W1[k, p + m] = cos(2π ν_k m / p + φ⁽²⁾_k)          m = 0..p−1     (operand b)
    W2[q, k]     = cos(−2π ν_k q / p − φ⁽³⁾_k),        φ⁽³⁾ = φ⁽¹⁾ + φ⁽²⁾  (eq. 12)

With φ = z² the output is ≈ δ(n + m − q) (eq. 13–16): the constructive term survives and
the rest cancels on average over the random phases. Claim II (eq. 18) replaces n, m by
f1(n), f2(m), which solves f1(n) + f2(m) mod p; the corollary (eq. 19) reads out F⁻¹(q),
which solves F(f1(n) + f2(m)). Multiplication and division become additions of discrete
logarithms, over Z_{p−1}. Appendix A writes the same solution with complex exponentials.

Everything is described by an :class:`Encoding`: which residue each operand value and each
output class stands for, in a cyclic group Z_P (P = p, or p − 1 for logarithms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from gk import backend
from gk.config import check_choice, check_int
from gk.mlp.model import ACTIVATIONS, Params, check_activation, forward
from gk.tasks import discrete_log, is_prime, modular

SOLVABLE = ("add", "sub", "x2+y2", "(x+y)2", "mul", "div")
"""Named ops with a closed form; any f1(n) + f2(m), optionally inside F, is solvable too."""


@dataclass(frozen=True)
class Encoding:
    """How a task maps to addition in a cyclic group Z_P.

    Attributes
    ----------
    modulus : int
        P, the size of the group the Fourier waves live on.
    first, second : numpy.ndarray
        f1(n), f2(m) ∈ Z_P of each operand value (−1: the value has no image, e.g. log 0).
    readout : list of list of int
        For each output class q, the residues s with F(s) = q (its branches of F⁻¹).
    """

    modulus: int
    first: np.ndarray
    second: np.ndarray
    readout: list[list[int]] = field(repr=False)

    @property
    def branches(self) -> int:
        """The largest number of branches of F⁻¹ over the classes."""
        return max(len(r) for r in self.readout)


def _inverse_images(p: int, F: Callable[[np.ndarray], np.ndarray], modulus: int) -> list:
    """F⁻¹(q) = {s : F(s) ≡ q} for every class q, found by evaluating F on all of Z_P."""
    images = np.asarray(F(np.arange(modulus)))
    if images.shape != (modulus,) or not np.issubdtype(images.dtype, np.integer):
        raise ValueError(f"F must map the integer array 0..{modulus - 1} to integers of the "
                         f"same shape, got {images.dtype} values of shape {images.shape}")
    images = images % p
    return [np.flatnonzero(images == q).tolist() for q in range(p)]


def encoding(op: str | None, p: int, f1: Callable | None = None, f2: Callable | None = None,
             F: Callable | None = None) -> Encoding:
    """The :class:`Encoding` of a named op or of user functions f1, f2 (and F).

    Raises
    ------
    ValueError
        For an op without a closed form, or ``mul``/``div`` with a p that is not prime.
    """
    values = np.arange(p)
    if op is None or f1 is not None:
        if f1 is None or f2 is None:
            raise ValueError("give both f1 and f2 (functions of an int array), or a named op")
        first, second = np.asarray(f1(values)) % p, np.asarray(f2(values)) % p
        return Encoding(p, first, second, _inverse_images(p, F or (lambda s: s), p))
    if op in ("mul", "div"):
        if not is_prime(p):
            raise ValueError(f"op={op!r} needs a prime p for its discrete logarithm, got p={p}")
        _, log, antilog = discrete_log(p)
        second = log if op == "mul" else np.where(log >= 0, (-log) % (p - 1), -1)
        readout = [[] for _ in range(p)]
        for k, value in enumerate(antilog):
            readout[value].append(k)
        return Encoding(p - 1, log, second, readout)
    forms = {"add": (values, values, None), "sub": (values, -values, None),
             "x2+y2": (values**2, values**2, None), "(x+y)2": (values, values, np.square)}
    if op not in forms:
        raise ValueError(f"op={op!r} has no closed form; solvable: {', '.join(SOLVABLE)}, or "
                         "f1(n) + f2(m) given as f1=, f2= (and F= for F(f1 + f2))")
    first, second, outer = forms[op]
    readout = _inverse_images(p, outer or (lambda s: s), p)
    return Encoding(p, first % p, second % p, readout)


def frequencies(width: int, modulus: int, generator: np.random.Generator) -> np.ndarray:
    """ν_k of each neuron: random distinct frequencies from 1..⌊(P−1)/2⌋; wider networks
    repeat the whole set (each repetition a fresh random order), so that every prefix of
    the neurons is itself a valid network of that width."""
    available = np.arange(1, (modulus - 1) // 2 + 1)
    repeats = -(-width // len(available))
    return np.concatenate([generator.permutation(available) for _ in range(repeats)])[:width]


def weights(op: str | None = "add", p: int = 97, width: int = 512, seed: int = 0,
            activation: str = "quadratic", f1: Callable | None = None,
            f2: Callable | None = None, F: Callable | None = None,
            branches: str = "one", complex: bool = False, dtype: Any = "float64") -> Params:
    """Network weights that solve a modular task in closed form (seed 001, eqs. 6, 7, 12).

    Parameters
    ----------
    op : str or None
        ``add``, ``sub``, ``x2+y2`` (eq. 30), ``(x+y)2`` (eq. 31), ``mul`` or ``div`` (through
        the discrete logarithm); None with ``f1``, ``f2`` (and ``F``) given.
    p, width, seed : int
        Modulus, number of neurons N, seed of the frequencies ν_k and phases φ⁽¹⁾, φ⁽²⁾.
    activation : str
        φ of the network (App. B: the weights also work for other activations).
    f1, f2 : callable, optional
        Claim II (eq. 18): solve f1(n) + f2(m) mod p (integer arrays in, out).
    F : callable, optional
        The corollary (eq. 19): solve F(f1(n) + f2(m)) by reading out F⁻¹(q).
    branches : {"one", "all"}
        Where F⁻¹ has several branches (square roots for ``(x+y)2``): ``"one"`` reads out one
        root per class, as the paper does, so about 1/b of the pairs are right; ``"all"``
        sums the waves of every branch, which makes the read-out exact.
    complex : bool
        App. A (eqs. 20–21): W1 = e^{i(2πν n/P + φ)}, W2 = e^{−i(2πν q/P + φ⁽³⁾)}; the network's
        output is the real part. With width ≥ P every frequency is present and it is exact.
    dtype : {"float64", "float32"}

    Returns
    -------
    Params
        W1 (N, 2p), W2 (p, N), for :func:`gk.mlp.evaluate` and every other network function.

    Notes
    -----
    For ``mul`` (``div``) the operands 0 have no logarithm: their columns of W1 are 0, and
    class 0 is never read out. The 2p − 2 pairs with exactly one zero operand (the p − 1
    pairs with a = 0) are not solved; (0, 0) outputs 0 on every class and the argmax gives
    its answer 0. Accuracy: 1 − (2p − 2)/p² (1 − 1/p) on the task's pairs.
    """
    code, dtype = _check_weights(op, p, width, seed, activation, f1, f2, F, branches,
                                 complex, dtype)
    # Separate streams, phases drawn neuron by neuron: the first N neurons of a wider
    # network are exactly the network of width N with the same seed.
    generator = backend.rng((int(seed), 4))
    nu = frequencies(width, code.modulus, generator) if not complex else (
        np.resize(generator.permutation(code.modulus), width))
    phase1, phase2 = backend.rng((int(seed), 6)).uniform(0, 2 * np.pi, (width, 2)).T
    W1, W2 = _waves(code, nu, phase1, phase2, branches, complex, p)
    if complex:
        dtype = np.result_type(dtype, np.complex64)
    return Params(backend.asarray(W1, dtype), backend.asarray(W2, dtype), activation)


BRANCHES = ("one", "all")
"""``branches=`` of :func:`weights`."""

OPTIONS = ("f1", "f2", "F", "branches", "complex", "dtype")
"""Keywords of :func:`weights` that :func:`width_curve` passes on."""


def _check_weights(op: str | None, p: int, width: int, seed: int, activation: str,
                   f1: Callable | None, f2: Callable | None, F: Callable | None,
                   branches: str, complex: bool, dtype: Any) -> tuple[Encoding, np.dtype]:
    """Check the arguments of :func:`weights` before any work; return the encoding and the
    dtype."""
    check_int("p", p, 3)
    check_int("width", width, 1)
    check_int("seed", seed, 0)
    check_activation(activation)
    if complex and activation != "quadratic":
        raise ValueError(f"activation={activation!r} is not allowed with complex=True; "
                         "complex=True is the quadratic network of App. A and needs "
                         "activation='quadratic'")
    check_choice("branches", branches, BRANCHES)
    dtype = backend.check_dtype(dtype)
    code = encoding(op, p, f1, f2, F)
    if not complex and code.modulus < 3:
        raise ValueError(f"p={p} is too small for op={op!r}: its waves live on Z_{code.modulus}"
                         f", which has no frequency in 1..⌊(P−1)/2⌋; p must be ≥ 5 for mul "
                         "and div")
    return code, dtype


def _waves(code: Encoding, nu: np.ndarray, phase1: np.ndarray, phase2: np.ndarray,
           branches: str, exponential: bool, p: int) -> tuple[np.ndarray, np.ndarray]:
    """W1 and W2 of eqs. 6–7 (or, ``exponential``, 20–21); rows of W1 are neurons."""
    omega = 2 * np.pi * nu / code.modulus
    wave = (lambda angle: np.exp(1j * angle)) if exponential else np.cos
    W1 = np.zeros((len(nu), 2 * p), dtype=np.complex128 if exponential else np.float64)
    for offset, values, phase in ((0, code.first, phase1), (p, code.second, phase2)):
        defined = values >= 0
        columns = offset + np.flatnonzero(defined)
        W1[:, columns] = wave(omega[:, None] * values[defined][None, :] + phase[:, None])
    phase3 = phase1 + phase2                                   # eq. 12
    W2 = np.zeros((p, len(nu)), dtype=W1.dtype)
    for q, residues in enumerate(code.readout):
        chosen = residues if branches == "all" else residues[:1]
        for s in chosen:
            W2[q] += wave(-(omega * s + phase3))
    return W1, W2


def width_curve(op: str = "add", p: int = 97, widths: Sequence[int] = (8, 16, 32, 64, 128,
                256, 512, 1024), activations: Sequence[str] = ("quadratic", "relu", "gelu",
                "tanh"), seeds: Sequence[int] = (0, 1, 2), **options: Any) -> xr.Dataset:
    """Accuracy of the analytic weights against width (seed 001, Fig. 4b and App. B, Fig. 5).

    Each seed draws the weights of the largest width once; a network of width N is its first
    N neurons, identical to ``weights(op, p, N, seed)``, so the outputs of all widths come
    from one forward pass, accumulated neuron block by neuron block.

    Returns
    -------
    xarray.Dataset
        ``accuracy`` and ``correct_output`` (mean output on the correct class) over
        (width, activation, seed).
    """
    check_width_curve(op, p, widths, activations, seeds, **options)
    widths = sorted(int(w) for w in widths)
    task = modular(op, p)
    shape = (len(widths), len(activations), len(seeds))
    accuracy, correct_output = np.zeros(shape), np.zeros(shape)
    for j, activation in enumerate(activations):
        for s, seed in enumerate(seeds):
            params = weights(op, p, widths[-1], seed, activation, **options).as_batch()
            for i, f in enumerate(_prefix_outputs(params, task, widths)):
                f = backend.to_numpy(f)
                accuracy[i, j, s] = (f.argmax(axis=-1) == task.c).mean()
                correct_output[i, j, s] = f[np.arange(task.size), task.c].mean()
    coords = {"width": widths, "activation": list(activations), "seed": list(seeds)}
    dims = ("width", "activation", "seed")
    return xr.Dataset(
        {"accuracy": (dims, accuracy, {"long_name": "accuracy on all pairs"}),
         "correct_output": (dims, correct_output,
                            {"long_name": "mean output on the correct class"})},
        coords, {"op": op, "p": p, "title": f"analytic weights: {op} mod {p}"})


def check_width_curve(op: str = "add", p: int = 97, widths: Sequence[int] = (8,),
                      activations: Sequence[str] = ("quadratic",), seeds: Sequence[int] = (0,),
                      **options: Any) -> None:
    """Raise the error :func:`width_curve` would raise for these arguments, before any work."""
    for name, values in (("widths", widths), ("activations", activations), ("seeds", seeds)):
        if isinstance(values, str) or len(values) == 0:
            raise ValueError(f"{name}={values!r} is not allowed; {name} must be a non-empty "
                             "sequence")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        given = ", ".join(f"{name}={options[name]!r}" for name in unknown)
        raise TypeError(f"unknown option(s) {given}; allowed: {', '.join(OPTIONS)}")
    for w in widths:
        check_int("width", w, 1)
    for seed in seeds:
        check_int("seed", seed, 0)
    for activation in activations:
        _check_weights(op, p, widths[-1], seeds[0], activation, **{
            "f1": None, "f2": None, "F": None, "branches": "one", "complex": False,
            "dtype": "float64", **options})


def _prefix_outputs(params: Params, task, widths: list[int]):
    """Yield the outputs (P, p) on all pairs of the networks made of the first N neurons,
    for each N in ``widths`` (ascending)."""
    xp = backend.array_namespace(params.W1)
    a, b = xp.asarray(task.a)[None], xp.asarray(task.b)[None]
    total, done = 0, 0
    for width in widths:
        block = Params(params.W1[:, done:width], params.W2[:, :, done:width], params.activation)
        f, _ = forward(block, a, b)                 # (2 / block width) Σ_block W2 φ(W1 x)
        total = total + f[0] * ((width - done) / 2)
        done = width
        yield (2 / width) * total


__all__ = ["ACTIVATIONS", "Encoding", "SOLVABLE", "check_width_curve", "encoding", "frequencies",
           "weights", "width_curve"]
