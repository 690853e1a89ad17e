"""Streaming parity (seed 003, van Rossem & Saxe): the task, the RNN's backpropagation through
time against finite differences and a plain loop, and automaton extraction and Hopcroft
minimisation on automata whose answers are known."""

import numpy as np
import pytest

from gk.automaton import (
    Automaton,
    close_pairs,
    extract,
    merge_states,
    merge_threshold,
    minimal_states,
    minimise,
    prefix_tree,
)
from gk.rnn import model as rm
from gk.tasks import all_sequences, check_bits, streaming_parity


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
                h = phi(h @ A["W_hh"][m] + A["W_in"][m, bits[m, i, t]] + A["b"][m])
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
    params.arrays["b"][...] = 0.3 * rng.standard_normal(params.arrays["b"].shape)
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
