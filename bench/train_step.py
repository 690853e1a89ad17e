"""Training steps per second: gk.mlp.train against a PyTorch version of the same network.

Both train seed 001's network (p = 97, N = 512, α = 0.5, full-batch GD, MSE) from the same
initial weights, on the same threads, alternating, and the median of the repeats is kept.
gk is timed through ``gk.mlp.train`` itself, evaluation on all p² pairs every ``log_every``
steps included; the peer (autograd) evaluates nothing, so the ratio favours the peer.

    pip install torch==2.13.0        # the CPU build; never a dependency of gk
    python bench/train_step.py --steps 300 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import gk

RESULTS = Path(__file__).resolve().parent / "results"


def torch_steps_per_second(p: int, width: int, steps: int, dtype: str, threads: int) -> float:
    """Full-batch GD steps per second of the network written in PyTorch (autograd)."""
    import torch

    torch.set_num_threads(threads)
    task = gk.tasks.modular("add", p)
    split = task.split(0.5, 0)
    params = gk.mlp.init(p, width, seed=0, dtype=dtype)
    W1 = torch.tensor(np.ascontiguousarray(params.W1), requires_grad=True)
    W2 = torch.tensor(np.ascontiguousarray(params.W2), requires_grad=True)
    a, b, c = (torch.tensor(v[split.train]) for v in (task.a, task.b, task.c))
    Y = torch.nn.functional.one_hot(c, p).to(W1.dtype)
    optimizer = torch.optim.SGD([W1, W2], lr=0.2 * width)
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        h = W1[:, a].T + W1[:, p + b].T
        loss = 0.5 * (((2 / width) * (h * h) @ W2.T - Y) ** 2).sum(1).mean()
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - start)


def gk_steps_per_second(p: int, width: int, steps: int, dtype: str) -> float:
    """Steps per second of ``gk.mlp.train`` (full batch GD, logging every 10 steps)."""
    start = time.perf_counter()
    gk.mlp.train(p=p, width=width, steps=steps, dtype=dtype, log_every=10,
                 snapshot_every=steps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--p", type=int, default=97)
    parser.add_argument("--width", type=int, default=512)
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))
    gk.mlp.train(p=11, width=8, steps=2)  # compile the scatter-add before timing
    rows = []
    for dtype in ("float64", "float32"):
        times = {"gk": [], "torch": []}
        for _ in range(args.repeats):
            times["gk"].append(gk_steps_per_second(args.p, args.width, args.steps, dtype))
            times["torch"].append(torch_steps_per_second(args.p, args.width, args.steps,
                                                         dtype, threads))
        gk_rate, torch_rate = (statistics.median(times[k]) for k in ("gk", "torch"))
        rows.append({"dtype": dtype, "gk_steps_per_s": gk_rate,
                     "torch_steps_per_s": torch_rate, "ratio": gk_rate / torch_rate})
        print(f"{dtype}: gk {gk_rate:.1f} steps/s, torch {torch_rate:.1f} steps/s, "
              f"ratio {gk_rate / torch_rate:.2f}")
    import torch

    record = {"benchmark": "train_step", "machine": platform.node(), "cpu_threads": threads,
              "date": datetime.date.today().isoformat(), "p": args.p, "width": args.width,
              "steps": args.steps, "repeats": args.repeats, "torch": torch.__version__,
              "numpy": np.__version__, "gk": gk.__version__, "results": rows}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"train_step-cpu{threads}-{record['date']}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
