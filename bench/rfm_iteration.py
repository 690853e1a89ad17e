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
of α); the script checks this at every size (relative difference < 1e-6) and exits with
an error, after writing its record, where they differ.

The floor of the machine is a bare LAPACK Cholesky (``scipy.linalg.cho_factor``) of an
n × n SPD matrix of the same n, and an n × n by n × p product. Each p runs in its own
process, so the peak resident memory (VmHWM) is per size; within it, the peak is reset
(``/proc/self/clear_refs``) before each timed call, so gk's and the peer's are separate.

    pip install torch==2.13.0        # the CPU build; never a dependency of gk
    python bench/rfm_iteration.py --p 61 97 127 --repeats 3 --gk-only-p 199
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
from _memory import peak_gb, reset_peak, rss_gb  # bench/ is the script's folder

import gk
import gk.backend
import gk.kernels
import gk.rfm
import gk.tasks

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("kernel", "solve", "agop", "eval", "sqrt")
TOLERANCE = 1e-6
TOLERANCE_SQRT = 1e-5   # M ← G^½ of a singular G: eigenvalues at round-off level become ±√ε


# ---------------------------------------------------------------- the problem

def problem(p: int) -> dict[str, Any]:
    """Split, index pairs, dense one-hot rows and targets, and M₁ = G^½ of an iteration at I."""
    task = gk.tasks.modular("add", p)
    split = task.split(0.5, 0)
    train = (task.a[split.train], task.b[split.train])
    test = (task.a[split.test], task.b[split.test])
    Y = np.ascontiguousarray(split.targets("train"))
    M0 = np.eye(2 * p)
    K = gk.kernels.gram("quadratic", M0, train, train, None, p)
    alpha, _ = gk.backend.solve_ridge(K, Y, 0.0)
    del K
    G = gk.rfm.agop("quadratic", M0, alpha, train, None, p, centering=True)
    M1 = np.ascontiguousarray(gk.backend.psd_power(G, 0.5))
    return {"p": p, "n": len(split.train), "n_test": len(split.test), "train": train,
            "test": test, "Y": Y, "M": M1, "X": split.inputs("train"),
            "X_test": split.inputs("test")}


def gk_iteration(M: Any, train: Any, test: Any, Y: Any, p: int) -> tuple[dict, dict]:
    """One iteration with gk's functions; the seconds of each part and what they return."""
    times, clock = {}, time.perf_counter()

    def lap(part: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[part], clock = now - clock, now

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


# ---------------------------------------------------------------- the machine's floor

def bare_cholesky_seconds(n: int, seed: int = 0) -> float:
    """Seconds of one LAPACK potrf, in place, of an n×n SPD float64 matrix (filled untimed)."""
    A = np.random.default_rng(seed).random((n, n))          # potrf reads one triangle only:
    A[np.diag_indices(n)] += n                               # it is diagonally dominant, SPD
    start = time.perf_counter()
    scipy.linalg.cho_factor(A.T, lower=True, overwrite_a=True, check_finite=False)
    return time.perf_counter() - start


def matmul_seconds(n: int, classes: int, seed: int = 0) -> float:
    """Seconds of an (n, n) by (n, classes) float64 product."""
    generator = np.random.default_rng(seed)
    A, B = generator.random((n, n)), generator.random((n, classes))
    start = time.perf_counter()
    A @ B
    return time.perf_counter() - start


# ---------------------------------------------------------------- one size, in its own process

def relative(x: Any, y: Any) -> float:
    x, y = np.asarray(x), np.asarray(y)
    return float(np.linalg.norm(x - y) / np.linalg.norm(y))


def measure(p: int, repeats: int, reference: bool, threads: int) -> dict[str, Any]:
    """Time ``repeats`` iterations of gk (and of the peer) at modulus p; check they agree."""
    started = time.perf_counter()
    if reference:
        import torch

        torch.set_num_threads(threads)
        small = problem(5)                                   # load torch's kernels first
        reference_iteration(*(torch.from_numpy(small[k]) for k in ("M", "X", "X_test", "Y")))
    setup = problem(p)
    n = setup["n"]
    print(f"p={p}: n={n}, M₁ ready after {time.perf_counter() - started:.1f} s",
          file=sys.stderr, flush=True)
    floor = {"cholesky": [], "matmul": []}
    reset_peak()
    for _ in range(repeats):
        floor["cholesky"].append(bare_cholesky_seconds(n))
        floor["matmul"].append(matmul_seconds(n, p))
    floor_peak = peak_gb()
    times = {"gk": [], "reference": []}
    peaks = {"gk": 0.0, "reference": 0.0}
    base = {"gk": rss_gb(), "reference": None}
    can_reset = reset_peak()
    if reference:
        to_torch = {k: torch.from_numpy(setup[k]) for k in ("M", "X", "X_test", "Y")}
        base["reference"] = rss_gb()
    for repeat in range(repeats):
        reset_peak()
        gk_times, gk_out = gk_iteration(setup["M"], setup["train"], setup["test"], setup["Y"], p)
        times["gk"].append(gk_times)
        peaks["gk"] = max(peaks["gk"], peak_gb() or 0.0)
        line = f"p={p} repeat {repeat + 1}/{repeats}: gk {gk_times['total']:.3f} s"
        if reference:
            reset_peak()
            ref_times, ref_out = reference_iteration(to_torch["M"], to_torch["X"],
                                                     to_torch["X_test"], to_torch["Y"])
            times["reference"].append(ref_times)
            peaks["reference"] = max(peaks["reference"], peak_gb() or 0.0)
            line += f", reference {ref_times['total']:.3f} s"
        print(line, file=sys.stderr, flush=True)
    median = {side: {part: statistics.median(t[part] for t in runs)
                     for part in (*PARTS, "total")}
              for side, runs in times.items() if runs}
    cholesky = statistics.median(floor["cholesky"])
    matmul = statistics.median(floor["matmul"])
    row: dict[str, Any] = {
        "p": p, "n": n, "n_test": setup["n_test"], "d": 2 * p, "reference": reference,
        "gk": median["gk"], "gk_runs": times["gk"], "jitter": gk_out["jitter"],
        "bare_cholesky_s": cholesky, "gk_total_over_cholesky": median["gk"]["total"] / cholesky,
        "gk_solve_over_cholesky": median["gk"]["solve"] / cholesky,
        "matmul_n_n_p_s": matmul, "matmul_gflops": 2 * n * n * p / matmul / 1e9,
        "cholesky_gflops": n**3 / 3 / cholesky / 1e9,
        "peak_rss_gb": {"gk": peaks["gk"], "reference": peaks["reference"] if reference else None,
                        "floor": floor_peak, "process": peak_gb(),
                        "resident_before_gk": base["gk"],
                        "resident_before_reference": base["reference"],
                        "per_call": can_reset},
        "wall_s": None,
    }
    if reference:
        row["reference_times"] = median["reference"]
        row["reference_runs"] = times["reference"]
        row["speedup"] = median["reference"]["total"] / median["gk"]["total"]
        row["torch_threads"] = torch.get_num_threads()
        ref = {k: v.numpy() for k, v in ref_out.items()}
        row["agreement"] = {                                  # relative Frobenius differences
            "alpha (3·α_ref vs α_gk)": relative(3 * ref["alpha"], gk_out["alpha"]),
            "predictions": relative(ref["predictions"], gk_out["predictions"]),
            "G": relative(ref["G"], gk_out["G"]),
            "G / trace": relative(ref["G"] / np.trace(ref["G"]),
                                  gk_out["G"] / np.trace(gk_out["G"])),
            "M next": relative(ref["M"], gk_out["M"]),
            "trace ratio G_ref / G_gk": float(np.trace(ref["G"]) / np.trace(gk_out["G"])),
        }
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
    env = dict(os.environ, GK_BACKEND="numpy")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(threads)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "row.json"
        command = [sys.executable, __file__, "--worker", str(p), "--repeats", str(repeats),
                   "--worker-out", str(out)] + ([] if reference else ["--no-reference"])
        status = subprocess.run(command, env=env).returncode
        row = json.loads(out.read_text()) if out.exists() else {"p": p, "reference": reference}
    if status != 0:
        row["error"] = (f"killed by signal {-status} (out of memory?)" if status < 0
                        else f"exit status {status}")
    return row


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def gigabytes(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def tables(rows: list[dict], budget_gb: float, budget_s: float) -> str:
    """The summary and the per-part times as Markdown."""
    lines = ["| p | n | gk s | reference s | speedup | bare Cholesky s | gk / Cholesky "
             f"| gk peak GB | ref peak GB | fits {budget_gb:g} GB, {budget_s:g} s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for row in rows:
        if "gk" not in row:
            lines.append(f"| {row['p']} | – | {row.get('error', 'failed')} "
                         "| – | – | – | – | – | – | no |")
            continue
        total = row["gk"]["total"]
        reference = row.get("reference_times", {}).get("total")
        peak = row["peak_rss_gb"]
        fits = total <= budget_s and (peak["gk"] or 0) <= budget_gb
        speedup = f"{row['speedup']:.1f}×" if "speedup" in row else "–"
        lines.append(f"| {row['p']} | {row['n']} | {seconds(total)} | {seconds(reference)} "
                     f"| {speedup} | {seconds(row['bare_cholesky_s'])} "
                     f"| {row['gk_total_over_cholesky']:.2f} | {gigabytes(peak['gk'])} "
                     f"| {gigabytes(peak['reference'])} | {'yes' if fits else 'no'} |")
    lines += ["", "| p | side | " + " | ".join(PARTS) + " | total |",
              "|---:|:---|" + "---:|" * (len(PARTS) + 1)]
    for row in rows:
        for side, key in (("gk", "gk"), ("reference", "reference_times")):
            if key in row:
                lines.append(f"| {row['p']} | {side} | "
                             + " | ".join(seconds(row[key][part]) for part in (*PARTS, "total"))
                             + " |")
    return "\n".join(lines)


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--p", type=int, nargs="+", default=[61, 97, 127],
                        help="moduli timed for gk and the reference (default 61 97 127)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reference-above", type=int, default=None, metavar="P",
                        help="time gk alone for p > P (the reference needs ~6 GB at p = 127)")
    parser.add_argument("--gk-only-p", type=int, nargs="*", default=[],
                        help="further moduli timed for gk alone, e.g. to find the largest p "
                             "within --budget-gb and --budget-s")
    parser.add_argument("--budget-gb", type=float, default=24.0)
    parser.add_argument("--budget-s", type=float, default=60.0)
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the JSON and Markdown records (default bench/results)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))

    if args.worker is not None:
        row = measure(args.worker, args.repeats, not args.no_reference, threads)
        args.worker_out.write_text(json.dumps(row, indent=2) + "\n")
        failures = check(row)
        if failures:
            raise AssertionError("gk and the reference disagree:\n" + "\n".join(failures))
        return

    sizes = [(p, args.no_reference_above is None or p <= args.no_reference_above)
             for p in args.p] + [(p, False) for p in args.gk_only_p]
    rows, failures = [], []
    for p, reference in sizes:
        row = run_size(p, args.repeats, reference, threads)
        rows.append(row)
        failures += check(row) + ([f"p={p}: {row['error']}"] if "error" in row else [])

    record = {"benchmark": "rfm_iteration", "machine": platform.node(), "cpu_threads": threads,
              "date": datetime.date.today().isoformat(), "op": "add", "train_fraction": 0.5,
              "kernel": "quadratic", "ridge": 0.0, "centering": True, "split_seed": 0,
              "M": "M1 = AGOP^(1/2) of a first gk iteration from I", "repeats": args.repeats,
              "statistic": "median", "times": "seconds", "memory": "GiB (VmHWM)",
              "tolerance": TOLERANCE, "tolerance_M_next": TOLERANCE_SQRT,
              "budget_gb": args.budget_gb, "budget_s": args.budget_s,
              "numpy": np.__version__, "scipy": scipy.__version__, "torch": version("torch"),
              "gk": gk.__version__, "python": platform.python_version(), "results": rows}
    table = tables(rows, args.budget_gb, args.budget_s)
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"rfm_iteration-cpu{threads}-{record['date']}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    header = (f"RFM iteration, addition mod p, α = 0.5, quadratic kernel, ridgeless; "
              f"{threads} CPU threads, {record['machine']}, {record['date']}; median of "
              f"{args.repeats}; times in seconds, peak resident memory in GiB.\n\n")
    out.with_suffix(".md").write_text(header + table + "\n")
    print(f"wrote {out} and {out.with_suffix('.md').name}")
    if failures:
        raise SystemExit("failed:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
