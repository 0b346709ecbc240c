"""Statistics for "does a metric predict accuracy across a model series?".

Used by the ESD audit chapter (Tables 1 and 5 analogues). Following the reviewer response (seed 004),
each series is regressed on its own; every statistic is in-sample, as in the paper, and comes with the
Kendall tau p-value, a residual-normality test and bootstrap intervals over models so that the reader
can see how little a 3-to-6-model series pins down.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def series_regression(metric, accuracy, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Ordinary least squares of ``accuracy`` on ``metric`` over the models of one series.

    Returns slope, intercept, RMSE, R^2, Kendall tau and its p-value, the Shapiro-Wilk p-value of the
    residuals (NaN below 3 models), and bootstrap percentile intervals (models resampled with
    replacement) for the slope and for tau. Fewer than 3 models, or a constant metric, raise ValueError.
    """
    x, y = np.asarray(metric, float), np.asarray(accuracy, float)
    if len(x) != len(y):
        raise ValueError(f"metric and accuracy differ in length ({len(x)} vs {len(y)})")
    if len(x) < 3:
        raise ValueError(f"a series needs at least 3 models for a regression, got {len(x)}")
    if np.ptp(x) == 0:
        raise ValueError("the metric is constant over the series: no regression")
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss_tot = ((y - y.mean()) ** 2).sum()
    tau, p_tau = stats.kendalltau(x, y)
    shapiro_p = stats.shapiro(resid).pvalue if len(x) >= 3 and np.ptp(resid) > 0 else math.nan
    rng = np.random.default_rng(seed)
    slopes, taus = [], []
    for _ in range(n_boot):
        i = rng.integers(len(x), size=len(x))
        if np.ptp(x[i]) == 0:
            continue
        slopes.append(np.polyfit(x[i], y[i], 1)[0])
        taus.append(stats.kendalltau(x[i], y[i])[0])
    q = [(1 - level) / 2, (1 + level) / 2]
    s_lo, s_hi = np.nanquantile(slopes, q) if slopes else (math.nan, math.nan)
    t_lo, t_hi = np.nanquantile(taus, q) if taus else (math.nan, math.nan)
    return {"n": len(x), "slope": float(slope), "intercept": float(intercept),
            "rmse": float(np.sqrt((resid ** 2).mean())),
            "r2": float(1 - (resid ** 2).sum() / ss_tot) if ss_tot > 0 else math.nan,
            "kendall_tau": float(tau), "tau_p": float(p_tau), "shapiro_p": float(shapiro_p),
            "slope_lo": float(s_lo), "slope_hi": float(s_hi), "tau_lo": float(t_lo), "tau_hi": float(t_hi)}


def series_table(summaries: pd.DataFrame, metrics, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (series, metric) from a frame with columns ``series``, ``accuracy`` and the metrics."""
    rows = []
    for series, group in summaries.groupby("series", sort=False):
        for metric in metrics:
            rows.append({"series": series, "metric": metric,
                         **series_regression(group[metric], group["accuracy"], n_boot, seed)})
    return pd.DataFrame(rows)
