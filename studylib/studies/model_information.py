"""The model-information chapter's grids over cached runs, seed 003's published tables, our tables derived from
the runs, and the chapter's claims table.

Used by the chapter "Model information". The runs themselves are in :mod:`studylib.runs.mdl`; this module is
outside their cache key, so a change to a verdict rule does not invalidate them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims
from ..platform.cache import cached_run
from ..platform.executor import run_grid
from ..runs.mdl import NUM_CLASSES, ablation_run, distillation_run, domain_run, info_run


def seeds(settings: dict, repeats: int) -> list[int]:
    """The seeds of ``repeats`` independent runs: ``settings["seed"]``, then the next integers."""
    if repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    return [settings["seed"] + r for r in range(repeats)]


def mean_over_seeds(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """One row per setting ``keys``: the mean of every numeric column over the seeds, the number of seeds, and the
    standard deviation of ``value`` over them (``<value>_sd``, NaN for a single seed)."""
    groups = frame.groupby(keys, sort=False, dropna=False)
    out = groups.mean(numeric_only=True).drop(columns="seed").reset_index()
    out["seeds"] = groups.size().to_numpy()
    out[f"{value}_sd"] = groups[value].std().to_numpy()
    return out


def info_runs(cells: list[dict], settings: dict, workers: int | None = None, repeats: int = 1) -> pd.DataFrame:
    """One cached :func:`~studylib.runs.mdl.info_run` per cell (cells override ``settings``) and seed, on ``workers``
    processes: one row per (cell, seed). :func:`mean_over_seeds` gives the table the chapter shows; the claims
    read the seeds."""
    grid = [{**settings, **c, "seed": seed} for c in cells for seed in seeds(settings, repeats)]
    return pd.DataFrame(run_grid(_info_task, grid, workers=workers, desc="model information"))


def _info_task(**p):
    # Noise at level 0 and all ten classes are the clean, full task's run: one cache entry.
    key = {k: v for k, v in p.items() if not (k in ("noise", "level") and not p.get("level"))
           and not (k == "classes" and v == NUM_CLASSES)}
    run = cached_run("mdl_info", key, info_run)
    return {**p, **run.metrics}


def similarities(pairs: pd.DataFrame) -> pd.DataFrame:
    """Seed 003 eqs. (4) and (5): ``S(A, B) = L(A,B) / (L(A,A) + L(B,B) - L(A,B))``, ``S_uni(A, B) = L(A,B) / L(B,B)``;
    per seed when ``pairs`` has a ``seed`` column."""
    if "seed" in pairs and pairs.seed.nunique() > 1:
        return pd.concat([similarities(d) for _, d in pairs.groupby("seed", sort=False)], ignore_index=True)
    own = pairs[pairs.source == pairs.target].set_index("target").L
    out = pairs.copy()
    out["S"] = out.L / (out.source.map(own) + out.target.map(own) - out.L)
    out["S_uni"] = out.L / out.target.map(own)
    return out


#: each cached study: its run function, the columns that name a record, and its information column
STUDIES = {"mdl_domains": (domain_run, ["source", "target"], "L"),
           "mdl_ablation": (ablation_run, ["grouping", "component"], "I"),
           "mdl_distillation": (distillation_run, ["sweep", "teacher_width", "alpha"], "I")}


def cached(name: str, p: dict, repeats: int = 1, workers: int | None = None) -> pd.DataFrame:
    """The records of a cached :func:`~studylib.runs.mdl.domain_run` (``name`` "mdl_domains"),
    :func:`~studylib.runs.mdl.ablation_run` ("mdl_ablation") or :func:`~studylib.runs.mdl.distillation_run`
    ("mdl_distillation"), one run per seed on ``workers`` processes: the records of every seed, with a ``seed``
    column (:func:`averaged` gives the table the chapter shows)."""
    if name not in STUDIES:
        raise ValueError(f"name must be one of {sorted(STUDIES)}, got {name!r}")
    grid = [{"name": name, "p": {**p, "seed": seed}} for seed in seeds(p, repeats)]
    results = run_grid(_study_records, grid, workers=workers, desc=name)
    return pd.concat([r["records"] for r in results], ignore_index=True)


def averaged(name: str, records: pd.DataFrame) -> pd.DataFrame:
    """The records of :func:`cached` study ``name`` averaged over the seeds (:func:`mean_over_seeds`)."""
    _, keys, value = STUDIES[name]
    return mean_over_seeds(records, keys, value)


def _study_records(name: str, p: dict) -> dict:
    run = cached_run(name, p, STUDIES[name][0])
    return {"records": pd.DataFrame(run.records).assign(seed=p["seed"]), "from_cache": run.from_cache}


#: seed 003, Tables 2-4: model information L(M_D, D) (bits, k = 10,000), accuracy and confidence of ResNet-56 on
#: MNIST with noise.
PAPER_NOISE = pd.DataFrame([
    (noise, level, info, acc, conf)
    for noise, rows in {"missing_pixels": [(1559, .996, .994), (1718, .992, .989), (2120, .988, .985), (2719, .981, .985)],
                        "missing_objects": [(1559, .996, .994), (1489, .953, .946), (1560, .909, .899), (1296, .865, .848)],
                        "massart": [(1559, .996, .994), (1833, .949, .973), (1735, .908, .941), (1605, .867, .908)]}.items()
    for level, (info, acc, conf) in zip((0.0, 0.05, 0.1, 0.2), rows)
], columns=["noise", "level", "info_bits", "acc", "confidence"])

#: seed 003, Table 7: L(M_D, D) of ResNet-11 of four widths on Tiny-ImageNet subsets of 50-200 classes.
PAPER_CAPACITY = pd.DataFrame(
    [[7687.0, 7140.0, 7358.2, 6970.1], [8907.8, 8496.2, 8343.9, 7492.2], [9540.7, 9322.1, 8086.6, 7777.0],
     [10264.0, 9410.7, 8170.3, 7448.8]],
    index=pd.Index([50, 100, 150, 200], name="classes"),
    columns=pd.Index(["Large (264,657)", "Standard (124,433)", "Small (49,905)", "Tiny (29,457)"], name="model (parameters)"))

#: seed 003, Tables 8-9: information ablation of a ResNet-20 on CIFAR-10: I(C), parameters, I per parameter.
PAPER_ABLATION = pd.DataFrame([
    ("kind", "conv1x1 (before bottleneck)", 1985, 32000), ("kind", "conv3x3 (bottleneck)", 4243, 96768),
    ("kind", "conv1x1 (after bottleneck)", 1231, 43008), ("kind", "conv1x1 (residue)", 467, 41984),
    ("block", "conv3x3 (stem)", 379, 432), ("block", "block0", 751, 4704), ("block", "block1", 485, 4544),
    ("block", "block2", 2088, 23808), ("block", "block3", 1030, 17792), ("block", "block4", 2137, 94720),
    ("block", "block5", 1256, 70400), ("block", "fc", 167, 2570), ("all", "all", 5900, 219482),
], columns=["grouping", "component", "I", "n_params"]).assign(I_per_param=lambda d: d.I / d.n_params)

#: seed 003, Tables 10-11: synced distillation into a LeNet-5 student on CIFAR-10 (accuracies in %, I in bits).
PAPER_DISTILLATION = pd.DataFrame([
    ("teacher", "None", np.nan, 82.7, 0.0), ("teacher", "ResNet-20", 87.07, 84.0, 452.6),
    ("teacher", "ResNet-56", 88.78, 83.8, 1246.2), ("teacher", "ResNet-101", 89.69, 84.2, 1277.7),
    *[("alpha", f"alpha={a}", np.nan, acc, i) for a, acc, i in
      ((0, 82.72, 0.0), (0.05, 83.93, 938.1), (0.1, 83.73, 1040.9), (0.2, 83.85, 1178.9), (0.3, 83.77, 1188.6),
       (0.5, 83.64, 1214.4), (0.7, 83.83, 1246.2), (0.9, 83.94, 1177.5))],
], columns=["sweep", "setting", "teacher_acc", "student_acc", "I"])

#: seed 003, Table 5: L(M_T, T) - L(M_S, T) on the Office-31 domains (rows: source S, columns: target T; the
#: diagonal is L(M_T, T)).
PAPER_OFFICE31 = pd.DataFrame([[263.0, 124.7, 106.3], [139.4, 318.4, 26.6], [153.9, 6.6, 316.6]],
                              index=pd.Index(["amazon", "dslr", "webcam"], name="source"),
                              columns=pd.Index(["amazon", "dslr", "webcam"], name="target"))

#: seed 003, Table 6: the same on the Office-Home domains.
PAPER_OFFICEHOME = pd.DataFrame([[2776.4, 1076.2, 764.8, 451.9], [2001.2, 1630.3, 756.8, 617.5],
                                 [2047.6, 1144.8, 1480.2, 466.0], [1609.2, 879.2, 411.9, 1420.2]],
                                index=pd.Index(["art", "clipart", "product", "real_world"], name="source"),
                                columns=pd.Index(["art", "clipart", "product", "real_world"], name="target"))


def transfer_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Our analogue of seed 003's Tables 5-6: ``L(M_T, T) - L(M_S, T)`` (rows: source S, columns: target T), the
    diagonal holding ``L(M_T, T)``; ``pairs`` as returned by :func:`studylib.runs.mdl.domain_run`."""
    own = pairs[pairs.source == pairs.target].set_index("target").L
    table = pairs.assign(diff=pairs.target.map(own) - pairs.L)
    table.loc[table.source == table.target, "diff"] = table.L
    return table.pivot(index="source", columns="target", values="diff")


#: the chapter's source, as the verdicts page names it
PAPER = "Anonymous (2021), model information"


def _by_seed(frame: pd.DataFrame, column: str, value: str) -> pd.DataFrame:
    """``value`` with one row per seed and one column per value of ``column``."""
    return frame.pivot_table(index="seed", columns=column, values=value)


def _task_pair(info: pd.DataFrame, larger: str, smaller: str, claim: str) -> claims.Claim:
    """Task ``larger`` needs more information than ``smaller``: paired over seeds."""
    if larger not in info or smaller not in info:
        missing = [t for t in (larger, smaller) if t not in info]
        return claims.not_testable(claim, "§3, Fig. 1", f"task {', '.join(missing)} not run in this profile")
    return claims.mean_claim(info[larger], info[smaller], 1, claim=claim, where="§3, Fig. 1", unit="seeds",
                             statistic=f"mean information difference, {larger} - {smaller} (bits)")


def claims_table(tasks: pd.DataFrame, noise: pd.DataFrame, domains: pd.DataFrame, capacity: pd.DataFrame,
                 ablation: pd.DataFrame, distill: pd.DataFrame) -> pd.DataFrame:
    """Seed 003's claims, each decided by the claims engine over the seeds: every frame holds one row per
    (setting, seed) (:func:`info_runs`, :func:`cached`). Differences are paired by seed (t intervals); trends are
    Kendall taus stratified by seed, so that only settings run with the same seed are compared."""
    info = _by_seed(tasks, "task", "info_bits")
    out = [_task_pair(info, "cluttered_mnist", "mnist", "Street-view digits (SVHN) carry more information than MNIST"),
           _task_pair(info, "fashion_mnist", "mnist", "Natural objects (CIFAR-10) carry more information than digits")]
    out.append(claims.combine("The more information a task needs, the lower accuracy and confidence", "§3, Fig. 1", {
        f"{y}": claims.rank_claim(tasks.info_bits, tasks[y], -1, groups=tasks.seed, unit="(task, seed) runs",
                                  statistic=f"tau (information, {y}) within seeds") for y in ("acc", "confidence")}))
    by = {n: d for n, d in noise.groupby("noise")}
    pix = by["missing_pixels"]
    out.append(claims.rank_claim(pix.level, pix.info_bits, 1, groups=pix.seed, unit="(level, seed) runs",
                                 claim="Missing pixels make the task need more information", where="§3, Table 2, Fig. 3",
                                 statistic="tau (noise level, information) within seeds"))
    pure = {"missing objects": by["missing_objects"], "Massart label noise": by["massart"]}
    out.append(claims.combine("Missing objects and label noise are pure noise: they do not raise the information",
                              "§3, Tables 3-4", {n: claims.rank_claim(
                                  d.level, d.info_bits, "not positive", groups=d.seed, unit="(level, seed) runs",
                                  statistic="tau (noise level, information) within seeds") for n, d in pure.items()}))
    out.append(claims.combine("... but they lower the model's confidence", "§3, Tables 3-4", {
        n: claims.rank_claim(d.level, d.confidence, -1, groups=d.seed, unit="(level, seed) runs",
                             statistic="tau (noise level, confidence) within seeds") for n, d in pure.items()}))
    off = domains[domains.source != domains.target]
    out.append(claims.rank_claim(off.S, -off.d1, 1, groups=off.seed, unit="(domain pair, seed) runs",
                                 claim="S is a similarity that largely agrees with feature distances",
                                 where="§4, Fig. 5", statistic="tau (S, -d1) within seeds"))
    out.append(_saturation(capacity))
    most = capacity.groupby(["seed", "width"]).info_bits.max().reset_index()
    out.append(claims.rank_claim(most.width, most.info_bits, 1, groups=most.seed, unit="(width, seed) runs",
                                 claim="Capacity grows with the number of parameters", where="§5, Fig. 6b",
                                 statistic="tau (width, largest information over task sizes) within seeds"))
    out.append(_middle_blocks(ablation))
    out.append(_shortcuts(ablation))
    teachers = distill[distill.sweep == "teacher"].dropna(subset=["teacher_width"])
    alphas = distill[(distill.sweep == "alpha") & (distill.alpha > 0)]  # at alpha = 0, I = 0 by construction
    out.append(claims.rank_claim(teachers.teacher_width, teachers.I, 1, groups=teachers.seed, unit="(teacher, seed) runs",
                                 claim="Larger teachers transfer more information to the student",
                                 where="§7, Fig. 8b, Table 10", statistic="tau (teacher width, I) within seeds"))
    out.append(claims.rank_claim(alphas.alpha, alphas.I, 1, groups=alphas.seed, unit="(alpha, seed) runs",
                                 claim="A larger distillation weight alpha transfers more information",
                                 where="§7, Fig. 8c, Table 11", statistic="tau (alpha, I) within seeds"))
    alone = distill[(distill.sweep == "teacher") & distill.teacher_width.isna()].set_index("seed").student_acc
    taught = distill[distill.teacher_width.notna() & (distill.alpha > 0)].drop_duplicates(
        ["seed", "teacher_width", "alpha"])  # the two sweeps share one setting
    change = (taught.student_acc - taught.seed.map(alone)).groupby(taught.seed).mean()
    out.append(claims.mean_claim(change, expected_sign=0, negligible=0.02, unit="seeds",
                                 claim="Distillation changes the student's accuracy little", where="§7, Tables 10-11",
                                 statistic="mean change in student accuracy over the taught settings"))
    return claims.table(out)


def _saturation(capacity: pd.DataFrame) -> claims.Claim:
    """Over the last step of the task size the widest model gains more information than the narrowest (the narrow
    one is at its capacity, not the task at its end): paired over seeds."""
    wide = capacity.pivot_table(index=["seed", "classes"], columns="width", values="info_bits")
    steps = sorted(capacity.classes.unique())[-2:]
    gain = wide.xs(steps[1], level="classes") / wide.xs(steps[0], level="classes") - 1
    return claims.mean_claim(gain[wide.columns[-1]], gain[wide.columns[0]], 1, unit="seeds",
                             claim="A model's information saturates as the task grows: its capacity",
                             where="§5, Fig. 6a, Table 7",
                             statistic=f"gain from {steps[0]} to {steps[1]} classes, width {wide.columns[-1]} "
                                       f"- width {wide.columns[0]}")


def _middle_blocks(ablation: pd.DataFrame) -> claims.Claim:
    """Middle residual blocks (neither the first nor the last) carry the most information, and the stem or the first
    block the highest density: per seed, the best of each set against the best of the rest."""
    claim, where = "Middle blocks carry the most information; blocks near the input the highest density", \
        "§6, Fig. 7b, Table 9"
    blocks = ablation[ablation.grouping == "block"]
    residual = [c for c in pd.unique(blocks.component) if c not in ("stem", "fc")]
    if len(residual) < 3:
        return claims.not_testable(claim, where, "fewer than three residual blocks: no middle block")
    middle, near = residual[1:-1], ["stem", residual[0]]
    info = blocks.pivot_table(index="seed", columns="component", values="I")
    density = info / blocks.pivot_table(index="seed", columns="component", values="n_params")
    gap = lambda frame, chosen: frame[chosen].max(axis=1) - frame.drop(columns=chosen).max(axis=1)
    return claims.combine(claim, where, {
        "most information in a middle block": claims.mean_claim(
            gap(info, middle), expected_sign=1, unit="seeds",
            statistic="mean (largest middle-block I - largest other I) (bits)"),
        "highest density near the input": claims.mean_claim(
            gap(density, near), expected_sign=1, unit="seeds",
            statistic="mean (largest density near the input - largest other) (bits / parameter)")})


def _shortcuts(ablation: pd.DataFrame) -> claims.Claim:
    """The 1x1 shortcut convolutions hold the least information per parameter of the convolution kinds: per seed,
    their density against the smallest of the other kinds'."""
    claim, where, name = "Shortcut (residue) convolutions hold little information", "§6, Fig. 7c, Table 8", \
        "conv1x1 (shortcut)"
    kinds = ablation[(ablation.grouping == "kind") & ablation.component.str.startswith("conv")]
    if name not in set(kinds.component):
        return claims.not_testable(claim, where, "the model has no shortcut convolutions")
    density = (kinds.pivot_table(index="seed", columns="component", values="I")
               / kinds.pivot_table(index="seed", columns="component", values="n_params"))
    return claims.mean_claim(density[name] - density.drop(columns=name).min(axis=1), expected_sign=-1, unit="seeds",
                             claim=claim, where=where,
                             statistic="mean (shortcut density - smallest other kind's) (bits / parameter)")
