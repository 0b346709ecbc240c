"""The cached run of a plain MLP trained on an image or vector data set.

Used by the "data and models" page (the demonstration run) and the ESD audit chapter (the width series).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import data, nets, training
from ..platform.cache import RunResult


@dataclass(frozen=True)
class MlpParams:
    """The parameters of :func:`mlp_run` (its cache key): an MLP of hidden ``widths`` trained for ``epochs`` on
    ``dataset`` (``n_train`` / ``n_test`` examples, None: all) with Adam at ``lr``, batches of ``batch_size``."""
    dataset: str
    widths: list[int]
    epochs: int
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    device: str = "auto"


def mlp_run(p: MlpParams) -> RunResult:
    """A cacheable run: an MLP of hidden ``widths`` trained on data set ``dataset`` (Adam, cross-entropy)."""
    ds = data.load(p.dataset, seed=p.seed, n_train=p.n_train, n_test=p.n_test)
    torch.manual_seed(p.seed)
    model = nets.mlp(int(np.prod(ds.x_train.shape[1:])), p.widths, ds.num_classes)
    records = training.train_classifier(model, ds.x_train, ds.y_train, ds.x_test, ds.y_test, p.epochs, p.lr,
                                        p.batch_size, p.seed, p.device, desc=f"{p.dataset} MLP")
    final = records[-1]
    metrics = {"test_acc": final["test_acc"], "train_acc": final["train_acc"],
               "gap": final["train_acc"] - final["test_acc"], "num_parameters": nets.num_parameters(model)}
    return RunResult(records, metrics, {k: v.cpu() for k, v in model.state_dict().items()})
