"""Judging a generalization measure over a model zoo, as Jiang et al. (2020) and the NeurIPS 2020 PGDL competition do:
the granulated Kendall coefficients (:func:`granulated_taus`) and PGDL's conditional mutual information
(:func:`conditional_mutual_information`, :func:`cmi_estimate`). Kendall's tau itself, its interval and the one
bootstrap are in :mod:`studylib.stats`.

Used by the head-to-head chapter (through :mod:`studylib.studies.head_to_head`).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from .stats import Estimate, _check_level, bootstrap_interval, kendall_tau


def axis_groups(hparams: pd.DataFrame, axis: str) -> np.ndarray:
    """One label per model: the models that share every column of ``hparams`` but ``axis``, i.e. that differ in
    ``axis`` only, share a label."""
    others = [c for c in hparams.columns if c != axis]
    if not others:
        return np.zeros(len(hparams), int)
    return pd.MultiIndex.from_frame(hparams[others].astype(str)).factorize()[0]


def granulated_taus(x, y, hparams: pd.DataFrame, axes: list[str], level: float = 0.95, n_boot: int = 1000,
                    seed: int = 0) -> dict[str, Estimate]:
    """Jiang et al. (2020)'s granulated Kendall coefficients of a measure ``x`` against the gap ``y`` over a zoo
    whose models are described by ``hparams`` (one row per model; a replicate column such as the seed is held
    fixed like any other): for each of ``axes``, psi = the mean over the groups of models that differ in that axis
    only (:func:`axis_groups`) of the Kendall tau within the group, and under ``"Psi"`` the mean of the psis over the
    axes. A group in which the measure or the gap is constant ranks nothing and counts tau 0, as in Jiang et al.;
    a group of one model is left out.

    The intervals are one percentile bootstrap over models, resampled jointly for every axis so that the axes'
    shared models keep their dependence: a drawn model adds its group's tau with weight 1 / (its group's size), so
    that at the observed sample each psi is the plain mean over groups. Non-finite models are dropped. Used by the
    head-to-head chapter."""
    _check_level(level)
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, hp = x[keep], y[keep], hparams.reset_index(drop=True)[keep]
    taus, weights = np.zeros((len(x), len(axes))), np.zeros((len(x), len(axes)))
    for j, axis in enumerate(axes):
        labels = axis_groups(hp, axis)
        for g in np.unique(labels):
            members = labels == g
            if members.sum() < 2:
                continue
            tau = kendall_tau(x[members], y[members])
            taus[members, j] = tau if math.isfinite(tau) else 0.0
            weights[members, j] = 1.0 / members.sum()

    def psis(t, w):
        per_axis = (t * w).sum(0) / np.where(w.sum(0) > 0, w.sum(0), np.nan)
        return (*per_axis, float(np.mean(per_axis)))

    estimates = psis(taus, weights)
    lows, highs = bootstrap_interval(psis, taus, weights, n_boot=n_boot, seed=seed, level=level)
    groups = [len(np.unique(axis_groups(hp, a))) for a in axes]
    method = "percentile bootstrap over models, all axes at once"
    out = {a: Estimate("granulated Kendall psi", estimates[j], lows[j], highs[j], math.nan, len(x), level, method,
                       groups[j]) for j, a in enumerate(axes)}
    out["Psi"] = Estimate("granulated Kendall Psi", estimates[-1], lows[-1], highs[-1], math.nan, len(x), level, method,
                          len(axes))
    return out


def _sign_tables(measure: np.ndarray, gap: np.ndarray, hparams: pd.DataFrame, pairs: list[tuple[str, str]],
                 weights: np.ndarray):
    """Per conditioning pair of hyperparameters: counts[cell, gap sign, measure sign] over every ordered pair of
    models (self-pairs included), a cell being both models' values of both hyperparameters. A pair of distinct models
    counts ``weights[i] * weights[j]`` times, a self-pair ``weights[i]`` times (a model drawn twice by a bootstrap
    adds no pairs of a model with itself)."""
    vg = (gap[:, None] > gap[None, :]).astype(int).ravel()
    vm = (measure[:, None] > measure[None, :]).astype(int).ravel()
    w = np.outer(weights, weights).astype(float)
    np.fill_diagonal(w, weights)
    w = w.ravel()
    codes = {c: pd.factorize(hparams[c].astype(str))[0] for c in {h for p in pairs for h in p}}
    tables = []
    for h1, h2 in pairs:
        cell, cells = np.zeros((len(gap), len(gap)), np.int64), 1
        for h in (h1, h2):
            k = int(codes[h].max()) + 1
            cell, cells = (cell * k + codes[h][:, None]) * k + codes[h][None, :], cells * k * k
        tables.append(np.bincount(cell.ravel() * 4 + vg * 2 + vm, weights=w, minlength=4 * cells).reshape(-1, 2, 2))
    return tables


def _normalised_mi(counts: np.ndarray) -> float:
    """Expected over cells (weighted by their pairs) of I(gap sign; measure sign | cell) over the same expectation of
    H(gap sign | cell), in bits; the PGDL scorer's ratio (its cells are equally weighted on its complete grids)."""
    total = counts.sum((1, 2))
    counts, total = counts[total > 0], total[total > 0]
    p = counts / total[:, None, None]
    pg, pm = p.sum(2, keepdims=True), p.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        mi = np.where(p > 0, p * np.log2(p / (pg * pm)), 0.0).sum((1, 2))
    h = -(pg[:, :, 0] * np.log2(pg[:, :, 0] + 1e-12)).sum(1)
    weights = total / total.sum()
    return float((weights * mi).sum() / (weights * h).sum())


def conditional_mutual_information(measure, gap, hparams: pd.DataFrame, axes: list[str], weights=None) -> float:
    """The NeurIPS 2020 PGDL competition's score of a measure (its scorer, ``mutual_information.py``): over every
    ordered pair of models, V_g = [gap_1 > gap_2] and V_mu = [measure_1 > measure_2]; for every pair of distinct
    hyperparameters of ``axes``, the conditional mutual information I(V_mu; V_g | both models' values of both)
    over H(V_g | the same), in bits; the score is the minimum over the pairs (times 100 on PGDL's leaderboard).
    Independent of the measure's orientation. ``weights``: how many times each model counts (default once; see
    :func:`cmi_estimate`). Used by the head-to-head chapter."""
    measure, gap = np.asarray(measure, float), np.asarray(gap, float)
    if len(axes) < 2:
        raise ValueError(f"axes={axes!r}; the conditional mutual information needs at least two hyperparameters")
    weights = np.ones(len(gap)) if weights is None else np.asarray(weights, float)
    keep = np.isfinite(measure) & np.isfinite(gap) & (weights > 0)
    pairs = list(itertools.combinations(axes, 2))  # (h1, h2) and (h2, h1) give the same cells
    tables = _sign_tables(measure[keep], gap[keep], hparams.reset_index(drop=True)[keep], pairs, weights[keep])
    return min(_normalised_mi(t) for t in tables)


def cmi_estimate(measure, gap, hparams: pd.DataFrame, axes: list[str], level: float = 0.95, n_boot: int = 200,
                 seed: int = 0) -> Estimate:
    """:func:`conditional_mutual_information` with a percentile bootstrap interval over models: each resample
    counts every model as often as it was drawn (its ``weights``). Used by the head-to-head chapter."""
    _check_level(level)
    hp = hparams.reset_index(drop=True)
    measure, gap = np.asarray(measure, float), np.asarray(gap, float)
    score = lambda i: conditional_mutual_information(measure, gap, hp, axes, np.bincount(i, minlength=len(hp)))
    index = np.arange(len(hp))
    low, high = bootstrap_interval(score, index, n_boot=n_boot, seed=seed, level=level)
    return Estimate("conditional mutual information", score(index), low, high, math.nan, len(hp), level,
                    "percentile bootstrap over models")
