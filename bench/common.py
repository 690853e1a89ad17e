"""What every benchmark shares: run options, the network's sizes, device-synchronised timers,
alternating repeats, the record of gk against its peers, exponent fits, and a description of
the machine and of the software that ran."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import gk
import gk.backend

ROOT = Path(__file__).resolve().parents[1]
"""The repository's root: workers are started there, as ``python -m bench.…``."""

RESULTS = ROOT / "bench" / "results"
DTYPES = ("float64", "float32")
GiB = 1024**3


@dataclass
class Options:
    """How a run was asked for.

    Attributes
    ----------
    quick : bool
        Tiny sizes (seconds in all), for the tests.
    repeats : int
        Timings of each side; the median is kept.
    threads : int
        BLAS, numba and torch threads of this process (already fixed by the entry point).
    threads_given : bool
        ``--threads`` was given; otherwise benchmarks that also report one thread do so.
    peers : bool
        False with ``--no-peers``: gk and the machine's floors only.
    earlier : dict
        Results of the benchmarks that ran before in the same run, by name (``scaling``
        reuses the RFM iterations that ``rfm_iteration`` measured).
    """

    quick: bool = False
    repeats: int = 3
    threads: int = 1
    threads_given: bool = True
    peers: bool = True
    earlier: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    """Sizes of seed 001's network on addition mod p: N neurons, α of the p² pairs."""

    p: int
    width: int
    train_fraction: float = 0.5

    @property
    def n(self) -> int:
        """Training pairs, round(α p²), as :func:`gk.tasks.train_size` counts them."""
        return gk.tasks.train_size(gk.tasks.modular("add", self.p), self.train_fraction)

    @property
    def lr(self) -> float:
        """gk's default GD step, 0.2·N (the mean-field factor 2/N makes gradients O(1/N))."""
        return 0.2 * self.width

    def as_dict(self) -> dict[str, Any]:
        return {"p": self.p, "width": self.width, "train_fraction": self.train_fraction,
                "n": self.n, "lr": self.lr}


FULL_NETWORK = Network(97, 512)
QUICK_NETWORK = Network(11, 32)


def network(options: Options) -> Network:
    """The network of seed 001's Fig. 1, or a tiny one with ``--quick``."""
    return QUICK_NETWORK if options.quick else FULL_NETWORK


# ---------------------------------------------------------------- timers

def synchronize() -> None:
    """Wait for the GPU's queued work (CuPy backend), so that a timer read next covers it."""
    if gk.backend.backend_name() == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of ``call()``, the device synchronised before and after, and its result."""
    synchronize()
    start = time.perf_counter()
    result = call()
    synchronize()
    return time.perf_counter() - start, result


def alternate(calls: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run every call once per repeat, in turn (gk, its peers, the floor, gk, …), so that a
    change in the machine's load falls on all sides alike. Each call returns its own seconds.
    """
    runs: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            runs[name].append(call())
    return runs


def keeping(finals: dict[str, Any], name: str,
            call: Callable[[], tuple[float, Any]]) -> Callable[[], float]:
    """A call for :func:`alternate` that keeps what ``call`` returns besides its seconds
    (the final weights) in ``finals[name]``."""
    def timed_call() -> float:
        seconds, finals[name] = call()
        return seconds
    return timed_call


def median(runs: list[float]) -> float:
    return statistics.median(runs)


# ---------------------------------------------------------------- records

def comparison(case: str, unit: str, gk_runs: list[float],
               peers: dict[str, list[float] | str] | None = None,
               bare_runs: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    """One row of a benchmark: gk against each peer and against the machine's floor.

    Parameters
    ----------
    case : str
        What was timed, e.g. ``"float64, 2 threads, bare step"``.
    unit : str
        What one time is for, e.g. ``"s/step"``.
    gk_runs : list of float
        gk's times, one per repeat.
    peers : dict
        Each peer's times, or a string: the reason it was skipped.
    bare_runs : list of float, optional
        Times of the bare operations (matrix products, Cholesky) that bound gk's.
    **extra
        Further fields of the record; ``hardware_fraction`` here replaces bare_s / gk_s.

    Returns
    -------
    dict
        ``gk_s`` (median), ``peers`` (name → ``s``, ``ratio`` = peer s / gk s, or
        ``skipped``), ``bare_s`` and ``hardware_fraction`` = bare s / gk s (1 would be the
        machine's rate), with the runs behind every median.
    """
    gk_s = median(gk_runs)
    record: dict[str, Any] = {"case": case, "unit": unit, "gk_s": gk_s, "gk_runs": gk_runs,
                              "peers": {}}
    for name, runs in (peers or {}).items():
        if isinstance(runs, str):
            record["peers"][name] = {"s": None, "ratio": None, "skipped": runs}
        else:
            record["peers"][name] = {"s": median(runs), "ratio": median(runs) / gk_s,
                                     "runs": runs}
    bare_s = None if bare_runs is None else median(bare_runs)
    record.update(bare_s=bare_s, bare_runs=bare_runs,
                  hardware_fraction=None if bare_s is None else bare_s / gk_s)
    record.update(extra)
    return record


def fit_exponent(sizes: list[float], seconds: list[float | None],
                 smallest: float = 0) -> float | None:
    """The exponent k of t ≈ c·sizeᵏ: the least-squares slope of log t on log size, over the
    sizes ≥ ``smallest`` with a time; None where fewer than two distinct sizes remain."""
    points = [(np.log(size), np.log(t)) for size, t in zip(sizes, seconds, strict=True)
              if size >= smallest and t is not None and t > 0]
    if len({x for x, _ in points}) < 2:
        return None
    x, y = np.array(points).T
    return float(np.polyfit(x, y, 1)[0])


# ---------------------------------------------------------------- peers

def missing(package: str) -> str | None:
    """Why ``package`` cannot be a peer here (None if it is installed)."""
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed (pip install -e '.[bench]')"
    return None


def peer_skipped(options: Options, package: str = "torch") -> str | None:
    """The reason a peer written with ``package`` is skipped in this run, or None."""
    return "--no-peers" if not options.peers else missing(package)


# ---------------------------------------------------------------- the machine

def slug(text: str) -> str:
    """``text`` in lower case with every run of other characters than [a-z0-9] as one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_name(threads: int) -> str:
    """``cpu<threads>`` (e.g. ``cpu2``), or ``cuda-<device name>`` on the CuPy backend."""
    if gk.backend.backend_name() == "cupy":
        return "cuda-" + slug(gk.backend.device_name().split(" ", 1)[-1])
    return f"cpu{threads}"


def _proc_field(path: str, key: str) -> str | None:
    """The value of the first ``key: value`` line of a /proc file (None where absent)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def host() -> dict[str, Any]:
    """The machine: CPU model, cores, memory, device, load."""
    memory = _proc_field("/proc/meminfo", "MemTotal")
    return {"node": platform.node(), "platform": platform.platform(),
            "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
            "cpu_count": os.cpu_count(), "memory_gib": memory and int(memory.split()[0]) / 2**20,
            "device": gk.backend.device_name(), "backend": gk.backend.backend_name(),
            "loadavg": list(os.getloadavg())}


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def blas() -> dict[str, Any]:
    """NumPy's BLAS and LAPACK (``numpy.show_config``) and, where threadpoolctl is installed,
    the libraries loaded with their threads."""
    info: dict[str, Any] = {}
    try:
        dependencies = np.show_config(mode="dicts")["Build Dependencies"]
        for name in ("blas", "lapack"):
            info[name] = {key: dependencies[name].get(key) for key in ("name", "version")}
    except (TypeError, KeyError, AttributeError):   # NumPy < 1.25 prints only
        pass
    if importlib.util.find_spec("threadpoolctl") is not None:
        import threadpoolctl

        info["threadpools"] = [{key: pool.get(key) for key in
                                ("internal_api", "version", "num_threads", "filepath")}
                               for pool in threadpoolctl.threadpool_info()]
    return info


def versions() -> dict[str, Any]:
    """Versions of Python, gk and every package a benchmark may have used."""
    packages = {name: version(name) for name in ("numpy", "scipy", "numba", "torch", "cupy",
                                                 "cupy-cuda12x", "threadpoolctl")}
    return {"python": platform.python_version(), "gk": gk.__version__, **packages,
            "blas": blas()}
