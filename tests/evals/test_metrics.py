"""The figures against values computed by hand (and against NumPy where it has the same function)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.metrics import (
    above_threshold,
    accuracy,
    auroc,
    brier_score,
    expected_calibration_error,
    isotonic_blocks,
    isotonic_points,
    percentile,
    refusal_stats,
    reliability_bins,
)
from lore.explain.confidence import calibrate

CONF = [0.1, 0.4, 0.35, 0.8, 0.95, 0.92]
OK = [False, False, True, True, True, False]


def test_ece_by_hand() -> None:
    # bins: [0.1] |0-.1|; [0.35] |1-.35|; [0.4] |0-.4|; [0.8] |1-.8|; [0.92, 0.95] |.5-.935| (weight 2)
    expected = (0.1 + 0.65 + 0.4 + 0.2 + 2 * 0.435) / 6
    assert expected_calibration_error(CONF, OK) == pytest.approx(expected)
    assert expected == pytest.approx(0.37)


def test_reliability_bins_by_hand() -> None:
    bins = reliability_bins(CONF, OK)
    assert [b.count for b in bins] == [0, 1, 0, 1, 1, 0, 0, 0, 1, 2]
    last = bins[-1]
    assert (last.lo, last.hi, last.confidence, last.accuracy) == (0.9, 1.0, 0.935, 0.5)
    assert bins[0].confidence is None and bins[0].accuracy is None
    # 0.8 sits in [0.8, 0.9), not below it (float noise in 0.8 * 10 must not move it)
    assert bins[8].count == 1


def test_perfect_calibration_has_zero_ece() -> None:
    conf = [0.25] * 4 + [0.75] * 4
    ok = [True, False, False, False, True, True, True, False]
    assert expected_calibration_error(conf, ok) == pytest.approx(0.0)


def test_brier_by_hand() -> None:
    expected = (0.1**2 + 0.4**2 + 0.65**2 + 0.2**2 + 0.05**2 + 0.92**2) / 6
    assert brier_score(CONF, OK) == pytest.approx(expected)
    assert brier_score([1.0, 0.0], [True, False]) == 0.0
    assert brier_score([], []) is None


def test_auroc_by_hand() -> None:
    # positives .35 .8 .95 against negatives .1 .4 .92: 1 + 2 + 3 wins of 9 pairs
    assert auroc(CONF, OK) == pytest.approx(6 / 9)


def test_auroc_ties_count_a_half() -> None:
    # pairs: (.5,.5) tie, (.5,.3) win, (.7,.5) win, (.7,.3) win
    assert auroc([0.5, 0.7, 0.5, 0.3], [True, True, False, False]) == pytest.approx(3.5 / 4)
    assert auroc([0.6] * 5, [True, False, True, False, False]) == pytest.approx(0.5)
    assert auroc([0.1, 0.9], [True, False]) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]), st.booleans()), min_size=2, max_size=30))
def test_auroc_equals_the_pairwise_definition(pairs: list[tuple[float, bool]]) -> None:
    conf = [c for c, _ in pairs]
    ok = [y for _, y in pairs]
    pos = [c for c, y in pairs if y]
    neg = [c for c, y in pairs if not y]
    if not pos or not neg:
        assert auroc(conf, ok) is None
        return
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    assert auroc(conf, ok) == pytest.approx(wins / (len(pos) * len(neg)))


def test_accuracy_and_threshold() -> None:
    assert accuracy(OK) == 0.5
    acc, share = above_threshold(CONF, OK)
    assert (acc, share) == (pytest.approx(2 / 3), 0.5)  # .8 .95 .92 -> two correct of three
    assert above_threshold([], []) == (None, None)


def test_refusal_precision_recall() -> None:
    should = [True, True, True, False, False, False, False]
    did = [True, True, False, True, False, False, False]
    s = refusal_stats(should, did)
    assert (s.tp, s.fp, s.fn, s.tn) == (2, 1, 1, 3)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    none = refusal_stats([False, False], [False, False])
    assert none.precision is None and none.recall is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e4), min_size=1, max_size=40), st.sampled_from([0, 5, 50, 95, 100]))
def test_percentile_agrees_with_numpy(values: list[float], q: int) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_pav_by_hand() -> None:
    x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    y = [1, 0, 0, 1, 0, 1, 1]
    blocks = [(b.lo, b.hi, round(b.value, 6), b.weight) for b in isotonic_blocks(x, y)]
    assert blocks == [(0.1, 0.3, round(1 / 3, 6), 3.0), (0.4, 0.5, 0.5, 2.0), (0.6, 0.6, 1.0, 1.0), (0.7, 0.7, 1.0, 1.0)]


def test_pav_pools_equal_scores_and_ignores_input_order() -> None:
    blocks = isotonic_blocks([0.9, 0.5, 0.9, 0.5], [1, 0, 0, 1])
    assert [(b.lo, b.hi, b.value, b.weight) for b in blocks] == [(0.5, 0.5, 0.5, 2.0), (0.9, 0.9, 0.5, 2.0)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0, max_value=1), st.booleans()), min_size=1, max_size=40))
def test_pav_is_monotone_keeps_the_mean_and_is_least_squares_optimal_among_simple_fits(pairs: list) -> None:
    x = [a for a, _ in pairs]
    y = [1.0 if b else 0.0 for _, b in pairs]
    blocks = isotonic_blocks(x, y)
    values = [b.value for b in blocks]
    assert values == sorted(values)
    assert sum(b.value * b.weight for b in blocks) == pytest.approx(sum(y))

    def fitted(v: float) -> float:
        return next(b.value for b in blocks if b.lo <= v <= b.hi)

    sse = sum((fitted(a) - t) ** 2 for a, t in zip(x, y))
    # no worse than the best constant fit, and no worse than any single threshold step
    mean = sum(y) / len(y)
    assert sse <= sum((mean - t) ** 2 for t in y) + 1e-9
    for cut in sorted(set(x)):
        lo = [t for a, t in zip(x, y) if a < cut]
        hi = [t for a, t in zip(x, y) if a >= cut]
        ml = sum(lo) / len(lo) if lo else 0.0
        mh = sum(hi) / len(hi) if hi else 0.0
        if ml <= mh:
            assert sse <= sum((ml - t) ** 2 for t in lo) + sum((mh - t) ** 2 for t in hi) + 1e-9


def test_isotonic_points_work_as_a_calibration_table() -> None:
    x = [0.3, 0.5, 0.5, 0.7, 0.9, 0.95]
    y = [0, 1, 0, 1, 1, 1]
    table = isotonic_points(x, y)
    assert table[0] == (0.0, 0.0) and table[-1][0] == 1.0
    assert [p[0] for p in table] == sorted({p[0] for p in table})
    assert [p[1] for p in table] == sorted(p[1] for p in table)
    # at the fitted scores the table gives the block means
    assert calibrate(0.3, table) == 0.0
    assert calibrate(0.5, table) == 0.5
    assert calibrate(0.95, table) == 1.0
    assert calibrate(1.0, table) == 1.0
    # between blocks it interpolates, and never decreases
    grid = [calibrate(i / 100, table) for i in range(101)]
    assert grid == sorted(grid)
