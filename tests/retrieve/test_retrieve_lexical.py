"""Verbatim value matching and the lexical scorer (pure, no model)."""

from __future__ import annotations

import pytest

from lore.retrieve.lexical import LexicalDoc, LexicalIndex, ValueMatcher, match_values, stem, terms

VALUES = {
    "countries.country_name": ["United States", "Brazil", "South Korea", "Korea"],
    "countries.country_iso_code": ["US", "BR", "KR"],
    "accounts.plan": ["basic_with_ads", "standard", "premium"],
    "accounts.age_band": ["18-24", "25-34", "55+"],
    "titles.genre": ["sci-fi", "comedy", "action"],
    "games.game_genre": ["action", "puzzle"],
    "titles.title_type": ["movie", "series"],
    "titles.original_language": ["en", "ko"],
    "game_installs.platform": ["ios", "android"],
    "cloud_costs.cloud_region": ["us-east-1", "eu-west-1"],
    "ab_allocations.cell": ["A", "B", "C"],
}


def found(question: str) -> list[tuple[str, str]]:
    return [(m.ref, m.value) for m in match_values(question, VALUES)]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("hours in Brazil", [("countries.country_name", "Brazil")]),
        ("hours in BRAZIL last month", [("countries.country_name", "Brazil")]),
        ("premium accounts in BR", [("accounts.plan", "premium"), ("countries.country_iso_code", "BR")]),
        ("installs on ios", [("game_installs.platform", "ios")]),
        ("viewers aged 18-24", [("accounts.age_band", "18-24")]),
        ("viewers 55+ only", [("accounts.age_band", "55+")]),
        ("top sci-fi titles", [("titles.genre", "sci-fi")]),
        ("cost in us-east-1", [("cloud_costs.cloud_region", "us-east-1")]),
        ("basic with ads subscribers", [("accounts.plan", "basic_with_ads")]),
        ("how many movies", [("titles.title_type", "movie")]),
    ],
)
def test_values_mentioned_verbatim_are_found(question: str, expected: list[tuple[str, str]]) -> None:
    assert found(question) == expected


def test_multiword_values_match_across_whitespace_and_win_over_their_parts() -> None:
    matches = match_values("streaming in South\n Korea and the United States", VALUES)
    assert [(m.value, m.span) for m in matches] == [("South Korea", (13, 25)), ("United States", (34, 47))]
    question = "streaming in South\n Korea and the United States"
    assert question[13:25] == "South\n Korea"


def test_word_boundaries_are_respected() -> None:
    assert found("focus on brazilian titles") == []
    assert found("band 18-245") == []
    assert found("premiumness") == []
    assert ("cloud_costs.cloud_region", "us-east-1") not in found("the us-east-1x box")


def test_one_value_in_two_attributes_is_reported_for_both() -> None:
    assert sorted(found("action hours")) == [("games.game_genre", "action"), ("titles.genre", "action")]


def test_short_values_score_by_how_likely_they_are_meant() -> None:
    scores = {(m.value, m.span): m.score for m in match_values("hours in BR vs us, a or A, in ko", VALUES)}
    assert scores[("BR", (9, 11))] == 0.9  # typed as written, upper case
    assert scores[("US", (15, 17))] == 0.3  # the stop word "us"
    assert scores[("A", (24, 25))] == 0.5  # one letter: never above 0.5
    assert scores[("ko", (30, 32))] == 0.5  # lower-case two letters: often a word
    assert ("A", (19, 20)) in scores and scores[("A", (19, 20))] <= 0.3


def test_long_values_score_high_and_case_matters_a_little() -> None:
    by_value = {m.value: m.score for m in match_values("Premium and standard", VALUES)}
    assert by_value == {"premium": 0.95, "standard": 1.0}


def test_matcher_is_reusable_and_handles_empty_input() -> None:
    matcher = ValueMatcher(VALUES)
    assert matcher.match("") == []
    assert [m.value for m in matcher.match("comedy")] == ["comedy"]
    assert [m.value for m in matcher.match("comedies")] == ["comedy"]
    assert ValueMatcher({}).match("Brazil") == []
    assert ValueMatcher({"x.y": ["", "  "]}).match("anything") == []


def test_terms_split_underscores_drop_stop_words_and_stem() -> None:
    assert terms("Total_Streaming_Hours by COUNTRIES") == ("total", "stream", "hour", "country")
    assert stem("sessions") == stem("session") == "session"
    assert stem("installs") == stem("installed") == stem("installing") == "install"


def test_lexical_index_scores_named_documents_highest() -> None:
    idx = LexicalIndex.build(
        [
            LexicalDoc("metric:hours", "metric", (("total_streaming_hours", 1.0), ("watch time", 1.0))),
            LexicalDoc("metric:sessions", "metric", (("streaming_session_count", 1.0),), bag="viewing sessions"),
            LexicalDoc("dimension:region", "dimension", (("region", 1.0), ("market", 1.0))),
            LexicalDoc("dimension:device", "dimension", (("device type", 1.0),), bag="the screen used to watch"),
        ]
    )
    scores = idx.score("total watch time by market")
    assert scores["metric:hours"] == 1.0
    assert scores["dimension:region"] == 1.0
    assert 0 < scores["dimension:device"] < 0.5  # only its description shares a word
    assert "metric:sessions" not in scores
    assert idx.score("by market", kinds=["metric"]) == {}
    assert idx.score("the of and") == {}


def test_lexical_index_updates_are_new_objects() -> None:
    idx = LexicalIndex.build([LexicalDoc("metric:a", "metric", (("alpha", 1.0),))])
    grown = idx.with_docs([LexicalDoc("example:1", "example", (("alpha by beta", 1.0),), symmetric=True)])
    assert "example:1" not in idx.docs and "example:1" in grown.docs
    # examples score 1 only for (nearly) the same question, in both directions
    assert grown.score("alpha by beta")["example:1"] == 1.0
    assert grown.score("alpha by beta and gamma")["example:1"] < 1.0
    assert grown.score("alpha")["example:1"] < 1.0
    assert "example:1" not in grown.without(["example:1"]).docs
