"""The layer-utilization chapter's trained runs (Wang & Yang, seed 001): the paper's MLP trained on data with
shuffled labels, measured with :mod:`studylib.metrics.utilization`.

Used by the layer utilization and re-initialisation chapter (through :mod:`studylib.studies.utilization`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import core, data, nets, training
from ..data.domains import shuffle_labels
from ..metrics.utilization import layer_contributions, layer_utilization, linear_layers, with_layers_reset
from ..platform.cache import RunResult

@dataclass(frozen=True)
class UtilizationParams:
    """The parameters of :func:`utilization_run` (its cache key): the paper's MLP of ``depth`` linear layers of
    ``width`` on ``n_train`` examples of ``dataset`` (``n_test`` test examples) with a fraction ``noise`` of shuffled
    labels (``repeat``: the independent run of a cell), trained by :func:`studylib.training.train_sgd` (``lr``,
    ``momentum``, ``batch_size``, ``stop``, ``max_epochs``, ``patience``, ``interpolation_loss``) and measured
    after each epoch of ``checkpoints`` it reaches and at the end."""
    dataset: str
    width: int
    noise: float
    repeat: int
    n_train: int | None = 1000
    n_test: int | None = 2000
    depth: int = 5
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 128
    stop: str = "fixed"
    max_epochs: int = 800
    patience: int = 50
    interpolation_loss: float | None = 1e-4
    checkpoints: list[int] = field(default_factory=list)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        if self.depth < 2:
            raise ValueError(f"depth={self.depth!r}; depth accepts an int >= 2 (the number of linear layers)")
        if self.stop not in training.STOPS:
            raise ValueError(f"stop={self.stop!r}; stop accepts one of {training.STOPS}")


def utilization_run(p: UtilizationParams):
    """One cacheable run of the chapter's grid: train the paper's MLP on data with shuffled labels and
    measure everything the chapter plots (no weights are stored: every figure needs only these numbers).

    The metrics are the measurements (:func:`measure`) after training; the records hold the same measurements
    after each epoch of ``checkpoints`` that training reached (the chapter's training-length check).
    """
    ds = data.load(p.dataset, seed=p.seed, n_train=p.n_train, n_test=p.n_test)
    x_tr, x_te = ds.x_train.reshape(len(ds.y_train), -1), ds.x_test.reshape(len(ds.y_test), -1)
    run_seed = p.seed * 1000 + p.repeat
    y_noisy, _ = shuffle_labels(ds.y_train, p.noise, run_seed)
    torch.manual_seed(run_seed)
    model = nets.mlp(x_tr.shape[1], [p.width] * (p.depth - 1), ds.num_classes)  # the paper's MLP
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    splits = {"train": (x_tr, y_noisy), "original": (x_tr, ds.y_train), "test": (x_te, ds.y_test)}
    dev = core.device(p.device)
    records = []

    def checkpoint(epoch):
        return lambda: records.append({"epoch": epoch, **measure(model, init_state, splits, dev)})

    info = training.train_sgd(model, x_tr, y_noisy, p.lr, p.momentum, p.batch_size, p.max_epochs, p.stop,
                     p.patience, interpolation_loss=p.interpolation_loss, seed=run_seed, device=p.device,
                     at_epochs={e: checkpoint(e) for e in p.checkpoints})
    metrics = {**measure(model, init_state, splits, dev), "noisy_fraction": float((y_noisy != ds.y_train).mean()),
               "majority_rate": float(np.bincount(y_noisy).max() / len(y_noisy)), "epochs": info["epochs"],
               "stop_reason": info["stop_reason"], "num_parameters": nets.num_parameters(model),
               "train_losses": info["train_losses"]}
    return RunResult(records, metrics)


def measure(model: nn.Module, init_state: dict, splits: dict, dev) -> dict:
    """What the chapter reads off a model: losses and accuracies, the generalization gap, resilience both ways
    (``resilience`` on the recovered examples, the training examples whose label was changed, and
    ``resilience_all`` on the whole training set, both against the original labels; NaN without changed
    labels), the per-layer utilization and contributions (``layers``) and the test loss and accuracy with the
    last k = 1, 2 layers reset to their initial weights. ``splits``: ``"train"`` (the noisy labels trained on),
    ``"original"`` (the same inputs with the original labels) and ``"test"``, each (inputs, labels)."""
    x_tr, y_noisy = splits["train"]
    y_orig = splits["original"][1]
    changed = y_noisy != y_orig
    targets = {"train_loss": splits["train"], "test_loss": splits["test"],
               "resilience": (x_tr[changed], y_orig[changed]), "resilience_all": splits["original"]}

    def scores(m, x, y):  # loss and accuracy over every example at once
        if not len(y):
            return math.nan, math.nan
        out = training.evaluate(m, core.array_batches(x, y, len(y)), dev)
        return out["loss"], out["acc"]

    out = {}
    for name, (x, y) in targets.items():
        out[name], acc = scores(model, x, y)
        if name in ("train_loss", "test_loss"):
            out[name.replace("loss", "acc")] = acc
    util = layer_utilization(model, init_state)
    for name, (x, y) in targets.items():
        util[f"contribution_{name}"] = layer_contributions(model, init_state, lambda m: scores(m, x, y)[0], out[name])
    out.update(generalization=abs(out["train_loss"] - out["test_loss"]), layers=util.to_dict("list"))
    layers = linear_layers(model)
    for k in (1, 2):
        out[f"reinit_last{k}_test_loss"], out[f"reinit_last{k}_test_acc"] = scores(
            with_layers_reset(model, init_state, layers[-k:]), *splits["test"])
    return out
