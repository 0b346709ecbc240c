"""Notebook parameters: declared once, checked before any heavy work, filled from a named profile.

Used by every chapter's first code cell::

    P = params.resolve("00_data_and_models", globals())

A notebook's ``parameters`` cell sets ``PROFILE`` and every other parameter to ``None``; ``None``
means "the value of the chosen profile" (``quick`` for CI, ``standard`` for the published book,
``paper`` for the papers' scale). A value given with papermill ``-p`` or the CLI overrides the profile.
A wrong name, type or value fails at once with a message naming the parameter and what it accepts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PROFILES = ("quick", "standard", "paper")
_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


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
        kind = self.kind.__name__
        what = ("an " if kind[0] in "aeiou" else "a ") + kind + (f" of {self.item.__name__}" if self.item else "")
        if self.choices:
            what = "one of " + ", ".join(map(repr, self.choices))
        bounds = [f">= {self.low}" if self.low is not None else "", f"<= {self.high}" if self.high is not None else ""]
        bounds = " and ".join(b for b in bounds if b)
        return what + (f" {bounds}" if bounds else "") + (" (or 'none')" if self.nullable else "")


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
    if spec.nullable and (value is None or value == "none"):
        return None
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


def resolve_values(notebook: str, profile: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """The full parameter set of ``notebook``: the profile's values overridden by ``given``
    (a ``None`` in ``given`` means "use the profile's value")."""
    from .profiles import NOTEBOOKS
    if notebook not in NOTEBOOKS:
        raise ParameterError(f"unknown notebook {notebook!r}; known: {', '.join(NOTEBOOKS)}")
    profile = profile or "standard"
    if profile not in PROFILES:
        raise ParameterError(f"parameter PROFILE={profile!r} is not a profile; PROFILE accepts one of "
                             f"{', '.join(PROFILES)}")
    spec = NOTEBOOKS[notebook]
    unknown = sorted(set(given) - set(spec.params) - {"PROFILE"})
    if unknown:
        raise ParameterError(f"unknown parameter {', '.join(unknown)} for {notebook}; it accepts "
                             f"PROFILE, {', '.join(spec.params)}")
    values = {"PROFILE": profile}
    for name, param in spec.params.items():
        raw = given.get(name)
        values[name] = check(name, param, spec.profiles[profile][name] if raw is None else raw)
    return values


def resolve(notebook: str, namespace: dict[str, Any], echo: bool = True) -> dict[str, Any]:
    """Resolve a notebook's parameters from its globals, write the resolved values back into them
    and return them. Every UPPER_CASE global is taken as a parameter, so a misspelt ``-p`` name fails."""
    given = {k: v for k, v in namespace.items() if _UPPER.match(k) and k != "PROFILE"}
    values = resolve_values(notebook, namespace.get("PROFILE"), given)
    namespace.update(values)
    if echo:
        import textwrap
        print(textwrap.fill("Parameters: " + ", ".join(f"{k}={v!r}" for k, v in values.items()), 100,
                            subsequent_indent="    "))
    return values
