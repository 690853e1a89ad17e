"""Each example's --quick mode runs, writes its files and shows the paper's result."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from gk import io

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args):
    result = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", *args],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_grokking_gd_quick_groks(tmp_path):
    printed = run_example("grokking_gd.py", "--out-dir", str(tmp_path))
    assert (tmp_path / "grokking_gd_quick.png").stat().st_size > 0
    ds = io.open_run(tmp_path / "grokking_gd_quick.nc")
    assert float(ds.test_acc[-1, 0]) >= 0.95
    assert "test accuracy ≥ 99% at step" in printed


def test_rfm_grokking_quick_emerges_for_every_op(tmp_path):
    printed = run_example("rfm_grokking.py", "--out-dir", str(tmp_path))
    assert (tmp_path / "rfm_grokking_quick.png").stat().st_size > 0
    for op in ("add", "sub", "mul", "div"):
        ds = io.open_run(tmp_path / f"rfm_grokking_quick_{op}.nc")
        test_acc = ds.test_acc.isel(model=0).values
        assert test_acc[-1] >= 0.95 and np.ptp(test_acc[:6]) == 0, op
    assert "acc ≥ 90% at" in printed


def test_random_circulant_quick_generalises_without_iterations(tmp_path):
    run_example("random_circulant.py", "--rfm-iterations", "0", "--out-dir", str(tmp_path))
    table = np.genfromtxt(tmp_path / "random_circulant_quick.csv", delimiter=",", names=True,
                          dtype=None, encoding="utf-8")
    assert (table["random_circulant"] >= 0.95).all()    # one solve, no feature learning
    assert (table["identity"] <= 0.1).all()             # the same machine with M = I
    assert (tmp_path / "random_circulant_quick.png").stat().st_size > 0


def test_analytic_width_quick_reaches_full_accuracy(tmp_path):
    run_example("analytic_width.py", "--out-dir", str(tmp_path))
    import xarray as xr

    (path,) = tmp_path.glob("*.nc")
    with xr.open_dataset(path) as ds:
        quadratic = ds.accuracy.sel(activation="quadratic").mean("seed")
        assert float(quadratic.isel(width=-1)) == 1.0
        assert float(quadratic.isel(width=0)) < float(quadratic.isel(width=-1))


def test_other_functions_quick_runs_and_reports_closed_forms(tmp_path):
    printed = run_example("other_functions.py", "--out-dir", str(tmp_path))
    assert "100%" in printed and list(tmp_path.glob("*.png"))


def test_trained_vs_analytic_quick_writes_both_figures(tmp_path):
    printed = run_example("trained_vs_analytic.py", "--out-dir", str(tmp_path))
    assert "analytic" in printed
    assert len(list(tmp_path.glob("*preactivations.png"))) == 1
    assert len(list(tmp_path.glob("*phases.png"))) == 1


def test_kernel_regime_quick_lazy_predictor_fails_where_the_network_groks(tmp_path):
    printed = run_example("kernel_regime.py", "--out-dir", str(tmp_path))
    for suffix in ("alpha.png", "linf.png", "linf0.nc", "linf0.03.nc"):
        assert (tmp_path / f"kernel_regime_quick_{suffix}").stat().st_size > 0
    rows = np.genfromtxt(tmp_path / "kernel_regime_quick_alpha.csv", delimiter=",", names=True)
    assert (rows["ntk_regression_test_acc"] == 0).all()
    assert rows["trained_network_test_acc"][rows["train_fraction"] == 0.9] >= 0.99
    ds = io.open_run(tmp_path / "kernel_regime_quick_linf0.03.nc")
    assert ds.ntk_distance.dropna("step").sizes["step"] > 10
    assert printed.count("test ≥ 99% at ") == 2 and "at None" not in printed


def test_hidden_progress_quick_shows_measures_moving_in_the_flat_phase(tmp_path):
    printed = run_example("hidden_progress.py", "--out-dir", str(tmp_path))
    for model in ("rfm", "network"):
        assert (tmp_path / f"hidden_progress_quick_{model}.png").stat().st_size > 0
    rfm = io.open_run(tmp_path / "hidden_progress_quick_rfm.nc").isel(model=0)
    flat = rfm.where(rfm.test_acc < 0.1, drop=True)
    assert len(flat.iteration) >= 4 and float(rfm.test_acc[-1]) >= 0.95
    deviation = flat.circulant_deviation.dropna("iteration").values
    assert deviation[-1] < 0.5 * deviation[0]                 # falls while test is flat
    assert float(flat.agop_alignment[-1]) > float(flat.agop_alignment[0]) + 0.05
    network = io.open_run(tmp_path / "hidden_progress_quick_network.nc").isel(model=0)
    assert float(network.test_acc[-1]) >= 0.95
    flat = network.where(network.test_acc < 0.1, drop=True)
    assert float(flat.restricted_loss[-1]) < 0.5 * float(flat.restricted_loss[0])
    assert "RFM: test accuracy < 10% until iteration" in printed


def test_agop_regularisation_quick_lowers_the_agop_trace(tmp_path):
    printed = run_example("agop_regularisation.py", "--out-dir", str(tmp_path))
    assert (tmp_path / "agop_regularisation_quick.png").stat().st_size > 0
    plain, penalised = (io.open_run(tmp_path / f"agop_regularisation_quick_{i}.nc")
                        for i in (0, 1))
    assert io.config(penalised)["agop_penalty"] == 0.01
    assert io.config(penalised)["weight_decay"] == 0.0
    assert float(penalised.agop_trace[-1, 0]) < 0.7 * float(plain.agop_trace[-1, 0])
    assert "AGOP penalty" in printed


def test_feature_ansatz_quick_correlates_for_every_op(tmp_path):
    printed = run_example("feature_ansatz.py", "--out-dir", str(tmp_path))
    for op in ("add", "sub", "mul", "div"):
        ds = io.open_run(tmp_path / f"feature_ansatz_quick_{op}.nc")
        assert float(ds.nfm_correlation[-1, 0]) >= 0.9, op
        assert float(ds.train_acc[-1, 0]) == 1.0, op
    assert "off-diagonal" in printed


def test_grokking_phases_quick_marks_the_phases(tmp_path):
    printed = run_example("grokking_phases.py", "--out-dir", str(tmp_path))
    assert (tmp_path / "grokking_phases_quick.png").stat().st_size > 0
    ds = io.open_run(tmp_path / "grokking_phases_quick.nc").isel(model=0)
    assert float(ds.test_acc[-1]) >= 0.9
    restricted, test = ds.restricted_loss.values, ds.test_loss.values
    peak = np.argmax(test)
    halved = ds.step.values[np.argmax(restricted <= restricted[0] / 2)]
    assert halved < ds.step.values[peak + np.argmax(test[peak:] <= test[peak] / 2)]
    assert "memorisation ends at step" in printed


def test_rfm_large_quick_runs_the_iterative_solver(tmp_path):
    printed = run_example("rfm_large.py", "--out-dir", str(tmp_path))
    ds = io.open_run(tmp_path / "rfm_large_quick.nc")
    assert io.config(ds)["solver"] == "cg" and (ds.solver_iterations > 0).all()
    assert float(ds.solver_residual.max()) <= io.config(ds)["cg_tolerance"]
    assert float(ds.test_acc[-1, 0]) >= 0.9
    assert "predicted peak memory of the solve, solver='cholesky'" in printed
    assert printed.count("\n") > 12 and "VmHWM" in printed


def test_phase_diagram_quick_finds_where_each_optimizer_groks(tmp_path):
    out = run_example("phase_diagram.py", "--out-dir", str(tmp_path))
    assert "gd: every seed groks within 1500 steps for α ≥ 0.9" in out
    assert (tmp_path / "phase_diagram_quick.png").stat().st_size > 0
    for optimizer in ("gd", "momentum", "adamw"):
        assert (tmp_path / "phase_diagram_quick" / optimizer / "sweep.json").exists()
    again = run_example("phase_diagram.py", "--out-dir", str(tmp_path))  # read back, not rerun
    assert again == out


def test_nanda_progress_quick_groks_and_finds_key_frequencies(tmp_path):
    out = run_example("nanda_progress.py", "--out-dir", str(tmp_path))
    assert "test accuracy ≥ 99% from step" in out
    assert "key frequencies from the logits: [6, 8]" in out
    for suffix in (".nc", ".png", "_circuit.png"):
        assert (tmp_path / f"nanda_progress_quick{suffix}").stat().st_size > 0
    ds = io.open_run(tmp_path / "nanda_progress_quick.nc")
    assert float(ds.test_acc[-1, 0]) >= 0.99
    assert float(ds.train_acc.sel(step=200)[0]) == 1.0


def test_attention_heads_quick_fits_more_of_the_training_set_with_more_heads(tmp_path):
    out = run_example("attention_heads.py", "--out-dir", str(tmp_path))
    assert (tmp_path / "attention_heads_quick.png").stat().st_size > 0
    lines = {line[:18].strip(): line[18:] for line in out.splitlines()
             if "layer" in line[:18] and ":" not in line}
    assert set(lines) == {"linear, 1 layer", "softmax, 1 layer", "linear, 2 layers",
                          "softmax, 2 layers"}
    for cells in lines.values():
        train = [float(cell.split("/")[0]) for cell in cells.split("  ") if "/" in cell]
        assert len(train) == 3 and train[-1] > train[0]


def test_streaming_parity_quick_merges_into_the_parity_automaton(tmp_path):
    out = run_example("streaming_parity.py", "--out-dir", str(tmp_path))
    for suffix in (".png", "_automata.png", "_phase.png"):
        assert (tmp_path / f"streaming_parity_quick{suffix}").stat().st_size > 0
    ds = io.open_run(tmp_path / "streaming_parity_quick.nc")
    last = ds.isel(step=-1)
    assert (last.n_states_minimised == 2).all() and (last.test_sequence_acc == 1).all()
    assert "drop epoch: median" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.startswith(("0.3 ", "1.0 "))}
    assert rows["1.0"][0] == "1.0"            # all data, small initial weights: merged


def test_grokfast_quick_filters_fit_the_training_set_sooner(tmp_path):
    run_example("grokfast.py", "--seeds", "0", "1", "--out-dir", str(tmp_path))
    assert (tmp_path / "grokfast_quick.png").stat().st_size > 0
    rows = np.genfromtxt(tmp_path / "grokfast_quick.csv", delimiter=",", names=True,
                         dtype=None, encoding="utf-8")
    fit = {name: np.median(rows["memorisation_step"][rows["filter"] == name])
           for name in ("none", "ema", "ma")}
    assert fit["ema"] < 0.8 * fit["none"] and fit["ma"] < 0.8 * fit["none"], fit
    ds = io.open_run(tmp_path / "grokfast_quick_mul_ema.nc")
    assert '"grad_filter": "ema"' in ds.attrs["config"]


def test_groups_quick_runs_both_models_on_group_tables(tmp_path):
    output = run_example("groups.py", "--out-dir", str(tmp_path))
    assert (tmp_path / "groups_quick.png").stat().st_size > 0
    rows = np.genfromtxt(tmp_path / "groups_quick.csv", delimiter=",", names=True,
                         dtype=None, encoding="utf-8")
    assert set(rows["op"]) == {"S3:xyx", "D7:xy"} and set(rows["model"]) == {"network", "rfm"}
    network = rows[(rows["op"] == "D7:xy") & (rows["model"] == "network")]
    assert network["test_acc"][network["train_fraction"] == 0.9][0] > 0.3   # chance: 1/14
    ds = io.open_run(tmp_path / "groups_quick_D7_xy_network.nc")
    assert ds.attrs["elements"] == "table" and "ipr" not in ds
    assert "test accuracy" in output
