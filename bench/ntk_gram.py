"""NTK Gram matrix: gk's closed form against neural-tangents' empirical NTK.

The empirical NTK of seed 001's network f(x) = (2/N) W2 (W1 x)² at initialisation (p = 97,
N = 512, ``gk.mlp.init(p, N, seed=0)``), traced over the p outputs, on n one-hot pairs
x = e_a ⊕ e_b: the first n of a fixed random permutation (seed 0) of the p² pairs, n = 1000
and 4704 (= round(p²/2), a training set), in float64 and float32.

gk: ``gk.ntk.gram(params, (a, b), kind="trace")``, the sum over outputs: one n × N × n
product Z Zᵀ (Z = φ(H)) and the derivative term (D w) Dᵀ (D = φ′(H)) only on the 2/p of the
entries where two pairs share an operand (elsewhere x·x′ = 0), i.e. 2 n² N (1 + 2/p) flops,
plus O(n N) gathers and O(n²) element-wise work; the median of the repeats. Also timed:
``gk.ntk.matvec``, the product of the full (n·p) × (n·p) NTK with an (n, p) vector at the
largest n (it never forms the kernel).

The floor of the machine: a bare (n, N) @ (N, n) product in the same dtype; gk's hardware
fraction is (1 + 2/p) × bare seconds / gk seconds.

The peer: neural-tangents' ``empirical_ntk_fn(f, trace_axes=(-1,), vmap_axes=0)``, jitted,
in its own virtual environment (jax 0.4.23, numpy < 2; see bench/_nt_worker.py), run in a
subprocess on the same weights (float64 .npy files, cast there) and the same one-hot inputs.
Its ``trace_axes`` returns the mean over outputs, so gk's kernel / p is compared with it. The
three implementations (JACOBIAN_CONTRACTION, NTK_VECTOR_PRODUCTS, STRUCTURED_DERIVATIVES) are
timed at a small n (``SELECT_N``, where the first two still fit in memory: they hold every
input's p × (#params) Jacobian), each in two layouts of the same parameters (W1, W2
transposed inside f, as a user writes it; or W1ᵀ, W2ᵀ passed in, which structured derivatives
need to find the Jacobians' structure), and the fastest (run time) times the sizes. Its first
call (trace, compile, run) and later calls (run only, median) are timed apart.

A failure is reported where gk / p and neural-tangents differ by more than 1e-12 (float64) or
1e-4 (float32) in max |Δ| / max |K|.

    python -m venv /work/nt-venv
    /work/nt-venv/bin/pip install "jax[cpu]==0.4.23" "jaxlib==0.4.23" "numpy<2" \\
        "scipy<1.13" "neural-tangents==0.6.5"      # never a dependency of gk
    python -m bench --only ntk_gram               # GK_NT_PYTHON=… names another interpreter
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import limits
from bench._env import thread_env
from bench._memory import peak_gb, reset_peak
from bench.common import DTYPES, Network, Options, comparison, median, network, timed
from gk import mlp, ntk, tasks

WORKER = Path(__file__).resolve().parent / "_nt_worker.py"
NT_PYTHON = Path(os.environ.get("GK_NT_PYTHON", "/work/nt-venv/bin/python"))
TOLERANCE = {"float64": 1e-12, "float32": 1e-4}
IMPLEMENTATIONS = {1: "JACOBIAN_CONTRACTION", 2: "NTK_VECTOR_PRODUCTS",
                   3: "STRUCTURED_DERIVATIVES"}
LAYOUTS = ("pre_transposed", "as_written")
SIZES = {"full": [1000, 4704], "quick": [100]}
SELECT_N = 32
KNOWN_FASTEST = {"implementation": 3, "implementation_name": IMPLEMENTATIONS[3],
                 "layout": "pre_transposed"}
"""neural-tangents' fastest at every size and dtype timed so far (bench/results)."""
NOISE = ("I0000 ", "WARNING: All log messages before absl")
NT = "neural-tangents"
NT_COMPILE = "neural-tangents incl. compile"
DESCRIPTION = ("Seconds of the empirical NTK Gram matrix (trace over outputs) of seed 001's "
               "network at initialisation on n one-hot pairs: gk's closed form against "
               "neural-tangents' fastest implementation (jitted, in its own environment; "
               "run only, and first call with compilation). hardware: (1 + 2/p) × a bare "
               "(n, N) @ (N, n) product over gk.")


# ---------------------------------------------------------------- the problem

def pairs(p: int, n: int, seed: int = 0) -> np.ndarray:
    """Indices of the first n pairs of a fixed random permutation of the p² pairs of
    ``gk.tasks.modular("add", p)`` (row-major: a = i // p, b = i % p)."""
    return np.random.default_rng(seed).permutation(p * p)[:n]


def repeated(call: Any, repeats: int) -> tuple[list[float], Any]:
    """Seconds of ``repeats`` calls and the last result."""
    runs = []
    for _ in range(repeats):
        seconds, result = timed(call)
        runs.append(seconds)
    return runs, result


def bare_matmul(n: int, width: int, dtype: str, repeats: int) -> list[float]:
    """Seconds of an (n, N) @ (N, n) product in dtype (the dominant product of gk's gram)."""
    pairs_ = limits.operands([(n, width, n)], dtype, seed=1)
    limits.products_seconds(pairs_)                             # first-call costs, untimed
    return [limits.products_seconds(pairs_) for _ in range(repeats)]


def relative(K: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """max |Δ| / max |ref|, the largest entry-wise |Δ| / |ref|, and the Frobenius ratio."""
    K, reference = np.asarray(K, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    difference = np.abs(K - reference)
    return {"max_over_max": float(difference.max() / np.abs(reference).max()),
            "max_entrywise": float((difference / np.abs(reference)).max()),
            "frobenius": float(np.linalg.norm(K - reference) / np.linalg.norm(reference)),
            "min_abs_reference": float(np.abs(reference).min())}


# ---------------------------------------------------------------- gk and the floor

def gk_gram(params: Any, a: np.ndarray, b: np.ndarray, n: int, repeats: int,
            dtype: str) -> tuple[dict[str, Any], np.ndarray]:
    """gk's trace Gram at n and the bare product: their runs; gk's kernel / p."""
    p, width = params.p, params.width
    x = (a[:n], b[:n])
    reset_peak()
    runs, K = repeated(lambda: ntk.gram(params, x, kind="trace"), repeats)
    peak = peak_gb()
    kernel = np.asarray(K) / p
    del K
    bare = bare_matmul(n, width, dtype, repeats)
    flops = 2 * n * n * width * (1 + 2 / p)
    print(f"ntk_gram gk {dtype} n={n}: gram {median(runs):.4g} s, bare (n,N)@(N,n) "
          f"{median(bare):.4g} s", file=sys.stderr, flush=True)
    return {"n": n, "dtype": dtype, "gk_runs": runs, "gk_peak_gb": peak, "gk_flops": flops,
            "gk_gflops": flops / median(runs) / 1e9, "bare_runs": bare,
            "bare_gflops": 2 * n * n * width / median(bare) / 1e9}, kernel


def gk_matvec(params: Any, a: np.ndarray, b: np.ndarray, n: int, repeats: int,
              dtype: str) -> dict[str, Any]:
    """Seconds of the full (n·p)² NTK times an (n, p) vector, never formed."""
    p = params.p
    v = np.random.default_rng(2).standard_normal((n, p)).astype(dtype)
    x = (a[:n], b[:n])
    ntk.matvec(params, (a[:16], b[:16]), v[:16])
    runs, _ = repeated(lambda: ntk.matvec(params, x, v), repeats)
    print(f"ntk_gram gk {dtype} n={n}: matvec {median(runs):.4g} s", file=sys.stderr,
          flush=True)
    return {"n": n, "dtype": dtype, "shape_of_kernel": [n * p, n * p], "s": median(runs),
            "runs": runs}


# ---------------------------------------------------------------- neural-tangents

def nt_skipped(options: Options, python: Path = NT_PYTHON) -> str | None:
    """Why neural-tangents is not a peer in this run (None where it is)."""
    if not options.peers:
        return "--no-peers"
    if not python.exists():
        return (f"{python} is missing (neural-tangents lives in a virtual environment of its "
                "own: see bench/ntk_gram.py; GK_NT_PYTHON names another)")
    return None


def run_worker(python: Path, folder: Path, dtype: str, jobs: list[dict], name: str,
               threads: int) -> dict[str, Any]:
    """Run bench/_nt_worker.py on ``jobs`` with neural-tangents' interpreter; its record."""
    spec = folder / f"{name}.json"
    spec.write_text(json.dumps({"dtype": dtype, "folder": str(folder), "out": f"{name}-out.json",
                                "jobs": jobs}))
    extra = {"JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads == 1:                                # XLA's own thread pool ignores OMP_*
        extra["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    start = time.perf_counter()
    with subprocess.Popen([str(python), str(WORKER), str(spec)], env=thread_env(threads, **extra),
                          stderr=subprocess.PIPE, text=True) as worker:
        for line in worker.stderr:                  # less TensorFlow's and absl's start-up lines
            if not line.startswith(NOISE):
                print(line, end="", file=sys.stderr, flush=True)
    status = worker.returncode
    out = folder / f"{name}-out.json"
    record = json.loads(out.read_text()) if out.exists() else {"jobs": []}
    record["process_s"] = time.perf_counter() - start
    if status != 0:
        record["error"] = (f"killed by signal {-status} (out of memory?)" if status < 0
                           else f"exit status {status}")
    return record


def save_problem(folder: Path, params: Any, X: np.ndarray) -> None:
    """The weights (float64) and inputs that the worker reads."""
    np.save(folder / "W1.npy", np.asarray(params.W1, dtype=np.float64))
    np.save(folder / "W2.npy", np.asarray(params.W2, dtype=np.float64))
    np.save(folder / "X.npy", X)


def fastest(jobs: list[dict]) -> dict | None:
    """The pre-transposed job with the shortest median run time (None if all failed)."""
    done = [job for job in jobs if "error" not in job and job["layout"] == LAYOUTS[0]]
    return min(done, key=lambda job: median(job["run_s"]), default=None)


def select(python: Path, folder: Path, reference: np.ndarray, dtype: str, select_n: int,
           layouts: tuple[str, ...], threads: int) -> dict[str, Any]:
    """Every implementation and layout at select_n, checked against ``reference`` (gk's
    kernel / p there); the fastest under ``best``."""
    jobs = [{"implementation": implementation, "layout": layout, "n": select_n,
             "repeats": 2, "save": f"select-{implementation}-{layout}.npy"}
            for layout in layouts for implementation in IMPLEMENTATIONS]
    selection = run_worker(python, folder, dtype, jobs, "select", threads)
    for job in selection["jobs"]:
        if "error" not in job:
            job["agreement"] = relative(reference, np.load(folder / job["save"]))
    best = fastest(selection["jobs"])
    if best is not None:
        print(f"ntk_gram neural-tangents {dtype}: fastest at n={select_n} is "
              f"{best['implementation_name']} ({best['layout']})", file=sys.stderr, flush=True)
    return {"select_n": select_n, "selection": selection["jobs"], "best": best,
            "versions": {k: selection.get(k) for k in ("jax", "jaxlib", "neural_tangents",
                                                         "numpy", "python", "devices")},
            "selection_process_s": selection["process_s"], "error": selection.get("error")}


def time_sizes(python: Path, folder: Path, job: dict, dtype: str, sizes: list[int],
               repeats: int, threads: int) -> tuple[dict[str, Any], dict[int, np.ndarray]]:
    """One implementation (``job``'s) at every n: its jobs and kernels."""
    jobs = [{"implementation": job["implementation"], "layout": job["layout"], "n": n,
             "repeats": repeats, "save": f"K-{n}.npy"} for n in sizes]
    timing = run_worker(python, folder, dtype, jobs, "sizes", threads)
    kernels = {j["n"]: np.load(folder / j["save"]) for j in timing["jobs"] if "error" not in j}
    return {"sizes": timing["jobs"], "sizes_process_s": timing["process_s"],
            "sizes_error": timing.get("error")}, kernels


def peer_side(params: Any, X: np.ndarray, reference: np.ndarray, dtype: str, sizes: list[int],
              options: Options) -> tuple[dict, dict[int, np.ndarray]]:
    """Choose neural-tangents' fastest implementation at select_n, then time it at sizes."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        save_problem(folder, params, X)
        if options.quick:                               # the fastest of every full run
            peer = {"selection": "skipped (--quick)", "best": KNOWN_FASTEST}
        else:
            peer = select(NT_PYTHON, folder, reference, dtype, len(reference), LAYOUTS,
                          options.threads)
        if peer["best"] is None:
            return {**peer, "error": "no implementation ran at select_n"}, {}
        timing, kernels = time_sizes(NT_PYTHON, folder, peer["best"], dtype, sizes,
                                     options.repeats, options.threads)
    return {**peer, **timing}, kernels


# ---------------------------------------------------------------- records

def nt_runs(peer: dict[str, Any], n: int) -> tuple[list[float] | str, list[float] | str]:
    """neural-tangents' run times and first-call time at n, or why there are none."""
    if "sizes" not in peer:
        return (peer.get("error") or "failed",) * 2
    job = next((j for j in peer["sizes"] if j["n"] == n), None)
    if job is None or "error" in job:
        reason = "no run" if job is None else job["error"]
        return reason, reason
    return job["run_s"], [job["first_s"]]


def measure(dtype: str, net: Network, options: Options) -> dict[str, Any]:
    """gk's Gram and matvec, and neural-tangents where it is a peer, in one dtype."""
    sizes = SIZES["quick" if options.quick else "full"]
    task = tasks.modular("add", net.p)
    a, b = task.operands(pairs(net.p, max(sizes)))
    params = mlp.init(net.p, net.width, seed=0, dtype=dtype)
    ntk.gram(params, (a[:16], b[:16]), kind="trace")            # first-call costs, untimed
    rows, kernels = zip(*(gk_gram(params, a, b, n, options.repeats, dtype) for n in sizes),
                        strict=True)
    skipped = nt_skipped(options)
    peer, nt_kernels = {"skipped": skipped}, {}
    if skipped is None:
        select_n = min(SELECT_N, max(sizes))
        reference = np.asarray(ntk.gram(params, (a[:select_n], b[:select_n]))) / net.p
        X = np.asarray(task.one_hot_inputs(pairs(net.p, max(sizes))))
        peer, nt_kernels = peer_side(params, X, reference, dtype, sizes, options)
    return {"rows": rows, "kernels": dict(zip(sizes, kernels, strict=True)), "peer": peer,
            "nt_kernels": nt_kernels, "skipped": skipped,
            "matvec": gk_matvec(params, a, b, max(sizes), options.repeats, dtype)}


def records(measured: dict[str, Any], dtype: str, p: int) -> tuple[list[dict], list[str]]:
    """One comparison record per n; the disagreements over the tolerance."""
    out, failures = [], []
    for row in measured["rows"]:
        n = row["n"]
        if measured["skipped"]:
            run_s = first_s = measured["skipped"]
        else:
            run_s, first_s = nt_runs(measured["peer"], n)
        extra = {k: v for k, v in row.items() if k not in ("gk_runs", "bare_runs")}
        fraction = (1 + 2 / p) * median(row["bare_runs"]) / median(row["gk_runs"])
        record = comparison(f"{dtype}, n = {n}", "s", row["gk_runs"],
                            {NT: run_s, NT_COMPILE: first_s}, row["bare_runs"],
                            hardware_fraction=fraction, **extra)
        if n in measured["nt_kernels"]:
            record["agreement"] = relative(measured["kernels"][n], measured["nt_kernels"][n])
            if not record["agreement"]["max_over_max"] < TOLERANCE[dtype]:
                failures.append(f"{dtype} n={n}: max |Δ| / max |K| = "
                                f"{record['agreement']['max_over_max']:.3g} "
                                f"(tolerance {TOLERANCE[dtype]:g})")
        out.append(record)
    return out, failures


def run(options: Options) -> dict[str, Any]:
    net = network(options)
    result: dict[str, Any] = {"table": "comparison", "description": DESCRIPTION,
                              "network": net.as_dict(), "records": [], "failures": [],
                              "matvec": [], "neural_tangents": {}, "tolerance": TOLERANCE,
                              "inputs": "first n of np.random.default_rng(0).permutation(p*p), "
                                        "a = i // p, b = i % p, one-hot e_a ⊕ e_b"}
    for dtype in DTYPES:
        measured = measure(dtype, net, options)
        rows, failures = records(measured, dtype, net.p)
        result["records"] += rows
        result["failures"] += failures
        result["matvec"].append(measured["matvec"])
        result["neural_tangents"][dtype] = measured["peer"]
    return result
