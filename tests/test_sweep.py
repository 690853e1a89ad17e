"""Sweeps: grid expansion and grouping, resume, the cube, the engines (process pool, dask),
and the ``gk sweep`` command."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import xarray as xr

import gk.analytic
import gk.cli
import gk.engines
import gk.measures
import gk.mlp
import gk.rfm
import gk.sweep

SMALL = {"p": 11, "width": 16, "steps": 30, "log_every": 10, "lr": 0.05}
"""Tiny runs; one rate that both optimizers survive (GD's default 0.2·N diverges at p = 11)."""
GRID = {"optimizer": ["gd", "adamw"], "train_fraction": [0.4, 0.7], "seed": [0, 1, 2]}


def test_grid_expands_to_every_combination_last_name_fastest():
    points = gk.sweep.expand({"a": [1, 2], "b": ["x", "y", "z"]})
    assert points == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                      {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]
    configs = [{"seed": 0}, {"seed": 1, "lr": 0.1}]
    assert gk.sweep.expand(configs) == configs


def test_points_that_share_an_array_program_form_one_group():
    plan = gk.sweep.plan("train", GRID, {"p": 11, "width": 16})
    assert len(plan.points) == 12
    assert [g.arguments["optimizer"] for g in plan.groups] == ["gd", "adamw"]
    gd = plan.groups[0]
    assert gd.arguments["seed"] == [0, 1, 2, 0, 1, 2]
    assert gd.arguments["train_fraction"] == [0.4, 0.4, 0.4, 0.7, 0.7, 0.7]
    assert gd.arguments["lr"] == [0.2 * 16] * 6              # the default rate, resolved
    assert plan.groups[1].arguments["lr"] == [1e-3] * 6
    assert plan.dims == GRID
    # every point is in exactly one group, once
    listed = [tuple(point.values()) for group in plan.groups for point in group.points]
    assert sorted(listed) == sorted(tuple(point.values()) for point in plan.points)


def test_batch_and_max_models_split_groups():
    by_fraction = gk.sweep.plan("train", GRID, SMALL, batch=("seed",))
    assert len(by_fraction.groups) == 4
    assert [g.arguments["train_fraction"] for g in by_fraction.groups] == [0.4, 0.7] * 2
    capped = gk.sweep.plan("train", GRID, SMALL, max_models=4)
    assert [len(g.points) for g in capped.groups] == [4, 2, 4, 2]
    widths = gk.sweep.plan("train", {"width": [8, 16], "seed": [0, 1]}, {"p": 11})
    assert [g.arguments["width"] for g in widths.groups] == [8, 16]   # width is not batched


def test_analytic_points_form_one_width_curve_per_group():
    plan = gk.sweep.plan("analytic", {"p": [11, 13], "width": [8, 32], "seed": [0, 1]})
    assert len(plan.groups) == 2
    assert plan.groups[0].arguments == {"p": 11, "widths": [8, 32],
                                        "activations": ["quadratic"], "seeds": [0, 1]}


def test_sweep_cube_has_the_swept_dims_and_each_groups_numbers(tmp_path):
    cube = gk.sweep.run("train", GRID, tmp_path / "sweep", progress=False, **SMALL)
    assert dict(cube.sizes) == {"step": 4, "optimizer": 2, "train_fraction": 2, "seed": 3}
    assert cube.test_acc.dims == ("step", "optimizer", "train_fraction", "seed")
    assert list(cube.optimizer.values) == ["gd", "adamw"]
    assert list(cube.train_fraction.values) == [0.4, 0.7]
    assert list(cube.seed.values) == [0, 1, 2]
    assert cube.lr.sel(optimizer="adamw").values.tolist() == [[0.05] * 3] * 2
    assert set(np.unique(cube.group.values)) == {"group-000.nc", "group-001.nc"}
    # the same ensemble trained directly gives the same numbers, bit for bit
    direct = gk.mlp.train(optimizer="adamw", seed=[0, 1, 2, 0, 1, 2],
                          train_fraction=[0.4, 0.4, 0.4, 0.7, 0.7, 0.7], **SMALL)
    expected = direct.test_acc.values.reshape(4, 2, 3)
    np.testing.assert_array_equal(cube.test_acc.sel(optimizer="adamw").values, expected)
    # the files hold the trajectories with their own configs
    manifest = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [g["file"] for g in manifest["groups"]] == ["group-000.nc", "group-001.nc"]
    assert gk.io.config(gk.io.open_run(tmp_path / "sweep" / "group-001.nc"))["optimizer"] == \
        "adamw"


def test_rfm_and_analytic_cubes(tmp_path):
    rfm = gk.sweep.run("rfm", {"p": [7, 11], "seed": [0, 1]}, tmp_path / "rfm",
                       iterations=2, progress=False)
    assert rfm.test_acc.dims == ("iteration", "p", "seed")
    direct = gk.rfm.run(p=11, seed=[0, 1], iterations=2)
    np.testing.assert_array_equal(rfm.test_acc.sel(p=11).values, direct.test_acc.values)
    curve = gk.sweep.run("analytic", {"p": [11, 13], "width": [8, 64], "seed": [0, 1]},
                         tmp_path / "analytic", progress=False)
    assert curve.accuracy.dims == ("p", "width", "seed")
    expected = gk.analytic.width_curve("add", 13, [8, 64], ["quadratic"], [0, 1])
    np.testing.assert_array_equal(curve.accuracy.sel(p=13).values,
                                  expected.accuracy.sel(activation="quadratic").values)


def test_rerun_skips_finished_groups_and_runs_the_missing_one(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    first = gk.sweep.run("train", GRID, out, progress=False, **SMALL)
    stamps = {path.name: path.stat().st_mtime_ns for path in out.glob("group-*.nc")}
    ran = []
    monkeypatch.setattr(gk.engines, "run_group", _recording(ran, gk.engines.run_group))
    again = gk.sweep.run("train", GRID, out, progress=False, **SMALL)
    assert ran == []
    assert stamps == {path.name: path.stat().st_mtime_ns for path in out.glob("group-*.nc")}
    xr.testing.assert_identical(first, again)
    (out / "group-001.nc").unlink()
    with pytest.warns(UserWarning, match="1 of 2 groups"):
        partial = gk.sweep.open(out)
    assert np.isnan(partial.test_acc.sel(optimizer="adamw")).all()
    assert np.isfinite(partial.test_acc.sel(optimizer="gd")).all()
    third = gk.sweep.run("train", GRID, out, progress=False, **SMALL)
    assert ran == ["group-001.nc"]
    xr.testing.assert_identical(first.test_acc, third.test_acc)


def _recording(log: list, function):
    def wrapper(target_name, arguments, path):
        log.append(os.path.basename(path))
        return function(target_name, arguments, path)
    return wrapper


def test_another_sweep_in_the_folder_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "sweep"
    gk.sweep.run("train", {"seed": [0, 1]}, out, progress=False, **SMALL)
    with pytest.raises(ValueError, match="holds another sweep.*dims"):
        gk.sweep.run("train", {"seed": [0, 1, 2]}, out, progress=False, **SMALL)
    cube = gk.sweep.run("train", {"seed": [0, 1, 2]}, out, overwrite=True, progress=False,
                        **SMALL)
    assert list(cube.seed.values) == [0, 1, 2]


def test_a_failing_group_is_reported_and_the_others_kept(tmp_path, monkeypatch):
    def fail_on_adamw(target_name, arguments, path):
        if arguments["optimizer"] == "adamw":
            raise OSError("disk gone")
        return original(target_name, arguments, path)

    original = gk.engines.run_group
    monkeypatch.setattr(gk.engines, "run_group", fail_on_adamw)
    with pytest.raises(gk.sweep.SweepError, match="(?s)1 of 2 groups failed.*group-001.nc.*disk"):
        gk.sweep.run("train", GRID, tmp_path / "sweep", progress=False, **SMALL)
    assert (tmp_path / "sweep" / "group-000.nc").exists()


def test_process_pool_gives_the_same_cube(tmp_path):
    local = gk.sweep.run("train", GRID, tmp_path / "local", progress=False, **SMALL)
    pool = gk.sweep.run("train", GRID, tmp_path / "pool", workers=2, progress=False, **SMALL)
    xr.testing.assert_identical(local.drop_vars("group"), pool.drop_vars("group"))


def test_dask_local_cluster_gives_the_same_cube(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = gk.sweep.run("train", GRID, tmp_path / "local", progress=False, **SMALL)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = gk.sweep.run("train", GRID, tmp_path / "dask", scheduler=client,
                              progress=False, **SMALL)
        by_address = gk.sweep.run("train", {"seed": [0, 1]}, tmp_path / "address",
                                  scheduler=cluster.scheduler_address, progress=False, **SMALL)
    xr.testing.assert_identical(local.drop_vars("group"), remote.drop_vars("group"))
    assert by_address.sizes["seed"] == 2


def test_unreachable_scheduler_fails_within_the_timeout_before_any_file(tmp_path):
    pytest.importorskip("distributed")
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"scheduler='tcp://127.0.0.1:9'.*within 1 s"):
        gk.sweep.run("train", {"seed": [0]}, tmp_path / "sweep",
                     scheduler="tcp://127.0.0.1:9", timeout=1, progress=False, **SMALL)
    assert time.monotonic() - started < 30
    assert not (tmp_path / "sweep").exists()


def test_grokking_time_over_a_cube(tmp_path):
    cube = gk.sweep.run("train", {"seed": [0, 1]}, tmp_path / "sweep", progress=False,
                        **{**SMALL, "optimizer": "adamw", "steps": 60})
    times = gk.measures.grokking_time(cube, threshold=0.05)
    assert times.dims == ("seed",)
    for seed in (0, 1):
        run = cube.sel(seed=seed)
        memorised = run.step.values[np.argmax(run.train_acc.values >= 1)] if (
            run.train_acc >= 1).any() else np.inf
        hits = [s for s, acc in zip(run.step.values, run.test_acc.values, strict=True)
                if acc >= 0.05 and s >= memorised]
        expected = hits[0] if hits else np.nan
        np.testing.assert_equal(float(times.sel(seed=seed)), expected)


def test_command_runs_a_grid_from_flags_and_from_toml(tmp_path, capsys):
    out = tmp_path / "flags"
    status = gk.cli.main(["sweep", "train", "--out", str(out), "--grid", "seed=0..2",
                          "--grid", "optimizer=gd,adamw", "--set", "p=11", "--set", "width=16",
                          "--set", "steps=20", "--set", "lr=0.05", "--no-progress", "--plot",
                          str(tmp_path / "sweep.png")])
    assert status == 0
    assert "grokking_time" in capsys.readouterr().out
    assert (tmp_path / "sweep.png").stat().st_size > 0
    toml = tmp_path / "sweep.toml"
    toml.write_text(f'target = "train"\nout = "{tmp_path / "toml"}"\nmax_models = 2\n'
                    '[fixed]\np = 11\nwidth = 16\nsteps = 20\nlr = 0.05\n'
                    '[grid]\nseed = [0, 1, 2]\noptimizer = ["gd", "adamw"]\n')
    assert gk.cli.main(["sweep", "--config", str(toml), "--no-progress"]) == 0
    from_flags, from_toml = gk.sweep.open(out), gk.sweep.open(tmp_path / "toml")
    assert len(json.loads((tmp_path / "toml" / "sweep.json").read_text())["groups"]) == 4
    xr.testing.assert_identical(from_flags.test_acc.drop_vars("group"),
                                from_toml.test_acc.drop_vars("group"))
    assert gk.cli.main(["plot", str(out), "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").stat().st_size > 0


def test_command_values():
    assert gk.cli._values("0..3") == [0, 1, 2, 3]
    assert gk.cli._values("0.3,0.5") == [0.3, 0.5]
    assert gk.cli._values("[1, 2]") == [1, 2]
    assert gk.cli._values("gd,adamw") == ["gd", "adamw"]
    assert gk.cli._value("none") is None
    assert gk.cli._value("true") is True
