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
from ..runs.mdl import (NUM_CLASSES, AblationParams, DistillationParams, DomainParams, InfoParams, ablation_run,
                        distillation_run, domain_run, info_run, task_split)


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


def run_all(info_cells: dict[str, list[dict]], studies: dict[str, dict], settings: dict, repeats: int = 1,
            workers: int | None = None) -> dict[str, pd.DataFrame]:
    """Every run of the model-information chapter in one grid on ``workers`` processes, so that no worker idles while
    the last seed of a long study runs alone: the per-seed ``studies`` first (a name of :data:`STUDIES` -> its
    parameters, in the order given: put the longest first; each run one seed), then the information runs of
    ``info_cells`` (a name -> cells overriding ``settings``, each cached :func:`~studylib.runs.mdl.info_run` once per
    seed), widest models first. Returns one frame per name: a row per (cell, seed) for information runs, the records
    of every seed, with a ``seed`` column, for a study (:func:`averaged` gives the table the chapter shows)."""
    for name in studies:
        if name not in STUDIES:
            raise ValueError(f"studies accepts names among {sorted(STUDIES)}, got {name!r}")
    grid = [{"group": name, "study": name, "p": {**p, "seed": seed}} for name, p in studies.items()
            for seed in seeds(p, repeats)]
    info = [{"group": group, "study": "info", "p": {**settings, **c, "seed": seed}}
            for group, cells in info_cells.items() for c in cells for seed in seeds(settings, repeats)]
    grid += sorted(info, key=lambda t: -t["p"].get("width", 0))
    results = run_grid(_task, grid, workers=workers, desc="model information")
    out = {}
    for group in [*studies, *info_cells]:
        mine = [r for r in results if r["group"] == group]
        out[group] = (pd.DataFrame([r["row"] for r in mine]) if group in info_cells
                      else pd.concat([r["records"] for r in mine], ignore_index=True))
    return out


def _task(group: str, study: str, p: dict) -> dict:
    if study != "info":
        run_fn, params = STUDIES[study][0], STUDY_PARAMS[study]
        run = cached_run(study, params(**p), run_fn)
        return {"group": group, "records": pd.DataFrame(run.records).assign(seed=p["seed"]), "from_cache": run.from_cache}
    # Noise at level 0 and all ten classes are the clean, full task's run: one cache entry.
    key = {k: v for k, v in p.items() if not (k in ("noise", "level") and not p.get("level"))
           and not (k == "classes" and v == NUM_CLASSES)}
    run = cached_run("mdl_info", InfoParams(**key), info_run)
    return {"group": group, "row": {**p, **run.metrics}, "from_cache": run.from_cache}


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
#: each study's run parameters
STUDY_PARAMS = {"mdl_domains": DomainParams, "mdl_ablation": AblationParams, "mdl_distillation": DistillationParams}


def averaged(name: str, records: pd.DataFrame) -> pd.DataFrame:
    """The records of study ``name`` (from :func:`run_all`) averaged over the seeds (:func:`mean_over_seeds`)."""
    _, keys, value = STUDIES[name]
    return mean_over_seeds(records, keys, value)


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


def _task_pair(info: pd.DataFrame, larger: str, smaller: str, claim: str, id: str) -> claims.Claim:
    """Task ``larger`` needs more information than ``smaller``: paired over seeds."""
    if larger not in info or smaller not in info:
        missing = [t for t in (larger, smaller) if t not in info]
        return claims.not_testable(claim, "§3, Fig. 1", f"task {', '.join(missing)} not run in this profile", id=id)
    return claims.median_claim(info[larger], info[smaller], 1, claim=claim, where="§3, Fig. 1", unit="seeds", id=id,
                             statistic=f"median information difference, {TASK_NAMES[larger]} - {TASK_NAMES[smaller]} (bits)")


def claims_table(tasks: pd.DataFrame, noise: pd.DataFrame, domains: pd.DataFrame, capacity: pd.DataFrame,
                 ablation: pd.DataFrame, distill: pd.DataFrame) -> pd.DataFrame:
    """Seed 003's claims, each decided by the claims engine: every frame holds one row per (setting, seed)
    (:func:`run_all`). Differences are paired by seed (the seeds are the units; sign tests of the median); a trend's units
    are its settings (tasks, noise levels, widths, teachers), each the mean over its seeds: the seeds of a fixed
    setting share its effect and are not independent points of the trend."""
    info = _by_seed(tasks, "task", "info_bits")
    out = [_task_pair(info, "cluttered_mnist", "mnist", "Street-view digits (SVHN) carry more information than MNIST",
                      "svhn-above-mnist"),
           _task_pair(info, "fashion_mnist", "mnist", "Natural objects (CIFAR-10) carry more information than digits",
                      "objects-above-digits")]
    out.append(claims.combine("The more information a task needs, the lower accuracy and confidence", "§3, Fig. 1", {
        f"{y}": claims.rank_claim(tasks.info_bits, tasks[y], -1, units=tasks.task, unit="tasks",
                                  statistic=f"tau (information, {y}) over tasks (seeds averaged)")
        for y in ("acc", "confidence")}, id="more-information-lower-accuracy"))
    by = {n: d for n, d in noise.groupby("noise")}
    pix = by["missing_pixels"]
    out.append(claims.rank_claim(pix.level, pix.info_bits, 1, units=pix.level, unit="noise levels", id="pixels",
                                 claim="Missing pixels make the task need more information", where="§3, Table 2, Fig. 3",
                                 statistic="tau (noise level, information), seeds averaged"))
    pure = {"missing objects": by["missing_objects"], "Massart label noise": by["massart"]}
    out.append(claims.combine("Missing objects and label noise are pure noise: they do not raise the information",
                              "§3, Tables 3-4", {n: claims.rank_claim(
                                  d.level, d.info_bits, "not positive", units=d.level, unit="noise levels",
                                  statistic="tau (noise level, information), seeds averaged") for n, d in pure.items()},
                              id="pure-noise-adds-nothing"))
    out.append(claims.combine("... but they lower the model's confidence", "§3, Tables 3-4", {
        n: claims.rank_claim(d.level, d.confidence, -1, units=d.level, unit="noise levels",
                             statistic="tau (noise level, confidence), seeds averaged") for n, d in pure.items()},
        id="pure-noise-lowers-confidence"))
    off = domains[domains.source != domains.target]
    out.append(claims.rank_claim(off.S, -off.d1, 1, units=off.source + "/" + off.target, unit="domain pairs",
                                 id="similarity-agrees",
                                 claim="S is a similarity that largely agrees with feature distances",
                                 where="§4, Fig. 5", statistic="tau (S, -d1), seeds averaged"))
    out.append(_saturation(capacity))
    most = capacity.groupby(["seed", "width"]).info_bits.max().reset_index()  # over every task size
    out.append(claims.rank_claim(most.width, most.info_bits, 1, units=most.width, unit="widths", id="capacity",
                                 claim="Capacity grows with the number of parameters", where="§5, Fig. 6b",
                                 statistic="tau (width, largest information over task sizes), seeds averaged"))
    out.append(_middle_blocks(ablation))
    out.append(_shortcuts(ablation))
    teachers = distill[distill.sweep == "teacher"].dropna(subset=["teacher_width"])  # the privileged one: a control
    alphas = distill[(distill.sweep == "alpha") & (distill.alpha > 0)]  # at alpha = 0, I = 0 by construction
    out.append(claims.rank_claim(teachers.teacher_width, teachers.I, 1, units=teachers.teacher_width, unit="teachers",
                                 id="teachers", claim="Larger teachers transfer more information to the student",
                                 where="§7, Fig. 8b, Table 10", statistic="tau (teacher width, I), seeds averaged"))
    out.append(claims.rank_claim(alphas.alpha, alphas.I, 1, units=alphas.alpha, unit="alphas", id="alpha",
                                 claim="A larger distillation weight alpha transfers more information",
                                 where="§7, Fig. 8c, Table 11", statistic="tau (alpha, I), seeds averaged"))
    alone = distill[(distill.sweep == "teacher") & distill.teacher_width.isna()].set_index("seed").student_acc
    taught = distill[distill.sweep.isin(["teacher", "alpha"]) & distill.teacher_width.notna() & (distill.alpha > 0)
                     ].drop_duplicates(["seed", "teacher_width", "alpha"])  # the two sweeps share one setting
    change = 100 * (taught.student_acc - taught.seed.map(alone)).groupby(taught.seed).mean()
    out.append(claims.median_claim(change, expected_sign=0, negligible=2.0, unit="seeds", id="distillation-keeps-accuracy",
                                 claim="Distillation changes the student's accuracy little", where="§7, Tables 10-11",
                                 statistic="median change in student test accuracy over the taught settings (points)"))
    return claims.table(out)


def task_sizes(capacity: pd.DataFrame) -> pd.DataFrame:
    """The capacity study's tasks, smallest first: (classes, training examples) sorted by classes and then by examples,
    with their rank ``size`` (0, 1, ...) and a ``label`` such as "6 classes, 2,000 examples"."""
    sizes = capacity[["classes", "n_train"]].drop_duplicates().sort_values(["classes", "n_train"]).reset_index(drop=True)
    sizes["size"] = range(len(sizes))
    sizes["label"] = [f"{c:g} classes, {n:,.0f} examples" for c, n in zip(sizes.classes, sizes.n_train)]
    return sizes


def _with_size(capacity: pd.DataFrame) -> pd.DataFrame:
    return capacity.merge(task_sizes(capacity), on=["classes", "n_train"])


def _saturation(capacity: pd.DataFrame) -> claims.Claim:
    """Over the last step of the task size the widest model gains more information than the narrowest (the narrow
    one is at its capacity, not the task at its end): paired over seeds."""
    sized = _with_size(capacity)
    wide = sized.pivot_table(index=["seed", "size"], columns="width", values="info_bits")
    steps = sorted(sized["size"].unique())[-2:]
    labels = task_sizes(capacity).set_index("size").label
    gain = wide.xs(steps[1], level="size") / wide.xs(steps[0], level="size") - 1
    return claims.median_claim(gain[wide.columns[-1]], gain[wide.columns[0]], 1, unit="seeds", id="saturation",
                             claim="A model's information saturates as the task grows: its capacity",
                             where="§5, Fig. 6a, Table 7",
                             statistic=f"relative gain from {labels[steps[0]]} to {labels[steps[1]]}, width "
                                       f"{wide.columns[-1]} - width {wide.columns[0]}")


def controls_table(capacity: pd.DataFrame, squares: pd.DataFrame, distill: pd.DataFrame) -> pd.DataFrame:
    """The positive controls of the model-information chapter (claims whose answer is known) and its strength sweep
    (the missing-pixels claim at strengths that matter), decided by the claims engine over the seeds:

    - the widest model's information grows with the task (classes, then training examples): the estimator sees a
      larger task, so the capacity claims can be read;
    - the sweep: a larger missing central square (``squares``: runs over its side in pixels, ``level``) raises the
      information of MNIST, tested at strengths that remove much of the digit;
    - a "privileged" teacher, also trained on a labelled pool disjoint from the coded examples, transfers more at a
      larger alpha (what the alpha claim needs the estimator to see), and more than the plain teacher at the same
      alpha (two rows).
    """
    sized = _with_size(capacity)
    widest = sized[sized.width == sized.width.max()]
    out = [claims.rank_claim(widest["size"], widest.info_bits, 1, units=widest["size"], unit="task sizes",
                             id="capacity", claim="The widest model's information grows with the task", where="control",
                             statistic="tau (task size, information), seeds averaged")]
    out.append(claims.rank_claim(squares.level, squares.info_bits, 1, units=squares.level, unit="square sides",
                                 id="squares", claim="A larger missing central square raises the information",
                                 where="sweep", statistic="tau (side of the square, information), seeds averaged"))
    privileged = distill[(distill.sweep == "privileged") & (distill.alpha > 0)]
    plain = distill[(distill.sweep == "alpha") & (distill.alpha > 0)]
    extra = (privileged.set_index(["seed", "alpha"]).I - plain.set_index(["seed", "alpha"]).I).groupby("seed").mean()
    out.append(claims.rank_claim(privileged.alpha, privileged.I, 1, units=privileged.alpha, unit="alphas",
                                 id="privileged",
                                 claim="A teacher that saw a disjoint labelled pool transfers more at larger alpha",
                                 where="control", statistic="tau (alpha, I), seeds averaged"))
    out.append(claims.median_claim(extra, expected_sign=1, unit="seeds", id="privileged-more",
                                 claim="... and more than a teacher of the same examples as the student", where="control",
                                 statistic="median over seeds of the mean over alphas of I(privileged) - I(plain teacher) (bits)"))
    return claims.table(out)


def _middle_blocks(ablation: pd.DataFrame) -> claims.Claim:
    """Middle residual blocks (neither the first nor the last) carry the most information, and the stem or the first
    block the highest density: per seed, the best of each set against the best of the rest."""
    claim, where = "Middle blocks carry the most information; blocks near the input the highest density", \
        "§6, Fig. 7b, Table 9"
    blocks = ablation[ablation.grouping == "block"]
    residual = [c for c in pd.unique(blocks.component) if c not in ("stem", "fc")]
    if len(residual) < 3:
        return claims.not_testable(claim, where, "fewer than three residual blocks: no middle block", id="middle")
    middle, near = residual[1:-1], ["stem", residual[0]]
    info = blocks.pivot_table(index="seed", columns="component", values="I")
    density = info / blocks.pivot_table(index="seed", columns="component", values="n_params")
    gap = lambda frame, chosen: frame[chosen].max(axis=1) - frame.drop(columns=chosen).max(axis=1)
    return claims.combine(claim, where, {
        "most information in a middle block": claims.median_claim(
            gap(info, middle), expected_sign=1, unit="seeds",
            statistic="median (largest middle-block I - largest other I) (bits)"),
        "highest density near the input": claims.median_claim(
            gap(density, near), expected_sign=1, unit="seeds",
            statistic="median (largest density near the input - largest other) (bits / parameter)")}, id="middle")


def _shortcuts(ablation: pd.DataFrame) -> claims.Claim:
    """The 1x1 shortcut convolutions hold the least information per parameter of the convolution kinds: per seed,
    their density against the smallest of the other kinds'."""
    claim, where, name = "Shortcut (residue) convolutions hold little information", "§6, Fig. 7c, Table 8", \
        "conv1x1 (shortcut)"
    kinds = ablation[(ablation.grouping == "kind") & ablation.component.str.startswith("conv")]
    if name not in set(kinds.component):
        return claims.not_testable(claim, where, "the model has no shortcut convolutions", id="shortcuts")
    density = (kinds.pivot_table(index="seed", columns="component", values="I")
               / kinds.pivot_table(index="seed", columns="component", values="n_params"))
    return claims.median_claim(density[name] - density.drop(columns=name).min(axis=1), expected_sign=-1, unit="seeds",
                             claim=claim, where=where, id="shortcuts",
                             statistic="median (shortcut density - smallest other kind's) (bits / parameter)")


# --- the paper's tables beside ours, row for row (the chapter's "paper | ours" tables) ---

TASK_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "mnist1d": "MNIST-1D", "cluttered_mnist": "cluttered MNIST",
              "uci_digits": "UCI digits"}
#: cell padding for the plain numeric tables of the model-information chapter
TABLE_STYLE = [{"selector": "th, td", "props": "padding: 0.2em 0.8em"}]
NOISE_NAMES = {"missing_pixels": "missing pixels", "missing_objects": "missing objects", "massart": "Massart label noise"}


def mean_sd_text(runs: pd.DataFrame, keys: list[str], value: str, scale: float = 1.0, digits: int = 0) -> pd.Series:
    """``value`` per ``keys`` as "mean ± sd" over the seeds of ``runs`` (times ``scale``), in the order of first
    appearance; a single seed gives the mean alone."""
    g = runs.groupby(keys, sort=False)[value]
    mean, sd, n = g.mean() * scale, g.std() * scale, g.size()
    return pd.Series([f"{m:,.{digits}f}" + (f" ± {s:,.{digits}f}" if k > 1 else "") for m, s, k in zip(mean, sd, n)],
                     index=mean.index)


def _beside(paper: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """Two tables with the same row order side by side under "paper" and "ours" (rows matched by position; the longer
    table's extra rows get blanks)."""
    n = max(len(paper), len(ours))
    pad = lambda t: t.reset_index(drop=True).reindex(range(n))
    out = pd.concat({"paper": pad(paper), "ours": pad(ours)}, axis=1).fillna("")
    out.index = range(1, n + 1)
    return out


def noise_beside(noise_runs: pd.DataFrame) -> pd.DataFrame:
    """Seed 003's Tables 2-4 beside ours: one row per (noise, level), the information in bits, the test accuracy in %
    and the confidence, paper and ours (mean ± sd over seeds) next to each other."""
    paper = PAPER_NOISE.set_index(["noise", "level"])
    keys = ["noise", "level"]
    ours = pd.DataFrame({"info_bits": mean_sd_text(noise_runs, keys, "info_bits"),
                         "acc": mean_sd_text(noise_runs, keys, "acc", 100, 1),
                         "confidence": mean_sd_text(noise_runs, keys, "confidence", 1, 3)})
    rows = list(paper.index) + [r for r in ours.index if r not in paper.index]
    cols = {"info_bits": "information (bits)", "acc": "accuracy (%)", "confidence": "confidence"}
    out = pd.concat({(label, who): frame.reindex(rows)[col] for col, label in cols.items()
                     for who, frame in (("paper", paper.assign(acc=paper.acc * 100).map(
                         lambda v: f"{v:,.3f}" if v < 1 else f"{v:,.1f}" if v < 100 else f"{v:,.0f}")),
                                        ("ours", ours))}, axis=1).fillna("")
    out.index = pd.MultiIndex.from_tuples([(NOISE_NAMES.get(n, n), lv) for n, lv in rows], names=["noise", "level"])
    return out


def capacity_beside(capacity_runs: pd.DataFrame) -> pd.DataFrame:
    """Seed 003's Table 7 beside ours: a column per task size, smallest first; the task of each, then the information in
    bits of each model, widest first (the paper's Large to Tiny), a row of the paper's beside a row of ours (mean ± sd
    over seeds), each model named with its parameter count."""
    sized = _with_size(capacity_runs)
    widths = sorted(sized.width.unique(), reverse=True)
    params = sized.sort_values("size").groupby("width").n_params.last()  # at the largest task
    sizes = task_sizes(capacity_runs)
    n = max(len(PAPER_CAPACITY), len(sizes))
    columns = [f"task {i + 1}" for i in range(n)]
    def row(values) -> pd.Series:
        values = list(values)
        return pd.Series(values, index=columns[:len(values)]).reindex(columns).fillna("")

    rows = {("task size", "paper"): row(f"{c} classes" for c in PAPER_CAPACITY.index),
            ("task size", "ours"): row(sizes.label)}
    for rank in range(max(len(widths), PAPER_CAPACITY.shape[1])):
        model = "widest" if rank == 0 else "narrowest" if rank == len(widths) - 1 else f"model {rank + 1}"
        if rank < PAPER_CAPACITY.shape[1]:
            name = PAPER_CAPACITY.columns[rank]
            rows[(model, f"paper: {name}")] = row(f"{v:,.0f}" for v in PAPER_CAPACITY[name])
        if rank < len(widths):
            w = widths[rank]
            info = mean_sd_text(sized[sized.width == w].sort_values("size"), ["size"], "info_bits")
            rows[(model, f"ours: width {w} ({params[w]:,})")] = row(info)
    out = pd.DataFrame(rows).T
    out.index.names = ["model (parameters)", "information (bits)"]
    return out


#: the paper's ablated components (Tables 8-9) and ours that play the same part, set on the same row
ABLATION_PAIRS = {"conv3x3 (bottleneck)": "conv3x3 (first)", "conv1x1 (residue)": "conv1x1 (shortcut)",
                  "conv3x3 (stem)": "stem", "block0": "block0", "block1": "block1", "block2": "block2", "fc": "fc",
                  "all": "all"}


def _paired_rows(paper: list[str], ours: list[str]) -> list[tuple[str | None, str | None]]:
    """Rows of (paper component, our component): the paper's in order, each with its pair in :data:`ABLATION_PAIRS`,
    and each of ours without a pair on a row of its own right after the row of the component before it."""
    rows = [(c, ABLATION_PAIRS.get(c) if ABLATION_PAIRS.get(c) in ours else None) for c in paper]
    for i, c in enumerate(ours):
        if not any(o == c for _, o in rows):
            after = max((j for j, (_, o) in enumerate(rows) if o in ours[:i]), default=-1)
            rows.insert(after + 1, (None, c))
    return rows


def ablation_beside(ablation_runs: pd.DataFrame) -> pd.DataFrame:
    """Seed 003's Tables 8-9 beside ours, grouping by grouping (kinds of layer, blocks from the input, all): the
    paper's component and ours that plays its part (:data:`ABLATION_PAIRS`) on one row, each with its parameter count,
    then the information I(C) in bits and the bits per parameter, paper beside ours (mean ± sd over seeds)."""
    runs = ablation_runs.assign(per_param=ablation_runs.I / ablation_runs.n_params)
    parts = []
    for grouping, label in (("kind", "kind of layer"), ("block", "block"), ("all", "all")):
        p = PAPER_ABLATION[PAPER_ABLATION.grouping == grouping].set_index("component")
        o = runs[runs.grouping == grouping]
        keys = ["component"]
        ours = pd.DataFrame({"n_params": o.groupby(keys, sort=False).n_params.first(), "I": mean_sd_text(o, keys, "I"),
                             "per_param": mean_sd_text(o, keys, "per_param", digits=3)})
        rows = []
        for pc, oc in _paired_rows(list(p.index), list(ours.index)):
            rows.append({("component (parameters)", "paper"): f"{pc} ({p.n_params[pc]:,})" if pc else "",
                         ("component (parameters)", "ours"): f"{oc} ({ours.n_params[oc]:,})" if oc else "",
                         ("I (bits)", "paper"): f"{p.I[pc]:,.0f}" if pc else "", ("I (bits)", "ours"): ours.I.get(oc, ""),
                         ("bits per parameter", "paper"): f"{p.I_per_param[pc]:.3f}" if pc else "",
                         ("bits per parameter", "ours"): ours.per_param.get(oc, "")})
        parts.append(pd.DataFrame(rows, index=pd.Index([label] * len(rows), name="grouping")))
    out = pd.concat(parts)
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def ink_removed(noise: str, level: float, n: int, seed: int) -> float:
    """Model-information chapter: the share of the ink (summed pixel intensity) of the first ``n`` MNIST training
    images that ``noise`` at ``level`` removes (:func:`studylib.runs.mdl.task_split`, the runs' own noise)."""
    (clean, _, _), _ = task_split("mnist", n, 0, 1, seed)
    (noisy, _, _), _ = task_split("mnist", n, 0, 1, seed, noise=noise, level=level)
    return float(1 - noisy[0].sum() / clean[0].sum())


def distillation_beside(distill_runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed 003's Tables 10 (teachers, smallest first, at one alpha) and 11 (alpha) beside ours: accuracies in %, the
    information transferred I in bits; ours as mean ± sd over seeds, with the privileged teacher's I beside the plain
    one's in the alpha table."""
    d = distill_runs
    teachers = d[d.sweep == "teacher"].assign(teacher=lambda f: f.teacher_width.map(
        lambda w: "none (student alone)" if pd.isna(w) else f"MLP width {w:g}"))
    keys = ["teacher"]
    ours10 = pd.DataFrame({"teacher accuracy (%)": mean_sd_text(teachers, keys, "teacher_acc", 100, 1),
                           "student accuracy (%)": mean_sd_text(teachers, keys, "student_acc", 100, 1),
        "I (bits)": mean_sd_text(teachers, keys, "I")}).reset_index()
    ours10.loc[ours10.teacher.str.startswith("none"), "teacher accuracy (%)"] = ""
    p10 = PAPER_DISTILLATION[PAPER_DISTILLATION.sweep == "teacher"]
    paper10 = pd.DataFrame({"teacher": p10.setting.replace({"None": "none (student alone)"}),
                            "teacher accuracy (%)": p10.teacher_acc.map(lambda v: "" if pd.isna(v) else f"{v:.1f}"),
                            "student accuracy (%)": p10.student_acc.map("{:.1f}".format),
                            "I (bits)": p10.I.map("{:,.0f}".format)})
    alphas = d[d.sweep.isin(["alpha", "privileged"])]
    keys = ["alpha"]
    plain, privileged = alphas[alphas.sweep == "alpha"], alphas[alphas.sweep == "privileged"]
    ours11 = pd.DataFrame({"student accuracy (%)": mean_sd_text(plain, keys, "student_acc", 100, 1),
                           "I (bits)": mean_sd_text(plain, keys, "I"),
                           "I, privileged teacher (bits)": mean_sd_text(privileged, keys, "I")}).reset_index()
    p11 = PAPER_DISTILLATION[PAPER_DISTILLATION.sweep == "alpha"]
    paper11 = pd.DataFrame({"alpha": p11.setting.str.replace("alpha=", "").astype(float),
                            "student accuracy (%)": p11.student_acc.map("{:.2f}".format),
                            "I (bits)": p11.I.map("{:,.0f}".format)})
    ours11["alpha"] = ours11.alpha.map("{:g}".format)
    paper11["alpha"] = paper11.alpha.map("{:g}".format)
    return _beside(paper10, ours10), _beside(paper11, ours11)
