"""Grokfast's gradient filters (gk.optim.GradFilter): steps by hand, every optimizer, every
gradient-trained model, and exact resume (issue 12)."""

import sys

import numpy as np
import pytest
from conftest import differing_variables, sigterm_at_call

from gk import checkpoint, mlp, optim, rnn, transformer
from gk.mlp.train import Evaluator, Probes, _Loop
from gk.tasks import model_splits, modular

GRADIENTS = [0.5, -0.25, 1.0, 0.75, -1.5, 0.125]
"""A gradient sequence for one scalar-valued parameter array."""


def _filtered(grad_filter: optim.GradFilter) -> list[float]:
    """What the filter hands the optimizer at each step of :data:`GRADIENTS`, per entry
    (every entry of the (2, 3, 2) array gets the same gradient, times its model's scale)."""
    state = grad_filter.init_state({"W": np.zeros((2, 3, 2))})
    out = []
    for step, g in enumerate(GRADIENTS, start=1):
        grads = {"W": np.full((2, 3, 2), g) * np.array([1.0, -2.0])[:, None, None]}
        grad_filter.apply(grads, state, step)
        assert np.array_equal(grads["W"][1], -2 * grads["W"][0])   # models stay apart
        assert np.all(grads["W"][0] == grads["W"][0, 0, 0])
        out.append(float(grads["W"][0, 0, 0]))
    return out


def test_ema_filter_against_hand_computed_steps():
    alpha, lamb = 0.9, 2.0
    expected, average = [], None
    for g in GRADIENTS:                      # Grokfast's code: μ starts at the first gradient
        average = g if average is None else alpha * average + (1 - alpha) * g
        expected.append(g + lamb * average)
    assert expected[0] == pytest.approx(3 * 0.5)
    assert expected[1] == pytest.approx(-0.25 + 2 * (0.9 * 0.5 - 0.1 * 0.25))
    assert _filtered(optim.GradFilter("ema", alpha=alpha, lamb=lamb)) == pytest.approx(
        expected, rel=1e-15)


def test_ma_filter_against_hand_computed_steps():
    window, lamb = 3, 5.0
    expected = []
    for t, g in enumerate(GRADIENTS):        # passes unchanged until the window is full
        mean = np.mean(GRADIENTS[t - window + 1: t + 1]) if t + 1 >= window else 0.0
        expected.append(g + lamb * mean)
    assert expected[:2] == GRADIENTS[:2]
    assert expected[2] == pytest.approx(1.0 + 5 * (0.5 - 0.25 + 1.0) / 3)
    assert _filtered(optim.GradFilter("ma", lamb=lamb, window=window)) == pytest.approx(
        expected, rel=1e-15)


def test_zero_lambda_and_unit_window_are_identities_or_scalings():
    assert _filtered(optim.GradFilter("ema", lamb=0.0)) == GRADIENTS
    assert _filtered(optim.GradFilter("ma", lamb=0.0, window=4)) == GRADIENTS
    assert _filtered(optim.GradFilter("ma", lamb=1.0, window=1)) == [2 * g for g in GRADIENTS]


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adamw", "normalised_gd"])
@pytest.mark.parametrize("kind", ["ema", "ma"])
def test_a_filtered_loop_equals_the_optimizer_on_filtered_gradients(optimizer, kind):
    """Loop.update = the filter, then the optimizer (with weight decay) on its output."""
    config = mlp.TrainConfig(p=11, width=8, optimizer=optimizer, lr=0.05, weight_decay=0.1,
                             grad_filter=kind, filter_alpha=0.8, filter_lambda=1.5,
                             filter_window=2, seed=[0, 1])
    task = modular("add", 11)
    splits = model_splits(task, [0.5, 0.5], [0, 1])
    evaluator = Evaluator(task, splits, config.loss, config.dtype)
    loop = _Loop(config, task, splits, evaluator, Probes((), task, evaluator.operands,
                                                         evaluator.is_train, config))
    grad_filter = optim.GradFilter(kind, 0.8, 1.5, 2)
    params = {key: value.copy() for key, value in loop.arrays.items()}
    state = {**optim.init_state(optimizer, params), **grad_filter.init_state(params)}
    for step in range(1, 5):
        grads = loop.gradients()
        expected = {key: value.copy() for key, value in grads.items()}
        grad_filter.apply(expected, state, step)
        optim.update(optimizer, params, expected, state, loop.hyper, step, config.momentum,
                     config.betas, config.eps)
        loop.update(grads, step)
        for key in params:
            np.testing.assert_array_equal(loop.arrays[key], params[key])
    assert set(state) == set(loop.state)


def test_filter_changes_training_and_is_recorded():
    options = dict(p=11, width=16, steps=30, log_every=10, optimizer="adamw", lr=1e-2,
                   seed=[0, 1])
    plain = mlp.train(**options)
    filtered = mlp.train(**options, grad_filter="ema")
    assert not np.array_equal(plain.W1.values, filtered.W1.values)
    assert '"grad_filter": "ema"' in filtered.attrs["config"]
    assert '"filter_lambda": 2.0' in filtered.attrs["config"]


RESUMED = {
    "network": (mlp.train, "gk.mlp.train", dict(
        p=13, width=16, steps=60, log_every=10, optimizer="adamw", lr=1e-2,
        weight_decay=1.0, batch_size=32, seed=[0, 1])),
    "transformer": (transformer.train, "gk.transformer.train", dict(
        p=7, d_model=16, n_heads=2, d_mlp=32, steps=40, log_every=10, seed=[0, 1])),
    "rnn": (rnn.train, "gk.rnn.train", dict(
        max_len=4, test_lengths=(5, 8), test_count=20, hidden=8, steps=40, log_every=10,
        snapshot_every=20, batch_size=8, seed=[0, 1], probe_pairs=2)),
}


@pytest.mark.parametrize("model", list(RESUMED))
@pytest.mark.parametrize("kind", ["ema", "ma"])
def test_resume_with_a_filter_is_bit_identical(tmp_path, monkeypatch, model, kind):
    train, module, options = RESUMED[model]
    options = {**options, "grad_filter": kind, "filter_window": 7}
    reference = train(**options)
    restore = sigterm_at_call(monkeypatch, sys.modules[module]._Loop, 24)  # stops at step 23
    out = tmp_path / "run.nc"
    with pytest.raises(checkpoint.RunInterrupted):
        train(**options, out=out, checkpoint_seconds=0)
    restore()
    saved = checkpoint.load(out)
    assert any(key.endswith("." + ("ema" if kind == "ema" else "window"))
               for key in saved.arrays)
    resumed = train(**options, out=out, resume=True)
    assert not differing_variables(resumed, reference)
