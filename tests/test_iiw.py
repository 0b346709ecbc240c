import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from studylib import iiw


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


def slow_reference(model, theta0, batches, estimator):
    """Per-example gradients, one example at a time, then the quadratic forms by brute force."""
    groups = iiw.weight_groups(model)
    params = dict(model.named_parameters())
    totals = {g: 0.0 for g in groups}
    total = 0.0
    for batch in batches:
        for i in range(len(batch["labels"])):
            one = {k: v[i:i + 1] for k, v in batch.items()}
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(**{k: v for k, v in one.items() if k != "labels"}).logits,
                                              one["labels"]).backward()
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
    assert iiw.group_of("bert.encoder.layer.11.output.dense.weight") == "layer_11"
    assert iiw.group_of("bert.pooler.dense.weight") == "fc" and iiw.group_of("classifier.weight") == "fc"
    with pytest.raises(ValueError, match="estimator must be one of"):
        iiw.iiw(model, theta0, batches, "exact")
