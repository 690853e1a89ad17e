import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_python

from gk import backend


def test_unknown_backend_fails_at_the_first_computation_naming_the_variable(tmp_path):
    code = f"import gk; gk.mlp.train(p=11, width=8, steps=1, out={str(tmp_path / 'r.nc')!r})"
    result = run_python(code, env={"GK_BACKEND": "foo"})
    assert result.returncode != 0
    assert "GK_BACKEND='foo'" in result.stderr and "numpy, cupy" in result.stderr
    assert not list(tmp_path.iterdir())


def test_unknown_backend_is_refused_by_backend_name(monkeypatch):
    monkeypatch.setenv("GK_BACKEND", "torch")
    with pytest.raises(ValueError, match="GK_BACKEND='torch'"):
        backend.namespace()


def _have_cupy() -> bool:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("command", [["info"], ["train", "--p", "11", "--steps", "1"]])
def test_cupy_backend_without_cupy_is_one_clear_line_from_the_command(command, tmp_path):
    if _have_cupy():
        pytest.skip("CuPy is installed here")
    result = subprocess.run([sys.executable, "-m", "gk", *command], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "GK_BACKEND": "cupy"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"gk {command[0]}: error: GK_BACKEND=cupy but CuPy is not installed: pip install -e "
        "'.[cuda]', or unset GK_BACKEND to compute with NumPy"]
    assert not list(tmp_path.iterdir())


def test_cupy_backend_without_cupy_fails_loudly_in_python():
    if _have_cupy():
        pytest.skip("CuPy is installed here")
    result = run_python("import gk; gk.backend.namespace()", env={"GK_BACKEND": "cupy"})
    assert result.returncode != 0
    assert "GK_BACKEND=cupy" in result.stderr and "CuPy is not installed" in result.stderr
    assert "ModuleNotFoundError" not in result.stderr  # one error, not a chain


def test_seeded_generator_repeats_and_streams_differ():
    first = backend.rng((3, 0)).standard_normal(5)
    assert np.array_equal(first, backend.rng((3, 0)).standard_normal(5))
    assert not np.allclose(first, backend.rng((3, 1)).standard_normal(5))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_standard_normal_has_requested_dtype(dtype):
    values = backend.standard_normal(backend.rng(0), (4, 3), dtype)
    assert values.dtype == np.dtype(dtype) and values.shape == (4, 3)


@pytest.mark.parametrize("dtype", ["float16", "int64", "banana"])
def test_check_dtype_refuses_other_types(dtype):
    with pytest.raises(ValueError, match="dtype="):
        backend.check_dtype(dtype)


def test_cholesky_solve_matches_dense_solve():
    generator = np.random.default_rng(0)
    A = generator.standard_normal((30, 30))
    A = A @ A.T + 30 * np.eye(30)
    B = generator.standard_normal((30, 4))
    np.testing.assert_allclose(backend.cholesky_solve(A, B), np.linalg.solve(A, B), rtol=1e-10)


def test_cholesky_solve_refuses_an_indefinite_matrix():
    with pytest.raises(np.linalg.LinAlgError):
        backend.cholesky_solve(np.diag([1.0, -1.0]), np.ones(2))


def test_psd_power_half_squares_back():
    generator = np.random.default_rng(1)
    X = generator.standard_normal((12, 5))
    A = X @ X.T  # rank 5: exercises the clipping of round-off eigenvalues
    root = backend.psd_power(A, 0.5)
    np.testing.assert_allclose(root @ root, A, atol=1e-10)
    np.testing.assert_allclose(root, root.T, atol=1e-12)


def test_scatter_add_rows_matches_add_at_with_repeats():
    generator = np.random.default_rng(2)
    rows = generator.integers(0, 4, size=(2, 50))
    values = generator.standard_normal((2, 50, 3))
    target = np.zeros((2, 4, 3))
    backend.scatter_add_rows(target, rows, values)
    expected = np.zeros((2, 4, 3))
    for m in range(2):
        np.add.at(expected[m], rows[m], values[m])
    np.testing.assert_allclose(target, expected, rtol=1e-12)


def test_to_numpy_passes_numpy_through():
    x = np.arange(3.0)
    assert backend.to_numpy(x) is x
