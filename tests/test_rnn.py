"""Streaming parity (seed 003, van Rossem & Saxe): the task, the RNN's backpropagation through
time against finite differences and a plain loop, and automaton extraction and Hopcroft
minimisation on automata whose answers are known."""


import numpy as np
import pytest
from conftest import sigterm_at_call

from gk import checkpoint
from gk.automaton import (
    Automaton,
    close_pairs,
    extract,
    merge_states,
    merge_threshold,
    minimal_states,
    minimise,
    minimised,
    prefix_tree,
)
from gk.interaction import (
    continuations,
    final_distance_squared,
    pair_measures,
    sample_pairs,
)
from gk.io import open_run
from gk.rnn import model as rm
from gk.rnn.train import SequenceBatches, _Loop, load_params, run_automata, train
from gk.tasks import all_sequences, check_bits, random_split, streaming_parity


def test_streaming_parity_holds_every_training_sequence_and_longer_test_ones():
    task = streaming_parity(max_len=4, test_lengths=(11, 30), test_count=50)
    train = task.train
    assert train.size == 2 + 4 + 8 + 16
    as_strings = {"".join(map(str, row[:n])) for row, n in zip(train.bits, train.lengths,
                                                                 strict=True)}
    assert len(as_strings) == train.size
    for row, n, target in zip(train.bits, train.lengths, train.targets, strict=True):
        assert list(target[:n]) == [sum(row[: t + 1]) % 2 for t in range(n)]
        assert not row[n:].any() and not target[n:].any()
    test = task.test
    assert test.size == 50 and test.lengths.min() >= 11 and test.lengths.max() <= 30
    assert not (test.bits * ~test.mask).any()


@pytest.mark.parametrize("bad", [[0, 2, 1], [0.5, 1]])
def test_non_binary_symbols_are_refused(bad):
    with pytest.raises(ValueError, match="alphabet is binary"):
        check_bits(np.array(bad))


def batch(max_len=4, models=2):
    seqs = streaming_parity(max_len).train
    shape = (models, *seqs.bits.shape)
    weights = np.broadcast_to(seqs.mask / seqs.mask.sum(), shape)
    return (np.broadcast_to(seqs.bits, shape), np.broadcast_to(seqs.targets, shape) * 1.0,
            weights)


def plain_outputs(params, bits):
    """The RNN one sequence and one step at a time."""
    phi = np.tanh if params.activation == "tanh" else (lambda a: np.maximum(a, 0))
    A = params.arrays
    y = np.empty(bits.shape)
    for m in range(bits.shape[0]):
        for i in range(bits.shape[1]):
            h = params.initial_state()[m]
            for t in range(bits.shape[2]):
                h = phi(h @ A["W_hh"][m] + A["W_in"][m, bits[m, i, t]] + A["b_h"][m])
                y[m, i, t] = h @ A["w_out"][m] + A["b_out"][m]
    return y


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_forward_equals_a_plain_loop(activation):
    params = rm.init(hidden=5, activation=activation, gain=1.0, seed=[0, 1])
    bits, _, _ = batch(3)
    np.testing.assert_allclose(rm.forward(params, bits)[0], plain_outputs(params, bits),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("initial_state", ["ones", "learnt"])
def test_backpropagation_through_time_matches_finite_differences(activation, initial_state):
    params = rm.init(hidden=6, activation=activation, gain=1.0, initial_state=initial_state,
                     seed=[0, 1])
    rng = np.random.default_rng(0)
    params.arrays["b_h"][...] = 0.3 * rng.standard_normal(params.arrays["b_h"].shape)
    bits, targets, weights = batch(4)
    _, grads = rm.loss_and_grads(params, bits, targets, weights)
    for key, array in params.arrays.items():
        flat, grad = array.reshape(-1), grads[key].reshape(-1)
        for i in rng.choice(flat.size, min(15, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            up = rm.loss_and_grads(params, bits, targets, weights)[0].sum()
            flat[i] = old - 1e-6
            down = rm.loss_and_grads(params, bits, targets, weights)[0].sum()
            flat[i] = old
            numeric = (up - down) / 2e-6
            assert abs(numeric - grad[i]) <= 1e-6 * max(1.0, abs(numeric)), (key, i)


def test_final_states_are_the_states_after_each_last_symbol():
    params = rm.init(hidden=4, activation="tanh", gain=1.0, seed=[0])
    seqs = all_sequences(1, 3)
    bits = seqs.bits[None]
    states = rm.final_states(params, bits, seqs.lengths[None])
    for i, n in enumerate(seqs.lengths):
        alone = rm.forward(params, bits[:, i: i + 1, :n])[1]["h"][0, 0, -1]
        np.testing.assert_allclose(states[0, i], alone, rtol=1e-13)


# --- automata --------------------------------------------------------------------------------


def test_prefix_tree_links_each_prefix_to_its_extensions():
    children = prefix_tree(3)
    seqs = all_sequences(1, 3)
    words = [""] + ["".join(map(str, row[:n])) for row, n in zip(seqs.bits, seqs.lengths,
                                                                 strict=True)]
    for node, word in enumerate(words):
        for s in (0, 1):
            child = children[node, s]
            assert (words[child] == word + str(s)) if len(word) < 3 else child == -1


def test_hopcroft_minimises_a_textbook_automaton():
    # Wikipedia's "DFA minimization" example: states a..f, c, d, e accepting;
    # {a, b}, {c, d, e} and {f} are the classes.
    transitions = np.array([[1, 2], [0, 3], [4, 5], [4, 5], [4, 5], [5, 5]])
    outputs = np.array([0, 0, 1, 1, 1, 0])
    blocks = minimise(Automaton(transitions, outputs))
    assert list(blocks) == [0, 0, 1, 1, 1, 2]
    small = minimised(Automaton(transitions, outputs))
    assert small.transitions.tolist() == [[0, 1], [1, 2], [2, 2]]
    assert small.outputs.tolist() == [0, 1, 0] and small.initial == 0


def test_hopcroft_on_the_parity_tree_keeps_depth_and_parity():
    # The unmerged tree of prefixes up to length L: prefixes are equivalent exactly when
    # they have the same length and parity (the leaves have no future), so 1 + 2L states.
    L = 4
    seqs = all_sequences(1, L)
    parity = np.concatenate([[0], seqs.targets[np.arange(seqs.size), seqs.lengths - 1]])
    children = prefix_tree(L)
    tree = Automaton(np.where(children >= 0, children, -1), parity)
    assert minimal_states(tree) == 1 + 2 * L


def hidden_states(L, noise, seed=0):
    seqs = all_sequences(1, L)
    parity = np.concatenate([[0], seqs.targets[np.arange(seqs.size), seqs.lengths - 1]])
    codes = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    rng = np.random.default_rng(seed)
    return codes[parity] + noise * rng.standard_normal((len(parity), 3)), parity


def test_hidden_states_of_a_parity_network_give_the_two_state_automaton():
    states, parity = hidden_states(5, noise=1e-5)
    automaton = extract(states, parity, prefix_tree(5), threshold=0.01)
    assert automaton.n_states == 2 and automaton.consistent
    assert list(automaton.transitions[automaton.initial]) == [automaton.initial,
                                                               1 - automaton.initial]
    assert minimal_states(automaton) == 2


def test_distinct_hidden_states_give_the_tree_and_conflicts_are_counted():
    states, parity = hidden_states(3, noise=1.0)
    tree = extract(states, parity, prefix_tree(3), threshold=1e-9)
    assert tree.n_states == len(states) and tree.consistent
    assert minimal_states(tree) == 7
    wrong = extract(np.zeros_like(states), parity, prefix_tree(3), threshold=0.5)
    assert wrong.n_states == 1 and wrong.mixed_outputs == 1 and not wrong.consistent


def test_merging_is_single_linkage_below_the_threshold():
    states = np.array([[0.0], [0.6], [1.2], [5.0]])
    assert list(merge_states(states, 0.7)) == [0, 0, 0, 1]
    assert close_pairs(states, 0.7).tolist() == [[0, 1], [1, 2]]
    assert merge_threshold(states) == pytest.approx(0.01 * states.std())
    with pytest.raises(ValueError, match="threshold"):
        merge_states(states, 0.0)


# --- the lean forward passes ----------------------------------------------------------------


def test_loss_is_the_mean_squared_error_over_the_steps():
    params = rm.init(hidden=5, gain=1.0, seed=[0, 1])
    bits, targets, weights = batch(3)
    y = rm.forward(params, bits)[0]
    mask = np.broadcast_to(streaming_parity(3).train.mask, y.shape)
    loss = rm.loss_and_grads(params, bits, targets, weights)[0]
    np.testing.assert_allclose(loss, [((y[m] - targets[m])[mask[m]] ** 2).mean()
                                      for m in range(2)], rtol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_outputs_and_prefix_states_equal_the_full_forward_pass(activation):
    params = rm.init(hidden=6, activation=activation, gain=1.0, seed=[0, 3])
    seqs = all_sequences(1, 4)
    bits = np.broadcast_to(seqs.bits, (2, *seqs.bits.shape))
    y, cache = rm.forward(params, bits)
    np.testing.assert_array_equal(rm.outputs(params, bits), y)
    order = np.argsort(-seqs.lengths, kind="stable")
    running = rm.outputs(params, bits[:, order], seqs.lengths[order])
    np.testing.assert_allclose(running, y[:, order] * seqs.mask[order], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(rm.read_out(params, cache["h"][:, :, 1:]), y, rtol=1e-13)
    nodes = rm.prefix_states(params, 4)
    last = cache["h"][:, np.arange(seqs.size), seqs.lengths]
    np.testing.assert_allclose(nodes[:, 1:], last, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(nodes[:, 0], params.initial_state())


def test_per_model_gains_scale_the_initial_weights():
    one = rm.init(hidden=50, gain=1.0, seed=[4])
    both = rm.init(hidden=50, gain=[1.0, 0.1], seed=[4, 4])
    for key in ("W_in", "W_hh", "w_out"):
        np.testing.assert_allclose(both.arrays[key][1], 0.1 * one.arrays[key][0], rtol=1e-15)
    with pytest.raises(ValueError, match="one per seed"):
        rm.init(gain=[0.1, 0.2], seed=[0, 1, 2])


# --- interaction theory -----------------------------------------------------------------------


def words(max_len):
    seqs = all_sequences(1, max_len)
    return [""] + ["".join(map(str, row[:n])) for row, n in zip(seqs.bits, seqs.lengths,
                                                                 strict=True)]


def test_continuations_are_every_suffix_both_prefixes_can_take():
    L = 5
    children, names = prefix_tree(L), words(L)
    index = {w: k for k, w in enumerate(names)}
    pairs = np.array([[1, 2], [3, 9], [4, 20]])
    nodes, pair_of = continuations(children, pairs)
    for k, (u, v) in enumerate(pairs):
        room = L - max(len(names[u]), len(names[v]))
        suffixes = [w for w in names if len(w) <= room]
        expected = {(index[names[u] + s], index[names[v] + s]) for s in suffixes}
        assert set(map(tuple, nodes[pair_of == k].tolist())) == expected
        assert (pair_of == k).sum() == len(expected)


def test_pair_measures_equal_the_formulas_pair_by_pair():
    L, rng = 4, np.random.default_rng(1)
    children = prefix_tree(L)
    nodes_count = len(children)
    states = rng.standard_normal((2, nodes_count, 3))
    outputs = rng.standard_normal((2, nodes_count))
    targets = rng.integers(0, 2, nodes_count)
    depths = np.array([len(w) for w in words(L)])
    pairs = sample_pairs(depths, 6, 2, seed=3)
    assert len({tuple(p) for p in pairs}) == 6 and (depths[pairs] >= 1).all()
    assert (depths[pairs] <= 2).all() and (pairs[:, 0] < pairs[:, 1]).all()
    nodes, pair_of = continuations(children, pairs)
    got = pair_measures(states, outputs, targets, pairs, nodes, pair_of)
    for m in range(2):
        for k, (u, v) in enumerate(pairs):
            first, second = nodes[pair_of == k].T
            dh = np.linalg.norm(states[m, v] - states[m, u])
            dy = outputs[m, second] - outputs[m, first]
            wanted = (targets[second] - targets[first]).astype(float)
            a_low = np.mean(wanted**2) - np.mean(wanted) ** 2
            a_high = np.mean(wanted) ** 2 - 1 / np.mean(dy**2 / dh**2)
            root = max(np.roots([1, -a_high, -a_low]).real)      # eq. 6 solves x² = A_h x + A_l
            expected = {"distance": dh, "alignment": np.mean(dy**2 - dy * wanted),
                        "a_low": a_low, "a_high": a_high, "predicted_distance": np.sqrt(root)}
            for name, value in expected.items():
                assert got[name][m, k] == pytest.approx(value, rel=1e-10, abs=1e-12), name


def test_pairs_with_the_same_target_differences_are_predicted_to_merge():
    a_high = np.array([-0.5, -1e-3, 0.3])
    merged = final_distance_squared(np.zeros(3), a_high)
    assert merged[0] == 0 and merged[1] == 0 and merged[2] == pytest.approx(0.3)
    assert final_distance_squared(np.array([0.2]), np.array([-0.5]))[0] > 0


# --- training ----------------------------------------------------------------------------------


def test_batches_weight_each_model_s_steps_and_leave_padding_out():
    seqs = streaming_parity(4).train
    splits = [random_split(seqs, 0.5, 0), random_split(seqs, 1.0, 1)]
    batches = SequenceBatches(seqs, splits, None, "float64")
    (bits,), targets, weights = batches.next()
    for m, split in enumerate(splits):
        chosen = len(split.train)
        np.testing.assert_array_equal(bits[m, :chosen], seqs.bits[split.train])
        np.testing.assert_array_equal(targets[m, :chosen], seqs.targets[split.train])
        assert weights[m].sum() == pytest.approx(1.0)
        assert not weights[m, chosen:].any()
        np.testing.assert_allclose(weights[m, :chosen][seqs.mask[split.train]],
                                   1 / seqs.mask[split.train].sum())


QUICK = dict(max_len=6, hidden=32, batch_size=None, lr=0.2, steps=3000, log_every=100,
             snapshot_every=500, test_lengths=(7, 40), test_count=200, probe_pairs=8)


def test_logged_train_metrics_equal_a_direct_evaluation(tmp_path):
    ds = train(**{**QUICK, "steps": 200, "batch_size": 16}, train_fraction=[0.6, 1.0],
               seed=[0, 1], out=tmp_path / "run.nc")
    seqs = streaming_parity(6, (7, 40), 200).train
    params = load_params(tmp_path / "run.nc", step=0)
    y = rm.outputs(params, np.broadcast_to(seqs.bits, (2, *seqs.bits.shape)))
    for m in range(2):
        rows = ds.is_train.values[m]
        mask = seqs.mask[rows]
        error = (y[m][rows] - seqs.targets[rows])[mask]
        assert float(ds.train_loss[0, m]) == pytest.approx((error**2).mean(), rel=1e-12)
        assert float(ds.train_acc[0, m]) == pytest.approx((abs(error) < 0.5).mean())
    assert ds.is_train.values[0].sum() == round(0.6 * seqs.size)
    assert list(ds.steps_per_epoch.values) == [-(-round(0.6 * 126) // 16), 126 // 16 + 1]


def test_a_quick_run_merges_into_the_two_state_automaton_and_generalises(tmp_path):
    ds = train(**QUICK, seed=[0, 2], out=tmp_path / "run.nc")
    on_disk = open_run(tmp_path / "run.nc")
    for name in ("train_loss", "n_states", "pair_distance", "W_hh", "test_bits"):
        np.testing.assert_array_equal(on_disk[name].values, ds[name].values)
    last = ds.isel(step=-1)
    assert (last.n_states_minimised == 2).all() and (last.test_sequence_acc == 1).all()
    assert (ds.n_states.max("step") > 20).all()          # the tree grew before it merged
    assert (last.automaton_conflicts == 0).all()
    step = int(ds.snapshot[-2])
    again = run_automata(load_params(ds, step), 6)
    assert [a.n_states for a in again] == ds.n_states.sel(step=step).values.tolist()
    parity = minimised(again[0])
    assert parity.outputs[parity.initial] == 0 and parity.outputs[1 - parity.initial] == 1
    assert parity.transitions[parity.initial].tolist() == [parity.initial, 1 - parity.initial]
    same = ds.probe_same_parity.values
    assert same.any() and not same.all()
    # equal parity: ỹ_i = 0 for every continuation, so A_low = 0, A_high < 0: merge (eq. 7)
    assert (ds.pair_a_low.values[:, :, same] == 0).all()
    assert (ds.pair_a_high.values[:, :, same] < 0).all()
    assert (ds.pair_predicted_distance.values[:, :, same] == 0).all()
    # different parity: ỹ_i = ±1 by the parity of the suffix, so A_low > 0: they stay apart
    assert (ds.pair_a_low.values[:, :, ~same] > 0.5).all()
    assert (ds.pair_predicted_distance.values[:, :, ~same] > 0).all()


def test_interrupted_run_resumes_bit_identical(tmp_path, monkeypatch):
    options = {**QUICK, "steps": 60, "log_every": 10, "snapshot_every": 20, "seed": [0, 1],
               "batch_size": 16}
    reference = train(**options)
    restore = sigterm_at_call(monkeypatch, _Loop, 24)    # stops at step 23
    out = tmp_path / "run.nc"
    with pytest.raises(checkpoint.RunInterrupted):
        train(**options, out=out, checkpoint_seconds=0)
    restore()
    resumed = train(**options, out=out, resume=True)
    for name in ("train_loss", "test_acc", "n_states", "W_hh", "pair_alignment"):
        np.testing.assert_array_equal(resumed[name].values, reference[name].values)
