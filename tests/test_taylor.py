import numpy as np
import pytest
import torch
from scipy import integrate, stats

from studylib.metrics import iiw, taylor
from test_iiw import tiny_model_and_data


def test_gaussian_kl_equals_numerical_integration_in_one_dimension():
    p, q = stats.norm(0.3, 1.2), stats.norm(-0.5, 0.7)
    numeric = integrate.quad(lambda w: p.pdf(w) * (p.logpdf(w) - q.logpdf(w)), -np.inf, np.inf)[0]
    assert taylor.gaussian_kl(0.3, 1.2 ** 2, -0.5, 0.7 ** 2) == pytest.approx(numeric, rel=1e-8)


def test_gaussian_kl_equals_monte_carlo_in_three_dimensions():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    mu0, mu1, cov0, cov1 = rng.standard_normal(3), rng.standard_normal(3), a @ a.T + np.eye(3), b @ b.T + np.eye(3)
    w = rng.multivariate_normal(mu0, cov0, size=400_000)
    mc = np.mean(stats.multivariate_normal(mu0, cov0).logpdf(w) - stats.multivariate_normal(mu1, cov1).logpdf(w))
    assert taylor.gaussian_kl(mu0, cov0, mu1, cov1) == pytest.approx(mc, rel=0.01)


def test_expansion_is_exact_for_a_mean_shift_and_analytic_for_a_scaled_covariance():
    curves = taylor.gaussian_error_curves(4, mean_shifts=[0.1, 1.0, 5.0], scale_changes=[0.01, 0.5, 2.0])
    shift = curves[curves.change == "mean shift"]
    assert np.allclose(shift.kl_exact, shift["size"] ** 2 / 2) and np.allclose(shift.rel_error, 0, atol=1e-10)
    scale = curves[curves.change == "covariance scale"]
    s = scale["size"].to_numpy()
    assert np.allclose(scale.kl_exact, 4 / 2 * (1 / (1 + s) - 1 + np.log1p(s)))
    assert np.allclose(scale.kl_quadratic, 4 * s ** 2 / 4)
    err = scale.rel_error.abs().to_numpy()
    assert err[0] < 0.02 < 0.3 < err[1] < err[2]  # third-order error: small near 0, growing with the change


def test_gaussian_arguments_are_checked():
    with pytest.raises(ValueError, match="cov1 must be symmetric positive definite"):
        taylor.gaussian_kl([0, 0], np.eye(2), [0, 0], -np.eye(2))
    with pytest.raises(ValueError, match="d x d"):
        taylor.gaussian_kl([0, 0], np.eye(3), [0, 0], np.eye(2))


def slow_model_fisher(model, deltas, batches):
    """sum_y p_y (grad log p_y . delta)^2 per example, one autograd call per (example, class)."""
    params = dict(model.named_parameters())
    values = []
    for batch in batches:
        for i in range(len(batch["labels"])):
            one = {k: v[i:i + 1] for k, v in batch.items() if k != "labels"}
            logp = torch.log_softmax(model(**one).logits[0].double(), -1)
            total = 0.0
            for y in range(len(logp)):
                grads = torch.autograd.grad(logp[y], [params[n] for n in deltas], retain_graph=True)
                dot = sum(float((g.double() * deltas[n].double()).sum()) for g, n in zip(grads, deltas))
                total += float(logp[y].detach().exp()) * dot ** 2
            values.append(total)
    return float(np.mean(values))


def test_model_and_empirical_fisher_quadratics_against_references():
    model, theta0, batches = tiny_model_and_data()
    deltas = iiw.weight_deltas(model, theta0)
    quad = taylor.fisher_quadratics(model, deltas, batches)
    assert quad["model_fisher"] == pytest.approx(slow_model_fisher(model, deltas, batches), rel=1e-4)
    n = sum(len(b["labels"]) for b in batches)  # IIW's fisher total is n * delta^T F_emp delta
    assert quad["empirical_fisher"] * n == pytest.approx(iiw.iiw(model, theta0, batches, "fisher")["total"], rel=1e-6)


def test_kl_path_exact_values_and_the_quadratic_limit():
    model, theta0, batches = tiny_model_and_data()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    path = taylor.kl_path(model, theta0, batches, [1e-3, 0.5, 1.0])
    for k, v in model.named_parameters():
        assert torch.equal(v, before[k]), "kl_path must restore the weights"
    # exact KL at t = 1: weight tensors at theta0, the rest (biases, LayerNorm) where they are
    moved = {k: (theta0[k] if v.ndim >= 2 else v.detach()) for k, v in model.named_parameters()}
    p_cat, q_cat = [], []
    with torch.no_grad():
        for b in batches:
            inputs = {k: v for k, v in b.items() if k != "labels"}
            p_cat.append(torch.distributions.Categorical(logits=model(**inputs).logits.double()))
            q_cat.append(torch.distributions.Categorical(
                logits=torch.func.functional_call(model, moved, kwargs=inputs).logits.double()))
    reference = torch.cat([torch.distributions.kl_divergence(p, q) for p, q in zip(p_cat, q_cat)]).mean()
    assert path.kl_exact.iloc[-1] == pytest.approx(float(reference), rel=1e-6)  # float32 weights
    assert abs(path.rel_error.iloc[0]) < 0.01  # the second-order term is the limit as t -> 0
    assert path.kl_model_fisher.iloc[-1] == pytest.approx(path.kl_model_fisher.iloc[1] * 4)


def test_kl_path_needs_positive_positions():
    model, theta0, batches = tiny_model_and_data()
    with pytest.raises(ValueError, match="ts must be"):
        taylor.kl_path(model, theta0, batches, [0.0, 1.0])


def test_delta_quantiles_and_histogram():
    theta0 = {"w": torch.zeros(8), "b": torch.zeros(2)}
    theta = {"w": torch.tensor([0, 0, 2e-5, -2e-4, 3e-4, 4e-4, 0, 0.0]), "b": torch.tensor([2e-3, 0.0])}
    values = taylor.abs_deltas(theta, theta0)
    q = taylor.delta_quantiles(values)
    assert q["unchanged"] == pytest.approx(0.5)
    assert q["moved_q50"] == pytest.approx(3e-4)
    assert q["q50"] == pytest.approx(np.quantile(values, 0.5))
    hist = taylor.log_histogram(values, lo=-5, hi=-2, bins=3)
    assert hist["counts"].tolist() == [1, 3, 1]
