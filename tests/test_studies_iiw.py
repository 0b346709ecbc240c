import pandas as pd

from studylib.studies import iiw as iiw_study


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


def _taylor_claims(q2_all, q2_moved, error_t1):
    """Taylor claims on two tasks whose paths go from a 1% error at t = 0.01 to ``error_t1`` at t = 1."""
    from studylib.metrics import taylor
    summary = pd.DataFrame({"Q2 (all)": q2_all, "moved Q2": q2_moved, "unchanged": [0.6, 0.6],
                            "rel. error, t=1": error_t1})
    paths = [pd.DataFrame({"t": [0.01, 1.0], "rel_error": [0.01, e]}) for e in error_t1]
    gauss = taylor.gaussian_error_curves(3, mean_shifts=[0.1, 5.0], scale_changes=[0.1, 1.0])
    table = iiw_study.claims_table_taylor(summary, gauss, paths)
    return dict(zip(table.claim, table.verdict))


def test_taylor_claims_read_the_all_parameter_median_and_the_error_at_theta0():
    v = _taylor_claims(q2_all=[0.0, 0.0], q2_moved=[3e-4, 2e-3], error_t1=[-0.3, 0.05])
    assert v["The median |theta_Z - theta_0| exceeds 1e-4 on every task"] == "partly held"  # only among moved ones
    assert v["On some tasks the median |theta_Z - theta_0| exceeds 1e-3"] == "partly held"
    # a Gaussian mean shift has no Taylor error at any size: the proof's own model does not show the claim
    assert v["In the Gaussian model of the proof, the expansion degrades as the mean moves further"] == "did not hold"
    assert v["The approximation is good when |theta_Z - theta_0| is small"] == "held"
    assert v["The IIW approximation has significant errors at the |delta| fine-tuning produces"] == "did not hold"
    v = _taylor_claims(q2_all=[2e-4, 2e-3], q2_moved=[3e-4, 2e-3], error_t1=[-0.3, 0.2])
    assert v["The median |theta_Z - theta_0| exceeds 1e-4 on every task"] == "held"
    assert v["The IIW approximation has significant errors at the |delta| fine-tuning produces"] == "held"
