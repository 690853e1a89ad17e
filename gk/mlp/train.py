"""Training loop of the two-layer network: many models as one array program, logged to a
labelled dataset and, with ``out=``, to a netCDF file written while the run goes."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from gk import backend, io
from gk.fourier import ipr
from gk.mlp.model import (
    Params,
    check_activation,
    check_loss,
    loss_and_grads,
    pair_metrics,
)
from gk.mlp.model import init as init_params
from gk.optim import Hyper, check_optimizer, init_state, update
from gk.tasks import Split, Task, check_op, check_train_fraction, modular

PER_MODEL = ("seed", "train_fraction", "lr", "weight_decay")
"""Config fields that may be lists: one model per entry, trained together."""

DEFAULT_LR = {"gd": 0.2, "momentum": 0.02, "adamw": 1e-3}
"""Default learning rates; for ``gd`` and ``momentum`` they are multiplied by the width N."""

LR_SCALES_WITH_WIDTH = ("gd", "momentum")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run of the two-layer network.

    The defaults reproduce seed 001, Fig. 1: addition mod 97, width 512, α = 0.5, full-batch
    GD on MSE without regularisation.

    Parameters
    ----------
    op : str or callable
        The operation (:func:`gk.tasks.modular`).
    p : int
        The modulus.
    width : int
        N, the number of hidden neurons.
    train_fraction : float or sequence of float
        α, the fraction of pairs used for training (seed 001, eq. 3).
    optimizer : {"gd", "momentum", "adamw"}
    lr : float, sequence of float, or None
        Step size. The mean-field factor 2/N makes every gradient O(1/N), so GD needs
        lr ∝ N: ``None`` means 0.2·N for GD, 0.02·N for momentum (μ = 0.9, the same
        effective step) and 1e-3 for AdamW, whose normalised steps do not depend on N.
    steps : int
        Number of optimizer updates.
    seed : int or sequence of int
        One model per seed. Each seed fixes the initialisation, the split and the minibatch
        order.
    momentum : float
        μ of heavy-ball momentum.
    betas : (float, float)
        AdamW's β1, β2.
    eps : float
        AdamW's ε.
    weight_decay : float or sequence of float
        Decoupled for AdamW, an L2 penalty otherwise (:mod:`gk.optim`).
    linf : float
        Strength of the ℓ∞ penalty λ∞‖θ‖_∞ (seed 002).
    activation : str
        φ: quadratic (seed 001, eq. 4), relu, gelu, tanh or identity.
    loss : {"mse", "cross_entropy"}
        MSE is ½‖f − e_c‖² averaged over pairs.
    init_scale : float
        Standard deviation of the initial weights (seed 001: 1).
    batch_size : int or None
        None for full batch; else minibatches drawn without replacement, reshuffled every
        epoch (seed 000's network used 32).
    dtype : {"float64", "float32"}
    log_every : int
        Steps between two logged rows (step 0 and the last step are always logged).
    snapshot_every : int
        Steps between two weight snapshots (the initial and final weights always kept).
    """

    op: str | Callable = "add"
    p: int = 97
    width: int = 512
    train_fraction: float | tuple[float, ...] = 0.5
    optimizer: str = "gd"
    lr: float | tuple[float, ...] | None = None
    steps: int = 8000
    seed: int | tuple[int, ...] = 0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float | tuple[float, ...] = 0.0
    linf: float = 0.0
    activation: str = "quadratic"
    loss: str = "mse"
    init_scale: float = 1.0
    batch_size: int | None = None
    dtype: str = "float64"
    log_every: int = 10
    snapshot_every: int = 1000
    n_models: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in PER_MODEL:
            value = getattr(self, name)
            if isinstance(value, (list, tuple, np.ndarray)):
                object.__setattr__(self, name, tuple(v.item() if hasattr(v, "item") else v
                                                     for v in value))
        if isinstance(self.betas, list):
            object.__setattr__(self, "betas", tuple(self.betas))
        self._validate()

    def _validate(self) -> None:
        check_op(self.op, self.p)
        _check_int("width", self.width, 1)
        _check_int("steps", self.steps, 0)
        _check_int("log_every", self.log_every, 1)
        _check_int("snapshot_every", self.snapshot_every, 1)
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, 1)
        check_optimizer(self.optimizer)
        check_activation(self.activation)
        check_loss(self.loss)
        backend.check_dtype(self.dtype)
        lengths = {len(v) for v in (getattr(self, n) for n in PER_MODEL) if isinstance(v, tuple)}
        if len(lengths - {1}) > 1:
            given = {n: len(getattr(self, n)) for n in PER_MODEL
                     if isinstance(getattr(self, n), tuple)}
            raise ValueError(f"per-model lists must have one length (one model per entry), "
                             f"got lengths {given}")
        object.__setattr__(self, "n_models", max(lengths | {1}))
        for fraction in self.per_model("train_fraction"):
            check_train_fraction(fraction)
        for seed in self.per_model("seed"):
            _check_int("seed", seed, 0)
        if self.lr is not None:
            for lr in self.per_model("lr"):
                _check_positive("lr", lr)
        for decay in self.per_model("weight_decay"):
            _check_positive("weight_decay", decay, allow_zero=True)
        _check_positive("linf", self.linf, allow_zero=True)
        _check_positive("init_scale", self.init_scale)
        _check_positive("eps", self.eps)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum={self.momentum!r} is outside [0, 1)")
        if len(self.betas) != 2 or not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"betas={self.betas!r} must be two numbers in [0, 1)")

    def per_model(self, name: str) -> list:
        """The value of a :data:`PER_MODEL` field for each of the ``n_models`` models."""
        value = getattr(self, name)
        if name == "lr" and value is None:
            value = DEFAULT_LR[self.optimizer] * (
                self.width if self.optimizer in LR_SCALES_WITH_WIDTH else 1)
        if isinstance(value, tuple):
            return list(value) * (self.n_models if len(value) == 1 else 1)
        return [value] * self.n_models

    def to_json(self) -> dict:
        """The config as JSON-ready values, with the learning rate resolved."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        values["op"] = op_name(self.op)
        values["lr"] = self.per_model("lr") if self.n_models > 1 else self.per_model("lr")[0]
        return json.loads(json.dumps(values))


def op_name(op: str | Callable) -> str:
    """The name a file records for an operation."""
    return op if isinstance(op, str) else getattr(op, "__name__", "custom")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}={value} is too small; {name} must be ≥ {minimum}")


def _check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        allowed = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be finite and {allowed}")


def _splits(task: Task, config: TrainConfig) -> list[Split]:
    splits = [task.split(fraction, seed) for fraction, seed in
              zip(config.per_model("train_fraction"), config.per_model("seed"), strict=True)]
    for split in splits:
        if len(split.test) == 0:
            raise ValueError(f"train_fraction={split.train_fraction} leaves no test pairs of the "
                             f"{task.size}; test metrics need at least one (use a smaller α)")
    return splits


class Batches:
    """Training pairs of every model, as padded (M, n) arrays on the backend.

    Full batch: each model's whole training set, padded to the longest with weight 0.
    Minibatches: ``batch_size`` pairs per model per step, drawn without replacement from a
    permutation that is redrawn (from ``rng((seed, 2))``) when the model's epoch ends; the
    last batch of an epoch may be short, and is padded.
    """

    def __init__(self, task: Task, splits: list[Split], batch_size: int | None, dtype: Any):
        self.task, self.splits, self.batch_size, self.dtype = task, splits, batch_size, dtype
        self.generators = [backend.rng((split.seed, 2)) for split in splits]
        self.orders = [np.empty(0, dtype=np.int64) for _ in splits]
        if batch_size is None:
            self.full = self._arrays([split.train for split in splits])

    def _arrays(self, indices: list[np.ndarray]) -> tuple[Any, Any, Any, Any]:
        width = max(len(i) for i in indices)
        padded = np.zeros((len(indices), width), dtype=np.int64)
        weights = np.zeros((len(indices), width))
        for m, rows in enumerate(indices):
            padded[m, : len(rows)] = rows
            weights[m, : len(rows)] = 1 / len(rows)
        a, b, c = (backend.asarray(v[padded]) for v in (self.task.a, self.task.b, self.task.c))
        return a, b, c, backend.asarray(weights, dtype=self.dtype)

    def next(self) -> tuple[Any, Any, Any, Any]:
        """``(a, b, c, weights)`` for the next step."""
        if self.batch_size is None:
            return self.full
        batch = []
        for m, split in enumerate(self.splits):
            if len(self.orders[m]) == 0:
                self.orders[m] = self.generators[m].permutation(split.train)
            batch.append(self.orders[m][: self.batch_size])
            self.orders[m] = self.orders[m][self.batch_size:]
        return self._arrays(batch)


def _norm(arrays: Sequence[Any]) -> Any:
    """Euclidean norm over all entries of each model's arrays, shape (M,)."""
    xp = backend.array_namespace(*arrays)
    return xp.sqrt(sum((x.reshape(x.shape[0], -1) ** 2).sum(axis=1) for x in arrays))


class Evaluator:
    """Train and test metrics of every model on all pairs, reduced on the device."""

    def __init__(self, task: Task, splits: list[Split], loss: str, dtype: Any):
        xp = backend.namespace()
        self.a, self.b, self.c = (xp.asarray(v) for v in (task.a, task.b, task.c))
        is_train = np.zeros((len(splits), task.size), dtype=bool)
        for m, split in enumerate(splits):
            is_train[m, split.train] = True
        self.is_train = is_train
        self.train_mask = backend.asarray(is_train, dtype)
        self.test_mask = backend.asarray(~is_train, dtype)
        # Counts divide sums of 0/1 values, so a perfect accuracy is exactly 1.0.
        self.n_train = backend.asarray(is_train.sum(axis=1), dtype)
        self.n_test = backend.asarray((~is_train).sum(axis=1), dtype)
        self.loss = loss

    def __call__(self, params: Params, grads: dict[str, Any]) -> dict[str, np.ndarray]:
        xp = backend.array_namespace(params.W1)
        losses, correct = pair_metrics(params, self.a, self.b, self.c, self.loss)
        correct = correct.astype(losses.dtype)
        rows = {
            "train_loss": (losses * self.train_mask).sum(axis=1) / self.n_train,
            "test_loss": (losses * self.test_mask).sum(axis=1) / self.n_test,
            "train_acc": (correct * self.train_mask).sum(axis=1) / self.n_train,
            "test_acc": (correct * self.test_mask).sum(axis=1) / self.n_test,
            "w1_norm": _norm([params.W1]),
            "w2_norm": _norm([params.W2]),
            "grad_norm": _norm(list(grads.values())),
            "ipr": ipr(params.W1, params.p),
        }
        stacked = backend.to_numpy(xp.stack([v.astype(xp.float64) for v in rows.values()]))
        return dict(zip(rows, stacked, strict=True))  # one device-to-host copy per log step


def _is_log_step(step: int, config: TrainConfig) -> bool:
    return step % config.log_every == 0 or step == config.steps


def _is_snapshot_step(step: int, config: TrainConfig) -> bool:
    return step % config.snapshot_every == 0 or step == config.steps


def _open_writer(out: Any, config: TrainConfig, task: Task, evaluator: Evaluator,
                 overwrite: bool) -> io.TrajectoryWriter:
    models = {name: config.per_model(name) for name in PER_MODEL}
    dims = {"neuron": config.width, "input": 2 * config.p, "output": config.p,
            "pair": task.size}
    attrs = io.run_attributes(op_name(config.op), config.p, config.dtype, config.to_json(),
                              config.per_model("seed"))
    writer = io.TrajectoryWriter(out, "step", models, dims, attrs, overwrite=overwrite)
    for name, values in (("a", task.a), ("b", task.b), ("c", task.c)):
        writer.write_static(name, values, ("pair",), coordinate=True)
    writer.write_static("is_train", evaluator.is_train, ("model", "pair"))
    return writer


def train(config: TrainConfig | None = None, *, out: str | os.PathLike | None = None,
          overwrite: bool = False, progress: bool = False, **options: Any) -> xr.Dataset:
    """Train one or many two-layer networks (seed 001) and return their trajectories.

    Parameters
    ----------
    config : TrainConfig, optional
        A whole configuration; keyword ``options`` override its fields.
    out : path-like, optional
        A netCDF file to write while training (as ``out.partial`` until the run ends).
    overwrite : bool
        Replace ``out`` if it exists.
    progress : bool
        Show a progress bar with model 0's train and test accuracy.
    **options
        Any field of :class:`TrainConfig`: ``op, p, width, train_fraction, optimizer, lr,
        steps, seed, momentum, betas, eps, weight_decay, linf, activation, loss, init_scale,
        batch_size, dtype, log_every, snapshot_every``. Lists of ``seed``, ``train_fraction``,
        ``lr`` or ``weight_decay`` train one model per entry, together.

    Returns
    -------
    xarray.Dataset
        Dims ``step``, ``model`` and ``snapshot``; see :mod:`gk.io` for the schema.

    Examples
    --------
    >>> ds = train(p=23, width=64, steps=20, seed=[0, 1])   # doctest: +SKIP
    >>> ds.test_acc.sel(step=20)                             # doctest: +SKIP
    """
    config = _configure(config, options)
    task = modular(config.op, config.p)
    splits = _splits(task, config)
    if out is not None:
        io.check_out(out, overwrite)
    evaluator = Evaluator(task, splits, config.loss, config.dtype)
    params = init_params(config.p, config.width, list(config.per_model("seed")),
                         config.activation, config.init_scale, config.dtype)
    writer = _open_writer(out, config, task, evaluator, overwrite) if out is not None else None
    recorder = _Recorder(config, writer)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            status = _run(config, task, splits, params, evaluator, recorder, progress)
    except BaseException:
        recorder.close("interrupted")
        raise
    recorder.close(status)
    return recorder.dataset(config, task, evaluator, status)


def _configure(config: TrainConfig | None, options: dict[str, Any]) -> TrainConfig:
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    known = {f.name for f in dataclasses.fields(TrainConfig) if f.init}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(known)}")
    return dataclasses.replace(config, **options) if config else TrainConfig(**options)


def _run(config: TrainConfig, task: Task, splits: list[Split], params: Params,
         evaluator: Evaluator, recorder: _Recorder, progress: bool) -> str:
    xp = backend.namespace()
    batches = Batches(task, splits, config.batch_size, config.dtype)
    arrays = {"W1": params.W1, "W2": params.W2}
    state = init_state(config.optimizer, arrays)
    as_array = lambda name: xp.asarray(config.per_model(name), dtype=config.dtype)  # noqa: E731
    hyper = Hyper(as_array("lr"), as_array("weight_decay"),
                  xp.full(config.n_models, config.linf, dtype=config.dtype)
                  if config.linf else None)
    bar = tqdm(total=config.steps, disable=not progress, unit="step", dynamic_ncols=True)
    with bar:
        for step in range(config.steps + 1):
            a, b, c, weights = batches.next()
            _, grads = loss_and_grads(params, a, b, c, weights, config.loss)
            if _is_log_step(step, config):
                row = evaluator(params, grads)
                recorder.log(step, row, params if _is_snapshot_step(step, config) else None)
                bar.set_postfix(train_acc=f"{row['train_acc'][0]:.3f}",
                                test_acc=f"{row['test_acc'][0]:.3f}", refresh=False)
                bar.update(step - bar.n)
                if recorder.all_diverged():
                    return "diverged"
            if step == config.steps:
                return "complete"
            update(config.optimizer, arrays, grads, state, hyper, step + 1,
                   config.momentum, config.betas, config.eps)
    return "complete"


class _Recorder:
    """Keeps the logged rows in memory and streams them to the file, if there is one."""

    def __init__(self, config: TrainConfig, writer: io.TrajectoryWriter | None):
        self.writer = writer
        self.steps: list[int] = []
        self.rows: list[dict[str, np.ndarray]] = []
        self.snapshot_steps: list[int] = []
        self.snapshots: list[tuple[np.ndarray, np.ndarray]] = []
        self.diverged_step = np.full(config.n_models, -1, dtype=np.int64)

    def log(self, step: int, row: dict[str, np.ndarray], params: Params | None) -> None:
        newly = (~np.isfinite(row["train_loss"])) & (self.diverged_step < 0)
        self.diverged_step[newly] = step
        self.steps.append(step)
        self.rows.append(row)
        if self.writer is not None:
            self.writer.append(step, row)
        if params is None:
            return
        # copies: on NumPy to_numpy returns the live arrays, which the optimizer updates
        W1, W2 = backend.to_numpy(params.W1).copy(), backend.to_numpy(params.W2).copy()
        self.snapshot_steps.append(step)
        self.snapshots.append((W1, W2))
        if self.writer is not None:
            self.writer.append_snapshot(step, {"W1": (W1, ("neuron", "input")),
                                               "W2": (W2, ("output", "neuron"))})

    def close(self, status: str) -> None:
        """Finish the file, if there is one: per-model divergence, status, final name."""
        if self.writer is not None:
            self.writer.write_static("diverged_step", self.diverged_step, ("model",))
            self.writer.close(status)

    def all_diverged(self) -> bool:
        return bool((self.diverged_step >= 0).all())

    def dataset(self, config: TrainConfig, task: Task, evaluator: Evaluator,
                status: str) -> xr.Dataset:
        scalars = {name: (("step", "model"), np.stack([row[name] for row in self.rows]),
                          {"long_name": io.LONG_NAMES[name]}) for name in self.rows[0]}
        W1 = np.stack([s[0] for s in self.snapshots])
        W2 = np.stack([s[1] for s in self.snapshots])
        data_vars = {
            **scalars,
            "W1": (("snapshot", "model", "neuron", "input"), W1),
            "W2": (("snapshot", "model", "output", "neuron"), W2),
            "is_train": (("model", "pair"), evaluator.is_train,
                         {"long_name": io.LONG_NAMES["is_train"]}),
            "diverged_step": ("model", self.diverged_step,
                              {"long_name": io.LONG_NAMES["diverged_step"]}),
        }
        coords = {"step": self.steps, "snapshot": self.snapshot_steps,
                  "model": np.arange(config.n_models),
                  **{name: ("model", config.per_model(name)) for name in PER_MODEL},
                  "a": ("pair", task.a), "b": ("pair", task.b), "c": ("pair", task.c)}
        attrs = io.run_attributes(op_name(config.op), config.p, config.dtype,
                                  config.to_json(), config.per_model("seed"))
        attrs["status"] = status
        ds = xr.Dataset(data_vars, coords, attrs)
        for name in ds.variables:
            ds[name].attrs.setdefault("long_name", io.LONG_NAMES.get(name, name))
        return ds


def load_params(source: xr.Dataset | str | os.PathLike, step: int | None = None) -> Params:
    """The weights of a run at a snapshot step (the last snapshot if ``step`` is None).

    Returns a batched :class:`Params` (leading model axis) on the backend.
    """
    ds = source if isinstance(source, xr.Dataset) else io.open_run(source)
    if step is None:
        step = int(ds.snapshot[-1])
    if step not in ds.snapshot.values:
        raise ValueError(f"step={step} has no snapshot; snapshots: {ds.snapshot.values.tolist()}")
    snapshot = ds.sel(snapshot=step)
    activation = io.config(ds)["activation"]
    return Params(backend.asarray(snapshot.W1.values), backend.asarray(snapshot.W2.values),
                  activation)
