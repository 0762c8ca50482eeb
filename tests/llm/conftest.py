"""Fixtures for the LLM tests: the scripted chat model at the seam, real everything else.

The planner runs against the session's demo project (real catalog, chromadb
retriever, compiler, guard and DuckDB); only the chat model is scripted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from lore.llm.chat import StructuredChat
from lore.llm.log import ExchangeLog
from lore.llm.scripted import ScriptedChatModel
from lore.plan.llm import LLMPlanner
from lore.plan.build import check_plan


@pytest.fixture
def exchange_log(tmp_path: Path) -> ExchangeLog:
    return ExchangeLog.open(tmp_path / "llm.sqlite")


@pytest.fixture
def make_planner(demo_lore: Any, exchange_log: ExchangeLog) -> Callable[..., tuple[LLMPlanner, ScriptedChatModel]]:
    """make_planner(replies, **planner_kwargs) -> (an LLMPlanner on the demo project, its scripted model)."""

    def make(replies: Sequence[Any], *, structured: str = "json_schema", **kwargs: Any) -> tuple[LLMPlanner, ScriptedChatModel]:
        model = ScriptedChatModel(replies=list(replies))
        chat = StructuredChat(model, name="scripted", structured=structured, log=exchange_log,  # type: ignore[arg-type]
                              base_url="http://127.0.0.1:9/v1", timeout_s=5)
        kwargs.setdefault("schema", demo_lore.schema)
        planner = LLMPlanner(demo_lore.catalog, demo_lore.retriever, chat, None, lambda plan: check_plan(demo_lore, plan),
                             today=demo_lore.today, **kwargs)
        return planner, model

    return make
