import os

import pytest

# The hub is never reached from tests: originals must fail at once, offline.
os.environ.setdefault("STUDYLIB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def runs_root(tmp_path):
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def short_audits(monkeypatch):
    """The chapters' claims tables audit each claim on 200 nulls; the unit tests of their verdict rules need
    fewer (the audit itself is tested in test_designs.py with its own counts)."""
    from studylib import claims
    monkeypatch.setattr(claims, "AUDIT_REPS", 40)
