"""Kill safety: training processes killed with SIGKILL at random moments (some of them in the
middle of a flush or of a checkpoint) leave a file that opens, holds every step up to its
``last_synced_step``, and resumes to the same result as a run that was never killed.

``python -m pytest tests/test_kill.py -s`` prints each trial; the ``slow`` test runs 100.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import differing_variables

from gk import checkpoint, io, mlp

RUN = dict(p=23, width=128, steps=800, log_every=5, snapshot_every=5, optimizer="adamw",
           lr=3e-3, weight_decay=1.0, batch_size=128, seed=[0, 1])
"""Minibatches and AdamW: a resume must restore the generators and the moments too."""

TIMING = dict(checkpoint_seconds=0.05, sync_seconds=0.0)
"""A sync at every logged step (so one sync interval is ``log_every`` steps) and many
checkpoints, so that kills land in both."""

CHILD = """
import sys
import gk.checkpoint, gk.cli, gk.io, gk.training

def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()

def instrument(owner, name, before, after):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        say(before)
        result = original(*args, **kwargs)
        say(after)
        return result
    setattr(owner, name, wrapped)

instrument(gk.io.TrajectoryWriter, "sync", "flush", "flushed")
instrument(gk.checkpoint, "save", "checkpoint", "checkpointed")
is_log_step = gk.training.is_log_step
def started(step, config):
    say(f"step {step}")
    return is_log_step(step, config)
gk.training.is_log_step = started
sys.exit(gk.cli.main(sys.argv[1:]))
"""


LATEST = {"flush": 100, "checkpoint": 10}
"""Kills come at a random one of the first flushes or checkpoints, well before the end."""


def command_line(out) -> list[str]:
    """``gk train`` flags for :data:`RUN` and :data:`TIMING`."""
    flags = []
    for name, value in {**RUN, **TIMING}.items():
        values = value if isinstance(value, list) else [value]
        flags += [f"--{name.replace('_', '-')}", *map(str, values)]
    return [*flags, "--out", str(out), "--no-progress"]


class Child:
    """A ``gk train`` process whose output lines are collected as they come."""

    def __init__(self, out):
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, "train", *command_line(out)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "GK_BACKEND": "numpy", "OMP_NUM_THREADS": "1"})
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> bool:
        """Wait until ``text`` has been printed ``count`` times; False if the run ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.lines.count(text) >= count:
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.0002)
        raise TimeoutError(f"no {text!r} within {timeout} s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.reader.join()

    def last_step(self) -> int:
        steps = [int(line.split()[1]) for line in self.lines if line.startswith("step ")]
        return steps[-1] if steps else -1

    def killed_inside(self) -> str | None:
        """``"flush"`` or ``"checkpoint"`` if the kill came between its start and end."""
        for line in reversed(self.lines):
            if line in ("flushed", "checkpointed"):
                return None
            if line in ("flush", "checkpoint"):
                return line
        return None


def kill_trials(n_trials: int, folder, seed: int = 0) -> dict:
    """Run ``n_trials`` kill-and-resume trials; return what they found."""
    rng = np.random.default_rng(seed)
    reference = mlp.train(**RUN, out=folder / "reference.nc")
    moments = ["random", "flush", "checkpoint"]
    results = []
    for trial in range(n_trials):
        out = folder / f"trial{trial}.nc"
        moment = moments[trial % 3]
        child = Child(out)
        assert child.wait_for("step 0"), "the run ended before its first step"
        if moment == "random":
            time.sleep(rng.uniform(0, 0.6))
            alive = True
        else:
            alive = child.wait_for(moment, count=int(rng.integers(1, LATEST[moment])))
        if not alive or child.process.poll() is not None:
            continue  # the run finished first: nothing was killed
        child.kill()
        killed_at = child.last_step()
        ds = io.open_run(out)  # the .partial: it must open
        last = int(ds.attrs["last_synced_step"])
        expected = list(range(0, last + 1, RUN["log_every"]))
        assert ds.step.values.tolist() == expected, f"trial {trial}: steps missing"
        assert np.isfinite(ds.train_loss.values).all()
        assert not differing_variables(ds, reference.sel(step=expected,
                                                  snapshot=ds.snapshot.values))
        saved = checkpoint.load(out)
        resumed = mlp.train(**RUN, out=out, resume=True)
        differences = differing_variables(resumed, reference)
        assert not differences, f"trial {trial}: resumed run differs in {differences}"
        assert not differing_variables(io.open_run(out), reference)
        results.append({"trial": trial, "moment": moment, "inside": child.killed_inside(),
                        "killed_at_step": killed_at, "last_synced_step": last,
                        "lost_steps": killed_at - last,
                        "checkpoint_step": None if saved is None else saved.time})
        print(json.dumps(results[-1]))
    return {"trials": results, "max_lost_steps": max(r["lost_steps"] for r in results),
            "inside_flush": sum(r["inside"] == "flush" for r in results),
            "inside_checkpoint": sum(r["inside"] == "checkpoint" for r in results)}


def check(summary: dict, n_trials: int) -> None:
    print(json.dumps({key: value for key, value in summary.items() if key != "trials"}))
    assert len(summary["trials"]) >= n_trials - 2, "too many runs ended before their kill"
    assert summary["max_lost_steps"] <= RUN["log_every"], "more than one sync interval lost"
    assert summary["inside_flush"] + summary["inside_checkpoint"] >= 1


def test_sigkill_at_random_moments_loses_at_most_one_sync_interval(tmp_path):
    check(kill_trials(21, tmp_path), 21)


@pytest.mark.slow
def test_sigkill_hundred_times(tmp_path):
    check(kill_trials(100, tmp_path, seed=1), 100)
