"""`lore import dbt`: a dbt project's MetricFlow semantic layer, translated into a LORE layer.

The translation is checked as data (small dbt YAML in, the LORE nodes and metrics expected out), on a tiny DuckDB
shop where the numbers are worked out by hand, through the CLI (registered on a fresh Typer app), and end to end on
the jaffle shop: `evals/jaffle/dbt` imported over a small jaffle warehouse, validated, and its metrics compared with
SQL written by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from textwrap import dedent
from typing import Any

import duckdb
import pytest
import sqlglot
import typer
import yaml
from typer.testing import CliRunner

from lore.errors import OperatorError
from lore.onboard.dbt import (
    DbtProjectError,
    Translation,
    read_project,
    render_examples,
    render_files,
    translate,
    write_layer,
)
from lore.cli import app as lore_app
from lore.onboard.examples import parse_seed, read_seed_file
from lore.semantic.load import parse_documents
from lore.semantic.validate import validate
from lore.types import Filter

ROOT = Path(__file__).resolve().parents[2]
JAFFLE_DBT = ROOT / "evals" / "jaffle" / "dbt"

SHOP = """
semantic_models:
  - name: orders
    description: One row per order.
    model: ref('fct_orders')
    defaults:
      agg_time_dimension: ordered_at
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - name: ordered_at
        type: time
        type_params: {time_granularity: month}
      - {name: status, type: categorical, label: Order status}
      - {name: is_large, type: categorical, expr: amount > 100}
    measures:
      - {name: revenue, agg: sum, expr: amount, description: Amount paid.}
      - {name: order_count, agg: count, expr: order_id}
      - {name: buyers, agg: count_distinct, expr: customer_id}
      - {name: avg_amount, agg: average, expr: amount}
      - {name: paid_orders, agg: sum_boolean, expr: is_paid}
  - name: customers
    model: ref('dim_customers')
    entities:
      - {name: customer, type: primary, expr: customer_id}
      - {name: region, type: foreign, expr: region_code}
    dimensions:
      - {name: segment, type: categorical}
  - name: regions
    model: ref('dim_regions')
    entities:
      - {name: region, type: primary, expr: code}
    dimensions:
      - {name: region_name, type: categorical, expr: name}

metrics:
  - {name: revenue, label: Revenue, description: Amount paid., type: simple, type_params: {measure: revenue}}
  - {name: orders, label: Orders, type: simple, type_params: {measure: order_count}}
  - {name: buyers, type: simple, type_params: {measure: buyers}}
  - {name: avg_amount, type: simple, type_params: {measure: avg_amount}}
  - {name: paid_orders, type: simple, type_params: {measure: paid_orders}}
  - name: completed_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('order__status') }} = 'completed'"
  - name: large_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('order__is_large') }}"
  - name: enterprise_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('customer__segment') }} = 'enterprise'"
  - name: emea_orders
    type: simple
    type_params: {measure: order_count}
    filter:
      - "{{ Dimension('customer__region__region_name') }} = 'EMEA'"
      - "{{ TimeDimension('metric_time', 'month') }} >= '2024-02-01'"
  - name: completed_share
    type: ratio
    type_params:
      numerator: {name: orders, filter: "{{ Dimension('order__status') }} = 'completed'", alias: completed_orders}
      denominator: orders
  - name: revenue_per_buyer
    type: derived
    type_params:
      expr: rev / b
      metrics: [{name: revenue, alias: rev}, {name: buyers, alias: b}]
  - name: revenue_last_year
    type: derived
    type_params:
      expr: revenue_ly
      metrics: [{name: revenue, offset_window: 1 year, alias: revenue_ly}]
  - name: revenue_7d
    type: cumulative
    type_params: {measure: revenue, cumulative_type_params: {window: 7 days}}
  - name: revenue_mtd
    type: cumulative
    type_params: {measure: revenue, grain_to_date: month}
"""

SHOP_DATA = [
    "CREATE TABLE dim_regions (code VARCHAR, name VARCHAR)",
    "INSERT INTO dim_regions VALUES ('eu', 'EMEA'), ('us', 'AMER')",
    "CREATE TABLE dim_customers (customer_id INTEGER, segment VARCHAR, region_code VARCHAR)",
    "INSERT INTO dim_customers VALUES (1, 'enterprise', 'eu'), (2, 'smb', 'eu'), (3, 'enterprise', 'us')",
    "CREATE TABLE fct_orders (order_id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, status VARCHAR, "
    "amount DOUBLE, is_paid BOOLEAN)",
    "INSERT INTO fct_orders VALUES (10, 1, '2024-01-05 10:00', 'completed', 150, true), "
    "(11, 1, '2024-02-03 09:00', 'completed', 50, true), (12, 2, '2024-02-10 12:00', 'returned', 80, false), "
    "(13, 3, '2024-02-11 18:30', 'completed', 200, true), (14, 2, '2024-03-01 08:00', 'completed', 120, false)",
]


def dbt_project(root: Path, files: dict[str, str], *, name: str = "shop") -> Path:
    """A dbt project folder: dbt_project.yml and ``files`` (path -> YAML text) under it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(f"name: {name}\nversion: '1.0'\nconfig-version: 2\n", encoding="utf-8")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def imported(tmp_path: Path, files: dict[str, str], **kwargs: Any) -> Translation:
    return translate(read_project(dbt_project(tmp_path / "dbt", files)), **kwargs)


def nodes(t: Translation) -> dict[str, Any]:
    return {n.name: n for f in t.files for n in (*f.sources, *f.dimensions)}


def metrics(t: Translation) -> dict[str, dict[str, Any]]:
    """Each metric as data, without its description."""
    out = {}
    for f in t.files:
        for m in f.metrics:
            data = m.model_dump(mode="json", exclude_defaults=True)
            data.pop("description", None)
            out[m.name] = data
    return out


def canonical(sql: str) -> str:
    return sqlglot.parse_one(sql, read="duckdb").sql(dialect="duckdb", normalize=True)


def notes(t: Translation) -> dict[str, str]:
    return {f"{n.kind} {n.name}": n.reason for n in t.not_imported}


# --- the translation, as data ----------------------------------------------------------------------------------


def test_semantic_models_become_nodes_with_keys_time_columns_columns_and_links(tmp_path: Path) -> None:
    t = imported(tmp_path, {"models/shop.yml": SHOP})
    got = nodes(t)
    orders = got["orders"]
    assert (orders.table, orders.label, orders.description, orders.primary_key, orders.time_column) == (
        "fct_orders", "order", "One row per order.", ("order_id",), "ordered_at")
    assert [(c.name, c.kind, c.label, c.grains if c.kind == "time" else None, c.unique) for c in orders.columns] == [
        ("ordered_at", "time", "ordered at", ("month", "quarter", "year"), False),
        ("status", "categorical", "Order status", None, False),
        ("order_id", "identifier", "order id", None, True)]
    assert [(link.to, link.on, link.cardinality) for link in orders.links] == [
        ("customers", "orders.customer_id = customers.customer_id", "many_to_one"),
        ("orders__view", "orders.order_id = orders__view.order_id", "one_to_one")]
    customers = got["customers"]
    assert customers.kind == "dimension" and customers.primary_key == ("customer_id",)
    assert [(link.to, link.on) for link in customers.links] == [("regions", "customers.region_code = regions.code")]
    assert [c.name for c in got["regions"].columns] == ["name", "code"]  # a dimension's expr names its column
    assert got["regions"].columns[0].label == "region name"


def test_a_filter_on_another_models_dimension_reads_it_through_a_sql_node_joined_along_the_entities(
        tmp_path: Path) -> None:
    t = imported(tmp_path, {"models/shop.yml": SHOP})
    view = nodes(t)["orders__view"]
    assert canonical(view.sql or "") == canonical(
        "SELECT orders.*, orders.amount > 100 AS is_large, customer__region.name AS customer__region__region_name, "
        "customer.segment AS customer__segment "
        "FROM fct_orders AS orders "
        "LEFT JOIN dim_customers AS customer ON orders.customer_id = customer.customer_id "
        "LEFT JOIN dim_regions AS customer__region ON customer.region_code = customer__region.code")
    assert (view.kind, view.primary_key, view.time_column) == ("source", ("order_id",), "ordered_at")
    assert [(c.name, c.kind, c.type) for c in view.columns] == [("ordered_at", "time", "TIMESTAMP"),
                                                                  ("is_large", "categorical", None)]
    assert [(link.to, link.on, link.cardinality) for link in view.links] == [
        ("orders", "orders__view.order_id = orders.order_id", "one_to_one")]


EXPECTED_METRICS = """
revenue: {name: revenue, label: Revenue, source: orders, agg: sum, expr: amount}
orders: {name: orders, label: Orders, source: orders, agg: count, expr: order_id}
buyers: {name: buyers, label: buyers, source: orders, agg: count_distinct, expr: customer_id}
avg_amount: {name: avg_amount, label: avg amount, source: orders, agg: avg, expr: amount}
paid_orders: {name: paid_orders, label: paid orders, source: orders, agg: sum, expr: CAST((is_paid) AS INT)}
completed_revenue: {name: completed_revenue, label: completed revenue, source: orders, agg: sum, expr: amount,
                    filter: "status = 'completed'"}
large_revenue: {name: large_revenue, label: large revenue, source: orders, agg: sum, expr: amount,
                filter: (amount > 100)}
enterprise_revenue: {name: enterprise_revenue, label: enterprise revenue, source: orders__view, agg: sum,
                     expr: amount, filter: "customer__segment = 'enterprise'"}
emea_orders: {name: emea_orders, label: emea orders, source: orders__view, agg: count, expr: order_id,
              filter: "customer__region__region_name = 'EMEA' AND DATE_TRUNC('MONTH', ordered_at) >= '2024-02-01'"}
completed_share__completed_orders: {name: completed_share__completed_orders, label: completed orders,
                                    source: orders, agg: count, expr: order_id, filter: "status = 'completed'"}
completed_share: {name: completed_share, label: completed share, expr: completed_share__completed_orders / orders}
revenue_per_buyer: {name: revenue_per_buyer, label: revenue per buyer, expr: revenue / buyers}
revenue_last_year: {name: revenue_last_year, label: revenue last year, expr: revenue, offset: 1 year}
revenue_7d: {name: revenue_7d, label: revenue 7d, expr: revenue, window: 7 days}
revenue_mtd: {name: revenue_mtd, label: revenue mtd, expr: revenue, grain_to_date: month}
"""


def test_metrics_of_every_supported_type_as_data(tmp_path: Path) -> None:
    t = imported(tmp_path, {"models/shop.yml": SHOP})
    assert metrics(t) == yaml.safe_load(EXPECTED_METRICS)
    assert t.counts.metrics == 14 and t.counts.metrics_imported == 14 and t.counts.helper_metrics == 1
    descriptions = {m.name: m.description for f in t.files for m in f.metrics}
    assert descriptions["revenue"] == "Amount paid."
    assert "Only rows where order status = 'completed'" in descriptions["completed_share__completed_orders"]


def test_an_input_filter_that_repeats_a_metric_reuses_it(tmp_path: Path) -> None:
    text = SHOP + """
  - name: completed_orders
    type: simple
    type_params: {measure: order_count}
    filter: "{{ Dimension('order__status') }} = 'completed'"
"""
    got = metrics(imported(tmp_path, {"models/shop.yml": text}))
    assert got["completed_share"]["expr"] == "completed_orders / orders"
    assert "completed_share__completed_orders" not in got


def test_the_schema_qualifies_tables_and_the_sql_nodes_reading_them(tmp_path: Path) -> None:
    t = imported(tmp_path, {"models/shop.yml": SHOP}, schema="analytics")
    got = nodes(t)
    assert got["orders"].table == "analytics.fct_orders"
    assert "FROM analytics.fct_orders AS orders" in (got["orders__view"].sql or "")
    assert "LEFT JOIN analytics.dim_customers AS customer" in (got["orders__view"].sql or "")


def test_a_measure_dated_by_another_time_dimension_gets_its_own_node(tmp_path: Path) -> None:
    text = """
    semantic_models:
      - name: orders
        model: ref('orders')
        defaults: {agg_time_dimension: ordered_at}
        entities: [{name: order_id, type: primary}]
        dimensions:
          - {name: ordered_at, type: time, type_params: {time_granularity: day}}
          - {name: shipped_at, type: time, expr: "date_trunc('day', shipped_ts)", type_params: {time_granularity: day}}
        measures:
          - {name: shipped, agg: count, expr: order_id, agg_time_dimension: shipped_at}
    metrics:
      - {name: shipped, type: simple, type_params: {measure: shipped}}
    """
    t = imported(tmp_path, {"models/o.yml": text})
    got = nodes(t)
    assert [c.name for c in got["orders"].columns if c.kind == "time"] == ["ordered_at", "shipped_ts"]
    by = got["orders__by_shipped_at"]
    assert (by.time_column, by.primary_key, [link.to for link in by.links]) == ("shipped_ts", ("order_id",), ["orders"])
    assert metrics(t)["shipped"]["source"] == "orders__by_shipped_at"


def test_saved_queries_become_lore_plans_for_the_seed_file_of_examples(tmp_path: Path) -> None:
    text = """
    saved_queries:
      - name: enterprise_monthly
        description: Enterprise revenue by month and region.
        query_params:
          metrics: [revenue, buyers]
          group_by: ["TimeDimension('metric_time', 'month')", "Dimension('region__region_name')",
                     "Dimension('order__ordered_at').grain('quarter')", "Entity('customer')"]
          where: ["{{ Dimension('customer__segment') }} = 'enterprise'", "{{ Dimension('order__is_large') }}",
                  "{{ TimeDimension('metric_time', 'day') }} >= '2020-01-01'"]
          order_by: ["Metric('revenue').descending(True)"]
          limit: 10
      - name: either_segment
        query_params:
          metrics: [revenue]
          where: ["{{ Dimension('customer__segment') }} = 'a' or {{ Dimension('customer__segment') }} = 'b'"]
    """
    t = imported(tmp_path, {"models/shop.yml": SHOP, "models/queries.yml": text})
    query, either = t.queries
    assert (query.question, query.metrics, query.dimensions, query.filters, query.order_by, query.limit) == (
        "Enterprise revenue by month and region.", ("revenue", "buyers"),
        ("metric_time:month", "regions.name", "orders.ordered_at:quarter", "customers.customer_id"),
        ("customers.segment = 'enterprise'", "orders__view.is_large", "metric_time >= '2020-01-01'"), ("-revenue",),
        10)
    plan = query.plan
    assert plan is not None and (plan.metrics, plan.dimensions, plan.limit) == (query.metrics, query.dimensions, 10)
    assert plan.filters == (Filter(ref="customers.segment", values=("enterprise",)),
                            Filter(ref="orders__view.is_large", values=(True,)))
    assert (plan.time.start, plan.time.end) == (date(2020, 1, 1), None)  # type: ignore[union-attr]
    assert [(o.ref, o.descending) for o in plan.order_by] == [("revenue", True)]

    (note,) = [n for n in t.not_imported if n.kind == "saved_query"]  # a filter a plan cannot hold: listed, with why
    assert (note.name, note.file, either.plan) == ("either_segment", "models/queries.yml", None)
    assert "not written to the seed file" in note.reason and "is not a reference compared with values" in note.reason
    assert note.detail == ("lore sql --project DIR --metric revenue --filter \"customers.segment = 'a' OR "
                           "customers.segment = 'b'\" --run")
    seeds = parse_seed(render_examples(t))
    assert [(e.question, e.example.plan if e.example else None) for e in seeds] == [
        ("Enterprise revenue by month and region.", plan.model_copy(update={"planner": "offline"}))]
    assert "dbt saved query enterprise_monthly (models/queries.yml)" in (seeds[0].example.note or "")  # type: ignore[union-attr]


# --- what has no equivalent: listed, never dropped ---------------------------------------------------------------

UNSUPPORTED = """
semantic_models:
  - name: accounts
    model: ref('accounts')
    defaults: {agg_time_dimension: day}
    entities:
      - {name: account, type: primary, expr: account_id}
      - {name: plan, type: foreign, expr: plan_id}
    dimensions:
      - {name: day, type: time, type_params: {time_granularity: hour}}
      - {name: tier, type: categorical}
    measures:
      - {name: balance, agg: sum, expr: balance, non_additive_dimension: {name: day, window_choice: max}}
      - {name: p90_balance, agg: percentile, expr: balance, agg_params: {percentile: 0.9}}
      - {name: logins, agg: sum, expr: logins, create_metric: true}
      - {name: users, agg: count_distinct, expr: account_id}
    colour: blue
  - name: plans
    model: ref('plans')
    entities: [{name: plan, type: natural, expr: plan_id}]
    dimensions:
      - name: valid_from
        type: time
        type_params: {time_granularity: day, validity_params: {is_start: true}}
      - {name: plan_name, type: categorical}

metrics:
  - {name: balance, type: simple, type_params: {measure: balance}}
  - {name: p90_balance, type: simple, type_params: {measure: p90_balance}}
  - name: logins_growth
    type: derived
    type_params:
      expr: (logins - logins_lw) / logins_lw
      metrics: [{name: logins}, {name: logins, offset_window: 1 week, alias: logins_lw}]
  - name: logins_start_of_month
    type: derived
    type_params:
      expr: l
      metrics: [{name: logins, offset_to_grain: month, alias: l}]
  - {name: all_time_logins, type: cumulative, type_params: {measure: logins}}
  - {name: weekly_users, type: cumulative, type_params: {measure: users, cumulative_type_params: {window: 7 days}}}
  - name: signup_conversion
    type: conversion
    type_params:
      conversion_type_params: {entity: account, calculation: conversion_rate, base_measure: logins,
                               conversion_measure: logins}
  - name: power_logins
    type: simple
    type_params: {measure: logins}
    filter: "{{ Metric('logins', group_by=['account']) }} > 10"
  - name: basic_plan_logins
    type: simple
    type_params: {measure: logins}
    filter: "{{ Dimension('plan__plan_name') }} = 'basic'"
  - {name: balance_share, type: ratio, type_params: {numerator: balance, denominator: p90_balance}}
  - name: logins_filled
    type: simple
    type_params: {measure: {name: logins, fill_nulls_with: 0, join_to_timespine: true}}
  - {name: old_metric, type: simple, type_params: {measure: logins}, config: {enabled: false}}
"""


def test_what_has_no_lore_equivalent_is_listed_with_why(tmp_path: Path) -> None:
    t = imported(tmp_path, {"models/accounts.yml": UNSUPPORTED})
    got = notes(t)
    expected = {
        "measure balance": "non_additive_dimension",
        "measure p90_balance": "agg: percentile has no LORE aggregation",
        "metric balance": "its measure 'balance' is not imported",
        "metric p90_balance": "its measure 'p90_balance' is not imported",
        "metric logins_growth": "a LORE offset metric cannot appear in another metric's arithmetic",
        "metric logins_start_of_month": "offset_to_grain",
        "metric all_time_logins": "a cumulative metric over all time",
        "metric weekly_users": "a count of distinct things",
        "metric signup_conversion": "conversion metrics",
        "metric power_logins": "a filter on a metric's value",
        "metric basic_plan_logins": "natural entity 'plan'",
        "metric balance_share": "its input metric 'balance' is not imported",
        "metric old_metric": "disabled",
        "option accounts.day": "finer than a day",
        "option plans.valid_from": "validity_params",
        "option logins_filled.logins": "join_to_timespine: true and fill_nulls_with: 0 are not imported",
        "key accounts.colour": "the key 'colour'",
    }
    for key, reason in expected.items():
        assert key in got, sorted(got)
        assert reason in got[key], (key, got[key])
    assert set(metrics(t)) == {"logins", "logins_filled"}  # create_metric: true makes a metric
    assert t.counts.metrics == 12 and t.counts.metrics_imported == 2  # the disabled one is not counted
    # every note is also a comment at the top of its file
    (text,) = render_files(t).values()
    header = text.split("\nsources:", 1)[0]
    assert all(line.startswith("#") or not line for line in header.splitlines())
    for note in t.not_imported:
        assert f"{note.kind.replace('_', ' ')} {note.name}:" in header


def test_dbts_latest_spec_is_named_not_skipped(tmp_path: Path) -> None:
    text = """
    models:
      - name: orders
        semantic_model: {enabled: true}
        columns: [{name: order_id, entity: {type: primary}}]
    """
    with pytest.raises(DbtProjectError, match="latest YAML spec"):
        imported(tmp_path, {"models/orders.yml": text})
    t = imported(tmp_path / "mixed", {"models/orders.yml": text, "models/shop.yml": SHOP})
    assert "latest YAML spec" in notes(t)["semantic_model orders"]


# --- bad input: clear errors, all at once, nothing written --------------------------------------------------------


@pytest.mark.parametrize(("files", "messages"), [
    ({"models/m.yml": "metrics:\n  - name: x\n    type: simple\n    type_params: {measure: nope}\n"},
     ["models/m.yml:2: metric 'x' uses measure 'nope', which no semantic model defines"]),
    ({"models/m.yml": SHOP + "  - {name: r, type: ratio, type_params: {numerator: revenue, denominator: nope}}\n"},
     ["its denominator names metric 'nope', which the project does not define"]),
    ({"models/m.yml": SHOP.replace("Dimension('customer__segment')", "Dimension('customer__sgement')")},
     ["models/m.yml:50: filter \"{{ Dimension('customer__sgement') }} = 'enterprise'\": 'sgement' is not a "
      "dimension of 'customers' (its dimensions: segment)"]),
    ({"models/m.yml": SHOP.replace("Dimension('customer__segment')", "Dimension('cust__segment')")},
     ["semantic model 'orders' has no entity 'cust' to join on (its entities: customer, order)"]),
    ({"models/m.yml": "semantic_models:\n  - name: a\n    model: ref('a')\n    measures:\n"
                      "      - {name: m, agg: total}\n"},
     ["models/m.yml:5: semantic model 'a': measures.0.agg: Input should be"]),
    ({"models/m.yml": "semantic_models:\n  - name: a\n    model: [oops\n", "models/n.yml": "metrics: {}\n"},
     ["models/m.yml:4: malformed YAML", "models/n.yml:1: 'metrics' must be a list"]),
    ({"models/m.yml": "metrics:\n  - {name: a, type: derived, type_params: {expr: b, metrics: [b]}}\n"
                      "  - {name: b, type: derived, type_params: {expr: a, metrics: [a]}}\n"},
     ["metrics refer to each other in a cycle: a -> b -> a"]),
    ({"models/m.yml": SHOP, "models/n.yml": SHOP.split("metrics:")[0].replace("name: orders", "name: orders2")
      .replace("ref('fct_orders')", "ref('x')")},
     ["measure 'revenue' is defined twice"]),
    ({"models/m.yml": "semantic_models:\n  - name: a\n    model: source('raw', 'a')\n"},
     ["model: \"source('raw', 'a')\" is not ref('a_model')"]),
])
def test_bad_projects_fail_with_every_problem_and_its_place(tmp_path: Path, files: dict[str, str],
                                                            messages: list[str]) -> None:
    with pytest.raises(DbtProjectError) as caught:
        imported(tmp_path, files)
    text = str(caught.value)
    for message in messages:
        assert message in text, text
    assert "nothing was written" in text and "dbt parse" in text


def test_a_missing_path_or_a_project_without_a_semantic_layer_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="does not exist") as caught:
        read_project(tmp_path / "nope")
    assert "dbt_project.yml" in str(caught.value)
    project = dbt_project(tmp_path / "p", {"models/schema.yml": "models:\n  - name: a\n",
                                           "target/x.yml": SHOP, "dbt_packages/p/x.yml": SHOP})
    with pytest.raises(DbtProjectError, match="no YAML file here has semantic_models"):
        read_project(project)


# --- writing ----------------------------------------------------------------------------------------------------


def test_the_rendered_files_load_and_never_overwrite_without_force(tmp_path: Path) -> None:
    t = imported(tmp_path, {"models/shop.yml": SHOP, "models/staging/shop.yml": "saved_queries: []\n"})
    texts = render_files(t)
    assert sorted(texts) == ["shop.yaml", "staging_shop.yaml"]
    layer, issues = parse_documents(sorted(texts.items()))
    assert issues == [] and len(layer.metrics) == 15 and len(layer.nodes) == 4
    assert [i for i in validate(layer) if i.severity == "error"] == []
    # `on` is a plain key, as the docs write it
    assert "        on: orders.customer_id = customers.customer_id\n" in texts["shop.yaml"]
    out = tmp_path / "out"
    write_layer(out, texts)
    (out / "semantic" / "shop.yaml").write_text("# mine\n", encoding="utf-8")
    with pytest.raises(OperatorError, match="already exist") as caught:
        write_layer(out, texts)
    assert "--force" in str(caught.value)
    assert (out / "semantic" / "shop.yaml").read_text(encoding="utf-8") == "# mine\n"
    write_layer(out, texts, force=True)
    assert (out / "semantic" / "shop.yaml").read_text(encoding="utf-8") == texts["shop.yaml"]
    assert sorted(p.name for p in (out / "semantic").iterdir()) == ["shop.yaml", "staging_shop.yaml"]


# --- the CLI, on a tiny shop whose numbers are worked out by hand ---------------------------------------------------


def cli() -> typer.Typer:
    return lore_app


@pytest.fixture
def shop_warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    for statement in SHOP_DATA:
        con.execute(statement)
    con.close()
    return path


def test_the_command_writes_the_layer_and_lore_yaml_validates_it_and_the_numbers_are_right(
        tmp_path: Path, shop_warehouse: Path) -> None:
    from lore import Lore

    project = dbt_project(tmp_path / "dbt", {"models/shop.yml": SHOP})
    out = tmp_path / "lore"
    result = CliRunner().invoke(cli(), ["import", "dbt", str(project), "--out", str(out), "--warehouse",
                                        str(shop_warehouse)])
    assert result.exit_code == 0, result.output
    assert "metrics: 14 of 14, plus 1 helper metric(s)" in result.output
    assert f"Validation against {shop_warehouse}: OK, 0 error(s)" in " ".join(result.output.split())
    config = yaml.safe_load((out / "lore.yaml").read_text(encoding="utf-8"))
    assert (config["name"], config["semantic_layer"]) == ("shop", "semantic")
    with Lore.open(out, feedback=False) as lore:
        rows = lore.run_compiled(lore.semantic.compile(
            ["revenue", "completed_revenue", "large_revenue", "enterprise_revenue", "emea_orders", "completed_share",
             "revenue_per_buyer", "paid_orders", "avg_amount"])).rows
        assert list(rows) == [(600.0, 520.0, 470.0, 400.0, 3, pytest.approx(0.8), pytest.approx(200.0), 3, 120.0)]
        by_region = lore.run_compiled(lore.semantic.compile(["revenue", "enterprise_revenue"], ["regions.name"])).rows
        assert sorted(by_region) == [("AMER", 200.0, 200.0), ("EMEA", 400.0, 200.0)]
        monthly = lore.run_compiled(lore.semantic.compile(["revenue", "revenue_mtd"], ["metric_time:month"])).rows
        assert [(str(m), r, mtd) for m, r, mtd in monthly] == [
            ("2024-01-01", 150.0, 150.0), ("2024-02-01", 330.0, 330.0), ("2024-03-01", 120.0, 120.0)]
        large = lore.run_compiled(lore.semantic.compile(["orders"], ["orders__view.is_large"])).rows
        assert sorted(large) == [(False, 2), (True, 3)]
    again = CliRunner().invoke(cli(), ["import", "dbt", str(project), "--out", str(out), "--json"])
    assert again.exit_code == 2 and "already exist" in again.output and "--force" in again.output
    forced = CliRunner().invoke(cli(), ["import", "dbt", str(project), "--out", str(out), "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    report = json.loads(forced.output)
    assert report["ok"] and report["lore_yaml"] is None and report["counts"]["metrics_imported"] == 14


def test_the_command_writes_the_seed_file_and_never_overwrites_it_without_force(tmp_path: Path) -> None:
    import shutil

    queries = ("saved_queries:\n  - name: revenue_by_month\n    query_params:\n      metrics: [revenue]\n"
               "      group_by: [\"TimeDimension('metric_time', 'month')\"]\n")
    project = dbt_project(tmp_path / "dbt", {"models/shop.yml": SHOP, "models/queries.yml": queries})
    out = tmp_path / "lore"
    result = CliRunner().invoke(cli(), ["import", "dbt", str(project), "--out", str(out)])
    assert result.exit_code == 0, result.output
    seeds = out / "examples" / "dbt_saved_queries.yaml"
    text = " ".join(result.output.split())
    assert "saved queries: 1 of 1, as examples to verify" in text
    assert f"lore feedback seed {seeds} --project {out}" in text
    (entry,) = parse_seed(seeds.read_text(encoding="utf-8"))
    assert entry.question == "revenue by month" and entry.example is not None
    assert (entry.example.plan.metrics, entry.example.plan.dimensions) == (("revenue",), ("metric_time:month",))

    shutil.rmtree(out / "semantic")
    seeds.write_text("# mine\n", encoding="utf-8")
    again = CliRunner().invoke(cli(), ["import", "dbt", str(project), "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    assert not (out / "semantic").exists() and seeds.read_text(encoding="utf-8") == "# mine\n"
    forced = CliRunner().invoke(cli(), ["import", "dbt", str(project), "--out", str(out), "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    report = json.loads(forced.output)
    assert report["examples_file"] == str(seeds) and report["saved_queries"][0]["example"] is True
    assert len(parse_seed(seeds.read_text(encoding="utf-8"))) == 1


def test_the_command_on_a_broken_project_writes_nothing_and_exits_2(tmp_path: Path) -> None:
    project = dbt_project(tmp_path / "dbt", {"models/m.yml": "metrics:\n  - {name: x, type: simple, "
                                                             "type_params: {measure: nope}}\n"})
    out = tmp_path / "lore"
    result = CliRunner().invoke(cli(), ["import", "dbt", str(project), "--out", str(out)])
    assert result.exit_code == 2
    assert "models/m.yml:2: metric 'x' uses measure 'nope'" in result.output
    assert not out.exists()
    missing = CliRunner().invoke(cli(), ["import", "dbt", str(tmp_path / "nope"), "--out", str(out)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_the_command_exits_1_when_the_layer_does_not_validate_against_the_warehouse(
        tmp_path: Path, shop_warehouse: Path) -> None:
    project = dbt_project(tmp_path / "dbt", {"models/shop.yml": SHOP.replace("expr: amount,", "expr: amont,", 1)})
    out = tmp_path / "lore"
    result = CliRunner().invoke(cli(), ["import", "dbt", str(project), "--out", str(out), "-w", str(shop_warehouse)])
    assert result.exit_code == 1, result.output
    assert "[unknown_column]" in result.output and "amont" in result.output
    assert (out / "semantic" / "shop.yaml").exists()


# --- end to end: evals/jaffle/dbt over a small jaffle warehouse -----------------------------------------------------


@pytest.fixture(scope="module")
def jaffle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Translation]]:
    from evals.jaffle.warehouse import build
    from lore import Lore

    warehouse = tmp_path_factory.mktemp("jaffle-wh") / "project"
    build(warehouse, years=1, seed=42)
    out = tmp_path_factory.mktemp("jaffle-dbt") / "project"
    result = CliRunner().invoke(cli(), ["import", "dbt", str(JAFFLE_DBT), "--out", str(out), "--warehouse",
                                        str(warehouse / "warehouse.duckdb"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["issues"] == [], report["issues"]
    translation = translate(read_project(JAFFLE_DBT))
    with Lore.open(out, feedback=False) as lore:
        yield lore, translation


def rows(lore: Any, metrics: list[str], dimensions: list[str] = (), filters: list[Any] = ()) -> list[tuple]:
    return [tuple(r) for r in lore.run_compiled(lore.semantic.compile(metrics, dimensions, filters)).rows]


def as_date(value: Any) -> date:
    return date.fromisoformat(str(value)[:10])


def sql(lore: Any, text: str) -> list[tuple]:
    return [tuple(r) for r in lore.run_sql(text).rows]


def test_jaffle_what_is_imported_and_what_is_not(jaffle: tuple[Any, Translation]) -> None:
    lore, t = jaffle
    assert t.project == "jaffle_shop"
    assert set(lore.layer.nodes) == {"orders", "orders__view", "order_items", "order_items__view", "customers",
                                     "locations", "products", "products__view", "supplies", "tweets"}
    assert lore.layer.metrics["jaffles_sold"].source == "order_items__view"
    assert lore.layer.metrics["food_item_share"].expr == "jaffles_sold / items_sold"
    assert {n.name for n in t.not_imported if n.kind == "metric"} == {
        "median_order_total", "order_total_growth_mom", "cumulative_order_total"}
    assert {q.name for q in t.queries} == {"order_metrics_monthly", "order_total_by_location_2020",
                                           "items_by_product_type"}


def test_jaffle_saved_queries_run_and_match_hand_written_sql(jaffle: tuple[Any, Translation]) -> None:
    lore, t = jaffle
    queries = {q.name: q for q in t.queries}
    monthly = queries["order_metrics_monthly"]
    got = rows(lore, list(monthly.metrics), list(monthly.dimensions), list(monthly.filters))
    want = sql(lore, "SELECT CAST(date_trunc('month', ordered_at) AS DATE) AS m, SUM(order_total) / 100.0, COUNT(*), "
                     "SUM(order_total) / 100.0 / COUNT(*) FROM orders GROUP BY m ORDER BY m")
    assert len(got) == len(want) == 12
    for g, w in zip(got, want):
        assert g[0] == w[0] and g[1] == pytest.approx(w[1]) and g[2] == w[2] and g[3] == pytest.approx(w[3])
    by_location = queries["order_total_by_location_2020"]
    got = dict(rows(lore, list(by_location.metrics), list(by_location.dimensions), list(by_location.filters)))
    want = dict(sql(lore, "SELECT s.name, SUM(o.order_total) / 100.0 FROM orders o JOIN stores s ON s.id = o.store_id "
                          "WHERE o.ordered_at >= DATE '2020-01-01' GROUP BY s.name"))
    assert got.keys() == want.keys() and all(got[k] == pytest.approx(want[k]) for k in want)
    by_type = queries["items_by_product_type"]
    got = dict(rows(lore, list(by_type.metrics), list(by_type.dimensions)))
    assert got == dict(sql(lore, "SELECT p.type, COUNT(*) FROM items i JOIN products p ON p.sku = i.sku GROUP BY 1"))


def test_jaffle_saved_queries_are_written_as_examples_whose_plans_run_like_the_queries(
        jaffle: tuple[Any, Translation]) -> None:
    lore, t = jaffle
    entries = read_seed_file(lore.project.root / "examples" / "dbt_saved_queries.yaml")
    assert [e.problem for e in entries] == [None, None, None]
    examples = {e.question: e.example for e in entries if e.example is not None}
    queries = {q.question: q for q in t.queries}
    assert set(examples) == set(queries) == {"Order total, orders and average order value by month.",
                                             "Order total by location since the start of 2020.",
                                             "Items sold by product type."}
    for question, example in examples.items():
        query = queries[question]
        got = sorted(tuple(r) for r in lore.run_compiled(lore.compile_plan(example.plan)).rows)
        want = sorted(rows(lore, list(query.metrics), list(query.dimensions), list(query.filters)))
        assert got == want, question
        assert example.note and query.name in example.note
    since = examples["Order total by location since the start of 2020."].plan
    assert (since.filters, since.time.start) == ((), date(2020, 1, 1))  # type: ignore[union-attr]


def test_jaffle_cross_model_filters_ratios_and_time_metrics_match_hand_written_sql(
        jaffle: tuple[Any, Translation]) -> None:
    lore, _ = jaffle
    got = {r[0]: r[1:] for r in rows(lore, ["jaffles_sold", "drinks_sold", "items_sold", "food_item_share"],
                                     ["locations.name"])}
    want = sql(lore, "SELECT s.name, COUNT(*) FILTER (WHERE p.type = 'jaffle'), COUNT(*) FILTER (WHERE p.type = "
                     "'beverage'), COUNT(*) FROM items i JOIN orders o ON o.id = i.order_id JOIN stores s ON s.id = "
                     "o.store_id JOIN products p ON p.sku = i.sku GROUP BY s.name")
    assert len(got) == len(want) == 2
    for name, jaffles, drinks, items in want:
        assert got[name][:3] == (jaffles, drinks, items)
        assert got[name][3] == pytest.approx(jaffles / items)
    ((large, biggest, customers),) = rows(lore, ["large_order", "largest_order", "customers_with_orders"])
    assert (large, biggest, customers) == sql(lore, "SELECT COUNT(*) FILTER (WHERE order_total / 100.0 >= 20), "
                                                    "MAX(order_total) / 100.0, COUNT(DISTINCT customer) FROM orders")[0]
    daily = sql(lore, "SELECT CAST(ordered_at AS DATE) AS d, SUM(order_total) / 100.0, COUNT(*) FROM orders WHERE "
                      "ordered_at >= DATE '2019-06-24' AND ordered_at < DATE '2019-07-11' GROUP BY d ORDER BY d")
    daily = [(as_date(d), v, n) for d, v, n in daily]
    got = rows(lore, ["order_total_mtd", "orders_last_7_days"], ["metric_time:day"],
               [Filter(ref="metric_time", op="between", values=("2019-07-01", "2019-07-10"))])
    assert len(got) == 10
    for day, mtd, last7 in got:
        day = as_date(day)
        assert mtd == pytest.approx(sum(v for d, v, _ in daily if d.month == 7 and d <= day))
        assert last7 == sum(n for d, _, n in daily if 0 <= (day - d).days < 7)
    prev = rows(lore, ["order_total", "order_total_prev_month"], ["metric_time:month"],
                [Filter(ref="metric_time", op="between", values=("2019-03-01", "2019-05-31"))])
    monthly = dict(sql(lore, "SELECT CAST(date_trunc('month', ordered_at) AS DATE), SUM(order_total) / 100.0 "
                             "FROM orders GROUP BY 1"))
    monthly = {as_date(m): v for m, v in monthly.items()}
    assert [as_date(m).month for m, _, _ in prev] == [3, 4, 5]
    for month, total, before in prev:
        month = as_date(month)
        assert total == pytest.approx(monthly[month])
        assert before == pytest.approx(monthly[month.replace(month=month.month - 1)])
    ((positive, tweets, share),) = rows(lore, ["positive_tweets", "tweets", "positive_tweet_share"])
    assert (positive, tweets) == sql(lore, "SELECT COUNT(*) FILTER (WHERE content LIKE 'Jaffles from the Jaffle Shop "
                                           "are%'), COUNT(*) FROM tweets")[0]
    assert share == pytest.approx(positive / tweets)
    empty = dict(rows(lore, ["orders"], ["orders__view.is_empty_order"]))
    assert empty == dict(sql(lore, "SELECT subtotal = 0, COUNT(*) FROM orders GROUP BY 1"))


def test_a_sum_of_one_is_a_row_count(tmp_path: Path) -> None:
    """MetricFlow counts rows as ``agg: sum, expr: 1``; LORE's count says 0, not NULL, over no rows, and the planner
    knows it counts rows ("how many people" is not a count of tweets)."""
    text = SHOP.replace("      - {name: order_count, agg: count, expr: order_id}",
                        "      - {name: order_count, agg: sum, expr: 1}")
    got = metrics(imported(tmp_path, {"models/shop.yml": text}))
    assert (got["orders"]["agg"], got["orders"].get("expr", "*")) == ("count", "*")


def test_jaffle_a_breakdown_no_name_of_the_layer_makes_is_never_explained_away(jaffle: tuple[Any, Translation]) -> None:
    """The imported layer calls stores "locations" and only a description says "store": "each store" makes no
    breakdown, so the answer (by month alone) must not be confident."""
    lore, _ = jaffle
    answer = lore.chat(user="ana").ask("how many orders did each store do in each month of Q2 2019?")
    assert answer.status != "answered" or any("location" in d or "store" in d for d in answer.plan.dimensions) \
        or answer.confidence < 0.8, (answer.confidence, answer.plan)


def test_jaffle_each_ones_own_count_is_a_row_each_not_the_ratio(jaffle: tuple[Any, Translation]) -> None:
    """The imported layer defines orders per customer; "each customer's order count" asks for each one's own count
    (a row per customer), while "orders per customer" is the ratio."""
    lore, _ = jaffle
    own = lore.chat(user="ana").ask("each customer's order count in Q2 2019")
    ratio = lore.chat(user="ana").ask("orders per customer in Q2 2019")
    assert own.plan is not None and "orders_per_customer" not in own.plan.metrics, own.plan
    assert any(d.startswith("customers.") for d in own.plan.dimensions), own.plan
    assert ratio.plan is not None and list(ratio.plan.metrics) == ["orders_per_customer"], ratio.plan
