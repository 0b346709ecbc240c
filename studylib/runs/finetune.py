"""Fine-tuning runs: encoders fine-tuned on the text stand-ins, with IIW and accuracy recorded at every epoch.

Used by the IIW chapters (through :mod:`studylib.studies.iiw`). The recipe follows seed 000, scaled by
the profiles: Adam, a linear warm-up over the first 10% of the steps then a linear decay, batch 32, the
training split divided 9:1 into train and dev, the held-out split as test; ``method="lpft"`` (Kumar et
al. 2022, as the seed runs it) trains only the head in the first epoch, then everything.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import core, data, nets, training
from ..metrics import iiw
from ..platform.cache import RunResult
from ..platform.progress import progress


def encode(tok, x: np.ndarray, max_len: int) -> dict[str, torch.Tensor]:
    """Token ids, attention mask and segment ids for texts ``(N,)`` or text pairs ``(N, 2)``."""
    if x.ndim == 2:
        enc = tok(list(x[:, 0]), list(x[:, 1]), padding="max_length", truncation=True, max_length=max_len,
                  return_tensors="pt")
    else:
        enc = tok(list(x), padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def batches(enc: dict, y: np.ndarray, batch_size: int, order=None) -> list[dict]:
    """Model-ready batches (with ``labels``) in the given order (default: as stored)."""
    idx = torch.arange(len(y)) if order is None else torch.as_tensor(order)
    labels = torch.as_tensor(y)
    return [{**{k: v[i] for k, v in enc.items()}, "labels": labels[i]} for i in idx.split(batch_size)]


def build_model(name: str, pretrained: bool, num_labels: int, seed: int) -> nn.Module:
    """``minilm_l6`` or ``minilm_l3`` with a classification head (``pretrained=False``: the random twin)."""
    if name == "minilm_l6":
        return nets.minilm_l6(pretrained=pretrained, num_labels=num_labels, seed=seed)
    if name == "minilm_l3":
        return nets.minilm_l3(num_labels=num_labels, seed=seed, pretrained=pretrained)
    raise ValueError(f"model must be 'minilm_l6' or 'minilm_l3', got {name!r}")


@dataclass
class Prepared:
    """A run's data, tokenised and split: dataset, encodings, train indices, and ready batches."""
    ds: data.Dataset
    enc_train: dict
    train_idx: np.ndarray
    dev_batches: list[dict]
    test_batches: list[dict]
    iiw_batches: list[dict]


def prepare(p: dict) -> Prepared:
    """Load, tokenise and split a fine-tuning run's task: the training set 9:1 into train and dev (seeded
    by ``p["seed"]``), the held-out split as test, and the first ``p["n_iiw"]`` training examples for IIW.
    Used by :func:`finetune_run` and by the Taylor-error chapter (the same examples IIW was measured on)."""
    ds = data.load(p["task"], seed=p["seed"], n_train=p["n_train"], n_test=p["n_test"])
    perm = np.random.default_rng(p["seed"]).permutation(len(ds.y_train))
    cut = int(round(0.9 * len(perm)))
    tok = nets.tokenizer()
    enc_train = encode(tok, ds.x_train, p["max_len"])
    train_idx, dev_idx = perm[:cut], perm[cut:]
    iiw_idx = train_idx[: p["n_iiw"]]
    return Prepared(ds, enc_train, train_idx,
                    dev_batches=batches(select(enc_train, dev_idx), ds.y_train[dev_idx], 64),
                    test_batches=batches(encode(tok, ds.x_test, p["max_len"]), ds.y_test, 64),
                    iiw_batches=batches(select(enc_train, iiw_idx), ds.y_train[iiw_idx], 16))


def select(enc: dict, idx) -> dict:
    """The rows ``idx`` of every tensor of an encoding."""
    return {k: v[idx] for k, v in enc.items()}


def finetune_run(p: dict) -> RunResult:
    """A cacheable fine-tuning run with IIW and accuracies at epoch 0 and after each epoch.

    ``p`` keys: model, pretrained, task, n_train, n_test, n_iiw, max_len, epochs, lr, batch_size, method
    ("ft" or "lpft"), estimators (a list of :data:`studylib.metrics.iiw.ESTIMATORS`), seed, device, keep_weights.
    Records hold ``iiw_<estimator>_<group>`` for every estimator and group, and ``..._total``.
    """
    dev = core.device(p["device"])
    prep = prepare(p)
    ds, enc_all, train_idx = prep.ds, prep.enc_train, prep.train_idx
    dev_batches, test_batches = prep.dev_batches, prep.test_batches

    model = build_model(p["model"], p["pretrained"], ds.num_classes, p["seed"]).to(dev)
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    steps_per_epoch = int(np.ceil(len(train_idx) / p["batch_size"]))
    total_steps = steps_per_epoch * p["epochs"]
    warmup = max(1, int(0.1 * total_steps))
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    head = {n for n in theta0 if iiw.bert_groups(n) == "fc"}
    gen = torch.Generator().manual_seed(p["seed"])

    iiw_on_device = [core.to_device(b, dev) for b in prep.iiw_batches]

    def record(epoch):
        rec = {"epoch": epoch, "dev_acc": training.evaluate(model, dev_batches, dev)["acc"],
               "test_acc": training.evaluate(model, test_batches, dev)["acc"]}
        for est in p["estimators"]:
            rec.update({f"iiw_{est}_{k}": v for k, v in iiw.iiw(model, theta0, iiw_on_device, est, seed=p["seed"]).items()})
        return rec

    records = [record(0)]
    for epoch in progress(range(1, p["epochs"] + 1), total=p["epochs"], desc=f"fine-tuning {p['model']} on {p['task']}"):
        head_only = p["method"] == "lpft" and epoch == 1
        for n, q in model.named_parameters():
            q.requires_grad_(not head_only or n in head)
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        for b in batches(select(enc_all, order), ds.y_train[order], p["batch_size"]):
            b = core.to_device(b, dev)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(core.logits(model, b), b["labels"])
            loss.backward()
            opt.step()
            sched.step()
        for q in model.parameters():
            q.requires_grad_(True)
        records.append(record(epoch))
    best = max(records[1:], key=lambda r: r["dev_acc"])
    metrics = {"final_test_acc": records[-1]["test_acc"], "best_dev_epoch": best["epoch"],
               "best_dev_test_acc": best["test_acc"],
               **{f"final_iiw_{est}_total": records[-1][f"iiw_{est}_total"] for est in p["estimators"]}}
    weights = {k: v.cpu() for k, v in model.state_dict().items()} if p.get("keep_weights") else None
    return RunResult(records, metrics, weights)

