"""The model-information chapter's grids over cached runs, seed 003's published tables, our tables derived from
the runs, and the chapter's claims table.

Used by the chapter "Model information". The runs themselves are in :mod:`studylib.runs.mdl`; this module is
outside their cache key, so a change to a verdict rule does not invalidate them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import ClaimsTable
from ..platform.cache import cached_run
from ..platform.executor import run_grid
from ..runs.mdl import NUM_CLASSES, ablation_run, distillation_run, domain_run, info_run
from ..stats import kendall_tau


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


def info_table(cells: list[dict], settings: dict, workers: int | None = None, repeats: int = 1) -> pd.DataFrame:
    """One cached :func:`~studylib.runs.mdl.info_run` per cell (cells override ``settings``) and seed, on ``workers`` processes,
    averaged over the ``repeats`` seeds (:func:`mean_over_seeds`; keys: the cells' own)."""
    grid = [{**settings, **c, "seed": seed} for c in cells for seed in seeds(settings, repeats)]
    rows = pd.DataFrame(run_grid(_info_task, grid, workers=workers, desc="model information"))
    return mean_over_seeds(rows, list(dict.fromkeys(k for c in cells for k in c)), "info_bits")


def _info_task(**p):
    # Noise at level 0 and all ten classes are the clean, full task's run: one cache entry.
    key = {k: v for k, v in p.items() if not (k in ("noise", "level") and not p.get("level"))
           and not (k == "classes" and v == NUM_CLASSES)}
    run = cached_run("mdl_info", key, info_run)
    return {**p, **run.metrics}


def similarities(pairs: pd.DataFrame) -> pd.DataFrame:
    """Seed 003 eqs. (4) and (5): ``S(A, B) = L(A,B) / (L(A,A) + L(B,B) - L(A,B))``, ``S_uni(A, B) = L(A,B) / L(B,B)``."""
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
    ("mdl_distillation"), one run per seed on ``workers`` processes, averaged over the seeds
    (:func:`mean_over_seeds`)."""
    if name not in STUDIES:
        raise ValueError(f"name must be one of {sorted(STUDIES)}, got {name!r}")
    grid = [{"name": name, "p": {**p, "seed": seed}} for seed in seeds(p, repeats)]
    results = run_grid(_study_records, grid, workers=workers, desc=name)
    _, keys, value = STUDIES[name]
    return mean_over_seeds(pd.concat([r["records"] for r in results], ignore_index=True), keys, value)


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


def _trend(tau: float) -> tuple[bool, bool]:
    """(held, partly held) for a claimed increasing trend with Kendall ``tau``: 1 (every pair in order), or > 0."""
    return tau == 1, tau > 0


def _pair(info: pd.Series, larger: str, smaller: str) -> bool | None:
    """Whether task ``larger`` needs more information than ``smaller``; None when either was not run."""
    if larger not in info or smaller not in info:
        return None
    return info[larger] > info[smaller]


def claims_table(tasks: pd.DataFrame, noise: pd.DataFrame, domains: pd.DataFrame, capacity: pd.DataFrame,
                 ablation: pd.DataFrame, distill: pd.DataFrame) -> pd.DataFrame:
    """Seed 003's claims, each with the evidence computed in the chapter and a verdict. A trend claim is 'held'
    when every pair of settings is in the claimed order (Kendall tau 1) and 'partly held' when most are."""
    out = ClaimsTable()
    info = tasks.set_index("task").info_bits
    fmt = lambda t: f"{info[t]:.0f}" if t in info else "not run"
    out.add("Street-view digits (SVHN) carry more information than MNIST", "003 §3, Fig. 1",
            f"cluttered MNIST {fmt('cluttered_mnist')} bits vs MNIST {fmt('mnist')}",
            _pair(info, "cluttered_mnist", "mnist"))
    out.add("Natural objects (CIFAR-10) carry more information than digits", "003 §3, Fig. 1",
            f"Fashion-MNIST {fmt('fashion_mnist')} bits vs MNIST {fmt('mnist')}", _pair(info, "fashion_mnist", "mnist"))
    tau_acc, tau_conf = kendall_tau(tasks.info_bits, tasks.acc), kendall_tau(tasks.info_bits, tasks.confidence)
    out.add("The more information a task needs, the lower accuracy and confidence", "003 §3, Fig. 1",
            f"Kendall tau over {len(tasks)} tasks: information vs accuracy {tau_acc:+.2f}, vs confidence {tau_conf:+.2f}",
            tau_acc < 0 and tau_conf < 0, tau_acc < 0 or tau_conf < 0)
    by = {n: d.sort_values("level") for n, d in noise.groupby("noise")}
    pix = by["missing_pixels"]
    tau_pix = kendall_tau(pix.level, pix.info_bits)
    out.add("Missing pixels make the task need more information", "003 §3, Table 2, Fig. 3",
            f"information at levels {', '.join(f'{v:g}' for v in pix.level)}: {', '.join(f'{v:.0f}' for v in pix.info_bits)} bits "
            f"(tau {tau_pix:+.2f})", *_trend(tau_pix))
    pure = [by[n] for n in ("missing_objects", "massart")]
    flat = [d.info_bits.iloc[-1] <= 1.1 * d.info_bits.iloc[0] for d in pure]
    out.add("Missing objects and label noise are pure noise: they do not raise the information", "003 §3, Tables 3-4",
            "information at the highest level / level 0: " + ", ".join(
                f"{n} {d.info_bits.iloc[-1] / d.info_bits.iloc[0]:.2f}" for n, d in zip(("missing objects", "massart"), pure)),
            all(flat), any(flat))
    less_conf = [d.confidence.iloc[-1] < d.confidence.iloc[0] for d in pure]
    out.add("... but they lower the model's confidence", "003 §3, Tables 3-4",
            "confidence from level 0 to the highest: " + ", ".join(
                f"{d.confidence.iloc[0]:.3f} -> {d.confidence.iloc[-1]:.3f}" for d in pure),
            all(less_conf), any(less_conf))
    off = domains[domains.source != domains.target]
    in_range = bool(((off.S >= 0) & (off.S <= 1)).all())
    tau_d = kendall_tau(off.S, -off.d1)
    out.add("S is a similarity in [0, 1] that largely agrees with feature distances", "003 §4, Fig. 5",
            f"off-diagonal S from {off.S.min():.2f} to {off.S.max():.2f}; Kendall tau (S, -d1) {tau_d:+.2f}",
            in_range and tau_d > 0, in_range or tau_d > 0)
    out.add(*_saturation(capacity))
    cap = capacity.pivot_table(index="classes", columns="width", values="info_bits").max()
    tau_cap = kendall_tau(cap.index, cap.values)
    out.add("Capacity grows with the number of parameters", "003 §5, Fig. 6b",
            f"largest information per width {', '.join(f'{w}: {v:.0f}' for w, v in cap.items())} "
            f"(tau {tau_cap:+.2f})", *_trend(tau_cap))
    out.add(*_middle_blocks(ablation))
    out.add(*_shortcuts(ablation))
    teachers = distill[distill.sweep == "teacher"].dropna(subset=["teacher_width"])
    alphas = distill[distill.sweep == "alpha"]
    out.add("Larger teachers transfer more information to the student", "003 §7, Fig. 8b, Table 10",
            f"I by teacher width {', '.join(f'{int(w)}: {i:.0f}' for w, i in zip(teachers.teacher_width, teachers.I))} bits",
            *_trend(kendall_tau(teachers.teacher_width, teachers.I)))
    out.add("A larger distillation weight alpha transfers more information", "003 §7, Fig. 8c, Table 11",
            f"I by alpha {', '.join(f'{a:g}: {i:.0f}' for a, i in zip(alphas.alpha, alphas.I))} bits",
            *_trend(kendall_tau(alphas.alpha, alphas.I)))
    spread = distill.student_acc.max() - distill.student_acc.min()
    out.add("Distillation changes the student's accuracy little", "003 §7, Tables 10-11",
            f"student accuracy spread over all settings {spread:.1%}", spread < 0.02, spread < 0.05)
    return out.frame()


def _saturation(capacity: pd.DataFrame) -> tuple:
    """Held: over the last step of the task size the narrowest model gains under 10% while the widest gains 10% or
    more (the narrow one is at its capacity, not the task at its end); partly: only the first."""
    wide = capacity.pivot_table(index="classes", columns="width", values="info_bits")
    gain = wide.iloc[-1] / wide.iloc[-2] - 1
    narrow, widest = gain[wide.columns[0]], gain[wide.columns[-1]]
    return ("A model's information saturates as the task grows: its capacity", "003 §5, Fig. 6a, Table 7",
            f"gain from {wide.index[-2]} to {wide.index[-1]} classes: narrowest (width {wide.columns[0]}) {narrow:+.0%}, "
            f"widest (width {wide.columns[-1]}) {widest:+.0%}", narrow < 0.1 <= widest, narrow < 0.1)


def _middle_blocks(ablation: pd.DataFrame) -> tuple:
    """Held: the most information in a block that is neither the first nor the last residual block, and the highest
    density in the stem or the first block; partly: the most information in a residual block."""
    blocks = ablation[ablation.grouping == "block"].set_index("component")
    residual = blocks.drop(index=["stem", "fc"]).index
    middle = residual[1:-1]
    density = blocks.I / blocks.n_params
    most, densest = blocks.I.idxmax(), density.idxmax()
    return ("Middle blocks carry the most information; blocks near the input the highest density",
            "003 §6, Fig. 7b, Table 9", f"most information in {most}; highest density in {densest}",
            None if len(middle) == 0 else (most in middle and densest in ("stem", residual[0])), most in residual)


def _shortcuts(ablation: pd.DataFrame) -> tuple:
    """Held: the 1x1 shortcut convolutions hold the least information per parameter of the convolution kinds."""
    kinds = ablation[(ablation.grouping == "kind") & ablation.component.str.startswith("conv")].set_index("component")
    per_param = kinds.I / kinds.n_params
    name = "conv1x1 (shortcut)"
    return ("Shortcut (residue) convolutions hold little information", "003 §6, Fig. 7c, Table 8",
            "bits per parameter: " + ", ".join(f"{k} {v:.2g}" for k, v in per_param.items()),
            bool(per_param[name] == per_param.min()) if name in per_param else None)
