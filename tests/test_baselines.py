"""Jiang et al.'s baseline measures against slow obvious implementations and worked cases."""
import itertools
import math

import numpy as np
import pytest
import torch

from studylib import nets
from studylib.metrics import baselines as b


def small_mlp(seed=0, widths=(3, 2), in_dim=4, classes=3):
    torch.manual_seed(seed)
    return nets.mlp(in_dim, list(widths), classes)


def test_log_spectral_product_is_the_sum_of_log_squared_singular_values():
    model = small_mlp()
    expected = sum(2 * math.log(np.linalg.svd(m.weight.detach().numpy().astype(float), compute_uv=False)[0])
                   for m in model if isinstance(m, torch.nn.Linear))
    assert b.log_spectral_product(model) == pytest.approx(expected, rel=1e-10)


def test_path_norm_enumerates_every_input_to_output_path():
    """The l2 path norm of a ReLU net: the sum over every path from an input (or a bias) to an output of the product
    of its squared weights, enumerated one path at a time."""
    model = small_mlp(1)
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    W = [m.weight.detach().double().numpy() ** 2 for m in layers]
    B = [m.bias.detach().double().numpy() ** 2 for m in layers]
    total = 0.0
    for units in itertools.product(range(W[0].shape[1]), *[range(w.shape[0]) for w in W]):  # input -> ... -> output
        total += math.prod(W[k][units[k + 1], units[k]] for k in range(len(W)))
    for l in range(len(layers)):  # paths that start at a bias of layer l
        for units in itertools.product(*[range(w.shape[0]) for w in W[l:]]):
            value = B[l][units[0]]
            for k in range(1, len(units)):
                value *= W[l + k][units[k], units[k - 1]]
            total += value
    assert b.log_path_norm(model, (4,)) == pytest.approx(math.log(total), rel=1e-10)
    assert np.allclose(layers[0].weight.detach().double().numpy() ** 2, W[0])  # the model itself is untouched


def test_margins_and_the_inverse_margin_on_a_worked_case():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.5], [1.0, 0.0, 4.0], [2.0, 2.5, 0.0]])
    y = torch.tensor([0, 1, 2, 0])
    assert b.margins(logits, y).tolist() == [2.0, 0.5, 3.0, -0.5]
    gamma = float(np.quantile([2.0, 0.5, 3.0, -0.5], 0.1))  # -0.05: misfits set the 10th percentile
    assert gamma < 0 and b.inverse_margin(logits, y) == math.inf
    y_fit = torch.tensor([0, 1, 2, 1])  # every example right: margins 2, 0.5, 3, 0.5
    assert b.inverse_margin(logits, y_fit) == pytest.approx(1 / float(np.quantile([2, 0.5, 3, 0.5], 0.1)) ** 2)


def test_pacbayes_flatness_finds_the_noise_that_costs_the_target_accuracy():
    torch.manual_seed(0)
    x = torch.randn(400, 5)
    y = (x[:, 0] > 0).long()
    model = nets.mlp(5, [16], 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    sigma = b.pacbayes_flatness(model, x, y, samples=20, seed=0) ** -0.5
    with torch.no_grad():
        base = float((model(x).argmax(1) == y).double().mean())
    drop = base - b._noisy_accuracy(model, x, y, sigma, 200, torch.Generator().manual_seed(1))
    assert 0.05 < drop < 0.15                       # an independent estimate of the drop at the sigma found
    sharper = b.pacbayes_flatness(model, x, y, target=0.3, samples=20, seed=0) ** -0.5
    assert sharper > sigma                          # a larger allowed drop needs more noise
    with pytest.raises(ValueError, match="target accepts a float in"):
        b.pacbayes_flatness(model, x, y, target=1.5)
