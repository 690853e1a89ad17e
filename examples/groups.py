"""Groups as tasks: the network and RFM on S5 and a dihedral group, accuracy against α.

Power et al. (arXiv 2201.02177) trained on every binary operation they could tabulate,
among them three on the symmetric group S5 (120 permutations): x·y, x·y·x⁻¹ and x·y·x.
gk builds such tasks from tables (:func:`gk.tasks.table`, :func:`gk.tasks.symmetric_group`,
:func:`gk.tasks.dihedral_group`), and every model takes them by name (``op="S5:xy"``).

For each operation and training fraction α this trains, on the same splits:

- **the network**, a ReLU MLP in the standard parametrisation (width 256, cross-entropy,
  AdamW with lr 3e-3 and weight decay 1 on minibatches of 512, 5000 steps, all α as one
  batched run);
- **RFM** with the quadratic kernel (seed 000's machine: ridgeless, M ← AGOP^½), for a few
  iterations, every α as one batched run.

It prints the final test accuracy of each (op, α, model), writes them to
``groups.csv`` and draws accuracy against α (``groups.png``). Measures built on Z_p (IPR,
circulant deviation, Fourier ablations) do not apply to a table's arbitrary labels, so the
files hold none.

    python examples/groups.py            # S5's three ops at α = 0.5, 0.9 and D_13's x·y
                                         # at α = 0.3 .. 0.9
    python examples/groups.py --quick    # D_7 and S3: seconds
"""

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gk.mlp  # noqa: E402
import gk.rfm  # noqa: E402

FULL = {"S5:xy": (0.5, 0.9), "S5:xyx^-1": (0.5, 0.9), "S5:xyx": (0.5, 0.9),
        "D13:xy": (0.3, 0.5, 0.7, 0.9)}
QUICK = {"S3:xyx": (0.5, 0.9), "D7:xy": (0.5, 0.7, 0.9)}
NETWORK = dict(width=256, activation="relu", parametrisation="standard",
               loss="cross_entropy", optimizer="adamw", lr=3e-3, weight_decay=1.0,
               batch_size=512)
STEPS = {"full": 5000, "quick": 1500}
RFM_ITERATIONS = {"full": 5, "quick": 5}


def final_accuracy(ds) -> np.ndarray:
    """Each model's last logged test accuracy."""
    time_dim = gk.io.time_dim(ds)
    return ds.test_acc.isel({time_dim: -1}).values


def run_op(op: str, fractions: tuple[float, ...], mode: str, seed: int, out_dir: Path,
           stem: str) -> list[dict]:
    """Train the network and RFM on every fraction of ``op``; their rows of results."""
    name = op.replace(":", "_").replace("^", "")
    network = gk.mlp.train(op=op, train_fraction=list(fractions), seed=seed,
                           steps=STEPS[mode], log_every=100, **NETWORK,
                           out=out_dir / f"{stem}_{name}_network.nc", overwrite=True,
                           progress=True)
    rfm = gk.rfm.run(op=op, train_fraction=list(fractions), seed=seed,
                     iterations=RFM_ITERATIONS[mode], snapshot_every=RFM_ITERATIONS[mode],
                     out=out_dir / f"{stem}_{name}_rfm.nc", overwrite=True)
    rows = []
    for model, ds in (("network", network), ("rfm", rfm)):
        for fraction, accuracy in zip(fractions, final_accuracy(ds), strict=True):
            rows.append({"op": op, "train_fraction": fraction, "model": model,
                         "test_acc": float(accuracy)})
            print(f"{op:>10}  α = {fraction:.1f}  {model:>8}: test accuracy {accuracy:.3f}")
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Test accuracy against α, one panel per operation."""
    ops = list(dict.fromkeys(row["op"] for row in rows))
    fig, axes = plt.subplots(1, len(ops), figsize=(3.6 * len(ops), 3.2), squeeze=False)
    for ax, op in zip(axes[0], ops, strict=True):
        for model in ("network", "rfm"):
            points = [(r["train_fraction"], r["test_acc"]) for r in rows
                      if r["op"] == op and r["model"] == model]
            ax.plot(*zip(*points, strict=True), "o-", label=model)
        ax.set_title(op)
        ax.set_xlabel("training fraction α")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test accuracy")
    axes[0, 0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="D_7 and S3: seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    stem = "groups" + ("_quick" if args.quick else "")
    rows = []
    for op, fractions in (QUICK if args.quick else FULL).items():
        rows += run_op(op, fractions, mode, args.seed, args.out_dir, stem)
    with open(args.out_dir / f"{stem}.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out_dir / f"{stem}.png")
    print(f"wrote {args.out_dir / f'{stem}.csv'} and {args.out_dir / f'{stem}.png'}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
