"""Red-team findings on access control (F1, F6, F7) and on inputs that broke a turn (R2, R4), each a test.

The configuration is the red team's: ``default: none``; a group ``emea_viewers`` (member ``ana``, four
streaming metrics, no age band, rows of region EMEA); ``ana`` also known as ``slack:T1:UANA``; ``bob``
with no limits, said explicitly (``unrestricted: true``).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lore import Lore
from lore.access import AccessConfig, rules_for
from lore.errors import ConfigError, GuardError
from lore.llm.chat import StructuredChat
from lore.llm.models import ModelHandle
from lore.llm.scripted import ScriptedChatModel

STREAMING = ["total_streaming_hours", "streaming_session_count", "active_streaming_accounts", "hours_per_streaming_account"]
ACCESS = {
    "default": "none",
    "groups": {"emea_viewers": {"members": ["ana"], "metrics": STREAMING, "hide_dimensions": ["accounts.age_band"],
                                "rows": ["countries.region = 'EMEA'"]}},
    "users": {"ana": {"identities": ["slack:T1:UANA"]}, "bob": {"unrestricted": True}},
}
OTHER_REGIONS = ("LATAM", "APAC", "UCAN", "Latin America", "Brazil", "South Korea", "Brasil", "Mexico")


@pytest.fixture(scope="module")
def project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("findings") / "demo"
    shutil.copytree(demo_dir, root, ignore=shutil.ignore_patterns(".lore"))
    config = yaml.safe_load((root / "lore.yaml").read_text())
    config["access"] = ACCESS
    (root / "lore.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.fixture(scope="module")
def lore(project: Path) -> Iterator[Lore]:
    with Lore.open(project, feedback=False) as opened:
        yield opened


# --- F1: one identity model ----------------------------------------------------------------------

def test_f1_an_identity_alias_gets_its_persons_group_rules(lore: Lore) -> None:
    """F1: ``slack:T1:UANA`` is ana, so ana's group and its limits apply (it used to see everything)."""
    config = AccessConfig.parse(ACCESS)
    assert [n for n, _ in rules_for(config, "slack:T1:UANA")] == ["group:emea_viewers"]
    assert [n for n, _ in rules_for(config, "  SLACK:t1:uana ")] == ["group:emea_viewers"]  # normalised once
    person = config.principal("slack:T1:UANA")
    assert person.id == "user:ana" and person.groups == ("emea_viewers",) and person.known
    slack_ana = lore.for_user("slack:T1:UANA")
    assert slack_ana is lore.for_user("ana")
    assert sorted(slack_ana.layer.metrics) == sorted(STREAMING)
    answer = slack_ana.chat(user="slack:T1:UANA").ask("cloud cost by team in 2025")
    assert answer.status != "answered" and not answer.rows
    regions = lore.chat(user="slack:T1:UANA").ask("streaming hours by region in 2025")
    assert regions.status == "answered" and [r[0] for r in regions.rows] == ["EMEA"]


def test_f1_the_readme_pattern_a_group_member_with_identities(lore: Lore) -> None:
    """F1: a group lists ``ana@example.com`` and her user entry lists her Slack id: the Slack id is in the group."""
    config = AccessConfig.parse({"default": "none",
                                 "groups": {"emea": {"members": ["ana@example.com"], "rows": ["countries.region = 'EMEA'"]}},
                                 "users": {"ana@example.com": {"identities": ["slack:T0123:U0456"]}}})
    assert [n for n, _ in rules_for(config, "slack:T0123:U0456")] == ["group:emea"]
    assert [n for n, _ in rules_for(config, "Ana@Example.com")] == ["group:emea"]
    assert [n for n, _ in rules_for(config, "stranger")] == ["default:none"]


def test_f1_no_limits_must_be_said_explicitly() -> None:
    """F1: a user entry with no limits and no group is under ``default:`` (with a warning and the migration);
    ``unrestricted: true`` says "no limits"."""
    raw = {"default": "none", "users": {"carol": {"identities": ["slack:T1:UCAROL"]}, "bob": {"unrestricted": True}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = AccessConfig.parse(raw)
    assert any("unrestricted: true" in str(w.message) for w in caught)
    assert [n for n, _ in rules_for(config, "slack:t1:ucarol")] == ["default:none"]
    assert rules_for(config, "bob") is None
    with pytest.raises(ConfigError, match="unrestricted"):
        AccessConfig.parse({"users": {"x": {"unrestricted": True, "hide_metrics": ["cloud_cost"]}}})
    with pytest.raises(ConfigError, match="belongs to two users"):
        AccessConfig.parse({"users": {"x": {"identities": ["slack:T1:U1"]}, "y": {"identities": ["SLACK:T1:U1"]}}})


def test_f1_access_show_prints_the_resolved_person(project: Path) -> None:
    from typer.testing import CliRunner

    from lore.cli import app

    result = CliRunner().invoke(app, ["access", "show", "--project", str(project), "--user", "slack:T1:UANA", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)["users"]
    assert row["user"] == "ana" and row["principal"] == "user:ana" and row["groups"] == ["emea_viewers"]
    assert "slack:t1:uana" in row["identities"] and row["rules"] == ["group:emea_viewers"]
    assert len(row["metrics"]) == 4


# --- F6: the guard's tables follow the visible metrics -----------------------------------------------

@pytest.mark.parametrize("table", ["game_installs", "game_sessions", "cloud_costs", "ua_campaigns", "games", "teams"])
def test_f6_tables_only_hidden_metrics_read_are_not_readable(lore: Lore, table: str) -> None:
    """F6: with four streaming metrics visible, a table no visible metric reads cannot be counted."""
    with pytest.raises(GuardError):
        lore.for_user("ana").run_sql(f"SELECT count(*) FROM {table}")
    assert lore.for_user("bob").run_sql(f"SELECT count(*) FROM {table}").rows[0][0] >= 0


def test_f6_tables_visible_metrics_read_stay_readable_within_the_rows(lore: Lore) -> None:
    """Dimension tables a visible metric joins (accounts, its A/B allocations, titles) stay readable, in scope."""
    ana = lore.for_user("ana")
    emea = ana.run_sql("SELECT count(*) FROM countries").rows[0][0]
    everyone = lore.run_sql("SELECT count(*) FROM countries").rows[0][0]
    assert 0 < emea < everyone
    assert ana.run_sql("SELECT count(*) FROM accounts").rows[0][0] < lore.run_sql("SELECT count(*) FROM accounts").rows[0][0]


# --- F7: restricted users are told, not misled ------------------------------------------------------

@pytest.mark.parametrize(("question", "said"), [
    ("streaming hours in Brazil in 2026", "Brazil"),
    ("streaming hours in Brasil", "Brasil"),
    ("hours watched in Latin America", "Latin America"),
    ("streaming hours for accounts aged 18-24", "18-24"),
    ("cloud cost by team in 2025", "loud cost"),
])
def test_f7_a_filter_or_metric_outside_access_is_said(lore: Lore, question: str, said: str) -> None:
    """F7: a value outside ana's rows, a hidden attribute's value or a hidden metric gets "outside your access",
    never a silently broadened or emptied answer."""
    answer = lore.chat(user="ana").ask(question)
    assert answer.status == "refused", (answer.status, answer.message)
    assert said in answer.message and "access" in answer.message
    assert not answer.rows and answer.confidence == 0.0


def test_f7_values_inside_the_rows_are_answered(lore: Lore) -> None:
    answer = lore.chat(user="ana").ask("streaming hours in Germany in 2026")
    assert answer.status == "answered" and answer.confidence >= 0.8
    assert lore.chat(user="ana").ask("streaming hours in EMEA in 2026").status == "answered"


def test_f7_the_layer_documents_and_catalog_a_restricted_user_reaches_name_no_other_region(lore: Lore) -> None:
    """F7: sample values, value synonyms and descriptions naming rows outside the scope are cut."""
    ana = lore.for_user("ana")
    layer_text = json.dumps(ana.layer.model_dump(mode="json"))
    hits = ana.retriever.search("streaming hours by country and region in Latin America", k=8)
    hit_text = json.dumps([h.model_dump() for h in hits.hits])
    for word in OTHER_REGIONS:
        assert word not in layer_text, word
        assert word not in hit_text, word
    assert "EMEA" in json.dumps(ana.values)  # what she may see is still there
    bob_text = json.dumps(lore.for_user("bob").layer.model_dump(mode="json"))
    assert "LATAM" in bob_text and "Brasil" in bob_text


def test_f7_the_model_prompt_of_a_restricted_user_names_no_other_region(lore: Lore) -> None:
    """F7: what the LLM planner is shown for ana names no value outside her rows."""
    settings = lore.settings.model_copy(update={"model": "scripted", "planner": "llm", "llm_max_retries": 0})
    with Lore(lore.project, settings) as scripted:
        prompts: list[str] = []

        def reply(messages: Any) -> str:
            prompts.append(json.dumps([list(m) for m in messages]) if not isinstance(messages, str) else messages)
            return json.dumps({"status": "clarify", "metrics": [], "dimensions": [], "filters": [], "start_date": None,
                               "end_date": None, "order_by": None, "descending": True, "limit": None, "sql": None,
                               "message": "Which metric?"})

        model = ScriptedChatModel(replies=[reply] * 100)
        scripted.parts.__dict__["model"] = ModelHandle(chat=StructuredChat(model, name="scripted"), spec="scripted")
        scripted.chat(user="ana").ask("hours by market and geography, in every territory")
    assert prompts, "the scripted model was never asked"
    for word in OTHER_REGIONS:
        assert word not in "\n".join(prompts), word


# --- R2: a follow-up on someone else's turn ---------------------------------------------------------

def test_r2_a_follow_up_on_another_users_plan_gives_an_answer(lore: Lore) -> None:
    """R2: in a shared thread bob asks about cloud costs, then ana follows up: ana gets an Answer in her own
    scope (never an exception, never bob's metric)."""
    chat = lore.chat(user="bob")
    first = chat.ask("cloud cost by team in 2025")
    assert first.status == "answered"
    chat.user = "ana"
    follow = chat.ask("now by org")
    assert follow.status in ("clarify", "refused", "answered")
    assert not (follow.plan and "cloud_cost" in follow.plan.metrics)
    assert "cloud" not in json.dumps([list(r) for r in follow.rows]).lower()


# --- R4: two ways of naming one kind of thing -------------------------------------------------------

def test_r4_two_identifiers_of_one_node_are_a_question_not_an_empty_answer(demo_lore: Lore) -> None:
    """R4: "US and Brazil" (a code and a name) must not be answered as an empty value at high confidence."""
    answer = demo_lore.chat().ask("streaming hours for US and Brazil")
    assert answer.status == "clarify"
    assert "US" in answer.message and "Brazil" in answer.message
    same_kind = demo_lore.chat().ask("streaming hours for Canada and Mexico")
    assert same_kind.status == "answered" and len(same_kind.rows) == 2
