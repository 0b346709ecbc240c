import pytest

from studylib.runs import finetune


def run(method, epochs=2):
    return finetune.finetune_run(dict(
        model="minilm_l3", pretrained=True, task="topic_pairs", n_train=40, n_test=20, n_iiw=8, max_len=16,
        epochs=epochs, lr=1e-4, batch_size=8, method=method, estimators=["fisher", "pib"], seed=0, device="cpu",
        keep_weights=False))


def test_lpft_trains_only_the_head_in_its_first_epoch():
    result = run("lpft")
    first, second = result.records[1], result.records[2]
    assert [r["epoch"] for r in result.records] == [0, 1, 2]
    assert result.records[0]["iiw_fisher_total"] == 0.0 and result.records[0]["iiw_pib_total"] == 0.0
    assert first["iiw_fisher_fc"] > 0 and first["iiw_fisher_embedding"] == 0
    assert all(first[f"iiw_fisher_layer_{i}"] == 0 == first[f"iiw_pib_layer_{i}"] for i in range(3))
    assert second["iiw_fisher_layer_2"] > 0
    assert 0 <= result.metrics["final_test_acc"] <= 1


def test_full_fine_tuning_moves_every_layer_and_is_reproducible():
    a, b = run("ft", epochs=1), run("ft", epochs=1)
    assert a.records == b.records
    assert all(a.records[1][f"iiw_fisher_layer_{i}"] > 0 for i in range(3))


def test_bad_model_names():
    with pytest.raises(ValueError, match="model must be"):
        finetune.build_model("bert-base", True, 2, 0)
    twin = finetune.build_model("minilm_l3", False, 2, 0)
    pre = finetune.build_model("minilm_l3", True, 2, 0)
    name = "encoder.encoder.layer.0.attention.self.query.weight"
    assert not (twin.state_dict()[name] == pre.state_dict()[name]).all()
