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
from ..runs.mlp import MlpParams, mlp_run

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


#: seed 002 (the draft, the source text), Table 1: RMSE (top-1 error, %) of the linear fit of top-1 error on each
#: average metric, per ImageNet series (ResNet-1K: trained on ImageNet-1K); columns as :data:`PAPER_METRICS`
PAPER_TABLE1_RMSE = pd.DataFrame([("VGG", 6, .56, .53, .48, .42), ("ResNet", 5, .9, 1.4, .61, .66),
                                  ("ResNet-1K", 19, 2.4, 3.6, 1.8, 1.9), ("DenseNet", 4, .3, .26, .16, .21)],
                                 columns=["series", "n", *PAPER_METRICS])
#: seed 002 (the draft), Table 5: R^2 and MSE of the linear fits over 17 architecture series of 168 pre-trained
#: models on 5 data sets (series of 4 or more models), mean and standard deviation over the series
PAPER_TABLE5 = pd.DataFrame({"log_norm": (.63, .34, 4.54, 8.69), "log_spectral_norm": (.55, .36, 9.62, 23.06),
                             "alpha_weighted": (.64, .29, 3.14, 5.14), "log_alpha_norm": (.64, .30, 2.92, 5.00)},
                            index=["R² mean", "R² std", "MSE mean", "MSE std"])
#: page labels of the averaged metrics
METRIC_LABELS = {"alpha": "alpha", "log_norm": "log10 ||W||_F^2", "log_spectral_norm": "log10 lambda_max",
                 "alpha_weighted": "alpha_weighted", "log_alpha_norm": "log10 alpha-norm"}


def table1_beside_ours(ours: pd.DataFrame) -> pd.DataFrame:
    """The source text's Table 1 (RMSE per series and metric) with the in-sample RMSE of our series beside it
    (``ours``: :func:`studylib.stats.series_table`), one row per metric. RMSE is in accuracy points for both (the
    paper fits top-1 error, which is 100 minus accuracy: the same residuals)."""
    paper = PAPER_TABLE1_RMSE.set_index("series")
    columns = {f"paper: {series} ({int(r.n)} models)": [r[m] for m in PAPER_METRICS] for series, r in paper.iterrows()}
    for series, g in ours[ours.metric.isin(PAPER_METRICS)].groupby("series", sort=False):
        g = g.set_index("metric")
        columns[f"ours: {series} ({int(g.n.iloc[0])} models)"] = [g.loc[m, "rmse"] for m in PAPER_METRICS]
    return pd.DataFrame(columns, index=pd.Index([METRIC_LABELS[m] for m in PAPER_METRICS], name="metric"))


def table5_beside_ours(ours: pd.DataFrame) -> pd.DataFrame:
    """The source text's Table 5 (R^2 and MSE over its series, mean and standard deviation) beside the same over
    our series (``ours``: :func:`studylib.stats.series_table`), one column pair per metric."""
    rows = ours[ours.metric.isin(PAPER_METRICS)].assign(mse=lambda d: d.rmse ** 2)
    by = rows.groupby("metric")
    mine = pd.DataFrame({m: (by.r2.mean()[m], by.r2.std()[m], by.mse.mean()[m], by.mse.std()[m])
                         for m in PAPER_METRICS}, index=PAPER_TABLE5.index)
    n = rows.series.nunique()
    out = pd.concat({"paper (17 series)": PAPER_TABLE5, f"ours ({n} series)": mine}, axis=1).swaplevel(axis=1)
    out = out[[(m, side) for m in PAPER_METRICS for side in ("paper (17 series)", f"ours ({n} series)")]]
    return out.rename(columns=METRIC_LABELS, level=0)


def table2_beside_ours(summary: pd.DataFrame, models) -> pd.DataFrame:
    """The source text's Table 2 (average log norm metrics of GPT and GPT-2) with the same averages of our
    ``models`` beside it (``summary``: :func:`model_summaries`), one row per model, in the same columns and units;
    mean alpha, which the paper's table lacks, is ours only."""
    columns = ["layers", "alpha", *PAPER_METRICS]
    paper = PAPER_TABLE2.set_index("model").reindex(columns=columns).rename(index=lambda m: f"paper: {m}")
    ours = summary.set_index("model").loc[list(models), columns].rename(index=lambda m: f"ours: {m}")
    return (pd.concat([paper, ours]).rename(columns={**METRIC_LABELS, "layers": "weight layers", "alpha": "mean alpha"})
            .rename_axis("model"))


def regression_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`studylib.stats.series_table` for a page: one row per (series, metric) with metric labels, tau with its
    interval in one cell."""
    return pd.DataFrame({
        "models": table.n.to_numpy(), "RMSE (%)": table.rmse.to_numpy(), "LOO RMSE (%)": table.loo_rmse.to_numpy(),
        "R²": table.r2.to_numpy(),
        "τ [95% interval]": [claims.interval_text(r.kendall_tau, r.tau_lo, r.tau_hi) for r in table.itertuples()],
        "p (τ)": table.tau_p.map(claims.p_text).to_numpy(),
        "Shapiro-Wilk p": table.shapiro_p.map(lambda p: "" if not np.isfinite(p) else f"{p:.2f}").to_numpy()},
        index=pd.MultiIndex.from_arrays([table.series, table.metric.map(METRIC_LABELS)], names=["series", "metric"]))


def published_view() -> pd.DataFrame:
    """The published version's series table for a page: one row per (series, statistic: R^2 or Kendall's tau), one
    column per metric."""
    long = paper_table_long().assign(metric=lambda d: d.metric.map(METRIC_LABELS))
    wide = long.melt(["series", "metric"], ["r2", "kendall_tau"], "statistic").pivot(
        index=["series", "statistic"], columns="metric", values="value")
    order = pd.MultiIndex.from_product([PAPER_SERIES_TABLE.series, ["r2", "kendall_tau"]])
    return (wide.reindex(order)[[METRIC_LABELS[m] for m in PAPER_METRICS]]
            .rename(index={"r2": "R²", "kendall_tau": "τ"}, level=1).rename_axis(["series", "statistic"])
            .rename_axis(None, axis=1))


def paper_table_long() -> pd.DataFrame:
    """The paper's published series table, one row per (series, metric)."""
    rows = []
    for _, r in PAPER_SERIES_TABLE.iterrows():
        for i, metric in enumerate(PAPER_METRICS):
            rows.append({"series": r.series, "metric": metric, "n": r.n, "rmse": r.rmse[i], "r2": r.r2[i],
                         "kendall_tau": r.kendall_tau[i]})
    return pd.DataFrame(rows)


def series_params(width: int, epochs: int, n_train: int | None, seed: int, device: str, depth: int = 2) -> MlpParams:
    """The run parameters of one member of the width series: ``depth`` hidden layers of ``width`` on Fashion-MNIST."""
    return MlpParams(dataset="fashion_mnist", widths=[width] * depth, epochs=epochs, lr=1e-3, batch_size=128,
                     seed=seed, n_train=n_train, n_test=None, device=device)


def _series_run(width: int, epochs: int, n_train: int | None, seed: int, device: str, depth: int = 2) -> cache.Run:
    return cache.cached_run("esd_mlp_series", series_params(width, epochs, n_train, seed, device, depth), mlp_run)


def train_series_member(width: int, epochs: int, n_train: int | None, seed: int, device: str, depth: int = 2) -> dict:
    """One cached run of the trained series (a grid task): a ReLU MLP of ``depth`` hidden layers of ``width``
    (784-w-w-10 by default) on Fashion-MNIST."""
    run = _series_run(width, epochs, n_train, seed, device, depth)
    return {"width": width, "depth": depth, "n_train": n_train, "seed": seed, "test_acc": run.metrics["test_acc"],
            "train_acc": run.metrics["train_acc"], "from_cache": run.from_cache, "path": str(run.path)}


def load_series_member(width: int, epochs: int, n_train: int | None, seed: int, device: str,
                       depth: int = 2) -> torch.nn.Module:
    """The trained MLP of :func:`train_series_member`, read back from the run cache."""
    model = nets.mlp(784, [width] * depth, 10)
    model.load_state_dict(_series_run(width, epochs, n_train, seed, device, depth).weights())
    return model.eval()


def train_series(widths, epochs, n_train, seed, device, workers=None) -> pd.DataFrame:
    """Train (or read from the cache) every member of the width series through the grid executor."""
    tasks = [dict(width=w, epochs=epochs, n_train=n_train, seed=seed, device=device) for w in widths]
    return pd.DataFrame(run_grid(train_series_member, tasks, workers=workers, desc="MLP series"))


def quality_epochs(n_train: int, steps: int, batch_size: int = 128) -> int:
    """Epochs that give about ``steps`` optimiser steps on ``n_train`` examples: the quality series trains every
    member for the same number of steps, so its members differ in the data they saw, not in how long they trained."""
    return max(1, math.ceil(steps * batch_size / n_train))


def train_quality_series(sizes, width: int, steps: int, seed: int, device: str, workers=None) -> pd.DataFrame:
    """The quality series: one architecture (the 784-w-w-10 MLP of :func:`train_series_member`) trained on
    Fashion-MNIST training sets of ``sizes`` examples for about ``steps`` steps each (:func:`quality_epochs`):
    test accuracy varies while every matrix keeps its shape, so the initialiser cannot order the metrics."""
    tasks = [dict(width=width, epochs=quality_epochs(n, steps), n_train=n, seed=seed, device=device) for n in sizes]
    runs = pd.DataFrame(run_grid(train_series_member, tasks, workers=workers, desc="quality series"))
    return runs.assign(epochs=[t["epochs"] for t in tasks])


def initial_member(width: int, seed: int) -> torch.nn.Module:
    """The width series' member of ``width`` as it was before training (the run seeds torch the same way before
    building it): the null of the width series, whose metrics come from the initialiser alone."""
    torch.manual_seed(seed)
    return nets.mlp(784, [width, width], 10).eval()


def correlation_flow(details: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Alpha against depth: for each model, its non-embedding layers in order, with relative depth in [0, 1]."""
    frames = []
    for name, df in details.items():
        d = df[~df.is_embedding].reset_index(drop=True)
        frames.append(pd.DataFrame({"model": name, "layer": d.name, "depth": np.linspace(0, 1, len(d)),
                                    "alpha": d.alpha}))
    return pd.concat(frames, ignore_index=True)


def model_summaries(details: dict[str, pd.DataFrame], n_boot: int, seed: int) -> pd.DataFrame:
    """One row per model: each averaged metric over every fitted layer (ESDs under 20 eigenvalues by
    WeightWatcher 0.7.7's small-sample rule), the number of failed fits, the number of small ESDs, and the mean
    alpha of the paper-era reading, which leaves ESDs under :data:`studylib.metrics.esd.PAPER_MIN_EVALS`
    eigenvalues out (NaN when none is left)."""
    rows = []
    for name, df in details.items():
        s = esd.summarize(df, n_boot=n_boot, seed=seed)
        large = esd.summarize(df, n_boot=n_boot, seed=seed, min_evals=esd.PAPER_MIN_EVALS)
        rows.append({"model": name, **s["mean"].to_dict(), "alpha_ci_low": s.loc["alpha", "ci_low"],
                     "alpha_ci_high": s.loc["alpha", "ci_high"], "failed_fits": int(s.loc["alpha", "n_excluded"]),
                     "layers": int(s.loc["alpha", "n_used"] + s.loc["alpha", "n_excluded"]),
                     "small_esds": int(weight_layers(df).small_esd.sum()),
                     f"alpha_min{esd.PAPER_MIN_EVALS}": large.loc["alpha", "mean"]})
    return pd.DataFrame(rows)


def summary_view(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`model_summaries` for a page, as two tables of readable width: the fits (layers, failed fits, small ESDs,
    mean alpha with its interval in one cell and the paper-era reading of small ESDs beside it) and the averaged
    metrics the paper regresses on."""
    def alpha_text(r):
        if not np.isfinite(r.alpha):
            return "-"
        return f"{r.alpha:.2f} [{r.alpha_ci_low:.2f}, {r.alpha_ci_high:.2f}]"
    paper_era = f"alpha_min{esd.PAPER_MIN_EVALS}"
    fits = pd.DataFrame({
        "weight layers": summary.layers, "failed fits": summary.failed_fits, "ESDs under 20 eigenvalues": summary.small_esds,
        "mean alpha [95% CI], every fitted layer": [alpha_text(r) for r in summary.itertuples()],
        f"mean alpha, ESDs of {esd.PAPER_MIN_EVALS}+ eigenvalues": summary[paper_era].map(
            lambda v: "-" if not np.isfinite(v) else f"{v:.2f}")})
    metrics = summary[list(PAPER_METRICS)].rename(columns=lambda m: f"mean {METRIC_LABELS[m]}")
    return tuple(t.set_axis(summary.model).rename_axis("model") for t in (fits, metrics))


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


#: "a few" layers, in the response's definition of scale collapse: the third of a model's weight layers (rounded
#: up) that change most
FEW_LAYERS = 1 / 3
#: how far above chance (10 classes) a well-trained scale-collapse twin's test accuracy must be for a verdict
LEARNT_MARGIN = 0.1


def train_collapse_twins(width: int, depth: int, epochs: int, n_train: int | None, n_deficient: int, seeds,
                         device: str, workers=None) -> pd.DataFrame:
    """The scale-collapse experiment's models: for each seed, an MLP of ``depth`` hidden layers of ``width`` trained
    on ``n_train`` Fashion-MNIST examples, and its deficient twin (same seed and epochs, ``n_deficient`` examples);
    one row per model (:func:`train_series_member`'s columns and ``trained``: "well" or "deficient")."""
    tasks = [dict(width=width, epochs=epochs, n_train=n, seed=s, device=device, depth=depth)
             for s in seeds for n in (n_train, n_deficient)]
    runs = pd.DataFrame(run_grid(train_series_member, tasks, workers=workers, desc="scale-collapse twins"))
    return runs.assign(trained=["well", "deficient"] * len(seeds))


def collapse_changes(well: list[pd.DataFrame], deficient: list[pd.DataFrame], column: str) -> pd.DataFrame:
    """Per seed and weight layer, the change of ``column`` (a per-layer value of :func:`studylib.metrics.esd.analyze`)
    from each well-trained model to its deficient twin and, as the null, to the well-trained model of the next seed
    (a change that is seed noise only). ``well``, ``deficient``: analyses in seed order. One row per (seed, kind,
    layer), layers numbered from the input."""
    rows = []
    for i, base in enumerate(well):
        ref = weight_layers(base)[column].to_numpy()
        for kind, other in (("deficient twin", deficient[i]), ("another seed", well[(i + 1) % len(well)])):
            rows += [{"seed": i, "kind": kind, "layer": layer, "change": float(d)}
                     for layer, d in enumerate(weight_layers(other)[column].to_numpy() - ref, start=1)]
    return pd.DataFrame(rows)


def concentration(changes, few: float = FEW_LAYERS) -> float:
    """The share of the total absolute change carried by the ``few`` (a fraction of the layers, rounded up) layers
    that change most: 1 when only those layers change, ``few`` when every layer changes by the same amount; NaN
    when nothing changes."""
    a = np.sort(np.abs(np.asarray(changes, float)))[::-1]
    total = a.sum()
    return float(a[:max(1, math.ceil(few * len(a)))].sum() / total) if total > 0 else math.nan


def collapse_concentrations(changes: pd.DataFrame) -> pd.DataFrame:
    """:func:`concentration` of every seed's layer changes (:func:`collapse_changes`): one row per seed, one column
    per kind of change."""
    return changes.groupby(["seed", "kind"]).change.apply(concentration).unstack("kind")


def scale_collapse_claim(changes: dict[str, pd.DataFrame], twins: pd.DataFrame, level: float = 0.95) -> claims.Claim:
    """Scale collapse as the authors' response defines it, read per layer: in the deficient twin "the size scale or
    norm of one or more layers changes a lot, while [that] of the remaining layers changes very little". Per norm
    (``changes``: label -> :func:`collapse_changes`), the change is concentrated in a few layers when the deficient
    twin's :func:`concentration` exceeds that of the change to another seed of the well-trained model (uneven noise
    is concentrated too): a paired t interval over seeds, the norms decided each on its own. A verdict needs twins
    that are what they stand for (``twins``: :func:`train_collapse_twins`): every well-trained model
    :data:`LEARNT_MARGIN` above chance on the test set and above its deficient twin."""
    parts = {label: claims.median_claim(c["deficient twin"], c["another seed"], expected_sign=1, level=level,
                                      unit="seeds", statistic=f"share of the change in {label} carried by the top "
                                      f"third of layers: deficient twin - another seed")
             for label, c in ((label, collapse_concentrations(frame)) for label, frame in changes.items())}
    claim = replace(claims.combine("Scale collapse: in a deficiently trained model a few layers' norms change a lot, "
                                   "the rest very little", "response to the reviewers; §5, Table 2", parts,
                                   rule="each", id="scale-collapse"), paper=RESPONSE)
    acc = twins.pivot(index="seed", columns="trained", values="test_acc")
    met = bool((acc.well >= 1 / 10 + LEARNT_MARGIN).all() and (acc.well > acc.deficient).all())
    return claims.precondition(claim, met, f"a well-trained twin is not {LEARNT_MARGIN:.0%} above chance or not above "
                                          "its deficient twin")


#: the chapter's sources, as the verdicts page names them
PAPER = "Martin, Peng & Mahoney (2021)"
RESPONSE = "Martin, Peng & Mahoney (n.d.), response to reviewers"


def claims_table(details: dict[str, pd.DataFrame], frame: pd.DataFrame, deficient: tuple[str, str],
                 collapse: claims.Claim, level: float = 0.95) -> pd.DataFrame:
    """The claims of seeds 002/004, each decided by the claims engine.

    ``details``: per-model analyses; ``frame``: one row per model of a series (columns ``series``, ``accuracy``
    and the averaged metrics); ``deficient``: (well trained, deficiently trained) model names of one
    architecture; ``collapse``: :func:`scale_collapse_claim`. The random twin's larger alphas and smaller spectral norms (its initialiser), the deficient
    twin's smaller norms (fewer steps), alpha_weighted against the log alpha-norm (a bound) and alpha's
    invariance to the conv scaling (exact) hold by construction: the chapter shows them as checks, not claims.
    """
    pre = weight_layers(details["MiniLM-L6"]).dropna(subset=["alpha"])
    out = [
        claims.share_claim(pre.alpha < 6, expected_sign=1, level=level, id="heavy-tailed",
                           claim="Trained weight matrices are heavy-tailed (alpha below 6), not Marchenko-Pastur",
                           where="§3, Fig. 1", statistic="share of MiniLM-L6 layers with alpha below 6", unit="layers"),
        claims.median_claim(pre.rand_num_spikes, pre.num_spikes, expected_sign=-1, level=level,
                          id="shuffling-destroys-tail",
                          claim="Shuffling a matrix's entries destroys its heavy tail", where="§3, Fig. 1",
                          statistic="median change in MP outliers when shuffled (MiniLM-L6)", unit="layers"),
    ]
    for series, group in frame.groupby("series", sort=False):
        out.append(claims.combine(
            f"Within a series, smaller metrics mean higher accuracy ({series})", "§4, Tables 1 and 5",
            {m: claims.rank_claim(group[m], group.accuracy, -1, level=level, unit="models",
                                  statistic=f"tau ({m}, accuracy)") for m in PAPER_METRICS}, rule="each",
            id=f"smaller-is-better-{claims.slug(series)}"))
        out.append(claims.tau_difference_claim(
            group.alpha_weighted, group.log_norm, group.accuracy, -1, level=level, unit="models",
            id=f"alpha-weighted-beats-log-norm-{claims.slug(series)}",
            claim=f"alpha_weighted predicts accuracy better than the log norm ({series})", where="§4, Table 5",
            statistic="tau(alpha_weighted, accuracy) - tau(log_norm, accuracy)"))
    well, poor = (weight_layers(details[name]).reset_index(drop=True) for name in deficient)
    out.append(claims.median_claim(poor.alpha, well.alpha, expected_sign=1, level=level, id="deficient-larger-alphas",
                                 claim=f"A deficiently trained twin has larger alphas ({deficient[1]} vs {deficient[0]})",
                                 where="§5, Fig. 5(a)", statistic="median alpha difference, layer by layer",
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
                                "an interval)", "models", level, paper=RESPONSE, id="non-normal-errors"))
    else:
        out.append(replace(claims.not_testable(claim, where, f"series of {', '.join(map(str, sizes))} models: "
                                               f"Shapiro-Wilk has no power below {stats.NORMALITY_MIN_N}",
                                               id="non-normal-errors"), paper=RESPONSE))
    out.append(collapse)
    out.append(claims.not_testable("Correlation flow: better architectures keep alpha near 2 through depth "
                                   "(ResNet vs VGG)", "§4, Fig. 4", "needs several pre-trained architectures of one "
                                   "task; only EfficientNet-Lite is available offline", id="correlation-flow"))
    return claims.table(out)

