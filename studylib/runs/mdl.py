"""The model-information chapter's trained runs (seed 003), each a cacheable function of its parameters.

Used by the chapter "Model information" (through :mod:`studylib.studies.model_information`). Every run trains
small networks on the offline digit and clothing data (:mod:`studylib.data.domains` for noise and domains) and
measures information with :mod:`studylib.metrics.mdl`. The grids, the paper's tables and the claims live in
:mod:`studylib.studies.model_information`, outside the runs' cache key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from .. import core, data, nets, training
from ..data import domains as dd
from ..metrics import mdl
from ..platform.cache import RunResult

TASKS = ("mnist", "fashion_mnist", "uci_digits", "mnist1d", "cluttered_mnist")  # all ten-class
NUM_CLASSES = 10
NOISES = {"missing_pixels": dd.missing_pixels, "missing_objects": dd.missing_objects,
          "missing_center": lambda x, size, seed: dd.missing_center(x, int(size))}
NOISE_KINDS = (*NOISES, "massart")


def task_split(task: str, n_train: int, k: int, n_test: int, seed: int, classes: int | None = None,
               noise: str | None = None, level: float = 0.0):
    """``(train, code, test)`` pairs ``(x, y)`` and the number of classes: the first ``n_train`` training examples,
    the next ``k`` as the coding set, ``n_test`` test examples; optionally only the first ``classes`` classes, and
    noise applied to every split: ``missing_pixels``, ``missing_objects`` or ``massart`` in a fraction ``level`` of
    the examples, or ``missing_center`` in all of them, ``level`` the side of the square in pixels."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if noise is not None and noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS} or None, got {noise!r}")
    if level and noise is None:
        raise ValueError(f"level={level} needs a noise kind: noise accepts one of {NOISE_KINDS}")
    if classes is not None and not 2 <= classes <= NUM_CLASSES:
        raise ValueError(f"classes must be an int in [2, {NUM_CLASSES}] or None, got {classes!r}")
    ds = dd.load_domain(task, seed) if task in dd.DOMAINS else data.load(task, seed=seed)
    K = classes or ds.num_classes
    splits = []
    for x, y, n in ((ds.x_train, ds.y_train, n_train + k), (ds.x_test, ds.y_test, n_test)):
        keep = y < K
        if keep.sum() < n:
            raise ValueError(f"{task} with {K} classes has {keep.sum()} examples in a split; {n} are needed "
                             "(lower n_train, k or n_test)")
        splits.append((x[keep][:n], y[keep][:n]))
    (x, y), test = splits
    parts = [(x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), test]
    if noise and level > 0:
        if noise == "massart":
            parts = [(px, dd.massart(py, level, K, seed + i)) for i, (px, py) in enumerate(parts)]
        else:
            parts = [(NOISES[noise](px, level, seed + i), py) for i, (px, py) in enumerate(parts)]
    return parts, K


def factory(arch: str, in_shape, num_classes: int, width: int):
    """``mlp``: two hidden layers of ``width``; ``resnet``: :func:`studylib.nets.small_resnet` with stages
    ``width, 2 width, 4 width``."""
    if arch == "mlp":
        return lambda: nets.mlp(int(np.prod(in_shape)), [width, width], num_classes)
    if arch == "resnet":
        return lambda: nets.small_resnet(in_shape[0], num_classes, widths=(width, 2 * width, 4 * width))
    raise ValueError(f"arch must be 'mlp' or 'resnet', got {arch!r}")


@dataclass(frozen=True, kw_only=True)
class CodeParams:
    """What every run of the model-information chapter shares (part of its cache key): ``n_train`` examples,
    ``seed``, ``device`` and the training budget of every model it trains (:func:`train_spec`)."""
    n_train: int
    seed: int = 0
    device: str = "auto"
    min_steps: int = 500
    max_steps: int = 1000
    eval_every: int = 50
    patience: int = 5

    def __post_init__(self):
        train_spec(self)  # an inconsistent budget fails when the parameters are made, naming the parameter


@dataclass(frozen=True, kw_only=True)
class InfoParams(CodeParams):
    """:func:`info_run`'s parameters: a ``task`` (``classes`` of it; ``noise`` of a kind at ``level``), ``k`` coding
    and ``n_test`` test examples, the model (``arch``, ``width``)."""
    task: str
    k: int
    n_test: int
    arch: str = "mlp"
    width: int = 256
    classes: int | None = None
    noise: str | None = None
    level: float = 0.0


@dataclass(frozen=True, kw_only=True)
class DomainParams(CodeParams):
    """:func:`domain_run`'s parameters: the digit ``domains``, ``k`` coding examples each, the model (``arch``,
    ``width``) and the ``n_features`` images per domain of the feature distances."""
    domains: list[str]
    k: int
    n_features: int
    arch: str = "mlp"
    width: int = 256


@dataclass(frozen=True, kw_only=True)
class AblationParams(CodeParams):
    """:func:`ablation_run`'s parameters: the ``task``, ``k`` coding and ``n_test`` test examples, the ResNet's
    first-stage ``width``."""
    task: str
    k: int
    n_test: int
    width: int = 8


@dataclass(frozen=True, kw_only=True)
class DistillationParams(CodeParams):
    """:func:`distillation_run`'s parameters: the ``task``, ``n_test`` test examples, the student's and teachers'
    widths, the distillation weights (``alpha`` for the teacher sweep, ``alphas`` for the alpha sweep), the
    ``temperature`` and ``t_squared`` of eq. (17), and the privileged teacher's ``pool`` of further examples."""
    task: str
    n_test: int
    student_width: int
    teacher_widths: list[int]
    alpha: float
    alphas: list[float]
    temperature: float = 4.0
    t_squared: bool = False
    pool: int = 8000


def train_spec(p: CodeParams) -> mdl.TrainSpec:
    """The training budget of every model of a run, from its parameters (min_steps, max_steps, eval_every,
    patience); inconsistent values fail here, naming the parameter."""
    return mdl.TrainSpec(min_steps=p.min_steps, max_steps=p.max_steps, eval_every=p.eval_every,
                         patience=p.patience)


def _evaluate(model, split, device) -> dict:
    """Accuracy and confidence of ``model`` on a ``(x, y)`` split."""
    return training.evaluate(model, core.array_batches(*split, 2048), device)


def info_run(p: InfoParams) -> RunResult:
    """Model information, test accuracy and confidence of one (task, noise, classes, architecture) cell."""
    (train, code, test), K = task_split(p.task, p.n_train, p.k, p.n_test, p.seed, p.classes,
                                        p.noise, p.level)
    make = factory(p.arch, train[0].shape[1:], K, p.width)
    info = mdl.model_information(make, *train, *code, K, spec=train_spec(p), seed=p.seed, device=p.device)
    model = make()
    model.load_state_dict(info.pop("final_state"))
    ev = _evaluate(model, test, p.device)
    return RunResult([], {**info, "acc": ev["acc"], "confidence": ev["confidence"], "num_classes": K,
                          "n_params": nets.num_parameters(model)})


def _features(x: np.ndarray, device, size: int = 112) -> np.ndarray:
    """Globally pooled EfficientNet-Lite0 (ImageNet) features of grey 28 x 28 images resized to ``size``."""
    net = nets.efficientnet_lite(0).to(device)
    rgb = torch.nn.functional.interpolate(torch.as_tensor(x), size=(size, size), mode="bilinear").repeat(1, 3, 1, 1)
    with torch.no_grad():
        return torch.cat([net.extract_features(((b * 255 - 127) / 128).to(device)).mean((2, 3)).cpu()
                          for b in rgb.split(64)]).numpy()


def domain_run(p: DomainParams) -> RunResult:
    """Seed 003 §4 on digit domains: ``L(M_A, B) = L_init(B) - L_{M_A}(B)`` on B's coding set for every pair, and the
    first- and second-order distances of ImageNet features (``d1``, ``d2``, eqs. 13-14) of the first
    ``n_features`` training and coding images of each domain."""
    dev, spec = core.device(p.device), train_spec(p)
    if p.n_features > p.n_train + p.k:
        raise ValueError(f"n_features={p.n_features} exceeds the {p.n_train + p.k} training and coding "
                         "images of a domain; n_features accepts at most n_train + k")
    splits = {d: task_split(d, p.n_train, p.k, 10, p.seed)[0] for d in p.domains}
    make = factory(p.arch, (1, 28, 28), 10, p.width)
    init = {k: v.clone() for k, v in mdl.fresh(make, None, p.seed).state_dict().items()}
    trained = {d: mdl.fit(mdl.fresh(make, init, p.seed), *splits[d][0], spec, p.seed, dev).state_dict()
               for d in p.domains}
    code = lambda state, d: mdl.prequential_codelength(make, *splits[d][1], 10, init_state=state, first_block="model",
                                                       spec=spec, seed=p.seed, device=dev, desc=f"code {d}").total_bits
    from_init = {d: code(init, d) for d in p.domains}
    feats = {d: _features(np.concatenate([splits[d][0][0], splits[d][1][0]])[:p.n_features], dev)
             for d in p.domains}
    records = []
    for a in p.domains:
        for b in p.domains:
            fa, fb = feats[a], feats[b]
            records.append({"source": a, "target": b, "L": from_init[b] - code(trained[a], b),
                            "d1": float(np.linalg.norm(fa.mean(0) - fb.mean(0))),
                            "d2": float(np.linalg.norm(np.cov(fa.T) - np.cov(fb.T)))})
    return RunResult(records, {"from_init": from_init})


def resnet_components(model: torch.nn.Module) -> dict[str, dict[str, list[str]]]:
    """Parameter names of a :func:`studylib.nets.small_resnet` grouped by block (stem, block0.., fc) and by kind
    of layer (first and second 3x3 convolution of the blocks, 1x1 shortcut convolutions, batch norms)."""
    names = [n for n, _ in model.named_parameters()]
    block_ids = sorted({int(n.split(".")[0]) for n in names if ".body." in n or ".skip." in n})
    by_block = {"stem": [n for n in names if int(n.split(".")[0]) < block_ids[0]]}
    by_block.update({f"block{i}": [n for n in names if int(n.split(".")[0]) == b] for i, b in enumerate(block_ids)})
    by_block["fc"] = [n for n in names if int(n.split(".")[0]) > block_ids[-1]]
    kinds = {"conv3x3 (first)": r"\.body\.0\.", "conv3x3 (second)": r"\.body\.3\.", "conv1x1 (shortcut)": r"\.skip\.0\.",
             "batch norm (blocks)": r"\.(body\.[14]|skip\.1)\."}
    by_kind = {k: [n for n in names if re.search(rx, n)] for k, rx in kinds.items()}
    return {"block": by_block, "kind": {k: v for k, v in by_kind.items() if v}}


def ablation_run(p: AblationParams) -> RunResult:
    """Seed 003 §6: information ablation (:func:`studylib.metrics.mdl.information_ablation`) of a small ResNet trained
    on the task, by block and by kind of layer, and of all its parameters at once (batch-norm running statistics stay
    trained, in the "all" row too)."""
    dev, spec = core.device(p.device), train_spec(p)
    (train, code, test), K = task_split(p.task, p.n_train, p.k, p.n_test, p.seed)
    make = factory("resnet", train[0].shape[1:], K, p.width)
    init = {k: v.clone() for k, v in mdl.fresh(make, None, p.seed).state_dict().items()}
    model = mdl.fit(mdl.fresh(make, init, p.seed), *train, spec, p.seed, dev)
    final = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    components = [(grouping, comp, names) for grouping, comps in resnet_components(model).items()
                  for comp, names in comps.items()]
    components.append(("all", "all", [n for n, _ in model.named_parameters()]))
    ablation = mdl.information_ablation(make, *code, K, init, final, {comp: names for _, comp, names in components},
                                        spec, p.seed, dev)
    records = [{"grouping": grouping, "component": comp, "n_params": sum(final[n].numel() for n in names),
                "I": ablation["I"][comp]} for grouping, comp, names in components]
    return RunResult(records, {"acc": _evaluate(model, test, dev)["acc"], "codelength_final": ablation["codelength_final"]})


def distillation_run(p: DistillationParams) -> RunResult:
    """Seed 003 §7: synced distillation. ``I = L(student alone) - L(student taught)`` on the same examples, for each
    (teacher width, alpha), and, as the positive control, for a "privileged" teacher of the widest width that is also
    trained on ``pool`` further labelled examples (disjoint from the coded ones) at every alpha; the test accuracies
    of each teacher and of a conventionally distilled student."""
    dev, spec = core.device(p.device), train_spec(p)
    (train, pool, test), K = task_split(p.task, p.n_train, p.pool, p.n_test, p.seed)
    student = factory("mlp", train[0].shape[1:], K, p.student_width)
    alone = mdl.prequential_codelength(student, *train, K, spec=spec, seed=p.seed, device=dev, desc="student alone")
    acc_alone = _evaluate(mdl.fit(mdl.fresh(student, None, p.seed), *train, spec, p.seed, dev), test, dev)["acc"]
    widest = p.teacher_widths[-1]
    settings = ([("teacher", w, p.alpha) for w in p.teacher_widths] + [("alpha", widest, a) for a in p.alphas]
                + [("privileged", widest, a) for a in p.alphas])
    teachers, done = {}, {}
    records = [{"sweep": "teacher", "teacher_width": None, "alpha": 0.0, "teacher_acc": np.nan, "student_acc": acc_alone,
                "I": 0.0}]
    for sweep, width, alpha in settings:
        privileged = sweep == "privileged"
        if (width, privileged) not in teachers:
            teachers[width, privileged] = _teacher(p, train, pool if privileged else None, test, K, width)
        if (width, privileged, alpha) not in done:
            done[width, privileged, alpha] = _distilled(p, train, test, K, student, teachers[width, privileged], alpha,
                                                        alone.total_bits, acc_alone)
        records.append({"sweep": sweep, "teacher_width": width, "alpha": alpha,
                        "teacher_acc": teachers[width, privileged]["acc"], **done[width, privileged, alpha]})
    return RunResult(records, {"codelength_alone": alone.total_bits})


def _teacher(p: DistillationParams, train, pool, test, K, width) -> dict:
    """A teacher of ``width``: its synced logits for the code of ``train`` (trained on the examples sent so far and
    ``pool``), its logits on ``train`` when trained on all of it (and ``pool``), and its test accuracy."""
    dev, spec = core.device(p.device), train_spec(p)
    make = factory("mlp", train[0].shape[1:], K, width)
    synced = mdl.synced_teacher_logits(make, *train, spec=spec, seed=p.seed, device=dev, pool=pool)
    x, y = train if pool is None else (np.concatenate([train[0], pool[0]]), np.concatenate([train[1], pool[1]]))
    full = mdl.fit(mdl.fresh(make, None, p.seed + 1), x, y, spec, p.seed + 1, dev)
    return {"synced": synced, "logits": mdl.predict(full, train[0], dev), "acc": _evaluate(full, test, dev)["acc"]}


def _distilled(p: DistillationParams, train, test, K, student, teacher, alpha, bits_alone, acc_alone) -> dict:
    """One synced-distillation code of the training examples with ``teacher``'s logits, and a conventionally distilled
    student; at alpha = 0 the loss ignores the teacher, so both are the student alone (checked in tests/test_mdl.py)."""
    if alpha == 0:
        return {"student_acc": acc_alone, "I": 0.0}
    dev, spec = core.device(p.device), train_spec(p)
    rule = dict(alpha=alpha, temperature=p.temperature, t_squared=p.t_squared)
    taught = mdl.prequential_codelength(student, *train, K, spec=spec, seed=p.seed, device=dev,
                                        distill=mdl.Distillation(teacher["synced"], **rule), desc=f"alpha {alpha}")
    s = mdl.fit(mdl.fresh(student, None, p.seed), *train, spec, p.seed, dev, soft_targets=teacher["logits"],
                distill=mdl.Distillation([teacher["logits"]], **rule))
    return {"student_acc": _evaluate(s, test, dev)["acc"], "I": bits_alone - taught.total_bits}
