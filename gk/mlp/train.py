"""Training loop of the two-layer network: many models as one array program, logged to a
labelled dataset and, with ``out=``, to a netCDF file written while the run goes."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from gk import backend, checkpoint, io, training
from gk.config import RunConfig, check_int, check_number, configure
from gk.fourier import ipr
from gk.losses import check_loss, score
from gk.measures import check_fourier_task
from gk.mlp.model import (
    Params,
    Workspace,
    agop_trace_and_grads,
    check_activation,
    check_parametrisation,
    loss_and_grads,
    metrics,
    outputs,
)
from gk.mlp.model import init as init_params
from gk.mlp.probes import MEASURES, Probes
from gk.optim import check_optimizer, model_norm
from gk.tasks import (
    Split,
    Task,
    Triples,
    model_splits,
    resolve,
    train_mask,
    triples,
)

PER_MODEL = ("seed", "train_fraction", "lr", "weight_decay")
"""Config fields that may be lists: one model per entry, trained together."""

DEFAULT_LR = {"gd": 0.2, "momentum": 0.02, "adamw": 1e-3, "normalised_gd": 1.0}
"""Default learning rates; for ``gd`` and ``momentum`` in the mean-field parametrisation
they are multiplied by the width N."""

LR_SCALES_WITH_WIDTH = ("gd", "momentum")

TASKS = ("pairs", "triples")


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """Everything that defines a training run of the two-layer network.

    The defaults reproduce seed 001, Fig. 1: addition mod 97, width 512, α = 0.5, full-batch
    GD on MSE without regularisation.

    Parameters
    ----------
    task : {"pairs", "triples"}
        ``pairs``: classify c = op(a, b) from one-hot pairs (:func:`gk.tasks.modular`),
        p outputs. ``triples``: seed 002's regression of y = p·𝟙[a + b ≡ c] from one-hot
        triples (:func:`gk.tasks.triples`), one output, ``op="add"`` and ``loss="mse"``;
        α is then a fraction of the p³ triples (seed 002 trains on n = 2p^2.25).
    op : str or callable
        The operation (:func:`gk.tasks.modular`).
    p : int
        The modulus.
    width : int
        N, the number of hidden neurons.
    train_fraction : float or sequence of float
        α, the fraction of pairs used for training (seed 001, eq. 3).
    optimizer : {"gd", "momentum", "adamw", "normalised_gd"}
        ``normalised_gd`` takes steps of length lr along the gradient (:mod:`gk.optim`).
    lr : float, sequence of float, or None
        Step size. The mean-field factor 2/N makes every gradient O(1/N), so GD needs
        lr ∝ N: ``None`` means 0.2·N for GD, 0.02·N for momentum (μ = 0.9, the same
        effective step), 1e-3 for AdamW, whose normalised steps do not depend on N, and 1
        for normalised GD. In the standard parametrisation no rate is multiplied by N.
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
    grad_filter : {None, "ema", "ma"}
        Grokfast's filter of the loss gradient before each optimizer step
        (:class:`gk.optim.GradFilter`): g ← g + λ·(exponential or windowed moving average of
        past gradients). Works with every optimizer and weight decay.
    filter_alpha : float
        α in (0, 1) of the ``ema`` filter (Grokfast: 0.98).
    filter_lambda : float
        λ ≥ 0, the amplification of the averaged gradient (Grokfast: 2 for ``ema``, 5 for
        ``ma``).
    filter_window : int
        w ≥ 1, the ``ma`` filter's window in steps (Grokfast: 100).
    linf : float
        Strength of the ℓ∞ penalty λ∞‖θ‖_∞ (seed 002).
    agop_penalty : float
        λ_A of the penalty λ_A·tr(AGOP) on the batch's inputs (seed 000: it can replace
        weight decay; :func:`gk.mlp.model.agop_trace_and_grads`).
    activation : str
        φ: quadratic (seed 001, eq. 4), relu, gelu, tanh or identity.
    parametrisation : {"mean_field", "standard"}
        f = (2/N) W2 φ(W1 x) with N(0, s²) weights (seed 001), or f = W2 φ(W1 x) with
        He-style initialisation (seed 002); :data:`gk.mlp.model.PARAMETRISATIONS`.
    loss : {"mse", "cross_entropy"}
        MSE is ½‖f − e_c‖² averaged over pairs.
    init_scale : float
        s, the scale of the initial weights: their standard deviation in the mean-field
        parametrisation (seed 001: 1), the factor on He's in the standard one (seed 002
        varies it from 0.01 to 10).
    batch_size : int or None
        None for full batch; else minibatches drawn without replacement, reshuffled every
        epoch (seed 000's network used 32).
    dtype : {"float64", "float32"}
    log_every : int
        Steps between two logged rows (step 0 and the last step are always logged).
    snapshot_every : int
        Steps between two weight snapshots (the initial and final weights always kept).
    measures : sequence of str
        Progress measures to log besides the metrics and the IPR, from
        :data:`gk.mlp.probes.MEASURES`: ``nfm_correlation``, ``nfm_circulant_deviation``,
        ``nfm_alignment``, ``agop_circulant_deviation``, ``agop_alignment``, ``agop_trace``
        (seed 000, on W1ᵀW1 and on the AGOP over each model's training pairs),
        ``restricted_loss``, ``excluded_loss`` (seed 003; pairs of an op defined on all p²
        pairs), ``ntk_distance``, ``ntk_alignment`` (seed 002, on ``ntk_probe`` examples).
    measure_every : int
        Steps between two measurements; 0 (default) measures at every log step, else a
        multiple of ``log_every``. Measures are NaN at the log steps between.
    ntk_probe : int
        Number of examples in the NTK's probe set (drawn once, from the first seed).
    key_frequencies : None, int or sequence of int
        Which frequencies the Fourier ablations keep or remove, at each measured step and
        for each model: None, the fewest carrying 90% of the logits' power along a + b; an
        int K, the K strongest; a sequence, those frequencies (seed 003 fixes the final
        model's: read them from a first run with :func:`gk.fourier.key_frequencies` and
        train again with the same seed).
    """

    task: str = "pairs"
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
    grad_filter: str | None = None
    filter_alpha: float = 0.98
    filter_lambda: float = 2.0
    filter_window: int = 100
    linf: float = 0.0
    agop_penalty: float = 0.0
    activation: str = "quadratic"
    parametrisation: str = "mean_field"
    loss: str = "mse"
    init_scale: float = 1.0
    batch_size: int | None = None
    dtype: str = "float64"
    log_every: int = 10
    snapshot_every: int = 1000
    measures: tuple[str, ...] = ()
    measure_every: int = 0
    ntk_probe: int = 256
    key_frequencies: int | tuple[int, ...] | None = None

    PER_MODEL = PER_MODEL
    MEASURES = MEASURES

    def __post_init__(self) -> None:
        self._normalise_lists()
        object.__setattr__(self, "p", resolve(self.op, self.p).p)   # a table sets p
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is not a task; allowed: {', '.join(TASKS)}")
        if self.task == "triples" and (self.op != "add" or self.loss != "mse"):
            raise ValueError(f"task='triples' is seed 002's regression of a + b ≡ c with "
                             f"op='add' and loss='mse', got op={self.op!r}, loss={self.loss!r}")
        check_int("width", self.width, 1)
        check_int("ntk_probe", self.ntk_probe, 1)
        check_activation(self.activation)
        check_parametrisation(self.parametrisation)
        check_loss(self.loss)
        backend.check_dtype(self.dtype)
        check_optimizer(self.optimizer)        # before the default lr is looked up
        training.check_loop_fields(self)
        training.check_measure_fields(self, "the two-layer network")
        check_number("linf", self.linf, allow_zero=True)
        check_number("agop_penalty", self.agop_penalty, allow_zero=True)
        check_number("init_scale", self.init_scale)

    def per_model(self, name: str) -> list:
        """The value of a :data:`PER_MODEL` field for each model (``lr=None`` resolved)."""
        if name == "lr" and self.lr is None:
            scale = 1
            if self.parametrisation == "mean_field" and self.optimizer in LR_SCALES_WITH_WIDTH:
                scale = self.width
            return [DEFAULT_LR[self.optimizer] * scale] * self.n_models
        return super().per_model(name)

    def to_json(self) -> dict:
        """The config as JSON-ready values, with the learning rate resolved."""
        values = super().to_json()
        values["lr"] = self.per_model("lr") if self.n_models > 1 else self.per_model("lr")[0]
        return values


class Evaluator:
    """Train and test metrics of every model on all examples, reduced on the device."""

    def __init__(self, task: Task | Triples, splits: list[Split], loss: str, dtype: Any):
        xp = backend.namespace()
        self.operands = tuple(xp.asarray(x) for x in task.operands())
        self.labels = xp.asarray(task.labels())
        self.tolerance, self.p, self.is_modular = task.tolerance, task.p, task.is_modular
        self.is_train = is_train = train_mask(task, splits)
        self.train_mask = backend.asarray(is_train, dtype)
        self.test_mask = backend.asarray(~is_train, dtype)
        # Counts divide sums of 0/1 values, so a perfect accuracy is exactly 1.0.
        self.n_train = backend.asarray(is_train.sum(axis=1), dtype)
        self.n_test = backend.asarray((~is_train).sum(axis=1), dtype)
        self.loss = loss

    def __call__(self, params: Params, grads: dict[str, Any],
                 logits: Any = None) -> dict[str, np.ndarray]:
        """The row of metrics; ``logits`` on all examples, if already computed, are reused."""
        xp = backend.array_namespace(params.W1)
        if logits is None:
            losses, correct = metrics(params, self.operands, self.labels, self.loss,
                                      self.tolerance)
        else:
            losses, correct = score(logits, self.labels, self.loss, self.tolerance)
        correct = correct.astype(losses.dtype)
        rows = {
            "train_loss": (losses * self.train_mask).sum(axis=1) / self.n_train,
            "test_loss": (losses * self.test_mask).sum(axis=1) / self.n_test,
            "train_acc": (correct * self.train_mask).sum(axis=1) / self.n_train,
            "test_acc": (correct * self.test_mask).sum(axis=1) / self.n_test,
            "w1_norm": model_norm([params.W1]),
            "w2_norm": model_norm([params.W2]),
            "grad_norm": model_norm(grads),
        }
        if self.is_modular:                     # a table's labels have no Fourier modes
            rows["ipr"] = ipr(params.W1, self.p)
        stacked = backend.to_numpy(xp.stack([v.astype(xp.float64) for v in rows.values()]))
        return dict(zip(rows, stacked, strict=True))  # one device-to-host copy per log step


def train(config: TrainConfig | None = None, *, out: str | os.PathLike | None = None,
          overwrite: bool = False, resume: bool = False, progress: bool = False,
          checkpoint_seconds: float = 60.0, sync_seconds: float = 1.0,
          **options: Any) -> xr.Dataset:
    """Train one or many two-layer networks (seed 001) and return their trajectories.

    Parameters
    ----------
    config : TrainConfig, optional
        A whole configuration; keyword ``options`` override its fields.
    out : path-like, optional
        A netCDF file to write while training (as ``out.partial`` until the run ends).
    overwrite : bool
        Replace ``out`` if it exists.
    resume : bool
        Continue the run in ``out`` from its last checkpoint (:mod:`gk.checkpoint`); on the
        CPU the result is bit-identical to a run that was never stopped. A finished ``out``
        is read and returned; a missing one is started. The arguments must be those the
        file records, or a ValueError lists the differences.
    progress : bool
        Show a progress bar with model 0's train and test accuracy.
    checkpoint_seconds : float
        Seconds between two checkpoints (0: at every step). SIGTERM and Ctrl-C also save
        one, then close the file as ``interrupted`` and raise
        :class:`gk.checkpoint.RunInterrupted`.
    sync_seconds : float
        Longest time between two flushes of ``out`` to disk.
    **options
        Any field of :class:`TrainConfig`: ``task, op, p, width, train_fraction, optimizer, lr,
        steps, seed, momentum, betas, eps, weight_decay, grad_filter, filter_alpha,
        filter_lambda, filter_window, linf, agop_penalty, activation,
        parametrisation, loss, init_scale, batch_size, dtype, log_every, snapshot_every,
        measures, measure_every, ntk_probe, key_frequencies``. Lists of ``seed``,
        ``train_fraction``, ``lr`` or ``weight_decay`` train one model per entry, together.

    Returns
    -------
    xarray.Dataset
        Dims ``step``, ``model`` and ``snapshot``; see :mod:`gk.io` for the schema. A model
        whose loss or weights stop being finite is no longer updated from its
        ``diverged_at_step``; the others go on.

    Examples
    --------
    >>> ds = train(p=23, width=64, steps=20, seed=[0, 1])   # doctest: +SKIP
    >>> ds.test_acc.sel(step=20)                             # doctest: +SKIP
    """
    config = configure(TrainConfig, config, options)
    start = checkpoint.prepare(out, config.to_json(), overwrite, resume,
                               {"checkpoint_seconds": checkpoint_seconds,
                                "sync_seconds": sync_seconds})
    if start.finished is not None:
        return start.finished
    task = resolve(config.op, config.p) if config.task == "pairs" else triples(config.p)
    splits = model_splits(task, config.per_model("train_fraction"), config.per_model("seed"))
    check_fourier_task(config.measures, task)
    evaluator = Evaluator(task, splits, config.loss, config.dtype)
    probes = Probes(config.measures, task, evaluator.operands, evaluator.is_train, config)
    loop = _Loop(config, task, splits, evaluator, probes)
    dims = {"neuron": config.width, "input": loop.params.W1.shape[-1],
            "output": loop.params.W2.shape[1]}
    layout = io.pair_layout(config, task, evaluator.is_train, dims)
    return training.execute(loop, layout, out, start, progress, checkpoint_seconds,
                            sync_seconds)


class _Loop(training.Loop):
    """The network's step: the gradients of the next batch (with the AGOP penalty's, if
    any), the metrics and measures of a log step, the weights of a snapshot."""

    def __init__(self, config: TrainConfig, task: Task | Triples, splits: list[Split],
                 evaluator: Evaluator, probes: Probes):
        operands = len(task.operands([0]))
        outputs = config.p if config.task == "pairs" else 1
        self.params = init_params(config.p, config.width, list(config.per_model("seed")),
                                  config.activation, config.init_scale, config.dtype,
                                  config.parametrisation, operands, outputs)
        super().__init__(config, {"W1": self.params.W1, "W2": self.params.W2},
                         training.Batches(task, splits, config.batch_size, config.dtype),
                         probes, config.linf)
        self.evaluator = evaluator
        self.workspace = Workspace()

    def gradients(self) -> dict[str, Any]:
        config = self.config
        operands, labels, weights = self.batches.next()
        _, grads = loss_and_grads(self.params, operands, labels, weights, config.loss,
                                  self.workspace)
        if config.agop_penalty:
            _, penalty = agop_trace_and_grads(self.params, operands, weights)
            for key, value in penalty.items():
                grads[key] += config.agop_penalty * value
        return grads

    def measure(self, step: int, grads: dict[str, Any]) -> dict[str, np.ndarray]:
        params, probes = self.params, self.probes
        logits = (outputs(params, self.evaluator.operands)
                  if probes.needs_logits(step) else None)
        row = self.evaluator(params, grads, logits)
        row.update(probes(step, params, logits))
        return row

    def snapshot(self) -> dict[str, tuple[Any, tuple[str, ...]]]:
        return {"W1": (self.params.W1, ("neuron", "input")),
                "W2": (self.params.W2, ("output", "neuron"))}


def load_params(source: xr.Dataset | str | os.PathLike, step: int | None = None) -> Params:
    """The weights of a run at a snapshot step (the last snapshot if ``step`` is None).

    Returns a batched :class:`Params` (leading model axis) on the backend.
    """
    snapshot, config = io.snapshot_at(source, step)
    scale = 1.0 if config.get("parametrisation") == "standard" else None
    return Params(backend.asarray(snapshot.W1.values), backend.asarray(snapshot.W2.values),
                  config["activation"], scale)
