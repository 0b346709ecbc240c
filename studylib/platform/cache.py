"""The run cache: trained runs stored on disk under a key of their parameters and the code they use.

Used by every chapter that trains (fine-tuning, utilization grids, model information, the ESD series, the zoo).
A run is stored at ``<STUDYLIB_HOME>/runs/<name>/<key>/`` with ``meta.json`` (parameters, code hash, the
environment it ran in, a SHA-256 and size per file), ``records.json`` (per-epoch records), ``metrics.json`` and
optionally ``weights.pt``.

The key hashes the run's name, its parameters (with ``device: "auto"`` resolved to the device actually used),
the torch and Python versions, the intra-op thread count every run trains with (:data:`RUN_THREADS`) and the
code of every studylib module the run's function reaches through its imports (:func:`code_modules`, read from
the source): the code as its syntax tree with docstrings stripped (:func:`code_text`), so editing prose or
comments never retrains and editing code always does.

Safe under concurrent writers (processes on one machine, Dask workers sharing ``STUDYLIB_HOME``): one
computation per key, under a lock file (``filelock``); the others wait and read it. Writes are atomic: a run is
written into a hidden temporary folder renamed into place last. A corrupt entry (unreadable metadata, a file
whose checksum or size differs) is reported with its path and recomputed, never trusted.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from filelock import FileLock, Timeout

from . import config
from .progress import notice

if TYPE_CHECKING:
    import torch

PACKAGE = "studylib"
META = "meta.json"
LOCKS = ".locks"
#: torch intra-op threads of every cached run: fixed, so the same parameters give the same numbers in the
#: notebook, in a local pool and on Dask (workers supply the parallelism)
RUN_THREADS = 1
#: with ``STUDYLIB_FORCE=1``: runs written after this time (seconds since the epoch) are read, not recomputed
#: again, so that one forced execution computes each run once (set by ``run --force`` and ``run-all --force``)
FORCE_SINCE = "STUDYLIB_FORCE_SINCE"


class CorruptEntry(ValueError):
    """A stored run whose files cannot be trusted."""


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


#: modules that never change a run's numbers (the cache, configuration, progress): outside every key, so that
#: mending the plumbing never retrains
PLUMBING = f"{PACKAGE}.platform"


def code_modules(fn: Callable | str) -> list[str]:
    """The module of ``fn`` (a function, or a module name) and every module of studylib or of ``fn``'s own
    package that it reaches through imports, sorted: the code a run's result depends on. The plumbing
    (:data:`PLUMBING`) is left out."""
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
            todo.extend(m for m in _imports(module, roots) - seen if not m.startswith(PLUMBING))
    return sorted(seen)


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def code_text(source: str | bytes) -> str:
    """The behaviour-bearing text of a module's source: its syntax tree without docstrings or other bare string
    statements, and without comments, positions or formatting (``ast.dump``). Two sources that differ only in
    prose give the same text."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.AST):
                kept = [child for child in body if not _is_docstring(child)]
                setattr(node, name, kept or [ast.Pass()])
    return ast.dump(tree, include_attributes=False)


@functools.lru_cache(maxsize=512)
def _file_code(path: str, mtime_ns: int, size: int) -> str:
    """:func:`code_text` of one source file, parsed once per version of the file (its time and size are part of
    the cache's key): a grid asks for the same modules' keys at every run."""
    return code_text(Path(path).read_bytes())


def code_hash(modules: tuple[str, ...] | list[str]) -> str:
    """sha256 over the code (:func:`code_text`) of the given modules (e.g. ``"studylib.training"``)."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        stat = (path := _source(name)).stat()
        h.update(name.encode() + b"\0" + _file_code(str(path), stat.st_mtime_ns, stat.st_size).encode() + b"\0")
    return h.hexdigest()


def _torch_version() -> str:
    import torch  # imported when a key is made, so that importing this module stays light
    return torch.__version__


def resolved_device(params: dict) -> str:
    """The device a run with these parameters trains on: its ``device`` (``"auto"``: CUDA when present, else
    the CPU); ``"cpu"`` for a run without one."""
    device = str(params.get("device") or "cpu")
    if device == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def run_key(name: str, params: dict, deps) -> str:
    """The key of ``(name, params)`` with the code of the modules ``deps``, in this environment."""
    payload = json.dumps({"name": name, "params": params, "device": resolved_device(params),
                          "torch": _torch_version(), "python": platform.python_version_tuple()[:2],
                          "threads": RUN_THREADS, "code": code_hash(deps)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _run_environment() -> dict:
    """Where a run was computed: versions of the numerical libraries, threads, host."""
    import importlib.metadata
    import torch
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for package in ("numpy", "scipy", "transformers"):  # read from the installed metadata, never imported here
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"versions": versions, "threads": torch.get_num_threads(), "host": platform.node(),
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def _json(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=float)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _meta(folder: Path) -> dict:
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError) as err:
        raise CorruptEntry(f"unreadable {META} ({err.__class__.__name__})") from None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, list) and len(v) == 2 for v in files.values()):
        raise CorruptEntry(f"{META} lists no file checksums")
    return meta


def check_entry(folder: Path, checksums: bool = True) -> dict:
    """The metadata of a stored run after checking that every file it lists is there with its recorded size (and,
    with ``checksums``, its SHA-256); raises :class:`CorruptEntry` naming what is wrong."""
    meta = _meta(folder)
    for fname, (size, digest) in meta["files"].items():
        path = folder / fname
        if not path.is_file() or path.stat().st_size != size:
            raise CorruptEntry(f"{fname} is missing or has another size than recorded")
        if checksums and _sha256(path) != digest:
            raise CorruptEntry(f"{fname} differs from its recorded SHA-256")
    return meta


def _read(folder: Path, name: str, key: str, from_cache: bool) -> Run:
    meta = check_entry(folder)
    records = json.loads((folder / "records.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    return Run(name, key, folder, meta["params"], records, metrics, meta, from_cache)


def _lock(root: Path, key: str) -> FileLock:
    """The lock file of one run: ``<runs>/.locks/<name>-<key>.lock`` (``root`` is ``<runs>/<name>``)."""
    folder = root.parent / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / f"{root.name}-{key}.lock")


@contextmanager
def _holding(lock: FileLock, what: str) -> Iterator[None]:
    """Hold ``lock``, saying on the terminal (once) when another process holds it."""
    try:
        lock.acquire(timeout=2)
    except Timeout:
        notice(f"run cache: waiting for another process computing {what}")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def run_threads() -> Iterator[None]:
    """Train with :data:`RUN_THREADS` intra-op threads, restoring the caller's count afterwards. torch's count is
    one per process: run one cached run per process at a time (local workers do; Dask workers with
    ``--nthreads 1``, several worker processes per machine)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(RUN_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cached_run(name: str, params, fn: Callable[[Any], RunResult], force: bool = False,
               root: Path | None = None) -> Run:
    """Return the stored run for ``(name, params)`` and the current code, computing ``fn(params)`` first if absent.

    ``params``: a frozen dataclass (every run kind of the study has one: its fields, defaults filled in, are the
    key, so a misspelt field fails when the parameters are made) or a dict of plain JSON values.

    ``fn`` must be defined in an importable module: the code of that module and of every studylib module
    it reaches (:func:`code_modules`) is part of the key. It runs with :data:`RUN_THREADS` torch threads.
    While one process computes a key, others asking for it wait and read its result.
    ``force``: recompute and replace a stored run (also when ``STUDYLIB_FORCE=1``, set by ``--force``); a run
    that another process finished after this call started is read, not recomputed again.
    """
    forced_by_env = os.environ.get("STUDYLIB_FORCE", "0") == "1"
    force = force or forced_by_env
    typed = params
    params = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else params
    json.dumps(params)  # parameters must be plain JSON values: fail before any work if not
    root = Path(root or config.runs_dir()) / name
    deps = code_modules(fn)
    key = run_key(name, params, deps)
    final = root / key
    asked = float(os.environ.get(FORCE_SINCE) or time.time()) if forced_by_env else time.time()
    if not force and final.is_dir():
        try:
            return _read(final, name, key, from_cache=True)
        except (CorruptEntry, OSError, ValueError):
            pass  # checked again under the lock: it may be a writer replacing it
    with _holding(_lock(root, key), f"{name}/{key}"):
        if final.is_dir():
            try:
                fresh = (final / META).stat().st_mtime >= asked
                if not force or fresh:
                    return _read(final, name, key, from_cache=True)
            except (CorruptEntry, OSError, ValueError) as err:
                notice(f"run cache: {final} is corrupt ({err}); recomputing it")
        start = time.time()
        with run_threads():
            result = fn(typed)
            environment = _run_environment()
        _publish(root, final, result, {
            "name": name, "key": key, "params": params, "deps": sorted(deps), "code": code_hash(deps),
            "device": resolved_device(params), "torch": _torch_version(), "run_threads": RUN_THREADS,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(time.time() - start, 3),
            "environment": environment})
        return _read(final, name, key, from_cache=False)


def _publish(root: Path, final: Path, result: RunResult, meta: dict) -> None:
    """Write a run into a temporary folder and rename it into place (the caller holds the key's lock)."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        if result.weights is not None:
            import torch
            torch.save(result.weights, tmp / "weights.pt")
        (tmp / "records.json").write_text(_json(result.records))
        (tmp / "metrics.json").write_text(_json(result.metrics))
        meta["files"] = {f.name: [f.stat().st_size, _sha256(f)] for f in sorted(tmp.iterdir())}
        (tmp / META).write_text(_json(meta))  # written last: a folder without it is incomplete
        move_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_into_place(tmp: Path, final: Path) -> None:
    """Rename the finished folder ``tmp`` to ``final`` (same file system), replacing a folder already there: the old
    one is renamed aside first (``.old-<name>-*``) and removed after. The caller holds ``final``'s lock, so no other
    writer renames at the same time. Used by the run cache and the asset install."""
    if final.exists():
        old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def entries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every stored run, newest first, with its ``status``: ``"ok"``, ``"stale"`` (made by other code or in
    another environment: never read again) or ``"corrupt"`` (unreadable metadata, or a file missing or of
    another size than recorded; ``problem`` says which). Never fails on a bad entry."""
    root = Path(root or config.runs_dir())
    rows = []
    for folder in root.glob("*/*"):
        if folder.name.startswith(".") or folder.parent.name.startswith(".") or not folder.is_dir():
            continue
        try:
            row = {"name": folder.parent.name, "key": folder.name, "path": str(folder), "params": {}, "problem": "",
                   "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(folder.lstat().st_mtime)),
                   "seconds": float("nan"), "mb": round(sum(f.lstat().st_size for f in folder.iterdir()) / 2**20, 2)}
        except OSError:
            continue  # removed or replaced by another process meanwhile
        row.update(_status(folder))
        rows.append(row)
    return sorted(rows, key=lambda r: r["created"], reverse=True)


def _status(folder: Path) -> dict:
    """``status`` (ok, stale, corrupt) of a stored run, with its ``problem`` and, when readable, its metadata."""
    try:
        meta = check_entry(folder, checksums=False)
        out = {"created": meta["created"], "seconds": meta["seconds"], "params": meta["params"]}
        try:
            stale = run_key(meta["name"], meta["params"], meta["deps"]) != meta["key"]
        except (ModuleNotFoundError, SyntaxError):
            stale = True
        return {**out, "status": "stale" if stale else "ok", "problem": ""}
    except (CorruptEntry, KeyError, TypeError, ValueError, OSError) as err:
        return {"status": "corrupt", "problem": str(err)}


def names(root: Path | None = None) -> list[str]:
    """The run names (kinds of run) that have a folder in the cache."""
    root = Path(root or config.runs_dir())
    return sorted(p.name for p in root.glob("*") if p.is_dir() and not p.name.startswith("."))


def clean(name: str | None = None, stale_only: bool = False, corrupt_only: bool = False,
          root: Path | None = None) -> int:
    """Remove stored runs (of ``name``, or all; only stale or corrupt ones if ``stale_only``; only corrupt ones if
    ``corrupt_only``) and leftovers of interrupted writes. A run another process is writing (its key's lock held)
    is left alone. Returns how many entries were removed."""
    root = Path(root or config.runs_dir())
    if name is not None and name not in names(root):
        raise KeyError(f"no runs named {name!r} in the cache; names: {', '.join(names(root)) or 'none'}")
    removed = 0
    for leftover in [*root.glob("*/.tmp-*"), *root.glob("*/.old-*")]:
        key = leftover.name.split("-")[1]
        if name in (None, leftover.parent.name):
            with _unless_busy(_lock(leftover.parent, key)) as free:
                if free:
                    shutil.rmtree(leftover, ignore_errors=True)
    for row in entries(root):
        wanted = {"corrupt"} if corrupt_only else {"stale", "corrupt"} if stale_only else {"ok", "stale", "corrupt"}
        if name in (None, row["name"]) and row["status"] in wanted:
            with _unless_busy(_lock(Path(row["path"]).parent, row["key"])) as free:
                # looked at again under the lock: a writer may have replaced it since it was listed
                if free and Path(row["path"]).is_dir() and _status(Path(row["path"]))["status"] in wanted:
                    shutil.rmtree(row["path"], ignore_errors=True)
                    removed += 1
    return removed


@contextmanager
def _unless_busy(lock: FileLock) -> Iterator[bool]:
    """Yield True holding ``lock`` when it is free now, False when another process holds it."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
