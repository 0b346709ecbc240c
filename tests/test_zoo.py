"""The head-to-head chapter's zoo: one model's run at a tiny size, the grid, and the zoo on a Dask LocalCluster at the
quick profile's size, read back from the cache by a second build."""
import math

import numpy as np
import pandas as pd
import pytest

from studylib import nets
from studylib.platform.profiles import NOTEBOOKS
from studylib.runs import zoo
from studylib.studies import head_to_head as h2h

TINY = dict(depth=1, width=16, lr=0.1, batch_size=16, weight_decay=0.0, label_noise=0.0, seed=0, data_seed=0, n_train=60,
            n_test=60, k=30, pool=4, target_loss=0.05, max_epochs=400, code_min_steps=10, code_max_steps=20,
            code_eval_every=10, code_patience=1, flatness_samples=2, device="cpu")


def test_one_zoo_model_trains_to_its_target_and_gets_every_measure():
    out = zoo.zoo_run(zoo.ZooParams(**TINY)).metrics
    assert out["converged"] and out["stop_reason"] == "interpolated" and out["train_acc"] >= 0.95
    assert out["gap"] == pytest.approx(out["train_acc"] - out["test_acc"])
    assert out["num_parameters"] == nets.num_parameters(nets.mlp(49, [16], 10)) == 49 * 16 + 16 + 16 * 10 + 10
    assert 0 < out["distance_init_final"] <= out["distance_init"]
    assert out["iiw_fisher"] > 0 and out["pacbayes_flatness"] > 0
    for column in h2h.MEASURES:
        assert math.isfinite(out[column]), column
    assert zoo.zoo_run(zoo.ZooParams(**TINY)).metrics == out  # same parameters, same numbers


def test_a_model_that_cannot_reach_the_target_is_marked_not_converged():
    out = zoo.zoo_run(zoo.ZooParams(**{**TINY, "max_epochs": 2})).metrics
    assert not out["converged"] and out["stop_reason"] == "epoch cap" and out["epochs"] == 2


def test_the_grid_is_the_full_factorial_and_names_a_missing_axis():
    axes = {a: [1, 2] for a in zoo.AXES}
    tasks = h2h.zoo_tasks(axes, [0, 1, 2], {"n_train": 10})
    assert len(tasks) == 2 ** 6 * 3 and len({tuple(sorted(t.items())) for t in tasks}) == len(tasks)
    assert tasks[0]["width"] * tasks[0]["depth"] == 4  # the largest models first
    with pytest.raises(ValueError, match="label_noise"):
        h2h.zoo_tasks({a: [1] for a in zoo.AXES if a != "label_noise"}, [0], {})


def _quick_zoo():
    q = NOTEBOOKS["07_head_to_head"].profiles["quick"]
    axes = {"depth": q["DEPTHS"], "width": q["WIDTHS"], "lr": q["LRS"], "batch_size": q["BATCH_SIZES"],
            "weight_decay": q["WEIGHT_DECAYS"], "label_noise": q["LABEL_NOISES"]}
    settings = dict(data_seed=q["SEED"], n_train=q["N_TRAIN"], n_test=q["N_TEST"], k=q["K_CODE"], pool=q["POOL"],
                    target_loss=q["TARGET_LOSS"], max_epochs=q["MAX_EPOCHS"], code_min_steps=q["CODE_MIN_STEPS"],
                    code_max_steps=q["CODE_MAX_STEPS"], code_eval_every=q["CODE_EVAL_EVERY"],
                    code_patience=q["CODE_PATIENCE"], flatness_samples=q["FLATNESS_SAMPLES"], device="cpu")
    return axes, list(range(q["SEED"], q["SEED"] + q["REPEATS"])), settings


@pytest.mark.slow
def test_the_quick_zoo_on_a_dask_local_cluster_is_read_back_by_a_second_build(tmp_path, monkeypatch):
    from distributed import LocalCluster
    from studylib.data import assets
    (tmp_path / "assets").symlink_to(assets.path("fashion_mnist").parent)  # the installed data, a fresh run cache
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))
    axes, seeds, settings = _quick_zoo()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        first = h2h.run_zoo(axes, seeds, settings, scheduler=cluster.scheduler_address)
    assert len(first) == 2 ** 6 * len(seeds) and not first.from_cache.any()
    second = h2h.run_zoo(axes, seeds, settings)
    assert second.from_cache.all()
    columns = [c for c in first.columns if c != "from_cache"]
    pd.testing.assert_frame_equal(first[columns], second[columns])
    scores = h2h.scores(second, n_perm=50, cmi_perm=10)
    assert list(scores["rank"]) == list(range(1, len(h2h.MEASURES) + 1))
    assert np.all(scores.Psi_low <= scores.Psi_high)
