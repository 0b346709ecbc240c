"""The layer-utilization chapter's grid, its threshold and Kendall-tau analyses and its claims (seed 001).

Used by the layer utilization and re-initialisation chapter. The metrics are in
:mod:`studylib.metrics.utilization`; each trained run is :func:`studylib.runs.utilization.utilization_run`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..claims import ClaimsTable
from ..platform.cache import cached_run
from ..platform.executor import run_grid
from ..runs.utilization import utilization_run
from ..stats import bootstrap_interval, kendall_tau


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


def utilization_taus(layers: pd.DataFrame, target: str, n_boot: int, seed: int) -> pd.DataFrame:
    """Kendall tau between each layer's utilization and a run-level ``target`` (generalization or
    resilience), per data set, with a bootstrap interval over runs (Hypothesis 2: the final layer's
    tau should be high, and higher than the first layer's)."""
    rng = np.random.default_rng(seed)  # one stream for every layer's interval
    rows = []
    for (dataset, layer), d in layers.dropna(subset=[target]).groupby(["dataset", "layer"]):
        x, y = d.utilization.to_numpy(), d[target].to_numpy()
        tau, p = stats.kendalltau(x, y)
        lo, hi = bootstrap_interval(kendall_tau, x, y, n_boot=n_boot, seed=rng)
        rows.append({"dataset": dataset, "layer": layer, "target": target, "n": len(x), "kendall_tau": tau,
                     "p": p, "tau_lo": lo, "tau_hi": hi})
    return pd.DataFrame(rows)


def reinit_effect(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy and loss change when the last k = 1, 2 layers are reset to their initial weights."""
    out = runs[["dataset", "width", "noise", "repeat", "test_acc", "test_loss"]].copy()
    for k in (1, 2):
        out[f"d_acc_last{k}"] = runs[f"reinit_last{k}_test_acc"] - runs.test_acc
        out[f"d_loss_last{k}"] = runs[f"reinit_last{k}_test_loss"] - runs.test_loss
    return out


def claims_table(runs: pd.DataFrame, layers: pd.DataFrame, thresholds: pd.DataFrame, taus: pd.DataFrame) -> pd.DataFrame:
    """The claims of seed 001, each with the evidence computed here and a verdict."""
    out = ClaimsTable()
    last = layers.layer.max()
    noisy = layers[layers.noise > 0]
    # C1 / Hypothesis 1: deeper layers start contributing (to the training loss) as label noise rises
    t_first = stats.kendalltau(layers[layers.layer == 1].noise, layers[layers.layer == 1].contribution_train_loss)[0]
    t_last = stats.kendalltau(layers[layers.layer == last].noise, layers[layers.layer == last].contribution_train_loss)[0]
    out.add("Deeper layers only start contributing as the data grow more complex (Hypothesis 1)", "001 §3.2, §4.2, Fig. 1",
            f"Kendall tau between noise ratio and contribution to training loss: layer {last} {t_last:+.2f}, "
            f"layer 1 {t_first:+.2f}", t_last > 0.2 and t_last > t_first, t_last > t_first)
    # C3: utilization peaks at an intermediate width in each noise row
    peaks = layers.groupby(["dataset", "noise", "layer", "width"]).utilization.mean().reset_index()
    argmax = peaks.loc[peaks.groupby(["dataset", "noise", "layer"]).utilization.idxmax()]
    widest = layers.width.max()
    interior = float((argmax.width < widest).mean())
    out.add("Utilization rises with width up to the threshold, then falls", "001 §4.2, Fig. 2",
            f"the row maximum lies below the widest model in {interior:.0%} of (data set, noise, layer) rows",
            interior >= 0.75, interior >= 0.5)
    # C4: deeper layers peak at larger widths
    by_layer = argmax.pivot_table(index=["dataset", "noise"], columns="layer", values="width")
    later = float((by_layer[last] >= by_layer[1]).mean())
    out.add("Deeper layers peak at larger widths (the diagonal moves bottom-right)", "001 Fig. 2 caption",
            f"layer {last} peaks at a width >= layer 1's in {later:.0%} of rows", later >= 0.75, later >= 0.5)
    # C5: the interpolation threshold moves to larger widths as noise grows
    th = thresholds.dropna(subset=["threshold_width"])
    t_th = (th.groupby("dataset").apply(lambda d: kendall_tau(d.noise, d.threshold_width), include_groups=False)
            if len(th) else pd.Series(dtype=float))
    missing = int(thresholds.threshold_width.isna().sum())
    out.add("The interpolation threshold moves to larger widths as noise grows", "001 §4.3, Fig. 3",
            "Kendall tau (noise, threshold width): " + ", ".join(f"{d} {t:+.2f}" for d, t in t_th.items())
            + f"; {missing} (data set, noise) rows never interpolate",
            len(t_th) > 0 and bool((t_th > 0).all()), len(t_th) > 0 and bool((t_th >= 0).any()))
    # Hypothesis 2 / C8 / C9: final-layer utilization tracks generalization, more than the first layer's
    g = taus[taus.target == "generalization"].set_index(["dataset", "layer"])
    datasets = sorted(g.index.get_level_values(0).unique())
    ev = "; ".join(f"{d}: layer {last} tau {g.loc[(d, last), 'kendall_tau']:+.2f} "
                   f"[{g.loc[(d, last), 'tau_lo']:+.2f}, {g.loc[(d, last), 'tau_hi']:+.2f}], layer 1 "
                   f"{g.loc[(d, 1), 'kendall_tau']:+.2f}" for d in datasets)
    strong = all(g.loc[(d, last), "tau_lo"] > 0 and g.loc[(d, last), "kendall_tau"] > g.loc[(d, 1), "kendall_tau"]
                 for d in datasets)
    positive = all(g.loc[(d, last), "kendall_tau"] > 0 for d in datasets)
    out.add("Final-layer utilization tracks the generalization gap, better than the first layer (Hypothesis 2)",
            "001 §3.2, §4.4, Fig. 4", ev, strong, positive)
    # C10: deeper layers contribute negatively to test loss and resilience (on noisy data)
    neg_last = float((noisy[noisy.layer == last].contribution_test_loss < 0).mean())
    pos_first = float((noisy[noisy.layer == 1].contribution_test_loss > 0).mean())
    out.add("Early layers help the test loss, deeper layers hurt it (noisy labels)", "001 §4.5, Fig. 5",
            f"contribution to test loss < 0 for layer {last} in {neg_last:.0%} of noisy runs; > 0 for layer 1 in "
            f"{pos_first:.0%}", neg_last >= 0.5 and pos_first >= 0.5, neg_last >= 0.5 or pos_first >= 0.5)
    # C11: re-initialising the last layers reverts overfitting
    eff = reinit_effect(runs)
    helps = float((eff[eff.noise > 0].d_loss_last1 < 0).mean())
    acc = float((eff[eff.noise > 0].d_acc_last1 > 0).mean())
    out.add("Re-initialising the final layers after training reverts overfitting", "001 §4.5, §5",
            f"resetting the last layer lowers the test loss in {helps:.0%} and raises test accuracy in {acc:.0%} "
            "of noisy-label runs", helps >= 0.5 and acc >= 0.5, helps >= 0.5)
    out.add("Models trained 10,000 epochs; 3 (MNIST) and 6 (CIFAR-10) repeats", "001 §4.1",
            "not reproduced at that scale on this CPU: runs stop at a training-loss plateau or the epoch cap "
            "(see the stop reasons above)", None)
    return out.frame()
