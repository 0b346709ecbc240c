import pandas as pd

from studylib import iiw_study


def fake_runs():
    rows = []
    for task in ("a", "b"):
        for pre in (True, False):
            scale = 1.0 if pre else 10.0
            last = {"iiw_fisher_embedding": 0.5 * scale if pre else 50.0, "iiw_fisher_layer_0": 0.1 * scale,
                    "iiw_fisher_layer_1": 0.2 * scale, "iiw_fisher_fc": 3.0 * scale, "iiw_fisher_total": 4.0 * scale}
            rows.append({"model": "m", "task": task, "pretrained": pre, "final_test_acc": 0.9 if pre else 0.6,
                         "final_iiw_fisher_total": last["iiw_fisher_total"], "records": [{}, last]})
    return pd.DataFrame(rows)


def test_layerwise_and_claims_on_a_case_where_every_claim_holds():
    runs = fake_runs()
    layerwise = iiw_study.final_layerwise(runs, "fisher")
    assert set(layerwise.group) == {"embedding", "layer_0", "layer_1", "fc"} and len(layerwise) == 16
    claims = iiw_study.claims_table(runs, layerwise, "fisher")
    assert claims.verdict.tolist() == ["held"] * 5


def test_paper_table1_is_complete():
    t = iiw_study.PAPER_TABLE1
    assert len(t) == 7 * 3 * 2 and set(t.init) == {"pre-trained", "random"}
    pre = t[t.init == "pre-trained"].set_index(["task", "model"]).test_acc
    rnd = t[t.init == "random"].set_index(["task", "model"]).test_acc
    assert (pre > rnd).all()  # the paper's pre-trained models always win on accuracy


def test_two_phase_rule():
    assert iiw_study.two_phase([1, 3, 2.5])            # peak at epoch 2, last 17% below it
    assert not iiw_study.two_phase([1, 2, 3])          # still rising
    assert not iiw_study.two_phase([1, 3, 2.9])        # less than 5% below the peak
    assert not iiw_study.two_phase([3, 1])             # too few epochs to tell
