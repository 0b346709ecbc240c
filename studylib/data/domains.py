"""Image noise, label noise and digit domains built from the offline data, for the model-information chapter (and
the shuffled labels of the layer-utilization and head-to-head chapters).

Seed 003 injects three kinds of noise into MNIST (its Fig. 2) and compares image domains (Office-31,
Office-Home) that cannot be had offline. Here every variant is built, seeded, from the real digits:

- ``missing_pixels``: a small random square of pixels set to 0 in a fraction of the images;
- ``missing_center``: a central square of a given side set to 0 in every image (the positive control of the
  missing-pixels claim, at strengths that remove much of the digit);
- ``missing_objects``: a large part of the digit (a random half of the image) set to 0;
- ``massart``: a fraction of the labels replaced by labels drawn uniformly from all classes;
- ``shuffle_labels``: a fraction of the labels shuffled among their examples (Zhang et al.'s partially random
  labels, the layer-utilization chapter's noise and the zoo's label-noise axis);
- domains on a common 28 x 28 grey grid: MNIST, UCI digits upscaled from 8 x 8, and cluttered MNIST
  (digits over textured clutter cut from other digits: the stand-in for SVHN's street-view digits).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .loaders import Dataset, load


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")


def _chosen(n: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """``round(ratio * n)`` distinct indices."""
    return rng.choice(n, size=int(round(ratio * n)), replace=False)


def missing_pixels(x: np.ndarray, ratio: float, seed: int = 0, size: int = 7) -> np.ndarray:
    """A copy of images ``(N, C, H, W)`` with a random ``size x size`` square zeroed in a ``ratio`` of them."""
    _check_ratio(ratio)
    h, w = x.shape[-2:]
    if not 1 <= size <= min(h, w):
        raise ValueError(f"size must be an int in [1, {min(h, w)}] for {h} x {w} images, got {size}")
    rng = np.random.default_rng(seed)
    out = x.copy()
    for i in _chosen(len(x), ratio, rng):
        r, c = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        out[i, ..., r:r + size, c:c + size] = 0
    return out


def missing_center(x: np.ndarray, size: int) -> np.ndarray:
    """A copy of images ``(N, C, H, W)`` with the central ``size x size`` square zeroed in every one (``size`` 0: a
    copy); the model-information chapter's positive control for missing pixels."""
    h, w = x.shape[-2:]
    if not 0 <= size <= min(h, w) or size != int(size):
        raise ValueError(f"size must be an int in [0, {min(h, w)}] for {h} x {w} images, got {size}")
    size = int(size)
    r, c = (h - size) // 2, (w - size) // 2
    out = x.copy()
    out[..., r:r + size, c:c + size] = 0
    return out


def missing_objects(x: np.ndarray, ratio: float, seed: int = 0) -> np.ndarray:
    """A copy of images with one random half (top, bottom, left or right) zeroed in a ``ratio`` of them."""
    _check_ratio(ratio)
    rng = np.random.default_rng(seed)
    out = x.copy()
    h, w = x.shape[-2:]
    halves = [(slice(0, h // 2), slice(None)), (slice(h // 2, h), slice(None)),
              (slice(None), slice(0, w // 2)), (slice(None), slice(w // 2, w))]
    for i in _chosen(len(x), ratio, rng):
        rows, cols = halves[rng.integers(4)]
        out[i, ..., rows, cols] = 0
    return out


def massart(y: np.ndarray, ratio: float, num_classes: int, seed: int = 0) -> np.ndarray:
    """A copy of labels with a ``ratio`` of them replaced by labels drawn uniformly from ``num_classes``
    (a replacement can equal the true label, as in Massart noise)."""
    _check_ratio(ratio)
    rng = np.random.default_rng(seed)
    out = y.copy()
    idx = _chosen(len(y), ratio, rng)
    out[idx] = rng.integers(0, num_classes, size=len(idx))
    return out


def shuffle_labels(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the labels of a ``fraction`` of the examples among themselves (seeded).

    Returns the noisy labels and the indices that were drawn for shuffling; a drawn label can land
    back on its own example by chance, so the examples whose label actually changed are
    ``noisy != y``. The originals are untouched, so the recovered set can be scored.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(y), int(round(fraction * len(y))), replace=False))
    noisy = np.array(y, copy=True)
    noisy[picked] = y[rng.permutation(picked)]
    return noisy, picked


def upscale(x: np.ndarray, size: int = 28) -> np.ndarray:
    """Bilinear resize of images ``(N, C, h, w)`` to ``size x size``, values kept in [0, 1]."""
    t = F.interpolate(torch.as_tensor(x), size=(size, size), mode="bilinear", align_corners=False)
    return t.clamp(0, 1).numpy()


def cluttered(x: np.ndarray, seed: int = 0, pieces: int = 4, size: int = 9, strength: float = 0.6) -> np.ndarray:
    """Each (square) image over clutter: ``pieces`` random ``size x size`` patches cut from other images of ``x`` at random
    places, scaled by ``strength``; the digit is laid on top (pixel-wise maximum)."""
    rng = np.random.default_rng(seed)
    n, h = len(x), x.shape[-2]
    clutter = np.zeros_like(x)
    for i in range(n):
        for _ in range(pieces):
            j = rng.integers(n)
            r0, c0, r1, c1 = rng.integers(0, h - size + 1, size=4)
            patch = x[j, ..., r0:r0 + size, c0:c0 + size]
            region = clutter[i, ..., r1:r1 + size, c1:c1 + size]
            np.maximum(region, strength * patch, out=region)
    return np.maximum(x, clutter)


DOMAINS = ("mnist", "uci_digits", "cluttered_mnist")


def load_domain(name: str, seed: int = 0, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """A digit domain on the 28 x 28 grid: ``mnist``, ``uci_digits`` (upscaled) or ``cluttered_mnist``."""
    if name not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {name!r}")
    ds = load("uci_digits" if name == "uci_digits" else "mnist", seed=seed, n_train=n_train, n_test=n_test)
    if name == "uci_digits":
        ds.x_train, ds.x_test = upscale(ds.x_train), upscale(ds.x_test)
    elif name == "cluttered_mnist":
        ds.x_train, ds.x_test = cluttered(ds.x_train, seed), cluttered(ds.x_test, seed + 1)
        ds.name, ds.stands_in_for = "cluttered_mnist", "SVHN (digits in street scenes)"
    return ds
