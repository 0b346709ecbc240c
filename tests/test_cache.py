import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from studylib.platform import cache
from studylib.platform.cache import RunResult, cached_run

CALLS = []


def _fn(p):
    CALLS.append(p)
    w = torch.full((3,), float(p["x"]))
    return RunResult([{"epoch": 1, "x": p["x"]}], {"sum": 3 * p["x"]}, {"w": w})


def test_second_call_reads_the_cache(runs_root):
    CALLS.clear()
    a = cached_run("t", {"x": 2}, _fn, root=runs_root)
    b = cached_run("t", {"x": 2}, _fn, root=runs_root)
    assert len(CALLS) == 1 and not a.from_cache and b.from_cache
    assert b.records == [{"epoch": 1, "x": 2}] and b.metrics == {"sum": 6}
    assert torch.equal(b.weights()["w"], torch.full((3,), 2.0))
    assert cached_run("t", {"x": 3}, _fn, root=runs_root).key != a.key


def test_force_recomputes(runs_root, monkeypatch):
    CALLS.clear()
    cached_run("t", {"x": 1}, _fn, root=runs_root)
    cached_run("t", {"x": 1}, _fn, root=runs_root, force=True)
    monkeypatch.setenv("STUDYLIB_FORCE", "1")
    cached_run("t", {"x": 1}, _fn, root=runs_root)
    assert len(CALLS) == 3


def test_key_follows_the_code_it_depends_on(tmp_path, monkeypatch):
    module = tmp_path / "dep_mod.py"
    module.write_text("A = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    k1 = cache.run_key("t", {"x": 1}, ["dep_mod"])
    module.write_text("A = 2\n")
    assert cache.run_key("t", {"x": 1}, ["dep_mod"]) != k1
    assert cache.run_key("t", {"x": 1}, ["studylib.platform.cache"]) != k1


def _package_with_a_helper(root, name):
    """A package whose run function imports a helper module that nothing lists by hand."""
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("SCALE = 1\n")
    (pkg / "run.py").write_text(
        "from studylib.platform.cache import RunResult\n"
        "def fn(p):\n"
        "    from .helper import SCALE\n"
        "    return RunResult([], {'y': SCALE * p['x']})\n")
    return pkg


def test_key_follows_every_module_a_run_imports(tmp_path, monkeypatch, runs_root):
    import importlib
    pkg = _package_with_a_helper(tmp_path, "runpkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = importlib.import_module("runpkg.run").fn
    assert cache.code_modules(fn) == ["runpkg.helper", "runpkg.run", "studylib.platform.cache",
                                      "studylib.platform.config"]
    first = cached_run("t", {"x": 2}, fn, root=runs_root)
    (pkg / "helper.py").write_text("SCALE = 10\n")  # the imported, unlisted helper changes ...
    second = cached_run("t", {"x": 2}, fn, root=runs_root)
    assert second.key != first.key and not second.from_cache  # ... and the run is not read back stale
    from studylib.runs.mlp import mlp_run  # reaches studylib.core only through studylib.training
    modules = cache.code_modules(mlp_run)
    assert {"studylib.core", "studylib.training", "studylib.nets", "studylib.data.loaders"} <= set(modules)
    assert not any(m.startswith(("studylib.studies", "studylib.plots", "studylib.metrics")) for m in modules)


def test_a_run_function_in_main_is_refused(runs_root):
    def fn(p):
        return RunResult([], {})
    fn.__module__ = "__main__"
    with pytest.raises(ValueError, match="importable module"):
        cached_run("t", {"x": 1}, fn, root=runs_root)


def test_stale_entries_are_listed_and_cleaned(tmp_path, runs_root, monkeypatch):
    import importlib
    pkg = _package_with_a_helper(tmp_path, "runpkg2")
    monkeypatch.syspath_prepend(str(tmp_path))
    cached_run("t", {"x": 1}, importlib.import_module("runpkg2.run").fn, root=runs_root)
    cached_run("t", {"x": 2}, _fn, root=runs_root)
    (pkg / "helper.py").write_text("SCALE = 2\n")
    rows = {r["params"]["x"]: r for r in cache.entries(runs_root)}
    assert rows[1]["stale"] and not rows[2]["stale"]
    assert cache.clean(stale_only=True, root=runs_root) == 1
    assert [r["params"]["x"] for r in cache.entries(runs_root)] == [2]


def test_a_run_killed_mid_write_leaves_nothing_trusted(runs_root):
    # The child process is killed (SIGKILL: no clean-up code runs) just before the final rename.
    child = textwrap.dedent(f"""
        import os, signal, pathlib, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from studylib.platform.cache import cached_run
        from test_cache import _fn
        pathlib.Path.rename = lambda self, target: os.kill(os.getpid(), signal.SIGKILL)
        cached_run("t", {{"x": 1}}, _fn, root={str(runs_root)!r})
    """)
    result = subprocess.run([sys.executable, "-c", child])
    assert result.returncode == -9
    leftovers = list((runs_root / "t").iterdir())
    assert leftovers and all(p.name.startswith(".tmp-") for p in leftovers)  # a partial write exists ...
    assert cache.entries(runs_root) == []                                     # ... but is not an entry
    CALLS.clear()
    run = cached_run("t", {"x": 1}, _fn, root=runs_root)
    assert not run.from_cache and len(CALLS) == 1
    cache.clean(root=runs_root)
    assert not any(p.name.startswith(".tmp-") for p in (runs_root / "t").iterdir())


def test_meta_records_parameters_and_code(runs_root):
    run = cached_run("t", {"x": 5}, _fn, root=runs_root)
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["params"] == {"x": 5} and meta["code"] == cache.code_hash(cache.code_modules(_fn))
