"""The Taylor error behind the IIW estimator (seed 000, Proposition 1 and Fig. 3).

Used by the chapter "The Taylor error behind the IIW estimator". The IIW estimator replaces a KL divergence
by its second-order expansion ``KL(p_theta || p_{theta + Delta}) ~ 1/2 Delta^T F Delta``. This module
measures the error of that step in two places where the exact KL can be computed:

- Gaussians ``N(mu, Sigma)``, the PAC-Bayes IB's own model of the weight posterior and prior: the exact KL
  against ``1/2 dmu^T Sigma0^-1 dmu + 1/4 tr((Sigma0^-1 dSigma)^2)``, the expansion with the Fisher
  information of ``(mu, Sigma)``;
- a fine-tuned classifier's predictive distributions along the straight path from ``theta_Z`` back towards
  ``theta0`` on the weight tensors (biases and layer norms stay at ``theta_Z``):
  ``KL(p_{theta_Z}(y|x) || p_{theta_Z - t delta}(y|x))``, averaged over examples, against
  ``t^2/2 delta^T F delta`` with the model's Fisher at ``theta_Z`` (the true Taylor term) and with the
  empirical Fisher (observed labels: what the IIW estimator uses).

``delta = theta_Z - theta0`` on the weight tensors (:func:`studylib.metrics.iiw.weight_deltas`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import core
from . import iiw


def _check_gaussian(mu0, cov0, mu1, cov1):
    mu0, mu1 = np.atleast_1d(np.asarray(mu0, float)), np.atleast_1d(np.asarray(mu1, float))
    cov0, cov1 = np.atleast_2d(np.asarray(cov0, float)), np.atleast_2d(np.asarray(cov1, float))
    d = len(mu0)
    if mu1.shape != (d,) or cov0.shape != (d, d) or cov1.shape != (d, d):
        raise ValueError(f"means must be vectors of one length d and covariances d x d; got {mu0.shape}, "
                         f"{cov0.shape}, {mu1.shape}, {cov1.shape}")
    for name, c in (("cov0", cov0), ("cov1", cov1)):
        if not np.allclose(c, c.T) or np.linalg.eigvalsh(c).min() <= 0:
            raise ValueError(f"{name} must be symmetric positive definite")
    return mu0, cov0, mu1, cov1


def gaussian_kl(mu0, cov0, mu1, cov1) -> float:
    """Exact ``KL(N(mu0, cov0) || N(mu1, cov1))`` in nats."""
    mu0, cov0, mu1, cov1 = _check_gaussian(mu0, cov0, mu1, cov1)
    dmu = mu1 - mu0
    solve = np.linalg.solve(cov1, np.column_stack([cov0, dmu]))
    logdet = np.linalg.slogdet(cov1)[1] - np.linalg.slogdet(cov0)[1]
    return 0.5 * float(np.trace(solve[:, :-1]) + dmu @ solve[:, -1] - len(mu0) + logdet)


def gaussian_kl_quadratic(mu0, cov0, mu1, cov1) -> float:
    """The second-order expansion of :func:`gaussian_kl` around ``(mu0, cov0)``:
    ``1/2 dmu^T cov0^-1 dmu + 1/4 tr((cov0^-1 dcov)^2)``. Exact when only the mean moves."""
    mu0, cov0, mu1, cov1 = _check_gaussian(mu0, cov0, mu1, cov1)
    dmu = mu1 - mu0
    a = np.linalg.solve(cov0, cov1 - cov0)
    return float(0.5 * dmu @ np.linalg.solve(cov0, dmu) + 0.25 * np.trace(a @ a))


def gaussian_error_curves(dim: int, mean_shifts, scale_changes, seed: int = 0) -> pd.DataFrame:
    """Exact KL, its expansion and the relative error ``quadratic / exact - 1`` for a random ``dim``-dimensional
    Gaussian moved three ways: the mean by a Mahalanobis distance ``r`` (covariance fixed), the covariance
    scaled by ``1 + s`` (the "proportional covariances" of the PAC-Bayes IB), and both at once."""
    if dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim}")
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((dim, dim))
    cov0 = a @ a.T / dim + np.eye(dim)
    mu0 = rng.standard_normal(dim)
    u = rng.standard_normal(dim)
    u /= np.sqrt(u @ np.linalg.solve(cov0, u))  # unit Mahalanobis length
    rows = []
    for kind, size, mu1, cov1 in (
            [("mean shift", r, mu0 + r * u, cov0) for r in mean_shifts]
            + [("covariance scale", s, mu0, (1 + s) * cov0) for s in scale_changes]
            + [("both", s, mu0 + s * u, (1 + s) * cov0) for s in scale_changes]):
        exact, quad = gaussian_kl(mu0, cov0, mu1, cov1), gaussian_kl_quadratic(mu0, cov0, mu1, cov1)
        rows.append({"change": kind, "size": size, "kl_exact": exact, "kl_quadratic": quad,
                     "rel_error": quad / exact - 1 if exact > 0 else np.nan})
    return pd.DataFrame(rows)


@torch.no_grad()
def _probs(model: nn.Module, batch: dict) -> torch.Tensor:
    return torch.softmax(core.logits(model, batch).double(), -1)


def _directional(model, deltas, batch) -> torch.Tensor:
    """``g . delta`` per example for the loss of the batch's labels, summed over every weight tensor."""
    return sum(v.double() for v in iiw.per_example_directional(model, deltas, batch).values())


def fisher_quadratics(model: nn.Module, deltas: dict[str, torch.Tensor], batches: list[dict]) -> dict:
    """Per-example mean of ``delta^T F_x delta`` for the model Fisher (``sum_y p_y (g_y . delta)^2``, one
    captured pass per class ``y``) and the empirical Fisher (``(g_label . delta)^2``, as in IIW)."""
    model_f, emp_f, n = 0.0, 0.0, 0
    for batch in batches:
        p = _probs(model, batch)
        per_class = torch.stack([_directional(model, deltas, {**batch, "labels": torch.full_like(batch["labels"], y)})
                                 for y in range(p.shape[1])], 1)
        model_f += float((p * per_class ** 2).sum())
        emp_f += float((per_class.gather(1, batch["labels"][:, None].long()) ** 2).sum())
        n += len(batch["labels"])
    return {"model_fisher": model_f / n, "empirical_fisher": emp_f / n}


@torch.no_grad()
def predictive_kl(model: nn.Module, deltas: dict[str, torch.Tensor], batches: list[dict], t: float,
                  reference: list[torch.Tensor]) -> float:
    """Mean over examples of ``KL(reference || p_{theta - t delta})``, ``reference`` the predictive
    probabilities at ``theta`` per batch; the model's weights are restored afterwards."""
    params = dict(model.named_parameters())
    saved = {name: params[name].detach().clone() for name in deltas}
    try:
        for name, d in deltas.items():
            params[name].sub_(t * d)
        total, n = 0.0, 0
        for batch, p in zip(batches, reference):
            logq = torch.log_softmax(core.logits(model, batch).double(), -1)
            total += float((p * (p.clamp_min(1e-300).log() - logq)).sum())
            n += len(p)
    finally:
        for name, w in saved.items():
            params[name].copy_(w)
    return total / n


def kl_path(model: nn.Module, theta0: dict[str, torch.Tensor], batches: list[dict], ts) -> pd.DataFrame:
    """Exact predictive KL and its two quadratic approximations at ``theta_Z - t delta`` for each ``t`` in
    ``ts`` (``t = 1`` puts the weight tensors back at ``theta0``); ``model`` holds ``theta_Z``. Columns: t,
    kl_exact, kl_model_fisher, kl_empirical_fisher, rel_error (model-Fisher quadratic / exact - 1),
    rel_error_empirical."""
    ts = [float(t) for t in ts]
    if not ts or min(ts) <= 0:
        raise ValueError(f"ts must be a non-empty list of positive path positions, got {ts}")
    was_training = model.training
    model.eval()
    deltas = iiw.weight_deltas(model, theta0)
    quad = fisher_quadratics(model, deltas, batches)
    reference = [_probs(model, b) for b in batches]
    rows = []
    for t in ts:
        exact = predictive_kl(model, deltas, batches, t, reference)
        qm, qe = t * t / 2 * quad["model_fisher"], t * t / 2 * quad["empirical_fisher"]
        rows.append({"t": t, "kl_exact": exact, "kl_model_fisher": qm, "kl_empirical_fisher": qe,
                     "rel_error": qm / exact - 1 if exact > 0 else np.nan,
                     "rel_error_empirical": qe / exact - 1 if exact > 0 else np.nan})
    model.train(was_training)
    return pd.DataFrame(rows)


def abs_deltas(theta: dict[str, torch.Tensor], theta0: dict[str, torch.Tensor]) -> np.ndarray:
    """``|theta_Z - theta_0|`` of every parameter present in both (seed 000's Fig. 3), flattened, float64."""
    common = [k for k in theta0 if k in theta and theta[k].is_floating_point()]
    if not common:
        raise ValueError("theta and theta0 share no floating-point parameters")
    return np.concatenate([(theta[k].double() - theta0[k].double().to(theta[k].device)).abs().flatten().cpu().numpy()
                           for k in common])


def delta_quantiles(values: np.ndarray, qs=(0.5, 0.75)) -> dict:
    """Quantiles ``q50``, ``q75``, ... of ``|delta|`` over all parameters and over those that moved
    (``moved_q50`` ...), and the fraction that did not move at all (``unchanged``)."""
    values = np.asarray(values)
    if values.size == 0:
        raise ValueError("no |delta| values")
    moved = values[values > 0]
    out = {"unchanged": 1 - moved.size / values.size}
    for q in qs:
        out[f"q{round(100 * q)}"] = float(np.quantile(values, q))
        out[f"moved_q{round(100 * q)}"] = float(np.quantile(moved, q)) if moved.size else 0.0
    return out


def log_histogram(values: np.ndarray, lo: float = -10.0, hi: float = 1.0, bins: int = 110) -> dict:
    """Counts of ``log10 |delta|`` for the values that moved, on fixed bins over ``[lo, hi]`` (values outside are
    clipped into the end bins), so that histograms of runs with millions of weights are small to keep."""
    values = np.asarray(values)
    logs = np.clip(np.log10(values[values > 0]), lo, hi)
    counts, edges = np.histogram(logs, bins=bins, range=(lo, hi))
    return {"edges": edges, "counts": counts}


def first_t_above(path: pd.DataFrame, level: float = 0.1) -> float:
    """The smallest path position ``t`` at which ``|rel_error|`` exceeds ``level`` (NaN if none does)."""
    above = path[path.rel_error.abs() > level]
    return float(above.t.min()) if len(above) else float("nan")
