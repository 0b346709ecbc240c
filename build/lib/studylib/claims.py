"""Claims tables: each claim of a source paper, the evidence computed here, and a plain verdict.

Used by every chapter's closing "claims" table.
"""
from __future__ import annotations

import pandas as pd


def verdict(held: bool | None, partial: bool = False) -> str:
    """'held', 'partly held' (only the weaker ``partial`` criterion met), 'did not hold' or 'not testable here'."""
    if held is None:
        return "not testable here"
    return "held" if held else ("partly held" if partial else "did not hold")


class ClaimsTable:
    """Collects claims row by row; :meth:`frame` gives the table the chapter shows."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, claim: str, where: str, evidence: str, held: bool | None, partial: bool = False) -> None:
        self.rows.append({"claim": claim, "where": where, "evidence here": evidence,
                          "verdict": verdict(None if held is None else bool(held), bool(partial))})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)
