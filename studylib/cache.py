"""The run cache: trained runs stored on disk under a key of their parameters and the code they use.

Used by every chapter that trains (fine-tuning, utilization grids, model information). A run is
stored at ``<STUDYLIB_HOME>/runs/<name>/<key>/`` with ``meta.json`` (parameters, code hash, timing),
``records.json`` (per-epoch records), ``metrics.json`` and optionally ``weights.pt``. The key hashes
the run's name, its parameters, the torch version and the source of the studylib modules it depends
on, so a change to that code gives a new key and never a stale hit. Writes are atomic: everything
goes into a hidden temporary folder that is renamed into place last, so a run killed mid-write
leaves no entry that a later run trusts.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import config

META = "meta.json"


@dataclass
class RunResult:
    """What a trained run returns: per-epoch records, final metrics and (optionally) weights."""
    records: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    weights: dict[str, torch.Tensor] | None = None


@dataclass
class Run:
    """A stored run, as read back from the cache."""
    name: str
    key: str
    path: Path
    params: dict
    records: list[dict]
    metrics: dict
    meta: dict
    from_cache: bool

    def weights(self, device="cpu") -> dict[str, torch.Tensor]:
        return torch.load(self.path / "weights.pt", map_location=device, weights_only=True)


def code_hash(modules: tuple[str, ...] | list[str]) -> str:
    """sha256 over the source files of the given modules (e.g. ``"studylib.train"``)."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        source = Path(importlib.import_module(name).__file__).read_bytes()
        h.update(name.encode() + b"\0" + source + b"\0")
    return h.hexdigest()


def run_key(name: str, params: dict, deps) -> str:
    payload = json.dumps({"name": name, "params": params, "torch": torch.__version__,
                          "code": code_hash(deps)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _json(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=float)


def _read(path: Path, name: str, key: str, from_cache: bool) -> Run | None:
    try:
        meta = json.loads((path / META).read_text())
        records = json.loads((path / "records.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return Run(name, key, path, meta["params"], records, metrics, meta, from_cache)


def cached_run(name: str, params: dict, fn: Callable[[dict], RunResult], deps=("studylib.cache",),
               force: bool = False, root: Path | None = None) -> Run:
    """Return the stored run for ``(name, params, deps)``, computing ``fn(params)`` first if absent.

    ``deps``: the studylib modules whose source the result depends on (part of the key).
    ``force``: recompute and replace a stored run (also when ``STUDYLIB_FORCE=1``, set by ``--force``).
    """
    force = force or os.environ.get("STUDYLIB_FORCE", "0") == "1"
    json.dumps(params)  # parameters must be plain JSON values: fail before any work if not
    root = Path(root or config.runs_dir()) / name
    key = run_key(name, params, deps)
    final = root / key
    if not force and final.is_dir():
        run = _read(final, name, key, from_cache=True)
        if run is not None:
            return run
    start = time.time()
    result = fn(params)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
    try:
        if result.weights is not None:
            torch.save(result.weights, tmp / "weights.pt")
        (tmp / "records.json").write_text(_json(result.records))
        (tmp / "metrics.json").write_text(_json(result.metrics))
        meta = {"name": name, "key": key, "params": params, "deps": sorted(deps), "code": code_hash(deps),
                "torch": torch.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "seconds": round(time.time() - start, 3)}
        (tmp / META).write_text(_json(meta))  # written last: a folder without it is incomplete
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run = _read(final, name, key, from_cache=False)
    assert run is not None
    return run


def entries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every stored run, with whether its code hash still matches the current code (``stale``)."""
    root = Path(root or config.runs_dir())
    rows = []
    for meta_file in sorted(root.glob(f"*/*/{META}")):
        folder = meta_file.parent
        if folder.name.startswith("."):
            continue
        meta = json.loads(meta_file.read_text())
        try:
            stale = code_hash(meta["deps"]) != meta["code"] or meta["torch"] != torch.__version__
        except ModuleNotFoundError:
            stale = True
        rows.append({"name": meta["name"], "key": meta["key"], "created": meta["created"],
                     "seconds": meta["seconds"], "stale": stale,
                     "mb": round(sum(f.stat().st_size for f in folder.iterdir()) / 2**20, 2),
                     "params": meta["params"], "path": str(folder)})
    return rows


def clean(name: str | None = None, stale_only: bool = False, root: Path | None = None) -> int:
    """Remove stored runs (of ``name``, or all; only stale ones if ``stale_only``) and leftover
    temporary folders of interrupted writes. Returns how many entries were removed."""
    root = Path(root or config.runs_dir())
    removed = 0
    for tmp in root.glob("*/.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for row in entries(root):
        if (name is None or row["name"] == name) and (row["stale"] or not stale_only):
            shutil.rmtree(row["path"])
            removed += 1
    return removed
