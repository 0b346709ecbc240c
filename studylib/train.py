"""Training loops for classifiers on image and vector data, with per-epoch records.

Used by the "data and models" page (the cached demonstration run) and the layer-utilization and
model-information chapters.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import config, data, models
from .cache import RunResult
from .progress import progress


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, device, batch_size: int = 1024) -> dict:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        xb = torch.as_tensor(x[i:i + batch_size], device=device)
        yb = torch.as_tensor(y[i:i + batch_size], device=device)
        out = model(xb)
        loss += nn.functional.cross_entropy(out, yb, reduction="sum").item()
        correct += (out.argmax(1) == yb).sum().item()
    return {"loss": loss / len(y), "acc": correct / len(y)}


def train_classifier(model: nn.Module, ds: data.Dataset, epochs: int, lr: float = 1e-3,
                     batch_size: int = 64, seed: int = 0, device=None, weight_decay: float = 0.0,
                     desc: str = "training") -> list[dict]:
    """Train with Adam and cross-entropy; return one record per epoch (train/test loss and accuracy).

    Batches are drawn from a generator seeded by ``seed``: same seed, same numbers.
    """
    dev = config.device(device)
    model.to(dev)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    x, y = torch.as_tensor(ds.x_train), torch.as_tensor(ds.y_train)
    records = []
    for epoch in progress(range(1, epochs + 1), total=epochs, desc=desc):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx].to(dev)), y[idx].to(dev))
            loss.backward()
            opt.step()
        tr = evaluate(model, ds.x_train, ds.y_train, dev)
        te = evaluate(model, ds.x_test, ds.y_test, dev)
        records.append({"epoch": epoch, "train_loss": tr["loss"], "train_acc": tr["acc"],
                        "test_loss": te["loss"], "test_acc": te["acc"]})
    return records


def mlp_run(p: dict) -> RunResult:
    """A cacheable run: an MLP of hidden ``widths`` trained on data set ``dataset``.

    ``p`` keys: dataset, widths, epochs, lr, batch_size, seed, n_train (or None), n_test (or None), device.
    """
    ds = data.load(p["dataset"], seed=p["seed"], n_train=p.get("n_train"), n_test=p.get("n_test"))
    torch.manual_seed(p["seed"])
    model = models.mlp(int(np.prod(ds.x_train.shape[1:])), p["widths"], ds.num_classes)
    records = train_classifier(model, ds, p["epochs"], p["lr"], p["batch_size"], p["seed"], p.get("device"),
                               desc=f"{p['dataset']} MLP")
    final = records[-1]
    metrics = {"test_acc": final["test_acc"], "train_acc": final["train_acc"],
               "gap": final["train_acc"] - final["test_acc"], "num_parameters": models.num_parameters(model)}
    return RunResult(records, metrics, {k: v.cpu() for k, v in model.state_dict().items()})


#: the modules whose code an ``mlp_run`` result depends on (its run-cache key includes their source)
MLP_RUN_DEPS = ("studylib.train", "studylib.data", "studylib.models")
