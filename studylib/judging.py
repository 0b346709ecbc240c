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
    """Per axis: the pairs (i, j) of models within a group, each pair's group, and the groups' sizes; the zoo's
    structure, the same for every measure."""
    out = []
    for axis in axes:
        labels = axis_groups(hp, axis)
        i, j = np.triu_indices(len(labels), 1)
        same = labels[i] == labels[j]
        out.append((i[same], j[same], labels[i[same]], np.bincount(labels)))
    return out


def _group_taus(x: np.ndarray, y: np.ndarray, pairs: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """Per axis, the tau-b within each of its groups of two models or more (0 where the measure or the gap is constant
    in the group)."""
    groups = []
    for i, j, group, sizes in pairs:
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        n = len(sizes)
        n0 = np.bincount(group, minlength=n).astype(float)
        score = np.bincount(group, dx * dy, minlength=n)
        denominator = np.sqrt((n0 - np.bincount(group, dx == 0, minlength=n)) * (n0 - np.bincount(group, dy == 0, minlength=n)))
        tau = np.divide(score, denominator, out=np.zeros(n), where=denominator > 0)
        groups.append(tau[sizes > 1])
    return groups


def _psis(groups: list[np.ndarray], averaged: np.ndarray) -> tuple[float, ...]:
    """Each axis's psi (the mean of its groups' taus), then their mean over the ``averaged`` axes."""
    per_axis = np.array([g.mean() if len(g) else math.nan for g in groups])
    return (*per_axis, float(np.mean(per_axis[averaged])))


def _checked(x, y, hparams: pd.DataFrame, axes: list[str], psi_axes, level: float):
    _check_level(level)
    psi_axes = list(axes) if psi_axes is None else list(psi_axes)
    if not psi_axes or set(psi_axes) - set(axes):
        raise ValueError(f"psi_axes={psi_axes!r}; psi_axes accepts a non-empty subset of the axes {list(axes)}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x, y, keep, hparams.reset_index(drop=True), np.isin(axes, psi_axes)


def _group_intervals(groups: list[np.ndarray], averaged: np.ndarray, level: float, bound: float = 1.0):
    """Per axis, the mean of its group values with a t interval (the groups of an axis hold disjoint models); then
    their mean over the ``averaged`` axes, whose standard error is bounded by the mean of the axes' standard errors
    (the sd of a sum is at most the sum of the sds, whatever the axes' dependence), with the t quantile of the
    smallest axis; bounds clipped to [-``bound``, ``bound``], the range of a group value (1 for a tau, 2 for a
    difference of two taus)."""
    means = np.array([g.mean() for g in groups])
    errors = np.array([g.std(ddof=1) / math.sqrt(len(g)) if len(g) > 1 else math.nan for g in groups])
    df = np.array([max(len(g) - 1, 1) for g in groups])
    q = stats.t.ppf((1 + level) / 2, df)
    mean, error = float(means[averaged].mean()), float(errors[averaged].mean())
    spread = stats.t.ppf((1 + level) / 2, df[averaged].min()) * error
    return (np.clip(np.append(means - q * errors, mean - spread), -bound, bound),
            np.clip(np.append(means + q * errors, mean + spread), -bound, bound))


def _permutation_p(estimate, draws: np.ndarray):
    """Two-sided permutation p-values, (1 + draws at least as far from 0) / (1 + draws): never below 1 / (1 + N)."""
    far = (np.abs(draws) >= np.abs(np.asarray(estimate, float)) - 1e-12).sum(0)
    return (1 + far) / (1 + len(draws))


def granulated_taus(x, y, hparams: pd.DataFrame, axes: list[str], level: float = 0.95, n_perm: int = 500,
                    seed: int = 0, psi_axes: list[str] | None = None) -> dict[str, Estimate]:
    """Jiang et al. (2020)'s granulated Kendall coefficients of a measure ``x`` against the gap ``y`` over a zoo
    whose models are described by ``hparams`` (one row per model; a replicate column such as the seed is held
    fixed like any other): for each of ``axes``, psi = the mean over the groups of models that differ in that axis
    only (:func:`axis_groups`) of the Kendall tau within the group, and under ``"Psi"`` the mean of the psis over
    ``psi_axes`` (default: every axis). A group in which the measure or the gap is constant ranks nothing and counts
    tau 0, as in Jiang et al.; a group of one model is left out. With two models a group, a psi is the share of
    groups in which the measure and the gap move the same way minus the share in which they move apart.

    Intervals: a psi's is the t interval of the mean of its groups' taus (the groups of one axis hold disjoint
    models); Psi's takes the mean of the axes' standard errors, an upper bound whatever their dependence (a model
    sits in one group per axis), so it is conservative. p: the share of ``n_perm`` permutations of the measure across
    the models (seeded by ``seed``; they keep the zoo's groups) whose psi or Psi is at least as far from 0. A
    bootstrap over models is not used: it treats the two models of a group as independent draws and comes out too
    narrow (the test suite measures it). Non-finite models are dropped. Used by the head-to-head chapter."""
    x, y, keep, hp, averaged = _checked(x, y, hparams, axes, psi_axes, level)
    x, y, hp = x[keep], y[keep], hp[keep]
    pairs = _axis_pairs(hp, axes)
    groups = _group_taus(x, y, pairs)
    estimates = np.array(_psis(groups, averaged))
    lows, highs = _group_intervals(groups, averaged, level)
    rng = np.random.default_rng(seed)
    draws = np.array([_psis(_group_taus(rng.permutation(x), y, pairs), averaged) for _ in range(n_perm)])
    ps = _permutation_p(estimates, draws)
    method = f"t interval over groups; p from {n_perm} permutations of the measure"
    out = {a: Estimate("granulated Kendall psi", estimates[j], lows[j], highs[j], ps[j], len(x), level, method,
                       len(groups[j])) for j, a in enumerate(axes)}
    out["Psi"] = Estimate("granulated Kendall Psi", estimates[-1], lows[-1], highs[-1], ps[-1], len(x), level, method,
                          int(averaged.sum()))
    return out


def psi_difference(x1, x2, y, hparams: pd.DataFrame, axes: list[str], level: float = 0.95, n_perm: int = 500,
                   seed: int = 0, psi_axes: list[str] | None = None) -> Estimate:
    """Psi of measure ``x1`` minus Psi of measure ``x2`` (:func:`granulated_taus`) on the same models, paired group by
    group: its interval is that of :func:`granulated_taus` applied to the groups' differences of taus, and p the share
    of ``n_perm`` random swaps of the two measures' ranks within each model (the null of two measures that rank the
    models alike) whose difference is at least as far from 0. Ranks, not values, are swapped, so that measures on
    different scales can be compared. Models where either measure or the gap is not finite are dropped. The
    head-to-head chapter separates its first measure from its second with it."""
    x1, y, keep, hp, averaged = _checked(x1, y, hparams, axes, psi_axes, level)
    x2 = np.asarray(x2, float)
    keep &= np.isfinite(x2)
    r1, r2 = stats.rankdata(x1[keep]), stats.rankdata(x2[keep])
    y, pairs = y[keep], _axis_pairs(hp[keep], axes)
    first, second = _group_taus(r1, y, pairs), _group_taus(r2, y, pairs)
    estimate = _psis(first, averaged)[-1] - _psis(second, averaged)[-1]
    low, high = _group_intervals([a - b for a, b in zip(first, second)], averaged, level, bound=2.0)
    psi = lambda a: _psis(_group_taus(a, y, pairs), averaged)[-1]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_perm):
        swap = rng.random(len(r1)) < 0.5
        draws.append(psi(np.where(swap, r2, r1)) - psi(np.where(swap, r1, r2)))
    return Estimate("difference of granulated Psis", float(estimate), float(low[-1]), float(high[-1]),
                    float(_permutation_p(estimate, np.array(draws))), int(keep.sum()), level,
                    f"t interval over paired groups; p from {n_perm} swaps")


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


def cmi_by_pair(measure, gap, hparams: pd.DataFrame, axes: list[str]) -> dict[tuple[str, str], float]:
    """PGDL's normalised conditional mutual information for each pair of distinct hyperparameters of ``axes`` (see
    :func:`conditional_mutual_information`): which pair sets the score. Used by the head-to-head chapter."""
    measure, gap = np.asarray(measure, float), np.asarray(gap, float)
    if len(axes) < 2:
        raise ValueError(f"axes={axes!r}; the conditional mutual information needs at least two hyperparameters")
    keep = np.isfinite(measure) & np.isfinite(gap)
    pairs = list(itertools.combinations(axes, 2))  # (h1, h2) and (h2, h1) give the same cells
    tables = _sign_tables(measure[keep], gap[keep], hparams.reset_index(drop=True)[keep], pairs)
    return {pair: _normalised_mi(t) for pair, t in zip(pairs, tables)}


def conditional_mutual_information(measure, gap, hparams: pd.DataFrame, axes: list[str]) -> float:
    """The NeurIPS 2020 PGDL competition's score of a measure (its scorer, ``mutual_information.py``): over every
    ordered pair of models, V_g = [gap_1 > gap_2] and V_mu = [measure_1 > measure_2]; for every pair of distinct
    hyperparameters of ``axes``, the conditional mutual information I(V_mu; V_g | both models' values of both)
    over H(V_g | the same), in bits; the score is the minimum over the pairs (times 100 on PGDL's leaderboard), the
    information left for the pair of hyperparameters that explains the most. Turning the measure upside down changes
    it only through the self-pairs and ties. Used by the head-to-head chapter."""
    return min(cmi_by_pair(measure, gap, hparams, axes).values())


def cmi_test(measure, gap, hparams: pd.DataFrame, axes: list[str], level: float = 0.95, n_perm: int = 200,
             seed: int = 0) -> tuple[float, float, float]:
    """:func:`conditional_mutual_information` against its null: the score, its p-value (1 + the permutations that score
    at least as high) / (1 + ``n_perm``), over permutations of the measure across the models (seeded by ``seed``), and
    the null's ``level`` quantile.
    A plug-in mutual information is biased upwards near 0, which a bootstrap interval inherits; the permuted measure
    carries the same bias, so the comparison is fair. Used by the head-to-head chapter."""
    _check_level(level)
    measure, gap = np.asarray(measure, float), np.asarray(gap, float)
    hp = hparams.reset_index(drop=True)
    score = conditional_mutual_information(measure, gap, hp, axes)
    rng = np.random.default_rng(seed)
    null = np.array([conditional_mutual_information(rng.permutation(measure), gap, hp, axes) for _ in range(n_perm)])
    return score, float((1 + (null >= score - 1e-12).sum()) / (1 + n_perm)), float(np.quantile(null, level))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (each at most 1), for the head-to-head chapter's fifteen
    measures tested at once."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out
