"""The study's statistics against independent references: scipy, brute-force enumeration, closed forms, and
simulation (the tau interval's coverage)."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studylib import stats as S


def test_bootstrap_interval_equals_an_explicit_resampling_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=9), rng.normal(size=9)
    draws = np.random.default_rng(7)
    taus = []
    for _ in range(300):
        i = draws.integers(9, size=9)
        taus.append(stats.kendalltau(x[i], y[i])[0])
    expected = np.nanquantile(taus, [0.05, 0.95])
    got = S.bootstrap_interval(lambda a, b: stats.kendalltau(a, b)[0], x, y, n_boot=300, seed=7, level=0.9)
    assert got == pytest.approx(tuple(expected), rel=1e-12)
    # tuple statistics: each component on its own; a shared generator continues its stream
    (m_lo, s_lo), (m_hi, s_hi) = S.bootstrap_interval(lambda a: (a.mean(), a.std()), x, n_boot=100, seed=3)
    assert m_lo < x.mean() < m_hi and s_lo < s_hi
    shared = np.random.default_rng(5)
    first, second = (S.bootstrap_interval(np.mean, x, n_boot=50, seed=shared) for _ in range(2))
    assert first != second and first == S.bootstrap_interval(np.mean, x, n_boot=50, seed=5)


def test_stratified_bootstrap_keeps_every_stratum_at_its_size():
    groups = np.array([0] * 3 + [1] * 7)
    counts = S.bootstrap_interval(lambda g: (g == 0).sum(), groups, n_boot=50, strata=groups)
    assert counts == (3.0, 3.0)  # a plain bootstrap would vary the count
    with pytest.raises(ValueError, match="one label per observation"):
        S.bootstrap_interval(np.mean, groups, strata=[0, 1])


def test_bootstrap_interval_edge_cases():
    assert all(np.isnan(S.bootstrap_interval(lambda a: np.nan, [1.0, 2.0], n_boot=10)))
    assert S.bootstrap_interval(np.mean, [4.0], n_boot=10) == (4.0, 4.0)
    with pytest.raises(ValueError, match="one length"):
        S.bootstrap_interval(np.mean, [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="n_boot"):
        S.bootstrap_interval(np.mean, [1.0, 2.0], n_boot=0)


# ---- Kendall tau -----------------------------------------------------------------------------------------------

def test_kendall_matches_scipy_and_its_exact_p_value():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=12), rng.normal(size=12)
    r = S.kendall(x, y)
    ref = stats.kendalltau(x, y, method="exact")
    assert (r.tau, r.p, r.n) == pytest.approx((ref.statistic, ref.pvalue, 12))
    assert r.low < r.tau < r.high


def test_p_value_with_ties_equals_brute_force_enumeration():
    x = np.array([1, 1, 2, 3, 3, 4.0])
    y = np.array([2, 1, 2, 5, 4, 4.0])
    observed = stats.kendalltau(x, y)[0]
    perms = [stats.kendalltau(x, y[list(p)])[0] for p in itertools.permutations(range(6))]
    expected = np.mean(np.abs(perms) >= abs(observed) - 1e-9)
    assert S.kendall(x, y).p == pytest.approx(expected)


def test_zeta1_closed_form_against_a_simulation():
    rng = np.random.default_rng(3)
    for tau in (0.0, 0.4, -0.7):
        rho = math.sin(math.pi * tau / 2)
        z = rng.standard_normal((3, 2, 400_000))
        x, y = z[:, 0], rho * z[:, 0] + math.sqrt(1 - rho ** 2) * z[:, 1]
        h12 = np.sign(x[0] - x[1]) * np.sign(y[0] - y[1])
        h13 = np.sign(x[0] - x[2]) * np.sign(y[0] - y[2])
        assert S.zeta1(tau) == pytest.approx(np.mean(h12 * h13) - tau ** 2, abs=7e-3)  # 4 standard errors


def test_tau_variance_is_the_classical_null_variance_and_matches_the_simulated_draws():
    n = 10
    assert S.tau_variance(0.0, n) == pytest.approx(2 * (2 * n + 5) / (9 * n * (n - 1)))
    draws = S.tau_draws(n)
    for tau in (0.0, 0.5, -0.8):
        row = draws[int(np.argmin(np.abs(S.GRID - tau)))]
        assert row.mean() == pytest.approx(tau, abs=0.02)
        assert row.var() == pytest.approx(float(S.tau_variance(tau, n)), rel=0.1)


@pytest.mark.parametrize("n", [4, 5, 6, 10, 30, 60])
@pytest.mark.parametrize("copula, tau", [("gaussian", 0.0), ("gaussian", 0.6), ("gaussian", -0.4),
                                         ("clayton", 0.5)])
def test_tau_interval_covers_the_true_tau(n, copula, tau):
    coverage = S.tau_coverage(n, tau, copula, reps=200, seed=n)
    print(f"coverage of the 95% tau interval, n = {n}, {copula}, tau = {tau}: {coverage:.1%}")
    assert coverage >= 0.9


def test_tau_interval_never_collapses_at_small_n():
    for n in range(3, 11):
        r = S.kendall(np.arange(n), np.arange(n))
        assert r.tau == pytest.approx(1) and r.low < 1 - 0.1 and r.high == 1
    assert S.kendall([1, 2, 3], [1, 2, 3]).low < 0  # three models in order: the interval covers 0


def test_stratified_tau_is_the_mean_of_the_within_group_taus():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=20), rng.normal(size=20)
    groups = np.repeat(["a", "b", "c", "d"], 5)
    groups[-1] = "lonely"  # a group of one point is left out
    r = S.kendall(x, y, groups=groups)
    within = [stats.kendalltau(x[groups == g], y[groups == g])[0] for g in ("a", "b", "c", "d")]
    assert r.tau == pytest.approx(np.mean(within)) and r.strata == 4 and r.n == 19
    assert r.low < r.tau < r.high and 0 <= r.p <= 1


def test_a_confounder_drives_the_pooled_tau_but_not_the_stratified_one():
    rng = np.random.default_rng(4)
    z = np.repeat(np.arange(4), 15).astype(float)
    x, y = z + 0.3 * rng.normal(size=60), z + 0.3 * rng.normal(size=60)
    pooled, within = S.kendall(x, y), S.kendall(x, y, groups=z)
    assert pooled.tau > 0.6 and pooled.low > 0.5
    assert within.low < 0 < within.high


def test_degenerate_inputs_give_nan_with_a_reason():
    r = S.kendall([1, 1, 1], [1, 2, 3])
    assert math.isnan(r.tau) and math.isnan(r.low) and "fewer than two distinct" in r.note
    assert math.isnan(S.kendall([1.0], [2.0]).tau)
    with pytest.raises(ValueError, match="differ in length"):
        S.kendall([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="level"):
        S.kendall([1, 2, 3], [1, 2, 3], level=95)


# ---- paired comparisons ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("levels, repeats", [(2, 5), (3, 3), (3, 15)])
def test_tied_data_keep_the_null_rate(levels, repeats):
    """x on a few levels (noise ratios, widths) against unrelated y: the interval excludes 0 in about 5% of data
    sets (it did in 10% when ties were simulated as untied)."""
    rng = np.random.default_rng(levels * 10 + repeats)
    x = np.repeat(np.arange(levels), repeats)
    rate = np.mean([not (r.low <= 0 <= r.high) for r in
                    (S.kendall(x, rng.standard_normal(len(x))) for _ in range(200))])
    print(f"{levels} levels x {repeats}: the interval excluded 0 in {rate:.1%} of 200 null data sets")
    assert rate <= 0.08


def test_tied_draws_have_the_tie_corrected_null_variance():
    """At tau = 0 the simulated tau-b of a tie pattern has the classical tie-corrected variance, and above n = 30
    the normal draws are scaled by that variance."""
    x_ties, y_ties = (0, 0, 0, 1, 1, 2, 3, 3, 3, 3), None
    null = S.tau_draws(10, 0, x_ties, y_ties)[100]
    untied = 2 * (2 * 10 + 5) / (9 * 10 * 9)
    assert np.var(null) == pytest.approx(untied * S._null_variance_ratio(10, x_ties, y_ties), rel=0.08)
    rng = np.random.default_rng(0)
    x = np.repeat([0, 1, 2], 3)
    scipy_var = np.var([stats.kendalltau(x, rng.permutation(9))[0] for _ in range(20000)])
    assert S._null_variance_ratio(9, tuple(x), None) * 2 * (2 * 9 + 5) / (9 * 9 * 8) == pytest.approx(scipy_var,
                                                                                                     rel=0.05)


def test_stratified_tau_names_the_groups_it_leaves_out():
    r = S.kendall([1, 2, 3, 1, 2, 3], [1, 2, 3, 5, 5, 5], groups=[0, 0, 0, 1, 1, 1])
    assert r.strata == 1 and "1 of 2 groups left out" in r.note


def test_proportion_has_the_exact_clopper_pearson_interval():
    r = S.proportion([0] * 10, null=0.0)
    assert r.low == 0 and r.high == pytest.approx(1 - 0.025 ** (1 / 10))        # closed form at 0 successes
    r = S.proportion([1, 0, 1, 1, np.nan], null=0.5)
    assert r.n == 4 and r.estimate == 0.25 and r.p == pytest.approx(0.625)      # 2 * P(X >= 3 | 4, 1/2)


def test_paired_matches_scipy_ttest_rel():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1, 1, size=8), rng.normal(0, 1, size=8)
    r = S.paired(a, b)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert (r.estimate, r.low, r.high, r.p) == pytest.approx(((a - b).mean(), ci.low, ci.high, ref.pvalue))


def test_paired_edge_cases():
    assert math.isnan(S.paired([1.0]).low) and S.paired([1.0]).estimate == 1.0
    same = S.paired([2.0, 2.0, 2.0])
    assert math.isnan(same.low) and "no spread" in same.note
    assert S.paired([1.0, np.nan, 3.0]).n == 2


def test_series_regression_against_scipy_and_a_brute_force_leave_one_out():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = 2 - 0.7 * x + rng.normal(scale=0.3, size=12)
    got = S.series_regression(x, y)
    ref = stats.linregress(x, y)
    assert got["slope"] == pytest.approx(ref.slope) and got["r2"] == pytest.approx(ref.rvalue ** 2)
    half = stats.t.ppf(0.975, 10) * ref.stderr
    assert (got["slope_lo"], got["slope_hi"]) == pytest.approx((ref.slope - half, ref.slope + half))
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((y - ref.intercept - ref.slope * x) ** 2)))
    errors = [y[k] - np.poly1d(np.polyfit(np.delete(x, k), np.delete(y, k), 1))(x[k]) for k in range(12)]
    assert got["loo_rmse"] == pytest.approx(np.sqrt(np.mean(np.square(errors)))) and got["loo_rmse"] > got["rmse"]
    assert (got["kendall_tau"], got["tau_p"]) == pytest.approx(tuple(stats.kendalltau(x, y, method="exact")))
    resid = y - ref.intercept - ref.slope * x
    assert got["shapiro_p"] == pytest.approx(stats.shapiro(resid).pvalue)


def test_small_series_have_no_normality_test_and_bad_inputs_fail():
    got = S.series_regression([1, 2, 3, 4], [10, 8, 7, 1])
    assert got["kendall_tau"] == pytest.approx(-1.0) and math.isnan(got["shapiro_p"]) and got["tau_lo"] < -0.1
    with pytest.raises(ValueError, match="at least 3 models"):
        S.series_regression([1, 2], [1, 2])
    with pytest.raises(ValueError, match="constant"):
        S.series_regression([1, 1, 1], [1, 2, 3])


def test_series_are_kept_apart():
    frame = pd.DataFrame({"series": ["a"] * 4 + ["b"] * 3, "accuracy": [1, 2, 3, 4, 3, 2, 1],
                          "m": [1, 2, 3, 4, 1, 2, 3]})
    table = S.series_table(frame, ["m"]).set_index("series")
    assert table.loc["a", "kendall_tau"] == pytest.approx(1) and table.loc["b", "kendall_tau"] == pytest.approx(-1)


def test_the_tau_draw_cache_is_bounded():
    S.tau_draws.cache_clear()
    for copy in range(3 * S.TAU_DRAWS_CACHED):  # a stratified tau over many two-model strata
        S.tau_draws(2, copy)
    assert S.tau_draws.cache_info().currsize == S.TAU_DRAWS_CACHED
