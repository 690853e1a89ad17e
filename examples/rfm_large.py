"""RFM beyond memory: Recursive Feature Machines on a + b mod 256 with the iterative solver.

With half of the 256² pairs for training, RFM solves kernel systems of n = 32,768 unknowns.
The dense solve holds the n×n kernel matrix and the copy that its Cholesky factorisation
overwrites: 16 GiB in float64, more than half the memory of a 24 GB machine.
``solver="cg"`` (:mod:`gk.solvers`) never forms the matrix: block conjugate gradients with a
Nyström preconditioner, the kernel applied by its closed form (quadratic kernel on pairs) or
a block of rows at a time; :func:`gk.solvers.memory_estimate` puts the solve at 2 GiB.

The script prints the predicted memory of both solvers, then for every iteration the test
and train accuracy, the block-CG steps and relative residual of the solve, the wall time of
the iteration and the peak resident memory of the process so far (VmHWM of
/proc/self/status); it writes the trajectory to ``--out-dir``.

    python examples/rfm_large.py                       # p = 256, 30 iterations
    python examples/rfm_large.py --p 128 --solver cholesky --iterations 4   # to compare
    python examples/rfm_large.py --quick               # p = 31, α = 0.7: a few seconds

The Gaussian kernel (``--kernel gaussian``) has no closed form: each product forms K in
blocks of rows, which at p = 256 makes a step several times slower.
"""

import argparse
import time
from pathlib import Path

import gk.rfm
from gk import io, solvers
from gk.tasks import modular, train_size

FULL = dict(p=256, train_fraction=0.5, iterations=30)
QUICK = dict(p=31, train_fraction=0.7, iterations=12)


def peak_memory_gib():
    """The peak resident memory of this process (VmHWM) in GiB, or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def report_memory(p, fraction):
    """Print what each solver is predicted to need (:func:`gk.solvers.memory_estimate`)."""
    task = modular("add", p)
    n = train_size(task, fraction)
    for solver in ("cholesky", "cg"):
        needed = solvers.memory_estimate(n, 2 * p, p, task.size - n, "float64", solver)
        print(f"predicted peak memory of the solve, solver={solver!r}: "
              f"{needed / 2**30:.2f} GiB (n = {n} training pairs)")


class Monitor:
    """Prints one line per RFM iteration (the ``callback`` of :func:`gk.rfm.run`)."""

    def __init__(self):
        self.last = time.perf_counter()
        self.seconds = []
        print(f"{'iteration':>9} {'test acc':>9} {'train acc':>9} {'cg steps':>8} "
              f"{'residual':>9} {'seconds':>8} {'VmHWM GiB':>9}")

    def __call__(self, iteration, row):
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now
        peak = peak_memory_gib()
        print(f"{iteration:>9} {row['test_acc'][0]:>9.4f} {row['train_acc'][0]:>9.4f} "
              f"{int(row['solver_iterations'][0]):>8} {row['solver_residual'][0]:>9.1e} "
              f"{self.seconds[-1]:>8.2f} {'n/a' if peak is None else f'{peak:.2f}':>9}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="p = 31, α = 0.7, 12 iterations")
    parser.add_argument("--p", type=int, help="the modulus (default: 256)")
    parser.add_argument("--iterations", type=int, help="RFM iterations (default: 30)")
    parser.add_argument("--kernel", choices=("quadratic", "gaussian"), default="quadratic")
    parser.add_argument("--solver", choices=solvers.SOLVERS, default="cg")
    parser.add_argument("--cg-tolerance", type=float, default=solvers.TOLERANCE)
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    settings = dict(QUICK if args.quick else FULL)
    settings.update({key: getattr(args, key) for key in ("p", "iterations")
                     if getattr(args, key) is not None})
    name = "rfm_large" + ("_quick" if args.quick else f"_p{settings['p']}_{args.solver}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"{name}.nc"

    report_memory(settings["p"], settings["train_fraction"])
    monitor = Monitor()
    start = time.perf_counter()
    ds = gk.rfm.run(op="add", **settings, kernel=args.kernel, seed=args.seed,
                    solver=args.solver, cg_tolerance=args.cg_tolerance, out=out,
                    overwrite=True, callback=monitor)
    test_acc = ds.test_acc.isel(model=0).values
    emerged = next((t for t, acc in enumerate(test_acc) if acc >= 0.9), None)
    print(f"\np = {settings['p']}, α = {settings['train_fraction']}, {args.kernel} kernel, "
          f"solver {io.config(ds)['solver']}: final test accuracy {test_acc[-1]:.4f}, "
          f"≥ 90% from iteration {emerged}")
    peak = peak_memory_gib()
    print(f"total {time.perf_counter() - start:.0f} s, "
          f"{sum(monitor.seconds) / len(monitor.seconds):.1f} s per iteration; peak resident "
          f"memory {'n/a' if peak is None else f'{peak:.2f} GiB'} (VmHWM)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
