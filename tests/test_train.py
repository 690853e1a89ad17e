import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import gk
from gk import io, mlp, tasks
from gk.mlp.train import TrainConfig
from gk.training import Batches

SMALL = dict(p=11, width=16, steps=30, log_every=5, snapshot_every=10, lr=1.0)


def small(**options):
    """The small test configuration with ``options`` replacing its entries."""
    return {**SMALL, **options}


def first_step(ds, variable, threshold, model=0):
    reached = ds[variable].isel(model=model).values >= threshold
    return int(ds.step[np.argmax(reached)]) if reached.any() else None


def test_gd_groks_add_p31_train_first_then_test():
    ds = mlp.train(p=31, width=128, train_fraction=0.6, steps=2500, log_every=25)
    memorised = first_step(ds, "train_acc", 1.0)
    generalised = first_step(ds, "test_acc", 0.95)
    assert memorised is not None and generalised is not None
    assert memorised < generalised / 2  # a long plateau between the two: grokking
    assert float(ds.test_acc.sel(step=memorised).isel(model=0)) < 0.2
    assert ds.ipr.values[-1, 0] > 2 * ds.ipr.values[0, 0]  # weights became periodic


def test_batch_of_models_equals_models_trained_alone():
    # Model 0 diverges at step 10 (lr 2 on its split); it is stopped and model 1 is unharmed.
    with pytest.warns(RuntimeWarning, match="model 0 at step 10: non-finite"):
        together = mlp.train(**small(seed=[0, 1], train_fraction=[0.5, 0.7], lr=[2.0, 3.0]))
    assert together.diverged_at_step.values.tolist() == [10, -1]
    alone = mlp.train(**small(seed=1, train_fraction=0.7, lr=3.0))
    assert together.sizes["model"] == 2
    for name in ("train_loss", "test_acc", "grad_norm", "ipr"):
        np.testing.assert_allclose(together[name].isel(model=1), alone[name].isel(model=0),
                                   rtol=1e-10)
    np.testing.assert_allclose(together.W1.isel(model=1), alone.W1.isel(model=0), rtol=1e-10)
    assert together.lr.values.tolist() == [2.0, 3.0]


def test_ensemble_of_seeds_and_rates_is_bit_identical_to_single_runs():
    # Equal training sets: every array operation of a model is the one it does alone. (Mixed
    # train fractions pad the shorter sets, which changes the products' summation blocking:
    # round-off only, checked above.)
    together = mlp.train(**small(seed=[0, 1, 2], lr=[0.1, 0.2, 0.1], optimizer="momentum"))
    for m, (seed, lr) in enumerate([(0, 0.1), (1, 0.2), (2, 0.1)]):
        alone = mlp.train(**small(seed=seed, lr=lr, optimizer="momentum"))
        for name in ("train_loss", "test_loss", "test_acc", "grad_norm", "ipr", "W1", "W2"):
            x, y = together[name].isel(model=m).values, alone[name].isel(model=0).values
            assert np.array_equal(x, y), name


def test_same_seed_gives_bit_identical_runs():
    first = mlp.train(**small(optimizer="adamw", lr=1e-2, weight_decay=1.0, batch_size=16))
    second = mlp.train(**small(optimizer="adamw", lr=1e-2, weight_decay=1.0, batch_size=16))
    assert first.train_loss.equals(second.train_loss)
    assert np.array_equal(first.W1.values, second.W1.values)


def test_minibatches_cover_each_epoch_exactly_once():
    task = tasks.modular("add", 7)
    splits = [task.split(0.5, 0), task.split(0.3, 1)]
    batches = Batches(task, splits, batch_size=5, dtype="float64")
    for m, split in enumerate(splits):
        batches_per_epoch = -(-len(split.train) // 5)
        seen = []
        generator = Batches(task, splits, 5, "float64")
        for _ in range(batches_per_epoch):
            (a, b), _, weights = generator.next()
            real = weights[m] > 0
            seen += (a[m][real] * 7 + b[m][real]).tolist()
            assert np.isclose(weights[m].sum(), 1.0)
        pairs = task.pairs[split.train]
        assert sorted(seen) == sorted((pairs[:, 0] * 7 + pairs[:, 1]).tolist())
    assert batches.next()[0][0].shape == (2, 5)


@pytest.mark.parametrize("options", [
    dict(optimizer="momentum", lr=0.1),
    dict(optimizer="adamw", lr=3e-3, weight_decay=1.0),
    dict(loss="cross_entropy", lr=20.0),
    dict(linf=1e-3),
    dict(activation="relu"),
    dict(dtype="float32"),
])
def test_every_optimizer_and_loss_lowers_the_training_loss(options):
    ds = mlp.train(**small(steps=60, **options))
    assert ds.train_loss.values[-1, 0] < 0.9 * ds.train_loss.values[0, 0]
    assert ds.attrs["dtype"] == options.get("dtype", "float64")


def test_run_file_round_trip_and_load_params(tmp_path):
    path = tmp_path / "run.nc"
    ds = mlp.train(**SMALL, seed=[3, 4], out=path)
    assert path.exists() and not io.partial_path(path).exists()
    on_disk = io.open_run(path)
    for name in ("train_loss", "test_loss", "train_acc", "test_acc", "w1_norm", "w2_norm",
                 "grad_norm", "ipr", "W1", "W2", "is_train", "diverged_at_step"):
        np.testing.assert_array_equal(on_disk[name].values, ds[name].values)
        assert on_disk[name].attrs["long_name"]
    assert on_disk.seed.values.tolist() == [3, 4] and "seed" in on_disk.coords
    assert on_disk.snapshot.values.tolist() == [0, 10, 20, 30]
    for key in ("gk_version", "backend", "device", "dtype", "op", "p", "created",
                "command_line", "seeds"):
        assert key in on_disk.attrs, key
    assert on_disk.attrs["status"] == "complete"
    assert on_disk.attrs["last_synced_step"] == 30
    assert io.config(on_disk)["width"] == 16 and json.loads(on_disk.attrs["seeds"]) == [3, 4]
    params = mlp.load_params(path)
    task = tasks.modular("add", 11)
    accuracy = mlp.evaluate(params, task)["accuracy"]
    is_train = on_disk.is_train.values
    final_train = [(mlp.model.metrics(params.model(m).as_batch(), (task.a, task.b),
                                      task.c)[1][0][is_train[m]]).mean() for m in range(2)]
    np.testing.assert_allclose(final_train, on_disk.train_acc.values[-1])
    assert accuracy.shape == (2,)


def test_open_runs_concatenates_models(tmp_path):
    mlp.train(**SMALL, seed=0, out=tmp_path / "a.nc")
    mlp.train(**SMALL, seed=[1, 2], out=tmp_path / "b.nc")
    both = io.open_runs([tmp_path / "a.nc", tmp_path / "b.nc"])
    assert both.sizes["model"] == 3 and both.seed.values.tolist() == [0, 1, 2]
    assert isinstance(both, xr.Dataset) and both.sizes["step"] == 7


def test_existing_file_is_never_overwritten_unless_asked(tmp_path):
    path = tmp_path / "run.nc"
    path.write_text("precious")
    with pytest.raises(io.OutputExistsError, match="overwrite=True"):
        mlp.train(**SMALL, out=path)
    assert path.read_text() == "precious"
    mlp.train(**SMALL, out=path, overwrite=True)
    assert io.open_run(path).attrs["status"] == "complete"


def test_diverging_run_stops_and_is_marked(tmp_path):
    with pytest.warns(RuntimeWarning, match="model 0 at step .*: non-finite"):
        ds = mlp.train(**small(steps=500, lr=1e4), out=tmp_path / "d.nc")
    on_disk = io.open_run(tmp_path / "d.nc")
    assert json.loads(on_disk.attrs["faults"])[0]["steps"] == [int(ds.diverged_at_step[0])]
    assert ds.attrs["status"] == on_disk.attrs["status"] == "diverged"
    assert 0 < int(on_disk.diverged_at_step[0]) < 500
    assert int(on_disk.step[-1]) == int(on_disk.diverged_at_step[0])


@pytest.mark.parametrize("options, error, match", [
    (dict(op="pow"), ValueError, "op='pow'"),
    (dict(p=1), ValueError, "p=1"),
    (dict(op="div", p=12), ValueError, "prime p"),
    (dict(train_fraction=0.0), ValueError, "train_fraction=0.0"),
    (dict(train_fraction=1.2), ValueError, "train_fraction=1.2"),
    (dict(train_fraction=1.0), ValueError, "leaves no test pairs"),
    (dict(width=0), ValueError, "width=0"),
    (dict(steps=-1), ValueError, "steps=-1"),
    (dict(lr=0.0), ValueError, "lr=0.0"),
    (dict(lr=None, optimizer="adam"), ValueError, "optimizer=.adam."),
    (dict(lr=[1.0, -1.0], seed=[0, 1]), ValueError, "lr=-1.0"),
    (dict(optimizer="sgd"), ValueError, "optimizer='sgd'"),
    (dict(activation="swish"), ValueError, "activation='swish'"),
    (dict(loss="hinge"), ValueError, "loss='hinge'"),
    (dict(dtype="float16"), ValueError, "dtype='float16'"),
    (dict(seed=[0, 1], lr=[1.0, 2.0, 3.0]), ValueError, "one length"),
    (dict(batch_size=0), ValueError, "batch_size=0"),
    (dict(width=2.5), TypeError, "width must be an integer"),
    (dict(momentum=1.0), ValueError, "momentum=1.0"),
    (dict(stepz=10), TypeError, "unknown option"),
])
def test_bad_input_is_refused_before_any_file(tmp_path, options, error, match):
    path = tmp_path / "never.nc"
    with pytest.raises(error, match=match):
        mlp.train(**small(**options), out=path)
    assert list(tmp_path.iterdir()) == []


def test_out_in_missing_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        mlp.train(**SMALL, out=tmp_path / "nope" / "run.nc")


def test_config_object_is_accepted_and_overridden():
    config = TrainConfig(**SMALL)
    ds = mlp.train(config, steps=10)
    assert int(ds.step[-1]) == 10 and io.config(ds)["width"] == 16
    with pytest.raises(TypeError, match="TrainConfig"):
        mlp.train({"p": 11})


KILLED_RUN = """
import gk
gk.mlp.train(p=23, width=64, steps=100000, log_every=5, snapshot_every=500,
             out={path!r})
"""


def test_kill_9_leaves_a_valid_file_with_every_synced_step(tmp_path):
    path = tmp_path / "killed.nc"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN.format(path=str(path))],
                               env={**os.environ, "GK_BACKEND": "numpy"})
    partial = io.partial_path(path)
    deadline = time.monotonic() + 60
    synced = -1
    while time.monotonic() < deadline and synced < 200:
        time.sleep(0.5)
        if partial.exists():
            try:
                synced = int(io.open_run(partial).attrs["last_synced_step"])
            except (OSError, KeyError, ValueError):
                continue  # the file's first sync has not happened yet
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert synced >= 200, "the run never synced 200 steps"
    ds = io.open_run(path)  # falls back to path.partial
    last = int(ds.attrs["last_synced_step"])
    assert ds.attrs["status"] == "running" and last >= synced
    logged = ds.step.values
    assert logged.tolist()[: last // 5 + 1] == list(range(0, last + 1, 5))
    assert np.isfinite(ds.train_loss.sel(step=slice(0, last)).values).all()
    assert ds.W1.sizes["snapshot"] >= 1 and not path.exists()


def test_version_and_submodules_are_exposed():
    assert gk.__version__ and gk.mlp.train and gk.tasks.modular and gk.io.open_run


def test_triples_task_trains_seed_002_regression_network():
    ds = mlp.train(task="triples", p=5, width=10, lr=0.01, steps=6, log_every=3,
                   parametrisation="standard", train_fraction=0.4, seed=2)
    assert ds.sizes["pair"] == 125 and ds.W1.shape[-1] == 15 and ds.W2.shape[-2] == 1
    task, is_train = tasks.triples(5), ds.is_train.values[0]
    params = mlp.load_params(ds, step=0)
    f, _ = mlp.forward(params, *(x[None] for x in task.operands()))
    loss = 0.5 * (f[0, :, 0] - task.y) ** 2
    assert float(ds.train_loss.sel(step=0)[0]) == pytest.approx(loss[is_train].mean(), rel=1e-12)
    correct = np.abs(f[0, :, 0] - task.y) < 2.5
    assert float(ds.test_acc.sel(step=0)[0]) == pytest.approx(correct[~is_train].mean())


@pytest.mark.parametrize("options, match", [
    (dict(task="quads"), "task='quads' is not a task"),
    (dict(task="triples", op="mul"), "op='add'"),
    (dict(task="triples", loss="cross_entropy"), "loss='mse'"),
    (dict(parametrisation="ntk"), "parametrisation='ntk'"),
])
def test_bad_task_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        mlp.train(p=5, width=4, steps=1, **options)


def test_agop_penalty_adds_its_gradient_to_the_step():
    """One GD step with λ_A equals the step on loss + λ_A·tr(AGOP) built by hand."""
    options = dict(p=7, width=8, steps=1, lr=0.5, log_every=1, snapshot_every=1, seed=0)
    ds = mlp.train(**options, agop_penalty=0.3)
    params = mlp.load_params(ds, step=0)
    task = tasks.modular("add", 7)
    train = np.flatnonzero(ds.is_train.values[0])
    operands = tuple(x[train][None] for x in task.operands())
    weights = np.full((1, len(train)), 1 / len(train))
    _, grads = mlp.loss_and_grads(params, operands, task.c[train][None], weights)
    _, penalty = mlp.model.agop_trace_and_grads(params, operands, weights)
    after = mlp.load_params(ds, step=1)
    for key in ("W1", "W2"):
        expected = getattr(params, key) - 0.5 * (grads[key] + 0.3 * penalty[key])
        np.testing.assert_allclose(getattr(after, key), expected, rtol=1e-12, atol=1e-14)
