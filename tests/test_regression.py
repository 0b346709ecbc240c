import numpy as np
import pytest
from scipy import stats

from studylib.regression import series_regression, series_table


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
