"""Sweeps: many runs of one kind over a grid of arguments, trained as ensembles, one netCDF
file per ensemble, read back as one labelled cube.

A sweep names a *target* (``"train"``: :func:`gk.mlp.train`, ``"rfm"``: :func:`gk.rfm.run`,
``"analytic"``: :func:`gk.analytic.width_curve`), arguments shared by every run (``fixed``),
and either a grid (every combination of some arguments' values) or a list of
configurations. Every point is checked as its run would check it before anything starts.
Points whose arguments differ only in what one array program can batch (the target's
:attr:`Target.batched` arguments, e.g. ``seed`` and ``train_fraction`` of a network) form a
*group*, run as one ensemble of at most ``max_models`` models writing ``group-NNN.nc``.
The folder's ``sweep.json`` records the plan; running the same sweep again skips the
groups whose file is finished and continues an interrupted one from its checkpoint.

>>> gk.sweep.run("train", {"optimizer": ["gd", "adamw"], "seed": [0, 1, 2]},
...              out="sweep", p=23, width=64, steps=2000)            # doctest: +SKIP
>>> cube = gk.sweep.open("sweep")        # step × optimizer × seed     # doctest: +SKIP
>>> gk.measures.grokking_time(cube).mean("seed")                     # doctest: +SKIP

Groups run one after another in this process (``workers=1``), in a pool of processes
(``workers=N``) or on a dask.distributed cluster (``scheduler=``, see :mod:`gk.engines`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gk import __version__, checkpoint, io
from gk.config import check_int

MANIFEST = "sweep.json"
"""The file in a sweep's folder that records its plan."""

DEFAULT_MAX_MODELS = 16
"""Models per ensemble unless told otherwise: enough to amortise per-step costs, small
enough for the memory of a network at p = 97 on a laptop."""


@dataclass(frozen=True)
class Target:
    """What a sweep can run: the arguments a point may set, those one ensemble may vary
    (``batched``), how a point is checked and resolved, and how a group runs."""

    name: str
    arguments: tuple[str, ...]
    batched: tuple[str, ...]
    resolve: Callable[[dict[str, Any]], dict[str, Any]]
    """A point's arguments → its run's full configuration (raises as the run would)."""
    execute: Callable[[dict[str, Any], str], None]
    """Run one group with these arguments, writing this file (resuming where it can)."""
    time_dim: str | None
    product: bool = False
    """A group computes every combination of its batched lists (a width curve) instead of
    one model per point; it is never split by ``max_models``."""


def _resolve_config(config_class: type) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def resolve(point: dict[str, Any]) -> dict[str, Any]:
        config = config_class(**point)
        if config.n_models > 1:
            listed = [name for name in config.PER_MODEL if isinstance(point.get(name), list)]
            raise ValueError(f"{listed[0]}={point[listed[0]]!r}: a sweep point is one model; "
                             f"give the values of {listed[0]} in the grid")
        resolved = config.to_json()
        for name in config.PER_MODEL:           # lr=None → the optimizer's default rate
            resolved[name] = config.per_model(name)[0]
        return resolved
    return resolve


def _resuming(run: Callable[..., Any]) -> Callable[[dict[str, Any], str], None]:
    """A group's ``run`` writing ``out``, resumed if it was interrupted."""
    def execute(arguments: dict[str, Any], out: str) -> None:
        run(**arguments, out=out, resume=True)
    return execute


ANALYTIC_LISTS = {"width": "widths", "activation": "activations", "seed": "seeds"}
"""A width curve's point arguments and the list arguments of
:func:`gk.analytic.width_curve` that a group passes them as."""


ANALYTIC_DEFAULTS = {"op": "add", "p": 97, "width": 512, "activation": "quadratic", "seed": 0,
                     "branches": "one", "complex": False, "dtype": "float64"}
"""The arguments of a width curve's point, with the defaults of :func:`gk.analytic.weights`
(the defaults of :func:`gk.analytic.width_curve`'s lists do not apply to one point)."""


def _resolve_analytic(point: dict[str, Any]) -> dict[str, Any]:
    from gk.analytic import check_width_curve

    resolved = {**ANALYTIC_DEFAULTS, **point}
    check_width_curve(**{ANALYTIC_LISTS.get(name, name): [value] if name in ANALYTIC_LISTS
                         else value for name, value in resolved.items()})
    return resolved


def _analytic_group(arguments: dict[str, Any], out: str) -> None:
    from gk.analytic import width_curve

    ds = width_curve(**arguments)
    ds.attrs.update(gk_version=__version__, config=json.dumps(arguments), status="complete")
    io.write_dataset(ds, out, overwrite=True)


def targets() -> dict[str, Target]:
    """The targets a sweep can run, by name."""
    from gk.mlp.train import TrainConfig, train
    from gk.rfm import RFMConfig
    from gk.rfm import run as run_rfm
    from gk.rnn.train import RNNConfig
    from gk.rnn.train import train as train_rnn
    from gk.transformer.train import TransformerConfig
    from gk.transformer.train import train as train_transformer

    fields = lambda cls: tuple(f.name for f in dataclasses.fields(cls))  # noqa: E731
    return {
        "train": Target("train", fields(TrainConfig), TrainConfig.PER_MODEL,
                        _resolve_config(TrainConfig), _resuming(train), "step"),
        "rfm": Target("rfm", fields(RFMConfig), RFMConfig.PER_MODEL,
                      _resolve_config(RFMConfig), _resuming(run_rfm), "iteration"),
        "analytic": Target("analytic", tuple(ANALYTIC_DEFAULTS), tuple(ANALYTIC_LISTS),
                           _resolve_analytic, _analytic_group, None, product=True),
        "transformer": Target("transformer", fields(TransformerConfig),
                              TransformerConfig.PER_MODEL, _resolve_config(TransformerConfig),
                              _resuming(train_transformer), "step"),
        "rnn": Target("rnn", fields(RNNConfig), RNNConfig.PER_MODEL,
                      _resolve_config(RNNConfig), _resuming(train_rnn), "step"),
    }


def target(name: str) -> Target:
    """The :class:`Target` called ``name``, or a ValueError listing them."""
    known = targets()
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"target={name!r} is not a sweep target; allowed: "
                         f"{', '.join(known)}")
    return known[name]


@dataclass
class Group:
    """Points of a sweep run as one ensemble: the call's ``arguments`` (batched ones as
    lists, one entry per model), the ``points`` (each model's swept values) and its file."""

    file: str
    arguments: dict[str, Any]
    points: list[dict[str, Any]]


@dataclass
class Plan:
    """A checked sweep: every point's swept values, the cube's dims and the groups."""

    target: str
    fixed: dict[str, Any]
    dims: dict[str, list]
    points: list[dict[str, Any]]
    groups: list[Group]

    def manifest(self) -> dict[str, Any]:
        """The JSON that ``sweep.json`` holds."""
        return {"gk_version": __version__, "target": self.target, "fixed": self.fixed,
                "dims": self.dims, "points": self.points,
                "groups": [dataclasses.asdict(group) for group in self.groups]}


def expand(grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The points of a grid (every combination of the values, last name fastest) or of a
    list of configurations (as given)."""
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid={} is empty; give at least one argument and its values")
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
                raise TypeError(f"grid[{name!r}]={values!r} is not allowed; each grid entry "
                                "must be a list of values")
            if len(values) == 0:
                raise ValueError(f"grid[{name!r}]=[] is empty; give at least one value")
        names = list(grid)
        return [dict(zip(names, combination, strict=True))
                for combination in itertools.product(*(list(grid[n]) for n in names))]
    points = [dict(point) for point in grid]
    if not points:
        raise ValueError("grid=[] is empty; give at least one configuration")
    for point in points:
        if not isinstance(point, Mapping):
            raise TypeError(f"grid entry {point!r} is not allowed; a list of configurations "
                            "holds dicts of arguments")
    return points


def _json_value(name: str, value: Any) -> Any:
    """``value`` as JSON (numbers, strings, booleans, None and lists of them), or a
    TypeError: a sweep's plan is written to ``sweep.json``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(name, v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    shown = f"<function {value.__name__}>" if callable(value) and hasattr(value, "__name__") \
        else repr(value)
    raise TypeError(f"{name}={shown} is not allowed in a sweep; its arguments must be "
                    "numbers, strings, booleans, None or lists of them (an op by name)")


def _label(value: Any) -> Any:
    """A value as a coordinate label (lists, e.g. betas, become their text)."""
    return json.dumps(value) if isinstance(value, list) else value


def plan(target_name: str, grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]],
         fixed: Mapping[str, Any] | None = None, max_models: int = DEFAULT_MAX_MODELS,
         batch: Sequence[str] | None = None) -> Plan:
    """Check a sweep and split it into groups, before anything runs.

    Parameters
    ----------
    target_name : {"train", "rfm", "analytic"}
    grid : dict of lists, or list of dicts
        The swept arguments: ``{"seed": [0, 1], "optimizer": ["gd", "adamw"]}`` runs every
        combination; a list of dicts runs those configurations.
    fixed : dict, optional
        Arguments shared by every point.
    max_models : int
        Most models in one group.
    batch : sequence of str, optional
        The arguments a group may vary (default: all the target's batched ones). Models of a
        network ensemble are padded to the largest training set, so on a CPU at large p
        ``batch=("seed",)`` keeps groups of equal ``train_fraction``.

    Raises
    ------
    ValueError, TypeError
        For an empty grid, an argument the target does not take (listing those it does), a
        value any single run would reject (naming the point), or a grid name also fixed.
    """
    spec = target(target_name)
    check_int("max_models", max_models, 1)
    fixed = {name: _json_value(name, value) for name, value in dict(fixed or {}).items()}
    points = [{name: _json_value(name, value) for name, value in point.items()}
              for point in expand(grid)]
    swept = list(dict.fromkeys(name for point in points for name in point))
    _check_names(spec, swept, fixed, batch)
    batch = tuple(spec.batched if batch is None else batch)
    resolved = []
    for i, point in enumerate(points):
        try:
            resolved.append(spec.resolve({**fixed, **point}))
        except (TypeError, ValueError) as error:
            raise type(error)(f"sweep point {i} {point}: {error}") from None
    values = [{name: _label(config[name]) for name in swept} for config in resolved]
    seen: dict[str, int] = {}
    for i, point in enumerate(values):
        first = seen.setdefault(json.dumps(point, sort_keys=True), i)
        if first != i:
            raise ValueError(f"sweep points {first} and {i} are the same run {point}; give "
                             "each configuration once")
    dims = {name: _unique(v[name] for v in values) for name in swept}
    groups = _groups(spec, fixed, points, resolved, values, batch, max_models)
    return Plan(spec.name, fixed, dims, values, groups)


def _check_names(spec: Target, swept: list[str], fixed: dict[str, Any],
                 batch: Sequence[str] | None) -> None:
    allowed = ", ".join(spec.arguments)
    for what, names in (("grid", swept), ("fixed", list(fixed))):
        unknown = [name for name in names if name not in spec.arguments]
        if unknown:
            raise ValueError(f"{what} argument(s) {', '.join(map(repr, unknown))} not taken by "
                             f"target {spec.name!r}; allowed: {allowed}")
    both = sorted(set(swept) & set(fixed))
    if both:
        raise ValueError(f"{', '.join(map(repr, both))} both swept and fixed; give each "
                         "argument in one place")
    for name in batch or ():
        if name not in spec.batched:
            raise ValueError(f"batch={tuple(batch)!r}: {name!r} cannot vary within one "
                             f"ensemble of {spec.name!r}; allowed: {', '.join(spec.batched)}")


def _unique(values: Iterable[Any]) -> list:
    """The values, each once, in the order they first come (the grid's order)."""
    return list(dict.fromkeys(values))


def _groups(spec: Target, fixed: dict[str, Any], points: list[dict], resolved: list[dict],
            values: list[dict], batch: tuple[str, ...], max_models: int) -> list[Group]:
    """Points that share everything but ``batch`` arguments, ``max_models`` at a time."""
    keyed: dict[str, list[int]] = {}
    for i, config in enumerate(resolved):
        key = json.dumps({k: v for k, v in config.items() if k not in batch}, sort_keys=True)
        keyed.setdefault(key, []).append(i)
    groups = []
    for members in keyed.values():
        size = len(members) if spec.product else max_models
        for start in range(0, len(members), size):
            chunk = members[start: start + size]
            first = {**fixed, **points[chunk[0]]}
            arguments = {k: v for k, v in first.items() if k not in batch}
            for name in batch:
                entries = [resolved[i][name] for i in chunk]
                if spec.product:
                    entries = list(dict.fromkeys(entries))
                arguments[_list_name(spec, name)] = entries
            groups.append(Group(f"group-{len(groups):03d}.nc", arguments,
                                [values[i] for i in chunk]))
    return groups


def _list_name(spec: Target, name: str) -> str:
    return ANALYTIC_LISTS[name] if spec.name == "analytic" else name


class SweepError(RuntimeError):
    """Some groups of a sweep failed; the others finished and their files are kept."""


def run(target_name: str, grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]],
        out: str | os.PathLike, *, workers: int = 1, scheduler: Any = None,
        timeout: float = 10.0, max_models: int = DEFAULT_MAX_MODELS,
        batch: Sequence[str] | None = None, overwrite: bool = False, progress: bool = True,
        **fixed: Any) -> xr.Dataset:
    """Run a sweep into the folder ``out`` and return its cube (:func:`open`).

    Parameters
    ----------
    target_name : {"train", "rfm", "analytic", "transformer", "rnn"}
        :func:`gk.mlp.train`, :func:`gk.rfm.run`, :func:`gk.analytic.width_curve` (whose
        points take ``width``, ``activation`` and ``seed``), :func:`gk.transformer.train`
        or :func:`gk.rnn.train`.
    grid : dict of lists, or list of dicts
        The swept arguments (:func:`plan`); they become the cube's dims.
    out : path-like
        The sweep's folder (created if missing; its parent must exist). Running the same
        sweep into it again skips finished groups and resumes unfinished ones.
    workers : int
        1: groups run one after another in this process; more: in a pool of that many
        processes (:mod:`gk.engines`).
    scheduler : str or dask.distributed.Client, optional
        Run each group as a task on a dask.distributed cluster (``pip install gk[dask]``).
    timeout : float
        Seconds to wait for ``scheduler`` to answer.
    max_models, batch
        How points are grouped into ensembles (:func:`plan`).
    overwrite : bool
        Replace a different sweep that ``out`` holds (its group files are deleted).
    progress : bool
        A progress bar over groups.
    **fixed
        Arguments shared by every point, e.g. ``p=97, steps=8000``.

    Raises
    ------
    SweepError
        After every group ran, if some failed (the message names them); the others' files
        are kept, and running the sweep again retries only the failed ones.
    """
    from gk import engines

    sweep = plan(target_name, grid, fixed, max_models, batch)
    check_int("workers", workers, 1)
    folder, replaced = _check_folder(out, sweep, overwrite)
    with engines.engine(workers, scheduler, timeout) as execute:
        _prepare_folder(folder, sweep, replaced)
        tasks = [(sweep.target, group.arguments, str(folder / group.file))
                 for group in sweep.groups if not (folder / group.file).exists()]
        failures = execute(tasks, len(sweep.groups), progress)
    if failures:
        listed = "\n  ".join(f"{Path(path).name}: {error!r}" for path, error in failures)
        raise SweepError(f"{len(failures)} of {len(sweep.groups)} groups failed (the others "
                         f"are in {str(folder)!r}; run the sweep again to retry):\n  {listed}")
    return open(folder)


def _check_folder(out: str | os.PathLike, sweep: Plan, overwrite: bool
                  ) -> tuple[Path, dict | None]:
    """The sweep's folder, checked before anything is written, and the plan of another
    sweep there that ``overwrite`` replaces (None if there is none)."""
    folder = Path(out)
    if not folder.parent.is_dir():
        raise ValueError(f"out={str(out)!r}: folder {str(folder.parent)!r} does not exist")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out={str(out)!r} is a file; a sweep writes a folder")
    manifest = folder / MANIFEST
    if not manifest.exists():
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise ValueError(f"out={str(out)!r} is a folder that holds no sweep but other "
                             "files; give an empty or new folder")
        return folder, None
    recorded = _read_manifest(folder)
    differences = _plan_differences(recorded, sweep.manifest())
    if differences and not overwrite:
        raise ValueError(f"out={str(out)!r} holds another sweep ({'; '.join(differences)}); "
                         "give another folder, or overwrite=True (--overwrite) to replace it")
    return folder, recorded if differences else None


def _plan_differences(recorded: dict, planned: dict) -> list[str]:
    """What differs between two sweeps' plans, for a message."""
    return [f"{key}: folder has {json.dumps(recorded.get(key))[:200]}, asked "
            f"{json.dumps(planned[key])[:200]}"
            for key in ("target", "fixed", "dims", "points", "groups")
            if recorded.get(key) != json.loads(json.dumps(planned[key]))]


def _prepare_folder(folder: Path, sweep: Plan, replaced: dict | None) -> None:
    """Create the folder, delete the files of the ``replaced`` sweep, write the plan."""
    folder.mkdir(exist_ok=True)
    for group in (replaced or {}).get("groups", []):
        path = folder / group["file"]
        for file in (path, io.partial_path(path), checkpoint.checkpoint_path(path)):
            file.unlink(missing_ok=True)
    temporary = folder / f"{MANIFEST}.tmp"
    temporary.write_text(json.dumps(sweep.manifest(), indent=1))
    os.replace(temporary, folder / MANIFEST)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(folder)!r} holds no sweep (no {MANIFEST})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(folder / MANIFEST)!r} is not a sweep's plan ({error})") from None


COMBINE = {"concat_dim": "model", "data_vars": "minimal", "coords": "minimal",
           "compat": "override", "join": "outer", "combine_attrs": "drop_conflicts"}
"""How the groups' files are combined: models one after another along ``model``, times
aligned by value (NaN where a group did not log a time), attributes they share kept."""


def open(folder: str | os.PathLike, snapshots: bool = False, load: bool = True) -> xr.Dataset:
    """A sweep's finished groups as one dataset with the swept arguments as dims.

    The groups' files are opened with :func:`xarray.open_mfdataset` (lazily, with dask,
    when it is installed; read at once otherwise) and combined along ``model``
    (:data:`COMBINE`); then ``model`` is unstacked into one dim per swept argument, over the
    plan's full values: NaN where a group is not finished (with a warning naming how many).

    Parameters
    ----------
    folder : path-like
        A folder written by :func:`run`.
    snapshots : bool
        Also keep the variables on other dims than time and ``model`` (weights, feature
        matrices, ``is_train``); the groups must then share their shapes (p, width).
    load : bool
        Read the values into memory and close the files (default); False keeps them as
        dask arrays, read when used (with dask installed), for cubes larger than memory.

    Returns
    -------
    xarray.Dataset
        Dims: ``step`` (networks) or ``iteration`` (RFM) and the swept arguments, e.g.
        step × optimizer × train_fraction × seed. Each point's group file is in the
        coordinate ``group``; the plan in the attributes ``sweep_target``, ``sweep_fixed``
        and ``sweep_dims`` (JSON).
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    spec = target(manifest["target"])
    groups = {group["file"]: group for group in manifest["groups"]}
    paths = [folder / name for name in groups if (folder / name).exists()]
    if not paths:
        raise ValueError(f"folder={str(folder)!r}: none of its {len(groups)} groups has "
                         "finished yet")
    if len(paths) < len(groups):
        warnings.warn(f"{len(groups) - len(paths)} of {len(groups)} groups of {str(folder)!r} "
                      "have not finished; their points are NaN", UserWarning, stacklevel=2)
    dims = manifest["dims"]

    def prepare(ds: xr.Dataset) -> xr.Dataset:
        group = groups[Path(ds.encoding["source"]).name]
        return _as_models(ds, spec, group, list(dims), snapshots)

    combined = _combine(paths, prepare)
    if load:
        combined.load()
        combined.close()
    cube = _unstack(combined, dims)
    cube.attrs.update(title=f"gk sweep: {spec.name} over {', '.join(dims)}",
                      sweep_target=spec.name, sweep_fixed=json.dumps(manifest["fixed"]),
                      sweep_dims=json.dumps(dims))
    return cube


def _combine(paths: list[Path], prepare: Callable[[xr.Dataset], xr.Dataset]) -> xr.Dataset:
    try:
        import dask  # noqa: F401
    except ImportError:
        datasets = [prepare(xr.load_dataset(path, engine="netcdf4")) for path in paths]
        return xr.combine_nested(datasets, **COMBINE)
    return xr.open_mfdataset(paths, engine="netcdf4", combine="nested", preprocess=prepare,
                             **COMBINE)


RUN_ATTRIBUTES = ("title", "config", "seeds", "created", "command_line", "last_synced_step",
                  "status", "faults", "history")
"""Attributes that describe one group's run, not the sweep (each group's file keeps them;
the cube's ``group`` coordinate names the file)."""


def _as_models(ds: xr.Dataset, spec: Target, group: dict, swept: list[str],
               snapshots: bool) -> xr.Dataset:
    """A group's file with one entry per model along ``model`` and every swept argument as
    a coordinate on it; without ``snapshots``, only variables on time and ``model``."""
    if spec.product:                                 # a width curve: (width, activation, seed)
        ds = ds.stack(model=tuple(ANALYTIC_LISTS)).reset_index("model")
    ds = ds.drop_vars("model", errors="ignore")
    if not snapshots:
        keep = {"model", spec.time_dim}
        ds = ds.drop_vars([name for name, variable in ds.variables.items()
                           if not set(variable.dims) <= keep])
    n_models = ds.sizes["model"]
    constant = {name: ("model", [group["points"][0][name]] * n_models)
                for name in swept if name not in ds.coords}
    per_group = {"group": group["file"], "status": ds.attrs.get("status", "complete")}
    ds = ds.assign_coords({**constant, **{name: ("model", [value] * n_models)
                                          for name, value in per_group.items()}})
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in RUN_ATTRIBUTES}
    return ds


def _unstack(combined: xr.Dataset, dims: dict[str, list]) -> xr.Dataset:
    """``model`` → one dim per swept argument, over all the plan's values."""
    names = list(dims)
    if len(names) == 1:
        cube = combined.swap_dims(model=names[0])
    else:
        cube = combined.set_index(model=names).unstack("model")
    return cube.reindex({name: values for name, values in dims.items()})
