"""Loading and validating a semantic layer: every issue, each with its file and line, all at once.

YAML texts are written inline with their line numbers in mind (line 1 is the first line of
the string); the physical checks use a schema read from the fixture warehouse's
information_schema.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from lore.errors import CompileError, OperatorError, SemanticLayerError
from lore.semantic.compile import compile_query
from lore.semantic.issues import Issue
from lore.semantic.load import load_layer, parse_documents, read_layer
from lore.semantic.spec import SemanticLayer
from lore.semantic.validate import validate
from lore.types import SemanticQuery


def parse(text: str, name: str = "layer.yaml") -> tuple[SemanticLayer, list[Issue]]:
    return parse_documents([(name, dedent(text).lstrip("\n"))])


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "error"]


def only(issues: list[Issue], code: str) -> Issue:
    found = [i for i in issues if i.code == code]
    assert len(found) == 1, [i.render() for i in issues]
    return found[0]


# --- the fixture ---------------------------------------------------------------------------------------


def test_fixture_layer_validates_without_issues(shop) -> None:
    issues = validate(shop.layer, shop.schema())
    assert issues == [], [i.render() for i in issues]


def test_fixture_schema_is_read_from_information_schema(shop) -> None:
    schema = shop.schema()
    assert set(schema) >= set(shop.layer.tables)
    assert schema["orders"]["order_date"] == "DATE"


def test_version_is_a_content_hash() -> None:
    a, _ = parse("metrics:\n  - {name: a, source: s, agg: count}\n")
    b, _ = parse("metrics:\n  - {name: a, source: s, agg: count}\n")
    c, _ = parse("metrics:\n  - {name: a, source: s, agg: sum, expr: x}\n")
    assert a.version == b.version != c.version


# --- loading: malformed YAML, unknown fields, duplicates ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        pytest.param("metrics:\n  - name: a\n    source: s\n   agg: sum\n", 4, "expected", id="bad-indent"),
        pytest.param("metrics:\n  - {name: a, source: s\n  - name: b\n", 3, "expected", id="unclosed-flow-mapping"),
        pytest.param("metrics:\n  - name: a\n\tsource: s\n", 3, "\\t", id="tab"),
        pytest.param("metrics:\n  - name: a\n    source: s\n    name: b\n", 4, "duplicate key 'name'", id="duplicate-key"),
    ],
)
def test_malformed_yaml_reports_the_line(text: str, line: int, fragment: str) -> None:
    layer, issues = parse_documents([("bad.yaml", text)])
    issue = only(issues, "yaml_syntax")
    assert (issue.file, issue.line) == ("bad.yaml", line)
    assert fragment in issue.message
    assert issue.render().startswith(f"bad.yaml:{line}: [yaml_syntax]")
    assert layer.metrics == {}


def test_malformed_file_does_not_hide_the_others() -> None:
    layer, issues = parse_documents(
        [("a.yaml", "metrics: [\n"), ("b.yaml", "metrics:\n  - {name: ok, source: s, agg: count}\n")]
    )
    assert [i.file for i in issues] == ["a.yaml"]
    assert list(layer.metrics) == ["ok"]


def test_unknown_field_in_a_metric() -> None:
    layer, issues = parse(
        """
        metrics:
          - name: a
            source: orders
            agg: count
          - name: b
            source: orders
            agregate: sum
        """
    )
    issue = only(issues, "invalid_field")
    assert issue.file == "layer.yaml"
    assert issue.line in (5, 7), "the line of the metric (5) or of the field (7)"
    assert "agregate" in issue.message and issue.path and "agregate" in issue.path
    assert list(layer.metrics) == ["a"]


def test_unknown_field_in_a_link_points_into_the_node() -> None:
    _, issues = parse(
        """
        sources:
          - name: s
            table: s
            links:
              - to: t
                on: s.a = t.b
                cardinalty: one_to_many
        """
    )
    issue = only(issues, "invalid_field")
    assert issue.line in (5, 7), "the line of the link (5) or of the field (7), not of the node (2)"
    assert "cardinalty" in issue.message


def test_bad_enum_value_lists_the_valid_ones() -> None:
    _, issues = parse(
        """
        metrics:
          - name: a
            source: s
            agg: median
        """
    )
    issue = only(issues, "invalid_field")
    assert issue.line in (2, 4)
    assert "count_distinct" in issue.message


def test_unknown_top_level_section() -> None:
    _, issues = parse(
        """
        sources: []
        measures:
          - name: a
        """
    )
    issue = only(issues, "unknown_section")
    assert (issue.file, issue.line) == ("layer.yaml", 1)
    assert "measures" in issue.message


def test_top_level_must_be_a_mapping() -> None:
    _, issues = parse("- just\n- a list\n")
    assert only(issues, "yaml_shape").line == 1


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        dedent(
            """\
            dimensions:
              - name: customers
                table: customers
                primary_key: [customer_id]
            metrics:
              - {name: revenue, source: orders, agg: sum, expr: amount}
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "b.yaml").write_text(
        dedent(
            """\
            # the same names again
            metrics:
              - {name: order_count, source: orders, agg: count}
              - {name: revenue, source: orders, agg: sum, expr: amount}
            dimensions:
              - name: customers
                table: customers
            """
        ),
        encoding="utf-8",
    )
    layer, issues = read_layer(tmp_path)
    dups = sorted((i.file, i.line, i.message) for i in issues if i.code == "duplicate_name")
    assert [(f, ln) for f, ln, _ in dups] == [("b.yaml", 4), ("b.yaml", 6)]
    assert "first at a.yaml:6" in dups[0][2] and "'revenue'" in dups[0][2]
    assert "first at a.yaml:2" in dups[1][2] and "'customers'" in dups[1][2]
    assert layer.nodes["customers"].primary_key == ("customer_id",), "the first definition wins"

    with pytest.raises(SemanticLayerError) as info:
        load_layer(tmp_path)
    assert len(info.value.issues) == 2
    assert "b.yaml:4: [duplicate_name]" in str(info.value) and "b.yaml:6: [duplicate_name]" in str(info.value)


def test_missing_layer_is_an_operator_error(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="not found"):
        load_layer(tmp_path / "nowhere")
    with pytest.raises(OperatorError, match="No YAML files"):
        load_layer(tmp_path)


# --- YAML 1.1 booleans: `on:` is a key, not True ---------------------------------------------------------------


def test_on_key_is_read_as_a_string() -> None:
    layer, issues = parse(
        """
        sources:
          - name: s
            table: s
            primary_key: [id]
            links:
              - to: t
                on: s.t_id = t.id
              - {to: t, on: s.u_id = t.id, role: other}
        dimensions:
          - name: t
            table: t
            primary_key: [id]
            columns:
              - {name: flag, unique: true, sample_values: [yes, no, on, off, y, n]}
        """
    )
    assert issues == []
    first, second = layer.nodes["s"].links
    assert first.on == "s.t_id = t.id" and second.on == "s.u_id = t.id"
    col = layer.nodes["t"].columns[0]
    assert col.sample_values == ("yes", "no", "on", "off", "y", "n")
    assert col.unique is True


# --- validation against the warehouse schema --------------------------------------------------------------------


SCHEMA_CHECKED = """
sources:
  - name: orders
    table: orders
    primary_key: [order_id]
    time_column: order_date
    columns:
      - {name: order_date, kind: time}
      - {name: stauts}
    links:
      - to: customers
        on: orders.customer_id = customers.customer_key
dimensions:
  - name: customers
    table: customers
    primary_key: [customer_id]
    columns:
      - {name: segment}
  - name: shops
    table: shops
    primary_key: [shop_id]
metrics:
  - {name: revenue, source: orders, agg: sum, expr: amout, description: x}
"""


def test_unknown_columns_and_tables_against_the_warehouse(shop) -> None:
    layer, load_issues = parse(SCHEMA_CHECKED)
    assert load_issues == []
    issues = errors(validate(layer, shop.schema()))
    found = sorted((i.code, i.line) for i in issues)
    assert found == [
        ("unknown_column", 8),  # orders.stauts
        ("unknown_column", 10),  # customers.customer_key in the link
        ("unknown_column", 22),  # revenue's expr amout
        ("unknown_table", 18),  # shops
    ], [i.render() for i in issues]
    by_line = {i.line: i for i in issues}
    assert "status" in by_line[8].render(), "suggests the close column"
    assert "amount" in by_line[22].render()
    assert all(i.file == "layer.yaml" for i in issues)


def test_without_a_schema_no_physical_checks() -> None:
    layer, _ = parse(SCHEMA_CHECKED)
    assert errors(validate(layer)) == []


# --- structural validation ------------------------------------------------------------------------------------------


def test_unknown_link_target() -> None:
    layer, _ = parse(
        """
        sources:
          - name: orders
            table: orders
            primary_key: [order_id]
            links:
              - to: customers
                on: orders.customer_id = customers.customer_id
              - to: custmers
                on: orders.customer_id = custmers.customer_id
        dimensions:
          - name: customers
            table: customers
            primary_key: [customer_id]
        """
    )
    issue = only(validate(layer), "unknown_link_target")
    assert (issue.file, issue.line) == ("layer.yaml", 8)
    assert "custmers" in issue.message and "customers" in (issue.hint or "")


def test_cycle_among_derived_metrics() -> None:
    layer, _ = parse(
        """
        metrics:
          - {name: base, source: s, agg: count, description: x}
          - {name: a, expr: b / base, description: x}
          - {name: b, expr: c + 1, description: x}
          - {name: c, expr: a * 2, description: x}
        """
    )
    issue = only(validate(layer), "metric_cycle")
    assert issue.file == "layer.yaml" and issue.line == 3
    assert "a -> b -> c -> a" in issue.message
    with pytest.raises(CompileError, match="cycle"):
        compile_query(layer, SemanticQuery(metrics=("c",)))


def test_self_reference_is_a_cycle() -> None:
    layer, _ = parse("metrics:\n  - {name: a, expr: a + 1, description: x}\n")
    assert only(validate(layer), "metric_cycle").line == 2


@pytest.mark.parametrize(
    ("roles", "flagged"),
    [
        pytest.param(("", ""), True, id="no-roles"),
        pytest.param(("origin", ""), True, id="one-role-missing"),
        pytest.param(("origin", "origin"), True, id="same-role-twice"),
        pytest.param(("origin", "destination"), False, id="distinct-roles"),
    ],
)
def test_missing_role(roles: tuple[str, str], flagged: bool) -> None:
    role_a, role_b = (f"\n                role: {r}" if r else "" for r in roles)
    layer, issues = parse(
        f"""
        sources:
          - name: flights
            table: flights
            primary_key: [flight_id]
            links:
              - to: airports
                on: flights.origin = airports.code{role_a}
              - to: airports
                on: flights.destination = airports.code{role_b}
        dimensions:
          - name: airports
            table: airports
            primary_key: [code]
        """
    )
    assert issues == []
    found = [i for i in validate(layer) if i.code == "missing_role"]
    if flagged:
        assert len(found) == 1 and (found[0].file, found[0].line) == ("layer.yaml", 2)
        assert "airports" in found[0].message
    else:
        assert found == []


def test_time_column_must_be_a_declared_time_column() -> None:
    layer, _ = parse(
        """
        sources:
          - name: orders
            table: orders
            primary_key: [order_id]
            time_column: created_at
          - name: refunds
            table: refunds
            primary_key: [refund_id]
            time_column: refund_date
            columns:
              - {name: refund_date}
        """
    )
    issues = [i for i in validate(layer) if i.code == "time_column"]
    assert sorted((i.line, i.severity) for i in issues) == [(2, "error"), (6, "error")]
    assert "created_at" in issues[0].message and "kind: time" in issues[1].message


def test_base_and_derived_metric_mistakes() -> None:
    layer, _ = parse(
        """
        sources:
          - {name: s, table: s, primary_key: [id]}
        metrics:
          - {name: no_agg, source: s, description: x}
          - {name: star_sum, source: s, agg: sum, description: x}
          - {name: derived_with_agg, expr: no_agg + 1, agg: sum, description: x}
          - {name: to_nowhere, expr: missing_metric / 2, description: x}
          - {name: other_table, source: s, agg: sum, expr: t.amount, description: x}
        """
    )
    found = sorted((i.code, i.line) for i in errors(validate(layer)))
    assert found == [
        ("derived_metric", 6),
        ("metric_expr", 5),
        ("metric_expr", 8),
        ("no_agg", 4),
        ("unknown_metric", 7),
    ], found


def test_time_metric_mistakes_are_named_with_what_to_write() -> None:
    layer, _ = parse(
        """
        sources:
          - {name: s, table: s, primary_key: [id], time_column: d, columns: [{name: d, kind: time}]}
        metrics:
          - {name: total, source: s, agg: sum, expr: x, description: x}
          - {name: people, source: s, agg: count_distinct, expr: id, description: x}
          - {name: last_year, expr: total, offset: 1 year, description: x}
          - {name: two_kinds, expr: total, offset: 1 year, window: 7 days, description: x}
          - {name: bad_duration, expr: total, offset: a year, description: x}
          - {name: not_one_metric, expr: total / people, window: 7 days, description: x}
          - {name: distinct_window, expr: people, window: 7 days, description: x}
          - {name: on_a_source, source: s, agg: sum, expr: x, grain_to_date: month, description: x}
          - {name: of_a_time_metric, expr: last_year, offset: 1 month, description: x}
          - {name: growth, expr: total / last_year - 1, description: x}
          - {name: unknown_base, expr: totl, grain_to_date: month, description: x}
        """
    )
    found = {i.line: (i.code, i.message) for i in errors(validate(layer))}
    assert sorted(found) == [7, 8, 9, 10, 11, 12, 13, 14], found
    assert "a time metric is one of offset, window or grain_to_date" in found[7][1]
    assert "'a year' is not a duration" in found[8][1]
    assert "must name one metric" in found[9][1]
    assert "does not add up" in found[10][1]
    assert "takes no source, agg or filter" in found[11][1]
    assert "is itself a time metric" in found[12][1]
    assert "arithmetic over a time metric is not supported yet" in found[13][1]
    assert found[14][0] == "unknown_metric" and "did you mean total" in str(
        [i.hint for i in validate(layer) if i.line == 14])


# --- every issue at once -------------------------------------------------------------------------------------------


def test_loader_reports_every_issue_at_once() -> None:
    text = dedent(
        """\
        sources:
          - name: orders
            table: orders
            primary_key: [order_id]
            colums: []
        metrics:
          - {name: revenue, source: orders, agg: sum, expr: amount}
          - {name: revenue, source: orders, agg: count}
        extras: {}
        """
    )
    _, issues = parse_documents([("three.yaml", text)])
    assert sorted((i.code, i.line) for i in issues) == [
        ("duplicate_name", 8),
        ("invalid_field", 2),
        ("unknown_section", 1),
    ], [i.render() for i in issues]
    err = SemanticLayerError(issues)
    message = str(err)
    assert message.startswith("The semantic layer has 3 issue(s):")
    for issue in issues:
        assert issue.render() in message
    assert "lore semantic validate" in message


def test_load_layer_raises_with_every_issue(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "metrics:\n  - {name: a, source: s, agg: count}\n  - {name: a, source: s, agg: count}\n  - {name: b, agg: median}\n",
        encoding="utf-8",
    )
    (tmp_path / "also_broken.yaml").write_text("metrics: [\n", encoding="utf-8")
    with pytest.raises(SemanticLayerError) as info:
        load_layer(tmp_path)
    rendered = [i.render() for i in info.value.issues]
    assert len(rendered) == 3, rendered
    assert {i.file for i in info.value.issues} == {"broken.yaml", "also_broken.yaml"}
    assert sorted((i.file, i.line, i.code) for i in info.value.issues) == [
        ("also_broken.yaml", 2, "yaml_syntax"),
        ("broken.yaml", 3, "duplicate_name"),
        ("broken.yaml", 4, "invalid_field"),
    ]


def test_validator_reports_every_issue_at_once() -> None:
    layer, load_issues = parse(
        """
        sources:
          - name: orders
            table: orders
            primary_key: [order_id]
            time_column: order_day
            links:
              - to: clients
                on: orders.customer_id = clients.customer_id
        metrics:
          - {name: revenue, source: order, agg: sum, expr: amount, description: x}
        """
    )
    assert load_issues == []
    issues = errors(validate(layer))
    assert sorted((i.code, i.line) for i in issues) == [
        ("time_column", 2),
        ("unknown_link_target", 7),
        ("unknown_source", 10),
    ], [i.render() for i in issues]
    assert all(i.file == "layer.yaml" for i in issues)
    message = str(SemanticLayerError(issues))
    assert all(f"layer.yaml:{i.line}: [{i.code}]" in message for i in issues)


# --- what would fail later: a layer that validates must not fail on every question -------------------------------
#
# Each case: a layer, the issues validate must report (code, line, severity) and words their text must hold.
# These mistakes used to validate and then fail at the guard or crash the compiler on the first question.

LATER = [
    pytest.param(
        """
        sources:
          - name: orders
            table: Orders
            primary_key: [order_id]
          - name: refunded_orders
            primary_key: [order_id]
            sql: |
              WITH o AS (SELECT * FROM orders)
              SELECT o.order_id FROM o JOIN refunds AS r ON r.order_id = o.order_id
        """,
        [("sql_table", 5, "error")],
        ["table 'refunds'", "the table of no node", "table: refunds"],
        id="sql-node-reads-an-undeclared-table",
    ),
    pytest.param(
        """
        sources:
          - name: orders
            table: orders
            primary_key: [order_id]
          - name: recent
            primary_key: [order_id]
            sql: SELECT order_id FROM main.orders UNION ALL SELECT order_id FROM raw.orders
          - name: elsewhere
            primary_key: [order_id]
            sql: SELECT order_id FROM warehouse.main.orders
        """,
        [("sql_table", 5, "error"), ("sql_table", 8, "error")],
        ["table 'raw.orders', which is the table of no node", "'warehouse.main.orders' with a catalog qualifier"],
        id="sql-node-reads-a-table-of-another-schema-or-database",
    ),
    pytest.param(
        """
        metrics:
          - {name: base, source: s, agg: count, description: x}
          - {name: margin, description: revenue minus cost}
          - {name: cost, agg: sum, description: x}
          - {name: one, expr: "1", description: x}
        sources:
          - {name: s, table: s, primary_key: [id]}
        """,
        [("metric_undefined", 3, "error"), ("metric_undefined", 4, "error"), ("metric_undefined", 5, "error")],
        ["'margin' has neither expr nor source and agg", "'cost' has agg: sum but no source", "names no other metric"],
        id="metric-with-no-definition",
    ),
    pytest.param(
        """
        sources:
          - name: orders
            table: orders
            primary_key: [order_id]
          - name: order_years
            primary_key: [order_id]
            sql: SELECT order_id, epoch(order_date) AS t, date_trunc('year', order_date) AS y FROM orders
        metrics:
          - {name: hashed, source: orders, agg: count_distinct, expr: md5(customer_id), description: x}
          - {name: flagged, source: orders, agg: count, filter: "my_flag(status) AND lower(status) = 'paid'", description: x}
          - {name: fine, source: orders, agg: sum, expr: "COALESCE(amount, 0) * ROUND(1.5)", description: x}
          - {name: ratio, expr: "fine / NULLIF(hashed, 0) + getenv('HOME')", description: x}
        """,
        [("refused_function", 5, "error"), ("refused_function", 9, "error"),
         ("refused_function", 10, "error"), ("refused_function", 12, "error")],
        ["its sql calls epoch()", "its expr calls md5()", "its filter calls my_flag()", "not a function the guard knows",
         "its expr calls getenv()", "reads files, settings"],
        id="functions-the-guard-refuses",
    ),
    pytest.param(
        """
        sources:
          - name: flights
            table: flights
            primary_key: ["flight id"]
            columns:
              - {name: "flight date", kind: time}
              - {name: passengers_2}
            links:
              - to: airports
                on: flights.origin = airports.code
                role: origin-airport
              - to: airports
                on: flights.destination = airports.code
                role: destination
        dimensions:
          - {name: airports, table: airports, primary_key: [code]}
        """,
        [("bad_name", 2, "error"), ("bad_name", 6, "error"), ("bad_name", 9, "error")],
        ["'flights.flight id'", "'flights.flight date'", "role 'origin-airport'", "letters, digits and underscores"],
        id="names-a-reference-cannot-hold",
    ),
    pytest.param(
        """
        sources:
          - name: allocations
            table: allocations
            primary_key: [test_id, account_id]
            columns:
              - {name: cell}
            links:
              - {to: tests, on: allocations.test_id = tests.test_id}
        dimensions:
          - name: tests
            table: tests
            primary_key: [test_id]
            columns:
              - {name: test_name, unique: true, compare_by: allocations.cel}
              - {name: test_code, compare_by: allocations.cell}
              - {name: owner, compare_by: tests.test_id}
              - {name: team, compare_by: teams.team}
        """,
        [("unknown_compare_by", 14, "error"), ("unknown_compare_by", 17, "error")],
        ["compare_by 'allocations.cel'", "did you mean allocations.cell", "compare_by 'teams.team'", "no node 'teams'"],
        id="compare-by-names-no-attribute",
    ),
]


@pytest.mark.parametrize(("text", "expected", "fragments"), LATER)
def test_validate_catches_what_would_fail_later(text: str, expected: list[tuple[str, int, str]], fragments: list[str]) -> None:
    layer, load_issues = parse(text)
    assert load_issues == []
    issues = validate(layer)
    assert sorted((i.code, i.line, i.severity) for i in issues) == sorted(expected), [i.render() for i in issues]
    rendered = "\n".join(i.render() for i in issues)
    for fragment in fragments:
        assert fragment in rendered, rendered
    assert all(i.hint and i.file == "layer.yaml" for i in issues), "each says what to do, and where"


def test_every_later_failure_is_reported_at_once() -> None:
    layer, _ = parse(
        """
        sources:
          - name: orders
            table: orders
            primary_key: [order_id]
            columns:
              - {name: "status code", compare_by: orders.stauts}
          - {name: v, primary_key: [id], sql: "SELECT id, now() AS t FROM payments"}
        metrics:
          - {name: empty, description: x}
        """
    )
    codes = sorted({i.code for i in validate(layer)})
    assert codes == ["bad_name", "metric_undefined", "refused_function", "sql_table", "unknown_compare_by"]


def test_a_metric_without_definition_is_a_compile_error_not_a_crash() -> None:
    layer, _ = parse("sources:\n  - {name: s, table: s, primary_key: [id]}\nmetrics:\n  - {name: m, description: x}\n")
    with pytest.raises(CompileError, match="'m' has no definition"):
        compile_query(layer, SemanticQuery(metrics=("m",)))


def test_an_undeclared_table_in_sql_is_what_the_guard_refuses(shop) -> None:
    from lore.errors import GuardError
    from lore.guard import guard_sql

    layer, _ = parse(
        """
        sources:
          - name: orders
            table: orders
            primary_key: [order_id]
          - name: refunded
            primary_key: [refund_id]
            sql: SELECT refund_id, refund_amount FROM refunds
        metrics:
          - {name: refunded_amount, source: refunded, agg: sum, expr: refund_amount, description: x}
        """
    )
    assert only(validate(layer, shop.schema()), "sql_table").line == 5
    allowed = {t: cols for t, cols in shop.schema().items() if t in layer.tables}
    cq = compile_query(layer, SemanticQuery(metrics=("refunded_amount",)))
    with pytest.raises(GuardError, match="refunds"):
        guard_sql(cq.sql, allowed)


VALUE_SYNONYMS = """
dimensions:
  - name: customers
    table: customers
    primary_key: [customer_id]
    columns:
      - name: segment
        sample_values: [wholesale]
        value_synonyms:
          retail: [consumers]
          Business: [B2B]
          wholesale: [trade]
      - name: customer_name
        kind: identifier
        value_synonyms:
          Anne: [Annie]
"""


def test_value_synonyms_name_values_the_column_holds(shop) -> None:
    layer, _ = parse(VALUE_SYNONYMS)
    values = {"customers.segment": [r[0] for r in shop.con.execute("SELECT DISTINCT segment FROM customers").fetchall()]}
    issue = only(validate(layer, shop.schema(), values=values), "unknown_synonym_value")
    assert (issue.severity, issue.line) == ("warning", 6)
    assert "'Business'" in issue.message and "business" in (issue.hint or ""), "suggests the stored spelling"
    # without the values read (no warehouse, or a column whose values are not read) nothing is claimed
    assert [i for i in validate(layer, shop.schema()) if i.code == "unknown_synonym_value"] == []
