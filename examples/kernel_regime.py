"""Seed 002, "why do you grok?": the lazy (NTK) predictor cannot generalise; the network can.

Two figures, one run:

1. **NTK regression against the training fraction α.** Kernel ridge regression with the
   network's NTK at initialisation (:func:`gk.ntk.regression`: what a network that never
   leaves the kernel regime predicts) beside the trained network itself, on a + b mod p for
   p = 31 and 61. The lazy predictor fits every training pair and gets 0% of the test pairs
   for every α < 1: a held-out (a, b) is the only pair of its row whose answer c = a + b is
   missing from the training labels of that row, and a permutation-equivariant kernel
   predicts it *least* (seed 002's lower bound, in its sharpest form). The trained network
   generalises from far less data.
2. **Leaving the kernel regime, with and without the ℓ∞ penalty.** Networks trained with
   and without λ∞‖θ‖∞ (seed 002's stand-in for AdamW's implicit bias) on p = 31, α = 0.5:
   test accuracy and the relative NTK distance ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F on a fixed probe of
   256 pairs, on the same axes against the step.

The networks are seed 002's: unnormalised f = V (W x)^{⊙2}, He-style initialisation
(``parametrisation="standard"``), width 4p, MSE on one-hot targets, full-batch GD with
lr = 4 (at lr = 1 they memorise but do not generalise within 20 000 steps at p = 31).

    python examples/kernel_regime.py            # p = 31 and 61; about 15 min on 2 cores
    python examples/kernel_regime.py --quick    # p = 23, under a minute

Files: ``kernel_regime[_quick]_alpha.png`` and ``.csv`` (accuracies against α),
``kernel_regime[_quick]_linf.png`` and one trajectory ``.nc`` per ℓ∞ strength.
"""

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gk.mlp  # noqa: E402
import gk.ntk  # noqa: E402
import gk.tasks  # noqa: E402

NETWORK = dict(parametrisation="standard", optimizer="gd", lr=4.0)
NTK = ("ntk_distance", "ntk_alignment")
PAPER = dict(primes=(31, 61), fractions=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
             steps=8000, linf_p=31, linf=(0.0, 1e-2, 3e-2),
             linf_options=dict(train_fraction=0.5, measures=NTK, measure_every=50, ntk_probe=256))
QUICK = dict(primes=(23,), fractions=(0.3, 0.6, 0.9), steps=2000, linf_p=23, linf=(0.0, 3e-2),
             linf_options=dict(train_fraction=0.6, measures=NTK, measure_every=50, ntk_probe=64))


def alpha_curve(p, fractions, steps, seed=0):
    """Test accuracy of NTK regression at initialisation and of the trained network, for
    each α (all α trained together as one ensemble, one model per α)."""
    task = gk.tasks.modular("add", p)
    params = gk.mlp.init(p, 4 * p, seed=seed, parametrisation=NETWORK["parametrisation"])
    lazy = [gk.ntk.regression(params, task, task.split(fraction, seed))["test_acc"]
            for fraction in fractions]
    ds = gk.mlp.train(p=p, width=4 * p, steps=steps, seed=[seed] * len(fractions),
                      train_fraction=list(fractions), log_every=steps, snapshot_every=steps,
                      **NETWORK)
    return lazy, ds.test_acc.isel(step=-1).values.tolist()


def first_step(ds, variable, threshold):
    """First logged step where model 0's ``variable`` reaches ``threshold`` (None if never)."""
    values = ds[variable].isel(model=0).values
    reached = np.flatnonzero(values >= threshold)
    return int(ds.step[reached[0]]) if len(reached) else None


def plot_alpha(curves, fractions, path):
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for (p, (lazy, trained)), colour in zip(curves.items(), ("C0", "C1", "C2"), strict=False):
        ax.plot(fractions, trained, "o-", color=colour, label=f"trained network, p = {p}")
        ax.plot(fractions, lazy, "s--", color=colour, label=f"NTK regression, p = {p}")
    ax.set(xlabel="training fraction α", ylabel="test accuracy", ylim=(-0.03, 1.03),
           title="a + b mod p: lazy predictor vs trained network")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_linf(runs, path):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (strength, ds), colour in zip(runs.items(), ("C0", "C3", "C2"), strict=False):
        label = f"λ∞ = {strength:g}"
        ax.plot(ds.step, ds.test_acc.isel(model=0), color=colour, label=f"test acc, {label}")
        ax.plot(ds.step, ds.train_acc.isel(model=0), ":", color=colour, lw=1,
                label=f"train acc, {label}")
        distance = ds.ntk_distance.isel(model=0).dropna("step")
        ax.plot(distance.step, distance, "--", color=colour, label=f"NTK distance, {label}")
    ax.set(xlabel="step", ylabel="accuracy / ‖Θ_t − Θ_0‖ / ‖Θ_0‖",
           title="leaving the kernel regime")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="p = 13: seconds")
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    settings = QUICK if args.quick else PAPER
    name = args.out_dir / ("kernel_regime" + ("_quick" if args.quick else ""))
    fractions = settings["fractions"]

    curves = {p: alpha_curve(p, fractions, settings["steps"]) for p in settings["primes"]}
    with open(f"{name}_alpha.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["p", "train_fraction", "ntk_regression_test_acc",
                         "trained_network_test_acc"])
        for p, (lazy, trained) in curves.items():
            for row in zip(fractions, lazy, trained, strict=True):
                writer.writerow([p, *row])
                print(f"p = {p}  α = {row[0]:.2f}  NTK regression test acc {row[1]:.3f}  "
                      f"trained network {row[2]:.3f}")
    plot_alpha(curves, fractions, f"{name}_alpha.png")

    runs = {}
    for strength in settings["linf"]:
        p = settings["linf_p"]
        runs[strength] = gk.mlp.train(
            p=p, width=4 * p, steps=settings["steps"], linf=strength, log_every=10,
            snapshot_every=settings["steps"], out=f"{name}_linf{strength:g}.nc",
            overwrite=True, progress=not args.quick, **NETWORK, **settings["linf_options"])
    for strength, ds in runs.items():
        distance = ds.ntk_distance.isel(model=0).dropna("step")
        memorised, grokked = first_step(ds, "train_acc", 1.0), first_step(ds, "test_acc", 0.99)
        at = ", ".join(f"{float(distance.sel(step=step, method='nearest')):.3f} at step {step}"
                       for step in (memorised, grokked) if step is not None)
        print(f"λ∞ = {strength:g}: train 100% at step {memorised}, test ≥ 99% at {grokked}; "
              f"NTK distance {at}, {float(distance[-1]):.3f} at the end")
    plot_linf(runs, f"{name}_linf.png")
    print(f"wrote {name}_alpha.png, {name}_alpha.csv, {name}_linf.png")


if __name__ == "__main__":
    main()
