"""The machine's own limits: bare matrix products and a bare Cholesky of gk's sizes.

A training step of seed 001's network (n training pairs, N neurons, p outputs) cannot take
less than its three n·N·p products: the outputs (n, N) @ (N, p), ∂W2 = Gᵀ z as
(p, n) @ (n, N), and ∂z = G W2 as (n, p) @ (p, N). The benchmark times them bare, in float64
and float32, with a square n × n product of the same n (its rate is the machine's best), and
LAPACK's Cholesky (``scipy.linalg.cho_factor``) of an n × n SPD matrix, the floor of one RFM
solve at that n. Other benchmarks time the same operations in their own loops, so that each
of gk's times is also a fraction of the hardware's rate measured in the same run.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import scipy.linalg

import gk.backend
from bench.common import DTYPES, Options, median, network, timed

Shape = tuple[int, int, int]
"""(m, k, l) of an (m, k) @ (k, l) product."""


def network_shapes(n: int, width: int, p: int) -> list[Shape]:
    """The three products of one training step: outputs, ∂W2 and ∂z."""
    return [(n, width, p), (p, n, width), (n, p, width)]


def product_flops(shapes: list[Shape], models: int = 1) -> float:
    """2·m·k·l for every product, for ``models`` independent ones each."""
    return float(models * sum(2 * m * k * l for m, k, l in shapes))


def operands(shapes: list[Shape], dtype: str, models: int | None = None,
             seed: int = 0) -> list[tuple[Any, Any]]:
    """Random factors of every product on the backend, with a leading axis of ``models``
    (a batched product) unless it is None."""
    generator = np.random.default_rng(seed)
    batch = () if models is None else (models,)
    return [tuple(gk.backend.asarray(generator.standard_normal(batch + shape), dtype=dtype)
                  for shape in ((m, k), (k, l))) for m, k, l in shapes]


def products_seconds(pairs: list[tuple[Any, Any]], times: int = 1) -> float:
    """Seconds of ``times`` rounds of the products A @ B, per round, into outputs allocated
    once (a fresh (64, n, N) array would cost more in page faults than its product)."""
    xp = gk.backend.array_namespace(*pairs[0])
    outputs = [xp.matmul(A, B) for A, B in pairs]

    def rounds() -> None:
        for _ in range(times):
            for (A, B), out in zip(pairs, outputs, strict=True):
                xp.matmul(A, B, out=out)

    return timed(rounds)[0] / times


def spd_matrix(n: int, seed: int = 0) -> np.ndarray:
    """A diagonally dominant, hence SPD, n × n float64 matrix in Fortran order (for potrf)."""
    A = np.random.default_rng(seed).random((n, n)).T
    A[np.diag_indices(n)] += n
    return A


def cholesky_seconds(n: int, seed: int = 0) -> float:
    """Seconds of one LAPACK potrf, in place, of an n × n SPD float64 matrix (filled
    untimed: it reads one triangle only)."""
    A = spd_matrix(n, seed)
    return timed(lambda: scipy.linalg.cho_factor(A, lower=True, overwrite_a=True,
                                                 check_finite=False))[0]


def product_record(label: str, shapes: list[Shape], dtype: str, repeats: int) -> dict:
    """The median seconds and rate of one round of ``shapes`` (after an untimed round)."""
    pairs = operands(shapes, dtype)
    products_seconds(pairs)
    runs = [products_seconds(pairs) for _ in range(repeats)]
    flops = product_flops(shapes)
    return {"operation": label, "shapes": shapes, "dtype": dtype, "s": median(runs),
            "runs": runs, "flops": flops, "gflops": flops / median(runs) / 1e9}


def run(options: Options) -> dict[str, Any]:
    """Bare products of the network's shapes and of a square n × n, and a bare Cholesky."""
    net = network(options)
    n, width, p = net.n, net.width, net.p
    shapes = network_shapes(n, width, p)
    records = []
    for dtype in DTYPES:
        for shape in shapes:
            records.append(product_record(f"({shape[0]}, {shape[1]}) @ ({shape[1]}, "
                                          f"{shape[2]})", [shape], dtype, options.repeats))
        records.append(product_record("the three, one step", shapes, dtype, options.repeats))
        records.append(product_record(f"square ({n}, {n}) @ ({n}, {n})", [(n, n, n)], dtype,
                                      options.repeats))
    cholesky_seconds(min(n, 64))
    runs = [cholesky_seconds(n) for _ in range(options.repeats)]
    records.append({"operation": f"cho_factor ({n}, {n})", "dtype": "float64",
                    "s": median(runs), "runs": runs, "flops": n**3 / 3,
                    "gflops": n**3 / 3 / median(runs) / 1e9})
    for record in records:
        print(f"limits: {record['operation']} {record['dtype']}: {record['s']:.4g} s, "
              f"{record['gflops']:.1f} GFLOP/s", file=sys.stderr, flush=True)
    return {"table": "limits", "network": net.as_dict(), "records": records,
            "description": "Bare matrix products of one training step's shapes and of a "
                           "square n × n, and scipy.linalg.cho_factor of RFM's n."}
