"""Training steps: gk against a PyTorch CPU implementation of the same network.

Seed 001's network f = (2/N) W2 φ(W1 x), φ = z², on addition mod p (p = 97, N = 512,
α = 0.5, so n = 4704 training pairs), full-batch GD with lr = 0.2·N on the MSE, from the
same initial weights (``gk.mlp.init(p, N, seed=0)``), in float64 and float32, on the same
threads. gk is timed two ways:

- ``gk.mlp.train``: the whole training loop, per step, its evaluation on all p² pairs every
  100 steps and the building of its dataset included (the peers evaluate nothing);
- bare step: ``gk.mlp.model.loss_and_grads`` and the ``gk.optim.update`` of GD.

The peers, in PyTorch with autograd and ``torch.optim.SGD``: ``torch one-hot``, the network as
written, multiplying W1 by the one-hot input matrix X (n × 2p); ``torch gather``, W1 x as two
gathered columns of W1 (what gk does by hand). The floor: the step's three n·N·p products,
bare, in the same dtype (:mod:`bench.limits`), so the hardware fraction is their seconds over
gk's. Every side runs ``steps`` steps per timing, alternating, and the medians of the repeats
are kept; the relative difference of W1 after the steps checks that all sides trained the same
network. Without ``--threads`` the benchmark also runs at one thread, in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import gk
from bench import limits
from bench._env import thread_env
from bench.common import (
    DTYPES,
    ROOT,
    Network,
    Options,
    alternate,
    comparison,
    keeping,
    network,
    peer_skipped,
    timed,
)

ONE_HOT = "torch one-hot"
GATHER = "torch gather"
LOG_EVERY = 100
STEPS = {"full": 100, "quick": 3}
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}
"""Largest relative difference of W1 after the timed steps between gk's bare step and any
other side (measured: 4e-16 and 1e-7 after 100 steps at p = 97)."""
DESCRIPTION = ("Seconds per full-batch GD step of seed 001's network (MSE, lr = 0.2·N, same "
               "initial weights), gk through gk.mlp.train (evaluation every 100 steps included) "
               "and as a bare step (loss_and_grads + update), against PyTorch with autograd "
               "(one-hot: X W1ᵀ with the one-hot inputs; gather: two columns of W1), on the "
               "same threads. The floor is the step's three n·N·p products, bare.")


@dataclass
class Problem:
    """One training set, the same for gk and its peers: ``models`` splits (seeds 0, 1, …)
    of addition mod p, as host operands and as gk's (M, n) arrays on the backend."""

    net: Network
    dtype: str
    models: int
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    operands: tuple[Any, Any]
    labels: Any
    weights: Any
    workspace: gk.mlp.model.Workspace


def problem(net: Network, dtype: str, models: int = 1) -> Problem:
    """The training pairs of seeds 0 … models−1 and gk's arrays for ``loss_and_grads``."""
    task = gk.tasks.modular("add", net.p)
    splits = [task.split(net.train_fraction, seed) for seed in range(models)]
    a, b = (np.stack(x) for x in zip(*(task.operands(s.train) for s in splits), strict=True))
    c = np.stack([task.labels(s.train) for s in splits])
    xp = gk.backend.namespace()
    weights = xp.full(a.shape, 1 / a.shape[1], dtype=dtype)
    return Problem(net, dtype, models, a, b, c, (xp.asarray(a), xp.asarray(b)),
                   xp.asarray(c), weights, gk.mlp.model.Workspace())


def initial(prob: Problem) -> gk.mlp.Params:
    """gk's initial weights of every model (seed m for model m), batched."""
    return gk.mlp.init(prob.net.p, prob.net.width, seed=list(range(prob.models)),
                       dtype=prob.dtype)


def gk_steps(prob: Problem, steps: int) -> tuple[float, Any]:
    """Seconds per bare gk step (all models), ``loss_and_grads`` + GD update; the final W1.

    The steps reuse the problem's :class:`gk.mlp.model.Workspace`, as ``gk.mlp.train`` does:
    at B = 64 a fresh (M, n, N) array costs more in page faults than the step's products."""
    xp = gk.backend.namespace()
    params = initial(prob)
    arrays = {"W1": params.W1, "W2": params.W2}
    state = gk.optim.init_state("gd", arrays)
    hyper = gk.optim.Hyper(xp.full(prob.models, prob.net.lr, dtype=prob.dtype),
                           xp.zeros(prob.models, dtype=prob.dtype))

    def loop() -> None:
        for step in range(1, steps + 1):
            _, grads = gk.mlp.loss_and_grads(params, prob.operands, prob.labels, prob.weights,
                                             workspace=prob.workspace)
            gk.optim.update("gd", arrays, grads, state, hyper, step)

    seconds, _ = timed(loop)
    return seconds / steps, params.W1


def gk_train(prob: Problem, steps: int) -> tuple[float, Any]:
    """Seconds per step of ``gk.mlp.train`` itself (logging every 100 steps); the final W1."""
    net = prob.net
    seconds, ds = timed(lambda: gk.mlp.train(
        p=net.p, width=net.width, train_fraction=net.train_fraction, steps=steps, seed=0,
        dtype=prob.dtype, log_every=LOG_EVERY, snapshot_every=steps))
    return seconds / steps, ds.W1.isel(snapshot=-1).values


def torch_steps(prob: Problem, steps: int, one_hot: bool) -> tuple[float, np.ndarray]:
    """Seconds per step of the network in PyTorch (autograd, SGD); the final W1.

    ``one_hot``: h = X W1ᵀ with the one-hot inputs X (n, 2p), as the network is written;
    else h = W1[:, a]ᵀ + W1[:, p + b]ᵀ.
    """
    import torch

    net, params = prob.net, gk.mlp.init(prob.net.p, prob.net.width, seed=0, dtype=prob.dtype)
    W1, W2 = (torch.tensor(np.ascontiguousarray(gk.backend.to_numpy(w)), requires_grad=True)
              for w in (params.W1, params.W2))
    a, b, c = (torch.from_numpy(x[0]) for x in (prob.a, prob.b, prob.c))
    Y = torch.nn.functional.one_hot(c, net.p).to(W1.dtype)
    X = torch.zeros((len(a), 2 * net.p), dtype=W1.dtype)
    rows = torch.arange(len(a))
    X[rows, a], X[rows, net.p + b] = 1, 1
    optimizer = torch.optim.SGD([W1, W2], lr=net.lr)

    def loop() -> None:
        for _ in range(steps):
            optimizer.zero_grad()
            h = X @ W1.T if one_hot else W1[:, a].T + W1[:, net.p + b].T
            loss = 0.5 * (((2 / net.width) * (h * h) @ W2.T - Y) ** 2).sum(1).mean()
            loss.backward()
            optimizer.step()

    seconds, _ = timed(loop)
    return seconds / steps, W1.detach().numpy()


def bare_operands(prob: Problem) -> list[tuple[Any, Any]]:
    """Random factors of the step's three products (batched over the models, if several), for
    :func:`bench.limits.products_seconds`."""
    net = prob.net
    shapes = limits.network_shapes(net.n, net.width, net.p)
    return limits.operands(shapes, prob.dtype, None if prob.models == 1 else prob.models)


def relative_difference(W: Any, reference: Any) -> float:
    W, reference = (np.asarray(gk.backend.to_numpy(x), dtype=np.float64).reshape(-1)
                    for x in (W, reference))
    return float(np.linalg.norm(W - reference) / np.linalg.norm(reference))


def measure(dtype: str, options: Options) -> list[dict[str, Any]]:
    """gk (train loop and bare step), the torch peers and the bare products in one dtype."""
    net, steps = network(options), STEPS["quick" if options.quick else "full"]
    prob = problem(net, dtype)
    gk_steps(prob, 1)                                       # first-call costs, untimed
    skipped = peer_skipped(options)
    finals: dict[str, Any] = {}
    calls = {"train": keeping(finals, "train", lambda: gk_train(prob, steps)),
             "step": keeping(finals, "step", lambda: gk_steps(prob, steps))}
    if skipped is None:
        import torch

        torch.set_num_threads(options.threads)
        for name, one_hot in ((ONE_HOT, True), (GATHER, False)):
            torch_steps(prob, 1, one_hot)
            calls[name] = keeping(finals, name, lambda o=one_hot: torch_steps(prob, steps, o))
    pairs = bare_operands(prob)
    calls["bare"] = lambda: limits.products_seconds(pairs, steps)
    runs = alternate(calls, options.repeats)
    peers = {name: runs.get(name, skipped) for name in (ONE_HOT, GATHER)}
    agreement = {name: relative_difference(finals[name], finals["step"][0])
                 for name in ("train", ONE_HOT, GATHER) if name in finals}
    threads = f"{options.threads} thread{'s' if options.threads > 1 else ''}"
    flops = limits.product_flops(limits.network_shapes(net.n, net.width, net.p))
    return [comparison(f"{dtype}, {threads}, {label}", "s/step", runs[way], peers,
                       runs["bare"], way=way, dtype=dtype, threads=options.threads,
                       steps=steps, flops_per_step=flops, agreement_W1=agreement)
            for way, label in (("train", "gk.mlp.train"), ("step", "bare step"))]


def one_thread(options: Options) -> tuple[list[dict], list[str]]:
    """The benchmark at one thread, in a child process whose BLAS was loaded so."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "records.json"
        command = [sys.executable, "-m", "bench", "--only", "train_step", "--threads", "1",
                   "--repeats", str(options.repeats), "--records", str(out)]
        command += ["--quick"] * options.quick + ["--no-peers"] * (not options.peers)
        status = subprocess.run(command, cwd=ROOT, env=thread_env(1)).returncode
        if not out.exists():
            return [], [f"train_step at one thread: exit status {status}"]
        result = json.loads(out.read_text())["benchmarks"]["train_step"]
    if "error" in result:
        return [], [f"train_step at one thread: {result['error']}"]
    return result["records"], result.get("failures", [])


def disagreements(records: list[dict[str, Any]]) -> list[str]:
    """The sides whose W1 after the timed steps differs from gk's beyond the tolerance."""
    return sorted({f"{record['case']}: W1 of {name} differs by {difference:.3g}"
                   for record in records
                   for name, difference in record["agreement_W1"].items()
                   if not difference <= TOLERANCE[record["dtype"]]})


def run(options: Options) -> dict[str, Any]:
    """Records at one thread (where --threads was not given) and at ``options.threads``."""
    records, failures = [], []
    if not options.threads_given and options.threads > 1:
        records, failures = one_thread(options)
    measured = []
    for dtype in DTYPES:
        measured += measure(dtype, options)
        for record in measured[-2:]:
            sides = [f"gk {record['gk_s']:.4g}"] + [
                f"{name} {peer['s']:.4g}" for name, peer in record["peers"].items()
                if peer["s"] is not None] + [f"bare {record['bare_s']:.4g}"]
            print(f"train_step {record['case']}: " + ", ".join(sides) + " s/step",
                  file=sys.stderr, flush=True)
    return {"table": "comparison", "network": network(options).as_dict(),
            "records": records + measured, "failures": failures + disagreements(measured),
            "tolerance_W1": TOLERANCE, "description": DESCRIPTION}
