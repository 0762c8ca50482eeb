"""Tests for lore.plan.timeparse: time ranges and grains found in plain-English questions.

Most cases ask on ``TODAY`` = Sunday 2026-11-01 (the demo warehouse's data ends the day before);
a few ask on other days to cross a year boundary, a leap day or a week boundary.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lore.plan.timeparse import GrainMention, TimeParse, TimeRange, default_grain, parse_time

TODAY = date(2026, 11, 1)
D = date

# question, the phrase its range spans, start, end, label, relative
RANGES = [
    # previous complete periods
    ("total streaming hours by region last quarter, only premium accounts", "last quarter", D(2026, 7, 1), D(2026, 9, 30), "last quarter (Q3 2026)", True),
    ("hours by country previous quarter", "previous quarter", D(2026, 7, 1), D(2026, 9, 30), "last quarter (Q3 2026)", True),
    ("installs last month", "last month", D(2026, 10, 1), D(2026, 10, 31), "last month (October 2026)", True),
    ("installs in the previous month by game", "in the previous month", D(2026, 10, 1), D(2026, 10, 31), "last month (October 2026)", True),
    ("hours last week", "last week", D(2026, 10, 19), D(2026, 10, 25), "last week (2026-10-19 to 2026-10-25)", True),
    ("hours last year", "last year", D(2025, 1, 1), D(2025, 12, 31), "last year (2025)", True),
    ("cost over the past year", "over the past year", D(2025, 1, 1), D(2025, 12, 31), "last year (2025)", True),
    ("hours yesterday", "yesterday", D(2026, 10, 31), D(2026, 10, 31), "yesterday (2026-10-31)", True),
    ("hours today", "today", TODAY, TODAY, "today (2026-11-01)", True),
    # periods to date
    ("hours this month", "this month", D(2026, 11, 1), TODAY, "month to date (November 2026)", True),
    ("MTD installs", "MTD", D(2026, 11, 1), TODAY, "month to date (November 2026)", True),
    ("hours month to date", "month to date", D(2026, 11, 1), TODAY, "month to date (November 2026)", True),
    ("hours this week", "this week", D(2026, 10, 26), TODAY, "week to date (week of 2026-10-26)", True),
    ("hours this quarter", "this quarter", D(2026, 10, 1), TODAY, "quarter to date (Q4 2026)", True),
    ("QTD hours", "QTD", D(2026, 10, 1), TODAY, "quarter to date (Q4 2026)", True),
    ("hours this year", "this year", D(2026, 1, 1), TODAY, "year to date (2026)", True),
    ("YTD revenue", "YTD", D(2026, 1, 1), TODAY, "year to date (2026)", True),
    ("revenue so far this year", "so far this year", D(2026, 1, 1), TODAY, "year to date (2026)", True),
    ("revenue year-to-date", "year-to-date", D(2026, 1, 1), TODAY, "year to date (2026)", True),
    # rolling windows: days end yesterday, longer units are complete periods before the current one
    ("hours in the last 90 days", "in the last 90 days", D(2026, 8, 3), D(2026, 10, 31), "last 90 days", True),
    ("sessions the last 30 days", "the last 30 days", D(2026, 10, 2), D(2026, 10, 31), "last 30 days", True),
    ("hours past 7 days by device", "past 7 days", D(2026, 10, 25), D(2026, 10, 31), "last 7 days", True),
    ("hours last 30d", "last 30d", D(2026, 10, 2), D(2026, 10, 31), "last 30 days", True),
    ("hours over the past 6 months", "over the past 6 months", D(2026, 5, 1), D(2026, 10, 31), "last 6 months", True),
    ("installs previous 3 months", "previous 3 months", D(2026, 8, 1), D(2026, 10, 31), "last 3 months", True),
    ("sessions last two weeks", "last two weeks", D(2026, 10, 12), D(2026, 10, 25), "last 2 weeks", True),
    ("hours last 4 full weeks", "last 4 full weeks", D(2026, 9, 28), D(2026, 10, 25), "last 4 weeks", True),
    ("cost last 2 quarters", "last 2 quarters", D(2026, 4, 1), D(2026, 9, 30), "last 2 quarters", True),
    ("installs last three years", "last three years", D(2023, 1, 1), D(2025, 12, 31), "last 3 years", True),
    ("revenue trailing twelve months", "trailing twelve months", D(2025, 11, 1), D(2026, 10, 31), "last 12 months", True),
    ("revenue TTM", "TTM", D(2025, 11, 1), D(2026, 10, 31), "last 12 months", True),
    ("hours past 1 month", "past 1 month", D(2026, 10, 1), D(2026, 10, 31), "last month (October 2026)", True),
    # years
    ("revenue in 2025", "in 2025", D(2025, 1, 1), D(2025, 12, 31), "2025", False),
    ("2025 revenue by region", "2025", D(2025, 1, 1), D(2025, 12, 31), "2025", False),
    ("FY2025 installs", "FY2025", D(2025, 1, 1), D(2025, 12, 31), "2025", False),
    ("installs in fiscal year 2024", "in fiscal year 2024", D(2024, 1, 1), D(2024, 12, 31), "2024", False),
    ("titles from 2025", "from 2025", D(2025, 1, 1), D(2025, 12, 31), "2025", False),
    # quarters and halves
    ("hours Q2 2026", "Q2 2026", D(2026, 4, 1), D(2026, 6, 30), "Q2 2026", False),
    ("hours 2026 Q2", "2026 Q2", D(2026, 4, 1), D(2026, 6, 30), "Q2 2026", False),
    ("hours in q2 of 2026", "in q2 of 2026", D(2026, 4, 1), D(2026, 6, 30), "Q2 2026", False),
    ("hours 2026-Q1", "2026-Q1", D(2026, 1, 1), D(2026, 3, 31), "Q1 2026", False),
    ("hours in Q3 FY26", "in Q3 FY26", D(2026, 7, 1), D(2026, 9, 30), "Q3 2026", False),
    ("hours in the second quarter of 2025", "in the second quarter of 2025", D(2025, 4, 1), D(2025, 6, 30), "Q2 2025", False),
    ("hours last quarter of 2025", "last quarter of 2025", D(2025, 10, 1), D(2025, 12, 31), "Q4 2025", False),
    ("hours in Q2", "in Q2", D(2026, 4, 1), D(2026, 6, 30), "Q2 2026", True),
    ("hours in Q4", "in Q4", D(2026, 10, 1), D(2026, 12, 31), "Q4 2026", True),
    ("installs H1 2026", "H1 2026", D(2026, 1, 1), D(2026, 6, 30), "H1 2026", False),
    ("installs in the first half of 2026", "in the first half of 2026", D(2026, 1, 1), D(2026, 6, 30), "H1 2026", False),
    ("installs in the second half of 2025", "in the second half of 2025", D(2025, 7, 1), D(2025, 12, 31), "H2 2025", False),
    ("installs 2025 H2", "2025 H2", D(2025, 7, 1), D(2025, 12, 31), "H2 2025", False),
    ("installs in H1", "in H1", D(2026, 1, 1), D(2026, 6, 30), "H1 2026", True),
    # months
    ("hours in March 2026", "in March 2026", D(2026, 3, 1), D(2026, 3, 31), "March 2026", False),
    ("hours for Mar 2026", "for Mar 2026", D(2026, 3, 1), D(2026, 3, 31), "March 2026", False),
    ("hours in Sept. 2025", "in Sept. 2025", D(2025, 9, 1), D(2025, 9, 30), "September 2025", False),
    ("hours in Mar '26", "in Mar '26", D(2026, 3, 1), D(2026, 3, 31), "March 2026", False),
    ("hours in Feb 2024", "in Feb 2024", D(2024, 2, 1), D(2024, 2, 29), "February 2024", False),
    ("hours in 2026-03", "in 2026-03", D(2026, 3, 1), D(2026, 3, 31), "March 2026", False),
    ("hours in 03/2026", "in 03/2026", D(2026, 3, 1), D(2026, 3, 31), "March 2026", False),
    ("hours in March", "in March", D(2026, 3, 1), D(2026, 3, 31), "March 2026", True),
    ("hours in December", "in December", D(2025, 12, 1), D(2025, 12, 31), "December 2025", True),
    ("hours in november", "in november", D(2026, 11, 1), D(2026, 11, 30), "November 2026", True),
    ("hours last March", "last March", D(2026, 3, 1), D(2026, 3, 31), "March 2026", True),
    ("May revenue by region", "May", D(2026, 5, 1), D(2026, 5, 31), "May 2026", True),
    ("revenue for may", "for may", D(2026, 5, 1), D(2026, 5, 31), "May 2026", True),
    # days
    ("hours on March 5, 2026", "on March 5, 2026", D(2026, 3, 5), D(2026, 3, 5), "2026-03-05", False),
    ("hours on 5 March 2026", "on 5 March 2026", D(2026, 3, 5), D(2026, 3, 5), "2026-03-05", False),
    ("hours on the 5th of March 2026", "on the 5th of March 2026", D(2026, 3, 5), D(2026, 3, 5), "2026-03-05", False),
    ("hours on 2026-03-05", "on 2026-03-05", D(2026, 3, 5), D(2026, 3, 5), "2026-03-05", False),
    ("hours on 2026/03/05", "on 2026/03/05", D(2026, 3, 5), D(2026, 3, 5), "2026-03-05", False),
    ("hours on March 5", "on March 5", D(2026, 3, 5), D(2026, 3, 5), "2026-03-05", True),
    ("hours on Feb 29", "on Feb 29", D(2024, 2, 29), D(2024, 2, 29), "2024-02-29", True),
    # closed ranges
    ("sessions between 2025-06-01 and 2025-08-31", "between 2025-06-01 and 2025-08-31", D(2025, 6, 1), D(2025, 8, 31), "2025-06-01 to 2025-08-31", False),
    ("sessions between 2025-08-31 and 2025-06-01", "between 2025-08-31 and 2025-06-01", D(2025, 6, 1), D(2025, 8, 31), "2025-06-01 to 2025-08-31", False),
    ("sessions from June to August 2025", "from June to August 2025", D(2025, 6, 1), D(2025, 8, 31), "June to August 2025", False),
    ("sessions from Jan 2025 to Mar 2025", "from Jan 2025 to Mar 2025", D(2025, 1, 1), D(2025, 3, 31), "January to March 2025", False),
    ("sessions from Dec 2024 to Feb 2025", "from Dec 2024 to Feb 2025", D(2024, 12, 1), D(2025, 2, 28), "December 2024 to February 2025", False),
    ("sessions from December to February 2025", "from December to February 2025", D(2024, 12, 1), D(2025, 2, 28), "December 2024 to February 2025", False),
    ("sessions from March 2025 to June", "from March 2025 to June", D(2025, 3, 1), D(2025, 6, 30), "March to June 2025", False),
    ("sessions between June and August", "between June and August", D(2026, 6, 1), D(2026, 8, 31), "June to August 2026", True),
    ("sessions between April and may 2026", "between April and may 2026", D(2026, 4, 1), D(2026, 5, 31), "April to May 2026", False),
    ("sessions Q1-Q3 2025", "Q1-Q3 2025", D(2025, 1, 1), D(2025, 9, 30), "Q1 to Q3 2025", False),
    ("sessions 2024-2025", "2024-2025", D(2024, 1, 1), D(2025, 12, 31), "2024 to 2025", False),
    ("sessions 2024 through 2025", "2024 through 2025", D(2024, 1, 1), D(2025, 12, 31), "2024 to 2025", False),
    ("sessions between 2024 and 2025", "between 2024 and 2025", D(2024, 1, 1), D(2025, 12, 31), "2024 to 2025", False),
    ("hours weekly since 2026-01-01 until 2026-06-30", "since 2026-01-01 until 2026-06-30", D(2026, 1, 1), D(2026, 6, 30), "2026-01-01 to 2026-06-30", False),
    ("sessions starting March 2025 through June 2025", "starting March 2025 through June 2025", D(2025, 3, 1), D(2025, 6, 30), "March to June 2025", False),
    ("sessions between Q1 2025 and Q2 2026", "between Q1 2025 and Q2 2026", D(2025, 1, 1), D(2026, 6, 30), "Q1 2025 to Q2 2026", False),
    ("sessions from 2025-06-01 to yesterday", "from 2025-06-01 to yesterday", D(2025, 6, 1), D(2026, 10, 31), "2025-06-01 to yesterday (2026-10-31)", True),
    # open ranges
    ("sessions since March 2026", "since March 2026", D(2026, 3, 1), None, "since March 2026", False),
    ("sessions since 2025", "since 2025", D(2025, 1, 1), None, "since 2025", False),
    ("sessions starting in June 2026", "starting in June 2026", D(2026, 6, 1), None, "since June 2026", False),
    ("sessions since the start of 2025", "since the start of 2025", D(2025, 1, 1), None, "since 2025", False),
    ("sessions since last month", "since last month", D(2026, 10, 1), None, "since last month (October 2026)", True),
    ("sessions after 2025-06-01", "after 2025-06-01", D(2025, 6, 2), None, "after 2025-06-01", False),
    ("sessions before 2026", "before 2026", None, D(2025, 12, 31), "before 2026", False),
    ("sessions until June 2026", "until June 2026", None, D(2026, 6, 30), "until June 2026", False),
    ("sessions through the end of March 2026", "through the end of March 2026", None, D(2026, 3, 31), "until March 2026", False),
    # "go through" is a phrasal verb: the period itself, not "until"
    ("how many licences did we go through last week", "last week", D(2026, 10, 19), D(2026, 10, 25), "last week (2026-10-19 to 2026-10-25)", True),
    ("credits we went through in July", "in July", D(2026, 7, 1), D(2026, 7, 31), "July 2026", True),
]


@pytest.mark.parametrize(
    ("question", "phrase", "start", "end", "label", "relative"), RANGES, ids=[case[0] for case in RANGES]
)
def test_one_range(question: str, phrase: str, start: date | None, end: date | None, label: str, relative: bool) -> None:
    parsed = parse_time(question, TODAY)
    assert len(parsed.ranges) == 1, parsed.ranges
    found = parsed.ranges[0]
    assert question[found.span[0] : found.span[1]] == phrase
    assert (found.start, found.end, found.label, found.relative) == (start, end, label, relative)


# the same phrases asked on other days: year boundaries, leap days, week boundaries
OTHER_DAYS = [
    (D(2026, 1, 15), "last month", D(2025, 12, 1), D(2025, 12, 31), "last month (December 2025)"),
    (D(2026, 1, 15), "last quarter", D(2025, 10, 1), D(2025, 12, 31), "last quarter (Q4 2025)"),
    (D(2026, 1, 15), "last week", D(2026, 1, 5), D(2026, 1, 11), "last week (2026-01-05 to 2026-01-11)"),
    (D(2026, 1, 15), "last 3 months", D(2025, 10, 1), D(2025, 12, 31), "last 3 months"),
    (D(2026, 1, 15), "this year", D(2026, 1, 1), D(2026, 1, 15), "year to date (2026)"),
    (D(2026, 1, 15), "in Q2", D(2025, 4, 1), D(2025, 6, 30), "Q2 2025"),
    (D(2026, 1, 15), "in March", D(2025, 3, 1), D(2025, 3, 31), "March 2025"),
    (D(2026, 1, 15), "from November to January", D(2025, 11, 1), D(2026, 1, 31), "November 2025 to January 2026"),
    (D(2024, 2, 29), "last year", D(2023, 1, 1), D(2023, 12, 31), "last year (2023)"),
    (D(2024, 2, 29), "this month", D(2024, 2, 1), D(2024, 2, 29), "month to date (February 2024)"),
    (D(2024, 2, 29), "in February", D(2024, 2, 1), D(2024, 2, 29), "February 2024"),
    (D(2024, 2, 29), "last 12 months", D(2023, 2, 1), D(2024, 1, 31), "last 12 months"),
    (D(2024, 2, 29), "last 29 days", D(2024, 1, 31), D(2024, 2, 28), "last 29 days"),
    (D(2024, 2, 29), "yesterday", D(2024, 2, 28), D(2024, 2, 28), "yesterday (2024-02-28)"),
    (D(2024, 3, 1), "last month", D(2024, 2, 1), D(2024, 2, 29), "last month (February 2024)"),
    (D(2026, 3, 31), "last March", D(2025, 3, 1), D(2025, 3, 31), "March 2025"),
    (D(2026, 4, 1), "last March", D(2026, 3, 1), D(2026, 3, 31), "March 2026"),
    (D(2026, 3, 31), "this quarter", D(2026, 1, 1), D(2026, 3, 31), "quarter to date (Q1 2026)"),
    (D(2026, 10, 26), "this week", D(2026, 10, 26), D(2026, 10, 26), "week to date (week of 2026-10-26)"),
    (D(2026, 10, 26), "last week", D(2026, 10, 19), D(2026, 10, 25), "last week (2026-10-19 to 2026-10-25)"),
]


@pytest.mark.parametrize(("today", "question", "start", "end", "label"), OTHER_DAYS, ids=[f"{c[0]}-{c[1]}" for c in OTHER_DAYS])
def test_other_days(today: date, question: str, start: date, end: date, label: str) -> None:
    (found,) = parse_time(question, today).ranges
    assert (found.start, found.end, found.label) == (start, end, label)
    assert found.span == (0, len(question))


# questions with several ranges: (phrase, label) for each, in order
SEVERAL = [
    ("compare 2024 to 2025", [("2024", "2024"), ("2025", "2025")]),
    ("installs H1 2026 vs second half of 2025", [("H1 2026", "H1 2026"), ("second half of 2025", "H2 2025")]),
    ("sessions in 2025 and 2026", [("in 2025", "2025"), ("2026", "2026")]),
    ("revenue yesterday and today", [("yesterday", "yesterday (2026-10-31)"), ("today", "today (2026-11-01)")]),
    ("installs in June, July and August 2025", [("in June", "June 2025"), ("July", "July 2025"), ("August 2025", "August 2025")]),
    ("installs in Q1 and Q2 2025", [("in Q1", "Q1 2025"), ("Q2 2025", "Q2 2025")]),
    ("installs in March and April", [("in March", "March 2026"), ("April", "April 2026")]),
    ("installs Q1 vs Q2 2025", [("Q1", "Q1 2025"), ("Q2 2025", "Q2 2025")]),
    ("installs Q4 vs Q1 2026", [("Q4", "Q4 2025"), ("Q1 2026", "Q1 2026")]),
    ('hours of "Night Shift 2024" last month', [("last month", "last month (October 2026)")]),
    ("hours of \u201cSummer of 2025\u201d in Q3", [("in Q3", "Q3 2026")]),
    ("hours of titles released before 2020 in 2026", [("before 2020", "before 2020"), ("in 2026", "2026")]),
]


@pytest.mark.parametrize(("question", "expected"), SEVERAL, ids=[c[0] for c in SEVERAL])
def test_several_ranges(question: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_time(question, TODAY)
    assert [(question[r.span[0] : r.span[1]], r.label) for r in parsed.ranges] == expected


# a period compared with one a unit earlier: (question, the ranges' phrases, the offset's phrase, its unit); the
# earlier period is named by the offset, so it is no range of its own
OFFSETS = [
    ("hours this year vs last year", ["this year"], "vs last year", "year"),
    ("Q3 2026 against the same quarter last year", ["Q3 2026"], "against the same quarter last year", "year"),
    ("UA spend in Q2 2026 compared with the same quarter a year earlier", ["in Q2 2026"],
     "compared with the same quarter a year earlier", "year"),
    ("installs by country year over year", [], "year over year", "year"),
    ("installs QoQ", [], "QoQ", "quarter"),
    ("revenue in October vs the previous month", ["in October"], "vs the previous month", "month"),
    ("sessions last week compared to the prior period", ["last week"], "compared to the prior period", "period"),
    ("hours MoM by device", [], "MoM", "month"),
    ("how did hours grow from last year", [], "from last year", "year"),
]


@pytest.mark.parametrize(("question", "ranges", "phrase", "unit"), OFFSETS)
def test_offsets(question: str, ranges: list[str], phrase: str, unit: str) -> None:
    parsed = parse_time(question, TODAY)
    assert [question[r.span[0] : r.span[1]] for r in parsed.ranges] == ranges
    assert [(question[o.span[0] : o.span[1]], o.unit) for o in parsed.offsets] == [(phrase, unit)]


# words that name no offset: a mother's stores, an interjection, a period itself
NO_OFFSET = ["sales at mom and pop stores", "wow, what were sales last year", "hours from last year",
             "revenue from last month to this month"]


@pytest.mark.parametrize("question", NO_OFFSET)
def test_no_offset(question: str) -> None:
    assert parse_time(question, TODAY).offsets == ()


# "from X to Y" with a change asked is two periods; without, one range
CHANGES = [
    ("how did hours change from last month to this month", ["last month (October 2026)", "month to date (November 2026)"]),
    ("which store grew most from 2025 to 2026", ["2025", "2026"]),
    ("how did installs change from March to May 2025", ["March 2025", "May 2025"]),
    ("revenue from January to March 2026", ["January to March 2026"]),
    ("hours from 2025 to 2026", ["2025 to 2026"]),
    ("sessions in the week of 14 September 2026", ["the week of 14 September 2026"]),
    ("sessions in the week of 2026-09-16", ["the week of 14 September 2026"]),
]


@pytest.mark.parametrize(("question", "labels"), CHANGES)
def test_changes_and_weeks(question: str, labels: list[str]) -> None:
    assert [r.label for r in parse_time(question, TODAY).ranges] == labels


# questions that name no time range at all
NO_RANGE = [
    "top 5 titles by hours",
    "accounts aged 18-24 by plan",
    "accounts aged 55+",
    "cost of us-east-1 by team",
    "2000 titles with the most hours",
    "top 2025 titles",
    "sessions with hours > 2000",
    "accounts with more than 2030 sessions",
    "title id 2024",
    "campaigns that spent $2025",
    "growth of 2025% in installs",
    "q2x sessions",
    "recent sessions by device",
    "recently released titles",
    "the latest installs",
    "users who may churn",
    "May I see hours by region?",
    "hours on 03/05/2026",
    "sessions on 2026-02-30",
    "last 5 sessions",
    "30-day retention by cohort",
    "hours in the last few days",
    "hours this weekend",
    "installs over the last 9999 years",
    "",
]


@pytest.mark.parametrize("question", NO_RANGE)
def test_no_range(question: str) -> None:
    # the project's own nouns count as units too ("2000 titles"): the planner passes them from the layer
    assert parse_time(question, TODAY, unit_words=("titles", "title")).ranges == ()


def test_a_project_noun_makes_a_number_a_count_only_when_the_layer_names_it() -> None:
    assert parse_time("2000 widgets with the most hours", TODAY, unit_words=("widgets",)).ranges == ()
    assert [r.label for r in parse_time("2025 widgets by region", TODAY, unit_words=("widgets",)).ranges] == ["2025"]


# grains: (phrase, grain, inferred) for each mention, in order
GRAINS = [
    ("hours by day last month", [("by day", "day", False)]),
    ("daily hours", [("daily", "day", False)]),
    ("hours per day", [("per day", "day", False)]),
    ("hours each day of last week", [("each day", "day", False)]),
    ("hours day by day", [("day by day", "day", False)]),
    ("hours by date in October 2026", [("by date", "day", False)]),
    ("weekly installs", [("weekly", "week", False)]),
    ("installs by week", [("by week", "week", False)]),
    ("installs per week", [("per week", "week", False)]),
    ("installs week over week", [("week over week", "week", False)]),
    ("installs WoW", [("WoW", "week", False)]),
    ("monthly revenue", [("monthly", "month", False)]),
    ("revenue by month", [("by month", "month", False)]),
    ("revenue per month", [("per month", "month", False)]),
    ("revenue each month of 2025", [("each month", "month", False)]),
    ("revenue month-over-month", [("month-over-month", "month", False)]),
    ("revenue MoM", [("MoM", "month", False)]),
    ("revenue month by month", [("month by month", "month", False)]),
    ("quarterly cost", [("quarterly", "quarter", False)]),
    ("cost by quarter", [("by quarter", "quarter", False)]),
    ("cost per quarter", [("per quarter", "quarter", False)]),
    ("cost QoQ", [("QoQ", "quarter", False)]),
    ("yearly cost", [("yearly", "year", False)]),
    ("cost annually", [("annually", "year", False)]),
    ("cost by year", [("by year", "year", False)]),
    ("cost per year", [("per year", "year", False)]),
    ("cost YoY", [("YoY", "year", False)]),
    ("cost year over year", [("year over year", "year", False)]),
    ("weekly hours and monthly installs", [("weekly", "week", False), ("monthly", "month", False)]),
    # inferred from the range by default_grain
    ("hours trend in Q3 2026", [("trend", "week", True)]),
    ("hours over time in 2025", [("over time", "month", True)]),
    ("hours trending last month", [("trending", "day", True)]),
    ("hours over time", [("over time", "month", True)]),
    ("hours since 2020 over time", [("over time", "quarter", True)]),
    # not grains
    ("hours last month", []),
    ("hours this month", []),
    ("hours by day of week last month", []),
    ("monthly active accounts by country", [("monthly", "month", False)]),  # the planner lets a metric name holding it win
    ("accounts on the annual plan", []),
    ("accounts on the yearly plan", []),
    ("hours in the last 3 months", []),
]


@pytest.mark.parametrize(("question", "expected"), GRAINS, ids=[c[0] for c in GRAINS])
def test_grains(question: str, expected: list[tuple[str, str, bool]]) -> None:
    parsed = parse_time(question, TODAY)
    assert [(question[g.span[0] : g.span[1]], g.grain, g.inferred) for g in parsed.grains] == expected


def test_explicit_grain_wins_over_inferred() -> None:
    parsed = parse_time("hours over time by month in Q3 2026", TODAY)
    assert [g.grain for g in parsed.grains] == ["week", "month"]
    assert parsed.grain == "month"
    assert parse_time("hours", TODAY).grain is None


@pytest.mark.parametrize(
    ("question", "remainder"),
    [
        (
            "total streaming hours by region last quarter, only premium accounts",
            "total streaming hours by region             , only premium accounts",
        ),
        ("installs in the last 90 days, weekly", "installs                    ,       "),
        (
            "hours by country between 2025-06-01 and 2025-08-31",
            "hours by country " + " " * len("between 2025-06-01 and 2025-08-31"),
        ),
        ("top 5 titles by hours", "top 5 titles by hours"),
    ],
)
def test_remainder(question: str, remainder: str) -> None:
    assert parse_time(question, TODAY).remainder(question) == remainder


@pytest.mark.parametrize(
    ("days", "grain"),
    [(1, "day"), (31, "day"), (32, "week"), (184, "week"), (185, "month"), (1096, "month"), (1097, "quarter")],
)
def test_default_grain_thresholds(days: int, grain: str) -> None:
    start = D(2020, 1, 1)
    rng = TimeRange(start=start, end=start + timedelta(days=days - 1), label="x", span=(0, 0))
    assert default_grain(rng) == grain


def test_default_grain_open_ranges() -> None:
    since = TimeRange(start=D(2026, 10, 15), end=None, label="since 2026-10-15", span=(0, 0))
    assert default_grain(since, TODAY) == "day"
    assert default_grain(since) == "month"
    before = TimeRange(start=None, end=D(2025, 12, 31), label="before 2026", span=(0, 0))
    assert default_grain(before, TODAY) == "month"


def test_models_are_frozen_and_checked() -> None:
    found = parse_time("revenue in 2025", TODAY).ranges[0]
    with pytest.raises(ValidationError):
        found.label = "2024"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        TimeRange(start=D(2026, 2, 1), end=D(2026, 1, 1), label="x", span=(0, 1))
    with pytest.raises(ValidationError):
        GrainMention(grain="hour", span=(0, 1))  # type: ignore[arg-type]
    assert isinstance(parse_time("hours", TODAY), TimeParse)


# --- properties ---------------------------------------------------------------------------------

_WORDS = [
    "hours", "by", "region", "last", "this", "past", "month", "quarter", "week", "year", "days", "in", "2025",
    "2026", "Q2", "H1", "march", "May", "since", "between", "and", "to", "-", "from", "the", "90", "two",
    "daily", "monthly", "over time", "top", "5", "2026-03-05", "2026-03", "until", "before", "after", "ytd",
    "of", "first", "half", ",", "titles", "2000", "18-24", "yesterday", "today", "fy2025", "trend", "each",
]
_QUESTIONS = st.lists(st.sampled_from(_WORDS), max_size=12).map(" ".join) | st.text(max_size=60)
_DAYS = st.dates(min_value=D(1995, 1, 1), max_value=D(2095, 12, 31))


@settings(max_examples=300, deadline=None)
@given(question=_QUESTIONS, today=_DAYS)
def test_spans_are_disjoint_and_remainder_blanks_exactly_them(question: str, today: date) -> None:
    parsed = parse_time(question, today)
    spans = sorted([r.span for r in parsed.ranges] + [g.span for g in parsed.grains])
    for start, end in spans:
        assert 0 <= start < end <= len(question)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start
    remainder = parsed.remainder(question)
    assert len(remainder) == len(question)
    covered = {i for start, end in spans for i in range(start, end)}
    for i, (before, after) in enumerate(zip(question, remainder)):
        assert after == (" " if i in covered else before)
    assert parse_time(question, today) == parsed


@settings(max_examples=200, deadline=None)
@given(today=_DAYS, n=st.integers(min_value=2, max_value=40))
def test_relative_periods_are_complete_and_end_before_today(today: date, n: int) -> None:
    def one(question: str) -> TimeRange:
        (found,) = parse_time(question, today).ranges
        assert found.relative and found.start is not None and found.end is not None
        return found

    this_month = today.replace(day=1)
    monday = today - timedelta(days=today.weekday())
    last_month = one("last month")
    assert last_month.start.day == 1 and last_month.end == this_month - timedelta(days=1)
    last_week = one("last week")
    assert last_week.start == monday - timedelta(days=7) and last_week.days == 7
    days = one(f"last {n} days")
    assert days.end == today - timedelta(days=1) and days.days == n
    weeks = one(f"last {n} weeks")
    assert weeks.start.weekday() == 0 and weeks.end == monday - timedelta(days=1) and weeks.days == 7 * n
    months = one(f"past {n} months")
    assert months.start.day == 1 and months.end == this_month - timedelta(days=1)
    assert (this_month.year - months.start.year) * 12 + this_month.month - months.start.month == n
    ytd = one("year to date")
    assert (ytd.start, ytd.end) == (D(today.year, 1, 1), today)
