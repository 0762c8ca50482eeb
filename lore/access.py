"""Per-user access: which metrics and dimensions a user may see, and which rows.

Policies live in ``lore.yaml`` under ``access:``. Every rule that applies to a user
narrows what the user sees; no rule ever widens another::

    access:
      default: all                  # users no rule names: all (no limits), none, or a group's name
      groups:
        emea:
          members: [ana@example.com]
          hide_metrics: [content_cash_spend, production_budget]
          rows:
            - countries.region = 'EMEA'
      users:
        ana@example.com:
          identities: ["slack:T0123:U0456"]     # the same person in Slack
          hide_dimensions: ["accounts.birth_year"]
          rows:
            - filter: countries.country_iso_code IN ('DE', 'FR')
              unreachable: hide_facts           # or: hide, show

``metrics`` / ``dimensions`` are allow-lists of names or glob patterns (default ``*``),
``hide_metrics`` / ``hide_dimensions`` deny-lists. A row filter is a predicate over one
node's attributes. It is enforced where every SQL string is checked: the guard replaces
each table the query reads with a subquery that keeps only the rows in scope, following
the declared many-to-one links from that table to the filter's node (``via`` names roles
when several paths exist). A table whose rows cannot be tied to the filter's node is
hidden when it is a fact (``unreachable: hide_facts``, the default), always (``hide``),
or left whole (``show``). Metrics over hidden facts, dimensions of hidden nodes and the
columns only hidden metrics read disappear from retrieval, prompts, plans and SQL.

The identity comes from the caller (the chat page's sign-in, Slack's signed payload, the
operator's ``--user``), never from the question or the model.

>>> config = AccessConfig.model_validate({"groups": {"g": {"members": ["Ana"], "hide_metrics": ["m2"]}}})
>>> [name for name, _ in rules_for(config, "ana")]
['group:g']
>>> rules_for(config, "bob") is None
True
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
import unicodedata
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import sqlglot
from pydantic import ValidationError, field_validator
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lore.core import Lore
from lore.errors import ConfigError, LoreError
from lore.semantic.compile import derived_refs
from lore.semantic.graph import FANNING, Edge, LinkGraph, describe_path, roles_match
from lore.semantic.spec import METRIC_TIME, Column, Node, SemanticLayer
from lore.retrieve.documents import RETRIEVE_K
from lore.types import Frozen, PlanOutcome, QueryPlan, RetrievalResult, ValueMatch

if TYPE_CHECKING:  # pragma: no cover
    from lore.retrieve import Example, Retriever

log = logging.getLogger("lore.access")

#: the alias prefix of the tables inside a row-filter subquery
ALIAS = "_lore_scope"
Unreachable = Literal["hide_facts", "hide", "show"]


class RowRule(Frozen):
    """One row filter: a predicate over one node's attributes, e.g. ``countries.region = 'EMEA'``."""

    filter: str
    #: roles on the path from a table to the filter's node, when several paths exist
    via: tuple[str, ...] = ()
    #: tables whose rows cannot be tied to the filter's node: hide facts (default), hide all, or show whole
    unreachable: Unreachable = "hide_facts"


class Rule(Frozen):
    """What one group or user may see (every field narrows; the defaults narrow nothing)."""

    #: groups only: the identities in the group
    members: tuple[str, ...] = ()
    #: users only: the groups the user is in
    groups: tuple[str, ...] = ()
    #: users only: other names of the same person (``slack:TEAM:USER``)
    identities: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("*",)
    hide_metrics: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ("*",)
    hide_dimensions: tuple[str, ...] = ()
    rows: tuple[RowRule, ...] = ()
    #: says "no limits" explicitly: the person (or the group's members) is not under ``default:``
    unrestricted: bool = False

    @field_validator("rows", mode="before")
    @classmethod
    def _plain_filters(cls, value: Any) -> Any:
        if isinstance(value, (str, dict)):
            value = [value]
        if isinstance(value, (list, tuple)):
            return [{"filter": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("members", "groups", "identities", "metrics", "hide_metrics", "dimensions", "hide_dimensions",
                     mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def limits(self) -> dict[str, Any]:
        """The fields that narrow access (not who the rule is for), for the scope's identity."""
        return self.model_dump(mode="json", exclude={"members", "groups", "identities", "unrestricted"})

    @property
    def narrows(self) -> bool:
        return self.limits() != Rule().limits()


class AccessConfig(Frozen):
    """The ``access:`` section of ``lore.yaml``."""

    #: users no rule names: ``all`` (no limits), ``none`` (nothing) or a group's name
    default: str = "all"
    groups: dict[str, Rule] = {}
    users: dict[str, Rule] = {}

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, *, where: str = "lore.yaml") -> AccessConfig | None:
        """Validate the raw section; None when there is none. Errors say which key is wrong."""
        if raw is None:
            return None
        try:
            config = cls.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(f"access.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ConfigError(f"{where}: {problems}", hint="See the README's 'Access control' section for the keys.") from None
        known = set(config.groups)
        if config.default not in ("all", "none") and config.default not in known:
            raise ConfigError(f"{where}: access.default is {config.default!r}, which is not a group",
                              hint="Use all, none or one of the groups: " + (", ".join(sorted(known)) or "(none defined)"))
        for user, rule in config.users.items():
            for group in rule.groups:
                if group not in known:
                    raise ConfigError(f"{where}: access.users.{user}.groups names {group!r}, which is not a group",
                                      hint="Define it under access.groups, or remove it.")
            if rule.members:
                raise ConfigError(f"{where}: access.users.{user} has members; members belong to groups")
        for name, rule in config.groups.items():
            if rule.groups or rule.identities:
                raise ConfigError(f"{where}: access.groups.{name} may not have groups or identities",
                                  hint="List the group's people under members.")
        for kind, entries in (("users", config.users), ("groups", config.groups)):
            for name, rule in entries.items():
                if rule.unrestricted and rule.narrows:
                    raise ConfigError(f"{where}: access.{kind}.{name} says unrestricted: true and also sets limits",
                                      hint="Remove unrestricted (the limits apply) or the limits (no limits).")
        owners: dict[str, str] = {}
        for name, rule in config.users.items():
            for identity in {normalize_identity(name), *(normalize_identity(i) for i in rule.identities)}:
                if identity in owners and owners[identity] != name:
                    raise ConfigError(f"{where}: the identity {identity!r} belongs to two users, access.users."
                                      f"{owners[identity]} and access.users.{name}",
                                      hint="One identity names one person: remove it from one of them.")
                owners[identity] = name
        if config.default != "all":
            for name, rule in config.users.items():
                if not rule.narrows and not rule.groups and not rule.unrestricted and not config.groups_of(name):
                    warnings.warn(
                        f"{where}: access.users.{name} sets no limits and is in no group, so `default: "
                        f"{config.default}` applies to it (older versions gave such an entry no limits). To keep "
                        "that, write `unrestricted: true` under it.", DeprecationWarning, stacklevel=2)
                    log.warning("access.users.%s has no limits and no group: default %s applies "
                                "(write unrestricted: true for no limits)", name, config.default)
        return config

    def groups_of(self, user: str) -> tuple[str, ...]:
        """The groups a ``users:`` entry belongs to: those it names, and those listing any of its identities."""
        rule = self.users[user]
        mine = {normalize_identity(user), *(normalize_identity(i) for i in rule.identities)}
        listed = [g for g, group in self.groups.items() if mine & {normalize_identity(m) for m in group.members}]
        return tuple(dict.fromkeys([*rule.groups, *listed]))

    def principal(self, identity: str) -> Principal:
        """The person ``identity`` names: a ``users:`` entry holding it (by key or ``identities:``), else the
        identity alone; with every group that lists any of that person's identities."""
        me = normalize_identity(identity)
        for name, rule in self.users.items():
            mine = (normalize_identity(name), *(normalize_identity(i) for i in rule.identities))
            if me in mine:
                return Principal(id=f"user:{normalize_identity(name)}", name=name, identities=tuple(dict.fromkeys(mine)),
                                 groups=self.groups_of(name), known=True)
        groups = tuple(g for g, group in self.groups.items() if me in {normalize_identity(m) for m in group.members})
        return Principal(id=me, name=identity.strip(), identities=(me,), groups=groups, known=bool(groups))


def normalize_identity(identity: str) -> str:
    """The one form identities are compared in: Unicode NFKC, inner spaces collapsed, ends trimmed, case folded.

    >>> normalize_identity("  Ana@Example.COM "), normalize_identity("slack:T1:UANA") == normalize_identity("SLACK:t1:uana")
    ('ana@example.com', True)
    """
    return " ".join(unicodedata.normalize("NFKC", identity).split()).casefold()


class Principal(Frozen):
    """One person, whichever of their identities arrived (a login email, ``slack:TEAM:USER``, a header value)."""

    #: stable id: ``user:<entry>`` for a ``users:`` entry, else the normalised identity
    id: str
    #: the ``users:`` key, or the identity as given
    name: str
    #: every normalised identity known to be this person
    identities: tuple[str, ...]
    #: the groups that apply to the person
    groups: tuple[str, ...] = ()
    #: the access section names this person (a ``users:`` entry or a group member)
    known: bool = False


def rules_for(config: AccessConfig | None, user: str | None) -> tuple[tuple[str, Rule], ...] | None:
    """The named rules that apply to ``user``; None when nothing limits them.

    ``user=None`` is the operator (the Python API and the CLI without ``--user``): no limits. Whichever
    identity arrives, the rules are the person's: their ``users:`` entry, every group that lists any of their
    identities, and ``default:`` when neither gives a rule (a ``users:`` entry with no limits and no group is
    under ``default:`` too; ``unrestricted: true`` says "no limits" explicitly).

    >>> cfg = AccessConfig.model_validate({"default": "none"})
    >>> [n for n, _ in rules_for(cfg, "stranger")]
    ['default:none']
    >>> rules_for(cfg, None) is None
    True
    """
    if config is None or user is None:
        return None
    person = config.principal(user)
    rules: list[tuple[str, Rule]] = []
    entry = config.users.get(person.name) if person.id.startswith("user:") else None
    if entry is not None and entry.narrows:
        rules.append((f"user:{person.name}", entry))
    rules += [(f"group:{g}", config.groups[g]) for g in person.groups]
    named = bool(rules) or (entry is not None and entry.unrestricted)
    if not named:
        if config.default == "all":
            return None
        if config.default == "none":
            return (("default:none", Rule(metrics=(), dimensions=())),)
        return ((f"group:{config.default}", config.groups[config.default]),)
    narrowing = tuple((n, r) for n, r in rules if r.narrows)
    return narrowing or None


def rules_for_all(config: AccessConfig | None, users: Sequence[str | None]) -> tuple[tuple[str, Rule], ...] | None:
    """The rules of several people at once: what every one of them may see (each person's rules narrow it).

    >>> cfg = AccessConfig.model_validate({"default": "all", "users": {"a": {"hide_metrics": ["m"]}}})
    >>> [n for n, _ in rules_for_all(cfg, ["a", "b"])], rules_for_all(cfg, ["b"]) is None
    (['user:a'], True)
    """
    merged: dict[str, Rule] = {}
    for user in users:
        for name, rule in rules_for(config, user) or ():
            merged.setdefault(name, rule)
    return tuple(merged.items()) or None


def scope_id(rules: Sequence[tuple[str, Rule]]) -> str:
    """A short stable id of what the rules allow (users with the same limits share caches).

    >>> scope_id([("group:a", Rule(hide_metrics=("x",)))]) == scope_id([("user:b", Rule(hide_metrics=("x",)))])
    True
    """
    limits = sorted(json.dumps(r.limits(), sort_keys=True) for _, r in rules)
    return "scope-" + hashlib.sha256(json.dumps(limits).encode()).hexdigest()[:16]


def _matches(name: str, patterns: Iterable[str]) -> bool:
    """Case-insensitive glob match.

    >>> _matches("countries.region", ["countries.*"]), _matches("x", [])
    (True, False)
    """
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns)


def _allowed(name: str, allow: Iterable[str], deny: Iterable[str]) -> bool:
    return _matches(name, allow) and not _matches(name, deny)


# --- the scope of one set of rules over one layer ---------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one set of rules leaves visible in one semantic layer, and how rows are cut.

    Built by :func:`build_scope`; pure data after that.
    """

    id: str
    rules: tuple[tuple[str, Rule], ...]
    #: the layer with hidden nodes, attributes, links and metrics removed
    layer: SemanticLayer
    #: physical table (lower-cased) -> the columns the user's SQL may read, in the table's order
    schema: dict[str, dict[str, str]]
    #: physical table (lower-cased) -> SQL of the subquery that replaces it (only the rows in scope)
    row_filters: dict[str, str]
    #: human-readable row limits, for reasoning and ``lore access show``
    row_labels: tuple[str, ...] = ()
    hidden_nodes: frozenset[str] = field(default_factory=frozenset)

    def metric_visible(self, name: str) -> bool:
        return name in self.layer.metrics

    def dimension_visible(self, ref: str) -> bool:
        """Whether a dimension reference (``node.attr[role]:grain``, ``metric_time``) names something visible."""
        base = ref.split(":", 1)[0].split("[", 1)[0].strip()
        if base == METRIC_TIME:
            return True
        node_name, _, attr = base.partition(".")
        node = self.layer.nodes.get(node_name)
        if node is None:
            return False
        return not attr or node.column(attr) is not None or attr == node.time_column or attr in node.primary_key


def build_scope(layer: SemanticLayer, schema: Mapping[str, Mapping[str, str]],
                rules: Sequence[tuple[str, Rule]]) -> Scope:
    """Apply ``rules`` to ``layer`` and the warehouse ``schema`` (table -> column -> type).

    Raises :class:`ConfigError` for a rule that names an unknown metric, dimension or
    column, or a row filter whose path is ambiguous.
    """
    rules = tuple(rules)
    _check_names(layer, rules)
    graph = LinkGraph(layer)
    tables = {t.lower(): t for t in schema}
    row_preds: dict[str, list[exp.Expression]] = {}
    hidden: set[str] = set()
    labels: list[str] = []
    for rule_name, rule in rules:
        for row in rule.rows:
            target, predicate = _parse_row_filter(row, layer, schema, rule_name)
            labels.append(row.filter.strip())
            for node in layer.nodes.values():
                path = _row_path(graph, node, target, row, rule_name)
                if path is None:
                    if row.unreachable == "hide" or (row.unreachable == "hide_facts" and node.kind == "source"):
                        hidden.add(node.name)
                    continue
                if node.table:
                    row_preds.setdefault(node.table.lower(), []).append(
                        _path_predicate(layer, path, target, predicate, tables))
    visible = _visible_layer(layer, rules, frozenset(hidden))
    # a table no visible metric can read, directly or through its links, is not readable at all (counts included)
    unreachable = set(visible.nodes) - _reachable_from_metrics(visible, graph)
    if unreachable:
        hidden |= unreachable
        visible = _visible_layer(layer, rules, frozenset(hidden))
    sid = scope_id(rules)
    restricted = _restricted_schema(layer, visible, schema)
    row_filters = {table: _row_subquery(tables[table], restricted[table], preds)
                   for table, preds in row_preds.items() if table in restricted}
    return Scope(id=sid, rules=rules, layer=visible.model_copy(update={"version": f"{layer.version}+{sid}"}),
                 schema=restricted, row_filters=row_filters, row_labels=tuple(dict.fromkeys(labels)),
                 hidden_nodes=frozenset(hidden))


def _reachable_from_metrics(visible: SemanticLayer, graph: LinkGraph) -> set[str]:
    """The nodes a visible metric reads: its source, and every node its declared links reach from there
    (the nodes its dimensions and filters may come from)."""
    todo = [m.source for m in visible.metrics.values() if m.source and m.source in visible.nodes]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [e.target for e in graph.edges.get(name, ()) if e.target in visible.nodes and e.target not in seen]
    return seen


def _check_names(layer: SemanticLayer, rules: Sequence[tuple[str, Rule]]) -> None:
    """A name without glob characters must exist: a typo must not silently grant or deny."""
    attrs = {f"{n.name}.{c.name}" for n in layer.nodes.values() for c in n.columns}
    for rule_name, rule in rules:
        for key, known in (("metrics", set(layer.metrics)), ("hide_metrics", set(layer.metrics)),
                           ("dimensions", attrs), ("hide_dimensions", attrs)):
            for pattern in getattr(rule, key):
                if any(ch in pattern for ch in "*?[") or pattern.lower() in {k.lower() for k in known}:
                    continue
                raise ConfigError(f"lore.yaml: access rule {rule_name}: {key} names {pattern!r}, which the semantic "
                                  "layer does not define",
                                  hint="Use a metric name, a node.attribute reference or a glob such as countries.*")


def _parse_row_filter(row: RowRule, layer: SemanticLayer, schema: Mapping[str, Mapping[str, str]],
                      rule_name: str) -> tuple[Node, exp.Expression]:
    """The filter's node and its predicate (columns still qualified by the node's name)."""
    where = f"lore.yaml: access rule {rule_name}: row filter {row.filter!r}"
    try:
        predicate = sqlglot.parse_one(row.filter, read="duckdb")
    except SqlglotError as err:
        raise ConfigError(f"{where} does not parse: {str(err).splitlines()[0]}",
                          hint="Write a predicate such as countries.region = 'EMEA'.") from None
    columns = list(predicate.find_all(exp.Column))
    nodes = {c.table for c in columns}
    if not columns or "" in nodes or len(nodes) != 1:
        raise ConfigError(f"{where} must use attributes of exactly one node, each written node.attribute",
                          hint="For example countries.region = 'EMEA' or accounts.plan IN ('premium').")
    node = layer.nodes.get(nodes.pop())
    if node is None:
        raise ConfigError(f"{where} names a node the semantic layer does not define",
                          hint="Nodes: " + ", ".join(sorted(layer.nodes)))
    physical = {c.lower() for c in _table_columns(schema, node.table)} if node.table else None
    for col in columns:
        if physical is not None and col.name.lower() not in physical:
            raise ConfigError(f"{where}: {node.name} has no column {col.name!r}",
                              hint="Columns: " + ", ".join(sorted(physical)))
    if any(isinstance(n, (exp.Query, exp.Subquery, exp.Table)) for n in predicate.walk()):
        raise ConfigError(f"{where} may not contain a subquery")
    return node, predicate


def _table_columns(schema: Mapping[str, Mapping[str, str]], table: str | None) -> list[str]:
    if table is None:
        return []
    for name, cols in schema.items():
        if name.lower() == table.lower():
            return list(cols)
    return []


def _row_path(graph: LinkGraph, node: Node, target: Node, row: RowRule, rule_name: str) -> tuple[Edge, ...] | None:
    """The many-to-one path from ``node`` to the filter's node; None when there is none."""
    if node.name == target.name:
        return ()
    paths = [p for p in graph.paths(node.name, target.name)
             if all(e.link.cardinality not in FANNING for e in p) and roles_match(p, row.via)]
    if not paths:
        return None
    shortest = min(len(p) for p in paths)
    best = [p for p in paths if len(p) == shortest]
    if len(best) > 1:
        raise ConfigError(f"lore.yaml: access rule {rule_name}: rows of {node.name} reach {target.name} by "
                          f"{len(best)} paths ({'; '.join(describe_path(p) for p in best)})",
                          hint="Name the roles of the path to use with via: [role].")
    return best[0]


def _path_predicate(layer: SemanticLayer, path: tuple[Edge, ...], target: Node, predicate: exp.Expression,
                    tables: Mapping[str, str]) -> exp.Expression:
    """The condition on the table's own row (alias ``_lore_scope0``) that ties it to the filter's rows."""
    final = len(path)

    def rename(tree: exp.Expression, names: Mapping[str, str]) -> exp.Expression:
        def fix(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Column) and n.table in names:
                return exp.column(n.name, table=names[n.table], quoted=True)
            return n

        return tree.copy().transform(fix)

    condition = rename(predicate, {target.name: f"{ALIAS}{final}"})
    for step in range(final, 0, -1):
        edge = path[step - 1]
        node = layer.nodes[edge.target]
        on = rename(edge.condition, {edge.source: f"{ALIAS}{step - 1}", edge.target: f"{ALIAS}{step}"})
        inner = exp.select("1").from_(_source(node, f"{ALIAS}{step}", tables)).where(exp.and_(on, condition))
        condition = exp.Exists(this=inner)
    return condition


def _source(node: Node, alias: str, tables: Mapping[str, str]) -> exp.Expression:
    if node.table:
        real = tables.get(node.table.lower(), node.table)
        return exp.Table(this=exp.to_identifier(real, quoted=True), alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    assert node.sql is not None
    return exp.alias_(exp.Subquery(this=sqlglot.parse_one(node.sql, read="duckdb")), alias, table=True, quoted=True)


def _row_subquery(table: str, columns: Mapping[str, str], predicates: Sequence[exp.Expression]) -> str:
    """``SELECT <visible columns> FROM table WHERE <every predicate>`` as DuckDB SQL."""
    select = exp.select(*[exp.column(c, table=f"{ALIAS}0", quoted=True) for c in columns]).from_(
        exp.Table(this=exp.to_identifier(table, quoted=True), alias=exp.TableAlias(this=exp.to_identifier(f"{ALIAS}0", quoted=True))))
    return select.where(exp.and_(*predicates)).sql(dialect="duckdb")


def _visible_layer(layer: SemanticLayer, rules: Sequence[tuple[str, Rule]], hidden: frozenset[str]) -> SemanticLayer:
    def attr_ok(node: Node, col: Column) -> bool:
        ref = f"{node.name}.{col.name}"
        if col.name == node.time_column:  # a fact's own time is hidden only by name, never by an allow-list
            return not any(_matches(ref, r.hide_dimensions) for _, r in rules)
        return all(_allowed(ref, r.dimensions, r.hide_dimensions) for _, r in rules)

    nodes: dict[str, Node] = {}
    for name, node in layer.nodes.items():
        if name in hidden:
            continue
        columns = tuple(c for c in node.columns if attr_ok(node, c))
        links = tuple(link for link in node.links if link.to not in hidden)
        removed = {c.name for c in node.columns} - {c.name for c in columns}
        time_column = None if node.time_column in removed else node.time_column
        nodes[name] = node.model_copy(update={"columns": columns, "links": links, "time_column": time_column})
    metrics = {}
    for name, metric in layer.metrics.items():
        if not all(_allowed(name, r.metrics, r.hide_metrics) for _, r in rules):
            continue
        if metric.source is not None and metric.source not in nodes:
            continue
        metrics[name] = metric
    changed = True
    while changed:  # a derived metric needs every metric it is made of
        changed = False
        for name, metric in list(metrics.items()):
            if metric.is_derived and any(ref not in metrics for ref in derived_refs(metric)):
                del metrics[name]
                changed = True
    return layer.model_copy(update={"nodes": nodes, "metrics": metrics})


def _column_names(text: str | None) -> set[str]:
    if not text:
        return set()
    try:
        return {c.name.lower() for c in sqlglot.parse_one(text, read="duckdb").find_all(exp.Column)}
    except SqlglotError:
        return set()


def _restricted_schema(layer: SemanticLayer, visible: SemanticLayer,
                       schema: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The columns a scoped user's SQL may read: visible attributes, keys, link and time columns, and what
    the visible metrics read. Tables of hidden nodes are gone."""
    wanted: dict[str, set[str]] = {}
    for node in visible.nodes.values():
        if not node.table:
            continue
        cols = wanted.setdefault(node.table.lower(), set())
        cols.update(c.name.lower() for c in node.columns)
        cols.update(k.lower() for k in node.primary_key)
        if node.time_column:
            cols.add(node.time_column.lower())
    graph = LinkGraph(layer)
    for name, edges in graph.edges.items():  # join columns on both ends of every link between visible nodes
        if name not in visible.nodes:
            continue
        for edge in edges:
            if edge.target not in visible.nodes:
                continue
            for src, dst in edge.pairs:
                for node_name, col in ((edge.source, src), (edge.target, dst)):
                    table = visible.nodes[node_name].table
                    if table:
                        wanted.setdefault(table.lower(), set()).add(col.lower())
    for metric in visible.metrics.values():
        node = visible.nodes.get(metric.source or "")
        if node is not None and node.table:
            wanted.setdefault(node.table.lower(), set()).update(_column_names(metric.expr) | _column_names(metric.filter))
    out: dict[str, dict[str, str]] = {}
    for table, cols in schema.items():
        keep = wanted.get(table.lower())
        if keep is None:
            continue
        out[table.lower()] = {c: t for c, t in cols.items() if c.lower() in keep}
    return out


# --- a retriever that only returns what the scope may see ----------------------------------------


class ScopedRetriever:
    """The project's retriever, with hits outside a scope removed (the index is shared; nothing is rebuilt)."""

    def __init__(self, base: Retriever, scope: Scope, values: Mapping[str, Sequence[str]],
                 example_ok: Any = None, layer: SemanticLayer | None = None) -> None:
        from lore.retrieve.documents import layer_documents

        self._base = base
        self._scope = scope
        self._values = {ref: frozenset(vals) for ref, vals in values.items()}
        self._example_ok = example_ok
        self.embedder = base.embedder
        #: metric and dimension documents as the scope's layer writes them (no sample value it does not hold)
        self._texts = {d.id: d.text for d in layer_documents(layer or scope.layer, values) if d.kind in ("metric", "dimension")}

    def _keep_value(self, ref: str, value: str | None) -> bool:
        return value is not None and value in self._values.get(ref, frozenset())

    def search(self, question: str, *, k: int = 8, kinds: Any = None) -> RetrievalResult:
        found = self._base.search(question, k=k * 3 + 8, kinds=kinds)
        kept, per_kind = [], {}
        for hit in found.hits:
            if not self._visible_hit(hit):
                continue
            if per_kind.get(hit.kind, 0) >= k:
                continue
            per_kind[hit.kind] = per_kind.get(hit.kind, 0) + 1
            if hit.kind in ("metric", "dimension"):
                hit = hit.model_copy(update={"text": self._texts.get(hit.id, hit.ref)})
            kept.append(hit)
        return found.model_copy(update={"hits": tuple(kept), "k": k})

    def retrieve(self, question: str, *, k: int = RETRIEVE_K) -> RetrievalResult:
        """The retrieve stage's result, cut to the scope (see :meth:`lore.retrieve.Retriever.retrieve`)."""
        return self.search(question, k=k).model_copy(update={"values": tuple(self.match_values(question))})

    def _visible_hit(self, hit: Any) -> bool:
        if hit.kind == "metric":
            return self._scope.metric_visible(hit.ref)
        if hit.kind == "dimension":
            return self._scope.dimension_visible(hit.ref)
        if hit.kind == "value":
            return self._keep_value(hit.ref, hit.value)
        if hit.kind == "example":
            return self.example(hit.ref) is not None
        return False

    def match_values(self, question: str) -> list[ValueMatch]:
        return [m for m in self._base.match_values(question) if self._keep_value(m.ref, m.value)]

    def example(self, example_id: str) -> Example | None:
        example = self._base.example(example_id)
        if example is None or self._example_ok is None:
            return None
        return example if self._example_ok(example) else None

    def count(self, kind: str | None = None) -> int:
        return self._base.count(kind)


# --- a Lore seen through one scope ------------------------------------------------------------

class NoAccessPlanner:
    """The planner of a scope that leaves no metric visible: every question gets the same refusal."""

    def __init__(self, rules: Sequence[tuple[str, Rule]]) -> None:
        self._names = ", ".join(n for n, _ in rules)

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome:
        return PlanOutcome(status="refuse", message=(
            f"Your access ({self._names}) lets you see no metric in this project. "
            "Ask the project's operator to grant you access in lore.yaml."))


class ScopedPlanner:
    """A scope's planner: when the question names a value, attribute or metric outside the scope that the plan
    does not otherwise explain, the answer says so instead of silently dropping or emptying it."""

    def __init__(self, inner: Any, lore: ScopedLore) -> None:
        self.inner = inner
        self._lore = lore

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome:
        outcome = self.inner.plan(question, previous, answer_id=answer_id, retrieval=retrieval)
        items = self._lore.outside(question, outcome) if question.strip() else []
        if not items:
            return outcome
        names = sorted(self._lore.layer.metrics)[:4]
        return PlanOutcome(status="refuse", message=outside_message(items, self._lore.scope), suggestions=tuple(names),
                           signals={"access": 0.0})

    def __getattr__(self, name: str) -> Any:  # replan and other planner entry points pass through
        return getattr(self.inner, name)


class ScopedLore(Lore):
    """One project as one user may see it: its own layer, schema, values, retrieval and planner; the engine,
    index, caches, model and feedback store are the project's (shared, never rebuilt per user)."""

    def __init__(self, base: Lore, scope: Scope) -> None:
        super().__init__(base.project, base.settings)
        self.base = base
        self.scope = scope
        #: example content hash -> whether this scope may see it (searches ask again and again; contents never change)
        self._example_verdicts: dict[str, bool] = {}

    # shared with the project
    @property  # type: ignore[override]
    def engine(self):  # noqa: ANN201
        return self.base.engine

    @property  # type: ignore[override]
    def llm_log(self):  # noqa: ANN201
        return self.base.llm_log

    @property  # type: ignore[override]
    def model(self):  # noqa: ANN201
        return self.base.model

    @property  # type: ignore[override]
    def answer_cache(self):  # noqa: ANN201
        return self.base.answer_cache

    @property  # type: ignore[override]
    def plan_cache(self):  # noqa: ANN201
        return self.base.plan_cache

    @property  # type: ignore[override]
    def disk_cache(self):  # noqa: ANN201
        return self.base.disk_cache

    @property  # type: ignore[override]
    def feedback_backend(self):  # noqa: ANN201
        return self.base.feedback_backend

    @property
    def _examples_revision(self) -> int:  # type: ignore[override]
        return self.base._examples_revision

    @_examples_revision.setter
    def _examples_revision(self, value: int) -> None:
        pass  # the project's retriever keeps the revision

    def sync_examples(self) -> None:
        self.base.sync_examples()

    def for_user(self, user: str | None) -> Lore:
        return self.base.for_user(user)

    # seen through the scope
    @cached_property
    def layer(self) -> SemanticLayer:  # type: ignore[override]
        """The scope's layer; with row limits, also without the sample values, value synonyms and descriptions
        that name rows outside them (so no answer, document or prompt names another region's countries)."""
        filtered = {n.name for n in self.scope.layer.nodes.values() if n.table and n.table.lower() in self.scope.row_filters}
        if not filtered:
            return self.scope.layer
        return cut_metadata(self.scope.layer, self.values, self.base.values, filtered)

    @property  # type: ignore[override]
    def schema(self) -> dict[str, dict[str, str]]:
        return self.scope.schema

    @cached_property
    def values(self) -> dict[str, list[str]]:
        """The project's indexed values of visible attributes, cut to the rows in scope."""
        from lore.execute.engine import distinct_values_sql

        out: dict[str, list[str]] = {}
        for ref, values in self.base.values.items():
            node_name, _, attr = ref.partition(".")
            node = self.scope.layer.nodes.get(node_name)
            if node is None or node.column(attr) is None:
                continue
            if node.table and node.table.lower() in self.scope.row_filters:
                sql = distinct_values_sql(node.table, attr, max(len(values), 1))
                seen = {str(row[0]) for row in self.sql(sql).rows}
                values = [v for v in values if v in seen]
            out[ref] = list(values)
        return out

    @cached_property
    def retriever(self) -> ScopedRetriever:  # type: ignore[override]
        return ScopedRetriever(self.base.retriever, self.scope, self.values, example_ok=self._example_visible,
                               layer=self.layer)

    @cached_property
    def planner(self):  # noqa: ANN201
        if not self.layer.metrics:
            return NoAccessPlanner(self.scope.rules)
        return ScopedPlanner(Lore.planner.func(self), self)  # type: ignore[attr-defined]

    def outside(self, question: str, outcome: PlanOutcome) -> list[Outside]:
        """What the question names outside this scope that its plan does not explain (see :func:`outside_access`)."""
        base = self.base.retriever
        return outside_access(question, outcome, full_layer=self.base.layer, scope=self.scope,
                              value_matches=base.match_values(question), in_scope=self.values,
                              metric_hits=base.search(question, k=4, kinds=["metric"]).hits)

    def _example_visible(self, example: Example) -> bool:
        """Whether a verified example's plan is valid in this scope: it names only what the scope sees, compiles
        in the scope's layer, and what it runs (and the SQL it was verified with) passes this scope's guard."""
        verdict = self._example_verdicts.get(example.content_hash)
        if verdict is None:
            verdict = self._example_verdicts[example.content_hash] = self._judge_example(example)
        return verdict

    def _judge_example(self, example: Example) -> bool:
        try:
            plan = QueryPlan.model_validate_json(example.plan_json)
        except ValueError:
            return False
        refs_ok = (all(self.scope.metric_visible(m) for m in plan.metrics)
                   and all(self.scope.dimension_visible(d) for d in plan.dimensions)
                   and all(self.scope.metric_visible(f.ref) or self.scope.dimension_visible(f.ref) for f in plan.filters)
                   and all(self.scope.metric_visible(o.ref) or self.scope.dimension_visible(o.ref) for o in plan.order_by))
        if not refs_ok:
            return False
        try:  # what the example runs for this person: its plan compiled in this scope (or its SQL), guarded here
            runs = self.compile_plan(plan).sql
        except LoreError:
            return False
        for sql in (runs, example.sql):
            if sql:
                try:
                    self.guard(sql)
                except LoreError:
                    return False
        return True

    def plan_cache_key(self, question: str, previous: QueryPlan | None) -> str:
        return f"{super().plan_cache_key(question, previous)}|{self.scope.id}"

    def cache_key(self, plan: QueryPlan, *, scope: str | None = None) -> str:
        return super().cache_key(plan, scope=self.scope.id)

    def guard(self, sql: str):  # noqa: ANN201
        """The project's guard over this scope's columns, with its row filters wrapped around every table."""
        from lore.guard import guard_sql

        return guard_sql(sql, self.schema, dialect="duckdb", default_limit=self.settings.default_limit,
                         max_rows=self.settings.max_rows, row_filters=self.scope.row_filters)

    def access_note(self, row_filtered: Sequence[str]) -> str | None:
        if not row_filtered or not self.scope.row_labels:
            return None
        return (f"Your access limits the rows read from {', '.join(row_filtered)} to: "
                + "; ".join(self.scope.row_labels) + ".")

    def warm_up(self) -> dict[str, float]:
        took = self.base.warm_up()
        self.values, self.retriever, self.planner  # noqa: B018 - build the scoped parts once
        return took

    def close(self) -> None:
        """Nothing to close: the project's parts belong to the project's Lore."""


__all__ = ["AccessConfig", "NoAccessPlanner", "Principal", "Rule", "RowRule", "Scope", "ScopedLore", "ScopedRetriever",
           "build_scope", "cut_metadata", "normalize_identity", "outside_access", "refs_visible", "rules_for",
           "rules_for_all", "scope_id"]


# --- telling a restricted user what lies outside their access ----------------------------------------


def mentions(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words, ignoring case and spacing.

    >>> mentions("streaming hours in Brazil", "brazil"), mentions("Brazilian films", "Brazil")
    (True, False)
    """
    words = phrase.split()
    if not words or len(phrase.strip()) < 2:
        return False
    pattern = r"\s+".join(re.escape(w) for w in words)
    return re.search(rf"(?<![\w]){pattern}(?![\w])", text, re.IGNORECASE) is not None


def cut_metadata(layer: SemanticLayer, in_scope: Mapping[str, Sequence[str]], everything: Mapping[str, Sequence[str]],
                 filtered_nodes: Collection[str]) -> SemanticLayer:
    """The layer with what names rows outside the scope removed: sample values and value synonyms of values the
    scope's rows do not hold, and descriptions that name such a value (nodes, attributes and metrics).

    ``in_scope`` and ``everything`` map ``node.attr`` to the distinct values a scoped user and the whole
    warehouse hold; ``filtered_nodes`` are the nodes whose rows the scope cuts.
    """
    outside: list[str] = []
    for ref, values in everything.items():
        if ref.split(".", 1)[0] in filtered_nodes:
            kept = set(in_scope.get(ref, ()))
            outside += [str(v) for v in values if v not in kept and len(str(v).strip()) >= 2]

    def clean(text: str | None) -> str | None:
        if not text or not any(mentions(text, v) for v in outside):
            return text
        return ""

    nodes = {}
    for name, node in layer.nodes.items():
        columns = []
        for col in node.columns:
            ref = f"{name}.{col.name}"
            update: dict[str, Any] = {"description": clean(col.description)}
            if name in filtered_nodes:
                if ref in everything:
                    kept = set(in_scope.get(ref, ()))
                    update["sample_values"] = tuple(v for v in col.sample_values if v in kept)
                    update["value_synonyms"] = {v: s for v, s in col.value_synonyms.items() if v in kept}
                else:  # values never read: nothing says which of them are in scope
                    update["sample_values"] = ()
                    update["value_synonyms"] = {}
            columns.append(col.model_copy(update=update))
        nodes[name] = node.model_copy(update={"columns": tuple(columns), "description": clean(node.description)})
    metrics = {name: m.model_copy(update={"description": clean(m.description)}) for name, m in layer.metrics.items()}
    return layer.model_copy(update={"nodes": nodes, "metrics": metrics})


def refs_visible(layer: SemanticLayer, plan: QueryPlan) -> bool:
    """Whether every metric, dimension, filter and ordering a plan names exists in ``layer`` (a scope's layer)."""
    def dim(ref: str) -> bool:
        base = ref.split(":", 1)[0].split("[", 1)[0].strip()
        if base == METRIC_TIME:
            return True
        node_name, _, attr = base.partition(".")
        node = layer.nodes.get(node_name)
        return node is not None and (not attr or node.column(attr) is not None or attr == node.time_column
                                     or attr in node.primary_key)

    def any_ref(ref: str) -> bool:
        return ref in layer.metrics or dim(ref)

    return (all(m in layer.metrics for m in plan.metrics) and all(dim(d) for d in plan.dimensions)
            and all(any_ref(f.ref) for f in plan.filters) and all(any_ref(o.ref) for o in plan.order_by))


@dataclass(frozen=True)
class Outside:
    """Something a question names that lies outside the asker's access."""

    #: what the question said
    phrase: str
    #: why it is outside: "value" (rows the scope cuts), "attribute" (a hidden attribute), "metric" (a hidden metric)
    kind: str
    #: what it is, in words ("country", "age band", "cloud cost")
    what: str


def _explained(outcome: PlanOutcome, phrase: str) -> bool:
    """The scoped plan accounts for these words with something the asker may see."""
    if outcome.status != "plan" or outcome.plan is None:
        return False
    return any(g.score >= 0.9 and g.source in ("name", "label", "synonym", "value", "rule", "previous turn",
                                                  "verified example")
               and (mentions(g.phrase, phrase) or mentions(phrase, g.phrase) and g.kind != "time")
               for g in outcome.plan.groundings)


def _visible_phrases(layer: SemanticLayer) -> list[str]:
    """Every name a scope's layer gives its metrics, nodes and attributes (as people would write them)."""
    out: list[str] = []
    for m in layer.metrics.values():
        out += [m.name.replace("_", " "), m.display, *m.synonyms]
    for node in layer.nodes.values():
        out += [node.name.replace("_", " "), node.label or "", *node.synonyms]
        for col in node.columns:
            out += [col.name.replace("_", " "), col.display, *col.synonyms]
    return [p for p in dict.fromkeys(out) if p and len(p) >= 2]


def outside_access(question: str, outcome: PlanOutcome, *, full_layer: SemanticLayer, scope: Scope,
                   value_matches: Sequence[ValueMatch], in_scope: Mapping[str, Sequence[str]],
                   metric_hits: Sequence[Any]) -> list[Outside]:
    """What the question names that the asker may not see, and the scoped plan does not otherwise explain.

    ``value_matches`` are the *whole* warehouse's value mentions in the question, ``metric_hits`` the whole
    layer's metric hits, ``in_scope`` the values the asker's rows hold.
    """
    found: list[Outside] = []
    spoken: list[tuple[ValueMatch, str]] = [(m, question[m.span[0]:m.span[1]]) for m in value_matches if m.score >= 0.8]
    for node in full_layer.nodes.values():  # value synonyms ("Latin America" for LATAM) name values too
        for col in node.columns:
            for value, names in col.value_synonyms.items():
                said = next((n for n in names if mentions(question, n)), None)
                if said is not None:
                    spoken.append((ValueMatch(f"{node.name}.{col.name}", value, (0, 0), 1.0), said))
    visible = [v for v in _visible_phrases(scope.layer) if mentions(question, v)]
    longest = [said for _, said in spoken]
    for match, said in spoken:
        if _explained(outcome, said) or any(mentions(v, said) for v in visible):
            continue  # the words are (part of) a name the asker may see: "streaming" in "streaming hours"
        if any(len(other) > len(said) and mentions(other, said) for other in longest):
            continue  # part of a longer mention: "America" in "Latin America"
        node_name, _, attr = match.ref.partition(".")
        full_node = full_layer.nodes.get(node_name)
        col = full_node.column(attr) if full_node else None
        what = col.display if col is not None else attr.replace("_", " ")
        if not scope.dimension_visible(match.ref):
            found.append(Outside(phrase=said, kind="attribute", what=what))
        elif match.value not in set(in_scope.get(match.ref, ())):
            found.append(Outside(phrase=said, kind="value", what=what))
    hidden = [h for h in metric_hits if h.ref not in scope.layer.metrics and h.lexical_score >= 0.99]
    if hidden and not any(h.ref in scope.layer.metrics and h.lexical_score >= hidden[0].lexical_score
                          for h in metric_hits):
        metric = full_layer.metrics.get(hidden[0].ref)
        if metric is not None:
            names = [metric.name.replace("_", " "), metric.display, *metric.synonyms]
            said = next((n for n in names if mentions(question, n)), None)
            if said is not None and not _explained(outcome, said):
                found.append(Outside(phrase=said, kind="metric", what=metric.display))
    unique: dict[str, Outside] = {}
    for item in found:
        unique.setdefault(item.phrase.casefold(), item)
    return [item for item in unique.values()  # "production" is part of "production budget": say it once
            if not any(len(o.phrase) > len(item.phrase) and mentions(o.phrase, item.phrase) for o in unique.values())]


def outside_message(items: Sequence[Outside], scope: Scope) -> str:
    """The refusal that tells a restricted user what lies outside their access, and what they do see."""
    parts = []
    for item in items:
        if item.kind == "value":
            parts.append(f"“{item.phrase}” ({item.what}) is outside the rows you may see")
        elif item.kind == "attribute":
            parts.append(f"“{item.phrase}” is a value of {item.what}, which your access does not include")
        else:
            parts.append(f"{item.what} is a metric your access does not include")
    seen = (f" You see rows where {'; '.join(scope.row_labels)}."
            if scope.row_labels and any(i.kind == "value" for i in items) else "")
    text = "; ".join(parts) + "." + seen + " Ask about what your access includes, or ask the project's operator for more."
    return text[0].upper() + text[1:]
