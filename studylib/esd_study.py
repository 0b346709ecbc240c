"""The model zoo and the trained series of the ESD audit chapter, and its figures' data.

Used by the ESD audit chapter only; the metrics themselves live in :mod:`studylib.esd`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import cache, esd, models, train
from .executor import run_grid

#: EfficientNet-Lite ImageNet top-1 accuracies (%) as published by their authors (Liu 2020, the
#: TensorFlow EfficientNet-Lite release), not measured here: ImageNet is not available offline.
EFFICIENTNET_LITE_TOP1 = {0: 75.1, 1: 76.7, 2: 77.6}

#: Martin, Peng & Mahoney (Nature Communications 2021, the published version of seed 002): in-sample OLS
#: of top-1 accuracy on each average metric, per ImageNet series. Metrics in order:
#: log ||W||_F^2, log ||W||_inf^2 (spectral), alpha_weighted, log alpha-norm.
PAPER_SERIES_TABLE = pd.DataFrame([
    ("VGG", 6, (.56, .23, .48, .34), (.88, .98, .92, .96), (-.79, -.93, -.93, -.93)),
    ("ResNet", 5, (.9, .97, .61, .66), (.92, .9, .96, .9), (-1, -1, -1, -1)),
    ("ResNet-1K", 19, (2.4, 2.8, 1.8, 1.9), (.81, .74, .89, .88), (-.79, -.79, -.89, -.88)),
    ("DenseNet", 4, (.3, .11, .16, .21), (.93, .99, .98, .97), (-1, -1, -1, -1)),
], columns=["series", "n", "rmse", "r2", "kendall_tau"])

#: our metric names for the paper's four columns
PAPER_METRICS = ("log_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm")


def paper_table_long() -> pd.DataFrame:
    """The paper's published series table, one row per (series, metric)."""
    rows = []
    for _, r in PAPER_SERIES_TABLE.iterrows():
        for i, metric in enumerate(PAPER_METRICS):
            rows.append({"series": r.series, "metric": metric, "n": r.n, "rmse": r.rmse[i], "r2": r.r2[i],
                         "kendall_tau": r.kendall_tau[i]})
    return pd.DataFrame(rows)


def series_params(width: int, epochs: int, n_train: int | None, seed: int, device: str) -> dict:
    return {"dataset": "fashion_mnist", "widths": [width, width], "epochs": epochs, "lr": 1e-3,
            "batch_size": 128, "seed": seed, "n_train": n_train, "n_test": None, "device": device}


def train_series_member(width: int, epochs: int, n_train: int | None, seed: int, device: str) -> dict:
    """One cached run of the trained series (a grid task): a 784-w-w-10 ReLU MLP on Fashion-MNIST."""
    run = cache.cached_run("esd_mlp_series", series_params(width, epochs, n_train, seed, device),
                           train.mlp_run, deps=train.MLP_RUN_DEPS)
    return {"width": width, "n_train": n_train, "test_acc": run.metrics["test_acc"],
            "train_acc": run.metrics["train_acc"], "from_cache": run.from_cache, "path": str(run.path)}


def load_series_member(width: int, epochs: int, n_train: int | None, seed: int, device: str) -> torch.nn.Module:
    """The trained MLP of :func:`train_series_member`, read back from the run cache."""
    run = cache.cached_run("esd_mlp_series", series_params(width, epochs, n_train, seed, device),
                           train.mlp_run, deps=train.MLP_RUN_DEPS)
    model = models.mlp(784, [width, width], 10)
    model.load_state_dict(run.weights())
    return model.eval()


def train_series(widths, epochs, n_train, seed, device, workers=None) -> pd.DataFrame:
    """Train (or read from the cache) every member of the width series through the grid executor."""
    tasks = [dict(width=w, epochs=epochs, n_train=n_train, seed=seed, device=device) for w in widths]
    return pd.DataFrame(run_grid(train_series_member, tasks, workers=workers, desc="MLP series"))


def correlation_flow(details: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Alpha against depth: for each model, its non-embedding layers in order, with relative depth in [0, 1]."""
    frames = []
    for name, df in details.items():
        d = df[~df.is_embedding].reset_index(drop=True)
        frames.append(pd.DataFrame({"model": name, "layer": d.name, "depth": np.linspace(0, 1, len(d)),
                                    "alpha": d.alpha}))
    return pd.concat(frames, ignore_index=True)


def model_summaries(details: dict[str, pd.DataFrame], n_boot: int, seed: int) -> pd.DataFrame:
    """One row per model: each averaged metric (failed fits excluded) and the number of failed fits."""
    rows = []
    for name, df in details.items():
        s = esd.summarize(df, n_boot=n_boot, seed=seed)
        rows.append({"model": name, **s["mean"].to_dict(), "alpha_ci_low": s.loc["alpha", "ci_low"],
                     "alpha_ci_high": s.loc["alpha", "ci_high"], "failed_fits": int(s.loc["alpha", "n_excluded"]),
                     "layers": int(s.loc["alpha", "n_used"] + s.loc["alpha", "n_excluded"])})
    return pd.DataFrame(rows)
