"""What the API reads and writes, as pydantic models (the OpenAPI document is generated from them).

Answers are :class:`lore.types.Answer` itself, votes :class:`lore.plugins.Vote`, metrics
:class:`lore.semantic.spec.Metric` and columns :class:`lore.types.ColumnMeta`: the HTTP API and the Python API
share one contract. The models below are only the requests and the envelopes around those.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from lore.semantic.spec import Metric
from lore.types import Answer, ColumnMeta, Filter, Scalar


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuestionIn(Request):
    """A question in a conversation; a follow-up refines the conversation's last answer."""

    question: str = Field(description="The question in plain words (at most LORE_MAX_QUESTION_CHARS characters; a "
                                      "longer one is answered with status refused, as in the Python API).",
                          examples=["streaming hours by region in 2026"])


class FeedbackIn(Request):
    """A thumbs up (+1) or down (-1) on an answer, with an optional comment and, with a thumbs down, a correction."""

    rating: StrictInt = Field(description="+1 or -1", examples=[1])
    comment: str | None = Field(default=None, max_length=4_000)
    correction: Union[str, dict[str, Any], None] = Field(
        default=None, description="With rating -1: the corrected SQL (text), a corrected plan (an object with metrics, "
                                  "dimensions, filters, ...) or both as {\"plan\": {...}, \"sql\": \"...\"}.")


class SemanticQueryIn(Request):
    """Metrics by dimensions with filters, order and limit (DataJunction-style), as ``lore sql`` takes them."""

    metrics: list[str] = Field(min_length=1, examples=[["total_streaming_hours"]])
    dimensions: list[str] = Field(default=[], examples=[["countries.region"]])
    filters: list[Union[str, Filter]] = Field(default=[], examples=[["countries.region = 'EMEA'"]])
    order_by: list[str] = Field(default=[], description="A metric or dimension; prefix - for descending.",
                                examples=[["-total_streaming_hours"]])
    limit: int | None = Field(default=None, ge=1)


class SqlIn(SemanticQueryIn):
    dialect: str | None = Field(default=None, description="duckdb (default: the project's), postgres, snowflake, "
                                                          "bigquery, trino, spark, ...", examples=["postgres"])


class ConversationOut(BaseModel):
    id: str
    user: str
    created_at: str


class MessagesOut(BaseModel):
    conversation_id: str
    answers: list[Answer]


class SqlOut(BaseModel):
    #: the compiled SQL, in the dialect asked for (as ``lore sql`` prints it)
    sql: str
    dialect: str
    columns: list[ColumnMeta]
    joins: list[str]
    #: DuckDB only: what /v1/data runs for the caller (the guard's SQL, with the caller's row limits around tables)
    guarded_sql: str | None = None
    #: the caller's row limits (applied by the guard on DuckDB, not part of ``sql``)
    row_filters: list[str] = []


class DataOut(BaseModel):
    #: the SQL that ran (after the guard)
    sql: str
    columns: list[ColumnMeta]
    rows: list[list[Scalar]]
    truncated: bool
    #: DuckDB's time for the query (when it came from the cache: the time it took when it ran)
    elapsed_ms: float
    #: the result came from the answer cache (the same query on the same data, layer, day and scope ran before)
    cache_hit: bool = False


class Dimension(BaseModel):
    #: what to pass as a dimension (``node.attribute``, ``metric_time``; add ``:grain`` to a time one)
    ref: str
    label: str
    kind: Literal["categorical", "time", "numeric", "identifier", "boolean"]
    type: str | None = None
    description: str = ""
    grains: list[str] = []


class MetricsOut(BaseModel):
    metrics: list[Metric]


class MetricDetail(Metric):
    """A metric and the dimensions it can be broken down by."""

    dimensions: list[Dimension] = []


class DimensionsOut(BaseModel):
    metrics: list[str]
    dimensions: list[Dimension]


class Health(BaseModel):
    status: Literal["ok", "ready"]
    checks: dict[str, str] = {}
