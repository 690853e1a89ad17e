"""Recursive Feature Machines (seed 000): kernel ridge regression that learns its features.

One iteration (seed 000, "Recursive Feature Machines")::

    α   = (K(X, X; M_t) + λI)⁻¹ Y                      by Cholesky, or block CG
    G   = (1/n) Σ_j J_jᵀ J_j,   J_j = ∂f(x_j)/∂x       the AGOP of f(x) = K(x, X; M_t) α
    M_{t+1} = G^s                                      s = 1/2, by eigh with clipping

from M₀ = I. The AGOP is computed in closed form from matrix products (no per-sample
Jacobian), using the structure of the kernel (:mod:`gk.kernels`) and, for the runs of
:func:`run`, that inputs are one-hot pairs.

:mod:`gk.solvers` solves the kernel systems without forming K when it does not fit in
memory (``solver="cg"``).

Seed 000's code centres the Jacobians (subtracts their mean over the training points) before
the outer product; ``centering=True`` does the same and is the default that reproduces the
paper's figures. Its code solves by LU; gk by Cholesky (the matrix is symmetric PSD).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from gk import backend, checkpoint, io, solvers
from gk.backend import JITTER_STOP, array_namespace, psd_power, solve_ridge
from gk.config import RunConfig, check_int, check_number, configure
from gk.fourier import ipr
from gk.kernels import (
    DEFAULT_BANDWIDTH,
    check_kernel,
    count_inputs,
    from_inner_products,
    gradient_weights,
    gram,
    inner_products,
    take_inputs,
    weighted_moments,
)
from gk.losses import per_sample_loss
from gk.measures import (
    FOURIER_MEASURES,
    agop_alignment,
    check_fourier_task,
    check_key_frequencies,
    check_measures,
    circulant_deviation,
    feature_block,
    fourier_ablations,
)
from gk.tasks import (
    Split,
    Task,
    check_op,
    check_train_fraction,
    discrete_log,
    model_splits,
    resolve,
    train_mask,
)

Inputs = Any
"""Dense rows (n, 2p) or one-hot pairs ``(a, b)`` of int arrays (see :mod:`gk.kernels`)."""

MEASURES = ("circulant_deviation", "agop_alignment", "agop_trace", "ipr", *FOURIER_MEASURES)
"""What RFM can log; the first three always are (``measures=[...]`` in :func:`run`)."""


def dense(inputs: Inputs, p: int | None, xp: Any = np) -> Any:
    """One-hot rows ``e_a ⊕ e_b`` (n, 2p) of pairs; dense inputs come back unchanged."""
    if not isinstance(inputs, tuple):
        return inputs
    a, b = inputs
    X = xp.zeros((len(a), 2 * p))
    rows = xp.arange(len(a))
    X[rows, a] = 1
    X[rows, p + b] = 1
    return X


def predict(kernel: str, M: Any, inputs: Inputs, centers: Inputs, alpha: Any,
            bandwidth: float | None, p: int | None = None, chunk: int | None = None) -> Any:
    """f(x) = K(x, centers; M) α for every input, ``chunk`` rows of the kernel at a time
    (by default as many as fit in :data:`gk.solvers.CHUNK_BYTES`;
    :func:`gk.solvers.kernel_matmul`)."""
    return solvers.kernel_matmul(kernel, M, inputs, centers, alpha, bandwidth, p, chunk)


def _second_moments(X: Inputs, p: int | None, centering: bool) -> Any:
    """(1/n) Σ x xᵀ of the inputs, minus x̄ x̄ᵀ when centering."""
    xp = array_namespace(X if not isinstance(X, tuple) else X[0])
    dense_X = dense(X, p, xp)
    S = dense_X.T @ dense_X / dense_X.shape[0]
    if centering:
        mean = dense_X.mean(axis=0)
        S = S - xp.outer(mean, mean)
    return S


def agop_quadratic(M: Any, alpha: Any, X: Inputs, p: int | None = None,
                   centering: bool = True, class_chunk: int = 16) -> Any:
    """AGOP of the quadratic-kernel predictor, in closed form.

    With k(x, z) = (xᵀMz)², ∇f_c(x) = 2 M A_c M x where A_c = Xᵀ diag(α_c) X, so

        G = 4 M [ Σ_c A_c (M S M) A_c ] M,     S = (1/n) Σ_i x_i x_iᵀ  (− x̄x̄ᵀ if centred).

    Cost O(n·p + p·d³) instead of O(n²·p·d); classes are processed ``class_chunk`` at a time.
    """
    T = M @ _second_moments(X, p, centering) @ M
    inner = 0
    for start in range(0, alpha.shape[1], class_chunk):
        A = weighted_moments(X, alpha[:, start:start + class_chunk], p)
        inner = inner + (A @ T @ A).sum(axis=0)
    return 4 * M @ inner @ M


def _operand_groups(centers: Inputs) -> list[tuple[int, Any]] | None:
    """For one-hot pairs, (input coordinate u, indices j with x_ju = 1) for every u that
    occurs; computed once per AGOP, so the operands cross to the host only once."""
    if not isinstance(centers, tuple):
        return None
    xp = array_namespace(centers[0])
    groups = []
    for half, operand in enumerate(centers):
        host = backend.to_numpy(operand)
        for value in np.unique(host):
            groups.append((half, int(value), xp.asarray(np.flatnonzero(host == value))))
    return groups


def _jacobian_vectors(beta: Any, alpha: Any, centers: Inputs, p: int | None,
                      groups: list | None) -> Any:
    """V[u, i, c] = Σ_j β_ij α_jc x_ju for every row i of β, shape (d, rows, classes).

    The input coordinate u comes first so that each coordinate's block is contiguous. For
    one-hot pairs x_ju is 1 only where a_j = u (first half) or b_j = u − p (second half),
    so the sum over j is grouped by operand (``groups`` from :func:`_operand_groups`): 2p
    products of β's columns in each group with α, O(rows·n·p) in all instead of
    O(rows·n·p·d).
    """
    xp = array_namespace(beta)
    if groups is None:
        weighted = alpha[:, None, :] * centers[:, :, None]            # (n, d, classes)
        V = beta @ weighted.reshape(len(alpha), -1)                  # (rows, d·classes)
        return V.reshape(beta.shape[0], centers.shape[1], -1).transpose(1, 0, 2)
    V = xp.zeros((2 * p, beta.shape[0], alpha.shape[1]), dtype=beta.dtype)
    for half, value, members in groups:
        V[half * p + value] = beta[:, members] @ alpha[members]
    return V


def _add_input_term(V: Any, weights: Any, rows: Inputs, p: int | None) -> None:
    """V[u, i, c] += weights[i, c] · x_iu in place (the γ term of the Jacobian)."""
    xp = array_namespace(V)
    if not isinstance(rows, tuple):
        V += rows.T[:, :, None] * weights[None]
        return
    samples = xp.arange(weights.shape[0])
    for offset, operand in ((0, rows[0]), (p, rows[1])):  # each (u, i) once per operand
        V[offset + operand, samples] += weights


def agop_general(kernel: str, M: Any, alpha: Any, X: Inputs, bandwidth: float | None,
                 p: int | None = None, centering: bool = True, chunk: int = 1024) -> Any:
    """AGOP of any kernel's predictor from the gradient weights β, γ of :mod:`gk.kernels`.

    ∇f_c(x_i) = M u_ic with u_ic = Σ_j β_ij α_jc x_j + (Σ_j γ_ij α_jc) x_i, and
    G = M [ (1/n) Σ_ic u_ic u_icᵀ − Σ_c ū_c ū_cᵀ (if centred) ] M. Training points are
    processed ``chunk`` at a time, so memory stays O(chunk·(n + p·d)).
    """
    n = count_inputs(X)
    groups = _operand_groups(X)
    second, total = 0, 0
    for start in range(0, n, chunk):
        rows = take_inputs(X, slice(start, start + chunk))
        products = inner_products(M, rows, X, p)
        K = from_inner_products(kernel, *products, bandwidth)
        beta, gamma = gradient_weights(kernel, K, *products, bandwidth)
        V = _jacobian_vectors(beta, alpha, X, p, groups)
        if gamma is not None:
            _add_input_term(V, gamma @ alpha, rows, p)
        flat = V.reshape(V.shape[0], -1)                              # (d, rows·classes)
        second = second + flat @ flat.T
        total = total + V.sum(axis=1)                                 # (d, classes)
    inner = second / n
    if centering:
        mean = total / n
        inner = inner - mean @ mean.T
    return M @ inner @ M


def agop(kernel: str, M: Any, alpha: Any, X: Inputs, bandwidth: float | None = None,
         p: int | None = None, centering: bool = True) -> Any:
    """The AGOP G = (1/n) Σ_j J_jᵀ J_j of f(x) = K(x, X; M) α over the training inputs X."""
    check_kernel(kernel)
    if kernel == "quadratic":
        return agop_quadratic(M, alpha, X, p, centering)
    return agop_general(kernel, M, alpha, X, bandwidth, p, centering)


def resolve_bandwidth(kernel: str, bandwidth: float | None) -> float | None:
    """The bandwidth a kernel uses: the given one, or the kernel's default."""
    check_kernel(kernel)
    if bandwidth is None:
        return DEFAULT_BANDWIDTH[kernel]
    if DEFAULT_BANDWIDTH[kernel] is None:
        raise ValueError(f"bandwidth={bandwidth!r} has no meaning for kernel={kernel!r}; "
                         "leave it None")
    check_number("bandwidth", bandwidth)
    return float(bandwidth)


@dataclass(frozen=True)
class RFMConfig(RunConfig):
    """Everything that defines an RFM run on a modular task.

    The defaults reproduce seed 000's main figure: addition mod 61, half of the pairs for
    training, the quadratic kernel, ridgeless, M ← AGOP^½ for 30 iterations.

    Parameters
    ----------
    op : str or callable
        The operation (:func:`gk.tasks.modular`).
    p : int
        The modulus.
    train_fraction : float or sequence of float
        Fraction of the pairs used for training; a list gives one model per entry.
    kernel : {"quadratic", "gaussian", "laplace"}
        See :mod:`gk.kernels` for the exact formulas.
    iterations : int
        Number of kernel solves; M is updated after each but the last.
    ridge : float
        λ of (K + λI)α = Y; 0 (ridgeless) as in the paper.
    bandwidth : float or None
        L of the Gaussian (default 12.5, the paper code's σ = 2.5) or Laplace kernel
        (default 2.5).
    power : float
        s in M ← G^s.
    centering : bool
        Centre the Jacobians before the outer product, as the paper's code does.
    seed : int or sequence of int
        Seed of the split; a list gives one model per seed.
    dtype : {"float64", "float32"}
        Kernel solves reach condition numbers of 1e10: keep float64 unless checked.
    snapshot_every : int
        Iterations between two stored feature matrices M (the last is always stored).
    measures : sequence of str
        Measures to log besides the metrics, ``circulant_deviation``, ``agop_alignment`` and
        ``agop_trace`` (always logged), from :data:`MEASURES`: ``ipr`` of the rows of M_t
        (seed 001's measure, :func:`gk.fourier.ipr`), ``restricted_loss`` and
        ``excluded_loss`` of the predictions on all p² pairs (seed 003,
        :func:`gk.measures.fourier_ablations`; an op defined on all pairs).
    key_frequencies : None, int or sequence of int
        The Fourier ablations' rule for key frequencies, as in :class:`gk.mlp.TrainConfig`.
    solver : {"auto", "cholesky", "cg"}
        How (K + λI)α = Y is solved: ``"cholesky"`` forms K (n×n) and factors a copy
        (:func:`gk.backend.solve_ridge`, with jitter where needed); ``"cg"`` never forms K:
        block conjugate gradients with a Nyström preconditioner, K applied in closed form
        (quadratic kernel) or a block of rows at a time
        (:func:`gk.solvers.solve_kernel_system`; no jitter: the system as given).
        ``"auto"`` takes ``"cholesky"`` when its memory estimate fits the budget
        (:func:`gk.solvers.choose_solver`), ``"cg"`` otherwise; the file's config records
        the solver that ran.
    cg_tolerance : float
        ``"cg"`` stops when every column's relative residual ‖(K + λI)α_c − y_c‖/‖y_c‖ is
        at most this.
    cg_max_iterations : int
        ``"cg"`` stops after this many steps anyway (with a warning).
    memory_gb : float or None
        The budget of ``"auto"`` in GiB; None: half of the memory available when the run
        starts (:func:`gk.backend.available_memory`).
    """

    op: str | Callable = "add"
    p: int = 61
    train_fraction: float | tuple[float, ...] = 0.5
    kernel: str = "quadratic"
    iterations: int = 30
    ridge: float = 0.0
    bandwidth: float | None = None
    power: float = 0.5
    centering: bool = True
    seed: int | tuple[int, ...] = 0
    dtype: str = "float64"
    snapshot_every: int = 1
    measures: tuple[str, ...] = ()
    key_frequencies: int | tuple[int, ...] | None = None
    solver: str = "auto"
    cg_tolerance: float = solvers.TOLERANCE
    cg_max_iterations: int = solvers.MAX_ITERATIONS
    memory_gb: float | None = None

    PER_MODEL = ("seed", "train_fraction")
    MEASURES = MEASURES

    def __post_init__(self) -> None:
        self._normalise_lists()
        object.__setattr__(self, "p", resolve(self.op, self.p).p)   # a table sets p
        check_kernel(self.kernel)
        resolve_bandwidth(self.kernel, self.bandwidth)
        check_int("iterations", self.iterations, 1)
        check_int("snapshot_every", self.snapshot_every, 1)
        check_number("ridge", self.ridge, allow_zero=True)
        check_number("power", self.power)
        if not isinstance(self.centering, (bool, np.bool_)):
            raise TypeError(f"centering={self.centering!r} is not allowed; centering must be "
                            "True or False")
        backend.check_dtype(self.dtype)
        for fraction in self.per_model("train_fraction"):
            check_train_fraction(fraction)
        for seed in self.per_model("seed"):
            check_int("seed", seed, 0)
        object.__setattr__(self, "measures", check_measures(self.measures, MEASURES, "RFM"))
        object.__setattr__(self, "key_frequencies",
                           check_key_frequencies(self.key_frequencies, self.p))
        solvers.check_solver(self.solver)
        check_number("cg_tolerance", self.cg_tolerance)
        check_int("cg_max_iterations", self.cg_max_iterations, 1)
        if self.memory_gb is not None:
            check_number("memory_gb", self.memory_gb)


@dataclass
class _Machine:
    """One model of a run: its split on the backend and its current features."""

    split: Split
    train: tuple[Any, Any]
    test: tuple[Any, Any]
    train_c: Any
    test_c: Any
    Y: Any
    M: Any


def _machines(task: Task, splits: list, dtype: Any) -> list[_Machine]:
    xp = backend.namespace()
    machines = []
    for split in splits:
        on_device = {part: (xp.asarray(task.a[rows]), xp.asarray(task.b[rows]),
                            xp.asarray(task.c[rows]))
                     for part, rows in (("train", split.train), ("test", split.test))}
        train, test = on_device["train"], on_device["test"]
        Y = xp.zeros((len(split.train), task.p), dtype=dtype)
        Y[xp.arange(len(split.train)), train[2]] = 1
        machines.append(_Machine(split, train[:2], test[:2], train[2], test[2], Y,
                                 xp.eye(2 * task.p, dtype=dtype)))
    return machines


def _solve(config: RFMConfig, machine: _Machine, bandwidth: float | None
           ) -> tuple[Any, Any, dict[str, float]]:
    """α of (K + λI)α = Y by ``config.solver``, K α, and the solve's row of measures."""
    if config.solver == "cholesky":
        K = gram(config.kernel, machine.M, machine.train, machine.train, bandwidth, config.p)
        alpha, jitter = solve_ridge(K, machine.Y, config.ridge)
        fitted, iterations = K @ alpha, 0
    else:
        result = solvers.solve_kernel_system(
            config.kernel, machine.M, machine.train, machine.Y, config.ridge, bandwidth,
            config.p, tol=config.cg_tolerance, max_iterations=config.cg_max_iterations,
            seed=machine.split.seed)
        alpha, fitted, iterations, jitter = (result.alpha, result.fitted, result.iterations,
                                             0.0)
    residual = solvers.relative_residual(fitted, alpha, machine.Y, config.ridge)
    return alpha, fitted, {"jitter": jitter, "solver_iterations": iterations,
                           "solver_residual": residual}


def _iteration(config: RFMConfig, machine: _Machine, bandwidth: float | None,
               last: bool) -> dict[str, float]:
    """Solve, evaluate and update one model's features; return its row of measures."""
    p = config.p
    alpha, fitted, row = _solve(config, machine, bandwidth)
    predictions = {"train": fitted, "test": predict(config.kernel, machine.M, machine.test,
                                                    machine.train, alpha, bandwidth, p)}
    for part, c in (("train", machine.train_c), ("test", machine.test_c)):
        losses, _ = per_sample_loss(predictions[part], c, "mse")
        row[f"{part}_loss"] = float(losses.mean())
        row[f"{part}_acc"] = float((predictions[part].argmax(axis=1) == c).mean())
    if machine.split.task.is_modular:         # a table's labels have no cyclic order
        block = feature_block(machine.M, p, config.op if isinstance(config.op, str) else None)
        row["circulant_deviation"] = float(circulant_deviation(block))
    if "ipr" in config.measures:
        row["ipr"] = float(ipr(machine.M, p))
    if set(config.measures) & set(FOURIER_MEASURES):
        row.update(_ablations(config, machine, predictions))
    G = agop(config.kernel, machine.M, alpha, machine.train, bandwidth, p, config.centering)
    row["agop_trace"] = float(array_namespace(G).trace(G))
    if not last:
        machine.M = psd_power(G, config.power)
    return row


def _ablations(config: RFMConfig, machine: _Machine, predictions: dict[str, Any]) -> dict:
    """Seed 003's restricted and excluded loss of one model's predictions on all pairs."""
    xp = array_namespace(predictions["train"])
    split = machine.split
    logits = xp.empty((config.p**2, config.p), dtype=predictions["train"].dtype)
    logits[xp.asarray(split.train)] = predictions["train"]
    logits[xp.asarray(split.test)] = predictions["test"]
    values = fourier_ablations(logits[None], split.task.c, config.p, config.key_frequencies,
                               "mse", train_mask(split.task, [split]))
    return {name: float(values[name][0]) for name in config.measures if name in values}


def run(config: RFMConfig | None = None, *, out: str | os.PathLike | None = None,
        overwrite: bool = False, resume: bool = False, progress: bool = False,
        callback: Callable[[int, dict[str, np.ndarray]], None] | None = None,
        checkpoint_seconds: float = 0.0, sync_seconds: float = 1.0,
        **options: Any) -> xr.Dataset:
    """Run Recursive Feature Machines on a modular task (seed 000) and return the trajectory.

    Parameters
    ----------
    config : RFMConfig, optional
        A whole configuration; keyword ``options`` override its fields.
    out : path-like, optional
        A netCDF file written while the run goes (``out.partial`` until it ends).
    overwrite : bool
        Replace ``out`` if it exists.
    resume : bool
        Continue the run in ``out`` from its last checkpoint, bit-identically on the CPU
        (as :func:`gk.mlp.train`).
    progress : bool
        Show a progress bar over iterations.
    callback : callable, optional
        Called after every iteration with the iteration and its logged row (name → one
        value per model), e.g. to print or time a long run as it goes.
    checkpoint_seconds : float
        Least time between two checkpoints; the default 0 saves one after every iteration
        (an iteration costs far more than its (2p)² feature matrices).
    sync_seconds : float
        Longest time between two flushes of ``out`` to disk.
    **options
        Fields of :class:`RFMConfig`: ``op, p, train_fraction, kernel, iterations, ridge,
        bandwidth, power, centering, seed, dtype, snapshot_every, measures,
        key_frequencies, solver, cg_tolerance, cg_max_iterations, memory_gb``.

    Returns
    -------
    xarray.Dataset
        Dims ``iteration``, ``model`` and ``snapshot``: ``train_loss``, ``test_loss`` (MSE,
        ½‖f − e_c‖² averaged over pairs), ``train_acc``, ``test_acc``,
        ``circulant_deviation``, ``agop_alignment`` (filled when the run ends),
        ``agop_trace``, ``jitter``, ``solver_iterations`` (block-CG steps, 0 for Cholesky),
        ``solver_residual`` (:func:`gk.solvers.relative_residual` of the solve), the
        ``measures`` asked, and the feature matrices ``M`` on ``snapshot``. A kernel matrix
        that Cholesky rejects is recorded in the ``faults`` attribute with the remedy
        taken (a jitter, or, past the largest, stopping that model).

    Examples
    --------
    >>> ds = run(op="add", p=31, iterations=20)              # doctest: +SKIP
    >>> ds.test_acc.isel(model=0).values                      # doctest: +SKIP
    """
    config = configure(RFMConfig, config, options)
    task = resolve(config.op, config.p)
    splits = model_splits(task, config.per_model("train_fraction"), config.per_model("seed"))
    check_fourier_task(config.measures, task)
    config = _resolve_solver(config, splits)
    start = checkpoint.prepare(out, config.to_json(), overwrite, resume,
                               {"checkpoint_seconds": checkpoint_seconds,
                                "sync_seconds": sync_seconds})
    if start.finished is not None:
        return start.finished
    bandwidth = resolve_bandwidth(config.kernel, config.bandwidth)
    machines = _machines(task, splits, backend.check_dtype(config.dtype))
    dims = {"input": 2 * config.p, "input_2": 2 * config.p}
    features: list[np.ndarray] = []
    with checkpoint.Control(out, checkpoint_seconds) as control, io.Recorder(
            "iteration", config, io.pair_layout(config, task, train_mask(task, splits), dims),
            out, start.overwrite, start.checkpoint, sync_seconds) as recorder:
        first = 0
        if start.checkpoint is not None:
            first, features = _restore(machines, start.checkpoint)
        for t in tqdm(range(first, config.iterations), initial=first, total=config.iterations,
                      disable=not progress, unit="iteration"):
            if t > first and control.due():
                recorder.sync()
                control.save(_checkpoint(t, config, machines, features, recorder))
                if control.stop_signal is not None:
                    recorder.status = "interrupted"
                    break
            M_t = array_namespace(machines[0].M).stack([m.M for m in machines])
            row = _iterate(config, machines, bandwidth, t, recorder)
            recorder.log(t, row)
            if callback is not None:
                callback(t, row)
            features.append(backend.to_numpy(M_t))
            if t % config.snapshot_every == 0 or t == config.iterations - 1:
                recorder.snapshot(t, {"M": (M_t, ("input", "input_2"))})
            if recorder.all_diverged():
                recorder.status = "diverged"
                break
        if recorder.status != "interrupted":
            recorder.write_series("agop_alignment", agop_alignment(np.stack(features),
                                                                   features[-1][None]))
    control.raise_if_stopped("iteration", t)
    if out is not None:
        checkpoint.remove(out)
    return recorder.dataset()


CHOLESKY_FAILED = "K + λI is not numerically positive definite: Cholesky failed at ridge λ"


def _iterate(config: RFMConfig, machines: list[_Machine], bandwidth: float | None, t: int,
             recorder: io.Recorder) -> dict[str, np.ndarray]:
    """One iteration of every model that has not failed; a model whose kernel system no
    jitter can factorise is stopped (NaN row), and each fault and remedy recorded."""
    rows: list[dict | None] = []
    for m, machine in enumerate(machines):
        if recorder.diverged[m] >= 0:
            rows.append(None)
            continue
        try:
            row = _iteration(config, machine, bandwidth, t == config.iterations - 1)
        except np.linalg.LinAlgError:
            recorder.fault(t, m, f"{CHOLESKY_FAILED} even with the largest jitter "
                           f"{JITTER_STOP:g}·mean(diag K)", "the model is stopped; the "
                           "other models go on")
            row = None
        else:
            if row["jitter"] > 0:
                recorder.fault(t, m, CHOLESKY_FAILED, "added ε·mean(diag K) to the diagonal, "
                               "the least ε = 1e-12·10^k that factorises; ε of each "
                               "iteration in variable jitter")
        rows.append(row)
    names = next((list(row) for row in rows if row is not None), ["train_loss"])
    return {name: np.array([np.nan if row is None else row[name] for row in rows])
            for name in names}


def _checkpoint(t: int, config: RFMConfig, machines: list[_Machine], features: list,
                recorder: io.Recorder) -> checkpoint.Checkpoint:
    """The run's state at the start of iteration ``t``."""
    arrays = {"M": np.stack([backend.to_numpy(machine.M) for machine in machines]),
              "features": np.stack(features)}
    return checkpoint.Checkpoint(t, recorder.n_rows, recorder.n_snapshots, config.to_json(),
                                 arrays, {"recorder": recorder.state()})


def _restore(machines: list[_Machine], saved: checkpoint.Checkpoint) -> tuple[int, list]:
    """Continue from ``saved``: set every model's features; return the iteration to start
    at and the feature matrices of the iterations before it."""
    for machine, M in zip(machines, saved.arrays["M"], strict=True):
        machine.M = backend.asarray(M)
    return saved.time, list(saved.arrays["features"])


def _resolve_solver(config: RFMConfig, splits: list[Split]) -> RFMConfig:
    """``config`` with ``solver="auto"`` replaced by the solver that the largest model's
    system fits (:func:`gk.solvers.choose_solver`), so that the file records it."""
    n = max(len(split.train) for split in splits)
    n_test = max(len(split.test) for split in splits)
    solver = solvers.choose_solver(config.solver, n, 2 * config.p, config.p, n_test,
                                   config.dtype, config.memory_gb)
    return dataclasses.replace(config, solver=solver)


def _check_matrix(name: str, values: Any, rows: int | None = None) -> Any:
    """Raise unless ``values`` is a finite 2-D array (with ``rows`` rows, if given)."""
    xp = array_namespace(values)
    values = xp.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {values.shape}")
    if rows is not None and values.shape[0] != rows:
        raise ValueError(f"{name} has {values.shape[0]} rows but X has {rows}")
    if not bool(xp.isfinite(values).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return values


class RFM:
    """Recursive Feature Machine as an estimator: ``RFM(...).fit(X, Y).predict(X_new)``.

    Works on any dense inputs (rows of X); :func:`run` is the fast path for modular tasks.

    Parameters
    ----------
    kernel, iterations, ridge, bandwidth, power, centering
        As in :class:`RFMConfig`.

    Attributes
    ----------
    M_ : array, shape (d, d)
        The feature matrix of the final predictor.
    alpha_ : array, shape (n, outputs)
        Coefficients of the final predictor f(x) = K(x, X; ``M_``) α.
    jitter_ : float
        The relative jitter the final solve needed (0 if none).
    """

    def __init__(self, kernel: str = "quadratic", iterations: int = 30, ridge: float = 0.0,
                 bandwidth: float | None = None, power: float = 0.5, centering: bool = True):
        self.kernel = kernel
        self.iterations = iterations
        self.ridge = ridge
        self.bandwidth = bandwidth
        self.power = power
        self.centering = centering

    def fit(self, X: Any, Y: Any, M: Any = None) -> RFM:
        """Learn features and predictor from inputs X (n, d) and targets Y (n, outputs).

        ``M`` is the initial feature matrix (default the identity).
        """
        bandwidth = resolve_bandwidth(self.kernel, self.bandwidth)
        check_int("iterations", self.iterations, 1)
        check_number("ridge", self.ridge, allow_zero=True)
        check_number("power", self.power)
        X = _check_matrix("X", X)
        Y = _check_matrix("Y", Y, rows=X.shape[0])
        xp = array_namespace(X)
        d = X.shape[1]
        M = xp.eye(d, dtype=X.dtype) if M is None else _check_matrix("M", M)
        if M.shape != (d, d) or not bool(xp.allclose(M, M.T)):
            raise ValueError(f"M must be a symmetric {d}×{d} matrix (d = X.shape[1]), "
                             f"got shape {M.shape}" + ("" if M.shape != (d, d) else
                                                       " that is not symmetric"))
        for t in range(self.iterations):
            K = gram(self.kernel, M, X, X, bandwidth)
            self.alpha_, self.jitter_ = solve_ridge(K, Y, self.ridge)
            if t < self.iterations - 1:
                G = agop(self.kernel, M, self.alpha_, X, bandwidth, centering=self.centering)
                M = psd_power(G, self.power)
        self.M_, self.X_ = M, X
        return self

    def predict(self, X: Any) -> Any:
        """Predictions K(X, X_train; ``M_``) α of the fitted machine, shape (n, outputs)."""
        if not hasattr(self, "M_"):
            raise RuntimeError("this RFM is not fitted yet; call fit(X, Y) first")
        X = _check_matrix("X", X)
        if X.shape[1] != self.X_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} columns but the RFM was fitted on "
                             f"{self.X_.shape[1]}")
        return predict(self.kernel, self.M_, X, self.X_, self.alpha_,
                       resolve_bandwidth(self.kernel, self.bandwidth))


def random_circulant_features(p: int, seed: int = 0, op: str = "add") -> Any:
    """Random block-circulant features (seed 000, "random circulant features").

    Builds ``B = [[A, C], [Cᵀ, A]]`` with ``A = I − (1/p) 𝟙𝟙ᵀ`` (c₁ = 1, c₂ = −1/p) and C a
    circulant matrix whose first column is drawn iid from U[0, 1] and centred (as seed 000's
    code does), arranged for the operation: ``C[a, b]`` a function of a − b for ``add``, of
    a + b for ``sub``, and the same in discrete-log coordinates for ``mul`` and ``div``
    (row and column 0 stay zero). Returns the feature matrix ``M = B^½`` (eigenvalues
    clipped at 0, which equals the real part of the paper code's ``sqrtm``), ready for a
    kernel machine: ``RFM(iterations=1).fit(X, Y, M=M)`` generalises without iterating.
    """
    check_op(op, p)
    if op not in ("add", "sub", "mul", "div"):
        raise ValueError(f"op={op!r}: random circulant features exist for add, sub, mul, div")
    generator = backend.rng((int(seed), 3))
    size = p if op in ("add", "sub") else p - 1
    column = generator.uniform(size=size)
    column -= column.mean()
    i = np.arange(size)
    circulant = column[(i[:, None] - i[None, :]) % size]     # C[i, j] = column[i − j]
    if op in ("sub", "div"):
        circulant = circulant[:, ::-1]                       # a function of i + j instead
    C = np.zeros((p, p))
    if op in ("add", "sub"):
        C[:] = circulant
    else:
        antilog = discrete_log(p)[2]
        C[np.ix_(antilog, antilog)] = circulant
    A = np.eye(p) - np.ones((p, p)) / p
    B = np.block([[A, C], [C.T, A]])
    return psd_power(backend.asarray(B), 0.5)
