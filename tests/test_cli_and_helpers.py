import io

import numpy as np
import pytest
import torch

from studylib import core, data, nets, training
from studylib.platform import cache
from studylib.platform.cli import main
from studylib.platform.progress import progress


def test_cache_list_and_clean_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))
    cache.cached_run("demo", {"x": 1}, lambda p: cache.RunResult([{"epoch": 1}], {"m": 1.0}))
    assert main(["cache", "list"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["cache", "clean", "--name", "demo"]) == 0
    assert "removed 1 run\n" in capsys.readouterr().out


def test_assets_list_and_missing_asset_exit_code(tmp_path, monkeypatch, capsys):
    assert main(["assets", "list"]) == 0
    assert "fashion_mnist" in capsys.readouterr().out
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))
    assert main(["assets", "list"]) == 0
    assert "missing" in capsys.readouterr().out


def test_device_choice():
    assert core.device("cpu").type == "cpu"
    assert core.device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            core.device("cuda")


def test_training_is_reproducible_and_learns():
    ds = data.load("uci_digits", seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nets.mlp(64, [32], 10)
        runs.append(training.train_classifier(model, ds.x_train, ds.y_train, ds.x_test, ds.y_test, epochs=3, seed=0,
                                              device="cpu"))
    assert runs[0] == runs[1]
    assert runs[0][-1]["test_acc"] > 0.5 and runs[0][-1]["train_loss"] < runs[0][0]["train_loss"]


def test_evaluate_matches_a_per_example_loop():
    ds = data.load("mnist1d", n_train=50, n_test=30)
    torch.manual_seed(0)
    model = nets.mlp(40, [16], 10)
    got = training.evaluate(model, core.array_batches(ds.x_test, ds.y_test, 7), "cpu")
    losses, hits, margins = [], [], []
    with torch.no_grad():
        for x, y in zip(ds.x_test, ds.y_test):
            p = torch.softmax(model(torch.as_tensor(x)[None]).double(), -1)[0]
            losses.append(-float(torch.log(p[y])))
            hits.append(int(p.argmax()) == y)
            top = sorted(p.tolist(), reverse=True)
            margins.append(top[0] - top[1])
    assert got["loss"] == pytest.approx(np.mean(losses), rel=1e-6)
    assert got["acc"] == np.mean(hits) and got["confidence"] == pytest.approx(np.mean(margins), rel=1e-5)
    bert_style = training.evaluate(model, [{"x": b["x"], "labels": b["labels"]} for b in
                                           core.array_batches(ds.x_test, ds.y_test, 30)], "cpu")
    # float32 logits: another batch size may take another BLAS path, equal to float32 precision
    assert bert_style["loss"] == pytest.approx(got["loss"], rel=1e-6)


def test_array_batches_check_their_inputs():
    assert [len(b["x"]) for b in core.array_batches(np.zeros((5, 2)), np.zeros(5), 2)] == [2, 2, 1]
    assert set(core.array_batches(np.zeros((5, 2)), batch_size=5)[0]) == {"x"}
    with pytest.raises(ValueError, match="differ in length"):
        core.array_batches(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size must be"):
        core.array_batches(np.zeros((5, 2)), np.zeros(5), 0)


def test_progress_stays_off_the_page_and_a_grid_reports_one_summary_line_by_the_same_rule(monkeypatch, capsys):
    stream = io.StringIO()  # not a terminal: what a notebook kernel writes to
    monkeypatch.delenv("STUDYLIB_PROGRESS", raising=False)
    assert list(progress(range(3), desc="work", every=0, stream=stream)) == [0, 1, 2]
    assert stream.getvalue() == ""
    monkeypatch.setenv("STUDYLIB_PROGRESS", "lines")  # log files of batch jobs
    assert list(progress(range(3), desc="work", every=0, stream=stream)) == [0, 1, 2]
    assert stream.getvalue().splitlines()[-1].startswith("work: 3/3, ")
    from studylib.platform.executor import run_grid
    monkeypatch.delenv("STUDYLIB_PROGRESS")  # a notebook: nothing reaches the page
    run_grid(_cached_or_not, [{"i": 0}], desc="demo grid")
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv("STUDYLIB_PROGRESS", "lines")
    assert run_grid(_cached_or_not, [{"i": 0}, {"i": 1}, {"i": 2}], desc="demo grid") == [
        {"from_cache": True}, {"from_cache": False}, {"from_cache": True}]
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert captured.out == "" and len(err) == 1
    assert err[0].startswith("demo grid: 3 runs, ") and err[0].endswith(", 2 from cache")


def _cached_or_not(i):
    return {"from_cache": i != 1}


def test_the_run_times_page_counts_the_runs_each_execution_computed(tmp_path):
    import json
    from studylib.platform import notebooks
    runs = tmp_path / "runs"
    for i, created in enumerate(["2026-01-01T10:00:05", "2026-01-01T10:00:50", "2026-01-01T11:00:00"]):
        (runs / "grid" / f"k{i}").mkdir(parents=True)
        (runs / "grid" / f"k{i}" / "meta.json").write_text(json.dumps({"created": created}))
    executed = tmp_path / "executed"
    executed.mkdir()
    start, end = "2026-01-01T10:00:00", "2026-01-01T10:01:00"  # in the machine's local time, as the cache stamps
    from datetime import datetime
    iso = [datetime.fromisoformat(t).astimezone().isoformat() for t in (start, end)]
    (executed / "01_a.ipynb").write_text(json.dumps({"metadata": {"papermill": {
        "parameters": {"PROFILE": "quick"}, "duration": 60.0, "start_time": iso[0], "end_time": iso[1]}}}))
    (rows,) = notebooks.run_times(executed, runs)
    assert rows == {"notebook": "01_a", "profile": "quick", "seconds": 60.0, "finished": iso[1], "computed": 2}
    assert notebooks.run_time_summary([rows]) == ("This build executed its 1 notebooks (quick profile) in 1.0 minutes; "
                                                  "they computed 2 trained runs and read the others from the run cache.")
