"""Information in weights (IIW): three estimators, per parameter group.

Used by the three IIW chapters (pre-trained vs random, fine-tuning epochs, the Taylor error). With
``delta = theta - theta0`` restricted to a group of weight tensors, ``g_i`` the gradient of example i's
cross-entropy at ``theta`` and n examples:

- ``"pib"``: the PAC-Bayes IB authors' code (Wang et al. 2022, ``compute_information_bp_fast``): over every
  parameter whose name contains "weight" (LayerNorm scales included, biases left out), per tensor
  ``(delta . g)^2`` with ``g`` the sum of the mean-loss gradients of ``n_batches`` (10) minibatches of
  ``batch_size`` examples, each drawn with replacement from the N examples, times ``1 / ceil(N / batch_size)``;
  summed over the group's tensors. The factor makes the value scale like ``1 / N^2``: magnitudes are not
  comparable across data sets of different sizes;
- ``"pib_all"``: the same with ``g`` summed over every sequential minibatch (the code's ``_all_sample``
  variant): the full-data mean gradient;
- ``"fisher"``: seed 000's eq. (7), ``n * delta^T F delta`` with the empirical Fisher
  ``F = (1/n) sum_i g_i g_i^T``, i.e. ``sum_i (g_i . delta)^2``; the directional derivatives ``g_i . delta``
  of every example and every group come from one batched backward pass with each layer's input and
  output gradient captured (no per-example gradient is stored);
- ``"fisher_diag"``: the diagonal-Fisher approximation ``n * sum_j F_jj delta_j^2 = sum_i sum_j (g_ij delta_j)^2``.

For the Fisher estimators the weight tensors are the parameters with two or more dimensions; they handle
Linear, Embedding and Conv2d weights. Any model works: a batch is a dict of the model's keyword inputs plus
``labels``, or ``{"x": tensor, "labels": ...}`` for a plain module (:mod:`studylib.core`); ``groups`` maps a
parameter name to its group. The default, :func:`bert_groups`, gives ``embedding``, ``layer_0`` ...
``layer_{L-1}`` (transformer blocks), ``pooler`` (BERT's pooler, pre-trained where the encoder has one) and
``classifier`` (the freshly initialised head); :func:`module_groups` groups by top-level module. Models run
in eval mode (no dropout).
"""
from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import core

#: the IIW estimators (module docstring)
ESTIMATORS = ("pib", "pib_all", "fisher", "fisher_diag")
#: the factors of a PIB estimate :func:`iiw_references` reports with ``geometry=True``
GEOMETRY = ("delta_norm", "grad_norm", "cos")


def bert_groups(name: str) -> str:
    """The IIW group of a parameter name of a BERT-style classifier (the IIW chapters' grouping)."""
    m = re.search(r"encoder\.layer\.(\d+)\.", name)
    if m:
        return f"layer_{m.group(1)}"
    if "embeddings." in name:
        return "embedding"
    return "pooler" if "pooler." in name else "classifier"


def module_groups(name: str) -> str:
    """One group per top-level module (``"0"``, ``"1"``, ... of an ``nn.Sequential``; ``"conv1"``, ...)."""
    return name.split(".")[0]


def measured(name: str, p: torch.Tensor, estimator: str = "fisher") -> bool:
    """Whether ``estimator`` measures the parameter: the PIB estimators every parameter whose name contains
    "weight" (as the reference code selects them), the Fisher estimators every tensor with ndim >= 2."""
    return "weight" in name if estimator.startswith("pib") else p.ndim >= 2


def weight_groups(model: nn.Module, groups: Callable[[str], str] = bert_groups,
                  estimator: str = "fisher") -> dict[str, list[str]]:
    """Group name -> names of the tensors ``estimator`` measures (:func:`measured`), in model order."""
    out: dict[str, list[str]] = {}
    for name, p in model.named_parameters():
        if measured(name, p, estimator):
            out.setdefault(groups(name), []).append(name)
    return out


def weight_deltas(model: nn.Module, theta0: dict[str, torch.Tensor],
                  estimator: str = "fisher") -> dict[str, torch.Tensor]:
    """``theta - theta0`` of every tensor ``estimator`` measures (:func:`measured`), detached."""
    params = dict(model.named_parameters())
    return {n: (p.detach() - theta0[n].to(p.device)) for n, p in params.items() if measured(n, p, estimator)}


def _loss(model, batch, reduction="mean"):
    if "input_ids" in batch:  # explicit per-example position and segment ids, so that the embedding
        ids = batch["input_ids"]  # hooks see one row per example instead of a broadcast (1, T) row
        batch = {"position_ids": torch.arange(ids.shape[1], device=ids.device).expand_as(ids),
                 "token_type_ids": torch.zeros_like(ids), **batch}
    return nn.functional.cross_entropy(core.logits(model, batch), batch["labels"], reduction=reduction)


def pib_draws(n_examples: int, batch_size: int, n_batches: int, seed: int) -> list[np.ndarray]:
    """The ``"pib"`` estimator's minibatches: ``n_batches`` index arrays of ``batch_size`` examples, each drawn
    uniformly with replacement from ``range(n_examples)`` (seeded)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(n_examples, size=batch_size) for _ in range(n_batches)]


def stack_batches(batches: list[dict]) -> dict[str, torch.Tensor]:
    """The examples of a list of batches as one batch (every tensor concatenated along its first axis)."""
    keys = batches[0].keys()
    shapes = {k: {tuple(b[k].shape[1:]) for b in batches} for k in keys}
    ragged = [k for k, s in shapes.items() if len(s) > 1]
    if ragged:
        raise ValueError(f"the 'pib' estimators need batches of one shape; {ragged} differ: {shapes}")
    return {k: torch.cat([b[k] for b in batches]) for k in keys}


def pib_gradient(model: nn.Module, examples: dict, names: list[str], batch_size: int,
                 draws: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """The PIB code's gradient: the mean-loss gradients of the minibatches ``draws`` summed, times
    ``1 / ceil(N / batch_size)`` with N the number of examples."""
    params = dict(model.named_parameters())
    scale = 1.0 / math.ceil(len(examples["labels"]) / batch_size)
    grads = {n: torch.zeros_like(params[n]) for n in names}
    for idx in draws:
        idx = torch.as_tensor(idx, device=examples["labels"].device)
        model.zero_grad()
        _loss(model, core.trim_padding({k: v[idx] for k, v in examples.items()})).backward()
        for n in names:
            grads[n] += params[n].grad
    model.zero_grad()
    return {n: g * scale for n, g in grads.items()}


def _pib_gradient_of(model, batches, estimator, batch_size, n_batches, seed):
    examples = stack_batches(batches)
    n = len(examples["labels"])
    draws = (pib_draws(n, batch_size, n_batches, seed) if estimator == "pib"
             else [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)])
    names = [name for name, p in model.named_parameters() if measured(name, p, estimator)]
    return pib_gradient(model, examples, names, batch_size, draws)


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
    return _directional(*_captured_pass(model, deltas, batch), deltas)


def _directional(owners: dict, cap: _Capture, deltas: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`per_example_directional` from a captured pass (which does not depend on ``deltas``)."""
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


def _fisher_totals(model, deltas_by_reference: dict[str, dict], batches, estimator,
                   groups) -> dict[str, dict[str, float]]:
    """The Fisher estimators against every reference; ``"fisher"`` captures each batch once for all of them."""
    totals: dict[str, dict[str, float]] = {ref: {} for ref in deltas_by_reference}
    for batch in batches:
        if estimator == "fisher":
            captured = _captured_pass(model, next(iter(deltas_by_reference.values())), batch)
            for ref, deltas in deltas_by_reference.items():
                per_group: dict[str, torch.Tensor] = {}
                for name, v in _directional(*captured, deltas).items():  # g_i . delta per group
                    per_group[groups(name)] = per_group.get(groups(name), 0) + v.double()
                for g, v in per_group.items():
                    totals[ref][g] = totals[ref].get(g, 0.0) + float((v ** 2).sum())
                whole = sum(per_group.values())  # g_i . delta over every group: the full quadratic form
                totals[ref]["__total__"] = totals[ref].get("__total__", 0.0) + float((whole ** 2).sum())
        else:
            for ref, deltas in deltas_by_reference.items():
                for name, v in per_example_diag(model, deltas, batch).items():
                    totals[ref][groups(name)] = totals[ref].get(groups(name), 0.0) + float(v.double().sum())
    out = {}
    for ref, t in totals.items():
        by_group = {g: t.get(g, 0.0) for g in weight_groups(model, groups, estimator)}
        out[ref] = {**by_group, "total": t.get("__total__", sum(by_group.values()))}
    return out


def iiw(model: nn.Module, theta0: dict[str, torch.Tensor], batches: list[dict], estimator: str = "fisher",
        n_batches: int = 10, seed: int = 0, groups: Callable[[str], str] = bert_groups,
        batch_size: int = 32) -> dict[str, float]:
    """IIW per group and in total (key ``"total"``) of ``model`` relative to the weights ``theta0``.

    ``groups``: parameter name -> group name (default :func:`bert_groups`; :func:`module_groups` for a plain
    ``nn.Sequential``); ``theta0``: parameter name -> tensor, at least every tensor the estimator measures.

    ``"fisher"``'s total is the quadratic form of the whole ``delta`` (so it includes the cross terms between
    groups and is not the sum of the groups); the other totals are sums over tensors.

    ``batches``: model-ready dicts with ``labels`` (:mod:`studylib.core`), all the examples (N of them) the
    information is about; the Fisher estimators and ``"pib_all"`` use every example once, ``"pib"`` draws
    ``n_batches`` minibatches of ``batch_size`` examples with replacement (seeded by ``seed``).
    """
    return iiw_references(model, {"theta0": theta0}, batches, estimator, n_batches, seed, groups,
                          batch_size)["theta0"]


def iiw_references(model: nn.Module, references: dict[str, dict[str, torch.Tensor]], batches: list[dict],
                   estimator: str = "fisher", n_batches: int = 10, seed: int = 0,
                   groups: Callable[[str], str] = bert_groups, batch_size: int = 32,
                   geometry: bool = False) -> dict[str, dict[str, float]]:
    """:func:`iiw` of ``model`` relative to each of several reference weights (reference name -> theta0), with
    the ``"pib"`` gradient (and the ``"fisher"`` captured pass) computed once for all of them. The IIW chapters
    measure every run against the initial weights and the PIB priors this way.

    ``geometry`` (PIB estimators only): each reference's values also hold :data:`GEOMETRY` over all measured
    tensors, ``delta_norm`` = ||delta||, ``grad_norm`` = ||g|| and ``cos`` = cos(delta, g), the factors of
    ``(delta . g)^2`` the pre-trained vs random chapter takes apart."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if geometry and not estimator.startswith("pib"):
        raise ValueError(f"geometry needs a 'pib' estimator (its one gradient g), got {estimator!r}")
    if not batches:
        raise ValueError("iiw needs at least one batch of examples")
    if batch_size < 1 or n_batches < 1:
        raise ValueError(f"batch_size and n_batches must be >= 1, got {batch_size!r} and {n_batches!r}")
    for name, theta0 in references.items():
        missing = [n for n, p in model.named_parameters() if measured(n, p, estimator) and n not in theta0]
        if missing:
            raise ValueError(f"theta0 {name!r} lacks weight tensors of the model: {missing[:5]}")
    was_training = model.training
    model.eval()
    try:
        deltas = {name: weight_deltas(model, theta0, estimator) for name, theta0 in references.items()}
        if not estimator.startswith("pib"):
            return _fisher_totals(model, deltas, batches, estimator, groups)
        grads = _pib_gradient_of(model, batches, estimator, batch_size, n_batches, seed)
        out = {}
        for name, delta in deltas.items():
            dots = {n: float((d.double() * grads[n].double()).sum()) for n, d in delta.items()}
            by_group = {g: sum(dots[n] ** 2 for n in names)
                        for g, names in weight_groups(model, groups, estimator).items()}
            out[name] = {**by_group, "total": sum(by_group.values())}
            if geometry:
                out[name].update(_geometry(delta, grads, sum(dots.values())))
        return out
    finally:
        model.train(was_training)


def _geometry(delta: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], dot: float) -> dict[str, float]:
    """||delta||, ||g|| and cos(delta, g) = ``dot`` / (||delta|| ||g||) over every tensor of ``delta`` (cos 0
    when either norm is zero)."""
    delta_norm = math.sqrt(sum(float(d.double().pow(2).sum()) for d in delta.values()))
    grad_norm = math.sqrt(sum(float(grads[n].double().pow(2).sum()) for n in delta))
    cos = dot / (delta_norm * grad_norm) if delta_norm > 0 and grad_norm > 0 else 0.0
    return {"delta_norm": delta_norm, "grad_norm": grad_norm, "cos": cos}
