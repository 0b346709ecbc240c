"""The fine-tuning grid the three IIW chapters share: its cached runs, the rule that keeps the (model, task) cells
in the paper's regime (both twins learn, pre-training helps), the IIW columns and labels, and the "paper | ours"
tables.

Used by the chapters "IIW of pre-trained vs randomly initialised models" (:mod:`.iiw_pretrained`), "IIW across
fine-tuning epochs" (:mod:`.iiw_finetuning`) and "The Taylor error behind the IIW estimator" (:mod:`.iiw_taylor`),
which share the cached fine-tuning runs (:mod:`studylib.runs.finetune`).
"""
from __future__ import annotations

import functools
import json
import math
from importlib import resources

import numpy as np
import pandas as pd

from .. import claims, stats
from ..claims import interval_text
from ..metrics import iiw as iiw_metric
from ..platform.cache import cached_run
from ..platform.executor import run_grid
from ..runs import finetune


#: our stand-in for each GLUE task of the paper (matched rows in the paper | ours tables)
MATCHED_TASKS = {"SST-2": "rotten_tomatoes", "MRPC": "reuters_pairs", "QQP": "reuters_pairs",
                 "RTE": "topic_claims", "QNLI": "topic_claims"}


#: the IIW chapters' source, as the verdicts page names it
PAPER = "Anonymous (n.d.), IIW of pre-trained language models"


def stand_in(model: str, task: str) -> str:
    """How a page names an experiment's set-up: the encoder, the task and the paper's tasks it stands in for."""
    originals = [glue_task for glue_task, ours in MATCHED_TASKS.items() if ours == task]
    return f"{model} on {task}" + (f" (for {' / '.join(originals)})" if originals else "")


def paper_table(name: str) -> pd.DataFrame:
    """A table transcribed from a paper, by file name (``studylib/studies/paper_tables/<name>.csv``; its first line
    says where it comes from)."""
    with resources.files(__package__).joinpath("paper_tables", f"{name}.csv").open() as f:
        return pd.read_csv(f, comment="#")


def paper_beside_ours(paper: pd.DataFrame, ours: pd.DataFrame, *, paper_column: str, paper_arms: tuple[str, str],
                      our_column: str, our_arms: tuple, estimator: str, reference: str,
                      level: float = 0.95) -> pd.DataFrame:
    """A "paper | ours" table, rows matched by task (:data:`MATCHED_TASKS`), comparing two arms (``first``,
    ``second``): per paper model, log10(IIW first / IIW second) and first's accuracy gain, the arms being values
    of the paper table's ``paper_column`` (``paper_arms``); per encoder of ours, the means over matched (model,
    task, seed) pairs with t intervals of the same quantities, the arms being values of our runs' ``our_column``
    (``our_arms``), and our majority-class rate. Used by the pre-trained vs random and the fine-tuning chapters."""
    (first, second), (our_first, our_second) = paper_arms, our_arms
    wide = paper.pivot_table(index=["task", "model"], columns=paper_column, values=["iiw", "test_acc"])
    ours = ours.join(baselines(ours))
    col = total(estimator, reference)
    rows = {}
    for glue_task, task in MATCHED_TASKS.items():
        row = {}
        for m in ("BERT", "RoBERTa", "ELECTRA"):
            pr = wide.loc[(glue_task, m)]
            row[(f"paper, {m}", "log10 IIW ratio")] = float(np.log10(pr[("iiw", first)] / pr[("iiw", second)]))
            row[(f"paper, {m}", "acc. gain")] = float(pr[("test_acc", first)] - pr[("test_acc", second)])
        for model, d in ours[ours.task == task].groupby("model"):
            w = d.pivot_table(index=PAIR, columns=our_column, values=[col, "final_test_acc"])
            ratio = stats.paired(log_ratio(required_column(w, (col, our_first)),
                                           required_column(w, (col, our_second))) / np.log(10), level=level)
            gain = stats.paired(required_column(w, ("final_test_acc", our_first)),
                                required_column(w, ("final_test_acc", our_second)), level=level)
            row[(f"ours, {model}", "log10 IIW ratio")] = interval_text(ratio.estimate, ratio.low, ratio.high)
            row[(f"ours, {model}", "acc. gain")] = interval_text(gain.estimate, gain.low, gain.high, digits=3)
            row[(f"ours, {model}", "majority rate")] = float(d.majority.mean())
        rows[(glue_task, task)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["paper task", "our stand-in"]
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def cached_finetune(p: dict):
    """The cached fine-tuning run of ``p``; pre-trained FT runs keep their weights, for the Taylor-error
    chapter (so all three IIW chapters share the same cache entries)."""
    p = {**p, "keep_weights": bool(p["pretrained"] and p["method"] == "ft")}
    return p, cached_run("finetune", finetune.FinetuneParams(**p), finetune.finetune_run)


def run_task(**p) -> dict:
    """A grid task: one cached fine-tuning run; returns its parameters, metrics and per-epoch records."""
    p, run = cached_finetune(p)
    return {**p, **run.metrics, "records": run.records, "from_cache": run.from_cache}


def seeds(first: int, repeats: int) -> list[int]:
    """The training seeds of a profile: ``first``, ``first + 1``, ... (``repeats`` of them)."""
    return list(range(first, first + repeats))


#: the initialisations the pre-trained vs random chapter fine-tunes from: page label -> run parameters
INITS = {"pre-trained": {"pretrained": True, "norm_matched": False},
         "random": {"pretrained": False, "norm_matched": False},
         "norm-matched random": {"pretrained": False, "norm_matched": True}}


def run_tasks(tasks_: list[dict], workers) -> list[dict]:
    """:func:`run_task` of every task through the grid executor, results in the tasks' order. The tasks run
    grouped by their training-only parameters (:data:`studylib.runs.finetune.TRAINING_ONLY`), so that two runs
    sharing a start (FT and LP-FT, two learning rates) rarely start side by side: the second would wait for the
    first to compute the shared start (the run cache computes each entry once)."""
    order = sorted(range(len(tasks_)), key=lambda i: json.dumps([tasks_[i].get(k) for k in finetune.TRAINING_ONLY]))
    done = run_grid(run_task, [tasks_[i] for i in order], workers=workers, desc="fine-tuning grid")
    results: list[dict] = [{}] * len(tasks_)
    for i, r in zip(order, done):
        results[i] = r
    return results


def init_labels(runs: pd.DataFrame) -> list[str]:
    """The :data:`INITS` label of every run, read from its ``pretrained`` and ``norm_matched`` parameters."""
    by_params = {(v["pretrained"], v["norm_matched"]): label for label, v in INITS.items()}
    return [by_params[(pre, nm)] for pre, nm in zip(runs.pretrained, runs.norm_matched)]


def total(estimator: str, reference: str) -> str:
    """The metrics column of a run's final IIW total for ``estimator`` against ``reference``."""
    return "final_" + finetune.iiw_key(estimator, reference, "total")


def final_layerwise(runs: pd.DataFrame, estimator: str, reference: str) -> pd.DataFrame:
    """Per run, the IIW of every group after the last epoch against ``reference`` (long format)."""
    prefix = finetune.iiw_key(estimator, reference, "")
    rows = []
    for _, r in runs.iterrows():
        for key, value in r.records[-1].items():
            group = key[len(prefix):]
            if key.startswith(prefix) and not group.startswith("total"):
                rows.append({"model": r.model, "task": r.task, "seed": r.seed, "init": r.init, "group": group,
                             "iiw": value})
    return pd.DataFrame(rows)


def epoch_frame(runs: pd.DataFrame, estimator: str, reference: str, columns=("variant",)) -> pd.DataFrame:
    """One row per (run, epoch): IIW total of ``estimator`` against ``reference``, its factors where recorded
    (PIB estimators), training loss and test accuracy, with the run's (model, task, seed) and ``columns``."""
    key = finetune.iiw_key(estimator, reference, "total")
    factors = {q: finetune.geometry_key(estimator, reference, q) for q in iiw_metric.GEOMETRY}
    rows = []
    for _, r in runs.iterrows():
        for rec in r.records:
            rows.append({**{c: r[c] for c in PAIR + list(columns)}, "epoch": rec["epoch"], "iiw": rec[key],
                         **{q: rec[k] for q, k in factors.items() if k in rec},
                         "train_loss": rec["train_loss"], "test_acc": rec["test_acc"]})
    return pd.DataFrame(rows)


#: the columns that match a pre-trained run with its random twin (or an FT run with its LP-FT one)
PAIR = ["model", "task", "seed"]


#: the unit of the IIW claims: a (model, task) cell, its seeds averaged (seeds of one task share that task)
CELL_UNIT = "(model, task) cells"


def cell_labels(index: pd.Index) -> list[str]:
    """The (model, task) cell of each row of a frame indexed by :data:`PAIR`: the unit its claims average over."""
    return stratum_labels(index.to_frame(index=False), ["model", "task"])


def stratum_labels(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """One stratum label per row, the values of ``columns`` joined by "/"."""
    return ["/".join(map(str, row)) for row in frame[columns].itertuples(index=False)]


def required_column(frame: pd.DataFrame, key) -> pd.Series:
    """``frame[key]``; an empty column only when the frame has no rows (no cell learnt), else KeyError naming
    the columns there are: a misspelt key must not turn into an "inconclusive" verdict."""
    if key in frame.columns:
        return frame[key]
    if len(frame):
        raise KeyError(f"no column {key!r}; the frame has {list(frame.columns)}")
    return pd.Series(dtype=float)


def log_ratio(a, b) -> np.ndarray:
    """log(a / b) per pair; NaN where either is not positive (a zero IIW has no ratio)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a > 0) & (b > 0), np.log(a / b), np.nan)


@functools.lru_cache(maxsize=None)
def _baseline(task: str, seed: int, n_train, n_test) -> tuple[float, float]:
    from .. import data
    ds = data.load(task, seed=seed, n_train=n_train, n_test=n_test)
    return 1 / ds.num_classes, np.bincount(ds.y_test).max() / len(ds.y_test)


def baselines(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run, the two accuracies a model that learnt nothing reaches: ``chance`` (one over the number of classes)
    and ``majority`` (the majority-class rate of its test set), from the run's data split re-read (once per split)."""
    values = [_baseline(r.task, r.seed, r.n_train, r.n_test) for r in runs.itertuples()]
    return pd.DataFrame(values, columns=["chance", "majority"], index=runs.index)


def _lower_end(a: np.ndarray, b: np.ndarray, level: float) -> float:
    """The lower end of the t interval at ``level`` of the mean of a - b; the common value when every difference
    is the same (the interval's limit as the spread goes to 0); NaN below two pairs."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) >= 2 and np.ptp(d) == 0:
        return float(d[0])
    return float(stats.paired(d, level=level).low)


def regime_cells(runs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The stated rule that keeps a comparison in the paper's regime, where both twins learn and pre-training
    helps: a (model, task) cell counts when (1) its pre-trained runs beat the majority class of their test sets,
    (2) its random twins beat it too, and (3) the pre-trained runs beat their random twins, each by a one-sided
    ``level`` t interval over seeds (of accuracy - majority rate, or of the paired accuracy gap) that excludes 0.
    A twin that learnt nothing (a training loss at ln 2) would make any IIW comparison one between a model and a
    model that did not train; a twin as accurate as the pre-trained one is outside the paper's setting, where its
    random models score 12-35 points lower. Used by the pre-trained vs random and the fine-tuning chapters.

    One row per cell: accuracies pre-trained and random (means over seeds), chance (1 / classes), the majority
    rate, the lower ends of the three intervals, whether each twin ``learnt`` and whether the cell is ``in regime``.
    """
    runs = runs.join(baselines(runs))
    rows = []
    one_sided = 2 * level - 1
    for (model, task), d in runs.groupby(["model", "task"]):
        pre = d[d.init == "pre-trained"].set_index("seed")
        rnd = d[d.init == "random"].set_index("seed")
        both = pre.index.intersection(rnd.index)
        margins = {side: _lower_end(x.final_test_acc.to_numpy(), x.majority.to_numpy(), one_sided)
                   for side, x in (("pre-trained", pre), ("random", rnd))}
        gap = _lower_end(pre.final_test_acc[both].to_numpy(), rnd.final_test_acc[both].to_numpy(), one_sided)
        learnt = {side: bool(low > 0) for side, low in margins.items()}
        rows.append({"model": model, "task": task, "seeds": len(pre), "chance": pre.chance.mean(),
                     "majority": pre.majority.mean(), "acc. pre-trained": pre.final_test_acc.mean(),
                     "acc. random": rnd.final_test_acc.mean(), "pre-trained margin low": margins["pre-trained"],
                     "random margin low": margins["random"], "gap low": gap,
                     "pre-trained learnt": learnt["pre-trained"], "random learnt": learnt["random"],
                     "in regime": bool(learnt["pre-trained"] and learnt["random"] and gap > 0)})
    return pd.DataFrame(rows)


def outside_regime(cells: pd.DataFrame) -> str:
    """Why each cell of :func:`regime_cells` outside the regime is out, in words ("none" when every cell is in)."""
    def why(r) -> str:
        lows = (r["pre-trained margin low"], r["random margin low"], r["gap low"])
        if any(math.isnan(v) for v in lows):
            return f"{r.seeds} seed(s) cannot show it (no interval)"
        if not r["pre-trained learnt"]:
            return "the pre-trained runs did not beat the majority class"
        if not r["random learnt"]:
            return "the random twin did not beat the majority class"
        return "pre-training gave no clear gain over the random twin"
    out = [f"{r.model} on {r.task}: {why(r)}" for _, r in cells[~cells["in regime"]].iterrows()]
    return "; ".join(out) or "none"


def in_regime(runs: pd.DataFrame, level: float = 0.95, gain: bool = True) -> tuple[pd.DataFrame, str]:
    """The runs of the (model, task) cells that :func:`regime_cells` keeps, and the reason to give when none is.
    ``gain=False``: the cells where both twins learnt, whether or not pre-training helped (the accuracy claim's
    cells: selecting on the gain would decide it)."""
    cells = regime_cells(runs, level)
    keep = cells["in regime"] if gain else cells["pre-trained learnt"] & cells["random learnt"]
    kept = cells[keep][["model", "task"]]
    rule = "and the pre-trained model its random twin, " if gain else ""
    reason = (f"no (model, task) cell is in the paper's regime ({len(cells)} cells: both twins must beat the majority "
              f"class {rule}by one-sided {level:.0%} t intervals over seeds)")
    return runs.merge(kept, on=["model", "task"]), reason


def on_regime(items: list, kept: pd.DataFrame, reason: str) -> list:
    """Every verdict stands only when some cell is in the regime (else: inconclusive, with the reason)."""
    return [claims.precondition(c, len(kept) > 0, reason, ("held", "did not hold", "partly held", "inconclusive"))
            for c in items]


def pib_sampling_noise(runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per run, after the last epoch, the spread of the ``"pib"`` estimate over its gradient-sampling seeds
    (``PIB_SEEDS``, the ``..._total_s<k>`` values): their number, the standard deviation of log10 IIW across them
    and the standard error of their mean (NaN with a single seed). Used by the pre-trained vs random chapter, for
    the PIB estimator's noise floor (:func:`pib_floor`)."""
    prefix = finetune.iiw_key("pib", reference, "total_s")
    rows = []
    for _, r in runs.iterrows():
        record = r.records[-1]
        draws = np.asarray([v for k, v in record.items() if k.startswith(prefix)], float)
        logs = np.log10(draws[draws > 0])
        sd = float(np.std(logs, ddof=1)) if len(logs) >= 2 else math.nan
        rows.append({**{c: r[c] for c in PAIR + ["init"]}, "sampling seeds": len(draws), "sd log10": sd,
                     "se log10": sd / math.sqrt(len(logs)) if len(logs) else math.nan})
    return pd.DataFrame(rows)


def pib_floor(runs: pd.DataFrame, reference: str) -> float:
    """The noise floor of a (model, task) cell's mean log(IIW pre-trained / IIW random) under ``"pib"``, in natural
    log units: 1.96 times the standard error the gradient sampling alone gives that mean (the runs' standard errors
    from :func:`pib_sampling_noise`, the cell's seeds averaged), the median over cells. A difference inside it is
    the estimator's own noise, not a finding. NaN when a single sampling seed leaves it unmeasured. Used by the
    pre-trained vs random chapter."""
    noise = pib_sampling_noise(runs, reference)
    if not len(noise) or noise["se log10"].isna().any():
        return math.nan
    variance = (noise["se log10"] * math.log(10)) ** 2
    seeds = noise.groupby(["model", "task"]).seed.nunique()
    per_cell = variance.groupby([noise.model, noise.task]).sum() / seeds ** 2
    return float(1.96 * math.sqrt(per_cell.median()))


#: the short names of the references in the experiments' table rows
REFERENCE_LABELS = {"init": "(a) initial", "prior_same": "(b2) prior, same init.", "prior_fresh": "(b1) prior, indep. init."}


#: what each reference theta_0 is called on the pages
REFERENCE_NAMES = {"init": "(a) theta_0 = initial weights", "prior_same": "(b2) PIB prior, same initialisation",
                   "prior_fresh": "(b1) PIB prior, independent initialisation"}
