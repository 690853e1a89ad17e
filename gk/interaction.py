"""Interaction theory of merging representations (seed 003, van Rossem & Saxe, eqs. 1–7).

Take two inputs x_1, x_2 (here two prefixes u, v of a prefix tree) with hidden states h_1,
h_2, and the N continuations i that both share (every suffix s for which u·s and v·s are
training prefixes, the empty one included). With

    d_h = h_2 − h_1,   dy_i = y(v·s_i) − y(u·s_i),   ỹ_i = y*(v·s_i) − y*(u·s_i),
    w_i = ‖dy_i‖² − dy_iᵀ ỹ_i                                                   (eq. 3)

gradient descent on the two representations drives ‖d_h‖ at the rate ½ Σ_i w_i (eq. 3), and
the reduced dynamics settle at

    A_low  = ⟨‖ỹ_i‖²⟩_i − ‖⟨ỹ_i⟩_i‖²                                           (eq. 4)
    A_high = ‖⟨ỹ_i⟩_i‖² − ⟨‖dy_i‖² / ‖d_h‖²⟩_i⁻¹                                (eq. 5)
    ‖d_h(∞)‖² = ½ (A_high + √(A_high² + 4 A_low))                               (eq. 6)

so that the pair merges (‖d_h(∞)‖ = 0) when A_low = 0 and A_high < 0 (eq. 7). In streaming
parity two prefixes of equal parity have ỹ_i = 0 for every continuation, so A_low = 0 and
A_high < 0: they are predicted to merge. Two of different parity have ỹ_i = ±1, the sign set
by the parity of the suffix, so A_low > 0 and they are predicted to stay apart. dy_i is
measured as the difference of the network's outputs, which is eq. 1's linearisation
D y_i(h̄) d_h to first order. Outputs here are scalars (one per prefix).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gk import backend
from gk.backend import array_namespace
from gk.config import check_int


def sample_pairs(depths: np.ndarray, count: int, max_depth: int, seed: int = 0
                 ) -> np.ndarray:
    """``count`` distinct pairs (u, v), u < v, of prefix-tree nodes of depth 1..``max_depth``
    (a shallow pair shares many continuations), drawn from ``gk.backend.rng((seed, 7))``.
    ``depths`` is each node's prefix length."""
    check_int("count", count, 0)
    nodes = np.flatnonzero((depths >= 1) & (depths <= max_depth))
    first, second = np.triu_indices(len(nodes), k=1)
    if count > len(first):
        raise ValueError(f"count={count} is too large; there are {len(first)} pairs of "
                         f"prefixes of length 1..{max_depth}")
    chosen = np.sort(backend.rng((int(seed), 7)).choice(len(first), count, replace=False))
    return np.stack([nodes[first[chosen]], nodes[second[chosen]]], axis=1)


def continuations(children: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every shared continuation of each pair: for pair k = (u, v) and each suffix s with
    u·s and v·s both in the tree (the empty s included), the row (u·s, v·s) of ``nodes``
    (C, 2) and k in ``pair_of`` (C,)."""
    pair_of = np.arange(len(pairs))
    frontier = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    rows, owners = [np.empty((0, 2), dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    while len(frontier):
        rows.append(frontier)
        owners.append(pair_of)
        after = [np.stack([children[frontier[:, 0], s], children[frontier[:, 1], s]], axis=1)
                 for s in range(children.shape[1])]
        keep = [(step >= 0).all(axis=1) for step in after]
        frontier = np.concatenate([step[k] for step, k in zip(after, keep, strict=True)])
        pair_of = np.concatenate([pair_of[k] for k in keep])
    return np.concatenate(rows), np.concatenate(owners)


def pair_measures(states: Any, outputs: Any, targets: Any, pairs: np.ndarray,
                  nodes: np.ndarray, pair_of: np.ndarray) -> dict[str, Any]:
    """The interaction-theory quantities of each pair, for every model.

    Parameters
    ----------
    states : array, shape (M, nodes, H)
        Hidden states at the prefix-tree nodes.
    outputs : array, shape (M, nodes)
        The network's output at each node; ``targets`` (nodes,) the wanted one.
    pairs : int array, shape (P, 2)
        The pairs (u, v), e.g. from :func:`sample_pairs`.
    nodes, pair_of : int arrays, shapes (C, 2) and (C,)
        Their shared continuations (:func:`continuations`).

    Returns
    -------
    dict of (M, P) arrays
        ``distance`` ‖d_h‖; ``alignment`` ⟨w_i⟩_i (eq. 3, > 0 while the pair moves
        together); ``a_low`` and ``a_high`` (eqs. 4, 5); ``predicted_distance`` ‖d_h(∞)‖ of
        eq. 6.
    """
    xp = array_namespace(states)
    distance = xp.linalg.norm(states[:, pairs[:, 1]] - states[:, pairs[:, 0]], axis=-1)
    dy = outputs[:, nodes[:, 1]] - outputs[:, nodes[:, 0]]                  # (M, C)
    wanted = xp.asarray(targets[nodes[:, 1]] - targets[nodes[:, 0]], dtype=dy.dtype)
    counts = np.bincount(pair_of, minlength=len(pairs))
    average = np.zeros((len(nodes), len(pairs)))                            # mean over i
    average[np.arange(len(nodes)), pair_of] = 1 / counts[pair_of]
    average = xp.asarray(average, dtype=dy.dtype)
    mean_wanted = wanted @ average
    a_low = xp.maximum((wanted**2) @ average - mean_wanted**2, 0)      # a variance
    gain = ((dy**2) @ average) / distance**2                  # ⟨‖dy_i‖² / ‖d_h‖²⟩_i
    a_high = mean_wanted**2 - 1 / gain
    a_low = xp.broadcast_to(a_low, a_high.shape)
    return {"distance": distance, "alignment": (dy**2 - dy * wanted) @ average,
            "a_low": a_low, "a_high": a_high,
            "predicted_distance": xp.sqrt(final_distance_squared(a_low, a_high))}


def final_distance_squared(a_low: Any, a_high: Any) -> Any:
    """‖d_h(∞)‖² = ½ (A_high + √(A_high² + 4 A_low)), the stable fixed point of the reduced
    dynamics (seed 003, eq. 6); 0 exactly when A_low = 0 and A_high ≤ 0 (eq. 7)."""
    xp = array_namespace(a_high)
    return 0.5 * (a_high + xp.sqrt(a_high**2 + 4 * a_low))
