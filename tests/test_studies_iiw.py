import numpy as np
import pandas as pd
import pytest

from studylib import claims
from studylib.runs import finetune
from studylib.studies import iiw_finetuning as finetuning
from studylib.studies import iiw_grid as grid
from studylib.studies import iiw_pretrained as pretrained
from studylib.studies import iiw_taylor as taylor_study


def fake_runs(tasks=("a", "b", "c"), seeds=(0, 1, 2), jitter=0.05, seed=0, acc_pre=0.9, acc_random=0.6):
    """Pre-trained and random runs on ``tasks`` x ``seeds``: every claim of the chapter true against both
    references, up to a small jitter (``acc_random``: the random twins' accuracy, one value or one per task)."""
    rng = np.random.default_rng(seed)
    rows = []
    for task in tasks:
        for s in seeds:
            for pre in (True, False):
                last = {}
                for ref in ("init", "prior_fresh"):
                    scale = (1.0 if pre else 10.0) * np.exp(jitter * rng.normal(size=5))
                    values = {"embedding": 0.5 * scale[0] if pre else 50.0 * scale[0], "layer_0": 0.1 * scale[1],
                              "layer_1": 0.2 * scale[2], "classifier": 3.0 * scale[3], "total": 4.0 * scale[4]}
                    last.update({finetune.iiw_key("fisher", ref, g): v for g, v in values.items()})
                rows.append({"model": "m", "task": task, "seed": s, "pretrained": pre, "n_train": 100, "n_test": 100,
                             "final_test_acc": (acc_pre if pre else _per_task(acc_random, task)) + 0.01 * rng.normal(),
                             **{"final_" + k: v for k, v in last.items() if k.endswith("_total")},
                             "records": [{}, last]})
    runs = pd.DataFrame(rows)
    runs["init"] = runs.pretrained.map({True: "pre-trained", False: "random"})
    return runs


def _per_task(value, task):
    return value[task] if isinstance(value, dict) else value


@pytest.fixture(autouse=True)
def balanced_test_sets(monkeypatch):
    """The fake runs have no data split to re-read: two balanced classes."""
    monkeypatch.setattr(grid, "baselines",
                        lambda runs: pd.DataFrame({"chance": 0.5, "majority": 0.5}, index=runs.index))


def test_layerwise_and_claims_on_a_case_where_every_claim_holds():
    runs = fake_runs()
    layerwise = grid.final_layerwise(runs, "fisher", "prior_fresh")
    assert set(layerwise.group) == {"embedding", "layer_0", "layer_1", "classifier"} and len(layerwise) == 18 * 4
    six_tasks = pretrained.claims_table(fake_runs(tasks=tuple("abcdef")), ["fisher"], ["init", "prior_fresh"])
    assert six_tasks.verdict.tolist() == ["held"] * 7 and set(six_tasks.n) == {6}
    assert {"head-highest-iiw-init", "head-highest-iiw-prior-fresh"} <= set(six_tasks.id)
    # the unit is the (model, task) cell: three tasks x three seeds are three units, which no sign-flip test at 95%
    # can decide, however large and consistent the difference
    table = pretrained.claims_table(runs, ["fisher"], ["init", "prior_fresh"])
    assert set(table.verdict) == {"undecidable here"} and set(table.n) == {3}
    assert all(c.units_needed >= 6 and c.unit.startswith("(model, task) cells") for c in table.attrs["claims"])
    cells = grid.regime_cells(runs)
    assert cells["in regime"].all() and (cells.majority == 0.5).all() and len(cells) == 3
    ratio = pretrained.ratio_by_reference(runs, ["fisher"], ["init", "prior_fresh"])
    assert (ratio["mean"].round(1) == -1.0).all() and (ratio["pairs"] == 9).all()


def test_runs_that_did_not_learn_give_no_verdict():
    table = pretrained.claims_table(fake_runs(acc_pre=0.5), ["fisher"], ["init"])
    assert set(table.verdict) == {"inconclusive"} and "no (model, task) cell is in the paper's regime" in table.reason[0]
    assert not grid.regime_cells(fake_runs(acc_pre=0.5))["pre-trained learnt"].any()


@pytest.mark.parametrize("acc_random, why", [(0.5, "random learnt"), (0.9, "gap")])
def test_a_random_twin_that_learnt_nothing_or_as_much_leaves_the_cell_out(acc_random, why):
    """The paper's regime needs both twins to learn and pre-training to help: a random twin at the majority rate
    (it learnt nothing) or as accurate as the pre-trained model puts its cell outside, and out of the verdicts."""
    cells = grid.regime_cells(fake_runs(acc_random=acc_random))
    assert cells["pre-trained learnt"].all() and not cells["in regime"].any()
    assert (not cells["random learnt"].any()) if why == "random learnt" else (cells["gap low"] < 0).all()
    six = fake_runs(tasks=tuple("abcdef"), acc_random={**dict.fromkeys("abcde", 0.6), "f": acc_random})
    table = pretrained.claims_table(six, ["fisher"], ["init"]).set_index("id")
    assert set(table.n.drop("higher-accuracy")) == {5}  # the cell outside the regime is not a unit of an IIW claim
    # the accuracy claim keeps every cell where both twins learnt, whatever the gain
    assert table.n["higher-accuracy"] == (5 if why == "random learnt" else 6)


def test_one_seed_per_cell_gives_no_verdict_however_large_the_difference():
    table = pretrained.claims_table(fake_runs(seeds=(0,)), ["fisher"], ["init"])
    assert set(table.verdict) == {"inconclusive"}  # one seed cannot show a cell learnt


def test_paper_table1_is_complete():
    t = pretrained.PAPER_TABLE1
    assert len(t) == 7 * 3 * 2 and set(t.init) == {"pre-trained", "random"}
    pre = t[t.init == "pre-trained"].set_index(["task", "model"]).test_acc
    rnd = t[t.init == "random"].set_index(["task", "model"]).test_acc
    assert (pre > rnd).all()  # the paper's pre-trained models always win on accuracy


def test_two_phase_rule():
    assert finetuning.two_phase([1, 3, 2.5])            # peak at epoch 2, last 17% below it
    assert not finetuning.two_phase([1, 2, 3])          # still rising
    assert not finetuning.two_phase([1, 3, 2.9])        # less than 5% below the peak
    assert not finetuning.two_phase([3, 1])             # too few epochs to tell


def _taylor_claims(q2_moved, error_small, error_t1):
    """Taylor claims on tasks whose paths grow geometrically from ``error_small`` at t = 0.1 to ``error_t1`` at
    t = 1."""
    summary = pd.DataFrame({"task": [f"t{i}" for i in range(len(q2_moved))], "moved Q2": q2_moved, "Q2 (all)": 0.0,
                            "rel. error, t=1": error_t1})
    t = np.array([0.01, 0.1, 0.2, 0.4, 0.7, 1.0])
    paths = [pd.DataFrame({"t": t, "rel_error": np.sign(e) * abs(s) * (abs(e) / abs(s)) ** np.log10(t * 10).clip(0)})
             for s, e in zip(error_small, error_t1)]
    table = taylor_study.claims_table(summary, paths)
    return dict(zip(table.id, table.verdict))


def test_taylor_claims_decided_over_tasks():
    v = _taylor_claims(q2_moved=[2e-4, 3e-4, 2.5e-4, 4e-4, 5e-4, 2e-4], error_small=[0.01, 0.02, 0.01, 0.015, 0.01, 0.02],
                       error_t1=[-0.3, 0.4, 0.35, -0.5, 0.3, 0.6])
    assert v["median-delta-above-1e-4"] == "held"
    assert "some-tasks-above-1e-3" not in v  # one value per task: a reading, not a claim
    assert v["error-grows-with-delta"] == "held"
    assert v["large-error-at-theta-z"] == "held"
    v = _taylor_claims(q2_moved=[2e-5, 3e-5, 1e-5, 2e-5, 3e-5, 1e-5], error_small=[0.01, 0.02, 0.01] * 2,
                       error_t1=[0.02, 0.03, 0.01] * 2)
    assert v["median-delta-above-1e-4"] == "did not hold"
    assert v["large-error-at-theta-z"] == "did not hold"
    v = _taylor_claims(q2_moved=[2e-4, 3e-4, 2.5e-4], error_small=[0.01, 0.02, 0.01], error_t1=[-0.3, 0.4, 0.35])
    assert v["median-delta-above-1e-4"] == "undecidable here"  # three tasks: no test over tasks can decide
    assert v["error-grows-with-delta"] == "undecidable here"  # the points of three paths are not more tasks


def test_finetuning_claims_read_matched_runs():
    runs, epochs = [], []
    for k, (task, seed) in enumerate((t, s) for t in "abcdef" for s in range(3)):  # six (model, task) units
        for pre, method, variant in ((True, "ft", "pre-trained FT"), (True, "lpft", "pre-trained LP-FT"),
                                     (False, "ft", "random FT")):
            curve = {"pre-trained FT": [1, 3, 2 + 0.01 * k], "random FT": [1, 3, 3 - 0.001 * k]}.get(variant, [1, 2, 3])
            acc = 0.8 + 0.001 * seed - 0.01 * (method == "lpft") * (-1) ** k if pre else 0.55 + 0.002 * seed
            runs.append({"model": "m", "task": task, "seed": seed, "pretrained": pre, "method": method,
                         "init": "pre-trained" if pre else "random",
                         "variant": variant, "n_train": 100, "n_test": 100, "final_test_acc": acc,
                         grid.total("fisher", "prior_fresh"): curve[-1] * (2 if method == "lpft" else 1)})
            start = 0.5 if pre else 5.0 + k  # lower at the start for the pre-trained, more accurate, models
            epochs += [{"model": "m", "task": task, "seed": seed, "variant": variant, "epoch": e, "iiw": v,
                        "test_acc": 0.5 + 0.1 * e} for e, v in enumerate([start] + curve)]
    runs, epochs = pd.DataFrame(runs), pd.DataFrame(epochs)
    taus = finetuning.epoch_taus(epochs)
    assert taus.set_index("variant").two_phase.groupby(level=0).all().to_dict() == {
        "pre-trained FT": True, "pre-trained LP-FT": False, "random FT": False}
    table = finetuning.claims_table(runs, epochs, taus, "fisher", "prior_fresh")
    v = dict(zip(table.id, table.verdict))
    assert v["forgetting-phase-fisher-prior-fresh"] == "held"
    assert set(table.n[table.id.str.startswith(("forgetting", "lpft", "start-lower"))]) == {6}  # cells, not runs
    # IIW rises with accuracy in most runs: the stratified tau is reliably positive, not negative
    assert v["epochs-fisher-prior-fresh"] == "held"
    # LP-FT has the higher IIW everywhere and the better accuracy in 1 or 2 of each cell's 3 seeds: the cells'
    # shares of agreement are 2/3 and 1/3, within 25% of one half in every cell: not a reliable order either way
    claim = claims.get(table, "lpft-pairs-fisher-prior-fresh")
    assert claim.verdict == "held" and "+0.00 [-0.17, +0.17]" in claim.evidence
    # LP-FT more accurate in every cell while its IIW is higher: the lower-IIW model is never the more accurate, so
    # IIW orders accuracy reliably (the wrong way round): "not reliably" must not come out held
    inverse = runs.assign(final_test_acc=runs.final_test_acc + 0.05 * (runs.method == "lpft"))
    claim = claims.get(finetuning.claims_table(inverse, epochs, taus, "fisher", "prior_fresh"),
                       "lpft-pairs-fisher-prior-fresh")
    assert claim.verdict != "held" and claim.estimate == pytest.approx(-0.5)
    assert v["start-lower-fisher-prior-fresh"] == "held"
    assert v["start-predicts-fisher-prior-fresh"] == "held"
    # against the initial weights IIW is 0 at epoch 0: no epoch-0 claims
    table = finetuning.claims_table(runs.rename(columns={grid.total("fisher", "prior_fresh"):
                                                                   grid.total("fisher", "init")}),
                                              epochs, taus, "fisher", "init")
    assert "start-predicts-fisher-init" not in set(table.id) and "epochs-fisher-init" in set(table.id)


def test_share_claim_needs_the_interval_below_the_band():
    assert claims.share_claim([1, 0] * 20, "not positive", negligible=0.25).verdict == "held"
    assert claims.share_claim([1] * 40, "not positive", negligible=0.25).verdict == "did not hold"


def test_contrast_decomposes_the_ratio_by_setting():
    """At lr 1e-4 the pre-trained runs move 10x less (||delta||^2 100x) with the same gradient and angle: the IIW
    ratio is -2 in log10, all of it from ||delta||; at lr 3e-4 the two sides are alike and no order shows."""
    rng = np.random.default_rng(0)
    rows = []
    for lr, shrink in ((1e-4, 0.1), (3e-4, 1.0)):
        for seed in range(4):
            for init in ("pre-trained", "random"):
                d = (shrink if init == "pre-trained" else 1.0) * np.exp(0.01 * rng.normal())
                g, cos = 2.0, 0.3 * np.exp(0.01 * rng.normal())
                last = {finetune.iiw_key("pib", "init", "total"): (d * g * cos) ** 2,
                        **{finetune.geometry_key("pib", "init", q): v
                           for q, v in (("delta_norm", d), ("grad_norm", g), ("cos", -cos))}}
                rows.append({"model": "m", "task": "a", "seed": seed, "init": init, "lr": lr, "final_test_acc": 0.8,
                             "final_train_loss": 0.1, "records": [{}, last]})
    table = pretrained.contrast(pd.DataFrame(rows), "pib", "init", "lr").set_index("lr")
    assert table.loc[1e-4, "log10 IIW ratio"] == pytest.approx(-2, abs=0.05)
    assert table.loc[1e-4, "log10 ||delta||^2 ratio"] == pytest.approx(-2, abs=0.05)
    assert abs(table.loc[1e-4, "log10 ||g||^2 ratio"]) < 1e-9 and table.loc[1e-4, "pairs"] == 4
    assert pretrained.orderings(table.reset_index(), "lr") == "lr 0.0001: pre-trained lower; lr 0.0003: no clear order"
    assert pretrained.order_change(table.reset_index(), "lr", "learning rate") == (
        "moves: pre-trained lower at lr 0.0001, no clear order at lr 0.0003")
    same = table.reset_index().assign(low=-2.0, high=-1.0)
    assert pretrained.order_change(same, "lr", "learning rate") == "stays the same (pre-trained lower) at every learning rate"
    assert pretrained.orderings(same.assign(task=["a", "b"]), "task", prefix="") == "a: pre-trained lower; b: pre-trained lower"
    assert pretrained.orderings(same.assign(n=[500, 2000]), "n", prefix="", unit=" examples") == (
        "500 examples: pre-trained lower; 2,000 examples: pre-trained lower")
    # as the page prints it: one row per (theta_0, setting), the interval in one cell, grouped headers
    view = pretrained.contrast_view(pd.concat({"(a) initial": table.reset_index()}, names=["theta_0", None])
                                   .droplevel(1), "lr", "peak lr", "{:g}".format)
    assert list(view.index) == [("(a) initial", "0.0001"), ("(a) initial", "0.0003")]
    ratio = "log10 ratio pre-trained / random"
    first = view.iloc[0]
    assert first[(ratio, "IIW [95% CI]")] == claims.interval_text(*table.loc[1e-4, ["log10 IIW ratio", "low", "high"]])
    assert first[(ratio, "‖Δ‖²")] == f"{table.loc[1e-4, 'log10 ||delta||^2 ratio']:+.2f}" and first[("final training loss (nats)", "random")] == "0.10"


def test_interval_text():
    assert claims.interval_text(0.5234, 0.1234, 0.9234) == "+0.52 [+0.12, +0.92]"
    assert claims.interval_text(0.5, float("nan"), float("nan")) == "+0.50 (no interval)"
    assert claims.interval_text(float("nan"), 0, 1) == "n/a"


def test_fall_factors_split_the_fall_after_the_peak():
    rows = []
    for variant, path in (("pre-trained FT", [(1, 1, .5), (2, 1, .5), (3, .2, .5)]),
                          ("random FT", [(1, 1, .5), (2, 1, .5), (3, 1, .5)])):
        for epoch, (d, g, c) in enumerate(path, 1):
            rows.append({"model": "m", "task": "a", "seed": 0, "variant": variant, "epoch": epoch,
                         "iiw": (d * g * c) ** 2, "delta_norm": d, "grad_norm": g, "cos": c, "test_acc": 0.5 + epoch / 10})
    epochs = pd.DataFrame(rows)
    table = finetuning.fall_factors(epochs).set_index("variant")
    assert list(table.index) == ["pre-trained FT"] and table.runs.iloc[0] == 1  # the random run peaks last
    row = table.loc["pre-trained FT"]
    assert row["log10 IIW change"] == pytest.approx(np.log10(0.09))
    assert row["log10 ||delta||^2 change"] == pytest.approx(2 * np.log10(1.5))
    assert row["log10 ||g||^2 change"] == pytest.approx(2 * np.log10(0.2))
    assert row["log10 cos^2 change"] == pytest.approx(0)
    taus = finetuning.epoch_taus(epochs).set_index("variant")
    # the lowest IIW comes at the last epoch for the pre-trained run, also its most accurate; epoch 1 for the random
    assert taus.lowest_iiw_is_best.to_dict() == {"pre-trained FT": True, "random FT": False}
    assert taus.two_phase["pre-trained FT"] and not finetuning.epoch_taus(epochs, drop=0.95).two_phase.any()


def test_paper_beside_ours_reads_the_papers_tables_row_for_row():
    runs = fake_runs(tasks=("rotten_tomatoes", "reuters_pairs", "topic_claims"))
    table1 = pretrained.paper_vs_ours(runs, "fisher", "init").droplevel("our stand-in")
    # SST-2, BERT: IIW 9.60e-9 pre-trained vs 1.83e-6 random, accuracy 0.9197 vs 0.7936
    assert table1.loc["SST-2", ("paper, BERT", "log10 IIW ratio")] == pytest.approx(np.log10(9.60e-9 / 1.83e-6))
    assert table1.loc["SST-2", ("paper, BERT", "acc. gain")] == pytest.approx(0.9197 - 0.7936)
    assert pretrained.paper_vs_ours(runs, "fisher", "init").index[0] == ("SST-2", "rotten_tomatoes")
    assert table1.loc["SST-2", ("ours, m", "log10 IIW ratio")].startswith("-0.99 [")
    ft = runs[runs.init == "pre-trained"].assign(method="ft")
    lpft = ft.assign(method="lpft", final_test_acc=ft.final_test_acc + 0.02,
                     **{grid.total("fisher", "init"): ft[grid.total("fisher", "init")] * 100})
    table2 = finetuning.paper_vs_ours(pd.concat([ft, lpft, runs[runs.init == "random"].assign(method="ft")]),
                                            "fisher", "init").droplevel("our stand-in")
    # RTE, RoBERTa: IIW 5.37e-4 FT vs 4.50e-4 LP-FT, accuracy 0.7581 vs 0.8051
    assert table2.loc["RTE", ("paper, RoBERTa", "log10 IIW ratio")] == pytest.approx(np.log10(4.50e-4 / 5.37e-4))
    assert table2.loc["RTE", ("paper, RoBERTa", "acc. gain")] == pytest.approx(0.8051 - 0.7581)
    assert table2.loc["RTE", ("ours, m", "log10 IIW ratio")] == "+2.00 (no interval)"  # every seed alike
    assert table2.loc["RTE", ("ours, m", "acc. gain")] == "+0.020 (no interval)"


def pib_runs(spread, ratio=1.3, tasks=tuple("abcdef"), seeds=(0, 1, 2)):
    """Pre-trained and random runs whose "pib" IIW against (a) has three gradient-sampling draws each,
    base * 10 ** (-spread, 0, +spread), the random twins' base ``ratio`` times the pre-trained one's."""
    rows = []
    for task in tasks:
        for s in seeds:
            for pre in (True, False):
                base = (1.0 if pre else ratio) * (1 + 0.01 * s)
                draws = base * 10.0 ** np.array([-spread, 0.0, spread])
                last = {finetune.iiw_key("pib", "init", f"total_s{k}"): float(v) for k, v in enumerate(draws)}
                last[finetune.iiw_key("pib", "init", "total")] = float(draws.mean())
                rows.append({"model": "m", "task": task, "seed": s, "pretrained": pre, "n_train": 100, "n_test": 100,
                             "init": "pre-trained" if pre else "random",
                             "final_test_acc": (0.9 if pre else 0.6) + 0.01 * s + 0.001 * len(rows),
                             grid.total("pib", "init"): float(draws.mean()), "records": [{}, last]})
    return pd.DataFrame(rows)


def test_pib_noise_floor_is_the_sampling_error_of_a_cell_mean():
    spread = 0.2
    noise = grid.pib_sampling_noise(pib_runs(spread), "init")
    assert np.allclose(noise["sd log10"], spread) and np.allclose(noise["se log10"], spread / np.sqrt(3))
    # a cell mean of 3 seeds' log ratios: 6 runs' sampling variances over 3^2, in natural log units
    expected = 1.96 * np.sqrt(6 * (spread / np.sqrt(3) * np.log(10)) ** 2 / 9)
    assert grid.pib_floor(pib_runs(spread), "init") == pytest.approx(expected)
    assert np.isnan(grid.pib_floor(pib_runs(spread).assign(records=lambda d: [[{}, {
        k: v for k, v in r[-1].items() if not k.endswith(("_s1", "_s2"))}] for r in d.records]), "init"))


def test_a_pib_difference_inside_the_sampling_noise_is_no_finding():
    """The same consistent difference (random twins 1.3x the pre-trained IIW) is held when the gradient sampling is
    precise, and inconclusive when the sampling noise of one cell is larger than the difference."""
    def verdict(spread):
        table = pretrained.claims_table(pib_runs(spread), ["pib"], ["init"])
        return table.set_index("id").loc["lower-iiw-pib-init", ["verdict", "reason"]]
    assert verdict(0.001).verdict == "held"
    quiet = verdict(0.3)
    assert quiet.verdict == "inconclusive" and "noise floor" in quiet.reason


def test_the_accuracy_claim_is_not_decided_by_the_regime_selection():
    """Cells where both twins learnt but pre-training gave no gain stay in the accuracy claim (leaving them out
    would make "pre-trained models are more accurate" hold by construction)."""
    runs = fake_runs(tasks=tuple("abcdef"), acc_random={**dict.fromkeys("abc", 0.6), **dict.fromkeys("def", 0.9)})
    table = pretrained.claims_table(runs, ["fisher"], ["init"]).set_index("id")
    assert table.loc["higher-accuracy", "n"] == 6 and table.loc["lower-iiw-fisher-init", "n"] == 3



def test_outside_regime_says_why():
    assert grid.outside_regime(grid.regime_cells(fake_runs())) == "none"
    assert grid.outside_regime(grid.regime_cells(fake_runs(acc_random=0.5))).count(
        "the random twin did not beat the majority class") == 3
    assert "1 seed(s) cannot show it" in grid.outside_regime(grid.regime_cells(fake_runs(seeds=(0,))))
