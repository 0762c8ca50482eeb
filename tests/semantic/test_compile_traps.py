"""The compiler's traps as data: every case of ``cases.yaml`` compiled, checked and run on DuckDB.

A case gives a semantic query and either the rows it must return on the shop fixture
(worked out by hand) or the error it must raise. Some cases also pin the SQL (compared
structurally through sqlglot) or structural facts of the tree (no joins, two aliases, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlglot import exp

import lore.errors
from lore.semantic.compile import compile_query
from lore.semantic.graph import MAX_DEPTH, Edge, LinkGraph
from lore.semantic.load import parse_documents
from lore.semantic.spec import Column, Link, Metric, Node, SemanticLayer
from lore.semantic.validate import validate
from lore.types import Filter, SemanticQuery

CASES_FILE = Path(__file__).parent / "cases.yaml"

#: rows of the table "Test cases a correct compiler passes" in shared/semantic-layer.md
#: (the dialects row is covered by test_dialects.py), plus the extra groups the cases use
TABLE_ROWS = (
    "scalar metric",
    "fan-out trap",
    "fan-out-immune metric",
    "chasm trap",
    "two facts by month with a derived ratio",
    "two facts, no dimensions",
    "filter on an attribute two hops away, not grouped by",
    "role-playing dimension",
    "ambiguous role",
    "derived ratio",
    "time grain truncation",
    "metric filter",
    "OR across two dimensions",
    "NULL dimension group",
    "dimension unreachable from a fact",
    "order/limit by semantic names",
    "a filter value with a quote",
    "a cycle in the link graph",
)
EXTRA_GROUPS = ("pinned key", "many-to-many bridge", "fact without a primary key", "unknown reference",
                "structured filter op", "filter injection", "share of total", "top n within groups",
                "period comparison", "rate per entity", "running total", "entity threshold", "time metric")
CASE_KEYS = {"name", "covers", "trap", "query", "rows", "error", "columns", "sql", "structure", "xfail"}
QUERY_KEYS = {"metrics", "dimensions", "filters", "order_by", "limit", "share", "rank_within", "compare", "per", "running_total", "threshold"}


def load_cases() -> list[dict[str, Any]]:
    return yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        cases = load_cases()
        params = [
            pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c["xfail"])) if c.get("xfail") else c
            for c in cases
        ]
        metafunc.parametrize("case", params, ids=[c.get("name", "?") for c in cases])


# --- the cases file itself ------------------------------------------------------------------


def test_cases_are_well_formed() -> None:
    cases = load_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    for c in cases:
        assert set(c) <= CASE_KEYS, (c["name"], set(c) - CASE_KEYS)
        assert {"name", "covers", "trap", "query"} <= set(c), c["name"]
        assert ("rows" in c) != ("error" in c), f"{c['name']}: exactly one of rows / error"
        assert set(c["query"]) <= QUERY_KEYS, (c["name"], set(c["query"]) - QUERY_KEYS)
        assert c["covers"] in TABLE_ROWS + EXTRA_GROUPS, (c["name"], c["covers"])
        if "error" in c:
            assert hasattr(lore.errors, c["error"]["type"]), c["name"]
            assert c["error"].get("contains"), f"{c['name']}: say what the message must contain"
        if "xfail" in c:
            assert str(c["xfail"]).startswith("BUG: "), f"{c['name']}: an xfail names the bug"


def test_every_table_row_has_a_case() -> None:
    covered = {c["covers"] for c in load_cases()}
    assert set(TABLE_ROWS + EXTRA_GROUPS) <= covered, set(TABLE_ROWS + EXTRA_GROUPS) - covered


# --- the cases ----------------------------------------------------------------------------------


def _check_structure(shop, cq, structure: dict[str, Any]) -> None:
    tree = shop.tree(cq)
    for type_name, n in (structure.get("count") or {}).items():
        node_type = getattr(exp, type_name)
        found = len(list(tree.find_all(node_type)))
        assert found == n, f"expected {n} {type_name} node(s), found {found}:\n{cq.sql}"
    if "ctes" in structure:
        names = sorted(cte.alias for cte in tree.find_all(exp.CTE))
        assert names == sorted(structure["ctes"]), cq.sql
    for table, n in (structure.get("aliases") or {}).items():
        aliases = {t.alias_or_name for t in tree.find_all(exp.Table) if t.name == table}
        assert len(aliases) == n, f"{table} read under {sorted(aliases)}:\n{cq.sql}"
    for text in structure.get("joins_include") or ():
        assert any(text in j for j in cq.joins), (text, cq.joins)


def test_case(shop, case: dict[str, Any]) -> None:
    query = shop.query(case["query"])
    if "error" in case:
        err_type = getattr(lore.errors, case["error"]["type"])
        with pytest.raises(lore.errors.LoreError) as info:
            shop.compile(query)
        assert type(info.value) is err_type, f"{type(info.value).__name__}: {info.value}"
        message = str(info.value)
        for text in case["error"]["contains"]:
            assert str(text) in message, f"{text!r} not in:\n{message}"
        return

    cq = shop.compile(query)
    if "sql" in case:
        assert shop.canonical_sql(cq.sql) == shop.canonical_sql(case["sql"])
    if "columns" in case:
        assert [c.name for c in cq.columns] == case["columns"]
        assert shop.columns(cq.sql) == case["columns"]
    _check_structure(shop, cq, case.get("structure") or {})
    shop.assert_rows(shop.rows(cq.sql), case["rows"], ordered=bool(query.order_by))


# --- properties the table states, checked on the tree ------------------------------------------------


def test_scalar_metric_reads_one_table(shop) -> None:
    cq = shop.compile({"metrics": ["revenue", "order_count", "paid_revenue"]})
    tree = shop.tree(cq)
    assert not list(tree.find_all(exp.Join))
    assert {t.name for t in tree.find_all(exp.Table)} == {"orders", "orders_metrics"}
    assert cq.tables == ("orders",) and cq.joins == ()


def test_chasm_each_fact_aggregated_on_its_own(shop) -> None:
    """Each fact CTE reads only its own fact table (plus dimensions) and aggregates before the union."""
    cq = shop.compile({"metrics": ["revenue", "refund_amount"], "dimensions": ["customers.segment"]})
    ctes = {cte.alias: cte.this for cte in shop.tree(cq).find_all(exp.CTE)}
    facts = {"orders", "refunds"}
    for name, fact in (("orders_metrics", "orders"), ("refunds_metrics", "refunds")):
        tables = {t.name for t in ctes[name].find_all(exp.Table)}
        assert tables & facts == {fact}, (name, tables)
        assert ctes[name].args.get("group"), f"{name} is not aggregated"
    assert isinstance(ctes["combined"], exp.Union) and not ctes["combined"].args.get("distinct")


def test_filter_not_grouped_by_stays_out_of_the_output(shop) -> None:
    cq = shop.compile(
        {"metrics": ["revenue"], "dimensions": ["customers.segment"], "filters": ["countries.region = 'EU'"]}
    )
    tree = shop.tree(cq)
    assert [s.alias_or_name for s in tree.selects] == ["segment", "revenue"]
    cte = next(c.this for c in tree.find_all(exp.CTE) if c.alias == "orders_metrics")
    grouped = [g.sql() for g in cte.args["group"].expressions]
    assert grouped == ["customers.segment"], grouped
    assert "countries.region" in cte.args["where"].sql()


def test_role_playing_aliases_join_the_right_columns(shop) -> None:
    cq = shop.compile({"metrics": ["passengers"], "dimensions": ["airports.city[origin]", "airports.city[destination]"]})
    tree = shop.tree(cq)
    on_by_alias = {j.this.alias_or_name: j.args["on"].sql() for j in tree.find_all(exp.Join)}
    assert len(on_by_alias) == 2
    origin = next(a for a, on in on_by_alias.items() if "flights.origin" in on)
    destination = next(a for a, on in on_by_alias.items() if "flights.destination" in on)
    assert origin != destination
    selects = {s.alias: s.this.sql() for s in tree.find(exp.CTE).this.selects}
    assert selects["origin_city"] == f"{origin}.city"
    assert selects["destination_city"] == f"{destination}.city"


def test_time_grain_truncates_the_fact_time_column(shop) -> None:
    for grain in ("week", "month", "quarter", "year"):
        cq = shop.compile({"metrics": ["revenue"], "dimensions": [f"metric_time:{grain}"]})
        truncs = list(shop.tree(cq).find_all(exp.DateTrunc, exp.TimestampTrunc))
        assert truncs, cq.sql
        assert all(t.this.sql() == "orders.order_date" for t in truncs), cq.sql
        assert {t.text("unit").upper() for t in truncs} == {grain.upper()}, cq.sql


def test_monday_weeks_on_duckdb(shop) -> None:
    """The week of every day of one calendar week (Mon 2026-02-23 .. Sun 2026-03-01) starts on Monday."""
    cq = shop.compile({"metrics": ["revenue"], "dimensions": ["metric_time:week"]})
    rows = dict(shop.rows(cq.sql))
    assert rows["2026-02-23"] == pytest.approx(10.0)  # the Sunday order of 2026-03-01
    assert "2026-03-01" not in rows


def test_metric_filter_is_applied_after_aggregation(shop) -> None:
    cq = shop.compile({"metrics": ["revenue"], "dimensions": ["customers.segment"], "filters": ["revenue > 50"]})
    tree = shop.tree(cq)
    cte = next(c.this for c in tree.find_all(exp.CTE) if c.alias == "orders_metrics")
    assert cte.args.get("where") is None, "a metric filter must not filter rows before aggregating"
    outer_where = tree.args.get("where") or tree.args.get("having")
    assert outer_where is not None and "revenue" in outer_where.sql()


def test_or_across_dimensions_is_one_predicate(shop) -> None:
    cq = shop.compile(
        {"metrics": ["revenue"], "filters": ["countries.region = 'EU' OR customers.segment = 'business'"]}
    )
    where = shop.tree(cq).find(exp.CTE).this.args["where"]
    assert isinstance(where.this, exp.Or), where.sql()


def test_null_group_uses_left_joins(shop) -> None:
    cq = shop.compile({"metrics": ["revenue"], "dimensions": ["countries.region"]})
    joins = list(shop.tree(cq).find_all(exp.Join))
    assert joins and all(j.side == "LEFT" for j in joins), cq.sql


def test_quote_is_escaped_not_pasted(shop) -> None:
    cq = shop.compile({"metrics": ["revenue"], "filters": [{"ref": "customers.customer_name", "values": ["O'Brien"]}]})
    literals = [lit.this for lit in shop.tree(cq).find_all(exp.Literal) if lit.is_string]
    assert literals == ["O'Brien"]
    assert "'O''Brien'" in cq.sql


def test_injection_value_never_becomes_sql(shop) -> None:
    value = "x'; DROP TABLE orders; --"
    cq = shop.compile({"metrics": ["revenue"], "filters": [{"ref": "customers.segment", "values": [value]}]})
    tree = shop.tree(cq)
    assert [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string] == [value]
    assert not list(tree.find_all(exp.Drop))
    assert shop.rows(cq.sql) == [(None,)]
    assert shop.rows("SELECT COUNT(*) FROM orders") == [(5,)]


def test_string_filter_comment_cannot_close_itself(shop) -> None:
    """A comment in a string filter stays a comment: it cannot end early and smuggle SQL in."""
    cq = shop.compile({"metrics": ["revenue"], "filters": ["customers.segment = 'retail' -- */ DROP TABLE orders"]})
    tree = shop.tree(cq)
    assert not list(tree.find_all(exp.Drop))
    assert shop.rows(cq.sql) == [(160.0,)]


# --- column metadata ------------------------------------------------------------------------------------


def test_column_metadata(shop) -> None:
    cq = shop.compile(
        {"metrics": ["passengers"], "dimensions": ["airports.city[origin]", "metric_time:month"]}
    )
    by_name = {c.name: c for c in cq.columns}
    assert list(by_name) == ["origin_city", "month", "passengers"]
    assert (by_name["origin_city"].kind, by_name["origin_city"].ref) == ("dimension", "airports.city[origin]")
    assert (by_name["month"].kind, by_name["month"].ref, by_name["month"].grain, by_name["month"].type) == (
        "dimension", "metric_time:month", "month", "DATE",
    )
    assert (by_name["passengers"].kind, by_name["passengers"].ref) == ("metric", "passengers")
    assert cq.base_metrics == ("passengers",)
    assert cq.query == shop.query({"metrics": ["passengers"], "dimensions": ["airports.city[origin]", "metric_time:month"]})


def test_derived_metric_metadata_and_base_metrics(shop) -> None:
    cq = shop.compile({"metrics": ["refund_rate"], "filters": ["revenue > 0"]})
    assert [(c.name, c.kind, c.type) for c in cq.columns] == [("refund_rate", "metric", "DOUBLE")]
    assert set(cq.base_metrics) == {"refund_amount", "revenue"}
    assert set(cq.tables) == {"orders", "refunds"}


# --- the link graph -------------------------------------------------------------------------------------


def test_paths_terminate_on_the_fixture_cycle(shop) -> None:
    graph = LinkGraph(shop.layer)
    for start in shop.layer.nodes:
        for target in shop.layer.nodes:
            for path in graph.paths(start, target):
                visited = [start] + [e.target for e in path]
                assert len(visited) == len(set(visited)), "paths must be simple"
                assert len(path) <= MAX_DEPTH


def test_paths_terminate_on_a_dense_cyclic_graph() -> None:
    """Eight nodes, each linked to every other: enumeration stays bounded and fast."""
    names = [f"n{i}" for i in range(8)]
    nodes = {
        n: Node(
            name=n, table=n, primary_key=("id",),
            links=tuple(Link(to=m, on=f"{n}.{m}_id = {m}.id") for m in names if m != n),
        )
        for n in names
    }
    layer = SemanticLayer(nodes=nodes, metrics={"c": Metric(name="c", source="n0", agg="count")})
    graph = LinkGraph(layer)
    paths = graph.paths("n0", "n7")
    assert paths and all(len(p) <= MAX_DEPTH for p in paths)
    assert graph.reachable("n0")[0] == "n0" and set(graph.reachable("n0")) == set(names)


def test_compile_on_a_dense_cyclic_graph_takes_the_direct_link() -> None:
    names = [f"n{i}" for i in range(5)]
    nodes = {
        n: Node(
            name=n, table=n, primary_key=("id",),
            columns=(Column(name="x"),) if n == "n4" else (),
            links=tuple(Link(to=m, on=f"{n}.{m}_id = {m}.id") for m in names if m != n),
        )
        for n in names
    }
    layer = SemanticLayer(nodes=nodes, metrics={"c": Metric(name="c", source="n0", agg="count")})
    # the direct link n0 -> n4 is the unique shortest of many simple paths: no ambiguity, no loop
    cq = compile_query(layer, SemanticQuery(metrics=("c",), dimensions=("n4.x",)))
    assert len(cq.joins) == 1 and cq.joins[0].startswith("n0 -> n4 ")


# --- pinned keys are per path ------------------------------------------------------------------------------

#: a second fact whose own promo (the checkout promo) is a different path to ``promos`` than the
#: customers -> promo_assignments bridge; orders 1 and 2 used promo 1 (spring), the rest promo 2
CHECKOUT_YAML = """
sources:
  - name: checkout
    sql: "SELECT order_id, customer_id, amount, CASE WHEN order_id <= 2 THEN 1 ELSE 2 END AS promo_id FROM orders"
    primary_key: [order_id]
    links:
      - to: customers
        on: checkout.customer_id = customers.customer_id
      - to: promos
        on: checkout.promo_id = promos.promo_id
metrics:
  - {name: checkout_revenue, source: checkout, agg: sum, expr: amount}
"""


def _layer_with_checkout() -> SemanticLayer:
    shop_yaml = (Path(__file__).parent / "fixture" / "shop.yaml").read_text(encoding="utf-8")
    layer, issues = parse_documents([("shop.yaml", shop_yaml), ("checkout.yaml", CHECKOUT_YAML)])
    assert not issues
    return layer


def test_pin_on_the_path_itself_is_honoured(shop) -> None:
    """Control for the case below: fixing promos through the bridge itself pins the bridge's key."""
    layer = _layer_with_checkout()
    cq = compile_query(
        layer,
        SemanticQuery(metrics=("checkout_revenue",), filters=(Filter(ref="promo_assignments.promo_id", values=(1,)),)),
    )
    assert shop.rows(cq.sql) == [(180.0,)]  # spring members Ann (100+30) and Bob (50)


def test_pin_on_another_path_does_not_make_a_fan_out_safe(shop) -> None:
    """The filter fixes the checkout promo (checkout -> promos), not the bridge customers -> promo_assignments:
    the breakdown through the bridge is deduplicated by order_id, not taken as pinned."""
    layer = _layer_with_checkout()
    query = SemanticQuery(
        metrics=("checkout_revenue",),
        dimensions=("promo_assignments.promo_id",),
        filters=("promos.promo_name = 'spring'",),
    )
    cq = compile_query(layer, query)
    assert list(shop.tree(cq).find_all(exp.Subquery)), f"not deduplicated:\n{cq.sql}"
    # spring checkouts: order 1 (Ann, in promos 1 and 2) 100, order 2 (Bob, in promo 1) 50;
    # each order counts once in every promo its customer is in (Ann's 100 in both)
    shop.assert_rows(shop.rows(cq.sql), [[1, 150.0], [2, 100.0]], ordered=False)


def test_constant_in_a_link_pins_like_the_validator_counts_it(shop) -> None:
    """A constant in a link's ``on`` that completes the target's key: the validator accepts the link as
    many_to_one without a warning, and the fan-out check takes it as pinned when it is declared one_to_many."""
    link = Link(to="spring_members",
                on="customers.customer_id = spring_members.customer_id AND spring_members.promo_id = 1")
    assert Edge("customers", 0, link).constants == {"promo_id"}
    assert not [i for i in validate(shop.layer, shop.schema()) if i.code == "link_cardinality"]
    customers = shop.layer.nodes["customers"]
    as_many_to_one = tuple(k.model_copy(update={"cardinality": "many_to_one"}) if k.to == "spring_members" else k
                           for k in customers.links)
    nodes = dict(shop.layer.nodes, customers=customers.model_copy(update={"links": as_many_to_one}))
    layer = shop.layer.model_copy(update={"nodes": nodes})
    assert not [i for i in validate(layer, shop.schema()) if i.code == "link_cardinality"]
    query = SemanticQuery(metrics=("revenue",), dimensions=("spring_members.promo_id",))
    plain = compile_query(layer, query)
    declared_one_to_many = shop.compile(query)
    assert shop.canonical_sql(plain.sql) == shop.canonical_sql(declared_one_to_many.sql)
    assert not list(shop.tree(declared_one_to_many).find_all(exp.Subquery))


def test_a_constant_under_or_pins_nothing(shop) -> None:
    """``b.kind = 'x' OR b.kind = 'y'`` in a link can match two rows: the join is deduplicated."""
    customers = shop.layer.nodes["customers"]
    loose = tuple(
        k.model_copy(update={"on": "customers.customer_id = spring_members.customer_id AND "
                                   "(spring_members.promo_id = 1 OR spring_members.promo_id = 2)"})
        if k.to == "spring_members" else k
        for k in customers.links
    )
    nodes = dict(shop.layer.nodes, customers=customers.model_copy(update={"links": loose}))
    layer = shop.layer.model_copy(update={"nodes": nodes})
    cq = compile_query(layer, SemanticQuery(metrics=("revenue",), dimensions=("customers.segment",),
                                            filters=("spring_members.promo_id IS NOT NULL",)))
    assert list(shop.tree(cq).find_all(exp.Subquery)), cq.sql
    # customers in spring or vip: Ann 130 (in both, once), Bob 50 (business), O'Brien 20
    shop.assert_rows(shop.rows(cq.sql), [["retail", 150.0], ["business", 50.0]], ordered=False)
