"""`lore init`: a warehouse LORE has never seen (a bike-share scheme) surveyed, drafted, validated and asked.

The warehouse mixes what real ones have: declared keys and foreign keys, tables with none, CamelCase and
Title_Case names, a second schema, a view, an empty table, a composite key, a link with orphans, a link only the
values reveal, two links to one table (roles), a small code column that must not be linked by chance, free text,
booleans, money and rates.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from lore.errors import OperatorError, ProjectNotFound
from lore.onboard.draft import draft_layer, survey
from lore.onboard.init import init_project
from lore.project import Project


def _build(path: Path) -> None:
    rng = random.Random(5)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE stations (station_id INTEGER PRIMARY KEY, station_name VARCHAR, city VARCHAR, "
                "opened_on DATE)")
    cities = ["Lisbon", "Porto", "Braga"]
    con.executemany("INSERT INTO stations VALUES (?, ?, ?, ?)",
                    [(i, f"Station {i:02d}", cities[i % 3], date(2021, 1, 1) + timedelta(days=30 * i)) for i in range(1, 13)])
    # no declared key: MemberId is found from its name and values; FullName repeats
    con.execute('CREATE TABLE members ("MemberId" VARCHAR, "FullName" VARCHAR, "Plan_Type" VARCHAR, "Signup_Date" DATE)')
    con.executemany("INSERT INTO members VALUES (?, ?, ?, ?)",
                    [(f"M{i:04d}", f"Rider {i % 150}", ["annual", "monthly", "day pass"][i % 3],
                      date(2022, 1, 1) + timedelta(days=i)) for i in range(200)])
    con.execute("CREATE TABLE status_lookup (code INTEGER PRIMARY KEY, label VARCHAR)")
    con.executemany("INSERT INTO status_lookup VALUES (?, ?)", [(1, "ok"), (2, "late"), (3, "lost")])
    con.execute("CREATE TABLE rides (id INTEGER, member VARCHAR, start_station_id INTEGER, end_station_id INTEGER, "
                "rider_ref VARCHAR, started_at TIMESTAMP, ended_at TIMESTAMP, duration_minutes DOUBLE, "
                "fare_amount DECIMAL(8,2), satisfaction_rate DOUBLE, status_code INTEGER, notes VARCHAR, "
                "is_ebike BOOLEAN)")
    rows = []
    for i in range(3000):
        started = datetime(2023, 1, 1) + timedelta(minutes=137 * i)
        member = f"M{rng.randrange(200):04d}" if i % 50 else "M9999"  # 2% orphans
        rows.append((i + 1, member, rng.randint(1, 12), rng.randint(1, 12), f"M{rng.randrange(200):04d}", started,
                     None if i % 40 == 0 else started + timedelta(minutes=20), rng.uniform(3, 60),
                     round(rng.uniform(1, 25), 2), rng.random(), rng.randint(1, 3),
                     "The bike was " + rng.choice(["fine", "great", "slow"]) + " and the dock " * 4, i % 3 == 0))
    con.executemany("INSERT INTO rides VALUES (" + ", ".join("?" * 13) + ")", rows)
    con.execute("CREATE SCHEMA ops")
    con.execute("CREATE TABLE ops.repairs (repair_id INTEGER, station_id INTEGER, cost DECIMAL(10,2), repaired_on DATE)")
    con.executemany("INSERT INTO ops.repairs VALUES (?, ?, ?, ?)",
                    [(i, 1 + i % 12, 10.0 + i, date(2023, 1, 1) + timedelta(days=i)) for i in range(60)])
    con.execute("CREATE TABLE dock_slots (station_id INTEGER, slot_no INTEGER, kind VARCHAR)")
    con.executemany("INSERT INTO dock_slots VALUES (?, ?, ?)",
                    [(s, n, "ebike" if n % 4 == 0 else "classic") for s in range(1, 13) for n in range(1, 9)])
    # the charges of a ride have no date of their own: they are dated by their ride
    con.execute("CREATE TABLE ride_charges (charge_id INTEGER PRIMARY KEY, ride_id INTEGER, charge_kind VARCHAR, "
                "charge_amount DECIMAL(8,2))")
    con.executemany("INSERT INTO ride_charges VALUES (?, ?, ?, ?)",
                    [(i, 1 + (i * 7) % 3000, ["fare", "unlock", "late fee"][i % 3], round(0.5 + (i % 9), 2))
                     for i in range(1, 4001)])
    con.execute("CREATE TABLE archive (x INTEGER)")
    con.execute("COMMENT ON TABLE rides IS 'One row per ride: a member takes a bike from one station to another.'")
    con.execute("COMMENT ON COLUMN rides.fare_amount IS 'What the rider paid, in euros.'")
    con.execute("CREATE VIEW long_rides AS SELECT * FROM rides WHERE duration_minutes > 45")
    con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bikes") / "bikes.duckdb"
    _build(path)
    return path


@pytest.fixture(scope="module")
def profile(warehouse: Path):
    from lore.execute.engine import Engine
    from lore.settings import Settings

    with Engine.open(warehouse, Settings()) as engine:
        return survey(engine)


@pytest.fixture(scope="module")
def project(warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("init") / "bikes"
    return init_project(folder, warehouse, today=date(2024, 1, 2))


def _layer_files(result) -> dict[str, dict]:
    return {name: yaml.safe_load((result.root / "semantic" / name).read_text()) for name in result.files}


def _item(result, file: str) -> dict:
    data = _layer_files(result)[file]
    return (data.get("sources") or data.get("dimensions"))[0]


# --- the survey ------------------------------------------------------------------------------------------------------


def test_every_table_of_every_schema_and_views_are_found(profile) -> None:
    refs = {t.ref for t in profile.tables}
    assert refs == {"stations", "members", "status_lookup", "rides", "ops.repairs", "dock_slots", "archive", "long_rides",
                    "ride_charges"}
    assert profile.table("long_rides").is_view
    assert profile.table("rides").comment.startswith("One row per ride")
    assert profile.table("rides").column("fare_amount").comment == "What the rider paid, in euros."


def test_keys_declared_and_inferred(profile) -> None:
    assert profile.table("stations").key.model_dump() == {"columns": ("station_id",), "evidence": "declared"}
    assert profile.table("members").key.model_dump() == {"columns": ("MemberId",), "evidence": "names_and_values"}
    assert profile.table("rides").key.columns == ("id",)
    assert profile.table("dock_slots").key.model_dump() == {"columns": ("station_id", "slot_no"), "evidence": "values"}
    assert profile.table("archive").key is None


def test_links_from_names_and_values_with_orphans_and_roles(profile) -> None:
    links = {fk.column: fk for fk in profile.table("rides").links}
    assert (links["member"].target, links["member"].target_column) == ("members", "MemberId")
    assert links["member"].missing == 1 and links["member"].evidence == "names_and_values"  # M9999, 2% of rides
    assert links["start_station_id"].target == "stations" and links["end_station_id"].target == "stations"
    # a column whose name points nowhere is linked when its values all belong to one table's key
    assert (links["rider_ref"].target, links["rider_ref"].evidence) == ("members", "values")
    # three small codes are in status_lookup's key by chance, and the name does not point there: no link
    assert "status_code" not in links
    repairs = {fk.column: fk.target for fk in profile.table("ops.repairs").links}
    assert repairs == {"station_id": "stations"}  # across schemas


# --- the draft -------------------------------------------------------------------------------------------------------


def test_facts_and_dimensions(profile) -> None:
    draft = draft_layer(profile)
    kinds = {f.name: ("fact" if f.sources else "dimension") for f in draft.files}
    assert kinds["rides"] == "fact" and kinds["repairs"] == "fact" and kinds["dock_slots"] == "fact"
    assert kinds["stations"] == "dimension" and kinds["members"] == "dimension"


def test_the_draft_validates_with_no_errors(project) -> None:
    assert [i.render() for i in project.errors] == []
    assert Project.open(project.root).config.warehouse == project.warehouse


def test_columns_are_told_apart(project) -> None:
    rides = _item(project, "rides.yaml")
    cols = {c["name"]: c for c in rides["columns"]}
    assert rides["time_column"] == "started_at"  # complete, and named like an event; ended_at has NULLs
    assert cols["ended_at"]["kind"] == "time"
    assert cols["fare_amount"]["kind"] == "numeric" and cols["fare_amount"]["description"] == "What the rider paid, in euros."
    assert cols["is_ebike"]["kind"] == "boolean"
    assert cols["notes"]["index_values"] is False
    assert "member" not in cols and "start_station_id" not in cols  # links, not attributes
    members = _item(project, "members.yaml")
    mcols = {c["name"]: c for c in members["columns"]}
    assert mcols["Plan_Type"]["sample_values"] == ["annual", "monthly", "day pass"]  # most frequent first
    assert "label" not in mcols["Plan_Type"]  # "plan type" reads well without the row's name in front
    assert mcols["FullName"]["kind"] == "identifier" and "unique" not in mcols["FullName"]
    stations = _item(project, "stations.yaml")
    scols = {c["name"]: c for c in stations["columns"]}
    assert scols["station_name"]["unique"] is True  # 12 names for 12 stations: "by station" shows the name
    assert scols["city"]["sample_values"] == ["Braga", "Lisbon", "Porto"]


def test_links_with_roles_and_notes(project) -> None:
    text = (project.root / "semantic" / "rides.yaml").read_text()
    rides = _item(project, "rides.yaml")
    roles = {link.get("role") for link in rides["links"] if link["to"] == "stations"}
    assert roles == {"start", "end"}
    assert "# review: link rider_ref -> members.MemberId found from values alone" in text
    assert "link member -> members.MemberId: 1 of 201 values have no member" in text


def test_metrics_drafted(project) -> None:
    metrics = {m["name"]: m for f in _layer_files(project).values() for m in f.get("metrics", [])}
    assert metrics["rides_count"]["agg"] == "count" and metrics["rides_count"]["label"] == "number of rides"
    assert metrics["total_fare_amount"]["agg"] == "sum" and metrics["total_fare_amount"]["format"] == "currency"
    assert metrics["avg_satisfaction_rate"]["agg"] == "avg"  # a rate is averaged, never summed
    assert "total_satisfaction_rate" not in metrics and "total_status_code" not in metrics
    assert "total_cost" in metrics and metrics["total_cost"]["source"] == "repairs"


def test_questions_are_answered_on_the_untouched_draft(project, warehouse: Path) -> None:
    from lore import Lore

    with Lore.open(project.root, today=date(2024, 1, 2)) as lore:
        answer = lore.chat(user="ana").ask("repair cost by city in 2023")
        assert answer.status == "answered", answer.message
        got = {row[0]: float(row[1]) for row in answer.rows}
        # rides reach stations twice (start and end): asked back with both roles, never one picked silently
        both = lore.chat(user="ana").ask("number of rides by city in 2023")
        assert both.status == "clarify" and "start" in both.message and "end" in both.message
        # what the draft cannot say is asked back or answered with low confidence, never confidently wrong
        people = lore.chat(user="ana").ask("how many people took rides in 2023?")
        assert people.status == "clarify" and "counts rides" in people.message
        biggest = lore.chat(user="ana").ask("what was the biggest single repair we ever paid for?")
        assert biggest.status != "answered" or biggest.confidence < 0.8
        # "by <metric>" after a ranking is its key, though the numeric column summed bears the same name
        top = lore.chat(user="ana").ask("top 2 cities by repair cost in 2023")
        assert top.status == "answered" and top.plan is not None, top.message
        assert list(top.plan.metrics) == ["total_cost"] and top.plan.limit == 2
    con = duckdb.connect(str(warehouse), read_only=True)
    want = {k: float(v) for k, v in con.execute(
        "SELECT s.city, SUM(r.cost) FROM ops.repairs r LEFT JOIN stations s ON s.station_id = r.station_id "
        "WHERE r.repaired_on BETWEEN DATE '2023-01-01' AND DATE '2023-12-31' GROUP BY 1").fetchall()}
    con.close()
    assert got == pytest.approx(want)
    assert [(r[0], pytest.approx(float(r[1]))) for r in top.rows] == sorted(want.items(), key=lambda kv: -kv[1])[:2]


def test_a_date_is_named_by_the_verb_its_column_starts_with(project, warehouse: Path) -> None:
    """"stations opened in 2021": opened_on gets the synonym "opened" (noted for review); a verb two tables would
    get (ended_at is in rides and in the long_rides view) is given to neither."""
    from lore import Lore

    stations = {c["name"]: c for c in _item(project, "stations.yaml")["columns"]}
    assert stations["opened_on"]["synonyms"] == ["opened"]
    assert "verb its name starts with" in (project.root / "semantic" / "stations.yaml").read_text(encoding="utf-8")
    rides = {c["name"]: c for c in _item(project, "rides.yaml")["columns"]}
    assert "synonyms" not in rides["ended_at"]
    with Lore.open(project.root, today=date(2024, 1, 2)) as lore:
        answer = lore.chat(user="ana").ask("list the stations opened in the first half of 2021")
    assert answer.status == "answered", answer.message
    con = duckdb.connect(str(warehouse), read_only=True)
    want = {r[0] for r in con.execute("SELECT station_name FROM stations WHERE opened_on BETWEEN DATE '2021-01-01' "
                                      "AND DATE '2021-06-30'").fetchall()}
    con.close()
    assert {r[0] for r in answer.rows} == want and 0 < len(want) < 12


def test_an_undated_fact_is_dated_by_the_fact_it_belongs_to(project, warehouse: Path) -> None:
    """Charges have no date: a sql: node adds their ride's start (the table stays a node for the SQL guard), so
    "charges by month" works; the rides of the charge are counted as a distinct count."""
    from lore import Lore

    files = _layer_files(project)
    charges = files["ride_charges.yaml"]["sources"][0]
    assert "table" not in charges and "LEFT JOIN rides" in charges["sql"] and charges["time_column"] == "started_at"
    started = {c["name"]: c for c in charges["columns"]}["started_at"]
    assert (started["kind"], started["type"], started["label"]) == ("time", "TIMESTAMP", "ride date")
    raw = files["ride_charges.yaml"]["dimensions"][0]
    assert raw["table"] == "ride_charges" and raw["label"] == "raw ride charge row"
    assert "ride_charges has no date: a sql: node dates each ride charge by its ride's started_at" in \
        (project.root / "semantic" / "ride_charges.yaml").read_text()
    metrics = {m["name"]: m for f in files.values() for m in f.get("metrics", [])}
    assert metrics["rides_with_ride_charges"]["agg"] == "count_distinct"
    assert metrics["rides_with_ride_charges"]["label"] == "rides with ride charges"
    assert "members_with_rides" not in metrics  # rides name members twice (member, rider_ref): no one count
    with Lore.open(project.root, today=date(2024, 1, 2)) as lore:
        answer = lore.chat(user="ana").ask("total ride charge amount by quarter in 2023")
        assert answer.status == "answered", answer.message
        got = {str(row[0])[:10]: float(row[1]) for row in answer.rows}
        late = lore.chat(user="ana").ask("how many late fee ride charges in 2023?")
        assert late.status == "answered", late.message
    con = duckdb.connect(str(warehouse), read_only=True)
    want = {str(k): float(v) for k, v in con.execute(
        "SELECT CAST(date_trunc('quarter', r.started_at) AS DATE), SUM(c.charge_amount) FROM ride_charges c "
        "JOIN rides r ON r.id = c.ride_id WHERE r.started_at >= DATE '2023-01-01' AND r.started_at < DATE '2024-01-01' "
        "GROUP BY 1").fetchall()}
    lates = con.execute("SELECT COUNT(*) FROM ride_charges c JOIN rides r ON r.id = c.ride_id WHERE c.charge_kind = "
                        "'late fee' AND r.started_at >= DATE '2023-01-01' AND r.started_at < DATE '2024-01-01'").fetchone()[0]
    con.close()
    assert got == pytest.approx(want)
    assert float(late.rows[0][0]) == lates


def test_people_counted_by_several_distinct_counts_are_asked_about(tmp_path: Path) -> None:
    """A draft counts the customers and the stores among the orders: "how many different people ordered" names
    neither, so both are offered (it once crashed building the question back)."""
    from lore import Lore

    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"Customer {i}") for i in range(1, 41)])
    con.execute("CREATE TABLE stores (id INTEGER PRIMARY KEY, city VARCHAR)")
    con.executemany("INSERT INTO stores VALUES (?, ?)", [(1, "Lisbon"), (2, "Porto")])
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), "
                "store_id INTEGER REFERENCES stores(id), ordered_at TIMESTAMP, order_total DECIMAL(8,2))")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                    [(i, 1 + i % 40, 1 + i % 2, datetime(2023, 1, 1) + timedelta(hours=9 * i), 5 + i % 7)
                     for i in range(1, 500)])
    con.close()
    project = init_project(tmp_path / "shop", path, today=date(2023, 3, 1))
    with Lore.open(project.root, today=date(2023, 3, 1)) as lore:
        answer = lore.chat(user="ana").ask("how many different people ordered from us in 2023?")
        # customers have no date: "customers in February" are the customers among February's orders, said so
        both = lore.chat(user="ana").ask("orders and customers in February 2023")
    assert answer.status == "clarify", answer.message
    assert "customers" in answer.message and len(answer.suggestions) >= 2
    assert both.status == "answered" and both.plan is not None, both.message
    assert list(both.plan.metrics) == ["orders_count", "customers_with_orders"]
    assert any("no date of their own" in n for n in both.plan.notes)
    con = duckdb.connect(str(path), read_only=True)
    want = con.execute("SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM orders WHERE ordered_at >= DATE '2023-02-01' "
                       "AND ordered_at < DATE '2023-03-01'").fetchone()
    con.close()
    assert tuple(int(x) for x in both.rows[0]) == want


def test_the_lines_of_a_sale_are_sold_at_their_things_price(tmp_path: Path) -> None:
    """An order's items have no amount: the draft dates them by their order and prices them at their product's price
    (cents, divided by 100), so "top 2 products by sales" answers with the products' sales, not the orders' totals
    (which never reach a product), at a medium confidence."""
    from lore import Lore

    path = tmp_path / "cafe.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE products (sku VARCHAR PRIMARY KEY, name VARCHAR, price INTEGER)")
    con.executemany("INSERT INTO products VALUES (?, ?, ?)",
                    [("P1", "flat white", 450), ("P2", "scone", 325), ("P3", "toastie", 899)])
    con.execute("CREATE TABLE stores (id INTEGER PRIMARY KEY, city VARCHAR)")
    con.executemany("INSERT INTO stores VALUES (?, ?)", [(1, "Lisbon"), (2, "Porto")])
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, store_id INTEGER REFERENCES stores(id), "
                "ordered_at TIMESTAMP, order_total INTEGER)")
    con.execute("CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(id), "
                "sku VARCHAR REFERENCES products(sku))")
    rng = random.Random(3)
    items, orders = [], []
    for o in range(1, 301):
        picked = [rng.choice(["P1", "P1", "P2", "P3"]) for _ in range(rng.randint(1, 3))]
        orders.append((o, 1 + o % 2, datetime(2023, 1, 1) + timedelta(hours=20 * o), 0))
        for sku in picked:
            items.append((len(items) + 1, o, sku))
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", orders)
    con.executemany("INSERT INTO order_items VALUES (?, ?, ?)", items)
    con.close()
    project = init_project(tmp_path / "cafe", path, today=date(2023, 12, 1))
    files = _layer_files(project)
    lines = files["order_items.yaml"]
    assert "products.price AS product_price" in lines["sources"][0]["sql"]
    sales = {m["name"]: m for m in lines["metrics"]}["product_sales"]
    assert (sales["agg"], sales["expr"], sales["label"]) == ("sum", "product_price / 100.0", "product sales")
    with Lore.open(project.root, today=date(2023, 12, 1)) as lore:
        answer = lore.chat(user="ana").ask("top 2 products by sales in 2023")
        # "menu item" is a product's synonym: "menu" alone names no node ("sellers on the menu" are its products)
        worst = lore.chat(user="ana").ask("2 worst sellers on the menu in 2023, by count")
        # a follow-up naming "sales" keeps the products: their sales, not the orders' totals without the products
        chat = lore.chat(user="ana")
        chat.ask("top 2 products by units sold in 2023")
        then = chat.ask("and by sales?")
    assert then.plan is not None and list(then.plan.metrics) == ["product_sales"], then.message
    assert "products.name" in then.plan.dimensions and then.confidence < 0.8
    assert worst.status == "answered" and worst.plan is not None and worst.plan.limit == 2, worst.message
    assert answer.status == "answered" and answer.plan is not None, answer.message
    assert list(answer.plan.metrics) == ["product_sales"] and 0.5 <= answer.confidence < 0.8
    con = duckdb.connect(str(path), read_only=True)
    want = con.execute("SELECT p.name, SUM(p.price) / 100.0 AS s FROM order_items i JOIN products p ON p.sku = i.sku "
                       "JOIN orders o ON o.id = i.order_id WHERE o.ordered_at < DATE '2024-01-01' GROUP BY 1 "
                       "ORDER BY s DESC LIMIT 2").fetchall()
    con.close()
    assert [(r[0], pytest.approx(float(r[1]))) for r in answer.rows] == [(n, float(v)) for n, v in want]


# --- the project files and the command ------------------------------------------------------------------------------


def test_an_existing_project_is_never_overwritten_without_force(project, warehouse: Path) -> None:
    with pytest.raises(OperatorError, match="already holds a LORE project"):
        init_project(project.root, warehouse)
    before = (project.root / "semantic" / "rides.yaml").read_text()
    (project.root / "semantic" / "rides.yaml").write_text(before + "# my edit\n")
    again = init_project(project.root, warehouse, force=True)
    assert again.backup is not None and (again.backup / "semantic" / "rides.yaml").read_text().endswith("# my edit\n")
    assert (again.backup / "lore.yaml").exists()
    assert not (project.root / "semantic" / "rides.yaml").read_text().endswith("# my edit\n")


def test_a_missing_warehouse_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFound, match="No DuckDB warehouse"):
        init_project(tmp_path / "p", tmp_path / "nope.duckdb")
    assert not (tmp_path / "p").exists()


def test_a_file_named_for_a_server_engine_says_what_to_do(tmp_path: Path) -> None:
    """PostgreSQL is reached through the URL in an environment variable: a --warehouse file is a mistake, said
    before anything is opened or written."""
    from lore.project import EngineConfig

    with pytest.raises(OperatorError, match="--warehouse names a DuckDB file or a Spark folder") as err:
        init_project(tmp_path / "p", tmp_path / "shop.duckdb", engine=EngineConfig(type="postgres"))
    assert "LORE_POSTGRES_URL" in (err.value.hint or "")
    assert not (tmp_path / "p").exists()


def test_databases_belong_to_spark(tmp_path: Path) -> None:
    from lore.cli import app

    result = CliRunner().invoke(app, ["init", str(tmp_path / "p"), "--engine", "postgres", "--databases", "raw"])
    assert result.exit_code != 0 and "--databases names Spark catalog databases" in result.output
    assert not (tmp_path / "p").exists()


def test_an_empty_warehouse_writes_nothing(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    with pytest.raises(OperatorError, match="no tables"):
        init_project(tmp_path / "p", tmp_path / "empty.duckdb")
    assert not (tmp_path / "p" / "lore.yaml").exists()


def test_the_command(warehouse: Path, tmp_path: Path) -> None:
    from lore.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    assert "Next: check the" in result.output and "lore ui --project" in result.output
    again = runner.invoke(app, ["init", str(tmp_path / "p"), "--warehouse", str(warehouse), "--json"])
    assert again.exit_code == 2 and "already holds a LORE project" in again.output
    forced = runner.invoke(app, ["init", str(tmp_path / "p"), "--warehouse", str(warehouse), "--json", "--force"])
    assert forced.exit_code == 0, forced.output
    import json

    data = json.loads(forced.output)
    last = datetime(2023, 1, 1) + timedelta(minutes=137 * 2999)  # the last ride; repairs end earlier
    assert data["data_ends"] == last.date().isoformat()
    assert data["links"]["values"] == 2 and data["backup"]  # rides.rider_ref, and the same column of the view
    assert [i for i in data["issues"] if i["severity"] == "error"] == []


# --- the drafting rules on profiles written by hand ------------------------------------------------------------------


def _profile():
    from lore.onboard.profile import ColumnProfile, ForeignKey, Key, TableProfile, WarehouseProfile

    products = TableProfile(name="dim_products", rows=10, key=Key(columns=("sku",), evidence="declared"), columns=(
        ColumnProfile(name="sku", type="VARCHAR", distinct=10), ColumnProfile(name="price", type="INTEGER", distinct=8),
        ColumnProfile(name="name", type="VARCHAR", distinct=10, samples=("a", "b"))))
    sales = TableProfile(name="fct_sales", rows=1000, key=Key(columns=("id",), evidence="names_and_values"), columns=(
        ColumnProfile(name="id", type="INTEGER", distinct=1000), ColumnProfile(name="sku", type="VARCHAR", distinct=10),
        ColumnProfile(name="sold_on", type="DATE", distinct=300), ColumnProfile(name="price", type="INTEGER", distinct=50),
        ColumnProfile(name="year", type="INTEGER", distinct=2), ColumnProfile(name="discount_rate", type="DOUBLE", distinct=9)),
        links=(ForeignKey(column="sku", target="dim_products", target_column="sku", evidence="declared"),))
    # undated lines of a sale: the first is dated by the sale; the second's category has more values than its
    # samples (a sql: node's values are its samples), so it is left to a person
    lines = TableProfile(name="sale_lines", rows=3000, key=Key(columns=("line_id",), evidence="declared"), columns=(
        ColumnProfile(name="line_id", type="INTEGER", distinct=3000), ColumnProfile(name="sale_id", type="INTEGER", distinct=1000),
        ColumnProfile(name="qty", type="INTEGER", distinct=30)),
        links=(ForeignKey(column="sale_id", target="fct_sales", target_column="id", evidence="declared"),))
    notes = TableProfile(name="sale_notes", rows=3000, key=Key(columns=("note_id",), evidence="declared"), columns=(
        ColumnProfile(name="note_id", type="INTEGER", distinct=3000), ColumnProfile(name="sale_id", type="INTEGER", distinct=1000),
        ColumnProfile(name="topic", type="VARCHAR", distinct=20, samples=("a", "b", "c"), avg_length=5)),
        links=(ForeignKey(column="sale_id", target="fct_sales", target_column="id", evidence="declared"),))
    return WarehouseProfile(tables=(products, sales, lines, notes))


def test_drafting_rules() -> None:
    draft = draft_layer(_profile())
    files = {f.name: f for f in draft.files}
    assert files["dim_products"].dimensions and files["fct_sales"].sources
    assert files["dim_products"].dimensions[0].data["label"] == "product"  # affix gone, singular
    sale = files["fct_sales"].sources[0]
    assert sale.data["time_column"] == "sold_on"
    assert any("primary key ('id',) inferred" in n for n in sale.notes)
    # a price kept in whole numbers is in cents (a price has cents): divided by 100, noted for a person to check
    assert any("whole-number amounts read as cents (price)" in n for n in sale.notes)
    product_metrics = [m.data["name"] for m in files["dim_products"].metrics]
    sale_metrics = {m.data["name"]: m.data for m in files["fct_sales"].metrics}
    assert product_metrics == ["dim_products_count", "avg_price"]  # a sum of prices over products means nothing
    # the fact's average price collides with the dimension's: the second gets its table's name in front
    assert set(sale_metrics) == {"fct_sales_count", "total_price", "fct_sales_avg_price", "avg_discount_rate",
                                 "dim_products_with_fct_sales"}
    assert sale_metrics["dim_products_with_fct_sales"]["expr"] == "sku"  # the distinct products sold
    assert sale_metrics["total_price"]["label"] == "sale price" and sale_metrics["total_price"]["agg"] == "sum"
    assert sale_metrics["total_price"]["expr"] == "price / 100.0" and "holds cents" in sale_metrics["total_price"]["description"]
    assert "total_year" not in sale_metrics  # a year is a position in time, never added up
    lines = files["sale_lines"]
    assert lines.sources[0].data["time_column"] == "sold_on" and "sale_id = fct_sales.id" in lines.sources[0].data["sql"]
    assert lines.dimensions[0].data == {"name": "raw_sale_lines", "table": "sale_lines", "label": "raw sale line row",
                                        "description": "The sale_lines table as stored: the node sale_lines reads it "
                                                       "and adds the date. Group and filter by sale lines instead.",
                                        "primary_key": ["line_id"]}
    notes = files["sale_notes"].sources[0]
    assert "table" in notes.data and "time_column" not in notes.data
    assert any("topic has more values than a sql: node can list" in n for n in notes.notes)


def test_the_words_people_use_are_offered_for_review() -> None:
    """Common business words become synonyms (each noted for review): a store is also a shop, an order's total
    is revenue (a total kept in whole numbers is read as cents, so it gets them too); never a word the draft already
    uses or a word two things would get."""
    from lore.onboard.profile import ColumnProfile, ForeignKey, Key, TableProfile, WarehouseProfile

    def key(name: str) -> Key:
        return Key(columns=(name,), evidence="declared")

    stores = TableProfile(name="stores", rows=6, key=key("id"), columns=(
        ColumnProfile(name="id", type="INTEGER", distinct=6),
        ColumnProfile(name="city", type="VARCHAR", distinct=6, samples=("Lyon", "Nice")),
        ColumnProfile(name="line_of_business", type="VARCHAR", distinct=3, samples=("cafe", "kiosk", "bakery"))))
    customers = TableProfile(name="customers", rows=50, key=key("id"), columns=(
        ColumnProfile(name="id", type="INTEGER", distinct=50), ColumnProfile(name="site", type="VARCHAR", distinct=3,
                                                                               samples=("web", "app", "store"))))
    patients = TableProfile(name="patients", rows=50, key=key("id"), columns=(
        ColumnProfile(name="id", type="INTEGER", distinct=50),))
    orders = TableProfile(name="orders", rows=900, key=key("id"), columns=(
        ColumnProfile(name="id", type="INTEGER", distinct=900), ColumnProfile(name="store_id", type="INTEGER", distinct=6),
        ColumnProfile(name="customer_id", type="INTEGER", distinct=50),
        ColumnProfile(name="ordered_at", type="TIMESTAMP", distinct=900),
        ColumnProfile(name="order_total", type="DECIMAL(10,2)", distinct=800),
        ColumnProfile(name="tax_paid", type="INTEGER", distinct=90)),
        links=(ForeignKey(column="store_id", target="stores", target_column="id", evidence="declared"),
               ForeignKey(column="customer_id", target="customers", target_column="id", evidence="declared")))
    products = TableProfile(name="products", rows=20, key=key("sku"), columns=(
        ColumnProfile(name="sku", type="VARCHAR", distinct=20), ColumnProfile(name="title", type="VARCHAR", distinct=20)))
    lines = TableProfile(name="order_items", rows=3000, key=key("id"), columns=(
        ColumnProfile(name="id", type="INTEGER", distinct=3000), ColumnProfile(name="order_id", type="INTEGER", distinct=900),
        ColumnProfile(name="sku", type="VARCHAR", distinct=20)),
        links=(ForeignKey(column="order_id", target="orders", target_column="id", evidence="declared"),
               ForeignKey(column="sku", target="products", target_column="sku", evidence="declared")))
    files = {f.name: f for f in draft_layer(WarehouseProfile(tables=(stores, customers, patients, orders, products,
                                                                     lines))).files}
    # the lines of an order that each name a product: each one a unit sold
    sold = next(m.data for m in files["order_items"].metrics if m.data["agg"] == "count")
    assert sold["synonyms"][-4:] == ["products sold", "units sold", "items sold", "quantity sold"]
    store = files["stores"].dimensions[0]
    # "site" is a column of customers: not offered to stores
    assert store.data["synonyms"] == ["shop", "location", "branch", "outlet"]
    assert any("common words for a store" in n for n in store.notes)
    count = next(m.data for m in files["stores"].metrics if m.data["agg"] == "count")
    assert "number of shops" in count["synonyms"]
    lob = {c["name"]: c for c in store.data["columns"]}["line_of_business"]
    assert lob["synonyms"] == ["lob"]
    # customers and patients would both be "clients": neither is
    assert "client" not in files["customers"].dimensions[0].data.get("synonyms", [])
    assert "client" not in files["patients"].sources[0].data.get("synonyms", [])
    metrics = {m.data["name"]: m for m in files["orders"].metrics}
    assert metrics["total_order_total"].data["synonyms"][-8:] == ["revenue", "sales", "total sales", "gross sales",
                                                                   "turnover", "spend", "spent", "amount spent"]
    # a tax kept in whole numbers is read as cents, so its words are given; a premium in whole numbers may be
    # whole dollars, so its words wait for a person
    tax = metrics["total_tax_paid"]
    assert tax.data["expr"] == "tax_paid / 100.0" and tax.data["synonyms"][-3:] == ["taxes", "tax collected", "sales tax"]
    average = metrics["avg_order_total"].data
    assert average["synonyms"][-3:] == ["average order value", "average order amount", "average spend"]
