"""The Elman RNN of seed 003 (van Rossem & Saxe, streaming parity) and backpropagation
through time written by hand.

For a binary sequence x_1 .. x_T and hidden size H::

    h_0 = h0                                    (all ones in seed 003; fixed or learnt)
    a_t = h_{t−1} W_hh + W_in[x_t] + b_h        (x_t ∈ {0, 1} picks a row: no one-hot product)
    h_t = φ(a_t)                                (ReLU in seed 003, or tanh)
    y_t = h_t · w_out + b_out                   (one output per step: the parity so far)

Backpropagation through time, with g_t = ∂L/∂y_t and δ_{T+1} = 0::

    ∂L/∂h_t = g_t w_out + δ_{t+1} W_hhᵀ,    δ_t = ∂L/∂a_t = ∂L/∂h_t ⊙ φ′(a_t)
    ∂L/∂W_hh = Σ_t h_{t−1}ᵀ δ_t,   ∂L/∂W_in[s] = Σ_{t: x_t = s} δ_t,   ∂L/∂b_h = Σ_t δ_t
    ∂L/∂w_out = Σ_t g_t h_t,   ∂L/∂b_out = Σ_t g_t,   ∂L/∂h0 = δ_1 W_hhᵀ

The sums over steps are one matrix product (and one scatter-add) over all steps at once.
Every array carries a leading ``model`` axis (M models as one array program). Padded steps
after a sequence's end have g_t = 0 and so contribute nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gk import backend
from gk.backend import array_namespace, scatter_add_rows
from gk.config import check_choice, check_int, check_number

ACTIVATIONS = {
    "relu": (lambda a: array_namespace(a).maximum(a, 0), lambda a: (a > 0).astype(a.dtype)),
    "tanh": (lambda a: array_namespace(a).tanh(a), lambda a: 1 - array_namespace(a).tanh(a) ** 2),
}
"""φ and φ′ of the hidden layer."""

INITIAL_STATES = ("ones", "learnt")
"""``ones``: h0 = 1, fixed (seed 003). ``learnt``: h0 starts at 1 and is trained."""


@dataclass
class Params:
    """Weights of a batch of RNNs: ``arrays`` holds ``W_in`` (M, 2, H), ``W_hh`` (M, H, H),
    ``b_h`` (M, H), ``w_out`` (M, H), ``b_out`` (M,) and, when learnt, ``h0`` (M, H); a fixed
    initial state is ``h0`` here."""

    arrays: dict[str, Any]
    activation: str = "relu"
    h0: Any = None

    @property
    def hidden(self) -> int:
        return self.arrays["W_hh"].shape[-1]

    def initial_state(self) -> Any:
        """h0 (M, H)."""
        return self.arrays["h0"] if "h0" in self.arrays else self.h0

    def model(self, index: int) -> Params:
        """One model's weights, keeping a model axis of length 1."""
        one = {key: value[index: index + 1] for key, value in self.arrays.items()}
        return replace(self, arrays=one,
                       h0=None if self.h0 is None else self.h0[index: index + 1])


def init(hidden: int = 100, activation: str = "relu", gain: float | list[float] = 0.1,
         initial_state: str = "ones", seed: int | list[int] = 0,
         dtype: Any = "float64") -> Params:
    """Xavier-normal weights, std = gain·√(2/(fan_in + fan_out)) (seed 003: gain 0.1; a small
    gain favours merging), biases 0, h0 = 1. A list of seeds gives one model per seed, from
    ``gk.backend.rng((seed, 0))``; ``gain`` is one number or one per seed."""
    check_int("hidden", hidden, 1)
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_choice("initial_state", initial_state, INITIAL_STATES)
    seeds = [seed] if np.isscalar(seed) else list(seed)
    gains = [gain] * len(seeds) if np.isscalar(gain) else list(gain)
    if len(gains) != len(seeds):
        raise ValueError(f"gain={gain!r} is not allowed; give one gain or one per seed "
                         f"({len(seeds)})")
    for s, g in zip(seeds, gains, strict=True):
        check_int("seed", s, 0)
        check_number("gain", g)
    dtype = backend.check_dtype(dtype)
    fans = {"W_in": (2, hidden), "W_hh": (hidden, hidden), "w_out": (hidden, 1)}
    xp = backend.namespace()
    M = len(seeds)
    arrays = {"W_in": xp.empty((M, 2, hidden), dtype=dtype),
              "W_hh": xp.empty((M, hidden, hidden), dtype=dtype),
              "b_h": xp.zeros((M, hidden), dtype=dtype),
              "w_out": xp.empty((M, hidden), dtype=dtype),
              "b_out": xp.zeros(M, dtype=dtype)}
    for m, (s, g) in enumerate(zip(seeds, gains, strict=True)):
        generator = backend.rng((int(s), 0))
        for key, (fan_in, fan_out) in fans.items():
            std = g * math.sqrt(2 / (fan_in + fan_out))
            arrays[key][m] = std * backend.standard_normal(
                generator, arrays[key].shape[1:], dtype)
    ones = xp.ones((M, hidden), dtype=dtype)
    if initial_state == "learnt":
        arrays["h0"] = ones
        return Params(arrays, activation)
    return Params(arrays, activation, ones)


def forward(params: Params, bits: Any) -> tuple[Any, dict[str, Any]]:
    """Outputs y (M, n, T) of every model on sequences ``bits`` (M, n, T) of 0s and 1s, and
    the cache of :func:`backward`: the pre-activations ``a`` (M, n, T, H) and the hidden
    states ``h`` (M, n, T + 1, H), h_0 first."""
    xp = array_namespace(bits)
    arrays, (phi, _) = params.arrays, ACTIVATIONS[params.activation]
    M, n, T = bits.shape
    H = params.hidden
    models = xp.arange(M)[:, None]
    h = xp.empty((M, n, T + 1, H), dtype=arrays["W_hh"].dtype)
    a = xp.empty((M, n, T, H), dtype=h.dtype)
    h[:, :, 0] = params.initial_state()[:, None]
    for t in range(T):
        a[:, :, t] = xp.matmul(h[:, :, t], arrays["W_hh"]) + arrays["W_in"][models, bits[:, :, t]]
        a[:, :, t] += arrays["b_h"][:, None]
        h[:, :, t + 1] = phi(a[:, :, t])
    y = xp.einsum("mnth,mh->mnt", h[:, :, 1:], arrays["w_out"]) + arrays["b_out"][:, None, None]
    return y, {"bits": bits, "a": a, "h": h}


def backward(params: Params, cache: dict[str, Any], G: Any) -> dict[str, Any]:
    """Gradients of every weight given G = ∂L/∂y (M, n, T), by backpropagation through time
    (module docstring)."""
    xp = array_namespace(G)
    arrays, (_, phi_prime) = params.arrays, ACTIVATIONS[params.activation]
    bits, a, h = cache["bits"], cache["a"], cache["h"]
    M, n, T = G.shape
    H = params.hidden
    delta = xp.empty_like(a)
    carried = xp.zeros((M, n, H), dtype=a.dtype)          # δ_{t+1} W_hhᵀ
    W_hh_T = arrays["W_hh"].transpose(0, 2, 1)
    for t in reversed(range(T)):
        dh = G[:, :, t, None] * arrays["w_out"][:, None] + carried
        delta[:, :, t] = dh * phi_prime(a[:, :, t])
        carried = xp.matmul(delta[:, :, t], W_hh_T)
    flat = delta.reshape(M, n * T, H)
    grads = {"W_hh": xp.matmul(h[:, :, :-1].reshape(M, n * T, H).transpose(0, 2, 1), flat),
             "b_h": flat.sum(axis=1),
             "w_out": xp.einsum("mnt,mnth->mh", G, h[:, :, 1:]),
             "b_out": G.sum(axis=(1, 2)),
             "W_in": xp.zeros_like(arrays["W_in"])}
    scatter_add_rows(grads["W_in"], bits.reshape(M, n * T), flat)
    if "h0" in arrays:
        grads["h0"] = carried.sum(axis=1)
    return grads


def loss_and_grads(params: Params, bits: Any, targets: Any, weights: Any
                   ) -> tuple[Any, dict[str, Any]]:
    """L = Σ_{i,t} w_it (y_it − y*_it)² per model (M,) and its gradients; ``weights``
    (M, n, T) are 0 on padded steps and 1/(steps in the batch) elsewhere: the mean squared
    error over the per-step outputs, without a ½, as PyTorch's ``MSELoss`` that seed 003's
    learning rate 0.02 goes with."""
    y, cache = forward(params, bits)
    residual = y - targets
    G = weights * residual
    return (G * residual).sum(axis=(1, 2)), backward(params, cache, 2 * G)


def outputs(params: Params, bits: Any, lengths: Any = None) -> Any:
    """The outputs y (M, n, T) of :func:`forward` without keeping the states (for
    evaluation on long sequences: memory M·n·(T + H)). Given the sequences' ``lengths``
    (n,) in decreasing order, each step computes only the sequences still running, and the
    outputs after a sequence's end are 0."""
    xp = array_namespace(bits)
    arrays, (phi, _) = params.arrays, ACTIVATIONS[params.activation]
    M, n, T = bits.shape
    running = np.full(T, n) if lengths is None else (
        np.asarray(lengths)[None, :] > np.arange(T)[:, None]).sum(axis=1)
    models = xp.arange(M)[:, None]
    h = xp.broadcast_to(params.initial_state()[:, None], (M, n, params.hidden))
    y = xp.zeros((M, n, T), dtype=arrays["W_hh"].dtype)
    for t, k in enumerate(running.tolist()):
        a = xp.matmul(h[:, :k], arrays["W_hh"]) + arrays["W_in"][models, bits[:, :k, t]]
        h = phi(a + arrays["b_h"][:, None])
        y[:, :k, t] = xp.einsum("mnh,mh->mn", h, arrays["w_out"]) + arrays["b_out"][:, None]
    return y


def prefix_states(params: Params, max_len: int) -> Any:
    """The hidden state after every binary prefix of length ≤ ``max_len``, (M, nodes, H), in
    the order of :func:`gk.automaton.prefix_tree`: the empty prefix (h0) first, then each
    length in increasing binary order. Level by level, each prefix once: the state of
    u·s is φ(h_u W_hh + W_in[s] + b_h), so a level is one product with the level before."""
    arrays, (phi, _) = params.arrays, ACTIVATIONS[params.activation]
    xp = array_namespace(arrays["W_hh"])
    level = params.initial_state()[:, None]                          # (M, 1, H)
    levels = [level]
    for _ in range(max_len):
        M, count, H = level.shape
        a = (xp.matmul(level, arrays["W_hh"])[:, :, None] + arrays["W_in"][:, None]
             + arrays["b_h"][:, None, None])                           # (M, count, 2, H)
        level = phi(a).reshape(M, 2 * count, H)                      # u·s at 2u + s
        levels.append(level)
    return xp.concatenate(levels, axis=1)


def read_out(params: Params, states: Any) -> Any:
    """The output y = h · w_out + b_out of hidden states (M, ..., H)."""
    xp = array_namespace(states)
    w_out, b_out = params.arrays["w_out"], params.arrays["b_out"]
    expand = (slice(None),) + (None,) * (states.ndim - 2)
    return xp.einsum("m...h,mh->m...", states, w_out) + b_out[expand]


def final_states(params: Params, bits: Any, lengths: Any) -> Any:
    """The hidden state after each sequence's last symbol, (M, n, H)."""
    xp = array_namespace(bits)
    _, cache = forward(params, bits)
    M, n = bits.shape[:2]
    return cache["h"][xp.arange(M)[:, None], xp.arange(n)[None, :], lengths]
