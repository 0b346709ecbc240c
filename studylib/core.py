"""The conventions every metric and training loop shares: the device, and what a batch is.

Used by every chapter (through :mod:`studylib.metrics` and :mod:`studylib.training`).

A *batch* is a dict of the model's keyword inputs plus ``labels``; for a plain module whose ``forward``
takes one tensor, that tensor is under ``x``. So the same metric code runs on a transformers classifier
(``input_ids``, ``attention_mask``, ...), on :class:`studylib.nets.EncoderClassifier` and on any MLP or CNN.
"""
from __future__ import annotations

import torch
from torch import nn


def device(requested: str | torch.device | None = None) -> torch.device:
    """The device for heavy work: ``requested`` if given, else CUDA when present, else CPU.

    Every chapter passes its ``DEVICE`` parameter through here.
    """
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(requested)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={requested!r} was asked for, but CUDA is not available here; "
                         "use 'auto' or 'cpu'")
    return dev


def logits(model: nn.Module, batch: dict) -> torch.Tensor:
    """The model's logits for a batch: ``model(x)`` for an ``x`` batch, else ``model(**inputs)``; a
    transformers output is unwrapped (``.logits``)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    out = model(inputs["x"]) if set(inputs) == {"x"} else model(**inputs)
    return out.logits if hasattr(out, "logits") else out


def array_batches(x, y=None, batch_size: int = 1024) -> list[dict]:
    """Arrays (or tensors) ``x``, ``y`` as a list of ``{"x", "labels"}`` batches, in order (``{"x"}`` batches
    when ``y`` is None)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    x = torch.as_tensor(x)
    if y is None:
        return [{"x": x[i:i + batch_size]} for i in range(0, len(x), batch_size)]
    y = torch.as_tensor(y)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
    return [{"x": x[i:i + batch_size], "labels": y[i:i + batch_size]} for i in range(0, len(y), batch_size)]


def trim_padding(batch: dict) -> dict:
    """A token batch cut to its longest example (dynamic padding: the attention mask hides padding, so the
    logits do not change); other batches as they are. Used by the fine-tuning runs and the ``pib`` estimators
    of the IIW chapters."""
    if "attention_mask" not in batch:
        return batch
    length = int(batch["attention_mask"].sum(1).max())
    return {k: v[:, :length] if v.dim() == 2 and k != "labels" else v for k, v in batch.items()}


def to_device(batch: dict, dev) -> dict:
    """Every tensor of a batch on ``dev``."""
    return {k: v.to(dev) for k, v in batch.items()}
