"""Judging a generalization measure over a model zoo, as Jiang et al. (2020) and the NeurIPS 2020 PGDL competition do:
the granulated Kendall coefficients (:func:`granulated_taus`, :func:`psi_difference`) and PGDL's conditional mutual
information (:func:`conditional_mutual_information`, :func:`cmi_test`). Kendall's tau itself and its interval are in
:mod:`studylib.stats`. The zoo's models come in groups that share all but one hyperparameter, so its intervals and
p-values come from permutations of the measure across the models, which keep that structure.

Used by the head-to-head chapter (through :mod:`studylib.studies.head_to_head`).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from scipy import stats

from .stats import Estimate, _check_level


def axis_groups(hparams: pd.DataFrame, axis: str) -> np.ndarray:
    """One label per model: the models that share every column of ``hparams`` but ``axis``, i.e. that differ in
    ``axis`` only, share a label. The head-to-head chapter's groups (its psis and its label-noise claims)."""
    others = [c for c in hparams.columns if c != axis]
    if not others:
        return np.zeros(len(hparams), int)
    return pd.MultiIndex.from_frame(hparams[others].astype(str)).factorize()[0]


def _axis_pairs(hp: pd.DataFrame, axes: list[str]) -> list[tuple[np.ndarray, ...]]:
    """Per axis: each model's group label, the pairs (i, j) of models within a group, each pair's group, and the groups'
    sizes; the zoo's structure, the same for every measure."""
    out = []
    for axis in axes:
        labels = axis_groups(hp, axis)
        i, j = np.triu_indices(len(labels), 1)
        same = labels[i] == labels[j]
        out.append((labels, i[same], j[same], labels[i[same]], np.bincount(labels)))
    return out


def _group_taus(x: np.ndarray, y: np.ndarray, pairs: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Models x axes: each model's group tau-b along each axis (0 where the measure or the gap is constant in the
    group) and its weight, 1 / (the group's size), 0 for a group of one."""
    taus, weights = np.zeros((len(x), len(pairs))), np.zeros((len(x), len(pairs)))
    for k, (labels, i, j, group, sizes) in enumerate(pairs):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        n = len(sizes)
        n0 = np.bincount(group, minlength=n).astype(float)
        score = np.bincount(group, dx * dy, minlength=n)
        denominator = np.sqrt((n0 - np.bincount(group, dx == 0, minlength=n)) * (n0 - np.bincount(group, dy == 0, minlength=n)))
        tau = np.divide(score, denominator, out=np.zeros(n), where=denominator > 0)
        taus[:, k] = tau[labels]
        weights[:, k] = np.where(sizes[labels] > 1, 1.0 / sizes[labels], 0.0)
    return taus, weights


def _psis(taus: np.ndarray, weights: np.ndarray, averaged: np.ndarray) -> tuple[float, ...]:
    """Each axis's psi (the weighted mean of its models' group taus), then their mean over the ``averaged`` axes."""
    total = weights.sum(0)
    per_axis = (taus * weights).sum(0) / np.where(total > 0, total, np.nan)
    return (*per_axis, float(np.mean(per_axis[averaged])))


def _checked(x, y, hparams: pd.DataFrame, axes: list[str], psi_axes, level: float):
    _check_level(level)
    psi_axes = list(axes) if psi_axes is None else list(psi_axes)
    if not psi_axes or set(psi_axes) - set(axes):
        raise ValueError(f"psi_axes={psi_axes!r}; psi_axes accepts a non-empty subset of the axes {list(axes)}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x, y, keep, hparams.reset_index(drop=True), np.isin(axes, psi_axes)


def _normal_interval(estimate, draws: np.ndarray, level: float):
    """``estimate`` ± z * the standard deviation of ``draws`` (per component), and the two-sided share of draws at
    least as far from 0 as the estimate."""
    z = stats.norm.ppf((1 + level) / 2)
    sd = draws.std(0, ddof=1)
    estimate = np.asarray(estimate, float)
    return estimate - z * sd, estimate + z * sd, (np.abs(draws) >= np.abs(estimate) - 1e-12).mean(0)


def granulated_taus(x, y, hparams: pd.DataFrame, axes: list[str], level: float = 0.95, n_perm: int = 500,
                    seed: int = 0, psi_axes: list[str] | None = None) -> dict[str, Estimate]:
    """Jiang et al. (2020)'s granulated Kendall coefficients of a measure ``x`` against the gap ``y`` over a zoo
    whose models are described by ``hparams`` (one row per model; a replicate column such as the seed is held
    fixed like any other): for each of ``axes``, psi = the mean over the groups of models that differ in that axis
    only (:func:`axis_groups`) of the Kendall tau within the group, and under ``"Psi"`` the mean of the psis over
    ``psi_axes`` (default: every axis). A group in which the measure or the gap is constant ranks nothing and counts
    tau 0, as in Jiang et al.; a group of one model is left out. With two models a group, a psi is the share of
    groups in which the measure and the gap move the same way minus the share in which they move apart.

    The interval is the estimate ± z times the standard deviation of the same statistic over ``n_perm`` permutations
    of the measure across the models (seeded by ``seed``), and p the share of permutations at least as far from 0.
    The permutations keep the zoo's structure (each model in one group per axis, so the axes are dependent); the
    spread at no relation is the largest a group's tau can have, so the interval is conservative. A bootstrap over
    models is not used: it treats the two models of a group as independent draws and comes out too narrow (the
    tests measure both). Non-finite models are dropped. Used by the head-to-head chapter."""
    x, y, keep, hp, averaged = _checked(x, y, hparams, axes, psi_axes, level)
    x, y, hp = x[keep], y[keep], hp[keep]
    pairs = _axis_pairs(hp, axes)
    estimates = np.array(_psis(*_group_taus(x, y, pairs), averaged))
    rng = np.random.default_rng(seed)
    draws = np.array([_psis(*_group_taus(rng.permutation(x), y, pairs), averaged) for _ in range(n_perm)])
    lows, highs, ps = _normal_interval(estimates, draws, level)
    groups = [len(np.unique(axis_groups(hp, a))) for a in axes]
    method = f"estimate ± z × sd over {n_perm} permutations of the measure"
    out = {a: Estimate("granulated Kendall psi", estimates[j], lows[j], highs[j], ps[j], len(x), level, method,
                       groups[j]) for j, a in enumerate(axes)}
    out["Psi"] = Estimate("granulated Kendall Psi", estimates[-1], lows[-1], highs[-1], ps[-1], len(x), level, method,
                          int(averaged.sum()))
    return out


def psi_difference(x1, x2, y, hparams: pd.DataFrame, axes: list[str], level: float = 0.95, n_perm: int = 500,
                   seed: int = 0, psi_axes: list[str] | None = None) -> Estimate:
    """Psi of measure ``x1`` minus Psi of measure ``x2`` (:func:`granulated_taus`) on the same models. The interval is
    the difference ± z times its standard deviation over ``n_perm`` random swaps of the two measures' ranks within
    each model (paired: the null of two measures that rank the models alike), p the share of swaps at least as far
    from 0. Ranks, not values, are swapped, so that measures on different scales can be compared. Models where
    either measure or the gap is not finite are dropped. The head-to-head chapter separates its first measure from its
    second with it."""
    x1, y, keep, hp, averaged = _checked(x1, y, hparams, axes, psi_axes, level)
    x2 = np.asarray(x2, float)
    keep &= np.isfinite(x2)
    r1, r2 = stats.rankdata(x1[keep]), stats.rankdata(x2[keep])
    y, pairs = y[keep], _axis_pairs(hp[keep], axes)
    psi = lambda a: _psis(*_group_taus(a, y, pairs), averaged)[-1]
    estimate = psi(r1) - psi(r2)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_perm):
        swap = rng.random(len(r1)) < 0.5
        draws.append(psi(np.where(swap, r2, r1)) - psi(np.where(swap, r1, r2)))
    low, high, p = _normal_interval(estimate, np.array(draws), level)
    return Estimate("difference of granulated Psis", float(estimate), float(low), float(high), float(p),
                    int(keep.sum()), level, f"difference ± z × sd over {n_perm} paired swaps")


def _sign_tables(measure: np.ndarray, gap: np.ndarray, hparams: pd.DataFrame, pairs: list[tuple[str, str]]):
    """Per conditioning pair of hyperparameters: counts[cell, gap sign, measure sign] over every ordered pair of
    models (self-pairs included, as PGDL's scorer counts them), a cell being both models' values of both
    hyperparameters."""
    vg = (gap[:, None] > gap[None, :]).astype(int).ravel()
    vm = (measure[:, None] > measure[None, :]).astype(int).ravel()
    codes = {c: pd.factorize(hparams[c].astype(str))[0] for c in {h for p in pairs for h in p}}
    tables = []
    for h1, h2 in pairs:
        cell, cells = np.zeros((len(gap), len(gap)), np.int64), 1
        for h in (h1, h2):
            k = int(codes[h].max()) + 1
            cell, cells = (cell * k + codes[h][:, None]) * k + codes[h][None, :], cells * k * k
        tables.append(np.bincount(cell.ravel() * 4 + vg * 2 + vm, minlength=4 * cells).reshape(-1, 2, 2))
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


def conditional_mutual_information(measure, gap, hparams: pd.DataFrame, axes: list[str]) -> float:
    """The NeurIPS 2020 PGDL competition's score of a measure (its scorer, ``mutual_information.py``): over every
    ordered pair of models, V_g = [gap_1 > gap_2] and V_mu = [measure_1 > measure_2]; for every pair of distinct
    hyperparameters of ``axes``, the conditional mutual information I(V_mu; V_g | both models' values of both)
    over H(V_g | the same), in bits; the score is the minimum over the pairs (times 100 on PGDL's leaderboard).
    Turning the measure upside down changes it only through the self-pairs. Used by the head-to-head chapter."""
    measure, gap = np.asarray(measure, float), np.asarray(gap, float)
    if len(axes) < 2:
        raise ValueError(f"axes={axes!r}; the conditional mutual information needs at least two hyperparameters")
    keep = np.isfinite(measure) & np.isfinite(gap)
    pairs = list(itertools.combinations(axes, 2))  # (h1, h2) and (h2, h1) give the same cells
    tables = _sign_tables(measure[keep], gap[keep], hparams.reset_index(drop=True)[keep], pairs)
    return min(_normalised_mi(t) for t in tables)


def cmi_test(measure, gap, hparams: pd.DataFrame, axes: list[str], level: float = 0.95, n_perm: int = 200,
             seed: int = 0) -> tuple[float, float, float]:
    """:func:`conditional_mutual_information` against its null: the score, the share of ``n_perm`` permutations of the
    measure across the models (seeded by ``seed``) that score at least as high (p), and the null's ``level`` quantile.
    A plug-in mutual information is biased upwards near 0, which a bootstrap interval inherits; the permuted measure
    carries the same bias, so the comparison is fair. Used by the head-to-head chapter."""
    _check_level(level)
    measure, gap = np.asarray(measure, float), np.asarray(gap, float)
    hp = hparams.reset_index(drop=True)
    score = conditional_mutual_information(measure, gap, hp, axes)
    rng = np.random.default_rng(seed)
    null = np.array([conditional_mutual_information(rng.permutation(measure), gap, hp, axes) for _ in range(n_perm)])
    return score, float((null >= score - 1e-12).mean()), float(np.quantile(null, level))
