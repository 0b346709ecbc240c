import io

import numpy as np
import pytest
import torch

from studylib import cache, config, data, models, train
from studylib.cli import main
from studylib.progress import progress


def test_cache_list_and_clean_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))
    cache.cached_run("demo", {"x": 1}, lambda p: cache.RunResult([{"epoch": 1}], {"m": 1.0}))
    assert main(["cache", "list"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["cache", "clean", "--name", "demo"]) == 0
    assert "removed 1 runs" in capsys.readouterr().out


def test_assets_list_and_missing_asset_exit_code(tmp_path, monkeypatch, capsys):
    assert main(["assets", "list"]) == 0
    assert "fashion_mnist" in capsys.readouterr().out
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))
    assert main(["assets", "list"]) == 0
    assert "missing" in capsys.readouterr().out


def test_plain_text_progress_off_a_terminal():
    stream = io.StringIO()
    assert list(progress(range(3), desc="work", every=0, stream=stream)) == [0, 1, 2]
    assert stream.getvalue().splitlines()[-1].startswith("work: 3/3 done")


def test_device_choice():
    assert config.device("cpu").type == "cpu"
    assert config.device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            config.device("cuda")


def test_training_is_reproducible_and_learns():
    ds = data.load("uci_digits", seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = models.mlp(64, [32], 10)
        runs.append(train.train_classifier(model, ds, epochs=3, seed=0, device="cpu"))
    assert runs[0] == runs[1]
    assert runs[0][-1]["test_acc"] > 0.5 and runs[0][-1]["train_loss"] < runs[0][0]["train_loss"]


def test_evaluate_matches_a_direct_computation():
    ds = data.load("mnist1d", n_train=50, n_test=30)
    torch.manual_seed(0)
    model = models.mlp(40, [16], 10)
    got = train.evaluate(model, ds.x_test, ds.y_test, "cpu", batch_size=7)
    with torch.no_grad():
        logits = model(torch.as_tensor(ds.x_test))
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(ds.y_test)).item()
    assert got["loss"] == pytest.approx(loss, rel=1e-5)
    assert got["acc"] == pytest.approx(float(np.mean(logits.argmax(1).numpy() == ds.y_test)))


def test_progress_of_short_work_stays_silent():
    stream = io.StringIO()
    assert list(progress(range(3), desc="work", every=60, stream=stream)) == [0, 1, 2]
    assert stream.getvalue() == ""
