"""Trajectory files: the schema every model writes, a streaming netCDF writer, and readers.

A run writes ``NAME.partial`` while it goes and renames it to ``NAME`` when it ends, so a
file without the suffix is always a finished run. The writer appends along an unlimited
``step`` dimension with netCDF4 (xarray cannot append to an existing dimension) and calls
``sync()`` at least every ``sync_seconds``, so a killed run leaves a valid file holding every
synced step; its ``last_synced_step`` attribute says which.

Layout of a network run (RFM runs use ``iteration`` in place of ``step``)::

    dims       model, step (unlimited), snapshot (unlimited), pair, and each array's own
    scalars    train_loss, test_loss, train_acc, test_acc, ...       (step, model)
    snapshots  W1 (snapshot, model, neuron, input), W2 (snapshot, model, output, neuron)
    split      is_train (model, pair), with coordinates a, b, c of each pair
    attrs      gk_version, backend, device, dtype, op, p, config (JSON), seeds (JSON),
               created, command_line, status, last_synced_step

A file that is still being written can be read by another process: gk sets
``HDF5_USE_FILE_LOCKING=FALSE`` (unless the environment says otherwise) before netCDF4 loads
HDF5, and :func:`open_run` reads everything up to the last sync.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # Windows has no file-size limits
    resource = None

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import netCDF4  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from gk import __version__, backend  # noqa: E402

PARTIAL_SUFFIX = ".partial"

LONG_NAMES: dict[str, str] = {
    "step": "optimizer steps taken",
    "snapshot": "optimizer steps taken at the snapshot",
    "model": "index of the model in the batch",
    "seed": "random seed of the model (initialisation, split, minibatches)",
    "train_fraction": "fraction of the pairs used for training, alpha",
    "lr": "learning rate",
    "weight_decay": "weight decay",
    "a": "first operand",
    "b": "second operand",
    "c": "answer op(a, b) mod p",
    "is_train": "1 if the pair is in the model's training set, 0 if in its test set",
    "train_loss": "mean loss on the training pairs",
    "test_loss": "mean loss on the test pairs",
    "train_acc": "accuracy on the training pairs",
    "test_acc": "accuracy on the test pairs",
    "w1_norm": "Frobenius norm of W1",
    "w2_norm": "Frobenius norm of W2",
    "weight_norm": "Euclidean norm of all of the model's weights",
    "grad_norm": "Euclidean norm of the loss gradient over all parameters",
    "ipr": "mean inverse participation ratio IPR_2 of the rows of W1 (RFM: of M_t; "
           "transformer: of the columns of W_E over the p operand tokens), seed 001 eq. 28",
    "diverged_at_step": "first logged step (RFM: iteration) at which the model's loss, "
                        "weight norms or gradient norm were not finite; -1 if never. The "
                        "model is not updated after it",
    "overflow_at_step": "first logged step (RFM: iteration) at which the model's loss or a "
                        "norm reached +-inf (overflow of the run's dtype); -1 if never",
    "W1": "first-layer weights",
    "W2": "read-out weights",
    "W_E": "token embedding, one row per token (transformer)",
    "W_pos": "position embedding, one row per position (transformer)",
    "W_U": "unembedding, residual stream to logits (transformer)",
    "ntk_distance": "relative Frobenius distance of the NTK on the probe set from step 0",
    "ntk_alignment": "alignment of the NTK on the probe set with the probe's targets",
    "iteration": "RFM iterations done before this one (M_0 = I at iteration 0)",
    "M": "feature matrix M_t used at the iteration",
    "circulant_deviation": "circulant deviation of the b-a block of M_t (seed 000)",
    "agop_alignment": "cosine similarity of the AGOP with the final one (RFM: of M_t with "
                      "the final M), seed 000",
    "agop_trace": "trace of the AGOP (RFM: G_t of the iteration's predictor)",
    "agop_circulant_deviation": "circulant deviation of the b-a block of the network's AGOP "
                                "on its training pairs (seed 000)",
    "nfm_correlation": "Pearson correlation of W1^T W1 and AGOP^(1/2) (seed 000)",
    "nfm_circulant_deviation": "circulant deviation of the b-a block of W1^T W1 (seed 000)",
    "nfm_alignment": "cosine similarity of W1^T W1 with the final one (seed 000)",
    "restricted_loss": "loss on all pairs keeping only the key frequencies' waves along a + b "
                       "and the constant (seed 003)",
    "excluded_loss": "loss on the training pairs with the key frequencies' waves along a + b "
                     "removed (seed 003)",
    "jitter": "relative jitter added to the kernel diagonal for the Cholesky factorisation",
    "solver_iterations": "block conjugate gradient steps of the kernel solve (0: Cholesky)",
    "solver_residual": "relative residual of the kernel solve, max over outputs c of "
                       "|(K + lambda I) alpha_c - y_c| / |y_c|",
}
"""``long_name`` of every variable gk writes; new measures add their names here."""

LAYER_LONG_NAMES = {
    "W_Q": "query weights, the heads side by side", "W_K": "key weights, the heads side by side",
    "W_V": "value weights, the heads side by side", "W_O": "attention output weights",
    "W_in": "MLP input weights", "b_in": "MLP input bias", "W_out": "MLP output weights",
    "b_out": "MLP output bias"}
"""``long_name`` of a transformer layer's weights, ``L{layer}_{name}``."""


def long_name(name: str) -> str:
    """The ``long_name`` of variable ``name`` (:data:`LONG_NAMES`, or a transformer layer's
    weight ``L0_W_Q``); the name itself if gk has none."""
    layer, _, weight = name.partition("_")
    if layer[:1] == "L" and layer[1:].isdigit() and weight in LAYER_LONG_NAMES:
        return f"layer {layer[1:]} {LAYER_LONG_NAMES[weight]} (transformer)"
    return LONG_NAMES.get(name, name)

UNITS = {name: "1" for name in (
    "train_acc", "test_acc", "train_fraction", "ipr", "agop_alignment", "circulant_deviation",
    "ntk_distance", "ntk_alignment", "nfm_correlation", "nfm_circulant_deviation",
    "nfm_alignment", "agop_circulant_deviation", "solver_residual")}


class OutputExistsError(FileExistsError, ValueError):
    """``out`` names a file that exists and ``overwrite`` was not given."""


def check_out(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check a path a run will write, before any work starts.

    Raises
    ------
    ValueError
        If the folder does not exist.
    OutputExistsError
        If the file (or an unfinished ``.partial`` of it) exists and ``overwrite`` is False.
    """
    path = Path(out)
    if not path.parent.is_dir():
        raise ValueError(f"out={str(out)!r}: folder {str(path.parent)!r} does not exist")
    for existing in (path, partial_path(path)):
        if existing.exists() and not overwrite:
            raise OutputExistsError(
                f"out={str(out)!r}: {str(existing)!r} exists; pass overwrite=True "
                "(--overwrite) to replace it")
    return path


def partial_path(path: str | os.PathLike) -> Path:
    """Where a run writes ``path`` until it finishes."""
    return Path(f"{path}{PARTIAL_SUFFIX}")


def write_dataset(ds: xr.Dataset, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a finished dataset atomically: to ``out.partial``, then renamed to ``out``, so
    ``out`` is never a half-written file."""
    path = check_out(out, overwrite)
    partial = partial_path(path)
    ds.to_netcdf(partial, engine="netcdf4")
    os.replace(partial, path)
    return path


def _attribute(value: Any) -> Any:
    """netCDF attributes cannot be bool, None or containers: store those as JSON text."""
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    ):
        return value
    return json.dumps(value)


def run_attributes(task_attrs: dict, dtype: Any, config: dict, seeds: Iterable[int]) -> dict:
    """The attributes every trajectory file carries (DESIGN.md, Trajectories): the task's
    own (``title``, ``op``, ``p``, ...; :attr:`Layout.attrs`), then gk's."""
    return {
        **task_attrs,
        "gk_version": __version__,
        "backend": backend.backend_name(),
        "device": backend.device_name(),
        "dtype": np.dtype(dtype).name,
        "config": json.dumps(config),
        "seeds": json.dumps([int(s) for s in seeds]),
        "created": _now(),
        "command_line": " ".join(sys.argv),
    }


RESERVE_BYTES = 4 * 2**20
"""Free space kept for closing a run's file cleanly, on top of twice the data in flight."""


def check_room(path: Path, incoming: int, consequence: str) -> None:
    """Raise :class:`WriteError` unless the disk and the process's file-size limit
    (``ulimit -f``) leave room to write ``incoming`` bytes to ``path`` twice over plus
    :data:`RESERVE_BYTES`; the message ends with ``consequence``."""
    room = shutil.disk_usage(path.parent).free
    if resource is not None:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            size = path.stat().st_size if path.exists() else 0
            room = min(room, limit - size)
    if room < 2 * incoming + RESERVE_BYTES:
        raise WriteError(errno.ENOSPC, f"no room left to write {str(path)!r} ({room} bytes "
                         f"free on the disk or under the file-size limit); {consequence}")


def _now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class WriteError(OSError):
    """A run's file could not be written (disk full, file-size limit, folder gone or
    read-only); the message says what the file still holds. ``errno`` is the cause's."""

    def __init__(self, code: int | None, message: str):
        super().__init__(message)
        self.errno = code


class TrajectoryWriter:
    """Stream a run into a netCDF file while it trains.

    Before anything is written the writer checks that the disk (and the process's file-size
    limit, ``ulimit -f``) leaves room for it plus a reserve that a clean close needs
    (:func:`check_room`); if not, it raises :class:`WriteError` without writing, so that the
    run can still close the file and keep every step it holds. HDF5 cannot be trusted to
    leave a valid file after a write fails half-way.

    Parameters
    ----------
    path : path-like
        The final name; the file is written as ``path.partial`` until :meth:`close`.
    time_dim : str
        ``"step"`` for networks, ``"iteration"`` for RFM.
    models : dict of str to array
        Per-model coordinates, e.g. ``{"seed": [0, 1], "lr": [0.1, 0.1]}``.
    dims : dict of str to int
        Sizes of the fixed dimensions the arrays use (``neuron``, ``input``, ``pair``, ...).
    attrs : dict
        Global attributes (:func:`run_attributes`).
    sync_seconds : float
        Longest time between two syncs to disk.
    """

    def __init__(self, path: str | os.PathLike, time_dim: str, models: dict[str, Any],
                 dims: dict[str, int], attrs: dict, overwrite: bool = False,
                 sync_seconds: float = 1.0):
        path = check_out(path, overwrite)  # an old run at ``path`` stays until close()
        partial = partial_path(path)
        self._start(path, netCDF4.Dataset(partial, "w", format="NETCDF4", clobber=True),
                    time_dim, len(next(iter(models.values()))), sync_seconds)
        self.nc.createDimension("model", self.n_models)
        self.nc.createDimension(time_dim, None)
        self.nc.createDimension("snapshot", None)
        for name, size in dims.items():
            self.nc.createDimension(name, size)
        self.write_static("model", np.arange(self.n_models), ("model",))
        for name, values in models.items():
            self.write_static(name, np.asarray(values), ("model",), coordinate=True)
        self._create(time_dim, np.int64, (time_dim,), chunks=(1024,))
        self._create("snapshot", np.int64, ("snapshot",), chunks=(64,))
        self.nc.setncatts({key: _attribute(value) for key, value in attrs.items()})
        self.nc.setncatts({"status": "running", "last_synced_step": -1})
        self.sync()

    def _start(self, path: Path, nc: netCDF4.Dataset, time_dim: str, n_models: int,
               sync_seconds: float, rows: int = 0, snapshots: int = 0) -> None:
        self.path, self.nc, self.time_dim = path, nc, time_dim
        self.n_models, self.sync_seconds = n_models, sync_seconds
        self._rows = {time_dim: rows, "snapshot": snapshots}
        self._last_sync = time.monotonic()
        self._last_time = int(nc[time_dim][rows - 1]) if rows else -1
        self._synced_time = self._last_time

    @classmethod
    def reopen(cls, path: str | os.PathLike, time_dim: str, rows: int, snapshots: int,
               sync_seconds: float = 1.0) -> TrajectoryWriter:
        """Continue writing ``path.partial`` after its first ``rows`` logged rows and
        ``snapshots`` snapshots; later rows in the file are overwritten as the run goes."""
        path = Path(path)
        partial = partial_path(path)
        try:
            nc = netCDF4.Dataset(partial, "a")
        except OSError as error:
            raise ValueError(f"cannot resume: {str(partial)!r} is not a readable netCDF file "
                             f"({error}); delete it (and its checkpoint) or pass "
                             "overwrite=True to start again") from error
        writer = cls.__new__(cls)
        writer._start(path, nc, time_dim, nc.dimensions["model"].size, sync_seconds, rows,
                      snapshots)
        nc.setncatts({"status": "running", "last_synced_step": writer._last_time})
        writer.sync()
        return writer

    def _create(self, name: str, dtype: Any, dims: tuple[str, ...], chunks=None,
                compress: bool = False, fill: Any = None) -> Any:
        if name in self.nc.variables:  # a resumed run's file has it already
            return self.nc[name]
        variable = self.nc.createVariable(name, dtype, dims, chunksizes=chunks,
                                          zlib=compress, complevel=4, fill_value=fill)
        variable.long_name = long_name(name)
        if name in UNITS:
            variable.units = UNITS[name]
        return variable

    def _check_room(self, incoming: int) -> None:
        """Raise :class:`WriteError`, writing nothing, unless :func:`check_room` passes."""
        partial = partial_path(self.path)
        check_room(partial, incoming, f"the run stopped and the file holds every "
                                      f"{self.time_dim} up to {self._last_time}")

    @contextlib.contextmanager
    def _writing(self):
        """Turn netCDF's failures to write into a :class:`WriteError` that says what the
        file holds."""
        try:
            yield
        except (RuntimeError, OSError) as error:
            if isinstance(error, WriteError):
                raise
            raise WriteError(errno.EIO, f"could not write {str(partial_path(self.path))!r}: "
                             f"{error} (is the disk full or the folder gone?); the file "
                             f"holds every {self.time_dim} up to {self._synced_time}, its "
                             "last sync") from error

    def write_static(self, name: str, values: Any, dims: tuple[str, ...],
                     coordinate: bool = False) -> None:
        """Write an array that does not change during the run (a split, a coordinate).

        With ``coordinate=True`` the variable is listed in the global ``coordinates``
        attribute, so xarray opens it as a coordinate (``seed``, ``a``, ...).
        """
        values = np.asarray(values)
        dtype = np.int8 if values.dtype == bool else values.dtype
        with self._writing():
            self._create(name, dtype, dims)[...] = values.astype(dtype)
        if coordinate:
            names = getattr(self.nc, "coordinates", "").split()
            self.nc.setncattr("coordinates", " ".join([*names, name]))

    def append(self, time: int, scalars: dict[str, Any]) -> None:
        """Append one logged step: ``scalars`` maps names to (M,) arrays."""
        row = self._rows[self.time_dim]
        self._check_room(len(scalars) * 256 * self.n_models * 8)  # one new chunk each
        with self._writing():
            for name in scalars:
                self._create(name, np.float64, (self.time_dim, "model"),
                             chunks=(256, self.n_models), fill=np.nan)
            self.nc[self.time_dim][row] = time
            for name, values in scalars.items():
                self.nc[name][row, :] = backend.to_numpy(values)
        self._rows[self.time_dim] += 1
        self._last_time = time
        if time_elapsed(self._last_sync) >= self.sync_seconds:
            self.sync()

    def write_series(self, name: str, values: Any) -> None:
        """Write a whole (time, model) variable at once, e.g. a measure known only at the end
        such as the alignment with the final features."""
        values = backend.to_numpy(values)
        self._check_room(values.nbytes)
        with self._writing():
            self._create(name, np.float64, (self.time_dim, "model"),
                         chunks=(256, self.n_models), fill=np.nan)[: len(values), :] = values

    def append_snapshot(self, time: int, arrays: dict[str, tuple[Any, tuple[str, ...]]]) -> None:
        """Append a snapshot: ``arrays`` maps names to ((M, ...) array, dims after model)."""
        row = self._rows["snapshot"]
        host = {name: (backend.to_numpy(values), dims) for name, (values, dims) in arrays.items()}
        self._check_room(sum(values.nbytes for values, _ in host.values()))
        with self._writing():
            for name, (values, dims) in host.items():
                shape = tuple(self.nc.dimensions[d].size for d in dims)
                self._create(name, np.dtype(values.dtype), ("snapshot", "model", *dims),
                             chunks=(1, 1, *shape), compress=True)[row] = values
            self.nc["snapshot"][row] = time
        self._rows["snapshot"] += 1
        self.sync()

    def set_attributes(self, attrs: dict[str, Any]) -> None:
        """Set global attributes (JSON text for containers); they reach disk at the next
        sync."""
        with self._writing():
            self.nc.setncatts({key: _attribute(value) for key, value in attrs.items()})

    def sync(self) -> None:
        """Flush everything written so far to disk, then record the last complete step.

        Two flushes: HDF5 may write an attribute before the data of the same flush, so a
        kill in the middle of one flush could leave a ``last_synced_step`` whose row is not
        on disk. The second flush carries only the attribute.
        """
        with self._writing():
            self.nc.sync()
            self.nc.setncattr("last_synced_step", self._last_time)
            self.nc.sync()
        self._synced_time = self._last_time
        self._last_sync = time.monotonic()

    def close(self, status: str = "complete") -> Path:
        """Mark the run's ``status``, close the file and give it its final name.

        A run that ended (``complete`` or ``diverged``) loses the ``.partial`` suffix; an
        ``interrupted`` one keeps it, so that its name says it is unfinished.
        """
        with self._writing():
            self.nc.setncattr("status", status)
            self.sync()
            self.nc.close()
        partial = partial_path(self.path)
        if status == "interrupted":
            return partial
        try:
            os.replace(partial, self.path)
        except OSError as error:
            raise WriteError(error.errno, f"the run ended but {str(partial)!r} could not be "
                             f"renamed to {str(self.path)!r} ({error.strerror or error}); "
                             f"the whole run is in {str(partial)!r}") from error
        return self.path


def time_elapsed(since: float) -> float:
    """Seconds on the monotonic clock since ``since``."""
    return time.monotonic() - since


READ_ATTEMPTS = 5
"""Tries to read a consistent copy of a file that is still being written."""

SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")
"""First bytes of a netCDF-4 (HDF5) file and of the classic netCDF formats."""


def open_run(path: str | os.PathLike) -> xr.Dataset:
    """Read a trajectory into memory (the file is closed again at once).

    ``path`` may name a finished run or, if only ``path.partial`` exists, a run that is still
    going or was killed. Such a file is copied and the copy read, so the reader never holds
    the live file; a copy taken in the middle of a flush fails to open and is taken again
    (:data:`READ_ATTEMPTS` times). The dataset holds every step up to the file's
    ``last_synced_step``, and nothing after it. ``is_train`` comes back as bool.

    Raises
    ------
    FileNotFoundError
        If neither ``path`` nor ``path.partial`` exists.
    ValueError
        If the file is not a readable netCDF file, or not one gk wrote.
    """
    path = Path(path)
    if not path.exists() and partial_path(path).exists():
        path = partial_path(path)
    if not path.exists():
        raise FileNotFoundError(f"path={str(path)!r} does not exist")
    in_progress = path.name.endswith(PARTIAL_SUFFIX)
    ds = _read_copy(path) if in_progress else _check_written_by_gk(_read(path), path)
    if in_progress:
        ds = _synced_part(ds)
    if "is_train" in ds:
        ds["is_train"] = ds["is_train"].astype(bool)
    return ds


def _read(path: Path) -> xr.Dataset:
    """The whole file in memory, or a ValueError that says why the file is not readable."""
    if not _is_netcdf(path):
        raise ValueError(f"path={str(path)!r} is not a netCDF file (it does not begin with "
                         "the signature of netCDF or HDF5)")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except Exception as error:  # netCDF, HDF5 and decoding errors alike
        raise ValueError(f"path={str(path)!r} is not a readable netCDF file; it may be damaged "
                         f"or cut short ({error})") from error


def _check_written_by_gk(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """``ds``, or a ValueError if gk did not write it."""
    if "gk_version" not in ds.attrs:
        raise ValueError(f"path={str(path)!r} is a netCDF file but not one gk wrote (it has "
                         "no gk_version attribute)")
    return ds


def _is_netcdf(path: Path) -> bool:
    """Whether the file begins like a netCDF file."""
    with open(path, "rb") as stream:
        return stream.read(8).startswith(SIGNATURES)


def _read_copy(path: Path) -> xr.Dataset:
    """Read a copy of a file that may be being written, again if a copy is torn or too
    young to have gk's attributes."""
    if not _is_netcdf(path):
        return _read(path)  # not netCDF at all: no use in copying and trying again
    with tempfile.TemporaryDirectory(prefix="gk-read-") as folder:
        copy = Path(folder) / "copy.nc"
        for attempt in range(READ_ATTEMPTS):
            shutil.copyfile(path, copy)
            try:  # a file just created may not have its attributes yet
                return _check_written_by_gk(_read(copy), copy)
            except ValueError as error:
                failure = error
                time.sleep(0.05 * 2**attempt)
    raise ValueError(str(failure).replace(str(copy), str(path))) from failure


def _synced_part(ds: xr.Dataset) -> xr.Dataset:
    """The rows and snapshots up to ``last_synced_step`` of an unfinished run's file."""
    last = int(ds.attrs.get("last_synced_step", -1))
    for dim in (time_dim(ds), "snapshot"):
        if dim in ds.dims:
            times = ds[dim].values
            keep = np.isfinite(times) & (times >= 0) & (times <= last)
            ds = ds.isel({dim: np.flatnonzero(keep)})
            ds = ds.assign_coords({dim: ds[dim].values.astype(np.int64)})
    return ds


def open_runs(paths: Iterable[str | os.PathLike]) -> xr.Dataset:
    """Open several trajectories and concatenate them along ``model``.

    Steps are aligned by value (an outer join: NaN where a run did not log a step); the
    ``model`` index is renumbered 0..M−1, and each model's file is kept in ``source``.
    """
    datasets = []
    for path in paths:
        ds = open_run(path)
        datasets.append(ds.assign_coords(source=("model", [str(path)] * ds.sizes["model"])))
    if not datasets:
        raise ValueError("paths is empty; give at least one trajectory file")
    combined = xr.concat(datasets, dim="model", data_vars="minimal", coords="minimal",
                         compat="override", join="outer", combine_attrs="drop_conflicts")
    return combined.assign_coords(model=np.arange(combined.sizes["model"]))


def time_dim(ds: xr.Dataset) -> str:
    """The dimension a trajectory runs along: ``step`` for networks, ``iteration`` for RFM."""
    return "step" if "step" in ds.dims else "iteration"


def config(ds: xr.Dataset) -> dict:
    """The configuration a trajectory was made with, as a dict."""
    return json.loads(ds.attrs["config"])


def snapshot_at(source: xr.Dataset | str | os.PathLike, step: int | None = None
                ) -> tuple[xr.Dataset, dict]:
    """A trajectory's (a dataset or a file) snapshot at ``step`` (the last if None) and the
    configuration it was made with; a ValueError lists the stored snapshots if ``step`` has
    none."""
    ds = source if isinstance(source, xr.Dataset) else open_run(source)
    if step is None:
        step = int(ds.snapshot[-1])
    if step not in ds.snapshot.values:
        raise ValueError(f"step={step} has no snapshot; snapshots: {ds.snapshot.values.tolist()}")
    return ds.sel(snapshot=step), config(ds)


@dataclass(frozen=True)
class Layout:
    """What a run's file holds besides its logged rows and snapshots.

    Attributes
    ----------
    dims : dict of str to int
        Sizes of the fixed dims the arrays use (``neuron``, ``pair``, ``sequence``, ...).
    coords : dict of str to (dims, array)
        Coordinates that do not change during the run (``a``, ``b``, ``c`` of each pair).
    statics : dict of str to (dims, array)
        Variables that do not change during the run (``is_train``).
    attrs : dict
        The task's global attributes: ``title``, ``op`` and, over Z_p, ``p``.
    """

    dims: dict[str, int]
    coords: dict[str, tuple[tuple[str, ...], Any]]
    statics: dict[str, tuple[tuple[str, ...], Any]]
    attrs: dict[str, Any]


def pair_layout(config: Any, task: Any, is_train: np.ndarray, dims: dict[str, int]) -> Layout:
    """The layout of a run on the pairs (a, b) of a task: dim ``pair`` with coordinates
    ``a``, ``b``, ``c`` (so a table task's table is in the file), and each model's split
    ``is_train`` (model, pair). The attribute ``elements`` is ``"Z_p"`` for an operation
    over Z_p, ``"table"`` for a table on p arbitrary labels (:func:`gk.tasks.table`)."""
    op, p = config.to_json()["op"], int(task.p)
    title = f"{op} mod {p}" if task.is_modular else f"{op} on {p} elements"
    return Layout({**dims, "pair": task.size},
                  {name: (("pair",), values)
                   for name, values in (("a", task.a), ("b", task.b), ("c", task.c))},
                  {"is_train": (("model", "pair"), is_train)},
                  {"title": f"gk trajectory: {title}", "op": op, "p": p,
                   "elements": "Z_p" if task.is_modular else "table"})


def layout_writer(out: str | os.PathLike, time_dim: str, config: Any, layout: Layout,
                  overwrite: bool, sync_seconds: float = 1.0) -> TrajectoryWriter:
    """Open a writer for a run of ``config`` (a :class:`gk.config.RunConfig`): per-model
    coordinates and the ``layout``'s static arrays are written at once."""
    models = {name: config.per_model(name) for name in config.PER_MODEL}
    attrs = run_attributes(layout.attrs, config.dtype, config.to_json(),
                           config.per_model("seed"))
    writer = TrajectoryWriter(out, time_dim, models, layout.dims, attrs, overwrite=overwrite,
                              sync_seconds=sync_seconds)
    for name, (dims, values) in layout.coords.items():
        writer.write_static(name, values, dims, coordinate=True)
    for name, (dims, values) in layout.statics.items():
        writer.write_static(name, values, dims)
    return writer


HEALTH = ("train_loss", "w1_norm", "w2_norm", "grad_norm")
"""Logged values that must stay finite: a model whose loss, weight norms or gradient norm is
NaN or ±inf has diverged."""


class Recorder:
    """Keeps a run's logged rows and snapshots in memory and streams them to its file.

    Every model's run uses one, as a context manager that closes the file however the run
    ends; it builds the returned dataset and the file from the same rows, so the two agree::

        layout = pair_layout(config, task, is_train, dims)
        with Recorder("step", config, layout, out) as recorder:
            recorder.log(0, {"train_loss": ...})
        ds = recorder.dataset()

    It also watches the models' health: the first logged time at which a model's
    :data:`HEALTH` values are not finite is its ``diverged_at_step`` (the run stops updating
    that model), the first at which one is ±inf its ``overflow_at_step``; these and any
    other numerical fault (:meth:`fault`) go into the file, the last ones as the JSON list
    attribute ``faults``, with a warning when they happen.

    With ``resume`` (a :class:`gk.checkpoint.Checkpoint`) it continues the file ``out``:
    the rows and snapshots before the checkpoint are read back from it.
    """

    def __init__(self, time_dim: str, config: Any, layout: Layout,
                 out: str | os.PathLike | None = None, overwrite: bool = False,
                 resume: Any = None, sync_seconds: float = 1.0):
        self.time_dim = time_dim
        self.config, self.layout = config, layout
        self.status = "complete"
        n_models = config.n_models
        self.times: list[int] = []
        self.rows: list[dict[str, np.ndarray]] = []
        self.snapshot_times: list[int] = []
        self.snapshots: dict[str, tuple[tuple[str, ...], list[np.ndarray]]] = {}
        self.series: dict[str, np.ndarray] = {}
        self.diverged = np.full(n_models, -1, dtype=np.int64)
        self.overflow = np.full(n_models, -1, dtype=np.int64)
        self.faults: list[dict[str, Any]] = []
        self.history: list[str] = []
        if out is None:
            self.writer = None
        elif resume is None:
            self.writer = layout_writer(out, time_dim, config, layout, overwrite, sync_seconds)
        else:
            self.writer = TrajectoryWriter.reopen(out, time_dim, resume.rows,
                                                  resume.snapshots, sync_seconds)
            self._read_back(resume)

    def _read_back(self, resume: Any) -> None:
        """Load the rows and snapshots before ``resume`` from the file being continued."""
        nc, state = self.writer.nc, resume.meta["recorder"]
        self.times = [int(t) for t in nc[self.time_dim][: resume.rows]]
        columns = {name: np.asarray(nc[name][: resume.rows, :], dtype=np.float64)
                   for name in state["row_names"]}
        self.rows = [{name: values[i] for name, values in columns.items()}
                     for i in range(resume.rows)]
        self.snapshot_times = [int(t) for t in nc["snapshot"][: resume.snapshots]]
        for name in state["snapshot_names"]:
            variable = nc[name]
            values = np.asarray(variable[: resume.snapshots])
            self.snapshots[name] = (variable.dimensions[2:], list(values))
        self.diverged = np.array(state["diverged"], dtype=np.int64)
        self.overflow = np.array(state["overflow"], dtype=np.int64)
        self.faults = state["faults"]
        self.history = [*state["history"], f"{_now()} resumed at {self.time_dim} "
                        f"{resume.time} (gk {__version__})"]
        self.writer.set_attributes({"history": "\n".join(self.history)})

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this recorder from the file (JSON-ready)."""
        return {"row_names": list(self.rows[0]) if self.rows else [],
                "snapshot_names": list(self.snapshots), "diverged": self.diverged.tolist(),
                "overflow": self.overflow.tolist(), "faults": self.faults,
                "history": self.history}

    @property
    def n_rows(self) -> int:
        """Rows logged so far."""
        return len(self.times)

    @property
    def n_snapshots(self) -> int:
        """Snapshots taken so far."""
        return len(self.snapshot_times)

    def log(self, time: int, row: dict[str, np.ndarray]) -> np.ndarray:
        """Record one row of (M,) scalars; return the models that diverged at ``time``."""
        health = [row[name] for name in HEALTH if name in row]
        newly = ~np.all(np.isfinite(health), axis=0) & (self.diverged < 0)
        self.diverged[newly] = time
        overflowed = np.any(np.isinf(health), axis=0) & (self.overflow < 0)
        self.overflow[overflowed] = time
        dtype = np.dtype(self.config.dtype).name
        hint = "float64 has a larger range" if dtype == "float32" else "a smaller lr may help"
        for model in np.flatnonzero(overflowed):
            self.fault(time, int(model), f"overflow: a loss or norm reached ±inf in {dtype}",
                       f"the model is stopped; {hint}")
        explained = {record["model"] for record in self.faults
                     if time in record[f"{self.time_dim}s"]}   # e.g. a failed solve
        for model in np.flatnonzero(newly & ~overflowed):
            if model not in explained:
                self.fault(time, int(model), "non-finite loss, weights or gradient",
                           "the model is stopped; the other models go on")
        self.times.append(time)
        self.rows.append(row)
        if self.writer is not None:
            self.writer.append(time, row)
        return np.flatnonzero(newly)

    def fault(self, time: int, model: int, condition: str, remedy: str) -> None:
        """Record a numerical fault of ``model`` at ``time`` and the remedy taken; the same
        fault again adds its time to the first record. Warns the first time."""
        for record in self.faults:
            if (record["model"], record["condition"], record["remedy"]) == (
                    model, condition, remedy):
                record[f"{self.time_dim}s"].append(time)
                return
        self.faults.append({"model": model, "condition": condition, "remedy": remedy,
                            f"{self.time_dim}s": [time]})
        warnings.warn(f"model {model} at {self.time_dim} {time}: {condition}; {remedy}",
                      RuntimeWarning, stacklevel=3)

    def snapshot(self, time: int, arrays: dict[str, tuple[Any, tuple[str, ...]]]) -> None:
        """Record arrays of shape (M, ...) with the names of their dims after ``model``."""
        host = {name: (backend.to_numpy(values).copy(), dims)  # copy: NumPy arrays are live
                for name, (values, dims) in arrays.items()}
        self.snapshot_times.append(time)
        for name, (values, dims) in host.items():
            self.snapshots.setdefault(name, (dims, []))[1].append(values)
        if self.writer is not None:
            self.writer.append_snapshot(time, host)

    def write_series(self, name: str, values: np.ndarray) -> None:
        """Record a whole (time, model) variable known only at the end of the run."""
        self.series[name] = np.asarray(values)
        if self.writer is not None:
            self.writer.write_series(name, values)

    def sync(self) -> None:
        """Flush the file (before a checkpoint says what it holds)."""
        if self.writer is not None:
            self.writer.set_attributes({"faults": self.faults})
            self.writer.sync()

    def all_diverged(self) -> bool:
        """True once every model has diverged."""
        return bool((self.diverged >= 0).all())

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        """Finish the file, if there is one: per-model health, faults, ``status`` (or
        ``interrupted`` if the run raised), final name. A failure to close after the run
        already failed does not hide the first error."""
        if error is not None:
            self.status = "interrupted"
        if self.writer is None:
            return
        try:
            self.writer.write_static("diverged_at_step", self.diverged, ("model",))
            self.writer.write_static("overflow_at_step", self.overflow, ("model",))
            self.writer.set_attributes({"faults": self.faults})
            self.writer.close(self.status)
        except OSError:
            if error is None:
                raise

    def dataset(self) -> xr.Dataset:
        """The run as an xarray Dataset, with the same variables as its file."""
        config, layout = self.config, self.layout
        data_vars = {name: ((self.time_dim, "model"), np.stack([r[name] for r in self.rows]))
                     for name in self.rows[0]}
        data_vars.update({name: ((self.time_dim, "model"), values)
                          for name, values in self.series.items()})
        data_vars.update({name: (("snapshot", "model", *dims), np.stack(values))
                          for name, (dims, values) in self.snapshots.items()})
        data_vars.update(layout.statics)
        data_vars["diverged_at_step"] = ("model", self.diverged)
        data_vars["overflow_at_step"] = ("model", self.overflow)
        coords = {self.time_dim: self.times, "snapshot": self.snapshot_times,
                  "model": np.arange(len(self.diverged)),
                  **{name: ("model", config.per_model(name)) for name in config.PER_MODEL},
                  **layout.coords}
        attrs = run_attributes(layout.attrs, config.dtype, config.to_json(),
                               config.per_model("seed"))
        attrs.update(status=self.status, faults=json.dumps(self.faults))
        if self.history:
            attrs["history"] = "\n".join(self.history)
        ds = xr.Dataset(data_vars, coords, attrs)
        for name in ds.variables:
            ds[name].attrs["long_name"] = long_name(name)
            if name in UNITS:
                ds[name].attrs["units"] = UNITS[name]
        return ds
