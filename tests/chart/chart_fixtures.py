"""Small hand-made results for the chart tests (imported by the test modules next to it)."""

from __future__ import annotations

from lore.types import ColumnMeta, ResultSet, Scalar

MONTHS = tuple(f"{y}-{m:02d}-01" for y in (2025, 2026) for m in range(1, 13))[:22]
REGIONS = ("UCAN", "EMEA", "LATAM", "APAC")
PLANS = ("basic_with_ads", "standard", "premium")
COUNTRIES = tuple(
    "US CA MX BR AR CO GB FR DE ES IT NL PL TR ZA IN JP KR AU ID".split()
)


def dim(name: str, label: str, **kw: object) -> ColumnMeta:
    return ColumnMeta(name=name, label=label, kind="dimension", **kw)  # type: ignore[arg-type]


def met(name: str, label: str, **kw: object) -> ColumnMeta:
    return ColumnMeta(name=name, label=label, kind="metric", **kw)  # type: ignore[arg-type]


HOURS = met("total_streaming_hours", "Streaming hours", unit="h", type="DOUBLE")
COST = met("cloud_cost", "Cloud cost", unit="USD", format="currency", type="DOUBLE")
UTIL = met("cpu_utilization", "CPU utilization", format="percent", type="DOUBLE")
ACCOUNTS = met("active_streaming_accounts", "Active accounts", format="integer", type="BIGINT")
REGION = dim("region", "Region", type="VARCHAR", ref="countries.region")
PLAN = dim("plan", "Plan", type="VARCHAR", ref="accounts.plan")
COUNTRY = dim("country_iso_code", "Country", type="VARCHAR")
MONTH = dim("session_date__month", "Session date", type="DATE", grain="month")


def result(columns: tuple[ColumnMeta, ...], rows: list[tuple[Scalar, ...]], **kw: object) -> ResultSet:
    return ResultSet(columns=columns, rows=tuple(rows), **kw)  # type: ignore[arg-type]
