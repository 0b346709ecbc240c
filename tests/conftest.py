import os

import pytest

# The hub is never reached from tests: originals must fail at once, offline.
os.environ.setdefault("STUDYLIB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def runs_root(tmp_path):
    return tmp_path / "runs"
