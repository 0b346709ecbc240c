import numpy as np
import pytest
from scipy import stats

from studylib.stats import bootstrap_interval, series_regression, series_table


def test_bootstrap_interval_equals_an_explicit_resampling_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=9), rng.normal(size=9)
    draws = np.random.default_rng(7)
    taus = []
    for _ in range(300):
        i = draws.integers(9, size=9)
        taus.append(stats.kendalltau(x[i], y[i])[0])
    expected = np.nanquantile(taus, [0.05, 0.95])
    got = bootstrap_interval(lambda a, b: stats.kendalltau(a, b)[0], x, y, n_boot=300, seed=7, level=0.9)
    assert got == pytest.approx(tuple(expected), rel=1e-12)
    # tuple statistics: each component on its own; a shared generator continues its stream
    (m_lo, s_lo), (m_hi, s_hi) = bootstrap_interval(lambda a: (a.mean(), a.std()), x, n_boot=100, seed=3)
    assert m_lo < x.mean() < m_hi and s_lo < s_hi
    shared = np.random.default_rng(5)
    first, second = (bootstrap_interval(np.mean, x, n_boot=50, seed=shared) for _ in range(2))
    assert first != second and first == bootstrap_interval(np.mean, x, n_boot=50, seed=5)


def test_bootstrap_interval_edge_cases():
    assert all(np.isnan(bootstrap_interval(lambda a: np.nan, [1.0, 2.0], n_boot=10)))
    assert bootstrap_interval(np.mean, [4.0], n_boot=10) == (4.0, 4.0)
    with pytest.raises(ValueError, match="one length"):
        bootstrap_interval(np.mean, [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_interval(np.mean, [1.0, 2.0], n_boot=0)


def test_against_scipy_linregress_and_kendalltau():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = 2 - 0.7 * x + rng.normal(scale=0.3, size=12)
    got = series_regression(x, y, n_boot=200)
    ref = stats.linregress(x, y)
    assert got["slope"] == pytest.approx(ref.slope) and got["r2"] == pytest.approx(ref.rvalue ** 2)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((y - ref.intercept - ref.slope * x) ** 2)))
    tau, p = stats.kendalltau(x, y)
    assert (got["kendall_tau"], got["tau_p"]) == pytest.approx((tau, p))
    assert got["slope_lo"] < got["slope"] < got["slope_hi"] < 0


def test_perfect_monotone_series_and_bad_inputs():
    got = series_regression([1, 2, 3, 4], [10, 8, 7, 1], n_boot=50)
    assert got["kendall_tau"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3 models"):
        series_regression([1, 2], [1, 2])
    with pytest.raises(ValueError, match="constant"):
        series_regression([1, 1, 1], [1, 2, 3])


def test_series_are_kept_apart():
    import pandas as pd
    frame = pd.DataFrame({"series": ["a"] * 4 + ["b"] * 3, "accuracy": [1, 2, 3, 4, 3, 2, 1],
                          "m": [1, 2, 3, 4, 1, 2, 3]})
    table = series_table(frame, ["m"], n_boot=20).set_index("series")
    assert table.loc["a", "kendall_tau"] == pytest.approx(1) and table.loc["b", "kendall_tau"] == pytest.approx(-1)
