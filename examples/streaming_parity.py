"""Seed 003 (van Rossem & Saxe): an RNN learns streaming parity by growing the tree of its
training prefixes and then merging its hidden states into the two-state parity automaton.

Part 1 trains seed 003's RNN (100 ReLU units, h0 = 1, Xavier gain 0.1, SGD lr 0.02 on
minibatches of 128, every sequence of length 1..10, 1000 epochs) for several seeds, and
prints for each the epoch of the drop (the first logged epoch with ≥ 99% test accuracy on
random sequences of length 11..100), the epoch from which every test sequence is right at
every step, the largest automaton it built, and the epoch from which its minimised
automaton has two states to the end. It draws the losses, accuracies and automaton sizes
(``streaming_parity.png``) and seed 0's minimised automaton at four moments
(``streaming_parity_automata.png``).

Part 2 is the phase diagram of merging against the training-set size (the fraction of the
2046 sequences each model trains on) and the initial weight scale (Xavier gain): a
``gk.sweep`` over both and seeds, each model with the same number of SGD steps. A model has
merged when its minimised automaton has two states and it is right on every test sequence
(``streaming_parity_phase.png``; ``--quick`` names every file ``streaming_parity_quick*``).

    python examples/streaming_parity.py              # seeds 0-3, ~30 min on one core
    python examples/streaming_parity.py --workers 2  # the phase diagram in two processes
    python examples/streaming_parity.py --quick      # lengths 1..6, 32 units: ~1 min

Running it again reuses what is finished in ``--out-dir`` (an interrupted run resumes).

Measured here with ``--seeds 0 1 2 3 4 5 6 7`` (docs/streaming_parity.rst has the table):
the drop at epochs 232-268 (median 256.5); the merged automaton peaks at 1053-1291 states,
and the minimised one reaches the two parity states in every seed (epochs 379-683); every
test sequence of length 11..100 is right at every step from the drop on. Phase diagram
(8000 steps, seeds 0 and 1): merged at gain 0.1 for 30% and 100% of the sequences, one seed
of two at 10%; never at gain 0.5 (it generalises but keeps 131-248 minimised states); gain
2.0 diverges.
"""

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

import gk.plot
import gk.rnn
import gk.sweep
from gk.automaton import minimised
from gk.measures import first_time
from gk.rnn.train import run_automata

PAPER = dict(run={}, seeds=[0, 1, 2, 3],
             phase=dict(grid={"train_fraction": [0.1, 0.3, 1.0], "gain": [0.1, 0.5, 2.0],
                              "seed": [0, 1]},
                        fixed=dict(steps=8000, log_every=400, snapshot_every=8000,
                                   probe_pairs=0)))
QUICK = dict(run=dict(max_len=6, hidden=32, batch_size=None, lr=0.2, steps=3000,
                      log_every=50, snapshot_every=250, test_lengths=(7, 40), test_count=200),
             seeds=[0, 2],
             phase=dict(grid={"train_fraction": [0.3, 1.0], "gain": [0.1, 1.0], "seed": [0]},
                        fixed=dict(max_len=6, hidden=32, batch_size=None, lr=0.2, steps=3000,
                                   log_every=500, snapshot_every=3000, test_lengths=[7, 40],
                                   test_count=200, probe_pairs=0)))


def epochs(ds: xr.Dataset, reached: xr.DataArray) -> xr.DataArray:
    """The first logged epoch at which ``reached`` holds, per model (NaN if never)."""
    return first_time(reached, "step") / ds.steps_per_epoch


def from_then_on(holds: xr.DataArray) -> xr.DataArray:
    """True at the logged steps from which ``holds`` stays true to the end."""
    flipped = np.flip(holds.values, axis=0)
    return holds.copy(data=np.flip(np.logical_and.accumulate(flipped, axis=0), axis=0))


def summary(ds: xr.Dataset) -> xr.Dataset:
    """Per model: the drop, all-correct and two-state epochs and the largest automaton."""
    return xr.Dataset({
        "drop_epoch": epochs(ds, ds.test_acc >= 0.99),
        "all_correct_epoch": epochs(ds, ds.test_sequence_acc >= 1),
        "two_states_epoch": epochs(ds, from_then_on(ds.n_states_minimised == 2)),
        "largest_automaton": ds.n_states.max("step"),
        "final_states": ds.n_states_minimised.isel(step=-1, drop=True)})


def draw_automata(ds: xr.Dataset, path: Path, model: int = 0) -> None:
    """Model ``model``'s minimised automaton at the first snapshot, the snapshot nearest its
    largest automaton, the drop, and the last snapshot."""
    one = ds.isel(model=model)
    snapshots = ds.snapshot.values
    largest = int(one.n_states_minimised.idxmax("step"))
    drop = first_time(one.test_acc >= 0.99, "step")
    wanted = [snapshots[0], largest, float(drop) if np.isfinite(drop) else snapshots[-1],
              snapshots[-1]]
    steps = sorted({int(snapshots[np.abs(snapshots - w).argmin()]) for w in wanted})
    max_len = int(ds.attrs["max_len"])
    fig, axes = plt.subplots(1, len(steps), figsize=(4.5 * len(steps), 4), squeeze=False)
    for ax, step in zip(axes[0], steps, strict=True):
        automaton = run_automata(gk.rnn.load_params(ds, step).model(model), max_len)[0]
        small = minimised(automaton)
        epoch = step / float(one.steps_per_epoch)
        plural = "s" if small.n_states > 1 else ""
        gk.plot.automaton(small, ax=ax, title=f"epoch {epoch:g}: {small.n_states} state{plural}"
                                              f" ({automaton.n_states} merged)")
    fig.suptitle(f"minimised automaton of seed {int(one.seed)}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def phase_diagram(settings: dict, folder: Path, workers: int) -> xr.DataArray:
    """The share of seeds that merged, over (train_fraction, gain)."""
    cube = gk.sweep.run("rnn", settings["grid"], folder, workers=workers, progress=False,
                        **settings["fixed"])
    last = cube.isel(step=-1)
    merged = (last.n_states_minimised == 2) & (last.test_sequence_acc >= 1)
    return merged.mean("seed").rename("merged")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short sequences, small RNN")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds of part 1")
    parser.add_argument("--workers", type=int, default=1, help="processes of the sweep")
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    settings = QUICK if args.quick else PAPER
    name = "streaming_parity_quick" if args.quick else "streaming_parity"
    folder = args.out_dir
    ds = gk.rnn.train(**settings["run"], seed=args.seeds or settings["seeds"],
                      out=folder / f"{name}.nc", resume=True, progress=True)
    table = summary(ds).to_dataframe()[["drop_epoch", "all_correct_epoch",
                                        "two_states_epoch", "largest_automaton",
                                        "final_states"]]
    print(table.to_string(float_format=lambda x: f"{x:g}"))
    drop = table.drop_epoch.dropna()
    print(f"drop epoch: median {drop.median():g}, range {drop.min():g}-{drop.max():g} over "
          f"{len(drop)} of {len(table)} seeds; final test accuracy (per step) "
          f"{float(ds.test_acc.isel(step=-1).min()):.4f} at least")
    gk.plot.streaming_parity(ds, path=folder / f"{name}.png")
    draw_automata(ds, folder / f"{name}_automata.png")
    merged = phase_diagram(settings["phase"], folder / f"{name}_phase", args.workers)
    print("share of seeds merged into the 2-state automaton (rows: train_fraction):")
    print(merged.to_pandas().to_string())
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(merged.transpose("train_fraction", "gain").values, origin="lower",
                      vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(merged.sizes["gain"]), merged.gain.values)
    ax.set_yticks(range(merged.sizes["train_fraction"]), merged.train_fraction.values)
    ax.set_xlabel("initial weight scale (Xavier gain)")
    ax.set_ylabel("fraction of the sequences trained on")
    fig.colorbar(image, ax=ax, label="share of seeds merged")
    fig.tight_layout()
    fig.savefig(folder / f"{name}_phase.png", dpi=120)
    print(f"wrote {name}.nc, {name}.png, {name}_automata.png and {name}_phase.png in "
          f"{folder}")


if __name__ == "__main__":
    main()
