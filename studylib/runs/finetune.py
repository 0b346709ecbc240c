"""Fine-tuning runs: encoders fine-tuned on the text stand-ins, with IIW and accuracy recorded at every epoch.

Used by the IIW chapters (through :mod:`studylib.studies.iiw_grid`). The recipe follows seed 000, scaled by
the profiles: Adam, a linear warm-up over the first 10% of the steps then a linear decay, batch 32, the
training split divided 9:1 into train and dev, the held-out split as test; ``method="lpft"`` (Kumar et
al. 2022, as the seed runs it) trains only the classifier in the first epoch, then everything.

IIW is measured against several reference weights theta_0 (:data:`REFERENCES`), all on the same trained model:

- ``"init"``: the weights fine-tuning started from;
- ``"prior_same"``: the PIB code's prior (``train_prior``: the same architecture trained on the dev split,
  :data:`PRIOR_RECIPE`) grown from the same initialisation the model then starts from;
- ``"prior_fresh"``: that prior grown from an independent initialisation (seed + :data:`FRESH_SEED_OFFSET`), as
  the PIB code's re-initialisation (``_initialize_weights()``) after the prior does. A pre-trained model's
  prior and model then share the pre-trained body and differ in the classifier's draw; a random twin's differ
  everywhere.

A run's start, its priors and its epoch-0 record, is cached apart (:func:`start_of`) and shared by the runs that
differ only in how they fine-tune (:data:`TRAINING_ONLY`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

from .. import core, data, nets, training
from ..metrics import iiw
from ..platform.cache import RunResult, cached_run


def encode(tok, x: np.ndarray, max_len: int) -> dict[str, torch.Tensor]:
    """Token ids, attention mask and segment ids for texts ``(N,)`` or text pairs ``(N, 2)``."""
    if x.ndim == 2:
        enc = tok(list(x[:, 0]), list(x[:, 1]), padding="max_length", truncation=True, max_length=max_len,
                  return_tensors="pt")
    else:
        enc = tok(list(x), padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def batches(enc: dict, y: np.ndarray, batch_size: int, order=None, trim: bool = True) -> list[dict]:
    """Model-ready batches (with ``labels``) in the given order (default: as stored). ``trim``: each batch cut to
    its longest example (dynamic padding; the attention mask hides padding, so the logits do not change)."""
    idx = torch.arange(len(y)) if order is None else torch.as_tensor(order)
    labels = torch.as_tensor(y)
    out = []
    for i in idx.split(batch_size):
        b = {k: v[i] for k, v in enc.items()}
        out.append({**(core.trim_padding(b) if trim else b), "labels": labels[i]})
    return out


def build_model(name: str, pretrained: bool, num_labels: int, seed: int, norm_matched: bool = False) -> nn.Module:
    """``minilm_l6`` or ``minilm_l3`` with a classification head (``pretrained=False``: the random twin).

    ``norm_matched`` (random twins only): every tensor of the random twin rescaled to the pre-trained model's
    norm of that tensor (tensors that start at zero, the biases, stay zero): random directions at the
    pre-trained scale, which separates "pre-trained" from "larger weights" in the pre-trained vs random chapter.
    """
    builders = {"minilm_l6": lambda pre: nets.minilm_l6(pretrained=pre, num_labels=num_labels, seed=seed),
                "minilm_l3": lambda pre: nets.minilm_l3(num_labels=num_labels, seed=seed, pretrained=pre)}
    if name not in builders:
        raise ValueError(f"model must be 'minilm_l6' or 'minilm_l3', got {name!r}")
    if norm_matched and pretrained:
        raise ValueError("norm_matched applies to random twins only (pretrained=False)")
    model = builders[name](pretrained)
    if norm_matched:
        scale = {k: v.norm() for k, v in builders[name](True).named_parameters()}
        with torch.no_grad():
            for k, v in model.named_parameters():
                if v.norm() > 0:
                    v.mul_(scale[k] / v.norm())
    return model


@dataclass
class Prepared:
    """A run's data, tokenised and split: dataset, encodings, train indices, and ready batches (``pib_batches``:
    the whole train split, untrimmed, which the PIB estimators draw from; ``iiw_batches``: the Fisher
    estimators' examples)."""
    ds: data.Dataset
    enc_train: dict
    train_idx: np.ndarray
    dev_idx: np.ndarray
    dev_batches: list[dict]
    test_batches: list[dict]
    iiw_batches: list[dict]
    pib_batches: list[dict]


def prepare(p: StartParams) -> Prepared:
    """Load, tokenise and split a fine-tuning run's task: the training set 9:1 into train and dev (seeded
    by ``p.seed``), the held-out split as test, the first ``p.n_iiw`` training examples for the Fisher
    estimators and the whole train split for the PIB ones.
    Used by :func:`finetune_run` and by the Taylor-error chapter (the same examples IIW was measured on)."""
    ds = data.load(p.task, seed=p.seed, n_train=p.n_train, n_test=p.n_test)
    perm = np.random.default_rng(p.seed).permutation(len(ds.y_train))
    cut = int(round(0.9 * len(perm)))
    tok = nets.tokenizer()
    enc_train = encode(tok, ds.x_train, p.max_len)
    train_idx, dev_idx = perm[:cut], perm[cut:]
    iiw_idx = train_idx[: p.n_iiw]
    return Prepared(ds, enc_train, train_idx, dev_idx,
                    dev_batches=batches(select(enc_train, dev_idx), ds.y_train[dev_idx], 64),
                    test_batches=batches(encode(tok, ds.x_test, p.max_len), ds.y_test, 64),
                    iiw_batches=batches(select(enc_train, iiw_idx), ds.y_train[iiw_idx], 16),
                    pib_batches=batches(select(enc_train, train_idx), ds.y_train[train_idx], len(train_idx),
                                        trim=False))


def select(enc: dict, idx) -> dict:
    """The rows ``idx`` of every tensor of an encoding."""
    return {k: v[idx] for k, v in enc.items()}


#: the PIB code's prior (``train_prior``): the dev split, 10 epochs of Adam at 1e-3 with weight decay 1e-5
PRIOR_RECIPE = {"epochs": 10, "lr": 1e-3, "weight_decay": 1e-5}
#: the reference weights IIW is measured against (module docstring)
REFERENCES = ("init", "prior_same", "prior_fresh")
#: the seed offset of the independent initialisation behind ``"prior_fresh"``
FRESH_SEED_OFFSET = 10_000


def iiw_key(estimator: str, reference: str, group: str) -> str:
    """The record key of one IIW value: ``iiw_<estimator>_<reference>_<group>`` (group ``total`` for the total)."""
    return f"iiw_{estimator}_{reference}_{group}"


def train_prior(p: StartParams, prep: Prepared, init_seed: int, dev) -> dict[str, torch.Tensor]:
    """The PIB prior: ``p``'s architecture, initialised with ``init_seed``, trained on the dev split by
    :data:`PRIOR_RECIPE` (batches of ``p.batch_size``, reshuffled every epoch); its weights."""
    model = build_model(p.model, p.pretrained, prep.ds.num_classes, init_seed, p.norm_matched).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=PRIOR_RECIPE["lr"], weight_decay=PRIOR_RECIPE["weight_decay"],
                           fused=True)
    gen = torch.Generator().manual_seed(init_seed)

    def epoch_batches(epoch):
        order = prep.dev_idx[torch.randperm(len(prep.dev_idx), generator=gen).numpy()]
        return batches(select(prep.enc_train, order), prep.ds.y_train[order], p.batch_size)

    training.fit(model, opt, PRIOR_RECIPE["epochs"], epoch_batches, lambda m, b: _batch_loss(m, b, dev))
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _batch_loss(model: nn.Module, batch: dict, dev) -> tuple[torch.Tensor, int]:
    """Cross-entropy of one encoded batch (moved to ``dev``) and its number of examples."""
    batch = core.to_device(batch, dev)
    return nn.functional.cross_entropy(core.logits(model, batch), batch["labels"]), len(batch["labels"])


def priors(p: StartParams, prep: Prepared, dev) -> dict[str, dict[str, torch.Tensor]]:
    """The PIB priors among ``p.references`` (:data:`REFERENCES`; ``"init"`` needs none), by name."""
    seeds = {"prior_same": p.seed, "prior_fresh": p.seed + FRESH_SEED_OFFSET}
    return {ref: train_prior(p, prep, seeds[ref], dev) for ref in p.references if ref != "init"}


def geometry_key(estimator: str, reference: str, quantity: str) -> str:
    """The record key of one factor of a PIB estimate (:data:`studylib.metrics.iiw.GEOMETRY`):
    ``geom_<estimator>_<reference>_<quantity>``."""
    return f"geom_{estimator}_{reference}_{quantity}"


def measure_iiw(model: nn.Module, refs: dict, examples: dict, p: StartParams, pib_seeds: int) -> dict[str, float]:
    """Every estimator of ``p.estimators`` against every reference: the Fisher estimators on the IIW examples,
    the PIB ones on the whole train split with the run's batch size, ``"pib"`` averaged over ``pib_seeds``
    gradient-sampling seeds (each seed's total also recorded, as ``..._total_s<k>``); the PIB estimators' factors
    ||delta||, ||g|| and cos(delta, g) as :func:`geometry_key` values (averaged over the same seeds)."""
    rec = {}
    for est in p.estimators:
        pib = est.startswith("pib")
        sampling = range(pib_seeds) if est == "pib" else [0]
        draws = [iiw.iiw_references(model, refs, examples["pib" if pib else "fisher"], est,
                                    seed=1000 * p.seed + k, batch_size=p.batch_size, geometry=pib)
                 for k in sampling]
        for ref in refs:
            for name in draws[0][ref]:
                key = geometry_key(est, ref, name) if name in iiw.GEOMETRY else iiw_key(est, ref, name)
                rec[key] = float(np.mean([d[ref][name] for d in draws]))
            if est == "pib":
                rec.update({iiw_key(est, ref, f"total_s{k}"): d[ref]["total"] for k, d in enumerate(draws)})
    return rec


#: the run parameters only the fine-tuning after epoch 0 uses; a run's start depends on the others
@dataclass(frozen=True)
class StartParams:
    """The parameters of a fine-tuning run's start (:func:`start_run`, its cache key): the encoder (``model``,
    ``pretrained``, ``norm_matched``: :func:`build_model`), the ``task`` and its sizes (``n_train`` split 9:1 into
    train and dev, ``n_test``, ``n_iiw`` examples for the Fisher estimators, ``max_len`` tokens), ``batch_size``,
    the IIW ``estimators`` (:data:`studylib.metrics.iiw.ESTIMATORS`) against the ``references``
    (:data:`REFERENCES`), the ``pib_seeds`` the ``"pib"`` estimator averages over, ``seed`` and ``device``."""
    model: str
    pretrained: bool
    task: str
    n_train: int | None = 1000
    n_test: int = 300
    n_iiw: int = 64
    max_len: int = 48
    batch_size: int = 32
    estimators: list[str] = field(default_factory=lambda: ["pib", "fisher"])
    references: list[str] = field(default_factory=lambda: list(REFERENCES))
    pib_seeds: int = 3
    norm_matched: bool = False
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        unknown = set(self.references) - set(REFERENCES)
        if unknown:
            raise ValueError(f"references must be among {REFERENCES}, got {sorted(unknown)}")


@dataclass(frozen=True)
class FinetuneParams(StartParams):
    """The parameters of a fine-tuning run (:func:`finetune_run`, its cache key): its start's
    (:class:`StartParams`) and how it fine-tunes: ``epochs`` at peak learning rate ``lr``, ``method`` ``"ft"`` or
    ``"lpft"``, and whether the final weights are kept (``keep_weights``)."""
    epochs: int = 3
    lr: float = 1e-4
    method: str = "ft"
    keep_weights: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.method not in ("ft", "lpft"):
            raise ValueError(f"method={self.method!r}; method accepts 'ft' or 'lpft'")

    def start(self) -> StartParams:
        """The parameters of this run's start: all but :data:`TRAINING_ONLY`."""
        return StartParams(**{f.name: getattr(self, f.name) for f in fields(StartParams)})


#: the parameters of a fine-tuning run that its start does not depend on
TRAINING_ONLY = tuple(f.name for f in fields(FinetuneParams) if f.name not in {g.name for g in fields(StartParams)})


def _record(model: nn.Module, prep: Prepared, refs: dict, examples: dict, p: StartParams, epoch: int, train_loss,
            pib_seeds: int, dev) -> dict:
    """One per-epoch record: the epoch's training loss, dev and test accuracy, and :func:`measure_iiw`."""
    return {"epoch": epoch, "train_loss": train_loss,
            "dev_acc": training.evaluate(model, prep.dev_batches, dev)["acc"],
            "test_acc": training.evaluate(model, prep.test_batches, dev)["acc"],
            **measure_iiw(model, refs, examples, p, pib_seeds)}


def _setup(p: StartParams, dev) -> tuple[Prepared, nn.Module, dict]:
    """A run's data, its model at the start, and the examples the IIW estimators use (on ``dev``)."""
    prep = prepare(p)
    model = build_model(p.model, p.pretrained, prep.ds.num_classes, p.seed, p.norm_matched).to(dev)
    examples = {"fisher": [core.to_device(b, dev) for b in prep.iiw_batches],
                "pib": [core.to_device(b, dev) for b in prep.pib_batches]}
    return prep, model, examples


def _references(p: StartParams, model: nn.Module, prior_weights: dict) -> dict[str, dict[str, torch.Tensor]]:
    """The weights of every reference of ``p.references``: the model's own (``"init"``) or a prior's."""
    return {ref: {k: v.detach().clone() for k, v in model.named_parameters()} if ref == "init"
            else prior_weights[ref] for ref in p.references}


def start_run(p: StartParams) -> RunResult:
    """The start of a fine-tuning run: its PIB priors (weights ``<reference>/<tensor>``) and its epoch-0 record,
    before any training. ``p``: :func:`finetune_run`'s parameters without :data:`TRAINING_ONLY`. Cached apart
    (:func:`start_of`), so that runs that differ only in those (FT and LP-FT, the learning-rate experiment of
    the pre-trained vs random chapter) share their priors and epoch-0 record."""
    dev = core.device(p.device)
    prep, model, examples = _setup(p, dev)
    prior_weights = priors(p, prep, dev)
    refs = _references(p, model, prior_weights)
    record = _record(model, prep, refs, examples, p, 0, None, p.pib_seeds, dev)
    return RunResult([record], {}, {f"{ref}/{k}": v.cpu() for ref, w in prior_weights.items() for k, v in w.items()})


def start_of(p: FinetuneParams, dev) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
    """The cached :func:`start_run` of a fine-tuning run ``p``: its epoch-0 record and its priors, by reference."""
    start = cached_run("finetune_start", p.start(), start_run)
    weights = start.weights(dev)
    by_ref: dict[str, dict[str, torch.Tensor]] = {}
    for name, v in weights.items():
        ref, tensor = name.split("/", 1)
        by_ref.setdefault(ref, {})[tensor] = v
    return start.records[0], by_ref


def finetune_run(p: FinetuneParams) -> RunResult:
    """A cacheable fine-tuning run with IIW and accuracies at epoch 0 and after each epoch.

    ``p`` keys: model, pretrained, task, n_train, n_test, n_iiw, max_len, epochs, lr, batch_size, method
    ("ft" or "lpft"), estimators (a list of :data:`studylib.metrics.iiw.ESTIMATORS`), references (a list of
    :data:`REFERENCES`), pib_seeds, norm_matched (:func:`build_model`), seed, device, keep_weights. Records hold
    :func:`iiw_key` values for every estimator, reference and group (and the total), :func:`geometry_key` values,
    the training loss of the epoch, and dev and test accuracy. ``"pib"`` is averaged over ``pib_seeds``
    gradient-sampling seeds at epoch 0 and at the last epoch, the comparisons' epochs, and read with one seed
    in between (the per-epoch curves, whose spread comes from the training seeds). The priors and the epoch-0
    record come from the run's cached start (:func:`start_of`).
    """
    dev = core.device(p.device)
    record0, prior_weights = start_of(p, dev)
    prep, model, examples = _setup(p, dev)
    ds, enc_all, train_idx = prep.ds, prep.enc_train, prep.train_idx
    refs = _references(p, model, prior_weights)
    steps_per_epoch = int(np.ceil(len(train_idx) / p.batch_size))
    total_steps = steps_per_epoch * p.epochs
    warmup = max(1, int(0.1 * total_steps))
    opt = torch.optim.Adam(model.parameters(), lr=p.lr, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    head = {n for n, _ in model.named_parameters() if iiw.bert_groups(n) == "classifier"}
    gen = torch.Generator().manual_seed(p.seed)

    records = [record0]
    torch.manual_seed(p.seed)  # dropout's draws do not depend on which priors were trained

    def epoch_batches(epoch):
        order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        return batches(select(enc_all, order), ds.y_train[order], p.batch_size)

    def head_only_first(epoch):  # LP-FT: the first epoch trains the head alone
        head_only = p.method == "lpft" and epoch == 1
        for n, q in model.named_parameters():
            q.requires_grad_(not head_only or n in head)

    def record(epoch, steps, mean_loss):
        for q in model.parameters():
            q.requires_grad_(True)
        endpoint = epoch == p.epochs  # the comparisons' epoch gets every sampling seed
        records.append(_record(model, prep, refs, examples, p, epoch, mean_loss, p.pib_seeds if endpoint else 1, dev))

    training.fit(model, opt, p.epochs, epoch_batches, lambda m, b: _batch_loss(m, b, dev), scheduler=sched,
                 before_round=head_only_first, after_round=record, track_loss=True,
                 desc=f"fine-tuning {p.model} on {p.task}")
    best = max(records[1:], key=lambda r: r["dev_acc"])
    metrics = {"final_test_acc": records[-1]["test_acc"], "best_dev_epoch": best["epoch"],
               "best_dev_test_acc": best["test_acc"], "final_train_loss": records[-1]["train_loss"],
               **{k.replace("iiw_", "final_iiw_", 1): v for k, v in records[-1].items()
                  if k.startswith("iiw_") and k.endswith("_total")}}
    weights = {k: v.cpu() for k, v in model.state_dict().items()} if p.keep_weights else None
    return RunResult(records, metrics, weights)
