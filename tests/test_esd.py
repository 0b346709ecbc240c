import contextlib
import io

import numpy as np
import pytest
import torch
from torch import nn

from studylib import nets
from studylib.metrics import esd
from studylib.metrics.powerlaw import fit_power_law

ww = pytest.importorskip("weightwatcher")
# our options that match WeightWatcher's conventions (it computes in float64 with SciPy)
WW_MATCHED = dict(conv_scale="weightwatcher", min_value=1e-5, dtype=torch.float64)


def ww_details(model, **kw):
    with contextlib.redirect_stdout(io.StringIO()):
        return ww.WeightWatcher(model=model).analyze(**kw)


def small_conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 5),
                         nn.Flatten(), nn.Linear(64 * 20 * 20, 100), nn.ReLU(), nn.Linear(100, 10))


@pytest.fixture(scope="module")
def minilm():
    return nets.minilm_l6()


def compare_with_weightwatcher(model):
    theirs = ww_details(model).set_index("longname")
    ours = esd.analyze(model, **WW_MATCHED).set_index("name")
    common = theirs.index.intersection(ours.index)
    assert len(common) == len(theirs)  # every layer WeightWatcher analyses, we analyse too
    for col in ("lambda_max", "log_norm", "log_spectral_norm", "num_evals"):
        np.testing.assert_allclose(ours.loc[common, col].astype(float), theirs.loc[common, col].astype(float),
                                   rtol=1e-6, err_msg=col)
    # below 20 eigenvalues both use WeightWatcher 0.7.7's small-sample rule (bias-corrected alpha, tail >= 8)
    fitted = theirs.loc[common, "alpha"] > 0
    delta = (ours.loc[common, "alpha"] - theirs.loc[common, "alpha"])[fitted].abs()
    assert delta.max() <= 0.01, delta.sort_values().tail()
    same = fitted & (delta < 1e-4)
    assert same.sum() >= 0.9 * fitted.sum()  # almost every layer picks the very same xmin
    for col in ("alpha_weighted", "log_alpha_norm", "xmin", "D"):
        np.testing.assert_allclose(ours.loc[common, col][same], theirs.loc[common, col][same], rtol=1e-4, err_msg=col)
    return ours, theirs


def test_agrees_with_weightwatcher_on_minilm(minilm):
    ours, theirs = compare_with_weightwatcher(minilm)
    # the default, float32, stays within 0.01 in alpha of WeightWatcher on every fitted layer
    fast = esd.analyze(minilm, min_value=1e-5).set_index("name").loc[theirs.index]
    fitted = theirs.alpha > 0
    assert (fast.alpha - theirs.alpha)[fitted].abs().max() <= 0.01
    # Convention that differs: WeightWatcher skips matrices with fewer than 8 eigenvalues; we keep a row
    # with a fit status instead.
    assert "embeddings.token_type_embeddings" not in theirs.index
    assert ours.loc["embeddings.token_type_embeddings", "status"] == "too_few_values"


def test_agrees_with_weightwatcher_on_a_conv_net():
    ours, theirs = compare_with_weightwatcher(small_conv_net())
    small = ours.loc["8"]  # the 10-class output layer: 10 eigenvalues, WeightWatcher's small-sample rule
    assert small.small_esd and small.n_tail >= 8
    assert small.alpha == pytest.approx(theirs.loc["8", "alpha"], rel=1e-6)


def test_grouped_convolutions_are_left_out_and_small_esds_can_be_left_out_of_averages():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 64, 3), nn.Flatten(), nn.Linear(64, 300),
                        nn.Linear(300, 10))
    df = esd.analyze(net)
    assert df.name.tolist() == ["1", "3", "4"]  # the depthwise convolution has no spectrum to fit
    assert df.small_esd.tolist() == [False, False, True] and df.num_evals.tolist() == [72, 64, 10]
    every, large = esd.summarize(df), esd.summarize(df, min_evals=esd.PAPER_MIN_EVALS)
    assert every.loc["alpha", "mean"] == pytest.approx(df.alpha.mean())
    assert large.loc["alpha", "mean"] == pytest.approx(df.alpha[:2].mean()) and large.loc["alpha", "n_small"] == 1


def test_conv_scaling_conventions():
    net = small_conv_net()
    paper = esd.analyze(net).set_index("name")
    matched = esd.analyze(net, conv_scale="weightwatcher").set_index("name")
    # the paper's k/sqrt(2) scaling multiplies eigenvalues by kh*kw relative to WeightWatcher's 1/sqrt(2)
    for name, k2 in (("0", 9), ("2", 9), ("4", 25)):
        assert paper.loc[name, "log_norm"] - matched.loc[name, "log_norm"] == pytest.approx(np.log10(k2))
    assert paper.loc["6", "log_norm"] == matched.loc["6", "log_norm"]  # dense layers are never rescaled
    # WeightWatcher's pool=False applies the paper's scaling to each slice
    slices = ww_details(net, pool=False)
    conv2 = slices[slices.longname == "2"]
    evals = esd.eigenvalues(esd.layer_matrices(net))[1]
    assert conv2.lambda_max.max() == pytest.approx(evals.max(), rel=1e-6)
    assert conv2.num_evals.sum() == len(evals) == 9 * 16


def test_eigenvalues_are_squared_singular_values_in_every_conv_method():
    net = small_conv_net()
    w = net[2].weight.detach().double()
    out_c, in_c, kh, kw = w.shape
    by_method = {m: esd.eigenvalues(esd.layer_matrices(net, conv_method=m, conv_scale="none"))[1]
                 for m in esd.CONV_METHODS}
    slices = np.concatenate([np.linalg.svd(w[:, :, i, j].numpy(), compute_uv=False) ** 2
                             for i in range(kh) for j in range(kw)])
    np.testing.assert_allclose(by_method["slices"], np.sort(slices), rtol=1e-9, atol=1e-12)
    # method 2: the k*k slices stacked into one (k^2 out) x in matrix
    stacked = np.linalg.svd(np.concatenate([w[:, :, i, j].numpy() for i in range(kh) for j in range(kw)]),
                            compute_uv=False) ** 2
    assert len(by_method["stacked"]) == min(kh * kw * out_c, in_c)
    np.testing.assert_allclose(by_method["stacked"], np.sort(stacked), rtol=1e-9)


def test_fft_method_gives_the_singular_values_of_the_circular_convolution_operator():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, bias=False)
    n = 4
    # slow, obvious: the operator's matrix, column by column, from circular cross-correlation of basis images
    columns = []
    for idx in range(2 * n * n):
        x = torch.zeros(1, 2, n, n, dtype=torch.float64)
        x.view(-1)[idx] = 1
        padded = torch.nn.functional.pad(x, (0, 2, 0, 2), mode="circular")
        columns.append(torch.nn.functional.conv2d(padded, conv.weight.detach().double()).reshape(-1))
    operator = torch.stack(columns, 1).numpy()
    expected = np.sort(np.linalg.svd(operator, compute_uv=False) ** 2)
    ours = esd.eigenvalues(esd.layer_matrices(nn.Sequential(conv), conv_method="fft", fft_size=n))[0]
    np.testing.assert_allclose(np.sort(ours)[-len(expected):], expected, rtol=1e-9)


def test_float32_alphas_match_float64(minilm):
    a64 = esd.analyze(minilm, dtype=torch.float64).alpha
    a32 = esd.analyze(minilm).alpha
    assert (a64 - a32).abs().max() <= 0.01


def test_degenerate_layers_get_a_status_and_nan_weights_an_error():
    model = nn.Sequential(nn.Linear(50, 40), nn.Linear(40, 30), nn.Linear(30, 3))
    with torch.no_grad():
        model[0].weight.zero_()
        model[1].weight.copy_(torch.outer(torch.randn(30), torch.randn(40)))  # rank 1
    df = esd.analyze(model).set_index("name")
    assert df.loc["0", "status"] == "zero_matrix" and df.loc["0", "log_norm"] == -np.inf
    assert df.loc["1", "status"] == "too_few_values" and np.isnan(df.loc["1", "alpha"])
    assert df.loc["2", "status"] == "too_few_values"  # 3 eigenvalues < min_evals
    summary = esd.summarize(df.reset_index())
    assert summary.loc["alpha", "n_used"] == 0 and summary.loc["alpha", "n_excluded"] == 3
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="layer '2' has NaN or Inf weights"):
        esd.analyze(model)


def test_summary_excludes_failed_fits_where_weightwatcher_averages_them_in():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 50), nn.Linear(50, 40))
    with torch.no_grad():
        model[1].weight.copy_(torch.outer(torch.randn(40), torch.randn(50)))
    theirs = ww_details(model)
    ours = esd.analyze(model, **WW_MATCHED)
    summary = esd.summarize(ours)
    good = ours.alpha.dropna()
    assert summary.loc["alpha", "mean"] == pytest.approx(good.mean())
    assert summary.loc["alpha", "n_excluded"] == 1
    assert (theirs.alpha == -1).sum() == 1 and theirs.alpha.mean() < good.mean()
    assert summary.loc["alpha", "ci_low"] <= summary.loc["alpha", "mean"] <= summary.loc["alpha", "ci_high"]


def test_randomized_esd_and_marchenko_pastur_edge():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 1600, bias=False))
    df = esd.analyze(model, randomize=True, seed=3).iloc[0]
    # a Gaussian-like random matrix: lambda_max sits at the Marchenko-Pastur edge, no spikes
    assert df.lambda_max == pytest.approx(df.mp_bulk_max, rel=0.05) and df.num_spikes <= 2
    # shuffling keeps the entries, so the Frobenius norm; the ESDs of two random matrices are close
    layer = esd.layer_matrices(model)[0]
    gen = torch.Generator().manual_seed(3)
    shuffled = esd.eigenvalues([esd.shuffle_entries(layer, gen)])[0]
    assert shuffled.sum() == pytest.approx(esd.eigenvalues([layer])[0].sum(), rel=1e-9)
    assert 0 <= df.rand_distance < 0.2
    again = esd.analyze(model, randomize=True, seed=3).iloc[0]
    assert again.rand_lambda_max == df.rand_lambda_max  # seeded


def test_spiked_matrix_has_spikes_and_its_shuffle_does_not():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((800, 200)) + 12 * np.outer(rng.standard_normal(800), rng.standard_normal(200)) / np.sqrt(200)
    model = nn.Sequential(nn.Linear(200, 800, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(w))
    row = esd.analyze(model, randomize=True).iloc[0]
    assert row.num_spikes == 1 and row.rand_num_spikes == 0 and row.rand_distance > 0
    assert row.rand_lambda_max < 0.05 * row.lambda_max


def test_per_layer_alpha_intervals():
    torch.manual_seed(0)
    df = esd.analyze(nn.Sequential(nn.Linear(300, 200), nn.Linear(200, 3)), alpha_ci=50)
    ok = df.iloc[0]
    assert ok.alpha_lo <= ok.alpha_hi and np.isfinite(ok.alpha_lo)
    assert np.isnan(df.iloc[1].alpha_lo)  # no fit, no interval


def test_alpha_interval_covers_the_fit():
    x = np.random.default_rng(0).pareto(2.0, 1500) + 1
    lo, hi = esd.alpha_interval(x, n_boot=100)
    assert lo < fit_power_law(x).alpha < hi


def test_alpha_interval_refits_above_the_point_estimates_noise_floor():
    x = np.concatenate([np.random.default_rng(0).pareto(2.0, 300) + 1, np.full(200, 1e-9)])  # zeros' rounding
    noise = 1e-6
    assert esd.fit_tail(x, noise).alpha == fit_power_law(x[x > noise]).alpha
    lo, hi = esd.alpha_interval(x, n_boot=100, noise=noise)
    assert lo < esd.fit_tail(x, noise).alpha < hi

