"""What a person running the study meets: the cache commands, a chapter replaced only by a completed run, Ctrl-C
that stops everything, progress on the terminal, and a book that says which chapters it was built from."""
import io
import json
import os
import time
import uuid

import nbformat
import pytest

from studylib.platform import cache
from studylib.platform import notebooks as notebooks_run
from studylib.platform.cli import main
from studylib.platform.progress import Renderer, progress_summary

import gridtasks

NB = "00_data_and_models"


def test_cache_commands_list_newest_first_and_clean_only_what_is_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))
    for x in (1, 2):
        cache.cached_run("demo", {"x": x}, _result)
        time.sleep(1.1)
    assert main(["cache", "list", "--long"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[2] == "demo" and '{"x": 2}' in out[2] and out[-1] == "2 runs (2 ok, 0 stale, 0 corrupt), newest first"
    assert main(["cache", "clean"]) == 2  # no selection, no terminal to ask on: nothing removed
    assert "needs a selection" in capsys.readouterr().err and len(cache.entries()) == 2
    assert main(["cache", "clean", "--name", "demos"]) == 2
    assert "no runs named 'demos' in the cache; names: demo" in capsys.readouterr().err
    assert main(["cache", "clean", "--name", "demo"]) == 0
    assert "removed 2 runs" in capsys.readouterr().out


def _result(p):
    return cache.RunResult([{"epoch": 1}], {"m": float(p["x"])})


def _chapter(folder, name, profile="quick", overrides=None, completed=True, exception=False):
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"PROFILE": profile, **(overrides or {})}, "exception": exception}
    if completed is not None:
        nb.metadata["studylib"] = {"profile": profile, "overrides": overrides or {}, "completed": completed}
    nbformat.write(nb, folder / f"{name}.ipynb")


def test_the_book_names_every_chapter_that_is_missing_failed_or_ran_otherwise(tmp_path):
    names = [n for n in notebooks_run.notebook_names() if n != "99_verdicts"]
    for name in names:
        _chapter(tmp_path, name)
    rows = notebooks_run.provenance(tmp_path, "quick")
    assert {r["state"] for r in rows} == {"ok"}
    assert notebooks_run.provenance_statement(rows, "quick").startswith(f"All {len(names)} chapters")
    (tmp_path / f"{names[1]}.ipynb").unlink()
    _chapter(tmp_path, names[2], profile="standard")
    _chapter(tmp_path, names[3], overrides={"SEED": 3, "WORKERS": 1})  # the number of workers moves no number
    _chapter(tmp_path, names[4], exception=True, completed=None)  # papermill on its own, stopped by an error
    _chapter(tmp_path, names[6], overrides={"REPEATS": 2}, completed=None)  # papermill on its own, other values
    states = {r["notebook"]: (r["state"], r["detail"]) for r in notebooks_run.provenance(tmp_path, "quick")}
    assert states[names[1]] == ("missing", "is missing")
    assert states[names[2]] == ("other profile", "ran on the standard profile")
    assert states[names[3]] == ("other parameters", "ran with SEED=3")
    assert states[names[4]][0] == "failed" and states[names[6]] == ("other parameters", "ran with REPEATS=2")
    text = notebooks_run.provenance_statement(notebooks_run.provenance(tmp_path, "quick"), "quick")
    assert text.startswith("These numbers are not those of the quick book: chapter 1") and "SEED=3" in text


def test_a_replication_build_runs_every_chapter_on_seeds_disjoint_from_the_books(tmp_path, monkeypatch):
    names = [n for n in notebooks_run.notebook_names() if n != "99_verdicts"]
    calls = []
    monkeypatch.setattr(notebooks_run, "run_notebook", lambda name, profile, overrides=None, **kw: calls.append(
        (name, profile, overrides, kw.get("out_dir"))))
    assert main(["run-all", "--profile", "quick", "--replication"]) == 0
    assert [c[0] for c in calls] == names  # not the verdicts page
    for name, profile, overrides, out in calls:
        own = notebooks_run.resolve_values(name, "quick", {})["SEED"]
        assert overrides == {"SEED": own + 1000} and out == notebooks_run.replication_dir() and profile == "quick"
    for name in names:  # its provenance: the shifted SEED is what a replication chapter should have
        _chapter(tmp_path, name, overrides=notebooks_run.replication_overrides(name, "quick"))
    _chapter(tmp_path, names[0])  # the book's own seed
    states = {r["notebook"]: (r["state"], r["detail"]) for r in notebooks_run.provenance(tmp_path, "quick", replication=True)}
    own = notebooks_run.resolve_values(names[0], "quick", {})["SEED"]
    assert states[names[0]] == ("other parameters", f"ran with SEED={own}") and states[names[1]] == ("ok", "")


def test_a_failed_rerun_leaves_the_executed_chapter_as_it_was(tmp_path, monkeypatch):
    good = tmp_path / "out" / f"{NB}.ipynb"
    good.parent.mkdir()
    good.write_text("the chapter the book had")
    sources = tmp_path / "src"
    sources.mkdir()
    nb = nbformat.read(notebooks_run.source_dir() / f"{NB}.ipynb", as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('a cell fails')"))
    nbformat.write(nb, sources / f"{NB}.ipynb")
    monkeypatch.setattr(notebooks_run, "source_dir", lambda: sources)
    with pytest.raises(notebooks_run.ExecutionFailed, match="is unchanged; partial output: ") as err:
        notebooks_run.run_notebook(NB, "quick", out_dir=good.parent, progress_bar=False)
    assert good.read_text() == "the chapter the book had"
    partial = str(err.value).split("partial output: ")[1].split("\n")[0]
    assert "a cell fails" in open(partial).read()


def test_progress_events_become_lines_off_a_terminal(tmp_path):
    stream = io.StringIO()
    channel = tmp_path / "progress.jsonl"
    events = [{"bar": "b", "desc": "zoo", "done": d, "total": 4, "cached": 1, "seconds": 12.0 * d} for d in (0, 1, 4)]
    with Renderer(channel, stream, every=10):
        with open(channel, "a") as f:
            for event in [*events, {"line": "zoo: 4 runs, 48 s, 1 from cache"}]:
                f.write(json.dumps(event) + "\n")
        time.sleep(0.6)
    lines = stream.getvalue().splitlines()
    assert lines == ["zoo: 4/4, 1 from cache, 48 s", "zoo: 4 runs, 48 s, 1 from cache"]
    assert progress_summary({**events[1], "done": 2, "seconds": 20}) == "zoo: 2/4, 1 from cache, 20 s, about 40 s left"


@pytest.mark.slow
def test_ctrl_c_on_a_terminal_stops_a_two_worker_grid_within_seconds_and_leaves_the_chapter(tmp_path):
    """Ctrl-C typed into a pseudo-terminal during a 2-worker grid ends the kernel and its workers (found by the run's
    environment) within 5 s, exits 130 saying what was stopped, and leaves the executed chapter as it was."""
    import sys
    import pexpect
    out = tmp_path / "out"
    out.mkdir()
    (out / "04_layer_utilization.ipynb").write_text("the chapter the book had")
    mark = uuid.uuid4().hex
    env = {**os.environ, "STUDYLIB_TEST_MARK": mark, "STUDYLIB_HOME": str(tmp_path / "home"), "COLUMNS": "120"}
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "assets").symlink_to(cache.config.assets_dir())  # the installed data, an empty run cache
    child = pexpect.spawn(sys.executable, ["-m", "studylib", "run", "04_layer_utilization", "--profile", "quick",
                                           "-p", "WORKERS", "2", "--out", str(out)], env=env, encoding="utf-8",
                          timeout=240)
    child.expect("grid")  # the grid's progress bar, on the terminal
    deadline = time.monotonic() + 60
    while len(gridtasks.processes_marked(mark)) < 4 and time.monotonic() < deadline:  # the CLI, the kernel, two workers
        time.sleep(0.2)
    assert len(gridtasks.processes_marked(mark)) >= 4
    start = time.monotonic()
    child.sendintr()
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert time.monotonic() - start < 5 and child.exitstatus == 130
    assert "stopped: 04_layer_utilization: stopped (SIGINT)" in child.before
    assert "finished runs stay in the run cache" in child.before
    assert "eavesdropping" not in child.before  # the kernel talks over local sockets: no TCP warning
    time.sleep(0.5)
    assert gridtasks.processes_marked(mark) == []
    assert (out / "04_layer_utilization.ipynb").read_text() == "the chapter the book had"
