import math

import numpy as np
import pytest
import torch
from torch import nn

from studylib import training
from studylib.metrics import mdl

SPEC = mdl.TrainSpec(max_epochs=30, patience=3, lr=0.05, batch_size=64)
K = 4


def linear():
    return nn.Linear(10, K)


def gaussian_inputs(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 10)).astype(np.float32)


def rule_labels(x):
    w = np.random.default_rng(99).standard_normal((10, K))
    return (x @ w).argmax(1)


class Constant(nn.Module):
    """Uniform predictions whatever the training: a parameter that does not reach the logits."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(len(x), K) + 0 * self.unused


def test_labels_independent_of_inputs_cost_about_k_log2_k_and_carry_no_information():
    x = gaussian_inputs(1200)
    y = np.random.default_rng(1).integers(0, K, 1200)
    code = mdl.prequential_codelength(linear, x, y, K, spec=SPEC)
    assert 0.97 < code.total_bits / code.uniform_bits < 1.1
    info = mdl.model_information(linear, x[:600], y[:600], x[600:], y[600:], K, spec=SPEC)
    assert abs(info["info_bits"]) < 0.05 * info["uniform_bits"]


def test_labels_from_a_simple_rule_compress_well_and_carry_information():
    x = gaussian_inputs(1200)
    y = rule_labels(x)
    code = mdl.prequential_codelength(linear, x, y, K, spec=SPEC)
    assert code.compression > 2.5
    info = mdl.model_information(linear, x[:600], y[:600], x[600:], y[600:], K, spec=SPEC)
    assert info["info_bits"] > 0.15 * info["uniform_bits"]  # vs < 0.05 for random labels
    assert info["codelength_init"] == pytest.approx(info["codelength_final"] + info["info_bits"])


def slow_reference(x, y, blocks, seed):
    """Block by block: a fresh seeded model trained on everything before the block, then -log2 p per example."""
    ends = [max(1, math.ceil(f * len(y))) for f in blocks]
    total = ends[0] * math.log2(K)
    for i in range(1, len(ends)):
        torch.manual_seed(seed + i)
        model = mdl.fit(linear(), x[:ends[i - 1]], y[:ends[i - 1]], SPEC, seed + i)
        with torch.no_grad():
            probs = torch.softmax(model(torch.as_tensor(x[ends[i - 1]:ends[i]])).double(), -1)
        total += sum(-math.log2(float(probs[j, c])) for j, c in enumerate(y[ends[i - 1]:ends[i]]))
    return total


def test_agrees_with_a_slow_reference_on_a_tiny_case():
    x = gaussian_inputs(80, seed=3)
    y = rule_labels(x)
    blocks = (0.1, 0.25, 0.5, 1.0)
    code = mdl.prequential_codelength(linear, x, y, K, blocks=blocks, spec=SPEC, seed=7)
    assert code.block_ends == [8, 20, 40, 80]
    assert code.total_bits == pytest.approx(slow_reference(x, y, blocks, seed=7), rel=1e-9)


def test_units_are_bits():
    x = gaussian_inputs(300)
    y = rule_labels(x)
    code = mdl.prequential_codelength(Constant, x, y, K, spec=SPEC)
    assert code.block_bits[0] == pytest.approx(code.block_ends[0] * 2.0)  # log2 4 = 2 bits a label
    assert code.total_bits == pytest.approx(300 * 2.0)
    assert code.compression == pytest.approx(1.0)


def test_same_seed_same_numbers_and_warm_start_differs():
    x = gaussian_inputs(400)
    y = rule_labels(x)
    a = mdl.prequential_codelength(linear, x, y, K, spec=SPEC, seed=2)
    b = mdl.prequential_codelength(linear, x, y, K, spec=SPEC, seed=2)
    warm = mdl.prequential_codelength(linear, x, y, K, spec=SPEC, seed=2, warm_start=True)
    assert a.block_bits == b.block_bits
    assert warm.total_bits != a.total_bits and 0.5 < warm.total_bits / a.total_bits < 2


def test_synced_distillation_with_alpha_zero_is_plain_coding_and_otherwise_changes_the_code():
    x = gaussian_inputs(300)
    y = rule_labels(x)
    teacher = lambda: nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, K))
    alone = mdl.prequential_codelength(linear, x, y, K, spec=SPEC)
    ignored = mdl.prequential_codelength(linear, x, y, K, spec=SPEC, distill=mdl.Distillation(teacher, alpha=0.0))
    taught = mdl.prequential_codelength(linear, x, y, K, spec=SPEC, distill=mdl.Distillation(teacher, alpha=0.5))
    assert ignored.block_bits == pytest.approx(alone.block_bits, rel=1e-12)
    assert taught.total_bits != alone.total_bits and taught.total_bits < taught.uniform_bits


def test_confidence_is_the_top1_top2_margin():
    assert training.confidence(torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])) == pytest.approx((0.5 + 0.0) / 2)


def test_bad_parameters_fail_naming_them():
    x, y = gaussian_inputs(50), np.zeros(50, dtype=np.int64)
    with pytest.raises(ValueError, match="blocks must be increasing"):
        mdl.prequential_codelength(linear, x, y, K, blocks=(0.5, 0.2, 1.0))
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        mdl.prequential_codelength(linear, x, y, 1)
    with pytest.raises(ValueError, match="same length"):
        mdl.prequential_codelength(linear, x, y[:10], K)
    with pytest.raises(ValueError, match="lr"):
        mdl.TrainSpec(lr=0)
    with pytest.raises(ValueError, match="labels must lie"):
        mdl.prequential_codelength(linear, x, y + 7, K)
    assert mdl.block_ends(50) == [1, 2, 4, 7, 13, 25, 50]  # duplicated cut points of a small set are merged


def test_soft_targets_need_a_distillation_setting():
    x = gaussian_inputs(20)
    with pytest.raises(ValueError, match="soft_targets and distill go together"):
        mdl.fit(linear(), x, rule_labels(x), SPEC, 0, soft_targets=torch.zeros(20, K))
