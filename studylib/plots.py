"""Plot helpers shared by the chapters: readable defaults, image grids, class counts, training curves.

Introduced on the "data and models" page.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                     "axes.spines.right": False, "font.size": 10})


def image_grid(datasets, per_class: int = 1, seed: int = 0):
    """One row per image data set: ``per_class`` training images of each class, labelled."""
    rng = np.random.default_rng(seed)
    cols = max(d.num_classes for d in datasets) * per_class
    fig, axes = plt.subplots(len(datasets), cols, figsize=(cols * 0.9, len(datasets) * 1.15), squeeze=False)
    for row, d in zip(axes, datasets):
        picks = [i for c in range(d.num_classes)
                 for i in rng.choice(np.flatnonzero(d.y_train == c), per_class, replace=False)]
        for ax, i in zip(row, picks):
            ax.imshow(d.x_train[i, 0], cmap="gray_r")
            ax.set_title(d.classes[d.y_train[i]][:11], fontsize=7)
        for ax in row:
            ax.axis("off")
        row[0].text(-0.4, 0.5, d.name, transform=row[0].transAxes, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def class_counts(datasets):
    """Small multiples: training examples per class for each data set."""
    n = len(datasets)
    cols = 3
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.6 * rows), squeeze=False)
    for ax, d in zip(axes.flat, datasets):
        counts = np.bincount(d.y_train, minlength=d.num_classes)
        ax.bar(range(d.num_classes), counts, color="tab:blue")
        ax.set_title(f"{d.name} (train, n={len(d.y_train):,})", fontsize=9)
        ax.set_xticks(range(d.num_classes))
        ax.set_xticklabels([c[:10] for c in d.classes], rotation=90 if d.num_classes > 4 else 0, fontsize=7)
        ax.set_ylabel("examples")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def training_curves(records: list[dict], title: str = ""):
    """Train and test accuracy and loss per epoch from a run's records."""
    epochs = [r["epoch"] for r in records]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    for split, style in (("train", "-"), ("test", "--")):
        a.plot(epochs, [r[f"{split}_acc"] for r in records], style, label=split)
        b.plot(epochs, [r[f"{split}_loss"] for r in records], style, label=split)
    a.set(xlabel="epoch", ylabel="accuracy", title=title)
    b.set(xlabel="epoch", ylabel="cross-entropy (nats)")
    for ax in (a, b):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    a.legend()
    fig.tight_layout()
    return fig
