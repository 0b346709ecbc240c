"""The claims engine: every verdict rule on synthetic data where the claim is true, false, or null."""
import math

import numpy as np
import pandas as pd
import pytest

from studylib import claims


def related(n, strength, rng):
    x = rng.normal(size=n)
    return x, strength * x + rng.normal(size=n)


def null_rate(make_claim, reps=100):
    """How often a rule says 'held' on data where the claim is false at the boundary (no effect)."""
    rng = np.random.default_rng(0)
    return sum(make_claim(rng).verdict == "held" for _ in range(reps)) / reps


@pytest.mark.parametrize("sign", [1, -1])
def test_rank_claim_true_false_and_null(sign):
    rng = np.random.default_rng(1)
    x, y = related(40, 2.0 * sign, rng)
    assert claims.rank_claim(x, y, sign).verdict == "held"
    assert claims.rank_claim(x, -y, sign).verdict == "did not hold"
    rate = null_rate(lambda r: claims.rank_claim(*related(12, 0.0, r), sign))
    print(f"rank claim (sign {sign:+d}) held on null data in {rate:.1%} of 100 repetitions")
    assert rate <= 0.05


def test_stratified_rank_claim_on_null_data():
    groups = np.repeat(np.arange(3), 6)
    rate = null_rate(lambda r: claims.rank_claim(*related(18, 0.0, r), 1, groups=groups))
    print(f"stratified rank claim held on null data in {rate:.1%} of 100 repetitions")
    assert rate <= 0.05


def test_no_relation_claims_need_an_interval_inside_the_band():
    rng = np.random.default_rng(2)
    x, y = related(2000, 0.0, rng)
    assert claims.rank_claim(x, y, 0).verdict == "held"                    # n large: the interval is narrow
    small = claims.rank_claim(x[:10], y[:10], 0)                           # n small: it cannot be, by design
    assert small.verdict == "undecidable here" and 100 < small.units_needed < 400
    assert claims.rank_claim(*related(40, 2.0, rng), 0).verdict == "did not hold"
    rate = null_rate(lambda r: claims.rank_claim(*related(40, 0.5, r), 0))  # a real, moderate relation
    print(f"'no relation' held on related data in {rate:.1%} of 100 repetitions")
    assert rate <= 0.05


def test_not_negative_claims():
    rng = np.random.default_rng(3)
    assert claims.rank_claim(*related(40, 2.0, rng), "not negative").verdict == "held"
    assert claims.rank_claim(*related(40, -2.0, rng), "not negative").verdict == "did not hold"
    assert claims.rank_claim(*related(12, 0.0, rng), "not negative").verdict == "inconclusive"
    x, y = related(40, -2.0, rng)
    assert claims.rank_claim(x, y, "not positive").verdict == "held"


def test_band_claims_refuted_only_by_an_interval_wholly_outside_the_band():
    assert claims.decide(0.02, 0.3, "none", 0.1)[0] == "inconclusive"       # partly inside the band
    assert claims.decide(0.12, 0.3, "none", 0.1)[0] == "did not hold"
    assert claims.decide(-0.15, -0.01, "not negative", 0.1)[0] == "inconclusive"
    assert claims.decide(-0.3, -0.12, "not negative", 0.1)[0] == "did not hold"
    assert claims.decide(0.01, 0.15, "not positive", 0.1)[0] == "inconclusive"
    assert claims.decide(-0.3, 0.1, "not positive", 0.1)[0] == "held"


def test_three_models_in_perfect_order_are_undecidable_never_held():
    for sign in (1, -1):
        c = claims.rank_claim([1, 2, 3], [1, 2, 3][::sign], sign)
        assert c.verdict == "undecidable here" and c.low < 0 < c.high + 1e-9 and c.n == 3
        # the fewest distinct units at which a perfect order holds: 5 ([+0.19, +1.00] by the referee's check)
        assert c.units_needed == 5 and "needs about 5" in c.reason
        five = claims.rank_claim([1, 2, 3, 4, 5], [1, 2, 3, 4, 5][::sign], sign)
        assert five.verdict == "held"
    one = claims.median_claim([5.0], expected_sign=1)  # one value, 900 times its threshold: still no finding
    assert one.verdict == "undecidable here" and one.units_needed == 6
    three = claims.tau_difference_claim([1, 2, 3], [3, 1, 2], [1, 2, 3], 1, unit="models")
    six = claims.tau_difference_claim(np.arange(6.0), -np.arange(6.0), np.arange(6.0), 1, unit="models")
    assert three.units_needed == 6 and six.verdict == "held"  # p = 2 / 2^6 at six distinct models


def test_median_claim_true_false_and_null():
    rng = np.random.default_rng(4)
    assert claims.median_claim(rng.normal(1, 1, 20), expected_sign=1).verdict == "held"
    assert claims.median_claim(rng.normal(-1, 1, 20), expected_sign=1).verdict == "did not hold"
    a = rng.normal(2, 1, 20)
    assert claims.median_claim(a, a - 1 + 0.1 * rng.normal(size=20), expected_sign=1).verdict == "held"  # paired
    rate = null_rate(lambda r: claims.median_claim(r.normal(0, 1, 8), expected_sign=1))
    print(f"mean claim held on null data in {rate:.1%} of 100 repetitions")
    assert rate <= 0.05
    small = claims.median_claim(rng.normal(0, 0.001, 50), expected_sign=1, negligible=0.01)
    assert small.verdict == "did not hold" and "negligible" in small.reason


def test_tau_difference_claim_true_false_and_null():
    rng = np.random.default_rng(5)
    y = rng.normal(size=60)
    good, bad = y + 0.3 * rng.normal(size=60), rng.normal(size=60)
    assert claims.tau_difference_claim(good, bad, y, 1).verdict == "held"
    assert claims.tau_difference_claim(bad, good, y, 1).verdict == "did not hold"
    perfect = claims.tau_difference_claim(y[:8], -y[:8], y[:8], 1)  # 8 models: a perfect difference of 2 holds
    assert perfect.verdict == "held" and perfect.estimate == 2.0

    def null(r):
        y = r.normal(size=30)
        return claims.tau_difference_claim(y + r.normal(size=30), y + r.normal(size=30), y, 1)
    rate = null_rate(null)
    print(f"tau-difference claim held on null data in {rate:.1%} of 100 repetitions")
    assert rate <= 0.05


def test_combine_rules():
    held, no, unsure, absent = (claims.Claim("c", "w", "s", 1.0, 0.5, 1.5, 5, 0.01, v, "r")
                                for v in ("held", "did not hold", "inconclusive", "not testable here"))
    both = lambda *parts, rule="all": claims.combine("c", "w", dict(zip("abc", parts)), rule).verdict
    assert both(held, held) == "held" and both(held, no) == "did not hold" and both(held, unsure) == "inconclusive"
    assert both(held, absent) == "not testable here"
    assert both(held, held, rule="each") == "held" and both(no, no, rule="each") == "did not hold"
    assert both(held, no, rule="each") == "partly held" and both(held, unsure, rule="each") == "partly held"
    # refuted on one data set and held on none: the claim for each did not hold, whatever the others say
    assert both(no, unsure, rule="each") == "did not hold" and both(absent, absent, rule="each") == "not testable here"
    combined = claims.combine("c", "w", {"MNIST": held, "Fashion": no}, "each")
    assert combined.evidence.startswith("MNIST: s +1.00 [+0.50, +1.50], n = 5") and combined.n == 10
    assert claims.combine("c", "w", {"a": held, "b": no}).n == 5  # a conjunction's parts share their runs
    with pytest.raises(ValueError, match="rule must be"):
        claims.combine("c", "w", {"a": held}, "any")


def test_a_failed_premise_turns_a_verdict_into_inconclusive():
    c = claims.rank_claim(np.arange(20), np.arange(20), 1)
    assert claims.precondition(c, True, "why").verdict == "held"
    weak = claims.precondition(c, False, "the models did not learn")
    assert weak.verdict == "inconclusive" and weak.reason.endswith("but the models did not learn")
    absent = claims.not_testable("c", "w", "r")
    assert claims.precondition(absent, False, "x").verdict == "not testable here"


def test_share_claim_true_false_and_null():
    assert claims.share_claim([1] * 12, 1).verdict == "held"
    assert claims.share_claim([0] * 12, 1).verdict == "did not hold"
    rate = null_rate(lambda r: claims.share_claim(r.random(12) < 0.5, 1))
    print(f"a share above 1/2 held on fair coins in {rate:.1%} of 100 repetitions")
    assert rate <= 0.05


def test_bad_arguments_name_what_they_accept():
    with pytest.raises(ValueError, match=r"\(expected_sign\) must be one of"):
        claims.rank_claim([1, 2, 3], [1, 2, 3], 2)
    c = claims.rank_claim([1, 1, 1], [1, 2, 3], 1)
    assert c.verdict == "inconclusive" and "fewer than two distinct" in c.reason
    with pytest.raises(ValueError, match="needs an id"):
        claims.table([claims.rank_claim([1, 2, 3], [1, 2, 3], 1)])
    with pytest.raises(ValueError, match="share the id"):
        claims.table([claims.not_testable("a", "w", "r", id="a"), claims.not_testable("b", "w", "r", id="a")])
    with pytest.raises(ValueError, match="strata must be constant within a unit"):
        claims.rank_claim([1, 2, 3, 4], [1, 2, 3, 4], 1, groups=[0, 1, 0, 1], units=[0, 0, 1, 1])


def test_table_summary_and_records_keep_the_evidence():
    rng = np.random.default_rng(6)
    items = [claims.rank_claim(*related(30, 2.0, rng), 1, claim="x tracks y", where="Fig. 1", unit="models",
                               id="x-tracks-y"),
             claims.not_testable("needs ImageNet", "Table 2", "not offline", id="imagenet")]
    table = claims.table(items, audit_reps=50)
    assert list(table.columns) == ["id", "claim", "where", "evidence", "p", "verdict", "reason", "control", "audit",
                                   "n"]
    assert claims.get(table, "x-tracks-y").verdict == "held" and table.audit[1] == "-"
    assert table.audit[0].startswith("false held ") and "power 100%" in table.audit[0]
    with pytest.raises(KeyError, match="x-tracks-y"):
        claims.get(table, "x-track-y")
    assert table.evidence[0].startswith("Kendall tau +") and "n = 30 models" in table.evidence[0]
    assert claims.summary(table.verdict) == "1 held, 1 not testable here"
    other = claims.table([claims.not_testable("needs JFT", "Table 3", "not offline", id="jft")])
    rows = claims.records(claims.concat([table, other]), paper="Someone (2020)", stand_in="digits")
    assert len(rows) == 3 and [r["id"] for r in rows] == ["x-tracks-y", "imagenet", "jft"] and rows[0]["paper"] == "Someone (2020)" and rows[0]["stand_in"] == "digits"
    assert math.isnan(rows[1]["estimate"]) and rows[1]["verdict"] == "not testable here"
    assert isinstance(claims.show(table).to_html(), str)


def test_collect_reads_what_the_chapters_published(tmp_path):
    import json
    import nbformat
    records = [{"paper": "P", "claim": "c", "verdict": "held"}]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": repr(json.dumps(records))},
                                           metadata={"scrapbook": {"name": "ch_claims_records", "mime_prefix": ""}})]
    nb.cells.append(cell)
    nbformat.write(nb, tmp_path / "01_chapter.ipynb")
    got = claims.collect(tmp_path)
    assert got.to_dict("records") == [{"chapter": "01_chapter", **records[0]}]
    with pytest.raises(FileNotFoundError, match="run the chapters first"):
        claims.collect(tmp_path / "empty")


def test_a_premise_for_refutations_only_leaves_other_verdicts_alone():
    held, refuted = (claims.Claim("c", "w", "s", 1.0, 0.5, 1.5, 5, 0.01, v, "r") for v in ("held", "did not hold"))
    assert claims.precondition(held, False, "short runs", ("did not hold",)).verdict == "held"
    changed = claims.precondition(refuted, False, "short runs", ("did not hold",))
    assert changed.verdict == "inconclusive" and changed.reason.endswith("but short runs")


def test_a_verdict_that_another_build_does_not_repeat_counts_as_inconclusive():
    first = pd.DataFrame({"id": ["a:x", "a:y", "b:z", "b:w", "c:v"],
                          "verdict": ["held", "did not hold", "held", "inconclusive", "held"],
                          "reason": ["r"] * 5})
    second = pd.DataFrame({"id": ["a:x", "a:y", "b:z", "b:w"],
                           "verdict": ["held", "inconclusive", "did not hold", "held"]})
    got = claims.replicate(first, second)
    assert list(got.replication) == ["replicated", "unstable", "unstable", "", "not replicated"]
    assert list(got.verdict) == ["held", "inconclusive", "inconclusive", "inconclusive", "held"]
    assert got.reason[1] == "unstable: did not hold here, inconclusive on other seeds; r"
    text = claims.replication_text(got)
    assert text.startswith("1 of the 4 decisive verdicts came out the same") and "a:y (did not hold here, inconclusive there)" in text
    assert text.endswith("1 was not in the replication build.")
    alone = claims.replicate(first, None)
    assert list(alone.verdict) == list(first.verdict) and "No replication build is present" in claims.replication_text(alone)
    with pytest.raises(ValueError, match="not unique"):
        claims.replicate(first, pd.concat([second, second]))


def test_the_replication_build_counts_only_chapters_run_on_its_seeds(tmp_path, monkeypatch):
    import json
    import nbformat
    from studylib.platform import notebooks
    monkeypatch.setattr(notebooks, "replication_dir", lambda: tmp_path)
    assert claims.collect_replication("quick") == (None, "")
    names = [n for n in notebooks.notebook_names() if n != "99_verdicts"]
    for name, overrides in ((names[0], notebooks.replication_overrides(names[0], "quick")), (names[1], {})):
        nb = nbformat.v4.new_notebook()
        nb.metadata["studylib"] = {"profile": "quick", "overrides": overrides, "completed": True}
        cell = nbformat.v4.new_code_cell("")
        records = [{"id": f"{name}:c", "claim": "c", "verdict": "held"}]
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": repr(json.dumps(records))},
                                               metadata={"scrapbook": {"name": "ch_claims_records", "mime_prefix": ""}})]
        nb.cells.append(cell)
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    found, text = claims.collect_replication("quick")
    assert list(found.chapter) == [names[0]]  # the chapter run on the book's own seed is no replication
    assert text.startswith(f"The replication build (the chapters again on the quick profile with SEED + 1000) "
                           f"holds chapter {int(names[0][:2])}; left out, as run otherwise: chapter "
                           f"{int(names[1][:2])} ran with SEED=")


def test_the_worked_example_shows_a_rule_at_work_and_broken_rules_are_counted_apart():
    rows = pd.DataFrame({"id": ["a:weak", "a:strong", "a:broken", "a:refutes"],
                         "verdict": ["held", "held", "inconclusive", "inconclusive"],
                         "low": [0.1, 0.2, -1.0, -1.0], "high": [0.5, 0.6, 1.0, 1.0],
                         "false_held": [0.02, 0.03, 0.15, 0.01], "false_refuted": [0.01, 0.02, 0.0, 0.15],
                         "power": [0.08, 0.9, 0.5, 0.5], "audit_reps": [200, 200, 200, 200]})
    assert claims.worked_example(rows)["id"] == "a:strong"  # a held claim whose audit could have found an effect
    assert list(claims.standing_rules(rows).id) == ["a:weak", "a:strong"]


def test_a_mean_inside_its_noise_floor_is_inconclusive_not_undecidable():
    """The floor bars this data, not the design: eight units at -0.26 inside a floor of 0.6 are "inconclusive"
    (data above the floor could decide the claim at this n), while three units stay "undecidable here"."""
    inside = claims.median_claim(np.full(8, -0.26) + np.linspace(-0.01, 0.01, 8), expected_sign=-1, floor=0.6,
                               units=list("abcdefgh"), unit="cells")
    assert inside.verdict == "inconclusive" and "noise floor" in inside.reason
    beyond = claims.median_claim(np.full(8, -0.9) + np.linspace(-0.01, 0.01, 8), expected_sign=-1, floor=0.6,
                               units=list("abcdefgh"), unit="cells")
    assert beyond.verdict == "held"
    few = claims.median_claim([-0.26, -0.25, -0.27], expected_sign=-1, floor=0.6, units=list("abc"),
                            unit="cells")
    assert few.verdict == "undecidable here" and few.units_needed >= 6


def test_referee_findings_on_floors_combinations_power_and_replication():
    # a floor bars every kind of claim: "not negative" and "none" inside +-floor are inconclusive
    x = 0.05 + 0.002 * np.arange(12)
    assert claims.median_claim(x, expected_sign="not negative", floor=1.0, units=list("abcdefghijkl")).verdict == \
        "inconclusive"
    # (a band narrower than the floor can never be shown: more units do not help)
    assert claims.median_claim(x - 0.07, expected_sign="none", negligible=0.1, floor=1.0,
                             units=list("abcdefghijkl")).verdict == "undecidable here"
    # the same claim on several data sets, refuted on some and held on none, did not hold
    up = claims.rank_claim([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], -1, unit="models")
    few = claims.rank_claim([1, 2], [2, 1], -1, unit="models")
    assert up.verdict == "did not hold" and few.verdict == "undecidable here"
    assert claims.combine("c", "w", {"a": up, "b": few}, rule="each").verdict == "did not hold"
    assert claims.combine("c", "w", {"a": few, "b": few}, rule="each").verdict == "undecidable here"
    # a "partly held" verdict is replicated like the others
    first = pd.DataFrame({"id": ["x:a", "x:b"], "verdict": ["partly held", "inconclusive"], "reason": ["r", "r"]})
    second = pd.DataFrame({"id": ["x:a", "x:b"], "verdict": ["did not hold", "held"]})
    out = claims.replicate(first, second).set_index("id")
    assert out.replication["x:a"] == "unstable" and out.verdict["x:a"] == "inconclusive"
    assert out.replication["x:b"] == ""


def test_a_conjunction_is_refuted_only_by_a_part_refuted_at_the_level_over_the_parts():
    """Two parts: a refutation at p = 0.039 is one at 5%, not at 2.5% (the chance that one of two true parts is
    refuted by chance is about twice a part's); at p = 0.0039 it refutes the conjunction."""
    held = claims.median_claim(np.linspace(1, 2, 9), expected_sign=1)
    weak = claims.median_claim(np.r_[-np.linspace(1, 2, 8), 0.5], expected_sign=1)  # 8 of 9 below 0
    strong = claims.median_claim(-np.linspace(1, 2, 9), expected_sign=1)
    assert weak.verdict == "did not hold" and weak.p == pytest.approx(0.039, abs=1e-3)
    both = claims.combine("c", "w", {"a": held, "b": weak}, id="c")
    assert both.verdict == "inconclusive" and "did not hold alone" in both.reason
    assert claims.combine("c", "w", {"a": held, "b": strong}, id="c").verdict == "did not hold"
    rng = np.random.default_rng(15)
    at_edge = sum(claims.combine("c", "w", {f"p{i}": claims.median_claim(rng.normal(size=12), expected_sign=1)
                                            for i in range(3)}, id="c").verdict == "did not hold"
                  for _ in range(400)) / 400
    assert at_edge <= 0.05  # three parts at their edge (no effect): a conjunction is not refuted more often
