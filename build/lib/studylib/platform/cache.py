"""The run cache: trained runs stored on disk under a key of their parameters and the code they use.

Used by every chapter that trains (fine-tuning, utilization grids, model information). A run is
stored at ``<STUDYLIB_HOME>/runs/<name>/<key>/`` with ``meta.json`` (parameters, code hash, timing),
``records.json`` (per-epoch records), ``metrics.json`` and optionally ``weights.pt``. The key hashes
the run's name, its parameters, the torch version and the source of every studylib module the run's
function reaches through its imports (:func:`code_modules`, read from the source, not kept by hand),
so a change to that code gives a new key and never a stale hit. Writes are atomic: everything
goes into a hidden temporary folder that is renamed into place last, so a run killed mid-write
leaves no entry that a later run trusts.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable


from . import config

if TYPE_CHECKING:
    import torch

PACKAGE = "studylib"

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
        import torch
        return torch.load(self.path / "weights.pt", map_location=device, weights_only=True)


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no module named {module!r}")
    return Path(spec.origin)


def _imports(module: str, roots: set[str]) -> set[str]:
    """The modules of the packages ``roots`` that ``module``'s source imports (anywhere in the file, relative
    or absolute). ``from X import name`` counts ``X.name`` when that is a module, else ``X`` itself."""
    path = _source(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in roots)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if base.split(".")[0] in roots:  # other packages are never looked up (nor imported)
                found.update(f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names)
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def code_modules(fn: Callable | str) -> list[str]:
    """The module of ``fn`` (a function, or a module name) and every module of studylib or of ``fn``'s own
    package that it reaches through imports, sorted: the code a run's result depends on."""
    start = fn if isinstance(fn, str) else fn.__module__
    if start == "__main__":
        raise ValueError("a cached run's function must be defined in an importable module (not in __main__ or a "
                         "notebook): its source is part of the cache key")
    roots = {PACKAGE, start.split(".")[0]}
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_imports(module, roots) - seen)
    return sorted(seen)


def code_hash(modules: tuple[str, ...] | list[str]) -> str:
    """sha256 over the source files of the given modules (e.g. ``"studylib.training"``)."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        h.update(name.encode() + b"\0" + _source(name).read_bytes() + b"\0")
    return h.hexdigest()


def _torch_version() -> str:
    import torch  # imported when a key is made, so that importing this module stays light
    return torch.__version__


def run_key(name: str, params: dict, deps) -> str:
    payload = json.dumps({"name": name, "params": params, "torch": _torch_version(),
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


def cached_run(name: str, params: dict, fn: Callable[[dict], RunResult], force: bool = False,
               root: Path | None = None) -> Run:
    """Return the stored run for ``(name, params)`` and the current code, computing ``fn(params)`` first if absent.

    ``fn`` must be defined in an importable module: the source of that module and of every studylib module
    it reaches (:func:`code_modules`) is part of the key.
    ``force``: recompute and replace a stored run (also when ``STUDYLIB_FORCE=1``, set by ``--force``).
    """
    force = force or os.environ.get("STUDYLIB_FORCE", "0") == "1"
    json.dumps(params)  # parameters must be plain JSON values: fail before any work if not
    root = Path(root or config.runs_dir()) / name
    deps = code_modules(fn)
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
            import torch
            torch.save(result.weights, tmp / "weights.pt")
        (tmp / "records.json").write_text(_json(result.records))
        (tmp / "metrics.json").write_text(_json(result.metrics))
        meta = {"name": name, "key": key, "params": params, "deps": sorted(deps), "code": code_hash(deps),
                "torch": _torch_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
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
            stale = code_hash(meta["deps"]) != meta["code"] or meta["torch"] != _torch_version()
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
