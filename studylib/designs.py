"""A claim's experimental design and the test it implies: the unit of replication (the level at which independent
randomness enters: a configuration, a width, a task, a seed), the strata held fixed, and a test that can be run
again on the claim's own nulls and with a planted effect.

Each test takes per-row data and a :class:`Design`, averages the rows of a unit (:func:`studylib.stats.unit_means`:
three seeds of one configuration are one unit, not three) and decides on the units:

- :class:`RankTest`: "x goes with y", the (stratified) Kendall tau over units with its belt interval;
- :class:`PairedTest`: "A exceeds B", the mean over units of their difference, by the exact sign-flip test;
- :class:`TauDifferenceTest`: "metric 1 tracks y better than metric 2", by the exact swap test over units;
- :class:`ShareTest`: "most units do X", the exact binomial test of a share.

Every test can be rerun on **nulls** of the same design (x permuted across units within strata; the two arms of
each unit swapped at random, or, for one sample against a fixed value, its values centred and resampled, their
skew kept; two exchangeable noisy copies of the metrics' common ranking;
a coin at the null share), with a **planted** effect of a stated size, and on the
**best case** (the strongest data the design allows) to tell whether it can be decided at all.
:mod:`studylib.claims` turns the results into verdicts, the audit columns and "undecidable here".

Used by every chapter's claims (through :mod:`studylib.claims`) and by the verdicts page.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from . import stats

#: how many units a test may ask for when it says how many it would need to be decided (a swap test over more
#: would hold too many pairs of units in memory)
MOST_UNITS_ASKED = 512


@dataclass(frozen=True)
class Design:
    """``unit``: what one unit of replication is, in words ("configurations", "seeds"); ``units``: one label per row
    (rows with one label are averaged into one unit; None: every row is a unit); ``strata``: one label per row of
    what is held fixed (constant within a unit; None: one stratum)."""
    unit: str = "runs"
    units: tuple | None = None
    strata: tuple | None = None

    def __post_init__(self):
        for name in ("units", "strata"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(np.asarray(value).tolist()))


def _partner(y: np.ndarray, tau: float, rng: np.random.Generator, strata: np.ndarray) -> np.ndarray:
    """Scores whose Kendall tau with ``y`` is ``tau`` in expectation within each stratum (a Gaussian copula on y's
    ranks in the stratum)."""
    rho = math.sin(math.pi * tau / 2)
    z = np.empty(len(y))
    for g in np.unique(strata):
        m = np.flatnonzero(strata == g)
        z[m] = scipy_stats.norm.ppf((scipy_stats.rankdata(y[m]) - 0.5) / len(m))
    return rho * z + math.sqrt(max(1 - rho * rho, 0.0)) * rng.standard_normal(len(y))


def _reorder_within(values: np.ndarray, scores: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """``values`` rearranged within each stratum so that their order follows ``scores`` (the marginal is kept)."""
    out = values.copy()
    for g in np.unique(strata):
        m = np.flatnonzero(strata == g)
        out[m[np.argsort(scores[m], kind="stable")]] = np.sort(values[m])
    return out


def _permute_within(values: np.ndarray, strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = values.copy()
    for g in np.unique(strata):
        m = np.flatnonzero(strata == g)
        out[m] = values[rng.permutation(m)]
    return out


def _sign(direction: str) -> int:
    return {"positive": 1, "not negative": 1, "negative": -1, "not positive": -1}.get(direction, 0)


@dataclass(frozen=True)
class RankTest:
    """Kendall's tau of ``x`` and ``y`` over units (stratified when the design has strata), by
    :func:`studylib.stats.kendall`."""
    x: tuple
    y: tuple
    design: Design
    level: float = 0.95

    kind = "rank"

    @cached_property
    def _frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({"x": np.asarray(self.x, float), "y": np.asarray(self.y, float)})
        return stats.unit_means(frame, self.design.units, self.design.strata)

    def _units(self) -> pd.DataFrame:
        return self._frame.copy()

    def estimate(self, x=None) -> stats.Estimate:
        u = self._units()
        if x is not None:
            u = u.assign(x=x)
        return stats.kendall(u.x, u.y, None if self.design.strata is None else u.stratum, self.level)

    def null(self, rng: np.random.Generator) -> stats.Estimate:
        u = self._units()
        return self.estimate(_permute_within(u.x.to_numpy(), u.stratum.to_numpy(), rng))

    def planted(self, rng: np.random.Generator, effect: float) -> stats.Estimate:
        u = self._units()
        strata = u.stratum.to_numpy()
        return self.estimate(_reorder_within(u.x.to_numpy(), _partner(u.y.to_numpy(), effect, rng, strata), strata))

    def best_case(self, direction: str) -> stats.Estimate:
        """Perfect concordance (or discordance) in every stratum; for "none", an observed tau of 0."""
        u = self._units()
        sign = _sign(direction)
        if sign:
            return self.estimate(_reorder_within(u.x.to_numpy(), sign * u.y.to_numpy(), u.stratum.to_numpy()))
        sizes = u.groupby("stratum").size()
        return stats.kendall_at(0.0, sizes[sizes >= 2].tolist() or [len(u)], self.level)

    def replicated(self, k: int) -> "RankTest":
        return replace(self, x=self.x * k, y=self.y * k, design=_replicated(self.design, len(self.x), k))

    def n_units(self) -> int:
        return len(self._units())


@dataclass(frozen=True)
class PairedTest:
    """The mean over units of ``a - b`` (``b`` None: of ``a``), by the exact sign-flip test
    (:func:`studylib.stats.sign_flip`); strata are not used (each unit is its own pair). ``arms``: ``a`` holds
    the differences (or log ratios) of two arms matched within each unit, as when ``b`` is given."""
    a: tuple
    b: tuple | None
    design: Design
    level: float = 0.95
    arms: bool = False

    flips: int = stats.RANDOM_FLIPS

    kind = "paired"

    @cached_property
    def _differences(self) -> np.ndarray:
        a = np.asarray(self.a, float)
        d = a - (0.0 if self.b is None else np.asarray(self.b, float))
        return stats.unit_means(pd.DataFrame({"d": d}), self.design.units).d.to_numpy()

    def differences(self) -> np.ndarray:
        """The units' mean differences (rows of a unit averaged)."""
        return self._differences.copy()

    def estimate(self, d=None) -> stats.Estimate:
        d = self.differences() if d is None else d
        est = stats.sign_flip(d, level=self.level, flips=self.flips)
        return est if self.b is None else replace(est, statistic="mean difference")

    def null(self, rng: np.random.Generator) -> stats.Estimate:
        """Two arms (``b`` given, or ``arms``): the arms swapped at random within each unit, which flips the sign
        of its difference (the null of no effect, under which the test is exact). One sample against a fixed
        value: the units' values centred on 0 and drawn with replacement, a null with the data's own skew, which
        the test's symmetry assumption may not survive."""
        d = self.differences()
        if self.b is not None or self.arms:
            return self.estimate(rng.choice([-1.0, 1.0], len(d)) * d)
        return self.estimate(rng.choice(d - d.mean(), len(d)))

    def planted(self, rng: np.random.Generator, effect: float) -> stats.Estimate:
        d = self.differences()
        return self.estimate(rng.choice([-1.0, 1.0], len(d)) * (d - d.mean()) + effect)

    def best_case(self, direction: str, beyond: float = 0.0) -> stats.Estimate:
        """Every unit at the largest observed absolute difference (at least ``beyond``: a claim with a noise floor
        asks whether data above its floor could decide it) with the claimed sign."""
        d = self.differences()
        scale = max(float(np.abs(d).max()) if len(d) else 0.0, beyond) or 1.0
        return self.estimate(np.full(len(d), _sign(direction) * scale))

    def replicated(self, k: int) -> "PairedTest":
        return replace(self, a=self.a * k, b=None if self.b is None else self.b * k,
                       design=_replicated(self.design, len(self.a), k))

    def n_units(self) -> int:
        return len(self.differences())


@dataclass(frozen=True)
class TauDifferenceTest:
    """tau(x1, y) - tau(x2, y) over units, by the exact swap test (:func:`studylib.stats.swap_tau_difference`)."""
    x1: tuple
    x2: tuple
    y: tuple
    design: Design
    level: float = 0.95

    flips: int = stats.RANDOM_FLIPS

    kind = "tau difference"

    @cached_property
    def _frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({k: np.asarray(getattr(self, k), float) for k in ("x1", "x2", "y")})
        return stats.unit_means(frame, self.design.units, self.design.strata)

    def _units(self) -> pd.DataFrame:
        return self._frame.copy()

    def estimate(self, u=None) -> stats.Estimate:
        u = self._units() if u is None else u
        strata = None if self.design.strata is None else u.stratum
        return stats.swap_tau_difference(u.x1, u.x2, u.y, strata, self.level, flips=self.flips)

    def null(self, rng: np.random.Generator) -> stats.Estimate:
        """Two exchangeable metrics: each unit's two normal scores (of the metrics' ranks within stratum) replaced by
        their average plus independent noise of the spread of their half-difference, so that both metrics track
        y alike and disagree by as much as the data do."""
        u = self._units()
        z1, z2 = (scipy_stats.norm.ppf((u.groupby("stratum")[c].rank() - 0.5) / u.groupby("stratum")[c].transform("size"))
                  for c in ("x1", "x2"))
        common, spread = (z1 + z2) / 2, max(float(np.std((z1 - z2) / 2)), 1e-3)
        return self.estimate(u.assign(x1=common + spread * rng.standard_normal(len(u)),
                                      x2=common + spread * rng.standard_normal(len(u))))

    def planted(self, rng: np.random.Generator, effect: float) -> stats.Estimate:
        """x1 redrawn to track y at tau(x2, y) + ``effect``; where that passes ±1, x2 redrawn too, ``effect``
        below x1's, so that the planted difference is ``effect`` whatever x2 already does."""
        u = self._units()
        strata, y = u.stratum.to_numpy(), u.y.to_numpy()
        base = stats.kendall_tau(u.x2, u.y)
        base = 0.0 if not math.isfinite(base) else base
        first = float(np.clip(base + effect, -1, 1))
        u = u.assign(x1=_reorder_within(u.x1.to_numpy(), _partner(y, first, rng, strata), strata))
        if abs(first - base) < abs(effect) - 1e-9:
            u = u.assign(x2=_reorder_within(u.x2.to_numpy(), _partner(y, first - effect, rng, strata), strata))
        return self.estimate(u)

    def best_case(self, direction: str) -> stats.Estimate:
        u = self._units()
        sign = _sign(direction) or 1
        strata = u.stratum.to_numpy()
        return self.estimate(u.assign(x1=_reorder_within(u.x1.to_numpy(), sign * u.y.to_numpy(), strata),
                                      x2=_reorder_within(u.x2.to_numpy(), -sign * u.y.to_numpy(), strata)))

    def replicated(self, k: int) -> "TauDifferenceTest":
        return replace(self, x1=self.x1 * k, x2=self.x2 * k, y=self.y * k,
                       design=_replicated(self.design, len(self.y), k))

    def n_units(self) -> int:
        return len(self._units())


@dataclass(frozen=True)
class ShareTest:
    """The share of units where something happened, minus ``null``, by the exact binomial test
    (:func:`studylib.stats.proportion`); a unit's value is the majority of its rows (a tied unit does not vote)."""
    successes: tuple
    null_share: float
    design: Design
    level: float = 0.95

    kind = "share"

    @cached_property
    def _unit_shares(self) -> np.ndarray:
        s = pd.DataFrame({"s": np.asarray(self.successes, float)}).dropna()
        units = None if self.design.units is None else np.asarray(self.design.units)[s.index]
        share = stats.unit_means(s, units).s.to_numpy()
        return (share[share != 0.5] > 0.5).astype(float)  # a tied unit does not vote

    def _shares(self) -> np.ndarray:
        return self._unit_shares.copy()

    def estimate(self, s=None) -> stats.Estimate:
        return stats.proportion(self._shares() if s is None else s, self.level, self.null_share)

    def null(self, rng: np.random.Generator) -> stats.Estimate:
        return self.estimate((rng.random(len(self._shares())) < self.null_share).astype(float))

    def planted(self, rng: np.random.Generator, effect: float) -> stats.Estimate:
        share = float(np.clip(self.null_share + effect, 0, 1))
        return self.estimate((rng.random(len(self._shares())) < share).astype(float))

    def best_case(self, direction: str) -> stats.Estimate:
        n, sign = len(self._shares()), _sign(direction)
        if sign:
            return self.estimate(np.full(n, 1.0 if sign > 0 else 0.0))
        return self.estimate((np.arange(n) < round(n * self.null_share)).astype(float))

    def replicated(self, k: int) -> "ShareTest":
        return replace(self, successes=self.successes * k, design=_replicated(self.design, len(self.successes), k))

    def n_units(self) -> int:
        return len(self._shares())


def _replicated(design: Design, rows: int, k: int) -> Design:
    """The design of ``k`` independent copies of the data: each copy's units are new units in the same strata."""
    units = design.units if design.units is not None else tuple(range(rows))
    return replace(design, units=tuple(f"{c}:{u}" for c in range(k) for u in units),
                   strata=None if design.strata is None else design.strata * k)


TESTS = (RankTest, PairedTest, TauDifferenceTest, ShareTest)
