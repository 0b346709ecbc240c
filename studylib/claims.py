"""The claims engine: each claim of a source paper as a :class:`Claim` record, its verdict decided by an interval
at a stated level, never by a point estimate.

Used by every chapter's closing claims table and by the "Verdicts" page, which collects the tables the executed
chapters stored (:func:`publish`, :func:`collect`).

The verdicts:

- **held**: the interval lies entirely on the claimed side (of 0, or of the stated threshold);
- **did not hold**: the interval lies entirely on the other side, or, for a claimed direction, inside the stated
  negligible band (a claim of no relation: entirely outside the band);
- **inconclusive**: the interval covers both (the data at this n cannot tell), or no valid interval exists;
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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats

#: the verdicts, in the order the tables count them
VERDICTS = ("held", "partly held", "did not hold", "inconclusive", "not testable here")
#: what a claim asserts about its statistic: above 0, below 0, none (inside the negligible band), not below minus
#: the band, or not above plus the band
DIRECTIONS = {1: "positive", -1: "negative", 0: "none", "positive": "positive", "negative": "negative",
              "none": "none", "not negative": "not negative", "not positive": "not positive"}


@dataclass
class Claim:
    """One claim of a paper and the evidence for it: where the paper makes it, the statistic, its estimate and
    interval at ``level``, ``n`` (models, runs, seeds or layers, as ``unit`` says), the p-value where meaningful,
    the verdict and a one-line reason. ``parts`` holds the sub-claims of a combined claim; ``paper`` names the
    source when it is not the chapter's own."""
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

    @property
    def evidence(self) -> str:
        """The estimate with its interval and n, in one line (the parts' evidence for a combined claim)."""
        if self.parts:
            return "; ".join(f"{p.claim}: {p.evidence}" for p in self.parts)
        if not math.isfinite(self.estimate):
            return "no estimate"
        interval = (f" [{_num(self.low)}, {_num(self.high)}]" if math.isfinite(self.low) and math.isfinite(self.high)
                    else " (no interval)")
        return f"{self.statistic} {_num(self.estimate)}{interval}, n = {self.n}{' ' + self.unit if self.unit else ''}"


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


def decide(low: float, high: float, direction, negligible: float = 0.0) -> tuple[str, str]:
    """The verdict and its reason for a claimed ``direction`` (see :data:`DIRECTIONS`) of a statistic whose
    interval is ``[low, high]``; ``negligible``: the half-width of the band of values too small to matter."""
    kind = _direction(direction)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive", "no valid interval at this n"
    band = f"the negligible band ±{negligible:g}" if negligible else "0"
    inside = -negligible <= low and high <= negligible
    where = f"[{_num(low)}, {_num(high)}]"
    if kind in ("positive", "negative"):
        sign = 1 if kind == "positive" else -1
        if negligible and inside:
            return "did not hold", f"interval {where} lies inside {band}: too small to matter"
        if (low > 0 if sign > 0 else high < 0):
            return "held", f"interval {where} lies {'above' if sign > 0 else 'below'} 0"
        if (high < 0 if sign > 0 else low > 0):
            return "did not hold", f"interval {where} lies {'below' if sign > 0 else 'above'} 0: the opposite sign"
        return "inconclusive", f"interval {where} covers 0"
    if kind == "none":
        if inside:
            return "held", f"interval {where} lies inside {band}"
        if low > negligible or high < -negligible:
            return "did not hold", f"interval {where} lies outside {band}"
        return "inconclusive", f"interval {where} reaches beyond {band}"
    sign = 1 if kind == "not negative" else -1
    bound = _num(-sign * negligible)
    if (low >= -negligible if sign > 0 else high <= negligible):
        return "held", f"interval {where} excludes values {'below' if sign > 0 else 'above'} {bound}"
    if (high < -negligible if sign > 0 else low > negligible):
        return "did not hold", f"interval {where} lies {'below' if sign > 0 else 'above'} {bound}"
    return "inconclusive", f"interval {where} reaches {'below' if sign > 0 else 'above'} {bound}"


def _direction(direction) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"the claimed direction (expected_sign) must be one of {list(DIRECTIONS)}, got {direction!r}")
    return DIRECTIONS[direction]


def _claim(estimate: stats.Estimate, direction, negligible: float, claim: str, where: str, unit: str,
           statistic: str | None = None) -> Claim:
    verdict, reason = decide(estimate.low, estimate.high, direction, negligible)
    if estimate.note:
        reason = f"{reason} ({estimate.note})"
    return Claim(claim, where, statistic or estimate.statistic, estimate.estimate, estimate.low, estimate.high,
                 estimate.n, estimate.p, verdict, reason, unit, estimate.level)


def rank_claim(x, y, expected_sign, groups=None, level: float = 0.95, claim: str = "", where: str = "",
               negligible: float = 0.1, unit: str = "", statistic: str | None = None) -> Claim:
    """A claim about the rank correlation of ``x`` and ``y`` (``expected_sign``: +1, -1, 0 for "no relation", or
    "not negative" / "not positive"), decided by the interval of :func:`studylib.stats.kendall` (stratified by
    ``groups`` when given); a tau within ±``negligible`` counts as no relation. Used by every chapter."""
    _direction(expected_sign)
    return _claim(stats.kendall(x, y, groups, level), expected_sign, negligible, claim, where, unit, statistic)


def mean_claim(a, b=None, expected_sign=1, level: float = 0.95, claim: str = "", where: str = "",
               negligible: float = 0.0, unit: str = "", statistic: str | None = None) -> Claim:
    """A claim about the mean of ``a - b`` over matched pairs (or of ``a``), decided by the t interval of
    :func:`studylib.stats.paired`. Used by every chapter."""
    _direction(expected_sign)
    return _claim(stats.paired(a, b, level), expected_sign, negligible, claim, where, unit, statistic)


def share_claim(successes, expected_sign, null: float = 0.5, level: float = 0.95, claim: str = "", where: str = "",
                negligible: float = 0.0, unit: str = "", statistic: str = "share") -> Claim:
    """A claim about the share of true values in ``successes`` relative to ``null`` (the statistic is the share
    minus ``null``), decided by the exact interval of :func:`studylib.stats.proportion`. Used by the IIW
    fine-tuning chapter."""
    _direction(expected_sign)
    return _claim(stats.proportion(successes, level, null), expected_sign, negligible, claim, where, unit,
                  f"{statistic} - {null:g}")


def tau_difference_claim(x1, x2, y, expected_sign=1, groups=None, level: float = 0.95, claim: str = "",
                         where: str = "", unit: str = "runs", statistic: str | None = None, n_boot: int = 1000,
                         seed: int = 0) -> Claim:
    """A claim that metric ``x1`` tracks ``y`` better (``expected_sign`` +1) than ``x2`` does, decided by the
    bootstrap interval of :func:`studylib.stats.compare_taus`. Used by the utilization and ESD chapters."""
    _direction(expected_sign)
    return _claim(stats.compare_taus(x1, x2, y, groups, level, n_boot, seed), expected_sign, 0.0, claim, where, unit,
                  statistic)


def precondition(claim: Claim, met: bool, reason: str,
                 applies_to: tuple[str, ...] = ("held", "did not hold", "partly held")) -> Claim:
    """A verdict is a finding only when the claim's premise holds (e.g. the models compared actually learnt): when
    ``met`` is false, the verdicts in ``applies_to`` become "inconclusive", with ``reason`` added. A premise that
    only a refutation needs (runs in the paper's regime) applies to ``("did not hold",)``."""
    if met or claim.verdict not in applies_to:
        return claim
    return replace(claim, verdict="inconclusive", reason=f"{claim.reason}; but {reason}")


def not_testable(claim: str, where: str, reason: str) -> Claim:
    """A claim whose data cannot be had here; ``reason`` says what is missing."""
    return Claim(claim, where, "", math.nan, math.nan, math.nan, 0, math.nan, "not testable here", reason)


def combine(claim: str, where: str, parts: dict[str, Claim], rule: str = "all") -> Claim:
    """One claim from sub-claims decided by the same engine (``parts``: label -> claim).

    ``rule="all"``: a conjunction (e.g. "rises, then falls"): held when every part held, did not hold when any
    part did not, not testable when any part is not testable, else inconclusive.
    ``rule="each"``: the same claim on several data sets: held when held on all, did not hold when it did not
    hold on any, "partly held" when held on some and not on the others, not testable when no part is testable,
    else inconclusive. ``n`` is the parts' total for "each" (separate data) and their largest for "all" (the
    parts of a conjunction are usually measured on the same runs).
    """
    if rule not in ("all", "each"):
        raise ValueError(f"rule must be 'all' or 'each', got {rule!r}")
    if not parts:
        raise ValueError("parts must hold at least one claim")
    verdicts = [p.verdict for p in parts.values()]
    labelled = [replace(p, claim=label) for label, p in parts.items()]
    summary = "; ".join(f"{label}: {p.verdict}" for label, p in parts.items())
    if rule == "all":
        if all(v == "held" for v in verdicts):
            verdict = "held"
        elif "did not hold" in verdicts:
            verdict = "did not hold"
        elif "not testable here" in verdicts:
            verdict = "not testable here"
        else:
            verdict = "inconclusive"
    else:
        held = sum(v == "held" for v in verdicts)
        if held == len(verdicts):
            verdict = "held"
        elif all(v == "did not hold" for v in verdicts):
            verdict = "did not hold"
        elif held:
            verdict = "partly held"
        elif all(v == "not testable here" for v in verdicts):
            verdict = "not testable here"
        else:
            verdict = "inconclusive"
    n = (sum if rule == "each" else max)(p.n for p in parts.values())
    one = next(iter(parts.values()))
    return Claim(claim, where, one.statistic if len(parts) == 1 else "see parts", math.nan, math.nan, math.nan, n,
                 math.nan, verdict, summary, one.unit, one.level, labelled)


def table(claims: list[Claim]) -> pd.DataFrame:
    """The claims table a chapter shows: claim, where the paper makes it, the evidence (estimate [interval], n),
    p, verdict and reason; the full records stay in ``frame.attrs["claims"]`` for :func:`publish`."""
    frame = pd.DataFrame([{**{k: getattr(c, k) for k in ("claim", "where", "evidence", "verdict", "reason")},
                           "p": c.p, "n": c.n} for c in claims])[["claim", "where", "evidence", "p", "verdict",
                                                                   "reason", "n"]]
    frame.attrs["claims"] = claims
    return frame


def show(frame: pd.DataFrame):
    """The styled claims table for a page: p to two significant digits ("-" where none), no index, no n column
    (it is in the evidence)."""
    shown = frame.drop(columns=["n"])
    return (shown.style.hide(axis="index")
            .format({"p": p_text}))


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One claims table from several (:func:`table`), in order."""
    return table([c for f in frames for c in f.attrs["claims"]])


def records(frame: pd.DataFrame, paper: str, **extra) -> list[dict]:
    """The claims of a table as plain records (for :func:`publish`), each with its ``paper`` (the claim's own, else
    this one) and the ``extra`` columns."""
    return [{"paper": c.paper or paper, **extra, "claim": c.claim, "where": c.where, "statistic": c.statistic,
             "estimate": c.estimate, "low": c.low, "high": c.high, "n": c.n, "unit": c.unit, "p": c.p,
             "level": c.level, "evidence": c.evidence, "verdict": c.verdict, "reason": c.reason}
            for c in frame.attrs["claims"]]


def summary(verdicts) -> str:
    """"2 held, 1 did not hold, 4 inconclusive": the count of each verdict, in the order of :data:`VERDICTS`."""
    counts = pd.Series(list(verdicts)).value_counts()
    return ", ".join(f"{counts[v]} {v}" for v in VERDICTS if v in counts) or "no claims"


#: the glue key suffix under which a chapter stores its claims for the verdicts page
GLUE_SUFFIX = "_claims_records"


def publish(frame: pd.DataFrame, key: str, paper: str, stand_in: str) -> None:
    """Glue a chapter's claims (``frame`` from :func:`table`) for its prose and the verdicts page: the records as
    JSON under ``<key>_claims_records`` (each with its ``paper``, author and year, and the ``stand_in`` data or
    models used), ``<key>_claims_total``, ``<key>_claims_<verdict>`` counts (spaces as underscores) and
    ``<key>_claims_summary`` (:func:`summary`). Called at the end of every chapter."""
    from myst_nb import glue
    glue(key + GLUE_SUFFIX, json.dumps(records(frame, paper, stand_in=stand_in), default=float), display=False)
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
