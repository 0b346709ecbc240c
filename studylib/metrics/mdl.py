"""Prequential (online) codelength and model information, in bits.

Used by the model-information chapter (seed 003, after Voita & Titov 2020 and Zhang et al. 2020).

Prequential code of ``N`` labelled examples, in the given order, with block ends ``ceil(f * N)`` for each
fraction ``f`` of ``blocks``: the first block is sent with a uniform code (``|block_1| log2 K`` bits) or, with
``first_block="model"``, with the starting model's predictions; every later block costs
``sum -log2 p(y | x)`` under a model trained (Adam, cross-entropy, a budget in steps, early-stopped on a held-out
part with the starting weights a candidate: :class:`TrainSpec`) on all the examples before it. The model of each block starts from ``init_state`` (or a fresh ``model_factory()``),
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
    """How every model is trained, counted in optimisation steps: Adam at ``lr`` on seeded batches of
    ``batch_size``. A held-out part (``val_fraction`` of the examples, at least one, from two examples on) is
    scored on the starting weights and every ``eval_every`` steps; training ends once ``min_steps`` have run and
    ``patience`` evaluations in a row found no lower held-out loss, or at ``max_steps``, and returns the best
    weights scored, the starting ones included. With fewer than ``frozen_bn_below`` training examples, batch-norm
    layers keep their running statistics (they train in eval mode): a few images would overwrite them."""
    min_steps: int = 500
    max_steps: int = 5000
    eval_every: int = 50
    patience: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    val_fraction: float = 0.1
    frozen_bn_below: int = 64

    def __post_init__(self):
        for name, ok, what in (("min_steps", self.min_steps >= 0, "an int >= 0"),
                               ("max_steps", self.max_steps >= max(1, self.min_steps), "an int >= max(1, min_steps)"),
                               ("eval_every", self.eval_every >= 1, "an int >= 1"),
                               ("patience", self.patience >= 1, "an int >= 1"), ("lr", self.lr > 0, "a float > 0"),
                               ("batch_size", self.batch_size >= 1, "an int >= 1"),
                               ("val_fraction", 0 < self.val_fraction < 1, "a float in (0, 1)"),
                               ("frozen_bn_below", self.frozen_bn_below >= 0, "an int >= 0")):
            if not ok:
                raise ValueError(f"TrainSpec.{name}={getattr(self, name)!r}; {name} accepts {what}")


@dataclass
class Distillation:
    """Synced distillation (seed 003, §7): before the block that ends at ``ends[i]``, the student learns from
    :func:`distillation_loss` (the paper's eq. 17; ``t_squared``: the distillation term times T^2, as Hinton et al.
    2015 scale it) with ``teacher_logits[i - 1]``, a teacher's logits on the examples sent so far
    (:func:`synced_teacher_logits`). One set of teacher logits serves every ``alpha``."""
    teacher_logits: list[torch.Tensor] = field(repr=False)
    alpha: float = 0.5
    temperature: float = 4.0
    t_squared: bool = False

    def __post_init__(self):
        if not 0 <= self.alpha <= 1 or self.temperature <= 0:
            raise ValueError(f"Distillation needs alpha in [0, 1] and temperature > 0, got {self.alpha}, {self.temperature}")


def synced_teacher_logits(teacher_factory: Callable[[], nn.Module], x, y, blocks=DEFAULT_BLOCKS,
                          spec: TrainSpec = TrainSpec(), seed: int = 0, device=None, pool=None) -> list[torch.Tensor]:
    """The teachers of synced distillation (model-information chapter): for each block after the first of the
    prequential code of ``(x, y)``, a fresh teacher trained on the examples sent before it (and on ``pool``, an extra
    labelled ``(x, y)`` disjoint from them, when given: a teacher that knows more than the data), and its logits on
    those examples. The teacher never sees a label the student has yet to code."""
    ends, dev = block_ends(len(y), blocks), core.device(device)
    out = []
    for i in progress(range(1, len(ends)), total=len(ends) - 1, desc="synced teachers"):
        xs, ys = x[:ends[i - 1]], y[:ends[i - 1]]
        if pool is not None:
            xs, ys = np.concatenate([xs, pool[0]]), np.concatenate([ys, pool[1]])
        teacher = fit(fresh(teacher_factory, None, seed + 10_000 + i).to(dev), xs, ys, spec, seed + 10_000 + i, dev)
        out.append(predict(teacher, x[:ends[i - 1]], dev))
    return out


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, alpha: float,
                      temperature: float, t_squared: bool = False) -> torch.Tensor:
    """Seed 003's eq. (17), the model-information chapter's distillation loss, ``alpha * L_KD + (1 - alpha) * L_ce``: L_KD the KL divergence from the teacher's to the
    student's softmax at temperature T, L_ce the cross-entropy with the labels, both batch means in nats.
    ``t_squared`` multiplies L_KD by T^2 (Hinton et al. 2015), which the paper's equation does not show."""
    kd = nn.functional.kl_div(torch.log_softmax(student_logits / temperature, -1),
                              torch.log_softmax(teacher_logits / temperature, -1), log_target=True, reduction="batchmean")
    ce = nn.functional.cross_entropy(student_logits, y)
    return alpha * kd * (temperature ** 2 if t_squared else 1.0) + (1 - alpha) * ce


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


def _batches(n: int, batch_size: int, gen: torch.Generator):
    """Batches of indices into ``n`` examples, epoch after epoch, each epoch a fresh seeded permutation."""
    while True:
        yield from torch.randperm(n, generator=gen).split(batch_size)


def fit(model: nn.Module, x, y, spec: TrainSpec, seed: int, device=None, soft_targets: torch.Tensor | None = None,
        distill: Distillation | None = None, log: dict | None = None, start_is_candidate: bool = True) -> nn.Module:
    """Train ``model`` in place on ``(x, y)`` as :class:`TrainSpec` says, with a seeded held-out part, and return it
    with the best weights scored, the starting ones included unless ``start_is_candidate`` is false (a warm start
    has trained on part of the held-out examples, so its score there is no fair one); a single example is not trained
    on. ``soft_targets`` (teacher logits for every example) switch on :func:`distillation_loss`. ``log``, when
    given, receives the steps run, the step of the weights returned and the size of the held-out part."""
    if (soft_targets is None) != (distill is None):
        raise ValueError("soft_targets and distill go together: pass both (distillation) or neither")
    dev = core.device(device)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    model.to(dev)
    if len(y) < 2:
        if log is not None:
            log.update(steps=0, best_step=0, n_val=0)
        return model.eval()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=gen)
    n_val = max(1, round(spec.val_fraction * len(y)))
    val, train = order[:n_val], order[n_val:]
    frozen_bn = len(train) < spec.frozen_bn_below
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr, fused=True)  # the same algorithm, a faster step
    held_out = lambda: bits(predict(model, x[val], dev), y[val])
    state = {"best": copy.deepcopy(model.state_dict()), "loss": held_out() if start_is_candidate else math.inf,
             "step": 0, "waited": 0, "steps": 0}
    stream = _batches(len(train), spec.batch_size, gen)

    def block(r):  # the steps between two held-out evaluations
        return (train[next(stream)] for _ in range(min(spec.eval_every, spec.max_steps - (r - 1) * spec.eval_every)))

    def freeze_batch_norm(r):
        if frozen_bn:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def batch_loss(m, idx):
        out = m(x[idx].to(dev))
        if soft_targets is None:
            return nn.functional.cross_entropy(out, y[idx].to(dev)), len(idx)
        return distillation_loss(out, soft_targets[idx].to(dev), y[idx].to(dev), distill.alpha, distill.temperature,
                                 distill.t_squared), len(idx)

    def evaluate_block(r, steps, _):
        state["steps"] = steps
        val_loss = held_out()
        if val_loss < state["loss"] - 1e-9:
            state.update(best=copy.deepcopy(model.state_dict()), loss=val_loss, step=steps, waited=0)
        else:
            state["waited"] += 1
        return steps >= spec.min_steps and state["waited"] >= spec.patience

    training.fit(model, opt, math.ceil(spec.max_steps / spec.eval_every), block, batch_loss,
                 before_round=freeze_batch_norm, after_round=evaluate_block)
    best, best_step, step = state["best"], state["step"], state["steps"]
    model.load_state_dict(best)
    if log is not None:
        log.update(steps=step, best_step=best_step, n_val=n_val)
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
    ``distill``: synced distillation, the student taught before each block by a teacher of the examples sent so far."""
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
    if distill is not None and len(distill.teacher_logits) != len(ends) - 1:
        raise ValueError(f"distill.teacher_logits has {len(distill.teacher_logits)} entries; this code trains "
                         f"{len(ends) - 1} blocks (synced_teacher_logits with the same examples and blocks)")
    for i in progress(range(1, len(ends)), total=len(ends) - 1, desc=desc):
        seen, upto = slice(0, ends[i - 1]), slice(ends[i - 1], ends[i])
        if not warm_start:
            model = fresh(model_factory, init_state, seed + i).to(dev)
        soft = None if distill is None else distill.teacher_logits[i - 1]
        fit(model, x[seen], y[seen], spec, seed + i, dev, soft_targets=soft, distill=distill,
            start_is_candidate=not warm_start or i == 1)
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


def information_ablation(model_factory: Callable[[], nn.Module], x_code, y_code, num_classes: int, init_state: dict,
                         final_state: dict, components: dict[str, list[str]], spec: TrainSpec = TrainSpec(),
                         seed: int = 0, device=None) -> dict:
    """Seed 003 §6, the model-information chapter's information ablation: ``I(C) = L_ablated(code) - L_final(code)`` for each component C
    (``components``: name -> parameter names), the ablated model being ``final_state`` with C's parameters reset
    to ``init_state`` (buffers such as batch-norm running statistics stay those of ``final_state``); both
    prequential codes of ``(x_code, y_code)`` start their every block from the model, the first block coded by it.
    Returns the trained model's codelength (``codelength_final``) and ``I`` per component, in bits."""
    length = lambda state, what: prequential_codelength(model_factory, x_code, y_code, num_classes, init_state=state,
                                                        first_block="model", spec=spec, seed=seed, device=device,
                                                        desc=f"code, {what} reset").total_bits
    final = length(final_state, "nothing")
    return {"codelength_final": final,
            "I": {c: length({**final_state, **{n: init_state[n] for n in names}}, c) - final
                  for c, names in components.items()}}

