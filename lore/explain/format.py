"""Human-readable formatting of numbers and values, shared by the CLI, answers and adapters."""

from __future__ import annotations

import sqlglot
from sqlglot.errors import SqlglotError

from lore.types import ColumnMeta, Scalar


def format_number(value: float | int, fmt: str | None = None, unit: str | None = None) -> str:
    """Format a number for people, by the column's format hint.

    >>> format_number(1234567.891)
    '1,234,568'
    >>> format_number(12.3456)
    '12.35'
    >>> format_number(0.0734, "percent")
    '7.34%'
    >>> format_number(1520.5, "currency", "USD")
    '$1,520.50'
    >>> format_number(42, "integer")
    '42'
    >>> format_number(0.000123)
    '0.000123'
    """
    if fmt == "percent":
        return f"{value * 100:,.2f}%"
    if fmt == "currency":
        symbol = "$" if (unit or "USD").upper() == "USD" else ""
        text = f"{abs(value):,.2f}" if abs(value) < 1_000_000 else f"{abs(value):,.0f}"
        return ("-" if value < 0 else "") + symbol + text + ("" if symbol else f" {unit}")
    if fmt == "integer" or (isinstance(value, int) and not isinstance(value, bool)):
        return f"{int(round(value)):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1 or value == 0:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def format_value(value: Scalar, column: ColumnMeta | None = None) -> str:
    """Format one cell.

    >>> format_value(None)
    '—'
    >>> format_value(3.5, ColumnMeta(name="x", label="X", format="percent"))
    '350.00%'
    >>> format_value("EMEA")
    'EMEA'
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return format_number(value, column.format if column else None, column.unit if column else None)
    return str(value)


def pretty_sql(sql: str, dialect: str = "duckdb") -> str:
    """SQL laid out for reading (the same tree; what runs is the guard's exact text).

    >>> print(pretty_sql('SELECT "a" FROM "t" LIMIT 5'))
    SELECT
      "a"
    FROM "t"
    LIMIT 5
    """
    try:
        return sqlglot.transpile(sql, read=dialect, write=dialect, pretty=True)[0]
    except (SqlglotError, IndexError):
        return sql
