"""Training loop of the RNN on streaming parity (seed 003, van Rossem & Saxe): many models
as one array program, logged with the automaton read off the hidden states, with
checkpoints and resume."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from gk import backend, checkpoint, io, training
from gk.automaton import Automaton, extract, merge_threshold, minimal_states, prefix_tree
from gk.config import RunConfig, check_choice, check_int, check_number, configure
from gk.interaction import continuations, pair_measures, sample_pairs
from gk.optim import model_norm
from gk.rnn.model import (
    ACTIVATIONS,
    INITIAL_STATES,
    Params,
    init,
    loss_and_grads,
    outputs,
    prefix_states,
    read_out,
)
from gk.tasks import Sequences, Split, StreamingParity, random_split, streaming_parity

WEIGHT_DIMS = {"W_in": ("symbol", "hidden"), "W_hh": ("hidden_from", "hidden"),
               "b_h": ("hidden",), "w_out": ("hidden",), "b_out": (), "h0": ("hidden",)}
"""The dims after ``model`` of each weight's snapshots."""

PROBE_PAIRS = 32
"""Probe pairs snapshotted unless ``probe_pairs`` says otherwise."""

PAIR_MEASURES = ("distance", "alignment", "a_low", "a_high", "predicted_distance")
"""The interaction-theory quantities snapshotted per probe pair, as ``pair_{name}``
(:func:`gk.interaction.pair_measures`)."""


@dataclass(frozen=True)
class RNNConfig(RunConfig):
    """Everything that defines a training run of the RNN on streaming parity.

    The defaults reproduce seed 003 (van Rossem & Saxe): every sequence of length 1..10,
    100 ReLU units with biases, h0 = 1 fixed, Xavier-normal weights with gain 0.1, mean
    squared error on every step's output, SGD with lr 0.02 on minibatches of 128 for 1000
    epochs (16 000 steps of 2046 sequences), states merged closer than 0.01 × their
    standard deviation.

    Parameters
    ----------
    max_len : int
        The training set is every binary sequence of length 1..max_len (2^{max_len+1} − 2).
    test_lengths : (int, int)
        Shortest and longest test sequence; ``test_count`` random ones (seed 0).
    hidden : int
        Hidden units H.
    activation : {"relu", "tanh"}
    initial_state : {"ones", "learnt"}
        :data:`gk.rnn.model.INITIAL_STATES`.
    gain : float or sequence
        Scale of the Xavier-normal initial weights; small gains favour merging.
    train_fraction : float or sequence
        Fraction of the training sequences each model trains on (a random subset from its
        seed; 1 is seed 003). The automaton is always read off every prefix of length
        ≤ max_len.
    seed, lr, weight_decay : number or sequence
        Per model, as in :class:`gk.mlp.train.TrainConfig`.
    optimizer : {"gd", "momentum", "adamw", "normalised_gd"}
        :mod:`gk.optim`; "gd" on minibatches is seed 003's SGD.
    steps : int
        Optimizer steps; an epoch is ⌈sequences / batch_size⌉ steps.
    momentum, betas, eps : as in :class:`gk.mlp.train.TrainConfig`.
    grad_filter, filter_alpha, filter_lambda, filter_window
        Grokfast's gradient filter, as in :class:`gk.mlp.train.TrainConfig` (None: none).
    batch_size : int or None
        Sequences per step (None: full batch).
    dtype : {"float64", "float32"}
    log_every : int
        Steps between logged rows, each with the automaton's size.
    snapshot_every : int
        Steps between snapshots of the weights and of the probe pairs' measures.
    merge_fraction : float
        States closer than merge_fraction × the hidden states' standard deviation merge.
    probe_pairs : int or None
        Pairs of prefixes (lengths 1..max_len // 2) whose interaction-theory quantities are
        snapshotted (0: none; None: :data:`PROBE_PAIRS`, or every pair if there are fewer).
    """

    max_len: int = 10
    test_lengths: tuple[int, int] = (11, 100)
    test_count: int = 1000
    hidden: int = 100
    activation: str = "relu"
    initial_state: str = "ones"
    gain: float | tuple[float, ...] = 0.1
    train_fraction: float | tuple[float, ...] = 1.0
    optimizer: str = "gd"
    lr: float | tuple[float, ...] = 0.02
    steps: int = 16000
    seed: int | tuple[int, ...] = 0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float | tuple[float, ...] = 0.0
    grad_filter: str | None = None
    filter_alpha: float = 0.98
    filter_lambda: float = 2.0
    filter_window: int = 100
    batch_size: int | None = 128
    dtype: str = "float64"
    log_every: int = 16
    snapshot_every: int = 160
    merge_fraction: float = 0.01
    probe_pairs: int | None = None

    PER_MODEL = ("seed", "gain", "train_fraction", "lr", "weight_decay")

    def __post_init__(self) -> None:
        self._normalise_lists()
        if isinstance(self.test_lengths, list):
            object.__setattr__(self, "test_lengths", tuple(self.test_lengths))
        streaming_parity(self.max_len, self.test_lengths, self.test_count)   # checks them
        check_int("hidden", self.hidden, 1)
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("initial_state", self.initial_state, INITIAL_STATES)
        for gain in self.per_model("gain"):
            check_number("gain", gain)
        check_number("merge_fraction", self.merge_fraction)
        shallow = 2 ** (self.max_len // 2 + 1) - 2          # prefixes of length 1..max_len // 2
        available = shallow * (shallow - 1) // 2
        if self.probe_pairs is None:
            object.__setattr__(self, "probe_pairs", min(PROBE_PAIRS, available))
        check_int("probe_pairs", self.probe_pairs, 0)
        if self.probe_pairs > available:
            raise ValueError(f"probe_pairs={self.probe_pairs} is too large for max_len="
                             f"{self.max_len}: there are {available} pairs of prefixes of "
                             f"length 1..{self.max_len // 2}")
        backend.check_dtype(self.dtype)
        training.check_loop_fields(self)


class SequenceBatches(training.Batches):
    """Each model's training sequences, as padded (M, n, T) arrays: the bits, the per-step
    targets and the weights of the mean over the batch's steps (0 on padding)."""

    def _arrays(self, indices: list[np.ndarray]) -> tuple[tuple, Any, Any]:
        sequences: Sequences = self.task
        width = max(len(i) for i in indices)
        rows = np.zeros((len(indices), width), dtype=np.int64)
        steps = np.zeros((len(indices), width, sequences.bits.shape[1]))
        for m, chosen in enumerate(indices):
            rows[m, : len(chosen)] = chosen
            steps[m, : len(chosen)] = sequences.mask[chosen]
        weights = steps / steps.sum(axis=(1, 2), keepdims=True)
        return ((backend.asarray(sequences.bits[rows]),),
                backend.asarray(sequences.targets[rows], dtype=self.dtype),
                backend.asarray(weights, dtype=self.dtype))


class Evaluator:
    """Train loss and accuracy on the prefix tree, test metrics on the long sequences, the
    automaton of every model, and the probe pairs' interaction-theory quantities.

    Every training step's output is the output at a node of the prefix tree, so the train
    metrics weight each node by how many of the model's training sequences pass through it:
    one state per prefix, not one per sequence and step.
    """

    def __init__(self, config: RNNConfig, task: StreamingParity, splits: list[Split]):
        self.config = config
        train = task.train
        self.children = prefix_tree(config.max_len)
        last = train.lengths - 1
        self.node_targets = np.concatenate([[0], train.targets[np.arange(train.size), last]])
        self.node_targets_on_device = backend.asarray(self.node_targets, config.dtype)
        self.depths = np.concatenate([[0], train.lengths])
        self.is_train = np.zeros((len(splits), train.size), dtype=bool)
        for m, split in enumerate(splits):
            self.is_train[m, split.train] = True
        self.node_weights = backend.asarray(self._node_counts(), config.dtype)
        test = task.test
        self.test_order = np.argsort(-test.lengths, kind="stable")     # longest first
        self.test_lengths = test.lengths[self.test_order]
        bits = test.bits[self.test_order]
        self.test_bits = backend.asarray(np.broadcast_to(bits, (len(splits), *bits.shape)))
        self.test_targets = backend.asarray(test.targets[self.test_order], config.dtype)
        self.test_mask = backend.asarray(test.mask[self.test_order], config.dtype)
        self.test_steps = self.test_mask.sum()
        self.nodes: tuple[Any, Any] | None = None   # states and outputs at the last log step
        self.pairs = sample_pairs(self.depths, config.probe_pairs, config.max_len // 2)
        self.continuations = continuations(self.children, self.pairs)

    def _node_counts(self) -> np.ndarray:
        """(M, nodes): the model's training sequences through each node, divided by their
        steps in all."""
        parent = np.full(len(self.children), -1)
        for s in range(self.children.shape[1]):
            has = self.children[:, s] >= 0
            parent[self.children[has, s]] = np.flatnonzero(has)
        counts = np.zeros((len(self.is_train), len(self.children)))
        counts[:, 1:] = self.is_train
        for depth in range(self.config.max_len, 1, -1):          # pass counts up the tree
            nodes = np.flatnonzero(self.depths == depth)
            np.add.at(counts.T, parent[nodes], counts[:, nodes].T)
        counts[:, 0] = 0                                          # the empty prefix: no output
        return counts / counts.sum(axis=1, keepdims=True)

    def __call__(self, params: Params, grads: dict[str, Any]) -> dict[str, np.ndarray]:
        """The row of metrics at a log step."""
        xp = backend.array_namespace(self.node_weights)
        states = prefix_states(params, self.config.max_len)
        self.nodes = states, read_out(params, states)
        error = self.nodes[1] - self.node_targets_on_device
        rows = {"train_loss": (self.node_weights * error**2).sum(axis=1),
                "train_acc": (self.node_weights * (xp.abs(error) < 0.5)).sum(axis=1)}
        rows.update(self._test(params))
        rows["weight_norm"] = model_norm(params.arrays)
        rows["grad_norm"] = model_norm(grads)
        stacked = backend.to_numpy(xp.stack([v.astype(xp.float64) for v in rows.values()]))
        row = dict(zip(rows, stacked, strict=True))
        row.update(self._automata(*self.nodes))
        return row

    def _test(self, params: Params) -> dict[str, Any]:
        xp = backend.array_namespace(self.test_mask)
        error = outputs(params, self.test_bits, self.test_lengths) - self.test_targets
        correct = (xp.abs(error) < 0.5) | (self.test_mask == 0)
        steps = self.test_steps
        return {"test_loss": (error**2 * self.test_mask).sum(axis=(1, 2)) / steps,
                "test_acc": ((correct * self.test_mask).sum(axis=(1, 2))) / steps,
                "test_sequence_acc": correct.all(axis=2).mean(axis=1)}

    def _automata(self, states: Any, outputs: Any) -> dict[str, np.ndarray]:
        found = automata(states, outputs, self.children, self.config.merge_fraction)
        names = ("n_states", "n_states_minimised", "merger_pairs", "automaton_conflicts",
                 "merge_threshold")
        row = {name: np.full(len(found), np.nan) for name in names}
        for m, (automaton, threshold) in enumerate(found):
            if automaton is not None:
                values = (automaton.n_states, minimal_states(automaton),
                          automaton.merger_pairs,
                          automaton.conflicts + automaton.mixed_outputs, threshold)
                for name, value in zip(names, values, strict=True):
                    row[name][m] = value
        return row

    def pair_snapshot(self) -> dict[str, tuple[Any, tuple[str, ...]]]:
        """The probe pairs' interaction-theory quantities at the last log step (snapshots
        are taken at log steps, after the row), as snapshot arrays."""
        if not len(self.pairs):
            return {}
        measures = pair_measures(*self.nodes, self.node_targets, self.pairs,
                                 *self.continuations)
        return {f"pair_{name}": (measures[name], ("probe_pair",)) for name in PAIR_MEASURES}


def automata(states: Any, outputs: Any, children: np.ndarray, merge_fraction: float = 0.01
             ) -> list[tuple[Automaton | None, float]]:
    """Each model's automaton over the prefix tree (:func:`gk.automaton.extract`, on the
    host) and its merge threshold, from the hidden states (M, nodes, H) and outputs
    (M, nodes) at the nodes (:func:`gk.rnn.model.prefix_states`). The output class is
    y > ½; h0 emits nothing, so the empty prefix gets its parity, even. A model whose states
    are not finite, or all equal, gets no automaton (None)."""
    host_states = backend.to_numpy(states)
    classes = backend.to_numpy(outputs) > 0.5
    classes[:, 0] = False
    found = []
    for model_states, model_classes in zip(host_states, classes, strict=True):
        threshold = merge_threshold(model_states, merge_fraction)
        if not np.isfinite(threshold) or threshold == 0:
            found.append((None, threshold))
            continue
        found.append((extract(model_states, model_classes, children, threshold), threshold))
    return found


def run_automata(params: Params, max_len: int, merge_fraction: float = 0.01
                 ) -> list[Automaton | None]:
    """The automaton of every model of ``params`` over the prefixes of length ≤ ``max_len``
    (:func:`automata`), e.g. from :func:`load_params` at a snapshot."""
    states = prefix_states(params, max_len)
    found = automata(states, read_out(params, states), prefix_tree(max_len), merge_fraction)
    return [automaton for automaton, _ in found]


class _Loop(training.Loop):
    """The RNN's step: gradients of the next minibatch, the row of a log step, the weights
    and probe pairs of a snapshot."""

    def __init__(self, config: RNNConfig, task: StreamingParity, splits: list[Split],
                 evaluator: Evaluator):
        self.params = init(config.hidden, config.activation, config.per_model("gain"),
                           config.initial_state, config.per_model("seed"), config.dtype)
        super().__init__(config, self.params.arrays,
                         SequenceBatches(task.train, splits, config.batch_size, config.dtype))
        self.evaluator = evaluator

    def gradients(self) -> dict[str, Any]:
        (bits,), targets, weights = self.batches.next()
        return loss_and_grads(self.params, bits, targets, weights)[1]

    def measure(self, step: int, grads: dict[str, Any]) -> dict[str, np.ndarray]:
        return self.evaluator(self.params, grads)

    def snapshot(self) -> dict[str, tuple[Any, tuple[str, ...]]]:
        weights = {key: (value, WEIGHT_DIMS[key]) for key, value in self.params.arrays.items()}
        return {**weights, **self.evaluator.pair_snapshot()}


def layout(config: RNNConfig, task: StreamingParity, evaluator: Evaluator,
           splits: list[Split]) -> io.Layout:
    """The file's static part: the training and test sequences, each model's training set
    and steps per epoch, and the probe pairs (as prefix-tree nodes: node k ≥ 1 is training
    sequence k − 1, node 0 the empty prefix)."""
    train, test = task.train, task.test
    epoch = [-(-len(split.train) // (config.batch_size or len(split.train))) for split in splits]
    dims = {"sequence": train.size, "position": config.max_len, "test_sequence": test.size,
            "test_position": test.bits.shape[1], "symbol": 2, "hidden": config.hidden,
            "hidden_from": config.hidden}
    coords = {"sequence_length": (("sequence",), train.lengths),
              "test_length": (("test_sequence",), test.lengths)}
    pairs = evaluator.pairs
    if len(pairs):
        parity = evaluator.node_targets[pairs]
        dims["probe_pair"] = len(pairs)
        coords.update({"probe_first": (("probe_pair",), pairs[:, 0]),
                       "probe_second": (("probe_pair",), pairs[:, 1]),
                       "probe_same_parity": (("probe_pair",), parity[:, 0] == parity[:, 1])})
    statics = {"train_bits": (("sequence", "position"), train.bits.astype(np.int8)),
               "test_bits": (("test_sequence", "test_position"), test.bits.astype(np.int8)),
               "is_train": (("model", "sequence"), evaluator.is_train),
               "steps_per_epoch": (("model",), np.array(epoch))}
    title = f"gk trajectory: streaming parity, lengths 1..{config.max_len}"
    return io.Layout(dims, coords, statics, {"title": title, "op": "streaming_parity",
                                             "max_len": config.max_len})


def train(config: RNNConfig | None = None, *, out: str | os.PathLike | None = None,
          overwrite: bool = False, resume: bool = False, progress: bool = False,
          checkpoint_seconds: float = 60.0, sync_seconds: float = 1.0,
          **options: Any) -> xr.Dataset:
    """Train one or many RNNs on streaming parity (seed 003) and return their trajectories.

    Parameters
    ----------
    config : RNNConfig, optional
        A whole configuration; keyword ``options`` override its fields.
    out, overwrite, resume, progress, checkpoint_seconds, sync_seconds
        As in :func:`gk.mlp.train`: the netCDF file written while training, its
        checkpoints (a resumed run is bit-identical on the CPU) and the progress bar.
    **options
        Any field of :class:`RNNConfig`: ``max_len, test_lengths, test_count, hidden,
        activation, initial_state, gain, train_fraction, optimizer, lr, steps, seed,
        momentum, betas, eps, weight_decay, grad_filter, filter_alpha, filter_lambda,
        filter_window, batch_size, dtype, log_every, snapshot_every, merge_fraction,
        probe_pairs``.

    Returns
    -------
    xarray.Dataset
        Dims ``step``, ``model``, ``snapshot``, ``sequence``, ``test_sequence``,
        ``probe_pair`` and the weights' own (:data:`WEIGHT_DIMS`). Logged: ``train_loss``,
        ``train_acc`` (every step of every training sequence), ``test_loss``, ``test_acc``,
        ``test_sequence_acc`` (sequences right at every step), ``weight_norm``,
        ``grad_norm``, and the automaton's ``n_states``, ``n_states_minimised``,
        ``merger_pairs``, ``automaton_conflicts`` and ``merge_threshold``. Snapshots: every
        weight and ``pair_distance``, ``pair_alignment``, ``pair_a_low``, ``pair_a_high``,
        ``pair_predicted_distance`` (:data:`PAIR_MEASURES`).

    Examples
    --------
    >>> ds = train(steps=4000, seed=[0, 1, 2], out="parity.nc")   # doctest: +SKIP
    """
    config = configure(RNNConfig, config, options)
    start = checkpoint.prepare(out, config.to_json(), overwrite, resume,
                               {"checkpoint_seconds": checkpoint_seconds,
                                "sync_seconds": sync_seconds})
    if start.finished is not None:
        return start.finished
    task = streaming_parity(config.max_len, config.test_lengths, config.test_count)
    splits = [random_split(task.train, fraction, seed) for fraction, seed in
              zip(config.per_model("train_fraction"), config.per_model("seed"), strict=True)]
    evaluator = Evaluator(config, task, splits)
    loop = _Loop(config, task, splits, evaluator)
    return training.execute(loop, layout(config, task, evaluator, splits), out, start,
                            progress, checkpoint_seconds, sync_seconds)


def load_params(source: xr.Dataset | str | os.PathLike, step: int | None = None) -> Params:
    """The weights of an RNN run at a snapshot step (the last if ``step`` is None), batched
    over its models, on the backend."""
    snapshot, config = io.snapshot_at(source, step)
    if "W_hh" not in snapshot:
        raise ValueError("this file holds no RNN weights (no W_hh snapshot)")
    arrays = {name: backend.asarray(np.ascontiguousarray(snapshot[name].values))
              for name in WEIGHT_DIMS if name in snapshot}
    fixed = None
    if "h0" not in arrays:
        fixed = backend.namespace().ones_like(arrays["b_h"])
    return Params(arrays, config["activation"], fixed)
