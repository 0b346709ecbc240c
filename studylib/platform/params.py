"""Notebook parameters: how one is declared (:class:`Param`) and checked (:func:`check`), and the rules that tie
several together (:class:`Rule`).

Used by every chapter through :mod:`studylib.platform.profiles`, which declares each notebook's parameters
and profiles and resolves them. A wrong name, type or value, or a combination that breaks a rule, fails at once,
before a kernel starts, with a message naming the parameters and what they accept.

"None" has one meaning on every route: a parameter left out (``...`` in a notebook's parameters cell) takes the
profile's value; ``None`` (papermill ``-p CAP None``), ``null`` (YAML on the command line, ``-p CAP null``) and the
string ``"none"`` (any case) all mean "no value" (for ``CAP``: no cap), which only a parameter marked ``nullable`` accepts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

PROFILES = ("quick", "standard", "paper")


class ParameterError(ValueError):
    """A notebook parameter has a wrong name, type or value."""


@dataclass(frozen=True)
class Param:
    """One parameter: its type (``int``, ``float``, ``str``, ``bool`` or ``list``), what it means,
    and optional ``choices``, bounds, list item type, and whether ``None`` is a real value."""
    kind: type
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    item: type | None = None
    nullable: bool = False

    def accepts(self) -> str:
        """What the parameter accepts, in words: a list parameter names its items and the rule each item follows."""
        bounds = [f">= {self.low}" if self.low is not None else "", f"<= {self.high}" if self.high is not None else ""]
        rule = [("one of " + ", ".join(map(repr, self.choices))) if self.choices else "",
                " and ".join(b for b in bounds if b)]
        rule = " ".join(r for r in rule if r)
        if self.kind is list:
            what = "a list" + (f" of {self.item.__name__}" if self.item else "") + (f", each {rule}" if rule else "")
        else:
            kind = self.kind.__name__
            what = ("one of " + ", ".join(map(repr, self.choices)) if self.choices
                    else ("an " if kind[0] in "aeiou" else "a ") + kind)
            what += f" {rule}" if rule and not self.choices else ""
        return what + (" (or 'none')" if self.nullable else "")


def _coerce_scalar(name: str, spec: Param, kind: type, value: Any) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)  # papermill parses -p N 1e3 as a float
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ParameterError(f"parameter {name}={value!r} has type {type(value).__name__}; "
                             f"{name} accepts {spec.accepts()}: {spec.help}")
    return value


def check(name: str, spec: Param, value: Any) -> Any:
    """Validate (and normalise) one value against its spec; raise :class:`ParameterError` if wrong."""
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        if spec.nullable:
            return None
        raise ParameterError(f"parameter {name}={value!r}: {name} has no 'none' value; it accepts {spec.accepts()} "
                             f"(leave it out for the profile's value): {spec.help}")
    if spec.kind is list:
        if not isinstance(value, (list, tuple)) or not value:
            raise ParameterError(f"parameter {name}={value!r}: {name} accepts a non-empty list of "
                                 f"{spec.item.__name__}: {spec.help}")
        items = [_coerce_scalar(name, spec, spec.item, v) for v in value]
        values = items
    else:
        value = _coerce_scalar(name, spec, spec.kind, value)
        values = [value]
    for v in values:
        bad = ((spec.choices is not None and v not in spec.choices)
               or (spec.low is not None and v < spec.low) or (spec.high is not None and v > spec.high))
        if bad:
            raise ParameterError(f"parameter {name}={value!r} is out of range; {name} accepts "
                                 f"{spec.accepts()}: {spec.help}")
    return items if spec.kind is list else value


@dataclass(frozen=True)
class Rule:
    """A rule several parameters must follow together: ``holds(*values)`` of the parameters ``names`` (in order),
    and what it asks, in words."""
    names: tuple[str, ...]
    holds: Callable[..., bool]
    asks: str

    def check(self, values: dict[str, Any]) -> None:
        """Raise :class:`ParameterError` naming the parameters, their values and the rule when it does not hold."""
        if not self.holds(*(values[n] for n in self.names)):
            given = ", ".join(f"{n}={values[n]!r}" for n in self.names)
            raise ParameterError(f"parameters {given} break a rule: {self.asks}")
