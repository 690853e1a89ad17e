"""Figures of trajectories (matplotlib, headless-safe: the Agg backend unless one is set)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

if "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402

PANELS = {
    "loss": ("loss", (("train_loss", "train"), ("test_loss", "test")), True),
    "accuracy": ("accuracy", (("train_acc", "train"), ("test_acc", "test")), False),
    "norms": ("weight norm", (("w1_norm", "‖W1‖"), ("w2_norm", "‖W2‖")), False),
    "grad_norm": ("gradient norm", (("grad_norm", "‖∇L‖"),), True),
    "ipr": ("IPR₂ of W1", (("ipr", "IPR"),), False),
}
"""Panel name → (y label, ((variable, legend label), ...), log y axis)."""


def trajectory(ds: xr.Dataset, panels: Sequence[str] = ("loss", "accuracy", "ipr"),
               path: str | os.PathLike | None = None, title: str | None = None):
    """Plot a run's curves against its steps, one panel per entry of ``panels``.

    Every model of the dataset is drawn (one line per model and variable).

    Parameters
    ----------
    ds : xarray.Dataset
        A trajectory (:func:`gk.io.open_run`).
    panels : sequence of str
        Names from :data:`PANELS`.
    path : path-like, optional
        Where to save the figure (PNG, PDF, ... by suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    unknown = [name for name in panels if name not in PANELS]
    if unknown:
        raise ValueError(f"panels={unknown!r} unknown; allowed: {', '.join(PANELS)}")
    time_dim = "step" if "step" in ds.dims else "iteration"
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
