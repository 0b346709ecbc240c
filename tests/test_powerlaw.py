import contextlib
import io

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from studylib import nets
from studylib.metrics.powerlaw import SMALL_N, fit_power_law, fit_power_law_small_n

powerlaw = pytest.importorskip("powerlaw")


def reference_fit(x, **kw):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return powerlaw.Fit(x, **kw)


def synthetic_spectra():
    rng = np.random.default_rng(0)
    for trial in range(30):
        kind = trial % 3
        if kind == 0:   # Pareto samples
            yield (rng.pareto(rng.uniform(1, 4), size=rng.integers(50, 800)) + 1) * rng.uniform(0.1, 10)
        elif kind == 1:  # Marchenko-Pastur (Gaussian matrix)
            yield np.linalg.svd(rng.standard_normal((rng.integers(100, 600), rng.integers(50, 300))),
                                compute_uv=False) ** 2
        else:            # heavy-tailed entries
            yield np.linalg.svd(rng.standard_t(rng.uniform(1.5, 4), size=(400, 200)), compute_uv=False) ** 2


def real_spectra():
    model = nets.minilm_l6()
    matrices = [p for name, p in model.named_parameters() if p.ndim == 2 and "word_embeddings" not in name]
    for p in matrices[::3]:
        yield np.linalg.svd(p.detach().double().numpy(), compute_uv=False) ** 2


@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_same_xmin_and_alpha_as_powerlaw_1_5(source):
    spectra = list(synthetic_spectra() if source == "synthetic" else real_spectra())
    assert len(spectra) >= 9
    for x in spectra:
        ref, ours = reference_fit(x), fit_power_law(x)
        assert ours.xmin == pytest.approx(ref.xmin, rel=1e-12)
        assert ours.alpha == pytest.approx(ref.alpha, rel=1e-9)
        assert ours.D == pytest.approx(ref.D, rel=1e-6)
        assert ours.sigma == pytest.approx(ref.sigma, rel=1e-9)


def test_fixed_xmin_matches_powerlaw():
    x = np.random.default_rng(1).pareto(2.0, 400) + 1
    ref, ours = reference_fit(x, xmin=1.5), fit_power_law(x, xmin=1.5)
    assert ours.alpha == pytest.approx(ref.alpha, rel=1e-12) and ours.D == pytest.approx(ref.power_law.D, rel=1e-9)


@pytest.mark.parametrize("alpha", [1.8, 2.5, 3.5, 5.0])
def test_recovers_a_known_exponent_within_its_interval(alpha):
    # numpy's pareto(a) + 1 has density proportional to x^-(a + 1) on x >= 1
    x = np.random.default_rng(int(alpha * 10)).pareto(alpha - 1, 4000) + 1
    fit = fit_power_law(x, xmin=1.0)
    assert abs(fit.alpha - alpha) < 3 * fit.sigma
    scanned = fit_power_law(x)
    assert abs(scanned.alpha - alpha) < 4 * scanned.sigma


def test_truncated_fit_is_the_exact_maximum_likelihood():
    x = np.random.default_rng(2).pareto(1.5, 3000) + 1
    xmin, xmax = 1.2, 30.0
    tail = x[(x >= xmin) & (x <= xmax)]

    def negative_log_likelihood(a):  # density (a-1) x^-a / (xmin^(1-a) - xmax^(1-a)) on [xmin, xmax]
        return -(len(tail) * np.log((a - 1) / (xmin ** (1 - a) - xmax ** (1 - a))) - a * np.log(tail).sum())

    best = minimize_scalar(negative_log_likelihood, bounds=(1.01, 10), method="bounded", options={"xatol": 1e-10})
    assert fit_power_law(x, xmin=xmin, xmax=xmax).alpha == pytest.approx(best.x, abs=1e-6)
    assert fit_power_law(x, xmax=xmax).status == "ok"


def test_degenerate_inputs():
    assert fit_power_law([]).status == "too_few_values"
    assert fit_power_law([0.0, 0.0, 3.0]).status == "too_few_values"
    assert fit_power_law([2.0] * 10).status == "degenerate"
    assert fit_power_law(np.arange(1.0, 20.0), min_tail=50).status == "too_few_values"
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit_power_law([1.0, np.nan, 2.0])


def test_small_samples_are_fitted_as_weightwatcher_0_7_7_fits_them():
    ww = pytest.importorskip("weightwatcher.WW_powerlaw")
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = (rng.pareto(rng.uniform(0.5, 4), int(rng.integers(8, SMALL_N))) + 1) * rng.uniform(0.1, 10)
        with contextlib.redirect_stdout(io.StringIO()):
            theirs = ww.WWFit(x)
        ours = fit_power_law_small_n(x)
        assert (ours.alpha, ours.xmin, ours.D, ours.sigma) == pytest.approx(
            (theirs.alpha, theirs.xmin, theirs.D, theirs.sigma), rel=1e-12)
        assert ours.n_tail >= 8 and ours.n_tail == (x >= theirs.xmin).sum()  # its num_pl_spikes


def test_small_sample_fit_is_the_bias_corrected_mle_of_its_tail():
    x = np.array([1.0, 1.5, 2.0, 3.0, 4.5, 7.0, 11.0, 20.0, 35.0, 80.0])
    fit = fit_power_law_small_n(x)
    tail = x[x >= fit.xmin]
    assert fit.alpha == pytest.approx(1 + (len(tail) - 1) / np.log(tail / fit.xmin).sum())
    assert fit_power_law_small_n([2.0, 2.0, 2.0]).status == "degenerate"
    assert fit_power_law_small_n([3.0]).status == "too_few_values"
