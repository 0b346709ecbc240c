"""Training loops for classifiers, and the one evaluation every chapter uses.

Used by the "data and models" page (the cached demonstration run) and the ESD chapter (:func:`train_classifier`)
and, through :func:`evaluate` and :func:`predict`, by the fine-tuning, layer-utilization and model-information
runs.
"""
from __future__ import annotations

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
    for epoch in progress(range(1, epochs + 1), total=epochs, desc=desc):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx].to(dev)), y[idx].to(dev))
            loss.backward()
            opt.step()
        tr, te = evaluate(model, train_batches, dev), evaluate(model, test_batches, dev)
        records.append({"epoch": epoch, "train_loss": tr["loss"], "train_acc": tr["acc"],
                        "test_loss": te["loss"], "test_acc": te["acc"]})
    return records
