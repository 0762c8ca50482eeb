"""The scope of one set of rules over one layer: what stays visible, and the SQL that cuts rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lore.access.config import ALIAS, Rule, RowRule, _allowed, _matches, scope_id
from lore.errors import ConfigError
from lore.semantic.compile import derived_refs
from lore.semantic.graph import FANNING, Edge, LinkGraph, describe_path, roles_match
from lore.semantic.spec import METRIC_TIME, Column, Node, SemanticLayer
from lore.tables import table_expr, table_key


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
    #: physical table (lower-cased, ``raw.orders`` outside the main schema) -> the columns the user's SQL may read,
    #: in the table's order
    schema: dict[str, dict[str, str]]
    #: physical table (lower-cased, as in ``schema``) -> SQL of the subquery that replaces it (only the rows in scope)
    row_filters: dict[str, str]
    #: human-readable row limits, for reasoning and ``lore access show``
    row_labels: tuple[str, ...] = ()
    hidden_nodes: frozenset[str] = field(default_factory=frozenset)

    def metric_visible(self, name: str) -> bool:
        return name in self.layer.metrics

    def rows_note(self, row_filtered: Sequence[str]) -> str | None:
        """A sentence for the reasoning when these row limits applied to ``row_filtered`` tables (None: none did)."""
        if not row_filtered or not self.row_labels:
            return None
        return f"Your access limits the rows read from {', '.join(row_filtered)} to: " + "; ".join(self.row_labels) + "."

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
                rules: Sequence[tuple[str, Rule]], *, dialect: str = "duckdb") -> Scope:
    """Apply ``rules`` to ``layer`` and the warehouse ``schema`` (table -> column -> type); row filters are written
    in the engine's ``dialect``.

    Raises :class:`ConfigError` for a rule that names an unknown metric, dimension or
    column, or a row filter whose path is ambiguous.
    """
    rules = tuple(rules)
    _check_names(layer, rules)
    graph = LinkGraph(layer)
    tables = {table_key(t): t for t in schema}
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
                    row_preds.setdefault(table_key(node.table), []).append(
                        _path_predicate(layer, path, target, predicate, tables))
    visible = _visible_layer(layer, rules, frozenset(hidden))
    # a table no visible metric can read, directly or through its links, is not readable at all (counts included)
    unreachable = set(visible.nodes) - _reachable_from_metrics(visible, graph)
    if unreachable:
        hidden |= unreachable
        visible = _visible_layer(layer, rules, frozenset(hidden))
    sid = scope_id(rules)
    restricted = _restricted_schema(layer, visible, schema)
    row_filters = {table: _row_subquery(tables[table], restricted[table], preds, dialect)
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
        if table_key(name) == table_key(table):
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
        real = table_expr(tables.get(table_key(node.table), node.table), quoted=True)
        real.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        return real
    assert node.sql is not None
    return exp.alias_(exp.Subquery(this=sqlglot.parse_one(node.sql, read="duckdb")), alias, table=True, quoted=True)


def _row_subquery(table: str, columns: Mapping[str, str], predicates: Sequence[exp.Expression],
                  dialect: str) -> str:
    """``SELECT <visible columns> FROM table WHERE <every predicate>`` as the engine's SQL (``raw.orders``: schema and
    table quoted apart)."""
    source = table_expr(table, quoted=True)
    source.set("alias", exp.TableAlias(this=exp.to_identifier(f"{ALIAS}0", quoted=True)))
    select = exp.select(*[exp.column(c, table=f"{ALIAS}0", quoted=True) for c in columns]).from_(source)
    return select.where(exp.and_(*predicates)).sql(dialect=dialect)


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
        cols = wanted.setdefault(table_key(node.table), set())
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
                        wanted.setdefault(table_key(table), set()).add(col.lower())
    for metric in visible.metrics.values():
        node = visible.nodes.get(metric.source or "")
        if node is not None and node.table:
            wanted.setdefault(table_key(node.table), set()).update(_column_names(metric.expr) | _column_names(metric.filter))
    out: dict[str, dict[str, str]] = {}
    for table, cols in schema.items():
        keep = wanted.get(table_key(table))
        if keep is None:
            continue
        out[table_key(table)] = {c: t for c, t in cols.items() if c.lower() in keep}
    return out
