"""Time against size, and the exponent of each curve.

Three curves, each fitted by least squares of log time on log size over the sizes from a
threshold up (below it fixed costs dominate):

- ``network``: seconds per bare training step of seed 001's network (``loss_and_grads`` and
  the GD update, float64, N = 512, α = 0.5) against p, gk and the torch one-hot peer; the
  three n·N·p products with n ∝ p² make it ∝ p³;
- ``rfm``: seconds per RFM iteration against n = round(p²/2), gk and seed 000's reference
  (p = 31, 47, 61, 97), gk alone beyond; the Cholesky solve makes it → n³. Sizes that
  ``rfm_iteration`` measured in the same run are reused;
- ``ntk``: seconds of gk's NTK Gram matrix (trace, float64, p = 97) against n, and of
  neural-tangents (its fastest implementation) where installed; ∝ n².

``python -m bench.plot_scaling RECORD.json`` draws the curves.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench import ntk_gram, rfm_iteration, train_step
from bench.common import (
    Network,
    Options,
    alternate,
    fit_exponent,
    median,
    network,
    peer_skipped,
)
from gk import mlp, tasks

SIZES = {
    "full": {"network": (23, 31, 47, 61, 97, 127), "rfm": ((31, 47, 61, 97), (127, 199)),
             "ntk": (250, 500, 1000, 2000, 4704, 9409), "nt": (250, 500, 1000, 2000)},
    "quick": {"network": (5, 7, 11), "rfm": ((5, 7), ()), "ntk": (25, 50, 100),
              "nt": (25, 50)},
}
FIT_FROM = {"full": {"network": 47, "rfm": 1000, "ntk": 1000},
            "quick": {"network": 0, "rfm": 0, "ntk": 0}}
DTYPE = "float64"
DESCRIPTION = ("Seconds against size, gk and its peers, with the exponent k of t ≈ c·sizeᵏ "
               "fitted over the sizes from a threshold up: a bare training step against p "
               "(expected 3), an RFM iteration against n (→ 3), the NTK Gram matrix against "
               "n (2).")


def series(sizes: list[int], seconds: list[float], fit_from: int) -> dict[str, Any]:
    """One line of a curve, sorted by size, with its fitted exponent."""
    order = np.argsort(sizes)
    sizes, seconds = [int(sizes[i]) for i in order], [float(seconds[i]) for i in order]
    return {"sizes": sizes, "s": seconds, "fit_from": fit_from,
            "exponent": fit_exponent(sizes, seconds, fit_from)}


def step_count(p: int, quick: bool) -> int:
    """Steps per timing: 20 at p = 97, more (up to 200) for smaller p, as the work ∝ p³."""
    return 2 if quick else min(200, max(5, round(20 * (97 / p) ** 3)))


def network_curve(options: Options) -> dict[str, Any]:
    """gk's bare step and the torch one-hot peer against p."""
    key, width = ("quick" if options.quick else "full"), network(options).width
    skipped = peer_skipped(options)
    if skipped is None:
        import torch

        torch.set_num_threads(options.threads)
    times: dict[str, list[float]] = {"gk": [], train_step.ONE_HOT: []}
    for p in SIZES[key]["network"]:
        prob, steps = train_step.problem(Network(p, width), DTYPE), step_count(p, options.quick)
        calls = {"gk": lambda prob=prob, steps=steps: train_step.gk_steps(prob, steps)[0]}
        if skipped is None:
            calls[train_step.ONE_HOT] = (lambda prob=prob, steps=steps:
                                         train_step.torch_steps(prob, steps, True)[0])
        train_step.gk_steps(prob, 1)                            # first-call costs, untimed
        if skipped is None:
            train_step.torch_steps(prob, 1, True)
        for name, runs in alternate(calls, options.repeats).items():
            times[name].append(median(runs))
        print(f"scaling network p={p}: " + ", ".join(f"{name} {t[-1]:.4g} s/step" for name, t
                                                      in times.items() if t),
              file=sys.stderr, flush=True)
    sizes = list(SIZES[key]["network"])
    return {"name": "network step", "size": "p", "unit": "s/step", "expected": 3,
            "skipped": skipped, "width": width, "dtype": DTYPE,
            "series": {name: series(sizes, t, FIT_FROM[key]["network"])
                       for name, t in times.items() if t}}


def earlier_rfm(options: Options) -> dict[int, dict[str, Any]]:
    """RFM iterations that rfm_iteration measured in this run, by p."""
    records = options.earlier.get("rfm_iteration", {}).get("records", [])
    found = {}
    for record in records:
        if "gk_s" in record:
            peer = record["peers"][rfm_iteration.REFERENCE]
            found[record["p"]] = {"n": record["n"], "gk": record["gk_s"], "reference": peer["s"]}
    return found


def rfm_curve(options: Options) -> dict[str, Any]:
    """gk's and the reference's iteration against n (measured here, in this process, where
    rfm_iteration did not)."""
    key = "quick" if options.quick else "full"
    skipped = peer_skipped(options)
    found = earlier_rfm(options)
    both, alone = SIZES[key]["rfm"]
    for p, reference in [(p, skipped is None) for p in both] + [(p, False) for p in alone]:
        if p in found and (found[p]["reference"] is not None or not reference):
            continue
        row = rfm_iteration.measure(p, options.repeats, reference, options.threads)
        found[p] = {"n": row["n"], "gk": row["gk"]["total"],
                    "reference": row.get("reference_times", {}).get("total")}
    points = sorted(found.values(), key=lambda point: point["n"])
    lines = {}
    for name in ("gk", "reference"):
        measured = [point for point in points if point[name] is not None]
        if measured:
            lines[name if name == "gk" else rfm_iteration.REFERENCE] = series(
                [point["n"] for point in measured], [point[name] for point in measured],
                FIT_FROM[key]["rfm"])
    return {"name": "RFM iteration", "size": "n", "unit": "s/iteration", "expected": 3,
            "skipped": skipped, "series": lines}


def nt_times(params: Any, X: np.ndarray, sizes: list[int], options: Options) -> list[float]:
    """neural-tangents' median run time at each n (its fastest implementation)."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        ntk_gram.save_problem(folder, params, X)
        timing, _ = ntk_gram.time_sizes(ntk_gram.NT_PYTHON, folder, ntk_gram.KNOWN_FASTEST,
                                        DTYPE, sizes, options.repeats, options.threads)
    return [median(job["run_s"]) for job in timing["sizes"] if "error" not in job]


def ntk_curve(options: Options) -> dict[str, Any]:
    """gk's Gram matrix and neural-tangents' against n."""
    key = "quick" if options.quick else "full"
    net = network(options)
    sizes = SIZES[key]["ntk"]
    a, b = tasks.modular("add", net.p).operands(ntk_gram.pairs(net.p, max(sizes)))
    params = mlp.init(net.p, net.width, seed=0, dtype=DTYPE)
    ntk_gram.ntk.gram(params, (a[:16], b[:16]))                 # first-call costs, untimed
    gk_s = [median(ntk_gram.gk_gram(params, a, b, n, options.repeats, DTYPE)[0]["gk_runs"])
            for n in sizes]
    lines = {"gk": series(list(sizes), gk_s, FIT_FROM[key]["ntk"])}
    skipped = ntk_gram.nt_skipped(options)
    if skipped is None:
        nt_sizes = list(SIZES[key]["nt"])
        X = np.asarray(tasks.modular("add", net.p).one_hot_inputs(
            ntk_gram.pairs(net.p, max(nt_sizes))))
        times = nt_times(params, X, nt_sizes, options)
        if len(times) == len(nt_sizes):
            lines[ntk_gram.NT] = series(nt_sizes, times, FIT_FROM[key]["ntk"])
        else:
            skipped = "neural-tangents failed at some size (see its worker's output)"
    return {"name": "NTK Gram", "size": "n", "unit": "s", "expected": 2, "skipped": skipped,
            "p": net.p, "width": net.width, "dtype": DTYPE, "series": lines}


def run(options: Options) -> dict[str, Any]:
    curves = [network_curve(options), rfm_curve(options), ntk_curve(options)]
    for curve in curves:
        fits = ", ".join(f"{name} {line['exponent']:.2f}" for name, line in
                         curve["series"].items() if line["exponent"] is not None)
        print(f"scaling {curve['name']}: exponents {fits}", file=sys.stderr, flush=True)
    return {"table": "scaling", "curves": curves, "description": DESCRIPTION}
