"""Run gk's benchmarks against their peers and write one record of the run.

    python -m bench                          # every CPU benchmark, all cores of the machine
    python -m bench --only train_step scaling --repeats 5
    python -m bench --quick --out /tmp/bench # tiny sizes, one repeat: seconds in all
    GK_BACKEND=cupy python -m bench --gpu    # the GPU benchmarks

The CPU benchmarks run in this order: ``limits`` (bare products and Cholesky),
``train_step`` (gk against PyTorch), ``ensemble`` (B models at once against B single ones),
``sweep`` (a sweep over seeds as ensembles against one run at a time),
``transformer`` (seed 003's transformer, gk's hand-written gradients against PyTorch's
autograd), ``rfm_iteration`` (gk against seed 000's algorithm), ``ntk_gram`` (gk against
neural-tangents) and ``scaling`` (time against size, fitted exponents); the GPU ones
``gpu_ensemble``, ``gpu_rfm`` and ``gpu_agreement`` (NumPy against CuPy). A peer that is not
installed (torch; neural-tangents in its own environment, /work/nt-venv or ``GK_NT_PYTHON``)
is recorded as skipped. The run writes ``<out>/<machine>-<date>.json`` (``cpu2`` for two
cores, ``cuda-<device>`` on a GPU; ``-quick`` added with ``--quick``) and its Markdown
tables beside it, and exits with status 1 if a benchmark failed or a check of gk against a
peer did not pass.

Run it from the repository's root. The threads of OpenBLAS, MKL, OpenMP and numba are fixed
when NumPy loads, so the process re-executes itself with ``OMP_NUM_THREADS`` and the others set
to ``--threads`` before it imports NumPy; torch gets ``torch.set_num_threads`` of the same.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench._env import all_threads, thread_env, threads_fixed

CPU_BENCHMARKS = ("limits", "train_step", "ensemble", "sweep", "transformer", "rfm_iteration",
                  "ntk_gram", "scaling")
GPU_BENCHMARKS = ("gpu_ensemble", "gpu_rfm", "gpu_agreement")
RUNNERS = {**{name: (f"bench.{name}", "run") for name in CPU_BENCHMARKS},
           **{name: ("bench.gpu", name.removeprefix("gpu_")) for name in GPU_BENCHMARKS}}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[1:]))
    parser.add_argument("--only", nargs="+", choices=list(RUNNERS), metavar="NAME",
                        help="run these benchmarks only: " + ", ".join(RUNNERS))
    parser.add_argument("--repeats", type=int, default=None,
                        help="timings of each side, median kept (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and one repeat: checks that everything runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder of the record (default bench/results)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and torch threads (default: all cores of the affinity "
                             "mask; train_step then also runs at one thread)")
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU benchmarks (GK_BACKEND=cupy; on NumPy: a dry run)")
    parser.add_argument("--no-peers", action="store_true",
                        help="time gk and the machine's floors only")
    parser.add_argument("--records", type=Path, help=argparse.SUPPRESS)  # a child's results
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if os.environ.get("GK_BACKEND", "numpy").strip().lower() == "cupy" and not args.gpu:
        parser.error("GK_BACKEND=cupy times the GPU benchmarks: add --gpu")
    return args


def run_benchmark(name: str, options: object) -> dict:
    """One benchmark's result; an exception is recorded as the result's error."""
    import importlib

    module, function = RUNNERS[name]
    started = time.perf_counter()
    print(f"== {name}", file=sys.stderr, flush=True)
    try:
        result = getattr(importlib.import_module(module), function)(options)
    except Exception as error:  # one broken benchmark must not lose the others' results
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"}
    result.update(threads=options.threads, repeats=options.repeats,
                  wall_s=time.perf_counter() - started)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    threads = args.threads or all_threads()
    if not threads_fixed(threads):
        os.execve(sys.executable, [sys.executable, "-m", "bench", *argv], thread_env(threads))

    import datetime
    import json

    from bench import common, report

    options = common.Options(quick=args.quick, repeats=args.repeats or (1 if args.quick else 3),
                             threads=threads, threads_given=args.threads is not None,
                             peers=not args.no_peers)
    names = args.only or (GPU_BENCHMARKS if args.gpu else CPU_BENCHMARKS)
    started = time.perf_counter()
    results = {}
    for name in names:
        results[name] = options.earlier[name] = run_benchmark(name, options)
    command = shlex.join(["python", "-m", "bench", *argv])
    record = {"machine": common.machine_name(threads), "date": datetime.date.today().isoformat(),
              "quick": args.quick, "threads": threads, "repeats": options.repeats,
              "command": command, "host": common.host(), "versions": common.versions(),
              "runs": [{"command": command, "benchmarks": list(names),
                        "wall_s": time.perf_counter() - started}],
              "benchmarks": results}
    if args.records is not None:
        args.records.write_text(json.dumps(record, indent=2) + "\n")
        return 0
    json_path, markdown_path = report.write(record, args.out or common.RESULTS)
    print(markdown_path.read_text())
    print(f"wrote {json_path} and {markdown_path.name}", file=sys.stderr)
    failed = [name for name, result in results.items()
              if "error" in result or result.get("failures")]
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
