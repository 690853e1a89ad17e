"""How a run stops and goes on: checkpoints saved atomically beside its file, the check that
a resumed run is the same run, and clean stops on SIGTERM and Ctrl-C.

A run writing ``run.nc`` keeps its latest checkpoint in ``run.nc.checkpoint.npz``: every
array the run needs to continue (parameters, optimizer state, random generators, the
progress measures' memory) and, as JSON, the config, the step to continue from, and how many
rows of the trajectory file precede it. It is written to a temporary name, flushed to disk
and renamed over the old one, so a kill at any moment leaves either the old checkpoint or
the new one, never half of one. The trajectory file is synced before each checkpoint, so it
always holds every row the checkpoint says precede it. A run that finishes deletes its
checkpoint.

A resumed run redoes the steps after the checkpoint and overwrites their rows with the same
numbers, so on the CPU its file and dataset are bit-identical to those of a run that was
never stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gk import io
from gk.config import check_number

CHECKPOINT_SUFFIX = ".checkpoint.npz"

META = "__meta__"
"""Name of the JSON entry of a checkpoint file."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGTERM or SIGINT after closing its file cleanly.

    ``signal`` is the signal's number; the command line exits with 128 + it.
    """

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signal = signum


def checkpoint_path(out: str | os.PathLike) -> Path:
    """Where the run writing ``out`` keeps its checkpoint."""
    return Path(f"{out}{CHECKPOINT_SUFFIX}")


@dataclass
class Checkpoint:
    """A run's state at the start of ``time`` (a step or an RFM iteration).

    ``rows`` and ``snapshots`` count the logged rows and snapshots before ``time``;
    ``meta`` holds JSON-ready values (config, generator states), ``arrays`` the arrays.
    """

    time: int
    rows: int
    snapshots: int
    config: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def save(out: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` atomically: a temporary file, fsync, rename, fsync of the folder.

    Raises
    ------
    OSError
        If the disk is full or the folder is not writable; the previous checkpoint is kept.
    """
    target = checkpoint_path(out)
    temporary = target.with_name(f"{target.name}.tmp")
    meta = {"time": checkpoint.time, "rows": checkpoint.rows,
            "snapshots": checkpoint.snapshots, "config": checkpoint.config,
            **checkpoint.meta}
    io.check_room(temporary, sum(array.nbytes for array in checkpoint.arrays.values()),
                  "the previous checkpoint is kept")
    try:
        with open(temporary, "wb") as stream:
            np.savez(stream, **{META: np.array(json.dumps(meta))}, **checkpoint.arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise io.WriteError(error.errno, f"could not write the checkpoint {str(target)!r}: "
                            f"{error.strerror or error} (is the disk full or the folder not "
                            "writable?); the previous checkpoint is kept") from error
    _sync_folder(target.parent)
    return target


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def load(out: str | os.PathLike) -> Checkpoint | None:
    """The checkpoint of the run writing ``out``, or None if it has none.

    Raises
    ------
    ValueError
        If the checkpoint file exists but cannot be read.
    """
    path = checkpoint_path(out)
    if not path.exists():
        return None
    if not zipfile.is_zipfile(path):
        raise ValueError(f"checkpoint {str(path)!r} is not readable (it is not an .npz "
                         "archive); delete it to start the run again from step 0")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[META]))
            arrays = {name: data[name] for name in data.files if name != META}
    except Exception as error:  # zip, npy and JSON errors alike: a file we cannot trust
        raise ValueError(f"checkpoint {str(path)!r} is not readable ({error}); delete it to "
                         "start the run again from step 0") from error
    time_, rows, snapshots = meta.pop("time"), meta.pop("rows"), meta.pop("snapshots")
    return Checkpoint(time_, rows, snapshots, meta.pop("config"), arrays, meta)


def remove(out: str | os.PathLike) -> None:
    """Delete the checkpoint of ``out`` (when its run has ended)."""
    checkpoint_path(out).unlink(missing_ok=True)


def _canonical(value: Any) -> Any:
    """A per-model list whose entries are all equal means that one value (``[1.0]`` from
    the command line, ``1.0`` from Python)."""
    if isinstance(value, list) and value and all(v == value[0] for v in value):
        return value[0]
    return value


def config_differences(recorded: dict, requested: dict) -> list[str]:
    """Lines ``name: file has X, asked Y`` for every config field that differs."""
    recorded, requested = ({name: _canonical(value) for name, value in
                            json.loads(json.dumps(config)).items()}
                           for config in (recorded, requested))
    return [f"{name}: file has {recorded.get(name)!r}, asked {requested.get(name)!r}"
            for name in sorted(set(recorded) | set(requested))
            if recorded.get(name) != requested.get(name)]


def check_same_config(path: str | os.PathLike, recorded: dict, requested: dict) -> None:
    """Raise ValueError listing the differences if a resumed run's config is not the file's."""
    differences = config_differences(recorded, requested)
    if differences:
        raise ValueError(f"cannot resume {str(path)!r} with different arguments than it was "
                         "started with:\n  " + "\n  ".join(differences))


@dataclass
class Start:
    """How a run begins (:func:`prepare`): from ``checkpoint`` if there is one, with the
    ``finished`` run's dataset (read from its file) if it already ended, else from step 0,
    replacing what is at ``out`` if ``overwrite``."""

    checkpoint: Checkpoint | None = None
    finished: Any = None
    overwrite: bool = False


def prepare(out: str | os.PathLike | None, config: dict, overwrite: bool, resume: bool,
            seconds: dict[str, float]) -> Start:
    """Decide, before any work, how a run writing ``out`` with ``config`` starts.

    Parameters
    ----------
    out : path-like or None
        The trajectory file.
    config : dict
        The run's config as JSON-ready values (as the file records it).
    overwrite, resume : bool
        The run's flags: replace ``out``, or continue it.
    seconds : dict
        ``checkpoint_seconds`` and ``sync_seconds``, checked here.

    Raises
    ------
    ValueError
        For a flag that makes no sense, or a file recorded with another config (listing the
        differences).
    OutputExistsError
        If ``out`` exists and neither ``overwrite`` nor ``resume`` is given.
    """
    for name, value in seconds.items():
        check_number(name, value, allow_zero=True)
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True exclude each other: resume continues "
                         "the run in out, overwrite replaces it")
    if out is None:
        if resume:
            raise ValueError("resume=True needs out=, the file of the run to continue")
        return Start()
    path, partial = Path(out), io.partial_path(out)
    if not resume or not (path.exists() or partial.exists()):
        io.check_out(out, overwrite)
        remove(out)  # a stale one, of a run whose file is gone or about to be replaced
        return Start(overwrite=overwrite)
    if path.exists():
        finished = io.open_run(path)
        check_same_config(path, io.config(finished), config)
        return Start(finished=finished)
    checkpoint = load(out)
    recorded = checkpoint.config if checkpoint else io.config(io.open_run(partial))
    check_same_config(partial, recorded, config)
    return Start(checkpoint=checkpoint, overwrite=checkpoint is None)


class Control:
    """When a run writing ``out`` saves a checkpoint, and whether a signal asked it to stop.

    Used as a context manager around the run: inside, SIGTERM and SIGINT (Ctrl-C) set
    :attr:`stop_signal` instead of killing the process, so that the loop can sync its file,
    save a checkpoint and close cleanly; a second signal interrupts at once. Handlers are
    installed only in the main thread and only when there is a file to protect.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, out: str | os.PathLike | None, seconds: float):
        self.out, self.seconds = out, seconds
        self.stop_signal: int | None = None
        self._last = time.monotonic()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Control:
        if self.out is not None and threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._request_stop)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stop_signal is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping at once")
        self.stop_signal = signum

    def due(self) -> bool:
        """True when a checkpoint should be saved now: a stop was asked, or ``seconds``
        passed since the last one."""
        if self.out is None:
            return False
        return self.stop_signal is not None or time.monotonic() - self._last >= self.seconds

    def save(self, checkpoint: Checkpoint) -> None:
        """Save ``checkpoint`` beside the run's file (the file must be synced first)."""
        save(self.out, checkpoint)
        self._last = time.monotonic()

    def raise_if_stopped(self, time_dim: str, time_: int) -> None:
        """After the file is closed: raise :class:`RunInterrupted` if a signal stopped the
        run, saying where its rows are and how to go on."""
        if self.stop_signal is None:
            return
        name = signal.Signals(self.stop_signal).name
        raise RunInterrupted(f"stopped by {name} at {time_dim} {time_}; {self.out}.partial "
                             f"holds every {time_dim} before it; continue with resume=True "
                             "(--resume)", self.stop_signal)
