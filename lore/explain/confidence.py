"""The confidence score: deterministic signals combined into one number with named parts.

Each factor is in 0..1 and says how much one thing can be trusted:

- ``metric``: how the metric was found (an exact name or synonym: ~1; by
  similarity only: its score, lower when a second metric was close);
- ``coverage``: the share of the question's content words the plan explains;
- ``values``: how surely filter values were recognised (exact vs a short or
  ambiguous mention);
- ``ambiguity``: 1 unless a value or time phrase had several readings;
- ``context``: 1 for a self-contained question, lower for a follow-up that
  inherits earlier choices;
- ``execution``: 1 when the guard passed and the query ran, 0 otherwise;
- ``result``: 1 for a non-empty, complete result; lower when empty or truncated (an empty result is also
  capped at ``EMPTY_CAP``);
- ``cap`` (not a weight): present when a content word of the question was not used by the plan; the score
  never exceeds it, whatever the other factors say.

The raw score is a weighted geometric mean (one weak factor pulls it down).
:func:`calibrate` maps it through a monotone table fitted on the golden set
(``lore eval calibrate REPORT.json --write`` writes ``lore/explain/calibration.json``,
read once at first use by :func:`calibration_table`); identity while no fit is
versioned with the code.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources

from lore.types import Signals

#: how much each factor counts in the geometric mean
WEIGHTS: dict[str, float] = {
    "metric": 2.0,
    "coverage": 2.0,
    "values": 1.0,
    "ambiguity": 1.0,
    "context": 0.5,
    "execution": 3.0,
    "result": 1.0,
    "agreement": 1.0,
    "example": 1.0,
    "feedback": 1.5,
}

#: the most confidence an answer computed from a metric defined in the question (not a governed one) gets
ADHOC_CAP = 0.79
#: the execution factor of an answer whose first plan failed when it ran and was planned again
RETRIED_EXECUTION = 0.8
#: the most an empty result can score: "no rows" is right sometimes, and wrong as often as a plan misread what
#: the question meant (a breakdown too fine, a threshold at the wrong grain); never "high"
EMPTY_CAP = 0.7

#: isotonic calibration points (raw -> calibrated): identity, used while no fitted table ships
CALIBRATION: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 1.0))
#: the fitted table, next to this module (written by ``lore eval calibrate --write``)
CALIBRATION_FILE = "calibration.json"


def factors_from_signals(signals: Signals | Mapping[str, float], *, ran: bool, rows: int, truncated: bool,
                         followup: bool, inherited: float | None = None, retried: bool = False) -> dict[str, float]:
    """Turn planner signals and execution facts into named factors.

    ``inherited`` is the confidence of the answer a follow-up builds on: the follow-up can be no surer than it.
    ``retried``: the first plan failed when it ran and a second one was made, so execution is not clean.

    >>> f = factors_from_signals({"metric_match": 1.0, "coverage": 1.0}, ran=True, rows=4, truncated=False, followup=False)
    >>> f["metric"], f["execution"], f["result"]
    (1.0, 1.0, 1.0)
    """
    signals = signals if isinstance(signals, Signals) else Signals.model_validate(dict(signals))
    metric = signals.get("metric_match", 0.0)
    if signals.metric_margin is not None and metric < 0.95:
        metric = min(metric, 0.5 + signals.metric_margin * 3)
    coverage = signals.get("coverage", 1.0)
    values = signals.get("value_match", 1.0)
    ambiguity = min(signals.get("value_ambiguity", 1.0), signals.get("value_unreachable", 1.0),
                    signals.get("spelling", 1.0))
    out = {
        "metric": round(max(0.0, min(1.0, metric)), 4),
        "coverage": round(max(0.1, min(1.0, coverage)) ** 2, 4),
        "values": round(values, 4),
        "ambiguity": round(ambiguity, 4),
        "context": 0.9 if followup else 1.0,
        "execution": (RETRIED_EXECUTION if retried else 1.0) if ran else 0.0,
        "result": 1.0 if rows and not truncated else (0.85 if truncated else 0.45),
    }
    for extra in ("agreement", "example", "feedback"):
        if (value := signals.get(extra)) is not None:
            out[extra] = round(value, 4)
    if signals.coverage_cap is not None:  # a content word of the question was not used: the score stays below this
        out["cap"] = round(signals.coverage_cap, 4)
    if ran and not rows:
        out["cap"] = min(out.get("cap", 1.0), EMPTY_CAP)
    if signals.adhoc is not None:  # a metric the question defined itself, not a governed one: never "high"
        out["cap"] = min(out.get("cap", 1.0), ADHOC_CAP)
    if followup and inherited is not None and inherited < out.get("cap", 1.0):
        out["cap"] = round(inherited, 4)  # "break it down by store" after an unsure answer is as unsure
    return out


def raw_score(factors: Mapping[str, float]) -> float:
    """Weighted geometric mean of the factors.

    >>> raw_score({"metric": 1.0, "execution": 1.0})
    1.0
    >>> round(raw_score({"metric": 0.5, "execution": 1.0}), 3)
    0.758
    >>> raw_score({"metric": 1.0, "execution": 0.0})
    0.0
    """
    total_w = 0.0
    acc = 0.0
    for name, value in factors.items():
        if name == "cap":
            continue
        w = WEIGHTS.get(name, 1.0)
        if value <= 0:
            return 0.0
        acc += w * math.log(min(1.0, value))
        total_w += w
    return math.exp(acc / total_w) if total_w else 0.0


def calibrate(raw: float, table: Sequence[tuple[float, float]] = CALIBRATION) -> float:
    """Map a raw score through a monotone piecewise-linear table.

    >>> calibrate(0.5), calibrate(0.25, ((0, 0), (0.5, 0.2), (1, 1)))
    (0.5, 0.1)
    """
    raw = max(0.0, min(1.0, raw))
    for (x0, y0), (x1, y1) in zip(table, table[1:]):
        if x0 <= raw <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (raw - x0) / (x1 - x0)
    return table[-1][1]


def parse_calibration(text: str) -> tuple[tuple[float, float], ...]:
    """Read a calibration table from JSON: ``{"points": [[raw, calibrated], ...], ...}``.

    The points must run from raw 0 to raw 1 with strictly increasing raw scores and
    non-decreasing calibrated values in 0..1; anything else raises ``ValueError``.

    >>> parse_calibration('{"version": 1, "points": [[0, 0], [0.6, 0.4], [1, 0.9]]}')
    ((0.0, 0.0), (0.6, 0.4), (1.0, 0.9))
    >>> parse_calibration('{"points": [[0, 0.5], [1, 0.2]]}')
    Traceback (most recent call last):
    ...
    ValueError: calibrated values must not decrease
    """
    data = json.loads(text)
    raw = data.get("points") if isinstance(data, dict) else None
    if not isinstance(raw, list) or len(raw) < 2:
        raise ValueError("expected an object with at least two points")
    points: list[tuple[float, float]] = []
    for item in raw:
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item)):
            raise ValueError(f"a point must be [raw, calibrated], got {item!r}")
        points.append((float(item[0]), float(item[1])))
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    if xs[0] != 0.0 or xs[-1] != 1.0 or any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError("raw scores must increase strictly from 0 to 1")
    if any(not 0.0 <= y <= 1.0 for y in ys):
        raise ValueError("calibrated values must lie in 0..1")
    if any(b < a for a, b in zip(ys, ys[1:])):
        raise ValueError("calibrated values must not decrease")
    return tuple(points)


@functools.lru_cache(maxsize=1)
def calibration_table() -> tuple[tuple[float, float], ...]:
    """The shipped calibration table, read once at first use; identity when none ships or it is invalid."""
    try:
        text = resources.files("lore.explain").joinpath(CALIBRATION_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return CALIBRATION
    try:
        return parse_calibration(text)
    except ValueError as err:  # json.JSONDecodeError is a ValueError too
        warnings.warn(f"ignoring lore/explain/{CALIBRATION_FILE}: {err}; confidence is not calibrated",
                      RuntimeWarning, stacklevel=2)
        return CALIBRATION


def confidence(factors: Mapping[str, float], table: Sequence[tuple[float, float]] | None = None) -> float:
    """The calibrated score, rounded: ``table`` or else the shipped :func:`calibration_table`.

    A ``cap`` factor (a word of the question the plan did not use) bounds the score from above.

    >>> confidence({"metric": 0.5, "execution": 1.0}, table=((0, 0), (1, 1)))
    0.7579
    >>> confidence({"metric": 1.0, "execution": 1.0, "cap": 0.45}, table=((0, 0), (1, 1)))
    0.45
    """
    score = calibrate(raw_score(factors), calibration_table() if table is None else table)
    if "cap" in factors:
        score = min(score, factors["cap"])
    return round(score, 4)
