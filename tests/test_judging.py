"""Judging a measure over a zoo against independent references: a faithful re-implementation of the PGDL scorer,
closed forms, and the granulated tau computed group by group with scipy."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studylib import judging as J


def _zoo(seed=0, values=((0, 1), (0, 1, 2), (0, 1)), seeds=2):
    rng = np.random.default_rng(seed)
    hp = pd.DataFrame(list(itertools.product(*values, range(seeds))), columns=["a", "b", "c", "seed"])
    gap = hp.a * 1.0 + 0.5 * hp.b + rng.normal(0, 0.6, len(hp))
    return hp, gap.to_numpy(), rng


def pgdl_scorer(prediction, gaps, specs, hp_names):
    """A faithful re-implementation of the PGDL scorer (``mutual_information.py``): dict tables over every ordered
    pair of models, a key per pair of both models' values of the conditioning hyperparameters, equally weighted
    cells, base-2 logs with 1e-12 in the entropy, and the minimum over ordered pairs of distinct hyperparameters."""
    best = math.inf
    for h1 in hp_names:
        for h2 in hp_names:
            if h1 == h2:
                continue
            table = {}
            for i in range(len(gaps)):
                for j in range(len(gaps)):
                    key = str(specs[h1][i]) + str(specs[h1][j]) + str(specs[h2][i]) + str(specs[h2][j])
                    cell = table.setdefault(key, np.zeros((2, 2)))
                    cell[int(gaps[i] > gaps[j]), int(prediction[i] > prediction[j])] += 1
            mi = ce = 0.0
            for cell in table.values():
                p = cell / cell.sum()
                pg, pm = p.sum(1), p.sum(0)
                mi += sum(p[a, c] * math.log2(p[a, c] / (pg[a] * pm[c])) for a in range(2) for c in range(2) if p[a, c] > 0)
                ce += -sum(q * math.log2(q + 1e-12) for q in pg)
            best = min(best, (mi / len(table)) / (ce / len(table)))
    return best


def test_conditional_mutual_information_equals_the_pgdl_scorer_on_a_complete_grid():
    hp, gap, rng = _zoo()
    measure = gap + rng.normal(0, 0.5, len(gap))
    axes = ["a", "b", "c"]
    assert J.conditional_mutual_information(measure, gap, hp, axes) == pytest.approx(
        pgdl_scorer(measure, gap, hp, axes), rel=1e-9)
    # the gap itself predicts every sign: I = H in every cell
    assert J.conditional_mutual_information(gap, gap, hp, axes) == pytest.approx(1.0, abs=1e-9)
    # a measure that only follows hyperparameter a carries nothing once a is conditioned on
    assert J.conditional_mutual_information(hp.a.to_numpy() * 1.0, gap, hp, axes) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least two hyperparameters"):
        J.conditional_mutual_information(measure, gap, hp, ["a"])


def test_cmi_weights_count_models_without_pairing_a_copy_with_itself():
    hp, gap, rng = _zoo(1)
    measure = gap + rng.normal(0, 0.5, len(gap))
    axes = ["a", "b", "c"]
    w = np.ones(len(gap))
    w[3] = 0  # a weight of 0 drops the model
    keep = np.arange(len(gap)) != 3
    assert J.conditional_mutual_information(measure, gap, hp, axes, w) == pytest.approx(
        J.conditional_mutual_information(measure[keep], gap[keep], hp[keep], axes))
    est = J.cmi_estimate(measure, gap, hp, axes, n_boot=60)
    assert est.low <= est.estimate <= est.high


def test_granulated_taus_equal_the_mean_within_group_tau_computed_by_hand():
    hp, gap, rng = _zoo(2)
    measure = gap + rng.normal(0, 0.8, len(gap))
    got = J.granulated_taus(measure, gap, hp, ["a", "b", "c"], n_boot=200)
    for axis in ("a", "b", "c"):
        others = [c for c in hp.columns if c != axis]
        taus = [stats.kendalltau(measure[idx], gap[idx])[0] for _, idx in hp.groupby(others).indices.items()]
        assert got[axis].estimate == pytest.approx(np.mean(taus))
    assert got["Psi"].estimate == pytest.approx(np.mean([got[a].estimate for a in "abc"]))
    assert got["Psi"].low < got["Psi"].estimate < got["Psi"].high
    # a measure that never varies along an axis ranks nothing there: tau 0 in every group (Jiang et al.'s convention)
    count = J.granulated_taus(hp.b.to_numpy() * 1.0, gap, hp, ["a", "b", "c"], n_boot=50)
    assert count["a"].estimate == 0 and count["c"].estimate == 0
    assert count["Psi"].estimate == pytest.approx(count["b"].estimate / 3)
    # a group of one model is left out; the others keep their plain mean
    thin = J.granulated_taus(measure[1:], gap[1:], hp.iloc[1:], ["a"], n_boot=50)
    others = [c for c in hp.columns if c != "a"]
    idx = [i for i in hp.iloc[1:].groupby(others).indices.values() if len(i) > 1]
    expected = np.mean([stats.kendalltau(measure[1:][i], gap[1:][i])[0] for i in idx])
    assert thin["a"].estimate == pytest.approx(expected)
