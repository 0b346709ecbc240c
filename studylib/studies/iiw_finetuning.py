"""The chapter "IIW across fine-tuning epochs": FT and LP-FT grids, IIW and accuracy epoch by epoch, the paper's
Table 2 beside ours, the forgetting rule and its claims (seed 000, §3.3, §3.4, Fig. 2, Table 2).

The runs, the regime rule and the shared columns come from :mod:`.iiw_grid`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import claims, stats
from .iiw_grid import (CELL_UNIT, PAIR, REFERENCE_NAMES, cell_labels, init_labels, in_regime, log_ratio, on_regime,
                       paper_beside_ours, paper_table, required_column, run_tasks, stratum_labels, total)

#: seed 000, Table 2: IIW and test accuracy of FT and LP-FT (transcribed)
PAPER_TABLE2 = paper_table("iiw_table2")


def paper_vs_ours(runs: pd.DataFrame, estimator: str, reference: str, level: float = 0.95) -> pd.DataFrame:
    """IIW fine-tuning chapter, the "paper | ours" table of Table 2, rows matched by task: log10(IIW LP-FT / IIW FT)
    and the accuracy gain of LP-FT over FT, the paper's per model beside our pre-trained runs' (means over seeds
    with t intervals), with our majority-class rate."""
    return paper_beside_ours(PAPER_TABLE2, runs[runs.init == "pre-trained"], paper_column="method",
                             paper_arms=("LP-FT", "FT"), our_column="method", our_arms=("lpft", "ft"),
                             estimator=estimator, reference=reference, level=level)


def finetune_grid(models_, tasks, settings: dict, seeds_: list[int], workers=None) -> pd.DataFrame:
    """Pre-trained FT, pre-trained LP-FT and random FT runs for every (model, task, seed), through the grid
    executor (the FT runs are the same cached runs as the pre-trained vs random chapter's)."""
    combos = [(True, "ft"), (True, "lpft"), (False, "ft")]
    tasks_ = [{"model": m, "pretrained": pre, "norm_matched": False, "task": t, **settings, "seed": s, "method": method}
              for m in models_ for t in tasks for s in seeds_ for pre, method in combos]
    runs = pd.DataFrame(run_tasks(tasks_, workers))
    runs["init"] = init_labels(runs)
    runs["variant"] = runs.init + [" LP-FT" if m == "lpft" else " FT" for m in runs.method]
    return runs


#: the fall of IIW after its peak that counts as forgetting (the two-phase rule)
FORGETTING_DROP = 0.05


def forgetting_drop(iiw_by_epoch) -> float:
    """The relative fall of IIW from its peak over epochs 1..E to the last epoch, ``(peak - last) / peak``: 0 when
    the peak is the last epoch; NaN below 3 epochs or at a zero peak. :func:`two_phase` is this drop >= 5%."""
    values = np.asarray(list(iiw_by_epoch), float)
    if len(values) < 3 or values.max() <= 0:
        return math.nan
    return float((values.max() - values[-1]) / values.max())


def two_phase(iiw_by_epoch, drop: float = FORGETTING_DROP) -> bool:
    """The "memorisation then forgetting" pattern, by a stated rule: over epochs 1..E (epoch 0 excluded, as in
    the paper) IIW peaks at an epoch before the last, and the last epoch's IIW is at least ``drop`` (5%)
    below that peak."""
    fall = forgetting_drop(iiw_by_epoch)
    return bool(math.isfinite(fall) and fall >= drop)


def epoch_taus(epochs: pd.DataFrame, level: float = 0.95, drop: float = FORGETTING_DROP) -> pd.DataFrame:
    """Per run, Kendall's tau between IIW and test accuracy over epochs 1..E with its interval
    (:func:`studylib.stats.kendall`; the paper reads single pairs; a negative tau is what "lower IIW, better
    accuracy" predicts), the relative fall of IIW after its peak, the two-phase rule at ``drop``, and whether
    stopping at the lowest-IIW epoch would have kept a most accurate one."""
    rows = []
    for keys, d in epochs[epochs.epoch > 0].groupby(["model", "task", "seed", "variant"]):
        d = d.sort_values("epoch")
        tau = stats.kendall(d.iiw, d.test_acc, level=level)
        best = set(d.epoch[d.test_acc == d.test_acc.max()])
        rows.append({**dict(zip(["model", "task", "seed", "variant"], keys)), "epochs": len(d),
                     "kendall_tau": tau.tau, "tau_lo": tau.low, "tau_hi": tau.high, "p": tau.p,
                     "drop_after_peak": forgetting_drop(d.iiw), "two_phase": two_phase(d.iiw, drop),
                     "lowest_iiw_is_best": int(d.epoch[d.iiw.idxmin()]) in best})
    return pd.DataFrame(rows)


def fall_factors(epochs: pd.DataFrame) -> pd.DataFrame:
    """IIW fine-tuning chapter: what moves IIW between its peak (epochs 1..E) and the last epoch, in the runs whose
    peak comes before the last epoch. Per variant: the number of such runs and the mean log10 change from the
    peak to the last epoch of IIW and of ||delta||^2, ||g||^2 and cos^2 (the factors of :func:`~studylib.studies.iiw_pretrained.contrast`)."""
    rows = []
    for keys, d in epochs[epochs.epoch > 0].groupby(["model", "task", "seed", "variant"]):
        d = d.sort_values("epoch").reset_index(drop=True)
        peak, last = d.loc[d.iiw.idxmax()], d.iloc[-1]
        if peak.epoch == last.epoch:
            continue
        rows.append({"variant": keys[-1], "log10 IIW change": np.log10(last.iiw / peak.iiw),
                     **{f"log10 {name} change": 2 * np.log10(abs(last[q]) / abs(peak[q]))
                        for q, name in (("delta_norm", "||delta||^2"), ("grad_norm", "||g||^2"), ("cos", "cos^2"))}})
    if not rows:
        return pd.DataFrame(columns=["variant", "runs"])
    frame = pd.DataFrame(rows)
    return frame.groupby("variant").agg(runs=("variant", "size"), **{c: (c, "mean") for c in frame.columns[1:]}
                                        ).reset_index()


def claims_table(runs: pd.DataFrame, epochs: pd.DataFrame, taus: pd.DataFrame,
                            estimator: str, reference: str) -> pd.DataFrame:
    """Seed 000's claims about IIW during fine-tuning (§3.3, Fig. 2) and FT vs LP-FT (§3.4, Table 2), for one
    estimator and reference theta_0: the forgetting phase by the fall after the peak (above 5% in pre-trained FT
    runs, at most 5% in random ones); IIW against accuracy by the stratified tau over epochs (runs held apart);
    Table 2 by each cell's share of (FT, LP-FT) seed pairs in which the lower-IIW model is the more accurate (the
    sign test of its median over cells): "not reliably, either way" holds when the interval lies between 25% and
    75% (a share near 0 would make IIW a reliable inverse predictor, not an unreliable one). Against a PIB prior, IIW at epoch 0 is not 0, and the paper's epoch-0 observations
    are tested too: pre-trained models start lower (paired log ratios), and a lower starting IIW goes with better
    accuracy after fine-tuning (Kendall tau over FT runs, stratified by (model, task)). Only the (model, task)
    cells in the paper's regime count (:func:`~.iiw_grid.regime_cells`: both twins learnt, pre-training helped)."""
    ref = REFERENCE_NAMES[reference]
    suffix = f"{claims.slug(estimator)}-{claims.slug(reference)}"
    ft_runs, reason = in_regime(runs[runs.method == "ft"])
    kept = runs.merge(ft_runs[["model", "task"]].drop_duplicates(), on=["model", "task"])
    keys = kept[PAIR + ["variant"]].drop_duplicates()
    epochs, taus = epochs.merge(keys, on=list(keys)), taus.merge(keys, on=list(keys))
    fall = taus.pivot_table(index=PAIR, columns="variant", values="drop_after_peak", dropna=False)
    tracked = epochs[(epochs.epoch > 0)]
    run_id = stratum_labels(tracked, ["model", "task", "seed", "variant"])
    col = total(estimator, reference)
    ft = kept[kept.init == "pre-trained"].pivot_table(index=PAIR, columns="method", values=[col, "final_test_acc"],
                                                      dropna=False)
    d_log_iiw = log_ratio(required_column(ft, (col, "lpft")), required_column(ft, (col, "ft")))
    d_acc = required_column(ft, ("final_test_acc", "lpft")) - required_column(ft, ("final_test_acc", "ft"))
    agree = np.where(np.sign(d_acc) != 0, -np.sign(d_log_iiw) == np.sign(d_acc), np.nan)  # accuracy ties: no vote
    out = [
        claims.combine(
            "Pre-trained models go through memorisation then forgetting (IIW rises, then falls); randomly "
            "initialised ones do not", "Fig. 2, §3.3", {
                f"pre-trained FT: IIW falls after its peak by more than {FORGETTING_DROP:.0%}": claims.median_claim(
                    required_column(fall, "pre-trained FT") - FORGETTING_DROP, expected_sign=1, unit=CELL_UNIT,
                    units=cell_labels(fall.index),
                    statistic=f"median fall of IIW after its peak - {FORGETTING_DROP:.0%}, {estimator}, {ref}"),
                f"random FT: IIW falls after its peak by at most {FORGETTING_DROP:.0%}": claims.median_claim(
                    required_column(fall, "random FT"), expected_sign="not positive", negligible=FORGETTING_DROP,
                    unit=CELL_UNIT, units=cell_labels(fall.index), statistic=f"median fall of IIW after its peak, {estimator}, {ref}")},
            id=f"forgetting-phase-{suffix}"),
        claims.rank_claim(tracked.iiw, tracked.test_acc, "not negative", groups=run_id, id=f"epochs-{suffix}",
                          claim="Lower IIW does not reliably go with better accuracy across epochs",
                          where="Fig. 2, §3.3", statistic=f"stratified tau (IIW, accuracy) over epochs, {estimator}, {ref}",
                          unit="epochs"),
        claims.median_claim(agree - 0.5, expected_sign="none", negligible=0.25, id=f"lpft-pairs-{suffix}",
                            claim="Between FT and LP-FT, the IIW order does not reliably give the accuracy order",
                            where="Table 2, §3.4", unit=CELL_UNIT, units=cell_labels(ft.index),
                            statistic=f"median over cells of the share of seeds where the lower-IIW model is the more "
                                      f"accurate, - 0.5 ({estimator}, {ref})"),
    ]
    if reference != "init":
        start = epochs[(epochs.epoch == 0) & epochs.variant.isin(["pre-trained FT", "random FT"])]
        first = start.pivot_table(index=PAIR, columns="variant", values="iiw", dropna=False)
        start = start.merge(kept[PAIR + ["variant", "final_test_acc"]], on=PAIR + ["variant"])
        out += [
            claims.median_claim(log_ratio(required_column(first, "pre-trained FT"), required_column(first, "random FT")), expected_sign=-1,
                              id=f"start-lower-{suffix}", units=cell_labels(first.index),
                              claim="Pre-trained models start fine-tuning with lower IIW than random ones",
                              where="Fig. 2, §3.3", unit=CELL_UNIT,
                              statistic=f"median log(IIW pre-trained / IIW random) at epoch 0, {estimator}, {ref}"),
            claims.rank_claim(start.iiw, start.final_test_acc, expected_sign=-1, id=f"start-predicts-{suffix}",
                              groups=stratum_labels(start, ["model", "task"]),
                              claim="A lower IIW at the start goes with better accuracy after fine-tuning",
                              where="§3.3 (the paper's hypothesis)", unit="FT runs",
                              statistic=f"stratified tau (IIW at epoch 0, final accuracy), {estimator}, {ref}")]
    return claims.table(on_regime(out, kept, reason))
