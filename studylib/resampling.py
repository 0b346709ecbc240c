"""The one bootstrap: a percentile interval of any statistic, resampling observations (within strata if asked).

Apart from :mod:`studylib.stats` so that the metrics (the ESD chapter's alpha intervals) can use it without their
trained runs reaching the claims engine: a run's cache key covers the code it reaches, and statistics must never
re-key a trained run. :mod:`studylib.stats` exports it as part of its API.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def bootstrap_interval(statistic, *samples, n_boot: int = 1000, seed: int | np.random.Generator = 0,
                       level: float = 0.95, strata=None):
    """Percentile bootstrap interval of ``statistic(*samples)``: ``n_boot`` times, one index vector drawn with
    replacement (``rng.integers(n, size=n)``) resamples every sample alike (pairs stay pairs); with ``strata``
    (one label per observation) the indices are drawn within each stratum. ``seed``: an int, or a ``numpy``
    Generator that several intervals draw from in turn.

    ``statistic`` returns a number or a tuple of numbers; non-finite values are dropped, each component on
    its own. Returns ``(lo, hi)`` (floats, or arrays for a tuple statistic); NaN where no value is finite.
    Valid for statistics that are smooth in the data at moderate n; :func:`studylib.stats.kendall` does not use it.
    Used by the ESD audit chapter (layer averages, alpha intervals).
    """
    samples = [np.asarray(s) for s in samples]
    n = len(samples[0])
    if n == 0 or any(len(s) != n for s in samples):
        raise ValueError(f"samples must be non-empty and of one length, got {[len(s) for s in samples]}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be an int >= 1, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    members = ([np.arange(n)] if strata is None
               else [np.flatnonzero(mask) for mask in strata_masks(strata, n)])
    values = []
    for _ in range(n_boot):
        i = np.concatenate([m[rng.integers(len(m), size=len(m))] for m in members])
        values.append(np.asarray(statistic(*(s[i] for s in samples)), dtype=float))
    scalar = values[0].ndim == 0
    values = np.asarray(values, dtype=float).reshape(n_boot, -1)
    q = [(1 - level) / 2, (1 + level) / 2]
    bounds = np.full((2, values.shape[1]), math.nan)
    for j in range(values.shape[1]):
        finite = values[:, j][np.isfinite(values[:, j])]
        if len(finite):
            bounds[:, j] = np.quantile(finite, q)
    return (float(bounds[0, 0]), float(bounds[1, 0])) if scalar else (bounds[0], bounds[1])


def strata_masks(strata, n: int) -> list[np.ndarray]:
    """One boolean mask per distinct label of ``strata`` (in order of first appearance), over ``n`` observations."""
    labels = pd.Series(list(strata)) if not isinstance(strata, pd.Series) else strata.reset_index(drop=True)
    if len(labels) != n:
        raise ValueError(f"strata must give one label per observation ({n}), got {len(labels)}")
    return [(labels == g).to_numpy() for g in pd.unique(labels)]
