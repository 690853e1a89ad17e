"""Resume, clean stops, numerical faults, files read while written, full disks (issue 8).

The SIGKILL trials are in test_kill.py, bad input in test_bad_input.py, determinism in
test_determinism.py.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import differing_variables

from gk import checkpoint, io, mlp, rfm, tasks

NETWORK = dict(p=23, width=64, steps=300, log_every=10, snapshot_every=100,
               optimizer="adamw", lr=3e-3, weight_decay=1.0, batch_size=64, seed=[0, 1],
               measures=("nfm_alignment", "ntk_distance", "restricted_loss"), ntk_probe=32)
"""Every kind of state a resume restores: AdamW moments, minibatch generators, the NTK at
step 0, the feature matrices kept for the alignment."""

RFM = dict(p=13, iterations=6, seed=[0, 1], measures=("ipr",))


class Stop(Exception):
    """Stands for a kill in the tests that stop a run in the middle."""


def stop_at(monkeypatch, owner, name, when):
    """Make ``owner.name`` raise :class:`Stop` when ``when(*args)`` is true."""
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        if when(*args):
            raise Stop
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)


def assert_same_numbers(first, second):
    assert not differing_variables(first, second)
    time_dim = io.time_dim(first)
    assert first[time_dim].values.tolist() == second[time_dim].values.tolist()


def test_network_resumes_bit_identically(tmp_path, monkeypatch):
    reference = mlp.train(**NETWORK, out=tmp_path / "reference.nc")
    out = tmp_path / "run.nc"
    loop = sys.modules["gk.mlp.train"]._Loop
    with monkeypatch.context() as patch:
        stop_at(patch, loop, "update", lambda self, grads, step: step == 157)
        with pytest.raises(Stop):
            mlp.train(**NETWORK, out=out, checkpoint_seconds=0)
    saved = checkpoint.load(out)
    assert saved.time == 156 and io.open_run(out).attrs["status"] == "interrupted"
    resumed = mlp.train(**NETWORK, out=out, resume=True)
    assert_same_numbers(resumed, reference)
    assert_same_numbers(io.open_run(out), io.open_run(tmp_path / "reference.nc"))
    assert "resumed at step 156" in io.open_run(out).attrs["history"]
    assert not checkpoint.checkpoint_path(out).exists()  # a finished run keeps none
    again = mlp.train(**NETWORK, out=out, resume=True)  # finished: read, not trained
    assert_same_numbers(again, reference)


def test_rfm_resumes_bit_identically(tmp_path, monkeypatch):
    reference = rfm.run(**RFM, out=tmp_path / "reference.nc")
    out = tmp_path / "run.nc"
    module = sys.modules["gk.rfm"]
    with monkeypatch.context() as patch:
        stop_at(patch, module, "_iterate", lambda config, machines, bw, t, rec: t == 4)
        with pytest.raises(Stop):
            rfm.run(**RFM, out=out)
    assert checkpoint.load(out).time == 4
    resumed = rfm.run(**RFM, out=out, resume=True)
    assert_same_numbers(resumed, reference)
    assert_same_numbers(io.open_run(out), io.open_run(tmp_path / "reference.nc"))


def test_resume_lists_every_difference(tmp_path, monkeypatch):
    out = tmp_path / "run.nc"
    with monkeypatch.context() as patch:
        stop_at(patch, sys.modules["gk.mlp.train"]._Loop, "update",
                lambda self, grads, step: step == 50)
        with pytest.raises(Stop):
            mlp.train(**NETWORK, out=out, checkpoint_seconds=0)
    with pytest.raises(ValueError) as refused:
        mlp.train(**{**NETWORK, "width": 32, "lr": 1e-3}, out=out, resume=True)
    assert "lr: file has 0.003, asked 0.001" in str(refused.value)
    assert "width: file has 64, asked 32" in str(refused.value)
    assert checkpoint.load(out).time == 49  # the refusal touched nothing


def test_resume_without_checkpoint_starts_again_and_without_file_starts(tmp_path,
                                                                         monkeypatch):
    out = tmp_path / "run.nc"
    small = dict(p=11, width=16, steps=40, log_every=5, optimizer="adamw")
    with monkeypatch.context() as patch:
        stop_at(patch, sys.modules["gk.mlp.train"]._Loop, "update",
                lambda self, grads, step: step == 20)
        with pytest.raises(Stop):
            mlp.train(**small, out=out)  # killed before its first checkpoint (60 s)
    assert io.partial_path(out).exists() and checkpoint.load(out) is None
    first = mlp.train(**small, out=out, resume=True)
    fresh = mlp.train(**small, out=tmp_path / "fresh.nc", resume=True)
    assert_same_numbers(first, fresh)


CHILD = """
import sys, gk.cli
sys.exit(gk.cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_close_the_file_and_resume_exactly(tmp_path, signum):
    flags = ["train", "--p", "23", "--width", "64", "--steps", "3000", "--log-every", "10",
             "--optimizer", "adamw", "--lr", "0.003", "--batch-size", "64", "--no-progress"]
    out = tmp_path / "run.nc"
    child = subprocess.Popen([sys.executable, "-c", CHILD, *flags, "--out", str(out)],
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if int(io.open_run(out).attrs["last_synced_step"]) >= 200:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.1)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 128 + signum, stderr
    assert f"stopped by {signal.Signals(signum).name} at step" in stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    stopped = io.open_run(out)
    assert stopped.attrs["status"] == "interrupted" and not out.exists()
    stop = checkpoint.load(out).time
    assert int(stopped.attrs["last_synced_step"]) == stopped.step.values[-1] == stop - 1 - (
        (stop - 1) % 10)  # every logged step before the checkpoint, nothing lost
    resumed = subprocess.run([sys.executable, "-c", CHILD, *flags, "--out", str(out),
                              "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    reference = mlp.train(p=23, width=64, steps=3000, log_every=10, optimizer="adamw",
                          lr=0.003, batch_size=64)
    assert_same_numbers(io.open_run(out), reference)


WRITER = """
import gk
gk.mlp.train(p=23, width=64, steps=4000, log_every=2, snapshot_every=20, out={out!r},
             sync_seconds=0)
"""


def test_a_file_being_written_can_be_read_by_another_process(tmp_path):
    out = tmp_path / "live.nc"
    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(out=str(out))],
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    last, reads = -1, 0
    try:
        while writer.poll() is None and reads < 40:
            try:
                ds = io.open_run(out)
            except FileNotFoundError:
                time.sleep(0.05)
                continue
            synced = int(ds.attrs["last_synced_step"])
            if synced < 0:
                continue  # created, nothing logged yet
            assert synced >= last
            assert ds.step.values.tolist() == list(range(0, synced + 1, 2))
            assert np.isfinite(ds.train_loss.values).all()
            last, reads = synced, reads + 1
    finally:
        writer.kill()
        writer.wait()
    assert reads >= 10 and last > 0


def test_a_diverging_model_is_stopped_and_the_others_go_on():
    # lr 2 diverges on model 0's split; model 1 must not notice.
    options = dict(p=23, width=64, steps=200, log_every=10, snapshot_every=100, seed=[0, 1],
                   train_fraction=0.5)
    with pytest.warns(RuntimeWarning, match="model 0 at step 10"):
        together = mlp.train(**options, lr=[2000.0, 10.0])
    alone = mlp.train(**{**options, "seed": 1}, lr=10.0)
    assert together.diverged_at_step.values.tolist() == [10, -1]
    assert together.attrs["status"] == "complete"
    np.testing.assert_allclose(together.train_loss.isel(model=1), alone.train_loss.isel(model=0),
                               rtol=1e-12)
    held = together.W1.isel(model=0)  # not updated after it diverged
    assert np.array_equal(held.sel(snapshot=100), held.sel(snapshot=200), equal_nan=True)
    faults = json.loads(together.attrs["faults"])
    assert faults[0]["model"] == 0 and faults[0]["steps"] == [10]


def test_float32_overflow_is_flagged():
    with pytest.warns(RuntimeWarning, match="overflow.*float32.*float64 has a larger range"):
        ds = mlp.train(p=11, width=32, steps=100, lr=50.0, dtype="float32", log_every=1)
    step = int(ds.overflow_at_step[0])
    assert step > 0 and int(ds.diverged_at_step[0]) <= step
    assert ds.attrs["status"] == "diverged"


def test_rfm_records_the_jitter_and_stops_a_model_no_jitter_can_save(monkeypatch):
    module = sys.modules["gk.rfm"]
    solve = module.solve_ridge

    def failing(K, Y, ridge):  # model 0 needs a jitter, model 1 is beyond saving
        if K.shape[0] == failing.sizes[1]:
            raise np.linalg.LinAlgError("not positive definite")
        alpha, _ = solve(K, Y, ridge)
        return alpha, 1e-10

    failing.sizes = [len(s.train) for s in module.model_splits(
        tasks.modular("add", 13), [0.5, 0.6], [0, 1])]
    monkeypatch.setattr(module, "solve_ridge", failing)
    with pytest.warns(RuntimeWarning) as warned:
        ds = rfm.run(p=13, iterations=3, seed=[0, 1], train_fraction=[0.5, 0.6],
                     solver="cholesky")
    faults = json.loads(ds.attrs["faults"])
    assert [(f["model"], f["iterations"]) for f in faults] == [(0, [0, 1, 2]), (1, [0])]
    assert "jitter" in faults[0]["remedy"] and "stopped" in faults[1]["remedy"]
    assert ds.jitter.isel(model=0).values.tolist() == [1e-10] * 3
    assert np.isnan(ds.train_loss.isel(model=1)).all()
    assert ds.diverged_at_step.values.tolist() == [-1, 0]
    assert len(warned) == 2


FULL_DISK = """
import resource, signal, sys
import gk.cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a write past the limit fails with EFBIG
limit = {limit}
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
sys.exit(gk.cli.main(["train", "--p", "23", "--width", "128", "--steps", "2000",
                      "--snapshot-every", "10", "--no-progress", "--out", {out!r}]))
"""


def test_a_full_disk_stops_the_run_with_a_clear_message_and_a_valid_file(tmp_path):
    out = tmp_path / "run.nc"
    limit = io.RESERVE_BYTES + 2**20
    result = subprocess.run([sys.executable, "-c", FULL_DISK.format(limit=limit, out=str(out))],
                            capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 1, result.stderr
    assert "gk train: error: no room left to write" in result.stderr
    assert "Traceback" not in result.stderr
    ds = io.open_run(out)
    last = int(ds.attrs["last_synced_step"])
    assert ds.attrs["status"] == "interrupted" and last > 0
    assert ds.step.values.tolist() == list(range(0, last + 1, 10))
    assert int(re.search(r"up to (\d+)", result.stderr).group(1)) == last


def test_a_checkpoint_that_cannot_be_written_stops_the_run_and_keeps_the_file(tmp_path):
    out = tmp_path / "run.nc"
    (tmp_path / "run.nc.checkpoint.npz.tmp").mkdir()  # where the checkpoint must go
    with pytest.raises(OSError, match="could not write the checkpoint"):
        mlp.train(p=11, width=16, steps=100, log_every=5, optimizer="adamw", out=out,
                  checkpoint_seconds=0)
    ds = io.open_run(out)
    assert ds.attrs["status"] == "interrupted" and ds.step.values.tolist() == [0]


def test_a_finished_run_that_cannot_take_its_name_says_where_it_is(tmp_path):
    out = tmp_path / "run.nc"
    out.mkdir()  # a folder where the file should go: the final rename fails

    with pytest.raises(io.WriteError, match=r"the whole run is in .*run\.nc\.partial"):
        mlp.train(p=11, width=16, steps=20, optimizer="adamw", out=out, overwrite=True)
    assert io.open_run(io.partial_path(out)).attrs["status"] == "complete"
