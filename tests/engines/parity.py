"""What the engine tests compare: the questions asked of every engine, and rows equal up to order and rounding."""

from __future__ import annotations

import math

#: asked of DuckDB and of each other engine: the answers must be the same
QUESTIONS = [
    "total streaming hours by region last quarter, only premium accounts",
    "streaming hours by month this year",
    "how did streaming hours change from last month to this month in Brazil",
    "what % of streaming hours came from mobile this year",
    "top 3 genres by hours in each region",
    "how many accounts streamed more than 10 hours last month",
    "cumulative streaming hours by month this year",
    "average revenue per paying user by country",
    "which country had the biggest growth in hours year over year",
]


def same_rows(left: list, right: list) -> bool:
    """Equal up to row order and float rounding."""
    def key(row: tuple) -> tuple:
        return tuple(round(v, 6) if isinstance(v, float) else v for v in row)

    if len(left) != len(right):
        return False
    for a, b in zip(sorted(left, key=lambda r: repr(key(r))), sorted(right, key=lambda r: repr(key(r)))):
        for x, y in zip(a, b):
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True
