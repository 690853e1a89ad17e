"""Shared fixtures; tests marked ``gpu`` are skipped where CuPy or a device is missing."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest


def _have_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _have_gpu():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    """Tests run on NumPy unless they ask for CuPy themselves."""
    monkeypatch.setenv("GK_BACKEND", "numpy")


def run_python(code: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -c code`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kwargs)


def differing_variables(first, second) -> list[str]:
    """Names of ``first``'s data variables that are not bit-identical in ``second`` (NaN equal
    to NaN)."""
    return [name for name in first.data_vars
            if not np.array_equal(first[name].values, second[name].values, equal_nan=True)]


def sigterm_at_call(monkeypatch, loop_class, call: int):
    """Make ``loop_class.gradients`` send this process SIGTERM at its ``call``-th call (so a
    run stops at step ``call`` − 1); returns a function that puts the original back."""
    gradients, calls = loop_class.gradients, []

    def stopping(self):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signal.SIGTERM)
        return gradients(self)

    monkeypatch.setattr(loop_class, "gradients", stopping)
    return lambda: monkeypatch.setattr(loop_class, "gradients", gradients)
