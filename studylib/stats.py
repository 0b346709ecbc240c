"""The study's statistics, in one place: Kendall's tau with exact p-values and intervals valid at small n, the
stratified (granulated) tau, paired comparisons, the one bootstrap (from :mod:`studylib.resampling`), and the series regressions.

Every chapter's claims table reads its numbers from here through :mod:`studylib.claims`; the ESD audit chapter
also shows :func:`series_table` (its Tables 1 and 5 analogues).

**The tau interval.** Kendall's tau depends on the data only through their ranks, so its sampling distribution
depends only on the copula of (x, y). :func:`kendall` inverts a Neyman confidence belt: for every true tau on a
grid of step 0.01 it takes the distribution of the sample tau at this n under a Gaussian copula (simulated for
n <= 30, where the tau is discrete; normal with the exact U-statistic variance above), and keeps every true tau
under which the observed value is not in either tail of mass ``(1 - level) / 2``. Tied data are simulated with
their observed ties, so the belt is that of the tie-corrected tau-b. Like Clopper and Pearson's
binomial interval, it never collapses to a point at small n: three points in perfect order give an interval
that reaches below 0. Its coverage under Gaussian and non-Gaussian copulas is measured in ``tests/test_stats.py``.
A percentile bootstrap over 3-6 models is not used: at a perfect ordering every resample has the same sign.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .resampling import bootstrap_interval, strata_masks  # noqa: F401 (the one bootstrap, part of this API)

#: how many :func:`tau_draws` arrays stay in memory (each ``len(GRID) x DRAWS`` floats): bounded, so a
#: stratified tau over many small strata does not grow the process
TAU_DRAWS_CACHED = 16
#: how many designs' stratified draws (``_mean_draws``, one ``len(GRID) x DRAWS`` array each) stay in memory
MEAN_DRAWS_CACHED = 8
#: true taus of the confidence belt
GRID = np.round(np.linspace(-1.0, 1.0, 201), 10)
#: simulated sample taus per grid point (n <= ``SIMULATED_UP_TO``)
DRAWS = 4000
#: largest n whose tau distribution is simulated; above it the normal approximation is used
SIMULATED_UP_TO = 30
#: largest n with ties whose exact permutation p-value is enumerated (n! permutations)
ENUMERATED_UP_TO = 8
_EPS = 1e-9


@dataclass(frozen=True)
class Estimate:
    """A statistic with its interval: ``estimate``, ``low``, ``high`` (NaN where no valid interval exists, with
    ``note`` saying why), two-sided ``p`` against 0 (NaN where not meaningful), ``n`` observations, ``strata``
    groups (1 when not stratified), the ``level`` and the ``method``."""
    statistic: str
    estimate: float
    low: float
    high: float
    p: float
    n: int
    level: float
    method: str
    strata: int = 1
    note: str = ""

    @property
    def tau(self) -> float:
        """The estimate, under the name Kendall results are read by."""
        return self.estimate


def _check_level(level: float) -> None:
    if not 0.5 <= level < 1:
        raise ValueError(f"level must be a float in [0.5, 1), got {level!r}")


def kendall_tau(x, y) -> float:
    """Kendall's tau-b of ``x`` and ``y``; NaN (without scipy's warnings) below two points or when either is
    constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.kendalltau(x, y)[0])


# ---- the sampling distribution of tau under a Gaussian copula -------------------------------------------------

def zeta1(tau) -> np.ndarray:
    """The U-statistic variance component of Kendall's tau under a Gaussian copula with Kendall tau ``tau``:
    ``Cov(h12, h13) = 1/9 - (4/pi^2) arcsin(rho/2)^2`` with ``rho = sin(pi tau / 2)`` (checked against a
    simulation in the tests)."""
    rho = np.sin(np.pi * np.asarray(tau, float) / 2)
    return np.clip(1 / 9 - 4 / np.pi ** 2 * np.arcsin(rho / 2) ** 2, 0, None)


def tau_variance(tau, n: int) -> np.ndarray:
    """Exact variance of the sample tau of ``n`` pairs from a Gaussian copula with Kendall tau ``tau``:
    ``2 / (n (n - 1)) * (2 (n - 2) zeta1 + 1 - tau^2)`` (Hoeffding's U-statistic variance)."""
    tau = np.asarray(tau, float)
    return 2 / (n * (n - 1)) * (2 * (n - 2) * zeta1(tau) + 1 - tau ** 2)


def tie_pattern(values) -> tuple[int, ...] | None:
    """The sorted dense ranks of ``values`` (e.g. ``(0, 0, 1, 2, 2)``), the part of the data a tie-corrected tau's
    distribution depends on; None without ties."""
    codes = np.unique(np.asarray(values, float), return_inverse=True)[1]
    return None if codes.max() + 1 == len(codes) else tuple(int(c) for c in np.sort(codes))


def _tie_sizes(pattern: tuple[int, ...] | None, n: int) -> np.ndarray:
    """The sizes of the tie groups of a :func:`tie_pattern` (all 1 without ties)."""
    return np.bincount(pattern) if pattern is not None else np.ones(n, int)


def _tied_pairs(pattern: tuple[int, ...] | None, n: int) -> int:
    sizes = _tie_sizes(pattern, n)
    return int((sizes * (sizes - 1) // 2).sum())


def _null_variance_ratio(n: int, x_ties, y_ties) -> float:
    """Var(tau-b) / Var(tau) under independence for the tie patterns (the standard tie-corrected variance of S)."""
    def terms(pattern):
        t = _tie_sizes(pattern, n)
        return ((t * (t - 1) * (2 * t + 5)).sum(), (t * (t - 1)).sum(), (t * (t - 1) * (t - 2)).sum())
    (vx, ax, bx), (vy, ay, by) = terms(x_ties), terms(y_ties)
    var_s = ((n * (n - 1) * (2 * n + 5) - vx - vy) / 18 + ax * ay / (2 * n * (n - 1))
             + bx * by / (9 * n * (n - 1) * (n - 2)))
    n0 = n * (n - 1) / 2
    untied = 2 * (2 * n + 5) / (9 * n * (n - 1))
    return var_s / ((n0 - _tied_pairs(x_ties, n)) * (n0 - _tied_pairs(y_ties, n))) / untied


@functools.lru_cache(maxsize=TAU_DRAWS_CACHED)
def tau_draws(n: int, copy: int = 0, x_ties: tuple[int, ...] | None = None,
              y_ties: tuple[int, ...] | None = None) -> np.ndarray:
    """Sample taus of ``n`` pairs under a Gaussian copula at every true tau of :data:`GRID`: an array of shape
    ``(len(GRID), DRAWS)``, fixed by its arguments (``copy``: independent copies for independent strata).

    For ``n <= SIMULATED_UP_TO`` the pairs are simulated, with common random numbers across the grid so that
    each draw's tau is non-decreasing in the true tau; with ties (``x_ties``, ``y_ties`` from :func:`tie_pattern`)
    the simulated pairs take the observed tied ranks and the draws are tau-b. Above, the draws are normal with
    :func:`tau_variance` (scaled by the null variance ratio of tau-b with these ties), clipped to [-1, 1]."""
    if n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    rng = np.random.default_rng([n, copy, 2020])
    if n > SIMULATED_UP_TO:
        z = rng.standard_normal(DRAWS)
        scale = np.sqrt(tau_variance(GRID, n) * _null_variance_ratio(n, x_ties, y_ties))
        return np.clip(GRID[:, None] + scale[:, None] * z[None, :], -1, 1)
    z1, z2 = rng.standard_normal((2, DRAWS, n))
    order = np.argsort(z1, axis=1)                     # x sorted: the pair (i < j) is concordant iff y_j > y_i
    z1, z2 = np.take_along_axis(z1, order, 1), np.take_along_axis(z2, order, 1)
    i, j = np.triu_indices(n, 1)
    sx = np.sign(np.asarray(x_ties)[j] - np.asarray(x_ties)[i]) if x_ties else 1.0
    n0 = n * (n - 1) / 2
    norm = math.sqrt((n0 - _tied_pairs(x_ties, n)) * (n0 - _tied_pairs(y_ties, n)))
    out = np.empty((len(GRID), DRAWS))
    for g, t in enumerate(GRID):
        rho = math.sin(math.pi * t / 2)
        y = rho * z1 + math.sqrt(max(1 - rho * rho, 0.0)) * z2
        if y_ties:  # the draw's y ranks carry the observed ties
            y = np.asarray(y_ties)[np.argsort(np.argsort(y, axis=1), axis=1)]
        out[g] = (np.sign(y[:, j] - y[:, i]) * sx).sum(axis=1) / norm
    return out


@functools.lru_cache(maxsize=MEAN_DRAWS_CACHED)
def _mean_draws(strata: tuple) -> np.ndarray:
    """The draws of the mean of independent within-stratum taus, one stratum per ``(n, x_ties, y_ties)`` of
    ``strata``: kept per design, so that a claim's audit (hundreds of nulls of one design) simulates them once."""
    copies: dict[tuple, int] = {}
    draws = []
    for key in strata:  # independent draws for independent strata of one size and tie pattern
        draws.append(tau_draws(key[0], copies.get(key, 0), *key[1:]))
        copies[key] = copies.get(key, 0) + 1
    return draws[0] if len(draws) == 1 else np.mean(draws, axis=0)


def _belt(observed: float, draws: np.ndarray, level: float) -> tuple[float, float]:
    """The grid taus under which ``observed`` lies in neither tail (mass (1 - level) / 2) of ``draws``."""
    tail = (1 - level) / 2
    below = (draws <= observed + _EPS).mean(axis=1)
    above = (draws >= observed - _EPS).mean(axis=1)
    accepted = GRID[(below > tail) & (above > tail)]
    if len(accepted) == 0:  # only at simulation noise in an extreme tail: no interval
        return math.nan, math.nan
    return float(accepted.min()), float(accepted.max())


def _exact_p(x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """Two-sided p-value of tau = 0: exact (scipy) without ties, enumerated over all n! pairings with ties at
    n <= ENUMERATED_UP_TO, else scipy's tie-corrected normal approximation."""
    ties = len(np.unique(x)) < len(x) or len(np.unique(y)) < len(y)
    if not ties:
        return float(stats.kendalltau(x, y, method="exact").pvalue), "exact"
    if len(x) > ENUMERATED_UP_TO:
        return float(stats.kendalltau(x, y).pvalue), "normal approximation (ties)"
    i, j = np.triu_indices(len(x), 1)
    sx = np.sign(x[j] - x[i])
    perms = np.array(list(itertools.permutations(range(len(y)))))
    yp = y[perms]
    numerators = (np.sign(yp[:, j] - yp[:, i]) * sx).sum(axis=1)
    observed = (np.sign(y[j] - y[i]) * sx).sum()
    return float((np.abs(numerators) >= abs(observed) - _EPS).mean()), "exact enumeration (ties)"


def kendall(x, y, groups=None, level: float = 0.95) -> Estimate:
    """Kendall's tau-b of ``x`` and ``y`` with its ``level`` interval (the inverted belt of the module docstring)
    and a two-sided p-value of tau = 0 (exact at small n).

    With ``groups`` (one label per point), the stratified tau: the mean of the within-group taus (Jiang et al.
    2020's granulated tau, Psi), so that a variable that drives both x and y can be held fixed; its interval is
    the belt of that mean (independent groups, one common within-group tau) and its p-value the belt's
    probability under tau = 0. Groups with fewer than two points, or with x or y constant, are left out.
    Ties are simulated as observed (tau-b). Non-finite pairs are dropped. Fewer than two usable points give NaN
    with a ``note``; left-out groups are named in the ``note``. Used by every
    chapter's claims (through :func:`studylib.claims.rank_claim`).
    """
    _check_level(level)
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
    labels = np.zeros(len(x), int) if groups is None else pd.factorize(pd.Series(list(groups)))[0]
    if len(labels) != len(x):
        raise ValueError(f"groups must give one label per point ({len(x)}), got {len(labels)}")
    keep = np.isfinite(x) & np.isfinite(y)
    parts = [(x[keep & (labels == g)], y[keep & (labels == g)]) for g in np.unique(labels)]
    parts = [(a, b) for a, b in parts if len(a) >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0]
    name = "Kendall tau" if groups is None else "stratified Kendall tau"
    n = sum(len(a) for a, _ in parts)
    if not parts:
        return Estimate(name, math.nan, math.nan, math.nan, math.nan, int(keep.sum()), level, "none", 0,
                        "fewer than two distinct points" + ("" if groups is None else " in every group"))
    taus = [float(stats.kendalltau(a, b)[0]) for a, b in parts]
    observed = float(np.mean(taus))
    sizes = [len(a) for a, _ in parts]
    draws = _mean_draws(tuple((len(a), tie_pattern(a), tie_pattern(b)) for a, b in parts))
    low, high = _belt(observed, draws, level)
    notes = []
    if not (math.isfinite(low) and math.isfinite(high)):
        notes.append("the observed tau lies outside the simulated belt")
    n_groups = len(np.unique(labels))
    if groups is not None and len(parts) < n_groups:
        notes.append(f"{n_groups - len(parts)} of {n_groups} groups left out (under two points, or x or y constant)")
    method = "Gaussian-copula belt" + ("" if max(sizes) <= SIMULATED_UP_TO else " (normal above n = 30)")
    if groups is None:
        p, p_method = _exact_p(*parts[0])
        method += f"; p {p_method}"
    else:
        null = draws[int(np.argmin(np.abs(GRID)))]
        p = float((np.abs(null) >= abs(observed) - _EPS).mean())
        method += "; p from the belt at tau = 0"
    return Estimate(name, observed, low, high, p, n, level, method, len(parts), "; ".join(notes))


def kendall_at(observed: float, sizes: list[int], level: float = 0.95) -> Estimate:
    """The belt interval :func:`kendall` would give an observed (stratified) tau ``observed`` over strata of
    ``sizes`` points without ties: the best case of a claim of "no relation" (observed 0), from which
    :mod:`studylib.designs` tells whether such a claim can be decided at this n."""
    _check_level(level)
    low, high = _belt(observed, _mean_draws(tuple((size, None, None) for size in sizes)), level)
    return Estimate("Kendall tau" if len(sizes) == 1 else "stratified Kendall tau", observed, low, high, math.nan,
                    sum(sizes), level, "Gaussian-copula belt", len(sizes))


COPULAS = ("gaussian", "clayton")


def simulate_pairs(n: int, tau: float, copula: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs with Kendall tau ``tau`` from a Gaussian copula (``rho = sin(pi tau / 2)``) or a Clayton copula
    (lower-tail dependent, ``theta = 2 tau / (1 - tau)``, ``0 <= tau < 1``), by conditional sampling."""
    if copula not in COPULAS:
        raise ValueError(f"copula must be one of {COPULAS}, got {copula!r}")
    if copula == "gaussian":
        rho = math.sin(math.pi * tau / 2)
        x = rng.standard_normal(n)
        return x, rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal(n)
    if not 0 <= tau < 1:
        raise ValueError(f"tau must be in [0, 1) for the Clayton copula, got {tau!r}")
    u, w = rng.random(n), rng.random(n)
    if tau == 0:
        return u, w
    theta = 2 * tau / (1 - tau)
    return u, (u ** -theta * (w ** (-theta / (1 + theta)) - 1) + 1) ** (-1 / theta)


def tau_coverage(n: int, tau: float, copula: str = "gaussian", reps: int = 200, level: float = 0.95,
                 seed: int = 0) -> float:
    """The fraction of ``reps`` simulated data sets (:func:`simulate_pairs`) whose :func:`kendall` interval
    covers the true ``tau``: the measured coverage shown on the verdicts page and checked in the tests."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        r = kendall(*simulate_pairs(n, tau, copula, rng), level=level)
        hits += r.low - _EPS <= tau <= r.high + _EPS
    return hits / reps


def _differences(a, b=None) -> tuple[np.ndarray, str]:
    """The finite differences ``a - b`` (or the finite values of ``a``) and the statistic's name."""
    d = np.asarray(a, float) - (0.0 if b is None else np.asarray(b, float))
    return d[np.isfinite(d)], "mean" if b is None else "mean difference"


def paired(a, b=None, level: float = 0.95) -> Estimate:
    """The mean of ``a - b`` over matched pairs (seeds, runs, layers; ``b`` omitted: the mean of ``a``) with
    Student's t interval and two-sided t-test p-value (exact for normal differences only: a claim is decided by
    :func:`sign_test` instead). Non-finite pairs are dropped; below two pairs, or with no spread, the interval is
    NaN with a ``note``. Used by the IIW and utilization chapters' descriptive tables (the learnt cells' margins,
    the ratios by reference and by setting, the reset's effect)."""
    _check_level(level)
    d, name = _differences(a, b)
    n = len(d)
    if n == 0:
        return Estimate(name, math.nan, math.nan, math.nan, math.nan, 0, level, "t", note="no finite values")
    mean = float(d.mean())
    if n < 2:
        return Estimate(name, mean, math.nan, math.nan, math.nan, n, level, "t", note="one value: no interval")
    sd = float(d.std(ddof=1))
    if sd == 0:
        return Estimate(name, mean, math.nan, math.nan, math.nan, n, level, "t",
                        note="every difference equal: no spread to build an interval from")
    half = stats.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return Estimate(name, mean, mean - half, mean + half, p, n, level, "t")


def proportion(successes, level: float = 0.95, null: float = 0.5) -> Estimate:
    """The share of true values in ``successes`` (NaN entries dropped) minus ``null``, with the exact
    Clopper-Pearson interval and the exact two-sided binomial p-value of the share ``null``. Used by the IIW
    fine-tuning chapter's FT vs LP-FT claim (through :func:`studylib.claims.share_claim`)."""
    _check_level(level)
    s = np.asarray(successes, float)
    s = s[np.isfinite(s)]
    n, k = len(s), int(s.sum())
    name = f"share - {null:g}"
    if n == 0:
        return Estimate(name, math.nan, math.nan, math.nan, math.nan, 0, level, "Clopper-Pearson",
                        note="no observations")
    test = stats.binomtest(k, n, null)
    ci = test.proportion_ci(level, method="exact")
    return Estimate(name, k / n - null, ci.low - null, ci.high - null, float(test.pvalue), n, level,
                    "Clopper-Pearson; p exact binomial")


# ---- the ESD audit's series regressions ------------------------------------------------------------------------

#: smallest series on which the residuals' normality is tested (Shapiro-Wilk has no power below)
NORMALITY_MIN_N = 8


def series_regression(metric, accuracy, level: float = 0.95) -> dict:
    """Ordinary least squares of ``accuracy`` on ``metric`` over the models of one series: slope with its t
    interval, intercept, in-sample RMSE and R^2 (as the papers report them), the leave-one-out prediction RMSE,
    Kendall's tau with its interval and exact p-value (:func:`kendall`), and the Shapiro-Wilk p-value of the
    residuals from ``NORMALITY_MIN_N`` models on (NaN below: the test has no power). Fewer than 3 models, or a
    constant metric, raise ValueError. Used by the ESD audit chapter."""
    x, y = np.asarray(metric, float), np.asarray(accuracy, float)
    if len(x) != len(y):
        raise ValueError(f"metric and accuracy differ in length ({len(x)} vs {len(y)})")
    if len(x) < 3:
        raise ValueError(f"a series needs at least 3 models for a regression, got {len(x)}")
    if np.ptp(x) == 0:
        raise ValueError("the metric is constant over the series: no regression")
    fit = stats.linregress(x, y)
    resid = y - (fit.slope * x + fit.intercept)
    ss_tot = ((y - y.mean()) ** 2).sum()
    half = stats.t.ppf((1 + level) / 2, len(x) - 2) * fit.stderr
    tau = kendall(x, y, level=level)
    shapiro_p = (stats.shapiro(resid).pvalue if len(x) >= NORMALITY_MIN_N and np.ptp(resid) > 0 else math.nan)
    return {"n": len(x), "slope": float(fit.slope), "slope_lo": float(fit.slope - half),
            "slope_hi": float(fit.slope + half), "intercept": float(fit.intercept),
            "rmse": float(np.sqrt((resid ** 2).mean())), "loo_rmse": loo_rmse(x, y),
            "r2": float(1 - (resid ** 2).sum() / ss_tot) if ss_tot > 0 else math.nan,
            "kendall_tau": tau.tau, "tau_lo": tau.low, "tau_hi": tau.high, "tau_p": tau.p,
            "shapiro_p": float(shapiro_p)}


def loo_rmse(x, y) -> float:
    """Root mean squared leave-one-out prediction error of the least-squares line (each model predicted by the
    line fitted to the others); NaN below 3 points or where a left-out fit has a constant metric."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return math.nan
    errors = []
    for k in range(len(x)):
        xs, ys = np.delete(x, k), np.delete(y, k)
        if np.ptp(xs) == 0:
            return math.nan
        slope, intercept = np.polyfit(xs, ys, 1)
        errors.append(y[k] - (slope * x[k] + intercept))
    return float(np.sqrt(np.mean(np.square(errors))))


def series_table(summaries: pd.DataFrame, metrics, level: float = 0.95) -> pd.DataFrame:
    """One row per (series, metric) from a frame with columns ``series``, ``accuracy`` and the metrics."""
    rows = []
    for series, group in summaries.groupby("series", sort=False):
        for metric in metrics:
            rows.append({"series": series, "metric": metric,
                         **series_regression(group[metric], group["accuracy"], level)})
    return pd.DataFrame(rows)


# ---- tests at the level of units, valid at small n --------------------------------------------------------------

#: swaps per swap test: all 2^n of them while 2^n is at most this many (up to 14 units), else this many
#: random ones
RANDOM_FLIPS = 20000


def unit_means(frame: pd.DataFrame, units, strata=None) -> pd.DataFrame:
    """The rows of ``frame`` (numeric columns) averaged within each unit (``units``: one label per row; None: each
    row its own unit; rows with a missing value are left out whole), in order of the units' first appearance,
    with a ``stratum`` column from ``strata`` (one label per row, constant within a unit: a unit lies in one
    stratum, else ValueError). Seeds of one configuration, the
    repeats of one width, the seeds of one task are one unit: averaging them is what makes the units independent.
    Used by :mod:`studylib.designs`, for every chapter's claims."""
    frame = frame.reset_index(drop=True)
    labels = pd.Series(range(len(frame)) if units is None else list(units))
    if len(labels) != len(frame):
        raise ValueError(f"units must give one label per row ({len(frame)}), got {len(labels)}")
    strata = pd.Series(np.zeros(len(frame), int) if strata is None else list(strata))
    if len(strata) != len(frame):
        raise ValueError(f"strata must give one label per row ({len(frame)}), got {len(strata)}")
    if labels.isna().any():
        raise ValueError("units has missing labels: every row needs the unit it belongs to")
    keep = frame.notna().all(axis=1).to_numpy()  # a row counts whole or not at all (x and y from the same rows)
    frame, labels, strata = (v[keep].reset_index(drop=True) for v in (frame, labels, strata))
    codes = pd.factorize(labels)[0]
    if (pd.Series(pd.factorize(strata)[0]).groupby(codes).nunique() > 1).any():
        raise ValueError("a unit spans several strata: strata must be constant within a unit")
    out = frame.groupby(codes, sort=True).mean()
    out["stratum"] = strata.groupby(codes, sort=True).first().to_numpy()
    return out.reset_index(drop=True)


def _flip_matrix(n: int, rng: np.random.Generator, flips: int) -> tuple[np.ndarray, str]:
    """Every vector of n signs (while 2^n <= ``flips``), or ``flips`` random ones plus the identity."""
    if 2 ** n <= flips:
        return 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(float), "exact"
    draws = rng.choice([-1.0, 1.0], size=(flips, n))
    return np.vstack([np.ones(n), draws]), f"{flips} random"


def sign_test(a, b=None, level: float = 0.95) -> Estimate:
    """The median of ``a - b`` over matched units (``b`` omitted: the median of ``a``) with the exact sign test and
    the distribution-free interval that inverts it (order statistics of the differences): ``mu`` is in the interval
    when the test of "half the units lie above mu" does not reject at ``1 - level``; p is that test at mu = 0.
    Exact for independent units whatever the law of their differences, skew included (a sign-flip test of the
    mean assumes the differences symmetric, and skewed differences with mean 0 come out "held" more often than the
    level says; ``tests/test_designs.py`` measures both). A unit exactly at mu counts against both sides (the closed interval
    is conservative on discrete data). At n units the smallest reachable p is 2 / 2^n, so from 6 units on a 5% test
    can reject; below, the interval is unbounded (-inf, inf) and the claim is undecidable at this n
    (:mod:`studylib.designs` says so). Non-finite pairs are dropped. Used by every chapter's "A exceeds B" claims
    (through :func:`studylib.claims.median_claim`)."""
    _check_level(level)
    d = np.asarray(a, float) - (0.0 if b is None else np.asarray(b, float))
    d = np.sort(d[np.isfinite(d)])
    n = len(d)
    name = "median" if b is None else "median difference"
    method = "sign test, order-statistic interval"
    if n == 0:
        return Estimate(name, math.nan, math.nan, math.nan, math.nan, 0, level, method, note="no finite values")
    median = float(np.median(d))
    below, above = int((d <= 0).sum()), int((d >= 0).sum())
    p = float(min(1.0, 2 * stats.binom.cdf(min(below, above), n, 0.5)))
    alpha = 1 - level
    # the k-th smallest and the k-th largest difference bound the interval, k the largest with P(Bin(n, 1/2) < k)
    # <= alpha / 2; k = 0 means no bounded interval
    k = int((stats.binom.cdf(np.arange(n), n, 0.5) <= alpha / 2 + 1e-12).sum())
    if k == 0:
        return Estimate(name, median, -math.inf, math.inf, p, n, level, method,
                        note=f"{n} units: a sign test needs {units_for_sign_test(level)} to reach p <= {alpha:g}")
    return Estimate(name, median, float(d[k - 1]), float(d[n - k]), p, n, level, method)


def units_for_sign_test(level: float = 0.95) -> int:
    """The fewest units at which a sign test (or an exact swap test) can reject at ``1 - level`` (2 / 2^n <= 1 -
    level): 6 at 95%."""
    return int(math.ceil(math.log2(2 / (1 - level)) - 1e-12))


def swap_tau_difference(x1, x2, y, strata=None, level: float = 0.95, seed: int = 0,
                        flips: int = RANDOM_FLIPS) -> Estimate:
    """Whether metric ``x1`` tracks ``y`` better than ``x2`` does over the same units: the (stratified) Kendall
    tau of x1 with y minus that of x2, tested by swapping the two metrics' ranks (within stratum) unit by unit,
    the null of two metrics that rank the units alike. p is the share of the 2^n swaps (all of them while 2^n is at
    most ``flips``, else ``flips`` random ones, seeded by ``seed``) whose difference is at least as
    far from 0 as the observed one: an exact test at any n, and the verdict is decided by p and the sign (no
    interval is given: a bootstrap over a handful of units is not one). With 2 / 2^n above ``1 - level`` the claim
    cannot be decided at this n. Non-finite units are dropped. Used by the utilization and ESD chapters' "metric 1
    tracks better" claims (through :func:`studylib.claims.tau_difference_claim`)."""
    _check_level(level)
    x1, x2, y = (np.asarray(v, float) for v in (x1, x2, y))
    labels = np.zeros(len(y), int) if strata is None else pd.factorize(pd.Series(list(strata)))[0]
    keep = np.isfinite(x1) & np.isfinite(x2) & np.isfinite(y)
    x1, x2, y, labels = x1[keep], x2[keep], y[keep], labels[keep]
    n = len(y)
    name = "difference of " + ("Kendall taus" if strata is None else "stratified Kendall taus")
    if n < 2:
        return Estimate(name, math.nan, math.nan, math.nan, math.nan, n, level, "swap test",
                        note="fewer than two units")
    r1, r2 = np.empty(n), np.empty(n)
    pairs = []
    for g in np.unique(labels):
        m = np.flatnonzero(labels == g)
        r1[m], r2[m] = stats.rankdata(x1[m]), stats.rankdata(x2[m])
        if len(m) > 1:
            i, j = np.triu_indices(len(m), 1)
            pairs.append((m[i], m[j]))
    i = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, int)
    j = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, int)
    group = labels[i]
    dy = np.sign(y[j] - y[i])

    def mean_tau(rank: np.ndarray) -> np.ndarray:
        """Per row of ``rank`` (one ranking per row), the mean over strata of the within-stratum tau-b."""
        dx = np.sign(rank[:, j] - rank[:, i])
        taus = []
        for g in np.unique(group):
            on = group == g
            n0 = on.sum()
            denominator = np.sqrt((n0 - (dx[:, on] == 0).sum(1)) * (n0 - (dy[on] == 0).sum()))
            taus.append(np.divide((dx[:, on] * dy[on]).sum(1), denominator, out=np.zeros(len(rank)),
                                  where=denominator > 0))
        return np.mean(taus, axis=0)

    signs, how = _flip_matrix(n, np.random.default_rng(seed), flips)
    swap = signs < 0
    estimate = float(mean_tau(r1[None])[0] - mean_tau(r2[None])[0])
    draws = mean_tau(np.where(swap, r2, r1)) - mean_tau(np.where(swap, r1, r2))
    p = float((np.abs(draws) >= abs(estimate) - 1e-12).mean())
    method = f"swap test ({how} swaps of the two metrics' ranks per unit); decided by p"
    note = "" if 2 / len(signs) <= 1 - level else (f"{n} units: a swap test needs {units_for_sign_test(level)} "
                                                   f"to reach p <= {1 - level:g}")
    return Estimate(name, estimate, math.nan, math.nan, p, n, level, method, len(np.unique(labels)), note)
