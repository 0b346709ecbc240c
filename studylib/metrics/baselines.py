"""Jiang et al. (2020)'s baseline generalization measures, for the head-to-head chapter.

Used by the chapter "Head to head" (through :mod:`studylib.runs.zoo`). Definitions follow Jiang et al. 2020
("Fantastic generalization measures and where to find them", appendix C), each oriented as a complexity (a larger
value should go with a larger generalization gap); W_l are the weight matrices of the model's Linear layers:

- ``log_spectral_product``: ``sum_l log ||W_l||_2^2``, the log of the product of squared spectral norms;
- ``log_path_norm``: the log of the l2 path norm, ``sum`` of the outputs of the network whose every parameter
  (biases included) is squared, fed an input of ones (Neyshabur et al. 2015);
- ``inverse_margin``: ``1 / gamma^2`` with ``gamma`` the 10th percentile over the training set of the output
  margin (the correct class's logit minus the largest other logit);
- ``pacbayes_flatness``: ``1 / sigma^2`` with ``sigma`` the largest standard deviation of isotropic Gaussian noise
  added to every parameter at which the training accuracy drops by ``target`` (0.1) on average over
  ``samples`` draws, found by bisection.

The parameter count is :func:`studylib.nets.num_parameters`, and the distance from initialisation is the
utilization chapter's :func:`studylib.metrics.utilization.layer_utilization`.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from .utilization import linear_layers

#: Jiang et al.'s margin percentile: the 10th, so that a few misfit examples do not set the margin
MARGIN_QUANTILE = 0.1


def _weights(model: nn.Module) -> list[torch.Tensor]:
    modules = dict(model.named_modules())
    return [modules[name].weight.detach() for name in linear_layers(model)]


def log_spectral_product(model: nn.Module) -> float:
    """``sum_l log ||W_l||_2^2`` over the Linear layers (module docstring)."""
    return float(sum(2 * math.log(float(torch.linalg.matrix_norm(w.double(), ord=2))) for w in _weights(model)))


@torch.no_grad()
def log_path_norm(model: nn.Module, in_shape: tuple[int, ...]) -> float:
    """The log of the l2 path norm of a ReLU network (module docstring); ``in_shape``: one input's shape.
    Runs a squared copy of the model on the CPU in eval mode (no dropout); the model itself is unchanged."""
    squared = copy.deepcopy(model).cpu().double().eval()
    for p in squared.parameters():
        p.pow_(2)
    return float(torch.log(squared(torch.ones((1, *in_shape), dtype=torch.float64)).sum()))


def margins(logits: torch.Tensor, y) -> torch.Tensor:
    """Per example: the correct class's logit minus the largest other logit."""
    y = torch.as_tensor(y)
    correct = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], -math.inf)
    return correct - others.max(1).values


def inverse_margin(logits: torch.Tensor, y) -> float:
    """``1 / gamma^2``, ``gamma`` the :data:`MARGIN_QUANTILE` quantile of the training margins; infinite when that
    margin is not positive (the model misfits more than a tenth of its training set)."""
    gamma = float(torch.quantile(margins(logits.double(), y), MARGIN_QUANTILE))
    return 1.0 / gamma ** 2 if gamma > 0 else math.inf


@torch.no_grad()
def _noisy_accuracy(model: nn.Module, x, y, sigma: float, samples: int, gen: torch.Generator) -> float:
    base = {k: v.clone() for k, v in model.state_dict().items()}
    accs = []
    try:
        for _ in range(samples):
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * sigma)
            accs.append(float((model(x).argmax(1) == y).double().mean()))
            model.load_state_dict(base)
    finally:
        model.load_state_dict(base)
    return float(np.mean(accs))


def pacbayes_flatness(model: nn.Module, x, y, target: float = 0.1, samples: int = 10, steps: int = 15,
                      upper: float = 2.0, tol: float = 0.01, seed: int = 0) -> float:
    """Jiang et al.'s PAC-Bayes flatness ``1 / sigma^2`` (module docstring): bisection on ``sigma`` in
    ``(0, upper]`` for at most ``steps`` steps, until the mean accuracy drop over ``samples`` noise draws (a
    generator seeded by ``seed``) is within ``tol`` of ``target``. ``x``, ``y``: the training set (CPU tensors)."""
    if not 0 < target < 1:
        raise ValueError(f"target={target!r}; target accepts a float in (0, 1), an accuracy drop")
    model = copy.deepcopy(model).cpu().eval()
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    with torch.no_grad():
        base = float((model(x).argmax(1) == y).double().mean())
    gen = torch.Generator().manual_seed(seed)
    low, high = 0.0, upper
    for _ in range(steps):
        sigma = (low + high) / 2
        drop = base - _noisy_accuracy(model, x, y, sigma, samples, gen)
        if abs(drop - target) < tol:
            break
        low, high = (sigma, high) if drop < target else (low, sigma)
    return 1.0 / sigma ** 2
