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


def test_scale_changes_are_read_layer_by_layer():
    from studylib.metrics import esd
    import torch
    well = nets.mlp(30, [20], 4)
    poor = nets.mlp(30, [20], 4)
    with torch.no_grad():
        poor[1].weight.copy_(well[1].weight * 10)  # layer "1" ten times larger, layer "3" independent
    changes = esd_study.layer_changes({"w": esd.analyze(well), "p": esd.analyze(poor)}, "w", "p")
    assert changes.loc["1", "change in log10 lambda_max"] == pytest.approx(2.0, abs=1e-5)  # lambda = s^2
    assert changes.loc["1", "change in log10 ||W||_F^2"] == pytest.approx(2.0, abs=1e-5)
