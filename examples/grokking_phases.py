"""Seed 003's three phases on the two-layer network: restricted and excluded loss.

Nanda et al. (seed 003) split grokking into memorisation, circuit formation and cleanup
with two Fourier ablations of the logits over all pairs: the **restricted loss** keeps only
the key frequencies' waves cos/sin(w_k(a + b)) and the constant, the **excluded loss**
removes exactly those waves and is measured on the training pairs
(:func:`gk.measures.restricted_loss`, :func:`gk.measures.excluded_loss`). This example trains
the network with ReLU, cross-entropy and AdamW (lr 1e-3, weight decay 1, full batch,
standard parametrisation, width 512) on 30% of the pairs a + b mod 97, logs both losses
(key frequencies at each step: the fewest carrying 90% of the logits' power along a + b),
marks the phases with :func:`gk.measures.grokking_phases`, and prints when the restricted
loss, the test loss and the test accuracy cross their milestones.

    python examples/grokking_phases.py            # p = 97, 16 000 steps: ~10 min on 2 cores
    python examples/grokking_phases.py --quick    # p = 31, α = 0.7, 3 000 steps: ~30 s

Measured here (p = 97, seed 0): train accuracy 100% at step 320; the excluded loss falls
from 4.589 to its minimum 0.177 at step 2 720 (end of memorisation) and rises again to 0.453;
the restricted loss halves by step 2 880, while the test loss halves (from its peak at step
480) only at step 5 440; test accuracy reaches 10% at step 6 080, 50% at 8 480 and 99% at
14 560. The rule puts the start of cleanup at step 3 520: in this network the test loss has
no plateau after its early peak but falls steadily, so its 10% drop comes early; the sharp
rise of test accuracy comes later.

At p = 31 the network does not generalise from 30% (or 50%) of the pairs in 3 000 steps;
``--quick`` trains on 70%, where the excluded loss does not fall to half its initial value,
so the phase boundaries come out NaN: only the full run shows all three phases.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gk.mlp  # noqa: E402
from gk.measures import grokking_phases  # noqa: E402

PAPER = dict(p=97, train_fraction=0.3, steps=16_000, log_every=160)
QUICK = dict(p=31, train_fraction=0.7, steps=3_000, log_every=50)
NETWORK = dict(width=512, activation="relu", loss="cross_entropy", optimizer="adamw",
               lr=1e-3, weight_decay=1.0, parametrisation="standard")


def first_step(ds, variable, below=None, above=None, after=0):
    """First logged step from ``after`` on where ``variable`` is ≤ ``below`` (or ≥ ``above``);
    None if never."""
    later = ds.isel(model=0).sel(step=slice(after, None))
    values = later[variable].values
    reached = values <= below if below is not None else values >= above
    return int(later.step[np.argmax(reached)]) if reached.any() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="p = 31, α = 0.7: ~30 s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    settings = QUICK if args.quick else PAPER
    stem = "grokking_phases" + ("_quick" if args.quick else "")
    ds = gk.mlp.train(op="add", seed=args.seed, **settings, **NETWORK,
                      snapshot_every=settings["steps"],
                      measures=["restricted_loss", "excluded_loss"],
                      out=args.out_dir / f"{stem}.nc", overwrite=True, progress=True)
    run = ds.isel(model=0)
    phases = grokking_phases(run.step, run.test_loss, run.excluded_loss)
    restricted0, peak = float(run.restricted_loss[0]), int(np.argmax(run.test_loss.values))
    print(f"memorisation ends at step {phases.memorisation_end:g}; circuit formation ends "
          f"(cleanup starts) at step {phases.circuit_formation_end:g}")
    print(f"train accuracy 100% at step {first_step(ds, 'train_acc', above=1.0)}")
    peak_step, peak_loss = int(run.step[peak]), float(run.test_loss[peak])
    halved = first_step(ds, "test_loss", below=peak_loss / 2, after=peak_step)
    print(f"restricted loss ≤ half its initial value at step "
          f"{first_step(ds, 'restricted_loss', below=restricted0 / 2)}; "
          f"test loss ≤ half its peak (step {peak_step}) at step {halved}")
    excluded = run.excluded_loss.values
    lowest = int(np.argmin(excluded))
    print(f"excluded loss: {excluded[0]:.3f} at step 0, minimum {excluded[lowest]:.3f} at step "
          f"{int(run.step[lowest])}, then up to {excluded[lowest:].max():.3f}")
    for level in (0.1, 0.5, 0.99):
        print(f"test accuracy ≥ {level:.0%} at step {first_step(ds, 'test_acc', above=level)}")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in ("train_loss", "test_loss", "restricted_loss", "excluded_loss"):
        ax.plot(run.step, run[name], label=name.replace("_", " "))
    for boundary in phases:
        if np.isfinite(boundary):
            ax.axvline(boundary, color="black", ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"a + b mod {settings['p']}: memorisation | circuit formation | cleanup")
    fig.tight_layout()
    fig.savefig(args.out_dir / f"{stem}.png", dpi=120)
    print(f"wrote {args.out_dir / f'{stem}.png'}")


if __name__ == "__main__":
    main()
