"""Training steps of seed 003's transformer: gk's hand-written gradients against PyTorch's
autograd on the same model.

Seed 003's setting (Nanda et al.): addition mod p on ``a b =`` (p = 113, 30% of the p² pairs,
``gk.tasks.modular("add", p).split(0.3, 0)``, so n = 3831 training pairs), one layer,
d_model 128, 4 heads, d_mlp 512, ReLU, no LayerNorm, untied W_U; full-batch AdamW (lr 1e-3,
weight decay 1, β = (0.9, 0.98), ε = 1e-8) on the cross-entropy of float64 logits; the same
initial weights (``gk.transformer.init(p, seed=0)``) on every side, in float64 and float32, on
the same threads. gk is timed two ways:

- ``gk.transformer.train``: the whole training loop, per step, with ``log_every=100`` as in
  seed 003's runs, its evaluation on all p² pairs, its gradient of the last step (logged, not
  applied) and the building of its dataset included (the peers evaluate nothing). A timing
  runs 40 steps, so it evaluates at steps 0 and 40 (the first and last steps are always
  logged), where a long run evaluates once per 100 steps: the row's excess over the bare
  step (5% at p = 113, one thread) overstates a long run's;
- bare step: ``gk.transformer.loss_and_grads`` and the ``gk.optim.update`` of AdamW.

The peers, in PyTorch with autograd and ``torch.optim.AdamW``, are one ``nn.Module`` with
gk's initial weights as its ``nn.Parameter``s: ``torch, as seed 003's code``, the model as
Nanda et al. write it (embedding by indexing rows of W_E, attention, MLP and unembedding at
all 3 positions, then the last position's logits); ``torch, read-out position only``, the
same module with the MLP and the unembedding at the last position only (the first half of
gk's shortcut; gk also computes the last position's query alone and gathers the first layer's
q, k, v from (V, 3d) tables of W_E W_Q, …). The floor: the step's twelve products at the
read-out position (forward, weight and input gradients of W_O, W_in, W_out and W_U: n rows),
bare, in the same dtype (:mod:`bench.limits`), so the hardware fraction is their seconds over
gk's. Every side runs ``steps`` steps per timing (40: seed 003's natural module takes about
1 s per float64 step at one thread), alternating, and the medians of the repeats
are kept; the relative difference of all weights after the steps (one vector; W_E's is
recorded too), against gk's bare step, checks that all sides trained the same network.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

import gk
import gk.transformer
from bench import limits
from bench.common import (
    DTYPES,
    Options,
    alternate,
    comparison,
    keeping,
    peer_skipped,
    timed,
)

NATURAL = "torch, as seed 003's code"
READOUT = "torch, read-out position only"
PEERS = (NATURAL, READOUT)
SEQUENCE = "a b ="
LOG_EVERY = 100
STEPS = {"full": 40, "quick": 3}
TOLERANCE = {"float64": 1e-10, "float32": 5e-2}
"""Largest relative difference of all weights (one vector) after the timed steps between gk's
bare step and any other side. Measured at p = 113 after 40 steps, one thread: 1e-14 in
float64; 1e-2 in float32 (2.8e-3 between the two torch models), where the weights moved by
0.26 of their norm. Float32 trajectories part early and for good: an example whose ReLU input
lies within rounding of 0 counts in one side's gradient of W_in and not in the other's
(a difference of the order of that example's term, at step 6 for gk against torch at p = 113),
and AdamW's normalised steps carry it on; so the float32 check is loose."""
DESCRIPTION = ("Seconds per full-batch AdamW step of seed 003's transformer (p = 113, d_model "
               "128, 4 heads, d_mlp 512, 30% of the pairs, cross-entropy on float64 logits, "
               "same initial weights), gk through gk.transformer.train (evaluation on all p² "
               "pairs at the first and last of 40 steps included) and as a bare step "
               "(loss_and_grads + update), against the same model in PyTorch with autograd "
               "and torch.optim.AdamW (as seed 003's code: MLP and unembedding at all 3 "
               "positions; read-out position only: at the last one), on the same threads. "
               "The floor is the step's twelve products at the read-out position, bare.")


@dataclass(frozen=True)
class Model:
    """Sizes and training of seed 003's transformer on addition mod p."""

    p: int
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    train_fraction: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8

    @property
    def n(self) -> int:
        """Training pairs, round(α p²)."""
        return gk.tasks.train_size(gk.tasks.modular("add", self.p), self.train_fraction)

    def as_dict(self) -> dict[str, Any]:
        return {"p": self.p, "d_model": self.d_model, "n_heads": self.n_heads,
                "d_mlp": self.d_mlp, "train_fraction": self.train_fraction, "n": self.n,
                "lr": self.lr, "weight_decay": self.weight_decay, "betas": list(self.betas),
                "eps": self.eps}


FULL_MODEL = Model(113)
QUICK_MODEL = Model(23, 32, 4, 128)


def model(options: Options) -> Model:
    """Seed 003's transformer, or a tiny one with ``--quick``."""
    return QUICK_MODEL if options.quick else FULL_MODEL


@dataclass
class Problem:
    """One training set, the same for gk and its peers: the tokens and labels of seed 0's
    split, on the host (for torch) and as gk's (1, n, ·) arrays on the backend."""

    model: Model
    dtype: str
    tokens_host: np.ndarray
    labels_host: np.ndarray
    tokens: Any
    labels: Any
    weights: Any


def problem(net: Model, dtype: str) -> Problem:
    """The training pairs of seed 0's split and gk's arrays for ``loss_and_grads``."""
    task = gk.tasks.modular("add", net.p)
    split = task.split(net.train_fraction, 0)
    a, b = task.operands(split.train)
    tokens = gk.transformer.sequence_tokens(SEQUENCE, net.p, a, b)
    labels = task.labels(split.train)
    xp = gk.backend.namespace()
    weights = xp.full((1, len(labels)), 1 / len(labels), dtype=dtype)
    return Problem(net, dtype, tokens, labels, xp.asarray(tokens[None]),
                   xp.asarray(labels[None]), weights)


def initial(prob: Problem) -> gk.transformer.Params:
    """gk's initial weights (seed 0), with a model axis of length 1."""
    net = prob.model
    return gk.transformer.init(net.p, net.d_model, net.n_heads, net.d_mlp, sequence=SEQUENCE,
                               seed=0, dtype=prob.dtype)


def gk_steps(prob: Problem, steps: int) -> tuple[float, dict[str, Any]]:
    """Seconds per bare gk step, ``loss_and_grads`` + AdamW update; the final weights."""
    xp, net = gk.backend.namespace(), prob.model
    params = initial(prob)
    state = gk.optim.init_state("adamw", params.arrays)
    hyper = gk.optim.Hyper(xp.asarray([net.lr], dtype=prob.dtype),
                           xp.asarray([net.weight_decay], dtype=prob.dtype))

    def loop() -> None:
        for step in range(1, steps + 1):
            _, grads = gk.transformer.loss_and_grads(params, prob.tokens, prob.labels,
                                                     prob.weights)
            gk.optim.update("adamw", params.arrays, grads, state, hyper, step,
                            betas=net.betas, eps=net.eps)

    seconds, _ = timed(loop)
    return seconds / steps, params.arrays


def gk_train(prob: Problem, steps: int) -> tuple[float, dict[str, Any]]:
    """Seconds per step of ``gk.transformer.train`` itself (logging every 100 steps); the
    final weights."""
    net = prob.model
    seconds, ds = timed(lambda: gk.transformer.train(
        p=net.p, sequence=SEQUENCE, d_model=net.d_model, n_heads=net.n_heads,
        d_mlp=net.d_mlp, train_fraction=net.train_fraction, optimizer="adamw", lr=net.lr,
        weight_decay=net.weight_decay, betas=net.betas, eps=net.eps, steps=steps, seed=0,
        dtype=prob.dtype, log_every=LOG_EVERY, snapshot_every=steps))
    final = {key: ds[key].isel(snapshot=-1).values for key in initial(prob).arrays}
    return seconds / steps, final


def torch_module(params: gk.transformer.Params, readout: bool) -> Any:
    """Seed 003's one-layer transformer as a ``torch.nn.Module`` whose parameters are a copy
    of gk's one model (``params``, model axis of length 1), named as gk names them.

    Written as Nanda et al.'s code writes it: x = W_E[tokens] + W_pos at every position,
    causal softmax attention over all positions, the MLP and W_U at every position, then the
    last position's logits; ``readout``: the MLP and W_U at the last position only.
    """
    import torch

    class Transformer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for key, value in params.arrays.items():
                array = np.array(gk.backend.to_numpy(value[0]))
                setattr(self, key, torch.nn.Parameter(torch.from_numpy(array)))
            T = params.positions
            self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))
            self.heads = params.n_heads

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            n, T = tokens.shape
            d = self.W_E.shape[1]
            H, d_head = self.heads, d // self.heads
            x = self.W_E[tokens] + self.W_pos                                # (n, T, d)
            q, k, v = ((x @ W).view(n, T, H, d_head).transpose(1, 2)          # (n, H, T, d_h)
                       for W in (self.L0_W_Q, self.L0_W_K, self.L0_W_V))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d_head)
            pattern = scores.masked_fill(~self.mask, -math.inf).softmax(dim=-1)
            z = (pattern @ v).transpose(1, 2).reshape(n, T, d)
            x = x + z @ self.L0_W_O
            if readout:
                x = x[:, -1]
            x = x + torch.relu(x @ self.L0_W_in + self.L0_b_in) @ self.L0_W_out + self.L0_b_out
            logits = x @ self.W_U
            return logits if readout else logits[:, -1]

    return Transformer()


def torch_steps(prob: Problem, steps: int, readout: bool) -> tuple[float, dict[str, Any]]:
    """Seconds per step of the transformer in PyTorch (autograd, AdamW); the final weights,
    with a model axis of length 1."""
    import torch

    net = prob.model
    module = torch_module(initial(prob), readout)
    tokens, labels = (torch.from_numpy(x) for x in (prob.tokens_host, prob.labels_host))
    optimizer = torch.optim.AdamW(module.parameters(), lr=net.lr, betas=net.betas,
                                  eps=net.eps, weight_decay=net.weight_decay)

    def loop() -> None:
        for _ in range(steps):
            optimizer.zero_grad()
            logits = module(tokens)
            log_probs = logits.to(torch.float64).log_softmax(dim=-1)   # seed 003's loss
            loss = -log_probs.gather(-1, labels[:, None])[:, 0].mean()
            loss.backward()
            optimizer.step()

    seconds, _ = timed(loop)
    return seconds / steps, {key: value.detach().numpy()[None]
                             for key, value in module.named_parameters()}


def floor_shapes(net: Model) -> list[limits.Shape]:
    """The step's products at the read-out position: for each of W_O (d × d), W_in
    (d × d_mlp), W_out (d_mlp × d) and W_U (d × p) as (k, l), the forward (n, k) @ (k, l),
    the weight gradient (k, n) @ (n, l) and the input gradient (n, l) @ (l, k)."""
    n, d = net.n, net.d_model
    shapes = []
    for k, l in ((d, d), (d, net.d_mlp), (net.d_mlp, d), (d, net.p)):
        shapes += [(n, k, l), (k, n, l), (n, l, k)]
    return shapes


def relative_difference(arrays: dict[str, Any], reference: dict[str, Any],
                        keys: tuple[str, ...] | None = None) -> float:
    """‖W − W_ref‖ / ‖W_ref‖ of the weight arrays ``keys`` (all of ``reference``'s where None)
    as one vector."""
    difference = norm = 0.0
    for key in keys or tuple(reference):
        W, W_ref = (np.asarray(gk.backend.to_numpy(x), dtype=np.float64)
                    for x in (arrays[key], reference[key]))
        difference += float(np.sum((W - W_ref) ** 2))
        norm += float(np.sum(W_ref**2))
    return math.sqrt(difference / norm)


def measure(dtype: str, options: Options) -> list[dict[str, Any]]:
    """gk (train loop and bare step), the torch peers and the bare products in one dtype."""
    net, steps = model(options), STEPS["quick" if options.quick else "full"]
    prob = problem(net, dtype)
    gk_steps(prob, 1)                                       # first-call costs, untimed
    gk_train(prob, 1)
    skipped = peer_skipped(options)
    finals: dict[str, Any] = {}
    calls = {"train": keeping(finals, "train", lambda: gk_train(prob, steps)),
             "step": keeping(finals, "step", lambda: gk_steps(prob, steps))}
    if skipped is None:
        import torch

        torch.set_num_threads(options.threads)
        for name, readout in ((NATURAL, False), (READOUT, True)):
            torch_steps(prob, 1, readout)
            calls[name] = keeping(finals, name, lambda r=readout: torch_steps(prob, steps, r))
    pairs = limits.operands(floor_shapes(net), dtype)
    calls["bare"] = lambda: limits.products_seconds(pairs, steps)
    runs = alternate(calls, options.repeats)
    peers = {name: runs.get(name, skipped) for name in PEERS}
    sides = [name for name in ("train", *PEERS) if name in finals]
    agreement = {name: relative_difference(finals[name], finals["step"]) for name in sides}
    agreement_W_E = {name: relative_difference(finals[name], finals["step"], ("W_E",))
                     for name in sides}
    threads = f"{options.threads} thread{'s' if options.threads > 1 else ''}"
    flops = limits.product_flops(floor_shapes(net))
    return [comparison(f"{dtype}, {threads}, {label}", "s/step", runs[way], peers,
                       runs["bare"], way=way, dtype=dtype, threads=options.threads,
                       steps=steps, flops_per_step=flops, agreement_weights=agreement,
                       agreement_W_E=agreement_W_E)
            for way, label in (("train", "gk.transformer.train"), ("step", "bare step"))]


def disagreements(records: list[dict[str, Any]]) -> list[str]:
    """The sides whose weights after the timed steps differ from gk's beyond the tolerance."""
    return sorted({f"{record['case']}: weights of {name} differ by {difference:.3g}"
                   for record in records
                   for name, difference in record["agreement_weights"].items()
                   if not difference <= TOLERANCE[record["dtype"]]})


def run(options: Options) -> dict[str, Any]:
    """Records in float64 and float32 at ``options.threads``."""
    records = []
    for dtype in DTYPES:
        records += measure(dtype, options)
        for record in records[-2:]:
            sides = [f"gk {1 / record['gk_s']:.3g}"] + [
                f"{name} {1 / peer['s']:.3g} ({peer['ratio']:.2f}×)"
                for name, peer in record["peers"].items() if peer["s"] is not None]
            print(f"transformer {record['case']}: " + ", ".join(sides) + " steps/s",
                  file=sys.stderr, flush=True)
    return {"table": "comparison", "model": model(options).as_dict(), "records": records,
            "failures": disagreements(records), "tolerance_weights": TOLERANCE,
            "description": DESCRIPTION}
