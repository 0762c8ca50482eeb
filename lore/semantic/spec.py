"""The semantic layer's models: nodes (sources and dimensions), links, metrics.

A *node* is a table with a primary key, attributes and links to other nodes.
It is declared under ``sources:`` (a fact that metrics aggregate over) or
``dimensions:`` (a table whose attributes are grouped and filtered on); both
parse into :class:`Node`, and any node with a primary key can serve as a
dimension of the nodes that link to it.

References name an attribute of a node, optionally with roles and a time grain:
``countries.region``, ``airports.city[origin]``,
``streaming_sessions.session_date:month``, and the virtual ``metric_time:month``
(each fact's own time column).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from lore.errors import UnknownReference
from lore.tables import canonical_table
from lore.types import Frozen

Agg = Literal["sum", "count", "count_distinct", "avg", "min", "max"]
Cardinality = Literal["many_to_one", "one_to_one", "one_to_many", "many_to_many"]
Grain = Literal["day", "week", "month", "quarter", "year"]
GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")


#: the units a time metric's offset or window is counted in, smallest first
DURATION_UNITS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
_DURATION = re.compile(r"^\s*(\d{1,4})\s+(day|week|month|quarter|year)s?\s*$", re.I)


def parse_duration(text: str) -> tuple[int, str]:
    """A time metric's offset or window ("1 year", "7 days") as (count, unit); ValueError says what is expected.

    >>> parse_duration("7 days"), parse_duration("1 Year")
    ((7, 'day'), (1, 'year'))
    """
    m = _DURATION.match(str(text))
    if m is None or int(m.group(1)) < 1:
        raise ValueError(f"{text!r} is not a duration: write a whole number and a unit, e.g. '1 year', '7 days', "
                         "'3 months' (units: day, week, month, quarter, year)")
    return int(m.group(1)), m.group(2).lower()


def inline_label(label: str) -> str:
    """A label as it reads inside a sentence: its first letter lower case, unless it starts an acronym.

    >>> inline_label("Streaming hours"), inline_label("UA spend"), inline_label("")
    ('streaming hours', 'UA spend', '')
    """
    if len(label) > 1 and label[1].isupper():
        return label
    return label[:1].lower() + label[1:]
ColumnKind = Literal["categorical", "time", "numeric", "identifier", "boolean"]

#: the virtual time dimension: every fact's default time column
METRIC_TIME = "metric_time"

#: aggregations whose result does not change when input rows are duplicated
DUPLICATION_INVARIANT: frozenset[str] = frozenset({"count_distinct", "min", "max"})

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Column(Frozen):
    """An attribute of a node that can be grouped or filtered on."""

    name: str
    type: str | None = None
    kind: ColumnKind = "categorical"
    label: str | None = None
    description: str = ""
    synonyms: tuple[str, ...] = ()
    sample_values: tuple[str, ...] = ()
    #: for ``kind: time``: the grains it may be truncated to
    grains: tuple[Grain, ...] = GRAINS
    #: values are unique per row (besides the primary key); pins the key when filtered by equality
    unique: bool = False
    unit: str | None = None
    #: index the distinct values for grounding (default: categorical columns)
    index_values: bool | None = None
    #: other names people use for values: ``{"United Kingdom": ["UK", "Britain"], "en": ["English"]}``
    value_synonyms: dict[str, tuple[str, ...]] = {}
    #: ``node.attribute``: when a question names one value of this attribute, break the answer down by that one
    #: (a named experiment is compared by its cells); also the attribute a breakdown by it needs pinned
    compare_by: str | None = None

    @property
    def display(self) -> str:
        return self.label or self.name.replace("_", " ")


class Link(Frozen):
    """A declared join from one node to another."""

    to: str
    on: str
    cardinality: Cardinality = "many_to_one"
    role: str | None = None
    join_type: Literal["left", "inner"] = "left"
    description: str = ""


class Node(Frozen):
    """A physical table (or a SELECT, as an escape hatch) with a key, attributes and links."""

    name: str
    kind: Literal["source", "dimension"] = "source"
    #: the physical table: ``orders`` in the warehouse's ``main`` schema, ``raw.orders`` in another schema
    table: str | None = None
    sql: str | None = None
    description: str = ""
    owner: str | None = None
    primary_key: tuple[str, ...] = ()
    #: the default time column (the fact's time dimension, what ``metric_time`` means here)
    time_column: str | None = None
    columns: tuple[Column, ...] = ()
    links: tuple[Link, ...] = ()
    label: str | None = None
    synonyms: tuple[str, ...] = ()

    @field_validator("table")
    @classmethod
    def _canonical_table(cls, value: str | None) -> str | None:
        """``main.orders`` is the table ``orders``: name it as the engine's catalog does."""
        return canonical_table(value) if value else value

    def column(self, name: str) -> Column | None:
        """The attribute called ``name``; a primary-key column is one even when not declared (an identifier)."""
        for col in self.columns:
            if col.name == name:
                return col
        if name in self.primary_key:
            return self.key_column(name)
        return None

    def key_column(self, name: str) -> Column:
        """An undeclared primary-key column as an identifier attribute ("order id" for ``orders.order_id``)."""
        return Column(name=name, kind="identifier", unique=len(self.primary_key) == 1,
                      label=f"{self.display} id" if len(self.primary_key) == 1 and name.lower().endswith("id") else None,
                      description=f"The identifier of a {self.display}.")

    @property
    def attributes(self) -> tuple[Column, ...]:
        """The declared columns, and undeclared primary-key columns as identifiers."""
        declared = {c.name for c in self.columns}
        return self.columns + tuple(self.key_column(k) for k in self.primary_key if k not in declared)

    @property
    def display(self) -> str:
        return self.label or self.name.replace("_", " ")


class Metric(Frozen):
    """A governed metric: an aggregate over one source, or an expression over other metrics."""

    name: str
    label: str | None = None
    description: str = ""
    synonyms: tuple[str, ...] = ()
    owner: str | None = None
    unit: str | None = None
    #: display format hint: number | integer | percent | currency | duration
    format: str | None = None
    #: base metric: the source it aggregates over
    source: str | None = None
    agg: Agg | None = None
    #: base metric: a column expression of the source (``*`` for count); derived: an expression over metric names
    expr: str = "*"
    #: base metric: a row filter over the source's own columns
    filter: str | None = None
    #: the direction that reads as "better": higher | lower | None
    better: Literal["higher", "lower"] | None = None
    #: grains at which the metric is meaningful (for example MAA per month)
    grains: tuple[Grain, ...] = ()
    #: a time metric over the one metric its ``expr`` names: its value that long before ("1 year": a year earlier)
    offset: str | None = None
    #: a time metric over one metric that adds up: its sum over the trailing window ending at each date ("7 days")
    window: str | None = None
    #: a time metric over one metric that adds up: its sum from the start of each such period ("month": month to
    #: date)
    grain_to_date: Grain | None = None

    @property
    def is_derived(self) -> bool:
        return self.source is None

    @property
    def time_type(self) -> Literal["offset", "window", "grain_to_date"] | None:
        """Which time metric this is (see :attr:`offset`, :attr:`window`, :attr:`grain_to_date`), None for others."""
        return "offset" if self.offset else "window" if self.window else "grain_to_date" if self.grain_to_date else None

    @property
    def display(self) -> str:
        return self.label or self.name.replace("_", " ")


class SemanticLayer(Frozen):
    """A loaded semantic layer; ``version`` is a content hash of the files it came from."""

    nodes: dict[str, Node] = Field(default_factory=dict)
    metrics: dict[str, Metric] = Field(default_factory=dict)
    version: str = ""
    #: where each object was defined: ``{"metric:x": ("file.yaml", 12)}``
    locations: dict[str, tuple[str, int]] = Field(default_factory=dict)

    def node(self, name: str) -> Node | None:
        return self.nodes.get(name)

    def metric(self, name: str) -> Metric | None:
        return self.metrics.get(name)

    @property
    def tables(self) -> frozenset[str]:
        """Physical tables the layer exposes (the guard's allow-list)."""
        return frozenset(n.table for n in self.nodes.values() if n.table)


# --- references --------------------------------------------------------------

_REF_RE = re.compile(
    r"^\s*(?P<node>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\.(?P<attr>[A-Za-z_][A-Za-z0-9_]*))?"
    r"(?:\[(?P<roles>[A-Za-z0-9_\->\s]*)\])?"
    r"(?::(?P<grain>[a-z]+))?\s*$"
)


class DimensionRef(Frozen):
    """A parsed dimension reference.

    >>> DimensionRef.parse("countries.region")
    DimensionRef(node='countries', attribute='region', roles=(), grain=None)
    >>> DimensionRef.parse("airports.city[origin]").roles
    ('origin',)
    >>> DimensionRef.parse("metric_time:month").key
    'metric_time:month'
    >>> DimensionRef.parse("streaming_sessions.session_date:week").grain
    'week'
    """

    node: str
    attribute: str
    roles: tuple[str, ...] = ()
    grain: Grain | None = None

    @classmethod
    def parse(cls, text: str) -> DimensionRef:
        m = _REF_RE.match(text or "")
        if not m:
            raise UnknownReference(
                f"'{text}' is not a dimension reference",
                hint="Write node.attribute, optionally with [role] and :grain, e.g. countries.region or metric_time:month.",
            )
        node, attr = m.group("node"), m.group("attr")
        if attr is None:
            if node != METRIC_TIME:
                raise UnknownReference(
                    f"'{text}' names no attribute",
                    hint="Write node.attribute, e.g. countries.region, or metric_time:grain.",
                )
            attr = METRIC_TIME
        roles = tuple(r.strip() for r in (m.group("roles") or "").split("->") if r.strip())
        grain = m.group("grain")
        if grain is not None and grain not in GRAINS:
            raise UnknownReference(
                f"'{grain}' is not a time grain in '{text}'", suggestions=list(GRAINS)
            )
        return cls(node=node, attribute=attr, roles=roles, grain=grain)  # type: ignore[arg-type]

    @property
    def is_metric_time(self) -> bool:
        return self.node == METRIC_TIME

    @property
    def key(self) -> str:
        """The canonical text of this reference."""
        text = METRIC_TIME if self.is_metric_time else f"{self.node}.{self.attribute}"
        if self.roles:
            text += "[" + "->".join(self.roles) + "]"
        if self.grain:
            text += f":{self.grain}"
        return text

    def __str__(self) -> str:
        return self.key
