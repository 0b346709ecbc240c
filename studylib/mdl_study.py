"""The model-information chapter's experiments as cached runs, and seed 003's published tables.

Used by the chapter "Model information". Every run trains small networks on the offline digit and clothing
data (:mod:`studylib.digit_domains` for noise and domains) and measures information with :mod:`studylib.mdl`.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch

from . import cache, config, data, mdl, models
from . import digit_domains as dd
from .cache import RunResult
from .claims import ClaimsTable

TASKS = ("mnist", "fashion_mnist", "uci_digits", "mnist1d", "cluttered_mnist")
NOISES = {"missing_pixels": dd.missing_pixels, "missing_objects": dd.missing_objects}
DEPS = ("studylib.mdl", "studylib.mdl_study", "studylib.digit_domains", "studylib.data", "studylib.models")


def task_split(task: str, n_train: int, k: int, n_test: int, seed: int, classes: int | None = None,
               noise: str | None = None, level: float = 0.0):
    """``(train, code, test)`` pairs ``(x, y)`` and the number of classes: the first ``n_train`` training examples,
    the next ``k`` as the coding set, ``n_test`` test examples; optionally only the first ``classes`` classes, and
    noise (``missing_pixels``, ``missing_objects`` or ``massart``) at ``level`` applied to every split."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    ds = dd.load_domain(task, seed) if task in dd.DOMAINS else data.load(task, seed=seed)
    K = classes or ds.num_classes
    splits = []
    for x, y, n in ((ds.x_train, ds.y_train, n_train + k), (ds.x_test, ds.y_test, n_test)):
        keep = y < K
        if keep.sum() < n:
            raise ValueError(f"{task} with {K} classes has {keep.sum()} examples in a split; {n} are needed "
                             "(lower n_train, k or n_test)")
        splits.append((x[keep][:n], y[keep][:n]))
    (x, y), test = splits
    parts = [(x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), test]
    if noise and level > 0:
        if noise == "massart":
            parts = [(px, dd.massart(py, level, K, seed + i)) for i, (px, py) in enumerate(parts)]
        else:
            parts = [(NOISES[noise](px, level, seed + i), py) for i, (px, py) in enumerate(parts)]
    return parts, K


def factory(arch: str, in_shape, num_classes: int, width: int):
    """``mlp``: two hidden layers of ``width``; ``resnet``: :func:`studylib.models.small_resnet` with stages
    ``width, 2 width, 4 width``."""
    if arch == "mlp":
        return lambda: models.mlp(int(np.prod(in_shape)), [width, width], num_classes)
    if arch == "resnet":
        return lambda: models.small_resnet(in_shape[0], num_classes, widths=(width, 2 * width, 4 * width))
    raise ValueError(f"arch must be 'mlp' or 'resnet', got {arch!r}")


def _spec(p):
    return mdl.TrainSpec(max_epochs=p["max_epochs"], patience=p["patience"])


def info_run(p: dict) -> RunResult:
    """Model information, test accuracy and confidence of one (task, noise, classes, architecture) cell."""
    (train, code, test), K = task_split(p["task"], p["n_train"], p["k"], p["n_test"], p["seed"], p.get("classes"),
                                        p.get("noise"), p.get("level", 0.0))
    make = factory(p["arch"], train[0].shape[1:], K, p["width"])
    info = mdl.model_information(make, *train, *code, K, spec=_spec(p), seed=p["seed"], device=p["device"])
    model = make()
    model.load_state_dict(info.pop("final_state"))
    ev = mdl.evaluate(model, *test, p["device"])
    return RunResult([], {**info, "acc": ev["acc"], "confidence": ev["confidence"], "num_classes": K,
                          "n_params": models.num_parameters(model)})


def info_table(cells: list[dict], settings: dict, workers: int | None = None) -> pd.DataFrame:
    """One cached :func:`info_run` per cell (cells override ``settings``), as a table, on ``workers`` processes."""
    from .executor import run_grid
    return pd.DataFrame(run_grid(_info_task, [{**settings, **c} for c in cells], workers=workers,
                                 desc="model information"))


def _info_task(**p):
    key = {k: v for k, v in p.items() if not (k in ("noise", "level") and not p.get("level"))}
    run = cache.cached_run("mdl_info", key, info_run, deps=DEPS)  # noise at level 0 is the clean task's run
    return {**p, **run.metrics}


def _features(x: np.ndarray, device, size: int = 112) -> np.ndarray:
    """Globally pooled EfficientNet-Lite0 (ImageNet) features of grey 28 x 28 images resized to ``size``."""
    net = models.efficientnet_lite(0).to(device)
    rgb = torch.nn.functional.interpolate(torch.as_tensor(x), size=(size, size), mode="bilinear").repeat(1, 3, 1, 1)
    with torch.no_grad():
        return torch.cat([net.extract_features(((b * 255 - 127) / 128).to(device)).mean((2, 3)).cpu()
                          for b in rgb.split(64)]).numpy()


def domain_run(p: dict) -> RunResult:
    """Seed 003 §4 on digit domains: ``L(M_A, B) = L_init(B) - L_{M_A}(B)`` on B's coding set for every pair, and the
    first- and second-order distances of ImageNet features (``d1``, ``d2``, eqs. 13-14)."""
    dev, spec = config.device(p["device"]), _spec(p)
    splits = {d: task_split(d, p["n_train"], p["k"], 10, p["seed"])[0] for d in p["domains"]}
    make = factory(p["arch"], (1, 28, 28), 10, p["width"])
    init = {k: v.clone() for k, v in mdl.fresh(make, None, p["seed"]).state_dict().items()}
    trained = {d: mdl.fit(mdl.fresh(make, init, p["seed"]), *splits[d][0], spec, p["seed"], dev).state_dict()
               for d in p["domains"]}
    code = lambda state, d: mdl.prequential_codelength(make, *splits[d][1], 10, init_state=state, first_block="model",
                                                       spec=spec, seed=p["seed"], device=dev, desc=f"code {d}").total_bits
    from_init = {d: code(init, d) for d in p["domains"]}
    feats = {d: _features(splits[d][1][0][:p["n_features"]], dev) for d in p["domains"]}
    records = []
    for a in p["domains"]:
        for b in p["domains"]:
            fa, fb = feats[a], feats[b]
            records.append({"source": a, "target": b, "L": from_init[b] - code(trained[a], b),
                            "d1": float(np.linalg.norm(fa.mean(0) - fb.mean(0))),
                            "d2": float(np.linalg.norm(np.cov(fa.T) - np.cov(fb.T)))})
    return RunResult(records, {"from_init": from_init})


def similarities(pairs: pd.DataFrame) -> pd.DataFrame:
    """Seed 003 eqs. (4) and (5): ``S(A, B) = L(A,B) / (L(A,A) + L(B,B) - L(A,B))``, ``S_uni(A, B) = L(A,B) / L(B,B)``."""
    own = pairs[pairs.source == pairs.target].set_index("target").L
    out = pairs.copy()
    out["S"] = out.L / (out.source.map(own) + out.target.map(own) - out.L)
    out["S_uni"] = out.L / out.target.map(own)
    return out


def resnet_components(model: torch.nn.Module) -> dict[str, dict[str, list[str]]]:
    """Parameter names of a :func:`studylib.models.small_resnet` grouped by block (stem, block0.., fc) and by kind
    of layer (first and second 3x3 convolution of the blocks, 1x1 shortcut convolutions, batch norms)."""
    names = [n for n, _ in model.named_parameters()]
    block_ids = sorted({int(n.split(".")[0]) for n in names if ".body." in n or ".skip." in n})
    by_block = {"stem": [n for n in names if int(n.split(".")[0]) < block_ids[0]]}
    by_block.update({f"block{i}": [n for n in names if int(n.split(".")[0]) == b] for i, b in enumerate(block_ids)})
    by_block["fc"] = [n for n in names if int(n.split(".")[0]) > block_ids[-1]]
    kinds = {"conv3x3 (first)": r"\.body\.0\.", "conv3x3 (second)": r"\.body\.3\.", "conv1x1 (shortcut)": r"\.skip\.0\.",
             "batch norm (blocks)": r"\.(body\.[14]|skip\.1)\."}
    by_kind = {k: [n for n in names if re.search(rx, n)] for k, rx in kinds.items()}
    return {"block": by_block, "kind": {k: v for k, v in by_kind.items() if v}}


def ablation_run(p: dict) -> RunResult:
    """Seed 003 §6: information ablation of a small ResNet. ``I(C) = L_{ablated}(code) - L_{trained}(code)``, the
    ablated model being the trained one with component C's parameters reset to their initial values."""
    dev, spec = config.device(p["device"]), _spec(p)
    (train, code, test), K = task_split(p["task"], p["n_train"], p["k"], p["n_test"], p["seed"])
    make = factory("resnet", train[0].shape[1:], K, p["width"])
    init = {k: v.clone() for k, v in mdl.fresh(make, None, p["seed"]).state_dict().items()}
    model = mdl.fit(mdl.fresh(make, init, p["seed"]), *train, spec, p["seed"], dev)
    final = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    length = lambda state, what: mdl.prequential_codelength(make, *code, K, init_state=state, first_block="model",
                                                            spec=spec, seed=p["seed"], device=dev,
                                                            desc=f"code, {what} reset").total_bits
    l_final = length(final, "nothing")
    records = []
    for grouping, comps in resnet_components(model).items():
        for comp, names in comps.items():
            state = {**final, **{n: init[n] for n in names}}
            records.append({"grouping": grouping, "component": comp, "n_params": sum(final[n].numel() for n in names),
                            "I": length(state, comp) - l_final})
    l_init = length(init, "everything")
    records.append({"grouping": "all", "component": "all", "n_params": models.num_parameters(model),
                    "I": l_init - l_final})
    return RunResult(records, {"acc": mdl.evaluate(model, *test, dev)["acc"], "codelength_final": l_final})


def distillation_run(p: dict) -> RunResult:
    """Seed 003 §7: synced distillation. ``I = L(student alone) - L(student taught)`` on the same examples, for each
    (teacher width, alpha); the accuracies of the teacher and of a conventionally distilled student on the test set."""
    dev, spec = config.device(p["device"]), _spec(p)
    (train, _, test), K = task_split(p["task"], p["n_train"], 0, p["n_test"], p["seed"])
    student = factory("mlp", train[0].shape[1:], K, p["student_width"])
    alone = mdl.prequential_codelength(student, *train, K, spec=spec, seed=p["seed"], device=dev, desc="student alone")
    acc_alone = mdl.evaluate(mdl.fit(mdl.fresh(student, None, p["seed"]), *train, spec, p["seed"], dev), *test, dev)["acc"]
    done = {}
    records = [{"sweep": "teacher", "teacher_width": None, "alpha": 0.0, "teacher_acc": np.nan, "student_acc": acc_alone,
                "I": 0.0}]
    settings = ([("teacher", w, p["alpha"]) for w in p["teacher_widths"]]
                + [("alpha", p["teacher_widths"][-1], a) for a in p["alphas"]])
    for sweep, width, alpha in settings:
        if (width, alpha) not in done:
            done[width, alpha] = _distilled(p, train, test, K, student, width, alpha, alone.total_bits, acc_alone)
        records.append({"sweep": sweep, "teacher_width": width, "alpha": alpha, **done[width, alpha]})
    return RunResult(records, {"codelength_alone": alone.total_bits})


def _distilled(p, train, test, K, student, width, alpha, bits_alone, acc_alone) -> dict:
    """One synced-distillation code of the training examples, and a conventionally distilled student."""
    dev, spec = config.device(p["device"]), _spec(p)
    teacher = factory("mlp", train[0].shape[1:], K, width)
    t = mdl.fit(mdl.fresh(teacher, None, p["seed"] + 1), *train, spec, p["seed"] + 1, dev)
    if alpha == 0:  # the loss ignores the teacher: the plain code (checked in tests/test_mdl.py)
        return {"teacher_acc": mdl.evaluate(t, *test, dev)["acc"], "student_acc": acc_alone, "I": 0.0}
    distill = mdl.Distillation(teacher, alpha=alpha, temperature=p["temperature"])
    taught = mdl.prequential_codelength(student, *train, K, spec=spec, seed=p["seed"], device=dev, distill=distill,
                                        desc=f"teacher {width}, alpha {alpha}")
    s = mdl.fit(mdl.fresh(student, None, p["seed"]), *train, spec, p["seed"], dev,
                soft_targets=mdl.predict(t, train[0], dev), distill=distill)
    return {"teacher_acc": mdl.evaluate(t, *test, dev)["acc"], "student_acc": mdl.evaluate(s, *test, dev)["acc"],
            "I": bits_alone - taught.total_bits}


def cached(name: str, fn, p: dict) -> pd.DataFrame:
    """The records of a cached ``domain_run``, ``ablation_run`` or ``distillation_run`` as a table."""
    return pd.DataFrame(cache.cached_run(name, p, fn, deps=DEPS).records)


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


def _tau(x, y) -> float:
    from scipy import stats
    return float(stats.kendalltau(x, y)[0])


def claims_table(tasks: pd.DataFrame, noise: pd.DataFrame, domains: pd.DataFrame, capacity: pd.DataFrame,
                 ablation: pd.DataFrame, distill: pd.DataFrame) -> pd.DataFrame:
    """Seed 003's claims, each with the evidence computed in the chapter and a verdict."""
    out = ClaimsTable()
    info = tasks.set_index("task").info_bits
    out.add("Street-view digits (SVHN) carry more information than MNIST", "003 §3, Fig. 1",
            f"cluttered MNIST {info.get('cluttered_mnist', np.nan):.0f} bits vs MNIST {info.get('mnist', np.nan):.0f}",
            info.get("cluttered_mnist", 0) > info.get("mnist", np.inf))
    out.add("Natural objects (CIFAR-10) carry more information than digits", "003 §3, Fig. 1",
            f"Fashion-MNIST {info.get('fashion_mnist', np.nan):.0f} bits vs MNIST {info.get('mnist', np.nan):.0f}",
            info.get("fashion_mnist", 0) > info.get("mnist", np.inf))
    tau_acc, tau_conf = _tau(tasks.info_bits, tasks.acc), _tau(tasks.info_bits, tasks.confidence)
    out.add("The more information a task needs, the lower accuracy and confidence", "003 §3, Fig. 1",
            f"Kendall tau over {len(tasks)} tasks: information vs accuracy {tau_acc:+.2f}, vs confidence {tau_conf:+.2f}",
            tau_acc < 0 and tau_conf < 0, tau_acc < 0 or tau_conf < 0)
    by = {n: d.sort_values("level") for n, d in noise.groupby("noise")}
    pix = by["missing_pixels"]
    out.add("Missing pixels make the task need more information", "003 §3, Table 2, Fig. 3",
            f"information at levels {', '.join(f'{v:g}' for v in pix.level)}: {', '.join(f'{v:.0f}' for v in pix.info_bits)} bits "
            f"(tau {_tau(pix.level, pix.info_bits):+.2f})", _tau(pix.level, pix.info_bits) > 0)
    pure = [by[n] for n in ("missing_objects", "massart")]
    flat = [d.info_bits.iloc[-1] <= 1.1 * d.info_bits.iloc[0] for d in pure]
    out.add("Missing objects and label noise are pure noise: they do not raise the information", "003 §3, Tables 3-4",
            "information at level 0.2 / level 0: " + ", ".join(f"{n} {d.info_bits.iloc[-1] / d.info_bits.iloc[0]:.2f}"
                                                             for n, d in zip(("missing objects", "massart"), pure)),
            all(flat), any(flat))
    less_conf = [d.confidence.iloc[-1] < d.confidence.iloc[0] for d in pure]
    out.add("... but they lower the model's confidence", "003 §3, Tables 3-4",
            "confidence at level 0 -> 0.2: " + ", ".join(f"{d.confidence.iloc[0]:.3f} -> {d.confidence.iloc[-1]:.3f}" for d in pure),
            all(less_conf), any(less_conf))
    off = domains[domains.source != domains.target]
    in_range = bool(((off.S >= 0) & (off.S <= 1)).all())
    tau_d = _tau(off.S, -off.d1)
    out.add("S is a similarity in [0, 1] that largely agrees with feature distances", "003 §4, Fig. 5",
            f"off-diagonal S from {off.S.min():.2f} to {off.S.max():.2f}; Kendall tau (S, -d1) {tau_d:+.2f}",
            in_range and tau_d > 0, in_range or tau_d > 0)
    wide = capacity.pivot_table(index="classes", columns="width", values="info_bits")
    cap = wide.max()
    smallest = wide[wide.columns[0]]
    sat = smallest.iloc[-1] < 1.1 * smallest.iloc[-2]
    out.add("A model's information saturates as the task grows: its capacity", "003 §5, Fig. 6a, Table 7",
            f"narrowest model: {smallest.iloc[-2]:.0f} -> {smallest.iloc[-1]:.0f} bits from {wide.index[-2]} to "
            f"{wide.index[-1]} classes", sat)
    out.add("Capacity grows with the number of parameters", "003 §5, Fig. 6b",
            f"largest information per width {', '.join(f'{w}: {v:.0f}' for w, v in cap.items())} "
            f"(tau {_tau(cap.index, cap.values):+.2f})", _tau(cap.index, cap.values) > 0)
    blocks = ablation[(ablation.grouping == "block")].set_index("component")
    inner = blocks.drop(index=["stem", "fc"])
    density = blocks.I / blocks.n_params
    out.add("Middle blocks carry the most information; blocks near the input the highest density", "003 §6, Fig. 7b, Table 9",
            f"most information in {blocks.I.idxmax()}; highest density in {density.idxmax()}",
            blocks.I.idxmax() in inner.index and density.idxmax() in ("stem", inner.index[0]),
            blocks.I.idxmax() in inner.index)
    kinds = ablation[ablation.grouping == "kind"].set_index("component").I
    short = kinds.get("conv1x1 (shortcut)", np.nan)
    out.add("Shortcut (residue) convolutions hold little information", "003 §6, Fig. 7c, Table 8",
            f"I: {', '.join(f'{k} {v:.0f}' for k, v in kinds.items())} bits",
            bool(short < kinds.drop("conv1x1 (shortcut)").min()) if "conv1x1 (shortcut)" in kinds else None)
    teachers = distill[distill.sweep == "teacher"].dropna(subset=["teacher_width"])
    alphas = distill[distill.sweep == "alpha"]
    out.add("Larger teachers transfer more information to the student", "003 §7, Fig. 8b, Table 10",
            f"I by teacher width {', '.join(f'{int(w)}: {i:.0f}' for w, i in zip(teachers.teacher_width, teachers.I))} bits",
            _tau(teachers.teacher_width, teachers.I) == 1, _tau(teachers.teacher_width, teachers.I) > 0)
    out.add("A larger distillation weight alpha transfers more information", "003 §7, Fig. 8c, Table 11",
            f"I by alpha {', '.join(f'{a:g}: {i:.0f}' for a, i in zip(alphas.alpha, alphas.I))} bits",
            _tau(alphas.alpha, alphas.I) == 1, _tau(alphas.alpha, alphas.I) > 0)
    spread = distill.student_acc.max() - distill.student_acc.min()
    out.add("Distillation changes the student's accuracy little", "003 §7, Tables 10-11",
            f"student accuracy spread over all settings {spread:.1%}", spread < 0.02, spread < 0.05)
    return out.frame()

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
