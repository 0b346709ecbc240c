"""The chapter "IIW of pre-trained vs randomly initialised models": its grids, the paper's Table 1 and layer
tables beside ours, the experiments that explain the order (learning rate, training-set size, norm-matched
twins, each split into the factors of the PIB estimate), and its claims (seed 000, §3.2, Table 1, Fig. 1).

The runs, the regime rule and the shared columns come from :mod:`.iiw_grid`.
"""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd

from .. import claims, stats
from ..claims import interval_text
from ..metrics import iiw as iiw_metric
from ..runs import finetune
from .iiw_grid import (CELL_UNIT, INITS, PAIR, REFERENCE_LABELS, REFERENCE_NAMES, cell_labels, final_layerwise,
                       init_labels, in_regime, log_ratio, on_regime, paper_beside_ours, paper_table, pib_floor,
                       required_column, run_tasks, total)

#: seed 000, Table 1: IIW and test accuracy after fine-tuning, pre-trained vs random (transcribed)
PAPER_TABLE1 = paper_table("iiw_table1")
#: seed 000, Tables 3-5 (appendix E): IIW of each layer group after fine-tuning, pre-trained models (transcribed)
PAPER_LAYERS = paper_table("iiw_layers")


def paper_vs_ours(runs: pd.DataFrame, estimator: str, reference: str, level: float = 0.95) -> pd.DataFrame:
    """The "paper | ours" table of Table 1, rows matched by task: the paper's log10(IIW pre-trained / IIW random)
    and accuracy difference per model (BERT, RoBERTa, ELECTRA), beside ours (means over seeds with t intervals
    of the same quantities, per encoder), with our majority-class rate. Log ratios are comparable across tasks
    where magnitudes are not (the PIB normalisation scales IIW like 1 / N^2)."""
    return paper_beside_ours(PAPER_TABLE1, runs, paper_column="init", paper_arms=("pre-trained", "random"),
                             our_column="init", our_arms=("pre-trained", "random"), estimator=estimator,
                             reference=reference, level=level)


def _pretrain_tasks(models_, tasks, settings: dict, seeds_: list[int], inits=("pre-trained", "random"),
                    sweep: dict | None = None) -> list[dict]:
    unknown = set(inits) - set(INITS)
    if unknown:
        raise ValueError(f"inits must be among {list(INITS)}, got {sorted(unknown)}")
    sweep = sweep or {}
    combos = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())]
    return [{"model": m, **INITS[i], "task": t, **settings, **c, "seed": s, "method": "ft"} for c in combos
            for m in models_ for t in tasks for s in seeds_ for i in inits]


def pretrain_grids(grids: dict[str, dict], settings: dict, seeds_: list[int], workers=None) -> dict[str, pd.DataFrame]:
    """Several pre-trained vs random grids (name -> :func:`pretrain_grid`'s ``models_``, ``tasks`` and optional
    ``inits`` and ``sweep``) through one executor call, each distinct run once: the pre-trained vs random
    chapter's experiments, which share runs and keep every worker busy when run together."""
    by_grid = {name: _pretrain_tasks(g["models_"], g["tasks"], settings, seeds_, g.get("inits", ("pre-trained", "random")),
                                     g.get("sweep")) for name, g in grids.items()}
    distinct = {json.dumps(t, sort_keys=True): t for tasks_ in by_grid.values() for t in tasks_}
    done = dict(zip(distinct, run_tasks(list(distinct.values()), workers)))
    out = {}
    for name, tasks_ in by_grid.items():
        runs = pd.DataFrame([done[json.dumps(t, sort_keys=True)] for t in tasks_])
        runs["init"] = init_labels(runs)
        out[name] = runs
    return out


def pretrain_grid(models_, tasks, settings: dict, seeds_: list[int], inits=("pre-trained", "random"),
                  sweep: dict | None = None, workers=None) -> pd.DataFrame:
    """Every (model, initialisation, task, seed) fine-tuning run, through the grid executor; ``inits``: labels of
    :data:`~studylib.studies.iiw_grid.INITS`; ``sweep``: run parameter -> values crossed with the rest, overriding ``settings`` (the
    experiments' learning rates and training-set sizes). Column ``init`` holds the label."""
    grid = {"models_": models_, "tasks": tasks, "inits": inits, "sweep": sweep}
    return pretrain_grids({"grid": grid}, settings, seeds_, workers)["grid"]


def _iiw_log_ratio(runs: pd.DataFrame, estimator: str, reference: str, versus: str = "random") -> pd.Series:
    """log(IIW pre-trained / IIW ``versus``) of every matched (model, task, seed) pair of ``runs`` (``versus``: a
    label of :data:`~studylib.studies.iiw_grid.INITS`), indexed by :data:`~studylib.studies.iiw_grid.PAIR`."""
    wide = runs.pivot_table(index=PAIR, columns="init", values=total(estimator, reference))
    return pd.Series(log_ratio(required_column(wide, "pre-trained"), required_column(wide, versus)), index=wide.index, dtype=float)


def _final_groups(runs: pd.DataFrame, estimator: str, reference: str) -> pd.DataFrame:
    """IIW of every group after the last epoch, one row per run (index :data:`~studylib.studies.iiw_grid.PAIR` and ``init``), one column per
    group; empty when there are no runs."""
    layerwise = final_layerwise(runs, estimator, reference)
    return layerwise.pivot_table(index=PAIR + ["init"], columns="group", values="iiw") if len(layerwise) else layerwise


def _final_factors(runs: pd.DataFrame, estimator: str, reference: str) -> pd.DataFrame:
    """Per run, after the last epoch: IIW, its factors (:data:`studylib.metrics.iiw.GEOMETRY`), test accuracy and
    training loss, with the run's (model, task, seed) and ``init``."""
    rows = []
    for _, r in runs.iterrows():
        last = r.records[-1]
        rows.append({**{c: r[c] for c in PAIR + ["init"]}, "iiw": last[finetune.iiw_key(estimator, reference, "total")],
                     **{q: last[finetune.geometry_key(estimator, reference, q)] for q in iiw_metric.GEOMETRY},
                     "acc": r.final_test_acc, "loss": r.final_train_loss})
    return pd.DataFrame(rows)


def contrast(runs: pd.DataFrame, estimator: str, reference: str, by: str, versus: str = "random",
             level: float = 0.95) -> pd.DataFrame:
    """Pre-trained vs random chapter, the experiments: for each value of the run parameter ``by`` (learning rate,
    training-set size, ...), the pre-trained runs against their ``versus`` twins (:data:`~studylib.studies.iiw_grid.INITS`) over matched
    (model, task, seed) pairs after the last epoch. Means with t intervals of log10(IIW pre-trained / IIW
    ``versus``) and of the accuracy gain; mean log10 ratios of ||delta||^2, ||g||^2 and cos^2, the factors of
    (delta . g)^2 over the whole model, whose per-tensor parts the PIB estimate sums (so the three add up to the
    IIW ratio only roughly); each side's final training loss."""
    rows = []
    for value, d in runs[runs.init.isin(["pre-trained", versus])].groupby(by):
        wide = _final_factors(d, estimator, reference).pivot_table(index=PAIR, columns="init")

        def log10_ratio(col, power=1.0):
            return power * log_ratio(np.abs(required_column(wide, (col, "pre-trained"))),
                                      np.abs(required_column(wide, (col, versus)))) / np.log(10)

        ratio = stats.paired(log10_ratio("iiw"), level=level)
        gain = stats.paired(required_column(wide, ("acc", "pre-trained")), required_column(wide, ("acc", versus)), level=level)
        rows.append({by: value, "pairs": ratio.n, "log10 IIW ratio": ratio.estimate, "low": ratio.low,
                     "high": ratio.high, "log10 ||delta||^2 ratio": np.nanmean(log10_ratio("delta_norm", 2)),
                     "log10 ||g||^2 ratio": np.nanmean(log10_ratio("grad_norm", 2)),
                     "log10 cos^2 ratio": np.nanmean(log10_ratio("cos", 2)), "acc. gain": gain.estimate,
                     "acc. gain low": gain.low, "acc. gain high": gain.high,
                     "train loss pre-trained": float(np.nanmean(required_column(wide, ("loss", "pre-trained")))),
                     f"train loss {versus}": float(np.nanmean(required_column(wide, ("loss", versus))))})
    return pd.DataFrame(rows)


def contrast_by_reference(runs: pd.DataFrame, estimator: str, references: list[str], by: str,
                          versus: str = "random") -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """:func:`contrast` against every reference theta_0: one table indexed by the reference's page name, and the
    tables by reference."""
    tables = {ref: contrast(runs, estimator, ref, by, versus) for ref in references}
    joined = pd.concat({REFERENCE_LABELS[ref]: t for ref, t in tables.items()}, names=["theta_0", None]).droplevel(1)
    return joined, tables


def contrast_view(table: pd.DataFrame, by: str, label: str, value=str, versus: str = "random",
                  twin: str | None = None) -> pd.DataFrame:
    """A :func:`contrast` or :func:`contrast_by_reference` table as the pre-trained vs random chapter prints it:
    rows (theta_0, ``by`` named ``label``, its values through ``value``); the IIW ratio with its interval as one
    column beside the log10 ratios of its factors ||delta||^2, ||g||^2 and cos^2; the accuracy gain and the final
    training losses, under grouped headers (``versus``: the table's other side, as :func:`contrast` was given it;
    ``twin``: what the headers call it, default ``versus``)."""
    index = [table.index, table[by].map(value)] if table.index.name == "theta_0" else [table[by].map(value)]
    names = ["θ₀", label] if len(index) == 2 else [label]
    ratio = f"log10 ratio pre-trained / {twin or versus}"
    columns = {
        ("", "pairs"): table.pairs,
        (ratio, "IIW [95% CI]"): [interval_text(e, lo, hi) for e, lo, hi in zip(table["log10 IIW ratio"],
                                                                                        table.low, table.high)],
        (ratio, "‖Δ‖²"): table["log10 ||delta||^2 ratio"].map("{:+.2f}".format),
        (ratio, "‖ḡ‖²"): table["log10 ||g||^2 ratio"].map("{:+.2f}".format),
        (ratio, "cos²"): table["log10 cos^2 ratio"].map("{:+.2f}".format),
        ("test accuracy", "gain"): table["acc. gain"].map("{:+.3f}".format),
        ("final training loss (nats)", "pre-trained"): table["train loss pre-trained"].map("{:.2f}".format),
        ("final training loss (nats)", twin or versus): table[f"train loss {versus}"].map("{:.2f}".format)}
    out = pd.DataFrame({k: list(v) for k, v in columns.items()}, index=pd.MultiIndex.from_arrays(index, names=names))
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def ordering(low: float, high: float, versus: str = "random") -> str:
    """The order an interval of log(IIW pre-trained / IIW ``versus``) shows, in words."""
    if high < 0:
        return "pre-trained lower"
    if low > 0:
        return f"{versus} lower"
    return "no clear order"


def _setting(value, prefix: str, unit: str) -> str:
    if isinstance(value, (int, np.integer)):
        return f"{prefix}{value:,}{unit}"
    if isinstance(value, (float, np.floating)):
        return f"{prefix}{value:g}{unit}"
    return f"{prefix}{value}{unit}"


def orderings(table: pd.DataFrame, by: str, versus: str = "random", prefix: str | None = None, unit: str = "") -> str:
    """One phrase per row of a :func:`contrast` table, e.g. "lr 3e-05: pre-trained lower" (``prefix`` default:
    ``by`` and a space)."""
    prefix = f"{by} " if prefix is None else prefix
    return "; ".join(f"{_setting(v, prefix, unit)}: {ordering(lo, hi, versus)}"
                     for v, lo, hi in zip(table[by], table.low, table.high))


def order_change(table: pd.DataFrame, by: str, what: str, versus: str = "random", prefix: str | None = None,
                 unit: str = "") -> str:
    """Whether the order of a :func:`contrast` table moves along its rows (the pre-trained vs random chapter's
    experiments), in words: "stays the same (no clear order) at every learning rate", or "moves: no clear order at
    lr 0.0001, random lower at lr 0.0003" (``what`` names the setting)."""
    prefix = f"{by} " if prefix is None else prefix
    orders = [ordering(lo, hi, versus) for lo, hi in zip(table.low, table.high)]
    if len(set(orders)) == 1:
        return f"stays the same ({orders[0]}) at every {what}"
    return "moves: " + ", ".join(f"{o} at {_setting(v, prefix, unit)}" for o, v in zip(orders, table[by]))


def ratio_by_reference(runs: pd.DataFrame, estimators: list[str], references: list[str],
                       level: float = 0.95) -> pd.DataFrame:
    """IIW chapter: the mean log10(IIW pre-trained / IIW random) over the matched (model, task, seed) pairs of the
    cells in the paper's regime (:func:`~.iiw_grid.regime_cells`), with its t interval, for every estimator and reference theta_0."""
    kept, _ = in_regime(runs)
    rows = []
    for estimator in estimators:
        for reference in references:
            est = stats.paired(_iiw_log_ratio(kept, estimator, reference) / np.log(10), level=level)
            rows.append({"estimator": estimator, "reference": reference, "theta_0": REFERENCE_NAMES[reference],
                         "mean": est.estimate, "low": est.low, "high": est.high, "pairs": est.n})
    return pd.DataFrame(rows).set_index(["estimator", "reference"])


def claims_table(runs: pd.DataFrame, estimators: list[str], references: list[str]) -> pd.DataFrame:
    """Seed 000's claims about pre-trained vs random models (§3.2, Table 1, Fig. 1), each decided by a paired
    comparison of log IIW ratios or accuracy differences over (model, task) cells, the matched (model, task, seed)
    pairs of a cell averaged first (seeds of one task are not independent samples of tasks).
    "Lower IIW" is tested with every estimator against every reference theta_0, the ``"pib"`` ones with the noise
    floor of their gradient sampling (:func:`~.iiw_grid.pib_floor`); the head claim against every reference; the
    other layer-wise claims with the first estimator against the last reference (the independent-initialisation
    prior, when measured). The IIW claims count the (model, task) cells in the paper's regime
    (:func:`~.iiw_grid.regime_cells`: both twins learnt, pre-training helped); the accuracy claim the cells where
    both twins learnt (selecting on the gain would decide it)."""
    kept, reason = in_regime(runs)
    learnt, learnt_reason = in_regime(runs, gain=False)
    acc = learnt.pivot_table(index=PAIR, columns="init", values="final_test_acc", dropna=False)
    out = on_regime([claims.median_claim(
        required_column(acc, "pre-trained"), required_column(acc, "random"), expected_sign=1, id="higher-accuracy",
        units=cell_labels(acc.index), claim="Pre-trained models reach higher test accuracy", where="Table 1, §3.2",
        statistic="median accuracy difference", unit="(model, task) cells where both twins learnt")],
        learnt, learnt_reason)
    iiw_claims = []
    for estimator in estimators:
        for reference in references:
            ratio = _iiw_log_ratio(kept, estimator, reference)
            floor = pib_floor(kept, reference) if estimator == "pib" else 0.0
            iiw_claims.append(claims.median_claim(
                ratio, expected_sign=-1, units=cell_labels(ratio.index),
                floor=floor if math.isfinite(floor) else 0.0,
                id=f"lower-iiw-{claims.slug(estimator)}-{claims.slug(reference)}",
                claim="Pre-trained models have lower IIW than randomly initialised ones", where="Table 1, §3.2",
                statistic=f"median log(IIW pre-trained / IIW random), {estimator}, {REFERENCE_NAMES[reference]}",
                unit=CELL_UNIT))
    estimator = estimators[0]
    groups = {reference: _final_groups(kept, estimator, reference) for reference in references}
    for reference, wide in groups.items():
        pre = wide.xs("pre-trained", level="init") if len(wide) else None
        ratio, units = ((log_ratio(pre["classifier"], pre.drop(columns="classifier").max(axis=1)), cell_labels(pre.index))
                        if pre is not None else ([], []))
        iiw_claims.append(claims.median_claim(
            ratio, expected_sign=1, units=units,
            id=f"head-highest-iiw-{claims.slug(reference)}",
            claim="In pre-trained models the head (fc) has the highest IIW of all groups", where="Fig. 1, §3.2",
            statistic=f"median log(IIW classifier / largest other group), {estimator}, {REFERENCE_NAMES[reference]}",
            unit=CELL_UNIT))
    reference = references[-1]
    wide = groups[reference]
    if len(wide):
        layers = [c for c in wide.columns if c.startswith("layer_")]
        pre, rnd = wide.xs("pre-trained", level="init"), wide.xs("random", level="init")
        ratios = (log_ratio(rnd["embedding"], rnd[layers].median(axis=1)), log_ratio(pre["embedding"], pre["layer_0"]))
        units = (cell_labels(rnd.index), cell_labels(pre.index))
    else:
        ratios = units = ([], [])
    where = f"{estimator}, {REFERENCE_NAMES[reference]}"
    iiw_claims += [
        claims.median_claim(ratios[0], expected_sign=1, id="random-embedding-high", units=units[0],
                          claim="In random models the embedding IIW is high (above the median layer)",
                          where="Fig. 1, §3.2", statistic=f"median log(IIW embedding / median layer), {where}",
                          unit=CELL_UNIT),
        claims.median_claim(ratios[1], expected_sign=1, id="embedding-above-layer-0", units=units[1],
                          claim="In pre-trained models the embedding IIW exceeds layer 0's",
                          where="§3.2", statistic=f"median log(IIW embedding / layer 0), {where}", unit=CELL_UNIT),
    ]
    return claims.table(out + on_regime(iiw_claims, kept, reason))
