"""Where the study keeps its files, and which device heavy work runs on.

Used by every chapter. One directory, ``STUDYLIB_HOME`` (default ``~/.cache/studylib``),
holds the installed data and weight assets (``assets/``) and the run cache (``runs/``);
it lives outside git.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


def home() -> Path:
    """The study's cache directory: ``$STUDYLIB_HOME`` or ``~/.cache/studylib``."""
    return Path(os.environ.get("STUDYLIB_HOME", Path.home() / ".cache" / "studylib")).expanduser()


def assets_dir() -> Path:
    return home() / "assets"


def runs_dir() -> Path:
    return home() / "runs"


def repo_root() -> Path:
    """The project checkout (where ``_config.yml`` and ``notebooks/`` live)."""
    return Path(__file__).resolve().parent.parent


def device(requested: str | torch.device | None = None) -> torch.device:
    """The device for heavy work: ``requested`` if given, else CUDA when present, else CPU.

    Every chapter passes its ``DEVICE`` parameter through here.
    """
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(requested)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={requested!r} was asked for, but CUDA is not available here; "
                         "use 'auto' or 'cpu'")
    return dev


def offline() -> bool:
    """True when the hub may not be reached (``HF_HUB_OFFLINE`` or ``STUDYLIB_OFFLINE`` set)."""
    return any(os.environ.get(v, "0") not in ("", "0", "false", "False")
               for v in ("STUDYLIB_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
