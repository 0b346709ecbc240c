import json
import subprocess
import sys
import textwrap

import torch

from studylib import cache
from studylib.cache import RunResult, cached_run

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
    assert cache.run_key("t", {"x": 1}, ["studylib.cache"]) != k1


def test_stale_entries_are_listed_and_cleaned(tmp_path, runs_root, monkeypatch):
    module = tmp_path / "dep_mod2.py"
    module.write_text("A = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cached_run("t", {"x": 1}, _fn, deps=["dep_mod2"], root=runs_root)
    cached_run("t", {"x": 2}, _fn, root=runs_root)
    module.write_text("A = 2\n")
    rows = {r["params"]["x"]: r for r in cache.entries(runs_root)}
    assert rows[1]["stale"] and not rows[2]["stale"]
    assert cache.clean(stale_only=True, root=runs_root) == 1
    assert [r["params"]["x"] for r in cache.entries(runs_root)] == [2]


def test_a_run_killed_mid_write_leaves_nothing_trusted(runs_root):
    # The child process is killed (SIGKILL: no clean-up code runs) just before the final rename.
    child = textwrap.dedent(f"""
        import os, signal, pathlib, torch
        from studylib.cache import RunResult, cached_run
        pathlib.Path.rename = lambda self, target: os.kill(os.getpid(), signal.SIGKILL)
        cached_run("t", {{"x": 1}}, lambda p: RunResult([{{"epoch": 1}}], {{"m": 1}}, {{"w": torch.ones(1000)}}),
                   root={str(runs_root)!r})
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
    assert meta["params"] == {"x": 5} and meta["code"] == cache.code_hash(["studylib.cache"])
