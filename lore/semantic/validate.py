"""Validate a semantic layer: return *every* issue, each with its file and line.

``validate(layer, schema)`` never stops at the first problem. ``schema`` (table ->
column -> type, read from the warehouse) enables the physical checks: tables and
columns that do not exist.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lore.semantic.compile import derived_refs, suggest
from lore.semantic.issues import Issue
from lore.semantic.spec import NAME_RE, SemanticLayer

Schema = Mapping[str, Mapping[str, str]]


def _parse(text: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(text, read="duckdb")
    except ParseError:
        return None


def validate(layer: SemanticLayer, schema: Schema | None = None) -> list[Issue]:
    """All issues of ``layer``; physical checks when ``schema`` is given.

    >>> from lore.semantic.spec import Metric
    >>> layer = SemanticLayer(metrics={"a": Metric(name="a", expr="b / 2"), "b": Metric(name="b", expr="a + 1")})
    >>> [i.code for i in validate(layer) if i.severity == "error"]
    ['metric_cycle']
    """
    issues: list[Issue] = []
    loc = layer.locations
    phys = {t.lower(): {c.lower() for c in cols} for t, cols in (schema or {}).items()}

    def add(code: str, message: str, key: str, hint: str | None = None, severity: str = "error") -> None:
        file, line = loc.get(key, (None, None))
        issues.append(Issue(code=code, message=message, file=file, line=line or None, hint=hint, severity=severity))  # type: ignore[arg-type]

    def node_columns(name: str) -> set[str] | None:
        node = layer.nodes.get(name)
        if node is None:
            return None
        if node.table and phys:
            return phys.get(node.table.lower())
        return None

    # nodes -------------------------------------------------------------------
    for node in layer.nodes.values():
        key = f"node:{node.name}"
        if not NAME_RE.match(node.name):
            add("bad_name", f"node name '{node.name}' must be letters, digits and underscores", key)
        if bool(node.table) == bool(node.sql):
            add("node_table", f"node '{node.name}' needs exactly one of table or sql", key)
        if node.sql and _parse(node.sql) is None:
            add("node_sql", f"node '{node.name}': its sql does not parse", key)
        if node.kind == "dimension" and not node.primary_key:
            add("no_primary_key", f"dimension '{node.name}' has no primary_key", key, hint="declare the column(s) that identify a row")
        cols = node_columns(node.name)
        if node.table and phys and cols is None:
            add("unknown_table", f"node '{node.name}': table '{node.table}' is not in the warehouse", key,
                hint=("did you mean " + ", ".join(suggest(node.table, sorted(phys))) + "?") if suggest(node.table, sorted(phys)) else None)
        seen: set[str] = set()
        for col in node.columns:
            ckey = f"column:{node.name}.{col.name}"
            if col.name in seen:
                add("duplicate_column", f"'{node.name}.{col.name}' is declared twice", ckey)
            seen.add(col.name)
            if cols is not None and col.name.lower() not in cols:
                add("unknown_column", f"'{node.name}.{col.name}': table '{node.table}' has no column '{col.name}'", ckey,
                    hint=("did you mean " + ", ".join(suggest(col.name, sorted(cols))) + "?") if suggest(col.name, sorted(cols)) else None)
        for pk in node.primary_key:
            if cols is not None and pk.lower() not in cols:
                add("unknown_column", f"'{node.name}' primary key '{pk}' is not a column of '{node.table}'", key)
        if node.time_column:
            tc = node.column(node.time_column)
            if tc is None:
                add("time_column", f"'{node.name}': time_column '{node.time_column}' is not among its columns", key,
                    hint=f"declare it under columns with kind: time")
            elif tc.kind != "time":
                add("time_column", f"'{node.name}': time_column '{node.time_column}' must have kind: time", key)

        # links
        targets: dict[str, list[str | None]] = {}
        for i, link in enumerate(node.links):
            lkey = f"link:{node.name}#{i}"
            if link.to not in layer.nodes:
                add("unknown_link_target", f"'{node.name}' links to unknown node '{link.to}'", lkey,
                    hint=("did you mean " + ", ".join(suggest(link.to, sorted(layer.nodes))) + "?") if suggest(link.to, sorted(layer.nodes)) else None)
                continue
            if link.to == node.name:
                add("self_link", f"'{node.name}' links to itself; self links are not supported", lkey,
                    hint="declare the dimension as a second node over the same table")
                continue
            targets.setdefault(link.to, []).append(link.role)
            tree = _parse(link.on)
            if tree is None:
                add("link_on", f"link {node.name} -> {link.to}: 'on' does not parse: {link.on!r}", lkey)
                continue
            eqs = [e for e in tree.find_all(exp.EQ)]
            if not eqs:
                add("link_on", f"link {node.name} -> {link.to}: 'on' needs at least one equality", lkey)
            for col in tree.find_all(exp.Column):
                if col.table not in (node.name, link.to):
                    add("link_on", f"link {node.name} -> {link.to}: '{col.sql()}' must be qualified with {node.name} or {link.to}", lkey)
                    continue
                ccols = node_columns(col.table)
                if ccols is not None and col.name.lower() not in ccols:
                    add("unknown_column", f"link {node.name} -> {link.to}: '{col.table}.{col.name}' does not exist", lkey)
            if link.cardinality in ("many_to_one", "one_to_one"):
                target = layer.nodes[link.to]
                on_cols = {c.name for c in tree.find_all(exp.Column) if c.table == link.to}
                if target.primary_key and not set(target.primary_key) <= on_cols:
                    add("link_cardinality",
                        f"link {node.name} -> {link.to} is {link.cardinality} but does not join on {link.to}'s whole primary key {list(target.primary_key)}",
                        lkey, hint="join on the key, or declare cardinality: one_to_many", severity="warning")
        for target, roles in targets.items():
            if len(roles) > 1 and (None in roles or len(set(roles)) != len(roles)):
                add("missing_role", f"'{node.name}' links to '{target}' {len(roles)} times; each link needs a distinct role", f"node:{node.name}",
                    hint="add role: <name> to each of these links (e.g. origin, destination)")

    # metrics -----------------------------------------------------------------
    synonyms: dict[str, str] = {}
    for m in layer.metrics.values():
        key = f"metric:{m.name}"
        if not NAME_RE.match(m.name):
            add("bad_name", f"metric name '{m.name}' must be letters, digits and underscores", key)
        if not m.description:
            add("no_description", f"metric '{m.name}' has no description", key, severity="warning",
                hint="retrieval and the planners feed on descriptions")
        for s in m.synonyms:
            other = synonyms.get(s.lower())
            if other and other != m.name:
                add("duplicate_synonym", f"synonym '{s}' is used by both '{other}' and '{m.name}'", key, severity="warning")
            synonyms[s.lower()] = m.name
        if m.is_derived:
            if m.agg or m.filter:
                add("derived_metric", f"derived metric '{m.name}' must not have agg or filter", key,
                    hint="a derived metric is an expression over other metrics; set source to make it a base metric")
            if _parse(m.expr) is None:
                add("metric_expr", f"metric '{m.name}': expression does not parse: {m.expr!r}", key)
                continue
            for ref in derived_refs(m):
                if ref not in layer.metrics:
                    add("unknown_metric", f"derived metric '{m.name}' refers to unknown metric '{ref}'", key,
                        hint=("did you mean " + ", ".join(suggest(ref, sorted(layer.metrics))) + "?") if suggest(ref, sorted(layer.metrics)) else None)
            continue
        src = layer.nodes.get(m.source or "")
        if src is None:
            add("unknown_source", f"metric '{m.name}' aggregates over unknown source '{m.source}'", key,
                hint=("did you mean " + ", ".join(suggest(m.source or "", sorted(layer.nodes))) + "?") if suggest(m.source or "", sorted(layer.nodes)) else None)
            continue
        if not m.agg:
            add("no_agg", f"metric '{m.name}' has a source but no agg", key, hint="set agg: sum|count|count_distinct|avg|min|max")
        cols = node_columns(src.name)
        for what, text in (("expression", m.expr), ("filter", m.filter)):
            if not text or text.strip() == "*":
                continue
            tree = _parse(text)
            if tree is None:
                add("metric_expr", f"metric '{m.name}': {what} does not parse: {text!r}", key)
                continue
            for col in tree.find_all(exp.Column):
                if col.table and col.table != src.name:
                    add("metric_expr", f"metric '{m.name}': {what} may only use columns of {src.name}, not {col.sql()}", key)
                elif cols is not None and col.name.lower() not in cols:
                    add("unknown_column", f"metric '{m.name}': {src.table} has no column '{col.name}'", key,
                        hint=("did you mean " + ", ".join(suggest(col.name, sorted(cols))) + "?") if suggest(col.name, sorted(cols)) else None)
        if m.expr.strip() == "*" and m.agg not in (None, "count"):
            add("metric_expr", f"metric '{m.name}': expr '*' only works with agg: count", key)

    # cycles among derived metrics
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        m = layer.metrics.get(name)
        if m is None or not m.is_derived or _parse(m.expr) is None:
            return
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = stack[stack.index(name):] + [name]
            add("metric_cycle", "derived metrics form a cycle: " + " -> ".join(cycle), f"metric:{name}")
            return
        state[name] = 1
        for ref in derived_refs(m):
            visit(ref, stack + [name])
        state[name] = 2

    for name in sorted(layer.metrics):
        visit(name, [])
    return issues
