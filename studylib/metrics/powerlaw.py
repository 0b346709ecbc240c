"""Power-law fits of eigenvalue tails: continuous maximum likelihood with xmin chosen by a KS scan.

Used by the ESD audit chapter (through :mod:`studylib.metrics.esd`). With default options the fit is the one
``powerlaw.Fit(data)`` of powerlaw 1.5 makes (Clauset, Shalizi & Newman 2009), vectorised over all
candidate xmins at once:

- data: the positive values, sorted; candidate xmins: every unique value but the largest;
- for a candidate xmin with tail ``x >= xmin`` of size ``n``: ``alpha = 1 + n / sum(log(x / xmin))``;
- KS distance ``D = max |F_fit(u) - F_emp(u)|`` over the unique tail values ``u``, where ``F_emp`` is the
  fraction of the whole sample below ``u``, renormalised to the tail (powerlaw's convention);
- the xmin with the smallest D wins (the first on ties); ``sigma = (alpha - 1) / sqrt(n)``.

Options: ``xmin`` fixes it (no scan), ``xmax`` drops values above it and uses the truncated-at-xmax
likelihood (exact MLE by root finding; powerlaw 1.5 instead maximises the untruncated density over the
truncated data, a different and biased estimate), ``min_tail`` requires a minimum tail size.

Samples of fewer than :data:`SMALL_N` values get WeightWatcher 0.7.7's small-sample rule instead
(:func:`fit_power_law_small_n`), as WeightWatcher does: at 10 eigenvalues the scan above can pick a 2-point
tail and report any alpha.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: fit status values
OK, TOO_FEW, DEGENERATE = "ok", "too_few_values", "degenerate"
#: samples smaller than this are fitted by :func:`fit_power_law_small_n` (WeightWatcher 0.7.7's ``SMALL_N_CUTOFF``)
SMALL_N = 20
#: the smallest tail the small-sample rule considers (WeightWatcher 0.7.7's ``k_min``)
SMALL_N_MIN_TAIL = 8


@dataclass(frozen=True)
class PowerLawFit:
    alpha: float
    xmin: float
    D: float
    sigma: float
    n_tail: int
    status: str = OK


def _failed(status: str, n_tail: int = 0) -> PowerLawFit:
    return PowerLawFit(float("nan"), float("nan"), float("nan"), float("nan"), n_tail, status)


def _ks_distances(logu, cdf_emp, alpha, rows) -> np.ndarray:
    """KS distance (float64) of the fit from each candidate index in ``rows``, over the unique values
    at and above it."""
    k = np.asarray(rows)
    c0 = cdf_emp[k][:, None]
    emp = (cdf_emp[None, :] - c0) / (1.0 - c0)
    fit = -np.expm1((1.0 - alpha[k])[:, None] * np.maximum(logu[None, :] - logu[k][:, None], 0.0))
    diff = np.abs(fit - emp)
    diff[np.arange(len(logu))[None, :] < k[:, None]] = 0   # only the tail counts
    return diff.max(axis=1)


def _ks_distances_all_fast(logu, cdf_emp, alpha, chunk: int = 1024) -> np.ndarray:
    """The same for every candidate (row k = the k-th unique value), in float32 with torch."""
    import torch
    lu, ce = torch.from_numpy(logu.astype(np.float32)), torch.from_numpy(cdf_emp.astype(np.float32))
    one_minus_a = torch.from_numpy((1.0 - alpha).astype(np.float32))
    out = []
    for lo in range(0, len(alpha), chunk):
        k = slice(lo, min(lo + chunk, len(alpha)))
        c0 = ce[k, None]
        emp = (ce[None, :] - c0) / (1 - c0)
        fit = torch.expm1_((lu[None, :] - lu[k, None]).clamp_(min=0).mul_(one_minus_a[k, None])).neg_()
        out.append((fit - emp).abs_().triu_(lo).amax(1))   # row i is candidate lo + i: keep j >= lo + i
    return torch.cat(out).double().numpy()


def _ks_scan(x: np.ndarray, min_tail: int):
    """alpha, D and tail size for every candidate xmin (the unique values of sorted ``x`` but the last).

    D is computed in float32 for every candidate, then again in float64 for those within 1e-4 of the
    smallest, so the chosen xmin is the float64 one (float32 errors are about 1e-6).
    """
    n_total = len(x)
    u, first = np.unique(x, return_index=True)            # first = number of values below u
    cand = np.arange(len(u) - 1)
    n_tail = n_total - first[cand]
    logu = np.log(u)
    suffix = np.concatenate([np.cumsum(np.log(x)[::-1])[::-1], [0.0]])
    sum_log = suffix[first[cand]] - n_tail * logu[cand]
    with np.errstate(divide="ignore"):
        alpha = 1.0 + n_tail / sum_log
    cdf_emp = first / n_total                               # fraction strictly below each unique value
    ok = n_tail >= max(min_tail, 2)
    D = np.where(ok, _ks_distances_all_fast(logu, cdf_emp, alpha), np.inf)
    close = cand[D <= D.min() + 1e-4]
    D[close] = _ks_distances(logu, cdf_emp, alpha, close)
    return u[cand], alpha, D, n_tail, ok


def _alpha_truncated(tail: np.ndarray, xmin: float, xmax: float) -> float:
    """MLE of alpha for a power law truncated to [xmin, xmax]: the root in ``b = alpha - 1`` of the score
    ``n/b - n r / (e^{b r} - 1) - s`` (``r = log(xmax/xmin)``, ``s = sum log(x/xmin)``), which is smooth
    through ``b = 0`` (log-uniform); ``alpha < 1`` is allowed, as the truncated density stays proper."""
    from scipy.optimize import brentq
    n, s = len(tail), float(np.log(tail / xmin).sum())
    r = float(np.log(xmax / xmin))

    def score(b):
        if abs(b * r) < 1e-6:  # series of n/b - n r/(e^{br} - 1) around b = 0
            return n * r / 2 - n * b * r * r / 12 - s
        return n / b - n * r / np.expm1(b * r) - s

    lo, hi = -1.0, 1.0
    while score(lo) < 0 and lo > -1e3:
        lo *= 2
    while score(hi) > 0 and hi < 1e3:
        hi *= 2
    if score(lo) < 0 or score(hi) > 0:
        return float("nan")
    return 1.0 + brentq(score, lo, hi, xtol=1e-13)


def fit_power_law(values, xmin: float | None = None, xmax: float | None = None, min_tail: int = 2,
                  min_value: float = 0.0) -> PowerLawFit:
    """Fit ``p(x) ~ x^-alpha`` to the tail of ``values`` (see the module docstring).

    ``min_value``: values at or below it are dropped first (0: powerlaw's convention; WeightWatcher
    drops eigenvalues at or below 1e-5).
    Returns a :class:`PowerLawFit`; ``status`` is ``"too_few_values"`` when fewer than two distinct
    values (or fewer than ``min_tail``) are left, ``"degenerate"`` when all values are equal.
    Non-finite values raise ``ValueError``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        raise ValueError("fit_power_law: values contain NaN or Inf")
    x = np.sort(x[x > max(min_value, 0.0)])
    if xmax is not None:
        x = x[x <= xmax]
    if len(x) < max(min_tail, 2):
        return _failed(TOO_FEW, len(x))
    if x[0] == x[-1]:
        return _failed(DEGENERATE, len(x))
    if xmin is not None:
        tail = x[x >= xmin]
        if len(tail) < max(min_tail, 2):
            return _failed(TOO_FEW, len(tail))
        alpha = (_alpha_truncated(tail, xmin, xmax) if xmax is not None
                 else 1.0 + len(tail) / np.log(tail / xmin).sum())
        D = _ks_fixed(x, xmin, alpha, xmax)
        return PowerLawFit(float(alpha), float(xmin), D, float((alpha - 1) / np.sqrt(len(tail))), len(tail))
    if xmax is not None:
        return _scan_truncated(x, xmax, min_tail)
    xmins, alphas, Ds, n_tails, ok = _ks_scan(x, min_tail)
    if not ok.any():
        return _failed(TOO_FEW, int(n_tails.max(initial=0)))
    best = int(np.argmin(np.where(ok, Ds, np.inf)))
    a, n = float(alphas[best]), int(n_tails[best])
    return PowerLawFit(a, float(xmins[best]), float(Ds[best]), (a - 1) / np.sqrt(n), n)


def fit_power_law_small_n(values, min_tail: int = SMALL_N_MIN_TAIL, min_value: float = 0.0) -> PowerLawFit:
    """WeightWatcher 0.7.7's fit of a sample of fewer than :data:`SMALL_N` values, as it comes out of ``WWFit``:
    for every candidate xmin (each sorted value but the largest) whose tail holds at least ``min_tail`` values,
    the bias-corrected MLE ``alpha = 1 + (n - 1) / sum(log(x / xmin))`` and the KS distance
    ``D = max |i/n - F_fit(x_i)|`` over the sorted tail; the candidate with the smallest D wins (the first on
    ties). (``fit_powerlaw_smallN`` ranks the candidates by ``D - 0.868 / sqrt(n)``, but ``WWFit.__init__`` then
    overrides that choice with the smallest D.) With no such candidate the whole sample is the tail.
    ``min_value`` as in :func:`fit_power_law`."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        raise ValueError("fit_power_law_small_n: values contain NaN or Inf")
    x = np.sort(x[x > max(min_value, 0.0)])
    if len(x) < 2:
        return _failed(TOO_FEW, len(x))
    if x[0] == x[-1]:
        return _failed(DEGENERATE, len(x))
    logx = np.log(x)

    def candidate(i):
        n = len(x) - i
        s = float(logx[i:].sum() - n * logx[i])
        if s <= 1e-12:
            return None
        alpha = 1.0 + (n - 1.0) / s
        if alpha <= 1.0:
            return None
        return alpha, float(np.abs(np.arange(n) / n - (1.0 - (x[i:] / x[i]) ** (1.0 - alpha))).max()), n

    fits = {i: candidate(i) for i in range(len(x) - 1) if len(x) - i >= min_tail}
    fits = {i: f for i, f in fits.items() if f is not None} or {0: candidate(0)}
    if fits.get(0, True) is None:
        return _failed(DEGENERATE, len(x))
    best = min(fits, key=lambda i: (fits[i][1], i))
    alpha, D, n = fits[best]
    return PowerLawFit(float(alpha), float(x[best]), D, float((alpha - 1) / np.sqrt(n)), n)


def _ks_fixed(x: np.ndarray, xmin: float, alpha: float, xmax: float | None) -> float:
    """KS distance of one fit, in the same convention as the scan."""
    u, first = np.unique(x, return_index=True)
    n_total = len(x)
    keep = u >= xmin
    c0 = first[keep][0] / n_total
    emp = (first[keep] / n_total - c0) / (1 - c0)
    fit = 1 - (u[keep] / xmin) ** (1 - alpha)
    if xmax is not None:
        fit = fit / (1 - (xmax / xmin) ** (1 - alpha))
    return float(np.abs(fit - emp).max())


def _scan_truncated(x: np.ndarray, xmax: float, min_tail: int) -> PowerLawFit:
    """The KS scan with the truncated likelihood (one fit per candidate; slower)."""
    best = None
    for xmin in np.unique(x)[:-1]:
        tail = x[x >= xmin]
        if len(tail) < max(min_tail, 2):
            break
        alpha = _alpha_truncated(tail, xmin, xmax)
        D = _ks_fixed(x, xmin, alpha, xmax)
        if best is None or D < best.D:
            best = PowerLawFit(float(alpha), float(xmin), D, float((alpha - 1) / np.sqrt(len(tail))), len(tail))
    return best or _failed(TOO_FEW, len(x))
