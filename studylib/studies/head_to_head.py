"""The head-to-head chapter's zoo grid, its scores (Kendall tau, granulated Psi, PGDL's conditional mutual
information) and the source texts' claims re-tested on the zoo.

Used by the chapter "Head to head". Each model is a cached :func:`studylib.runs.zoo.zoo_run`; this module is outside
the runs' cache key, so a change to a score or a verdict rule does not retrain the zoo.
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd

from .. import claims, judging, stats
from ..platform.cache import cached_run
from ..platform.executor import run_grid
from ..runs.zoo import AXES, ZooParams, zoo_run
from . import esd as esd_study, iiw_grid, model_information as mi_study, utilization as util_study

JIANG = "Jiang et al. (2020)"
#: every measure scored: column -> (label on the page, the source that proposes or studies it). Each is oriented as a
#: complexity: its source expects a larger value to go with a larger generalization gap.
MEASURES = {
    "iiw_fisher": ("IIW, Fisher estimator", iiw_grid.PAPER),
    "iiw_pib": ("IIW, PAC-Bayes IB code", iiw_grid.PAPER),
    "distance_init": ("distance from initialisation", util_study.PAPER),
    "distance_init_final": ("final-layer distance from init.", util_study.PAPER),
    "esd_alpha": ("ESD alpha", esd_study.PAPER),
    "esd_alpha_weighted": ("alpha-hat (weighted alpha)", esd_study.PAPER),
    "esd_log_alpha_norm": ("log alpha-norm", esd_study.PAPER),
    "esd_log_norm": ("log Frobenius norm", esd_study.PAPER),
    "esd_log_spectral_norm": ("log spectral norm", esd_study.PAPER),
    "model_information": ("model information (eq. 2)", mi_study.PAPER),
    "num_parameters": ("parameter count", JIANG),
    "log_spectral_product": ("log product of spectral norms", JIANG),
    "log_path_norm": ("log path norm", JIANG),
    "inverse_margin": ("1 / margin²", JIANG),
    "pacbayes_flatness": ("PAC-Bayes flatness 1 / σ²", JIANG),
}
#: readable names of the zoo's hyperparameter axes
AXIS_NAMES = {"depth": "depth", "width": "width", "lr": "learning rate", "batch_size": "batch size",
              "weight_decay": "weight decay", "label_noise": "label noise"}
#: the axes that change how a model is trained, not its data (Jiang et al.'s kind): Psi is their mean
TRAINING_AXES = ("depth", "width", "lr", "batch_size", "weight_decay")
#: the generalization gap every score uses (PGDL's: training minus test accuracy)
GAP = "gap"
#: seed 003's reading of label noise (§3): wrong labels confuse, they add nothing to learn
NOISE_CLAIM = "wrong labels are pure noise: they do not raise a model's information"
#: share of a zoo's models that must reach the training-loss target for a verdict to be a finding
CONVERGED_SHARE = 0.9


def zoo_tasks(axes: dict[str, list], seeds: list[int], settings: dict) -> list[dict]:
    """One task per (setting of every axis, seed): the full factorial grid, widest and deepest models first so that
    no worker idles at the end. ``axes``: each of :data:`~studylib.runs.zoo.AXES` -> its values."""
    missing = set(AXES) ^ set(axes)
    if missing:
        raise ValueError(f"axes must give values for exactly {AXES}; wrong: {sorted(missing)}")
    tasks = [{**settings, **dict(zip(AXES, values)), "seed": seed}
             for values in itertools.product(*(axes[a] for a in AXES)) for seed in seeds]
    return sorted(tasks, key=lambda t: -t["width"] * t["depth"])


def zoo_model(**p) -> dict:
    """A grid task for :func:`studylib.platform.executor.run_grid`: one cached zoo model's parameters and metrics."""
    run = cached_run("zoo", ZooParams(**p), zoo_run)
    return {**p, **run.metrics, "from_cache": run.from_cache}


def run_zoo(axes: dict[str, list], seeds: list[int], settings: dict, workers=None, scheduler=None) -> pd.DataFrame:
    """Every model of the zoo through the grid executor (local processes, or a Dask cluster with ``scheduler``), one
    row each."""
    return pd.DataFrame(run_grid(zoo_model, zoo_tasks(axes, seeds, settings), workers=workers, scheduler=scheduler,
                                 desc="zoo"))


def converged(zoo: pd.DataFrame) -> pd.DataFrame:
    """The models that reached the training-loss target, the ones every score is computed on (as Jiang et al.)."""
    return zoo[zoo.converged.astype(bool)].reset_index(drop=True)


def _hparams(zoo: pd.DataFrame) -> pd.DataFrame:
    return zoo[list(AXES)]


def configurations(zoo: pd.DataFrame) -> pd.DataFrame:
    """The converged models averaged over the seeds of each configuration, one row per configuration (with its
    number of ``seeds``): the zoo's unit of replication. Seeds share their configuration's effect on every measure
    and on the gap, so counting them as models would count one configuration several times (the tests measure
    how often that says "held" on a zoo where nothing holds). Used by every score of the head-to-head chapter."""
    models = converged(zoo)
    numeric = [c for c in models.columns if c not in AXES and c != "seed" and pd.api.types.is_numeric_dtype(models[c])]
    grouped = models.groupby(list(AXES), as_index=False)
    return grouped[numeric].mean().merge(grouped.size().rename(columns={"size": "seeds"}), on=list(AXES))


def configuration_labels(models: pd.DataFrame) -> np.ndarray:
    """One label per model: its configuration (every axis but the seed), the unit its claims average over."""
    return pd.MultiIndex.from_frame(models[list(AXES)].astype(str)).factorize()[0]


def _varied(zoo: pd.DataFrame) -> list[str]:
    return [a for a in AXES if zoo[a].nunique() > 1]


def _training(axes: list[str]) -> list[str]:
    return [a for a in axes if a in TRAINING_AXES]


def scores(zoo: pd.DataFrame, level: float = 0.95, n_perm: int = 1499, cmi_perm: int = 1499,
           seed: int = 0) -> pd.DataFrame:
    """One row per measure of :data:`MEASURES`, on the configurations (:func:`configurations`: the converged
    models averaged over seeds, the zoo's unit): Kendall's tau with the
    gap (``tau``, its belt), the granulated psi of every varied axis (with its interval), ``Psi`` their mean over the
    varied :data:`TRAINING_AXES` (its interval and permutation p, also Holm-adjusted over the measures), and PGDL's
    conditional mutual information ``cmi`` over every varied axis, with its permutation p (and Holm's), the null's
    quantile ``cmi_null`` and the pair of hyperparameters that sets it (``cmi_pair``); ranked by Psi."""
    models = configurations(zoo)
    axes, hp = _varied(models), _hparams(models)
    training = _training(axes)
    gap = models[GAP].to_numpy(float)
    rows = []
    for column, (label, source) in MEASURES.items():
        x = models[column].to_numpy(float)
        tau = stats.kendall(x, gap, level=level)
        psi = judging.granulated_taus(x, gap, hp, axes, level, n_perm, seed, psi_axes=training)
        cmi, cmi_p, cmi_null = judging.cmi_test(x, gap, hp, axes, level, cmi_perm, seed)
        by_pair = judging.cmi_by_pair(x, gap, hp, axes)
        rows.append({"measure": column, "label": label, "source": source, "tau": tau.estimate, "tau_low": tau.low,
                     "tau_high": tau.high, **{f"psi_{a}": psi[a].estimate for a in axes},
                     **{f"psi_{a}_{end}": getattr(psi[a], end) for a in axes for end in ("low", "high")},
                     "Psi": psi["Psi"].estimate, "Psi_low": psi["Psi"].low, "Psi_high": psi["Psi"].high,
                     "Psi_p": psi["Psi"].p, "cmi": cmi, "cmi_p": cmi_p, "cmi_null": cmi_null,
                     "cmi_pair": " and ".join(AXIS_NAMES[a] for a in min(by_pair, key=by_pair.get))})
    frame = pd.DataFrame(rows)
    frame["Psi_p_holm"], frame["cmi_p_holm"] = judging.holm(frame.Psi_p), judging.holm(frame.cmi_p)
    frame = frame.sort_values("Psi", ascending=False, na_position="last").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


def first_vs_second(zoo: pd.DataFrame, table: pd.DataFrame, level: float = 0.95, n_perm: int = 1499,
                    seed: int = 0) -> stats.Estimate:
    """Psi of the first-ranked measure of ``table`` minus the second's, paired over the same configurations
    (:func:`configurations`; :func:`studylib.judging.psi_difference`): whether the ranking separates them."""
    models = configurations(zoo)
    axes = _varied(models)
    first, second = (models[m].to_numpy(float) for m in table.measure.iloc[:2])
    return judging.psi_difference(first, second, models[GAP], _hparams(models), axes, level, n_perm, seed,
                                  psi_axes=_training(axes))


def ranking_view(table: pd.DataFrame) -> pd.DataFrame:
    """The ranked table for the page: measure, Psi with its interval and Holm-adjusted permutation p, psi along label
    noise, overall tau, and the CMI (×100, PGDL's scale) with its Holm-adjusted p (the per-axis psis are the chapter's
    heat map)."""
    text = lambda col, digits=2: [claims.interval_text(*r, digits=digits)
                                  for r in table[[col, f"{col}_low", f"{col}_high"]].to_numpy()]
    return pd.DataFrame({
        "rank": table["rank"], "measure": table.label,
        "Ψ, training axes [95% CI]": text("Psi", 3), "p (Holm)": [claims.p_text(p) for p in table.Psi_p_holm],
        "ψ, label noise [95% CI]": text("psi_label_noise") if "psi_label_noise" in table else "n/a",
        "overall τ [95% CI]": text("tau"),
        "CMI ×100 (p, Holm)": [f"{100 * c:.1f} ({claims.p_text(p)})" for c, p in table[["cmi", "cmi_p_holm"]].to_numpy()]})


def zoo_summary(zoo: pd.DataFrame) -> dict:
    """The zoo's facts the chapter glues: models, converged models, accuracies and gaps (converged models)."""
    models = converged(zoo)
    return {"models": len(zoo), "converged": len(models), "configurations": len(zoo.drop_duplicates(list(AXES))),
            "seeds": zoo.seed.nunique(), "test_acc_min": float(models.test_acc.min()), "test_acc_max": float(models.test_acc.max()),
            "gap_min": float(models[GAP].min()), "gap_max": float(models[GAP].max()),
            "epochs_median": float(models.epochs.median())}


def claims_table(zoo: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The source texts' claims re-tested on the zoo's converged models, each with its own paper; a verdict needs
    :data:`CONVERGED_SHARE` of the zoo to have reached the training-loss target (models that fit their data). Label
    noise moves the measures and the gap alike, so each trend is a Kendall tau stratified by the noise level, and the
    label-noise claim compares models that differ in the noise only."""
    models = converged(zoo)
    n_conv = len(models)
    met = n_conv >= CONVERGED_SHARE * len(zoo)
    reason = f"only {n_conv} of {len(zoo)} models reached the training-loss target"
    noise = models.label_noise  # it moves both the measures and the gap: every trend is taken within a noise level
    design = dict(groups=noise, units=configuration_labels(models), unit="configurations", level=level)
    tested = [
        (iiw_grid.PAPER, claims.rank_claim(models.iiw_fisher, models[GAP], +1, **design, id="iiw",
                                            claim="a lower IIW (Fisher estimator) goes with a smaller generalization gap (across the zoo, "
                                                  "within a noise level)",
                                            where="§1 (after Xu & Raginsky 2017; Wang et al. 2022)")),
        (util_study.PAPER, claims.rank_claim(models.distance_init_final, models[GAP], +1, **design, id="final-layer",
                                             claim="the final layer's distance from its initial weights tracks the "
                                                   "generalization gap (across the zoo, within a noise level)",
                                             where="abstract; Hypothesis 2")),
        (esd_study.PAPER, claims.rank_claim(models.esd_alpha_weighted, models.test_acc, -1, **design, id="alpha-hat",
                                            claim="a smaller alpha-hat goes with a higher test accuracy (across the zoo's training "
                                                  "choices, not the paper's model series; within a noise level)",
                                            where="§5, Table 1")),
        (mi_study.PAPER, _noise_claim(models, "model_information", NOISE_CLAIM, level, "information")),
    ]
    return claims.table([replace(claims.precondition(c, met, reason), paper=paper) for paper, c in tested])


#: the ids of :func:`claims_table`'s claims (the chapter glues each under its id, hyphens as underscores)
CLAIM_IDS = ("iiw", "final-layer", "alpha-hat", "information")

#: PGDL's published CMI scores (×100, the mean over the competition's public tasks; Jiang et al. 2020b): the one
#: measure of ours it scored, and the winning entry for scale
PGDL_PUBLISHED = {"distance_init": 4.92, "winner": 22.92}


def published_beside(table: pd.DataFrame) -> pd.DataFrame:
    """PGDL's published CMI scores beside ours (×100): the distance from initialisation row for row, and the best
    score of each (PGDL's winning entry; our best measure)."""
    mine = table.set_index("measure")
    best = table.loc[table.cmi.idxmax()]
    return pd.DataFrame([
        {"PGDL: measure": MEASURES["distance_init"][0], "PGDL: CMI ×100": f"{PGDL_PUBLISHED['distance_init']:.2f}",
         "this zoo: measure": MEASURES["distance_init"][0], "this zoo: CMI ×100": f"{100 * mine.loc['distance_init'].cmi:.2f}"},
        {"PGDL: measure": "the winning entry", "PGDL: CMI ×100": f"{PGDL_PUBLISHED['winner']:.2f}",
         "this zoo: measure": f"the best: {best.label}", "this zoo: CMI ×100": f"{100 * best.cmi:.2f}"}])


def information_protocols(zoo: pd.DataFrame) -> pd.DataFrame:
    """Model information and test accuracy of every converged model under two protocols, one row per (model,
    protocol): ``"interpolating (the zoo)"``, the zoo's weights, and ``"early-stopped (chapter 6)"``, the same
    architecture trained with Adam and early stopping on the same examples, coding the same held-out examples."""
    models = converged(zoo)
    zoo_rows = models[[*AXES, "seed"]].assign(protocol="interpolating (the zoo)", information=models.model_information,
                                       test_acc=models.test_acc)
    early_rows = models[[*AXES, "seed"]].assign(protocol="early-stopped (chapter 6)", information=models.early_information,
                                         test_acc=models.early_test_acc)
    return pd.concat([zoo_rows, early_rows], ignore_index=True)


def _noise_claim(models: pd.DataFrame, column: str, claim: str, level: float, id: str) -> claims.Claim:
    """Seed 003's label-noise claim for one information column: its tau with the noise within the groups of
    configurations that differ in the noise only (seeds averaged)."""
    return claims.rank_claim(models[column], models.label_noise, "not positive",
                             groups=judging.axis_groups(_hparams(models), "label_noise"), level=level,
                             units=configuration_labels(models), unit="configurations", id=id,
                             claim=claim, where="§3, Fig. 3 and Table 4",
                             statistic="Kendall tau within configurations that differ in the noise only")


def early_information_claim(zoo: pd.DataFrame, level: float = 0.95) -> claims.Claim:
    """The model-information paper's label-noise claim under its own protocol: the early-stopped models' information
    against label noise, within groups that differ in the noise only."""
    return _noise_claim(converged(zoo), "early_information", NOISE_CLAIM + " (early-stopped models)", level,
                        "information-early")


def axis_extremes(table: pd.DataFrame, measure: str) -> dict:
    """The axes along which a measure's psi is highest and lowest (readable names and values), for the prose."""
    row = table.set_index("measure").loc[measure]
    psis = {a: row[f"psi_{a}"] for a in AXIS_NAMES if f"psi_{a}" in row}
    best, worst = max(psis, key=psis.get), min(psis, key=psis.get)
    return {"best_axis": AXIS_NAMES[best], "best": psis[best], "worst_axis": AXIS_NAMES[worst], "worst": psis[worst]}


def orientation_check(zoo: pd.DataFrame, column: str) -> tuple[float, float]:
    """The conditional mutual information of a measure and of its negative, on the converged models (the chapter's
    exercise: the score does not depend on the orientation but for the self-pairs), over the configurations."""
    models = configurations(zoo)
    hp, axes = _hparams(models), _varied(models)
    return tuple(judging.conditional_mutual_information(sign * models[column], models[GAP], hp, axes) for sign in (1, -1))


def interval_sign(low: float, high: float) -> str:
    """Where a 95% interval lies, in words for the prose: "above 0", "below 0" or "not distinguishable from 0"."""
    return "above 0" if low > 0 else "below 0" if high < 0 else "not distinguishable from 0"
