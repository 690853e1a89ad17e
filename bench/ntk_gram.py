"""NTK Gram matrix: gk's closed form against neural-tangents' empirical NTK.

The empirical NTK of seed 001's network f(x) = (2/N) W2 (W1 x)² at initialisation (p = 97,
N = 512, ``gk.mlp.init(p, N, seed=0)``), traced over the p outputs, on n one-hot pairs
x = e_a ⊕ e_b: the first n of a fixed random permutation (seed 0) of the p² pairs, n = 1000
and 4704 (= round(p²/2), a training set), in float64 and float32.

gk: ``gk.ntk.gram(params, (a, b), kind="trace")``, the sum over outputs: one n × N × n
product Z Zᵀ (Z = φ(H)) and the derivative term (D w) Dᵀ (D = φ′(H)) only on the 2/p of the
entries where two pairs share an operand (elsewhere x·x′ = 0), i.e. 2 n² N (1 + 2/p) flops,
plus O(n N) gathers and O(n²) element-wise work; the median of ``--repeats`` calls. Also timed:
``gk.ntk.matvec``, the product of the full (n·p) × (n·p) NTK with an (n, p) vector at the
largest n (it never forms the kernel).

The floor of the machine: a bare (n, N) @ (N, n) product in the same dtype (median of
repeats); gk's rate is stated as the share of it: 2 × bare seconds / gk seconds.

The peer: neural-tangents' ``empirical_ntk_fn(f, trace_axes=(-1,), vmap_axes=0)``, jitted,
in its own virtual environment (jax 0.4.23, numpy < 2; see bench/_nt_worker.py), run in a
subprocess on the same weights (float64 .npy files, cast there) and the same one-hot inputs.
Its ``trace_axes`` returns the mean over outputs, so gk's kernel / p is compared with it. The
three implementations (JACOBIAN_CONTRACTION, NTK_VECTOR_PRODUCTS, STRUCTURED_DERIVATIVES) are
timed at a small n (``--select-n``, where the first two still fit in memory: they hold every
input's p × (#params) Jacobian), each in two layouts of the same parameters (W1, W2
transposed inside f, as a user writes it; or W1ᵀ, W2ᵀ passed in, which structured derivatives
need to find the Jacobians' structure), and the fastest (run time) times the sizes. Its first
call (trace, compile, run) and later calls (run only, median) are timed apart.

The script exits with an error, after writing its record, where gk / p and neural-tangents
differ by more than 1e-12 (float64) or 1e-4 (float32) in max |Δ| / max |K|.

    python -m venv /work/nt-venv
    /work/nt-venv/bin/pip install "jax[cpu]==0.4.23" "jaxlib==0.4.23" "numpy<2" \\
        "scipy<1.13" "neural-tangents==0.6.5"      # never a dependency of gk
    python bench/ntk_gram.py --sizes 1000 4704 --repeats 3
    python bench/ntk_gram.py --quick               # n = 200, one repeat, writes no record
"""

from __future__ import annotations

import argparse
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
from _memory import GB, peak_gb, reset_peak  # bench/ is the script's folder

import gk
from gk import mlp, ntk, tasks

RESULTS = Path(__file__).resolve().parent / "results"
WORKER = Path(__file__).resolve().parent / "_nt_worker.py"
NT_PYTHON = Path(os.environ.get("GK_NT_PYTHON", "/work/nt-venv/bin/python"))
DATE = "2026-11-21"
DTYPES = ("float64", "float32")
TOLERANCE = {"float64": 1e-12, "float32": 1e-4}
IMPLEMENTATIONS = {1: "JACOBIAN_CONTRACTION", 2: "NTK_VECTOR_PRODUCTS",
                   3: "STRUCTURED_DERIVATIVES"}
LAYOUTS = ("pre_transposed", "as_written")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
NOISE = ("I0000 ", "WARNING: All log messages before absl")


# ---------------------------------------------------------------- memory and load

def load() -> dict[str, Any]:
    """The load averages and the output of ``uptime`` (the CPU may be shared)."""
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        uptime = None
    return {"loadavg": list(os.getloadavg()), "uptime": uptime}


def machine() -> dict[str, Any]:
    """What ``platform``, ``os`` and /proc say about this machine."""
    info: dict[str, Any] = {"node": platform.node(), "platform": platform.platform(),
                            "machine": platform.machine(), "processor": platform.processor(),
                            "cpu_count": os.cpu_count(),
                            "affinity": len(os.sched_getaffinity(0))}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    return info


# ---------------------------------------------------------------- the problem

def pairs(p: int, n: int, seed: int = 0) -> np.ndarray:
    """Indices of the first n pairs of a fixed random permutation of the p² pairs of
    ``gk.tasks.modular("add", p)`` (row-major: a = i // p, b = i % p)."""
    return np.random.default_rng(seed).permutation(p * p)[:n]


def timed(call: Any, repeats: int) -> tuple[list[float], Any]:
    """Seconds of ``repeats`` calls and the last result."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        runs.append(time.perf_counter() - start)
    return runs, result


def bare_matmul(n: int, width: int, dtype: str, repeats: int) -> list[float]:
    """Seconds of an (n, N) @ (N, n) product in dtype (the dominant product of gk's gram)."""
    generator = np.random.default_rng(1)
    A = generator.standard_normal((n, width)).astype(dtype)
    B = generator.standard_normal((width, n)).astype(dtype)
    A @ B                                                       # first-call costs, untimed
    return timed(lambda: A @ B, repeats)[0]


def relative(K: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """max |Δ| / max |ref|, the largest entry-wise |Δ| / |ref|, and the Frobenius ratio."""
    K, reference = np.asarray(K, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    difference = np.abs(K - reference)
    return {"max_over_max": float(difference.max() / np.abs(reference).max()),
            "max_entrywise": float((difference / np.abs(reference)).max()),
            "frobenius": float(np.linalg.norm(K - reference) / np.linalg.norm(reference)),
            "min_abs_reference": float(np.abs(reference).min())}


# ---------------------------------------------------------------- gk and the floor

def gk_side(params: Any, a: np.ndarray, b: np.ndarray, sizes: list[int], repeats: int,
            dtype: str) -> tuple[list[dict], dict, dict[int, np.ndarray]]:
    """gk's trace Gram at each n (and the bare product), then matvec at the largest n."""
    p, width = params.p, params.width
    ntk.gram(params, (a[:16], b[:16]), kind="trace")            # first-call costs, untimed
    rows, kernels = [], {}
    for n in sizes:
        x = (a[:n], b[:n])
        reset_peak()
        runs, K = timed(lambda x=x: ntk.gram(params, x, kind="trace"), repeats)
        peak = peak_gb()
        kernels[n] = np.asarray(K) / p
        del K
        bare = bare_matmul(n, width, dtype, repeats)
        seconds, floor = statistics.median(runs), statistics.median(bare)
        flops = 2 * n * n * width * (1 + 2 / p)
        rows.append({"n": n, "dtype": dtype, "gk_s": seconds, "gk_runs": runs,
                     "gk_peak_gb": peak, "gk_flops": flops, "gk_gflops": flops / seconds / 1e9,
                     "bare_matmul_s": floor, "bare_matmul_runs": bare,
                     "bare_gflops": 2 * n * n * width / floor / 1e9,
                     "gk_share_of_bare_rate": (1 + 2 / p) * floor / seconds})
        print(f"gk {dtype} n={n}: gram {seconds:.3f} s, bare (n,N)@(N,n) {floor:.3f} s, "
              f"share of bare rate {(1 + 2 / p) * floor / seconds:.2f}", file=sys.stderr,
              flush=True)
    n = max(sizes)
    v = np.random.default_rng(2).standard_normal((n, p)).astype(dtype)
    x = (a[:n], b[:n])
    ntk.matvec(params, (a[:16], b[:16]), v[:16])
    runs, _ = timed(lambda: ntk.matvec(params, x, v), repeats)
    matvec = {"n": n, "dtype": dtype, "shape_of_kernel": [n * p, n * p],
              "s": statistics.median(runs), "runs": runs}
    print(f"gk {dtype} n={n}: matvec {matvec['s']:.3f} s", file=sys.stderr, flush=True)
    return rows, matvec, kernels


# ---------------------------------------------------------------- neural-tangents

def run_worker(python: Path, folder: Path, dtype: str, jobs: list[dict], name: str,
               threads: int) -> dict[str, Any]:
    """Run bench/_nt_worker.py on ``jobs`` with neural-tangents' interpreter; its record."""
    spec = folder / f"{name}.json"
    spec.write_text(json.dumps({"dtype": dtype, "folder": str(folder), "out": f"{name}-out.json",
                                "jobs": jobs}))
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               **{variable: str(threads) for variable in THREAD_VARIABLES})
    start = time.perf_counter()
    with subprocess.Popen([str(python), str(WORKER), str(spec)], env=env,
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


def fastest(jobs: list[dict]) -> dict | None:
    """The pre-transposed job with the shortest median run time (None if all failed)."""
    done = [job for job in jobs if "error" not in job and job["layout"] == LAYOUTS[0]]
    return min(done, key=lambda job: statistics.median(job["run_s"]), default=None)


def peer_side(python: Path, params: Any, X: np.ndarray, reference: np.ndarray, dtype: str,
              sizes: list[int], select_n: int, layouts: tuple[str, ...], repeats: int,
              threads: int) -> tuple[dict, dict[int, np.ndarray]]:
    """Choose neural-tangents' fastest implementation at select_n, then time it at sizes.

    ``reference`` is gk's kernel / p on the first select_n inputs, which every
    implementation's kernel is compared with.
    """
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        np.save(folder / "W1.npy", np.asarray(params.W1, dtype=np.float64))
        np.save(folder / "W2.npy", np.asarray(params.W2, dtype=np.float64))
        np.save(folder / "X.npy", X[:max(max(sizes), select_n)])
        jobs = [{"implementation": implementation, "layout": layout, "n": select_n,
                 "repeats": 2, "save": f"select-{implementation}-{layout}.npy"}
                for layout in layouts for implementation in IMPLEMENTATIONS]
        selection = run_worker(python, folder, dtype, jobs, "select", threads)
        for job in selection["jobs"]:
            if "error" not in job:
                job["agreement"] = relative(reference, np.load(folder / job["save"]))
        best = fastest(selection["jobs"])
        peer: dict[str, Any] = {"select_n": select_n, "selection": selection["jobs"],
                                "versions": {k: selection.get(k) for k in
                                             ("jax", "jaxlib", "neural_tangents", "numpy",
                                              "python", "devices")},
                                "selection_process_s": selection["process_s"]}
        if "error" in selection:
            peer["selection_error"] = selection["error"]
        kernels: dict[int, np.ndarray] = {}
        if best is None:
            peer["error"] = "no implementation ran at select_n"
            return peer, kernels
        peer["implementation"] = best["implementation"]
        peer["implementation_name"] = best["implementation_name"]
        peer["layout"] = best["layout"]
        print(f"neural-tangents {dtype}: fastest at n={select_n} is "
              f"{best['implementation_name']} ({best['layout']})", file=sys.stderr, flush=True)
        jobs = [{"implementation": best["implementation"], "layout": best["layout"], "n": n,
                 "repeats": repeats, "save": f"K-{n}.npy"} for n in sizes]
        timing = run_worker(python, folder, dtype, jobs, "sizes", threads)
        peer["sizes"] = timing["jobs"]
        peer["sizes_process_s"] = timing["process_s"]
        if "error" in timing:
            peer["sizes_error"] = timing["error"]
        for job in timing["jobs"]:
            if "error" not in job:
                kernels[job["n"]] = np.load(folder / job["save"])
    return peer, kernels


# ---------------------------------------------------------------- record and table

def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if value < 0.1 else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def speedup(peer: float | None, ours: float) -> str:
    return "–" if peer is None else f"{peer / ours:.0f}×" if peer >= 10 * ours else (
        f"{peer / ours:.1f}×")


def table(record: dict[str, Any]) -> str:
    """The summary, the selection of neural-tangents' implementation and matvec as Markdown."""
    lines = ["| n | dtype | gk s | neural-tangents compile+run s | neural-tangents run s "
             "| speedup incl. compile | speedup excl. compile | max rel. diff "
             "| gk share of bare matmul rate |",
             "|---:|:---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in record["results"]:
        peer = row.get("neural_tangents") or {}
        first, run = peer.get("first_s"), peer.get("run_median_s")
        difference = row.get("agreement", {}).get("max_over_max")
        lines.append(f"| {row['n']} | {row['dtype']} | {seconds(row['gk_s'])} "
                     f"| {seconds(first) if 'error' not in peer else peer['error']} "
                     f"| {seconds(run)} | {speedup(first, row['gk_s'])} "
                     f"| {speedup(run, row['gk_s'])} "
                     f"| {'–' if difference is None else f'{difference:.1e}'} "
                     f"| {row['gk_share_of_bare_rate']:.2f} |")
    lines += ["", "neural-tangents' implementations at n = select_n (run s: median of 2 calls "
              "after the first; peak GiB of the worker's VmHWM):", "",
              "| dtype | implementation | layout | n | compile+run s | run s | peak GiB "
              "| max rel. diff |",
              "|:---|:---|:---|---:|---:|---:|---:|---:|"]
    for dtype, peer in record["neural_tangents"].items():
        for job in peer.get("selection", []):
            run = statistics.median(job["run_s"]) if "error" not in job else None
            first = job.get("first_s")
            peak = "–" if job.get("peak_gb") is None else f"{job['peak_gb']:.2f}"
            difference = ("–" if "agreement" not in job
                          else f"{job['agreement']['max_over_max']:.1e}")
            lines.append(f"| {dtype} | {job['implementation_name']} | {job['layout']} "
                         f"| {job['n']} | {job['error'] if 'error' in job else seconds(first)} "
                         f"| {seconds(run)} | {peak} | {difference} |")
    lines += ["", "| gk matvec n | dtype | kernel shape | s |", "|---:|:---|:---|---:|"]
    for matvec in record["matvec"]:
        shape = "×".join(map(str, matvec["shape_of_kernel"]))
        lines.append(f"| {matvec['n']} | {matvec['dtype']} | {shape} | {seconds(matvec['s'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4704])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--p", type=int, default=97)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--select-n", type=int, default=32,
                        help="n at which neural-tangents' implementations are compared "
                             "(its Jacobian implementations hold n·p·#params numbers)")
    parser.add_argument("--quick", action="store_true",
                        help="n = 200, one repeat, selection at n = 8 in one layout; "
                             "writes no record unless --results is given")
    parser.add_argument("--nt-python", type=Path, default=NT_PYTHON,
                        help="interpreter of neural-tangents' virtual environment")
    parser.add_argument("--no-peer", action="store_true", help="time gk and the floor only")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder of the JSON and Markdown records (default bench/results)")
    parser.add_argument("--date", default=DATE, help=f"date in the record's name ({DATE})")
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))
    if any(os.environ.get(variable) != str(threads) for variable in THREAD_VARIABLES):
        env = dict(os.environ, **{variable: str(threads) for variable in THREAD_VARIABLES})
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)
    if args.quick:
        args.sizes, args.repeats, args.select_n = [200], 1, 8
    if args.select_n > max(args.sizes):
        parser.error(f"--select-n {args.select_n} exceeds the largest of --sizes")
    layouts = LAYOUTS[:1] if args.quick else LAYOUTS
    results = args.results or (None if args.quick else RESULTS)
    peer_ok = not args.no_peer and args.nt_python.exists()
    if not args.no_peer and not peer_ok:
        print(f"{args.nt_python} is missing: neural-tangents is skipped (create its virtual "
              "environment as the docstring says)", file=sys.stderr)

    started, load_before = time.perf_counter(), load()
    task = tasks.modular("add", args.p)
    index = pairs(args.p, max(args.sizes))
    a, b = task.operands(index)
    X = np.asarray(task.one_hot_inputs(index))
    rows, matvecs, peers, failures = [], [], {}, []
    for dtype in DTYPES:
        params = mlp.init(args.p, args.width, seed=0, dtype=dtype)
        gk_rows, matvec, gk_kernels = gk_side(params, a, b, args.sizes, args.repeats, dtype)
        matvecs.append(matvec)
        nt_kernels: dict[int, np.ndarray] = {}
        if peer_ok:
            small = (a[:args.select_n], b[:args.select_n])
            reference = np.asarray(ntk.gram(params, small, kind="trace")) / args.p
            peers[dtype], nt_kernels = peer_side(args.nt_python, params, X, reference, dtype,
                                                 args.sizes, args.select_n, layouts,
                                                 args.repeats, threads)
        for row in gk_rows:
            rows.append(row)
            n = row["n"]
            job = next((j for j in peers.get(dtype, {}).get("sizes", []) if j["n"] == n), None)
            if job is None:
                continue
            if "error" in job:
                row["neural_tangents"] = {"error": job["error"]}
                continue
            run = statistics.median(job["run_s"])
            row["neural_tangents"] = {"first_s": job["first_s"], "run_median_s": run,
                                      "run_s": job["run_s"], "peak_gb": job["peak_gb"]}
            row["speedup_including_compile"] = job["first_s"] / row["gk_s"]
            row["speedup_excluding_compile"] = run / row["gk_s"]
            if n in nt_kernels:
                row["agreement"] = relative(gk_kernels[n], nt_kernels[n])
                if not row["agreement"]["max_over_max"] < TOLERANCE[dtype]:
                    failures.append(f"{dtype} n={n}: max |Δ| / max |K| = "
                                    f"{row['agreement']['max_over_max']:.3g} "
                                    f"(tolerance {TOLERANCE[dtype]:g})")

    record = {"benchmark": "ntk_gram", "date": args.date, "cpu_threads": threads,
              "threads": {variable: os.environ.get(variable) for variable in THREAD_VARIABLES},
              "machine": machine(), "p": args.p, "width": args.width, "activation": "quadratic",
              "init": "gk.mlp.init(p, width, seed=0)", "kind": "trace",
              "inputs": "first n of np.random.default_rng(0).permutation(p*p), a = i // p, "
                        "b = i % p, one-hot e_a ⊕ e_b",
              "sizes": args.sizes, "repeats": args.repeats, "statistic": "median",
              "times": "seconds", "memory": "GiB (VmHWM)", "quick": args.quick,
              "gk_flops": "2 n² N (1 + 2/p): Z Zᵀ, and (D w) Dᵀ only on the 2/p of entries "
                          "where two pairs share an operand",
              "share_of_bare_rate": "(1 + 2/p) × seconds of a bare (n, N) @ (N, n) product / "
                                    "gk seconds",
              "agreement": "gk trace / p against neural-tangents (trace_axes=(-1,) is the mean)",
              "tolerance": TOLERANCE, "select_n": args.select_n, "layouts": list(layouts),
              "gk": gk.__version__, "numpy": np.__version__,
              "python": platform.python_version(),
              "neural_tangents": peers, "results": rows, "matvec": matvecs,
              "load_before": load_before, "load_after": load(),
              "wall_s": time.perf_counter() - started}
    if not peer_ok:
        record["neural_tangents_skipped"] = ("--no-peer" if args.no_peer
                                             else f"{args.nt_python} is missing")
    summary = table(record)
    print(summary)
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
        out = results / f"ntk_gram-cpu{threads}-{args.date}.json"
        out.write_text(json.dumps(record, indent=2) + "\n")
        header = (f"Empirical NTK Gram matrix, trace over outputs, p = {args.p}, "
                  f"N = {args.width}, quadratic activation; {threads} CPU threads, "
                  f"{record['machine']['node']}, {args.date}; median of {args.repeats}; "
                  "times in seconds. Speedup = neural-tangents s / gk s; max rel. diff = "
                  "max |gk/p − nt| / max |nt|; gk's flops are 2 n² N (1 + 2/p), its share of "
                  "the bare rate is (1 + 2/p) × (n, N) @ (N, n) s / gk s. neural-tangents' "
                  "layouts: "
                  "pre_transposed, f takes (W1ᵀ, W2ᵀ); as_written, f takes (W1, W2) and "
                  "transposes them inside (the same NTK).\n\n")
        out.with_suffix(".md").write_text(header + summary + "\n")
        print(f"wrote {out} and {out.with_suffix('.md').name}")
    if failures:
        raise SystemExit("gk and neural-tangents disagree:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
