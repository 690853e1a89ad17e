"""Shared fixtures; tests marked ``gpu`` are skipped where CuPy or a device is missing."""

import os
import subprocess
import sys

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
