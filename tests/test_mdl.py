import math

import numpy as np
import pytest
import torch
from torch import nn

from studylib import nets, training
from studylib.metrics import mdl

SPEC = mdl.TrainSpec(min_steps=0, max_steps=300, eval_every=10, patience=3, lr=0.05, batch_size=64)
K = 4


def linear():
    return nn.Linear(10, K)


def gaussian_inputs(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 10)).astype(np.float32)


def rule_labels(x):
    w = np.random.default_rng(99).standard_normal((10, K))
    return (x @ w).argmax(1)


def mlp_teacher():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, K))


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
    logits = mdl.synced_teacher_logits(mlp_teacher, x, y, spec=SPEC)
    alone = mdl.prequential_codelength(linear, x, y, K, spec=SPEC)
    ignored = mdl.prequential_codelength(linear, x, y, K, spec=SPEC, distill=mdl.Distillation(logits, alpha=0.0))
    taught = mdl.prequential_codelength(linear, x, y, K, spec=SPEC, distill=mdl.Distillation(logits, alpha=0.5))
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


def test_model_information_of_an_untrained_model_is_zero():
    x = gaussian_inputs(400)
    y = rule_labels(x)
    start = {k: v.clone() for k, v in mdl.fresh(linear, None, 0).state_dict().items()}
    info = mdl.model_information(linear, x[:200], y[:200], x[200:], y[200:], K, spec=SPEC, init_state=start,
                                 final_state=start)
    assert info["info_bits"] == 0.0 and info["codelength_init"] == info["codelength_final"]


def test_ablating_a_model_equal_to_its_initial_weights_costs_nothing():
    torch.manual_seed(0)
    make = lambda: nets.small_resnet(1, K, widths=(2, 2, 2))
    x = np.random.default_rng(0).standard_normal((60, 1, 8, 8)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, K, 60)
    start = {k: v.clone() for k, v in mdl.fresh(make, None, 0).state_dict().items()}
    components = {"stem": ["0.weight"], "fc": ["8.weight", "8.bias"]}
    out = mdl.information_ablation(make, x, y, K, start, start, components, SPEC, seed=0)
    assert out["I"] == {"stem": 0.0, "fc": 0.0}
    trained = {**start, "8.bias": start["8.bias"] + torch.tensor([3.0, 0, 0, 0])}  # a change in fc only
    moved = mdl.information_ablation(make, x, y, K, start, trained, components, SPEC, seed=0)
    assert moved["I"]["stem"] == 0.0 and moved["I"]["fc"] != 0.0


def test_synced_distillation_on_random_labels_costs_about_the_uniform_code():
    """The teacher sees only the examples already sent: on labels independent of the inputs it has nothing to pass
    on, so any saving below N log2 K would be a leak of the labels still to be coded (a teacher fit to noise can only
    add bits, as fitting noise does to the plain code)."""
    x = gaussian_inputs(600)
    y = np.random.default_rng(1).integers(0, K, 600)
    logits = mdl.synced_teacher_logits(mlp_teacher, x, y, spec=SPEC)
    for alpha in (0.5, 1.0):
        code = mdl.prequential_codelength(linear, x, y, K, spec=SPEC, distill=mdl.Distillation(logits, alpha=alpha))
        assert 0.98 < code.total_bits / code.uniform_bits < 1.3


def test_a_teacher_that_saw_more_data_transfers_more_at_larger_alpha():
    """The positive control of the distillation claims: a teacher also trained on a labelled pool disjoint from the
    coded examples knows labels the student has not been sent, so the student's code shortens as it listens more."""
    x = gaussian_inputs(1400)
    y = rule_labels(x)
    data, pool = (x[:200], y[:200]), (x[200:], y[200:])
    logits = mdl.synced_teacher_logits(mlp_teacher, *data, spec=SPEC, pool=pool)
    assert len(logits) == len(mdl.block_ends(200)) - 1 and logits[0].shape == (1, K)
    codes = [mdl.prequential_codelength(linear, *data, K, spec=SPEC, distill=mdl.Distillation(logits, alpha=a)).total_bits
             for a in (0.0, 0.5, 0.9)]
    assert codes[0] > codes[1] > codes[2]
    with pytest.raises(ValueError, match="teacher_logits has 2 entries"):
        mdl.prequential_codelength(linear, *data, K, spec=SPEC, distill=mdl.Distillation(logits[:2]))


def test_distillation_loss_is_equation_17():
    """Teacher softmax (3/4, 1/4) at T = 4, student uniform, label 0: KL = 3/4 ln(3/2) + 1/4 ln(1/2), CE = ln 2."""
    s, t, y = torch.zeros(1, 2), torch.tensor([[4 * math.log(3), 0.0]]), torch.tensor([0])
    kl, ce = 0.75 * math.log(1.5) + 0.25 * math.log(0.5), math.log(2)
    assert float(mdl.distillation_loss(s, t, y, 0.3, 4.0)) == pytest.approx(0.3 * kl + 0.7 * ce, rel=1e-6)
    assert float(mdl.distillation_loss(s, t, y, 0.3, 4.0, t_squared=True)) == pytest.approx(0.3 * 16 * kl + 0.7 * ce,
                                                                                             rel=1e-6)
    assert float(mdl.distillation_loss(s, t, y, 0.0, 4.0)) == pytest.approx(ce)
    assert float(mdl.distillation_loss(t, t, y, 1.0, 4.0)) == pytest.approx(0.0, abs=1e-7)


def test_early_stopping_keeps_the_starting_weights_when_training_only_hurts():
    x = gaussian_inputs(100)
    y = rule_labels(x)
    model = mdl.fresh(linear, None, 0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    log = {}
    mdl.fit(model, x, y, mdl.TrainSpec(min_steps=20, max_steps=40, eval_every=10, lr=1e4), seed=0, log=log)
    assert log["best_step"] == 0 and all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_the_budget_is_counted_in_steps_even_on_a_handful_of_examples():
    x = gaussian_inputs(4)
    log = {}
    mdl.fit(linear(), x, rule_labels(x), mdl.TrainSpec(min_steps=120, max_steps=500, eval_every=10, patience=1),
            seed=0, log=log)
    assert log["steps"] >= 120 and log["n_val"] == 1  # a held-out example from two examples on
    mdl.fit(linear(), x[:1], rule_labels(x)[:1], SPEC, seed=0, log=log)
    assert log == {"steps": 0, "best_step": 0, "n_val": 0}  # one example: not trained on


@pytest.mark.parametrize("n, kept", [(6, True), (200, False)])
def test_batch_norm_statistics_survive_training_on_a_few_examples(n, kept):
    torch.manual_seed(0)
    model = nets.small_resnet(1, K, widths=(2, 2, 2))
    x = np.random.default_rng(0).standard_normal((n, 1, 8, 8)).astype(np.float32) + 3.0
    y = np.random.default_rng(1).integers(0, K, n)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    log = {}
    mdl.fit(model, x, y, mdl.TrainSpec(min_steps=20, max_steps=20, eval_every=20, lr=0.01), seed=0, log=log,
            start_is_candidate=False)
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    assert log["best_step"] == 20  # the trained weights are returned, with whatever statistics they carry
    assert all(torch.equal(before[k], after[k]) for k in before) == kept

