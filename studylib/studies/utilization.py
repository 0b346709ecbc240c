"""The layer-utilization chapter's grid, its threshold and Kendall-tau analyses and its claims (seed 001).

Used by the layer utilization and re-initialisation chapter. The metrics are in
:mod:`studylib.metrics.utilization`; each trained run is :func:`studylib.runs.utilization.utilization_run`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims, stats
from ..platform.cache import cached_run
from ..platform.executor import run_grid
from ..runs.utilization import utilization_run


def grid_task(**p) -> dict:
    """A grid task for :func:`studylib.platform.executor.run_grid`: the cached run's metrics plus its parameters."""
    run = cached_run("utilization", p, utilization_run)
    return {**p, **run.metrics, "from_cache": run.from_cache}


def run_grid_runs(dataset: str, widths, noises, repeats: int, settings: dict, workers=None) -> pd.DataFrame:
    """Every (width, noise, repeat) run of one data set through the grid executor; one row per run."""
    tasks = [{"dataset": dataset, "width": w, "noise": float(nz), "repeat": r, **settings}
             for w in widths for nz in noises for r in range(repeats)]
    return pd.DataFrame(run_grid(grid_task, tasks, workers=workers, desc=f"{dataset} grid"))


def per_layer(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, layer): the runs' per-layer lists unpacked next to their run-level columns."""
    rows = []
    for _, r in runs.iterrows():
        layers = pd.DataFrame(r["layers"])
        for col in ("dataset", "width", "noise", "repeat", "generalization", "resilience", "num_parameters",
                    "train_loss", "test_loss"):
            layers[col] = r[col]
        rows.append(layers)
    return pd.concat(rows, ignore_index=True)


def threshold_widths(runs: pd.DataFrame, train_acc: float = 0.99) -> pd.DataFrame:
    """The interpolation threshold of each (data set, noise): the smallest width whose runs fit the
    (noisy) training labels, mean training accuracy >= ``train_acc``; NaN if no width does."""
    mean = runs.groupby(["dataset", "noise", "width"]).train_acc.mean().reset_index()
    fits = mean[mean.train_acc >= train_acc]
    first = fits.groupby(["dataset", "noise"]).width.min()
    return mean.groupby(["dataset", "noise"]).size().to_frame("widths").join(first.rename("threshold_width")).reset_index()


def side_of_threshold(runs: pd.DataFrame, thresholds: pd.DataFrame) -> pd.Series:
    """'over' for runs at or beyond their (data set, noise) threshold width, else 'under'."""
    t = runs.merge(thresholds, on=["dataset", "noise"], how="left").threshold_width
    return pd.Series(np.where(runs.width.to_numpy() >= t.to_numpy(), "over", "under"), index=runs.index)


def utilization_taus(layers: pd.DataFrame, target: str, level: float = 0.95) -> pd.DataFrame:
    """Kendall tau between each layer's utilization and a run-level ``target`` (generalization or resilience),
    per data set, with its interval (:func:`studylib.stats.kendall`): pooled over all runs, and stratified
    within noise levels (the noise ratio drives both utilization and the gap, so the pooled tau mixes the two).
    Hypothesis 2: the final layer's tau should be high, and higher than the first layer's."""
    rows = []
    for (dataset, layer), d in layers.dropna(subset=[target]).groupby(["dataset", "layer"]):
        pooled = stats.kendall(d.utilization, d[target], level=level)
        within = stats.kendall(d.utilization, d[target], groups=d.noise, level=level)
        rows.append({"dataset": dataset, "layer": layer, "target": target, "runs": pooled.n,
                     "tau (pooled)": pooled.tau, "pooled low": pooled.low, "pooled high": pooled.high,
                     "tau (within noise)": within.tau, "within low": within.low, "within high": within.high})
    return pd.DataFrame(rows)


def reinit_effect(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy and loss change when the last k = 1, 2 layers are reset to their initial weights."""
    out = runs[["dataset", "width", "noise", "repeat", "test_acc", "test_loss"]].copy()
    for k in (1, 2):
        out[f"d_acc_last{k}"] = runs[f"reinit_last{k}_test_acc"] - runs.test_acc
        out[f"d_loss_last{k}"] = runs[f"reinit_last{k}_test_loss"] - runs.test_loss
    return out


#: the chapter's source, as the verdicts page names it
PAPER = "Wang & Yang (n.d.)"
#: the paper's training length (§4.1): every model trained for a fixed 10,000 epochs
PAPER_EPOCHS = 10_000


def claims_table(runs: pd.DataFrame, layers: pd.DataFrame, thresholds: pd.DataFrame) -> pd.DataFrame:
    """The claims of seed 001, each decided by the claims engine over the grid's runs: taus stratified by the
    variables the claim does not vary (data set, noise, width), paired t intervals over runs or grid rows, and
    each claim tested on both data sets at once through the strata. A "did not hold" stands only for runs trained
    the paper's 10,000 epochs; shorter runs make it inconclusive."""
    last = int(layers.layer.max())
    cell = lambda d, *cols: d[["dataset", *cols]].astype(str).agg("/".join, axis=1)
    keys = ["dataset", "width", "noise", "repeat"]
    first_l = layers[layers.layer == 1].sort_values(keys)
    last_l = layers[layers.layer == last].sort_values(keys)
    out = [claims.rank_claim(last_l.noise, last_l.contribution_train_loss, 1, groups=cell(last_l, "width"),
                             claim="Deeper layers only start contributing as the data grow more complex (Hypothesis 1)",
                             where="§3.2, §4.2, Fig. 1", unit="runs",
                             statistic=f"tau (noise, layer {last}'s contribution to training loss) within widths")]
    # utilization rises with width up to the interpolation threshold, then falls
    side = side_of_threshold(layers, thresholds)
    parts = {}
    for name, sign in (("under the threshold", 1), ("over the threshold", -1)):
        # one point per run (its layers' mean utilization): a run's layers are not independent observations
        d = layers[side == name.split()[0]].groupby(keys).utilization.mean().reset_index()
        parts[name] = (claims.rank_claim(d.width, d.utilization, sign, groups=cell(d, "noise"), unit="runs",
                                         statistic="tau (width, mean utilization over layers) within (data set, "
                                                   "noise)")
                       if len(d) else claims.not_testable(name, "", "no run on this side of the threshold"))
    out.append(claims.combine("Utilization rises with width up to the threshold, then falls", "§4.2, Fig. 2", parts))
    # deeper layers peak at larger widths
    peaks = layers.groupby(["dataset", "noise", "layer", "width"]).utilization.mean().reset_index()
    argmax = peaks.loc[peaks.groupby(["dataset", "noise", "layer"]).utilization.idxmax()]
    by_layer = argmax.pivot_table(index=["dataset", "noise"], columns="layer", values="width")
    out.append(claims.mean_claim(np.log2(by_layer[last]), np.log2(by_layer[1]), 1,
                                 claim="Deeper layers peak at larger widths (the diagonal moves bottom-right)",
                                 where="Fig. 2 caption", unit="(data set, noise) rows",
                                 statistic=f"mean log2(peak width of layer {last} / of layer 1)"))
    th = thresholds.dropna(subset=["threshold_width"])
    out.append(claims.rank_claim(th.noise, th.threshold_width, 1, groups=th.dataset,
                                 claim="The interpolation threshold moves to larger widths as noise grows",
                                 where="§4.3, Fig. 3", unit=f"(data set, noise) rows ({len(thresholds) - len(th)} "
                                 "never interpolate)", statistic="tau (noise, threshold width) within data sets"))
    # Hypothesis 2, within noise levels (the noise ratio drives both)
    noise = cell(last_l, "noise")
    out.append(claims.combine(
        "Final-layer utilization tracks the generalization gap, better than the first layer (Hypothesis 2)",
        "§3.2, §4.4, Fig. 4",
        {f"layer {last} tracks the gap": claims.rank_claim(
            last_l.utilization, last_l.generalization, 1, groups=noise, unit="runs",
            statistic=f"tau (layer {last} utilization, gap) within noise levels"),
         f"layer {last} better than layer 1": claims.tau_difference_claim(
            last_l.utilization.to_numpy(), first_l.utilization.to_numpy(), last_l.generalization.to_numpy(), 1,
            groups=noise.to_numpy(), statistic=f"tau(layer {last}) - tau(layer 1) within noise levels")}))
    noisy_first, noisy_last = first_l[first_l.noise > 0], last_l[last_l.noise > 0]
    out.append(claims.combine("Early layers help the test loss, deeper layers hurt it (noisy labels)",
                              "§4.5, Fig. 5", {
        f"layer {last} hurts": claims.mean_claim(noisy_last.contribution_test_loss, expected_sign=-1, unit="noisy runs",
                                                 statistic=f"mean contribution of layer {last} to test loss"),
        "layer 1 helps": claims.mean_claim(noisy_first.contribution_test_loss, expected_sign=1, unit="noisy runs",
                                           statistic="mean contribution of layer 1 to test loss")}))
    eff = reinit_effect(runs)
    eff = eff[eff.noise > 0]
    out.append(claims.combine("Re-initialising the final layers after training reverts overfitting", "§4.5, §5", {
        "test accuracy rises": claims.mean_claim(eff.d_acc_last1, expected_sign=1, unit="noisy runs",
                                                 statistic="mean change in test accuracy, last layer reset"),
        "test loss falls": claims.mean_claim(eff.d_loss_last1, expected_sign=-1, unit="noisy runs",
                                             statistic="mean change in test loss, last layer reset")}))
    short = int((runs.epochs < PAPER_EPOCHS).sum())
    reason = (f"{short} of {len(runs)} runs stopped before the paper's {PAPER_EPOCHS:,} epochs (at a training-loss "
              "plateau or the epoch cap): refuting the paper needs its regime")
    return claims.table([claims.precondition(c, short == 0, reason, ("did not hold",)) for c in out])
