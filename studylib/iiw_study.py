"""The fine-tuning grid of the IIW chapters, and the paper's published figures to set beside ours.

Used by the chapter "IIW of pre-trained vs randomly initialised models" (and, for its runs, by the
fine-tuning chapter).
"""
from __future__ import annotations

import pandas as pd

from . import cache
from .claims import ClaimsTable
from .executor import run_grid
from .finetune import FINETUNE_DEPS, finetune_run

#: seed 000, Table 1: IIW (the PAC-Bayes IB code) and test accuracy after fine-tuning, pre-trained vs random,
#: BERT / RoBERTa / ELECTRA base on GLUE (dev sets as test sets).
PAPER_TABLE1 = pd.DataFrame([
    (t, m, init, iiw_v, acc)
    for t, rows in {
        "RTE": [(2.54e-3, .6751, .0185, .5162), (5.37e-4, .7581, .0059, .4729), (2.03e-3, .7870, .0186, .4801)],
        "MRPC": [(1.50e-4, .8162, .4143, .6838), (1.53e-4, .8922, .0145, .6667), (5.31e-4, .8873, .0204, .6667)],
        "MNLI-m": [(7.10e-9, .8358, 1.39e-6, .6655), (4.00e-9, .8620, 1.63e-6, .6234), (4.65e-9, .8744, 2.01e-6, .6564)],
        "MNLI-mm": [(3.53e-9, .8361, 1.39e-6, .6694), (4.00e-9, .8621, 1.63e-6, .6276), (4.65e-9, .8764, 2.02e-6, .6585)],
        "QNLI": [(3.43e-9, .9107, 3.44e-5, .5843), (1.48e-8, .9196, 3.03e-5, .5779), (3.21e-8, .9218, 2.06e-5, .5740)],
        "QQP": [(1.49e-9, .9094, 1.87e-9, .6982), (2.11e-9, .9107, 3.60e-9, .6318), (4.61e-9, .9204, 7.97e-7, .7997)],
        "SST-2": [(9.60e-9, .9197, 1.83e-6, .7936), (6.92e-8, .9346, 7.05e-6, .8028), (7.37e-8, .9392, 4.02e-6, .8085)],
    }.items()
    for m, (iiw_p, acc_p, iiw_r, acc_r) in zip(("BERT", "RoBERTa", "ELECTRA"), rows)
    for init, iiw_v, acc in (("pre-trained", iiw_p, acc_p), ("random", iiw_r, acc_r))
], columns=["task", "model", "init", "iiw", "test_acc"])


def run_task(**p) -> dict:
    """A grid task: one cached fine-tuning run; returns its parameters, metrics and per-epoch records."""
    run = cache.cached_run("finetune", p, finetune_run, deps=FINETUNE_DEPS)
    return {**p, **run.metrics, "records": run.records, "from_cache": run.from_cache}


def pretrain_grid(models_, tasks, settings: dict, workers=None) -> pd.DataFrame:
    """Every (model, pre-trained or random, task) fine-tuning run, through the grid executor."""
    tasks_ = [{"model": m, "pretrained": pre, "task": t, **settings} for m in models_ for t in tasks
              for pre in (True, False)]
    return pd.DataFrame(run_grid(run_task, tasks_, workers=workers, desc="fine-tuning grid"))


def final_layerwise(runs: pd.DataFrame, estimator: str) -> pd.DataFrame:
    """Per run, the IIW of every group after the last epoch (long format)."""
    rows = []
    for _, r in runs.iterrows():
        last = r.records[-1]
        prefix = f"iiw_{estimator}_"
        for key, value in last.items():
            if key.startswith(prefix) and key != f"{prefix}total":
                rows.append({"model": r.model, "task": r.task, "init": "pre-trained" if r.pretrained else "random",
                             "group": key[len(prefix):], "iiw": value})
    return pd.DataFrame(rows)


def claims_table(runs: pd.DataFrame, layerwise: pd.DataFrame, estimator: str) -> pd.DataFrame:
    """Seed 000's claims about pre-trained vs random models, with the evidence computed here."""
    out = ClaimsTable()
    total = f"final_iiw_{estimator}_total"
    pairs = runs.pivot_table(index=["model", "task"], columns="pretrained", values=[total, "final_test_acc"])
    lower = int((pairs[(total, True)] < pairs[(total, False)]).sum())
    better = int((pairs[("final_test_acc", True)] > pairs[("final_test_acc", False)]).sum())
    n = len(pairs)
    out.add("Pre-trained models have lower IIW than randomly initialised ones", "000 §3.2, Table 1",
            f"lower IIW in {lower} of {n} (model, task) pairs", lower == n, lower > n / 2)
    out.add("Pre-trained models reach higher test accuracy", "000 §3.2, Table 1",
            f"higher accuracy in {better} of {n} pairs", better == n, better > n / 2)
    wide = layerwise.pivot_table(index=["model", "task", "init"], columns="group", values="iiw")
    layers = [c for c in wide.columns if c.startswith("layer_")]
    pre, rnd = wide.xs("pre-trained", level="init"), wide.xs("random", level="init")
    fc_top = int((pre["fc"] >= pre.drop(columns="fc").max(axis=1)).sum())
    out.add("In pre-trained models the head (fc) has the highest IIW of all groups", "000 §3.2, Fig. 1",
            f"fc highest in {fc_top} of {len(pre)} pre-trained runs", fc_top == len(pre), fc_top > len(pre) / 2)
    emb_hi = int((rnd["embedding"] > rnd[layers].median(axis=1)).sum())
    out.add("In random models the embedding IIW is high (above the median layer)", "000 §3.2, Fig. 1",
            f"in {emb_hi} of {len(rnd)} random runs", emb_hi == len(rnd), emb_hi > len(rnd) / 2)
    emb_l0 = int((pre["embedding"] > pre["layer_0"]).sum())
    out.add("In pre-trained models the embedding IIW exceeds layer 0's", "000 §3.2",
            f"in {emb_l0} of {len(pre)} pre-trained runs", emb_l0 == len(pre), emb_l0 > len(pre) / 2)
    return out.frame()
