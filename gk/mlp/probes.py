"""Progress measures of the two-layer network, taken while it trains.

Each probe computes, at the steps it measures, one (M,) row per measure by calling the array
functions of :mod:`gk.measures` and :mod:`gk.ntk`; between those steps its measures are NaN.
:data:`MEASURES` lists what the network offers (``measures=[...]`` in
:func:`gk.mlp.train`); the train and test metrics and the IPR are always logged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gk import backend, ntk
from gk.measures import (
    FOURIER_MEASURES,
    agop_alignment,
    ansatz_correlation,
    circulant_deviation,
    feature_block,
    fourier_ablations,
    kernel_alignment,
    network_agop,
    neural_feature_matrix,
    relative_distance,
)
from gk.mlp.model import Params, outputs

FEATURE_MEASURES = ("nfm_correlation", "nfm_circulant_deviation", "nfm_alignment",
                    "agop_circulant_deviation", "agop_alignment", "agop_trace")
"""Measures of the feature matrix W1ᵀW1 (``nfm_*``) and of the AGOP on each model's training
pairs (``agop_*``), seed 000; ``*_alignment`` is ρ(·_t, ·_final), filled when the run ends."""

NTK_MEASURES = ("ntk_distance", "ntk_alignment")
"""Seed 002's NTK on a fixed probe set: distance from initialisation, alignment with the
targets."""

ALIGNMENTS = ("nfm_alignment", "agop_alignment")

MEASURES = ("ipr", *FEATURE_MEASURES, *FOURIER_MEASURES, *NTK_MEASURES)
"""Every measure of the network; ``ipr`` is always logged."""


def _skipped(names: tuple[str, ...], M: int) -> dict[str, np.ndarray]:
    return {name: np.full(M, np.nan) for name in names}


class KernelProbe:
    """The NTK (trace kind) of every model on a fixed probe set of ``ntk_probe`` examples,
    compared with its value at step 0: ``ntk_distance`` ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F and
    ``ntk_alignment`` with the probe's targets (seed 002, Figs. 1–2)."""

    def __init__(self, task: Any, seed: int, size: int, dtype: Any):
        if size > task.size:
            raise ValueError(f"ntk_probe={size} is larger than the task's {task.size} examples; "
                             f"ntk_probe must be in 1..{task.size}")
        xp = backend.namespace()
        order = backend.rng((seed, 5)).permutation(task.size)[:size]
        self.inputs = tuple(xp.asarray(x) for x in task.operands(order))
        self.targets = backend.asarray(task.targets(order), dtype)
        self.initial = None

    def __call__(self, params: Params) -> dict[str, np.ndarray]:
        xp = backend.array_namespace(params.W1)
        K = xp.stack([ntk.gram(params.model(m), self.inputs) for m in range(params.W1.shape[0])])
        if self.initial is None:
            self.initial = K
        return {"ntk_distance": backend.to_numpy(relative_distance(K, self.initial)),
                "ntk_alignment": backend.to_numpy(kernel_alignment(K, self.targets))}


class FeatureProbe:
    """W1ᵀW1 and the AGOP on each model's training pairs (seed 000): their circulant
    deviation (off-diagonal block, :func:`gk.measures.feature_block`), the neural feature
    ansatz correlation, tr(AGOP), and, when the run ends, their alignment with the final
    matrix. Alignments need every measured matrix until the end: they are kept on the host,
    (k·p)² values per model per measured step and matrix."""

    def __init__(self, names: tuple[str, ...], operands: tuple[Any, ...], train: np.ndarray,
                 p: int, op: str | None, dtype: Any):
        self.names, self.operands, self.p, self.op = names, operands, p, op
        self.weights = backend.asarray(train / train.sum(axis=1, keepdims=True), dtype)
        self.kept: dict[str, list] = {name: [] for name in ("nfm", "agop")
                                      if f"{name}_alignment" in names}

    def __call__(self, params: Params) -> dict[str, np.ndarray]:
        xp = backend.array_namespace(params.W1)
        matrices = {"nfm": neural_feature_matrix(params),
                    "agop": network_agop(params, self.operands, self.weights)}
        row = {"nfm_correlation": ansatz_correlation(matrices["nfm"], matrices["agop"]),
               "agop_trace": xp.trace(matrices["agop"], axis1=-2, axis2=-1)}
        for name, matrix in matrices.items():
            row[f"{name}_circulant_deviation"] = circulant_deviation(
                feature_block(matrix, self.p, self.op))
            if name in self.kept:
                self.kept[name].append(backend.to_numpy(matrix))
        return {name: backend.to_numpy(row[name]) for name in self.names if name in row}

    def alignments(self, measured: np.ndarray) -> dict[str, np.ndarray]:
        """``*_alignment`` series (logged steps, M) against the last measured matrix; NaN
        at the logged steps not ``measured``."""
        series = {}
        for name, matrices in self.kept.items():
            stacked = np.stack(matrices)
            values = np.full((len(measured), stacked.shape[1]), np.nan)
            values[measured] = agop_alignment(stacked, stacked[-1])
            series[f"{name}_alignment"] = values
        return series


class Probes:
    """Every measure asked of a run, at log steps that are multiples of ``every`` (and the
    last step): one call per log step returns the row to log. ``operands`` are the task's
    examples on the device (all of them, in the task's order)."""

    def __init__(self, names: tuple[str, ...], task: Any, operands: tuple[Any, ...],
                 train: np.ndarray, config: Any):
        self.names = tuple(name for name in names if name != "ipr")
        self.logged = tuple(name for name in self.names if name not in ALIGNMENTS)
        self.every = config.measure_every or config.log_every
        self.last = config.steps
        self.measured: list[bool] = []
        feature_names = tuple(n for n in self.names if n in FEATURE_MEASURES)
        op = config.op if isinstance(config.op, str) else None
        self.features = (FeatureProbe(feature_names, operands, train, task.p, op, config.dtype)
                         if feature_names else None)
        self.kernel = (KernelProbe(task, config.per_model("seed")[0], config.ntk_probe,
                                   config.dtype)
                       if set(self.names) & set(NTK_MEASURES) else None)
        self.fourier = set(self.names) & set(FOURIER_MEASURES)
        self.operands, self.task, self.train = operands, task, train
        self.rule, self.loss = config.key_frequencies, config.loss

    def _measures(self, step: int) -> bool:
        return step % self.every == 0 or step == self.last

    def needs_logits(self, step: int) -> bool:
        """Whether the call at ``step`` needs the outputs on all examples."""
        return bool(self.fourier) and self._measures(step)

    def __call__(self, step: int, params: Params, logits: Any = None) -> dict[str, np.ndarray]:
        """The row at a log step; ``logits`` (M, examples, outputs) on all of the task's
        examples, in its order, when :meth:`needs_logits` (computed here if not given)."""
        measure = self._measures(step)
        self.measured.append(measure)
        if not measure:
            return _skipped(self.logged, params.W1.shape[0])
        row = {}
        if self.features is not None:
            row.update(self.features(params))
        if self.kernel is not None:
            row.update(self.kernel(params))
        if self.fourier:
            if logits is None:
                logits = outputs(params, self.operands)
            row.update(fourier_ablations(logits, self.task.c, self.task.p, self.rule,
                                         self.loss, self.train))
        return {name: row[name] for name in self.logged}

    def state(self) -> tuple[dict[str, np.ndarray], list[bool]]:
        """What the probes remember (arrays) and which log steps they measured, for a
        checkpoint."""
        arrays = {}
        if self.kernel is not None and self.kernel.initial is not None:
            arrays["probes.ntk_initial"] = backend.to_numpy(self.kernel.initial)
        if self.features is not None:
            for name, matrices in self.features.kept.items():
                arrays[f"probes.{name}"] = np.array(matrices)
        return arrays, list(self.measured)

    def restore(self, arrays: dict[str, np.ndarray], measured: list[bool]) -> None:
        """Continue from :meth:`state`."""
        self.measured = list(measured)
        if "probes.ntk_initial" in arrays:
            self.kernel.initial = backend.asarray(arrays["probes.ntk_initial"])
        if self.features is not None:
            for name in self.features.kept:
                self.features.kept[name] = list(arrays[f"probes.{name}"])

    def series(self) -> dict[str, np.ndarray]:
        """Measures known only when the run ends (the feature alignments)."""
        if self.features is None:
            return {}
        return self.features.alignments(np.array(self.measured))
