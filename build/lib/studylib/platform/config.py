"""Where the study keeps its files, and whether the hub may be reached.

Used by every chapter. One directory, ``STUDYLIB_HOME`` (default ``~/.cache/studylib``), holds the
installed data and weight assets (``assets/``) and the run cache (``runs/``); it lives outside git.
Imports nothing heavy (no torch), so every CLI command starts fast.
"""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The study's cache directory: ``$STUDYLIB_HOME`` or ``~/.cache/studylib``."""
    return Path(os.environ.get("STUDYLIB_HOME", Path.home() / ".cache" / "studylib")).expanduser()


def assets_dir() -> Path:
    return home() / "assets"


def runs_dir() -> Path:
    return home() / "runs"


def repo_root() -> Path:
    """The project checkout (where ``_config.yml`` and ``notebooks/`` live)."""
    return Path(__file__).resolve().parents[2]


def offline() -> bool:
    """True when the hub may not be reached (``HF_HUB_OFFLINE`` or ``STUDYLIB_OFFLINE`` set)."""
    return any(os.environ.get(v, "0") not in ("", "0", "false", "False")
               for v in ("STUDYLIB_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
