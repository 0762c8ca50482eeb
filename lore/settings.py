"""One settings object, built once at the entry point and passed down.

Values come from keyword arguments, then ``LORE_*`` environment variables, then
defaults. The project's own ``lore.yaml`` (see :mod:`lore.project`) says where
the warehouse and the semantic layer are.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field
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

    # --- execution limits -----------------------------------------------------
    #: seconds before a query is interrupted
    query_timeout_s: float = Field(default=15.0, gt=0)
    #: the most rows a query may return (LIMIT is clamped to this)
    max_rows: int = Field(default=10_000, gt=0)
    #: LIMIT added to SQL that has none
    default_limit: int = Field(default=1_000, gt=0)
    duckdb_threads: int = Field(default=2, gt=0)
    duckdb_memory_limit: str = "2GB"
    duckdb_max_temp_directory_size: str = "1GB"

    def today_or_now(self) -> date:
        return self.today or date.today()
