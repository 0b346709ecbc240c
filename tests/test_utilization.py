import numpy as np
import pandas as pd
import pytest
import torch

from studylib import nets
from studylib.metrics import utilization as u
from studylib.data.domains import shuffle_labels
from studylib.training import train_sgd
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

    def out_sum(m):
        with torch.no_grad():
            return float(m(x).sum())

    contributions = u.layer_contributions(model, init, out_sum)
    assert len(contributions) == 5 and contributions[-1] == pytest.approx(out_sum(reset) - out_sum(model))
    assert contributions == u.layer_contributions(model, init, out_sum, value=out_sum(model))


def test_training_stops_on_interpolation_and_is_reproducible():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = paper_mlp(8, 64, 3)
        runs.append(train_sgd(model, x, y, 0.05, 0.9, 16, 3000, "plateau", seed=0, device="cpu"))
    assert runs[0] == runs[1]
    assert runs[0]["stop_reason"] == "interpolated" and runs[0]["train_losses"][-1] < 1e-4
    capped = train_sgd(paper_mlp(8, 64, 3), x, y, 0.05, 0.9, 128, 2, "plateau", device="cpu")
    assert capped == {**capped, "epochs": 2, "stop_reason": "epoch cap"}


def test_fixed_training_runs_every_epoch_past_interpolation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    torch.manual_seed(0)
    plateau = train_sgd(paper_mlp(8, 64, 3), x, y, 0.05, 0.9, 16, 3000, "plateau", seed=0, device="cpu")
    torch.manual_seed(0)
    fixed = train_sgd(paper_mlp(8, 64, 3), x, y, 0.05, 0.9, 16, plateau["epochs"] + 50, "fixed", seed=0, device="cpu")
    assert fixed["epochs"] == plateau["epochs"] + 50 and fixed["stop_reason"] == "fixed epochs"
    assert fixed["train_losses"][: plateau["epochs"]] == plateau["train_losses"]  # the same path, then onwards
    torch.manual_seed(0)
    never = train_sgd(paper_mlp(8, 64, 3), x, y, 0.05, 0.9, 16, plateau["epochs"] + 5, "plateau",
                      patience=10_000, interpolation_loss=None, seed=0, device="cpu")
    assert never["epochs"] == plateau["epochs"] + 5 and never["stop_reason"] == "epoch cap"
    with pytest.raises(ValueError, match="stop accepts one of"):
        train_sgd(paper_mlp(8, 4, 3), x, y, 0.05, 0.9, 16, 2, "early")


def test_grid_runs_are_cached_and_consistent(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))  # UCI digits need no installed asset
    settings = dict(n_train=200, n_test=100, depth=5, lr=0.05, momentum=0.9, batch_size=64, stop="plateau",
                    max_epochs=5, patience=20, interpolation_loss=1e-4, checkpoints=[2, 4], seed=0, device="cpu")
    runs = study.run_grid_runs("uci_digits", [8, 16], [0.0, 0.5], 1, settings)
    assert len(runs) == 4 and not runs.from_cache.any()
    assert (runs.generalization - (runs.train_loss - runs.test_loss).abs()).abs().max() < 1e-12
    assert runs[runs.noise == 0].resilience.isna().all() and runs[runs.noise > 0].resilience.notna().all()
    clean = runs[runs.noise == 0]  # no label changed: the whole-set reading is the training loss itself
    assert (clean.resilience_all - clean.train_loss).abs().max() < 1e-12
    layers = study.per_layer(runs)
    assert len(layers) == 4 * 5 and set(layers.layer) == {1, 2, 3, 4, 5}
    assert {"reinit_last1_test_loss", "reinit_last2_test_acc", "dead", "interpolates"} <= set(runs.columns)
    assert [[r["epoch"] for r in recs] for recs in runs.records] == [[2, 4]] * 4
    grids = study.at_checkpoints(runs)
    assert list(grids) == [2, 4, 5] and grids[5] is runs
    assert (grids[2].train_loss.to_numpy() != runs.train_loss.to_numpy()).all()  # measured mid-training
    assert study.run_grid_runs("uci_digits", [8, 16], [0.0, 0.5], 1, settings).from_cache.all()


def _grid(train_acc, majority=0.1, **columns):
    n = len(train_acc)
    return pd.DataFrame({"dataset": "d", "noise": 0.2, "width": range(1, n + 1), "train_acc": train_acc,
                         "majority_rate": majority, **columns})


def test_dead_runs_sit_at_the_majority_rate_and_interpolating_ones_fit_their_labels():
    runs = study.mark(_grid([0.10, 0.149, 0.151, 0.989, 0.99, 1.0]))
    assert runs.dead.tolist() == [True, True, False, False, False, False]
    assert runs.interpolates.tolist() == [False, False, False, False, True, True]
    table = study.outcomes(runs.assign(width=[2, 2, 4, 4, 8, 8]))
    assert table.loc[("d", "0.2")].tolist() == ["0/2\u2020\u2020", "0/2", "2/2"]


def test_the_papers_threshold_is_the_width_of_the_peak_of_the_row():
    runs = study.mark(_grid([0.5, 0.9, 1.0, 1.0], generalization=[0.2, 0.9, 0.5, 0.1]))
    runs = pd.concat([runs, runs.assign(noise=0.0, generalization=[0.3, 0.2, 0.1, 0.0])], ignore_index=True)
    peak = study.peak_widths(runs, "generalization").set_index("noise").threshold_width
    assert peak.to_dict() == {0.2: 2, 0.0: 1}
    assert study.threshold_widths(runs).set_index("noise").threshold_width.to_dict() == {0.0: 3, 0.2: 3}


def test_a_refutation_needs_fixed_epochs_and_memorised_labels():
    runs = study.mark(_grid([0.5, 1.0, 1.0, 0.98], noise=0.4))
    thresholds = pd.DataFrame({"dataset": ["d"], "noise": [0.4], "threshold_width": [2]})
    met, reason = study.in_regime(runs, thresholds, {"stop": "fixed"})
    assert not met and "67%" in reason                      # 2 of the 3 noisy runs over the threshold
    assert study.in_regime(runs.assign(train_acc=1.0).pipe(study.mark), thresholds, {"stop": "fixed"}) == (True, "")
    assert not study.in_regime(runs.assign(train_acc=1.0).pipe(study.mark), thresholds, {"stop": "plateau"})[0]
