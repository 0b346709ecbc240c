"""Layer utilization, layer contribution, generalization and resilience (Wang & Yang, seed 001).

Used by the layer utilization and re-initialisation chapter. The metrics; the chapter's runs are in
:mod:`studylib.runs.utilization`, its grid and claims in :mod:`studylib.studies.utilization`. Definitions,
with W_l the trained and W_l^0 the initial weights of layer l:

- contribution of layer l (Definition 5): metric(model with layer l reset to W_l^0) - metric(model);
- utilization of layer l (Definition 6): the distance ||W_l - W_l^0||. The paper says "l2"; we report
  the Frobenius norm of the matrix difference (``utilization``) and its spectral norm
  (``utilization_spectral``) as a second column; biases are left out of both;
- generalization (Definition 7): ``|J_train - J_test|``, the gap between training and test loss;
- resilience (Definition 8): the loss on the "recovered" set, the training examples whose labels were
  shuffled, scored against their original labels.
"""
from __future__ import annotations

import copy

import pandas as pd
import torch
from torch import nn


def linear_layers(model: nn.Module) -> list[str]:
    """Names of the model's Linear layers, input to output: the layers of Definitions 5 and 6."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def with_layers_reset(model: nn.Module, init_state: dict, layers: list[str]) -> nn.Module:
    """A copy of ``model`` whose named layers (weights and biases) are back at their initial values."""
    clone = copy.deepcopy(model)
    state = clone.state_dict()
    for layer in layers:
        for key in (f"{layer}.weight", f"{layer}.bias"):
            if key in state:
                state[key] = init_state[key].clone()
    clone.load_state_dict(state)
    return clone


def layer_contributions(model: nn.Module, init_state: dict, metric, value: float | None = None) -> list[float]:
    """Definition 5 for every Linear layer, input to output: ``metric(model with layer l reset) - metric(model)``;
    ``metric(model) -> float`` (e.g. a loss on the test set); ``value``: ``metric(model)`` when already known."""
    base = metric(model) if value is None else value
    return [float(metric(with_layers_reset(model, init_state, [layer])) - base) for layer in linear_layers(model)]


def layer_utilization(model: nn.Module, init_state: dict) -> pd.DataFrame:
    """Definition 6 per Linear layer: Frobenius and spectral norms of ``W - W0`` (biases left out)."""
    state = model.state_dict()
    rows = []
    for i, layer in enumerate(linear_layers(model)):
        delta = (state[f"{layer}.weight"] - init_state[f"{layer}.weight"].to(state[f"{layer}.weight"].device)).double()
        rows.append({"layer": i + 1, "name": layer, "utilization": float(torch.linalg.matrix_norm(delta)),
                     "utilization_spectral": float(torch.linalg.matrix_norm(delta, ord=2))})
    return pd.DataFrame(rows)
