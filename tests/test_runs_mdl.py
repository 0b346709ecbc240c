import numpy as np
import pandas as pd
import pytest

from studylib import nets
from studylib.runs import mdl as mdl_study
from studylib.studies import model_information as mi


def test_similarities_follow_equations_4_and_5():
    L = {("a", "a"): 100.0, ("b", "b"): 60.0, ("a", "b"): 30.0, ("b", "a"): 45.0}
    pairs = pd.DataFrame([{"source": s, "target": t, "L": v} for (s, t), v in L.items()])
    out = mi.similarities(pairs).set_index(["source", "target"])
    assert out.S[("a", "b")] == pytest.approx(30 / (100 + 60 - 30))
    assert out.S_uni[("a", "b")] == pytest.approx(30 / 60) and out.S_uni[("b", "a")] == pytest.approx(45 / 100)
    assert out.S[("a", "a")] == pytest.approx(1.0)  # a domain is fully similar to itself


def test_resnet_components_cover_every_parameter_once_by_block():
    model = nets.small_resnet(1, 10, widths=(4, 8, 16))
    comps = mdl_study.resnet_components(model)
    blocks = [n for names in comps["block"].values() for n in names]
    assert sorted(blocks) == sorted(n for n, _ in model.named_parameters())
    assert list(comps["block"]) == ["stem", "block0", "block1", "block2", "fc"]
    assert len(comps["kind"]["conv1x1 (shortcut)"]) == 2  # the two stride-2 stages have a projection shortcut
    kinds = [n for names in comps["kind"].values() for n in names]
    assert len(kinds) == len(set(kinds))


def test_task_split_sizes_classes_and_noise():
    (train, code, test), K = mdl_study.task_split("fashion_mnist", 50, 30, 20, seed=0, classes=3)
    assert K == 3 and [len(p[1]) for p in (train, code, test)] == [50, 30, 20]
    assert all(p[1].max() < 3 for p in (train, code, test))
    (noisy, _, _), _ = mdl_study.task_split("mnist", 200, 10, 10, seed=0, noise="massart", level=0.5)
    (clean, _, _), _ = mdl_study.task_split("mnist", 200, 10, 10, seed=0)
    assert np.array_equal(noisy[0], clean[0]) and 0.3 < (noisy[1] != clean[1]).mean() < 0.6
    with pytest.raises(ValueError, match="examples in a split"):
        mdl_study.task_split("uci_digits", 1500, 100, 10, seed=0)
    with pytest.raises(ValueError, match="task must be one of"):
        mdl_study.task_split("svhn", 10, 10, 10, seed=0)


@pytest.mark.parametrize("kwargs, message", [({"noise": "blur", "level": 0.1}, "noise must be one of"),
                                             ({"level": 0.1}, "needs a noise kind"),
                                             ({"classes": 1}, "classes must be an int in")])
def test_task_split_rejects_bad_noise_and_classes_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mdl_study.task_split("mnist", 20, 10, 10, seed=0, **kwargs)


def test_mean_over_seeds_keeps_one_row_per_setting_with_the_spread():
    frame = pd.DataFrame({"sweep": ["t", "t", "a", "a"], "teacher_width": [np.nan, np.nan, 8.0, 8.0],
                          "I": [10.0, 14.0, 3.0, 5.0], "acc": [0.5, 0.7, 0.9, 0.9], "seed": [0, 1, 0, 1],
                          "device": ["cpu"] * 4})
    out = mi.mean_over_seeds(frame, ["sweep", "teacher_width"], "I")
    assert list(out.sweep) == ["t", "a"] and np.isnan(out.teacher_width[0])  # a missing key is a key too
    assert list(out.I) == [12.0, 4.0] and list(out.acc) == pytest.approx([0.6, 0.9])
    assert list(out.seeds) == [2, 2] and list(out.I_sd) == pytest.approx([np.std([10, 14], ddof=1), np.std([3, 5], ddof=1)])
    assert "seed" not in out and "device" not in out
    assert mi.seeds({"seed": 5}, 3) == [5, 6, 7]
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        mi.seeds({"seed": 0}, 0)
