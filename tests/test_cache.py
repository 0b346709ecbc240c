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
    assert cache.code_modules(fn) == ["runpkg.helper", "runpkg.run"]  # the plumbing (studylib.platform) is not a key
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
    assert rows[1]["status"] == "stale" and rows[2]["status"] == "ok"
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
    env = meta["environment"]
    assert env["threads"] == cache.RUN_THREADS == 1 and meta["device"] == "cpu"
    assert {"torch", "numpy", "scipy", "python"} <= set(env["versions"])
    assert set(meta["files"]) == {"records.json", "metrics.json", "weights.pt"}


def test_the_key_holds_the_device_actually_used(monkeypatch):
    cpu = cache.run_key("t", {"device": "auto"}, ["studylib.platform.config"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cache.run_key("t", {"device": "auto"}, ["studylib.platform.config"]) != cpu  # a CUDA run: another entry


def test_prose_edits_keep_every_key_and_code_edits_change_the_keys_that_reach_them(tmp_path, monkeypatch):
    import importlib
    pkg = _package_with_a_helper(tmp_path, "runpkg3")
    (pkg / "other.py").write_text("B = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = importlib.import_module("runpkg3.run").fn
    deps = cache.code_modules(fn)
    key = cache.run_key("t", {"x": 1}, deps)
    other = cache.run_key("t", {"x": 1}, ["runpkg3.other"])
    (pkg / "helper.py").write_text('"""A docstring, new."""\n# a comment\nSCALE = 1  # scale\n')
    assert cache.run_key("t", {"x": 1}, deps) == key
    (pkg / "helper.py").write_text("SCALE = 2\n")
    assert cache.run_key("t", {"x": 1}, deps) != key  # the run reaches the helper ...
    assert cache.run_key("t", {"x": 1}, ["runpkg3.other"]) == other  # ... a run that does not keeps its key


def test_code_text_ignores_docstrings_everywhere_and_only_them():
    a = 'class A:\n    """Doc."""\n    x = 1\n    """Attribute doc."""\n    def f(self):\n        "Doc."\n        return 1\n'
    b = "class A:\n    x = 1\n\n    def f(self):  # a comment\n        return 1\n"
    assert cache.code_text(a) == cache.code_text(b)
    assert cache.code_text(b) != cache.code_text(b.replace("return 1", "return 2"))
    assert cache.code_text('def f():\n    """Only a docstring."""\n') == cache.code_text("def f():\n    pass\n")
    assert cache.code_text('X = "a string value"\n') != cache.code_text('X = "another"\n')  # values are code


def test_no_trained_run_reaches_the_statistics_or_the_verdicts():
    from studylib.runs import finetune, mdl, mlp, utilization, zoo
    for fn in (zoo.zoo_run, utilization.utilization_run, finetune.finetune_run, finetune.start_run, mlp.mlp_run,
               mdl.info_run, mdl.domain_run, mdl.ablation_run, mdl.distillation_run):
        reached = cache.code_modules(fn)
        assert not [m for m in reached if m.split(".")[1] in ("stats", "claims", "judging", "studies", "plots")], fn


WRITER = """
import json, os, random, sys, time
sys.path.insert(0, {root!r})
from studylib.platform.cache import cached_run
from cwriter import compute
keys = list(range(25))
random.Random(int(sys.argv[1])).shuffle(keys)
print(json.dumps({{k: cached_run("t", {{"x": k}}, compute, root={runs!r}).metrics["y"] for k in keys}}))
"""


def test_concurrent_writers_compute_each_key_once_and_never_fail(tmp_path):
    (tmp_path / "cwriter.py").write_text(
        "import os, time\nfrom studylib.platform.cache import RunResult\n"
        f"LOG = {str(tmp_path / 'log')!r}\n"
        "def compute(p):\n"
        "    with open(LOG, 'a') as f:\n        f.write(f'{p[\"x\"]}\\n')\n"
        "    time.sleep(0.05)\n"
        "    return RunResult([{'epoch': 1}], {'y': p['x'] ** 2})\n")
    script = WRITER.format(root=str(tmp_path), runs=str(tmp_path / "runs"))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    results = [json.loads(out) for out, _ in outs]
    assert all(r == {str(k): k * k for k in range(25)} for r in results)
    computed = (tmp_path / "log").read_text().split()
    assert sorted(map(int, computed)) == list(range(25))  # each key computed once, by one of the four


def test_clean_leaves_a_live_writers_work_alone(runs_root):
    cached_run("t", {"x": 1}, _fn, root=runs_root)
    key = cached_run("t", {"x": 2}, _fn, root=runs_root).key
    partial = runs_root / "t" / f".tmp-{key}-abc"
    partial.mkdir()
    lock = cache._lock(runs_root / "t", key)
    with lock:  # another writer of key 2 is at work
        assert cache.clean(root=runs_root) == 1
        assert partial.exists() and (runs_root / "t" / key).exists()
    assert cache.clean(root=runs_root) == 1 and not partial.exists()


def test_a_corrupt_entry_is_listed_cleaned_and_recomputed(runs_root, capsys):
    CALLS.clear()
    run = cached_run("t", {"x": 1}, _fn, root=runs_root)
    weights = run.path / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated
    (row,) = cache.entries(runs_root)
    assert row["status"] == "corrupt" and "weights.pt" in row["problem"] and row["path"] == str(run.path)
    again = cached_run("t", {"x": 1}, _fn, root=runs_root)
    assert not again.from_cache and len(CALLS) == 2 and torch.equal(again.weights()["w"], torch.full((3,), 1.0))
    assert str(run.path) in capsys.readouterr().err  # reported with its path
    # same size, other bytes: only the checksum tells
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert not cached_run("t", {"x": 1}, _fn, root=runs_root).from_cache and len(CALLS) == 3
    (run.path / "meta.json").write_text("{not json")
    (row,) = cache.entries(runs_root)
    assert row["status"] == "corrupt" and "meta.json" in row["problem"]
    assert cache.clean(corrupt_only=True, root=runs_root) == 1 and cache.entries(runs_root) == []


def test_clean_refuses_an_unknown_name_naming_the_known_ones(runs_root):
    cached_run("t", {"x": 1}, _fn, root=runs_root)
    with pytest.raises(KeyError, match="names: t"):
        cache.clean("finetunes", root=runs_root)


def test_one_forced_execution_computes_each_run_once(runs_root, monkeypatch):
    CALLS.clear()
    monkeypatch.setenv("STUDYLIB_FORCE", "1")
    monkeypatch.setenv(cache.FORCE_SINCE, str(__import__("time").time()))
    first = cached_run("t", {"x": 7}, _fn, root=runs_root)
    again = cached_run("t", {"x": 7}, _fn, root=runs_root)  # a later chapter of the same forced execution
    assert not first.from_cache and again.from_cache and len(CALLS) == 1


def test_listing_survives_entries_that_vanish_or_hold_odd_files(runs_root):
    run = cached_run("t", {"x": 1}, _fn, root=runs_root)
    (run.path / "link").symlink_to(runs_root / "nowhere")
    meta = json.loads((run.path / "meta.json").read_text())
    meta["files"]["records.json"] = [1, 2, 3]
    (run.path / "meta.json").write_text(json.dumps(meta))
    (row,) = cache.entries(runs_root)
    assert row["status"] == "corrupt" and cache.clean(corrupt_only=True, root=runs_root) == 1
