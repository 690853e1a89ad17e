"""``python -m bench``: one entry point that times every benchmark and writes one record.

The quick run must pass without torch and without neural-tangents (CI installs neither):
neural-tangents is hidden here, so its peer is recorded as skipped, as in CI.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_BENCHMARKS = ["limits", "train_step", "ensemble", "sweep", "transformer", "rfm_iteration",
                  "ntk_gram", "scaling"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The record and Markdown of ``python -m bench --quick`` at one thread."""
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "GK_BACKEND": "numpy", "GK_NT_PYTHON": str(out / "no-such-python")}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--threads", "1",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    (path,) = out.glob("*.json")
    return json.loads(path.read_text()), path.with_suffix(".md").read_text(), path.name


@pytest.fixture
def bench(monkeypatch):
    """Import bench's modules from the repository's root (bench/ is not installed)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return lambda name: importlib.import_module(f"bench.{name}")


def comparisons(record):
    return [(name, row) for name, result in record["benchmarks"].items()
            if result.get("table") == "comparison" for row in result["records"]]


def test_quick_run_writes_one_record_of_every_benchmark_in_order(quick_run):
    record, markdown, name = quick_run
    assert list(record["benchmarks"]) == CPU_BENCHMARKS
    assert name == f"cpu1-{record['date']}-quick.json"
    assert record["threads"] == 1 and record["quick"]
    assert record["versions"]["numpy"] == np.__version__
    for benchmark, result in record["benchmarks"].items():
        assert "error" not in result, (benchmark, result.get("error"))
        assert not result.get("failures"), (benchmark, result["failures"])
        assert f"## {benchmark}" in markdown


def test_every_comparison_has_positive_times_ratios_and_a_hardware_fraction(quick_run):
    record, markdown, _ = quick_run
    rows = comparisons(record)
    assert {name for name, _ in rows} == {"train_step", "ensemble", "sweep", "transformer",
                                            "rfm_iteration", "ntk_gram"}
    for name, row in rows:
        assert row["gk_s"] > 0 and all(t > 0 for t in row["gk_runs"]), (name, row["case"])
        assert row["hardware_fraction"] > 0 and row["bare_s"] > 0, (name, row["case"])
        assert row["peers"], (name, row["case"])
        for peer in row["peers"].values():
            assert "ratio" in peer
            assert (peer["ratio"] > 0) if peer["s"] is not None else peer["skipped"]
        assert f"| {row['case']} |" in markdown


def test_missing_peer_is_recorded_as_skipped_with_its_reason(quick_run):
    record, markdown, _ = quick_run
    for row in record["benchmarks"]["ntk_gram"]["records"]:
        assert "no-such-python is missing" in row["peers"]["neural-tangents"]["skipped"]
    assert "Skipped (neural-tangents, neural-tangents incl. compile):" in markdown


def test_train_step_times_both_ways_of_gk_in_both_dtypes(quick_run):
    record, _, _ = quick_run
    cases = [row["case"] for row in record["benchmarks"]["train_step"]["records"]]
    assert cases == [f"{dtype}, 1 thread, {way}" for dtype in ("float64", "float32")
                     for way in ("gk.mlp.train", "bare step")]


def test_transformer_times_both_ways_of_gk_against_both_torch_models(quick_run):
    result = quick_run[0]["benchmarks"]["transformer"]
    cases = [row["case"] for row in result["records"]]
    assert cases == [f"{dtype}, 1 thread, {way}" for dtype in ("float64", "float32")
                     for way in ("gk.transformer.train", "bare step")]
    for row in result["records"]:
        assert list(row["peers"]) == ["torch, as seed 003's code",
                                      "torch, read-out position only"]
        for name, difference in row["agreement_weights"].items():
            assert difference <= result["tolerance_weights"][row["dtype"]], (row["case"], name)


def test_limits_and_scaling_hold_rates_and_fitted_exponents(quick_run):
    record, _, _ = quick_run
    limits = record["benchmarks"]["limits"]["records"]
    assert all(row["s"] > 0 and row["gflops"] > 0 for row in limits)
    curves = record["benchmarks"]["scaling"]["curves"]
    assert [curve["name"] for curve in curves] == ["network step", "RFM iteration", "NTK Gram"]
    for curve in curves:
        assert isinstance(curve["series"]["gk"]["exponent"], float)


def test_fit_exponent_of_a_cubic_is_three(bench):
    fit_exponent = bench("common").fit_exponent
    sizes = [100, 200, 400, 800, 1600]
    assert fit_exponent(sizes, [2e-9 * n**3 for n in sizes]) == pytest.approx(3, abs=1e-9)
    # a fixed cost below the threshold does not bend the fit
    with_overhead = [max(1e-3, 2e-9 * n**3) for n in [1, 2, 4, *sizes]]
    assert fit_exponent([1, 2, 4, *sizes], with_overhead, smallest=100) == pytest.approx(3)
    assert fit_exponent([10, 10], [1.0, 2.0]) is None


def test_plot_scaling_draws_the_curves_of_a_record(bench, tmp_path):
    plot = bench("plot_scaling").plot
    line = {"sizes": [10, 20, 40], "s": [1e-3, 8e-3, 6.4e-2], "fit_from": 10, "exponent": 3.0}
    curve = {"name": "network step", "size": "p", "unit": "s/step", "expected": 3,
             "series": {"gk": line, "torch one-hot": dict(line, exponent=None)}}
    path = tmp_path / "record.json"
    path.write_text(json.dumps({"machine": "cpu2", "date": "2026-01-01", "quick": True,
                                "benchmarks": {"scaling": {"curves": [curve, curve]}}}))
    out = plot(path, tmp_path / "figure" / "scaling.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no scaling benchmark"):
        plot({"benchmarks": {}}, tmp_path / "none.png")


def test_a_second_run_of_the_day_replaces_only_its_benchmarks(bench):
    merge = bench("report").merge
    old = {"benchmarks": {"limits": {"v": 1}, "ntk_gram": {"v": 1}}, "runs": [{"command": "a"}]}
    new = {"benchmarks": {"ntk_gram": {"v": 2}}, "runs": [{"command": "b"}]}
    merged = merge(old, new)
    assert merged["benchmarks"] == {"limits": {"v": 1}, "ntk_gram": {"v": 2}}
    assert [run["command"] for run in merged["runs"]] == ["a", "b"]
