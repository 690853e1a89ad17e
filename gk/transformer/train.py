"""Training loop of the transformer: many models as one array program, logged to the same
trajectory schema as the two-layer network (:mod:`gk.io`), with checkpoints and resume."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from gk import backend, checkpoint, io, training
from gk.config import RunConfig, check_choice, configure
from gk.fourier import ipr
from gk.losses import score
from gk.measures import (
    FOURIER_MEASURES,
    check_fourier_task,
    fourier_ablations,
)
from gk.optim import model_norm
from gk.tasks import Split, Task, model_splits, resolve, train_mask
from gk.transformer.model import (
    ATTENTIONS,
    Params,
    check_architecture,
    check_loss_dtype,
    check_sequence,
    init,
    layer_name,
    loss_and_grads,
    outputs,
    sequence_tokens,
)

MEASURES = ("ipr", *FOURIER_MEASURES)
"""Measures of the transformer: ``ipr`` (always logged) is the IPR of the embedding's columns
over the p operand tokens; the Fourier ablations are seed 003's, on the logits."""

WEIGHT_DIMS = {"W_E": ("token", "d_model"), "W_pos": ("position", "d_model"),
               "W_U": ("d_model", "output"), "W_Q": ("d_model", "attention_feature"),
               "W_K": ("d_model", "attention_feature"), "W_V": ("d_model", "attention_feature"),
               "W_O": ("attention_feature", "d_model"), "W_in": ("d_model", "neuron"),
               "b_in": ("neuron",), "W_out": ("neuron", "d_model"), "b_out": ("d_model",)}
"""The dims after ``model`` of each weight's snapshots (a layer's ``L{l}_`` prefix dropped)."""


@dataclass(frozen=True)
class TransformerConfig(RunConfig):
    """Everything that defines a training run of the transformer.

    The defaults reproduce seed 003 (Nanda et al.): addition mod 113 on ``a b =``, one layer,
    d_model 128, 4 heads, d_mlp 512, ReLU, no LayerNorm, 30% of the pairs, full-batch AdamW
    with lr 1e-3, weight decay 1, β = (0.9, 0.98), cross-entropy, 40 000 steps.

    Parameters
    ----------
    op : str or callable
        The operation (:func:`gk.tasks.modular`).
    p : int
        The modulus; p classes are predicted.
    sequence : {"a b =", "a op b ="}
        The input format (:data:`gk.transformer.model.SEQUENCES`).
    d_model, n_heads, d_mlp, layers : int
        Residual width, heads (d_model must be divisible by them), MLP neurons, layers.
    mlp : bool
        False for attention-only layers (seed 001, App. E.2).
    tied : bool
        Unembed with the embedding's operand rows, W_U = W_E[:p]ᵀ.
    attention : {"softmax", "linear"}
        :data:`gk.transformer.model.ATTENTIONS`.
    train_fraction, seed, lr, weight_decay : number or sequence
        As in :class:`gk.mlp.train.TrainConfig`; lists train one model per entry.
    optimizer : {"adamw", "gd", "momentum", "normalised_gd"}
        :mod:`gk.optim`; lr is 1e-3 unless given, whatever the optimizer.
    steps, momentum, betas, eps : as in :class:`gk.mlp.train.TrainConfig`.
    grad_filter, filter_alpha, filter_lambda, filter_window
        Grokfast's gradient filter, as in :class:`gk.mlp.train.TrainConfig` (None: none).
    loss : {"cross_entropy", "mse"}
        Cross-entropy is computed on float64 logits (seed 003's code does the same).
    batch_size : int or None
        None for full batch (seed 003).
    dtype : {"float64", "float32"}
    log_every, snapshot_every, measures, measure_every, key_frequencies
        As in :class:`gk.mlp.train.TrainConfig`; :data:`MEASURES` lists the measures.
    """

    op: str | Callable = "add"
    p: int = 113
    sequence: str = "a b ="
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    layers: int = 1
    mlp: bool = True
    tied: bool = False
    attention: str = "softmax"
    train_fraction: float | tuple[float, ...] = 0.3
    optimizer: str = "adamw"
    lr: float | tuple[float, ...] = 1e-3
    steps: int = 40000
    seed: int | tuple[int, ...] = 0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    weight_decay: float | tuple[float, ...] = 1.0
    grad_filter: str | None = None
    filter_alpha: float = 0.98
    filter_lambda: float = 2.0
    filter_window: int = 100
    loss: str = "cross_entropy"
    batch_size: int | None = None
    dtype: str = "float64"
    log_every: int = 100
    snapshot_every: int = 1000
    measures: tuple[str, ...] = ()
    measure_every: int = 0
    key_frequencies: int | tuple[int, ...] | None = None

    PER_MODEL = ("seed", "train_fraction", "lr", "weight_decay")
    MEASURES = MEASURES

    def __post_init__(self) -> None:
        self._normalise_lists()
        object.__setattr__(self, "p", resolve(self.op, self.p).p)   # a table sets p
        check_sequence(self.sequence)
        check_architecture(self.d_model, self.n_heads, self.d_mlp, self.layers)
        check_choice("attention", self.attention, ATTENTIONS)
        for name in ("mlp", "tied"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}={getattr(self, name)!r} is not allowed; {name} must "
                                "be True or False")
        check_loss_dtype(self.loss, self.dtype)
        backend.check_dtype(self.dtype)
        training.check_loop_fields(self)
        training.check_measure_fields(self, "the transformer")


class Evaluator:
    """Train and test metrics of every model on all pairs, reduced on the device, and the
    Fourier ablations at the steps that measure them."""

    def __init__(self, config: TransformerConfig, task: Task, splits: list[Split]):
        xp = backend.namespace()
        a, b = (xp.asarray(x) for x in task.operands())
        self.tokens = sequence_tokens(config.sequence, task.p, a, b)
        self.labels = xp.asarray(task.labels())
        self.is_train = is_train = train_mask(task, splits)
        self.masks = {"train": backend.asarray(is_train, config.dtype),
                      "test": backend.asarray(~is_train, config.dtype)}
        # counts of 0/1 values divide the sums, so a perfect accuracy is exactly 1
        self.counts = {part: mask.sum(axis=1) for part, mask in self.masks.items()}
        self.config, self.task = config, task
        self.fourier = [name for name in config.measures if name in FOURIER_MEASURES]
        self.every = config.measure_every or config.log_every

    def __call__(self, step: int, params: Params, grads: dict[str, Any]) -> dict[str, Any]:
        """The row of metrics and measures at log step ``step``."""
        xp = backend.array_namespace(self.tokens)
        config = self.config
        logits = outputs(params, self.tokens)
        losses, correct = score(logits, self.labels, config.loss)
        correct = correct.astype(losses.dtype)
        rows = {}
        for part, mask in self.masks.items():
            rows[f"{part}_loss"] = (losses * mask).sum(axis=1) / self.counts[part]
            rows[f"{part}_acc"] = (correct * mask).sum(axis=1) / self.counts[part]
        rows["weight_norm"] = model_norm(params.arrays)
        rows["grad_norm"] = model_norm(grads)
        if self.task.is_modular:                # a table's labels have no Fourier modes
            rows["ipr"] = ipr(params.arrays["W_E"][:, : self.task.p].transpose(0, 2, 1),
                              self.task.p)
        stacked = backend.to_numpy(xp.stack([v.astype(xp.float64) for v in rows.values()]))
        row = dict(zip(rows, stacked, strict=True))
        if self.fourier:
            row.update(self._ablations(step, logits))
        return row

    def _ablations(self, step: int, logits: Any) -> dict[str, np.ndarray]:
        if step % self.every and step != self.config.steps:
            return {name: np.full(logits.shape[0], np.nan) for name in self.fourier}
        ablations = fourier_ablations(logits, self.task.c, self.task.p,
                                      self.config.key_frequencies, self.config.loss,
                                      self.is_train)
        return {name: ablations[name] for name in self.fourier}


class _Loop(training.Loop):
    """The transformer's step: gradients of the next batch, the row of a log step, the
    weights of a snapshot."""

    def __init__(self, config: TransformerConfig, task: Task, splits: list[Split],
                 evaluator: Evaluator):
        self.params = init(config.p, config.d_model, config.n_heads, config.d_mlp,
                           config.layers, config.mlp, config.tied, config.attention,
                           config.sequence, list(config.per_model("seed")), config.dtype)
        super().__init__(config, self.params.arrays,
                         training.Batches(task, splits, config.batch_size, config.dtype))
        self.evaluator = evaluator

    def gradients(self) -> dict[str, Any]:
        (a, b), labels, weights = self.batches.next()
        tokens = sequence_tokens(self.config.sequence, self.config.p, a, b)
        return loss_and_grads(self.params, tokens, labels, weights, self.config.loss)[1]

    def measure(self, step: int, grads: dict[str, Any]) -> dict[str, np.ndarray]:
        return self.evaluator(step, self.params, grads)

    def snapshot(self) -> dict[str, tuple[Any, tuple[str, ...]]]:
        return {key: (value, WEIGHT_DIMS[key.split("_", 1)[1] if key[0] == "L" else key])
                for key, value in self.params.arrays.items()}


def train(config: TransformerConfig | None = None, *, out: str | os.PathLike | None = None,
          overwrite: bool = False, resume: bool = False, progress: bool = False,
          checkpoint_seconds: float = 60.0, sync_seconds: float = 1.0,
          **options: Any) -> xr.Dataset:
    """Train one or many transformers (seed 003; seed 001, App. E) and return their
    trajectories.

    Parameters
    ----------
    config : TransformerConfig, optional
        A whole configuration; keyword ``options`` override its fields.
    out, overwrite, resume, progress, checkpoint_seconds, sync_seconds
        As in :func:`gk.mlp.train`: the netCDF file written while training, its
        checkpoints (a resumed run is bit-identical on the CPU) and the progress bar.
    **options
        Any field of :class:`TransformerConfig`: ``op, p, sequence, d_model, n_heads, d_mlp,
        layers, mlp, tied, attention, train_fraction, optimizer, lr, steps, seed, momentum,
        betas, eps, weight_decay, grad_filter, filter_alpha, filter_lambda, filter_window,
        loss, batch_size, dtype, log_every, snapshot_every, measures, measure_every,
        key_frequencies``.

    Returns
    -------
    xarray.Dataset
        Dims ``step``, ``model``, ``snapshot`` and the weights' own (:data:`WEIGHT_DIMS`):
        ``train_loss``, ``test_loss``, ``train_acc``, ``test_acc``, ``weight_norm``,
        ``grad_norm``, ``ipr`` and the measures asked for, and snapshots of every weight
        (``W_E``, ``W_pos``, ``L0_W_Q``, ..., ``W_U``).

    Examples
    --------
    >>> ds = train(p=23, steps=2000, seed=[0, 1], dtype="float32")   # doctest: +SKIP
    """
    config = configure(TransformerConfig, config, options)
    start = checkpoint.prepare(out, config.to_json(), overwrite, resume,
                               {"checkpoint_seconds": checkpoint_seconds,
                                "sync_seconds": sync_seconds})
    if start.finished is not None:
        return start.finished
    task = resolve(config.op, config.p)
    check_fourier_task(config.measures, task)
    splits = model_splits(task, config.per_model("train_fraction"), config.per_model("seed"))
    evaluator = Evaluator(config, task, splits)
    loop = _Loop(config, task, splits, evaluator)
    arrays = loop.params.arrays
    dims = {"token": arrays["W_E"].shape[1], "position": arrays["W_pos"].shape[1],
            "d_model": config.d_model, "attention_feature": config.d_model,
            "output": config.p}
    if config.mlp:
        dims["neuron"] = config.d_mlp
    layout = io.pair_layout(config, task, evaluator.is_train, dims)
    return training.execute(loop, layout, out, start, progress, checkpoint_seconds,
                            sync_seconds)


def load_params(source: xr.Dataset | str | os.PathLike, step: int | None = None) -> Params:
    """The weights of a transformer run at a snapshot step (the last if ``step`` is None),
    batched over its models, on the backend."""
    snapshot, config = io.snapshot_at(source, step)
    names = [name for name in snapshot.data_vars if name in WEIGHT_DIMS
             or (name[0] == "L" and name.split("_", 1)[1] in WEIGHT_DIMS)]
    arrays = {name: backend.asarray(np.ascontiguousarray(snapshot[name].values))
              for name in names}
    if layer_name(0, "W_Q") not in arrays:
        raise ValueError("this file holds no transformer weights (no L0_W_Q snapshot)")
    return Params(arrays, config["p"], config["n_heads"], config["attention"])
