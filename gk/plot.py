"""Figures of trajectories (matplotlib, headless-safe: the Agg backend unless one is set)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

if "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from gk import io  # noqa: E402
from gk.tasks import discrete_log  # noqa: E402

PANELS = {
    "loss": ("loss", (("train_loss", "train"), ("test_loss", "test")), True),
    "accuracy": ("accuracy", (("train_acc", "train"), ("test_acc", "test")), False),
    "norms": ("weight norm", (("w1_norm", "‖W1‖"), ("w2_norm", "‖W2‖"),
                              ("weight_norm", "‖θ‖")), False),
    "grad_norm": ("gradient norm", (("grad_norm", "‖∇L‖"),), True),
    "ipr": ("IPR₂ of W1 (transformer: W_E)", (("ipr", "IPR"),), False),
    "circulant_deviation": ("circulant deviation D(C)", (("circulant_deviation", "D"),), True),
    "agop_alignment": ("alignment ρ(M_t, M*)", (("agop_alignment", "ρ"),), False),
    "automaton": ("automaton states", (("n_states", "merged"),
                                       ("n_states_minimised", "minimised")), True),
}
"""Panel name → (y label, ((variable, legend label), ...), log y axis)."""


DEFAULT_PANELS = {
    "step": ("loss", "accuracy", "ipr"),
    "iteration": ("accuracy", "loss", "circulant_deviation", "agop_alignment"),
    "streaming_parity": ("loss", "accuracy", "automaton"),
}
"""Panels drawn by default for network runs (``step``), RFM runs (``iteration``) and RNN
runs on streaming parity."""


def trajectory(ds: xr.Dataset, panels: Sequence[str] | None = None,
               path: str | os.PathLike | None = None, title: str | None = None):
    """Plot a run's curves against its steps or iterations, one panel per entry of ``panels``.

    Every model of the dataset is drawn (one line per model and variable).

    Parameters
    ----------
    ds : xarray.Dataset
        A trajectory (:func:`gk.io.open_run`).
    panels : sequence of str, optional
        Names from :data:`PANELS`; by default :data:`DEFAULT_PANELS` of the run's kind.
    path : path-like, optional
        Where to save the figure (PNG, PDF, ... by suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    time_dim = io.time_dim(ds)
    if panels is None:
        kind = "streaming_parity" if ds.attrs.get("op") == "streaming_parity" else time_dim
        panels = [name for name in DEFAULT_PANELS[kind]     # e.g. no IPR on a table task
                  if any(variable in ds for variable, _ in PANELS[name][1])]
    panels = [panels] if isinstance(panels, str) else list(panels)
    unknown = [name for name in panels if name not in PANELS]
    if unknown or not panels:
        problem = f"no panel {', '.join(map(repr, unknown))}" if unknown else "no panels"
        raise ValueError(f"panels={panels!r} is not allowed ({problem}); panels must be "
                         f"names from: {', '.join(PANELS)}")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        ylabel, curves, log = PANELS[name]
        for variable, label in curves:
            if variable not in ds:
                continue
            for model in range(ds.sizes.get("model", 1)):
                suffix = f" (model {model})" if ds.sizes.get("model", 1) > 1 else ""
                ax.plot(ds[time_dim], ds[variable].isel(model=model), label=label + suffix)
        ax.set_xlabel(time_dim)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    fig.suptitle(title or ds.attrs.get("title", ""))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


METRICS = ("train_loss", "test_loss", "train_acc", "test_acc", "w1_norm", "w2_norm",
           "weight_norm", "grad_norm", "jitter")
"""Logged variables that are not progress measures (:func:`progress` leaves them out)."""


def progress_measures(ds: xr.Dataset) -> list[str]:
    """Names of the progress measures a trajectory holds: its (time, model) variables other
    than :data:`METRICS`, in file order."""
    time_dim = io.time_dim(ds)
    return [name for name, variable in ds.data_vars.items()
            if variable.dims == (time_dim, "model") and name not in METRICS]


def flat_phase_end(ds: xr.Dataset, model: int = 0, level: float = 0.1) -> float:
    """The first step (or iteration) at which test accuracy reaches ``level``; the last one
    if it never does. Before it, test accuracy is flat near chance: the phase in which
    hidden progress shows only in the measures."""
    time_dim = io.time_dim(ds)
    _check_model(ds, model)
    accuracy = ds.test_acc.isel(model=model).values
    reached = np.flatnonzero(accuracy >= level)
    return float(ds[time_dim][reached[0] if len(reached) else -1])


def _check_model(ds: xr.Dataset, model: int) -> None:
    """Raise unless ``model`` indexes one of the dataset's models."""
    count = ds.sizes.get("model", 1)
    if isinstance(model, bool) or not isinstance(model, (int, np.integer)):
        raise TypeError(f"model={model!r} is not allowed; model must be an integer in "
                        f"0..{count - 1}")
    if not 0 <= model < count:
        raise ValueError(f"model={model} is out of range; the dataset has {count} model(s), "
                         f"so model must be in 0..{count - 1}")


def progress(ds: xr.Dataset, model: int = 0, path: str | os.PathLike | None = None,
             title: str | None = None):
    """All progress measures of one model on one axis, each scaled to [0, 1], with train and
    test accuracy: which measures move while test accuracy is flat (seeds 000–003).

    Each measure m is drawn as (m − min m) / (max m − min m) over its measured steps (the
    legend gives min and max); steps where it was not measured (NaN) are skipped. The
    shaded span is the flat phase, up to :func:`flat_phase_end`.

    Parameters
    ----------
    ds : xarray.Dataset
        A network or RFM trajectory that holds measures (``measures=[...]`` when training).
    model : int
        Which model of the dataset.
    path : path-like, optional
        Where to save the figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        For a model index out of range or a dataset without any measure.
    """
    time_dim = io.time_dim(ds)
    _check_model(ds, model)
    names = progress_measures(ds)
    if not names:
        raise ValueError("the dataset holds no progress measure; train with measures=[...]")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.axvspan(float(ds[time_dim][0]), flat_phase_end(ds, model), color="0.9",
               label="test accuracy < 10%")
    for name in names:
        curve = ds[name].isel(model=model).dropna(time_dim)
        if curve.size == 0:
            continue
        low, high = float(curve.min()), float(curve.max())
        scaled = (curve - low) / (high - low) if high > low else curve * 0 + 0.5
        ax.plot(curve[time_dim], scaled, marker="." if curve.size < 40 else None,
                label=f"{name} [{low:.3g}, {high:.3g}]")
    for name, style in (("train_acc", "--"), ("test_acc", "-")):
        ax.plot(ds[time_dim], ds[name].isel(model=model), style, color="black", lw=2,
                label=name.replace("_acc", " accuracy"))
    ax.set_xlabel(time_dim)
    ax.set_ylabel("scaled to [0, 1]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(title or f"hidden progress: {ds.attrs.get('op', '')} mod {ds.attrs.get('p', '')}")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def operand_order(p: int, op: str | None) -> np.ndarray:
    """Order of the 2p inputs in which a feature matrix shows its structure.

    Natural order for additive ops; for ``mul`` and ``div`` each operand's indices in
    discrete-log order g⁰, g¹, ..., g^{p−2}, with 0 last (seed 000 reorders so).
    """
    if op not in ("mul", "div"):
        return np.arange(2 * p)
    order = np.append(discrete_log(p)[2], 0)
    return np.concatenate([order, p + order])


def features(ds: xr.Dataset, snapshots: Sequence[int] | None = None, model: int = 0,
             variable: str = "M", no_diagonal: bool = True,
             path: str | os.PathLike | None = None):
    """Heat-maps of a feature matrix (RFM's ``M``) at chosen snapshots.

    Parameters
    ----------
    ds : xarray.Dataset
        A trajectory holding ``variable`` on the ``snapshot`` dimension.
    snapshots : sequence of int, optional
        Iterations (or steps) to draw; default: the first, middle and last snapshot.
    no_diagonal : bool
        Blank the diagonal, whose large values hide the structure (as seed 000 shows M).

    Returns
    -------
    matplotlib.figure.Figure
    """
    square = [name for name, v in ds.data_vars.items()
              if v.ndim == 4 and v.dims[:2] == ("snapshot", "model") and v.shape[2] == v.shape[3]]
    if variable not in square:
        raise ValueError(f"variable={variable!r} is not a square matrix on snapshots in the "
                         f"dataset; allowed: {', '.join(square) or 'none in this dataset'}")
    _check_model(ds, model)
    available = ds.snapshot.values.tolist()
    if snapshots is None:
        snapshots = sorted({available[0], available[len(available) // 2], available[-1]})
    missing = [s for s in snapshots if s not in available]
    if missing or not snapshots:
        problem = f"{missing} were not stored" if missing else "none given"
        raise ValueError(f"snapshots={list(snapshots)} is not allowed ({problem}); snapshots "
                         f"must be among the stored {available}")
    p, op = int(ds.attrs["p"]), ds.attrs.get("op")
    order = operand_order(p, op)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(3.8 * len(snapshots), 3.6),
                             squeeze=False)
    for ax, snapshot in zip(axes[0], snapshots, strict=True):
        matrix = ds[variable].sel(snapshot=snapshot).isel(model=model).values
        matrix = matrix[np.ix_(order, order)]
        if no_diagonal:
            matrix = matrix - np.diag(np.diag(matrix))
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-abs(matrix).max(), vmax=abs(matrix).max())
        ax.set_title(f"{variable} at {snapshot}" + (" (log order)" if op in ("mul", "div")
                                                    else ""))
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(f"{ds.attrs.get('title', '')}, model {model}")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def width_curve(ds: xr.Dataset, path: str | os.PathLike | None = None):
    """Accuracy of analytic weights against width, one line per activation (mean over
    seeds, the band their range); seed 001, Fig. 4b and Fig. 5.

    Parameters
    ----------
    ds : xarray.Dataset
        The result of :func:`gk.analytic.width_curve`.
    """
    if "accuracy" not in ds or ds.accuracy.dims != ("width", "activation", "seed"):
        raise ValueError("ds is not allowed: it has no accuracy over (width, activation, seed); "
                         "ds must be the result of gk.analytic.width_curve")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for activation in ds.activation.values:
        accuracy = ds.accuracy.sel(activation=activation)
        ax.plot(ds.width, accuracy.mean("seed"), marker="o", label=str(activation))
        ax.fill_between(ds.width, accuracy.min("seed"), accuracy.max("seed"), alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("width N")
    ax.set_ylabel("accuracy on all pairs")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(title="activation")
    ax.set_title(ds.attrs.get("title", ""))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def sweep_quantity(cube: xr.Dataset, quantity: str | None = None) -> xr.DataArray:
    """The value a sweep's figure shows at each point: ``grokking_time`` (default for network
    and RFM sweeps), ``memorisation_time``, any variable without a time dim (e.g. a width
    curve's ``accuracy``, the default there), or a logged one at its last time (``test_acc``)."""
    from gk import measures

    time_dims = [dim for dim in ("step", "iteration") if dim in cube.dims]
    quantity = quantity or ("grokking_time" if time_dims else "accuracy")
    if quantity == "grokking_time":
        return measures.grokking_time(cube)
    if quantity == "memorisation_time":
        return measures.memorisation_time(cube)
    if quantity not in cube.data_vars:
        allowed = ["grokking_time", "memorisation_time", *cube.data_vars]
        raise ValueError(f"quantity={quantity!r} is not in the cube; allowed: "
                         f"{', '.join(allowed)}")
    values = cube[quantity]
    for dim in time_dims:
        if dim in values.dims:
            values = values.ffill(dim).isel({dim: -1}, drop=True)  # the last value logged
    return values


def sweep(cube: xr.Dataset, x: str | None = None, hue: str | None = None,
          quantity: str | None = None, band: str = "seed",
          path: str | os.PathLike | None = None):
    """A sweep's result: ``quantity`` against the swept argument ``x``, one line per value of
    ``hue`` (the median over ``band``, shaded from its smallest to its largest value), and
    beside it a heat-map over (``x``, ``hue``) of the median. NaN (e.g. never grokked) is a
    gap in a line and a grey cell.

    Parameters
    ----------
    cube : xarray.Dataset
        A sweep's cube (:func:`gk.sweep.open`).
    x, hue : str, optional
        Swept dims; by default the first numeric one and the next other one. Every other
        swept dim but ``band`` must have one value (select it first: ``cube.sel(p=97)``).
    quantity : str, optional
        See :func:`sweep_quantity`.
    band : str
        The dim whose spread the band shows (the seeds).
    """
    values = sweep_quantity(cube, quantity)
    x, hue = _sweep_axes(values, x, hue, band)
    values = values.squeeze([dim for dim in values.dims if dim not in (x, hue, band)],
                            drop=True)          # the other dims hold one value each
    if band in values.dims:
        low, median, high = (values.min(band), values.median(band), values.max(band))
    else:
        low = median = high = values
    lines = [median] if hue is None else [median.sel({hue: h}) for h in median[hue].values]
    fig, axes = plt.subplots(1, 1 if hue is None else 2, figsize=(11 if hue else 5.5, 4),
                             squeeze=False)
    ax = axes[0, 0]
    for i, line in enumerate(lines):
        label = None if hue is None else f"{hue} = {line[hue].item()}"
        select = {} if hue is None else {hue: line[hue].item()}
        ax.plot(line[x], line, marker="o", label=label)
        ax.fill_between(line[x], low.sel(select), high.sel(select), alpha=0.2, color=f"C{i}")
    ax.set_xlabel(x)
    ax.set_ylabel(str(values.name).replace("_", " "))
    ticks = values[x].values
    if ticks.dtype.kind in "iuf":               # every swept value on the axis, even if NaN
        margin = 0.05 * (ticks.max() - ticks.min() or 1)
        ax.set_xlim(ticks.min() - margin, ticks.max() + margin)
        if len(ticks) <= 12:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.grid(alpha=0.3)
    if hue is not None:
        ax.legend(title=f"median, band: range over {band}" if band in values.dims else None,
                  fontsize=8, title_fontsize=8)
        _heat_map(axes[0, 1], median.transpose(hue, x), values.name)
    fig.suptitle(cube.attrs.get("title", ""))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _sweep_axes(values: xr.DataArray, x: str | None, hue: str | None,
                band: str) -> tuple[str, str | None]:
    """The x and hue dims of a sweep's figure, checked."""
    dims = [dim for dim in values.dims if dim != band]
    for name, given in (("x", x), ("hue", hue)):
        if given is not None and given not in dims:
            raise ValueError(f"{name}={given!r} is not a swept dim; allowed: {', '.join(dims)}")
    if not dims:
        raise ValueError(f"the sweep varies only {band!r}; nothing to draw against")
    varied = [dim for dim in dims if values.sizes[dim] > 1] or dims
    numeric = [dim for dim in varied if values[dim].dtype.kind in "iuf"]
    x = x or (numeric or varied)[0]
    hue = hue or next((dim for dim in varied if dim != x), None)
    extra = [dim for dim in varied if dim not in (x, hue) and values.sizes[dim] > 1]
    if extra:
        raise ValueError(f"the cube also varies {', '.join(extra)}; select one value of each "
                         f"first, e.g. cube.sel({extra[0]}={values[extra[0]].values[0].item()!r})")
    return x, hue


def _heat_map(ax, median: xr.DataArray, label: str) -> None:
    """The median over (hue, x) as coloured cells with their values; NaN cells grey."""
    data = np.ma.masked_invalid(np.asarray(median.values, dtype=float))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("lightgrey")
    image = ax.imshow(data, cmap=cmap, aspect="auto", origin="lower")
    for (i, j), value in np.ndenumerate(data.filled(np.nan)):
        ax.text(j, i, "—" if np.isnan(value) else f"{value:.4g}", ha="center", va="center",
                fontsize=7, color="white" if np.isfinite(value) else "black")
    for axis, dim in ((ax.xaxis, median.dims[1]), (ax.yaxis, median.dims[0])):
        ticks = [str(v) for v in median[dim].values]
        axis.set_ticks(range(len(ticks)), ticks)
    ax.set_xlabel(median.dims[1])
    ax.set_ylabel(median.dims[0])
    ax.figure.colorbar(image, ax=ax, label=f"{label} (median)")


def transformer(params, sequence: str = "a b =", model: int = 0,
                path: str | os.PathLike | None = None, title: str | None = None):
    """Seed 003's views of a trained transformer's circuit, for one model.

    Top row: the Fourier power of the embedding of the p operand tokens at each frequency
    (:func:`gk.fourier.frequency_power`; the key frequencies stand out) and the power of the
    2-D DFT over (a, b) of the last layer's MLP activations at the read-out position, summed
    over neurons, the constant term left out (:func:`gk.fourier.logits_dft2`; seed 001,
    App. E.1, Fig. 11). Bottom row: each head's attention from the read-out position to the
    token a, over all pairs (a, b).

    Parameters
    ----------
    params : gk.transformer.Params
        Weights, e.g. :func:`gk.transformer.train.load_params` of a run.
    sequence : str
        The run's input format.
    model : int
        Which model of the batch.
    path : path-like, optional
        Where to save the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from gk import backend
    from gk.fourier import frequency_power, logits_dft2
    from gk.transformer.model import attention_pattern, mlp_activations, sequence_tokens

    count = params.arrays["W_E"].shape[0]
    if isinstance(model, bool) or not isinstance(model, (int, np.integer)) or not (
            0 <= model < count):
        raise ValueError(f"model={model!r} is out of range; params hold {count} model(s)")
    one, p = params.model(model), params.p
    xp = backend.namespace()
    a, b = np.divmod(np.arange(p * p), p)
    tokens = sequence_tokens(sequence, p, xp.asarray(a), xp.asarray(b))
    heads = params.n_heads
    fig = plt.figure(figsize=(3.2 * max(heads, 3), 6.4))
    grid = fig.add_gridspec(2, max(heads, 3))
    power = frequency_power(one.arrays["W_E"][0, :p].T, p)
    ax = fig.add_subplot(grid[0, : max(heads, 3) // 2 + 1])
    ax.bar(np.arange(len(power)), power / power.sum())
    ax.set_xlabel("frequency k")
    ax.set_ylabel("share of ‖W_E‖²")
    ax.set_title("embedding spectrum")
    if params.mlp:
        spectrum = logits_dft2(mlp_activations(one, tokens), p)[0]
        grid_power = backend.to_numpy((xp.abs(spectrum) ** 2).sum(axis=0))
        grid_power[0, 0] = 0             # the neurons' means, which would hide the rest
        ax = fig.add_subplot(grid[0, max(heads, 3) // 2 + 1:])
        top = grid_power.max()
        image = ax.imshow(np.clip(grid_power, top * 1e-4, None), cmap="viridis",
                          norm=matplotlib.colors.LogNorm(top * 1e-4, top))
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_xlabel("frequency of b")
        ax.set_ylabel("frequency of a")
        ax.set_title("MLP activations: 2-D DFT power")
    pattern = backend.to_numpy(attention_pattern(one, tokens, layer=params.layers - 1))
    for head in range(heads):
        ax = fig.add_subplot(grid[1, head])
        ax.imshow(pattern[0, :, head, -1, 0].reshape(p, p), cmap="magma", vmin=0,
                  vmax=1 if params.attention == "softmax" else None)
        ax.set_title(f"head {head}: attention to a")
        ax.set_xlabel("b")
        ax.set_ylabel("a")
    fig.suptitle(title or f"transformer, p = {p}")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def automaton(machine, ax=None, title: str | None = None):
    """Draw an automaton (:class:`gk.automaton.Automaton`) in layers by distance from its
    initial state: white states output 0 (even), black ones 1 (odd), the initial state ringed
    in red; blue arrows read 0, orange ones 1 (a loop is a ⟲ by the state).

    Returns
    -------
    matplotlib.axes.Axes
    """
    from collections import deque

    if ax is None:
        ax = plt.subplots(figsize=(6, 4))[1]
    transitions, n = machine.transitions, machine.n_states
    depth = np.full(n, -1)
    depth[machine.initial] = 0
    queue = deque([machine.initial])
    while queue:                                   # breadth first from the initial state
        state = queue.popleft()
        for target in transitions[state]:
            if target >= 0 and depth[target] < 0:
                depth[target] = depth[state] + 1
                queue.append(target)
    depth[depth < 0] = depth.max() + 1             # unreachable states in a last column
    position = np.empty((n, 2))
    for layer in np.unique(depth):
        members = np.flatnonzero(depth == layer)
        position[members] = np.c_[np.full(len(members), layer),
                                  np.arange(len(members)) - (len(members) - 1) / 2]
    width = 1.0 if n <= 12 else 0.4
    for state in range(n):
        for symbol, colour in enumerate(("tab:blue", "tab:orange")):
            target = transitions[state, symbol]
            if target < 0:
                continue
            if target == state:                    # a loop: ⟲ above (0) or below (1)
                ax.annotate("⟲", position[state], xytext=(0, 9 - 18 * symbol),
                            textcoords="offset points", ha="center", va="center",
                            color=colour, fontsize=12 if n <= 12 else 6)
                continue
            ax.annotate("", position[target], position[state],
                        arrowprops=dict(arrowstyle="->", color=colour, lw=width,
                                        shrinkA=6, shrinkB=6,
                                        connectionstyle=f"arc3,rad={0.15 + 0.1 * symbol}"))
    ax.scatter(*position.T, s=160 if n <= 12 else 25, c=machine.outputs, cmap="gray_r",
               vmin=0, vmax=1, edgecolors="k", zorder=3)
    ax.scatter(*position[machine.initial], s=300 if n <= 12 else 60, facecolors="none",
               edgecolors="red", zorder=4)
    ax.set_title(title or f"{n} states")
    ax.set_xlabel("distance from the initial state")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_yticks([])
    ax.set_xlim(-0.5, depth.max() + 0.5)
    ax.set_ylim(position[:, 1].min() - 0.7, position[:, 1].max() + 0.7)
    return ax


def streaming_parity(ds: xr.Dataset, path: str | os.PathLike | None = None,
                     title: str | None = None):
    """An RNN run on streaming parity (:func:`gk.rnn.train`) against epochs, every model:
    train and test loss (test: the longer sequences), test accuracy per step and per
    sequence, the automaton's states before and after minimisation, and the probe pairs'
    distance ‖d_h‖ (equal parity solid, different parity dashed; seed 003, eq. 3).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ds.attrs.get("op") != "streaming_parity":
        raise ValueError("ds is not allowed: it is not a streaming parity run (gk.rnn.train)")
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for model in range(ds.sizes["model"]):
        one = ds.isel(model=model)
        epoch = ds.step / float(one.steps_per_epoch)
        label = f"seed {int(one.seed)}"
        lines = axes[0].plot(epoch, one.train_loss, label=f"train, {label}")
        axes[0].plot(epoch, one.test_loss, ls="--", color=lines[0].get_color())
        axes[1].plot(epoch, one.test_acc, color=lines[0].get_color(), label=label)
        axes[1].plot(epoch, one.test_sequence_acc, ls=":", color=lines[0].get_color())
        axes[2].plot(epoch, one.n_states, color=lines[0].get_color(), label=label)
        axes[2].plot(epoch, one.n_states_minimised, ls="--", color=lines[0].get_color())
        if "pair_distance" in ds:
            at = ds.snapshot / float(one.steps_per_epoch)
            same = ds.probe_same_parity.values.astype(bool)
            distance = one.pair_distance.values
            axes[3].plot(at, np.median(distance[:, same], axis=1), color=lines[0].get_color())
            axes[3].plot(at, np.median(distance[:, ~same], axis=1), ls="--",
                         color=lines[0].get_color())
    for ax, ylabel, log in zip(axes, ("MSE (test dashed)", "test accuracy (sequences dotted)",
                                      "automaton states (minimised dashed)",
                                      "median ‖d_h‖ of probe pairs"),
                               (True, False, True, False), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if log:
            ax.set_yscale("log")
    axes[0].legend(fontsize="small")
    fig.suptitle(title or ds.attrs.get("title", ""))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
