"""One RFM iteration: gk.rfm against a PyTorch version of seed 000's reference algorithm.

One iteration of seed 000's Recursive Feature Machine on addition mod p (quadratic kernel,
α = 0.5, ridgeless, one-hot pairs of dimension d = 2p, n = round(p²/2) training pairs):
the Gram matrix K = (X M Xᵀ)², the solve (K + λI) α = Y, the centred AGOP
G = (1/n) Σ_i J_iᵀ J_i, the predictions on the test pairs, and M ← G^½. Both sides start
from the same M₁ = G^½ of a first gk iteration from M₀ = I (so M is not the identity), on
the same split, in the same process, on the same threads, alternating, median of repeats.

The peer follows seed 000's public code, in float64 torch: the kernel with its factor 3,
a generic LU solve, per-sample Jacobians from one n × n × (p·d) product, centred, summed
as batched Jᵢᵀ Jᵢ, and the square root by SVD. gk uses its own functions on the index
pairs (a, b): closed-form AGOP, Cholesky. With the factor 3, the peer's α is α_gk / 3 and
its Jacobians, G, M and predictions equal gk's exactly (the 3 of the kernel cancels the 1/3
of α); the benchmark checks this at every size (relative difference < 1e-6) and reports a
failure where they differ.

The floor of the machine is a bare LAPACK Cholesky (``scipy.linalg.cho_factor``) of an
n × n SPD matrix of the same n, and an n × n by n × p product. Each p runs in its own
process (``python -m bench.rfm_iteration --worker P``), so the peak resident memory (VmHWM)
is per size; within it, the peak is reset (``/proc/self/clear_refs``) before each timed call,
so gk's and the peer's are separate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import gk
from bench import limits
from bench._env import thread_env
from bench._memory import peak_gb, reset_peak, rss_gb
from bench.common import ROOT, Options, comparison, median, peer_skipped, synchronize

PARTS = ("kernel", "solve", "agop", "eval", "sqrt")
TOLERANCE = 1e-6
TOLERANCE_SQRT = 1e-5   # M ← G^½ of a singular G: eigenvalues at round-off level become ±√ε
REFERENCE = "seed 000 (torch)"
SIZES = {"full": ([61, 97, 127], [199]), "quick": ([11], [])}
"""Moduli timed for gk and the reference, and for gk alone (the reference needs ~6 GB at
p = 127 and an hour at p = 199)."""
DESCRIPTION = ("Seconds of one iteration of seed 000's RFM (addition mod p, quadratic kernel, "
               "α = 0.5, ridgeless, from the same M₁), gk against a torch port of the "
               "paper's algorithm (LU solve, per-sample Jacobians, SVD), each p in its own "
               "process; the floor is scipy.linalg.cho_factor of the same n.")


# ---------------------------------------------------------------- the problem

def problem(p: int) -> dict[str, Any]:
    """Split, index pairs, dense one-hot rows and targets, and M₁ = G^½ of an iteration at I,
    on the backend."""
    xp = gk.backend.namespace()
    task = gk.tasks.modular("add", p)
    split = task.split(0.5, 0)
    train = tuple(xp.asarray(x) for x in task.operands(split.train))
    test = tuple(xp.asarray(x) for x in task.operands(split.test))
    Y = split.targets("train")
    M0 = xp.eye(2 * p)
    K = gk.kernels.gram("quadratic", M0, train, train, None, p)
    alpha, _ = gk.backend.solve_ridge(K, Y, 0.0)
    del K
    G = gk.rfm.agop("quadratic", M0, alpha, train, None, p, centering=True)
    M1 = gk.backend.psd_power(G, 0.5)
    return {"p": p, "n": len(split.train), "n_test": len(split.test), "train": train,
            "test": test, "Y": Y, "M": M1, "X": split.inputs("train"),
            "X_test": split.inputs("test")}


def gk_iteration(M: Any, train: Any, test: Any, Y: Any, p: int) -> tuple[dict, dict]:
    """One iteration with gk's functions; the seconds of each part and what they return."""
    times, clock = {}, time.perf_counter()

    def lap(part: str) -> None:
        nonlocal clock
        synchronize()
        now = time.perf_counter()
        times[part], clock = now - clock, now

    synchronize()
    clock = time.perf_counter()
    K = gk.kernels.gram("quadratic", M, train, train, None, p)
    lap("kernel")
    alpha, jitter = gk.backend.solve_ridge(K, Y, 0.0)
    lap("solve")
    del K
    G = gk.rfm.agop("quadratic", M, alpha, train, None, p, centering=True)
    lap("agop")
    predictions = gk.rfm.predict("quadratic", M, test, train, alpha, None, p)
    lap("eval")
    M_next = gk.backend.psd_power(G, 0.5)
    lap("sqrt")
    times["total"] = sum(times[part] for part in PARTS)
    return times, {"alpha": alpha, "G": G, "predictions": predictions, "M": M_next,
                   "jitter": jitter}


def reference_iteration(M: Any, X: Any, X_test: Any, Y: Any, ridge: float = 0.0,
                        batch: int | None = None) -> tuple[dict, dict]:
    """Seed 000's algorithm in float64 torch (tensors in, tensors out), timed by part."""
    import torch

    n, d = X.shape
    classes = Y.shape[1]
    times, clock = {}, time.perf_counter()

    def lap(part: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[part], clock = now - clock, now

    K = 3 * ((X @ M) @ X.T) ** 2
    lap("kernel")
    alpha = torch.linalg.solve(K + ridge * torch.eye(n, dtype=K.dtype), Y)      # LU
    lap("solve")
    del K
    XM = X @ M
    K_derivative = 3 * 2 * (XM @ X.T)                       # ∂/∂(xᵀMz) of 3 (xᵀMz)²
    outer = (alpha.reshape(n, classes, 1) @ XM.reshape(n, 1, d)).reshape(n, classes * d)
    jacobians = (K_derivative.T @ outer).reshape(n, classes, d)     # J_i = Σ_j k'_ji α_j (Mx_j)ᵀ
    del outer, K_derivative
    jacobians = jacobians - jacobians.mean(dim=0, keepdim=True)
    batch = batch or max(1, 2**23 // (d * d))                # (batch, d, d) ≤ 64 MiB at a time
    G = torch.zeros(d, d, dtype=X.dtype)
    for start in range(0, n, batch):
        J = jacobians[start:start + batch]
        G += (J.transpose(1, 2) @ J).sum(dim=0)
    G /= n
    del jacobians
    lap("agop")
    predictions = (3 * ((X_test @ M) @ X.T) ** 2) @ alpha
    lap("eval")
    U, s, Vh = torch.linalg.svd(G)
    M_next = (U * s.sqrt()) @ Vh
    lap("sqrt")
    times["total"] = sum(times[part] for part in PARTS)
    return times, {"alpha": alpha, "G": G, "predictions": predictions, "M": M_next}


# ---------------------------------------------------------------- one size, in its own process

def relative(x: Any, y: Any) -> float:
    x, y = gk.backend.to_numpy(x), gk.backend.to_numpy(y)
    return float(np.linalg.norm(x - y) / np.linalg.norm(y))


def agreement(ref: dict[str, np.ndarray], ours: dict[str, Any]) -> dict[str, float]:
    """Relative Frobenius differences of the reference's results from gk's."""
    G = gk.backend.to_numpy(ours["G"])
    return {"alpha (3·α_ref vs α_gk)": relative(3 * ref["alpha"], ours["alpha"]),
            "predictions": relative(ref["predictions"], ours["predictions"]),
            "G": relative(ref["G"], G),
            "G / trace": relative(ref["G"] / np.trace(ref["G"]), G / np.trace(G)),
            "M next": relative(ref["M"], ours["M"]),
            "trace ratio G_ref / G_gk": float(np.trace(ref["G"]) / np.trace(G))}


def floor(n: int, p: int, repeats: int) -> dict[str, Any]:
    """Bare Cholesky and (n, n) @ (n, p) product seconds at n, and the peak memory."""
    reset_peak()
    cholesky = [limits.cholesky_seconds(n) for _ in range(repeats)]
    pairs = limits.operands([(n, n, p)], "float64")
    matmul = [limits.products_seconds(pairs) for _ in range(repeats)]
    return {"bare_cholesky_runs": cholesky, "bare_cholesky_s": median(cholesky),
            "matmul_n_n_p_s": median(matmul),
            "matmul_gflops": 2 * n * n * p / median(matmul) / 1e9,
            "cholesky_gflops": n**3 / 3 / median(cholesky) / 1e9, "floor_peak_gb": peak_gb()}


def reference_inputs(setup: dict[str, Any]) -> list[Any]:
    """M, X, X_test and Y of ``setup`` as float64 torch tensors on the CPU."""
    import torch

    return [torch.from_numpy(gk.backend.to_numpy(setup[k])) for k in ("M", "X", "X_test", "Y")]


def time_sides(setup: dict[str, Any], repeats: int, inputs: list[Any] | None) -> dict[str, Any]:
    """Alternating iterations of gk and, given its ``inputs``, the reference, with their
    peak memory."""
    runs: dict[str, list] = {"gk": [], "reference": []}
    peaks = {"gk": 0.0, "reference": 0.0}
    outs: dict[str, Any] = {}
    base = {"gk": rss_gb(), "reference": None if inputs is None else rss_gb()}
    for repeat in range(repeats):
        reset_peak()
        times, outs["gk"] = gk_iteration(setup["M"], setup["train"], setup["test"], setup["Y"],
                                         setup["p"])
        runs["gk"].append(times)
        peaks["gk"] = max(peaks["gk"], peak_gb() or 0.0)
        if inputs is not None:
            reset_peak()
            times, outs["reference"] = reference_iteration(*inputs)
            runs["reference"].append(times)
            peaks["reference"] = max(peaks["reference"], peak_gb() or 0.0)
        print(f"rfm_iteration p={setup['p']} repeat {repeat + 1}/{repeats}: "
              + ", ".join(f"{side} {r[-1]['total']:.3f} s" for side, r in runs.items() if r),
              file=sys.stderr, flush=True)
    return {"runs": runs, "peaks": peaks, "outs": outs, "resident_before": base}


def measure(p: int, repeats: int, reference: bool, threads: int) -> dict[str, Any]:
    """Time ``repeats`` iterations of gk (and of the peer) at modulus p; check they agree."""
    started = time.perf_counter()
    if reference:
        import torch

        torch.set_num_threads(threads)
        reference_iteration(*reference_inputs(problem(5)))   # load torch's kernels first
    setup = problem(p)
    n = setup["n"]
    row: dict[str, Any] = {"p": p, "n": n, "n_test": setup["n_test"], "d": 2 * p,
                           "reference": reference, **floor(n, p, repeats)}
    sides = time_sides(setup, repeats, reference_inputs(setup) if reference else None)
    medians = {side: {part: median([t[part] for t in runs]) for part in (*PARTS, "total")}
               for side, runs in sides["runs"].items() if runs}
    row.update(gk=medians["gk"], gk_runs=sides["runs"]["gk"],
               jitter=sides["outs"]["gk"]["jitter"],
               peak_rss_gb={**sides["peaks"], "process": peak_gb(),
                             "resident_before": sides["resident_before"]})
    if reference:
        row.update(reference_times=medians["reference"],
                   reference_runs=sides["runs"]["reference"],
                   agreement=agreement({k: v.numpy() for k, v in
                                        sides["outs"]["reference"].items()},
                                       sides["outs"]["gk"]))
    row["wall_s"] = time.perf_counter() - started
    return row


def check(row: dict[str, Any]) -> list[str]:
    """The agreements of a row that exceed the tolerance (the trace ratio must be 1)."""
    failures = []
    for name, value in row.get("agreement", {}).items():
        error = abs(value - 1) if name.startswith("trace ratio") else value
        tolerance = TOLERANCE_SQRT if name == "M next" else TOLERANCE
        if not error < tolerance:
            failures.append(f"p={row['p']}: {name} = {value:.3g} (tolerance {tolerance:g})")
    return failures


# ---------------------------------------------------------------- driver

def run_size(p: int, repeats: int, reference: bool, threads: int) -> dict[str, Any]:
    """Measure one p in a fresh process (so its peak memory is its own); return its row."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "row.json"
        command = [sys.executable, "-m", "bench.rfm_iteration", "--worker", str(p),
                   "--repeats", str(repeats), "--threads", str(threads), "--out", str(out)]
        command += [] if reference else ["--no-reference"]
        status = subprocess.run(command, cwd=ROOT, env=thread_env(threads)).returncode
        row = json.loads(out.read_text()) if out.exists() else {"p": p, "reference": reference}
    if status != 0:
        row["error"] = (f"killed by signal {-status} (out of memory?)" if status < 0
                        else f"exit status {status}")
    return row


def record(row: dict[str, Any], skipped: str | None) -> dict[str, Any]:
    """The comparison record of one p's row (the row itself under ``detail``)."""
    case = f"p = {row['p']}, n = {row.get('n', '?')}"
    if "gk" not in row:
        return {"case": case, "error": row.get("error", "failed"), "detail": row}
    peer = ([t["total"] for t in row["reference_runs"]] if row["reference"]
            else skipped or "gk alone at this size")
    detail = {k: v for k, v in row.items() if k not in ("gk_runs", "reference_runs")}
    return comparison(case, "s/iteration", [t["total"] for t in row["gk_runs"]],
                      {REFERENCE: peer}, row["bare_cholesky_runs"], p=row["p"], n=row["n"],
                      detail=detail)


def run(options: Options) -> dict[str, Any]:
    skipped = peer_skipped(options)
    both, alone = SIZES["quick" if options.quick else "full"]
    sizes = [(p, skipped is None) for p in both] + [(p, False) for p in alone]
    results = [run_size(p, options.repeats, reference, options.threads)
               for p, reference in sizes]
    failures = [failure for row in results
                for failure in check(row) + ([f"p={row['p']}: {row['error']}"]
                                             if "error" in row else [])]
    return {"table": "comparison", "records": [record(row, skipped) for row in results],
            "failures": failures, "description": DESCRIPTION, "op": "add",
            "train_fraction": 0.5, "kernel": "quadratic", "ridge": 0.0, "centering": True,
            "M": "M1 = AGOP^(1/2) of a first gk iteration from I",
            "tolerance": TOLERANCE, "tolerance_M_next": TOLERANCE_SQRT}


def main() -> None:
    """The worker: measure one p and write its row as JSON."""
    parser = argparse.ArgumentParser(description="one p of the rfm_iteration benchmark "
                                                 "(run by python -m bench)")
    parser.add_argument("--worker", type=int, required=True, metavar="P")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    row = measure(args.worker, args.repeats, not args.no_reference, args.threads)
    args.out.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
