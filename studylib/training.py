"""The one training loop (:func:`fit`), the classifier training built on it, and the one evaluation every chapter
uses.

Every trained model of the book goes through :func:`fit`: the "data and models" page and the ESD chapter
(:func:`train_classifier`), the layer-utilization and head-to-head chapters (SGD with stopping rules,
:func:`train_sgd`), the model-information chapter (early-stopped Adam,
:func:`studylib.metrics.mdl.fit`) and the IIW chapters (the PIB prior and fine-tuning, :mod:`studylib.runs.finetune`).
:func:`evaluate` and :func:`predict` score every model.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import nn

from . import core
from .platform.progress import progress


@torch.no_grad()
def predict(model: nn.Module, batches: list[dict], device=None) -> torch.Tensor:
    """The logits of every batch (see :mod:`studylib.core`), concatenated on the CPU, in eval mode."""
    dev = core.device(device)
    model.eval()
    return torch.cat([core.logits(model, core.to_device(b, dev)).cpu() for b in batches])


def confidence(probs) -> float:
    """Seed 003, eqs. (9-11): the mean over examples of the top-1 minus the top-2 predicted probability."""
    top = torch.as_tensor(probs).topk(2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).mean())


def evaluate(model: nn.Module, batches: list[dict], device=None) -> dict:
    """Mean cross-entropy (``loss``, nats, computed in float64), accuracy (``acc``) and :func:`confidence` of
    ``model`` on labelled batches; arrays go through :func:`studylib.core.array_batches` first."""
    out = predict(model, batches, device)
    y = torch.cat([torch.as_tensor(b["labels"]) for b in batches])
    return {"loss": float(nn.functional.cross_entropy(out.double(), y, reduction="sum")) / len(y),
            "acc": float((out.argmax(-1) == y).double().mean()), "confidence": confidence(out.softmax(-1))}


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, rounds: int, batches: Callable[[int], Iterable[Any]],
        loss: Callable[[nn.Module, Any], tuple[torch.Tensor, int]], *, after_round: Callable[[int, int, float], bool | None]
        | None = None, before_round: Callable[[int], None] | None = None, scheduler=None, track_loss: bool = False,
        desc: str | None = None) -> int:
    """The one training loop: up to ``rounds`` rounds (epochs, or blocks of steps between two evaluations), each
    a pass over ``batches(round)`` with one optimizer step per batch; returns the number of rounds run.

    ``loss(model, batch)`` returns the batch's loss and its number of examples. Per step: zero the gradients,
    backpropagate the loss, step the optimizer (then ``scheduler``, if any). The model is in train mode during a
    round (``before_round(round)`` runs after that, e.g. to freeze parts); ``after_round(round, steps, mean_loss)``
    runs after it (``mean_loss``: the example-weighted mean of the round's losses with ``track_loss``, else NaN) and
    ends training by returning True. ``desc``: show progress over the rounds on the terminal.
    """
    steps = 0
    for r in (progress(range(1, rounds + 1), total=rounds, desc=desc) if desc else range(1, rounds + 1)):
        model.train()
        if before_round is not None:
            before_round(r)
        total, examples = 0.0, 0
        for batch in batches(r):
            value, n = loss(model, batch)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            steps += 1
            if track_loss:
                total += value.item() * n
                examples += n
        if after_round is not None and after_round(r, steps, total / examples if examples else float("nan")):
            return r
    return rounds


#: how an SGD training ends (:func:`train_sgd`)
STOPS = ("fixed", "plateau")


def train_sgd(model: nn.Module, x, y, lr: float, momentum: float, batch_size: int, max_epochs: int,
              stop: str = "fixed", patience: int = 20, tol: float = 1e-3, interpolation_loss: float | None = 1e-4,
              seed: int = 0, device=None, at_epochs: dict[int, Callable[[], None]] | None = None,
              weight_decay: float = 0.0) -> dict:
    """Plain SGD with momentum (and ``weight_decay``) on cross-entropy, batches drawn from a generator seeded by
    ``seed``: the layer-utilization chapter's runs and the head-to-head chapter's zoo.

    ``stop="fixed"``: exactly ``max_epochs`` epochs, as the paper trains (10,000). ``stop="plateau"``: until the
    best training loss has not improved by a relative ``tol`` for ``patience`` epochs, the training loss falls
    below ``interpolation_loss`` (``None``: never) or ``max_epochs`` run out. Either stops if the loss diverges.
    ``at_epochs``: epoch -> a callback run after that epoch (the model in eval mode during the call).
    Returns the per-epoch training losses, the epochs run and why training ended.
    """
    if stop not in STOPS:
        raise ValueError(f"stop={stop!r}; stop accepts one of {STOPS}")
    dev = core.device(device)
    model.to(dev)
    x, y = torch.as_tensor(x, device=dev), torch.as_tensor(y, device=dev)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    losses: list[float] = []
    state = {"best": math.inf, "since_best": 0, "reason": "fixed epochs" if stop == "fixed" else "epoch cap"}

    def after_epoch(epoch, steps, mean_loss) -> bool:
        losses.append(mean_loss)
        if epoch in (at_epochs or {}):
            model.eval()
            at_epochs[epoch]()
        if not math.isfinite(mean_loss):
            state["reason"] = "diverged"
            return True
        if stop == "fixed":
            return False
        if mean_loss < state["best"] * (1 - tol):
            state["best"], state["since_best"] = mean_loss, 0
        else:
            state["since_best"] += 1
        if interpolation_loss is not None and mean_loss < interpolation_loss:
            state["reason"] = "interpolated"
            return True
        if state["since_best"] >= patience:
            state["reason"] = "plateau"
            return True
        return False

    def batch_loss(m, idx):
        idx = idx.to(dev)
        return nn.functional.cross_entropy(m(x[idx]), y[idx]), len(idx)

    fit(model, opt, max_epochs, lambda epoch: torch.randperm(len(y), generator=gen).split(batch_size),
                 batch_loss, after_round=after_epoch, track_loss=True)
    model.eval()
    return {"train_losses": losses, "epochs": len(losses), "stop_reason": state["reason"]}


def train_classifier(model: nn.Module, x_train, y_train, x_test, y_test, epochs: int, lr: float = 1e-3,
                     batch_size: int = 64, seed: int = 0, device=None, weight_decay: float = 0.0,
                     desc: str = "training") -> list[dict]:
    """Train with Adam and cross-entropy; return one record per epoch (train/test loss and accuracy).

    Batches are drawn from a generator seeded by ``seed``: same seed, same numbers.
    """
    dev = core.device(device)
    model.to(dev)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    x, y = torch.as_tensor(x_train), torch.as_tensor(y_train)
    train_batches, test_batches = core.array_batches(x, y, 1024), core.array_batches(x_test, y_test, 1024)
    records = []

    def record(epoch, steps, mean_loss):
        tr, te = evaluate(model, train_batches, dev), evaluate(model, test_batches, dev)
        records.append({"epoch": epoch, "train_loss": tr["loss"], "train_acc": tr["acc"],
                        "test_loss": te["loss"], "test_acc": te["acc"]})

    fit(model, opt, epochs, lambda epoch: torch.randperm(len(y), generator=gen).split(batch_size),
        lambda m, idx: (nn.functional.cross_entropy(m(x[idx].to(dev)), y[idx].to(dev)), len(idx)),
        after_round=record, desc=desc)
    return records
