"""The GPU benchmarks: ``GK_BACKEND=cupy python -m bench --gpu``.

On the device an absolute time counts, so each is set against the device's own rate,
measured in the same run (the timers read after ``cupy.cuda.Device().synchronize()``):

- ``gpu_ensemble``: a bare training step (``loss_and_grads`` + GD update) of B = 64 networks
  (p = 97, N = 512, α = 0.5, float32) against the same B × three n·N·p products as bare
  batched matrix products (target: at least half their rate), and against 64 single-model
  steps;
- ``gpu_rfm``: one RFM iteration (quadratic kernel, addition, α = 0.5) at p = 61, 97 and 199,
  whose solve is ``gk.backend.cholesky_solve``, against a bare ``cupy.linalg.cholesky`` of the
  same n;
- ``gpu_agreement``: the same ``gk.mlp.train`` run (p = 31, 200 steps, float64) and
  ``gk.rfm.run`` (p = 31, 3 iterations), each in a process with ``GK_BACKEND=numpy`` and one
  with this run's backend: the largest relative difference of the logged losses, the final
  weights and the final M (target: 1e-8 for the network).

On the NumPy backend the same code runs on the CPU: a dry run that checks the benchmarks,
not a measurement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import gk
from bench import limits, rfm_iteration, train_step
from bench._env import thread_env
from bench.common import ROOT, Options, alternate, comparison, median, network, timed

MODELS = 64
DTYPE = "float32"
TARGET_FRACTION = 0.5
RFM_P = {"full": (61, 97, 199), "quick": (7, 11)}
TRAJECTORY = {"full": {"p": 31, "steps": 200, "iterations": 3},
              "quick": {"p": 11, "steps": 20, "iterations": 2}}
TOLERANCE = {"network": 1e-8, "rfm": 1e-6}
"""Largest relative difference of NumPy and the GPU; RFM's ridgeless solves (condition
numbers up to 1e10) amplify round-off more than the network's steps."""

ENSEMBLE = (f"Seconds per bare GD step of {MODELS} networks at once ({DTYPE}), against one "
            f"network's step × {MODELS} and against their three n·N·p products as bare "
            f"batched matrix products (target: hardware ≥ {TARGET_FRACTION}).")
RFM = ("Seconds of one RFM iteration (quadratic kernel, addition mod p, α = 0.5, float64; "
       "solve by gk.backend.cholesky_solve) against a bare Cholesky factorisation "
       "(cupy.linalg.cholesky) of the same n.")
AGREEMENT = ("The same gk.mlp.train run (p = {p}, {steps} steps of GD, float64) and gk.rfm.run "
             "(p = {p}, {iterations} iterations) on NumPy and on {backend}: max |Δ| / "
             "max |NumPy| of the logged losses and final weights.")


def dry_run() -> str:
    """A note for the descriptions where the backend is NumPy."""
    return "" if gk.backend.backend_name() == "cupy" else "Dry run on NumPy, not a measurement. "


def ensemble(options: Options) -> dict[str, Any]:
    """64 networks' bare step against their products, bare and batched, and one network."""
    net, steps = network(options), 2 if options.quick else 50
    batch, single = (train_step.problem(net, DTYPE, models) for models in (MODELS, 1))
    for prob in (batch, single):
        train_step.gk_steps(prob, 1)                         # first-call costs, untimed
    pairs = train_step.bare_operands(batch)
    runs = alternate({"gk": lambda: train_step.gk_steps(batch, steps)[0],
                      "single": lambda: MODELS * train_step.gk_steps(single, steps)[0],
                      "bare": lambda: limits.products_seconds(pairs, steps)}, options.repeats)
    flops = limits.product_flops(limits.network_shapes(net.n, net.width, net.p), MODELS)
    record = comparison(f"{DTYPE}, B = {MODELS}, all models", "s/step", runs["gk"],
                        {f"{MODELS} × one model": runs["single"]}, runs["bare"], models=MODELS,
                        flops_per_step=flops, gk_tflops=flops / median(runs["gk"]) / 1e12,
                        bare_tflops=flops / median(runs["bare"]) / 1e12)
    record["meets_target"] = record["hardware_fraction"] >= TARGET_FRACTION
    print(f"gpu_ensemble: {record['gk_s']:.4g} s/step, {record['gk_tflops']:.2f} TFLOP/s, "
          f"hardware {record['hardware_fraction']:.2f}", file=sys.stderr, flush=True)
    return {"table": "comparison", "network": net.as_dict(), "records": [record],
            "target_fraction": TARGET_FRACTION, "device": gk.backend.device_name(),
            "description": dry_run() + ENSEMBLE}


def cholesky_seconds(n: int) -> float:
    """Seconds of a bare Cholesky factorisation of an n × n SPD float64 matrix on the
    backend (``cupy.linalg.cholesky`` on the GPU), filled untimed."""
    xp = gk.backend.namespace()
    A = xp.random.random((n, n))
    A = A + A.T
    A[xp.arange(n), xp.arange(n)] += 2 * n
    return timed(lambda: xp.linalg.cholesky(A))[0]


def rfm(options: Options) -> dict[str, Any]:
    """One RFM iteration at each p against a bare Cholesky of its n."""
    rfm_iteration.gk_iteration(*(rfm_iteration.problem(5)[k] for k in
                                 ("M", "train", "test", "Y")), 5)   # first-call costs
    cholesky_seconds(64)
    records = []
    for p in RFM_P["quick" if options.quick else "full"]:
        setup = rfm_iteration.problem(p)
        parts: list[dict[str, float]] = []

        def iteration(setup: dict = setup, parts: list = parts) -> float:
            times, _ = rfm_iteration.gk_iteration(setup["M"], setup["train"], setup["test"],
                                                  setup["Y"], setup["p"])
            parts.append(times)
            return times["total"]

        runs = alternate({"gk": iteration, "bare": lambda n=setup["n"]: cholesky_seconds(n)},
                         options.repeats)
        medians = {part: median([t[part] for t in parts]) for part in parts[0]}
        records.append(comparison(f"p = {p}, n = {setup['n']}", "s/iteration", runs["gk"],
                                  None, runs["bare"], p=p, n=setup["n"], parts=medians,
                                  solve_over_cholesky=medians["solve"] / median(runs["bare"])))
        print(f"gpu_rfm p={p}: {records[-1]['gk_s']:.4g} s/iteration, bare Cholesky "
              f"{records[-1]['bare_s']:.4g} s", file=sys.stderr, flush=True)
        del setup
    return {"table": "comparison", "records": records, "device": gk.backend.device_name(),
            "description": dry_run() + RFM}


# ---------------------------------------------------------------- NumPy against the GPU

def trajectory(out: Path, quick: bool) -> None:
    """Train the network and run RFM on this process's backend; save what is compared."""
    sizes = TRAJECTORY["quick" if quick else "full"]
    ds = gk.mlp.train(p=sizes["p"], steps=sizes["steps"], dtype="float64", log_every=10,
                      snapshot_every=sizes["steps"], seed=0)
    machine = gk.rfm.run(p=sizes["p"], iterations=sizes["iterations"])
    np.savez(out, **{"network train_loss": ds.train_loss.values,
                     "network test_loss": ds.test_loss.values,
                     "network final W1": ds.W1.isel(snapshot=-1).values,
                     "network final W2": ds.W2.isel(snapshot=-1).values,
                     "rfm train_loss": machine.train_loss.values,
                     "rfm test_loss": machine.test_loss.values,
                     "rfm final M": machine.M.isel(snapshot=-1).values})


def run_trajectory(backend: str, folder: Path, options: Options) -> dict[str, np.ndarray]:
    """:func:`trajectory` in a process with ``GK_BACKEND=backend``; what it saved."""
    out = folder / f"{backend}.npz"
    command = [sys.executable, "-m", "bench.gpu", "--trajectory", str(out)]
    command += ["--quick"] * options.quick
    subprocess.run(command, cwd=ROOT, env=thread_env(options.threads, GK_BACKEND=backend),
                   check=True)
    with np.load(out) as saved:
        return dict(saved)


def max_relative(x: np.ndarray, reference: np.ndarray) -> float:
    """max |x − ref| / max |ref|."""
    return float(np.abs(x - reference).max() / np.abs(reference).max())


def agreement(options: Options) -> dict[str, Any]:
    """The same runs on NumPy and on this run's backend, compared."""
    backend = gk.backend.backend_name()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        reference = run_trajectory("numpy", folder, options)
        other = run_trajectory(backend, folder, options)
    records = []
    for quantity, values in reference.items():
        difference = max_relative(other[quantity], values)
        tolerance = TOLERANCE[quantity.split()[0]]
        records.append({"quantity": quantity, "compared": f"numpy vs {backend}",
                        "max_relative_difference": difference, "tolerance": tolerance,
                        "passed": difference <= tolerance})
    sizes = TRAJECTORY["quick" if options.quick else "full"]
    return {"table": "agreement", "records": records, "sizes": sizes,
            "failures": [f"{r['quantity']}: {r['max_relative_difference']:.3g} over "
                         f"{r['tolerance']:g}" for r in records if not r["passed"]],
            "description": dry_run() + AGREEMENT.format(backend=backend, **sizes)}


def main() -> None:
    """The worker of ``gpu_agreement``."""
    parser = argparse.ArgumentParser(description="one side of gpu_agreement (run by "
                                                 "python -m bench --gpu)")
    parser.add_argument("--trajectory", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"gpu_agreement: GK_BACKEND={os.environ.get('GK_BACKEND')}", file=sys.stderr)
    trajectory(args.trajectory, args.quick)


if __name__ == "__main__":
    main()
