import numpy as np
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
    assert set(fast) == {"embedding", "layer_0", "layer_1", "pooler", "classifier", "total"}
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


def reference_pib(model, examples, w0, draws, batch_size):
    """A line-by-line re-implementation of the PAC-Bayes IB code's ``compute_information_bp_fast`` (Wang et al.
    2022, RyanWangZf/PAC-Bayes-IB ``src/models.py``) with its ``np.random.choice`` draws passed in: the
    gradients of 10 (here ``len(draws)``) mean-loss minibatches summed per flattened parameter, times
    1 / ceil(N / batch_size), then (delta . g)^2 for every parameter whose name contains "weight"."""
    param_keys = [p[0] for p in model.named_parameters()]
    delta_w_dict = dict().fromkeys(param_keys)
    for name, w in model.named_parameters():
        if "weight" in name:
            delta_w_dict[name] = w - w0[name]
    num_all_batch = int(np.ceil(len(examples["labels"]) / batch_size))
    gw_dict = dict().fromkeys(param_keys)
    for sub_idx in draws:
        batch = {k: v[sub_idx] for k, v in examples.items()}
        loss = torch.nn.functional.cross_entropy(core.logits(model, batch), batch["labels"], reduction="mean")
        for i, gw in enumerate(torch.autograd.grad(loss, list(model.parameters()))):
            gw_ = gw.flatten()
            gw_dict[param_keys[i]] = gw_ if gw_dict[param_keys[i]] is None else gw_dict[param_keys[i]] + gw_
    info = {}
    for k in gw_dict:
        if "weight" in k:
            gw_dict[k] = gw_dict[k] * (1 / num_all_batch)
            info[k] = ((delta_w_dict[k].flatten() * gw_dict[k]).sum() ** 2).item()
    return info


@pytest.mark.parametrize("batch_size", [5, 4])
def test_pib_equals_the_reference_code(batch_size):
    """Same draws, same numbers: the sampled and the all-sample gradient, per tensor summed into groups; the
    "weight" tensors include LayerNorm scales and leave out biases."""
    model, theta0, batches = tiny_model_and_data()
    model = model.double()
    theta0 = {k: v.double() for k, v in theta0.items()}
    examples = iiw.stack_batches(batches)
    n = len(examples["labels"])
    for estimator, draws in (("pib", iiw.pib_draws(n, batch_size, 10, seed=7)),
                             ("pib_all", [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)])):
        got = iiw.iiw(model, theta0, batches, estimator, seed=7, batch_size=batch_size)
        ref = reference_pib(model, examples, theta0, draws, batch_size)
        assert any("LayerNorm" in k for k in ref) and not any(k.endswith("bias") for k in ref)
        for g, names in iiw.weight_groups(model, estimator=estimator).items():
            assert set(names) <= set(ref)
            assert got[g] == pytest.approx(sum(ref[k] for k in names), rel=1e-10, abs=1e-300), (estimator, g)
        assert got["total"] == pytest.approx(sum(ref.values()), rel=1e-10)


def test_pib_draws_are_uniform_with_replacement_and_the_all_sample_gradient_is_the_mean():
    draws = np.concatenate(iiw.pib_draws(10, 1000, 10, seed=0))
    assert draws.shape == (10000,) and draws.min() == 0 and draws.max() == 9
    assert abs(np.bincount(draws) / len(draws) - 0.1).max() < 0.01
    # with N divisible by the batch size the all-sample gradient is the full-data mean gradient
    model, theta0, batches = tiny_model_and_data()
    examples = iiw.stack_batches(batches)
    model.zero_grad()
    torch.nn.functional.cross_entropy(core.logits(model, examples), examples["labels"]).backward()
    params = dict(model.named_parameters())
    names = [n for n in params if "weight" in n]
    full = iiw.pib_gradient(model, examples, names, 4, [np.arange(i, i + 4) for i in range(0, 12, 4)])
    model.zero_grad()
    torch.nn.functional.cross_entropy(core.logits(model, examples), examples["labels"]).backward()
    for n in names:
        assert torch.allclose(full[n], params[n].grad, atol=1e-6)


@pytest.mark.parametrize("estimator", ["pib", "fisher"])
def test_several_references_equal_separate_calls(estimator):
    model, theta0, batches = tiny_model_and_data()
    other = {k: v + 0.01 * torch.randn_like(v) for k, v in theta0.items()}
    both = iiw.iiw_references(model, {"a": theta0, "b": other}, batches, estimator, seed=2, batch_size=4)
    assert both["a"] == iiw.iiw(model, theta0, batches, estimator, seed=2, batch_size=4)
    assert both["b"] == iiw.iiw(model, other, batches, estimator, seed=2, batch_size=4) != both["a"]


def test_zero_delta_gives_zero_information_and_groups_are_named():
    model, _, batches = tiny_model_and_data()
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    for est in iiw.ESTIMATORS:
        assert iiw.iiw(model, theta0, batches, est)["total"] == 0.0
    assert iiw.bert_groups("bert.encoder.layer.11.output.dense.weight") == "layer_11"
    assert iiw.bert_groups("bert.pooler.dense.weight") == "pooler"
    assert iiw.bert_groups("classifier.weight") == iiw.bert_groups("encoder.classifier.weight") == "classifier"
    with pytest.raises(ValueError, match="estimator must be one of"):
        iiw.iiw(model, theta0, batches, "exact")
    with pytest.raises(ValueError, match="lacks weight tensors"):
        iiw.iiw(model, {}, batches)


def test_geometry_factors_the_single_tensor_pib_estimate():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2, bias=False)).eval()
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    with torch.no_grad():
        model[0].weight.add_(torch.randn(2, 3))
    batches = [{"x": torch.randn(8, 3), "labels": torch.randint(0, 2, (8,))}]
    out = iiw.iiw_references(model, {"a": theta0}, batches, "pib_all", groups=iiw.module_groups, batch_size=4,
                             geometry=True)["a"]
    delta = model[0].weight.detach() - theta0["0.weight"]
    grad = iiw.pib_gradient(model, iiw.stack_batches(batches), ["0.weight"], 4, [np.arange(4), np.arange(4, 8)])
    assert out["delta_norm"] == pytest.approx(float(delta.norm()), rel=1e-6)
    assert out["grad_norm"] == pytest.approx(float(grad["0.weight"].norm()), rel=1e-6)
    # one tensor: the estimate is (delta . g)^2 = (||delta|| ||g|| cos)^2
    assert out["total"] == pytest.approx((out["delta_norm"] * out["grad_norm"] * out["cos"]) ** 2, rel=1e-9)
    with pytest.raises(ValueError, match="geometry needs a 'pib' estimator"):
        iiw.iiw_references(model, {"a": theta0}, batches, "fisher", groups=iiw.module_groups, geometry=True)
