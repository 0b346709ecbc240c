"""Empirical spectral densities (ESDs) of weight matrices and their heavy-tailed metrics.

Used by the ESD audit chapter. Conventions (the tests check each against WeightWatcher 0.7.7):

- A layer's matrix W is ``N x M`` with ``N >= M`` (transposed if needed); its ESD is the eigenvalues of
  ``X = W^T W`` (the squared singular values of W), with no ``1/N`` normalisation.
- Linear and transformers' Conv1D weights are one matrix each; Embedding weights too, flagged
  ``is_embedding`` and left out of averages by default (as in the paper).
- Conv2D weights ``(out, in, kh, kw)``, three options (``conv_method``):
  ``"slices"`` (the paper's method 1): the ``kh*kw`` matrices ``W[:, :, i, j]``, each multiplied by
  ``conv_scale`` (``"paper"``: ``sqrt(kh*kw)/sqrt(2)``, the paper's k/sqrt(2) with k^2 = kh*kw;
  ``"weightwatcher"``: ``1/sqrt(2)``, WeightWatcher's default; ``"none"``: 1), their eigenvalues pooled
  into one ESD; ``"stacked"`` (the paper's method 2): the slices stacked into one ``(kh*kw*out) x in``
  matrix; ``"fft"`` (method 3): the
  per-frequency matrices of the kernel's 2-D FFT on an ``fft_size`` grid (the singular values of the
  circular convolution operator, Sedghi et al. 2019). Grouped convolutions (``groups > 1``, e.g. depthwise) are
  left out: a depthwise slice is an ``out x 1`` column, whose "ESD" is a squared column norm, not a spectrum.
- ESDs of fewer than 20 eigenvalues (an MLP's 10-class output layer) are fitted by WeightWatcher 0.7.7's
  small-sample rule (:func:`fit_tail`) and flagged ``small_esd``; :func:`summarize` can leave ESDs under a
  stated size out of the averages instead (the paper-era setup skipped those under 50).
- Logarithms are base 10: ``log_norm = log10 ||W||_F^2 = log10 sum(lambda)``,
  ``log_spectral_norm = log10 lambda_max``, ``alpha_weighted = alpha * log10 lambda_max``,
  ``log_alpha_norm = log10 sum(lambda^alpha)``, ``stable_rank = sum(lambda) / lambda_max``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import core
from ..resampling import bootstrap_interval
from .powerlaw import SMALL_N, PowerLawFit, fit_power_law, fit_power_law_small_n

CONV_SCALES = ("paper", "weightwatcher", "none")
CONV_METHODS = ("slices", "stacked", "fft")


@dataclass
class LayerMatrices:
    """The matrices of one layer: a stack ``(count, rows, cols)`` and how they were made."""
    name: str
    kind: str  # "linear", "conv1d", "embedding" or "conv2d"
    matrices: torch.Tensor
    is_embedding: bool = False

    @property
    def N(self) -> int:
        return max(self.matrices.shape[-2:])

    @property
    def M(self) -> int:
        return min(self.matrices.shape[-2:])


def _conv2d_matrices(w: torch.Tensor, method: str, scale: str, fft_size: int | None) -> torch.Tensor:
    out_c, in_c, kh, kw = w.shape
    if method == "slices":
        factor = {"paper": math.sqrt(kh * kw) / math.sqrt(2), "weightwatcher": 1 / math.sqrt(2), "none": 1.0}[scale]
        return w.permute(2, 3, 0, 1).reshape(kh * kw, out_c, in_c) * factor
    if method == "stacked":
        return w.permute(2, 3, 0, 1).reshape(1, kh * kw * out_c, in_c)
    n = fft_size or max(kh, kw)
    spectrum = torch.fft.fft2(w.double(), s=(n, n))        # (out, in, n, n), complex128
    return spectrum.permute(2, 3, 0, 1).reshape(n * n, out_c, in_c)


def layer_matrices(model: nn.Module, conv_method: str = "slices", conv_scale: str = "paper",
                   fft_size: int | None = None) -> list[LayerMatrices]:
    """The weight matrices of every Linear, Embedding, Conv1D and ungrouped Conv2D layer of ``model``, by module
    name (grouped and depthwise convolutions are left out: see the module docstring).

    Non-finite weights raise ``ValueError`` naming the layer.
    """
    if conv_method not in CONV_METHODS:
        raise ValueError(f"conv_method must be one of {CONV_METHODS}, got {conv_method!r}")
    if conv_scale not in CONV_SCALES:
        raise ValueError(f"conv_scale must be one of {CONV_SCALES}, got {conv_scale!r}")
    layers = []
    for name, module in model.named_modules():
        kind = type(module).__name__
        w = getattr(module, "weight", None)
        if not isinstance(w, torch.Tensor):
            continue
        w = w.detach()
        if isinstance(module, nn.Linear) or kind == "Conv1D":
            layers.append(LayerMatrices(name, "conv1d" if kind == "Conv1D" else "linear", w[None]))
        elif isinstance(module, nn.Embedding):
            layers.append(LayerMatrices(name, "embedding", w[None], is_embedding=True))
        elif isinstance(module, nn.Conv2d) and module.groups == 1:
            layers.append(LayerMatrices(name, "conv2d", _conv2d_matrices(w, conv_method, conv_scale, fft_size)))
        else:
            continue
        if not torch.isfinite(layers[-1].matrices).all():
            raise ValueError(f"layer {name!r} has NaN or Inf weights")
    return layers


def eigenvalues(layers: list[LayerMatrices], dtype: torch.dtype = torch.float64, device=None) -> list[np.ndarray]:
    """The pooled ESD of each layer (ascending), batched on ``device``: matrices of the same shape go
    through one batched Gram-matrix eigensolve. Complex (FFT) matrices use ``W^H W``."""
    dev = core.device(device)
    out: list[np.ndarray | None] = [None] * len(layers)
    groups: dict[tuple, list[int]] = {}
    for i, layer in enumerate(layers):
        groups.setdefault((tuple(layer.matrices.shape[-2:]), layer.matrices.is_complex()), []).append(i)
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    for (shape, is_complex), idx in groups.items():
        batch = torch.cat([layers[i].matrices for i in idx]).to(dev, cdtype if is_complex else dtype)
        if shape[0] < shape[1]:
            batch = batch.transpose(-2, -1)                  # rows >= cols: Gram is the smaller side
        gram = batch.transpose(-2, -1).conj() @ batch
        evals = torch.linalg.eigvalsh(gram).clamp_(min=0).cpu().numpy()
        start = 0
        for i in idx:
            count = layers[i].matrices.shape[0]
            out[i] = np.sort(evals[start:start + count].ravel())
            start += count
    return out  # type: ignore[return-value]


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def fit_tail(evals: np.ndarray, noise: float = 0.0, min_value: float = 0.0, **fit_options) -> PowerLawFit:
    """The power-law fit of one ESD's eigenvalues above the noise floor ``noise`` (and ``min_value``): with fewer
    than :data:`~studylib.metrics.powerlaw.SMALL_N` of them (and no other fit options), WeightWatcher 0.7.7's
    small-sample rule (:func:`~studylib.metrics.powerlaw.fit_power_law_small_n`), else the KS scan
    (:func:`~studylib.metrics.powerlaw.fit_power_law`, which takes the options)."""
    floor = max(noise, min_value)
    if int((np.asarray(evals) > floor).sum()) < SMALL_N and not fit_options:
        return fit_power_law_small_n(evals, min_value=floor)
    return fit_power_law(evals, min_value=floor, **fit_options)


def spectral_metrics(evals: np.ndarray, min_evals: int = 10, rank_tol: float = 0.0, **fit_options) -> dict:
    """The per-matrix metrics of one ESD (see the module docstring), with the power-law fit (:func:`fit_tail`)
    and its status; ``small_esd``: fewer than :data:`~studylib.metrics.powerlaw.SMALL_N` eigenvalues above the
    noise floor, fitted by the small-sample rule.

    Status: ``"ok"``; ``"zero_matrix"`` (all eigenvalues 0); ``"too_few_values"`` (fewer than
    ``min_evals`` eigenvalues above ``rank_tol * lambda_max``, e.g. a rank-1 matrix); or the fit's own
    failure status. Eigenvalues at or below ``rank_tol * lambda_max`` are rounding noise of zeros and are
    left out of the fit. Metrics that need a fit are NaN when it failed.
    """
    evals = np.asarray(evals, dtype=np.float64)
    lam_max, total = float(evals.max(initial=0.0)), float(evals.sum())
    row = {"num_evals": int(len(evals)), "lambda_max": lam_max, "log_norm": _log10(total),
           "log_spectral_norm": _log10(lam_max), "stable_rank": total / lam_max if lam_max > 0 else math.nan}
    noise = rank_tol * lam_max
    positive = int((evals > noise).sum())
    row["small_esd"] = positive < SMALL_N
    if lam_max == 0:
        status, fit = "zero_matrix", None
    elif positive < min_evals:
        status, fit = "too_few_values", None
    else:
        fit = fit_tail(evals, noise, **fit_options)
        status = fit.status
    if fit is None or status != "ok":
        row.update(alpha=math.nan, xmin=math.nan, D=math.nan, sigma=math.nan,
                   n_tail=0 if fit is None else fit.n_tail, alpha_weighted=math.nan, log_alpha_norm=math.nan)
    else:
        pos = evals[evals > 0]
        row.update(alpha=fit.alpha, xmin=fit.xmin, D=fit.D, sigma=fit.sigma, n_tail=fit.n_tail,
                   alpha_weighted=fit.alpha * _log10(lam_max),
                   log_alpha_norm=_log10(float(np.exp(fit.alpha * np.log(pos)).sum())))
    row["status"] = status
    return row


def marchenko_pastur_edge(N: int, M: int, variance: float) -> float:
    """Upper edge of the Marchenko-Pastur bulk for ``W^T W`` of an ``N x M`` matrix with i.i.d. entries of
    the given variance (no 1/N normalisation): ``N * variance * (1 + sqrt(M/N))^2``."""
    return N * variance * (1 + math.sqrt(M / N)) ** 2


def tracy_widom_scale(N: int, M: int, variance: float) -> float:
    """The scale of the largest eigenvalue's fluctuations at the edge (Johnstone 2001):
    ``variance * (sqrt(N) + sqrt(M)) * (1/sqrt(N) + 1/sqrt(M))^(1/3)``."""
    return variance * (math.sqrt(N) + math.sqrt(M)) * (1 / math.sqrt(N) + 1 / math.sqrt(M)) ** (1 / 3)


#: eigenvalues count as spikes above the bulk edge plus this many Tracy-Widom scales (TW1's 99.9% quantile)
SPIKE_MARGIN = 3.0


def shuffle_entries(layer: LayerMatrices, gen: torch.Generator) -> LayerMatrices:
    """The layer with each matrix's entries randomly permuted (seeded by ``gen``): same entries, no correlations."""
    m = layer.matrices
    flat = m.reshape(m.shape[0], -1)
    perm = torch.stack([torch.randperm(flat.shape[1], generator=gen) for _ in range(flat.shape[0])])
    return LayerMatrices(layer.name, layer.kind, torch.gather(flat, 1, perm.to(flat.device)).reshape(m.shape),
                         layer.is_embedding)


def esd_distance(a: np.ndarray, b: np.ndarray, bins: int = 100) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two ESDs, as histograms of log10 eigenvalues
    on shared bins."""
    from scipy.spatial.distance import jensenshannon
    la, lb = np.log10(a[a > 0]), np.log10(b[b > 0])
    edges = np.histogram_bin_edges(np.concatenate([la, lb]), bins=bins)
    return float(jensenshannon(np.histogram(la, edges)[0], np.histogram(lb, edges)[0], base=2))


def analyze(model: nn.Module, conv_method: str = "slices", conv_scale: str = "paper", fft_size: int | None = None,
            min_evals: int = 10, dtype: torch.dtype = torch.float32, device=None, mp_fit: bool = False,
            randomize: bool = False, seed: int = 0, alpha_ci: int = 0, **fit_options) -> pd.DataFrame:
    """One row per layer: shape, the spectral metrics and the power-law fit (see :func:`spectral_metrics`).

    ``dtype``: float32 by default (about twice as fast; alphas within 0.01 of float64 on MiniLM-L6 and
    BERT-base, see the tests and ``benchmarks/esd_vs_weightwatcher.py``); float64 for exact comparisons.

    ``mp_fit``: add the Marchenko-Pastur bulk edge for the matrix's entry variance (``mp_bulk_max``) and the
    number of eigenvalues beyond it by more than ``SPIKE_MARGIN`` Tracy-Widom scales (``num_spikes``).
    ``randomize``: add the ESD of the matrix with its entries shuffled by a generator seeded with ``seed``
    (``rand_lambda_max``, ``rand_num_spikes``) and its distance to the real ESD (``rand_distance``). ``alpha_ci``: if positive, that many bootstrap resamples
    give each fitted layer a 95% interval for alpha (``alpha_lo``, ``alpha_hi``; see :func:`alpha_interval`).
    Extra keyword arguments go to :func:`~studylib.metrics.powerlaw.fit_power_law`.
    """
    layers = layer_matrices(model, conv_method, conv_scale, fft_size)
    esds = eigenvalues(layers, dtype, device)
    rows, spike_thresholds, noise_floors = [], [], []
    for layer, evals in zip(layers, esds):
        rank_tol = layer.N * torch.finfo(dtype).eps  # numerical-rank tolerance, relative to lambda_max
        noise_floors.append(rank_tol * float(evals.max(initial=0.0)))
        rows.append({"name": layer.name, "kind": layer.kind, "is_embedding": layer.is_embedding,
                     "N": layer.N, "M": layer.M, "num_matrices": layer.matrices.shape[0],
                     **spectral_metrics(evals, min_evals, rank_tol, **dict(fit_options))})
        if mp_fit or randomize:
            var = float(layer.matrices.abs().pow(2).mean() - layer.matrices.mean().abs() ** 2)
            edge = marchenko_pastur_edge(layer.N, layer.M, var)
            spike_thresholds.append(edge + SPIKE_MARGIN * tracy_widom_scale(layer.N, layer.M, var))
            rows[-1].update(mp_bulk_max=edge, num_spikes=int((evals > spike_thresholds[-1]).sum()))
    if alpha_ci > 0:
        for row, noise, evals in zip(rows, noise_floors, esds):
            ok = row["status"] == "ok"
            row["alpha_lo"], row["alpha_hi"] = (alpha_interval(evals, alpha_ci, seed, noise=noise, **fit_options)
                                                if ok else (math.nan, math.nan))
    if randomize:
        gen = torch.Generator().manual_seed(seed)
        shuffled = [shuffle_entries(layer, gen) for layer in layers]
        for row, spike_above, real, rand in zip(rows, spike_thresholds, esds, eigenvalues(shuffled, dtype, device)):
            row["rand_lambda_max"] = float(rand.max(initial=0.0))
            row["rand_num_spikes"] = int((rand > spike_above).sum())
            row["rand_distance"] = esd_distance(real, rand) if real.max(initial=0) > 0 else math.nan
    return pd.DataFrame(rows)


#: the per-model averages the paper uses
AVERAGED = ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm", "log_alpha_norm", "stable_rank")


#: the paper-era setup's smallest ESD in an average (WeightWatcher's ``min_evals`` then)
PAPER_MIN_EVALS = 50


def summarize(df: pd.DataFrame, include_embeddings: bool = False, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95, min_evals: int = 0) -> pd.DataFrame:
    """Average each metric over layers, failed fits excluded and counted (WeightWatcher averages them in),
    with a bootstrap (over layers) percentile confidence interval. ``min_evals``: ESDs of fewer eigenvalues are
    left out first (e.g. :data:`PAPER_MIN_EVALS`), counted in ``n_small``."""
    rows = df if include_embeddings else df[~df.is_embedding]
    small = int((rows.num_evals < min_evals).sum())
    rows = rows[rows.num_evals >= min_evals]
    rng = np.random.default_rng(seed)  # one stream for every metric's interval
    out = []
    for metric in AVERAGED:
        values = rows[metric].to_numpy(dtype=float)
        good = values[np.isfinite(values)]
        lo, hi = (bootstrap_interval(np.mean, good, n_boot=n_boot, seed=rng, level=level) if len(good)
                  else (math.nan, math.nan))
        out.append({"metric": metric, "mean": float(good.mean()) if len(good) else math.nan, "ci_low": lo,
                    "ci_high": hi, "n_used": len(good), "n_excluded": len(values) - len(good), "n_small": small})
    return pd.DataFrame(out).set_index("metric")


def alpha_interval(evals: np.ndarray, n_boot: int = 200, seed: int = 0, level: float = 0.95, noise: float = 0.0,
                   **fit_options) -> tuple[float, float]:
    """Bootstrap percentile interval for one layer's alpha: eigenvalues resampled with replacement, and the
    whole fit (:func:`fit_tail` above the same noise floor ``noise`` as the point estimate, xmin scan included)
    redone each time."""
    return bootstrap_interval(lambda sample: fit_tail(sample, noise, **fit_options).alpha, evals, n_boot=n_boot,
                              seed=seed, level=level)
