"""The definition pass: a metric defined in the question itself, from governed metrics.

"gross margin, which is revenue minus supply cost, by month", "cost per CPU hour (cloud cost / cpu hours)",
"accuracy = 1 - (word errors / words)": the named thing is computed as the arithmetic the question gives over
metrics of the layer, as an ad hoc metric (:class:`~lore.types.AdhocMetric`), shown as ad hoc in the answer and
with lower confidence. Operands that are not metrics make the definition a clarifying question; the parts are
never answered alone.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lore.plan.catalog import find_phrases, tokenize
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Parse
from lore.plan.offline.text import tokens_in
from lore.plan.words import BUSINESS_STEMS
from lore.types import AdhocMetric, Grounding, PlanOutcome

#: what introduces a definition
_CUE = re.compile(r"(?:,\s*|\s+)(?:i\.?\s?e\.?,?|that is,?|which is|which means|meaning|defined as|calculated as|"
                  r"computed as|measured as|where\s+(?:it|that|this)\s+is|as in)\s+|\s*(?::=|=)\s*|\s*\(\s*(?=[^)]*"
                  r"(?:/|\bdivided by\b|\bminus\b|\bplus\b|\btimes\b|-|\+|\*))", re.I)
#: operators in words or signs, longest first
_OPERATORS: tuple[tuple[str, str], ...] = (
    ("divided by", "/"), ("multiplied by", "*"), ("minus", "-"), ("less", "-"), ("plus", "+"), ("times", "*"),
    ("over", "/"), ("per", "/"), ("/", "/"), ("-", "-"), ("+", "+"), ("*", "*"), ("x", "*"),
)
_OP_RE = re.compile(r"\b(divided by|multiplied by|minus|less|plus|times|over|per|x)\b|([/\-+*()])", re.I)
#: where a definition's expression ends
_END = re.compile(r"[,.;?!]|(?<!divided)(?<!multiplied)\s+(?:by|for|in|during|over the|since|split|broken|grouped|"
                  r"per\s+(?:month|week|day|year|quarter))\b", re.I)
_LEAD = re.compile(r"^(?:what(?:'s| is| was| are| were)?|show(?: me)?|give me|compute|calculate|list|the|our|my|"
                   r"where|and|also|please|can you|could you)\s+", re.I)


def read_definitions(p: Parse, env: Env) -> None:
    """Find "NAME <cue> EXPRESSION" and make NAME an ad hoc metric over the layer's metrics."""
    text = p.question
    for cue in _CUE.finditer(text):
        expr_start = cue.end()
        closing = text.find(")", expr_start) if cue.group(0).strip().startswith("(") else -1
        end_match = _END.search(text, expr_start)
        expr_end = closing if closing != -1 else (end_match.start() if end_match else len(text))
        if closing == -1 and end_match and end_match.group(0).strip() in (",",) and _unbalanced(text[expr_start:expr_end]):
            continue
        expression = text[expr_start:expr_end]
        built = _build(p, env, expression, expr_start)
        if built is None:
            continue
        expr_sql, used_metrics, expr_tokens = built
        if len(used_metrics) == 1 and not _OP_RE.search(expression):
            _alias(p, env, cue, used_metrics[0], expr_tokens)  # "... takings ..., meaning revenue"
            return
        if not used_metrics or not _OP_RE.search(expression):
            continue
        label, label_tokens = _label(p, text[:cue.start()], cue.start())
        if not label:
            continue
        name = "adhoc_" + re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40]
        if name in env.lex.layer.metrics:
            name += "_adhoc"
        d = p.draft
        d.adhoc.append(AdhocMetric(name=name, label=label, expr=expr_sql))
        d.metrics.append(name)
        d.groundings.append(Grounding(kind="metric", ref=name, phrase=text[min(cue.start(), expr_start):expr_end].strip(),
                                      source="defined in the question", score=0.8))
        d.notes.append(f"“{label}” is not a governed metric: it is computed as the question defines it, "
                       f"{' '.join(expression.split())}, from "
                       + ", ".join(env.lex.metric_label(m) for m in used_metrics) + ".")
        d.signals["adhoc"] = 0.8
        d.signals["metric_match"] = max(d.signals.get("metric_match", 0.0), 0.9)
        cue_tokens = tokens_in(p.tokens, (cue.start(), cue.end()))
        closing_tokens = tokens_in(p.tokens, (expr_end, expr_end + 1)) if closing != -1 else set()
        p.use(label_tokens | cue_tokens | expr_tokens | closing_tokens, "metric")
        # the defined name used elsewhere in the question ("transcription accuracy ..., where accuracy = ...")
        label_stems = {t.stem for t in tokenize(label)} - {"the", "of", "a", "an"}
        echoes = [m for m in p.metric_matches if any(p.tokens[i].stem in label_stems for i in range(m.start, m.end))]
        for m in echoes:
            p.use(range(m.start, m.end), "metric")
        covered = label_tokens | expr_tokens
        p.metric_matches = [m for m in p.metric_matches if not (set(range(m.start, m.end)) & covered) and m not in echoes]
        return


def _alias(p: Parse, env: Env, cue: re.Match[str], metric: str, expr_tokens: set[int]) -> None:
    """"how much takings by city, meaning revenue": the unknown word before the cue names that metric."""
    cue_tokens = tokens_in(p.tokens, (cue.start(), cue.end()))
    p.use(cue_tokens | expr_tokens, "metric")
    named = [i for i in range(min(cue_tokens | expr_tokens, default=0)) if p.tokens[i].stem in BUSINESS_STEMS
             and p.tokens[i].stem not in env.lex.catalog.vocabulary and i not in p.used]
    p.use(named, "metric")
    d = p.draft
    if metric not in d.metrics:
        d.metrics.append(metric)
        d.groundings.append(Grounding(kind="metric", ref=metric, phrase=" ".join(p.tokens[i].text for i in sorted(expr_tokens)),
                                      source="name", score=1.0))
    p.metric_matches = [m for m in p.metric_matches if not (set(range(m.start, m.end)) & expr_tokens)]
    if named:
        words = ", ".join(f"“{p.tokens[i].text}”" for i in named)
        d.notes.append(f"Read {words} as {env.lex.metric_label(metric)}, as the question says.")


def _unbalanced(text: str) -> bool:
    return text.count("(") != text.count(")")


def _build(p: Parse, env: Env, expression: str, offset: int) -> tuple[str, list[str], set[int]] | None:
    """The expression over metric names (SQL arithmetic), the metrics it uses and its tokens; None when a part is
    not a metric or a number."""
    parts: list[str] = []
    used: list[str] = []
    pos = 0
    for op in _OP_RE.finditer(expression):
        operand = expression[pos:op.start()]
        token = _operand(env, operand, used)
        if token is None:
            return None
        parts += [token] if token else []
        symbol = (op.group(1) or op.group(2)).lower()
        parts.append(next(sql for word, sql in _OPERATORS if word == symbol) if symbol not in "()" else symbol)
        pos = op.end()
    token = _operand(env, expression[pos:], used)
    if token is None:
        return None
    parts += [token] if token else []
    sql = " ".join(parts)
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError:
        return None
    allowed = (exp.Column, exp.Identifier, exp.Literal, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Paren, exp.Neg)
    if any(not isinstance(n, allowed) for n in tree.walk()):
        return None
    return tree.sql(dialect="duckdb"), used, tokens_in(p.tokens, (offset, offset + len(expression)))


def _operand(env: Env, text: str, used: list[str]) -> str | None:
    """A metric name for the words of one operand ("" for none, None when they name no metric)."""
    words = text.strip()
    if not words:
        return ""
    if re.fullmatch(r"\d+(\.\d+)?", words):
        return words
    tokens = tokenize(words)
    matches = find_phrases(tokens, env.lex.catalog.metric_index or env.lex.catalog.metric_entries)
    if len(matches) != 1:
        return None
    m = matches[0]
    leftover = [t for i, t in enumerate(tokens) if not m.start <= i < m.end
                and t.stem not in ("the", "total", "number", "of", "all", "our", "count", "sum", "amount", "and")]
    if leftover:
        return None
    used.append(m.ref)
    return m.ref


def _label(p: Parse, before: str, cue_at: int) -> tuple[str, set[int]]:
    """The name being defined: the last words before the cue (up to five, after question words)."""
    clause = re.split(r"[,;:.?!]|\bwhere\b", before)[-1]
    words = clause.strip()
    while True:
        stripped = _LEAD.sub("", words)
        if stripped == words:
            break
        words = stripped
    parts = words.split()[-5:]
    label = " ".join(parts)
    if not label or not re.search(r"[A-Za-z]", label):
        return "", set()
    start = before.rfind(parts[0]) if parts else cue_at
    return label, tokens_in(p.tokens, (start, cue_at))


def check_definition_parts(p: Parse, env: Env) -> None:
    """A definition whose parts are not all metrics was not read: if the question clearly defines something
    ("X, i.e. A / B") and no ad hoc metric came of it, ask instead of answering the parts."""
    if p.draft.adhoc:
        return
    for cue in _CUE.finditer(p.question):
        after = p.question[cue.end():cue.end() + 80]
        if re.search(r"\b(divided by|minus|plus|times|over)\b|[/*]", after) and cue.group(0).strip() not in ("(",):
            p.settle(PlanOutcome(
                status="clarify",
                message="The question defines what to compute, but I could not read every part of it as a governed "
                        "metric. Write it with the metrics' names, for example “margin, i.e. "
                        + _example(env) + "”.", suggestions=env.lex.starter_metrics(), signals={"metric_match": 0.0}))
            return


def _example(env: Env) -> str:
    names = [env.lex.metric_label(m) for m in list(env.lex.layer.metrics)[:2]]
    return " minus ".join(names) if len(names) == 2 else "A minus B"
