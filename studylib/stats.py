"""The study's statistics: the one bootstrap, and "does a metric predict accuracy across a model series?".

:func:`bootstrap_interval` is used by every chapter that reports an interval (ESD averages and alphas,
utilization and IIW-epoch Kendall taus, the series regressions). The regressions serve the ESD audit
chapter (Tables 1 and 5 analogues). Following the reviewer response (seed 004),
each series is regressed on its own; every statistic is in-sample, as in the paper, and comes with the
Kendall tau p-value, a residual-normality test and bootstrap intervals over models so that the reader
can see how little a 3-to-6-model series pins down.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def bootstrap_interval(statistic, *samples, n_boot: int = 1000, seed: int | np.random.Generator = 0,
                       level: float = 0.95):
    """Percentile bootstrap interval of ``statistic(*samples)``: ``n_boot`` times, one index vector drawn with
    replacement (``rng.integers(n, size=n)``) resamples every sample alike (pairs stay pairs). ``seed``: an int,
    or a ``numpy`` Generator that several intervals draw from in turn.

    ``statistic`` returns a number or a tuple of numbers; non-finite values are dropped, each component on
    its own. Returns ``(lo, hi)`` (floats, or arrays for a tuple statistic); NaN where no value is finite.
    """
    samples = [np.asarray(s) for s in samples]
    n = len(samples[0])
    if n == 0 or any(len(s) != n for s in samples):
        raise ValueError(f"samples must be non-empty and of one length, got {[len(s) for s in samples]}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be an int >= 1, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        i = rng.integers(n, size=n)
        values.append(np.asarray(statistic(*(s[i] for s in samples)), dtype=float))
    scalar = values[0].ndim == 0
    values = np.asarray(values, dtype=float).reshape(n_boot, -1)
    q = [(1 - level) / 2, (1 + level) / 2]
    bounds = np.full((2, values.shape[1]), math.nan)
    for j in range(values.shape[1]):
        finite = values[:, j][np.isfinite(values[:, j])]
        if len(finite):
            bounds[:, j] = np.quantile(finite, q)
    return (float(bounds[0, 0]), float(bounds[1, 0])) if scalar else (bounds[0], bounds[1])


def kendall_tau(x, y) -> float:
    """Kendall's tau of ``x`` and ``y``; NaN (without scipy's small-sample warning) below two points."""
    return float(stats.kendalltau(x, y)[0]) if len(x) >= 2 else math.nan


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

    def slope_and_tau(xs, ys):
        if np.ptp(xs) == 0:
            return math.nan, math.nan
        return np.polyfit(xs, ys, 1)[0], stats.kendalltau(xs, ys)[0]

    (s_lo, t_lo), (s_hi, t_hi) = bootstrap_interval(slope_and_tau, x, y, n_boot=n_boot, seed=seed, level=level)
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
