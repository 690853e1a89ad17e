"""Bad input: every public entry point refuses invalid arguments before any work starts.

:data:`CASES` holds one call per invalid argument. Each must raise the expected error with a
message that names the argument, gives its value as written and says what is allowed, and it
must leave no file behind (nor truncate one that exists). The same cases generate the table
of ``docs/bad_input.rst``; ``python tests/test_bad_input.py`` rewrites it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import gk.analytic
import gk.automaton
import gk.cli
import gk.fourier
import gk.io
import gk.measures
import gk.mlp
import gk.ntk
import gk.plot
import gk.rfm
import gk.rnn
import gk.sweep
import gk.tasks
import gk.transformer

DOCS = Path(__file__).resolve().parents[1] / "docs" / "bad_input.rst"
REGENERATE = "python tests/test_bad_input.py"


class CommandError(Exception):
    """The ``gk`` command ended with a nonzero exit status; the message is its last line of
    standard error (``gk <command>: error: ...``)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Case:
    """One call with an invalid argument.

    Attributes
    ----------
    entry : str
        The entry point as users write it (``gk.mlp.train``, or ``gk train`` for the command).
    arguments : str
        The invalid argument(s) as written in the call, for the table.
    call : callable
        Makes the call, given the folder it runs in (files go to ``folder / "run.nc"``).
    error : type
        The exception expected (:class:`CommandError` for the command line).
    fragments : tuple of str
        What the message must contain: the argument's name, its value as written, and a
        fragment of what is allowed.
    """

    entry: str
    arguments: str
    call: Callable[[Path], object]
    error: type[BaseException]
    fragments: tuple[str, ...]
    inputs: tuple[tuple[str, Callable[[], bytes]], ...] = ()
    """Files (name, their bytes) put in the folder before the call; they must be left as
    they are, and nothing else may appear."""

    @property
    def id(self) -> str:
        return f"{self.entry} {self.arguments}"


@functools.cache
def network_run():
    """A tiny network trajectory, in memory only (no file)."""
    return gk.mlp.train(p=7, width=8, steps=2, log_every=1, snapshot_every=1)


@functools.cache
def rfm_run():
    """A tiny RFM trajectory, in memory only (no file)."""
    return gk.rfm.run(p=5, iterations=2)


def logits(p: int = 7) -> np.ndarray:
    """Outputs of a model on all p² pairs: a wave of frequency 1 along a + b."""
    a, b = np.divmod(np.arange(p * p), p)
    return np.stack([np.cos(2 * np.pi * (a + b - c) / p) for c in range(p)], axis=1)


def train(**options) -> Callable[[Path], object]:
    """``gk.mlp.train`` with a small task, writing to ``run.nc`` in the case's folder."""
    return lambda folder: gk.mlp.train(**{"p": 7, "width": 8, "steps": 2, **options},
                                       out=folder / "run.nc")


def transformer(**options) -> Callable[[Path], object]:
    """``gk.transformer.train`` with a small task, writing to ``run.nc``."""
    return lambda folder: gk.transformer.train(
        **{"p": 7, "d_model": 8, "n_heads": 2, "d_mlp": 8, "steps": 2, **options},
        out=folder / "run.nc")


def rnn(**options) -> Callable[[Path], object]:
    """``gk.rnn.train`` on short sequences, writing to ``run.nc``."""
    return lambda folder: gk.rnn.train(
        **{"max_len": 3, "hidden": 4, "steps": 2, "test_lengths": (4, 6), "test_count": 4,
           **options}, out=folder / "run.nc")


def rfm(**options) -> Callable[[Path], object]:
    """``gk.rfm.run`` with a small task, writing to ``run.nc`` in the case's folder."""
    return lambda folder: gk.rfm.run(**{"p": 7, "iterations": 2, **options},
                                     out=folder / "run.nc")


def command(*argv: str, out: bool = True) -> Callable[[Path], object]:
    """``gk.cli.main(argv)`` (with ``--out FOLDER/run.nc``); raises :class:`CommandError`
    when it exits with a nonzero status, argparse's own errors included."""

    def call(folder: Path) -> None:
        args = [*argv, "--out", str(folder / "run.nc")] if out else list(argv)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = gk.cli.main(args)
            except SystemExit as exit:
                status = exit.code
        if status:
            lines = stderr.getvalue().strip().splitlines()
            raise CommandError(status, lines[-1] if lines else "")

    return call


@functools.cache
def run_file(**options) -> bytes:
    """The bytes of a finished trajectory file of a tiny network run."""
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "run.nc"
        gk.mlp.train(p=7, width=8, steps=2, out=path, **options)
        return path.read_bytes()


def sweep(grid, target: str = "train", **options) -> Callable[[Path], object]:
    """``gk.sweep.run`` of a tiny network (or ``target``) into ``sweep`` in the folder."""
    small = {"train": {"p": 7, "width": 8, "steps": 2}, "rfm": {"p": 7, "iterations": 2},
             "analytic": {"p": 7}}.get(target, {})
    return lambda folder: gk.sweep.run(target, grid, folder / "sweep",
                                       **{**small, **options}, progress=False)


def sweep_command(*argv: str) -> Callable[[Path], object]:
    """``gk sweep ARGV --out FOLDER/sweep``."""
    return lambda folder: command("sweep", *argv, "--out", str(folder / "sweep"),
                                  out=False)(folder)


def truncated_file() -> bytes:
    """A trajectory file cut short, as a copy interrupted half-way leaves it."""
    return run_file()[:4000]


@functools.cache
def foreign_file() -> bytes:
    """A valid netCDF file that gk did not write."""
    import netCDF4

    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "other.nc"
        with netCDF4.Dataset(path, "w") as nc:
            nc.createDimension("time", 3)
            nc.createVariable("temperature", "f8", ("time",))[:] = [1.0, 2.0, 3.0]
        return path.read_bytes()


def text(content: str) -> Callable[[], bytes]:
    return lambda: content.encode()


NOT_NETCDF = text("not a netCDF file\n")


def open_run(name: str) -> Callable[[Path], object]:
    return lambda folder: gk.io.open_run(folder / name)


T, R = "gk.mlp.train", "gk.rfm.run"
V, TE = ValueError, TypeError
S = "gk.sweep.run"
TF = "gk.transformer.train"
RN = "gk.rnn.train"

CASES: list[Case] = [
    # gk.mlp.train
    Case(T, "op='div', p=12", train(op="div", p=12), V, ("op='div'", "p=12", "a prime p")),
    Case(T, "p=1", train(p=1), V, ("p", "1", "≥ 2")),
    Case(T, "p=7.0", train(p=7.0), TE, ("p", "7.0", "an integer ≥ 2")),
    Case(T, "op='pow'", train(op="pow"), V, ("op", "'pow'", "allowed: add, sub, mul, div")),
    Case(T, "task='quads'", train(task="quads"), V, ("task", "'quads'", "pairs, triples")),
    Case(T, "width=0", train(width=0), V, ("width", "0", "≥ 1")),
    Case(T, "width=2.5", train(width=2.5), TE, ("width", "2.5", "an integer ≥ 1")),
    Case(T, "steps=-1", train(steps=-1), V, ("steps", "-1", "≥ 0")),
    Case(T, "train_fraction=0", train(train_fraction=0), V,
         ("train_fraction", "0", "(0, 1]")),
    Case(T, "train_fraction=1.5", train(train_fraction=1.5), V,
         ("train_fraction", "1.5", "(0, 1]")),
    Case(T, "train_fraction=1.0, p=5", train(train_fraction=1.0, p=5), V,
         ("train_fraction", "1.0", "at most 24/25")),
    Case(T, "optimizer='sgd'", train(optimizer="sgd"), V,
         ("optimizer", "'sgd'", "gd, momentum, adamw, normalised_gd")),
    Case(T, "lr=-0.1", train(lr=-0.1), V, ("lr", "-0.1", "finite and > 0")),
    Case(T, "weight_decay=nan", train(weight_decay=math.nan), V,
         ("weight_decay", "nan", "finite and ≥ 0")),
    Case(T, "momentum=1.0", train(optimizer="momentum", momentum=1.0), V,
         ("momentum", "1.0", "[0, 1)")),
    Case(T, "dtype='float16'", train(dtype="float16"), V,
         ("dtype", "'float16'", "'float64', 'float32'")),
    Case(T, "activation='sigmoid'", train(activation="sigmoid"), V,
         ("activation", "'sigmoid'", "quadratic, relu, gelu, tanh, identity")),
    Case(T, "parametrisation='ntk'", train(parametrisation="ntk"), V,
         ("parametrisation", "'ntk'", "mean_field, standard")),
    Case(T, "loss='hinge'", train(loss="hinge"), V, ("loss", "'hinge'", "mse, cross_entropy")),
    Case(T, "batch_size=0", train(batch_size=0), V, ("batch_size", "0", "≥ 1")),
    Case(T, "log_every=0", train(log_every=0), V, ("log_every", "0", "≥ 1")),
    Case(T, "measure_every=15, log_every=10", train(measure_every=15, log_every=10), V,
         ("measure_every", "15", "a multiple of log_every")),
    Case(T, "measures=['foo']", train(measures=["foo"]), V,
         ("measures", "'foo'", "available: ipr, nfm_correlation")),
    Case(T, "measures=['restricted_loss'], op='div'",
         train(measures=["restricted_loss"], op="div"), V,
         ("measures", "'restricted_loss'", "defined on all p² pairs")),
    Case(T, "key_frequencies=9", train(key_frequencies=9), V,
         ("key_frequencies", "9", "1..3")),
    Case(T, "ntk_probe=100, p=5", train(p=5, ntk_probe=100, measures=["ntk_distance"]), V,
         ("ntk_probe", "100", "1..25")),
    Case(T, "widht=16", train(widht=16), TE,
         ("widht=16", "unknown option", "allowed: task, op, p, width")),
    Case(T, "seed=[0, 1], lr=[0.1, 0.2, 0.3]", train(seed=[0, 1], lr=[0.1, 0.2, 0.3]), V,
         ("seed", "[0, 1]", "lr", "[0.1, 0.2, 0.3]", "must have one length")),
    Case(T, "seed=[]", train(seed=[]), V, ("seed", "[]", "at least one entry")),
    Case(T, "config=RFMConfig()", lambda folder: gk.mlp.train(gk.rfm.RFMConfig(),
                                                               out=folder / "run.nc"),
         TE, ("config=RFMConfig", "a TrainConfig or None")),
    # gk.rfm.run and the estimator
    Case(R, "kernel='poly'", rfm(kernel="poly"), V,
         ("kernel", "'poly'", "quadratic, gaussian, laplace")),
    Case(R, "iterations=0", rfm(iterations=0), V, ("iterations", "0", "≥ 1")),
    Case(R, "ridge=-1.0", rfm(ridge=-1.0), V, ("ridge", "-1.0", "finite and ≥ 0")),
    Case(R, "power=0", rfm(power=0), V, ("power", "0", "finite and > 0")),
    Case(R, "power='half'", rfm(power="half"), TE, ("power", "'half'", "finite number > 0")),
    Case(R, "kernel='gaussian', bandwidth=-1.0", rfm(kernel="gaussian", bandwidth=-1.0), V,
         ("bandwidth", "-1.0", "finite and > 0")),
    Case(R, "bandwidth=2.0", rfm(bandwidth=2.0), V, ("bandwidth", "2.0", "leave it None")),
    Case(R, "centering='yes'", rfm(centering="yes"), TE, ("centering", "'yes'", "True or False")),
    Case(R, "solver='lu'", rfm(solver="lu"), V, ("solver", "'lu'", "'auto', 'cholesky', 'cg'")),
    Case(R, "cg_tolerance=0.0", rfm(cg_tolerance=0.0), V, ("cg_tolerance", "0.0", "> 0")),
    Case(R, "cg_max_iterations=0", rfm(cg_max_iterations=0), V,
         ("cg_max_iterations", "0", "≥ 1")),
    Case(R, "memory_gb=-1.0", rfm(memory_gb=-1.0), V, ("memory_gb", "-1.0", "> 0")),
    Case(R, "measures=['ntk_distance']", rfm(measures=["ntk_distance"]), V,
         ("measures", "'ntk_distance'", "available: circulant_deviation")),
    Case(R, "train_fraction=[0.5, 2.0]", rfm(train_fraction=[0.5, 2.0]), V,
         ("train_fraction", "2.0", "(0, 1]")),
    Case(R, "kernal='gaussian'", rfm(kernal="gaussian"), TE,
         ("kernal='gaussian'", "unknown option", "allowed: op, p, train_fraction, kernel")),
    Case("gk.rfm.RFM.fit", "kernel='rbf'",
         lambda folder: gk.rfm.RFM(kernel="rbf").fit(np.eye(3), np.eye(3)), V,
         ("kernel", "'rbf'", "quadratic, gaussian, laplace")),
    # gk.analytic
    Case("gk.analytic.width_curve", "op='x2+xy+y2'",
         lambda folder: gk.analytic.width_curve("x2+xy+y2", 11, [4]), V,
         ("op", "'x2+xy+y2'", "solvable: add, sub, x2+y2, (x+y)2, mul, div")),
    Case("gk.analytic.width_curve", "op='mul', p=12",
         lambda folder: gk.analytic.width_curve("mul", 12, [4]), V,
         ("op='mul'", "p=12", "a prime p")),
    Case("gk.analytic.width_curve", "widths=[8, 0]",
         lambda folder: gk.analytic.width_curve("add", 11, [8, 0]), V, ("width", "0", "≥ 1")),
    Case("gk.analytic.width_curve", "widths=[]",
         lambda folder: gk.analytic.width_curve("add", 11, []), V,
         ("widths", "[]", "non-empty")),
    Case("gk.analytic.width_curve", "activations=['relu', 'sigmoid']",
         lambda folder: gk.analytic.width_curve("add", 11, [4], ["relu", "sigmoid"]), V,
         ("activation", "'sigmoid'", "quadratic, relu, gelu, tanh, identity")),
    Case("gk.analytic.width_curve", "seeds=[0, -1]",
         lambda folder: gk.analytic.width_curve("add", 11, [4], ["relu"], [0, -1]), V,
         ("seed", "-1", "≥ 0")),
    Case("gk.analytic.width_curve", "branches='some'",
         lambda folder: gk.analytic.width_curve("add", 11, [4], branches="some"), V,
         ("branches", "'some'", "'one', 'all'")),
    Case("gk.analytic.width_curve", "phases=2",
         lambda folder: gk.analytic.width_curve("add", 11, [4], phases=2), TE,
         ("phases=2", "unknown option", "allowed: f1, f2, F, branches, complex, dtype")),
    Case("gk.analytic.weights", "p=2", lambda folder: gk.analytic.weights("add", 2, 4), V,
         ("p", "2", "≥ 3")),
    Case("gk.analytic.weights", "op='mul', p=3",
         lambda folder: gk.analytic.weights("mul", 3, 4), V, ("op='mul'", "p=3", "≥ 5")),
    Case("gk.analytic.weights", "complex=True, activation='relu'",
         lambda folder: gk.analytic.weights("add", 11, 4, activation="relu", complex=True), V,
         ("complex=True", "activation='relu'", "activation='quadratic'")),
    Case("gk.analytic.weights", "dtype='float16'",
         lambda folder: gk.analytic.weights("add", 11, 4, dtype="float16"), V,
         ("dtype", "'float16'", "'float64', 'float32'")),
    # gk.ntk
    Case("gk.ntk.gram", "kind='diag'",
         lambda folder: gk.ntk.gram(gk.mlp.init(7, 8), gk.tasks.modular("add", 7).operands(),
                                    kind="diag"), V,
         ("kind", "'diag'", "trace, full, block")),
    Case("gk.ntk.gram", "kind='block', outputs=(9, 0)",
         lambda folder: gk.ntk.gram(gk.mlp.init(7, 8), gk.tasks.modular("add", 7).operands(),
                                    kind="block", outputs=(9, 0)), V,
         ("outputs", "(9, 0)", "0..6")),
    Case("gk.ntk.gram", "params of 2 models",
         lambda folder: gk.ntk.gram(gk.mlp.init(7, 8, seed=[0, 1]),
                                    gk.tasks.modular("add", 7).operands()), V,
         ("params", "2 models", "one model")),
    Case("gk.ntk.regression", "ridge=-1.0",
         lambda folder: gk.ntk.regression(gk.mlp.init(7, 8), gk.tasks.modular("add", 7),
                                          gk.tasks.modular("add", 7).split(0.5), ridge=-1.0),
         V, ("ridge", "-1.0", "≥ 0")),
    Case("gk.ntk.gram_of_run", "inputs='val'",
         lambda folder: gk.ntk.gram_of_run(network_run(), inputs="val"), V,
         ("inputs", "'val'", "train, test, all")),
    Case("gk.ntk.gram_of_run", "model=3",
         lambda folder: gk.ntk.gram_of_run(network_run(), model=3), V,
         ("model", "3", "0..0")),
    Case("gk.ntk.gram_of_run", "limit=0",
         lambda folder: gk.ntk.gram_of_run(network_run(), limit=0), V, ("limit", "0", "≥ 1")),
    # gk.tasks
    Case("gk.tasks.modular", "p=1", lambda folder: gk.tasks.modular("add", 1), V,
         ("p", "1", "≥ 2")),
    Case("gk.tasks.modular", "op='pow'", lambda folder: gk.tasks.modular("pow", 7), V,
         ("op", "'pow'", "add, sub, mul, div, x2+y2")),
    Case("gk.tasks.modular", "op='div', p=12", lambda folder: gk.tasks.modular("div", 12), V,
         ("op='div'", "p=12", "a prime p")),
    Case("gk.tasks.modular", "p=7.0", lambda folder: gk.tasks.modular("add", 7.0), TE,
         ("p", "7.0", "an integer ≥ 2")),
    Case("gk.tasks.triples", "p=1", lambda folder: gk.tasks.triples(1), V, ("p", "1", "≥ 2")),
    Case("gk.tasks.random_split", "seed=-1",
         lambda folder: gk.tasks.random_split(gk.tasks.modular("add", 7), 0.5, seed=-1), V,
         ("seed", "-1", "≥ 0")),
    Case("gk.tasks.discrete_log", "p=12", lambda folder: gk.tasks.discrete_log(12), V,
         ("p", "12", "a prime p")),
    # gk.fourier and gk.measures
    Case("gk.fourier.key_frequencies", "count=5",
         lambda folder: gk.fourier.key_frequencies(logits(), 7, count=5), V,
         ("count", "5", "1..3")),
    Case("gk.fourier.key_frequencies", "fraction=1.5",
         lambda folder: gk.fourier.key_frequencies(logits(), 7, fraction=1.5), V,
         ("fraction", "1.5", "(0, 1]")),
    Case("gk.fourier.dft_matrix", "kind='imag'", lambda folder: gk.fourier.dft_matrix(7, "imag"),
         V, ("kind", "'imag'", "'complex', 'real'")),
    Case("gk.fourier.ipr", "p=7 for W1 of 10 columns",
         lambda folder: gk.fourier.ipr(np.ones((4, 10)), 7), V,
         ("W1", "(4, 10)", "k·p columns, p=7 per operand")),
    Case("gk.measures.restricted_loss", "frequencies=[5]",
         lambda folder: gk.measures.restricted_loss(logits(), gk.tasks.modular("add", 7).c,
                                                    7, [5], "mse"), V,
         ("frequencies", "[5]", "distinct integers in 1..3")),
    Case("gk.measures.excluded_loss", "loss='hinge'",
         lambda folder: gk.measures.excluded_loss(logits(), gk.tasks.modular("add", 7).c,
                                                  7, [1], "hinge"), V,
         ("loss", "'hinge'", "mse, cross_entropy")),
    Case("gk.measures.grokking_phases", "level=1.5",
         lambda folder: gk.measures.grokking_phases([0, 1, 2], [1, 1, 1], [1, 1, 1], level=1.5),
         V, ("level", "1.5", "(0, 1)")),
    Case("gk.measures.grokking_phases", "drop=0.5",
         lambda folder: gk.measures.grokking_phases([0, 1, 2], [1, 1, 1], [1, 1, 1], drop=0.5),
         V, ("drop", "0.5", "(0, 1/2)")),
    # gk.plot
    Case("gk.plot.trajectory", "panels=['loss', 'lr']",
         lambda folder: gk.plot.trajectory(network_run(), panels=["loss", "lr"],
                                           path=folder / "run.png"), V,
         ("panels", "'lr'", "loss, accuracy, norms")),
    Case("gk.plot.progress", "model=3",
         lambda folder: gk.plot.progress(network_run(), model=3, path=folder / "run.png"), V,
         ("model", "3", "0..0")),
    Case("gk.plot.features", "snapshots=[7]",
         lambda folder: gk.plot.features(rfm_run(), snapshots=[7], path=folder / "run.png"), V,
         ("snapshots=[7]", "stored [0, 1]")),
    Case("gk.plot.features", "variable='W1'",
         lambda folder: gk.plot.features(rfm_run(), variable="W1", path=folder / "run.png"), V,
         ("variable", "'W1'", "allowed: M")),
    # the command line
    Case("gk train", "--width 0", command("train", "--width", "0"), CommandError,
         ("width=0", "≥ 1")),
    Case("gk train", "--width abc", command("train", "--width", "abc"), CommandError,
         ("--width", "'abc'", "int")),
    Case("gk train", "--optimizer sgd", command("train", "--optimizer", "sgd"), CommandError,
         ("optimizer='sgd'", "gd, momentum, adamw")),
    Case("gk train", "--seed 0 1 --lr 0.1 0.2 0.3",
         command("train", "--seed", "0", "1", "--lr", "0.1", "0.2", "0.3"), CommandError,
         ("seed=[0, 1]", "lr=[0.1, 0.2, 0.3]", "one length")),
    Case("gk rfm", "--kernel poly", command("rfm", "--kernel", "poly"), CommandError,
         ("kernel='poly'", "quadratic, gaussian, laplace")),
    Case("gk rfm", "--iterations 0", command("rfm", "--iterations", "0"), CommandError,
         ("iterations=0", "≥ 1")),
    Case("gk analytic", "--op x2+xy+y2", command("analytic", "--op", "x2+xy+y2"), CommandError,
         ("op='x2+xy+y2'", "solvable: add, sub")),
    Case("gk analytic", "--widths 8 0", command("analytic", "--widths", "8", "0"),
         CommandError, ("width=0", "≥ 1")),
    Case("gk ntk", "missing.nc", command("ntk", "missing.nc"), CommandError,
         ("path='missing.nc'", "does not exist")),
    Case("gk ntk", "missing.nc --limit 0", command("ntk", "missing.nc", "--limit", "0"),
         CommandError, ("limit=0", "≥ 1")),
    # checkpoints and resume
    Case(T, "momentum='a'", train(momentum="a"), TE, ("momentum", "'a'", "number ≥ 0")),
    Case(T, "betas=5", train(betas=5), V, ("betas", "5", "two numbers in [0, 1)")),
    Case(T, "checkpoint_seconds=-1", train(checkpoint_seconds=-1), V,
         ("checkpoint_seconds", "-1", "≥ 0")),
    Case(T, "resume=True (no out)",
         lambda folder: gk.mlp.train(p=7, width=8, steps=2, resume=True), V,
         ("resume=True", "needs out=")),
    Case(T, "resume=True, overwrite=True",
         lambda folder: gk.mlp.train(p=7, width=8, steps=2, resume=True, overwrite=True,
                                     out=folder / "run.nc"), V,
         ("resume=True and overwrite=True", "exclude each other")),
    Case(T, "resume=True, width=16 (file: 8)", train(width=16, resume=True), V,
         ("width: file has 8, asked 16", "different arguments"),
         inputs=(("run.nc", run_file),)),
    Case(T, "resume=True, a .partial that is not netCDF", train(resume=True), V,
         ("run.nc.partial", "not a netCDF file"),
         inputs=(("run.nc.partial", NOT_NETCDF),)),
    Case(T, "resume=True, an unreadable checkpoint", train(resume=True), V,
         ("run.nc.checkpoint.npz", "not readable", "start the run again"),
         inputs=(("run.nc.partial", run_file), ("run.nc.checkpoint.npz", NOT_NETCDF))),
    Case(R, "bandwidth='a'", rfm(kernel="gaussian", bandwidth="a"), TE,
         ("bandwidth", "'a'", "finite number > 0")),
    Case("gk train", "--resume --overwrite", command("train", "--resume", "--overwrite"),
         CommandError, ("resume=True and overwrite=True", "exclude each other")),
    # files that are not trajectories
    Case("gk.io.open_run", "a text file", open_run("run.nc"), V,
         ("path=", "run.nc", "not a netCDF file"), inputs=(("run.nc", NOT_NETCDF),)),
    Case("gk.io.open_run", "an empty file", open_run("run.nc"), V,
         ("path=", "run.nc", "not a netCDF file"), inputs=(("run.nc", text("")),)),
    Case("gk.io.open_run", "a truncated file", open_run("run.nc"), V,
         ("path=", "run.nc", "not a readable netCDF file", "damaged or cut short"),
         inputs=(("run.nc", truncated_file),)),
    Case("gk.io.open_run", "a netCDF file gk did not write", open_run("run.nc"), V,
         ("path=", "run.nc", "not one gk wrote"), inputs=(("run.nc", foreign_file),)),
    Case("gk.io.open_run", "a .partial that is not netCDF", open_run("run.nc"), V,
         ("path=", "run.nc.partial", "not a netCDF file"),
         inputs=(("run.nc.partial", NOT_NETCDF),)),
    # gk.sweep
    Case(S, "grid={}", sweep({}), V, ("grid={}", "empty", "at least one argument")),
    Case(S, "grid=[]", sweep([]), V, ("grid=[]", "empty", "at least one configuration")),
    Case(S, "grid={'sed': [0, 1]}", sweep({"sed": [0, 1]}), V,
         ("'sed'", "not taken by target 'train'", "allowed:", "seed", "train_fraction")),
    Case(S, "grid={'seed': 3}", sweep({"seed": 3}), TE, ("grid['seed']=3", "list of values")),
    Case(S, "grid={'seed': []}", sweep({"seed": []}), V, ("grid['seed']=[]", "at least one")),
    Case(S, "grid={'lr': [0.1, -1]}", sweep({"lr": [0.1, -1]}), V,
         ("sweep point 1", "lr=-1", "finite and > 0")),
    Case(S, "grid={'optimizer': ['gd', 'sgd']}", sweep({"optimizer": ["gd", "sgd"]}), V,
         ("sweep point 1", "'sgd'", "adamw")),
    Case(S, "the same point twice", sweep([{"seed": 1}, {"seed": 1, "lr": None}]), V,
         ("sweep points 0 and 1", "the same run", "each configuration once")),
    Case(S, "fixed seed=[0, 1]", sweep({"lr": [0.1]}, seed=[0, 1]), V,
         ("seed=[0, 1]", "one model", "in the grid")),
    Case(S, "seed both swept and fixed", sweep({"seed": [0, 1]}, seed=2), V,
         ("'seed'", "both swept and fixed", "one place")),
    Case(S, "op=<function>", sweep({"seed": [0]}, op=lambda a, b: a + b), TE,
         ("op=<function", "not allowed in a sweep", "numbers, strings")),
    Case(S, "target='sgd'", sweep({"seed": [0]}, target="sgd"), V,
         ("target='sgd'", "not a sweep target", "train, rfm, analytic")),
    Case(S, "max_models=0", sweep({"seed": [0]}, max_models=0), V,
         ("max_models=0", "≥ 1")),
    Case(S, "batch=('optimizer',)", sweep({"seed": [0]}, batch=("optimizer",)), V,
         ("batch=('optimizer',)", "'optimizer'", "allowed: seed, train_fraction")),
    Case(S, "workers=0", sweep({"seed": [0]}, workers=0), V, ("workers=0", "≥ 1")),
    Case(S, "workers=2 with a scheduler", sweep({"seed": [0]}, workers=2,
                                                 scheduler="tcp://127.0.0.1:9"), V,
         ("workers=2", "scheduler='tcp://127.0.0.1:9'", "exclude each other")),
    Case(S, "timeout=0", sweep({"seed": [0]}, scheduler="tcp://127.0.0.1:9", timeout=0), V,
         ("timeout=0", "> 0")),
    Case(S, "out in a missing folder", lambda folder: gk.sweep.run(
        "train", {"seed": [0]}, folder / "no" / "sweep", p=7, progress=False), V,
         ("out=", "does not exist")),
    Case(S, "out is a file", lambda folder: gk.sweep.run(
        "train", {"seed": [0]}, folder / "run.nc", p=7, progress=False), V,
         ("out=", "run.nc", "is a file", "writes a folder"), inputs=(("run.nc", NOT_NETCDF),)),
    Case(S, "rfm grid={'kernel': ['cubic']}", sweep({"kernel": ["cubic"]}, "rfm"), V,
         ("sweep point 0", "'cubic'", "quadratic")),
    Case(S, "analytic grid={'activation': ['relux']}",
         sweep({"activation": ["relux"]}, "analytic"), V,
         ("sweep point 0", "'relux'", "quadratic")),
    Case(S, "analytic grid={'widths': [8]}", sweep({"widths": [8]}, "analytic"), V,
         ("'widths'", "not taken by target 'analytic'", "width, activation, seed")),
    Case("gk.sweep.open", "a folder without a sweep", lambda folder: gk.sweep.open(folder),
         FileNotFoundError, ("holds no sweep", "sweep.json")),
    Case("gk sweep", "--grid seed", sweep_command("train", "--grid", "seed"), CommandError,
         ("--grid 'seed'", "NAME=VALUE")),
    Case("gk sweep", "--grid sed=0,1", sweep_command("train", "--grid", "sed=0,1"),
         CommandError, ("'sed'", "not taken by target 'train'", "allowed:")),
    Case("gk sweep", "no target", sweep_command("--grid", "seed=0,1"), CommandError,
         ("no target given", "--config")),
    Case("gk sweep", "--set lr=-1", sweep_command("train", "--grid", "seed=0..1", "--set",
                                                  "lr=-1"), CommandError,
         ("lr=-1", "finite and > 0")),
    Case("gk sweep", "--config (not TOML)", sweep_command("--config", "grid.toml"),
         CommandError, ("--config grid.toml", "not valid TOML"),
         inputs=(("grid.toml", text("grid = [[")),)),
    Case("gk sweep", "--config with an unknown key", sweep_command("--config", "grid.toml"),
         CommandError, ("--config grid.toml", "unknown key(s) seeds", "allowed: target"),
         inputs=(("grid.toml", text("target = 'train'\nseeds = [1]\n")),)),
    # gk.transformer.train
    Case(TF, "d_model=10, n_heads=4", transformer(d_model=10, n_heads=4), V,
         ("d_model=10", "n_heads=4", "divisible", "one of [1, 2, 5, 10]")),
    Case(TF, "n_heads=0", transformer(n_heads=0), V, ("n_heads", "0", "≥ 1")),
    Case(TF, "d_mlp=0", transformer(d_mlp=0), V, ("d_mlp", "0", "≥ 1")),
    Case(TF, "d_model=-8", transformer(d_model=-8), V, ("d_model", "-8", "≥ 1")),
    Case(TF, "layers=0", transformer(layers=0), V, ("layers", "0", "≥ 1")),
    Case(TF, "sequence='a + b ='", transformer(sequence="a + b ="), V,
         ("sequence='a + b ='", "'a b ='", "'a op b ='")),
    Case(TF, "loss='cross_entropy', dtype='float16'", transformer(dtype="float16"), V,
         ("loss='cross_entropy'", "dtype='float16'", "float32 or float64")),
    Case(TF, "attention='sparse'", transformer(attention="sparse"), V,
         ("attention='sparse'", "'softmax', 'linear'")),
    Case(TF, "measures=['nfm_correlation']", transformer(measures=["nfm_correlation"]), V,
         ("nfm_correlation", "the transformer has no", "restricted_loss")),
    Case("gk transformer", "--d-model 10 --n-heads 4",
         command("transformer", "--d-model", "10", "--n-heads", "4", "--steps", "2"),
         CommandError, ("d_model=10", "n_heads=4", "divisible")),
    # Grokfast's gradient filters and table tasks (issue 12)
    Case(T, "grad_filter='lowpass'", train(grad_filter="lowpass"), V,
         ("grad_filter", "'lowpass'", "None, 'ema', 'ma'")),
    Case(T, "filter_alpha=1.0", train(grad_filter="ema", filter_alpha=1.0), V,
         ("filter_alpha", "1.0", "(0, 1)")),
    Case(T, "filter_alpha=0", train(grad_filter="ema", filter_alpha=0), V,
         ("filter_alpha", "0", "(0, 1)")),
    Case(T, "filter_lambda=-1", train(grad_filter="ema", filter_lambda=-1), V,
         ("filter_lambda", "-1", "≥ 0")),
    Case(T, "filter_window=0", train(grad_filter="ma", filter_window=0), V,
         ("filter_window", "0", "≥ 1")),
    Case(TF, "filter_lambda=-0.5", transformer(grad_filter="ema", filter_lambda=-0.5), V,
         ("filter_lambda", "-0.5", "≥ 0")),
    Case(RN, "filter_window=0", rnn(grad_filter="ma", filter_window=0), V,
         ("filter_window", "0", "≥ 1")),
    Case("gk train", "--grad-filter ema --filter-alpha 1.5",
         command("train", "--grad-filter", "ema", "--filter-alpha", "1.5", "--p", "7",
                 "--steps", "2"), CommandError, ("filter_alpha", "1.5", "(0, 1)")),
    Case("gk.tasks.table", "T of shape (2, 3)",
         lambda folder: gk.tasks.table(np.zeros((2, 3), dtype=int)), V,
         ("T", "(2, 3)", "square")),
    Case("gk.tasks.table", "T=[[0, 1], [1, 2]]",
         lambda folder: gk.tasks.table(np.array([[0, 1], [1, 2]])), V,
         ("T[1, 1] = 2", "outside", "[0, 2)")),
    Case("gk.tasks.table", "T of floats",
         lambda folder: gk.tasks.table(np.eye(2)), V, ("T", "float64", "integers")),
    Case("gk.tasks.table", "mask all False",
         lambda folder: gk.tasks.table(np.zeros((2, 2), dtype=int),
                                       mask=np.zeros((2, 2), dtype=bool)), V,
         ("mask", "0 of the 4 pairs", "at least two")),
    Case(T, "op='S6:xy'", train(op="S6:xy"), V, ("n=6", "too large", "up to n = 5")),
    Case(T, "op='S5:yx'", train(op="S5:yx"), V, ("op='yx'", "'xy', 'xyx^-1', 'xyx'")),
    Case(T, "op='D5:xy', measures=['nfm_circulant_deviation']",
         train(op="D5:xy", measures=["nfm_circulant_deviation"]), V,
         ("nfm_circulant_deviation", "'D5:xy'", "do not apply", "Z_p")),
    Case(R, "op='S3:xy', measures=['ipr']",
         lambda folder: gk.rfm.run(op="S3:xy", iterations=2, measures=["ipr"],
                                   out=folder / "run.nc"), V,
         ("ipr", "'S3:xy'", "do not apply", "Z_p")),
    # gk.rnn.train and streaming parity
    Case(RN, "max_len=0", rnn(max_len=0), V, ("max_len", "0", "≥ 1")),
    Case(RN, "hidden=0", rnn(hidden=0), V, ("hidden", "0", "≥ 1")),
    Case(RN, "merge_fraction=0", rnn(merge_fraction=0), V,
         ("merge_fraction", "0", "> 0")),
    Case(RN, "merge_fraction=-0.01", rnn(merge_fraction=-0.01), V,
         ("merge_fraction", "-0.01", "> 0")),
    Case(RN, "gain=[0.1, 0]", rnn(gain=[0.1, 0], seed=[0, 1]), V, ("gain", "0", "> 0")),
    Case(RN, "test_lengths=(20, 11)", rnn(test_lengths=(20, 11)), V,
         ("test_lengths[1]", "11", "≥ 20")),
    Case(RN, "probe_pairs=500, max_len=6", rnn(probe_pairs=500, max_len=6), V,
         ("probe_pairs=500", "max_len=6", "there are 91 pairs")),
    Case(RN, "activation='sigmoid'", rnn(activation="sigmoid"), V,
         ("activation='sigmoid'", "'relu', 'tanh'")),
    Case("gk.automaton.merge_states", "threshold=0",
         lambda folder: gk.automaton.merge_states(np.zeros((3, 2)), 0), V,
         ("threshold", "0", "> 0")),
    Case("gk.automaton.merge_threshold", "fraction=-1",
         lambda folder: gk.automaton.merge_threshold(np.ones((3, 2)), -1), V,
         ("fraction", "-1", "> 0")),
    Case("gk.tasks.check_bits", "bits=[0, 2, 1]",
         lambda folder: gk.tasks.check_bits(np.array([0, 2, 1])), V,
         ("bits", "[0, 1, 2]", "binary", "0 or 1")),
    Case("gk rnn", "--hidden 0", command("rnn", "--hidden", "0", "--max-len", "3"),
         CommandError, ("hidden", "0", "≥ 1")),
    Case("gk.measures.grokking_time", "threshold=1.5",
         lambda folder: gk.measures.grokking_time(network_run(), threshold=1.5), V,
         ("threshold=1.5", "(0, 1]")),
    Case("gk plot", "a text file", command("plot", "run.nc", out=False), CommandError,
         ("path=", "run.nc", "not a netCDF file"), inputs=(("run.nc", NOT_NETCDF),)),
    Case("gk plot", "a netCDF file gk did not write", command("plot", "run.nc", out=False),
         CommandError, ("path=", "run.nc", "not one gk wrote"),
         inputs=(("run.nc", foreign_file),)),
]


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder`` (``.partial`` files included), relative to it."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def run_case(case: Case, folder: Path) -> BaseException:
    """Make the case's call in ``folder`` (also the working directory) and return the error it
    raised; fail if it raised none or another type."""
    for name, content in case.inputs:
        (folder / name).write_bytes(content())
    previous = Path.cwd()
    os.chdir(folder)
    try:
        case.call(folder)
    except case.error as error:
        return error
    finally:
        os.chdir(previous)
        import matplotlib.pyplot as plt

        plt.close("all")
    raise AssertionError(f"{case.id}: no error raised")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_before_any_file(tmp_path, case):
    error = run_case(case, tmp_path)
    message = str(error)
    missing = [fragment for fragment in case.fragments if fragment not in message]
    assert not missing, f"{case.id}: {message!r} lacks {missing}"
    if isinstance(error, CommandError):
        assert error.status == 2
        assert message.startswith(f"{case.entry}: error: ")
    assert files_in(tmp_path) == sorted(name for name, _ in case.inputs), (
        f"{case.id} left files behind")
    for name, content in case.inputs:
        assert (tmp_path / name).read_bytes() == content(), f"{case.id} changed {name}"


def test_there_are_enough_cases_and_entry_points():
    entries = {case.entry for case in CASES}
    assert len(CASES) >= 40
    assert {T, R, "gk train", "gk rfm", "gk analytic", "gk.analytic.width_curve", "gk.ntk.gram",
            "gk.tasks.modular", "gk.plot.trajectory", "gk.fourier.key_frequencies"} <= entries
    assert len({case.id for case in CASES}) == len(CASES)


KEEP = b"an existing file that a refused call must leave as it is\n"


@pytest.mark.parametrize("call", [
    lambda out: gk.mlp.train(p=7, width=0, steps=2, out=out, overwrite=True),
    lambda out: gk.mlp.train(p=7, optimizer="sgd", steps=2, out=out, overwrite=True),
    lambda out: gk.rfm.run(p=7, kernel="poly", out=out, overwrite=True),
    lambda out: gk.rfm.run(p=7, iterations=0, out=out, overwrite=True),
    lambda out: gk.cli.main(["train", "--width", "0", "--out", str(out), "--overwrite"]),
], ids=["train width=0", "train optimizer='sgd'", "rfm kernel='poly'", "rfm iterations=0",
        "gk train --width 0 --overwrite"])
def test_refused_call_with_overwrite_leaves_the_existing_file(tmp_path, call, capsys):
    out = tmp_path / "run.nc"
    out.write_bytes(KEEP)
    try:
        status = call(out)
    except (ValueError, TypeError):
        status = 2
    assert status == 2
    assert out.read_bytes() == KEEP, "the existing file was changed"
    assert files_in(tmp_path) == ["run.nc"]


# --- the table of docs/bad_input.rst -------------------------------------------------------


def _literal(text: str) -> str:
    return f"``{text}``"


def _message(case: Case) -> tuple[str, str]:
    """The error's type as the table names it and its message, run in a fresh folder."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name).resolve()
        error = run_case(case, folder)
        message = str(error).replace(str(folder), "<folder>").replace("\n  ", " | ")
    kind = f"exit status {error.status}" if isinstance(error, CommandError) else \
        type(error).__name__
    return kind, message


HEADER = """\
.. This file is generated from tests/test_bad_input.py: run ``{command}`` to rewrite it.

Bad input: what each entry point refuses
========================================

gk checks the arguments of every public entry point before any work starts and before any
file is created or replaced: each row below is a call with an invalid argument and the error
gk gives, whose message names the argument, repeats its value and says what is allowed. None
of these calls creates a file, and none truncates an existing one, even with
``overwrite=True``. The ``gk`` command prints the same messages as
``gk <command>: error: ...`` on standard error and exits with status 2. The table is
generated from the cases of ``tests/test_bad_input.py``, which also check every row.

.. list-table::
   :header-rows: 1
   :widths: 16 22 10 52

   * - Entry point
     - Invalid argument(s)
     - Error
     - Message
"""


def render_table() -> str:
    """The text of ``docs/bad_input.rst``: the intro and one table row per case."""
    rows = []
    for case in CASES:
        kind, message = _message(case)
        rows.append(f"   * - {_literal(case.entry)}\n"
                    f"     - {_literal(case.arguments)}\n"
                    f"     - {kind}\n"
                    f"     - {_literal(message)}\n")
    return HEADER.format(command=REGENERATE) + "".join(rows)


def test_docs_table_is_current():
    assert DOCS.exists(), f"{DOCS} is missing; run `{REGENERATE}` to write it"
    assert DOCS.read_text(encoding="utf-8") == render_table(), (
        f"{DOCS.name} is out of date with the cases; run `{REGENERATE}` to rewrite it")


if __name__ == "__main__":
    os.environ.setdefault("GK_BACKEND", "numpy")
    DOCS.write_text(render_table(), encoding="utf-8")
    print(f"wrote {DOCS}", file=sys.stderr)
