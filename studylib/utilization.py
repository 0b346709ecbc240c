"""Layer utilization, layer contribution, generalization and resilience (Wang & Yang, seed 001).

Used by the layer utilization and re-initialisation chapter. Definitions, with W_l the trained and
W_l^0 the initial weights of layer l:

- contribution of layer l (Definition 5): metric(model with layer l reset to W_l^0) - metric(model);
- utilization of layer l (Definition 6): the distance ||W_l - W_l^0||. The paper says "l2"; we report
  the Frobenius norm of the matrix difference (``utilization``) and its spectral norm
  (``utilization_spectral``) as a second column; biases are left out of both;
- generalization (Definition 7): |J_train - J_test|, the gap between training and test loss;
- resilience (Definition 8): the loss on the "recovered" set, the training examples whose labels were
  shuffled, scored against their original labels.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import config


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


def paper_mlp(in_dim: int, width: int, num_classes: int, depth: int = 5) -> nn.Sequential:
    """The paper's network: ``depth`` fully connected layers with ReLU between them, no skips."""
    if depth < 2:
        raise ValueError(f"depth must be at least 2, got {depth}")
    dims = [in_dim] + [width] * (depth - 1) + [num_classes]
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(depth):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def linear_layers(model: nn.Module) -> list[str]:
    """Names of the model's Linear layers, input to output: the layers of Definitions 5 and 6."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def train_to_convergence(model: nn.Module, x, y, lr: float = 0.05, momentum: float = 0.9, batch_size: int = 128,
                         max_epochs: int = 1000, patience: int = 20, tol: float = 1e-3, seed: int = 0,
                         device=None) -> dict:
    """Plain SGD with momentum on cross-entropy until the training loss plateaus or ``max_epochs``.

    Plateau: the best training loss has not improved by a relative ``tol`` for ``patience`` epochs, or it
    fell below 1e-4 (interpolation). Returns the per-epoch training losses, the epochs run and why it stopped.
    """
    dev = config.device(device)
    model.to(dev).train()
    x, y = torch.as_tensor(x, device=dev), torch.as_tensor(y, device=dev)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses, best, since_best, reason = [], math.inf, 0, "epoch cap"
    for _ in range(max_epochs):
        total = 0.0
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            idx = idx.to(dev)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y))
        if not math.isfinite(losses[-1]):
            reason = "diverged"
            break
        if losses[-1] < best * (1 - tol):
            best, since_best = losses[-1], 0
        else:
            since_best += 1
        if losses[-1] < 1e-4:
            reason = "interpolated"
            break
        if since_best >= patience:
            reason = "plateau"
            break
    model.eval()
    return {"train_losses": losses, "epochs": len(losses), "stop_reason": reason}


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, x, y, device=None) -> tuple[float, float]:
    dev = config.device(device)
    model.to(dev).eval()
    out = model(torch.as_tensor(x, device=dev))
    yt = torch.as_tensor(y, device=dev)
    return float(nn.functional.cross_entropy(out, yt)), float((out.argmax(1) == yt).float().mean())


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


def layer_contribution(model: nn.Module, init_state: dict, layer: str, metric, data) -> float:
    """Definition 5: ``metric(model with layer reset, data) - metric(model, data)``;
    ``metric(model, data) -> float`` (e.g. a loss on the test set)."""
    return float(metric(with_layers_reset(model, init_state, [layer]), data) - metric(model, data))


def layer_utilization(model: nn.Module, init_state: dict) -> pd.DataFrame:
    """Definition 6 per Linear layer: Frobenius and spectral norms of ``W - W0`` (biases left out)."""
    state = model.state_dict()
    rows = []
    for i, layer in enumerate(linear_layers(model)):
        delta = (state[f"{layer}.weight"] - init_state[f"{layer}.weight"].to(state[f"{layer}.weight"].device)).double()
        rows.append({"layer": i + 1, "name": layer, "utilization": float(torch.linalg.matrix_norm(delta)),
                     "utilization_spectral": float(torch.linalg.matrix_norm(delta, ord=2))})
    return pd.DataFrame(rows)


def utilization_run(p: dict):
    """One cacheable run of the chapter's grid: train the paper's MLP on data with shuffled labels and
    measure everything the chapter plots (no weights are stored: every figure needs only these numbers).

    ``p`` keys: dataset, n_train, n_test, width, depth, noise, repeat, lr, momentum, batch_size,
    max_epochs, patience, seed, device.
    """
    from . import data
    from .cache import RunResult
    ds = data.load(p["dataset"], seed=p["seed"], n_train=p["n_train"], n_test=p["n_test"])
    x_tr, x_te = ds.x_train.reshape(len(ds.y_train), -1), ds.x_test.reshape(len(ds.y_test), -1)
    run_seed = p["seed"] * 1000 + p["repeat"]
    y_noisy, _ = shuffle_labels(ds.y_train, p["noise"], run_seed)
    changed = y_noisy != ds.y_train
    torch.manual_seed(run_seed)
    model = paper_mlp(x_tr.shape[1], p["width"], ds.num_classes, p["depth"])
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    info = train_to_convergence(model, x_tr, y_noisy, p["lr"], p["momentum"], p["batch_size"], p["max_epochs"],
                                p["patience"], seed=run_seed, device=p["device"])
    dev = p["device"]

    def test_loss(m, _=None):
        return loss_and_accuracy(m, x_te, ds.y_test, dev)[0]

    def train_loss_of(m, _=None):
        return loss_and_accuracy(m, x_tr, y_noisy, dev)[0]

    def recovered_loss(m, _=None):
        return loss_and_accuracy(m, x_tr[changed], ds.y_train[changed], dev)[0] if changed.any() else math.nan

    train_loss, train_acc = loss_and_accuracy(model, x_tr, y_noisy, dev)
    te_loss, te_acc = loss_and_accuracy(model, x_te, ds.y_test, dev)
    util = layer_utilization(model, init_state)
    layers = linear_layers(model)
    util["contribution_train_loss"] = [layer_contribution(model, init_state, l, train_loss_of, None) for l in layers]
    util["contribution_test_loss"] = [layer_contribution(model, init_state, l, test_loss, None) for l in layers]
    util["contribution_resilience"] = [layer_contribution(model, init_state, l, recovered_loss, None) for l in layers]
    metrics = {"train_loss": train_loss, "train_acc": train_acc, "test_loss": te_loss, "test_acc": te_acc,
               "generalization": abs(train_loss - te_loss), "resilience": recovered_loss(model),
               "noisy_fraction": float(changed.mean()), "epochs": info["epochs"], "stop_reason": info["stop_reason"],
               "num_parameters": sum(q.numel() for q in model.parameters()), "layers": util.to_dict("list")}
    for k in (1, 2):
        loss_k, acc_k = loss_and_accuracy(with_layers_reset(model, init_state, layers[-k:]), x_te, ds.y_test, dev)
        metrics[f"reinit_last{k}_test_loss"], metrics[f"reinit_last{k}_test_acc"] = loss_k, acc_k
    records = [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(info["train_losses"])]
    return RunResult(records, metrics)


UTILIZATION_DEPS = ("studylib.utilization", "studylib.data", "studylib.cache")


def grid_task(**p) -> dict:
    """A grid task for :func:`studylib.executor.run_grid`: the cached run's metrics plus its parameters."""
    from .cache import cached_run
    run = cached_run("utilization", p, utilization_run, deps=UTILIZATION_DEPS)
    return {**p, **run.metrics, "from_cache": run.from_cache}


def run_grid_runs(dataset: str, widths, noises, repeats: int, settings: dict, workers=None) -> pd.DataFrame:
    """Every (width, noise, repeat) run of one data set through the grid executor; one row per run."""
    from .executor import run_grid
    tasks = [{"dataset": dataset, "width": w, "noise": float(nz), "repeat": r, **settings}
             for w in widths for nz in noises for r in range(repeats)]
    return pd.DataFrame(run_grid(grid_task, tasks, workers=workers, desc=f"{dataset} grid"))


def per_layer(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, layer): the runs' per-layer lists unpacked next to their run-level columns."""
    rows = []
    for _, r in runs.iterrows():
        layers = pd.DataFrame(r["layers"])
        for col in ("dataset", "width", "noise", "repeat", "generalization", "resilience", "num_parameters",
                    "train_loss", "test_loss"):
            layers[col] = r[col]
        rows.append(layers)
    return pd.concat(rows, ignore_index=True)


def threshold_widths(runs: pd.DataFrame, train_acc: float = 0.99) -> pd.DataFrame:
    """The interpolation threshold of each (data set, noise): the smallest width whose runs fit the
    (noisy) training labels, mean training accuracy >= ``train_acc``; NaN if no width does."""
    mean = runs.groupby(["dataset", "noise", "width"]).train_acc.mean().reset_index()
    fits = mean[mean.train_acc >= train_acc]
    first = fits.groupby(["dataset", "noise"]).width.min()
    return mean.groupby(["dataset", "noise"]).size().to_frame("widths").join(first.rename("threshold_width")).reset_index()


def side_of_threshold(runs: pd.DataFrame, thresholds: pd.DataFrame) -> pd.Series:
    """'over' for runs at or beyond their (data set, noise) threshold width, else 'under'."""
    t = runs.merge(thresholds, on=["dataset", "noise"], how="left").threshold_width
    return pd.Series(np.where(runs.width.to_numpy() >= t.to_numpy(), "over", "under"), index=runs.index)


def utilization_taus(layers: pd.DataFrame, target: str, n_boot: int, seed: int) -> pd.DataFrame:
    """Kendall tau between each layer's utilization and a run-level ``target`` (generalization or
    resilience), per data set, with a bootstrap interval over runs (Hypothesis 2: the final layer's
    tau should be high, and higher than the first layer's)."""
    from scipy import stats
    rng = np.random.default_rng(seed)
    rows = []
    for (dataset, layer), d in layers.dropna(subset=[target]).groupby(["dataset", "layer"]):
        x, y = d.utilization.to_numpy(), d[target].to_numpy()
        tau, p = stats.kendalltau(x, y)
        boots = []
        for _ in range(n_boot):
            i = rng.integers(len(x), size=len(x))
            boots.append(stats.kendalltau(x[i], y[i])[0])
        lo, hi = np.nanquantile(boots, [0.025, 0.975])
        rows.append({"dataset": dataset, "layer": layer, "target": target, "n": len(x), "kendall_tau": tau,
                     "p": p, "tau_lo": lo, "tau_hi": hi})
    return pd.DataFrame(rows)


def reinit_effect(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy and loss change when the last k = 1, 2 layers are reset to their initial weights."""
    out = runs[["dataset", "width", "noise", "repeat", "test_acc", "test_loss"]].copy()
    for k in (1, 2):
        out[f"d_acc_last{k}"] = runs[f"reinit_last{k}_test_acc"] - runs.test_acc
        out[f"d_loss_last{k}"] = runs[f"reinit_last{k}_test_loss"] - runs.test_loss
    return out


def claims_table(runs: pd.DataFrame, layers: pd.DataFrame, thresholds: pd.DataFrame, taus: pd.DataFrame) -> pd.DataFrame:
    """The claims of seed 001, each with the evidence computed here and a verdict."""
    from scipy import stats

    from .claims import ClaimsTable
    out = ClaimsTable()
    last = layers.layer.max()
    noisy = layers[layers.noise > 0]
    # C1 / Hypothesis 1: deeper layers start contributing (to the training loss) as label noise rises
    t_first = stats.kendalltau(layers[layers.layer == 1].noise, layers[layers.layer == 1].contribution_train_loss)[0]
    t_last = stats.kendalltau(layers[layers.layer == last].noise, layers[layers.layer == last].contribution_train_loss)[0]
    out.add("Deeper layers only start contributing as the data grow more complex (Hypothesis 1)", "001 §3.2, §4.2, Fig. 1",
            f"Kendall tau between noise ratio and contribution to training loss: layer {last} {t_last:+.2f}, "
            f"layer 1 {t_first:+.2f}", t_last > 0.2 and t_last > t_first, t_last > t_first)
    # C3: utilization peaks at an intermediate width in each noise row
    peaks = layers.groupby(["dataset", "noise", "layer", "width"]).utilization.mean().reset_index()
    argmax = peaks.loc[peaks.groupby(["dataset", "noise", "layer"]).utilization.idxmax()]
    widest = layers.width.max()
    interior = float((argmax.width < widest).mean())
    out.add("Utilization rises with width up to the threshold, then falls", "001 §4.2, Fig. 2",
            f"the row maximum lies below the widest model in {interior:.0%} of (data set, noise, layer) rows",
            interior >= 0.75, interior >= 0.5)
    # C4: deeper layers peak at larger widths
    by_layer = argmax.pivot_table(index=["dataset", "noise"], columns="layer", values="width")
    later = float((by_layer[last] >= by_layer[1]).mean())
    out.add("Deeper layers peak at larger widths (the diagonal moves bottom-right)", "001 Fig. 2 caption",
            f"layer {last} peaks at a width >= layer 1's in {later:.0%} of rows", later >= 0.75, later >= 0.5)
    # C5: the interpolation threshold moves to larger widths as noise grows
    th = thresholds.dropna(subset=["threshold_width"])
    t_th = (th.groupby("dataset").apply(lambda d: stats.kendalltau(d.noise, d.threshold_width)[0], include_groups=False)
            if len(th) else pd.Series(dtype=float))
    missing = int(thresholds.threshold_width.isna().sum())
    out.add("The interpolation threshold moves to larger widths as noise grows", "001 §4.3, Fig. 3",
            "Kendall tau (noise, threshold width): " + ", ".join(f"{d} {t:+.2f}" for d, t in t_th.items())
            + f"; {missing} (data set, noise) rows never interpolate",
            len(t_th) > 0 and bool((t_th > 0).all()), len(t_th) > 0 and bool((t_th >= 0).any()))
    # Hypothesis 2 / C8 / C9: final-layer utilization tracks generalization, more than the first layer's
    g = taus[taus.target == "generalization"].set_index(["dataset", "layer"])
    datasets = sorted(g.index.get_level_values(0).unique())
    ev = "; ".join(f"{d}: layer {last} tau {g.loc[(d, last), 'kendall_tau']:+.2f} "
                   f"[{g.loc[(d, last), 'tau_lo']:+.2f}, {g.loc[(d, last), 'tau_hi']:+.2f}], layer 1 "
                   f"{g.loc[(d, 1), 'kendall_tau']:+.2f}" for d in datasets)
    strong = all(g.loc[(d, last), "tau_lo"] > 0 and g.loc[(d, last), "kendall_tau"] > g.loc[(d, 1), "kendall_tau"]
                 for d in datasets)
    positive = all(g.loc[(d, last), "kendall_tau"] > 0 for d in datasets)
    out.add("Final-layer utilization tracks the generalization gap, better than the first layer (Hypothesis 2)",
            "001 §3.2, §4.4, Fig. 4", ev, strong, positive)
    # C10: deeper layers contribute negatively to test loss and resilience (on noisy data)
    neg_last = float((noisy[noisy.layer == last].contribution_test_loss < 0).mean())
    pos_first = float((noisy[noisy.layer == 1].contribution_test_loss > 0).mean())
    out.add("Early layers help the test loss, deeper layers hurt it (noisy labels)", "001 §4.5, Fig. 5",
            f"contribution to test loss < 0 for layer {last} in {neg_last:.0%} of noisy runs; > 0 for layer 1 in "
            f"{pos_first:.0%}", neg_last >= 0.5 and pos_first >= 0.5, neg_last >= 0.5 or pos_first >= 0.5)
    # C11: re-initialising the last layers reverts overfitting
    eff = reinit_effect(runs)
    helps = float((eff[eff.noise > 0].d_loss_last1 < 0).mean())
    acc = float((eff[eff.noise > 0].d_acc_last1 > 0).mean())
    out.add("Re-initialising the final layers after training reverts overfitting", "001 §4.5, §5",
            f"resetting the last layer lowers the test loss in {helps:.0%} and raises test accuracy in {acc:.0%} "
            "of noisy-label runs", helps >= 0.5 and acc >= 0.5, helps >= 0.5)
    out.add("Models trained 10,000 epochs; 3 (MNIST) and 6 (CIFAR-10) repeats", "001 §4.1",
            "not reproduced at that scale on this CPU: runs stop at a training-loss plateau or the epoch cap "
            "(see the stop reasons above)", None)
    return out.frame()
