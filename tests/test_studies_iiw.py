import numpy as np
import pandas as pd
import pytest

from studylib import claims
from studylib.studies import iiw as iiw_study


def fake_runs(tasks=("a", "b", "c", "d", "e", "f"), jitter=0.05, seed=0):
    """Pre-trained and random runs on ``tasks``: every claim of the chapter true, up to a small jitter."""
    rng = np.random.default_rng(seed)
    rows = []
    for task in tasks:
        for pre in (True, False):
            scale = (1.0 if pre else 10.0) * np.exp(jitter * rng.normal(size=5))
            last = {"iiw_fisher_embedding": 0.5 * scale[0] if pre else 50.0 * scale[0],
                    "iiw_fisher_layer_0": 0.1 * scale[1], "iiw_fisher_layer_1": 0.2 * scale[2],
                    "iiw_fisher_fc": 3.0 * scale[3], "iiw_fisher_total": 4.0 * scale[4]}
            rows.append({"model": "m", "task": task, "seed": 0, "pretrained": pre,
                         "final_test_acc": (0.9 if pre else 0.6) + 0.01 * rng.normal(),
                         "final_iiw_fisher_total": last["iiw_fisher_total"], "records": [{}, last]})
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def every_run_learnt(monkeypatch):
    """The fake runs have no data split to re-read: every run counts as having learnt."""
    monkeypatch.setattr(iiw_study, "learnt", lambda runs, level=0.95: pd.Series(True, index=runs.index))


def test_layerwise_and_claims_on_a_case_where_every_claim_holds():
    runs = fake_runs()
    layerwise = iiw_study.final_layerwise(runs, "fisher")
    assert set(layerwise.group) == {"embedding", "layer_0", "layer_1", "fc"} and len(layerwise) == 6 * 8
    table = iiw_study.claims_table(runs, ["fisher"])
    assert table.verdict.tolist() == ["held"] * 5


def test_runs_that_did_not_learn_give_no_verdict(monkeypatch):
    monkeypatch.setattr(iiw_study, "learnt", lambda runs, level=0.95: pd.Series(False, index=runs.index))
    table = iiw_study.claims_table(fake_runs(), ["fisher"])
    assert set(table.verdict) == {"inconclusive"} and "did not learn" in table.reason[0]


def test_one_pair_is_inconclusive_however_large_the_difference():
    table = iiw_study.claims_table(fake_runs(tasks=("a",)), ["fisher"])
    assert set(table.verdict) == {"inconclusive"}


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


def _taylor_claims(q2_moved, error_small, error_t1):
    """Taylor claims on tasks whose paths grow geometrically from ``error_small`` at t = 0.1 to ``error_t1`` at
    t = 1."""
    summary = pd.DataFrame({"task": [f"t{i}" for i in range(len(q2_moved))], "moved Q2": q2_moved, "Q2 (all)": 0.0,
                            "rel. error, t=1": error_t1})
    t = np.array([0.01, 0.1, 0.2, 0.4, 0.7, 1.0])
    paths = [pd.DataFrame({"t": t, "rel_error": np.sign(e) * abs(s) * (abs(e) / abs(s)) ** np.log10(t * 10).clip(0)})
             for s, e in zip(error_small, error_t1)]
    table = iiw_study.claims_table_taylor(summary, paths)
    return dict(zip(table.claim, table.verdict))


def test_taylor_claims_decided_over_tasks():
    v = _taylor_claims(q2_moved=[2e-4, 3e-4, 2.5e-4, 4e-4], error_small=[0.01, 0.02, 0.01, 0.015],
                       error_t1=[-0.3, 0.4, 0.35, -0.5])
    assert v["The median |theta_Z - theta_0| of the parameters that moved exceeds 1e-4"] == "held"
    assert v["On some tasks the median |theta_Z - theta_0| of the parameters that moved exceeds 1e-3"] == "inconclusive"  # one run per task
    assert v["The precision of the approximation decreases as |theta_Z - theta_0| grows"] == "held"
    assert v["The IIW approximation has significant errors at the |delta| fine-tuning produces"] == "held"
    v = _taylor_claims(q2_moved=[2e-5, 3e-5, 1e-5], error_small=[0.01, 0.02, 0.01], error_t1=[0.02, 0.03, 0.01])
    assert v["The median |theta_Z - theta_0| of the parameters that moved exceeds 1e-4"] == "did not hold"
    assert v["The IIW approximation has significant errors at the |delta| fine-tuning produces"] == "did not hold"


def test_finetuning_claims_read_matched_runs():
    runs, epochs = [], []
    for k, task in enumerate("abcdef"):
        for pre, method, variant in ((True, "ft", "pre-trained FT"), (True, "lpft", "pre-trained LP-FT"),
                                     (False, "ft", "random FT")):
            curve = {"pre-trained FT": [1, 3, 2 + 0.1 * k], "random FT": [1, 3, 3 - 0.01 * k]}.get(variant, [1, 2, 3])
            runs.append({"model": "m", "task": task, "seed": 0, "pretrained": pre, "method": method,
                         "variant": variant, "final_iiw_fisher_total": curve[-1] * (2 if method == "lpft" else 1),
                         "final_test_acc": 0.8 - 0.01 * (method == "lpft") * (-1) ** k})
            epochs += [{"model": "m", "task": task, "seed": 0, "variant": variant, "epoch": e + 1, "iiw": v,
                        "test_acc": 0.5 + 0.1 * e} for e, v in enumerate(curve)]
    runs, epochs = pd.DataFrame(runs), pd.DataFrame(epochs)
    taus = iiw_study.epoch_taus(epochs)
    assert taus.set_index("variant").two_phase.groupby(level=0).all().to_dict() == {
        "pre-trained FT": True, "pre-trained LP-FT": False, "random FT": False}
    table = iiw_study.claims_table_finetuning(runs, epochs, taus, "fisher")
    v = dict(zip(table.claim, table.verdict))
    assert v["Pre-trained models go through memorisation then forgetting (IIW rises, then falls); randomly "
             "initialised ones do not"] == "held"
    # IIW rises with accuracy in most runs: the stratified tau is reliably positive, not negative
    assert v["Lower IIW does not reliably go with better accuracy across epochs"] == "held"
    # LP-FT has the higher IIW everywhere and the better accuracy on half the tasks: 3 of 6 pairs agree, and six
    # pairs cannot bound the agreement below 75%
    claim = table.set_index("claim").loc["Between FT and LP-FT, the lower-IIW model is not reliably the more accurate"]
    assert claim.verdict == "inconclusive" and "+0.00 [" in claim.evidence


def test_share_claim_needs_the_interval_below_the_band():
    assert claims.share_claim([1, 0] * 20, "not positive", negligible=0.25).verdict == "held"
    assert claims.share_claim([1] * 40, "not positive", negligible=0.25).verdict == "did not hold"
