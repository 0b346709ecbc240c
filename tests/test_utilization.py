import numpy as np
import pytest
import torch

from studylib import nets, training
from studylib.metrics import utilization as u
from studylib.runs.utilization import shuffle_labels
from studylib.studies import utilization as study


def paper_mlp(in_dim, width, num_classes):
    """The paper's 5-layer MLP, as the utilization runs build it."""
    return nets.mlp(in_dim, [width] * 4, num_classes)


def test_shuffle_labels_keeps_the_label_multiset_and_the_originals():
    y = np.repeat(np.arange(10), 50)
    noisy, picked = shuffle_labels(y, 0.4, seed=1)
    assert len(picked) == 200 and np.array_equal(np.sort(noisy), np.sort(y))
    assert np.array_equal(noisy[np.setdiff1d(np.arange(500), picked)], y[np.setdiff1d(np.arange(500), picked)])
    assert 0.3 < (noisy != y).mean() <= 0.4          # a drawn label may land back on its own example
    assert np.array_equal(shuffle_labels(y, 0.4, seed=1)[0], noisy)
    assert np.array_equal(shuffle_labels(y, 0.0, seed=1)[0], y)
    with pytest.raises(ValueError, match="fraction must be in"):
        shuffle_labels(y, 1.5, 0)


def test_the_papers_mlp_has_five_linear_layers():
    model = paper_mlp(784, 32, 10)
    assert u.linear_layers(model) == ["1", "3", "5", "7", "9"]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_utilization_is_the_distance_to_init():
    torch.manual_seed(0)
    model = paper_mlp(6, 4, 3)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[5].weight.add_(torch.full_like(model[5].weight, 0.5))   # layer 3: a rank-1 change, all 0.5
    util = u.layer_utilization(model, init).set_index("layer")
    assert util.loc[3, "utilization"] == pytest.approx(0.5 * 4)          # Frobenius of a 4x4 matrix of 0.5
    assert util.loc[3, "utilization_spectral"] == pytest.approx(0.5 * 4)  # rank 1: spectral = Frobenius
    assert util.drop(index=3).utilization.abs().max() == 0


def test_contribution_resets_exactly_one_layer():
    torch.manual_seed(0)
    model = paper_mlp(6, 4, 3)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2)
    reset = u.with_layers_reset(model, init, ["9"])
    assert torch.equal(reset[9].weight, init["9.weight"]) and torch.equal(reset[1].weight, model[1].weight)
    x = torch.randn(5, 6)

    def out_sum(m, data):
        with torch.no_grad():
            return float(m(data).sum())

    assert u.layer_contribution(model, init, "9", out_sum, x) == pytest.approx(out_sum(reset, x) - out_sum(model, x))


def test_training_stops_on_interpolation_and_is_reproducible():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = paper_mlp(8, 64, 3)
        runs.append(training.train_to_convergence(model, x, y, lr=0.05, max_epochs=3000, batch_size=16, seed=0, device="cpu"))
    assert runs[0] == runs[1]
    assert runs[0]["stop_reason"] == "interpolated" and runs[0]["train_losses"][-1] < 1e-4
    capped = training.train_to_convergence(paper_mlp(8, 64, 3), x, y, max_epochs=2, device="cpu")
    assert capped == {**capped, "epochs": 2, "stop_reason": "epoch cap"}


def test_grid_runs_are_cached_and_consistent(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))  # UCI digits need no installed asset
    settings = dict(n_train=200, n_test=100, depth=5, lr=0.05, momentum=0.9, batch_size=64, max_epochs=5,
                    patience=20, seed=0, device="cpu")
    runs = study.run_grid_runs("uci_digits", [8, 16], [0.0, 0.5], 1, settings)
    assert len(runs) == 4 and not runs.from_cache.any()
    assert (runs.generalization - (runs.train_loss - runs.test_loss).abs()).abs().max() < 1e-12
    assert runs[runs.noise == 0].resilience.isna().all() and runs[runs.noise > 0].resilience.notna().all()
    layers = study.per_layer(runs)
    assert len(layers) == 4 * 5 and set(layers.layer) == {1, 2, 3, 4, 5}
    assert {"reinit_last1_test_loss", "reinit_last2_test_acc"} <= set(runs.columns)
    assert study.run_grid_runs("uci_digits", [8, 16], [0.0, 0.5], 1, settings).from_cache.all()
