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
