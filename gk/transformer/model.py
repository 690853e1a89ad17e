"""The transformer of seed 003 (Nanda et al.) and the attention-only networks of seed 001,
App. E, with hand-written gradients.

The input is the sequence ``a b =`` of T = 3 tokens (a, b ∈ Z_p and "=" the token p),
``a op b =`` (T = 4, "op" the token p + 1) or ``a b`` (T = 2); the model predicts
c = op(a, b) from the last position. With d = d_model, H heads of size d_h = d/H and positions
t = 0..T−1::

    x_t = W_E[token_t] + W_pos[t]                                   embedding
    per layer:
      q, k, v = x W_Q, x W_K, x W_V;   A_h = softmax(q_h k_hᵀ / √d_h + causal mask)
      x ← x + concat_h(A_h v_h) W_O                                  attention
      x ← x + ReLU(x W_in + b_in) W_out + b_out                      MLP (d_mlp neurons)
    logits = x_{T−1} W_U        (tied: W_U = W_E[:p]ᵀ)

as in seed 003's model: no LayerNorm, ReLU MLP, learned positions, attention without biases.
Options: ``mlp=False`` (attention only), ``attention="linear"`` (A_h = the masked scores,
no softmax; seed 001, App. E.2), several layers, and tied embedding and unembedding (the
seed's summary says tied; the original code unties them, which is the default here).

Two facts make it cheap:

- Only the last position is read out, so the last layer computes its query, attention output
  and MLP at that position alone (the keys and values still come from every position).
- The first layer's inputs are embeddings of V = p + 1 tokens at T positions, so any linear
  map of them is a table lookup: ``x_t W = (W_E W)[token_t] + (W_pos W)[t]``. The first
  layer's q, k, v are gathered from (V, 3d) tables instead of multiplied, and the tables'
  gradient is a scatter-add (the one-hot principle of :mod:`gk.mlp.model`).

Every array carries a leading ``model`` axis (M models trained as one array program).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gk import backend
from gk.backend import array_namespace, scatter_add_rows
from gk.config import check_choice, check_int
from gk.losses import check_loss, weighted_loss_and_gradient

SEQUENCES: dict[str, tuple[str, ...]] = {"a b =": ("a", "b", "="),
                                         "a op b =": ("a", "op", "b", "="), "a b": ("a", "b")}
"""Supported input formats: the tokens of each position ("=" is token p, "op" token p + 1).
The read-out is always at the last position. With ``a b`` it is b's own position, so a
one-layer model's query depends on b: with ``a b =`` the query of "=" is the same for every
pair, and one layer of linear attention can only add a function of a to one of b."""

ATTENTIONS = ("softmax", "linear")
"""``softmax``: A = softmax(q kᵀ/√d_h) over the allowed keys. ``linear``: A = q kᵀ/√d_h on
the allowed keys, 0 elsewhere (seed 001, App. E.2)."""

LAYER_WEIGHTS = ("W_Q", "W_K", "W_V", "W_O")
MLP_WEIGHTS = ("W_in", "b_in", "W_out", "b_out")


def layer_name(layer: int, name: str) -> str:
    """The key of a layer's weight, e.g. ``L0_W_Q``."""
    return f"L{layer}_{name}"


def check_sequence(sequence: str) -> None:
    """Raise ValueError unless ``sequence`` is in :data:`SEQUENCES`."""
    check_choice("sequence", sequence, tuple(SEQUENCES))


def vocabulary(sequence: str, p: int) -> int:
    """The number of tokens: p operands, "=", and "op" if the sequence has it."""
    return p + len(set(SEQUENCES[sequence]) - {"a", "b"})


def sequence_tokens(sequence: str, p: int, a: Any, b: Any) -> Any:
    """The token sequences of pairs (a, b): int array of shape ``(*a.shape, T)``."""
    xp = array_namespace(a)
    special = {"=": p, "op": p + 1}
    columns = [a if name == "a" else b if name == "b" else xp.full(a.shape, special[name],
                                                                     dtype=a.dtype)
               for name in SEQUENCES[sequence]]
    return xp.stack(columns, axis=-1)


@dataclass
class Params:
    """Weights of a transformer, a dict of arrays with a leading model axis.

    Keys: ``W_E`` (M, V, d) token embedding (one row per token), ``W_pos`` (M, T, d),
    ``W_U`` (M, d, p) unembedding (absent when tied), and per layer l ``L{l}_W_Q``,
    ``L{l}_W_K``, ``L{l}_W_V`` (M, d, d) whose columns h·d_h .. (h+1)·d_h − 1 are head h's,
    ``L{l}_W_O`` (M, d, d), and with an MLP ``L{l}_W_in`` (M, d, d_mlp), ``L{l}_b_in``
    (M, d_mlp), ``L{l}_W_out`` (M, d_mlp, d), ``L{l}_b_out`` (M, d).
    """

    arrays: dict[str, Any]
    p: int
    n_heads: int
    attention: str = "softmax"

    @property
    def d_model(self) -> int:
        return self.arrays["W_E"].shape[-1]

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_heads

    @property
    def layers(self) -> int:
        return sum(1 for key in self.arrays if key.endswith("_W_Q"))

    @property
    def mlp(self) -> bool:
        return layer_name(0, "W_in") in self.arrays

    @property
    def tied(self) -> bool:
        return "W_U" not in self.arrays

    @property
    def positions(self) -> int:
        return self.arrays["W_pos"].shape[-2]

    def unembedding(self) -> Any:
        """W_U (M, d, p); with tied weights, W_E[:p]ᵀ."""
        if self.tied:
            return self.arrays["W_E"][:, : self.p].transpose(0, 2, 1)
        return self.arrays["W_U"]

    def model(self, index: int) -> Params:
        """One model's weights, keeping a model axis of length 1."""
        return replace(self, arrays={k: v[index: index + 1] for k, v in self.arrays.items()})


def check_architecture(d_model: int, n_heads: int, d_mlp: int, layers: int) -> None:
    """Raise unless the sizes are positive and d_model is divisible by n_heads."""
    check_int("d_model", d_model, 1)
    check_int("n_heads", n_heads, 1)
    check_int("d_mlp", d_mlp, 1)
    check_int("layers", layers, 1)
    if d_model % n_heads:
        divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}; the heads "
                         f"split d_model evenly: n_heads must be one of {divisors}")


def init(p: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512, layers: int = 1,
         mlp: bool = True, tied: bool = False, attention: str = "softmax",
         sequence: str = "a b =", seed: int | list[int] = 0, dtype: Any = "float64") -> Params:
    """Draw the initial weights as seed 003's code does: every weight matrix N(0, 1/d_model)
    except W_U ~ N(0, 1/p), biases 0. A list of seeds gives one model per seed; model m's
    numbers come from ``gk.backend.rng((seed_m, 0))``, the same on every backend."""
    check_int("p", p, 2)
    check_architecture(d_model, n_heads, d_mlp, layers)
    check_choice("attention", attention, ATTENTIONS)
    check_sequence(sequence)
    seeds = [seed] if np.isscalar(seed) else list(seed)
    for s in seeds:
        check_int("seed", s, 0)
    d, V, T = d_model, vocabulary(sequence, p), len(SEQUENCES[sequence])
    shapes = {"W_E": (V, d), "W_pos": (T, d)}
    for layer in range(layers):
        shapes.update({layer_name(layer, name): (d, d) for name in LAYER_WEIGHTS})
        if mlp:
            shapes.update({layer_name(layer, "W_in"): (d, d_mlp),
                           layer_name(layer, "b_in"): (d_mlp,),
                           layer_name(layer, "W_out"): (d_mlp, d),
                           layer_name(layer, "b_out"): (d,)})
    if not tied:
        shapes["W_U"] = (d, p)
    xp = backend.namespace()
    dtype = backend.check_dtype(dtype)
    arrays = {key: xp.zeros((len(seeds), *shape), dtype=dtype) for key, shape in shapes.items()}
    for m, s in enumerate(seeds):
        generator = backend.rng((int(s), 0))
        for key, shape in shapes.items():
            if "_b_" in key:
                continue
            scale = 1 / math.sqrt(p if key == "W_U" else d)
            arrays[key][m] = scale * backend.standard_normal(generator, shape, dtype)
    return Params(arrays, p, n_heads, attention)


# --- Pieces of the forward pass and their gradients --------------------------------------------


def _matmul(x: Any, W: Any) -> Any:
    """x (M, n, T, d) @ W (M, d, k) → (M, n, T, k), one matrix product per model."""
    M, n, T, d = x.shape
    xp = array_namespace(x)
    return xp.matmul(x.reshape(M, n * T, d), W).reshape(M, n, T, W.shape[-1])


def _weight_gradient(x: Any, g: Any) -> Any:
    """∂L/∂W of y = x W given g = ∂L/∂y: xᵀ g summed over examples and positions,
    (M, d, k)."""
    xp = array_namespace(x)
    M = x.shape[0]
    return xp.matmul(x.reshape(M, -1, x.shape[-1]).transpose(0, 2, 1),
                     g.reshape(M, -1, g.shape[-1]))


def _gather_rows(table: Any, tokens: Any) -> Any:
    """table[m, tokens[m, ...]]: rows of a (M, V, k) table, shape (*tokens.shape, k)."""
    xp = array_namespace(table)
    models = xp.arange(table.shape[0]).reshape((-1,) + (1,) * (tokens.ndim - 1))
    return table[models, tokens]


def _scatter_rows(g: Any, tokens: Any, vocabulary: int) -> Any:
    """The gradient of :func:`_gather_rows`: g (M, ..., k) added into the rows ``tokens``
    of a zero (M, V, k) table."""
    xp = array_namespace(g)
    M, k = g.shape[0], g.shape[-1]
    table = xp.zeros((M, vocabulary, k), dtype=g.dtype)
    scatter_add_rows(table, tokens.reshape(M, -1), xp.ascontiguousarray(g).reshape(M, -1, k))
    return table


def _embed(arrays: dict[str, Any], tokens: Any, positions: slice) -> Any:
    """x_t = W_E[token_t] + W_pos[t] at ``positions``: (M, n, T', d)."""
    return _gather_rows(arrays["W_E"], tokens[:, :, positions]) + arrays["W_pos"][:, None,
                                                                                    positions]


def _embed_backward(arrays: dict[str, Any], tokens: Any, positions: slice, dx: Any,
                    grads: dict[str, Any]) -> None:
    grads["W_E"] += _scatter_rows(dx, tokens[:, :, positions], arrays["W_E"].shape[1])
    grads["W_pos"][:, positions] += dx.sum(axis=1)


def _qkv_weights(arrays: dict[str, Any], layer: int) -> Any:
    xp = array_namespace(arrays["W_E"])
    return xp.concatenate([arrays[layer_name(layer, n)] for n in ("W_Q", "W_K", "W_V")],
                          axis=-1)


def _embedded_qkv(arrays: dict[str, Any], tokens: Any) -> Any:
    """q, k, v of the first layer at every position, concatenated (M, n, T, 3d), as a
    lookup: ``x_t W = (W_E W)[token_t] + (W_pos W)[t]`` with W = [W_Q W_K W_V]."""
    xp = array_namespace(arrays["W_E"])
    W = _qkv_weights(arrays, 0)
    return _gather_rows(xp.matmul(arrays["W_E"], W), tokens) + xp.matmul(arrays["W_pos"],
                                                                         W)[:, None]


def _embedded_qkv_backward(arrays: dict[str, Any], tokens: Any, dqkv: Any,
                           grads: dict[str, Any]) -> None:
    """Gradients of :func:`_embedded_qkv` given dqkv (M, n, T, 3d): the table's by a
    scatter-add, the positions' by a sum, then through the products W_E W and W_pos W."""
    xp = array_namespace(dqkv)
    W = _qkv_weights(arrays, 0)
    d_table = _scatter_rows(dqkv, tokens, arrays["W_E"].shape[1])         # (M, V, 3d)
    d_positions = dqkv.sum(axis=1)                                        # (M, T, 3d)
    dW = (xp.matmul(arrays["W_E"].transpose(0, 2, 1), d_table)
          + xp.matmul(arrays["W_pos"].transpose(0, 2, 1), d_positions))
    grads["W_E"] += xp.matmul(d_table, W.transpose(0, 2, 1))
    grads["W_pos"] += xp.matmul(d_positions, W.transpose(0, 2, 1))
    d = W.shape[1]
    for i, name in enumerate(("W_Q", "W_K", "W_V")):
        grads[layer_name(0, name)] += dW[..., i * d:(i + 1) * d]


def _split_heads(x: Any, heads: int) -> Any:
    """(M, n, T, d) → (M, n, H, T, d_h)."""
    M, n, T, d = x.shape
    return x.reshape(M, n, T, heads, d // heads).transpose(0, 1, 3, 2, 4)


def _merge_heads(z: Any) -> Any:
    """(M, n, H, T, d_h) → (M, n, T, H·d_h), heads side by side."""
    M, n, H, T, size = z.shape
    return z.transpose(0, 1, 3, 2, 4).reshape(M, n, T, H * size)


def causal_mask(queries: int, keys: int) -> np.ndarray:
    """Which keys each query may read: the last ``queries`` of ``keys`` positions, each
    reading itself and the positions before it. Bool (queries, keys)."""
    first = keys - queries
    return np.arange(keys)[None, :] <= first + np.arange(queries)[:, None]


def attention_weights(q: Any, k: Any, attention: str) -> Any:
    """A (M, n, H, T_q, T) from queries (M, n, H, T_q, d_h) and keys (M, n, H, T, d_h):
    softmax over the allowed keys of q·k/√d_h, or, for ``linear``, the masked scores."""
    xp = array_namespace(q)
    mask = xp.asarray(causal_mask(q.shape[-2], k.shape[-2]))
    scores = xp.einsum("mnhqe,mnhte->mnhqt", q, k) / math.sqrt(q.shape[-1])
    if attention == "linear":
        return scores * mask
    scores = xp.where(mask, scores, -xp.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    weights = xp.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


def _attention_backward(cache: dict[str, Any], dz: Any, attention: str) -> tuple:
    """dq, dk, dv (head-split) from dz = ∂L/∂(A v) (M, n, H, T_q, d_h).

    ∂L/∂A = dz vᵀ and ∂L/∂v = Aᵀ dz; through the softmax, ∂L/∂s = A ⊙ (∂L/∂A − Σ_t A ∂L/∂A)
    (masked keys have A = 0 and get no gradient); for linear attention ∂L/∂s = ∂L/∂A on the
    allowed keys. Then s = q kᵀ/√d_h gives ∂L/∂q = ∂L/∂s k/√d_h, ∂L/∂k = ∂L/∂sᵀ q/√d_h.
    """
    xp = array_namespace(dz)
    q, k, v, A = cache["q"], cache["k"], cache["v"], cache["A"]
    dA = xp.einsum("mnhqe,mnhte->mnhqt", dz, v)
    dv = xp.einsum("mnhqt,mnhqe->mnhte", A, dz)
    if attention == "linear":
        ds = dA * xp.asarray(causal_mask(q.shape[-2], k.shape[-2]))
    else:
        ds = A * (dA - (A * dA).sum(axis=-1, keepdims=True))
    ds /= math.sqrt(q.shape[-1])
    dq = xp.einsum("mnhqt,mnhte->mnhqe", ds, k)
    dk = xp.einsum("mnhqt,mnhqe->mnhte", ds, q)
    return dq, dk, dv


def _block(params: Params, layer: int, x: Any, q: Any, k: Any, v: Any) -> tuple[Any, dict]:
    """One layer on the residual stream x (M, n, T_q, d) at its query positions, with q
    (M, n, T_q, d), k and v (M, n, T, d): attention, then the MLP. Returns the new stream
    and what the backward pass needs."""
    xp = array_namespace(x)
    arrays, H = params.arrays, params.n_heads
    cache = {"q": _split_heads(q, H), "k": _split_heads(k, H), "v": _split_heads(v, H)}
    cache["A"] = attention_weights(cache["q"], cache["k"], params.attention)
    cache["z"] = _merge_heads(xp.matmul(cache["A"], cache["v"]))
    x = x + _matmul(cache["z"], arrays[layer_name(layer, "W_O")])
    if params.mlp:
        cache["x_mid"] = x
        cache["h"] = _matmul(x, arrays[layer_name(layer, "W_in")]) + arrays[
            layer_name(layer, "b_in")][:, None, None]
        x = x + _matmul(xp.maximum(cache["h"], 0), arrays[layer_name(layer, "W_out")])
        x += arrays[layer_name(layer, "b_out")][:, None, None]
    return x, cache


def _block_backward(params: Params, layer: int, cache: dict, dx: Any,
                    grads: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """Gradients of :func:`_block`'s weights (added into ``grads``) and, given dx = ∂L/∂
    (its output), those of its inputs: the residual stream, q, k and v, as (M, n, ·, d)."""
    xp = array_namespace(dx)
    arrays = params.arrays
    if params.mlp:
        relu = xp.maximum(cache["h"], 0)
        grads[layer_name(layer, "W_out")] += _weight_gradient(relu, dx)
        grads[layer_name(layer, "b_out")] += dx.sum(axis=(1, 2))
        dh = _matmul(dx, arrays[layer_name(layer, "W_out")].transpose(0, 2, 1))
        dh *= cache["h"] > 0
        grads[layer_name(layer, "W_in")] += _weight_gradient(cache["x_mid"], dh)
        grads[layer_name(layer, "b_in")] += dh.sum(axis=(1, 2))
        dx = dx + _matmul(dh, arrays[layer_name(layer, "W_in")].transpose(0, 2, 1))
    grads[layer_name(layer, "W_O")] += _weight_gradient(cache["z"], dx)
    dz = _split_heads(_matmul(dx, arrays[layer_name(layer, "W_O")].transpose(0, 2, 1)),
                      params.n_heads)
    dq, dk, dv = _attention_backward(cache, dz, params.attention)
    return dx, _merge_heads(dq), _merge_heads(dk), _merge_heads(dv)


# --- The whole model ----------------------------------------------------------------------------


def _queries(params: Params, layer: int) -> slice:
    """The positions whose output layer ``layer`` computes: all but in the last layer, where
    only the read-out position matters."""
    T = params.positions
    return slice(T - 1, T) if layer == params.layers - 1 else slice(0, T)


def forward(params: Params, tokens: Any) -> tuple[Any, dict]:
    """Logits at the last position (M, n, p) for token sequences ``tokens`` (M, n, T), and
    the cache of :func:`backward`."""
    arrays, d = params.arrays, params.d_model
    cache: dict[str, Any] = {"tokens": tokens, "blocks": [], "inputs": []}
    x = _embed(arrays, tokens, _queries(params, 0))      # only where layer 0 reads it
    qkv = _embedded_qkv(arrays, tokens)
    for layer in range(params.layers):
        queries = _queries(params, layer)
        if layer > 0:
            cache["inputs"].append(x)
            qkv = _matmul(x, _qkv_weights(arrays, layer))
            x = x[:, :, queries]
        q, k, v = qkv[:, :, queries, :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        x, block = _block(params, layer, x, q, k, v)
        cache["blocks"].append(block)
    cache["final"] = x[:, :, -1]
    xp = array_namespace(x)
    return xp.matmul(cache["final"], params.unembedding()), cache


def backward(params: Params, cache: dict, G: Any) -> dict[str, Any]:
    """Gradients of every weight given G = ∂L/∂logits (M, n, p), through :func:`forward`
    layer by layer: unembedding, each layer's MLP and attention (:func:`_block_backward`),
    the projections (a scatter-add into the embedding tables for the first layer) and the
    embedding."""
    xp = array_namespace(G)
    arrays, tokens, d = params.arrays, cache["tokens"], params.d_model
    grads = {key: xp.zeros_like(value) for key, value in arrays.items()}
    W_U = params.unembedding()
    dW_U = xp.matmul(cache["final"].transpose(0, 2, 1), G)
    if params.tied:
        grads["W_E"][:, : params.p] += dW_U.transpose(0, 2, 1)
    else:
        grads["W_U"] += dW_U
    dx = xp.matmul(G, W_U.transpose(0, 2, 1))[:, :, None]
    for layer in reversed(range(params.layers)):
        queries = _queries(params, layer)
        d_residual, dq, dk, dv = _block_backward(params, layer, cache["blocks"][layer], dx,
                                                 grads)
        dqkv = xp.zeros((*dk.shape[:-1], 3 * d), dtype=dk.dtype)
        dqkv[:, :, queries, :d] = dq
        dqkv[..., d:2 * d] = dk
        dqkv[..., 2 * d:] = dv
        if layer == 0:
            _embedded_qkv_backward(arrays, tokens, dqkv, grads)
            _embed_backward(arrays, tokens, queries, d_residual, grads)
            break
        x = cache["inputs"][layer - 1]
        W = _qkv_weights(arrays, layer)
        dW = _weight_gradient(x, dqkv)
        for i, name in enumerate(("W_Q", "W_K", "W_V")):
            grads[layer_name(layer, name)] += dW[..., i * d:(i + 1) * d]
        dx = _matmul(dqkv, W.transpose(0, 2, 1))
        dx[:, :, queries] += d_residual
    return grads


def loss_and_grads(params: Params, tokens: Any, labels: Any, weights: Any,
                   loss: str = "cross_entropy") -> tuple[Any, dict[str, Any]]:
    """Weighted loss L = Σ_i w_i ℓ_i per model (M,) and its gradients.

    Cross-entropy is computed on float64 logits whatever the weights' dtype, as seed 003's
    code does: in float32 the log-softmax of a confident model rounds its loss to 0 and the
    late phase of training (cleanup) loses its gradient.
    """
    logits, cache = forward(params, tokens)
    if loss == "cross_entropy":
        logits = logits.astype(np.float64, copy=False)
    total, G = weighted_loss_and_gradient(logits, labels, weights, loss, overwrite=True)
    return total, backward(params, cache, G.astype(cache["final"].dtype, copy=False))


CHUNK_VALUES = 2**21
"""Values in the largest array of a chunked evaluation (M·rows·max(d_mlp, 3·d_model))."""


def chunks(params: Params, tokens: Any, chunk: int | None = None):
    """Yield ``(rows, logits, cache)`` for consecutive slices of shared token sequences
    ``tokens`` (n, T), ``chunk`` rows at a time (None: as many as :data:`CHUNK_VALUES`
    allows)."""
    xp = array_namespace(tokens)
    M = params.arrays["W_E"].shape[0]
    widest = max(3 * params.d_model, params.arrays.get(layer_name(0, "W_in"),
                                                       params.arrays["W_E"]).shape[-1])
    chunk = chunk or max(1, CHUNK_VALUES // (M * widest * params.positions))
    for start in range(0, tokens.shape[0], chunk):
        rows = slice(start, start + chunk)
        part = xp.broadcast_to(tokens[rows], (M, *tokens[rows].shape))
        logits, cache = forward(params, part)
        yield rows, logits, cache


def outputs(params: Params, tokens: Any, chunk: int | None = None) -> Any:
    """Logits (M, n, p) of every model on shared token sequences ``tokens`` (n, T)."""
    xp = array_namespace(tokens)
    return xp.concatenate([logits for _, logits, _ in chunks(params, tokens, chunk)], axis=1)


def mlp_activations(params: Params, tokens: Any, chunk: int | None = None) -> Any:
    """ReLU(x W_in + b_in) of the last layer at the read-out position, (M, n, d_mlp): the
    neurons whose periodicity seeds 001 (App. E.1, Fig. 11) and 003 show."""
    if not params.mlp:
        raise ValueError("this transformer has no MLP (mlp=False); it has no activations")
    xp = array_namespace(tokens)
    return xp.concatenate([xp.maximum(cache["blocks"][-1]["h"][:, :, -1], 0)
                           for _, _, cache in chunks(params, tokens, chunk)], axis=1)


def attention_pattern(params: Params, tokens: Any, layer: int = 0,
                      chunk: int | None = None) -> Any:
    """Attention weights A of ``layer``, (M, n, H, T_q, T): T_q = 1 (the read-out
    position) in the last layer, T in the others."""
    check_int("layer", layer, 0)
    if layer >= params.layers:
        raise ValueError(f"layer={layer} is out of range; this transformer has "
                         f"{params.layers} layer(s)")
    xp = array_namespace(tokens)
    return xp.concatenate([cache["blocks"][layer]["A"]
                           for _, _, cache in chunks(params, tokens, chunk)], axis=1)


def check_loss_dtype(loss: str, dtype: Any) -> None:
    """Raise for a loss that cannot be trained in ``dtype`` (cross-entropy in float16)."""
    check_loss(loss)
    if loss == "cross_entropy" and str(dtype) == "float16":
        raise ValueError(f"loss='cross_entropy' with dtype={dtype!r} is not allowed: float16 "
                         "cannot hold the small losses of a fitted model (its smallest step "
                         "near 1 is 1e-3); use float32 or float64")
