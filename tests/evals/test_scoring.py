"""Execution scoring: rows equal up to column order, row order, extra columns and relabelling."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.scoring import labels_match, match_rows, normalise, rows_match_unordered

GOLD_COLS = ["country_iso_code", "hours"]
GOLD = [("US", 120.5), ("FR", 80.25), ("DE", 80.0)]
NAMES = {"US": "United States", "FR": "France", "DE": "Germany"}


def test_identical_rows_match_with_a_column_map() -> None:
    m = match_rows(GOLD_COLS, GOLD, GOLD_COLS, GOLD)
    assert m.correct and m.reason == ""
    assert m.column_map == (("country_iso_code", "country_iso_code"), ("hours", "hours"))


def test_row_order_is_free_unless_ordered() -> None:
    shuffled = [GOLD[2], GOLD[0], GOLD[1]]
    assert match_rows(GOLD_COLS, GOLD, GOLD_COLS, shuffled).correct
    ordered = match_rows(GOLD_COLS, GOLD, GOLD_COLS, shuffled, ordered=True)
    assert not ordered.correct
    assert ordered.reason == "the right rows, in the wrong order"
    assert match_rows(GOLD_COLS, GOLD, GOLD_COLS, GOLD, ordered=True).correct


def test_column_order_and_extra_columns_in_the_prediction() -> None:
    pred_cols = ["region", "hours", "country_iso_code", "share"]
    pred = [("EMEA", 80.25, "FR", 0.3), ("UCAN", 120.5, "US", 0.5), ("EMEA", 80.0, "DE", 0.2)]
    m = match_rows(GOLD_COLS, GOLD, pred_cols, pred)
    assert m.correct
    assert dict(m.column_map) == {"country_iso_code": "country_iso_code", "hours": "hours"}


def test_missing_gold_column_is_wrong_and_says_which() -> None:
    pred = [("United States", 1.0), ("France", 80.25), ("Germany", 80.0)]
    m = match_rows(GOLD_COLS, GOLD, ["country_name", "hours"], pred)
    assert not m.correct
    assert m.reason == "no column of the answer holds the numbers of gold column 'hours'"


def test_relabelling_a_code_for_its_name() -> None:
    pred = [(NAMES[c], h) for c, h in reversed(GOLD)]
    m = match_rows(GOLD_COLS, GOLD, ["country_name", "total_streaming_hours"], pred)
    assert m.correct
    assert m.column_map == (("country_iso_code", "country_name"), ("hours", "total_streaming_hours"))


def test_relabelling_must_be_a_bijection() -> None:
    # two gold codes cannot become one name
    gold = [("US", "a", 1.0), ("CA", "b", 2.0)]
    pred = [("North America", "a", 1.0), ("North America", "b", 2.0)]
    assert not match_rows(["c", "k", "v"], gold, ["c", "k", "v"], pred).correct
    # and one gold code cannot become two names
    gold = [("US", 1.0), ("US", 2.0)]
    pred = [("United States", 1.0), ("USA", 2.0)]
    assert not match_rows(["c", "v"], gold, ["c", "v"], pred).correct


def test_relabelling_cannot_swap_values_that_exist_on_both_sides() -> None:
    pred = [("US", 80.25), ("FR", 120.5), ("DE", 80.0)]  # US and FR swapped
    m = match_rows(GOLD_COLS, GOLD, GOLD_COLS, pred)
    assert not m.correct
    assert "rows differ" in m.reason


def test_the_relabelling_must_agree_across_rows() -> None:
    """Each label maps to one value everywhere: (US->X on one row, US->Y on another) fails."""
    gold = [("US", "tv", 1.0), ("US", "web", 2.0), ("FR", "tv", 3.0), ("FR", "web", 4.0)]
    good = [("United States", "TV", 1.0), ("United States", "Web", 2.0), ("France", "TV", 3.0), ("France", "Web", 4.0)]
    bad = [("United States", "TV", 1.0), ("France", "Web", 2.0), ("France", "TV", 3.0), ("United States", "Web", 4.0)]
    cols = ["country", "device", "hours"]
    assert match_rows(cols, gold, cols, good).correct
    # each column alone is a consistent relabelling, but not row by row
    assert labels_match([r[0] for r in gold], [r[0] for r in bad], ordered=False)
    assert not match_rows(cols, gold, cols, bad).correct


def test_floats_within_relative_tolerance_and_ints_equal_floats() -> None:
    gold = [("a", 1_000_000.0), ("b", 3)]
    assert match_rows(["k", "v"], gold, ["k", "v"], [("a", 1_000_000.5), ("b", 3.0)]).correct
    assert not match_rows(["k", "v"], gold, ["k", "v"], [("a", 1_000_002.0), ("b", 3.0)]).correct
    assert match_rows(["v"], [(0.0,)], ["v"], [(1e-13,)]).correct


def test_nulls_equal_nulls_only() -> None:
    gold = [("Cosmic League", 2.0), ("Crystal Blast", None)]
    assert match_rows(["game", "cpi"], gold, ["game", "cpi"], [("Crystal Blast", None), ("Cosmic League", 2.0)]).correct
    assert not match_rows(["game", "cpi"], gold, ["game", "cpi"], [("Crystal Blast", 0.0), ("Cosmic League", 2.0)]).correct
    # a NULL label stays NULL: it is not relabelled to a name
    assert not match_rows(["k", "v"], [(None, 1.0)], ["k", "v"], [("unknown", 1.0)]).correct
    assert match_rows(["k", "v"], [(None, 1.0)], ["k", "v"], [(None, 1.0)]).correct


def test_dates_compare_as_iso_strings_and_midnight_timestamps_as_dates() -> None:
    from datetime import date, datetime

    gold = [(date(2026, 1, 1), 5.0), (date(2026, 2, 1), 6.0)]
    pred = [("2026-01-01 00:00:00", 5.0), ("2026-02-01", 6.0)]
    assert match_rows(["month", "v"], gold, ["month", "v"], pred, ordered=True).correct
    assert normalise(datetime(2026, 1, 1)) == "2026-01-01"


def test_row_count_and_column_count() -> None:
    assert match_rows(GOLD_COLS, GOLD, GOLD_COLS, GOLD[:2]).reason == "expected 3 rows, got 2"
    assert match_rows(GOLD_COLS, GOLD, ["hours"], [(r[1],) for r in GOLD]).reason == "expected at least 2 columns, got 1"
    assert match_rows(GOLD_COLS, [], ["x", "y", "z"], []).correct


def test_single_number() -> None:
    assert match_rows(["count_star()"], [(938,)], ["game_installs"], [(938,)]).correct
    assert not match_rows(["count_star()"], [(938,)], ["game_installs"], [(939,)]).correct


def test_numbers_never_match_by_relabelling() -> None:
    """A metric column is compared by value, never relabelled: [10, 20] is not [20, 10] by name."""
    gold = [("a", 10.0), ("b", 20.0)]
    pred = [("a", 20.0), ("b", 10.0)]
    assert not match_rows(["k", "v"], gold, ["k", "v"], pred).correct


def test_ties_need_backtracking() -> None:
    """Rows with equal numbers: the first pairing tried is wrong, the matcher must backtrack."""
    gold = [("x", "p", 1.0), ("x", "q", 1.0), ("y", "p", 1.0)]
    pred = [("Y", "P", 1.0), ("X", "Q", 1.0), ("X", "P", 1.0)]
    assert rows_match_unordered(gold, pred, [(2, 2)], [(0, 0), (1, 1)]) is True
    assert match_rows(["a", "b", "v"], gold, ["a", "b", "v"], pred).correct
    # every column alone relabels consistently (each value twice), but no relabelling works row by row:
    # the gold pairs form one cycle x-p-y-q-z-r-x, the predicted ones repeat a pair
    gold = [(a, b, 1.0) for a, b in [("x", "p"), ("x", "r"), ("y", "p"), ("y", "q"), ("z", "q"), ("z", "r")]]
    wrong = [(a, b, 1.0) for a, b in [("A", "P"), ("A", "P"), ("B", "Q"), ("B", "R"), ("C", "Q"), ("C", "R")]]
    assert not match_rows(["a", "b", "v"], gold, ["a", "b", "v"], wrong).correct
    right = [(a.upper(), b.upper(), 1.0) for a, b, _ in reversed(gold)]
    assert match_rows(["a", "b", "v"], gold, ["a", "b", "v"], right).correct


def test_search_budget_gives_up_with_a_reason() -> None:
    gold = [(f"g{i}", f"h{i % 2}", 1.0) for i in range(12)]
    pred = [(f"p{i}", f"k{i % 3}", 1.0) for i in range(12)]
    assert rows_match_unordered(gold, pred, [(2, 2)], [(0, 0), (1, 1)], max_steps=50) is None


def test_a_large_result_matches_quickly() -> None:
    rng = random.Random(3)
    gold = [(f"title {i}", float(rng.randint(0, 50)), rng.choice(["tv", "web"])) for i in range(1000)]
    pred = [(v, f"T{i}", d) for i, (_, v, d) in enumerate(gold)]
    rng.shuffle(pred)
    relabelled = {f"title {i}": f"T{i}" for i in range(1000)}
    pred = [(v, relabelled[gold[int(t[1:])][0]], d) for v, t, d in pred]
    assert match_rows(["title", "hours", "device"], gold, ["hours", "title_name", "device"], pred).correct


rows_strategy = st.lists(
    st.tuples(st.sampled_from(["US", "FR", "DE", "JP", None]),
              st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
              st.integers(min_value=0, max_value=5)),
    min_size=0, max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 10_000))
def test_any_permutation_and_relabelling_matches(rows: list[tuple], seed: int) -> None:
    rng = random.Random(seed)
    names = {"US": "United States", "FR": "France", "DE": "Germany", "JP": "Japan", None: None}
    pred = [(n, names[c], v, "extra") for c, v, n in rows]
    rng.shuffle(pred)
    m = match_rows(["code", "value", "n"], rows, ["n", "name", "value", "x"], pred)
    assert m.correct, m.reason


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy.filter(lambda r: any(v is not None for _, v, _ in r)), seed=st.integers(0, 10_000))
def test_changing_one_number_breaks_the_match(rows: list[tuple], seed: int) -> None:
    rng = random.Random(seed)
    i = rng.choice([k for k, (_, v, _) in enumerate(rows) if v is not None])
    changed = list(rows)
    code, v, n = changed[i]
    changed[i] = (code, v + max(1.0, abs(v) * 0.01), n)
    assert not match_rows(["code", "value", "n"], rows, ["code", "value", "n"], changed).correct


@pytest.mark.parametrize(("gold", "pred", "ordered", "expected"), [
    (["a", "b", "a"], ["x", "y", "x"], True, True),
    (["a", "b", "a"], ["x", "x", "y"], True, False),
    (["a", "b", "a"], ["x", "x", "y"], False, True),
    (["a", None], ["x", None], False, True),
    (["a", None], [None, "x"], True, False),
    (["a", "b"], ["b", "c"], False, True),  # b is on both sides so it maps to itself, a maps to c
    (["a", "b"], ["b", "a"], True, False),  # a and b are on both sides: no swapping
])
def test_labels_match_cases(gold: list, pred: list, ordered: bool, expected: bool) -> None:
    assert labels_match(gold, pred, ordered=ordered) is expected
