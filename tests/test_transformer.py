"""The transformer (seed 003) and attention-only networks (seed 001, App. E): the forward pass
against a plain all-positions implementation, every backward piece and the whole model's
gradient against finite differences, training, files, resume and the Fourier measures."""


import numpy as np
import pytest
from conftest import sigterm_at_call

from gk import checkpoint, io, measures
from gk.tasks import modular
from gk.transformer import model as tm
from gk.transformer.train import _Loop, load_params, train

VARIANTS = {
    "seed 003": {},
    "tied": {"tied": True},
    "attention only": {"mlp": False},
    "linear attention": {"attention": "linear"},
    "two layers": {"layers": 2},
    "two linear attention-only layers": {"layers": 2, "attention": "linear", "mlp": False},
    "a op b =, tied, two layers": {"sequence": "a op b =", "layers": 2, "tied": True},
    "a b, linear attention only": {"sequence": "a b", "attention": "linear", "mlp": False},
}


def small_model(p=7, seeds=(0, 1), **options):
    """A tiny batch of transformers with non-zero biases (so that their gradients show)."""
    params = tm.init(p, d_model=8, n_heads=2, d_mlp=12, seed=list(seeds), **options)
    rng = np.random.default_rng(5)
    for key, value in params.arrays.items():
        if "_b_" in key:
            value[...] = 0.3 * rng.standard_normal(value.shape)
    return params


def batch(p, sequence="a b =", models=2, n=5, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, p, (models, n)), rng.integers(0, p, (models, n))
    return tm.sequence_tokens(sequence, p, a, b), (a + b) % p, np.full((models, n), 1 / n)


def plain_logits(params, tokens):
    """The transformer as written: every position, one head at a time, the causal mask as
    -inf scores, the read-out at the last position. Independent of gk's table lookups and
    last-position shortcut."""
    A, H = params.arrays, params.n_heads
    d = params.d_model
    size = d // H
    M, n, T = tokens.shape
    out = np.empty((M, n, params.p))
    mask = np.tril(np.ones((T, T), dtype=bool))
    for m in range(M):
        x = A["W_E"][m][tokens[m]] + A["W_pos"][m]                         # (n, T, d)
        for layer in range(params.layers):
            W = {name: A[f"L{layer}_{name}"][m] for name in tm.LAYER_WEIGHTS}
            q, k, v = x @ W["W_Q"], x @ W["W_K"], x @ W["W_V"]
            heads = []
            for h in range(H):
                cols = slice(h * size, (h + 1) * size)
                scores = q[..., cols] @ k[..., cols].transpose(0, 2, 1) / np.sqrt(size)
                if params.attention == "softmax":
                    scores = np.where(mask, scores, -np.inf)
                    weights = np.exp(scores - scores.max(-1, keepdims=True))
                    weights /= weights.sum(-1, keepdims=True)
                else:
                    weights = np.where(mask, scores, 0)
                heads.append(weights @ v[..., cols])
            x = x + np.concatenate(heads, axis=-1) @ W["W_O"]
            if params.mlp:
                hidden = np.maximum(x @ A[f"L{layer}_W_in"][m] + A[f"L{layer}_b_in"][m], 0)
                x = x + hidden @ A[f"L{layer}_W_out"][m] + A[f"L{layer}_b_out"][m]
        W_U = A["W_E"][m][: params.p].T if params.tied else A["W_U"][m]
        out[m] = x[:, -1] @ W_U
    return out


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_forward_equals_the_plain_all_positions_transformer(options):
    params = small_model(**options)
    tokens, _, _ = batch(7, options.get("sequence", "a b ="))
    logits, _ = tm.forward(params, tokens)
    np.testing.assert_allclose(logits, plain_logits(params, tokens), rtol=1e-12, atol=1e-12)


def finite_difference(f, x, entries, eps=1e-6):
    """Central differences of the scalar f() with respect to the given entries of x."""
    values = []
    for index in entries:
        old = x[index]
        x[index] = old + eps
        up = f()
        x[index] = old - eps
        down = f()
        x[index] = old
        values.append((up - down) / (2 * eps))
    return np.array(values)


def some_entries(array, count=25, seed=0):
    rng = np.random.default_rng(seed)
    flat = rng.choice(array.size, size=min(count, array.size), replace=False)
    return [np.unravel_index(i, array.shape) for i in flat]


def assert_gradient(grad, x, f, count=25):
    entries = some_entries(x, count)
    numeric = finite_difference(f, x, entries)
    analytic = np.array([grad[i] for i in entries])
    scale = max(np.abs(numeric).max(), 1e-8)
    assert np.abs(numeric - analytic).max() / scale < 1e-7


@pytest.mark.parametrize("attention", tm.ATTENTIONS)
@pytest.mark.parametrize("queries", [1, 3])
def test_attention_backward_matches_finite_differences(attention, queries):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 4, 3, queries, 5))
    k, v = rng.standard_normal((2, 2, 4, 3, 3, 5))
    R = rng.standard_normal((2, 4, 3, queries, 5))

    def loss():
        A = tm.attention_weights(q, k, attention)
        return float((R * (A @ v)).sum())

    cache = {"q": q, "k": k, "v": v, "A": tm.attention_weights(q, k, attention)}
    dq, dk, dv = tm._attention_backward(cache, R, attention)
    for grad, x in ((dq, q), (dk, k), (dv, v)):
        assert_gradient(grad, x, loss)


def test_softmax_attention_is_causal_and_normalised():
    rng = np.random.default_rng(2)
    q, k = rng.standard_normal((2, 1, 2, 2, 3, 4))
    A = tm.attention_weights(q, k, "softmax")
    np.testing.assert_allclose(A.sum(-1), 1)
    assert (A[..., 0, 1:] == 0).all() and (A[..., 1, 2] == 0).all()


def test_embedding_tables_equal_the_product_and_their_gradient_is_a_scatter_add():
    params = small_model()
    tokens, _, _ = batch(7)
    x = params.arrays["W_E"][np.arange(2)[:, None, None], tokens] + params.arrays["W_pos"][:, None]
    W = tm._qkv_weights(params.arrays, 0)
    np.testing.assert_allclose(tm._embedded_qkv(params.arrays, tokens),
                               np.einsum("mntd,mdk->mntk", x, W), rtol=1e-13, atol=1e-14)
    R = np.random.default_rng(3).standard_normal((*tokens.shape, W.shape[-1]))
    grads = {key: np.zeros_like(value) for key, value in params.arrays.items()}
    tm._embedded_qkv_backward(params.arrays, tokens, R, grads)

    def loss():
        return float((R * tm._embedded_qkv(params.arrays, tokens)).sum())

    for key in ("W_E", "W_pos", "L0_W_Q", "L0_W_K", "L0_W_V"):
        assert_gradient(grads[key], params.arrays[key], loss)


@pytest.mark.parametrize("mlp", [True, False], ids=["with MLP", "attention only"])
def test_block_backward_matches_finite_differences(mlp):
    params = small_model(mlp=mlp)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 1, 8))
    q = rng.standard_normal((2, 5, 1, 8))
    k, v = rng.standard_normal((2, 2, 5, 3, 8))
    R = rng.standard_normal((2, 5, 1, 8))

    def loss():
        return float((R * tm._block(params, 0, x, q, k, v)[0]).sum())

    _, cache = tm._block(params, 0, x, q, k, v)
    grads = {key: np.zeros_like(value) for key, value in params.arrays.items()}
    dx, dq, dk, dv = tm._block_backward(params, 0, cache, R, grads)
    for grad, array in ((dx, x), (dq, q), (dk, k), (dv, v)):
        assert_gradient(grad, array, loss)
    names = tm.LAYER_WEIGHTS[-1:] + (tm.MLP_WEIGHTS if mlp else ())
    for name in names:
        key = tm.layer_name(0, name)
        assert_gradient(grads[key], params.arrays[key], loss)


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_whole_model_gradient_matches_finite_differences(options):
    params = small_model(**options)
    tokens, labels, weights = batch(7, options.get("sequence", "a b ="))
    loss = "mse" if params.attention == "linear" else "cross_entropy"
    _, grads = tm.loss_and_grads(params, tokens, labels, weights, loss)
    for key, value in params.arrays.items():
        for m in range(2):   # each model's loss depends on its own weights only
            def model_loss(m=m):
                return float(tm.loss_and_grads(params, tokens, labels, weights, loss)[0][m])

            assert_gradient(grads[key][m], value[m], model_loss, count=12)


def test_cross_entropy_of_a_float32_model_is_computed_in_float64():
    params = small_model(dtype="float32", seeds=(0,))
    tokens, labels, weights = batch(7, models=1)
    logits = tm.forward(params, tokens)[0].astype(np.float64)[0]
    expected = (np.log(np.exp(logits).sum(-1)) - logits[np.arange(5), labels[0]]).mean()
    total, grads = tm.loss_and_grads(params, tokens, labels, weights)
    assert total.dtype == np.float64 and grads["W_E"].dtype == np.float32
    assert abs(float(total[0]) - expected) < 1e-12


def test_tiny_transformer_groks_after_memorising():
    ds = train(p=19, d_model=32, d_mlp=128, lr=3e-3, train_fraction=0.6, steps=1500,
                  seed=1, log_every=25)
    memorised = float(measures.memorisation_time(ds)[0])
    grokked = float(measures.grokking_time(ds)[0])
    assert memorised <= 200
    assert grokked >= 4 * memorised
    assert float(ds.test_acc[-1, 0]) >= 0.99
    assert float(ds.test_acc.sel(step=memorised)[0]) < 0.5


def test_models_of_a_batch_equal_models_trained_alone():
    options = dict(p=11, d_model=16, n_heads=2, d_mlp=32, steps=30, log_every=10)
    both = train(**options, seed=[3, 4])
    alone = train(**options, seed=4)
    np.testing.assert_allclose(both.test_loss[:, 1], alone.test_loss[:, 0], rtol=1e-10)
    np.testing.assert_allclose(both.W_E.isel(model=1), alone.W_E.isel(model=0), rtol=1e-10,
                               atol=1e-12)


def test_file_round_trip_measures_and_load_params(tmp_path):
    out = tmp_path / "run.nc"
    ds = train(p=11, d_model=16, n_heads=2, d_mlp=32, steps=40, log_every=10,
                  snapshot_every=20, seed=[0, 1], measures=["restricted_loss", "excluded_loss"],
                  key_frequencies=2, out=out)
    saved = io.open_run(out)
    assert saved.attrs["status"] == "complete"
    np.testing.assert_array_equal(saved.test_acc, ds.test_acc)
    assert saved.L0_W_in.dims == ("snapshot", "model", "d_model", "neuron")
    assert list(saved.snapshot.values) == [0, 20, 40]
    params = load_params(saved)
    task = modular("add", 11)
    a, b = task.operands()
    logits = tm.outputs(params, tm.sequence_tokens("a b =", 11, a, b))
    for m in range(2):
        ks = measures.resolve_key_frequencies(logits[m], 11, 2)
        restricted = measures.restricted_loss(logits[m], task.c, 11, ks, "cross_entropy")
        on_train = np.flatnonzero(saved.is_train[m].values)
        excluded = measures.excluded_loss(logits[m], task.c, 11, ks, "cross_entropy", on_train)
        assert float(saved.restricted_loss[-1, m]) == pytest.approx(float(restricted), 1e-10)
        assert float(saved.excluded_loss[-1, m]) == pytest.approx(float(excluded), 1e-10)
        correct = (logits[m].argmax(-1) == task.c)[~saved.is_train[m].values]
        assert float(saved.test_acc[-1, m]) == pytest.approx(correct.mean(), abs=1e-12)


def test_interrupted_run_resumes_bit_identical(tmp_path, monkeypatch):
    options = dict(p=11, d_model=16, n_heads=2, d_mlp=32, steps=40, log_every=5,
                   snapshot_every=10, seed=[0, 1], optimizer="adamw", batch_size=16)
    reference = train(**options)
    restore = sigterm_at_call(monkeypatch, _Loop, 24)    # stops at step 23
    out = tmp_path / "run.nc"
    with pytest.raises(checkpoint.RunInterrupted):
        train(**options, out=out, checkpoint_seconds=0)
    restore()
    resumed = train(**options, out=out, resume=True)
    for name in ("train_loss", "test_acc", "W_E", "L0_W_in", "W_U"):
        np.testing.assert_array_equal(resumed[name].values, reference[name].values)


def test_attention_pattern_and_mlp_activations_have_their_shapes():
    params = small_model(layers=2)
    task = modular("add", 7)
    tokens = tm.sequence_tokens("a b =", 7, *task.operands())
    assert tm.attention_pattern(params, tokens, layer=0).shape == (2, 49, 2, 3, 3)
    last = tm.attention_pattern(params, tokens, layer=1)
    assert last.shape == (2, 49, 2, 1, 3)
    np.testing.assert_allclose(last.sum(-1), 1)
    assert tm.mlp_activations(params, tokens).shape == (2, 49, 12)
    with pytest.raises(ValueError, match="layer=2"):
        tm.attention_pattern(params, tokens, layer=2)


@pytest.mark.parametrize("options, error, match", [
    ({"d_model": 10, "n_heads": 4}, ValueError, "d_model=10 is not divisible by n_heads=4"),
    ({"d_mlp": 0}, ValueError, "d_mlp"),
    ({"n_heads": 0}, ValueError, "n_heads"),
    ({"layers": 0}, ValueError, "layers"),
    ({"d_model": -8}, ValueError, "d_model"),
    ({"sequence": "a + b ="}, ValueError, "sequence='a \\+ b ='"),
    ({"dtype": "float16"}, ValueError, "float16"),
    ({"attention": "sparse"}, ValueError, "attention='sparse'"),
    ({"mlp": "no"}, TypeError, "mlp='no'"),
])
def test_bad_input_is_refused_before_any_file(tmp_path, options, error, match):
    out = tmp_path / "run.nc"
    with pytest.raises(error, match=match):
        train(**{"p": 11, "steps": 2, **options}, out=out)
    assert not list(tmp_path.iterdir())
