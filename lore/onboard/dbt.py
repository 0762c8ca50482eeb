"""Import a dbt project's MetricFlow semantic layer as a LORE semantic layer.

Four stages, each a function:

- :func:`read_project`: the project's YAML files (``semantic_models:``, ``metrics:``, ``saved_queries:``) into
  typed dbt models, every problem with its file and line;
- :func:`translate`: pure, dbt models into LORE nodes and metrics (:mod:`lore.semantic.spec`), one
  :class:`LayerFile` per dbt file, and a :class:`NotImported` note for everything LORE has no equivalent for;
- :func:`render_files`: LORE YAML text per file, the notes as comments at its top;
- :func:`write_layer` (and :func:`write_project_config`): the files on disk, all or none;
  :func:`write_examples`: the saved queries that translate to a LORE plan (:func:`query_plan`), as a seed file of
  examples (:mod:`lore.onboard.examples`) that ``lore feedback seed`` verifies.

How MetricFlow maps to LORE (docs/semantic-layer.md, "Importing a dbt semantic layer", has the whole table):

- a semantic model is a node over ``ref('model')``'s table; its primary entity is the ``primary_key``, its
  ``defaults.agg_time_dimension`` the ``time_column``; a ``foreign`` entity links ``many_to_one`` to the model
  that has the entity as ``primary`` (or ``unique``), a ``primary``/``unique`` one ``one_to_one``;
- a dimension is a column; one whose ``expr`` is not a plain column ("computed") is a column of a ``sql:`` node
  ``<model>__view`` keyed like the model and linked to it both ways;
- a measure is what a base metric aggregates; a simple metric is a base metric, a ratio or derived metric a
  derived one, an input's ``offset_window`` a time metric with ``offset:``, a cumulative metric a time metric
  with ``window:`` or ``grain_to_date:``;
- a filter becomes the base metric's ``filter:``. LORE filters a base metric on its source's own columns only,
  so a filter on another model's dimension makes the metric's source a ``sql:`` node (``<model>__view``) that
  joins that dimension in along the entities, exactly as MetricFlow joins it;
- an input's filter (a ratio's numerator, a derived metric's input) makes a helper metric: the input with the
  filter added, named ``<metric>__<alias or input>`` (or an identical metric the project already defines).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlglot import exp
from sqlglot.errors import ParseError

from lore.errors import DbtProjectError, OperatorError
from lore.semantic.compile import not_additive
from lore.semantic.load import line_at
from lore.semantic.spec import GRAINS, NAME_RE, Column, Grain, Link, Metric, Node, parse_duration
from lore.onboard.examples import DBT_SEED_FILE, SeedExample, render_seed_file
from lore.types import Filter, Frozen, OrderBy, QueryPlan, TimeWindow

#: folders of a dbt project that hold no sources of its own: build output, installed packages, logs
SKIPPED_DIRS = frozenset({"target", "dbt_packages", "logs"})
#: the top-level keys of a dbt YAML file this importer reads
DBT_KEYS = ("semantic_models", "metrics", "saved_queries")
#: keys that describe an object without changing its numbers: read by dbt's tools, not by LORE
METADATA_KEYS = frozenset({"meta", "config", "tags", "group", "docs"})
#: MetricFlow's aggregations and LORE's; percentile and median have no LORE aggregation
AGGS: Mapping[str, str] = {"sum": "sum", "count": "count", "count_distinct": "count_distinct", "average": "avg",
                           "avg": "avg", "min": "min", "max": "max", "sum_boolean": "sum"}
MAIN_SCHEMA = "main"

#: why a saved query whose filters a LORE plan cannot hold is not written as a seeded example
SAVED_QUERY_REASON = ("it is not written to the seed file of examples (examples/dbt_saved_queries.yaml): {why}; "
                      "ask it as a question and verify the answer (`lore feedback review`), or run the query below")


# --- errors ------------------------------------------------------------------------------------------------------


class _Unsupported(Exception):
    """Inside :func:`translate`: this object has no LORE equivalent (becomes a :class:`NotImported` note)."""


class _Invalid(Exception):
    """Inside :func:`translate`: the dbt project is wrong here (becomes a problem of :class:`DbtProjectError`)."""


# --- reading YAML with line numbers ------------------------------------------------------------------------------

_LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """PyYAML's safe loader (as dbt reads its files) that records the line of every mapping as ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --- the dbt side: typed MetricFlow objects ----------------------------------------------------------------------


def _as_text(value: Any) -> Any:
    """An ``expr`` written as a YAML number or boolean (``expr: 1``) as SQL text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _as_list(value: Any) -> Any:
    """A filter written as one string or a list of them, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


class DbtObject(BaseModel):
    """A MetricFlow object: its keys, and the line it starts on. Keys this importer does not know are kept in
    ``model_extra`` and reported as not imported (never dropped silently)."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    line: int | None = Field(default=None, alias=_LINE)

    def unknown_keys(self) -> list[str]:
        return sorted(k for k in (self.model_extra or {}) if k not in METADATA_KEYS)

    @property
    def disabled(self) -> bool:
        config = (self.model_extra or {}).get("config")
        return isinstance(config, dict) and config.get("enabled") is False


class DbtEntity(DbtObject):
    name: str
    type: Literal["primary", "foreign", "unique", "natural"]
    expr: str | None = None
    label: str | None = None
    description: str | None = None
    role: str | None = None

    _lower = field_validator("type", mode="before")(lambda v: v.lower() if isinstance(v, str) else v)
    _text = field_validator("expr", mode="before")(_as_text)


class DbtDimensionParams(DbtObject):
    time_granularity: str | None = None
    validity_params: dict[str, Any] | None = None


class DbtDimension(DbtObject):
    name: str
    type: Literal["categorical", "time"]
    expr: str | None = None
    label: str | None = None
    description: str | None = None
    type_params: DbtDimensionParams | None = None
    is_partition: bool = False

    _lower = field_validator("type", mode="before")(lambda v: v.lower() if isinstance(v, str) else v)
    _text = field_validator("expr", mode="before")(_as_text)


class DbtMeasure(DbtObject):
    name: str
    agg: Literal["sum", "count", "count_distinct", "average", "avg", "min", "max", "sum_boolean", "percentile",
                 "median"]
    expr: str | None = None
    label: str | None = None
    description: str | None = None
    agg_time_dimension: str | None = None
    agg_params: dict[str, Any] | None = None
    non_additive_dimension: dict[str, Any] | None = None
    create_metric: bool = False

    _lower = field_validator("agg", mode="before")(lambda v: v.lower() if isinstance(v, str) else v)
    _text = field_validator("expr", mode="before")(_as_text)


class DbtDefaults(DbtObject):
    agg_time_dimension: str | None = None


class DbtSemanticModel(DbtObject):
    name: str
    model: str
    description: str | None = None
    label: str | None = None
    defaults: DbtDefaults | None = None
    primary_entity: str | None = None
    entities: list[DbtEntity] = []
    dimensions: list[DbtDimension] = []
    measures: list[DbtMeasure] = []


class DbtMetricInput(DbtObject):
    """A metric's input: a measure (simple, cumulative) or a metric (ratio, derived), by name or as a mapping."""

    name: str
    filter: list[str] = []
    alias: str | None = None
    offset_window: str | None = None
    offset_to_grain: str | None = None
    join_to_timespine: bool = False
    fill_nulls_with: int | float | str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    _filters = field_validator("filter", mode="before")(_as_list)


class DbtCumulativeParams(DbtObject):
    window: str | None = None
    grain_to_date: str | None = None
    period_agg: str | None = None


class DbtTypeParams(DbtObject):
    measure: DbtMetricInput | None = None
    numerator: DbtMetricInput | None = None
    denominator: DbtMetricInput | None = None
    expr: str | None = None
    metrics: list[DbtMetricInput] = []
    window: str | None = None
    grain_to_date: str | None = None
    cumulative_type_params: DbtCumulativeParams | None = None
    conversion_type_params: dict[str, Any] | None = None
    #: filled in by dbt's parser in manifests: never read
    input_measures: list[Any] | None = None

    _text = field_validator("expr", mode="before")(_as_text)


class DbtMetric(DbtObject):
    name: str
    type: Literal["simple", "ratio", "derived", "cumulative", "conversion"]
    label: str | None = None
    description: str | None = None
    type_params: DbtTypeParams = DbtTypeParams()
    filter: list[str] = []
    time_granularity: str | None = None

    _lower = field_validator("type", mode="before")(lambda v: v.lower() if isinstance(v, str) else v)
    _filters = field_validator("filter", mode="before")(_as_list)


class DbtQueryParams(DbtObject):
    metrics: list[str] = []
    group_by: list[str] = []
    where: list[str] = []
    order_by: list[str] = []
    limit: int | None = None

    _where = field_validator("where", mode="before")(_as_list)


class DbtSavedQuery(DbtObject):
    name: str
    label: str | None = None
    description: str | None = None
    query_params: DbtQueryParams = DbtQueryParams()
    exports: list[dict[str, Any]] = []


# --- what crosses the stages --------------------------------------------------------------------------------------

NoteKind = Literal["file", "semantic_model", "entity", "dimension", "measure", "metric", "option", "saved_query",
                   "key"]


class NotImported(Frozen):
    """Something of the dbt project the LORE layer does not have (or has only in part), and why."""

    kind: NoteKind
    name: str
    file: str
    line: int | None = None
    reason: str
    #: for a saved query: the ``lore sql`` command that runs it
    detail: str | None = None

    def render(self) -> str:
        """``file:line: kind name: reason``.

        >>> NotImported(kind="metric", name="x", file="m.yml", line=3, reason="no equivalent").render()
        'm.yml:3: metric x: no equivalent'
        """
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.kind.replace('_', ' ')} {self.name}: {self.reason}"


class DbtFile(Frozen):
    """One YAML file of the project with semantic-layer keys, parsed."""

    path: str
    semantic_models: tuple[DbtSemanticModel, ...] = ()
    metrics: tuple[DbtMetric, ...] = ()
    saved_queries: tuple[DbtSavedQuery, ...] = ()
    #: found while reading (a key of the latest YAML spec, a key not understood)
    notes: tuple[NotImported, ...] = ()


class DbtProject(Frozen):
    """A dbt project's semantic layer as read from its files."""

    root: str
    name: str | None = None
    files: tuple[DbtFile, ...] = ()
    #: a model's relation name when its YAML sets ``config: {alias: ...}``
    aliases: dict[str, str] = {}


class ImportedQuery(Frozen):
    """A saved query as a LORE semantic query (metrics, dimension references, filters)."""

    name: str
    question: str
    file: str
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    limit: int | None = None
    #: the same query as a LORE plan, written to the seed file of examples (None: a filter a plan cannot hold)
    plan: QueryPlan | None = None

    def command(self, project: str = "DIR") -> str:
        """The ``lore sql`` command that runs it.

        >>> q = ImportedQuery(name="q", question="q", file="f", metrics=("revenue",), dimensions=("metric_time:month",))
        >>> q.command()
        'lore sql --project DIR --metric revenue --dimension metric_time:month --run'
        """
        words = ["lore", "sql", "--project", project]
        words += [w for m in self.metrics for w in ("--metric", m)]
        words += [w for d in self.dimensions for w in ("--dimension", d)]
        words += [w for f in self.filters for w in ("--filter", f)]
        words += [w for o in self.order_by for w in ("--order-by", o)]
        words += ["--limit", str(self.limit)] if self.limit else []
        return " ".join(shell_word(w) for w in words) + " --run"


def shell_word(word: str) -> str:
    """A word quoted for a POSIX shell, in double quotes when that reads better.

    >>> print(shell_word("revenue"), shell_word("metric_time >= '2020-01-01'"))
    revenue "metric_time >= '2020-01-01'"
    """
    quoted = shlex.quote(word)
    if quoted != word and not any(c in word for c in '"$`\\!'):
        return f'"{word}"'
    return quoted


_COMPARISONS: Mapping[type[exp.Expression], str] = {exp.EQ: "=", exp.NEQ: "!=", exp.GT: ">", exp.GTE: ">=",
                                                    exp.LT: "<", exp.LTE: "<="}
_FLIPPED = {"=": "=", "!=": "!=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}


def query_plan(query: ImportedQuery) -> QueryPlan:
    """The LORE plan of a translated saved query (for the seed file of examples).

    Each filter must be a reference compared with literals (``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``IN``,
    ``BETWEEN``, ``LIKE``, ``IS [NOT] NULL``, or a boolean dimension alone); bounds on ``metric_time`` become the
    plan's time window, as the planner writes one. Raises ValueError saying which filter a plan cannot hold.

    >>> q = ImportedQuery(name="q", question="q", file="f", metrics=("order_total",), dimensions=("locations.name",),
    ...                   filters=("metric_time >= '2020-01-01'", "orders__view.is_large"), order_by=("-order_total",))
    >>> p = query_plan(q)
    >>> p.time.start, [f.describe() for f in p.filters], p.order_by[0].descending
    (datetime.date(2020, 1, 1), ['orders__view.is_large = True'], True)
    """
    filters: list[Filter] = []
    start = end = None
    for text in query.filters:
        f = _structured_filter(text)
        if f.ref == "metric_time" and f.op in (">=", "<=", "between", "=") and _dates(f.values):
            lo, hi = {">=": (f.values[0], None), "<=": (None, f.values[0]), "=": (f.values[0], f.values[0])}.get(
                f.op, (f.values[0], f.values[-1]))
            start = max(filter(None, (start, lo)), default=None)
            end = min(filter(None, (end, hi)), default=None)
            continue
        filters.append(f)
    time = None
    if start or end:
        label = (f"{start} to {end}" if start and end else f"from {start}" if start else f"until {end}")
        time = TimeWindow(start=date.fromisoformat(start) if start else None,
                          end=date.fromisoformat(end) if end else None, label=label)
    order = tuple(OrderBy(ref=o.lstrip("-"), descending=o.startswith("-")) for o in query.order_by)
    return QueryPlan(metrics=query.metrics, dimensions=query.dimensions, filters=tuple(filters), time=time,
                     order_by=order, limit=query.limit, planner="dbt")


def _dates(values: Sequence[Any]) -> bool:
    try:
        return bool(values) and all(isinstance(v, str) and date.fromisoformat(v) for v in values)
    except ValueError:
        return False


def _structured_filter(text: str) -> Filter:
    """A saved query's filter (SQL over LORE references) as a structured :class:`Filter`; ValueError otherwise.

    >>> _structured_filter("customers.segment IN ('a', 'b')").describe()
    'customers.segment in (a, b)'
    >>> _structured_filter("NOT orders__view.is_large").values
    (False,)
    """
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except ParseError:
        raise ValueError(f"its filter {text!r} is not SQL LORE can read") from None
    while isinstance(tree, exp.Paren):
        tree = tree.this
    negated = isinstance(tree, exp.Not)
    if negated:
        tree = tree.this
        while isinstance(tree, exp.Paren):
            tree = tree.this
    if isinstance(tree, exp.Column) and not negated:
        return Filter(ref=_ref(tree, text), values=(True,))
    if isinstance(tree, exp.Column):
        return Filter(ref=_ref(tree, text), values=(False,))
    if isinstance(tree, exp.In) and not tree.args.get("query"):
        return Filter(ref=_ref(tree.this, text), op="not_in" if negated else "in",
                      values=tuple(_value(v, text) for v in tree.expressions))
    if isinstance(tree, exp.Is) and isinstance(tree.expression, exp.Null):
        return Filter(ref=_ref(tree.this, text), op="is_not_null" if negated else "is_null")
    if negated:
        raise ValueError(f"its filter {text!r} negates more than a list, a boolean or a null test")
    if isinstance(tree, exp.Between):
        return Filter(ref=_ref(tree.this, text), op="between",
                      values=(_value(tree.args["low"], text), _value(tree.args["high"], text)))
    if isinstance(tree, exp.Like):
        return Filter(ref=_ref(tree.this, text), op="like", values=(_value(tree.expression, text),))
    op = _COMPARISONS.get(type(tree))
    if op is not None:
        left, right = tree.this, tree.expression
        if not isinstance(left, exp.Column) and isinstance(right, exp.Column):
            left, right, op = right, left, _FLIPPED[op]
        return Filter(ref=_ref(left, text), op=op, values=(_value(right, text),))  # type: ignore[arg-type]
    raise ValueError(f"its filter {text!r} is not a reference compared with values")


def _ref(node: exp.Expression, text: str) -> str:
    if not isinstance(node, exp.Column):
        raise ValueError(f"its filter {text!r} compares an expression, not a reference")
    return f"{node.table}.{node.name}" if node.table else node.name


def _value(node: exp.Expression, text: str) -> Any:
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return -_value(node.this, text)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        number = float(node.this)
        return int(number) if number.is_integer() and "." not in node.this else number
    raise ValueError(f"its filter {text!r} compares with something other than values")


class LayerFile(Frozen):
    """One file of the LORE layer: what one dbt file became."""

    name: str
    dbt_file: str
    sources: tuple[Node, ...] = ()
    dimensions: tuple[Node, ...] = ()
    metrics: tuple[Metric, ...] = ()
    not_imported: tuple[NotImported, ...] = ()


class ImportCounts(Frozen):
    semantic_models: int = 0
    semantic_models_imported: int = 0
    nodes: int = 0
    views: int = 0
    links: int = 0
    metrics: int = 0
    metrics_imported: int = 0
    helper_metrics: int = 0
    saved_queries: int = 0


class Translation(Frozen):
    """The LORE layer a dbt project translates to, with everything not imported."""

    project: str | None = None
    warehouse_schema: str = MAIN_SCHEMA
    files: tuple[LayerFile, ...] = ()
    not_imported: tuple[NotImported, ...] = ()
    queries: tuple[ImportedQuery, ...] = ()
    counts: ImportCounts = ImportCounts()


# --- stage 1: reading the project ---------------------------------------------------------------------------------


def project_files(root: Path) -> list[Path]:
    """The YAML files of a dbt project, in path order, leaving out build output, packages, logs and hidden folders."""
    if root.is_file():
        return [root]
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        if any(p in SKIPPED_DIRS or p.startswith(".") for p in rel[:-1]):
            continue
        out.append(path)
    return out


def _validation_problems(err: ValidationError, raw: Any, where: str, what: str) -> list[str]:
    return [f"{where}:{line_at(raw, e['loc']) or '?'}: {what}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in err.errors()]


def _unknown_key_notes(obj: DbtObject, kind: NoteKind, name: str, file: str) -> Iterator[NotImported]:
    """Keys of ``obj`` and its nested objects that this importer does not read."""
    for key in obj.unknown_keys():
        yield NotImported(kind="key", name=f"{name}.{key}", file=file, line=obj.line,
                          reason=f"the key '{key}' of {kind.replace('_', ' ')} '{name}' is not one this importer "
                                 "reads; it was left out")
    for field_name, value in obj:
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, DbtObject):
                label = getattr(child, "name", None) or field_name
                yield from _unknown_key_notes(child, kind, f"{name}.{label}", file)


def read_project(path: Path) -> DbtProject:
    """Read the semantic-layer YAML of the dbt project at ``path`` (a folder, or one YAML file).

    Every YAML file under it is read except those in ``target/``, ``dbt_packages/``, ``logs/`` and hidden folders;
    files without ``semantic_models:``, ``metrics:`` or ``saved_queries:`` are ignored. Raises
    :class:`DbtProjectError` listing every problem (YAML errors and malformed objects, with file and line).
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise OperatorError(f"No dbt project at {root}: the path does not exist",
                            hint="Pass the folder that holds dbt_project.yml (or one YAML file of semantic models).")
    base = root if root.is_dir() else root.parent
    problems: list[str] = []
    files: list[DbtFile] = []
    aliases: dict[str, str] = {}
    name: str | None = None
    for file in project_files(root):
        rel = file.relative_to(base).as_posix()
        try:
            data = yaml.load(file.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 - a SafeLoader
        except UnicodeDecodeError:
            problems.append(f"{rel}: not UTF-8 text")
            continue
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            problems.append(f"{rel}:{mark.line + 1 if mark else '?'}: malformed YAML: {problem}")
            continue
        if not isinstance(data, dict):
            continue
        if file.name == "dbt_project.yml" and isinstance(data.get("name"), str):
            name = data["name"]
        notes: list[NotImported] = []
        for entry in data.get("models") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            config = entry.get("config")
            if isinstance(config, dict) and isinstance(config.get("alias"), str):
                aliases[entry["name"]] = config["alias"]
            if "semantic_model" in entry or "metrics" in entry:
                notes.append(NotImported(kind="semantic_model", name=entry["name"], file=rel, line=entry.get(_LINE),
                                         reason="written in dbt's latest YAML spec (semantic_model: on a model), "
                                                "which this importer does not read yet; it reads top-level "
                                                "semantic_models: and metrics: (the legacy spec)"))
        if not any(k in data for k in DBT_KEYS) and not notes:
            continue
        parsed: dict[str, list[Any]] = {k: [] for k in DBT_KEYS}
        for key, model, what in (("semantic_models", DbtSemanticModel, "semantic model"),
                                 ("metrics", DbtMetric, "metric"), ("saved_queries", DbtSavedQuery, "saved query")):
            items = data.get(key) or []
            if not isinstance(items, list):
                problems.append(f"{rel}:{data.get(_LINE, 1)}: '{key}' must be a list")
                continue
            for i, raw in enumerate(items):
                if not isinstance(raw, dict):
                    problems.append(f"{rel}: {key}[{i}] must be a mapping")
                    continue
                label = f"{what} '{raw.get('name', f'{key}[{i}]')}'"
                try:
                    obj = model.model_validate(raw)
                except ValidationError as err:
                    problems += _validation_problems(err, raw, rel, label)
                    continue
                parsed[key].append(obj)
                notes += _unknown_key_notes(obj, "semantic_model" if key == "semantic_models" else
                                            "metric" if key == "metrics" else "saved_query", obj.name, rel)
        files.append(DbtFile(path=rel, semantic_models=tuple(parsed["semantic_models"]),
                             metrics=tuple(parsed["metrics"]), saved_queries=tuple(parsed["saved_queries"]),
                             notes=tuple(notes)))
    if problems:
        raise DbtProjectError(problems)
    if not any(f.semantic_models or f.metrics for f in files):
        latest = [n for f in files for n in f.notes if n.kind == "semantic_model"]
        if latest:
            raise DbtProjectError([n.render() for n in latest],
                                  hint="This importer reads the legacy spec (top-level semantic_models: and "
                                       "metrics:); dbt's latest YAML spec is not read yet.")
        raise DbtProjectError([f"{root}: no YAML file here has semantic_models: or metrics:"],
                              hint="Pass the dbt project that defines the semantic layer (the folder holding "
                                   "dbt_project.yml); files under target/, dbt_packages/ and logs/ are not read.")
    return DbtProject(root=str(root), name=name, files=tuple(files), aliases=aliases)


# --- stage 2: translating ----------------------------------------------------------------------------------------


def readable(name: str) -> str:
    """A label from a name.

    >>> readable("customers_with_orders"), readable("order_id")
    ('customers with orders', 'order id')
    """
    return " ".join(name.replace("__", " ").replace("_", " ").split())


def _entity_label(name: str) -> str:
    """What one row keyed by an entity is called: ``order_id`` -> "order".

    >>> _entity_label("order_id"), _entity_label("customer"), _entity_label("order_item_key")
    ('order', 'customer', 'order item')
    """
    return readable(re.sub(r"_(id|key|uuid|pk)$", "", name))


def _grains(granularity: str | None) -> tuple[tuple[Grain, ...], str | None]:
    """The LORE grains of a time dimension of ``time_granularity``: that grain and coarser; a note for grains
    finer than a day (LORE's finest) or names LORE has not.

    >>> _grains("month"), _grains("hour")[0] == tuple(GRAINS)
    ((('month', 'quarter', 'year'), None), True)
    """
    if granularity is None:
        return tuple(GRAINS), None  # type: ignore[return-value]
    g = granularity.lower()
    if g in GRAINS:
        return tuple(GRAINS[GRAINS.index(g):]), None  # type: ignore[return-value]
    every: tuple[Grain, ...] = tuple(GRAINS)  # type: ignore[assignment]
    if g in ("hour", "minute", "second", "millisecond", "microsecond", "nanosecond"):
        return every, f"time_granularity '{g}' is finer than a day; LORE's finest grain is day"
    return every, f"time_granularity '{g}' is a custom grain, which LORE has not; imported with every grain"


def _parse_sql(text: str) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except ParseError as err:
        raise _Unsupported(f"{text!r} does not parse as DuckDB SQL: {str(err).splitlines()[0]}") from None
    if tree is None:
        raise _Unsupported(f"{text!r} is empty")
    return tree


def _plain_column(tree: exp.Expression) -> str | None:
    """The column's name when ``tree`` is one unqualified column that LORE can name."""
    if isinstance(tree, exp.Column) and not tree.table and isinstance(tree.this, exp.Identifier):
        return tree.name if NAME_RE.match(tree.name) else None
    return None


def _date_of(tree: exp.Expression) -> str | None:
    """The column under a truncation or a cast to a date (``date_trunc('day', ordered_at)``, ``ordered_at::date``):
    LORE outputs time attributes as dates truncated to the grain asked, so it is that column."""
    if isinstance(tree, (exp.DateTrunc, exp.TimestampTrunc, exp.DatetimeTrunc, exp.Date, exp.TsOrDsToDate)):
        return _plain_column(tree.this)
    if isinstance(tree, (exp.Cast, exp.TryCast)) and tree.to.is_type("date", "timestamp", "datetime"):
        return _plain_column(tree.this)
    return None


def _qualified(tree: exp.Expression, alias: str) -> exp.Expression:
    """``tree`` with its unqualified columns qualified by ``alias``."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table:
            return exp.Column(this=node.this.copy(), table=exp.to_identifier(alias))
        return node

    return tree.copy().transform(fix)


def _columns_of(tree: exp.Expression) -> set[str]:
    return {c.name for c in tree.find_all(exp.Column)}


_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)


@dataclass(frozen=True)
class _Call:
    """A MetricFlow reference: ``Dimension('customer__region')``, ``TimeDimension('metric_time', 'month')``,
    ``Entity('customer')``, with ``.grain('month')``, ``.date_part('year')``, ``.descending(True)``."""

    kind: str
    name: str
    grain: str | None = None
    date_part: str | None = None
    descending: bool = False

    @property
    def parts(self) -> tuple[tuple[str, ...], str]:
        """(entity path, dimension or entity name)."""
        *path, last = self.name.split("__")
        return tuple(path), last


#: a ``{{ Dimension(...) }}`` or ``ref(...)`` longer than this is not one (and is never handed to the parser)
_MAX_CALL = 500


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        raise _Unsupported(f"{ast.unparse(node)!r} is not a literal") from None


def parse_call(text: str) -> _Call:
    """Read one MetricFlow reference (the text of a ``{{ ... }}`` or a ``group_by`` item). It is read as a Python
    expression tree, never evaluated.

    >>> parse_call("TimeDimension('metric_time', 'month')")
    _Call(kind='TimeDimension', name='metric_time', grain='month', date_part=None, descending=False)
    >>> parse_call(" Dimension('customer__region').grain('week') ").grain
    'week'
    """
    if len(text) > _MAX_CALL:
        raise _Unsupported(f"a reference of {len(text):,} characters is not a MetricFlow reference")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _Unsupported(f"{text.strip()!r} is not a MetricFlow reference") from None
    methods: dict[str, Any] = {}
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        methods[node.func.attr] = _literal(node.args[0]) if node.args else True
        node = node.func.value
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise _Unsupported(f"{text.strip()!r} is not a MetricFlow reference")
    kind = node.func.id
    args = [_literal(a) for a in node.args]
    kwargs = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
    if kind not in ("Dimension", "TimeDimension", "Entity", "Metric") or not args or not isinstance(args[0], str):
        raise _Unsupported(f"{text.strip()!r}: only Dimension, TimeDimension and Entity references are read")
    unknown = set(methods) - {"grain", "date_part", "descending"}
    if unknown:
        raise _Unsupported(f"{text.strip()!r}: .{sorted(unknown)[0]}() is not read")
    name = args[0]
    path = kwargs.pop("entity_path", None)
    if path:
        name = "__".join([*path, name])
    grain = methods.get("grain") or kwargs.pop("time_granularity_name", None) or kwargs.pop("grain", None)
    if len(args) > 1:
        grain = args[1]
    date_part = methods.get("date_part") or kwargs.pop("date_part_name", None)
    return _Call(kind=kind, name=name, grain=grain.lower() if isinstance(grain, str) else None,
                 date_part=date_part.lower() if isinstance(date_part, str) else None,
                 descending=bool(methods.get("descending", False)))


def readable_filter(text: str) -> str:
    """A filter with its references as plain names, for labels and descriptions.

    >>> readable_filter("{{ Dimension('product__is_food_item') }} = true")
    'product is food item = true'
    """
    def name(m: re.Match[str]) -> str:
        try:
            call = parse_call(m.group(1))
        except _Unsupported:
            return m.group(0)
        return readable(call.name) + (f" ({call.grain})" if call.grain and call.grain != "day" else "")

    return " ".join(_TEMPLATE.sub(name, text).split())


def _model_table(model: str, aliases: Mapping[str, str]) -> str:
    """The relation a semantic model's ``model:`` names.

    >>> _model_table("ref('orders')", {}), _model_table('ref("pkg", "orders")', {}), _model_table("ref('o', v=2)", {})
    ('orders', 'orders', 'o_v2')
    """
    call = parse_call_like(model)
    if call is None:
        raise _Invalid(f"model: {model!r} is not ref('a_model')")
    args, kwargs = call
    name = args[-1]
    version = kwargs.get("v", kwargs.get("version"))
    if version is not None:
        return f"{name}_v{version}"
    return aliases.get(name, name)


def parse_call_like(text: str) -> tuple[list[str], dict[str, Any]] | None:
    """The arguments of ``ref(...)``, or None when ``text`` is not a ``ref`` call with string arguments."""
    if len(text) > _MAX_CALL:
        return None
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ref" and node.args):
        return None
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None
    if not all(isinstance(a, str) for a in args) or len(args) > 2:
        return None
    return args, kwargs


@dataclass
class _Entity:
    name: str
    type: str
    expr: exp.Expression
    column: str | None
    label: str | None
    description: str | None


@dataclass
class _Dim:
    name: str
    kind: Literal["categorical", "time"]
    expr: exp.Expression
    #: the LORE column: the physical column, or (computed) the column of the model's view
    column: str
    computed: bool
    grains: tuple[Grain, ...]
    label: str
    description: str


@dataclass
class _Model:
    """A semantic model resolved for LORE."""

    src: DbtSemanticModel
    file: str
    table: str
    label: str
    entities: dict[str, _Entity] = field(default_factory=dict)
    dims: dict[str, _Dim] = field(default_factory=dict)
    pk: str | None = None
    default_time: str | None = None
    #: entity names that mean "this model" in a reference (``order_id__status``)
    own: set[str] = field(default_factory=set)
    #: every column name its expressions mention (a computed column must not take one of them)
    physical: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.src.name

    @property
    def time_column(self) -> str | None:
        """The node's ``time_column``: the default time dimension when it is a plain column."""
        dim = self.dims.get(self.default_time or "")
        return dim.column if dim is not None and not dim.computed else None

    def keyed_by(self, entity: str) -> bool:
        e = self.entities.get(entity)
        return e is not None and e.type in ("primary", "unique")


@dataclass(frozen=True)
class _Join:
    """A chain of joins from a model along entities: ``((entity, target model), ...)``."""

    hops: tuple[tuple[str, str], ...]

    @property
    def alias(self) -> str:
        return "__".join(e for e, _ in self.hops)


@dataclass
class _View:
    """A ``sql:`` node over a model: its computed dimensions, the dimensions its metrics' filters join in, and
    (for metrics dated by another time dimension) its own time column."""

    name: str
    model: str
    time_dim: str | None
    main: bool
    has_metrics: bool = False
    #: view column -> (join, the dimension's expression qualified with the join's alias)
    joined: dict[str, tuple[_Join, exp.Expression]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Base:
    measure: str
    filters: tuple[str, ...]


@dataclass(frozen=True)
class _Derived:
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class _TimeOf:
    base: str


_Recipe = _Base | _Derived | _TimeOf


def _norm_filter(text: str) -> str:
    return " ".join(text.split())


class _Translator:
    """One translation: built, run and dropped by :func:`translate` (nothing here outlives the call)."""

    def __init__(self, project: DbtProject, schema: str) -> None:
        self.project = project
        self.schema = schema
        self.problems: list[str] = []
        self.notes: list[NotImported] = []
        self.models: dict[str, _Model] = {}
        self.measures: dict[str, tuple[_Model, DbtMeasure]] = {}
        self.bad_measures: dict[str, str] = {}
        self.disabled_measures: set[str] = set()
        self.views: dict[tuple[str, str | None], _View] = {}
        self.metrics: dict[str, Metric] = {}
        self.recipes: dict[str, _Recipe] = {}
        self.by_recipe: dict[_Base, str] = {}
        self.metric_file: dict[str, str] = {}
        self.dbt_metrics: dict[str, tuple[DbtMetric, str]] = {}
        self.lore_name: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.helpers: set[str] = set()
        self.queries: list[ImportedQuery] = []

    # -- helpers ------------------------------------------------------------------------------------------------

    def note(self, kind: NoteKind, name: str, file: str, line: int | None, reason: str,
             detail: str | None = None) -> None:
        self.notes.append(NotImported(kind=kind, name=name, file=file, line=line, reason=reason, detail=detail))

    def table(self, name: str) -> str:
        return name if self.schema.lower() == MAIN_SCHEMA else f"{self.schema}.{name}"

    def table_expr(self, name: str, alias: str) -> exp.Table:
        db = None if self.schema.lower() == MAIN_SCHEMA else self.schema
        return exp.table_(name, db=db, alias=alias)

    def fresh(self, name: str) -> str:
        taken = set(self.metrics) | set(self.dbt_metrics)
        if name not in taken:
            return name
        n = 2
        while f"{name}_{n}" in taken:
            n += 1
        return f"{name}_{n}"

    # -- semantic models --------------------------------------------------------------------------------------

    def index_models(self) -> None:
        for file in self.project.files:
            self.notes += file.notes
            for sm in file.semantic_models:
                where = f"{file.path}:{sm.line or '?'}"
                if sm.disabled:
                    self.note("semantic_model", sm.name, file.path, sm.line, "disabled (config: enabled: false)")
                    self.disabled_measures |= {m.name for m in sm.measures}
                    continue
                if not NAME_RE.match(sm.name):
                    self.problems.append(f"{where}: semantic model '{sm.name}': a name must be letters, digits and "
                                         "underscores")
                    continue
                if sm.name in self.models:
                    self.problems.append(f"{where}: semantic model '{sm.name}' is defined twice (first in "
                                         f"{self.models[sm.name].file})")
                    continue
                try:
                    table = _model_table(sm.model, self.project.aliases)
                except _Invalid as err:
                    self.problems.append(f"{where}: semantic model '{sm.name}': {err}")
                    continue
                model = self._model(sm, file.path, self.table(table))
                self.models[sm.name] = model
                for measure in sm.measures:
                    if measure.name in self.measures:
                        self.problems.append(f"{file.path}:{measure.line or '?'}: measure '{measure.name}' is defined "
                                             f"twice (also in semantic model '{self.measures[measure.name][0].name}'); "
                                             "measure names are unique in a project")
                        continue
                    self.measures[measure.name] = (model, measure)
                    self._check_measure(model, measure)

    def _model(self, sm: DbtSemanticModel, file: str, table: str) -> _Model:
        primary = next((e for e in sm.entities if e.type == "primary"), None)
        label = sm.label or (_entity_label(primary.name) if primary else readable(sm.name))
        model = _Model(src=sm, file=file, table=table, label=label)
        for e in sm.entities:
            try:
                tree = _parse_sql(e.expr or e.name)
            except _Unsupported as err:
                self.note("entity", f"{sm.name}.{e.name}", file, e.line, f"its expr {err}; no join uses it")
                continue
            model.entities[e.name] = _Entity(e.name, e.type, tree, _plain_column(tree), e.label, e.description)
            model.physical |= _columns_of(tree)
            if e.type in ("primary", "unique", "natural"):
                model.own.add(e.name)
        if sm.primary_entity:
            model.own.add(sm.primary_entity)
        if primary is not None and primary.name in model.entities:
            model.pk = model.entities[primary.name].column
            if model.pk is None:
                self.note("entity", f"{sm.name}.{primary.name}", file, primary.line,
                          "the primary entity is an expression, not a column, and a LORE primary_key lists columns: "
                          f"the node has no primary key, so nothing can be keyed like {sm.name} (its computed "
                          "dimensions, and metrics that filter on other models' dimensions, are not imported)")
        for m in sm.measures:
            if m.expr:
                try:
                    model.physical |= _columns_of(_parse_sql(m.expr))
                except _Unsupported:
                    pass
        dims = []
        for d in sm.dimensions:
            try:
                tree = _parse_sql(d.expr or d.name)
            except _Unsupported as err:
                self.note("dimension", f"{sm.name}.{d.name}", file, d.line, f"its expr {err}")
                continue
            column = _plain_column(tree) or (_date_of(tree) if d.type == "time" else None)
            model.physical |= _columns_of(tree)
            dims.append((d, tree, column))
        used: set[str] = set()
        for d, tree, column in dims:
            granularity = d.type_params.time_granularity if d.type_params else None
            grains, grain_note = _grains(granularity) if d.type == "time" else (tuple(GRAINS), None)
            if grain_note:
                self.note("option", f"{sm.name}.{d.name}", file, d.line, grain_note)
            if d.type_params and d.type_params.validity_params:
                self.note("option", f"{sm.name}.{d.name}", file, d.line,
                          "validity_params (a slowly changing dimension's validity window) are not imported: LORE "
                          "joins have no time bounds, and no link was made to this model through its natural entity")
            computed = column is None or column in used
            if computed:
                name = d.name if d.name not in model.physical else f"{d.name}_value"
                if model.pk is None:
                    self.note("dimension", f"{sm.name}.{d.name}", file, d.line,
                              f"its expr {tree.sql(dialect='duckdb')!r} is not a column, so it needs a sql: node keyed "
                              f"like {sm.name}, and {sm.name} has no primary entity over a column")
                    continue
            else:
                name = column  # type: ignore[assignment]
            used.add(name)
            model.dims[d.name] = _Dim(name=d.name, kind=d.type, expr=tree, column=name, computed=computed,
                                      grains=grains, label=d.label or readable(d.name), description=d.description or "")
        default = sm.defaults.agg_time_dimension if sm.defaults else None
        if default is None:
            counted = Counter(m.agg_time_dimension for m in sm.measures if m.agg_time_dimension)
            default = counted.most_common(1)[0][0] if counted else None
        if default is not None:
            dim = model.dims.get(default)
            if dim is None and not any(d.name == default for d in sm.dimensions):
                self.problems.append(f"{file}:{sm.line or '?'}: semantic model '{sm.name}': agg_time_dimension "
                                     f"'{default}' is not one of its dimensions")
                default = None
            elif dim is not None and dim.kind != "time":
                self.problems.append(f"{file}:{sm.line or '?'}: semantic model '{sm.name}': agg_time_dimension "
                                     f"'{default}' is not a time dimension")
                default = None
        model.default_time = default
        return model

    def _check_measure(self, model: _Model, measure: DbtMeasure) -> None:
        where = f"{model.file}:{measure.line or '?'}"
        if measure.agg in ("percentile", "median"):
            reason = (f"agg: {measure.agg} has no LORE aggregation (LORE has sum, count, count_distinct, avg, min, "
                      "max)")
            self.bad_measures[measure.name] = reason
            self.note("measure", measure.name, model.file, measure.line, reason)
        elif measure.non_additive_dimension:
            reason = ("non_additive_dimension (a semi-additive measure, such as a balance read on the last day) has "
                      "no LORE equivalent: LORE would add up every date")
            self.bad_measures[measure.name] = reason
            self.note("measure", measure.name, model.file, measure.line, reason)
        time_dim = measure.agg_time_dimension
        if time_dim is not None:
            dim = model.dims.get(time_dim)
            if dim is None and not any(d.name == time_dim for d in model.src.dimensions):
                self.problems.append(f"{where}: measure '{measure.name}': agg_time_dimension '{time_dim}' is not a "
                                     f"dimension of semantic model '{model.name}'")
            elif dim is not None and dim.kind != "time":
                self.problems.append(f"{where}: measure '{measure.name}': agg_time_dimension '{time_dim}' is not a "
                                     "time dimension")
        elif model.default_time is None and measure.name not in self.bad_measures:
            self.note("option", measure.name, model.file, measure.line,
                      f"measure '{measure.name}' has no agg_time_dimension (and '{model.name}' no "
                      "defaults.agg_time_dimension): its metrics are imported without a time column, so they cannot "
                      "be grouped or filtered by metric_time")

    # -- links --------------------------------------------------------------------------------------------------

    def link_models(self) -> None:
        """MetricFlow's joins: a foreign entity to the model keyed by it (many to one), a primary or unique entity
        to another model keyed by it (one to one). Natural entities join through validity windows: not linked."""
        for model in self.models.values():
            links: list[tuple[str, Link]] = []
            for entity in model.entities.values():
                if entity.type == "natural":
                    continue
                for target in self.models.values():
                    if target is model or not target.keyed_by(entity.name):
                        continue
                    on = exp.EQ(this=_qualified(entity.expr, model.name),
                                expression=_qualified(target.entities[entity.name].expr, target.name))
                    card = "many_to_one" if entity.type == "foreign" else "one_to_one"
                    links.append((entity.name, Link(to=target.name, on=on.sql(dialect="duckdb"), cardinality=card,
                                                    description=f"Joined on the {readable(entity.name)} entity.")))
                if entity.type == "foreign" and not any(t is not model and t.keyed_by(entity.name)
                                                        for t in self.models.values()):
                    if any(t is not model and entity.name in t.entities and t.entities[entity.name].type == "natural"
                           for t in self.models.values()):
                        self.note("entity", f"{model.name}.{entity.name}", model.file, None,
                                  f"joins a model through its natural entity '{entity.name}' (a slowly changing "
                                  "dimension, joined within validity windows): LORE has no time-bounded joins, so "
                                  "no link was made")
            targets = Counter(link.to for _, link in links)
            model.links = [link.model_copy(update={"role": entity}) if targets[link.to] > 1 else link
                           for entity, link in links]

    # -- filters ------------------------------------------------------------------------------------------------

    def _walk(self, model: _Model, path: tuple[str, ...], dim: str, what: str) -> tuple[_Join | None, _Model]:
        """Where a reference ``path__dim`` from ``model`` lives: the model itself, or a chain of joins."""
        if not path:
            if dim in model.dims or dim in model.entities:
                return None, model
            raise _Invalid(f"{what}: '{dim}' is not a dimension of '{model.name}'; write entity__dimension "
                           "(e.g. customer__region) for another model's")
        if path == (path[0],) and path[0] in model.own and (dim in model.dims or dim in model.entities):
            return None, model
        if path[0] in model.own and len(path) > 1:
            path = path[1:]
        cur, hops = model, []
        for i, entity in enumerate(path):
            if entity not in cur.entities:
                raise _Invalid(f"{what}: semantic model '{cur.name}' has no entity '{entity}' to join on "
                               f"(its entities: {', '.join(sorted(cur.entities)) or 'none'})")
            if cur.entities[entity].type == "natural":
                raise _Unsupported(f"{what}: it joins through the natural entity '{entity}' (a slowly changing "
                                   "dimension): LORE has no time-bounded joins")
            last = i == len(path) - 1
            targets = [t for t in self.models.values() if t is not cur and t.keyed_by(entity)
                       and ((dim in t.dims or dim in t.entities) if last else path[i + 1] in t.entities)]
            if not targets and last:
                keyed = [t for t in self.models.values() if t is not cur and t.keyed_by(entity)]
                if keyed:
                    raise _Invalid(f"{what}: '{dim}' is not a dimension of "
                                   + " or ".join(f"'{t.name}' (its dimensions: {', '.join(sorted(t.dims)) or 'none'})"
                                                 for t in keyed))
            if not targets:
                natural = [t for t in self.models.values() if t is not cur and entity in t.entities
                           and t.entities[entity].type == "natural"]
                if natural:
                    raise _Unsupported(f"{what}: '{natural[0].name}' is joined through its natural entity "
                                       f"'{entity}' (a slowly changing dimension): LORE has no time-bounded joins")
                raise _Invalid(f"{what}: no semantic model keyed by entity '{entity}' has "
                               f"{'the dimension ' + repr(dim) if last else 'the entity ' + repr(path[i + 1])}")
            targets.sort(key=lambda t: (t.entities[entity].type != "primary", t.name))
            hops.append((entity, targets[0].name))
            cur = targets[0]
        return _Join(tuple(hops)), cur

    def _row_ref(self, model: _Model, call: _Call, time_dim: str | None, what: str,
                 joined: dict[str, tuple[_Join, exp.Expression]]) -> exp.Expression:
        """The row-level SQL of one reference in a metric's filter, over ``model``'s own columns; a dimension of
        another model becomes a column the view joins in (added to ``joined``)."""
        path, name = call.parts
        if call.kind == "Metric":
            raise _Unsupported(f"{what}: a filter on a metric's value (Metric(...)) has no LORE equivalent inside a "
                               "metric")
        if call.kind == "Entity":
            join, target = self._walk(model, path, name, what)
            entity = target.entities.get(name)
            if entity is None:
                raise _Invalid(f"{what}: '{target.name}' has no entity '{name}'")
            if join is None:
                return entity.expr.copy()
            column = f"{join.alias}__{name}"
            joined[column] = (join, _qualified(entity.expr, join.alias))
            return exp.column(column)
        if name == "metric_time" and not path:
            if time_dim is None:
                raise _Unsupported(f"{what}: it filters on metric_time, and its measure has no agg_time_dimension")
            join, target, dim = None, model, model.dims[time_dim]
        else:
            join, target = self._walk(model, path, name, what)
            if name not in target.dims:
                if name in target.entities and call.kind == "Dimension":
                    return self._row_ref(model, _Call("Entity", call.name), time_dim, what, joined)
                raise _Invalid(f"{what}: '{name}' is not a dimension of '{target.name}'")
            dim = target.dims[name]
        if join is None:
            tree = dim.expr.copy()
        else:
            column = f"{join.alias}__{name}"
            joined[column] = (join, _qualified(dim.expr, join.alias))
            tree = exp.column(column)
        if (call.grain or call.date_part) and dim.kind != "time":
            raise _Invalid(f"{what}: '{call.name}' is not a time dimension, so it takes no grain")
        if dim.kind == "time":
            grain = call.grain or dim.grains[0]  # unset: the dimension's own granularity, as MetricFlow reads it
            if grain != "day" and grain in GRAINS:
                tree = exp.func("DATE_TRUNC", exp.Literal.string(grain), tree, dialect="duckdb")
            elif grain == "day":
                tree = exp.Cast(this=tree, to=exp.DataType.build("DATE"))
            else:
                raise _Unsupported(f"{what}: grain '{grain}' is not a LORE grain (day, week, month, quarter, "
                                   "year)")
            if call.date_part:
                tree = exp.Extract(this=exp.var(call.date_part), expression=tree)
        return tree

    def _templated(self, text: str, what: str, ref: Any) -> str:
        """``text`` with every ``{{ ... }}`` replaced by the expression ``ref(call)`` gives, through sqlglot."""
        if "{%" in text or "{#" in text:
            raise _Unsupported(f"{what}: Jinja statements ({{% ... %}}) are not read")
        exprs: dict[str, exp.Expression] = {}

        def hole(m: re.Match[str]) -> str:
            key = f"__lore_ref_{len(exprs)}"
            exprs[key] = ref(parse_call(m.group(1)))
            return key

        source = _TEMPLATE.sub(hole, text).strip()
        tree = _parse_sql(source)

        def fill(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name in exprs:
                found = exprs[node.name].copy()
                atomic = isinstance(found, (exp.Column, exp.Func, exp.Cast, exp.Extract))
                return found if atomic else exp.Paren(this=found)
            return node

        return tree.transform(fill).sql(dialect="duckdb")

    # -- metrics ------------------------------------------------------------------------------------------------

    def view_for(self, model: _Model, time_dim: str | None) -> _View:
        main = time_dim is None or time_dim == model.default_time
        key = (model.name, None if main else time_dim)
        if key not in self.views:
            name = f"{model.name}__view" if main else f"{model.name}__by_{time_dim}"
            self.views[key] = _View(name=name, model=model.name, time_dim=model.default_time if main else time_dim,
                                    main=main)
        return self.views[key]

    def base_metric(self, name: str, recipe: _Base, *, label: str, description: str, grains: tuple[Grain, ...],
                    file: str) -> str:
        """A LORE base metric: ``recipe.measure`` aggregated, rows filtered by ``recipe.filters``."""
        model, measure = self.measures[recipe.measure]
        if recipe.measure in self.bad_measures:
            raise _Unsupported(f"its measure '{recipe.measure}' is not imported: {self.bad_measures[recipe.measure]}")
        expr_text = measure.expr if measure.expr is not None else measure.name
        tree = _parse_sql(expr_text)
        agg = AGGS[measure.agg]
        if measure.agg == "sum_boolean":
            expr_text = exp.Cast(this=exp.Paren(this=tree), to=exp.DataType.build("INTEGER")).sql(dialect="duckdb")
        elif agg == "sum" and isinstance(tree, exp.Literal) and tree.is_number and float(tree.this) == 1:
            agg, expr_text = "count", "*"  # MetricFlow's row count (sum of 1) is LORE's count: 0, not NULL, on no rows
        time_dim = measure.agg_time_dimension or model.default_time
        joined: dict[str, tuple[_Join, exp.Expression]] = {}
        conditions = []
        for text in recipe.filters:
            what = f"filter {text!r}"
            conditions.append(self._templated(text, what, lambda call, w=what: self._row_ref(model, call, time_dim,
                                                                                                w, joined)))
        source = model.name
        if joined or (time_dim is not None and time_dim != model.default_time) or \
                (time_dim is not None and model.time_column is None):
            if model.pk is None:
                why = ("its filter reads " + ", ".join(sorted(joined)) + " from another semantic model") if joined \
                    else f"it is dated by '{time_dim}'"
                raise _Unsupported(f"{why}, which LORE can do only through a sql: node keyed like '{model.name}', "
                                   f"and '{model.name}' has no primary entity over a column")
            view = self.view_for(model, time_dim)
            view.has_metrics = True
            view.joined.update(joined)
            source = view.name
        condition = None
        if conditions:
            trees = [sqlglot.parse_one(c, read="duckdb") for c in conditions]
            condition = exp.and_(*trees).sql(dialect="duckdb") if len(trees) > 1 else conditions[0]
        metric = Metric(name=name, label=label, description=description, source=source,
                        agg=agg, expr=str(expr_text), filter=condition, grains=grains)  # type: ignore[arg-type]
        self.add(metric, recipe, file)
        self.by_recipe.setdefault(recipe, name)
        return name

    def add(self, metric: Metric, recipe: _Recipe, file: str) -> None:
        self.metrics[metric.name] = metric
        self.recipes[metric.name] = recipe
        self.metric_file[metric.name] = file

    def filtered(self, src: str, filters: Sequence[str], name: str, *, label: str, description: str,
                 file: str) -> str:
        """``src`` with ``filters`` added: a metric the project already has with that definition, or a helper."""
        filters = tuple(_norm_filter(f) for f in filters)
        if not filters:
            return src
        recipe = self.recipes[src]
        metric = self.metrics[src]
        if isinstance(recipe, _Base):
            wanted = _Base(recipe.measure, tuple(dict.fromkeys(recipe.filters + filters)))
            if wanted in self.by_recipe:
                return self.by_recipe[wanted]
            made = self.base_metric(self.fresh(name), wanted, label=label, description=description,
                                    grains=metric.grains, file=file)
            self.helpers.add(made)
            return made
        new = self.fresh(name)
        if isinstance(recipe, _TimeOf):
            base = self.filtered(recipe.base, filters, f"{new}__base", label=f"{label} (base)",
                                 description=description, file=file)
            self.helpers.add(new)
            self.add(metric.model_copy(update={"name": new, "label": label, "description": description,
                                               "expr": base}), _TimeOf(base), file)
            return new
        mapping = {i: self.filtered(i, filters, f"{new}__{i}", label=f"{self.metrics[i].display}, "
                                    f"where {readable_filter(' AND '.join(filters))}",
                                    description=f"{self.metrics[i].description} Only rows where "
                                                f"{readable_filter(' AND '.join(filters))}.".strip(), file=file)
                   for i in recipe.inputs}
        tree = _renamed(_parse_sql(metric.expr), mapping)
        self.helpers.add(new)
        self.add(metric.model_copy(update={"name": new, "label": label, "description": description,
                                           "expr": tree.sql(dialect="duckdb")}),
                 _Derived(tuple(mapping.values())), file)
        return new

    def metric_input(self, parent: DbtMetric, inp: DbtMetricInput, extra: Sequence[str], file: str, role: str) -> str:
        """The LORE metric an input of ``parent`` reads (with its filter and the parent's)."""
        if inp.name in self.skipped:
            raise _Unsupported(f"its input metric '{inp.name}' is not imported")
        if inp.name not in self.lore_name:
            raise _Invalid(f"metric '{parent.name}': its {role} names metric '{inp.name}', which the project does "
                           "not define")
        if inp.offset_to_grain:
            raise _Unsupported(f"its input '{inp.alias or inp.name}' has offset_to_grain: {inp.offset_to_grain}, which "
                               "has no LORE equivalent (LORE offsets by a duration: offset_window)")
        self.input_options(f"{parent.name}.{inp.alias or inp.name}", inp, file)
        src = self.lore_name[inp.name]
        filters = [*inp.filter, *extra]
        if not filters:
            return src
        base = self.metrics[src]
        readable_f = readable_filter(" AND ".join(filters))
        return self.filtered(src, filters, f"{parent.name}__{inp.alias or inp.name}",
                             label=readable(inp.alias) if inp.alias else f"{base.display}, where {readable_f}",
                             description=f"{base.description} Only rows where {readable_f} (the {role} of "
                                         f"{parent.name}).".strip(), file=file)

    def time_metric(self, name: str, base: str, *, offset: str | None = None, window: str | None = None,
                    grain_to_date: str | None = None, label: str, description: str, grains: tuple[Grain, ...],
                    file: str) -> str:
        base_metric = self.metrics[base]
        if base_metric.time_type is not None:
            raise _Unsupported(f"it applies a time offset or window to '{base}', itself a time metric; LORE's time "
                               "metrics take a plain metric")
        if window or grain_to_date:
            why = not_additive(base_metric)
            if why is not None:
                what = f"a {window} window" if window else f"a {grain_to_date}-to-date sum"
                raise _Unsupported(f"LORE computes {what} by adding up '{base}' over dates, and '{base}' is {why}, "
                                   "which does not add up")
        for text in (offset, window):
            if text is not None:
                try:
                    parse_duration(text)
                except ValueError as err:
                    raise _Unsupported(str(err)) from None
        if grain_to_date is not None and grain_to_date not in GRAINS:
            raise _Unsupported(f"grain_to_date: {grain_to_date} is not a LORE grain (day, week, month, quarter, year)")
        metric = Metric(name=name, label=label, description=description, expr=base, offset=offset, window=window,
                        grain_to_date=grain_to_date, grains=grains)  # type: ignore[arg-type]
        self.add(metric, _TimeOf(base), file)
        return name

    def translate_metric(self, metric: DbtMetric, file: str) -> None:
        label = metric.label or readable(metric.name)
        description = " ".join((metric.description or "").split())
        grains: tuple[Grain, ...] = ()
        if metric.time_granularity:
            grains, grain_note = _grains(metric.time_granularity)
            if grain_note:
                grains = ()
                self.note("option", metric.name, file, metric.line, grain_note)
        tp = metric.type_params
        if metric.type == "simple":
            inp = tp.measure
            if inp is None:
                raise _Invalid(f"simple metric '{metric.name}' has no type_params.measure")
            self._check_measure_input(metric, inp, file)
            recipe = _Base(inp.name, tuple(_norm_filter(f) for f in [*metric.filter, *inp.filter]))
            self.lore_name[metric.name] = self.base_metric(metric.name, recipe, label=label, description=description,
                                                           grains=grains, file=file)
            return
        if metric.type == "ratio":
            if tp.numerator is None or tp.denominator is None:
                raise _Invalid(f"ratio metric '{metric.name}' needs type_params.numerator and denominator")
            num = self.metric_input(metric, tp.numerator, metric.filter, file, "numerator")
            den = self.metric_input(metric, tp.denominator, metric.filter, file, "denominator")
            self._plain_inputs(metric, [num, den])
            tree = exp.Div(this=exp.column(num), expression=exp.column(den))
            self.lore_name[metric.name] = self.derived(metric.name, tree, (num, den), label=label,
                                                       description=description, grains=grains, file=file)
            return
        if metric.type == "derived":
            self._derived(metric, label, description, grains, file)
            return
        if metric.type == "cumulative":
            self._cumulative(metric, label, description, grains, file)
            return
        raise _Unsupported("conversion metrics (a base event followed by a conversion event within a window) have "
                           "no LORE equivalent")

    def _check_measure_input(self, metric: DbtMetric, inp: DbtMetricInput, file: str) -> None:
        if inp.name in self.disabled_measures and inp.name not in self.measures:
            raise _Unsupported(f"its measure '{inp.name}' belongs to a disabled semantic model")
        if inp.name not in self.measures:
            known = sorted(self.measures)
            close = [m for m in known if inp.name in m or m in inp.name][:5]
            raise _Invalid(f"metric '{metric.name}' uses measure '{inp.name}', which no semantic model defines"
                           + (f" (did you mean {', '.join(close)}?)" if close else ""))
        self.input_options(f"{metric.name}.{inp.name}", inp, file)

    def input_options(self, name: str, inp: DbtMetricInput, file: str) -> None:
        """Note the options of an input that fill empty periods: LORE has no date spine."""
        given = (("join_to_timespine", inp.join_to_timespine), ("fill_nulls_with", inp.fill_nulls_with))
        options = [f"{key}: {str(value).lower() if isinstance(value, bool) else value}"
                   for key, value in given if value is not None and value is not False]
        if options:
            self.note("option", name, file, inp.line,
                      f"{' and '.join(options)} {'is' if len(options) == 1 else 'are'} not imported: LORE has no date "
                      "spine, so a period or group with no rows has no row (or an empty value)")

    def _plain_inputs(self, metric: DbtMetric, inputs: Sequence[str]) -> None:
        for name in inputs:
            if self.metrics[name].time_type is not None:
                raise _Unsupported(f"it does arithmetic over '{name}', a time metric ({self.metrics[name].time_type}), "
                                   "and LORE's time metrics cannot appear in another metric's arithmetic yet (ask for "
                                   "them side by side)")

    def derived(self, name: str, tree: exp.Expression, inputs: Sequence[str], *, label: str, description: str,
                grains: tuple[Grain, ...], file: str) -> str:
        metric = Metric(name=name, label=label, description=description, expr=tree.sql(dialect="duckdb"),
                        grains=grains)
        self.add(metric, _Derived(tuple(inputs)), file)
        return name

    def _derived(self, metric: DbtMetric, label: str, description: str, grains: tuple[Grain, ...], file: str) -> None:
        tp = metric.type_params
        if not tp.expr:
            raise _Invalid(f"derived metric '{metric.name}' has no type_params.expr")
        tree = _parse_sql(tp.expr)
        names: dict[str, DbtMetricInput] = {}
        for inp in tp.metrics:
            names[inp.alias or inp.name] = inp
        mentioned = {c.name for c in tree.find_all(exp.Column) if not c.table}
        unknown = sorted(mentioned - set(names))
        if unknown:
            raise _Invalid(f"derived metric '{metric.name}': its expr names {', '.join(unknown)}, which "
                           f"{'is' if len(unknown) == 1 else 'are'} not among its metrics (by name or alias)")
        offsets = {key: inp for key, inp in names.items() if inp.offset_window}
        if offsets:
            lone = _plain_column(tree)
            key, inp = next(iter(offsets.items()))
            if lone is None or lone not in offsets or len(mentioned) != 1:
                raise _Unsupported(f"it does arithmetic over '{key}', '{inp.name}' {inp.offset_window} earlier, and "
                                   "a LORE offset metric cannot appear in another metric's arithmetic yet; import "
                                   f"'{key}' alone as a metric with offset: {inp.offset_window} and ask for both side "
                                   "by side")
            base = self.metric_input(metric, inp.model_copy(update={"offset_window": None}), metric.filter, file,
                                     "input")
            self.lore_name[metric.name] = self.time_metric(metric.name, base, offset=inp.offset_window, label=label,
                                                           description=description, grains=grains, file=file)
            return
        mapping = {key: self.metric_input(metric, inp, metric.filter, file, "input") for key, inp in names.items()
                   if key in mentioned}
        self._plain_inputs(metric, list(mapping.values()))
        self.lore_name[metric.name] = self.derived(metric.name, _renamed(tree, mapping), tuple(mapping.values()),
                                                   label=label, description=description, grains=grains, file=file)

    def _cumulative(self, metric: DbtMetric, label: str, description: str, grains: tuple[Grain, ...],
                    file: str) -> None:
        tp = metric.type_params
        params = tp.cumulative_type_params or DbtCumulativeParams()
        window = params.window or tp.window
        grain_to_date = params.grain_to_date or tp.grain_to_date
        if tp.measure is None:
            raise _Invalid(f"cumulative metric '{metric.name}' has no type_params.measure")
        self._check_measure_input(metric, tp.measure, file)
        if window and grain_to_date:
            raise _Invalid(f"cumulative metric '{metric.name}' sets both window and grain_to_date; MetricFlow takes "
                           "one")
        if not window and not grain_to_date:
            raise _Unsupported("a cumulative metric over all time (no window or grain_to_date) has no LORE "
                               "equivalent: LORE's running totals (running_total in a query) start at the period asked")
        if params.period_agg and params.period_agg.lower() != "first":
            self.note("option", metric.name, file, metric.line,
                      f"period_agg: {params.period_agg} is not imported: LORE refuses a breakdown coarser than a "
                      "time metric's window or grain, and at that grain a bucket holds the total to its end")
        filters = tuple(_norm_filter(f) for f in [*metric.filter, *tp.measure.filter])
        recipe = _Base(tp.measure.name, filters)
        base = self.by_recipe.get(recipe)
        if base is None:
            _, measure = self.measures[tp.measure.name]
            taken = filters or tp.measure.name in self.metrics or tp.measure.name in self.dbt_metrics
            base_name = self.fresh(f"{metric.name}__base" if taken else tp.measure.name)
            base = self.base_metric(base_name, recipe, label=measure.label or readable(measure.name),
                                    description=" ".join((measure.description or f"The {readable(measure.name)} "
                                                          f"measure, the base of {metric.name}.").split()),
                                    grains=(), file=file)
            self.helpers.add(base)
        self.lore_name[metric.name] = self.time_metric(
            metric.name, base, window=window, grain_to_date=grain_to_date.lower() if grain_to_date else None,
            label=label, description=description, grains=grains, file=file)

    def translate_metrics(self) -> None:
        ordered: list[tuple[DbtMetric, str]] = []
        for file in self.project.files:
            for metric in file.metrics:
                if metric.disabled:
                    self.note("metric", metric.name, file.path, metric.line, "disabled (config: enabled: false)")
                    continue
                if not NAME_RE.match(metric.name):
                    self.problems.append(f"{file.path}:{metric.line or '?'}: metric '{metric.name}': a name must be "
                                         "letters, digits and underscores")
                    continue
                if metric.name in self.dbt_metrics:
                    self.problems.append(f"{file.path}:{metric.line or '?'}: metric '{metric.name}' is defined twice "
                                         f"(first in {self.dbt_metrics[metric.name][1]})")
                    continue
                self.dbt_metrics[metric.name] = (metric, file.path)
                ordered.append((metric, file.path))
        for model, measure in [(model, m) for model, m in self.measures.values() if m.create_metric]:
            if measure.name in self.dbt_metrics:
                self.problems.append(f"{model.file}:{measure.line or '?'}: measure '{measure.name}' has create_metric: "
                                     "true, and a metric of that name exists")
                continue
            made = DbtMetric(name=measure.name, type="simple", label=measure.label, description=measure.description,
                             type_params=DbtTypeParams(measure=DbtMetricInput(name=measure.name)),
                             **{_LINE: measure.line})
            self.dbt_metrics[measure.name] = (made, model.file)
            ordered.append((made, model.file))
        for metric, file in self._dependency_order(ordered):
            self._translate_one(metric, file)

    def _translate_one(self, metric: DbtMetric, file: str) -> None:
        """Translate one metric, or leave no trace of it (no helper metric, no view column) and say why."""
        before = set(self.metrics)
        views = {key: (v.has_metrics, dict(v.joined)) for key, v in self.views.items()}
        try:
            self.translate_metric(metric, file)
            return
        except _Unsupported as err:
            self.note("metric", metric.name, file, metric.line, str(err))
            self.skipped[metric.name] = str(err)
        except _Invalid as err:
            self.problems.append(f"{file}:{metric.line or '?'}: {err}")
            self.skipped[metric.name] = str(err)
        for name in set(self.metrics) - before:
            for table in (self.metrics, self.recipes, self.metric_file):
                table.pop(name, None)  # type: ignore[attr-defined]
        self.helpers &= set(self.metrics)
        self.by_recipe = {r: n for r, n in self.by_recipe.items() if n in self.metrics}
        for key in list(self.views):
            if key not in views:
                del self.views[key]
            else:
                self.views[key].has_metrics, self.views[key].joined = views[key]

    def _dependency_order(self, items: list[tuple[DbtMetric, str]]) -> list[tuple[DbtMetric, str]]:
        """Simple metrics first (the others may reuse them), then every metric after the metrics it reads."""
        by_name = {m.name: (m, f) for m, f in items}
        done: list[tuple[DbtMetric, str]] = []
        state: dict[str, str] = {}

        def inputs(m: DbtMetric) -> list[str]:
            tp = m.type_params
            if m.type == "ratio":
                return [i.name for i in (tp.numerator, tp.denominator) if i is not None]
            if m.type == "derived":
                return [i.name for i in tp.metrics]
            return []

        def visit(name: str, stack: tuple[str, ...]) -> None:
            if state.get(name) == "done" or name not in by_name:
                return
            if state.get(name) == "visiting":
                cycle = " -> ".join([*stack[stack.index(name):], name])
                self.problems.append(f"{by_name[name][1]}:{by_name[name][0].line or '?'}: metrics refer to each other "
                                     f"in a cycle: {cycle}")
                self.skipped[name] = "in a cycle"
                return
            state[name] = "visiting"
            for dep in inputs(by_name[name][0]):
                visit(dep, (*stack, name))
            state[name] = "done"
            done.append(by_name[name])

        for metric, _ in items:
            if metric.type == "simple":
                visit(metric.name, ())
        for metric, _ in items:
            visit(metric.name, ())
        return done

    # -- saved queries ------------------------------------------------------------------------------------------

    def query_ref(self, call: _Call, what: str) -> str:
        """A LORE reference for a MetricFlow group-by item or a reference in a saved query's ``where``."""
        path, name = call.parts
        if call.kind == "Metric":
            raise _Unsupported(f"{what}: a filter on a metric's value for each entity (Metric(...)) is not a LORE "
                               "query filter")
        if call.date_part:
            raise _Unsupported(f"{what}: date parts ({call.name}.date_part('{call.date_part}')) are not LORE "
                               "references")
        grain = call.grain
        if grain is not None and grain not in GRAINS:
            raise _Unsupported(f"{what}: grain '{grain}' is not a LORE grain")
        if name == "metric_time" and not path:
            return "metric_time" + (f":{grain}" if grain and grain != "day" else "")
        if call.kind == "Entity":
            keyed = [m for m in self.models.values() if m.keyed_by(name) and m.entities[name].column]
            if not keyed:
                raise _Unsupported(f"{what}: no model is keyed by entity '{name}' over a column")
            model = sorted(keyed, key=lambda m: (m.entities[name].type != "primary", m.name))[0]
            return f"{model.name}.{model.entities[name].column}"
        entity = path[-1] if path else None
        candidates = [m for m in self.models.values() if name in m.dims and (entity is None or entity in m.entities)]
        if not candidates:
            raise _Invalid(f"{what}: no semantic model has a dimension '{name}'"
                           + (f" and the entity '{entity}'" if entity else ""))
        model = sorted(candidates, key=lambda m: (entity is not None and entity not in m.own, m.name))[0]
        dim = model.dims[name]
        if grain and dim.kind != "time":
            raise _Invalid(f"{what}: '{call.name}' is not a time dimension, so it takes no grain")
        node = f"{model.name}__view" if dim.computed else model.name
        return f"{node}.{dim.column}" + (f":{grain}" if grain else "")

    def translate_queries(self) -> None:
        for file in self.project.files:
            for sq in file.saved_queries:
                what = f"saved query '{sq.name}'"
                try:
                    query = self._query(sq, file.path, what)
                except _Unsupported as err:
                    self.note("saved_query", sq.name, file.path, sq.line, str(err))
                    continue
                except _Invalid as err:
                    self.problems.append(f"{file.path}:{sq.line or '?'}: {err}")
                    continue
                try:
                    query = query.model_copy(update={"plan": query_plan(query)})
                except ValueError as err:
                    self.note("saved_query", sq.name, file.path, sq.line, SAVED_QUERY_REASON.format(why=err),
                              detail=query.command())
                self.queries.append(query)

    def _query(self, sq: DbtSavedQuery, file: str, what: str) -> ImportedQuery:
        params = sq.query_params
        metrics = []
        for name in params.metrics:
            if name in self.skipped:
                raise _Unsupported(f"its metric '{name}' is not imported")
            if name not in self.lore_name:
                raise _Invalid(f"{what} names metric '{name}', which the project does not define")
            metrics.append(self.lore_name[name])
        dims = tuple(self.query_ref(parse_call(g), what) for g in params.group_by)

        def ref(call: _Call) -> exp.Expression:
            text = self.query_ref(call, what)
            if ":" in text or "[" in text:
                return exp.column(exp.to_identifier(text, quoted=True))
            node, _, column = text.partition(".")
            return exp.column(column, table=node) if column else exp.column(node)

        filters = tuple(self._templated(w, what, ref) for w in params.where)
        order = []
        for item in params.order_by:
            call = parse_call(item) if "(" in item else _Call("Metric", item)
            if call.kind == "Metric":
                key = self.lore_name.get(call.name, call.name)
            else:
                key = self.query_ref(call, what)
            order.append(("-" if call.descending else "") + key)
        question = " ".join((sq.description or sq.label or readable(sq.name)).split())
        return ImportedQuery(name=sq.name, question=question, file=file, metrics=tuple(metrics), dimensions=dims,
                             filters=filters, order_by=tuple(order), limit=params.limit)

    # -- the layer ----------------------------------------------------------------------------------------------

    def nodes(self, model: _Model) -> list[Node]:
        """The model's node and its views."""
        columns: list[Column] = []
        declared: set[str] = set()
        for dim in model.dims.values():
            if dim.computed:
                continue
            columns.append(_column(dim))
            declared.add(dim.column)
        for entity in model.entities.values():
            if entity.column is None or entity.column in declared:
                continue
            linked = entity.type == "foreign" and any(t is not model and t.keyed_by(entity.name)
                                                      for t in self.models.values())
            if linked:
                continue
            label = entity.label or (readable(entity.name) if entity.name.endswith("_id")
                                     else f"{_entity_label(entity.name)} id")
            desc = entity.description or (f"The identifier of {_article(model.label)}." if entity.type == "primary"
                                          else f"The {readable(entity.name)} entity ({entity.type}).")
            columns.append(Column(name=entity.column, kind="identifier", label=label,
                                  description=" ".join(desc.split()),
                                  unique=entity.type in ("primary", "unique")))
            declared.add(entity.column)
        views = [v for v in self.views.values() if v.model == model.name]
        computed = [d for d in model.dims.values() if d.computed]
        main = next((v for v in views if v.main), None)
        if computed and main is None:
            main = self.view_for(model, model.default_time)
            views.append(main)
        links = list(model.links)
        if computed and main is not None and model.pk:
            links.append(Link(to=main.name, on=_key_on(model.name, main.name, model.pk), cardinality="one_to_one",
                              description=f"The {model.label}'s computed dimensions."))
        node = Node(name=model.name, kind="source" if model.src.measures or not model.pk else "dimension",
                    table=model.table, label=model.label, description=" ".join((model.src.description or "").split()),
                    primary_key=(model.pk,) if model.pk else (), time_column=model.time_column,
                    columns=tuple(columns), links=tuple(links))
        return [node] + [self.view_node(model, v) for v in sorted(views, key=lambda v: (not v.main, v.name))]

    def view_node(self, model: _Model, view: _View) -> Node:
        assert model.pk is not None
        alias = model.name
        select = exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier(alias))).from_(
            self.table_expr(model.table.rpartition(".")[2], alias))
        columns: list[Column] = []
        dims = [d for d in model.dims.values() if d.computed and (view.main or d.name == view.time_dim)]
        for dim in dims:
            select = select.select(exp.alias_(_qualified(dim.expr, alias), dim.column))
            columns.append(_column(dim, type_="TIMESTAMP" if dim.kind == "time" else None))
        time_column = None
        if view.has_metrics and view.time_dim is not None:
            time = model.dims[view.time_dim]
            time_column = time.column
            if not time.computed:
                columns.insert(0, _column(time, type_="TIMESTAMP"))
        joins: dict[str, _Join] = {}
        for join, _ in view.joined.values():
            for i in range(1, len(join.hops) + 1):
                prefix = _Join(join.hops[:i])
                joins.setdefault(prefix.alias, prefix)
        for key in sorted(joins, key=lambda a: (a.count("__"), a)):
            join = joins[key]
            entity, target_name = join.hops[-1]
            prev_alias = alias if len(join.hops) == 1 else _Join(join.hops[:-1]).alias
            prev = model if len(join.hops) == 1 else self.models[join.hops[-2][1]]
            target = self.models[target_name]
            on = exp.EQ(this=_qualified(prev.entities[entity].expr, prev_alias),
                        expression=_qualified(target.entities[entity].expr, join.alias))
            select = select.join(self.table_expr(target.table.rpartition(".")[2], join.alias), on=on,
                                 join_type="left")
        for column, (_, tree) in sorted(view.joined.items()):
            select = select.select(exp.alias_(tree, column))
        reads = ", ".join(sorted(view.joined))
        what = []
        if dims and view.main:
            what.append("its computed dimensions")
        if reads:
            what.append(f"the dimensions its metrics' filters read from other semantic models ({reads})")
        if not view.main:
            what.append(f"dated by {view.time_dim}")
        description = (f"{model.label.capitalize()} rows (semantic model {model.name}) with "
                       + " and ".join(what or ["nothing more"]) + "; other attributes through its link to "
                       f"{model.name}.")
        return Node(name=view.name, kind="source" if view.has_metrics else "dimension",
                    sql=select.sql(dialect="duckdb", pretty=True), label=model.label, description=description,
                    primary_key=(model.pk,), time_column=time_column, columns=tuple(columns),
                    links=(Link(to=model.name, on=_key_on(view.name, model.name, model.pk), cardinality="one_to_one",
                                description=f"The {model.label} itself."),))

    def files(self) -> list[LayerFile]:
        names = _file_names([f.path for f in self.project.files])
        out = []
        for file in self.project.files:
            sources: list[Node] = []
            dims: list[Node] = []
            for sm in file.semantic_models:
                model = self.models.get(sm.name)
                if model is None or model.file != file.path:
                    continue
                for node in self.nodes(model):
                    (sources if node.kind == "source" else dims).append(node)
            metrics = tuple(m for name, m in self.metrics.items() if self.metric_file[name] == file.path)
            notes = tuple(n for n in self.notes if n.file == file.path)
            out.append(LayerFile(name=names[file.path], dbt_file=file.path, sources=tuple(sources),
                                 dimensions=tuple(dims), metrics=metrics, not_imported=notes))
        return out


def _article(noun: str) -> str:
    """
    >>> _article("order"), _article("customer")
    ('an order', 'a customer')
    """
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _renamed(tree: exp.Expression, mapping: Mapping[str, str]) -> exp.Expression:
    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in mapping:
            return exp.column(mapping[node.name])
        return node

    return tree.copy().transform(fix)


def _key_on(left: str, right: str, key: str) -> str:
    return exp.EQ(this=exp.column(key, table=left), expression=exp.column(key, table=right)).sql(dialect="duckdb")


def _column(dim: _Dim, *, type_: str | None = None) -> Column:
    if dim.kind == "time":
        return Column(name=dim.column, kind="time", type=type_, label=dim.label,
                      description=" ".join(dim.description.split()), grains=dim.grains)
    return Column(name=dim.column, label=dim.label, description=" ".join(dim.description.split()))


def _file_names(paths: Sequence[str]) -> dict[str, str]:
    """One LORE file name per dbt file: its stem, with folders in front where two stems meet.

    >>> _file_names(["models/orders.yml", "models/marts/x.yml", "models/staging/x.yml"])
    {'models/orders.yml': 'orders.yaml', 'models/marts/x.yml': 'marts_x.yaml', 'models/staging/x.yml': 'staging_x.yaml'}
    """
    stems = Counter(Path(p).stem for p in paths)
    out = {}
    for p in paths:
        path = Path(p)
        if stems[path.stem] == 1:
            out[p] = f"{path.stem}.yaml"
        else:
            parts = [q for q in path.with_suffix("").parts if q != "models"]
            out[p] = "_".join(parts[-2:] if len(parts) > 1 else parts) + ".yaml"
    return out


def translate(project: DbtProject, *, schema: str = MAIN_SCHEMA) -> Translation:
    """The LORE layer of a dbt project, its tables in ``schema``. Pure: no files, no warehouse.

    Raises :class:`DbtProjectError` listing every problem of the project (a metric naming an unknown measure or
    metric, a filter naming an unknown dimension, a cycle, a duplicate name); what has no LORE equivalent is not
    an error: it is in :attr:`Translation.not_imported`, with why.
    """
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", schema):
        raise OperatorError(f"--schema {schema!r} is not a schema name", hint="Letters, digits and underscores.")
    t = _Translator(project, schema)
    t.index_models()
    t.link_models()
    t.translate_metrics()
    t.translate_queries()
    if t.problems:
        raise DbtProjectError(list(dict.fromkeys(t.problems)))
    files = t.files()
    nodes = [n for f in files for n in (*f.sources, *f.dimensions)]
    counts = ImportCounts(
        semantic_models=sum(len(f.semantic_models) for f in project.files),
        semantic_models_imported=len(t.models), nodes=len(nodes), views=sum(1 for n in nodes if n.sql),
        links=sum(len(n.links) for n in nodes), metrics=len(t.dbt_metrics),
        metrics_imported=sum(1 for name in t.dbt_metrics if name in t.lore_name),
        helper_metrics=len(t.helpers), saved_queries=sum(len(f.saved_queries) for f in project.files))
    return Translation(project=project.name, warehouse_schema=schema, files=tuple(files), not_imported=tuple(t.notes),
                       queries=tuple(t.queries), counts=counts)


# --- stage 3: rendering YAML --------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block mappings, indented block lists, flow lists of scalars, literal blocks for multi-line text; only
    true/false are booleans (as LORE's loader reads them), so ``on:`` stays a plain key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


_Dumper.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}
_Dumper.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style="|" if "\n" in s else None))
_Dumper.add_representer(list, lambda d, items: d.represent_sequence(
    "tag:yaml.org,2002:seq", items,
    flow_style=bool(items) and all(isinstance(i, (str, int, float, bool)) and "\n" not in str(i) for i in items)))

_NODE_ORDER = ("name", "table", "sql", "label", "synonyms", "description", "owner", "primary_key", "time_column",
               "columns", "links")
_COLUMN_ORDER = ("name", "kind", "type", "label", "description")


def _ordered(data: dict[str, Any], first: Sequence[str]) -> dict[str, Any]:
    return {**{k: data[k] for k in first if k in data}, **{k: v for k, v in data.items() if k not in first}}


def _node_data(node: Node) -> dict[str, Any]:
    data = node.model_dump(mode="json", exclude_defaults=True)
    data.pop("kind", None)
    if "columns" in data:
        data["columns"] = [_ordered(c, _COLUMN_ORDER) for c in data["columns"]]
    return _ordered(data, _NODE_ORDER)


def _comment(text: str, width: int = 116) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for word in words:
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = "   " + word
        else:
            cur = f"{cur} {word}" if cur else word
    lines.append(cur)
    return ["# " + line for line in lines]


def render_file(file: LayerFile, project: str | None = None) -> str:
    """The YAML text of one layer file: a header naming the dbt file and what it did not import, then the layer."""
    head = _comment(f"Imported by `lore import dbt` from {file.dbt_file}"
                    + (f" (dbt project {project})" if project else "") + ". Edit it freely: importing again "
                    "needs --force and overwrites it.")
    if file.not_imported:
        head.append("#")
        head += _comment(f"Not imported from {file.dbt_file} ({len(file.not_imported)}):")
        for note in file.not_imported:
            head += _comment(f"- {note.render()}")
            if note.detail:
                head.append(f"#     {note.detail}")
    body: dict[str, Any] = {}
    if file.sources:
        body["sources"] = [_node_data(n) for n in file.sources]
    if file.dimensions:
        body["dimensions"] = [_node_data(n) for n in file.dimensions]
    if file.metrics:
        body["metrics"] = [m.model_dump(mode="json", exclude_defaults=True) for m in file.metrics]
    text = "\n".join(head) + "\n"
    if body:
        dumped = yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=116, indent=2)
        dumped = re.sub(r"(?<!:)\n(  - name: )", r"\n\n\1", dumped)
        dumped = re.sub(r"\n(sources|dimensions|metrics):", r"\n\n\1:", dumped)
        text += "\n" + dumped
    return text


def render_files(translation: Translation) -> dict[str, str]:
    """File name -> YAML text, for every file of the layer."""
    return {f.name: render_file(f, translation.project) for f in translation.files}


# --- stage 4: writing -------------------------------------------------------------------------------------------


def write_layer(out_dir: Path, texts: Mapping[str, str], *, force: bool = False) -> list[Path]:
    """Write ``texts`` into ``out_dir/semantic/``: every file, or (when one exists and ``force`` is off) none."""
    folder = Path(out_dir) / "semantic"
    targets = [folder / name for name in texts]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise OperatorError(f"{len(existing)} file(s) of the imported layer already exist: "
                            + ", ".join(str(p) for p in existing) + "; nothing was written",
                            hint="Pass --force to overwrite them, or import into another --out folder.")
    folder.mkdir(parents=True, exist_ok=True)
    for path in targets:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, prefix=".import-", suffix=".tmp",
                                         delete=False) as tmp:
            tmp.write(texts[path.name])
        os.replace(tmp.name, path)
    return targets


def seed_examples(translation: Translation) -> list[SeedExample]:
    """The saved queries that translate to a LORE plan, as examples of a seed file (``lore feedback seed``)."""
    return [SeedExample(question=q.question, plan=q.plan, note=f"dbt saved query {q.name} ({q.file})")
            for q in translation.queries if q.plan is not None]


def render_examples(translation: Translation) -> str:
    """The seed file of the project's saved queries (empty text when none translates to a plan)."""
    examples = seed_examples(translation)
    if not examples:
        return ""
    header = (f"Imported by `lore import dbt` from the saved queries of the dbt project {translation.project or ''}."
              "\nEach is a question and the LORE plan that answers it. Verify them as examples with:"
              "\n  lore feedback seed examples/dbt_saved_queries.yaml --project .")
    return render_seed_file(examples, header=header)


def examples_path(out_dir: Path) -> Path:
    return Path(out_dir) / DBT_SEED_FILE


def check_examples_target(out_dir: Path, *, force: bool = False) -> None:
    """Refuse (before anything is written) to overwrite an existing seed file without ``force``."""
    path = examples_path(out_dir)
    if path.exists() and not force:
        raise OperatorError(f"The seed file {path} already exists; nothing was written",
                            hint="Pass --force to overwrite it (and the layer files), or import into another --out "
                                 "folder.")


def write_examples(out_dir: Path, text: str, *, force: bool = False) -> Path | None:
    """Write the seed file of examples (None when there is nothing to write)."""
    if not text:
        return None
    check_examples_target(out_dir, force=force)
    path = examples_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=".import-", suffix=".tmp",
                                     delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
    return path


def write_project_config(out_dir: Path, *, name: str, description: str, warehouse: Path | None) -> Path | None:
    """Write ``out_dir/lore.yaml`` when there is none (naming the layer folder ``semantic``); None when one exists."""
    from lore.project import CONFIG_FILE, ProjectConfig, write_config

    out_dir = Path(out_dir)
    if (out_dir / CONFIG_FILE).exists():
        return None
    config = ProjectConfig(name=name, description=description, semantic_layer=Path("semantic"),
                           **({"warehouse": _relative_to(warehouse, out_dir)} if warehouse is not None else {}))
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_config(out_dir, config)


def _relative_to(path: Path, folder: Path) -> Path:
    """``path`` (as given, relative to the working folder) relative to ``folder`` when it can be, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return Path(os.path.relpath(absolute, os.path.abspath(folder)))
    except ValueError:  # another drive
        return absolute
