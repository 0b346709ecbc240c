"""A claim's experimental design and the test it implies: the unit of replication (the level at which independent
randomness enters: a configuration, a width, a task, a seed), the strata held fixed, and a test that can be run
again on the claim's own nulls and with a planted effect.

Each test takes per-row data and a :class:`Design`, averages the rows of a unit (:func:`studylib.stats.unit_means`:
three seeds of one configuration are one unit, not three) and decides on the units:

- :class:`RankTest`: "x goes with y", the (stratified) Kendall tau over units with its belt interval;
- :class:`PairedTest`: "A exceeds B", the median over units of their difference, by the exact sign test;
- :class:`TauDifferenceTest`: "metric 1 tracks y better than metric 2", by the exact swap test over units;
- :class:`ShareTest`: "most units do X", the exact binomial test of a share.

Every test can be rerun on **nulls** of the same design (x permuted across units within strata; the units'
differences centred on their median and resampled, their skew kept; two exchangeable noisy copies of the metrics'
common ranking; a coin at the null share), with a **planted** effect of a stated size, on the **best case** (the
strongest data the design allows) to tell whether it can be decided at all, and **resized** to another number of
units (the observed units cycled) to tell how many it would need.
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
        """x permuted across units within strata."""
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

    def resized(self, n: int) -> "RankTest":
        u = _cycled_units(self._frame, n)
        return replace(self, x=tuple(u.x), y=tuple(u.y), design=_unit_design(self.design, u))

    def n_units(self) -> int:
        return len(self._units())


@dataclass(frozen=True)
class PairedTest:
    """The median over units of ``a - b`` (``b`` None: of ``a``), by the exact sign test and its order-statistic
    interval (:func:`studylib.stats.sign_test`); strata are not used (each unit is its own pair)."""
    a: tuple
    b: tuple | None
    design: Design
    level: float = 0.95

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
        est = stats.sign_test(d, level=self.level)
        return est if self.b is None else replace(est, statistic="median difference")

    def null(self, rng: np.random.Generator, shift: float = 0.0) -> stats.Estimate:
        """The units' differences centred on their median and drawn with replacement, plus ``shift``: a null (at
        ``shift`` 0) with the data's own skew and spread, whose median is 0. Swapping the arms at random would
        make the differences symmetric, which hides a test that assumes symmetry."""
        d = self.differences()
        return self.estimate(rng.choice(d - np.median(d), len(d)) + shift)

    def planted(self, rng: np.random.Generator, effect: float) -> stats.Estimate:
        """The null with its median moved to ``effect``."""
        return self.null(rng, effect)

    def best_case(self, direction: str, beyond: float = 0.0) -> stats.Estimate:
        """Every unit at the largest observed absolute difference (at least ``beyond``: a claim with a noise floor
        asks whether data above its floor could decide it) with the claimed sign."""
        d = self.differences()
        scale = max(float(np.abs(d).max()) if len(d) else 0.0, beyond) or 1.0
        return self.estimate(np.full(len(d), _sign(direction) * scale))

    def resized(self, n: int) -> "PairedTest":
        return replace(self, a=tuple(np.resize(self._differences, n).tolist()), b=None, design=Design(self.design.unit))

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
        y alike and disagree by as much as the data do. The swap test's null is this one (the metrics
        interchangeable); two metrics that track y equally well but with noise of different shapes are not, and
        on them the test says "held" more often than its level (``tests/test_designs.py`` measures it)."""
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

    def resized(self, n: int) -> "TauDifferenceTest":
        u = _cycled_units(self._frame, n)
        return replace(self, x1=tuple(u.x1), x2=tuple(u.x2), y=tuple(u.y), design=_unit_design(self.design, u))

    def n_units(self) -> int:
        return len(self._units())


@dataclass(frozen=True)
class ShareTest:
    """The share of units where something happened, minus ``null_share``, by the exact binomial test
    (:func:`studylib.stats.proportion`). A unit of several rows votes by the majority of its rows (a share test
    only against a null of one half without a band: :func:`studylib.claims.share_claim` checks it); a unit tied at
    one half does not vote, and the estimate's note says how many did not."""
    successes: tuple
    null_share: float
    design: Design
    level: float = 0.95

    kind = "share"

    @cached_property
    def _unit_values(self) -> np.ndarray:
        s = pd.DataFrame({"s": np.asarray(self.successes, float)}).dropna()
        units = None if self.design.units is None else np.asarray(self.design.units)[s.index]
        return stats.unit_means(s, units).s.to_numpy()

    @cached_property
    def _unit_shares(self) -> np.ndarray:
        share = self._unit_values
        return (share[share != 0.5] > 0.5).astype(float)  # a tied unit does not vote

    def _tied(self) -> int:
        return int((self._unit_values == 0.5).sum())

    def _shares(self) -> np.ndarray:
        return self._unit_shares.copy()

    def estimate(self, s=None) -> stats.Estimate:
        if s is not None:
            return stats.proportion(s, self.level, self.null_share)
        est = stats.proportion(self._shares(), self.level, self.null_share)
        tied = self._tied()
        return replace(est, note=f"{tied} tied unit{'s' if tied > 1 else ''} did not vote") if tied else est

    def null(self, rng: np.random.Generator) -> stats.Estimate:
        """A coin at the null share for each unit."""
        return self.estimate((rng.random(len(self._shares())) < self.null_share).astype(float))

    def planted(self, rng: np.random.Generator, effect: float) -> stats.Estimate:
        share = float(np.clip(self.null_share + effect, 0, 1))
        return self.estimate((rng.random(len(self._shares())) < share).astype(float))

    def best_case(self, direction: str) -> stats.Estimate:
        n, sign = len(self._shares()), _sign(direction)
        if sign:
            return self.estimate(np.full(n, 1.0 if sign > 0 else 0.0))
        return self.estimate((np.arange(n) < round(n * self.null_share)).astype(float))

    def resized(self, n: int) -> "ShareTest":
        return replace(self, successes=tuple(np.resize(self._unit_shares, n).tolist()),
                       design=Design(self.design.unit))

    def n_units(self) -> int:
        return len(self._shares())


def _cycled_units(units: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` units made by cycling through the observed ones (each a new unit, in its stratum): the design grown or
    cut to ``n`` units, to ask how many a claim would need. Each copy's values are moved by a tiny step, so that
    copies are distinct units, not ties (a tie would lower the strongest tau the design allows)."""
    out = units.iloc[np.resize(np.arange(len(units)), n)].reset_index(drop=True)
    copy = np.arange(n) // max(len(units), 1)
    for column in out.columns.drop("stratum"):
        v = out[column].to_numpy(float)
        finite = v[np.isfinite(v)]
        spread = float(np.ptp(finite)) if len(finite) and np.ptp(finite) else 1.0
        out[column] = v + copy * 1e-9 * spread / max(n, 1)
    return out


def _unit_design(design: Design, units: pd.DataFrame) -> Design:
    """The design of a frame of unit-level rows: each row its own unit, in the stratum it carries."""
    return Design(design.unit, None, None if design.strata is None else tuple(units.stratum.tolist()))


TESTS = (RankTest, PairedTest, TauDifferenceTest, ShareTest)
