import numpy as np
import pytest
import torch

from studylib import core, nets
from studylib.runs import finetune


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every run's start (priors and epoch 0) is cached: here in a folder of the test's own."""
    monkeypatch.setattr("studylib.platform.config.runs_dir", lambda: tmp_path / "runs")


def run(method, epochs=2, references=("init",), task="reuters_pairs", lr=1e-4, **extra):
    return finetune.finetune_run(finetune.FinetuneParams(
        model="minilm_l3", pretrained=True, task=task, n_train=40, n_test=20, n_iiw=8, max_len=16,
        epochs=epochs, lr=lr, batch_size=8, method=method, estimators=["fisher", "pib"],
        references=list(references), pib_seeds=2, seed=0, device="cpu", keep_weights=False, norm_matched=False,
        **extra))


def key(est, group, ref="init"):
    return finetune.iiw_key(est, ref, group)


def test_lpft_trains_only_the_head_in_its_first_epoch():
    result = run("lpft")
    first, second = result.records[1], result.records[2]
    assert [r["epoch"] for r in result.records] == [0, 1, 2]
    assert result.records[0][key("fisher", "total")] == 0.0 and result.records[0][key("pib", "total")] == 0.0
    assert first[key("fisher", "classifier")] > 0 and first[key("fisher", "embedding")] == 0
    assert all(first[key("fisher", f"layer_{i}")] == 0 == first[key("pib", f"layer_{i}")] for i in range(3))
    assert second[key("fisher", "layer_2")] > 0
    assert 0 <= result.metrics["final_test_acc"] <= 1
    # the pib value is the mean of its gradient-sampling seeds' values at the last epoch, one seed in between
    last = result.records[-1]
    assert last[key("pib", "total")] == pytest.approx((last[key("pib", "total_s0")] + last[key("pib", "total_s1")]) / 2)
    assert key("pib", "total_s1") not in first and first[key("pib", "total")] == first[key("pib", "total_s0")]
    # the factors of the pib estimate: ||delta|| > 0 after training, |cos| <= 1
    geom = {q: last[finetune.geometry_key("pib", "init", q)] for q in ("delta_norm", "grad_norm", "cos")}
    assert geom["delta_norm"] > 0 and geom["grad_norm"] > 0 and -1 <= geom["cos"] <= 1


def test_full_fine_tuning_moves_every_layer_and_is_reproducible():
    a, b = run("ft", epochs=1), run("ft", epochs=1)
    assert a.records == b.records
    assert all(a.records[1][key("fisher", f"layer_{i}")] > 0 for i in range(3))


def test_runs_that_differ_only_in_training_share_their_start(tmp_path, monkeypatch):
    ft = run("ft", epochs=1, references=finetune.REFERENCES)
    lpft = run("lpft", epochs=1, references=finetune.REFERENCES, lr=3e-4)
    assert len(list((tmp_path / "runs" / "finetune_start").iterdir())) == 1
    assert ft.records[0] == lpft.records[0] and ft.records[1] != lpft.records[1]
    # a start read back from the cache gives the run computed with a fresh start
    monkeypatch.setattr("studylib.platform.config.runs_dir", lambda: tmp_path / "empty")
    assert run("lpft", epochs=1, references=finetune.REFERENCES, lr=3e-4).records == lpft.records


def test_prior_references_are_not_zero_at_the_start_and_leave_the_training_unchanged():
    plain = run("ft", epochs=1)
    priors = run("ft", epochs=1, references=finetune.REFERENCES)
    start = priors.records[0]
    assert start[key("pib", "total", "prior_same")] > 0 and start[key("fisher", "total", "prior_fresh")] > 0
    assert start[key("fisher", "total", "prior_same")] != start[key("fisher", "total", "prior_fresh")]
    # the same trained model whichever references are measured
    for k in ("test_acc", "train_loss", key("fisher", "total"), key("pib", "total")):
        assert plain.records[-1][k] == pytest.approx(priors.records[-1][k], rel=1e-9), k
    with pytest.raises(ValueError, match="references must be among"):
        run("ft", epochs=1, references=("zero",))


def test_dynamic_padding_leaves_the_logits_unchanged():
    model = finetune.build_model("minilm_l3", True, 2, 0)
    enc = finetune.encode(nets.tokenizer(), np.array(["a short one", "a somewhat longer text here"]), 32)
    y = np.array([0, 1])
    (full,), (trimmed,) = finetune.batches(enc, y, 2, trim=False), finetune.batches(enc, y, 2)
    assert trimmed["input_ids"].shape[1] < full["input_ids"].shape[1] == 32
    with torch.no_grad():
        assert torch.allclose(core.logits(model, full), core.logits(model, trimmed), atol=1e-5)


def test_bad_model_names():
    with pytest.raises(ValueError, match="model must be"):
        finetune.build_model("bert-base", True, 2, 0)
    twin = finetune.build_model("minilm_l3", False, 2, 0)
    pre = finetune.build_model("minilm_l3", True, 2, 0)
    name = "encoder.encoder.layer.0.attention.self.query.weight"
    assert not (twin.state_dict()[name] == pre.state_dict()[name]).all()


def test_norm_matched_twin_has_random_directions_at_the_pretrained_norms():
    twin = dict(finetune.build_model("minilm_l3", False, 2, 0).named_parameters())
    pre = dict(finetune.build_model("minilm_l3", True, 2, 0).named_parameters())
    matched = dict(finetune.build_model("minilm_l3", False, 2, 0, norm_matched=True).named_parameters())
    name = "encoder.encoder.layer.0.attention.self.query.weight"
    assert float(matched[name].norm()) == pytest.approx(float(pre[name].norm()), rel=1e-5)
    assert torch.nn.functional.cosine_similarity(matched[name].flatten(), twin[name].flatten(), dim=0) > 0.9999
    assert matched[name].norm() > 2 * twin[name].norm()  # the pre-trained weights are larger than the initialiser's
    bias = "encoder.encoder.layer.0.attention.self.query.bias"
    assert float(matched[bias].abs().max()) == 0.0  # biases start at zero and stay there
    with pytest.raises(ValueError, match="random twins only"):
        finetune.build_model("minilm_l3", True, 2, 0, norm_matched=True)
