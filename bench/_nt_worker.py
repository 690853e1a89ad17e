"""The neural-tangents side of bench/ntk_gram.py, run by neural-tangents' own interpreter.

neural-tangents needs jax 0.4.23 and numpy < 2, so it lives in a virtual environment of its
own, outside gk's dependencies; this file imports nothing from gk.

    python _nt_worker.py SPEC.json

SPEC.json holds ``dtype``, ``folder`` (with W1.npy (N, d), W2.npy (p, N) and X.npy (n, d),
float64, cast here to ``dtype``), ``out`` (a file name in ``folder``) and ``jobs``, each with
``implementation`` (1, 2 or 3 of ``nt.NtkImplementation``), ``layout``, ``n`` (the first n
rows of X), ``repeats`` and ``save`` (a file name for the kernel, or null).

The network is f(x) = (2/N) W2 (W1 x)², on rows x ↦ (2/N) (x W1ᵀ)² W2ᵀ, in two layouts
of the same parameters: ``as_written`` takes (W1, W2) and transposes inside f;
``pre_transposed`` takes (W1ᵀ, W2ᵀ), which neural-tangents' structured derivatives handle
far better (the NTK is the same). Each job jit-compiles
``nt.empirical_ntk_fn(f, trace_axes=(-1,), vmap_axes=0)`` afresh and times its first call
(trace, compile and run), then ``repeats`` calls (run only), each with ``block_until_ready``.
A job that fails (e.g. XLA out of memory) records its error.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _memory import peak_gb, reset_peak  # bench/ is the script's folder


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    dtype = spec["dtype"]
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxlib
    import neural_tangents as nt

    folder = Path(spec["folder"])
    W1, W2, X = (np.load(folder / f"{name}.npy").astype(dtype) for name in ("W1", "W2", "X"))
    c = 2 / W1.shape[0]

    def as_written(params, x):
        W1, W2 = params
        return c * (x @ W1.T) ** 2 @ W2.T

    def pre_transposed(params, x):
        W1T, W2T = params
        return c * (x @ W1T) ** 2 @ W2T

    layouts = {"as_written": (as_written, (W1, W2)),
               "pre_transposed": (pre_transposed, (W1.T.copy(), W2.T.copy()))}
    rows = []
    for job in spec["jobs"]:
        f, weights = layouts[job["layout"]]
        params = tuple(jnp.asarray(w) for w in weights)
        x = jnp.asarray(X[:job["n"]])
        row = dict(job, implementation_name=nt.NtkImplementation(job["implementation"]).name)
        reset_peak()
        try:
            kernel_fn = jax.jit(nt.empirical_ntk_fn(f, trace_axes=(-1,), vmap_axes=0,
                                                    implementation=job["implementation"]))
            start = time.perf_counter()
            K = kernel_fn(x, None, params).block_until_ready()
            row["first_s"] = time.perf_counter() - start
            row["run_s"] = []
            for _ in range(job["repeats"]):
                start = time.perf_counter()
                K = kernel_fn(x, None, params).block_until_ready()
                row["run_s"].append(time.perf_counter() - start)
            row["dtype_out"] = str(K.dtype)
            if job.get("save"):
                np.save(folder / job["save"], np.asarray(K))
            del K
        except Exception as error:                   # XLA's RESOURCE_EXHAUSTED among others
            row["error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
        row["peak_gb"] = peak_gb()
        rows.append(row)
        print(f"  neural-tangents {dtype} {row['implementation_name']} {job['layout']} "
              f"n={job['n']}: " + (row["error"] if "error" in row else
                                   f"first {row['first_s']:.3f} s, run {row['run_s']} s"),
              file=sys.stderr, flush=True)
    record = {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
              "neural_tangents": nt.__version__, "numpy": np.__version__,
              "python": platform.python_version(), "devices": [str(d) for d in jax.devices()],
              "jobs": rows}
    (folder / spec["out"]).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
