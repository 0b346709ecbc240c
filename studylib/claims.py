"""The claims engine: each claim of a source paper as a :class:`Claim` record, decided on its design (the unit of
replication, the strata held fixed, its control and noise floor; :mod:`studylib.designs`) by an exact test or an
interval at a stated level, never by a point estimate, and audited on its own nulls and with a planted effect.

Used by every chapter's closing claims table and by the "Verdicts" page, which collects the tables the executed
chapters stored (:func:`publish`, :func:`collect`).

The verdicts:

- **held**: the interval lies entirely on the claimed side (of 0, or of the stated threshold), beyond the noise
  floor, and the effect beats its control where the claim has one;
- **did not hold**: the interval lies entirely on the other side, or, for a claimed direction, inside the stated
  negligible band (a claim of no relation: entirely outside the band);
- **inconclusive**: the interval covers both (the data at this n cannot tell), lies inside the noise floor, or
  the effect does not beat its control;
- **undecidable here**: even the strongest data this design allows (a perfect ordering, every unit on the claimed
  side) could not come out "held": the claim needs more units than were run (the number is given);
- **not testable here**: the data the claim needs cannot be had here (the reason is given);
- **partly held**: only for a claim tested on several data sets by one rule (:func:`combine` with ``"each"``):
  held on some, not on the others.

Checks that hold by construction (a bound, an identity, a consequence of the initialiser or of the training
budget) are not claims: they live in the tests and the narrative.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from . import designs, stats

#: the verdicts, in the order the tables count them
VERDICTS = ("held", "partly held", "did not hold", "inconclusive", "undecidable here", "not testable here")
#: the verdicts that decide a claim one way or the other (a replication build must repeat them)
DECISIVE = ("held", "did not hold")
#: what a claim asserts about its statistic: above 0, below 0, none (inside the negligible band), not below minus
#: the band, or not above plus the band
DIRECTIONS = {1: "positive", -1: "negative", 0: "none", "positive": "positive", "negative": "negative",
              "none": "none", "not negative": "not negative", "not positive": "not positive"}
#: nulls and planted effects each claim is audited on (:func:`audit`)
AUDIT_REPS = 200
#: swaps per swap test in the audit's reruns (all of them up to 10 units)
AUDIT_FLIPS = 1024
#: the most a claim's rule may say "held" on its own nulls
FALSE_HELD_LIMIT = 0.05
#: an audit whose false-held rate is over the limit but within its Monte-Carlo error is run again with this many
#: times the nulls, so that a rule is judged broken (:func:`broken`) or not on enough of them
AUDIT_RECHECK = 5
#: the planted effect of the audit, per kind of test, in the statistic's units: a tau of 0.5, a difference of taus
#: of 0.5, a share 0.3 away from the null; a mean difference of one standard deviation of the units' differences
PLANTED = {"rank": 0.5, "tau difference": 0.5, "share": 0.3}
#: a short identifier: lower-case words joined by hyphens
ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass
class Claim:
    """One claim of a paper and the evidence for it: ``id`` (a short stable name, unique in its chapter), where the
    paper makes it, the statistic, its estimate and interval at ``level``, ``n`` units (``unit`` says what one
    is), the p-value where meaningful, the verdict and a one-line reason. ``control`` is the same statistic on
    the claim's negative control, ``floor`` the estimator's noise floor; ``false_held``, ``false_refuted`` and
    ``power`` are the audit's (:func:`audit`): the share of the claim's own nulls that came out "held", of data
    where it is true at the smallest effect that matters that came out "did not hold", and of data with a planted
    effect of ``planted`` that came out "held". ``parts`` holds the sub-claims of a combined claim; ``paper`` names the
    source when it is not the chapter's own; ``test`` is the :mod:`studylib.designs` test that decided it."""
    claim: str
    where: str
    statistic: str
    estimate: float
    low: float
    high: float
    n: int
    p: float
    verdict: str
    reason: str
    unit: str = ""
    level: float = 0.95
    parts: list = field(default_factory=list)
    paper: str = ""
    id: str = ""
    direction: str = ""
    negligible: float = 0.0
    floor: float = 0.0
    control: str = ""
    units_needed: int = 0
    false_held: float = math.nan
    false_refuted: float = math.nan
    power: float = math.nan
    planted: str = ""
    audit_reps: int = 0
    premise_failed: bool = False
    test: object = field(default=None, repr=False, compare=False)

    @property
    def evidence(self) -> str:
        """The estimate with its interval and n, in one line (the parts' evidence for a combined claim)."""
        if self.parts:
            return "; ".join(f"{p.claim}: {p.evidence}" for p in self.parts)
        if not math.isfinite(self.estimate):
            return "no estimate"
        if math.isfinite(self.low) and math.isfinite(self.high):
            interval = f" [{_num(self.low)}, {_num(self.high)}]"
        elif self.low == -math.inf and self.high == math.inf:
            interval = " (no bounded interval at this n)"
        elif math.isfinite(self.p):
            interval = f" (p = {p_text(self.p)})"
        else:
            interval = " (no interval)"
        return f"{self.statistic} {_num(self.estimate)}{interval}, n = {self.n}{' ' + self.unit if self.unit else ''}"


def slug(name: str) -> str:
    """A name as part of a claim id: lower case, runs of other characters as one hyphen ("MLP width" ->
    "mlp-width", "prior_same" -> "prior-same"). Used by the chapters whose claims repeat per series or
    estimator."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _num(v: float) -> str:
    """A signed number for the tables: whole numbers from 100, two decimals from 0.1, two significant digits below."""
    if abs(v) >= 100:
        return f"{v:+,.0f}"
    if abs(v) >= 0.1 or v == 0:
        return f"{v:+.2f}"
    return f"{v:+.2g}"


def p_text(p: float) -> str:
    """A p-value for the pages: two significant digits, "< 0.001" below, "-" without one. Used by every chapter's
    claims table and the ESD chapter's regression table."""
    if not np.isfinite(p):
        return "-"
    return f"{p:.2g}" if p >= 1e-3 else "< 0.001"


def interval_text(estimate: float, low: float, high: float, digits: int = 2) -> str:
    """An estimate with its interval for the pages, "+0.52 [+0.12, +0.92]"; "n/a" without an estimate,
    "+0.52 (no interval)" without an interval (e.g. one pair). Used by the IIW, utilization and ESD chapters."""
    if not math.isfinite(estimate):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{estimate:+.{digits}f} (no interval)"
    return f"{estimate:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def decide(low: float, high: float, direction, negligible: float = 0.0, floor: float = 0.0) -> tuple[str, str]:
    """The verdict and its reason for a claimed ``direction`` (see :data:`DIRECTIONS`) of a statistic whose
    interval is ``[low, high]``; ``negligible``: the half-width of the band of values too small to matter;
    ``floor``: the estimator's noise floor, within which nothing is "held" or "did not hold" (an interval must
    clear ±floor on one side)."""
    kind = _direction(direction)
    if floor < 0 or negligible < 0:
        raise ValueError(f"negligible and floor must be >= 0, got {negligible!r} and {floor!r}")
    if math.isnan(low) or math.isnan(high):
        return "inconclusive", "no valid interval at this n"
    band = f"the negligible band ±{negligible:g}" if negligible else "0"
    inside = -negligible <= low and high <= negligible
    where = f"[{_num(low)}, {_num(high)}]"
    if floor and floor >= negligible and -floor <= low and high <= floor:
        # inside the estimator's own noise no kind of claim is decided (a band wider than the floor still is)
        return "inconclusive", f"interval {where} lies inside the noise floor ±{floor:g}"
    if kind in ("positive", "negative"):
        sign = 1 if kind == "positive" else -1
        if negligible and inside and negligible > floor:
            return "did not hold", f"interval {where} lies inside {band}: too small to matter"
        lo, hi = (low, high) if sign > 0 else (-high, -low)
        if lo > floor:
            return "held", f"interval {where} lies {'above' if sign > 0 else 'below'} {_floor(floor, sign)}"
        if hi < -floor:
            return "did not hold", (f"interval {where} lies {'below' if sign > 0 else 'above'} "
                                    f"{_floor(floor, -sign)}: the opposite sign")
        return "inconclusive", f"interval {where} covers {'0' if not floor else f'the noise floor ±{floor:g}'}"
    if kind == "none":
        if inside:
            return "held", f"interval {where} lies inside {band}"
        if low > max(negligible, floor) or high < -max(negligible, floor):
            return "did not hold", f"interval {where} lies outside {band}"
        return "inconclusive", f"interval {where} reaches beyond {band}"
    sign = 1 if kind == "not negative" else -1
    bound = _num(-sign * negligible)
    if (low >= -negligible if sign > 0 else high <= negligible):
        return "held", f"interval {where} excludes values {'below' if sign > 0 else 'above'} {bound}"
    if (high < -max(negligible, floor) if sign > 0 else low > max(negligible, floor)):
        return "did not hold", f"interval {where} lies {'below' if sign > 0 else 'above'} {bound}"
    return "inconclusive", f"interval {where} reaches {'below' if sign > 0 else 'above'} {bound}"


def _floor(floor: float, sign: int) -> str:
    return "0" if not floor else f"the noise floor {_num(sign * floor)}"


def decide_by_test(estimate: float, p: float, direction, level: float = 0.95, floor: float = 0.0) -> tuple[str, str]:
    """The verdict of an exact test that gives no interval (the swap test of two metrics): "held" when p <= 1 -
    ``level`` with the estimate on the claimed side and beyond ``floor``; "did not hold" when p <= 1 - level on
    the other side; else inconclusive. Only directional claims ("positive", "negative")."""
    kind = _direction(direction)
    if kind not in ("positive", "negative"):
        raise ValueError(f"a test without an interval decides only positive or negative claims, got {direction!r}")
    if not (math.isfinite(estimate) and math.isfinite(p)):
        return "inconclusive", "no valid test at this n"
    sign = 1 if kind == "positive" else -1
    if p > 1 - level:
        return "inconclusive", f"p = {p_text(p)} > {1 - level:g}"
    if abs(estimate) <= floor:
        return "inconclusive", f"{_num(estimate)} lies inside the noise floor ±{floor:g}"
    if np.sign(estimate) == sign:
        return "held", f"p = {p_text(p)} <= {1 - level:g}, {'above' if sign > 0 else 'below'} 0"
    return "did not hold", f"p = {p_text(p)} <= {1 - level:g}, the opposite sign"


def _direction(direction) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"the claimed direction (expected_sign) must be one of {list(DIRECTIONS)}, got {direction!r}")
    return DIRECTIONS[direction]


def _verdict(estimate: stats.Estimate, test, direction: str, negligible: float, floor: float) -> tuple[str, str]:
    if isinstance(test, designs.TauDifferenceTest):
        return decide_by_test(estimate.estimate, estimate.p, direction, estimate.level, floor)
    return decide(estimate.low, estimate.high, direction, negligible, floor)


def _best_case(test, direction: str, floor: float) -> stats.Estimate:
    """The strongest data of ``test``'s design; for a mean, with effects beyond the noise ``floor`` (the floor
    bars this data, not the design)."""
    if isinstance(test, designs.PairedTest):
        return test.best_case(direction, beyond=2 * floor)
    return test.best_case(direction)


#: up to this many units, the search for the fewest units that decide a claim checks every number below the
#: bisection's answer (a discrete test's verdict is not always monotone in n)
SCANNED_UP_TO = 64


def _fewest_units(works, n: int, scan: bool = False) -> int:
    """The fewest units, above ``n`` (where ``works`` fails), at which ``works(units)`` is true: doubling, then
    bisecting, then (``scan``, for a deterministic ``works``) every number between ``n`` and the answer while it is
    at most :data:`SCANNED_UP_TO`; 0 when not even ``designs.MOST_UNITS_ASKED`` do."""
    if n >= designs.MOST_UNITS_ASKED:
        return 0
    low, high = n, min(2 * n, designs.MOST_UNITS_ASKED)
    while not works(high):
        if high >= designs.MOST_UNITS_ASKED:
            return 0
        low, high = high, min(2 * high, designs.MOST_UNITS_ASKED)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if works(mid) else (mid, high)
    if scan and high <= SCANNED_UP_TO:
        return next((m for m in range(n + 1, high) if works(m)), high)
    return high


def _decidable(test, direction: str, negligible: float, floor: float) -> tuple[bool, int]:
    """Whether the strongest data of this design could come out "held", and if not, the fewest units that would
    let it (the design's units cycled, :meth:`resized`; 0 when not even ``designs.MOST_UNITS_ASKED`` would)."""
    test = _coarse_test(test)
    n = test.n_units()
    if n == 0:
        return True, 0  # no data to decide: the verdict says so ("inconclusive", with the estimate's note)

    def holds(units: int) -> bool:
        trial = test if units == n else test.resized(units)
        return _verdict(_best_case(trial, direction, floor), trial, direction, negligible, floor)[0] == "held"

    if holds(n):
        return True, n
    return False, _fewest_units(holds, n, scan=True)


def _decided(test, direction, negligible: float, floor: float, claim: str, where: str, id: str, unit: str,
             statistic: str | None, control=None) -> Claim:
    """A claim decided by ``test`` (:mod:`studylib.designs`): its verdict, "undecidable here" when the data did not
    decide it and the design could not have, "inconclusive" when it does not beat its ``control`` (a pair of tests: the control's own
    estimate and the test of the effect against it)."""
    direction = _direction(direction)
    estimate = test.estimate()
    verdict, reason = _verdict(estimate, test, direction, negligible, floor)
    if estimate.note:
        reason = f"{reason} ({estimate.note})"
    decidable, needed = (_decidable(test, direction, negligible, floor) if verdict == "inconclusive"
                         and math.isfinite(estimate.estimate) else (True, 0))
    if not decidable:
        verdict = "undecidable here"
        reason = (f"even the strongest data of this design ({estimate.n} {unit or 'units'}) could not come out "
                  "held; " + (f"it needs about {needed} {unit or 'units'}" if needed
                              else f"not even {designs.MOST_UNITS_ASKED} {unit or 'units'} would do"))
        if estimate.note and "needs" not in estimate.note:  # what the note adds (tied units that did not vote)
            reason = f"{reason} ({estimate.note})"
    control_text = ""
    if control is not None:
        own, versus = control
        control_estimate = own.estimate()
        beat = versus.estimate()
        beat_verdict, beat_reason = _verdict(beat, versus, direction if direction in ("positive", "negative")
                                             else "positive", 0.0, 0.0)
        control_text = (f"{_num(control_estimate.estimate)}" if math.isfinite(control_estimate.estimate)
                        else "no estimate") + f"; effect minus control: {beat_verdict} ({beat_reason})"
        if verdict == "held" and beat_verdict != "held":
            verdict, reason = "inconclusive", f"{reason}; but it does not beat its control ({beat_reason})"
    return Claim(claim, where, statistic or estimate.statistic, estimate.estimate, estimate.low, estimate.high,
                 estimate.n, estimate.p, verdict, reason, unit, estimate.level, id=id, direction=direction,
                 negligible=negligible, floor=floor, control=control_text, units_needed=needed, test=test)


def _design(unit: str, units, strata) -> designs.Design:
    return designs.Design(unit or "points", None if units is None else tuple(units),
                          None if strata is None else tuple(strata))


def rank_claim(x, y, expected_sign, groups=None, level: float = 0.95, claim: str = "", where: str = "",
               negligible: float = 0.1, unit: str = "", statistic: str | None = None, *, id: str = "",
               units=None, control=None, floor: float = 0.0) -> Claim:
    """A claim about the rank correlation of ``x`` and ``y`` (``expected_sign``: +1, -1, 0 for "no relation", or
    "not negative" / "not positive"), decided by the interval of :func:`studylib.stats.kendall` over units
    (``units``: one label per row, rows of a unit averaged; ``groups``: the strata held fixed, constant within a
    unit); a tau within ±``negligible`` counts as no relation. ``control``: the same x measured on the claim's
    negative control (same rows): held needs tau(x, y) to beat tau(control, y) (the swap test). ``floor``: the
    noise floor of the tau. Used by every chapter."""
    _direction(expected_sign)
    design = _design(unit, units, groups)
    test = designs.RankTest(tuple(np.asarray(x, float)), tuple(np.asarray(y, float)), design, level)
    pair = None
    if control is not None:
        pair = (designs.RankTest(tuple(np.asarray(control, float)), test.y, design, level),
                designs.TauDifferenceTest(test.x, tuple(np.asarray(control, float)), test.y, design, level))
    return _decided(test, expected_sign, negligible, floor, claim, where, id, unit, statistic, pair)


def median_claim(a, b=None, expected_sign=1, level: float = 0.95, claim: str = "", where: str = "",
                 negligible: float = 0.0, unit: str = "", statistic: str | None = None, *, id: str = "",
                 units=None, control=None, floor: float = 0.0) -> Claim:
    """A claim about the median over units of ``a - b`` (or of ``a``: differences or log ratios already taken;
    ``units``: one label per row, rows of a unit averaged), decided by the exact sign test and its order-statistic
    interval (:func:`studylib.stats.sign_test`), valid whatever the skew of the differences: below 6 units it is
    undecidable at 95%. ``control``: ``(a_control, b_control)`` (``b_control`` may be None), the same difference
    on the claim's negative control: held needs the difference to beat the control's, unit by unit. ``floor``: the
    noise floor of the statistic. Used by every chapter."""
    _direction(expected_sign)
    design = _design(unit, units, None)
    arm = lambda v: None if v is None else tuple(np.asarray(v, float))
    test = designs.PairedTest(arm(a), arm(b), design, level)
    pair = None
    if control is not None:
        ca, cb = control
        own = designs.PairedTest(arm(ca), arm(cb), design, level)
        d = np.asarray(a, float) - (0 if b is None else np.asarray(b, float))
        dc = np.asarray(ca, float) - (0 if cb is None else np.asarray(cb, float))
        pair = (own, designs.PairedTest(tuple(d), tuple(dc), design, level))
    return _decided(test, expected_sign, negligible, floor, claim, where, id, unit, statistic, pair)


def share_claim(successes, expected_sign, null: float = 0.5, level: float = 0.95, claim: str = "", where: str = "",
                negligible: float = 0.0, unit: str = "", statistic: str = "share", *, id: str = "",
                units=None) -> Claim:
    """A claim about the share of true values in ``successes`` (one per row; ``units`` averages rows into units,
    a unit counting as its majority) relative to ``null`` (the statistic is the share minus ``null``), decided by
    the exact interval of :func:`studylib.stats.proportion`. A unit's majority vote has a share of its own, not its
    rows' one: with several rows per unit, only a claim against one half without a band can be tested here
    (ValueError otherwise: give the units' shares to :func:`median_claim`). Used by the ESD chapter."""
    _direction(expected_sign)
    if (units is not None and len(set(np.asarray(units).tolist())) < len(np.asarray(units))
            and (null != 0.5 or negligible)):
        raise ValueError(f"a share claim with a band or a null other than 1/2 (null={null!r}, negligible="
                         f"{negligible!r}) needs one row per unit: a unit of several rows votes by its majority, whose "
                         "share is not the rows' one; give the units' shares to median_claim instead")
    test = designs.ShareTest(tuple(np.asarray(successes, float)), null, _design(unit, units, None),
                             level)
    return _decided(test, expected_sign, negligible, 0.0, claim, where, id, unit, f"{statistic} - {null:g}")


def tau_difference_claim(x1, x2, y, expected_sign=1, groups=None, level: float = 0.95, claim: str = "",
                         where: str = "", unit: str = "runs", statistic: str | None = None, *, id: str = "",
                         units=None) -> Claim:
    """A claim that metric ``x1`` tracks ``y`` better (``expected_sign`` +1) than ``x2`` does over the same units
    (``units`` averages rows; ``groups``: strata), decided by the exact swap test of
    :func:`studylib.stats.swap_tau_difference`. Used by the utilization and ESD chapters."""
    _direction(expected_sign)
    as_t = lambda v: tuple(np.asarray(v, float))
    test = designs.TauDifferenceTest(as_t(x1), as_t(x2), as_t(y), _design(unit, units, groups), level)
    return _decided(test, expected_sign, 0.0, 0.0, claim, where, id, unit, statistic)


def precondition(claim: Claim, met: bool, reason: str,
                 applies_to: tuple[str, ...] = ("held", "did not hold", "partly held")) -> Claim:
    """A verdict is a finding only when the claim's premise holds (e.g. the models compared actually learnt): when
    ``met`` is false, the verdicts in ``applies_to`` become "inconclusive", with ``reason`` added. A premise that
    only a refutation needs (runs in the paper's regime) applies to ``("did not hold",)``."""
    if met:
        return claim
    if claim.verdict not in applies_to:
        return replace(claim, premise_failed=True)
    return replace(claim, verdict="inconclusive", reason=f"{claim.reason}; but {reason}", premise_failed=True)


def not_testable(claim: str, where: str, reason: str, *, id: str = "") -> Claim:
    """A claim whose data cannot be had here; ``reason`` says what is missing."""
    return Claim(claim, where, "", math.nan, math.nan, math.nan, 0, math.nan, "not testable here", reason, id=id)


def _as_part(verdict: str, claim: Claim, estimate, parts: int) -> str:
    """``claim``'s ``verdict`` (from ``estimate``: its estimate, interval and p) as one of ``parts`` parts of a
    combined claim: a refutation by the opposite sign counts only at ``(1 - level) / parts`` (Bonferroni: the chance
    that some part is refuted by chance adds up over the parts); one inside the negligible band counts as it is."""
    if verdict != "did not hold" or parts <= 1 or claim.direction not in ("positive", "negative"):
        return verdict
    if claim.negligible and -claim.negligible <= estimate.low and estimate.high <= claim.negligible:
        return verdict
    return verdict if estimate.p <= (1 - claim.level) / parts else "inconclusive"


def _combined_verdict(verdicts: list[str], rule: str) -> str:
    if rule == "all":
        if all(v == "held" for v in verdicts):
            return "held"
        if "did not hold" in verdicts:
            return "did not hold"
        if "not testable here" in verdicts:
            return "not testable here"
        if "undecidable here" in verdicts:
            return "undecidable here"
        return "inconclusive"
    held = sum(v == "held" for v in verdicts)
    if held == len(verdicts):
        return "held"
    if held:
        return "partly held"
    if "did not hold" in verdicts:  # refuted on some data set and held on none: the claim for each did not hold
        return "did not hold"
    if all(v == "not testable here" for v in verdicts):
        return "not testable here"
    if all(v in ("undecidable here", "not testable here") for v in verdicts):
        return "undecidable here"
    return "inconclusive"


def combine(claim: str, where: str, parts: dict[str, Claim], rule: str = "all", *, id: str = "") -> Claim:
    """One claim from sub-claims decided by the same engine (``parts``: label -> claim).

    A part refuted by the opposite sign counts as refuted only at ``(1 - level) / len(parts)`` (Bonferroni),
    so that the chance of refuting a true claim does not add up over its parts.

    ``rule="all"``: a conjunction (e.g. "rises, then falls"): held when every part held, did not hold when any
    part did not, not testable when any part is not testable, undecidable when any part is (and none refutes),
    else inconclusive.
    ``rule="each"``: the same claim on several data sets: held when held on all, "partly held" when held on some
    and not on the others, did not hold when it held on none and did not hold on some, not testable when no part is testable,
    undecidable when no part can be decided, else inconclusive. ``n`` is the parts' total for "each" (separate
    data) and their largest for "all" (the parts of a conjunction are usually measured on the same runs).
    """
    if rule not in ("all", "each"):
        raise ValueError(f"rule must be 'all' or 'each', got {rule!r}")
    if not parts:
        raise ValueError("parts must hold at least one claim")
    labelled = [replace(p, claim=label) for label, p in parts.items()]
    counted = {label: _as_part(p.verdict, p, p, len(parts)) for label, p in parts.items()}
    summary = "; ".join(f"{label}: {p.verdict}" + ("" if counted[label] == p.verdict else
                                                    f" alone (p = {p_text(p.p)}, above {(1 - p.level) / len(parts):g} "
                                                    f"for one of {len(parts)} parts)")
                        for label, p in parts.items())
    verdict = _combined_verdict(list(counted.values()), rule)
    n = (sum if rule == "each" else max)(p.n for p in parts.values())
    one = next(iter(parts.values()))
    needed = max(p.units_needed for p in parts.values())
    return Claim(claim, where, one.statistic if len(parts) == 1 else "see parts", math.nan, math.nan, math.nan, n,
                 math.nan, verdict, summary, one.unit, one.level, labelled, id=id, direction=rule,
                 units_needed=needed if verdict == "undecidable here" else 0)


# ---- the audit: each claim on its own nulls and with a planted effect ----------------------------------------

def _planted_effect(claim: Claim) -> float:
    """The size of effect the audit plants for ``claim``, in its statistic's units, with the claimed sign."""
    test, sign = claim.test, -1 if claim.direction in ("negative", "not positive") else 1
    if isinstance(test, designs.PairedTest):
        d = test.differences()
        size = max(float(np.std(d, ddof=1)) if len(d) > 1 else 0.0, 2 * claim.negligible, 2 * claim.floor)
        return sign * (size or max(abs(float(np.median(d))), 1.0))
    return sign * max(PLANTED[test.kind], 2 * claim.negligible, 2 * claim.floor)


#: the claims that are true when there is no effect: their null is an effect at the edge of their band, their
#: power is measured at no effect
BOUNDED = ("none", "not negative", "not positive")


#: how far past the edge of a band the audit draws (relative to the band): on discrete data many values land on
#: the draw's centre, and at the edge itself the closed band would count them inside
PAST_EDGE = 1e-6


def _edge(claim: Claim, draw: str) -> float:
    """Where the audit centres its draws at the border between the claim being true and false, where a rule may
    err most: for a claim of :data:`BOUNDED`, its nulls ("null") just past the edge of its band on the side it
    excludes, its true draws ("edge") just inside; for a claimed direction, its true draws ("edge") just past
    the smallest effect that matters (the negligible band's edge on the claimed side), or at 0 without a band."""
    band = claim.negligible
    if claim.direction in BOUNDED:
        sign = -1 if claim.direction == "not negative" else 1
        return sign * band * (1 + PAST_EDGE if draw == "null" else 1 - PAST_EDGE)
    sign = -1 if claim.direction == "negative" else 1
    return sign * band * (1 + PAST_EDGE)


#: what the audit draws: "null" (no effect, or for a claim of :data:`BOUNDED` just past the edge of its band),
#: "edge" (the claim true at the smallest effect that matters, or just inside a bound's band) and "planted" (the
#: claimed effect, or for a claim of :data:`BOUNDED` no effect)
DRAWS = ("null", "edge", "planted")


def _rerun(claim: Claim, rng: np.random.Generator, draw: str, parts: int = 1) -> str:
    """The verdict ``claim``'s rule gives on one draw of its data (:data:`DRAWS`); ``parts``: how many parts the
    combined claim it belongs to has (:func:`_as_part`)."""
    if claim.parts:
        return _combined_verdict([_rerun(p, rng, draw, len(claim.parts)) for p in claim.parts], claim.direction)
    if claim.test is None:
        return claim.verdict
    test, bounded = claim.test, claim.direction in BOUNDED
    if draw == "planted":
        estimate = test.null(rng) if bounded else test.planted(rng, _planted_effect(claim))
    elif (draw == "edge" or bounded) and _edge(claim, draw):
        estimate = test.planted(rng, _edge(claim, draw))
    else:
        estimate = test.null(rng)
    return _as_part(_verdict(estimate, test, claim.direction, claim.negligible, claim.floor)[0], claim, estimate,
                    parts)


def _auditable(claim: Claim) -> bool:
    return claim.test is not None or any(_auditable(p) for p in claim.parts)


def _coarse_test(test):
    """``test`` with ``AUDIT_FLIPS`` swaps (exact up to 10 units), for reruns that need only verdicts."""
    return replace(test, flips=AUDIT_FLIPS) if hasattr(test, "flips") else test


def _coarse(claim: Claim) -> Claim:
    """``claim`` with coarse tests (:func:`_coarse_test`): the audit's reruns."""
    return replace(claim, test=None if claim.test is None else _coarse_test(claim.test),
                   parts=[_coarse(p) for p in claim.parts])


def _error_rates(claim: Claim, reps: int, seed: int) -> tuple[float, float, float]:
    """The false-held rate, the false-refuted rate and the power of ``claim``'s rule over ``reps`` draws each.
    False held: on nulls; for a combined claim the nulls are made one part at a time, the other parts keeping their observed verdicts (all parts null at once would multiply
    their rates and hide a broken part), and for a claim on several data sets (``"each"``) also all at once,
    where "partly held" counts as held (the chance that some part holds adds up over the parts); the largest rate
    counts. False refuted: "did not hold" with every part at its :func:`_edge` (the claim true)."""
    rng = np.random.default_rng(seed)
    if claim.parts:
        rates = []
        observed = [_as_part(p.verdict, p, p, len(claim.parts)) for p in claim.parts]
        for i, part in enumerate(claim.parts):
            held = 0
            for _ in range(reps):
                verdicts = list(observed)
                verdicts[i] = _rerun(part, rng, "null", len(claim.parts))
                held += _combined_verdict(verdicts, claim.direction) == "held"
            rates.append(held / reps)
        if claim.direction == "each":  # "partly held" (held on some data set) on every part's null at once
            rates.append(sum(_rerun(claim, rng, "null") in ("held", "partly held") for _ in range(reps)) / reps)
        false_held = max(rates)
    else:
        false_held = _rate(claim, reps, rng, "null", "held")
    return false_held, _rate(claim, reps, rng, "edge", "did not hold"), _power(claim, reps, rng)


def _rate(claim: Claim, reps: int, rng: np.random.Generator, draw: str, verdict: str) -> float:
    return sum(_rerun(claim, rng, draw) == verdict for _ in range(reps)) / reps


def _power(claim: Claim, reps: int, rng: np.random.Generator) -> float:
    return _rate(claim, reps, rng, "planted", "held")


def _resized(claim: Claim, n: int) -> Claim:
    """``claim`` on ``n`` units (each part on its share of them), the observed units cycled."""
    scale = n / _units(claim)
    return replace(claim, test=None if claim.test is None else claim.test.resized(n),
                   parts=[_resized(p, max(2, round(_units(p) * scale))) if _auditable(p) else p
                          for p in claim.parts])


def _units(claim: Claim) -> int:
    return claim.test.n_units() if claim.test is not None else max((_units(p) for p in claim.parts), default=0)


def audit(claim: Claim, reps: int | None = None, seed: int = 0) -> Claim:
    """``claim`` with its audit, over ``reps`` draws of each kind (:data:`DRAWS`) made from its own data.

    - ``false_held``: the share of nulls of its own design that its rule calls "held" (its units permuted within
      strata; its differences centred on their median and resampled; two exchangeable copies of its metrics; for a
      claim of :data:`BOUNDED`, the effect just past the edge of its band on the side it excludes);
    - ``false_refuted``: the share of draws where the claim is true at the smallest effect that matters (just past
      the negligible band's edge on the claimed side, or just inside a bound's band) that it calls "did not hold";
    - ``power``: the share of draws with a planted effect (:data:`PLANTED`; for a claim of :data:`BOUNDED`, no
      effect) that it calls "held".

    An inconclusive claim whose power is below ``1 - level`` cannot come out held at this design even when the
    effect is there: it becomes "undecidable here", with about how many units would give a power of one half (the
    units cycled, ``reps`` / 4 draws per try). A rate over :data:`FALSE_HELD_LIMIT` is measured again on
    :data:`AUDIT_RECHECK` times the draws; a "held" (or "partly held") whose false-held rate, or a "did not hold"
    whose false-refuted rate, is then :func:`broken` becomes "inconclusive" (any other verdict says so in its
    reason): its test is not valid on its data. Claims without data (not testable here) are returned as they are.
    Used by :func:`table`, so every chapter's claims carry their audit."""
    reps = AUDIT_REPS if reps is None else reps
    if not _auditable(claim) or claim.verdict == "not testable here" or _units(claim) < 2:
        return claim
    coarse = _coarse(claim)
    false_held, false_refuted, power = _error_rates(coarse, reps, seed)
    if any(r > FALSE_HELD_LIMIT and not broken(r, reps) for r in (false_held, false_refuted)):
        reps *= AUDIT_RECHECK  # over the limit, within the audit's error: measured again on more draws
        false_held, false_refuted, power = _error_rates(coarse, reps, seed)
    out = replace(claim, false_held=false_held, false_refuted=false_refuted, power=power,
                  planted=_planted_text(claim), audit_reps=reps)
    invalid = [f"it comes out {name} on {rate:.0%} of {reps} {draws}" for name, rate, draws in
               (("held", false_held, "nulls of its own design"),
                ("did not hold", false_refuted, "draws where it is true at the smallest effect that matters"))
               if broken(rate, reps)]
    if invalid:
        why = f"its test is not valid on this data: {'; '.join(invalid)} (more than {FALSE_HELD_LIMIT:.0%})"
        if ((claim.verdict in ("held", "partly held") and broken(false_held, reps))
                or (claim.verdict == "did not hold" and broken(false_refuted, reps))):
            return replace(out, verdict="inconclusive",
                           reason=f"{claim.reason}; but {why}, so its {claim.verdict!r} is no finding")
        return replace(out, reason=f"{claim.reason}; and {why}")
    if (claim.verdict != "inconclusive" or power >= 1 - claim.level - 1e-9 or claim.premise_failed
            or not (claim.parts or math.isfinite(claim.estimate)) or "does not beat its control" in claim.reason):
        return out  # decided, powered, without data, or inconclusive for a failed premise or its control
    tries = max(reps // 4, 10)
    needed = _fewest_units(lambda n: _power(_resized(coarse, n), tries, np.random.default_rng(seed)) >= 0.5,
                           _units(claim))
    need = (f"about {needed} {claim.unit or 'units'}" if needed
            else f"more than {designs.MOST_UNITS_ASKED} {claim.unit or 'units'}")
    return replace(out, verdict="undecidable here", units_needed=needed,
                   reason=f"{claim.reason}; and at this design the planted effect ({out.planted}) comes out held "
                          f"in only {power:.0%} of draws: it needs {need} for a power of one half")


def _planted_text(claim: Claim) -> str:
    if claim.parts:
        return "; ".join(p.planted or _planted_text(p) for p in claim.parts if p.test is not None)
    if claim.direction in BOUNDED:
        return f"no effect; its null: {claim.statistic} {_num(_edge(claim, 'null'))}"
    return f"{claim.statistic} {_num(_planted_effect(claim))}"


def table(claims: list[Claim], audit_reps: int | None = None) -> pd.DataFrame:
    """The claims table a chapter shows: id, claim, where the paper makes it, the evidence (estimate [interval],
    n units), p, verdict, reason, the control and the audit (each claim :func:`audit`-ed with ``audit_reps``
    nulls and planted effects, by default :data:`AUDIT_REPS`; 0 skips it); the full records stay in ``frame.attrs["claims"]`` for
    :func:`publish`. Every claim needs a unique ``id`` (lower-case words joined by hyphens), by which pages and
    tests look it up (:func:`get`)."""
    seen = set()
    for c in claims:
        if not ID_PATTERN.match(c.id or ""):
            raise ValueError(f"claim {c.claim!r} has id {c.id!r}: every claim needs an id of lower-case words "
                             "joined by hyphens")
        if c.id in seen:
            raise ValueError(f"two claims share the id {c.id!r}")
        seen.add(c.id)
    audit_reps = AUDIT_REPS if audit_reps is None else audit_reps
    if audit_reps:
        claims = [c if math.isfinite(c.false_held) else audit(c, audit_reps) for c in claims]
    frame = pd.DataFrame([{"id": c.id, **{k: getattr(c, k) for k in ("claim", "where", "evidence", "verdict",
                                                                      "reason", "control")},
                           "audit": audit_text(c), "p": c.p, "n": c.n} for c in claims],
                         columns=["id", "claim", "where", "evidence", "p", "verdict", "reason", "control", "audit",
                                  "n"])
    frame.attrs["claims"] = claims
    return frame


def audit_text(claim: Claim) -> str:
    """"false held 2%, false refuted 1%, power 85% (planted: Kendall tau +0.50)"; "-" for a claim without an
    audit."""
    if not math.isfinite(claim.false_held):
        return "-"
    return (f"false held {claim.false_held:.0%}, false refuted {claim.false_refuted:.0%}, power {claim.power:.0%} "
            f"(planted: {claim.planted})")


def broken(false_held: float, reps: int, limit: float = FALSE_HELD_LIMIT) -> bool:
    """Whether a rule says "held" on its own nulls more than ``limit`` of the time, beyond the audit's Monte-Carlo
    error: the one-sided 99% Clopper-Pearson lower bound of its false-held rate over ``reps`` nulls lies above
    ``limit``. The test suite fails on any broken claim of an executed chapter."""
    if not (reps and math.isfinite(false_held)):
        return False
    k = int(round(false_held * reps))
    return k > 0 and float(scipy_stats.beta.ppf(0.01, k, reps - k + 1)) > limit


def get(frame: pd.DataFrame, id: str) -> Claim:
    """The claim of a table (:func:`table`) with this ``id``; KeyError naming the ids there are."""
    for c in frame.attrs["claims"]:
        if c.id == id:
            return c
    raise KeyError(f"no claim {id!r}; the table has {[c.id for c in frame.attrs['claims']]}")


def show(frame: pd.DataFrame):
    """The styled claims table for a page: p to two significant digits ("-" where none), no index, no id or n
    column (n is in the evidence), the control column only where a claim has one."""
    shown = frame.drop(columns=["n", "id"] + ([] if (frame.control != "").any() else ["control"]))
    return (shown.style.hide(axis="index")
            .format({"p": p_text}))


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One claims table from several (:func:`table`), in order (their audits kept)."""
    return table([c for f in frames for c in f.attrs["claims"]])


def records(frame: pd.DataFrame, paper: str, **extra) -> list[dict]:
    """The claims of a table as plain records (for :func:`publish`), each with its ``paper`` (the claim's own, else
    this one) and the ``extra`` columns."""
    return [{"paper": c.paper or paper, **extra, "id": c.id, "claim": c.claim, "where": c.where,
             "statistic": c.statistic, "estimate": c.estimate, "low": c.low, "high": c.high, "n": c.n,
             "unit": c.unit, "p": c.p, "level": c.level, "evidence": c.evidence, "verdict": c.verdict,
             "reason": c.reason, "control": c.control, "floor": c.floor, "units_needed": c.units_needed,
             "false_held": c.false_held, "false_refuted": c.false_refuted, "power": c.power, "planted": c.planted,
             "audit_reps": c.audit_reps,
             "audit": audit_text(c)}
            for c in frame.attrs["claims"]]


def worked_example(verdicts: pd.DataFrame) -> dict:
    """The verdicts page's worked example, from the collected claims (:func:`collect`): the first held claim
    with a bounded interval and an audit that shows its rule at work (power of at least one half), else the first
    held one, else the first audited claim, as one record with its chapter."""
    audited = verdicts[verdicts.false_held.notna()] if "false_held" in verdicts else verdicts.iloc[:0]
    if audited.empty:
        raise ValueError("no collected claim carries an audit: run the chapters with this version of studylib")
    bounded = audited[(audited.verdict == "held") & np.isfinite(audited.low.astype(float))
                      & np.isfinite(audited.high.astype(float))]
    powered = bounded[bounded.power.astype(float) >= 0.5]
    return next(f for f in (powered, bounded, audited) if len(f)).iloc[0].to_dict()


def standing_rules(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The audited claims (:func:`collect`) whose rule passed its audit (neither rate :func:`broken`): the verdicts
    page gives their largest false-held and false-refuted rates, and counts the others apart."""
    audited = verdicts[verdicts.false_held.notna()]
    return audited[[not (broken(f, int(r)) or broken(g, int(r)))
                    for f, g, r in zip(audited.false_held, audited.false_refuted, audited.audit_reps)]]


def summary(verdicts) -> str:
    """"2 held, 1 did not hold, 4 inconclusive": the count of each verdict, in the order of :data:`VERDICTS`."""
    counts = pd.Series(list(verdicts)).value_counts()
    return ", ".join(f"{counts[v]} {v}" for v in VERDICTS if v in counts) or "no claims"


#: the glue key suffix under which a chapter stores its claims for the verdicts page
GLUE_SUFFIX = "_claims_records"


def publish(frame: pd.DataFrame, key: str, paper: str, stand_in: str) -> None:
    """Glue a chapter's claims (``frame`` from :func:`table`) for its prose and the verdicts page: the records as
    JSON under ``<key>_claims_records`` (each with its id, ``<key>:<claim id>``, its ``paper``, author and year, and the ``stand_in`` data or
    models used), ``<key>_claims_total``, ``<key>_claims_<verdict>`` counts (spaces as underscores) and
    ``<key>_claims_summary`` (:func:`summary`). Called at the end of every chapter."""
    from myst_nb import glue
    rows = [{**r, "id": f"{key}:{r['id']}"} for r in records(frame, paper, stand_in=stand_in)]
    glue(key + GLUE_SUFFIX, json.dumps(rows, default=float), display=False)
    glue(f"{key}_claims_total", len(frame), display=False)
    for v in VERDICTS:
        glue(f"{key}_claims_{v.replace(' ', '_')}", int((frame.verdict == v).sum()), display=False)
    glue(f"{key}_claims_summary", summary(frame.verdict), display=False)


def executed_dir() -> Path:
    """Where the executed chapters are: ``STUDYLIB_EXECUTED_DIR`` (set by
    :func:`studylib.platform.notebooks.run_notebook`), else the book's ``book/notebooks``."""
    from .platform import config
    return Path(os.environ.get("STUDYLIB_EXECUTED_DIR") or config.repo_root() / "book" / "notebooks")


def collect(folder: Path | None = None) -> pd.DataFrame:
    """Every claim the executed chapters in ``folder`` stored with :func:`publish`, one row each, with the
    chapter (notebook) it comes from. Used by the verdicts page."""
    from .platform.notebooks import glued_values
    rows = []
    for path in sorted(Path(folder or executed_dir()).glob("*.ipynb")):
        for key, value in glued_values(path).items():
            if key.endswith(GLUE_SUFFIX):
                rows += [{"chapter": path.stem, **r} for r in json.loads(value)]
    if not rows:
        raise FileNotFoundError(f"no executed chapter with stored claims in {folder or executed_dir()}: run the "
                                "chapters first (`python -m studylib run-all`)")
    return pd.DataFrame(rows)


def collect_replication(profile: str) -> tuple[pd.DataFrame | None, str]:
    """The claims of the replication build (``book/replication``, made by ``run-all --replication``) whose chapters
    ran on ``profile`` with the replication's seeds, or None when there are none; and a sentence on that build.
    Used by the verdicts page."""
    from .platform import notebooks
    folder = notebooks.replication_dir()
    if not any(folder.glob("*.ipynb")):
        return None, ""
    rows = notebooks.provenance(folder, profile, replication=True)
    ok = {r["notebook"] for r in rows if r["state"] == "ok"}
    try:
        found = collect(folder)
    except FileNotFoundError:
        return None, ""
    found = found[found.chapter.isin(ok)]
    return (found if len(found) else None), notebooks.provenance_statement(rows, profile, replication=True)


def replicate(first: pd.DataFrame, second: pd.DataFrame | None) -> pd.DataFrame:
    """The book's claims (``first``, from :func:`collect`) checked against a replication build's (``second``: the
    chapters run again with other seeds, ``run-all --replication``; None when there is none), matched by claim id.

    Adds ``replication``: ``"replicated"`` (the same verdict), ``"unstable"`` or ``"not replicated"`` (no such claim
    in ``second``) for each "held", "did not hold" or "partly held"; ``""`` for other verdicts, which need no
    replication. An
    unstable verdict counts with the inconclusive ones: its verdict becomes "inconclusive" and its reason says what
    the two builds found. ``first_verdict`` and ``second_verdict`` keep both builds' verdicts. Used by the verdicts
    page."""
    out = first.copy()
    out["first_verdict"] = out.verdict
    again = {} if second is None else dict(zip(second.id, second.verdict))
    if len(again) != (0 if second is None else len(second)):
        raise ValueError("the replication build's claim ids are not unique")
    out["second_verdict"] = [again.get(i, "") for i in out.id]
    decisive = out.first_verdict.isin(DECISIVE + ("partly held",))
    same = out.first_verdict == out.second_verdict
    missing = out.second_verdict == ""
    out["replication"] = np.select([~decisive, missing, same], ["", "not replicated", "replicated"], "unstable")
    unstable = out.replication == "unstable"
    out.loc[unstable, "reason"] = [f"unstable: {a} here, {b} on other seeds; {r}" for a, b, r in
                                   zip(out.first_verdict[unstable], out.second_verdict[unstable],
                                       out.reason[unstable])]
    out.loc[unstable, "verdict"] = "inconclusive"
    return out


def replication_text(verdicts: pd.DataFrame) -> str:
    """One sentence on a replication check (:func:`replicate`): how many decisive verdicts it repeated, which it
    found unstable, and which it could not check."""
    status = verdicts.replication
    decisive = int((status != "").sum())
    if not decisive:
        return "No claim is held or did not hold, so there is no verdict to replicate."
    if (status[status != ""] == "not replicated").all():
        return (f"No replication build is present, so none of the {decisive} decisive verdicts has been checked on "
                "other seeds (the command python -m studylib run-all --replication makes one, in about as long as "
                "the book's own build).")
    parts = [f"{int((status == 'replicated').sum())} of the {decisive} decisive verdicts came out the same on other "
             "seeds"]
    unstable = verdicts[status == "unstable"]
    if len(unstable):
        listed = "; ".join(f"{i} ({a} here, {b} there)" for i, a, b in
                           zip(unstable.id, unstable.first_verdict, unstable.second_verdict))
        parts.append(f"{len(unstable)} did not and count{'s' * (len(unstable) == 1)} as inconclusive: {listed}")
    if (status == "not replicated").any():
        absent = int((status == "not replicated").sum())
        parts.append(f"{absent} {'was' if absent == 1 else 'were'} not in the replication build")
    return "; ".join(parts) + "."
