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


TINY = dict(n_train=40, k=30, n_test=20, seed=0, device="cpu", min_steps=5, max_steps=10, eval_every=5, patience=1)


def test_info_run_is_the_difference_of_its_two_codes():
    out = mdl_study.info_run(mdl_study.InfoParams(**TINY, task="mnist", arch="mlp", width=8)).metrics
    assert out["info_bits"] == pytest.approx(out["codelength_init"] - out["codelength_final"])
    assert out["uniform_bits"] == pytest.approx(30 * np.log2(10)) and 0 <= out["acc"] <= 1
    assert out["n_params"] == nets.num_parameters(nets.mlp(784, [8, 8], 10))


def test_run_parameters_are_typed_a_misspelt_one_fails_and_a_bad_budget_fails_naming_it():
    with pytest.raises(TypeError, match="widht"):
        mdl_study.InfoParams(**TINY, task="mnist", widht=8)
    with pytest.raises(ValueError, match="max_steps"):
        mdl_study.InfoParams(**dict(TINY, max_steps=2), task="mnist")


def test_missing_center_runs_are_cells_of_the_information_grid():
    (train, _, _), _ = mdl_study.task_split("mnist", 20, 10, 10, seed=0, noise="missing_center", level=12)
    assert (train[0][..., 8:20, 8:20] == 0).all()


def test_distillation_run_sweeps_teachers_alphas_and_the_privileged_control():
    p = dict(TINY, task="fashion_mnist", student_width=4, teacher_widths=[8, 16], alpha=0.5, alphas=[0.0, 0.5],
             temperature=4.0, t_squared=False, pool=50)
    p.pop("k")
    frame = pd.DataFrame(mdl_study.distillation_run(mdl_study.DistillationParams(**p)).records)
    assert list(frame.sweep) == ["teacher"] * 3 + ["alpha"] * 2 + ["privileged"] * 2
    alone = frame.student_acc[0]
    zero = frame[frame.alpha == 0]
    assert (zero.I == 0).all() and (zero.student_acc == alone).all()  # alpha 0: the teacher is ignored
    # the same teacher serves both sweeps at the same alpha: the same code and the same student
    shared = frame[(frame.sweep != "privileged") & (frame.teacher_width == 16) & (frame.alpha == 0.5)]
    assert shared.I.nunique() == 1 and len(shared) == 2
    privileged = frame[frame.sweep == "privileged"]
    assert privileged.teacher_acc.nunique() == 1 and np.isfinite(privileged.I).all()


def test_ablation_run_partitions_the_parameters_by_block():
    p = dict(TINY, task="mnist", width=2)
    frame = pd.DataFrame(mdl_study.ablation_run(mdl_study.AblationParams(**p)).records)
    all_params = frame[frame.grouping == "all"].n_params.item()
    assert frame[frame.grouping == "block"].n_params.sum() == all_params
    assert all_params == nets.num_parameters(nets.small_resnet(1, 10, widths=(2, 4, 8)))
    assert np.isfinite(frame.I).all()


def test_domain_run_codes_every_pair_and_has_zero_self_distances():
    p = dict(TINY, arch="mlp", width=8, domains=["mnist", "uci_digits"], n_features=20)
    p.pop("n_test")
    run = mdl_study.domain_run(mdl_study.DomainParams(**p))
    frame = pd.DataFrame(run.records)
    assert len(frame) == 4 and set(run.metrics["from_init"]) == {"mnist", "uci_digits"}
    own = frame[frame.source == frame.target]
    assert (own.d1 == 0).all() and (own.d2 == 0).all()
    with pytest.raises(ValueError, match="n_features accepts at most"):
        mdl_study.domain_run(mdl_study.DomainParams(**dict(p, n_features=1000)))


def test_paper_tables_beside_ours_align_rows_and_name_units():
    runs = pd.DataFrame([{"noise": n, "level": lv, "seed": s, "info_bits": 100.0 + s, "acc": 0.9, "confidence": 0.8}
                         for n in ("missing_pixels", "massart") for lv in (0.0, 0.2) for s in (0, 1)])
    table = mi.noise_beside(runs)
    assert ("accuracy (%)", "ours") in table.columns and table.loc[("missing pixels", 0.0), ("accuracy (%)", "ours")] \
        == "90.0 ± 0.0"
    assert table.loc[("missing pixels", 0.2), ("information (bits)", "paper")] == "2,719"
    assert table.loc[("missing pixels", 0.2), ("information (bits)", "ours")] == "100 ± 1"
    assert table.loc[("missing objects", 0.1), ("information (bits)", "ours")] == ""  # a level we did not run
