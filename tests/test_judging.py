"""Judging a measure over a zoo against independent references: a faithful re-implementation of the PGDL scorer,
closed forms, and the granulated tau computed group by group with scipy."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studylib import judging as J
from studylib import stats as S


def _zoo(seed=0, values=((0, 1), (0, 1, 2), (0, 1)), seeds=2):
    rng = np.random.default_rng(seed)
    hp = pd.DataFrame(list(itertools.product(*values, range(seeds))), columns=["a", "b", "c", "seed"])
    gap = hp.a * 1.0 + 0.5 * hp.b + rng.normal(0, 0.6, len(hp))
    return hp, gap.to_numpy(), rng


def pgdl_scorer(prediction, gaps, specs, hp_names):
    """A faithful re-implementation of the PGDL scorer (``mutual_information.py``): dict tables over every ordered
    pair of models, a key per pair of both models' values of the conditioning hyperparameters, equally weighted
    cells, base-2 logs with 1e-12 in the entropy, and the minimum over ordered pairs of distinct hyperparameters."""
    best = math.inf
    for h1 in hp_names:
        for h2 in hp_names:
            if h1 == h2:
                continue
            table = {}
            for i in range(len(gaps)):
                for j in range(len(gaps)):
                    key = str(specs[h1][i]) + str(specs[h1][j]) + str(specs[h2][i]) + str(specs[h2][j])
                    cell = table.setdefault(key, np.zeros((2, 2)))
                    cell[int(gaps[i] > gaps[j]), int(prediction[i] > prediction[j])] += 1
            mi = ce = 0.0
            for cell in table.values():
                p = cell / cell.sum()
                pg, pm = p.sum(1), p.sum(0)
                mi += sum(p[a, c] * math.log2(p[a, c] / (pg[a] * pm[c])) for a in range(2) for c in range(2) if p[a, c] > 0)
                ce += -sum(q * math.log2(q + 1e-12) for q in pg)
            best = min(best, (mi / len(table)) / (ce / len(table)))
    return best


def test_conditional_mutual_information_equals_the_pgdl_scorer_on_a_complete_grid():
    hp, gap, rng = _zoo()
    measure = gap + rng.normal(0, 0.5, len(gap))
    axes = ["a", "b", "c"]
    assert J.conditional_mutual_information(measure, gap, hp, axes) == pytest.approx(
        pgdl_scorer(measure, gap, hp, axes), rel=1e-9)
    # the gap itself predicts every sign: I = H in every cell
    assert J.conditional_mutual_information(gap, gap, hp, axes) == pytest.approx(1.0, abs=1e-9)
    # a measure that only follows hyperparameter a carries nothing once a is conditioned on
    assert J.conditional_mutual_information(hp.a.to_numpy() * 1.0, gap, hp, axes) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least two hyperparameters"):
        J.conditional_mutual_information(measure, gap, hp, ["a"])


def test_the_cmi_permutation_test_tells_a_predictor_from_noise():
    hp, gap, rng = _zoo(1)
    axes = ["a", "b", "c"]
    score, p, null = J.cmi_test(gap + rng.normal(0, 0.5, len(gap)), gap, hp, axes, n_perm=40)
    assert score > null and p < 0.05  # the noisy gap predicts the signs better than any permutation of it
    score, p, null = J.cmi_test(rng.normal(size=len(gap)), gap, hp, axes, n_perm=40)
    assert p > 0.05
    # a non-finite model is left out, as if it were not in the zoo
    x = gap + rng.normal(0, 0.5, len(gap))
    x[3] = np.nan
    keep = np.arange(len(gap)) != 3
    assert J.conditional_mutual_information(x, gap, hp, axes) == pytest.approx(
        J.conditional_mutual_information(x[keep], gap[keep], hp[keep], axes))


def test_granulated_taus_equal_the_mean_within_group_tau_computed_by_hand():
    hp, gap, rng = _zoo(2)
    measure = gap + rng.normal(0, 0.8, len(gap))
    got = J.granulated_taus(measure, gap, hp, ["a", "b", "c"], n_perm=200)
    for axis in ("a", "b", "c"):
        others = [c for c in hp.columns if c != axis]
        taus = [stats.kendalltau(measure[idx], gap[idx])[0] for _, idx in hp.groupby(others).indices.items()]
        assert got[axis].estimate == pytest.approx(np.mean(taus))
    assert got["Psi"].estimate == pytest.approx(np.mean([got[a].estimate for a in "abc"]))
    assert got["Psi"].low < got["Psi"].estimate < got["Psi"].high
    # a measure that never varies along an axis ranks nothing there: tau 0 in every group (Jiang et al.'s convention)
    count = J.granulated_taus(hp.b.to_numpy() * 1.0, gap, hp, ["a", "b", "c"], n_perm=50)
    assert count["a"].estimate == 0 and count["c"].estimate == 0
    assert count["Psi"].estimate == pytest.approx(count["b"].estimate / 3)
    # a group of one model is left out; the others keep their plain mean
    thin = J.granulated_taus(measure[1:], gap[1:], hp.iloc[1:], ["a"], n_perm=50)
    others = [c for c in hp.columns if c != "a"]
    idx = [i for i in hp.iloc[1:].groupby(others).indices.values() if len(i) > 1]
    expected = np.mean([stats.kendalltau(measure[1:][i], gap[1:][i])[0] for i in idx])
    assert thin["a"].estimate == pytest.approx(expected)


def test_psi_over_a_subset_of_axes_and_the_paired_difference():
    hp, gap, rng = _zoo(3)
    a = gap + rng.normal(0, 0.5, len(gap))
    b = rng.normal(size=len(gap))
    both = J.granulated_taus(a, gap, hp, ["a", "b", "c"], n_perm=100, psi_axes=["b", "c"])
    assert both["Psi"].estimate == pytest.approx((both["b"].estimate + both["c"].estimate) / 2)
    diff = J.psi_difference(a, b, gap, hp, ["a", "b", "c"], n_perm=200)
    expected = (J.granulated_taus(a, gap, hp, ["a", "b", "c"], n_perm=20)["Psi"].estimate
                - J.granulated_taus(b, gap, hp, ["a", "b", "c"], n_perm=20)["Psi"].estimate)
    assert diff.estimate == pytest.approx(expected) and diff.low < diff.estimate < diff.high
    assert diff.p < 0.05  # the noisy gap ranks better than random numbers
    same = J.psi_difference(a, a, gap, hp, ["a", "b", "c"], n_perm=50)
    assert same.estimate == 0 and same.low == same.high == 0
    with pytest.raises(ValueError, match="psi_axes accepts"):
        J.granulated_taus(a, gap, hp, ["a", "b"], psi_axes=["c"])


def test_the_group_taus_are_scipys_tau_b_with_ties():
    hp, gap, rng = _zoo(4, values=((0, 1, 2), (0, 1), (0, 1)), seeds=1)
    x = rng.integers(0, 3, len(gap)).astype(float)  # many ties
    got = J.granulated_taus(x, gap, hp, ["a"], n_perm=20)["a"].estimate
    taus = []
    for idx in hp.groupby(["b", "c", "seed"]).indices.values():
        t = stats.kendalltau(x[idx], gap[idx])[0]
        taus.append(0.0 if np.isnan(t) else t)
    assert got == pytest.approx(np.mean(taus))


def test_the_psi_interval_covers_no_relation_and_a_model_bootstrap_would_not():
    """A measure of random numbers: its Psi interval holds 0 in at least about 95% of zoos (it is conservative). A
    percentile bootstrap over models counts each two-model group twice and comes out too narrow: measured here."""
    rng = np.random.default_rng(5)
    hp = pd.DataFrame(list(itertools.product((0, 1), (0, 1), (0, 1), (0, 1), range(3))),
                      columns=["a", "b", "c", "d", "seed"])
    gap = hp.a + 0.5 * hp.b + rng.normal(0, 0.6, len(hp)).astype(float)
    gap = gap.to_numpy()
    axes = ["a", "b", "c", "d"]
    cover, widths, boot_widths = 0, [], []
    for s in range(60):
        x = np.random.default_rng(100 + s).normal(size=len(gap))
        est = J.granulated_taus(x, gap, hp, axes, n_perm=150, seed=s)["Psi"]
        cover += est.low <= 0 <= est.high
        widths.append(est.high - est.low)
        # each model carries its group's tau on every axis (all groups hold two models): what a bootstrap resamples
        per_model = np.column_stack([taus[J.axis_groups(hp, a)]
                                     for taus, a in zip(J._group_taus(x, gap, J._axis_pairs(hp, axes)), axes)])
        lo, hi = S.bootstrap_interval(lambda t: t.mean(), per_model, n_boot=150, seed=s)
        boot_widths.append(hi - lo)
    assert cover >= 52  # 95% of 60 is 57; a binomial 1% tail at 52
    assert np.mean(boot_widths) < 0.8 * np.mean(widths)


def test_holm_matches_statsmodels_free_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 = 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.5
    assert J.holm(p).tolist() == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert J.holm([0.9, 0.8]).tolist() == [1.0, 1.0]


def test_psi_intervals_are_t_intervals_over_groups_and_shrink_at_a_perfect_ranking():
    hp, gap, rng = _zoo(6)
    x = gap + rng.normal(0, 0.5, len(gap))
    got = J.granulated_taus(x, gap, hp, ["a", "b", "c"], n_perm=30)
    others = [c for c in hp.columns if c != "b"]
    taus = np.array([stats.kendalltau(x[i], gap[i])[0] for i in hp.groupby(others).indices.values()])
    half = stats.t.ppf(0.975, len(taus) - 1) * taus.std(ddof=1) / np.sqrt(len(taus))
    assert (got["b"].low, got["b"].high) == pytest.approx((max(-1, taus.mean() - half), min(1, taus.mean() + half)))
    perfect = J.granulated_taus(gap, gap, hp, ["a", "b", "c"], n_perm=30)["Psi"]
    assert perfect.estimate == 1 and perfect.low == perfect.high == 1  # no spread when every group agrees
    assert J.granulated_taus(x, gap, hp, ["a", "b", "c"], n_perm=30)["Psi"].p >= 1 / 31  # never below 1 / (1 + N)
