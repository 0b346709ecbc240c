"""The ESD audit chapter's model zoo, its trained series, its figures' data, the papers' tables and its claims.

Used by the ESD audit chapter only; the metrics themselves live in :mod:`studylib.metrics.esd`.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from .. import claims, nets, stats
from ..metrics import esd
from ..platform import cache
from ..platform.executor import run_grid
from ..runs.mlp import mlp_run

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


def _series_run(width: int, epochs: int, n_train: int | None, seed: int, device: str) -> cache.Run:
    return cache.cached_run("esd_mlp_series", series_params(width, epochs, n_train, seed, device), mlp_run)


def train_series_member(width: int, epochs: int, n_train: int | None, seed: int, device: str) -> dict:
    """One cached run of the trained series (a grid task): a 784-w-w-10 ReLU MLP on Fashion-MNIST."""
    run = _series_run(width, epochs, n_train, seed, device)
    return {"width": width, "n_train": n_train, "test_acc": run.metrics["test_acc"],
            "train_acc": run.metrics["train_acc"], "from_cache": run.from_cache, "path": str(run.path)}


def load_series_member(width: int, epochs: int, n_train: int | None, seed: int, device: str) -> torch.nn.Module:
    """The trained MLP of :func:`train_series_member`, read back from the run cache."""
    model = nets.mlp(784, [width, width], 10)
    model.load_state_dict(_series_run(width, epochs, n_train, seed, device).weights())
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


def layer_esd(model: torch.nn.Module, name: str, alpha_ci: int = 0, **options) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """The ESD of one named layer, the ESD of its shuffled entries, and its analysis row (Fig. 1), with a
    bootstrap interval for alpha from ``alpha_ci`` resamples if positive."""
    layers = {m.name: m for m in esd.layer_matrices(model)}
    if name not in layers:
        raise ValueError(f"no weight matrix named {name!r}; choose one of: {', '.join(layers)}")
    layer = layers[name]
    gen = torch.Generator().manual_seed(options.pop("seed", 0))
    real, shuffled = esd.eigenvalues([layer, esd.shuffle_entries(layer, gen)], **options)
    row = esd.analyze(torch.nn.ModuleDict({"m": _only(model, name)}), mp_fit=True, alpha_ci=alpha_ci).iloc[0]
    return real, shuffled, row


def _only(model: torch.nn.Module, name: str) -> torch.nn.Module:
    return dict(model.named_modules())[name]


def fraction_in_band(df: pd.DataFrame, low: float = 2.0, high: float = 6.0) -> float:
    """Share of the successfully fitted, non-embedding layers whose alpha lies in [low, high]."""
    a = df[~df.is_embedding].alpha.dropna()
    return float(((a >= low) & (a <= high)).mean()) if len(a) else float("nan")


#: seed 002 (draft), Table 2: average log norm metrics of OpenAI GPT and GPT-2 (the draft's "GPT (small)" row
#: is GPT2-small). Columns: layers, log Frobenius, log spectral, alpha_weighted, log alpha-norm.
PAPER_TABLE2 = pd.DataFrame([
    ("GPT", 49, 1.64, 1.72, 7.01, 7.28), ("GPT2-small", 49, 2.04, 2.54, 9.62, 9.87),
    ("GPT2-medium", 98, 2.08, 2.58, 9.74, 10.01), ("GPT2-large", 146, 1.85, 1.99, 7.67, 7.94),
    ("GPT2-xl", 194, 1.86, 1.92, 7.17, 7.51),
], columns=["model", "layers", "log_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm"])


def weight_layers(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of an :func:`studylib.metrics.esd.analyze` frame that are weight layers (embeddings left out)."""
    return df[~df.is_embedding]


#: the chapter's sources, as the verdicts page names them
PAPER = "Martin, Peng & Mahoney (2021)"
RESPONSE = "Martin, Peng & Mahoney (n.d.), response to reviewers"


def claims_table(details: dict[str, pd.DataFrame], frame: pd.DataFrame, deficient: tuple[str, str],
                 level: float = 0.95) -> pd.DataFrame:
    """The claims of seeds 002/004, each decided by the claims engine.

    ``details``: per-model analyses; ``frame``: one row per model of a series (columns ``series``, ``accuracy``
    and the averaged metrics); ``deficient``: (well trained, deficiently trained) model names of one
    architecture. The random twin's larger alphas and smaller spectral norms (its initialiser), the deficient
    twin's smaller norms (fewer steps), alpha_weighted against the log alpha-norm (a bound) and alpha's
    invariance to the conv scaling (exact) hold by construction: the chapter shows them as checks, not claims.
    """
    pre = weight_layers(details["MiniLM-L6"]).dropna(subset=["alpha"])
    out = [
        claims.mean_claim(pre.alpha - 6, expected_sign=-1, level=level,
                          claim="Trained weight matrices are heavy-tailed (alpha below 6), not Marchenko-Pastur",
                          where="§3, Fig. 1", statistic="mean (alpha - 6) over MiniLM-L6 layers", unit="layers"),
        claims.mean_claim(pre.rand_num_spikes, pre.num_spikes, expected_sign=-1, level=level,
                          claim="Shuffling a matrix's entries destroys its heavy tail", where="§3, Fig. 1",
                          statistic="mean change in MP outliers when shuffled (MiniLM-L6)", unit="layers"),
    ]
    for series, group in frame.groupby("series", sort=False):
        out.append(claims.combine(
            f"Within a series, smaller metrics mean higher accuracy ({series})", "§4, Tables 1 and 5",
            {m: claims.rank_claim(group[m], group.accuracy, -1, level=level, unit="models",
                                  statistic=f"tau ({m}, accuracy)") for m in PAPER_METRICS}, rule="each"))
        out.append(claims.tau_difference_claim(
            group.alpha_weighted, group.log_norm, group.accuracy, -1, level=level, unit="models",
            claim=f"alpha_weighted predicts accuracy better than the log norm ({series})", where="§4, Table 5",
            statistic="tau(alpha_weighted, accuracy) - tau(log_norm, accuracy)"))
    well, poor = (weight_layers(details[name]).reset_index(drop=True) for name in deficient)
    out.append(claims.mean_claim(poor.alpha, well.alpha, expected_sign=1, level=level,
                                 claim=f"A deficiently trained twin has larger alphas ({deficient[1]} vs {deficient[0]})",
                                 where="§5, Fig. 5(a)", statistic="mean alpha difference, layer by layer",
                                 unit="layers"))
    sizes = frame.groupby("series").size()
    testable = sizes[sizes >= stats.NORMALITY_MIN_N]
    claim, where = "Regression errors are not normal (so p-values mislead)", "response to reviewer 1"
    if len(testable):
        ps = [stats.series_regression(g.alpha_weighted, g.accuracy, level)["shapiro_p"]
              for s, g in frame.groupby("series") if s in testable.index]
        p = float(min(1.0, np.nanmin(ps) * len(ps)))  # Bonferroni over the series tested
        out.append(claims.Claim(claim, where, "smallest Shapiro-Wilk p over series, Bonferroni-adjusted", p,
                                math.nan, math.nan, int(testable.sum()), p,
                                "held" if p < 1 - level else "inconclusive",
                                f"Shapiro-Wilk at the {1 - level:.0%} level (the one claim decided by a test, not "
                                "an interval)", "models", level, paper=RESPONSE))
    else:
        out.append(replace(claims.not_testable(claim, where, f"series of {', '.join(map(str, sizes))} models: "
                                               f"Shapiro-Wilk has no power below {stats.NORMALITY_MIN_N}"),
                           paper=RESPONSE))
    out.append(claims.not_testable("Correlation flow: better architectures keep alpha near 2 through depth "
                                   "(ResNet vs VGG)", "§4, Fig. 4", "needs several pre-trained architectures of one "
                                   "task; only EfficientNet-Lite is available offline"))
    return claims.table(out)
