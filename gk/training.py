"""What every gradient-trained model's loop shares: the batches of each model's training
examples, the state carried from step to step (parameters, optimizer, held models), the loop
over steps with its logging, snapshots and checkpoints, and the file around it.

A model's trainer (:mod:`gk.mlp.train`, :mod:`gk.transformer.train`) subclasses
:class:`Loop` with its gradients, its row of metrics and its snapshot, and hands it to
:func:`execute`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from gk import backend, checkpoint, io
from gk.config import check_int, check_number
from gk.measures import check_key_frequencies, check_measures
from gk.optim import GradFilter, Hyper, check_grad_filter, check_optimizer, init_state, update
from gk.tasks import Split, Task, Triples, check_train_fraction


def check_measure_fields(config: Any, model: str) -> None:
    """Check, and normalise in place, the measure fields of a frozen trainer config on a
    task over Z_p: ``measures`` of ``config.MEASURES``, ``measure_every`` and
    ``key_frequencies``. ``model`` names the model in errors."""
    object.__setattr__(config, "measures",
                       check_measures(config.measures, config.MEASURES, model))
    check_int("measure_every", config.measure_every, 0)
    if config.measure_every % config.log_every:
        raise ValueError(f"measure_every={config.measure_every} must be 0 or a multiple of "
                         f"log_every={config.log_every}")
    object.__setattr__(config, "key_frequencies",
                       check_key_frequencies(config.key_frequencies, config.p))


def check_loop_fields(config: Any) -> None:
    """Check, and normalise in place, the fields of a frozen trainer config that the loop
    reads: steps and logging (``steps``, ``log_every``, ``snapshot_every``), batches, the
    optimizer (``optimizer``, ``momentum``, ``betas``, ``eps``), its gradient filter
    (``grad_filter``, ``filter_alpha``, ``filter_lambda``, ``filter_window``) and the
    per-model ``train_fraction``, ``seed``, ``lr`` and ``weight_decay``."""
    if isinstance(config.betas, list):
        object.__setattr__(config, "betas", tuple(config.betas))
    check_int("steps", config.steps, 0)
    check_int("log_every", config.log_every, 1)
    check_int("snapshot_every", config.snapshot_every, 1)
    if config.batch_size is not None:
        check_int("batch_size", config.batch_size, 1)
    check_optimizer(config.optimizer)
    check_grad_filter(config.grad_filter, config.filter_alpha, config.filter_lambda,
                      config.filter_window)
    for fraction in config.per_model("train_fraction"):
        check_train_fraction(fraction)
    for seed in config.per_model("seed"):
        check_int("seed", seed, 0)
    for lr in config.per_model("lr"):
        check_number("lr", lr)
    for decay in config.per_model("weight_decay"):
        check_number("weight_decay", decay, allow_zero=True)
    check_number("eps", config.eps)
    check_number("momentum", config.momentum, allow_zero=True)
    if not config.momentum < 1:
        raise ValueError(f"momentum={config.momentum!r} is not allowed; momentum must be "
                         "in [0, 1)")
    if not (isinstance(config.betas, tuple) and len(config.betas) == 2 and all(
            isinstance(b, (int, float)) and 0 <= b < 1 for b in config.betas)):
        raise ValueError(f"betas={config.betas!r} is not allowed; betas must be two numbers "
                         "in [0, 1)")


class Batches:
    """Training examples of every model, as padded (M, n) arrays on the backend.

    Full batch: each model's whole training set, padded to the longest with weight 0.
    Minibatches: ``batch_size`` pairs per model per step, drawn without replacement from a
    permutation that is redrawn (from ``rng((seed, 2))``) when the model's epoch ends; the
    last batch of an epoch may be short, and is padded.
    """

    def __init__(self, task: Task | Triples, splits: list[Split], batch_size: int | None,
                 dtype: Any):
        self.task, self.splits, self.batch_size, self.dtype = task, splits, batch_size, dtype
        self.generators = [backend.rng((split.seed, 2)) for split in splits]
        self.orders = [np.empty(0, dtype=np.int64) for _ in splits]
        if batch_size is None:
            self.full = self._arrays([split.train for split in splits])

    def _arrays(self, indices: list[np.ndarray]) -> tuple[tuple, Any, Any]:
        width = max(len(i) for i in indices)
        padded = np.zeros((len(indices), width), dtype=np.int64)
        weights = np.zeros((len(indices), width))
        for m, rows in enumerate(indices):
            padded[m, : len(rows)] = rows
            weights[m, : len(rows)] = 1 / len(rows)
        operands = tuple(backend.asarray(x) for x in self.task.operands(padded))
        labels = self.task.labels(padded)
        labels = backend.asarray(labels, dtype=None if labels.dtype.kind == "i" else self.dtype)
        return operands, labels, backend.asarray(weights, dtype=self.dtype)

    def state(self) -> tuple[dict[str, np.ndarray], list[dict]]:
        """The minibatch orders left (arrays) and generator states (JSON) of a checkpoint."""
        orders = {f"batches.order.{m}": order for m, order in enumerate(self.orders)}
        return orders, [generator.bit_generator.state for generator in self.generators]

    def restore(self, arrays: dict[str, np.ndarray], generators: list[dict]) -> None:
        """Continue from :meth:`state`."""
        self.orders = [arrays[f"batches.order.{m}"] for m in range(len(self.splits))]
        for generator, state in zip(self.generators, generators, strict=True):
            generator.bit_generator.state = state

    def next(self) -> tuple[tuple, Any, Any]:
        """``(operands, labels, weights)`` for the next step."""
        if self.batch_size is None:
            return self.full
        batch = []
        for m, split in enumerate(self.splits):
            if len(self.orders[m]) == 0:
                self.orders[m] = self.generators[m].permutation(split.train)
            batch.append(self.orders[m][: self.batch_size])
            self.orders[m] = self.orders[m][self.batch_size:]
        return self._arrays(batch)


class NoProbes:
    """The probes of a loop that measures nothing besides its metrics."""

    def state(self) -> tuple[dict[str, np.ndarray], list[bool]]:
        return {}, []

    def restore(self, arrays: dict[str, np.ndarray], measured: list[bool]) -> None:
        pass

    def series(self) -> dict[str, np.ndarray]:
        return {}


class Loop:
    """What a training run carries from step to step, and saves in a checkpoint: the
    parameters ``arrays`` (a dict of (M, ...) arrays), the optimizer's state (with the
    gradient filter's, if any), the minibatch generators and the probes' memory. Models
    that diverged are held where they stopped.

    Subclasses give :meth:`gradients`, :meth:`measure` and :meth:`snapshot`; ``config`` has
    the fields of a trainer's config (``optimizer``, ``momentum``, ``betas``, ``eps``,
    ``steps``, ``log_every``, ``snapshot_every``, per-model ``lr`` and ``weight_decay``,
    and the gradient filter's ``grad_filter``, ``filter_alpha``, ``filter_lambda``,
    ``filter_window``).
    """

    def __init__(self, config: Any, arrays: dict[str, Any], batches: Batches,
                 probes: Any = None, linf: float = 0.0):
        xp = backend.namespace()
        self.config, self.arrays, self.batches = config, arrays, batches
        self.probes = NoProbes() if probes is None else probes
        self.state = init_state(config.optimizer, arrays)
        self.grad_filter = None
        if config.grad_filter is not None:
            self.grad_filter = GradFilter(config.grad_filter, config.filter_alpha,
                                          config.filter_lambda, config.filter_window)
            self.state.update(self.grad_filter.init_state(arrays))
        as_array = lambda name: xp.asarray(config.per_model(name), dtype=config.dtype)  # noqa
        self.hyper = Hyper(as_array("lr"), as_array("weight_decay"),
                           xp.full(config.n_models, linf, dtype=config.dtype) if linf else None)
        self.held_models = np.empty(0, dtype=np.int64)
        self.held: dict[str, tuple[Any, Any]] = {}

    def gradients(self) -> dict[str, Any]:
        """The gradients of the next batch's loss, one entry per parameter array."""
        raise NotImplementedError

    def measure(self, step: int, grads: dict[str, Any]) -> dict[str, np.ndarray]:
        """The row logged at ``step``: (M,) host arrays by name."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, tuple[Any, tuple[str, ...]]]:
        """The arrays of a snapshot, each with the names of its dims after ``model``."""
        raise NotImplementedError

    def update(self, grads: dict[str, Any], step: int) -> None:
        """Optimizer step ``step`` (1-based), after the gradient filter if there is one;
        held models keep their weights."""
        config = self.config
        if self.grad_filter is not None:
            self.grad_filter.apply(grads, self.state, step)
        update(config.optimizer, self.arrays, grads, self.state, self.hyper, step,
               config.momentum, config.betas, config.eps)
        for key, (models, values) in self.held.items():
            self.arrays[key][models] = values

    def hold(self, models: np.ndarray) -> None:
        """Stop updating ``models`` (indices) from now on."""
        if len(models) == 0:
            return
        self.held_models = np.union1d(self.held_models, models).astype(np.int64)
        index = backend.asarray(self.held_models)
        self.held = {key: (index, value[index].copy()) for key, value in self.arrays.items()}

    def checkpoint(self, step: int, recorder: io.Recorder) -> checkpoint.Checkpoint:
        """The run's state at the start of ``step``."""
        arrays = {f"params.{key}": backend.to_numpy(value) for key, value in self.arrays.items()}
        arrays.update({f"optimizer.{key}": backend.to_numpy(value)
                       for key, value in self.state.items()})
        orders, generators = self.batches.state()
        probe_arrays, measured = self.probes.state()
        return checkpoint.Checkpoint(
            step, recorder.n_rows, recorder.n_snapshots, self.config.to_json(),
            {**arrays, **orders, **probe_arrays},
            {"generators": generators, "measured": measured, "recorder": recorder.state()})

    def restore(self, saved: checkpoint.Checkpoint, recorder: io.Recorder) -> int:
        """Continue from ``saved``; return the step to start at."""
        for key, value in self.arrays.items():
            value[...] = backend.asarray(saved.arrays[f"params.{key}"])
        for key, value in self.state.items():
            value[...] = backend.asarray(saved.arrays[f"optimizer.{key}"])
        self.batches.restore(saved.arrays, saved.meta["generators"])
        self.probes.restore(saved.arrays, saved.meta["measured"])
        self.hold(np.flatnonzero(recorder.diverged >= 0))
        return saved.time


def is_log_step(step: int, config: Any) -> bool:
    """Whether ``step`` is logged: every ``log_every`` steps, and the last one."""
    return step % config.log_every == 0 or step == config.steps


def is_snapshot_step(step: int, config: Any) -> bool:
    """Whether ``step`` (a log step) keeps a snapshot of the weights."""
    return step % config.snapshot_every == 0 or step == config.steps


def run_steps(loop: Loop, recorder: io.Recorder, control: checkpoint.Control, first: int,
              progress: bool) -> tuple[str, int]:
    """Train from step ``first``; return how the run ended and the step it ended at."""
    config = loop.config
    bar = tqdm(total=config.steps, initial=first, disable=not progress, unit="step",
               dynamic_ncols=True)
    with bar:
        for step in range(first, config.steps + 1):
            if step > first and control.due():
                recorder.sync()
                control.save(loop.checkpoint(step, recorder))
                if control.stop_signal is not None:
                    return "interrupted", step
            grads = loop.gradients()
            if is_log_step(step, config):
                row = loop.measure(step, grads)
                loop.hold(recorder.log(step, row))
                if is_snapshot_step(step, config):
                    recorder.snapshot(step, loop.snapshot())
                bar.set_postfix(train_acc=f"{row['train_acc'][0]:.3f}",
                                test_acc=f"{row['test_acc'][0]:.3f}", refresh=False)
                bar.update(step - bar.n)
                if recorder.all_diverged():
                    return "diverged", step
            if step == config.steps:
                return "complete", step
            loop.update(grads, step + 1)
    return "complete", config.steps


def execute(loop: Loop, layout: io.Layout, out: str | os.PathLike | None,
            start: checkpoint.Start, progress: bool, checkpoint_seconds: float,
            sync_seconds: float) -> xr.Dataset:
    """Run ``loop`` to its end inside the run's file (laid out as ``layout``) and
    checkpoints, and return the trajectory: resume from ``start.checkpoint`` if there is
    one, write the measures known only at the end, and raise
    :class:`gk.checkpoint.RunInterrupted` if a signal stopped the run (its file and
    checkpoint are kept)."""
    with checkpoint.Control(out, checkpoint_seconds) as control, io.Recorder(
            "step", loop.config, layout, out, start.overwrite, start.checkpoint,
            sync_seconds) as recorder:
        first = 0 if start.checkpoint is None else loop.restore(start.checkpoint, recorder)
        with np.errstate(over="ignore", invalid="ignore"):
            recorder.status, last = run_steps(loop, recorder, control, first, progress)
            if recorder.status != "interrupted":
                for name, values in loop.probes.series().items():
                    recorder.write_series(name, values)
    control.raise_if_stopped("step", last)
    if out is not None:
        checkpoint.remove(out)
    return recorder.dataset()
