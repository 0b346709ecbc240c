"""The layer-utilization chapter's trained runs (Wang & Yang, seed 001): the paper's MLP trained on data with
shuffled labels, measured with :mod:`studylib.metrics.utilization`.

Used by the layer utilization and re-initialisation chapter (through :mod:`studylib.studies.utilization`).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import core, data, nets, training
from ..metrics.utilization import layer_contributions, layer_utilization, linear_layers, with_layers_reset
from ..platform.cache import RunResult

#: how a run's training ends (:func:`train_sgd`)
STOPS = ("fixed", "plateau")


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


def train_sgd(model: nn.Module, x, y, lr: float, momentum: float, batch_size: int, max_epochs: int,
              stop: str = "fixed", patience: int = 20, tol: float = 1e-3, interpolation_loss: float | None = 1e-4,
              seed: int = 0, device=None, at_epochs: dict[int, Callable[[], None]] | None = None,
              weight_decay: float = 0.0) -> dict:
    """Plain SGD with momentum (and ``weight_decay``, none in this chapter) on cross-entropy, the chapter's loop;
    batches drawn from a generator seeded by ``seed``. The head-to-head chapter's zoo trains with it too.

    ``stop="fixed"``: exactly ``max_epochs`` epochs, as the paper trains (10,000). ``stop="plateau"``: until the
    best training loss has not improved by a relative ``tol`` for ``patience`` epochs, the training loss falls
    below ``interpolation_loss`` (``None``: never) or ``max_epochs`` run out. Either stops if the loss diverges.
    ``at_epochs``: epoch -> a callback run after that epoch (the model in eval mode during the call).
    Returns the per-epoch training losses, the epochs run and why training ended.
    """
    if stop not in STOPS:
        raise ValueError(f"stop={stop!r}; stop accepts one of {STOPS}")
    dev = core.device(device)
    model.to(dev).train()
    x, y = torch.as_tensor(x, device=dev), torch.as_tensor(y, device=dev)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    losses, best, since_best, reason = [], math.inf, 0, "fixed epochs" if stop == "fixed" else "epoch cap"
    for _ in range(max_epochs):
        total = 0.0
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            idx = idx.to(dev)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y))
        if len(losses) in (at_epochs or {}):
            model.eval()
            at_epochs[len(losses)]()
            model.train()
        if not math.isfinite(losses[-1]):
            reason = "diverged"
            break
        if stop == "fixed":
            continue
        if losses[-1] < best * (1 - tol):
            best, since_best = losses[-1], 0
        else:
            since_best += 1
        if interpolation_loss is not None and losses[-1] < interpolation_loss:
            reason = "interpolated"
            break
        if since_best >= patience:
            reason = "plateau"
            break
    model.eval()
    return {"train_losses": losses, "epochs": len(losses), "stop_reason": reason}


def utilization_run(p: dict):
    """One cacheable run of the chapter's grid: train the paper's MLP on data with shuffled labels and
    measure everything the chapter plots (no weights are stored: every figure needs only these numbers).

    ``p`` keys: dataset, n_train, n_test, width, depth, noise, repeat, lr, momentum, batch_size, stop,
    max_epochs, patience, interpolation_loss (:func:`train_sgd`), checkpoints, seed, device. The metrics are the
    measurements (:func:`measure`) after training; the records hold the same measurements after each epoch of
    ``checkpoints`` that training reached (the chapter's training-length check).
    """
    if p["depth"] < 2:
        raise ValueError(f"depth={p['depth']!r}; depth accepts an int >= 2 (the number of linear layers)")
    ds = data.load(p["dataset"], seed=p["seed"], n_train=p["n_train"], n_test=p["n_test"])
    x_tr, x_te = ds.x_train.reshape(len(ds.y_train), -1), ds.x_test.reshape(len(ds.y_test), -1)
    run_seed = p["seed"] * 1000 + p["repeat"]
    y_noisy, _ = shuffle_labels(ds.y_train, p["noise"], run_seed)
    torch.manual_seed(run_seed)
    model = nets.mlp(x_tr.shape[1], [p["width"]] * (p["depth"] - 1), ds.num_classes)  # the paper's MLP
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    splits = {"train": (x_tr, y_noisy), "original": (x_tr, ds.y_train), "test": (x_te, ds.y_test)}
    dev = core.device(p["device"])
    records = []

    def checkpoint(epoch):
        return lambda: records.append({"epoch": epoch, **measure(model, init_state, splits, dev)})

    info = train_sgd(model, x_tr, y_noisy, p["lr"], p["momentum"], p["batch_size"], p["max_epochs"], p["stop"],
                     p["patience"], interpolation_loss=p["interpolation_loss"], seed=run_seed, device=p["device"],
                     at_epochs={e: checkpoint(e) for e in p["checkpoints"]})
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
