"""Progress measures logged by the trainers (issue 6): each logged value equals the array
function of gk.measures applied to the saved weights, and bad requests are refused."""

import numpy as np
import pytest

import gk.mlp
import gk.rfm
from gk import fourier, measures, tasks

ALL_NETWORK = ["nfm_correlation", "nfm_circulant_deviation", "nfm_alignment",
               "agop_circulant_deviation", "agop_alignment", "agop_trace", "restricted_loss",
               "excluded_loss"]


@pytest.fixture(scope="module")
def network_run():
    return gk.mlp.train(p=11, width=24, steps=30, log_every=5, measure_every=10,
                        snapshot_every=10, seed=[0, 1], optimizer="adamw", lr=1e-2,
                        weight_decay=1.0, measures=ALL_NETWORK, key_frequencies=2)


def _weights(ds, m):
    train = ds.is_train.values[m]
    return train / train.sum()


def test_network_measures_are_nan_between_measured_steps(network_run):
    ds = network_run
    for name in ALL_NETWORK:
        measured = ds[name].dropna("step", how="all").step.values.tolist()
        assert measured == [0, 10, 20, 30], name


@pytest.mark.parametrize("step", [0, 20, 30])
def test_network_feature_measures_equal_direct_computation(network_run, step):
    ds, task = network_run, tasks.modular("add", 11)
    for m in range(2):
        params = gk.mlp.load_params(ds, step).model(m)
        nfm = params.W1.T @ params.W1
        agop = measures.network_agop(params, task.operands(), _weights(ds, m))
        row = ds.sel(step=step, model=m)
        assert float(row.nfm_correlation) == pytest.approx(
            measures.nfm_correlation(params, task.operands(), _weights(ds, m)), rel=1e-10)
        assert float(row.agop_trace) == pytest.approx(np.trace(agop), rel=1e-10)
        assert float(row.nfm_circulant_deviation) == pytest.approx(
            measures.circulant_deviation(nfm[11:, :11]), rel=1e-10)
        assert float(row.agop_circulant_deviation) == pytest.approx(
            measures.circulant_deviation(agop[11:, :11]), rel=1e-10)
        final = gk.mlp.load_params(ds, 30).model(m)
        final_nfm = final.W1.T @ final.W1
        assert float(row.nfm_alignment) == pytest.approx(
            measures.agop_alignment(nfm, final_nfm), rel=1e-10)


def test_network_agop_on_training_pairs_is_the_weighted_per_pair_sum(network_run):
    """network_agop with weights against a loop of per-pair Jacobians by finite differences."""
    ds, task = network_run, tasks.modular("add", 11)
    params = gk.mlp.load_params(ds, 20).model(1)
    weights = _weights(ds, 1)
    X = task.one_hot_inputs()

    def f(x):  # the network on a dense input row
        return params.output_scale * params.W2 @ (params.W1 @ x) ** 2

    expected = np.zeros((22, 22))
    h = 1e-6
    for i in np.flatnonzero(weights):
        J = np.stack([(f(X[i] + h * e) - f(X[i] - h * e)) / (2 * h) for e in np.eye(22)], 1)
        expected += weights[i] * J.T @ J
    agop = measures.network_agop(params, task.operands(), weights)
    np.testing.assert_allclose(agop, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


def test_network_fourier_ablations_equal_direct_computation(network_run):
    ds, task = network_run, tasks.modular("add", 11)
    for m in range(2):
        params = gk.mlp.load_params(ds, 30).model(m)
        logits, _ = gk.mlp.forward(params.as_batch(), *(x[None] for x in task.operands()))
        ks = fourier.key_frequencies(logits[0], 11, count=2)
        train = np.flatnonzero(ds.is_train.values[m])
        row = ds.sel(step=30, model=m)
        assert float(row.restricted_loss) == pytest.approx(
            measures.restricted_loss(logits[0], task.c, 11, ks, "mse"), rel=1e-10)
        assert float(row.excluded_loss) == pytest.approx(
            measures.excluded_loss(logits[0], task.c, 11, ks, "mse", train), rel=1e-10)


def test_fixed_key_frequencies_are_used_at_every_step():
    ds = gk.mlp.train(p=11, width=16, steps=10, lr=1.0, log_every=10, measures=["restricted_loss"],
                      key_frequencies=[1, 3])
    task = tasks.modular("add", 11)
    params = gk.mlp.load_params(ds, 10)
    logits, _ = gk.mlp.forward(params, *(x[None] for x in task.operands()))
    expected = measures.restricted_loss(logits[0], task.c, 11, [1, 3], "mse")
    assert float(ds.restricted_loss.sel(step=10)[0]) == pytest.approx(expected, rel=1e-10)
    assert gk.io.config(ds)["key_frequencies"] == [1, 3]


def test_rfm_ipr_and_ablations_equal_direct_computation():
    ds = gk.rfm.run(p=13, iterations=4, measures=["ipr", "restricted_loss", "excluded_loss"],
                    key_frequencies=3)
    M = ds.M.isel(snapshot=-1, model=0).values
    assert float(ds.ipr.isel(iteration=-1)[0]) == pytest.approx(float(fourier.ipr(M, 13)))
    task = tasks.modular("add", 13)
    train = np.flatnonzero(ds.is_train.values[0])
    X = task.one_hot_inputs()
    machine = gk.rfm.RFM(iterations=1).fit(X[train], task.one_hot_targets(train), M=M)
    logits = machine.predict(X)
    ks = fourier.key_frequencies(logits, 13, count=3)
    row = ds.isel(iteration=-1, model=0)
    assert float(row.restricted_loss) == pytest.approx(
        measures.restricted_loss(logits, task.c, 13, ks, "mse"), rel=1e-8)
    assert float(row.excluded_loss) == pytest.approx(
        measures.excluded_loss(logits, task.c, 13, ks, "mse", train), rel=1e-8)


def test_batched_alignment_uses_each_models_final_matrix():
    generator = np.random.default_rng(0)
    history = generator.standard_normal((3, 2, 4, 4))
    aligned = measures.agop_alignment(history, history[-1])
    for m in range(2):
        assert aligned[:, m] == pytest.approx(measures.agop_alignment(history[:, m],
                                                                      history[-1, m]))
    assert aligned[-1] == pytest.approx([1, 1])


def test_ansatz_correlation_of_a_diverged_model_is_nan_not_an_error():
    nfm = np.stack([np.eye(3), np.eye(3)])
    agop = np.stack([np.diag([1.0, 4.0, 9.0]), np.full((3, 3), np.nan)])
    correlation = measures.ansatz_correlation(nfm, agop)
    assert correlation[0] == pytest.approx(np.corrcoef(np.eye(3).ravel(),
                                                       np.diag([1, 2, 3.0]).ravel())[0, 1])
    assert np.isnan(correlation[1])


@pytest.mark.parametrize("run, options, match", [
    (gk.rfm.run, dict(p=11, measures=["ntk_distance"]),
     "RFM has no ntk_distance; available: circulant_deviation"),
    (gk.mlp.train, dict(p=11, measures=["circulant_deviation"]),
     "network has no circulant_deviation; available: ipr, nfm_correlation"),
    (gk.mlp.train, dict(p=11, measures=["excluded_loss"], op="div"), "all p² pairs"),
    (gk.mlp.train, dict(p=11, measures=["restricted_loss"], task="triples"), "all p² pairs"),
    (gk.rfm.run, dict(p=11, measures=["restricted_loss"], op="div"), "all p² pairs"),
    (gk.mlp.train, dict(p=11, key_frequencies=6), "more frequencies than exist; .* 1..5"),
    (gk.rfm.run, dict(p=11, key_frequencies=[1, 1]), "key_frequencies=\\(1, 1\\)"),
    (gk.mlp.train, dict(p=11, key_frequencies=[0, 2]), "distinct frequencies in 1..5"),
    (gk.mlp.train, dict(p=11, measure_every=7, log_every=5), "multiple of log_every"),
])
def test_bad_measure_requests_are_refused_before_any_file(tmp_path, run, options, match):
    out = tmp_path / "run.nc"
    with pytest.raises(ValueError, match=match):
        run(out=out, steps=5, **options) if run is gk.mlp.train else run(out=out, **options)
    assert not list(tmp_path.iterdir())


def test_progress_figure_scales_every_measure_and_marks_the_flat_phase(network_run, tmp_path):
    import gk.plot

    names = gk.plot.progress_measures(network_run)
    assert names[0] == "ipr" and set(ALL_NETWORK) <= set(names)
    assert "test_loss" not in names
    fig = gk.plot.progress(network_run, model=1, path=tmp_path / "progress.png")
    lines = {line.get_label().split(" [")[0]: line for line in fig.axes[0].get_lines()}
    scaled = lines["nfm_correlation"].get_ydata()
    assert scaled.min() == pytest.approx(0) and scaled.max() == pytest.approx(1)
    assert len(scaled) == 4   # the NaN steps are skipped
    assert (tmp_path / "progress.png").exists()
    ds = network_run.copy()
    ds["test_acc"][:] = 0.0
    assert gk.plot.flat_phase_end(ds) == 30
    ds["test_acc"][3:] = 0.5
    assert gk.plot.flat_phase_end(ds) == 15


def test_progress_figure_refuses_a_run_without_measures():
    import gk.plot

    ds = gk.mlp.train(p=11, width=8, lr=0.01, steps=5).drop_vars("ipr")
    with pytest.raises(ValueError, match="no progress measure"):
        gk.plot.progress(ds)
    with pytest.raises(ValueError, match="model=3 is out of range"):
        gk.plot.progress(ds, model=3)
