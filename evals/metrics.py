"""Figures of an eval run: accuracy, refusal precision and recall, latency, calibration.

All functions are pure: sequences in, numbers (or small frozen models) out.
``None`` stands for "not defined" (no items, or only one class), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lore.types import Frozen

#: the confidence above which answers are "high confidence"
HIGH_CONFIDENCE = 0.8
#: equal-width bins of the reliability diagram and of the ECE
N_BINS = 10


class RefusalStats(Frozen):
    """Refusal (and clarification) as a detector: positives are the cases that should be declined."""

    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None


class ReliabilityBin(Frozen):
    lo: float
    hi: float
    count: int
    #: mean confidence in the bin (None when empty)
    confidence: float | None
    #: share correct in the bin (None when empty)
    accuracy: float | None


def accuracy(flags: Sequence[bool]) -> float | None:
    """Share of true flags.

    >>> accuracy([True, False, True, True]), accuracy([])
    (0.75, None)
    """
    return sum(flags) / len(flags) if flags else None


def refusal_stats(should_decline: Sequence[bool], declined: Sequence[bool]) -> RefusalStats:
    """Precision and recall of declining (refused or clarify) against the expectation.

    >>> s = refusal_stats([True, True, False, False, False], [True, False, True, False, False])
    >>> (s.tp, s.fp, s.fn, s.tn, s.precision, s.recall)
    (1, 1, 1, 2, 0.5, 0.5)
    >>> refusal_stats([False], [False]).precision is None
    True
    """
    pairs = list(zip(should_decline, declined, strict=True))
    tp = sum(1 for t, p in pairs if t and p)
    fp = sum(1 for t, p in pairs if not t and p)
    fn = sum(1 for t, p in pairs if t and not p)
    tn = len(pairs) - tp - fp - fn
    return RefusalStats(tp=tp, fp=fp, fn=fn, tn=tn,
                        precision=tp / (tp + fp) if tp + fp else None,
                        recall=tp / (tp + fn) if tp + fn else None)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation (NumPy's default).

    >>> percentile([1, 2, 3, 4], 50), percentile([10, 20], 95), percentile([], 50)
    (2.5, 19.5, None)
    """
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def bin_index(c: float, n_bins: int) -> int:
    """Bins are [lo, hi) except the last, which holds 1.0.

    >>> bin_index(0.0, 10), bin_index(0.8, 10), bin_index(1.0, 10), bin_index(0.799, 10)
    (0, 8, 9, 7)
    """
    return min(n_bins - 1, max(0, int(math.floor(round(c * n_bins, 9)))))


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = N_BINS) -> list[ReliabilityBin]:
    """Equal-width bins of confidence with the mean confidence and the accuracy in each.

    >>> bins = reliability_bins([0.95, 0.9, 0.15], [True, False, False], n_bins=2)
    >>> [(b.lo, b.hi, b.count, b.confidence, b.accuracy) for b in bins]
    [(0.0, 0.5, 1, 0.15, 0.0), (0.5, 1.0, 2, 0.925, 0.5)]
    """
    members: list[list[int]] = [[] for _ in range(n_bins)]
    for i, c in enumerate(confidence):
        members[bin_index(c, n_bins)].append(i)
    out = []
    for b, idx in enumerate(members):
        conf = sum(confidence[i] for i in idx) / len(idx) if idx else None
        acc = sum(1 for i in idx if correct[i]) / len(idx) if idx else None
        out.append(ReliabilityBin(lo=round(b / n_bins, 6), hi=round((b + 1) / n_bins, 6), count=len(idx),
                                  confidence=None if conf is None else round(conf, 6),
                                  accuracy=None if acc is None else round(acc, 6)))
    return out


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = N_BINS) -> float | None:
    """ECE: the count-weighted mean of |accuracy - confidence| over equal-width bins.

    >>> round(expected_calibration_error([0.95, 0.9, 0.15], [True, False, False], n_bins=2), 6)
    0.333333
    >>> expected_calibration_error([], [])
    """
    if not confidence:
        return None
    total = len(confidence)
    ece = 0.0
    for b in reliability_bins(confidence, correct, n_bins):
        if b.count:
            ece += b.count / total * abs((b.accuracy or 0.0) - (b.confidence or 0.0))
    return ece


def brier_score(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Mean squared gap between the confidence and the outcome (1 correct, 0 wrong).

    >>> round(brier_score([0.9, 0.2], [True, False]), 6)
    0.025
    """
    if not confidence:
        return None
    return sum((c - (1.0 if y else 0.0)) ** 2 for c, y in zip(confidence, correct, strict=True)) / len(confidence)


def auroc(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Area under the ROC curve of confidence for correctness (ties count one half).

    The probability that a random correct answer has a higher confidence than a random wrong one.

    >>> auroc([0.9, 0.8, 0.3], [True, True, False])
    1.0
    >>> auroc([0.5, 0.5, 0.5], [True, False, True])
    0.5
    >>> auroc([0.9, 0.8], [True, True]) is None
    True
    """
    pos = [c for c, y in zip(confidence, correct, strict=True) if y]
    neg = [c for c, y in zip(confidence, correct, strict=True) if not y]
    if not pos or not neg:
        return None
    # rank-sum with average ranks for ties (Mann-Whitney U)
    ordered = sorted(confidence)
    rank_of: dict[float, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[i]:
            j += 1
        rank_of[ordered[i]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(rank_of[c] for c in pos)
    u = rank_sum - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def above_threshold(confidence: Sequence[float], correct: Sequence[bool],
                    threshold: float = HIGH_CONFIDENCE) -> tuple[float | None, float | None]:
    """(accuracy among answers with confidence >= threshold, share of answers that are).

    >>> above_threshold([0.9, 0.85, 0.4, 0.8], [True, False, True, True])
    (0.6666666666666666, 0.75)
    >>> above_threshold([0.1], [True])
    (None, 0.0)
    """
    if not confidence:
        return None, None
    flags = [y for c, y in zip(confidence, correct, strict=True) if c >= threshold]
    return accuracy(flags), len(flags) / len(confidence)


# --- isotonic calibration (pool adjacent violators) -------------------------------------


class IsotonicBlock(Frozen):
    """A run of raw scores that share one calibrated value."""

    lo: float
    hi: float
    value: float
    weight: float


def isotonic_blocks(x: Sequence[float], y: Sequence[float], weights: Sequence[float] | None = None) -> list[IsotonicBlock]:
    """Fit a non-decreasing step function of ``x`` to ``y`` by pool-adjacent-violators (least squares).

    Equal ``x`` values are pooled first, so the fit is a function of ``x``.

    >>> [(b.lo, b.hi, b.value) for b in isotonic_blocks([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])]
    [(0.1, 0.1, 0.0), (0.2, 0.3, 0.5), (0.4, 0.4, 1.0)]
    >>> [(b.lo, b.hi, b.value) for b in isotonic_blocks([0.5, 0.5, 0.9], [1, 0, 1])]
    [(0.5, 0.5, 0.5), (0.9, 0.9, 1.0)]
    """
    w = [1.0] * len(x) if weights is None else list(weights)
    pooled: dict[float, list[float]] = {}
    for xi, yi, wi in zip(x, y, w, strict=True):
        acc = pooled.setdefault(float(xi), [0.0, 0.0])
        acc[0] += wi * float(yi)
        acc[1] += wi
    stack: list[list[float]] = []  # [lo, hi, weighted sum, weight]
    for xi in sorted(pooled):
        s, wt = pooled[xi]
        stack.append([xi, xi, s, wt])
        while len(stack) > 1 and stack[-2][2] / stack[-2][3] > stack[-1][2] / stack[-1][3]:
            lo, _, s2, w2 = stack.pop(-2)
            top = stack[-1]
            stack[-1] = [lo, top[1], top[2] + s2, top[3] + w2]
    return [IsotonicBlock(lo=b[0], hi=b[1], value=b[2] / b[3], weight=b[3]) for b in stack]


def isotonic_points(x: Sequence[float], y: Sequence[float], digits: int = 4) -> tuple[tuple[float, float], ...]:
    """A calibration table for :func:`lore.explain.confidence.calibrate`: monotone points from 0 to 1.

    Each block of the isotonic fit contributes its two ends; the table starts at
    (0, 0) and ends at x = 1 with the last block's value.

    >>> isotonic_points([0.2, 0.4, 0.6, 0.9], [0, 1, 0, 1])
    ((0.0, 0.0), (0.2, 0.0), (0.4, 0.5), (0.6, 0.5), (0.9, 1.0), (1.0, 1.0))
    >>> isotonic_points([], [])
    ((0.0, 0.0), (1.0, 1.0))
    """
    blocks = isotonic_blocks([min(1.0, max(0.0, v)) for v in x], y)
    if not blocks:
        return ((0.0, 0.0), (1.0, 1.0))
    points: list[tuple[float, float]] = [(0.0, 0.0)]
    for b in blocks:
        for px in (b.lo, b.hi):
            pt = (round(px, digits), round(b.value, digits))
            if pt[0] > points[-1][0]:
                points.append(pt)
            elif pt[0] == points[-1][0]:
                points[-1] = (pt[0], max(points[-1][1], pt[1]))
    if points[-1][0] < 1.0:
        points.append((1.0, points[-1][1]))
    return tuple(points)
