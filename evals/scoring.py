"""Execution scoring: do the predicted rows equal the gold rows?

Two results match when the rows are equal up to

- column order, and extra columns in the prediction (every gold column must
  find its own predicted column);
- row order, unless the case is ``ordered``;
- a consistent relabelling of *label* columns (text, dates, booleans): a
  bijection between the gold values and the predicted values of that column,
  so a country code may stand for its name. A value that occurs on both sides
  must map to itself, so ``(US, 10), (FR, 20)`` does not match
  ``(US, 20), (FR, 10)`` by swapping the two codes;
- numbers compare with a relative tolerance (``1e-6``, plus a tiny absolute
  one for values near zero); an int equals the same float; NULL equals NULL
  only; NaN equals NaN; dates compare as ISO strings, a timestamp at midnight
  as its date.

Everything here is pure: rows in, a :class:`RowMatch` out.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Hashable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lore.types import Frozen, Scalar

#: relative tolerance for numbers
REL_TOL = 1e-6
#: absolute tolerance, for sums that should be zero but carry float noise
ABS_TOL = 1e-9
#: how many column assignments are tried before giving up
MAX_ASSIGNMENTS = 64
#: how many search steps the row matcher may take (per column assignment)
MAX_STEPS = 200_000

_MIDNIGHT = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]00:00:00(?:\.0+)?$")


class RowMatch(Frozen):
    """The verdict of comparing a predicted result with the gold result."""

    correct: bool
    #: why not (empty when correct)
    reason: str = ""
    #: gold column -> predicted column, when a match was found
    column_map: tuple[tuple[str, str], ...] = ()


def normalise(value: Any) -> Scalar:
    """One comparable form per value: numbers as floats, dates as ISO strings.

    >>> normalise(3), normalise(True), normalise(Decimal("1.5"))
    (3.0, True, 1.5)
    >>> normalise(date(2026, 1, 31)), normalise("2026-01-01 00:00:00"), normalise(datetime(2026, 1, 1, 12))
    ('2026-01-31', '2026-01-01', '2026-01-01 12:00:00')
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, datetime):
        value = value.isoformat(sep=" ")
    elif isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        m = _MIDNIGHT.match(value)
        return m.group(1) if m else value
    return str(value)


def is_number(value: Scalar) -> bool:
    """True for ints and floats, not for booleans.

    >>> is_number(1.0), is_number(True), is_number("1")
    (True, False, False)
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numeric_column(values: Sequence[Scalar]) -> bool:
    """A column is numeric when every non-NULL value is a number (an all-NULL column counts as numeric).

    >>> numeric_column([1.0, None, 2.5]), numeric_column(["US", None]), numeric_column([None])
    (True, False, True)
    """
    return all(v is None or is_number(v) for v in values)


def close(a: Scalar, b: Scalar, rel_tol: float = REL_TOL) -> bool:
    """Numbers within the tolerance; NULL only equals NULL; NaN equals NaN.

    >>> close(1.0, 1.0000001), close(1.0, 1.001), close(None, None), close(None, 0.0)
    (True, False, True, False)
    >>> close(float("nan"), float("nan")), close(0.0, 1e-12)
    (True, True)
    """
    if a is None or b is None:
        return a is None and b is None
    if not (is_number(a) and is_number(b)):
        return a == b
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    return math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=ABS_TOL)


def _num_key(value: Scalar) -> tuple[int, float]:
    """Sort key: NULLs first, then NaN, then numbers by value."""
    if value is None:
        return (0, 0.0)
    f = float(value)  # type: ignore[arg-type]
    return (1, 0.0) if math.isnan(f) else (2, f)


def numbers_match(gold: Sequence[Scalar], pred: Sequence[Scalar], *, ordered: bool, rel_tol: float = REL_TOL) -> bool:
    """Two numeric columns hold the same values (position by position when ``ordered``, else as multisets).

    >>> numbers_match([1, 2, None], [None, 2.0, 1.0], ordered=False)
    True
    >>> numbers_match([1, 2], [2, 1], ordered=True)
    False
    """
    if len(gold) != len(pred):
        return False
    if not ordered:
        gold, pred = sorted(gold, key=_num_key), sorted(pred, key=_num_key)
    return all(close(g, p, rel_tol) for g, p in zip(gold, pred))


def _pinned(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> set[Hashable]:
    """Label values that must map to themselves: those on both sides (and NULL)."""
    return (set(gold) & set(pred)) | {None}


def labels_match(gold: Sequence[Hashable], pred: Sequence[Hashable], *, ordered: bool) -> bool:
    """Can some relabelling (a bijection, identity on shared values) turn one label column into the other?

    >>> labels_match(["US", "FR", "US"], ["United States", "France", "United States"], ordered=True)
    True
    >>> labels_match(["US", "FR", "US"], ["United States", "France", "France"], ordered=True)
    False
    >>> labels_match(["a", "b", "b"], ["x", "x", "y"], ordered=False)
    True
    >>> labels_match(["a", "b", "b"], ["x", "y", "z"], ordered=False)
    False
    >>> labels_match(["US", "FR"], ["FR", "US"], ordered=True)
    False
    """
    if len(gold) != len(pred):
        return False
    pinned = _pinned(gold, pred)
    if ordered:
        fwd: dict[Hashable, Hashable] = {}
        bwd: dict[Hashable, Hashable] = {}
        for g, p in zip(gold, pred):
            if (g in pinned or p in pinned) and g != p:
                return False
            if fwd.setdefault(g, p) != p or bwd.setdefault(p, g) != g:
                return False
        return True
    gc, pc = Counter(gold), Counter(pred)
    if any(gc[v] != pc[v] for v in pinned):
        return False
    free_g = sorted(n for v, n in gc.items() if v not in pinned)
    free_p = sorted(n for v, n in pc.items() if v not in pinned)
    return free_g == free_p


def _column(rows: Sequence[Sequence[Scalar]], i: int) -> list[Scalar]:
    return [r[i] for r in rows]


def _compatible(gold_rows: Sequence[Sequence[Scalar]], pred_rows: Sequence[Sequence[Scalar]], g: int, p: int,
                *, numeric: bool, ordered: bool, rel_tol: float) -> bool:
    gv, pv = _column(gold_rows, g), _column(pred_rows, p)
    if numeric:
        return numeric_column(pv) and numbers_match(gv, pv, ordered=ordered, rel_tol=rel_tol)
    return labels_match(gv, pv, ordered=ordered)


def _assignments(candidates: Sequence[Sequence[int]], limit: int) -> list[tuple[int, ...]]:
    """Injective choices of one candidate per gold column, in preference order (at most ``limit``).

    >>> _assignments([[0, 1], [0, 1]], 10)
    [(0, 1), (1, 0)]
    >>> _assignments([[0], [0]], 10)
    []
    """
    out: list[tuple[int, ...]] = []
    chosen: list[int] = []

    def walk(k: int) -> None:
        if len(out) >= limit:
            return
        if k == len(candidates):
            out.append(tuple(chosen))
            return
        for c in candidates[k]:
            if c not in chosen:
                chosen.append(c)
                walk(k + 1)
                chosen.pop()

    walk(0)
    return out


def rows_match_unordered(gold_rows: Sequence[Sequence[Scalar]], pred_rows: Sequence[Sequence[Scalar]],
                         numeric_pairs: Sequence[tuple[int, int]], label_pairs: Sequence[tuple[int, int]],
                         *, rel_tol: float = REL_TOL, max_steps: int = MAX_STEPS) -> bool | None:
    """Is there a row permutation (and per-column relabelling) making the rows equal? ``None``: gave up.

    ``numeric_pairs`` and ``label_pairs`` are (gold column, predicted column) index pairs.

    >>> gold = [("US", 10.0), ("FR", 20.0)]
    >>> rows_match_unordered(gold, [("France", 20.0), ("United States", 10.0)], [(1, 1)], [(0, 0)])
    True
    >>> rows_match_unordered(gold, [("US", 20.0), ("FR", 10.0)], [(1, 1)], [(0, 0)])
    False
    """
    n = len(gold_rows)
    if n != len(pred_rows):
        return False
    pinned = [_pinned(_column(gold_rows, g), _column(pred_rows, p)) for g, p in label_pairs]

    def static_ok(gi: int, pj: int) -> bool:
        grow, prow = gold_rows[gi], pred_rows[pj]
        for g, p in numeric_pairs:
            if not close(grow[g], prow[p], rel_tol):
                return False
        for (g, p), pin in zip(label_pairs, pinned):
            gv, pv = grow[g], prow[p]
            if (gv in pin or pv in pin) and gv != pv:
                return False
        return True

    # candidate predicted rows per gold row: narrowed by the first numeric column, then checked fully
    if numeric_pairs:
        g0, p0 = numeric_pairs[0]
        keyed = sorted((_num_key(prow[p0]), j) for j, prow in enumerate(pred_rows))
        keys = [k for k, _ in keyed]
        candidates: list[list[int]] = []
        for gi in range(n):
            kind, v = _num_key(gold_rows[gi][g0])
            window = rel_tol * abs(v) * 1.5 + ABS_TOL * 2
            lo = bisect.bisect_left(keys, (kind, v - window))
            hi = bisect.bisect_right(keys, (kind, v + window))
            candidates.append(sorted(j for _, j in keyed[lo:hi] if static_ok(gi, j)))
    else:
        candidates = [[j for j in range(n) if static_ok(gi, j)] for gi in range(n)]
    if any(not c for c in candidates):
        return False

    order = sorted(range(n), key=lambda i: len(candidates[i]))
    used = [False] * n
    fwd: list[dict[Hashable, list[Any]]] = [{} for _ in label_pairs]  # gold value -> [pred value, uses]
    bwd: list[dict[Hashable, Hashable]] = [{} for _ in label_pairs]

    def feasible(gi: int, pj: int) -> bool:
        if used[pj]:
            return False
        for k, (g, p) in enumerate(label_pairs):
            gv, pv = gold_rows[gi][g], pred_rows[pj][p]
            seen = fwd[k].get(gv)
            if seen is not None:
                if seen[0] != pv:
                    return False
            elif pv in bwd[k]:
                return False
        return True

    def assign(gi: int, pj: int) -> None:
        used[pj] = True
        for k, (g, p) in enumerate(label_pairs):
            gv, pv = gold_rows[gi][g], pred_rows[pj][p]
            if gv in fwd[k]:
                fwd[k][gv][1] += 1
            else:
                fwd[k][gv] = [pv, 1]
                bwd[k][pv] = gv

    def unassign(gi: int, pj: int) -> None:
        used[pj] = False
        for k, (g, _p) in enumerate(label_pairs):
            gv = gold_rows[gi][g]
            entry = fwd[k][gv]
            entry[1] -= 1
            if entry[1] == 0:
                del fwd[k][gv]
                del bwd[k][entry[0]]

    choice = [-1] * n
    level = 0
    steps = 0
    while 0 <= level < n:
        gi = order[level]
        cands = candidates[gi]
        if choice[level] >= 0:
            unassign(gi, cands[choice[level]])
        j = choice[level] + 1
        while j < len(cands) and not feasible(gi, cands[j]):
            j += 1
            steps += 1
        steps += 1
        if steps > max_steps:
            return None
        if j < len(cands):
            choice[level] = j
            assign(gi, cands[j])
            level += 1
        else:
            choice[level] = -1
            level -= 1
    return level == n


def match_rows(gold_columns: Sequence[str], gold_rows: Sequence[Sequence[Any]],
               pred_columns: Sequence[str], pred_rows: Sequence[Sequence[Any]],
               *, ordered: bool = False, rel_tol: float = REL_TOL) -> RowMatch:
    """Compare a predicted result with the gold result (see the module docstring for the rules).

    >>> gold_cols, gold = ["country_iso_code", "hours"], [("US", 10.0), ("FR", 20.5)]
    >>> match_rows(gold_cols, gold, ["country_name", "region", "hours"],
    ...            [("France", "EMEA", 20.5000000001), ("United States", "UCAN", 10)]).correct
    True
    >>> match_rows(gold_cols, gold, ["country_iso_code", "hours"], [("US", 10.0)]).reason
    'expected 2 rows, got 1'
    >>> match_rows(gold_cols, gold, ["hours"], [(10.0,), (20.5,)]).reason
    'expected at least 2 columns, got 1'
    """
    gold_rows = [tuple(normalise(v) for v in r) for r in gold_rows]
    pred_rows = [tuple(normalise(v) for v in r) for r in pred_rows]
    found = _match(gold_columns, gold_rows, pred_columns, pred_rows, ordered=ordered, rel_tol=rel_tol)
    if ordered and not found.correct and len(gold_rows) == len(pred_rows) \
            and _match(gold_columns, gold_rows, pred_columns, pred_rows, ordered=False, rel_tol=rel_tol).correct:
        return RowMatch(correct=False, reason="the right rows, in the wrong order")
    return found


def _match(gold_columns: Sequence[str], gold_rows: Sequence[Sequence[Scalar]], pred_columns: Sequence[str],
           pred_rows: Sequence[Sequence[Scalar]], *, ordered: bool, rel_tol: float) -> RowMatch:
    if len(pred_columns) < len(gold_columns):
        return RowMatch(correct=False, reason=f"expected at least {len(gold_columns)} columns, got {len(pred_columns)}")
    if len(gold_rows) != len(pred_rows):
        return RowMatch(correct=False, reason=f"expected {len(gold_rows)} rows, got {len(pred_rows)}")
    numeric = [numeric_column(_column(gold_rows, g)) for g in range(len(gold_columns))]
    candidates: list[list[int]] = []
    for g, name in enumerate(gold_columns):
        found = [p for p in range(len(pred_columns))
                 if _compatible(gold_rows, pred_rows, g, p, numeric=numeric[g], ordered=ordered, rel_tol=rel_tol)]
        if not found:
            kind = "numbers" if numeric[g] else "labels"
            return RowMatch(correct=False, reason=f"no column of the answer holds the {kind} of gold column {name!r}")
        same = [p for p in found if pred_columns[p].lower() == name.lower()]
        candidates.append(same + [p for p in found if p not in same])
    gave_up = False
    for choice in _assignments(candidates, MAX_ASSIGNMENTS):
        num_pairs = [(g, p) for g, p in enumerate(choice) if numeric[g]]
        lab_pairs = [(g, p) for g, p in enumerate(choice) if not numeric[g]]
        # in order, the column checks above already compared every row position by position
        ok = True if ordered else rows_match_unordered(gold_rows, pred_rows, num_pairs, lab_pairs, rel_tol=rel_tol)
        if ok:
            return RowMatch(correct=True, column_map=tuple((gold_columns[g], pred_columns[p]) for g, p in enumerate(choice)))
        gave_up = gave_up or ok is None
    if gave_up:
        return RowMatch(correct=False, reason="rows could not be matched within the search budget")
    how = "in order" if ordered else "in any order"
    return RowMatch(correct=False, reason=f"every gold column has a counterpart, but the rows differ ({how})")
