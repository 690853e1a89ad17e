"""Grokking and memorisation times on hand-made accuracy curves."""

import numpy as np
import pytest
import xarray as xr

from gk import measures


def curves(train, test, steps=None):
    """A dataset of (step, model) accuracies from lists of per-model curves."""
    train, test = np.array(train, dtype=float).T, np.array(test, dtype=float).T
    steps = np.arange(0, 10 * len(train), 10) if steps is None else steps
    dims = ("step", "model")
    return xr.Dataset({"train_acc": (dims, train), "test_acc": (dims, test)},
                      coords={"step": steps})


def test_times_on_hand_made_curves():
    ds = curves(
        train=[[0.5, 1.0, 1.0, 1.0, 1.0],    # memorises at 10, groks at 40
               [0.5, 0.9, 1.0, 1.0, 1.0],    # memorises at 20, never groks
               [0.2, 0.4, 0.6, 0.8, 0.9],    # never memorises
               [1.0, 1.0, 1.0, 1.0, 1.0]],   # test is high before memorising: 0
        test=[[0.0, 0.1, 0.5, 0.98, 0.995],
              [0.0, 0.1, 0.2, 0.3, 0.4],
              [1.0, 1.0, 1.0, 1.0, 1.0],
              [0.99, 0.99, 0.99, 0.99, 1.0]])
    np.testing.assert_array_equal(measures.memorisation_time(ds), [10, 20, np.nan, 0])
    np.testing.assert_array_equal(measures.grokking_time(ds), [40, np.nan, np.nan, 0])
    np.testing.assert_array_equal(measures.grokking_time(ds, threshold=0.9), [30, np.nan,
                                                                               np.nan, 0])
    np.testing.assert_array_equal(measures.grokking_time(ds, threshold=0.5), [20, np.nan,
                                                                               np.nan, 0])


def test_test_accuracy_before_memorising_does_not_count():
    ds = curves(train=[[0.5, 0.5, 1.0, 1.0]], test=[[1.0, 0.0, 0.5, 1.0]])
    assert float(measures.grokking_time(ds)[0]) == 20 + 10


def test_times_are_vectorised_over_a_cube():
    rng = np.random.default_rng(0)
    train = (rng.random((30, 3, 4)) > 0.6).astype(float)
    test = rng.random((30, 3, 4))
    cube = xr.Dataset({"train_acc": (("step", "seed", "train_fraction"), train),
                       "test_acc": (("step", "seed", "train_fraction"), test)},
                      coords={"step": np.arange(30) * 5, "seed": [0, 1, 2],
                              "train_fraction": [0.3, 0.4, 0.5, 0.6]})
    times = measures.grokking_time(cube, threshold=0.9)
    assert times.dims == ("seed", "train_fraction")
    for s in range(3):
        for f in range(4):  # a loop over the curve, the brute-force reading of the definition
            memorised, expected = False, np.nan
            for t in range(30):
                memorised = memorised or train[t, s, f] >= 1
                if memorised and test[t, s, f] >= 0.9:
                    expected = 5 * t
                    break
            np.testing.assert_array_equal(times[s, f], expected)


def test_rfm_runs_use_iterations_and_bad_threshold_is_refused():
    ds = curves(train=[[0.5, 1.0]], test=[[0.0, 1.0]]).rename(step="iteration")
    assert float(measures.grokking_time(ds)[0]) == 10
    with pytest.raises(ValueError, match=r"threshold=1.5 is not allowed; .*\(0, 1\]"):
        measures.grokking_time(ds, threshold=1.5)
