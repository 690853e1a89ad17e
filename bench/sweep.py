"""A sweep over seeds as ensembles against the same sweep one run at a time.

``gk.sweep.run`` groups the points that share an array program into ensembles (a leading
model axis). The peer is the same sweep with ``max_models=1``: every seed its own run and
its own file, as a loop over ``gk.mlp.train`` would do. Both write their files, so the
times are the sweep's whole wall time. Cases: p = 23 with 16 seeds at N = 64, 128 and 512,
from per-step costs dominating to products dominating, and p = 97, N = 512 with 4 seeds,
where the products dominate (α = 0.5, full-batch GD, a row logged every 50 steps). The floor is the
three n·N·p products of every model and step, bare and batched.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import gk.sweep
from bench import limits
from bench.common import Network, Options, alternate, comparison

ONE_AT_A_TIME = "one run at a time"
DESCRIPTION = ("Wall seconds of a sweep over seeds (gk.sweep.run, files included) as "
               "ensembles, against the same sweep with max_models=1 (one run per seed); the "
               "floor is every model's three n·N·p products per step.")


@dataclass(frozen=True)
class Case:
    p: int
    seeds: int
    steps: int
    width: int = 512
    log_every: int = 50


CASES = (Case(23, 16, 500, 64), Case(23, 16, 500, 128), Case(23, 16, 500), Case(97, 4, 100))
QUICK_CASES = (Case(11, 4, 20, 32, 10),)


def sweep_seconds(case: Case, max_models: int) -> tuple[float, Any]:
    """Wall seconds of the sweep into a fresh folder, and its test accuracy at the end."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        cube = gk.sweep.run("train", {"seed": list(range(case.seeds))}, Path(folder) / "s",
                            max_models=max_models, progress=False, p=case.p,
                            width=case.width, steps=case.steps, log_every=case.log_every)
        seconds = time.perf_counter() - started
        return seconds, cube.train_loss.isel(step=-1).values


def floor_seconds(case: Case) -> float:
    """The bare products of all models' steps."""
    net = Network(case.p, case.width)
    pairs = limits.operands(limits.network_shapes(net.n, case.width, case.p), "float64",
                            case.seeds)
    return limits.products_seconds(pairs, 3) * case.steps


def measure(case: Case, options: Options) -> dict[str, Any]:
    finals: dict[str, Any] = {}

    def timing(max_models: int):
        def call() -> float:
            seconds, finals[max_models] = sweep_seconds(case, max_models)
            return seconds
        return call

    sweep_seconds(Case(case.p, 2, 2, case.width, 1), 2)      # first-call costs, untimed
    runs = alternate({"ensembles": timing(case.seeds), "single": timing(1),
                      "floor": lambda: floor_seconds(case)}, options.repeats)
    difference = float(np.max(np.abs(finals[case.seeds] - finals[1])))
    return comparison(f"p = {case.p}, N = {case.width}, {case.seeds} seeds", "s/sweep",
                      runs["ensembles"], {ONE_AT_A_TIME: runs["single"]}, runs["floor"],
                      **asdict(case), final_train_loss_difference=difference)


def run(options: Options) -> dict[str, Any]:
    records = []
    for case in QUICK_CASES if options.quick else CASES:
        records.append(measure(case, options))
        record = records[-1]
        print(f"sweep {record['case']}: {record['gk_s']:.3g} s as ensembles, "
              f"{record['peers'][ONE_AT_A_TIME]['ratio']:.2f}× faster than one at a time",
              file=sys.stderr, flush=True)
    return {"table": "comparison", "records": records, "description": DESCRIPTION}
