"""Prequential (online) codelength and model information, in bits.

Used by the model-information chapter (seed 003, after Voita & Titov 2020 and Zhang et al. 2020).

Prequential code of ``N`` labelled examples, in the given order, with block ends ``ceil(f * N)`` for each
fraction ``f`` of ``blocks``: the first block is sent with a uniform code (``|block_1| log2 K`` bits) or, with
``first_block="model"``, with the starting model's predictions; every later block costs
``sum -log2 p(y | x)`` under a model trained (Adam, cross-entropy, early-stopped on a held-out part) on all
the examples before it. The model of each block starts from ``init_state`` (or a fresh ``model_factory()``),
or, with ``warm_start=True``, from the previous block's trained model.

Model information (seed 003, eq. 2): ``L = L_theta_init(y_1:k | x_1:k) - L_theta_final(y_1:k | x_1:k)``, two
prequential codelengths of the same ``k`` examples outside the training set, one whose every block starts
from the initial weights, one whose every block starts from the weights trained on the training set; the
first block is coded by the starting model in both.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import core, training
from ..platform.progress import progress

DEFAULT_BLOCKS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
LN2 = math.log(2.0)


@dataclass(frozen=True)
class TrainSpec:
    """How every model is trained: Adam at ``lr``, ``batch_size``, at most ``max_epochs``, stopping after
    ``patience`` epochs without a lower held-out loss (``val_fraction`` of the examples, at least one, held out
    when there are ten or more) and returning the best weights."""
    max_epochs: int = 50
    patience: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    val_fraction: float = 0.1

    def __post_init__(self):
        for name, ok, what in (("max_epochs", self.max_epochs >= 1, "an int >= 1"),
                               ("patience", self.patience >= 1, "an int >= 1"), ("lr", self.lr > 0, "a float > 0"),
                               ("batch_size", self.batch_size >= 1, "an int >= 1"),
                               ("val_fraction", 0 < self.val_fraction < 1, "a float in (0, 1)")):
            if not ok:
                raise ValueError(f"TrainSpec.{name}={getattr(self, name)!r}; {name} accepts {what}")


@dataclass
class Distillation:
    """Synced distillation (seed 003, §7): before each block, a teacher from ``teacher_factory`` is trained on the
    examples so far, and the student learns from ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE``."""
    teacher_factory: Callable[[], nn.Module]
    alpha: float = 0.5
    temperature: float = 4.0

    def __post_init__(self):
        if not 0 <= self.alpha <= 1 or self.temperature <= 0:
            raise ValueError(f"Distillation needs alpha in [0, 1] and temperature > 0, got {self.alpha}, {self.temperature}")


@dataclass
class Codelength:
    """A prequential code: per-block sizes and costs in bits, and the last block's trained model state."""
    block_ends: list[int]
    block_bits: list[float]
    num_classes: int
    final_state: dict | None = field(default=None, repr=False)

    @property
    def total_bits(self) -> float:
        return float(sum(self.block_bits))

    @property
    def uniform_bits(self) -> float:
        """``N log2 K``: the cost of sending every label with a uniform code."""
        return self.block_ends[-1] * math.log2(self.num_classes)

    @property
    def compression(self) -> float:
        return self.uniform_bits / self.total_bits if self.total_bits > 0 else math.inf


def block_ends(n: int, blocks=DEFAULT_BLOCKS) -> list[int]:
    """``ceil(f * n)`` for each fraction, at least 1, duplicates dropped (tiny data sets have fewer blocks)."""
    blocks = list(blocks)
    if not blocks or any(not 0 < f <= 1 for f in blocks) or blocks != sorted(blocks) or blocks[-1] != 1.0:
        raise ValueError(f"blocks must be increasing fractions in (0, 1] ending at 1.0, got {blocks}")
    if n < 2:
        raise ValueError(f"a prequential code needs at least 2 examples, got {n}")
    return sorted({max(1, math.ceil(f * n)) for f in blocks})


def predict(model: nn.Module, x, device) -> torch.Tensor:
    """Logits of ``model`` on the inputs ``x`` (numpy or tensor), in eval mode, on the CPU."""
    return training.predict(model, core.array_batches(x, None, 2048), device)


def bits(logits: torch.Tensor, y) -> float:
    """``sum -log2 p(y | x)`` of the labels under the logits."""
    return float(nn.functional.cross_entropy(logits.double(), torch.as_tensor(y), reduction="sum")) / LN2


def fit(model: nn.Module, x, y, spec: TrainSpec, seed: int, device=None, soft_targets: torch.Tensor | None = None,
        distill: Distillation | None = None) -> nn.Module:
    """Train ``model`` in place on ``(x, y)`` with early stopping on a seeded held-out part; ``soft_targets``
    (teacher logits for every example) switch on the distillation loss."""
    if (soft_targets is None) != (distill is None):
        raise ValueError("soft_targets and distill go together: pass both (distillation) or neither")
    dev = core.device(device)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=gen)
    n_val = max(1, round(spec.val_fraction * len(y))) if len(y) >= 10 else 0
    val, train = order[:n_val], order[n_val:]
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    best, best_loss, waited = copy.deepcopy(model.state_dict()), math.inf, 0
    for _ in range(spec.max_epochs):
        model.train()
        for idx in train[torch.randperm(len(train), generator=gen)].split(spec.batch_size):
            out = model(x[idx].to(dev))
            loss = nn.functional.cross_entropy(out, y[idx].to(dev))
            if soft_targets is not None:
                t = distill.temperature
                kd = nn.functional.kl_div(torch.log_softmax(out / t, -1), torch.log_softmax(soft_targets[idx].to(dev) / t, -1),
                                          log_target=True, reduction="batchmean") * t * t
                loss = distill.alpha * kd + (1 - distill.alpha) * loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        if n_val == 0:
            continue
        val_loss = bits(predict(model, x[val], dev), y[val])
        if val_loss < best_loss - 1e-9:
            best, best_loss, waited = copy.deepcopy(model.state_dict()), val_loss, 0
        else:
            waited += 1
            if waited >= spec.patience:
                break
    if n_val:
        model.load_state_dict(best)
    return model.eval()


def fresh(model_factory, init_state, seed: int) -> nn.Module:
    """A new model from ``model_factory`` seeded by ``seed``, loaded with ``init_state`` when given."""
    torch.manual_seed(seed)
    model = model_factory()
    if init_state is not None:
        model.load_state_dict(init_state)
    return model


def prequential_codelength(model_factory: Callable[[], nn.Module], x, y, num_classes: int, blocks=DEFAULT_BLOCKS,
                           warm_start: bool = False, init_state: dict | None = None, first_block: str = "uniform",
                           spec: TrainSpec = TrainSpec(), seed: int = 0, device=None,
                           distill: Distillation | None = None, desc: str = "prequential code") -> Codelength:
    """The prequential codelength of ``y`` given ``x`` (module docstring), per block and in total, in bits.

    ``init_state``: the weights every block's model starts from (default: a fresh ``model_factory()`` seeded by
    ``seed`` and the block). ``first_block``: ``"uniform"`` or ``"model"`` (coded by the starting model).
    ``distill``: synced distillation with a teacher trained on the same examples before each block."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if first_block not in ("uniform", "model"):
        raise ValueError(f"first_block must be 'uniform' or 'model', got {first_block!r}")
    y = np.asarray(y)
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    ends = block_ends(len(y), blocks)
    dev = core.device(device)
    model = fresh(model_factory, init_state, seed).to(dev)
    first = (ends[0] * math.log2(num_classes) if first_block == "uniform"
             else bits(predict(model, x[:ends[0]], dev), y[:ends[0]]))
    costs = [first]
    teacher = None
    for i in progress(range(1, len(ends)), total=len(ends) - 1, desc=desc):
        seen, upto = slice(0, ends[i - 1]), slice(ends[i - 1], ends[i])
        if not warm_start:
            model = fresh(model_factory, init_state, seed + i).to(dev)
        soft = None
        if distill is not None:
            if teacher is None or not warm_start:
                torch.manual_seed(seed + 10_000 + i)
                teacher = distill.teacher_factory()
            fit(teacher, x[seen], y[seen], spec, seed + 10_000 + i, dev)
            soft = predict(teacher, x[seen], dev)
        fit(model, x[seen], y[seen], spec, seed + i, dev, soft_targets=soft, distill=distill)
        costs.append(bits(predict(model, x[upto], dev), y[upto]))
    return Codelength(ends, costs, num_classes, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()})


def model_information(model_factory: Callable[[], nn.Module], x_train, y_train, x_code, y_code, num_classes: int,
                      blocks=DEFAULT_BLOCKS, spec: TrainSpec = TrainSpec(), seed: int = 0, device=None,
                      init_state: dict | None = None, final_state: dict | None = None,
                      warm_start: bool = False) -> dict:
    """Seed 003's eq. (2): the bits by which a model trained on ``(x_train, y_train)`` shortens the prequential
    code of ``k`` other examples ``(x_code, y_code)``: ``L_init - L_final`` (module docstring).

    ``init_state``: the initial weights (default: ``model_factory()`` seeded by ``seed``); ``final_state``: the
    trained weights (default: trained here from ``init_state`` with ``spec``). Returns both codelengths, the
    information ``info_bits``, ``k``, ``uniform_bits`` and the ``final_state``."""
    if len(y_code) < 2:
        raise ValueError(f"model information needs at least 2 coding examples, got {len(y_code)}")
    init = init_state or {k: v.clone() for k, v in fresh(model_factory, None, seed).state_dict().items()}
    if final_state is None:
        trained = fit(fresh(model_factory, init, seed), x_train, y_train, spec, seed, device)
        final_state = {k: v.detach().cpu().clone() for k, v in trained.state_dict().items()}
    common = dict(num_classes=num_classes, blocks=blocks, warm_start=warm_start, first_block="model", spec=spec,
                  seed=seed, device=device)
    from_init = prequential_codelength(model_factory, x_code, y_code, init_state=init, desc="code from init", **common)
    from_final = prequential_codelength(model_factory, x_code, y_code, init_state=final_state, desc="code from trained",
                                        **common)
    return {"info_bits": from_init.total_bits - from_final.total_bits, "codelength_init": from_init.total_bits,
            "codelength_final": from_final.total_bits, "k": len(y_code), "uniform_bits": from_init.uniform_bits,
            "final_state": final_state}
