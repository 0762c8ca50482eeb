"""Validate a semantic layer: return *every* issue, each with its file and line.

``validate(layer, schema, values=...)`` never stops at the first problem. ``schema``
(table -> column -> type, read from the warehouse) enables the physical checks: tables
and columns that do not exist. ``values`` (``node.column`` -> the distinct values read
from the warehouse) enables the check of ``value_synonyms``.

Besides the structural checks in :func:`validate`, each of :data:`CHECKS` finds one
kind of mistake that would otherwise pass here and fail later, on every question that
touches it: a ``sql:`` node reading a table the guard does not allow, a function the
guard refuses, a name that cannot be written in a reference, a ``compare_by`` that
names nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lore.errors import UnknownReference
from lore.guard.allowlists import ALLOWED_FUNCTIONS, ALLOWED_NODES, DENIED_FUNCTION_NAMES, DENIED_FUNCTION_PREFIXES
from lore.guard.passes import function_name, visible_ctes
from lore.semantic.compile import all_dimension_refs, derived_refs, not_additive, resolve_dimension, suggest
from lore.semantic.issues import Issue
from lore.semantic.spec import NAME_RE, Metric, SemanticLayer, parse_duration
from lore.tables import reference_parts, split_table, table_key

Schema = Mapping[str, Mapping[str, str]]
#: ``node.column`` -> the distinct values read from the warehouse
Values = Mapping[str, Sequence[str]]

#: what a role may be made of: a reference writes roles as ``[a->b]``
ROLE_RE = re.compile(r"^[A-Za-z0-9_]+$")


def _parse(text: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(text, read="duckdb")
    except ParseError:
        return None


def validate(layer: SemanticLayer, schema: Schema | None = None, *, values: Values | None = None) -> list[Issue]:
    """All issues of ``layer``; physical checks when ``schema`` is given, value checks when ``values`` are.

    >>> from lore.semantic.spec import Metric
    >>> layer = SemanticLayer(metrics={"a": Metric(name="a", expr="b / 2"), "b": Metric(name="b", expr="a + 1")})
    >>> [i.code for i in validate(layer) if i.severity == "error"]
    ['metric_cycle']
    """
    issues: list[Issue] = []
    loc = layer.locations
    phys = {table_key(t): {c.lower() for c in cols} for t, cols in (schema or {}).items()}

    def add(code: str, message: str, key: str, hint: str | None = None, severity: str = "error") -> None:
        file, line = loc.get(key, (None, None))
        issues.append(Issue(code=code, message=message, file=file, line=line or None, hint=hint, severity=severity))  # type: ignore[arg-type]

    def node_columns(name: str) -> set[str] | None:
        node = layer.nodes.get(name)
        if node is None:
            return None
        if node.table and phys:
            return phys.get(table_key(node.table))
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
                    hint="declare it under columns with kind: time")
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
        kinds = [k for k, v in (("offset", m.offset), ("window", m.window), ("grain_to_date", m.grain_to_date)) if v]
        if kinds:
            _time_metric(layer, m, kinds, lambda code, message, hint=None: add(code, message, key, hint=hint))
            continue
        if m.is_derived:
            if m.expr.strip() == "*":
                what = f"has agg: {m.agg} but no source" if m.agg else "has neither expr nor source and agg"
                add("metric_undefined", f"metric '{m.name}' {what}", key,
                    hint="give a base metric source: <node> and agg:, with expr: <column> unless it counts rows; "
                         "give a derived metric an expr over other metrics, e.g. revenue / orders")
                continue
            if m.agg or m.filter:
                add("derived_metric", f"derived metric '{m.name}' must not have agg or filter", key,
                    hint="a derived metric is an expression over other metrics; set source to make it a base metric")
            if _parse(m.expr) is None:
                add("metric_expr", f"metric '{m.name}': expression does not parse: {m.expr!r}", key)
                continue
            refs = derived_refs(m)
            if not refs:
                add("metric_undefined", f"derived metric '{m.name}': its expr {m.expr!r} names no other metric", key,
                    hint="a derived metric is arithmetic over other metrics, e.g. revenue / orders; "
                         "to aggregate a column, set source and agg")
            for ref in refs:
                if ref in layer.metrics and layer.metrics[ref].time_type is not None:
                    add("time_metric", f"derived metric '{m.name}' refers to time metric '{ref}': arithmetic over "
                        "a time metric is not supported yet", key,
                        hint="ask for the two metrics side by side, or compare two periods in the question "
                             "(\"... vs last year\")")
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
    for check in CHECKS:
        issues += check(layer)
    if values is not None:
        issues += value_synonym_values(layer, values)
    return issues


# --- checks of what fails later: each a small pure function of the layer -------------------------


def _time_metric(layer: SemanticLayer, m: Metric, kinds: list[str], add: Callable[..., None]) -> None:
    """The checks of a time metric (``offset``, ``window`` or ``grain_to_date`` over the one metric its expr
    names)."""
    example = f"expr: <a metric>, {kinds[0]}: " + ("month" if kinds[0] == "grain_to_date" else "1 year")
    if len(kinds) > 1:
        add("time_metric", f"metric '{m.name}' sets {' and '.join(kinds)}: a time metric is one of offset, window "
            "or grain_to_date", hint="declare one metric for each")
        return
    if not m.is_derived or m.agg or m.filter:
        add("time_metric", f"metric '{m.name}': {kinds[0]} applies to another metric, so it takes no source, agg "
            "or filter", hint=example)
        return
    tree = _parse(m.expr)
    if not isinstance(tree, exp.Column) or tree.table:
        add("time_metric", f"metric '{m.name}': the expr of a metric with {kinds[0]} must name one metric, "
            f"not {m.expr!r}", hint=example)
        return
    base = layer.metrics.get(tree.name)
    if base is None:
        options = suggest(tree.name, sorted(layer.metrics))
        add("unknown_metric", f"metric '{m.name}' applies {kinds[0]} to unknown metric '{tree.name}'",
            hint=("did you mean " + ", ".join(options) + "?") if options else None)
        return
    if base.time_type is not None:
        add("time_metric", f"metric '{m.name}': '{base.name}' is itself a time metric ({base.time_type}); apply "
            f"{kinds[0]} to the metric it is built on", hint=example)
        return
    if m.offset or m.window:
        try:
            parse_duration(m.offset or m.window or "")
        except ValueError as err:
            add("time_metric", f"metric '{m.name}': {kinds[0]}: {err}")
            return
    if (m.window or m.grain_to_date) and not_additive(base) is not None:
        add("time_metric", f"metric '{m.name}': a {kinds[0].replace('_', ' ')} sums '{base.name}' over dates, but "
            f"it is {not_additive(base)}, which does not add up", hint="use it on a sum or a count")


def _issue(layer: SemanticLayer, key: str, code: str, message: str, hint: str | None = None,
           severity: str = "error") -> Issue:
    file, line = layer.locations.get(key, (None, None))
    return Issue(code=code, message=message, file=file, line=line or None, hint=hint, severity=severity)  # type: ignore[arg-type]


def _did_you_mean(name: str, options: Sequence[str]) -> str:
    close = suggest(name, sorted(options))
    return ("did you mean " + ", ".join(close) + "? ") if close else ""


def sql_tables(layer: SemanticLayer) -> list[Issue]:
    """A ``sql:`` node may read only tables the layer declares as ``table:`` of some node: the guard allows no
    other, so every question touching the node would be refused. A table of another schema is written
    ``schema.table``, as the node declares it; a bare name is a table of ``main``; a catalog (database)
    qualifier is refused.

    >>> from lore.semantic.spec import Node
    >>> layer = SemanticLayer(nodes={
    ...     "o": Node(name="o", table="orders"), "r": Node(name="r", table="raw.refunds"),
    ...     "v": Node(name="v", sql="WITH x AS (SELECT * FROM Orders) SELECT * FROM x JOIN raw.refunds USING (id)"),
    ...     "w": Node(name="w", sql="SELECT * FROM refunds JOIN main.orders USING (id)")})
    >>> [i.message for i in sql_tables(layer)]
    ["node 'w': its sql reads table 'refunds', which is the table of no node"]
    """
    declared = {tuple(p.lower() for p in split_table(t)): t for t in layer.tables}
    out: list[Issue] = []
    for node in layer.nodes.values():
        tree = _parse(node.sql) if node.sql else None
        if tree is None:
            continue
        seen: set[tuple[str, str] | str] = set()
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                continue  # a table function: the functions check names it
            parts = reference_parts(table)
            bare = not table.args.get("db") and not table.args.get("catalog")
            if (bare and table.name.lower() in visible_ctes(table)) or (parts or table.sql()) in seen:
                continue
            seen.add(parts or table.sql())
            name = table.name if bare else f"{table.text('db')}.{table.name}"
            key = f"node:{node.name}"
            if parts is None:
                out.append(_issue(layer, key, "sql_table",
                                  f"node '{node.name}': its sql reads '{table.sql()}' with a catalog qualifier",
                                  hint="write the table as the layer's nodes do (table or schema.table): the SQL guard "
                                       "refuses other databases"))
            elif parts not in declared:
                out.append(_issue(
                    layer, key, "sql_table",
                    f"node '{node.name}': its sql reads table '{name}', which is the table of no node",
                    hint=_did_you_mean(name, list(declared.values()))
                    + f"the SQL guard allows only the tables of the layer's nodes: declare a node with table: {name}, "
                      "a dimension with its primary_key is enough, or read a table the layer declares"))
    return out


def _refused(tree: exp.Expression) -> Iterator[tuple[str, str]]:
    """The functions of ``tree`` the SQL guard refuses, each once, with why (as the guard's functions pass decides).

    >>> list(_refused(sqlglot.parse_one("SUM(x) + my_udf(y) + getenv('HOME') + my_udf(z) + epoch(d)", read="duckdb")))
    [('my_udf', 'it is not a function the guard knows'), ('getenv', 'it reads files, settings, secrets or the catalog'), ('epoch', "it is not on the guard's allow-list")]
    """
    seen: set[str] = set()
    for node in tree.find_all(exp.Func, bfs=False):  # in the order they are written
        if type(node) in ALLOWED_NODES:
            continue
        name = function_name(node)
        if name in DENIED_FUNCTION_NAMES or name.startswith(DENIED_FUNCTION_PREFIXES):
            why = "it reads files, settings, secrets or the catalog"
        elif type(node) in ALLOWED_FUNCTIONS:
            continue
        elif isinstance(node, exp.Anonymous):
            why = "it is not a function the guard knows"
        else:
            why = "it is not on the guard's allow-list"
        written = re.match(r"^(\w+)\(", node.sql(dialect="duckdb"))  # as a layer writes it: epoch(), not time_to_unix()
        shown = written.group(1).lower() if written else name
        if shown not in seen:
            seen.add(shown)
            yield shown, why


def refused_functions(layer: SemanticLayer) -> list[Issue]:
    """Functions in a metric's ``expr`` or ``filter`` or a node's ``sql:`` that the SQL guard refuses at run time.

    >>> from lore.semantic.spec import Metric
    >>> layer = SemanticLayer(metrics={"m": Metric(name="m", source="s", agg="sum", expr="md5(d)")})
    >>> [i.message for i in refused_functions(layer)]
    ["metric 'm': its expr calls md5(), which the SQL guard refuses: it is not on the guard's allow-list"]
    """
    hint = "use a function on the guard's allow-list, listed in docs/semantic-layer.md, section 4"
    out: list[Issue] = []
    parts: list[tuple[str, str, str, str | None]] = []
    for m in layer.metrics.values():
        parts += [(f"metric:{m.name}", f"metric '{m.name}'", "expr", m.expr if m.expr.strip() != "*" else None),
                  (f"metric:{m.name}", f"metric '{m.name}'", "filter", m.filter)]
    for n in layer.nodes.values():
        parts.append((f"node:{n.name}", f"node '{n.name}'", "sql", n.sql))
    for key, owner, what, text in parts:
        tree = _parse(text) if text else None
        if tree is None:
            continue  # absent, or reported as not parsing
        for name, why in _refused(tree):
            out.append(_issue(layer, key, "refused_function",
                              f"{owner}: its {what} calls {name}(), which the SQL guard refuses: {why}", hint=hint))
    return out


def reference_names(layer: SemanticLayer) -> list[Issue]:
    """Column and role names must be writable in a reference (``node.column[role]``): letters, digits, underscores.

    >>> from lore.semantic.spec import Column, Link, Node
    >>> node = Node(name="o", table="o", columns=(Column(name="order date"),), links=(Link(to="c", on="o.a = c.a", role="bill-to"),))
    >>> [i.message for i in reference_names(SemanticLayer(nodes={"o": node}))]
    ["column 'o.order date' cannot be written in a reference (node.column): use letters, digits and underscores only", "role 'bill-to' of link o -> c cannot be written in a reference (node.column[role]): use letters, digits and underscores only"]
    """
    out: list[Issue] = []
    for node in layer.nodes.values():
        for col in node.attributes:
            if not NAME_RE.match(col.name):
                key = f"column:{node.name}.{col.name}" if f"column:{node.name}.{col.name}" in layer.locations else f"node:{node.name}"
                out.append(_issue(
                    layer, key, "bad_name",
                    f"column '{node.name}.{col.name}' cannot be written in a reference (node.column): use letters, "
                    "digits and underscores only",
                    hint="start with a letter or underscore; to use a warehouse column with another name, make the "
                         "node a sql: node that renames it: SELECT \"Order Date\" AS order_date ..."))
        for i, link in enumerate(node.links):
            if link.role is not None and not ROLE_RE.match(link.role):
                out.append(_issue(
                    layer, f"link:{node.name}#{i}", "bad_name",
                    f"role '{link.role}' of link {node.name} -> {link.to} cannot be written in a reference "
                    "(node.column[role]): use letters, digits and underscores only",
                    hint="rename the role, e.g. bill_to"))
    return out


def compare_by_targets(layer: SemanticLayer) -> list[Issue]:
    """A column's ``compare_by`` must name an attribute of the layer (``node.attribute``).

    >>> from lore.semantic.spec import Column, Node
    >>> node = Node(name="tests", table="tests", primary_key=("test_id",),
    ...             columns=(Column(name="name", compare_by="tests.cel"), Column(name="cell"), Column(name="arm", compare_by="tests.test_id")))
    >>> [i.message for i in compare_by_targets(SemanticLayer(nodes={"tests": node}))]
    ["'tests.name': compare_by 'tests.cel' names no attribute of the layer ('tests' has no attribute 'cel')"]
    """
    out: list[Issue] = []
    for node in layer.nodes.values():
        for col in node.columns:
            if col.compare_by is None:
                continue
            try:
                resolve_dimension(layer, col.compare_by)
                continue
            except UnknownReference as err:
                problem = err.message.removeprefix(f"unknown dimension '{col.compare_by}': ")
            close = suggest(col.compare_by, all_dimension_refs(layer)[1:])
            out.append(_issue(
                layer, f"column:{node.name}.{col.name}", "unknown_compare_by",
                f"'{node.name}.{col.name}': compare_by '{col.compare_by}' names no attribute of the layer ({problem})",
                hint=(f"did you mean {', '.join(close)}? " if close else "")
                + "write node.attribute, the attribute that one value of this column is broken down by"))
    return out


def value_synonym_values(layer: SemanticLayer, values: Values) -> list[Issue]:
    """A ``value_synonyms`` key must be a value the column holds (or one of its ``sample_values``): the synonym
    becomes a filter on that value, which matches no row otherwise. Checked only for text-valued columns
    (categorical, identifier) whose values were read.

    >>> from lore.semantic.spec import Column, Node
    >>> col = Column(name="country", value_synonyms={"United Kingdom": ("UK",), "USA": ("America",)})
    >>> layer = SemanticLayer(nodes={"c": Node(name="c", table="c", columns=(col,))})
    >>> [i.message for i in value_synonym_values(layer, {"c.country": ["United Kingdom", "United States"]})]
    ["'c.country': value_synonyms names the value 'USA', which the column does not hold"]
    >>> value_synonym_values(layer, {})
    []
    """
    out: list[Issue] = []
    for node in layer.nodes.values():
        for col in node.columns:
            ref = f"{node.name}.{col.name}"
            if not col.value_synonyms or ref not in values or col.kind not in ("categorical", "identifier"):
                continue  # a boolean's or a number's values read as text need not be spelt like the keys
            known = {str(v) for v in values[ref]} | {str(v) for v in col.sample_values}
            for value in col.value_synonyms:
                if str(value) not in known:
                    out.append(_issue(
                        layer, f"column:{ref}", "unknown_synonym_value",
                        f"'{ref}': value_synonyms names the value '{value}', which the column does not hold",
                        hint=_did_you_mean(str(value), sorted(known))
                        + "write the value exactly as it is stored: a filter on it would match no row",
                        severity="warning"))
    return out


#: the checks of what would fail later, run by :func:`validate` after the structural ones
CHECKS: tuple[Callable[[SemanticLayer], list[Issue]], ...] = (
    sql_tables,
    refused_functions,
    reference_names,
    compare_by_targets,
)
