"""Automata read off a recurrent network's hidden states (seed 003, van Rossem & Saxe).

The hidden states after every prefix of the training sequences are merged where they lie
closer than a threshold (seed 003: 0.01 × the standard deviation of the hidden
representations); each group of merged states is a state of an automaton whose transitions
follow the prefixes (the state after u goes to the state after u·s on symbol s) and whose
output is the network's. The automaton is minimised with Hopcroft's algorithm. Early in
training it is the tree of the training prefixes; a network that has found parity merges it
into the two-state parity automaton.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gk.config import check_int, check_number


def prefix_tree(max_len: int, symbols: int = 2) -> np.ndarray:
    """Children of the nodes of the tree of all sequences of length ≤ ``max_len``.

    Node 0 is the empty prefix and node 1 + k the k-th sequence of
    :func:`gk.tasks.all_sequences` (shortest first, each length in increasing order). Returns
    ``children`` (nodes, symbols): the node of u·s for node u, −1 at the leaves.
    """
    check_int("max_len", max_len, 1)
    offsets = np.concatenate([[0], np.cumsum(symbols ** np.arange(1, max_len + 1))])
    children = np.full((offsets[-1] + 1, symbols), -1, dtype=np.int64)
    children[0] = 1 + np.arange(symbols)
    for length in range(1, max_len):
        values = np.arange(symbols**length)
        nodes = 1 + offsets[length - 1] + values
        for s in range(symbols):
            children[nodes, s] = 1 + offsets[length] + symbols * values + s
    return children


def merge_threshold(states: Any, fraction: float = 0.01) -> float:
    """``fraction`` × the standard deviation of the hidden states' entries (seed 003)."""
    check_number("fraction", fraction)
    return float(fraction * np.asarray(states).std())


def close_pairs(states: Any, threshold: float) -> np.ndarray:
    """The pairs (i, j), i < j, of rows of ``states`` (n, H) closer than ``threshold``
    (Euclidean), as an (pairs, 2) array."""
    check_number("threshold", threshold)
    x = np.asarray(states, dtype=np.float64)
    squared = (x * x).sum(axis=1)
    distance2 = squared[:, None] + squared[None, :] - 2 * x @ x.T
    i, j = np.nonzero(np.triu(distance2 < threshold**2, k=1))
    return np.stack([i, j], axis=1)


def merge_states(states: Any, threshold: float) -> np.ndarray:
    """Group the rows of ``states`` (n, H) that are chained by distances below
    ``threshold`` (single linkage); returns each row's group, numbered 0, 1, ... in order of
    first appearance."""
    return _groups(close_pairs(states, threshold), len(states))


def _groups(pairs: np.ndarray, n: int) -> np.ndarray:
    """The connected components of ``n`` items joined by ``pairs``, numbered by first
    item."""
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))
    return order[labels]


@dataclass(frozen=True)
class Automaton:
    """A deterministic automaton with outputs on its states (a Moore machine).

    Attributes
    ----------
    transitions : numpy.ndarray, shape (states, symbols)
        The next state, −1 where there is none.
    outputs : numpy.ndarray, shape (states,)
        Each state's output (for streaming parity, the network's rounded parity).
    initial : int
    conflicts : int
        (state, symbol) pairs whose merged prefixes led to different states (resolved by the
        most frequent one); 0 for an automaton built without merging.
    mixed_outputs : int
        States whose merged prefixes had different outputs (the most frequent kept).
    merger_pairs : int
        Pairs of prefixes whose states were closer than the threshold.
    """

    transitions: np.ndarray
    outputs: np.ndarray
    initial: int = 0
    conflicts: int = 0
    mixed_outputs: int = 0
    merger_pairs: int = 0

    @property
    def n_states(self) -> int:
        return len(self.outputs)

    @property
    def consistent(self) -> bool:
        """True if the merged prefixes agree on every transition and output: then every
        merged pair agrees on all future outputs over the training prefixes."""
        return self.conflicts == 0 and self.mixed_outputs == 0


def _most_frequent(groups: np.ndarray, values: np.ndarray, count: int) -> tuple[np.ndarray,
                                                                                 int]:
    """For each group 0..count−1 the most frequent of its values (the smallest among ties;
    −1 for a group without values) and how many groups had more than one value."""
    pairs, times = np.unique(np.stack([groups, values], axis=1), axis=0, return_counts=True)
    best = np.lexsort((pairs[:, 1], -times, pairs[:, 0]))   # by group, most frequent first
    group_of = pairs[best, 0]
    first = np.flatnonzero(np.r_[True, group_of[1:] != group_of[:-1]])
    chosen = np.full(count, -1, dtype=np.int64)
    chosen[group_of[first]] = pairs[best[first], 1]
    return chosen, int((np.bincount(pairs[:, 0], minlength=count) > 1).sum())


def extract(states: Any, outputs: Any, children: np.ndarray, threshold: float) -> Automaton:
    """The automaton of a network's hidden states on the nodes of a prefix tree.

    Parameters
    ----------
    states : array, shape (nodes, H)
        The hidden state after each prefix (node 0: the initial state).
    outputs : int array, shape (nodes,)
        The network's output class after each prefix (node 0's is not used by parity but is
        kept as it is).
    children : int array, shape (nodes, symbols)
        :func:`prefix_tree`.
    threshold : float
        States closer than this are merged (:func:`merge_threshold`).
    """
    pairs = close_pairs(states, threshold)
    labels = _groups(pairs, len(states))
    count = int(labels.max()) + 1
    outputs = np.asarray(outputs, dtype=np.int64)
    state_outputs, mixed = _most_frequent(labels, outputs, count)
    transitions = np.full((count, children.shape[1]), -1, dtype=np.int64)
    conflicts = 0
    for s in range(children.shape[1]):
        has = children[:, s] >= 0
        chosen, disagreeing = _most_frequent(labels[has], labels[children[has, s]], count)
        transitions[:, s] = chosen
        conflicts += disagreeing
    return Automaton(transitions, state_outputs, int(labels[0]), conflicts, mixed, len(pairs))


def minimise(automaton: Automaton) -> np.ndarray:
    """Hopcroft's minimisation: the block of each state in the coarsest partition that
    respects outputs and transitions (missing transitions go to an implicit dead state that
    no real state equals). Returns block numbers (states,), 0, 1, ... by first state."""
    transitions, outputs = automaton.transitions, automaton.outputs
    n, symbols = transitions.shape
    dead = n                                              # an extra state, its own block
    full = np.where(transitions >= 0, transitions, dead)
    full = np.vstack([full, np.full((1, symbols), dead)])
    inverse = [[[] for _ in range(n + 1)] for _ in range(symbols)]
    for state in range(n + 1):
        for s in range(symbols):
            inverse[s][full[state, s]].append(state)
    blocks = [set(np.flatnonzero(outputs == value).tolist()) for value in np.unique(outputs)]
    blocks.append({dead})
    waiting = [frozenset(block) for block in blocks]
    while waiting:
        splitter = waiting.pop()
        for s in range(symbols):
            into = {p for q in splitter for p in inverse[s][q]}
            refined = []
            for block in blocks:
                inside, outside = block & into, block - into
                if inside and outside:
                    refined += [inside, outside]
                    if frozenset(block) in waiting:
                        waiting.remove(frozenset(block))
                        waiting += [frozenset(inside), frozenset(outside)]
                    else:
                        waiting.append(frozenset(min(inside, outside, key=len)))
                else:
                    refined.append(block)
            blocks = refined
    of_state = np.empty(n + 1, dtype=np.int64)
    for number, block in enumerate(blocks):
        of_state[list(block)] = number
    real = of_state[:n]
    _, first = np.unique(real, return_index=True)
    renumber = np.empty(int(real.max()) + 1, dtype=np.int64)
    renumber[real[np.sort(first)]] = np.arange(len(first))
    return renumber[real]


def minimal_states(automaton: Automaton) -> int:
    """The number of states of the minimised automaton (the dead state not counted)."""
    return int(minimise(automaton).max()) + 1


def minimised(automaton: Automaton) -> Automaton:
    """The minimal automaton: one state per block of :func:`minimise`, with the transitions
    and output of its states (which agree within a block)."""
    blocks = minimise(automaton)
    _, first = np.unique(blocks, return_index=True)          # a state of each block
    moves = automaton.transitions[first]
    transitions = np.where(moves >= 0, blocks[np.maximum(moves, 0)], -1)
    return Automaton(transitions, automaton.outputs[first], int(blocks[automaton.initial]))
