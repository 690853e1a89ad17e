"""Seed 001, Fig. 4b and App. B, Fig. 5: accuracy of the analytic weights against width.

The closed-form Fourier weights of eqs. 6, 7 and 12 (:func:`gk.analytic.weights`), with no
training, on all p² pairs of a + b mod 97, for widths N = 8 … 2048, the activations
quadratic (eq. 4, the case the paper proves), ReLU and GELU (App. B: the same weights work,
at larger width) and tanh (odd: it never produces the n + m wave, and stays at chance), and
seeds 0, 1, 2 (the seed draws each neuron's frequency and the
phases φ⁽¹⁾, φ⁽²⁾; φ⁽³⁾ = φ⁽¹⁾ + φ⁽²⁾). A network of width N is the first N neurons of the
widest one, so one forward pass per activation and seed gives the whole curve
(:func:`gk.analytic.width_curve`).

It prints, for each activation, the accuracy at every width (mean and range over the seeds)
and the first width at which the mean accuracy reaches 99%, and, for the quadratic network,
the outputs f_q(n, m) against eq. 16, f ≈ δ(n + m − q): the mean output on the correct class
(exactly 1 at every width: over all pairs the other waves sum to 0), its standard deviation
over the pairs, which falls as N^{−1/2}, and the mean of the largest output on a wrong class.
It writes the curve as a netCDF file and the figure (:func:`gk.plot.width_curve`) to
``--out-dir``.

    python examples/analytic_width.py            # p = 97, N = 8 … 2048, ~10 s on 2 cores
    python examples/analytic_width.py --quick    # p = 23, N = 8 … 512, ~2 s

The network's own normalisation 2/N is used for every activation (App. B writes
1/(D√N) for the others): a positive factor does not change the argmax, so the accuracy is
the same, only the scale of ``correct_output`` differs.
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gk.analytic  # noqa: E402
import gk.mlp  # noqa: E402
import gk.plot  # noqa: E402
import gk.tasks  # noqa: E402
from gk.backend import to_numpy  # noqa: E402

ACTIVATIONS = ["quadratic", "relu", "gelu", "tanh"]
PAPER = dict(op="add", p=97, widths=[8, 16, 32, 64, 128, 256, 512, 1024, 2048],
             activations=ACTIVATIONS, seeds=[0, 1, 2])
QUICK = dict(op="add", p=23, widths=[8, 16, 32, 64, 128, 256, 512],
             activations=ACTIVATIONS, seeds=[0, 1, 2])


def first_width(ds, activation, level=0.99):
    """The first width whose accuracy, averaged over the seeds, reaches ``level`` (or None)."""
    mean = ds.accuracy.sel(activation=activation).mean("seed").values
    reached = mean >= level
    return int(ds.width[np.argmax(reached)]) if reached.any() else None


def output_spread(ds):
    """For the quadratic network at each width: the standard deviation over pairs of the
    output on the correct class c, and the mean over pairs of the largest output on a wrong
    class, averaged over the seeds (the mean output on c is ``ds.correct_output``)."""
    op, p = ds.attrs["op"], int(ds.attrs["p"])
    task = gk.tasks.modular(op, p)
    widths = [int(w) for w in ds.width.values]
    rows = np.arange(task.size)
    result = np.zeros((len(widths), 2))
    for seed in ds.seed.values:
        full = gk.analytic.weights(op, p, widths[-1], int(seed)).as_batch()
        for i, width in enumerate(widths):       # the first N neurons: the width-N network
            params = gk.mlp.Params(full.W1[:, :width], full.W2[:, :, :width])
            f = to_numpy(gk.mlp.forward(params, task.a[None], task.b[None])[0][0])
            correct = f[rows, task.c]
            f[rows, task.c] = -np.inf
            result[i] += [correct.std(), f.max(axis=1).mean()]
    return result / len(ds.seed)


def print_tables(ds, spread):
    """Accuracy per width and activation; first width at 99%; quadratic correct output."""
    activations = [str(a) for a in ds.activation.values]
    seeds, p = ds.seed.values.tolist(), int(ds.attrs["p"])
    print(f"\naccuracy of the analytic weights on all {p ** 2} pairs of "
          f"{ds.attrs['op']} mod {p}: mean over seeds {seeds} [min–max]")
    print(f"{'width':>6} " + " ".join(f"{a:>20}" for a in activations))
    for width in ds.width.values:
        cells = []
        for activation in activations:
            values = ds.accuracy.sel(width=width, activation=activation).values
            cells.append(f"{values.mean():.4f} [{values.min():.3f}–{values.max():.3f}]")
        print(f"{int(width):>6} " + " ".join(f"{c:>20}" for c in cells))
    print("\nfirst width with mean accuracy ≥ 99%:")
    for activation in activations:
        width = first_width(ds, activation)
        print(f"  {activation:<10} {'not reached' if width is None else width}")
    if spread is not None:
        print("\nquadratic network, outputs f_q(n, m) on all pairs (eq. 16: f ≈ δ(n + m − q)),"
              " mean over seeds:\n"
              f"{'width':>6} {'mean f_c':>9} {'std f_c':>8} {'mean max f_q≠c':>15}")
        for i, width in enumerate(ds.width.values):
            mean = ds.correct_output.sel(width=width, activation="quadratic").values.mean()
            print(f"{int(width):>6} {mean:>9.4f} {spread[i, 0]:>8.4f} {spread[i, 1]:>15.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="p = 23, N ≤ 512: a few seconds")
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    settings = QUICK if args.quick else PAPER
    name = "analytic_width" + ("_quick" if args.quick else "")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    ds = gk.analytic.width_curve(**settings)
    spread = output_spread(ds) if "quadratic" in settings["activations"] else None
    seconds = time.perf_counter() - start
    path = args.out_dir / f"{name}.nc"
    path.unlink(missing_ok=True)
    ds.to_netcdf(path)
    fig = gk.plot.width_curve(ds, path=args.out_dir / f"{name}.png")
    plt.close(fig)

    print_tables(ds, spread)
    print(f"\n{seconds:.1f} s; wrote {path} and {args.out_dir / name}.png")


if __name__ == "__main__":
    main()
