"""Seed 003 (Nanda et al.): progress measures of a one-layer transformer that groks a + b
mod 113.

The transformer of seed 003 (d_model 128, 4 heads, d_mlp 512, ReLU, no LayerNorm) is trained
on 30% of the pairs with full-batch AdamW (lr 1e-3, weight decay 1, β = (0.9, 0.98)) on the
cross-entropy, in float32 with the log-softmax in float64 as in the paper's code. Then, from
the weights saved every ``snapshot_every`` steps:

- the key frequencies, read off the final embedding's Fourier power (as the paper does, with
  their share of ‖W_E‖²) and off the final logits (:func:`gk.fourier.key_frequencies`);
- the restricted loss (only the key frequencies' waves along a + b kept, all pairs) and the
  excluded loss (those waves removed, training pairs) at every snapshot, with the final key
  frequencies fixed, as the paper does;
- the three phases: memorisation ends where the excluded loss is smallest and starts rising
  (:func:`gk.measures.grokking_phases`), cleanup starts with the snapshot interval over which
  the test loss falls fastest (its collapse, which makes grokking look sudden); the interval
  over which the restricted loss falls fastest is printed too.

It writes the run, a figure of the losses with the phases shaded and one of the final
model's circuit (:func:`gk.plot.transformer`).

    python examples/nanda_progress.py            # p = 113, 40 000 steps: ~1.5 h on one core
    python examples/nanda_progress.py --quick    # p = 19, 1 500 steps: ~15 s

An interrupted run continues from its checkpoint when the script is run again.

Measured here (seed 0, float32, stopped at step 18 000 of 40 000 on a 2-core CPU): train
accuracy 100% from step 200, test accuracy ≥ 99% from step 8 300 (99.83% at the end); key
frequencies {39, 45, 51, 53} from the logits, holding 74% of ‖W_E‖² ({20, 23, 39, 45, 51,
53} carry 90% of the embedding's wave power); the excluded loss is smallest at step 1 500
and rises from there (memorisation ends; seed 003: ≈ 1.4k); restricted and test loss both
fall fastest between steps 7 500 and 8 000 (cleanup; seed 003: 9.4k–14k).
"""

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import gk.plot
from gk import backend, measures
from gk.fourier import frequency_power, key_frequencies
from gk.tasks import modular
from gk.transformer.model import outputs, sequence_tokens
from gk.transformer.train import load_params, train

PAPER = dict(p=113, dtype="float32", steps=40000, log_every=100, snapshot_every=500, seed=0,
             measures=["restricted_loss", "excluded_loss"], measure_every=500)
QUICK = dict(p=19, d_model=32, d_mlp=128, lr=3e-3, train_fraction=0.6, dtype="float32",
             steps=1500, log_every=25, snapshot_every=50, seed=1,
             measures=["restricted_loss", "excluded_loss"], measure_every=50)


def ablation_curves(ds, frequencies):
    """Restricted and excluded loss at every snapshot, with fixed key frequencies."""
    p = int(ds.attrs["p"])
    task = modular("add", p)
    xp = backend.namespace()
    tokens = sequence_tokens("a b =", p, *(xp.asarray(x) for x in task.operands()))
    train_pairs = np.flatnonzero(ds.is_train[0].values)
    restricted, excluded = [], []
    for step in ds.snapshot.values:
        logits = outputs(load_params(ds, int(step)), tokens)[0]
        restricted.append(float(measures.restricted_loss(logits, task.c, p, frequencies,
                                                         "cross_entropy")))
        excluded.append(float(measures.excluded_loss(logits, task.c, p, frequencies,
                                                     "cross_entropy", train_pairs)))
    return np.array(restricted), np.array(excluded)


def steepest_fall(steps, curve):
    """The snapshot interval over which log(curve) falls fastest, as (start, end) steps."""
    slopes = np.diff(np.log(curve)) / np.diff(steps)
    at = int(np.argmin(slopes))
    return float(steps[at]), float(steps[at + 1])


def report(ds, settings):
    p = int(ds.attrs["p"])
    final = load_params(ds)
    embedding = final.arrays["W_E"][0, :p].T
    power = frequency_power(embedding, p)
    from_embedding = [int(k) for k in gk.fourier.key_frequencies_from_weights(embedding, p)]
    xp = backend.namespace()
    tokens = sequence_tokens("a b =", p, *(xp.asarray(x) for x in modular("add", p).operands()))
    from_logits = [int(k) for k in key_frequencies(outputs(final, tokens)[0], p)]
    share = power[from_logits].sum() / power.sum()
    memorised = float(measures.memorisation_time(ds)[0])
    grokked = float(measures.grokking_time(ds)[0])
    steps = ds.snapshot.values
    restricted, excluded = ablation_curves(ds, from_logits)
    test = ds.test_loss.sel(step=steps).values[:, 0]
    print(f"a + b mod {p}, seed {int(ds.seed[0])}, {int(ds.step[-1])} steps "
          f"({ds.attrs['status']}):")
    print(f"  train accuracy 100% from step {memorised:.0f}; test accuracy ≥ 99% from step "
          f"{grokked:.0f}; final test accuracy {float(ds.test_acc[-1, 0]):.4f}")
    print(f"  key frequencies from the logits: {sorted(from_logits)}, holding {share:.1%} of "
          f"the embedding's ‖W_E‖²")
    print(f"  key frequencies from the embedding (90% of its wave power): "
          f"{sorted(from_embedding)}")
    memorisation_end = measures.grokking_phases(steps, test, excluded).memorisation_end
    print(f"  excluded loss smallest at step {memorisation_end:.0f}, then rising "
          f"(memorisation ends)" if np.isfinite(memorisation_end) else
          "  excluded loss did not fall to half its start and rise again: no memorisation "
          "phase found by gk.measures.grokking_phases")
    for name, curve in (("restricted", restricted), ("test", test)):
        start, end = steepest_fall(steps, curve)
        print(f"  {name} loss falls fastest between steps {start:.0f} and {end:.0f} "
              f"({curve[steps == start][0]:.3g} → {curve[steps == end][0]:.3g})")
    cleanup_start = steepest_fall(steps, test)[0]
    print(f"  phases: memorisation 0–{memorisation_end:.0f}, circuit formation "
          f"{memorisation_end:.0f}–{cleanup_start:.0f}, cleanup from {cleanup_start:.0f}")
    return restricted, excluded, (memorisation_end, cleanup_start)


def figure(ds, restricted, excluded, phases, path):
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(ds.step, ds.train_loss[:, 0], label="train loss")
    ax.plot(ds.step, ds.test_loss[:, 0], label="test loss")
    ax.plot(ds.snapshot, restricted, "o-", ms=3, label="restricted loss")
    ax.plot(ds.snapshot, excluded, "s-", ms=3, label="excluded loss")
    start, end = float(ds.step[0]), float(ds.step[-1])
    bounds = [start, *phases, end]
    names, shades = ("memorisation", "circuit formation", "cleanup"), ("0.93", "0.85", "0.93")
    for left, right, name, shade in zip(bounds, bounds[1:], names, shades, strict=False):
        if np.isfinite(left) and np.isfinite(right):
            ax.axvspan(left, right, color=shade, zorder=0)
            ax.text((left + right) / 2, 1.02, name, transform=ax.get_xaxis_transform(),
                    ha="center", fontsize="small")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="p = 19, 1 500 steps: ~15 s")
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    settings = QUICK if args.quick else PAPER
    stem = args.out_dir / ("nanda_progress" + ("_quick" if args.quick else ""))
    ds = train(**settings, out=stem.with_suffix(".nc"), resume=True, progress=True)
    restricted, excluded, phases = report(ds, settings)
    figure(ds, restricted, excluded, phases, stem.with_suffix(".png"))
    gk.plot.transformer(load_params(ds), path=f"{stem}_circuit.png",
                        title=f"final transformer, a + b mod {ds.attrs['p']}")
    print(f"wrote {stem.with_suffix('.nc')}, {stem.with_suffix('.png')}, {stem}_circuit.png")


if __name__ == "__main__":
    main()
