"""The layer-utilization chapter's trained runs (Wang & Yang, seed 001): the paper's MLP trained on data with
shuffled labels, measured with :mod:`studylib.metrics.utilization`.

Used by the layer utilization and re-initialisation chapter (through :mod:`studylib.studies.utilization`).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import core, data, nets, training
from ..metrics.utilization import layer_contribution, layer_utilization, linear_layers, with_layers_reset
from ..platform.cache import RunResult


def shuffle_labels(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the labels of a ``fraction`` of the examples among themselves (seeded).

    Returns the noisy labels and the indices that were drawn for shuffling; a drawn label can land
    back on its own example by chance, so the examples whose label actually changed are
    ``noisy != y``. The originals are untouched, so the recovered set can be scored.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(y), int(round(fraction * len(y))), replace=False))
    noisy = np.array(y, copy=True)
    noisy[picked] = y[rng.permutation(picked)]
    return noisy, picked


def utilization_run(p: dict):
    """One cacheable run of the chapter's grid: train the paper's MLP on data with shuffled labels and
    measure everything the chapter plots (no weights are stored: every figure needs only these numbers).

    ``p`` keys: dataset, n_train, n_test, width, depth, noise, repeat, lr, momentum, batch_size,
    max_epochs, patience, seed, device.
    """
    if p["depth"] < 2:
        raise ValueError(f"depth={p['depth']!r}; depth accepts an int >= 2 (the number of linear layers)")
    ds = data.load(p["dataset"], seed=p["seed"], n_train=p["n_train"], n_test=p["n_test"])
    x_tr, x_te = ds.x_train.reshape(len(ds.y_train), -1), ds.x_test.reshape(len(ds.y_test), -1)
    run_seed = p["seed"] * 1000 + p["repeat"]
    y_noisy, _ = shuffle_labels(ds.y_train, p["noise"], run_seed)
    changed = y_noisy != ds.y_train
    torch.manual_seed(run_seed)
    model = nets.mlp(x_tr.shape[1], [p["width"]] * (p["depth"] - 1), ds.num_classes)  # the paper's MLP
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    info = training.train_to_convergence(model, x_tr, y_noisy, p["lr"], p["momentum"], p["batch_size"],
                                         p["max_epochs"], p["patience"], seed=run_seed, device=p["device"])
    dev = core.device(p["device"])

    def scores(m, x, y):  # loss and accuracy over every example at once
        out = training.evaluate(m, core.array_batches(x, y, len(y)), dev)
        return out["loss"], out["acc"]

    def test_loss(m, _=None):
        return scores(m, x_te, ds.y_test)[0]

    def train_loss_of(m, _=None):
        return scores(m, x_tr, y_noisy)[0]

    def recovered_loss(m, _=None):
        return scores(m, x_tr[changed], ds.y_train[changed])[0] if changed.any() else math.nan

    train_loss, train_acc = scores(model, x_tr, y_noisy)
    te_loss, te_acc = scores(model, x_te, ds.y_test)
    util = layer_utilization(model, init_state)
    layers = linear_layers(model)
    util["contribution_train_loss"] = [layer_contribution(model, init_state, l, train_loss_of, None) for l in layers]
    util["contribution_test_loss"] = [layer_contribution(model, init_state, l, test_loss, None) for l in layers]
    util["contribution_resilience"] = [layer_contribution(model, init_state, l, recovered_loss, None) for l in layers]
    metrics = {"train_loss": train_loss, "train_acc": train_acc, "test_loss": te_loss, "test_acc": te_acc,
               "generalization": abs(train_loss - te_loss), "resilience": recovered_loss(model),
               "noisy_fraction": float(changed.mean()), "epochs": info["epochs"], "stop_reason": info["stop_reason"],
               "num_parameters": nets.num_parameters(model), "layers": util.to_dict("list")}
    for k in (1, 2):
        loss_k, acc_k = scores(with_layers_reset(model, init_state, layers[-k:]), x_te, ds.y_test)
        metrics[f"reinit_last{k}_test_loss"], metrics[f"reinit_last{k}_test_acc"] = loss_k, acc_k
    records = [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(info["train_losses"])]
    return RunResult(records, metrics)
