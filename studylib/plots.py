"""Plot helpers shared by the chapters: the book's style, image grids, class counts, training curves and each
chapter's figures.

Introduced on the "data and models" page. Importing this module changes no matplotlib setting; every chapter
calls :func:`book_style` once.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

#: the book's matplotlib settings (see :func:`book_style`)
BOOK_STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
              "axes.spines.right": False, "font.size": 10}


def book_style() -> None:
    """Apply the book's figure style (:data:`BOOK_STYLE`) to matplotlib; every chapter calls it once."""
    plt.rcParams.update(BOOK_STYLE)


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


def esd_panels(axes, evals, shuffled, fit_alpha: float, fit_xmin: float, mp_edge: float, title: str,
               label: str = "weights"):
    """ESD audit chapter, the paper's Fig. 1: (left) histogram of log10 eigenvalues of a matrix (``label``) and
    of the same matrix with its entries shuffled, with the Marchenko-Pastur bulk edge; (right) the
    complementary CDF of the eigenvalues on log-log axes with the fitted power-law tail."""
    left, right = axes
    bins = np.histogram_bin_edges(np.log10(np.concatenate([evals[evals > 0], shuffled[shuffled > 0]])), 60)
    left.hist(np.log10(evals[evals > 0]), bins, alpha=0.6, label=label, color="tab:blue")
    left.hist(np.log10(shuffled[shuffled > 0]), bins, alpha=0.6, label="entries shuffled", color="tab:gray")
    left.axvline(np.log10(mp_edge), color="k", ls="--", lw=1, label="MP bulk edge")
    left.set(xlabel=r"$\log_{10}\lambda$", ylabel="count", title=title)
    left.legend(fontsize=7)
    x = np.sort(evals[evals > 0])
    ccdf = 1 - np.arange(len(x)) / len(x)
    right.loglog(x, ccdf, ".", ms=3, color="tab:blue", label="ESD")
    if np.isfinite(fit_alpha):
        tail = x[x >= fit_xmin]
        start = (x >= fit_xmin).mean()
        right.loglog(tail, start * (tail / fit_xmin) ** (1 - fit_alpha), "r-", lw=1.5,
                     label=rf"power law, $\alpha$={fit_alpha:.2f}")
        right.axvline(fit_xmin, color="r", ls=":", lw=1)
    right.set(xlabel=r"$\lambda$", ylabel=r"$P(\Lambda \geq \lambda)$")
    right.legend(fontsize=7)


def correlation_flow(flow, groups: dict[str, list[str]]):
    """ESD audit chapter: alpha of each layer against relative depth, one panel per group of models."""
    fig, axes = plt.subplots(1, len(groups), figsize=(3.3 * len(groups), 3.3), sharey=True, squeeze=False)
    for ax, (title, names) in zip(axes[0], groups.items()):
        for name in names:
            d = flow[flow.model == name]
            ax.plot(d.depth, d.alpha, "o-", ms=3, lw=1, label=name)
        ax.axhspan(2, 6, color="green", alpha=0.07)
        ax.set(xlabel="relative depth", yscale="log")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(r"$\alpha$ (band: 2 to 6)")
    fig.tight_layout()
    return fig


def metric_vs_accuracy(frame, metrics, accuracy_label: str, labels: dict | None = None):
    """ESD audit chapter: one row of panels per series (accuracy against each metric; two metrics keep the panels
    legible at page width), so that series with different accuracy scales are never mixed; ``labels``: metric ->
    axis label."""
    groups = list(frame.groupby("series", sort=False))
    fig, axes = plt.subplots(len(groups), len(metrics), figsize=(3.7 * len(metrics), 2.6 * len(groups)), squeeze=False)
    for row, (series, d) in zip(axes, groups):
        for ax, metric in zip(row, metrics):
            ax.plot(d[metric], d.accuracy, "o", color="tab:blue")
            for _, r in d.iterrows():
                ax.annotate(r.label, (r[metric], r.accuracy), fontsize=8, xytext=(2, 2), textcoords="offset points")
            ax.set_xlabel((labels or {}).get(metric, metric))
        row[0].set_ylabel(f"{series}\n{accuracy_label}", fontsize=8)
    fig.tight_layout()
    return fig


def paired_histograms(frames: dict, column: str, xlabel: str, ax=None, bins: int = 25):
    """ESD audit chapter, GPT vs GPT-2 analogue: overlaid histograms of one per-layer column."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    values = {k: v[column].replace([np.inf, -np.inf], np.nan).dropna() for k, v in frames.items()}
    edges = np.histogram_bin_edges(np.concatenate([v.to_numpy() for v in values.values()]), bins)
    for name, v in values.items():
        ax.hist(v, edges, alpha=0.55, label=f"{name} (n={len(v)})")
    ax.set(xlabel=xlabel, ylabel="layers")
    ax.legend(fontsize=7)
    return ax


def collapse_layers(changes: dict, kinds: dict[str, str] | None = None):
    """ESD audit chapter, scale collapse: per weight layer, the mean change of each norm (``changes``: page label ->
    :func:`studylib.studies.esd.collapse_changes` frame) over seeds, with the seeds' standard deviation as error
    bars, one line per kind of change."""
    fig, axes = _panels(len(changes), per_row=2, width=4.6, height=3.2)
    for ax, (label, frame) in zip(axes, changes.items()):
        for kind, g in frame.groupby("kind", sort=False):
            by_layer = g.groupby("layer").change
            ax.errorbar(by_layer.mean().index, by_layer.mean(), yerr=by_layer.std(ddof=1), marker="o", capsize=3,
                        label=(kinds or {}).get(kind, kind))
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set(xlabel="weight layer (from the input)", ylabel=f"change in {label}")
        ax.set_xticks(sorted(frame.layer.unique()))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _cell_table(frame, value, rows="noise", cols="width"):
    return frame.groupby([rows, cols])[value].mean().unstack(cols).sort_index(ascending=False)


def _panels(n: int, per_row: int = 3, width: float = 3.4, height: float = 3.0):
    """A figure of ``n`` panels, at most ``per_row`` a row (spare axes hidden); returns (fig, the n axes)."""
    rows = -(-n // per_row)
    cols = min(n, per_row)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, list(axes.ravel()[:n])


def _heatmap_axes(ax, t, xlabel: bool = True, ylabel: bool = True):
    ax.set_xticks(range(t.shape[1]))
    ax.set_xticklabels(t.columns, rotation=90 if t.shape[1] > 6 else 0)
    ax.set_yticks(range(t.shape[0]))
    ax.set_yticklabels([f"{v:.1f}" for v in t.index])
    if xlabel:
        ax.set_xlabel("width")
    if ylabel:
        ax.set_ylabel("noise ratio")
    ax.grid(False)


def layer_heatmaps(layers, value: str, label: str, symmetric: bool = False, mark_row_max: bool = False):
    """Layer utilization chapter (Figs. 1, 2 and 5): one heatmap per layer (three a row), width across, noise
    ratio down, the mean over repeats of the live runs; log colour scale (symmetric-log when ``symmetric``, for
    signed contributions) shared by the panels, ``label`` on the colour bar; with ``mark_row_max`` each row's
    maximum is outlined in green."""
    from matplotlib.colors import LogNorm, SymLogNorm
    layers = layers[~layers.dead]
    layer_ids = sorted(layers.layer.unique())
    tables = [_cell_table(layers[layers.layer == i], value) for i in layer_ids]
    finite = np.concatenate([t.to_numpy().ravel() for t in tables])
    finite = finite[np.isfinite(finite)]
    if symmetric:
        vmax = float(np.abs(finite).max()) if len(finite) else 1.0
        norm = SymLogNorm(linthresh=max(vmax * 1e-3, 1e-6), vmin=-vmax, vmax=vmax)
        cmap = "RdBu_r"
    else:
        positive = finite[finite > 0]
        norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if len(positive) else None
        cmap = "viridis"
    fig, axes = _panels(len(layer_ids))
    for k, (ax, i, t) in enumerate(zip(axes, layer_ids, tables)):
        im = ax.imshow(t.to_numpy(), aspect="auto", cmap=cmap, norm=norm)
        _heatmap_axes(ax, t, ylabel=k % 3 == 0)
        ax.set_title(f"layer {i}" + (" (input side)" if i == 1 else " (output)" if i == layer_ids[-1] else ""))
        if mark_row_max:
            for r, row in enumerate(t.to_numpy()):
                if np.isfinite(row).any():
                    c = int(np.nanargmax(row))
                    ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="lime", lw=2))
    fig.tight_layout()
    fig.colorbar(im, ax=axes, fraction=0.03, pad=0.02, label=label)
    return fig


def run_heatmaps(runs, values: dict[str, str], thresholds=None):
    """Layer utilization chapter (Fig. 3): run-level heatmaps (width across, noise down, two a row, the mean over
    repeats of the live runs) with the interpolation threshold (the smallest width that fits the noisy training
    labels) marked by a white line."""
    runs = runs[~runs.dead]
    fig, axes = _panels(len(values), per_row=2, width=4.8, height=3.3)
    for k, (ax, (value, label)) in enumerate(zip(axes, values.items())):
        t = _cell_table(runs, value)
        im = ax.imshow(t.to_numpy(), aspect="auto", cmap="magma")
        _heatmap_axes(ax, t, ylabel=k % 2 == 0)
        ax.set_title(label)
        if thresholds is not None:
            th = thresholds.set_index("noise").threshold_width
            for r, noise in enumerate(t.index):
                w = th.get(noise, np.nan)
                if np.isfinite(w):
                    c = list(t.columns).index(w)
                    ax.plot([c - 0.5, c - 0.5], [r - 0.5, r + 0.5], color="white", lw=3)
        fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    return fig


def utilization_scatter(layers, target: str, xlabel: str):
    """Layer utilization chapter (Fig. 4): each layer's utilization against a run-level target, one panel
    per layer (three a row), live runs under the threshold in blue and over it in red."""
    layers = layers[~layers.dead].dropna(subset=[target])
    layer_ids = sorted(layers.layer.unique())
    fig, axes = _panels(len(layer_ids), height=3.1)
    for k, (ax, i) in enumerate(zip(axes, layer_ids)):
        d = layers[layers.layer == i]
        for side, colour in (("under", "tab:blue"), ("over", "tab:red")):
            s = d[d.side == side]
            ax.scatter(s[target], s.utilization, s=12, color=colour, alpha=0.6, label=f"{side} the threshold")
        ax.set(title=f"layer {i}", xlabel=xlabel, yscale="log")
        if k % 3 == 0:
            ax.set_ylabel(r"utilization $\Vert W - W_0 \Vert_F$")
    axes[0].legend()
    fig.tight_layout()
    return fig


def contribution_by_depth(layers, values: dict[str, str]):
    """Layer utilization chapter (Fig. 5 summary): mean contribution by layer depth over the live runs, per noise
    ratio, bars one standard error over runs; three panels a row."""
    layers = layers[~layers.dead]
    colours = {noise: f"C{k}" for k, noise in enumerate(sorted(layers.noise.unique()))}
    fig, axes = _panels(len(values), width=4.0, height=3.2)
    for ax, (value, label) in zip(axes, values.items()):
        for noise, d in layers.dropna(subset=[value]).groupby("noise"):
            g = d.groupby("layer")[value]
            ax.errorbar(g.mean().index, g.mean().to_numpy(), yerr=g.sem().to_numpy(), fmt="o-", capsize=3,
                        color=colours[noise], label=f"noise {noise:.1f}")
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xlabel="layer (1 = input side)", title=label)
        ax.set_yscale("symlog", linthresh=1e-2)
    axes[0].set_ylabel("contribution (nats)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def _group_order(groups) -> list[str]:
    layers = sorted((g for g in groups if g.startswith("layer_")), key=lambda g: int(g.split("_")[1]))
    return ["embedding"] + layers + [g for g in ("pooler", "classifier") if g in set(groups)]


def iiw_layers(layerwise, title: str):
    """IIW chapter (the paper's Fig. 1): IIW by group on a log scale, pre-trained and random, one panel per
    (model, task): the geometric mean over seeds with error bars of one geometric standard deviation."""
    keys = list(layerwise.groupby(["model", "task"]).groups)
    cols = min(3, len(keys))
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.2 * rows), squeeze=False)
    for ax, (model, task) in zip(axes.flat, keys):
        d = layerwise[(layerwise.model == model) & (layerwise.task == task) & (layerwise.iiw > 0)]
        order = _group_order(d.group.unique())
        for init, colour, marker in (("pre-trained", "tab:orange", "o-"), ("random", "tab:green", "s--")):
            part = d[d.init == init]
            logs = np.log10(part.iiw).groupby(part.group).agg(["mean", "std"]).reindex(order)
            ax.errorbar(range(len(order)), 10 ** logs["mean"], fmt=marker, color=colour, label=init, capsize=2,
                        yerr=[10 ** logs["mean"] - 10 ** (logs["mean"] - logs["std"].fillna(0)),
                              10 ** (logs["mean"] + logs["std"].fillna(0)) - 10 ** logs["mean"]])
        ax.set_xticks(range(len(order)), [g.replace("layer_", "L") for g in order], rotation=45, fontsize=8)
        ax.set(yscale="log", title=f"{model}, {task}", ylabel="IIW")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def paper_layers(table):
    """IIW chapter: the paper's layer-wise IIW (its Tables 3-5) in the layout of :func:`iiw_layers`, one panel
    per task, one line per model."""
    tasks = list(dict.fromkeys(table.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.4 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for model, d in table[table.task == task].groupby("model", sort=False):
            order = _group_order(d.group.unique()) + (["fc"] if "fc" in set(d.group) else [])
            ax.plot(range(len(order)), d.set_index("group").iiw.reindex(order).to_numpy(), "o-", label=model, ms=3)
        ax.set_xticks(range(len(order)), [g.replace("layer_", "L") for g in order], rotation=90, fontsize=7)
        ax.set(yscale="log", title=task, ylabel="IIW (paper)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def iiw_epochs(epochs, variants):
    """IIW fine-tuning chapter (the paper's Fig. 2): IIW (left axis, log scale; geometric mean over seeds, bars one
    geometric standard deviation) and test accuracy (right axis, mean over seeds) per epoch, one panel per task,
    one colour per variant; the lowest-IIW epoch is ringed and the best-accuracy epoch starred."""
    tasks = list(dict.fromkeys(epochs.task))
    cols = min(3, len(tasks))
    rows = int(np.ceil(len(tasks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    colours = dict(zip(variants, ("tab:orange", "tab:green", "tab:purple", "tab:blue")))
    for ax, task in zip(axes.flat, tasks):
        right = ax.twinx()
        for v in variants:
            d = epochs[(epochs.task == task) & (epochs.variant == v) & (epochs.iiw > 0)]
            if d.empty:
                continue
            c = colours[v]
            g = d.assign(log_iiw=np.log10(d.iiw)).groupby("epoch").agg(
                log_iiw=("log_iiw", "mean"), sd=("log_iiw", "std"), test_acc=("test_acc", "mean")).reset_index()
            sd = g.sd.fillna(0)
            ax.errorbar(g.epoch, 10 ** g.log_iiw, yerr=[10 ** g.log_iiw - 10 ** (g.log_iiw - sd),
                                                        10 ** (g.log_iiw + sd) - 10 ** g.log_iiw],
                        fmt="o-", color=c, capsize=2, label=f"{v} IIW")
            right.plot(g.epoch, g.test_acc, "s--", color=c, alpha=0.6, label=f"{v} accuracy")
            trained = g[g.epoch > 0]
            if len(trained):
                lo, best = trained.loc[trained.log_iiw.idxmin()], trained.loc[trained.test_acc.idxmax()]
                ax.plot(lo.epoch, 10 ** lo.log_iiw, "o", ms=12, mfc="none", mec=c, mew=2)
                right.plot(best.epoch, best.test_acc, "*", ms=13, color=c)
        ax.set(title=task, xlabel="epoch", ylabel="IIW (solid)", yscale="log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_ylabel("test accuracy (dashed)")
        right.grid(False)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def gaussian_taylor(curves):
    """Taylor-error chapter: exact KL (solid) and its second-order expansion (dashed) for a Gaussian whose mean,
    covariance scale or both change (left), and the relative error of the expansion (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for (change, d), c in zip(curves.groupby("change", sort=False), ("tab:blue", "tab:orange", "tab:purple")):
        left.plot(d["size"], d.kl_exact, "-", color=c, label=f"{change}: exact")
        left.plot(d["size"], d.kl_quadratic, "--", color=c, label=f"{change}: quadratic")
        right.plot(d["size"], d.rel_error.abs().clip(lower=1e-17), "o-", ms=3, color=c, label=change)
    left.set(xscale="log", yscale="log", xlabel="size of the change (Mahalanobis shift r, or scale change s)",
             ylabel="KL (nats)")
    right.set(xscale="log", yscale="log", xlabel="size of the change", ylabel="|quadratic / exact - 1|")
    right.axhline(0.1, color="grey", lw=0.8, ls=":")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def taylor_paths(results):
    """Taylor-error chapter: along theta_Z - t delta, the exact predictive KL and the two quadratic forms (top),
    and the relative error of the model-Fisher term (bottom), one column per task."""
    fig, axes = plt.subplots(2, len(results), figsize=(4.4 * len(results), 6), squeeze=False, sharex=True)
    for (top, bottom), r in zip(axes.T, results):
        p = r["path"]
        top.plot(p.t, p.kl_exact, "o-", ms=3, color="black", label="exact KL")
        top.plot(p.t, p.kl_model_fisher, "--", color="tab:blue", label=r"$\frac{t^2}{2}\delta^\top F\delta$ (model Fisher)")
        top.plot(p.t, p.kl_empirical_fisher, ":", color="tab:red", label="same, empirical Fisher (IIW)")
        top.set(xscale="log", yscale="log", title=f"{r['model']}, {r['task']}", ylabel="mean KL (nats)")
        bottom.plot(p.t, p.rel_error, "o-", ms=3, color="tab:blue", label="model Fisher")
        bottom.plot(p.t, p.rel_error_empirical, "s:", ms=3, color="tab:red", label="empirical Fisher")
        bottom.axhspan(-0.1, 0.1, color="grey", alpha=0.15, lw=0)
        bottom.axhline(0, color="grey", lw=0.8)
        bottom.set(xscale="log", xlabel="t  (t = 1: weight tensors at theta_0)", ylabel="quadratic / exact - 1")
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def delta_histograms(results):
    """Taylor-error chapter (the paper's Fig. 3): histogram of ``log10 |theta_Z - theta_0|`` over the parameters that
    moved, with their Q2 and Q3 (solid, dashed) and the paper's 1e-4 and 1e-3 marks (dotted), one panel per task."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.4 * len(results), 3.2), squeeze=False)
    for ax, r in zip(axes[0], results):
        h = r["histogram"]
        ax.stairs(h["counts"], 10.0 ** h["edges"], fill=True, color="tab:blue", alpha=0.6)
        ax.axvline(r["moved_q50"], color="black", lw=1.2, label=f"Q2 = {r['moved_q50']:.1e}")
        ax.axvline(r["moved_q75"], color="black", lw=1.2, ls="--", label=f"Q3 = {r['moved_q75']:.1e}")
        for mark in (1e-4, 1e-3):
            ax.axvline(mark, color="tab:red", lw=0.8, ls=":")
        filled = np.flatnonzero(h["counts"])
        if filled.size:
            ax.set_xlim(10.0 ** min(h["edges"][filled[0]] - 0.5, -4.5), 10.0 ** max(h["edges"][filled[-1] + 1] + 0.5, -2.5))
        ax.set(xscale="log", xlabel=r"$|\theta_Z - \theta_0|$", ylabel="parameters",
               title=f"{r['task']} ({r['unchanged']:.0%} unchanged)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _mean_sd(runs, keys: list[str], col: str):
    """Mean and standard deviation over the seeds of ``col`` per ``keys`` (the sd is 0 for a single seed)."""
    g = runs.groupby(keys, sort=False)[col]
    return g.mean(), g.std().fillna(0.0)


def lines_by(runs, x: str, values: dict[str, str], hue: str, xlabel: str | None = None, logx: bool = False,
             hue_label: str | None = None):
    """Model-information chapter: one panel per column of ``values`` (column -> axis label), one line per ``hue``,
    the mean over the seeds of ``runs`` (one row per setting and seed) with one standard deviation as error bars,
    the lines nudged apart along x so that their bars do not hide each other."""
    fig, axes = _panels(len(values), width=3.3, height=2.9)
    groups = list(runs.groupby(hue, sort=False))
    span = np.ptp(runs[x].to_numpy(dtype=float)) or 1.0
    for ax, (col, label) in zip(axes, values.items()):
        for i, (key, d) in enumerate(groups):
            mean, sd = _mean_sd(d, [x], col)
            order = np.argsort(mean.index.to_numpy())
            nudge = (i - (len(groups) - 1) / 2) * 0.012 * span
            ax.errorbar(mean.index.to_numpy(dtype=float)[order] + nudge, mean.to_numpy()[order], sd.to_numpy()[order],
                        fmt="o-", ms=4, capsize=2, label=_short(key))
        ax.set(xlabel=xlabel or x, ylabel=label, xscale="log" if logx else "linear")
        ticks = np.unique(runs[x].to_numpy(dtype=float))
        if len(ticks) <= 10 and np.all(ticks == np.round(ticks)):  # a few whole numbers: one tick each
            ax.set_xticks(ticks)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=min(len(groups), 6), fontsize=9,
               title=hue_label or hue, title_fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.8))
    return fig


def pair_heatmaps(pairs, values: dict[str, str], names: dict[str, str] | None = None):
    """Model-information chapter (the paper's Fig. 5): a source x target heat map per column of ``values``, two a
    row; ``names`` gives readable domain names."""
    fig, axes = _panels(len(values), per_row=2, width=4.2, height=3.6)
    label = lambda d: (names or {}).get(d, d).replace(" ", "\n")
    for ax, (col, title) in zip(axes, values.items()):
        table = pairs.pivot(index="source", columns="target", values=col)
        im = ax.imshow(table.to_numpy(), cmap="viridis")
        ax.set_xticks(range(len(table.columns)), [label(c) for c in table.columns], fontsize=9)
        ax.set_yticks(range(len(table.index)), [label(c) for c in table.index], fontsize=9)
        for (i, j), v in np.ndenumerate(table.to_numpy()):
            ax.text(j, i, f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}", ha="center", va="center", color="w", fontsize=10)
        ax.set(title=title, xlabel="target", ylabel="source")
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def component_bars(runs, label: str, values: dict[str, str], names: dict[str, str] | None = None):
    """Model-information chapter (the paper's Figs. 1 and 7): a bar per ``label`` (``names``: readable names) for each
    column of ``values``, the mean over the seeds of ``runs`` with one standard deviation as error bars."""
    fig, axes = _panels(len(values), width=3.6 if len(values) > 2 else 4.6, height=3.2)
    for ax, (col, title) in zip(axes, values.items()):
        mean, sd = _mean_sd(runs, [label], col)
        ax.bar(range(len(mean)), mean, yerr=sd, capsize=3, color="tab:blue")
        ax.set_xticks(range(len(mean)), [(names or {}).get(k, str(k)) for k in mean.index], rotation=30, ha="right",
                      fontsize=10)
        ax.set(ylabel=title)
    fig.tight_layout()
    return fig


def _short(value) -> str:
    """A legend value: numbers in their shortest form, anything else as it is."""
    return f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value)


def _legend(init: str, setting: str) -> str:
    """A line's legend: the initialisation and the setting, once when the setting already names it."""
    return setting if setting.startswith(init) else f"{init}, {setting}"


#: line style of each initialisation in the pre-trained vs random chapter's experiments
INIT_STYLES = {"pre-trained": "-", "random": "--", "norm-matched random": ":"}


def stage_curves(epochs, hue: str, hue_label: str):
    """Pre-trained vs random chapter, the experiments: per epoch, training loss, test accuracy, IIW and its factors
    ``||delta||``, ``||g||``, ``|cos(delta, g)|`` (two rows of three panels); one colour per value of ``hue`` (e.g. the learning
    rate), one line style per initialisation; means over seeds with one standard deviation (geometric on the log
    axes)."""
    panels = {"train_loss": ("training loss", False), "test_acc": ("test accuracy", False), "iiw": ("IIW", True),
              "delta_norm": ("||delta||", True), "grad_norm": ("||g||", True), "cos": ("|cos(delta, g)|", True)}
    frame = epochs.assign(cos=epochs["cos"].abs())
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.2))
    colours = dict(zip(sorted(frame[hue].unique()), plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, (col, (label, log)) in zip(axes.flat, panels.items()):
        for (value, init), d in frame.groupby([hue, "init"]):
            d = d[d[col] > 0] if log else d.dropna(subset=[col])
            if d.empty:
                continue
            v = np.log10(d[col]) if log else d[col]
            g = v.groupby(d.epoch).agg(["mean", "std"]).fillna(0)
            mid, lo, hi = g["mean"], g["mean"] - g["std"], g["mean"] + g["std"]
            if log:
                mid, lo, hi = 10 ** mid, 10 ** lo, 10 ** hi
            ax.errorbar(g.index, mid, yerr=[mid - lo, hi - mid], fmt="o" + INIT_STYLES[init], ms=3, capsize=2,
                        color=colours[value], label=_legend(init, f"{hue_label} {_short(value)}".strip()))
        ax.set(xlabel="epoch", ylabel=label, yscale="log" if log else "linear")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def ranking_chart(table):
    """Head-to-head chapter: every measure's granulated Psi (mean over axes) and overall Kendall tau with the gap,
    each with its 95% interval, ranked as in ``table`` (:func:`studylib.studies.head_to_head.scores`)."""
    fig, ax = plt.subplots(figsize=(7.5, 0.36 * len(table) + 1.4))
    y = np.arange(len(table))[::-1]
    for col, offset, marker, name in (("Psi", 0.14, "o", "Ψ (five training axes)"), ("tau", -0.14, "s", "overall τ")):
        est = table[col].to_numpy(float)
        err = np.abs(np.vstack([est - table[f"{col}_low"], table[f"{col}_high"] - est]))
        ax.errorbar(est, y + offset, xerr=np.nan_to_num(err), fmt=marker, ms=5, capsize=2, label=name)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, table.label, fontsize=10)
    ax.set(xlabel="rank correlation with the generalization gap")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.0 + 0.9 / (0.36 * len(table) + 1.4)), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def psi_heatmap(table, axis_names: dict[str, str], divider_before: str | None = None):
    """Head-to-head chapter: each measure's granulated psi along each hyperparameter axis (Jiang et al.'s columns),
    measures in ``table``'s order; a vertical line before the axis ``divider_before`` (the axes its Psi leaves out)."""
    cols = [c for c in table.columns if c.startswith("psi_") and c[4:] in axis_names]
    values = table[cols].to_numpy(float)
    fig, ax = plt.subplots(figsize=(0.75 * len(cols) + 3.0, 0.3 * len(table) + 1.2))
    im = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), [axis_names[c[4:]].replace(" ", "\n") for c in cols], fontsize=9)
    ax.set_yticks(range(len(table)), table.label, fontsize=10)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=10, color="w" if abs(v) > 0.6 else "k")
    if divider_before and f"psi_{divider_before}" in cols:
        ax.axvline(cols.index(f"psi_{divider_before}") - 0.5, color="k", lw=2)
    ax.grid(False)
    fig.colorbar(im, ax=ax, shrink=0.8, label="ψ (mean within-group τ)")
    fig.tight_layout()
    return fig


def gap_by_axis(zoo, axes: dict[str, str], gap: str = "gap"):
    """Head-to-head chapter: the generalization gap of every model against each hyperparameter axis (three panels a
    row), every model a dot, the mean per value a bar."""
    fig, panels = _panels(len(axes), per_row=3, width=2.9, height=2.5)
    rng = np.random.default_rng(0)
    for ax, (axis, label) in zip(panels, axes.items()):
        values = sorted(zoo[axis].unique())
        for i, v in enumerate(values):
            g = zoo.loc[zoo[axis] == v, gap].to_numpy(float)
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(g)), 100 * g, s=6, alpha=0.4, color="tab:blue")
            ax.plot([i - 0.25, i + 0.25], [100 * g.mean()] * 2, color="k", lw=2)
        ax.set_xticks(range(len(values)), [_short(v) for v in values])
        ax.set(xlabel=label, ylabel="gap (points)")
    fig.tight_layout()
    return fig
