"""Questions the data cannot answer however they are planned: causes ("why did sales drop"), forecasts ("what
will revenue be next quarter") and statistical tests ("is the difference significant"). Each is asked back with
the reason and the closest question the data does answer, never answered with a number that looks like a reply.
"""

from __future__ import annotations

import re

from lore.plan.offline.env import Env
from lore.plan.offline.parse import Parse
from lore.plan.offline.text import tokens_in
from lore.types import PlanOutcome

#: a question about causes
CAUSE_RE = re.compile(r"\b(?:why|how\s+come|what\s+(?:caused|causes|drove|drives|explains|is\s+behind|was\s+behind|led\s+to)|"
                      r"what(?:['’]s|\s+is|\s+was|\s+are|\s+were)\s+(?:driving|causing|behind|pushing|dragging)|"
                      r"reasons?\s+(?:for|behind|why)|root\s+causes?|explain\s+(?:why|the\s+(?:drop|rise|fall|increase|"
                      r"decrease|change|dip|spike)))\b", re.I)
#: a question about the future
FORECAST_RE = re.compile(r"\b(?:forecast\w*|predict\w*|projected|projections?|extrapolat\w*|"
                         r"(?:project|estimate|guess|anticipate)(?:ing)?\s+(?:how|what|whether|when)|next\s+(?:day|week|month|quarter|"
                         r"year|\d+\s+(?:days|weeks|months|quarters|years))(?!['\u2019]s)|will\s+(?!you\b|u\b)(?:\w+\s+){0,5}?(?:be|reach|hit|"
                         r"grow|fall|drop|look|end\s+up|have|get|make|sell|earn|cost|generate|need|go\s+through|come\s+in|land|use|spend|pay|lose|do|"
                         r"achieve|post|book|write|close|ship|deliver|produce|"
                         r"bring\s+in|take\s+in|see)|going\s+to\s+(?:be|reach|hit|look|cost|end\s+up|come\s+in|land|grow|fall|drop)|expected\s+to\s+(?:be|reach|hit|grow))\b",
                         re.I)
#: a statistical test (also misspelt, "statisticaly", or said plainly: "or is that just noise")
TEST_RE = re.compile(r"\b(?:statistic(?:al|all)?l?y|statistical\s+tests?|significance|(?:just|only|pure|random)\s+"
                     r"(?:noise|chance|luck)|(?:due|down)\s+to\s+(?:chance|luck)|a\s+fluke|p[\s-]?values?|t[\s-]tests?|chi[\s-]squared?|confidence\s+"
                     r"intervals?|standard\s+errors?|hypothesis\s+tests?|z[\s-]tests?|anova)\b", re.I)
#: "is SF's order value significantly higher than Chicago's?": a yes/no question about significance is a test
#: ("which stores grew significantly" is a loose word, not one)
_YES_NO_RE = re.compile(r"^\W*(?:is|are|was|were|does|do|did|has|have)\b", re.I)
_SIGNIFICANTLY_RE = re.compile(r"\bsignificant(?:ly)?\b", re.I)
#: what each kind of question gets back
_WHY = {
    "cause": "I can't say why: the data records what happened, not its causes.",
    "forecast": "I don't forecast: I answer from the data recorded{until}.",
    "test": "I don't run statistical tests: I compute the governed metrics, not their significance.",
}


def beyond_the_data(p: Parse, env: Env) -> None:
    """Causes, forecasts and statistical tests: asked back, with the closest answerable question."""
    d, tokens = p.draft, p.tokens
    # (words of a name the layer gives: "forecast revenue" may be a metric; a word that only echoes a metric's own
    # name elsewhere, "value" in "give me a p-value" after "order value", is not)
    matched = {i for m in p.metric_matches for i in range(m.start, m.end)}
    named = {i for i, why in p.used.items() if why in ("dimension", "filter", "value") or (why == "metric" and i in matched)}
    tests = (("test", TEST_RE), ("test", _SIGNIFICANTLY_RE)) if _YES_NO_RE.match(p.question) else (("test", TEST_RE),)
    def ends(m: re.Match[str]) -> set[int]:  # ("will cat losses come in": the metric between is no forecast word)
        span = sorted(tokens_in(tokens, m.span()))
        return {span[0], span[-1]} if span else set()

    for kind, pattern in (("cause", CAUSE_RE), ("forecast", FORECAST_RE), *tests):
        m = next((m for m in pattern.finditer(p.question) if not ends(m) & named), None)
        if m is not None:
            break
    else:
        return
    label = env.lex.metric_label(d.metrics[0]) if d.metrics and d.metrics[0] in env.lex.layer.metrics else None
    facts = env.lex.facts_of(d.base_metrics()) if d.metrics else []
    spans = [env.bounds[f] for f in facts if f in env.bounds]
    until = f" (up to {max(b for _, b in spans)})" if spans else ""
    reason = _WHY[kind].format(until=until)
    if label is None:
        closest = "Ask about a governed metric, by any breakdown or over time."
    elif kind == "cause":
        where = _a_breakdown(p, env, facts)
        period = f" {d.time.label}" if d.time is not None and d.time.label else ""
        closest = (f"The closest I can answer is where it changed: for example “{label}{period} compared with the "
                   f"period before" + (f", by {where}”" if where else "”") + ", which shows the change in each part.")
    elif kind == "forecast":
        closest = f"The closest I can answer is the trend so far: for example “{label} by month”."
    else:
        closest = f"The closest I can answer is the numbers side by side: for example “{label} by " + (
            _a_breakdown(p, env, facts) or "month") + "”."
    p.settle(PlanOutcome(status="clarify", message=f"{reason} {closest}", suggestions=(), signals={"intent": 0.0}))


def _a_breakdown(p: Parse, env: Env, facts: list[str]) -> str | None:
    """A breakdown to show a change in: one the question names or filters on, else the first attribute the
    metric reaches that is no code."""
    d, lex = p.draft, env.lex
    for ref in [*d.dimensions, *(f.ref for f in d.filters)]:
        if not ref.startswith("metric_time"):
            return lex.label(ref.split(":")[0])
    return next((x for x in lex.reachable_dims(facts) if not re.search(r"\b(?:code|id|key)$", x)), None)
