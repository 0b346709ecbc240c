"""Information in weights (IIW): three estimators, per parameter group.

Used by the three IIW chapters (pre-trained vs random, fine-tuning epochs, the Taylor error). With
``delta = theta - theta0`` restricted to a group of weight tensors, ``g_i`` the gradient of example i's
cross-entropy at ``theta`` and n examples:

- ``"pib"``: what the PAC-Bayes IB authors' code computes (Wang et al. 2022): per weight tensor,
  ``(delta . g_bar)^2`` with ``g_bar`` the mean gradient over ``n_batches`` minibatches drawn with
  replacement; summed over the group's tensors;
- ``"fisher"``: seed 000's eq. (7), ``n * delta^T F delta`` with the empirical Fisher
  ``F = (1/n) sum_i g_i g_i^T``, i.e. ``sum_i (g_i . delta)^2``; the directional derivatives ``g_i . delta``
  of every example and every group come from one batched backward pass with each layer's input and
  output gradient captured (no per-example gradient is stored);
- ``"fisher_diag"``: the diagonal-Fisher approximation ``n * sum_j F_jj delta_j^2 = sum_i sum_j (g_ij delta_j)^2``.

Weight tensors are the parameters with two or more dimensions (biases and LayerNorm scales are left out,
as in the PIB code). Any model works: a batch is a dict of the model's keyword inputs plus ``labels``, or
``{"x": tensor, "labels": ...}`` for a plain module (:mod:`studylib.core`); ``groups`` maps a parameter name
to its group. The default, :func:`bert_groups`, gives ``embedding``, ``layer_0`` ... ``layer_{L-1}``
(transformer blocks) and ``fc`` (the head: BERT's pooler and classifier); :func:`module_groups` groups by
top-level module. The Fisher estimators handle Linear, Embedding and Conv2d weights. Models run in eval
mode (no dropout).
"""
from __future__ import annotations

import re
from typing import Callable

import torch
from torch import nn

from .. import core

#: the IIW estimators (module docstring)
ESTIMATORS = ("pib", "fisher", "fisher_diag")


def bert_groups(name: str) -> str:
    """The IIW group of a parameter name of a BERT-style classifier (the IIW chapters' grouping)."""
    m = re.search(r"encoder\.layer\.(\d+)\.", name)
    if m:
        return f"layer_{m.group(1)}"
    if "embeddings." in name:
        return "embedding"
    return "fc"


def module_groups(name: str) -> str:
    """One group per top-level module (``"0"``, ``"1"``, ... of an ``nn.Sequential``; ``"conv1"``, ...)."""
    return name.split(".")[0]


def weight_groups(model: nn.Module, groups: Callable[[str], str] = bert_groups) -> dict[str, list[str]]:
    """Group name -> names of its weight tensors (parameters with ndim >= 2), in model order."""
    out: dict[str, list[str]] = {}
    for name, p in model.named_parameters():
        if p.ndim >= 2:
            out.setdefault(groups(name), []).append(name)
    return out


def weight_deltas(model: nn.Module, theta0: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``theta - theta0`` of every weight tensor (the tensors IIW is measured on), detached."""
    params = dict(model.named_parameters())
    return {n: (p.detach() - theta0[n].to(p.device)) for n, p in params.items() if p.ndim >= 2}


def _loss(model, batch, reduction="mean"):
    if "input_ids" in batch:  # explicit per-example position and segment ids, so that the embedding
        ids = batch["input_ids"]  # hooks see one row per example instead of a broadcast (1, T) row
        batch = {"position_ids": torch.arange(ids.shape[1], device=ids.device).expand_as(ids),
                 "token_type_ids": torch.zeros_like(ids), **batch}
    return nn.functional.cross_entropy(core.logits(model, batch), batch["labels"], reduction=reduction)


def _iiw_pib(model, deltas, batches, n_batches, seed):
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    grads = {n: torch.zeros_like(params[n]) for n in deltas}
    for k in torch.randint(len(batches), (n_batches,), generator=gen).tolist():
        model.zero_grad()
        _loss(model, batches[k]).backward()
        for n in grads:
            grads[n] += params[n].grad / n_batches
    model.zero_grad()
    return {n: float((deltas[n] * grads[n]).sum()) ** 2 for n in deltas}


class _Capture:
    """Forward/backward hooks on Linear, Embedding and Conv2d modules: each module's input (or token ids)
    and the gradient of the summed loss with respect to its output."""

    def __init__(self, modules: dict[str, nn.Module]):
        self.inputs, self.grads, self.handles = {}, {}, []
        for name, mod in modules.items():
            self.handles.append(mod.register_forward_hook(self._forward(name)))

    def _forward(self, name):
        def hook(mod, args, out):
            self.inputs[name] = args[0].detach()
            out.register_hook(lambda g: self.grads.__setitem__(name, g.detach()))
        return hook

    def close(self):
        for h in self.handles:
            h.remove()


def _captured_pass(model: nn.Module, deltas: dict[str, torch.Tensor], batch: dict):
    """One forward and one backward pass of the summed loss with the inputs and output gradients of the
    Linear, Embedding and Conv2d modules that own a weight in ``deltas`` captured. Examples do not interact in
    the model, so each example's output gradient is its own. Returns (weight name -> module, capture)."""
    modules = dict(model.named_modules())
    owners = {f"{m}.weight": mod for m, mod in modules.items()
              if isinstance(mod, (nn.Linear, nn.Embedding, nn.Conv2d)) and f"{m}.weight" in deltas}
    unsupported = set(deltas) - set(owners)
    if unsupported:
        raise ValueError("the batched Fisher estimators handle Linear, Embedding and Conv2d weights only; not: "
                         f"{sorted(unsupported)} (the 'pib' estimator handles any weight)")
    cap = _Capture({w[: -len(".weight")]: mod for w, mod in owners.items()})
    try:
        model.zero_grad()
        _loss(model, batch, reduction="sum").backward()
    finally:
        cap.close()
    model.zero_grad()
    return owners, cap


def per_example_directional(model: nn.Module, deltas: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
    """``g_i . delta_W`` for every example i and every weight tensor W, from one captured pass.

    Linear ``W`` (out x in): ``sum_t G_{i,t} . (delta_W a_{i,t})``; Embedding ``E``: ``sum_t G_{i,t} . delta_E[id_{i,t}]``;
    Conv2d: ``G_i . conv(a_i, delta_W)`` (the convolution without bias is linear in its weight).
    """
    owners, cap = _captured_pass(model, deltas, batch)
    out = {}
    for wname, mod in owners.items():
        mname = wname[: -len(".weight")]
        a, g, d = cap.inputs[mname], cap.grads[mname], deltas[wname]
        if isinstance(mod, nn.Conv2d):
            contrib = g * mod._conv_forward(a, d, None)
        else:
            contrib = (g * d[a]).sum(-1) if isinstance(mod, nn.Embedding) else (g * (a @ d.T)).sum(-1)
        out[wname] = contrib.reshape(contrib.shape[0], -1).sum(1)  # sum over tokens (or positions)
    return out


def _conv_weight_grad(mod: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The gradient of ``sum(g * conv(a, W))`` with respect to ``W`` (one example; it does not depend on W)."""
    w = torch.zeros_like(mod.weight, requires_grad=True)
    with torch.enable_grad():
        return torch.autograd.grad((mod._conv_forward(a, w, None) * g).sum(), w)[0]


def per_example_diag(model: nn.Module, deltas: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
    """``sum_j (g_ij delta_j)^2`` per example and weight tensor, from per-example gradients built one example
    at a time out of the captured activations (Linear: ``sum_t G_t a_t^T``; Embedding: scattered rows;
    Conv2d: the convolution's weight gradient)."""
    owners, cap = _captured_pass(model, deltas, batch)
    out = {}
    for wname, mod in owners.items():
        mname = wname[: -len(".weight")]
        a, g, d = cap.inputs[mname], cap.grads[mname], deltas[wname]
        values = []
        for i in range(g.shape[0]):
            gi = g[i].reshape(-1, g.shape[-1])
            if isinstance(mod, nn.Conv2d):
                grad_w = _conv_weight_grad(mod, a[i:i + 1], g[i:i + 1])
            elif isinstance(mod, nn.Embedding):
                grad_w = torch.zeros_like(d).index_add_(0, a[i].reshape(-1), gi)
            else:
                grad_w = gi.T @ a[i].reshape(-1, a.shape[-1])
            values.append(((grad_w * d) ** 2).sum())
        out[wname] = torch.stack(values)
    return out


def iiw(model: nn.Module, theta0: dict[str, torch.Tensor], batches: list[dict], estimator: str = "fisher",
        n_batches: int = 10, seed: int = 0, groups: Callable[[str], str] = bert_groups) -> dict[str, float]:
    """IIW per group and in total (key ``"total"``) of ``model`` relative to the weights ``theta0``.

    ``groups``: parameter name -> group name (default :func:`bert_groups`; :func:`module_groups` for a plain
    ``nn.Sequential``); ``theta0``: parameter name -> tensor, at least every weight tensor of the model.

    ``"fisher"``'s total is the quadratic form of the whole ``delta`` (so it includes the cross terms between
    groups and is not the sum of the groups); ``"pib"`` and ``"fisher_diag"`` totals are sums over tensors.

    ``batches``: model-ready dicts with ``labels`` (:mod:`studylib.core`); the Fisher
    estimators use every example once, ``"pib"`` draws ``n_batches`` of them with replacement (seeded).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if not batches:
        raise ValueError("iiw needs at least one batch of examples")
    missing = [n for n, p in model.named_parameters() if p.ndim >= 2 and n not in theta0]
    if missing:
        raise ValueError(f"theta0 lacks weight tensors of the model: {missing[:5]}")
    was_training = model.training
    model.eval()
    deltas = weight_deltas(model, theta0)
    if estimator == "pib":
        per_tensor = _iiw_pib(model, deltas, batches, n_batches, seed)
    else:
        totals: dict[str, float] = {}
        for batch in batches:
            if estimator == "fisher":
                dirs = per_example_directional(model, deltas, batch)
                per_group: dict[str, torch.Tensor] = {}
                for name, v in dirs.items():  # g_i . delta_group = sum over the group's tensors
                    g = groups(name)
                    per_group[g] = per_group.get(g, 0) + v.double()
                for g, v in per_group.items():
                    totals[g] = totals.get(g, 0.0) + float((v ** 2).sum())
                whole = sum(per_group.values())  # g_i . delta over every group: the full quadratic form
                totals["__total__"] = totals.get("__total__", 0.0) + float((whole ** 2).sum())
            else:
                for name, v in per_example_diag(model, deltas, batch).items():
                    g = groups(name)
                    totals[g] = totals.get(g, 0.0) + float(v.double().sum())
        model.train(was_training)
        by_group = {g: totals.get(g, 0.0) for g in weight_groups(model, groups)}
        return {**by_group, "total": totals.get("__total__", sum(by_group.values()))}
    model.train(was_training)
    result = {g: sum(per_tensor[n] for n in names) for g, names in weight_groups(model, groups).items()}
    return {**result, "total": sum(result.values())}
