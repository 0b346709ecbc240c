"""The layer-utilization chapter's grid, its thresholds, Kendall-tau analyses and claims (seed 001).

Used by the layer utilization and re-initialisation chapter. The metrics are in
:mod:`studylib.metrics.utilization`; each trained run is :func:`studylib.runs.utilization.utilization_run`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import claims, designs, stats
from ..platform.cache import cached_run
from ..platform.executor import run_grid
from ..runs.utilization import UtilizationParams, utilization_run

#: a run is dead when its final training accuracy (on the labels it was trained on) is within this margin of the
#: majority-class rate of those labels: it learnt nothing, so its layers' distances measure no fit
DEAD_MARGIN = 0.05
#: the training accuracy (on the noisy labels trained on) at which a run counts as interpolating them
INTERPOLATES = 0.99
#: the share of the live noisy runs over the threshold that must interpolate for the grid to be in the paper's
#: regime (memorised labels beyond the threshold); a "did not hold" needs it
REGIME_SHARE = 0.9
#: the run columns the per-layer frame carries next to each layer's values
_RUN_COLUMNS = ("dataset", "width", "noise", "repeat", "generalization", "resilience", "resilience_all",
                "num_parameters", "train_loss", "test_loss", "dead")
#: the run-level targets the chapter relates utilization to: column -> page label
TARGETS = {"generalization": "generalization gap", "resilience": "resilience (recovered examples)",
           "resilience_all": "resilience (whole training set)"}
#: the losses whose per-layer contributions Fig. 5 reads: column suffix -> page label
FIG5_TARGETS = {"test_loss": "test loss", "resilience": TARGETS["resilience"], "resilience_all": TARGETS["resilience_all"]}


def grid_task(**p) -> dict:
    """A grid task for :func:`studylib.platform.executor.run_grid`: the cached run's metrics, its checkpoint
    records and its parameters."""
    run = cached_run("utilization", UtilizationParams(**p), utilization_run)
    return {**p, **run.metrics, "records": run.records, "from_cache": run.from_cache}


def run_grid_runs(dataset: str, widths, noises, repeats: int, settings: dict, workers=None) -> pd.DataFrame:
    """Every (width, noise, repeat) run of one data set through the grid executor; one row per run, with
    :func:`mark`'s columns."""
    tasks = [{"dataset": dataset, "width": w, "noise": float(nz), "repeat": r, **settings}
             for w in widths for nz in noises for r in range(repeats)]
    return mark(pd.DataFrame(run_grid(grid_task, tasks, workers=workers, desc=f"{dataset} grid")))


def mark(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``dead`` (:data:`DEAD_MARGIN`) and ``interpolates`` (:data:`INTERPOLATES`) columns."""
    return runs.assign(dead=runs.train_acc < runs.majority_rate + DEAD_MARGIN,
                       interpolates=runs.train_acc >= INTERPOLATES)


def at_checkpoints(runs: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """The grid as it stood after each checkpoint epoch every run reached (its records), and at the end (key: the
    largest epoch count): epoch -> runs frame with the same columns (:func:`mark`'s included)."""
    run_cols = [c for c in runs.columns if c not in ("records",)]
    epochs = sorted(set.intersection(*[{r["epoch"] for r in recs} for recs in runs.records])) if len(runs) else []
    out = {}
    for epoch in epochs:
        rows = [{**row[run_cols].to_dict(), **next(r for r in row.records if r["epoch"] == epoch)}
                for _, row in runs.iterrows()]
        out[epoch] = mark(pd.DataFrame(rows).drop(columns=["epoch"]))
    out[int(runs.epochs.max())] = runs
    return out


def per_layer(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, layer): the runs' per-layer lists unpacked next to their run-level columns."""
    rows = []
    for _, r in runs.iterrows():
        layers = pd.DataFrame(r["layers"])
        for col in _RUN_COLUMNS:
            layers[col] = r[col]
        rows.append(layers)
    return pd.concat(rows, ignore_index=True)


def outcomes(runs: pd.DataFrame) -> pd.DataFrame:
    """How the grid trained, per (data set, noise) row and width: ``"k/n"`` of the n runs that interpolate their
    training labels, with a dagger for each dead run (left out of every analysis)."""
    def cell(d):
        return f"{int(d.interpolates.sum())}/{len(d)}" + "\u2020" * int(d.dead.sum())
    table = runs.groupby(["dataset", "noise", "width"])[["interpolates", "dead"]].apply(cell).unstack("width")
    table.index = table.index.set_levels([f"{v:.1f}" for v in table.index.levels[1]], level="noise")
    table.index.names = ["data set", "noise ratio"]
    table.columns.name = "width"
    return table


def threshold_widths(runs: pd.DataFrame, train_acc: float = INTERPOLATES) -> pd.DataFrame:
    """The interpolation threshold of each (data set, noise): the smallest width whose runs fit the
    (noisy) training labels, mean training accuracy >= ``train_acc``; NaN if no width does."""
    mean = runs.groupby(["dataset", "noise", "width"]).train_acc.mean().reset_index()
    fits = mean[mean.train_acc >= train_acc]
    first = fits.groupby(["dataset", "noise"]).width.min()
    return mean.groupby(["dataset", "noise"]).size().to_frame("widths").join(first.rename("threshold_width")).reset_index()


def peak_widths(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """The paper's reading of the threshold (its Fig. 3): per (data set, noise), the width at which the mean of
    ``column`` over the live runs peaks (``threshold_width``; NaN where the column is undefined, e.g. resilience
    without shuffled labels)."""
    mean = runs[~runs.dead].groupby(["dataset", "noise", "width"])[column].mean().dropna().reset_index()
    peak = mean.loc[mean.groupby(["dataset", "noise"])[column].idxmax(), ["dataset", "noise", "width"]]
    rows = runs[["dataset", "noise"]].drop_duplicates()
    return rows.merge(peak.rename(columns={"width": "threshold_width"}), how="left").reset_index(drop=True)


def thresholds_both_ways(runs: pd.DataFrame) -> pd.DataFrame:
    """The threshold of each (data set, noise) row by the fit rule (:func:`threshold_widths`) beside the widths
    at which the gap and the two resilience readings peak (:func:`peak_widths`), with readable headers."""
    out = threshold_widths(runs)[["dataset", "noise", "threshold_width"]].rename(
        columns={"threshold_width": f"fits (train acc. >= {INTERPOLATES:.0%})"})
    for column, label in TARGETS.items():
        peak = peak_widths(runs, column).rename(columns={"threshold_width": f"peak {label}"})
        out = out.merge(peak, on=["dataset", "noise"], how="left")
    out["noise"] = out.noise.map("{:.1f}".format)
    widths = [c for c in out.columns if c not in ("dataset", "noise")]
    out[widths] = out[widths].apply(lambda col: col.map(lambda w: "-" if pd.isna(w) else f"{int(w)}"))
    return out.rename(columns={"dataset": "data set", "noise": "noise ratio"}).set_index(["data set", "noise ratio"])


def side_of_threshold(runs: pd.DataFrame, thresholds: pd.DataFrame) -> pd.Series:
    """'over' for runs at or beyond their (data set, noise) threshold width, else 'under'."""
    t = runs.merge(thresholds, on=["dataset", "noise"], how="left").threshold_width
    return pd.Series(np.where(runs.width.to_numpy() >= t.to_numpy(), "over", "under"), index=runs.index)


def utilization_taus(layers: pd.DataFrame, target: str, level: float = 0.95) -> pd.DataFrame:
    """Kendall tau between each layer's utilization and a run-level ``target`` (generalization or resilience),
    per data set, over the live runs, with its interval (:func:`studylib.stats.kendall`): pooled over all runs,
    and stratified within noise levels (the noise ratio drives both utilization and the gap, so the pooled tau
    mixes the two). Hypothesis 2: the final layer's tau should be high, and higher than the first layer's."""
    rows = []
    live = layers[~layers.dead].dropna(subset=[target])
    for (dataset, layer), d in live.groupby(["dataset", "layer"]):
        pooled = stats.kendall(d.utilization, d[target], level=level)
        within = stats.kendall(d.utilization, d[target], groups=d.noise, level=level)
        rows.append({"dataset": dataset, "layer": layer, "target": target, "runs": pooled.n,
                     "tau (pooled)": pooled.tau, "pooled low": pooled.low, "pooled high": pooled.high,
                     "tau (within noise)": within.tau, "within low": within.low, "within high": within.high})
    return pd.DataFrame(rows)


def tau_view(taus: pd.DataFrame) -> pd.DataFrame:
    """:func:`utilization_taus` of every target for a page: one row per (data set, layer), one column per target
    with the within-noise tau and its 95% interval in one cell, and the pooled tau with the gap beside them."""
    def text(rows):
        return [claims.interval_text(*r) for r in rows]
    keyed = taus.set_index(["dataset", "layer", "target"])
    view = {}
    for target, label in TARGETS.items():
        t = keyed.xs(target, level="target")
        view[f"{label}: within noise levels"] = pd.Series(
            text(t[["tau (within noise)", "within low", "within high"]].to_numpy()), index=t.index)
    gap = keyed.xs("generalization", level="target")
    view["generalization gap: pooled"] = pd.Series(text(gap[["tau (pooled)", "pooled low", "pooled high"]].to_numpy()),
                                                   index=gap.index)
    out = pd.DataFrame(view)
    out.index.names = ["data set", "layer"]
    return out


def reinit_effect(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy and loss change when the last k = 1, 2 layers are reset to their initial weights."""
    out = runs[["dataset", "width", "noise", "repeat", "test_acc", "test_loss"]].copy()
    for k in (1, 2):
        out[f"d_acc_last{k}"] = runs[f"reinit_last{k}_test_acc"] - runs.test_acc
        out[f"d_loss_last{k}"] = runs[f"reinit_last{k}_test_loss"] - runs.test_loss
    return out


def reinit_view(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`reinit_effect` of the live runs for a page: mean changes per (data set, side of the threshold,
    noise ratio), accuracy in points, loss in nats."""
    eff = reinit_effect(runs).assign(side=runs.side)[~runs.dead.to_numpy()]
    grouped = eff.groupby(["dataset", "side", "noise"])
    view = pd.DataFrame({"runs": grouped.size()})
    for k in (1, 2):
        view[f"test acc. change, last {k} reset (points)"] = 100 * grouped[f"d_acc_last{k}"].mean()
        view[f"test loss change, last {k} reset (nats)"] = grouped[f"d_loss_last{k}"].mean()
    view.index = view.index.set_levels([f"{v:.1f}" for v in view.index.levels[2]], level="noise")
    view.index.names = ["data set", "side of the threshold", "noise ratio"]
    return view


def overfit_runs(runs: pd.DataFrame, thresholds: pd.DataFrame) -> pd.DataFrame:
    """The live noisy runs at or beyond their threshold: the overfit models the paper's regime and its
    post-training reset are about."""
    side = side_of_threshold(runs, thresholds)
    return runs[(side == "over") & (runs.noise > 0) & ~runs.dead]


def length_check(grids: dict[int, pd.DataFrame], thresholds: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The statistics the verdicts rest on, after each checkpoint epoch (:func:`at_checkpoints`): does training
    longer move them? Per epoch: the share of live noisy runs over the threshold that interpolate, the
    within-noise tau of the final layer's utilization with the gap and its difference from the first layer's (over
    the (data set, width, noise) settings, as the claims), and the mean test-accuracy change when the last layer of a noisy over-threshold run is reset."""
    rows = []
    for epoch, runs in grids.items():
        layers = per_layer(runs)
        last = int(layers.layer.max())
        live = layers[~layers.dead].sort_values(["dataset", "width", "noise", "repeat"])
        first_l, last_l = live[live.layer == 1], live[live.layer == last]
        design = designs.Design(SETTINGS, tuple(_setting(last_l)), tuple(_cell(last_l, "noise")))
        as_t = lambda v: tuple(v.to_numpy(float))
        tracks = designs.RankTest(as_t(last_l.utilization), as_t(last_l.generalization), design, level).estimate()
        better = designs.TauDifferenceTest(as_t(last_l.utilization), as_t(first_l.utilization),
                                           as_t(last_l.generalization), design, level).estimate()
        over = overfit_runs(runs, thresholds)
        reset = stats.paired(over.reinit_last1_test_acc - over.test_acc, level=level)
        share = f"{over.interpolates.mean():.0%}" if len(over) else "-"
        rows.append({"epoch": epoch, "noisy runs over the threshold that interpolate": share,
                     f"tau (layer {last} utilization, gap)": _interval(tracks),
                     f"tau(layer {last}) - tau(layer 1)": _interval(better),
                     "test acc. change, last layer reset (points)": _interval(reset, 100)})
    return pd.DataFrame(rows).set_index("epoch")


def _interval(e: stats.Estimate, scale: float = 1.0) -> str:
    if math.isfinite(e.estimate) and math.isnan(e.low) and math.isfinite(e.p):  # an exact test without an interval
        return f"{scale * e.estimate:+.2f} (p {claims.p_text(e.p)})"
    return claims.interval_text(scale * e.estimate, scale * e.low, scale * e.high)


def in_regime(runs: pd.DataFrame, thresholds: pd.DataFrame, settings: dict) -> tuple[bool, str]:
    """Whether the grid is in the regime the paper studies, which a "did not hold" needs: every run trained a
    fixed number of epochs (no early stop), and at least :data:`REGIME_SHARE` of the live noisy runs over the
    threshold interpolate their labels. Returns (met, the reason when not)."""
    if settings["stop"] != "fixed":
        return False, "the runs stopped early (at a training-loss plateau or interpolation), not after fixed epochs"
    over = overfit_runs(runs, thresholds)
    share = float(over.interpolates.mean()) if len(over) else 0.0
    if share < REGIME_SHARE:
        return False, (f"only {share:.0%} of the noisy runs over the threshold interpolate their labels (the regime "
                       f"needs {REGIME_SHARE:.0%})")
    return True, ""


#: the chapter's source, as the verdicts page names it
PAPER = "Wang & Yang (n.d.)"


def _cell(d: pd.DataFrame, *cols) -> pd.Series:
    """One label per row: its data set and ``cols`` joined by "/" (an empty series for no rows)."""
    return pd.Series(["/".join(map(str, r)) for r in d[["dataset", *cols]].itertuples(index=False)], index=d.index,
                     dtype=object)


def _setting(d: pd.DataFrame) -> pd.Series:
    """One label per run: its (data set, width, noise) setting, the unit its claims average over (the repeats of
    one setting share its effect: counting them as points counts one setting several times)."""
    return _cell(d, "width", "noise")

#: what a unit of the chapter's claims is, in words
SETTINGS = "(data set, width, noise) settings"


def _rises_then_falls(layers: pd.DataFrame, side: pd.Series, where: str, reading: str, rid: str) -> claims.Claim:
    keys = ["dataset", "width", "noise", "repeat"]
    parts = {}
    for name, sign in (("under the threshold", 1), ("over the threshold", -1)):
        # one point per run (its layers' mean utilization): a run's layers are not independent observations
        d = layers[side == name.split()[0]].groupby(keys).utilization.mean().reset_index()
        parts[name] = (claims.rank_claim(d.width, d.utilization, sign, groups=_cell(d, "noise"), unit=SETTINGS,
                                         units=_setting(d),
                                         statistic="tau (width, mean utilization over layers) within (data set, "
                                                   "noise)")
                       if len(d) else claims.not_testable(name, "", "no run on this side of the threshold"))
    return claims.combine(f"Utilization rises with width up to the threshold, then falls ({reading})", where, parts,
                          id=f"rises-then-falls-{rid}")


def claims_table(runs: pd.DataFrame, layers: pd.DataFrame, thresholds: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """The claims of seed 001, each decided by the claims engine over the live runs (dead runs left out): taus
    stratified by the variables the claim does not vary (data set, noise, width), paired t intervals over runs or
    grid rows, and each claim tested on both data sets at once through the strata. The threshold is read both
    ways (the smallest width that fits, and the paper's peak of the gap); resilience both ways. A "did not hold"
    stands only in the paper's regime (:func:`in_regime`); outside it, it becomes inconclusive."""
    live_runs, layers = runs[~runs.dead], layers[~layers.dead]
    last = int(layers.layer.max())
    middle = (last + 1) // 2
    keys = ["dataset", "width", "noise", "repeat"]
    by_layer = {i: layers[layers.layer == i].sort_values(keys) for i in (1, middle, last)}
    last_l = by_layer[last]
    out = [claims.rank_claim(last_l.noise, last_l.contribution_train_loss, 1, groups=_cell(last_l, "width"),
                             units=_setting(last_l), id="deeper-layers-start-later",
                             claim="Deeper layers only start contributing as the data grow more complex (Hypothesis 1)",
                             where="§3.2, §4.2, Fig. 1", unit=SETTINGS,
                             statistic=f"tau (noise, layer {last}'s contribution to training loss) within widths")]
    peak_gap = peak_widths(live_runs, "generalization")
    readings = {"fits": ("threshold: the smallest width that fits", thresholds),
                "peak-gap": ("threshold: the width of the peak gap, the paper's reading", peak_gap)}
    for rid, (reading, th) in readings.items():
        out.append(_rises_then_falls(layers, side_of_threshold(layers, th), "§4.2, Fig. 2", reading, rid))
    peaks = layers.groupby(["dataset", "noise", "layer", "width"]).utilization.mean().reset_index()
    argmax = peaks.loc[peaks.groupby(["dataset", "noise", "layer"]).utilization.idxmax()]
    widest = argmax.pivot_table(index=["dataset", "noise"], columns="layer", values="width")
    out.append(claims.median_claim(np.log2(widest[last]), np.log2(widest[1]), 1, id="deeper-peak-wider",
                                 claim="Deeper layers peak at larger widths (the diagonal moves bottom-right)",
                                 where="Fig. 2 caption", unit="(data set, noise) rows",
                                 statistic=f"median log2(peak width of layer {last} / of layer 1)"))
    for rid, (reading, th) in readings.items():
        th = th.dropna(subset=["threshold_width"])
        out.append(claims.rank_claim(th.noise, th.threshold_width, 1, groups=th.dataset, id=f"threshold-moves-{rid}",
                                     claim=f"The interpolation threshold moves to larger widths as noise grows ({reading})",
                                     where="§4.3, Fig. 3", unit="(data set, noise) rows",
                                     statistic="tau (noise, threshold width) within data sets"))
    # Hypothesis 2 with the noise ratio held fixed (it drives both utilization and the gap): the final layer tracks
    # the target; and, read with Hypothesis 1, it tracks it better than the first and the middle layer
    for target, label in TARGETS.items():
        d = {i: l.dropna(subset=[target]) for i, l in by_layer.items()}
        cells = _cell(d[last], "noise").to_numpy()
        name = "Hypothesis 2" if target == "generalization" else "Fig. 4"
        out.append(claims.rank_claim(d[last].utilization, d[last][target], 1, groups=cells, unit=SETTINGS,
                                     units=_setting(d[last]), id=f"final-layer-tracks-{claims.slug(target)}",
                                     claim=f"Final-layer utilization tracks the {label} ({name})",
                                     where="§3.2, §4.4, Fig. 4",
                                     statistic=f"tau (layer {last} utilization, {label}) within noise levels"))
        out.append(claims.combine(
            f"The final layer tracks the {label} better than the first and the middle layer ({name}, with "
            "Hypothesis 1)", "§3.2, §4.4", {
                f"layer {last} better than layer {other}": claims.tau_difference_claim(
                    d[last].utilization.to_numpy(), d[other].utilization.to_numpy(), d[last][target].to_numpy(), 1,
                    groups=cells, units=_setting(d[last]), unit=SETTINGS,
                    statistic=f"tau(layer {last}) - tau(layer {other}) within noise levels")
                for other in (1, middle)}, id=f"final-layer-tracks-best-{claims.slug(target)}"))
    noisy = {i: l[l.noise > 0] for i, l in by_layer.items()}
    for target, label in FIG5_TARGETS.items():
        out.append(claims.combine(f"Early layers help the {label}, deeper layers hurt it (noisy labels)", "§4.5, Fig. 5", {
            f"layer {last} hurts": claims.median_claim(noisy[last][f"contribution_{target}"], expected_sign=-1,
                                                     unit=SETTINGS, units=_setting(noisy[last]),
                                                     statistic=f"median contribution of layer {last} to the {label}"),
            "layer 1 helps": claims.median_claim(noisy[1][f"contribution_{target}"], expected_sign=1,
                                               unit=SETTINGS, units=_setting(noisy[1]),
                                               statistic=f"median contribution of layer 1 to the {label}")},
            id=f"early-help-deep-hurt-{claims.slug(target)}"))
    over = reinit_effect(overfit_runs(runs, thresholds))
    out.append(claims.median_claim(over.d_loss_last1, expected_sign=-1, unit="noisy settings over the threshold",
                                 units=_setting(over), id="reset-lowers-test-loss",
                                 claim="Resetting the final layer after training lowers the test loss of an overfit model",
                                 where="§4.5, Fig. 5", statistic="median change in test loss (nats), last layer reset"))
    out.append(claims.median_claim(over.d_acc_last1, expected_sign=1, unit="noisy settings over the threshold",
                                 units=_setting(over), id="reset-raises-test-accuracy",
                                 claim="Resetting the final layers regularises after training: test accuracy rises",
                                 where="§4.5, §5", statistic="median change in test accuracy, last layer reset"))
    met, reason = in_regime(runs, thresholds, settings)
    return claims.table([claims.precondition(c, met, reason, ("did not hold",)) for c in out])
