"""Many models at once: the per-model time of a bare training step of B networks.

gk trains B models as one array program (a leading model axis: seeds 0 … B−1, each its own
initial weights and split). For B = 1, 8 and 64 networks of seed 001 (p = 97, N = 512,
α = 0.5), in float64 and float32, the benchmark times the bare step (``loss_and_grads`` and
the GD update of all B models) and divides by B. The peer is B single-model steps, i.e. the
time of B = 1 (ratio above 1: training together is faster per model). The floor is the three
n·N·p products of every model, bare and batched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from bench import limits, train_step
from bench.common import DTYPES, Options, alternate, comparison, network

MODELS = (1, 8, 64)
SINGLE = "B × one model"
DESCRIPTION = ("Seconds per model of a bare GD step (loss_and_grads + update) of B networks "
               "trained as one array program, against one model's step (B single runs); "
               "the floor is every model's three n·N·p products, bare and batched.")


def steps(models: int, quick: bool) -> int:
    """Steps per timing: about the same work for every B."""
    return 2 if quick else max(2, 128 // models)


def timers(prob: train_step.Problem, count: int) -> tuple[Callable[[], float], ...]:
    """Seconds per step of gk's B models and of their bare products, ``count`` steps a timing."""
    train_step.gk_steps(prob, 1)                             # first-call costs, untimed
    pairs = train_step.bare_operands(prob)
    return (lambda: train_step.gk_steps(prob, count)[0],
            lambda: limits.products_seconds(pairs, count))


def measure(dtype: str, options: Options) -> list[dict[str, Any]]:
    """Alternating timings of every B and its bare products in one dtype."""
    net = network(options)
    calls = {}
    for B in MODELS:
        prob = train_step.problem(net, dtype, B)
        calls[f"gk {B}"], calls[f"bare {B}"] = timers(prob, steps(B, options.quick))
    runs = alternate(calls, options.repeats)
    per_model = {B: [s / B for s in runs[f"gk {B}"]] for B in MODELS}
    return [comparison(f"{dtype}, B = {B}", "s/model/step", per_model[B],
                       {SINGLE: per_model[1]}, [s / B for s in runs[f"bare {B}"]],
                       models=B, dtype=dtype, steps=steps(B, options.quick),
                       step_s=runs[f"gk {B}"])
            for B in MODELS]


def run(options: Options) -> dict[str, Any]:
    records = []
    for dtype in DTYPES:
        records += measure(dtype, options)
        for record in records[-len(MODELS):]:
            print(f"ensemble {record['case']}: {record['gk_s']:.4g} s per model and step, "
                  f"{record['peers'][SINGLE]['ratio']:.2f}× one model's rate, hardware "
                  f"{record['hardware_fraction']:.2f}", file=sys.stderr, flush=True)
    return {"table": "comparison", "network": network(options).as_dict(), "models": MODELS,
            "records": records, "description": DESCRIPTION}
