import numpy as np
import pytest

from studylib import nets
from studylib.studies import esd as esd_study


def test_paper_tables_have_every_series_and_metric():
    long = esd_study.paper_table_long()
    assert len(long) == 4 * 4 and set(long.metric) == set(esd_study.PAPER_METRICS)
    assert (long.kendall_tau < 0).all()  # the paper's taus are all negative: smaller metric, higher accuracy


def test_layer_esd_names_the_layers_it_knows():
    model = nets.mlp(20, [16], 3)
    with pytest.raises(ValueError, match="no weight matrix named 'nope'; choose one of: 1, 3"):
        esd_study.layer_esd(model, "nope")
    real, shuffled, row = esd_study.layer_esd(model, "1")
    assert len(real) == len(shuffled) == 16 and real.sum() == pytest.approx(shuffled.sum(), rel=1e-4)
    assert row.mp_bulk_max > 0


def test_correlation_flow_orders_layers_by_depth():
    from studylib.metrics import esd
    flow = esd_study.correlation_flow({"m": esd.analyze(nets.mlp(30, [20, 20], 4))})
    assert flow.depth.tolist() == [0.0, 0.5, 1.0] and flow.layer.tolist() == ["1", "3", "5"]


def _series_rows(series: str, n: int, rmse: float, r2: float):
    return [{"series": series, "metric": m, "n": n, "rmse": rmse + k, "r2": r2}
            for k, m in enumerate(esd_study.PAPER_METRICS)]


def test_the_source_texts_tables_1_and_5_sit_beside_ours_row_for_row():
    import pandas as pd
    ours = pd.DataFrame(_series_rows("A", 3, 1.0, 0.5) + _series_rows("B", 8, 2.0, 0.9))
    t1 = esd_study.table1_beside_ours(ours)
    assert list(t1.index) == [esd_study.METRIC_LABELS[m] for m in esd_study.PAPER_METRICS]
    assert t1.loc["log10 ||W||_F^2", "paper: VGG (6 models)"] == 0.56
    assert t1.loc["log10 lambda_max", "paper: ResNet (5 models)"] == 1.4  # the draft's value, not the journal's
    assert t1["ours: A (3 models)"].tolist() == [1.0, 2.0, 3.0, 4.0] and t1["ours: B (8 models)"].iloc[0] == 2.0
    t5 = esd_study.table5_beside_ours(ours)
    alpha_w = t5["alpha_weighted"]
    assert alpha_w.loc["MSE mean", "paper (17 series)"] == 3.14
    assert alpha_w.loc["R² mean", "ours (2 series)"] == pytest.approx(0.7)
    assert alpha_w.loc["MSE mean", "ours (2 series)"] == pytest.approx((3.0 ** 2 + 4.0 ** 2) / 2)  # rmse 3 and 4


def test_the_quality_series_trains_every_member_for_the_same_steps():
    assert esd_study.quality_epochs(250, 2000) == 1024 and esd_study.quality_epochs(32000, 2000) == 8
    assert esd_study.quality_epochs(10 ** 6, 10) == 1
    import torch
    a, b = esd_study.initial_member(8, 3), esd_study.initial_member(8, 3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _scaled(model, factors):
    """A copy of ``model`` whose k-th Linear weight is multiplied by ``factors[k]``."""
    import copy
    import torch
    out = copy.deepcopy(model)
    linears = [m for m in out if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for m, f in zip(linears, factors):
            m.weight.mul_(f)
    return out


def test_scale_changes_are_read_layer_by_layer_against_another_seed():
    from studylib.metrics import esd
    import torch
    torch.manual_seed(0)
    well = [nets.mlp(30, [20] * 5, 4) for _ in range(2)]
    poor = [_scaled(well[0], [10, 1, 1, 1, 1, 1]), _scaled(well[1], [1, 1, 1, 1, 1, 10])]
    changes = esd_study.collapse_changes([esd.analyze(m) for m in well], [esd.analyze(m) for m in poor],
                                         "log_spectral_norm")
    twin = changes[changes.kind == "deficient twin"].set_index(["seed", "layer"]).change
    assert twin.loc[0, 1] == pytest.approx(2.0, abs=1e-5) and twin.loc[1, 6] == pytest.approx(2.0, abs=1e-5)  # s^2
    assert twin.drop([(0, 1), (1, 6)]).abs().max() < 1e-5
    conc = esd_study.collapse_concentrations(changes)
    assert conc["deficient twin"].tolist() == pytest.approx([1.0, 1.0])  # one layer of six carries all the change
    assert (conc["another seed"] < 1).all()  # two independent initialisations differ in every layer


def test_concentration_runs_from_even_to_one_layer():
    assert esd_study.concentration([1, 1, 1, 1, 1, 1]) == pytest.approx(1 / 3)  # the top 2 of 6 layers
    assert esd_study.concentration([0, 0, -3, 0, 0, 0, 0]) == 1.0
    assert esd_study.concentration([3, 1, 1, 1, 0, 0, 0], few=0.25) == pytest.approx(4 / 6)  # top ceil(1.75) = 2
    assert esd_study.concentration([0, 0]) != esd_study.concentration([0, 0])  # NaN: nothing changed


def test_scale_collapse_claim_compares_the_twin_with_seed_noise():
    import pandas as pd
    rows = []
    for seed in range(6):  # six seeds: the fewest a paired test over seeds can decide on
        for layer in range(1, 7):
            rows.append({"seed": seed, "kind": "deficient twin", "layer": layer,
                         "change": 2.0 if layer == 1 else 0.01 * (seed + 1)})
            rows.append({"seed": seed, "kind": "another seed", "layer": layer, "change": 0.1 * (1 + (layer + seed) % 3)})
    twins = pd.DataFrame({"seed": np.repeat(np.arange(6), 2), "trained": ["well", "deficient"] * 6,
                          "test_acc": [0.85, 0.7, 0.86, 0.72, 0.84, 0.71] * 2})
    claim = esd_study.scale_collapse_claim({"log10 lambda_max": pd.DataFrame(rows)}, twins)
    assert claim.verdict == "held" and claim.paper == esd_study.RESPONSE
    three = esd_study.scale_collapse_claim({"log10 lambda_max": pd.DataFrame(rows).query("seed < 3")},
                                           twins.query("seed < 3"))
    assert three.verdict == "undecidable here" and three.units_needed == 6
    unlearnt = twins.assign(test_acc=0.12)  # no twin learnt: no verdict
    assert esd_study.scale_collapse_claim({"log10 lambda_max": pd.DataFrame(rows)}, unlearnt).verdict == "inconclusive"
    even = pd.DataFrame(rows).assign(change=lambda d: d.change.where(d.kind == "another seed", 0.5 + 0.01 * d.seed
                                                                     * d.layer))
    assert esd_study.scale_collapse_claim({"log10 lambda_max": even}, twins).verdict == "did not hold"


def test_table2_and_the_published_table_read_with_the_papers_units_and_labels():
    import pandas as pd
    summary = pd.DataFrame([{"model": "A", "layers": 3, "alpha": 4.0, "log_norm": 1.0, "log_spectral_norm": 2.0,
                             "alpha_weighted": 3.0, "log_alpha_norm": 4.0}])
    t2 = esd_study.table2_beside_ours(summary, ["A"])
    assert list(t2.index) == ["paper: GPT", "paper: GPT2-small", "paper: GPT2-medium", "paper: GPT2-large",
                              "paper: GPT2-xl", "ours: A"]
    assert t2.loc["paper: GPT", "log10 lambda_max"] == 1.72 and t2.loc["ours: A", "log10 lambda_max"] == 2.0
    assert t2["mean alpha"].isna().sum() == 5  # the paper's table has no mean alpha
    pub = esd_study.published_view()
    assert list(pub.index.get_level_values(0).unique()) == ["VGG", "ResNet", "ResNet-1K", "DenseNet"]
    assert pub.loc[("ResNet", "τ"), "alpha_weighted"] == -1 and pub.loc[("VGG", "R²"), "log10 ||W||_F^2"] == 0.88
    assert list(pub.columns) == [esd_study.METRIC_LABELS[m] for m in esd_study.PAPER_METRICS]
