import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from studylib import core
from studylib.metrics import iiw


def tiny_model_and_data(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=24, max_position_embeddings=16, num_labels=3, attn_implementation="eager")
    model = BertForSequenceClassification(config).eval()
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    batches = []
    for _ in range(3):
        ids = torch.randint(1, 40, (4, 7))
        mask = torch.ones_like(ids)
        mask[0, 5:] = 0  # one padded example
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (4,))})
    return model, theta0, batches


def tiny_cnn_and_data(seed=0):
    """A small CNN (strided and padded convolutions, a grouped one, a linear head) moved away from theta0."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, groups=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3)).eval()
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    batches = [{"x": torch.randn(5, 2, 7, 7), "labels": torch.randint(0, 3, (5,))} for _ in range(2)]
    return model, theta0, batches


def slow_reference(model, theta0, batches, estimator, groups=iiw.bert_groups):
    """Per-example gradients, one example at a time, then the quadratic forms by brute force."""
    groups = iiw.weight_groups(model, groups)
    params = dict(model.named_parameters())
    totals = {g: 0.0 for g in groups}
    total = 0.0
    for batch in batches:
        for i in range(len(batch["labels"])):
            one = {k: v[i:i + 1] for k, v in batch.items()}
            model.zero_grad()
            torch.nn.functional.cross_entropy(core.logits(model, one), one["labels"]).backward()
            whole = 0.0
            for g, names in groups.items():
                if estimator == "fisher":
                    dot = sum(float((params[n].grad.double() * (params[n].detach() - theta0[n]).double()).sum())
                              for n in names)
                    totals[g] += dot ** 2
                    whole += dot
                else:
                    totals[g] += sum(float(((params[n].grad.double() * (params[n].detach() - theta0[n]).double()) ** 2).sum())
                                     for n in names)
            total += whole ** 2
    return {**totals, "total": total if estimator == "fisher" else sum(totals.values())}


@pytest.mark.parametrize("estimator", ["fisher", "fisher_diag"])
def test_batched_estimators_equal_the_per_example_loop(estimator):
    model, theta0, batches = tiny_model_and_data()
    fast = iiw.iiw(model, theta0, batches, estimator)
    slow = slow_reference(model, theta0, batches, estimator)
    assert set(fast) == {"embedding", "layer_0", "layer_1", "fc", "total"}
    for g in slow:
        assert fast[g] == pytest.approx(slow[g], rel=1e-4), g


@pytest.mark.parametrize("estimator", ["fisher", "fisher_diag"])
def test_any_model_a_cnn_with_its_own_grouping(estimator):
    model, theta0, batches = tiny_cnn_and_data()
    fast = iiw.iiw(model, theta0, batches, estimator, groups=iiw.module_groups)
    slow = slow_reference(model, theta0, batches, estimator, groups=iiw.module_groups)
    assert set(fast) == {"0", "2", "5", "total"}  # the two convolutions and the head
    for g in slow:
        assert fast[g] == pytest.approx(slow[g], rel=1e-6), g
    pib = iiw.iiw(model, theta0, batches, "pib", groups=lambda name: "all")
    assert set(pib) == {"all", "total"} and pib["all"] == pib["total"] > 0


def test_pib_is_the_squared_dot_with_the_mean_gradient():
    model, theta0, batches = tiny_model_and_data()
    got = iiw.iiw(model, theta0, batches, "pib", n_batches=5, seed=3)
    picks = torch.randint(len(batches), (5,), generator=torch.Generator().manual_seed(3)).tolist()
    params = dict(model.named_parameters())
    expected = {}
    for g, names in iiw.weight_groups(model).items():
        value = 0.0
        for n in names:
            mean_grad = 0
            for k in picks:
                model.zero_grad()
                b = batches[k]
                torch.nn.functional.cross_entropy(model(**{k2: v for k2, v in b.items() if k2 != "labels"}).logits,
                                                  b["labels"]).backward()
                mean_grad = mean_grad + params[n].grad / len(picks)
            value += float(((params[n].detach() - theta0[n]) * mean_grad).sum()) ** 2
        expected[g] = value
    for g, v in expected.items():
        assert got[g] == pytest.approx(v, rel=1e-5)


def test_zero_delta_gives_zero_information_and_groups_are_named():
    model, _, batches = tiny_model_and_data()
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    for est in iiw.ESTIMATORS:
        assert iiw.iiw(model, theta0, batches, est)["total"] == 0.0
    assert iiw.bert_groups("bert.encoder.layer.11.output.dense.weight") == "layer_11"
    assert iiw.bert_groups("bert.pooler.dense.weight") == "fc" and iiw.bert_groups("classifier.weight") == "fc"
    with pytest.raises(ValueError, match="estimator must be one of"):
        iiw.iiw(model, theta0, batches, "exact")
    with pytest.raises(ValueError, match="theta0 lacks weight tensors"):
        iiw.iiw(model, {}, batches)
