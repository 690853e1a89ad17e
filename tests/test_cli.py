import subprocess
import sys

import numpy as np
import pytest

from gk import io
from gk.cli import main


def test_info_prints_version_backend_device_dtype(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("gk ", "backend numpy", "device  cpu", "float64"):
        assert word in out


def test_train_writes_file_and_figure_then_plot_reads_it(tmp_path, capsys):
    out, png = tmp_path / "run.nc", tmp_path / "run.png"
    status = main(["train", "--p", "11", "--width", "16", "--steps", "20", "--lr", "1",
                   "--seed", "0", "1", "--log-every", "5", "--out", str(out), "--plot",
                   str(png), "--no-progress"])
    assert status == 0 and out.exists() and png.stat().st_size > 0
    ds = io.open_run(out)
    assert ds.sizes["model"] == 2 and int(ds.step[-1]) == 20
    assert "model 1 (seed 1)" in capsys.readouterr().out
    assert main(["plot", str(out), "--panels", "loss", "norms"]) == 0
    assert (tmp_path / "run.png").exists()


def test_train_flags_cover_every_config_field():
    from dataclasses import fields

    from gk.cli import parser
    from gk.mlp.train import TrainConfig

    help_text = parser()._subparsers._group_actions[0].choices["train"].format_help()
    for field in fields(TrainConfig):
        if field.init:
            assert f"--{field.name.replace('_', '-')}" in help_text


@pytest.mark.parametrize("argv, message", [
    (["train", "--op", "pow"], "op='pow' is not an operation"),
    (["train", "--p", "12", "--op", "div"], "needs a prime p"),
    (["train", "--lr", "-1"], "lr=-1.0"),
    (["train", "--out", "/no/such/folder/run.nc"], "does not exist"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_existing_output_is_refused_by_the_command(tmp_path, capsys):
    out = tmp_path / "run.nc"
    out.write_text("keep")
    assert main(["train", "--steps", "1", "--out", str(out)]) == 2
    assert "overwrite" in capsys.readouterr().err and out.read_text() == "keep"


def test_python_dash_m_gk_runs():
    result = subprocess.run([sys.executable, "-m", "gk", "--help"], capture_output=True,
                            text=True)
    assert result.returncode == 0 and "train" in result.stdout


def test_rfm_command_writes_file_and_plot_draws_features(tmp_path, capsys):
    out = tmp_path / "rfm.nc"
    assert main(["rfm", "--op", "mul", "--p", "11", "--iterations", "3", "--no-centering",
                 "--out", str(out), "--no-progress"]) == 0
    ds = io.open_run(out)
    assert ds.sizes["iteration"] == 3 and io.config(ds)["centering"] is False
    assert main(["plot", str(out), "--features", "0", "2"]) == 0
    assert (tmp_path / "rfm.png").exists() and (tmp_path / "rfm_features.png").exists()
    assert main(["plot", str(out), "--features", "7"]) == 2
    assert "were not stored" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["rfm", "--kernel", "cubic"], "kernel='cubic'"),
    (["rfm", "--kernel", "gaussian", "--bandwidth", "-1"], "bandwidth=-1.0"),
    (["rfm", "--ridge", "-0.5"], "ridge=-0.5"),
    (["rfm", "--iterations", "0"], "iterations=0"),
])
def test_rfm_bad_arguments_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_analytic_command_prints_curve_and_writes_files(tmp_path, capsys):
    out, png = tmp_path / "curve.nc", tmp_path / "curve.png"
    assert main(["analytic", "--p", "13", "--widths", "4", "512", "--activations",
                 "quadratic", "relu", "--seeds", "0", "--out", str(out), "--plot",
                 str(png)]) == 0
    printed = capsys.readouterr().out
    assert "quadratic" in printed and "relu" in printed
    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert float(ds.accuracy.sel(width=512, activation="quadratic", seed=0)) >= 0.95
    assert png.stat().st_size > 0
    assert main(["analytic", "--op", "x2+xy+y2", "--p", "13"]) == 2
    assert "no closed form" in capsys.readouterr().err


def test_ntk_command_writes_the_gram_of_a_saved_run(tmp_path, capsys):
    run, out = tmp_path / "run.nc", tmp_path / "gram.nc"
    assert main(["train", "--p", "11", "--width", "16", "--lr", "1", "--steps", "20",
                 "--seed", "0", "1", "--out", str(run), "--no-progress"]) == 0
    assert main(["ntk", str(run), "--out", str(out), "--model", "1", "--limit", "10"]) == 0
    gram = io.open_run(out)
    assert gram.ntk.dims == ("example", "example2") and gram.ntk.shape == (10, 10)
    assert gram.attrs["model"] == 1 and gram.attrs["step"] == 20
    assert main(["ntk", str(run), "--out", str(out)]) == 2          # exists: refused
    assert main(["ntk", str(run), "--out", str(tmp_path / "x.nc"), "--model", "2"]) == 2
    assert "model=2 is not a model" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


def test_measures_and_key_frequencies_flags_reach_the_file_and_progress_plot(tmp_path):
    out = tmp_path / "run.nc"
    assert main(["train", "--p", "11", "--width", "16", "--lr", "1", "--steps", "10",
                 "--log-every", "5", "--measures", "nfm_correlation", "excluded_loss",
                 "--key-frequencies", "1,3", "--out", str(out), "--no-progress"]) == 0
    ds = io.open_run(out)
    assert io.config(ds)["key_frequencies"] == [1, 3]
    assert io.config(ds)["measures"] == ["nfm_correlation", "excluded_loss"]
    assert np.isfinite(ds.excluded_loss).all()
    assert main(["plot", str(out), "--progress"]) == 0
    assert (tmp_path / "run_progress.png").exists()
    rfm_out = tmp_path / "rfm.nc"
    assert main(["rfm", "--p", "11", "--iterations", "2", "--measures", "ipr",
                 "--key-frequencies", "2", "--out", str(rfm_out), "--no-progress"]) == 0
    assert io.config(io.open_run(rfm_out))["key_frequencies"] == 2


@pytest.mark.parametrize("argv, message", [
    (["train", "--measures", "ntk"], "invalid choice: 'ntk'"),
    (["rfm", "--measures", "ntk_distance"], "invalid choice: 'ntk_distance'"),
    (["train", "--key-frequencies", "a,b"], "neither a count nor a list"),
])
def test_bad_measure_flags_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
