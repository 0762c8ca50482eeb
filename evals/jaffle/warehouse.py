"""Build the jaffle-shop eval project: jafgen's raw CSVs, loaded into DuckDB, with its semantic layer.

    python -m evals.jaffle.warehouse DIR [--years N] [--seed S]

writes ``DIR/warehouse.duckdb``, ``DIR/semantic/*.yaml`` (copied from ``evals/jaffle/semantic/``) and
``DIR/lore.yaml`` (``today:`` pinned to the day after the last order), and prints the data range and
the size of every table.

The data comes from ``jafgen`` (the dbt "jaffle shop" generator, a dev dependency), run in-process and
offline. jafgen has no seed option: it draws from ``random``, ``numpy.random``, Faker (seeded with a
constant at import) and ``uuid.uuid4()`` (which reads the OS's entropy). :func:`generate_csvs` seeds
the first three with ``--seed`` and swaps ``uuid.uuid4`` for a seeded generator while the simulation
runs, so one seed always gives the same CSVs (ids included), and restores them afterwards.

What jafgen simulates: six stores (Philadelphia opens on the first simulated day, 2018-09-01;
Brooklyn, Chicago, San Francisco, New Orleans and Los Angeles open later, the last two after a
two-year run ends), each with a market of customer personas who order jaffles (toasted sandwiches)
and drinks; a few of them tweet about it. ``--years N`` simulates ``365 * N`` days from 2018-09-01.

The tables (names without jafgen's ``raw_`` prefix, columns as in the CSVs, text trimmed):

=========  ==========================================================================  =================
table      columns                                                                     primary key
=========  ==========================================================================  =================
customers  id, name                                                                    id
orders     id, customer (-> customers.id), ordered_at TIMESTAMP, store_id (-> stores), id
           subtotal, tax_paid, order_total (INTEGER cents)
items      id, order_id (-> orders.id), sku (-> products.sku): one row per unit sold   id
products   sku, name, type ('jaffle' | 'beverage'), price (INTEGER cents), description sku
stores     id, name (a city), opened_at TIMESTAMP, tax_rate DOUBLE (0.06 = 6%)         id
supplies   id, name, cost (INTEGER cents per unit of product), perishable BOOLEAN, sku  (id, sku)
tweets     id, user_id (-> customers.id), tweeted_at TIMESTAMP, content                id
=========  ==========================================================================  =================

Money is kept in the unit the CSVs use, **US cents**, as whole numbers (jafgen writes
``int(dollars * 100)``), so sums are exact; the semantic layer divides by 100 to report dollars.
``order_total = subtotal + tax_paid`` on every row. A supply row says that one unit of product
``sku`` uses one unit of that supply; a supply shared by several products has one row per product.
``customers`` holds only the customers who ordered at least once. Some orders have no items
(a walk-in who bought nothing): their totals are 0.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path

from evals.project_files import print_report
from evals.project_files import write_project as write_eval_project

#: the semantic layer copied into every built project
SEMANTIC_DIR = Path(__file__).resolve().parent / "semantic"
#: tables in load order
TABLES: tuple[str, ...] = ("stores", "products", "supplies", "customers", "orders", "items", "tweets")
DEFAULT_YEARS = 2
DEFAULT_SEED = 42

#: DDL per table: the CSV's columns with their types, and the primary key
_DDL: dict[str, str] = {
    "stores": "id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, opened_at TIMESTAMP NOT NULL, tax_rate DOUBLE NOT NULL",
    "products": ("sku VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, type VARCHAR NOT NULL, price INTEGER NOT NULL, "
                 "description VARCHAR"),
    "supplies": ("id VARCHAR NOT NULL, name VARCHAR NOT NULL, cost INTEGER NOT NULL, perishable BOOLEAN NOT NULL, "
                 "sku VARCHAR NOT NULL, PRIMARY KEY (id, sku)"),
    "customers": "id VARCHAR PRIMARY KEY, name VARCHAR",
    "orders": ("id VARCHAR PRIMARY KEY, customer VARCHAR NOT NULL, ordered_at TIMESTAMP NOT NULL, "
               "store_id VARCHAR NOT NULL, subtotal INTEGER NOT NULL, tax_paid INTEGER NOT NULL, "
               "order_total INTEGER NOT NULL"),
    "items": "id VARCHAR PRIMARY KEY, order_id VARCHAR NOT NULL, sku VARCHAR NOT NULL",
    "tweets": "id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, tweeted_at TIMESTAMP NOT NULL, content VARCHAR",
}

#: SELECT list per table over ``read_csv(..., all_varchar = true)``: casts and trims
_SELECT: dict[str, str] = {
    "stores": "trim(id), trim(name), CAST(opened_at AS TIMESTAMP), CAST(tax_rate AS DOUBLE)",
    "products": "trim(sku), trim(name), trim(type), CAST(price AS INTEGER), trim(description)",
    "supplies": "trim(id), trim(name), CAST(cost AS INTEGER), lower(trim(perishable)) = 'true', trim(sku)",
    "customers": "trim(id), trim(name)",
    "orders": ("trim(id), trim(customer), CAST(ordered_at AS TIMESTAMP), trim(store_id), CAST(subtotal AS INTEGER), "
               "CAST(tax_paid AS INTEGER), CAST(order_total AS INTEGER)"),
    "items": "trim(id), trim(order_id), trim(sku)",
    "tweets": "trim(id), trim(user_id), CAST(tweeted_at AS TIMESTAMP), trim(content)",
}


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Make jafgen deterministic for ``seed``: seed ``random``, numpy and Faker, and replace ``uuid.uuid4``.

    The previous states of ``random`` and numpy and the real ``uuid.uuid4`` are restored on exit.

    >>> with seeded(7):
    ...     a = (random.random(), str(uuid.uuid4()))
    >>> with seeded(7):
    ...     b = (random.random(), str(uuid.uuid4()))
    >>> a == b, uuid.UUID(a[1]).version
    (True, 4)
    """
    import numpy as np
    from faker import Faker

    ids = random.Random(f"jaffle-ids-{seed}")
    real_uuid4 = uuid.uuid4
    py_state = random.getstate()
    np_state = np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    Faker.seed(seed)
    uuid.uuid4 = lambda: uuid.UUID(int=ids.getrandbits(128), version=4)  # type: ignore[assignment]
    try:
        yield
    finally:
        uuid.uuid4 = real_uuid4  # type: ignore[assignment]
        random.setstate(py_state)
        np.random.set_state(np_state)


def generate_csvs(out_dir: Path, years: int = DEFAULT_YEARS, seed: int = DEFAULT_SEED) -> Path:
    """Run jafgen's simulation in-process (offline, quiet) and write its ``raw_*.csv`` files.

    Returns the folder holding them (``out_dir/jaffle-data``, where jafgen writes).
    """
    if years < 1:
        raise ValueError("years must be at least 1")
    from jafgen import simulation

    out_dir.mkdir(parents=True, exist_ok=True)
    real_track = simulation.track
    simulation.track = lambda seq, **_: seq  # no progress bars
    try:
        with seeded(seed), contextlib.chdir(out_dir):
            sim = simulation.Simulation(years, "raw")
            sim.run_simulation()
            sim.save_results()
    finally:
        simulation.track = real_track
    return out_dir / "jaffle-data"


def load_warehouse(csv_dir: Path, db_path: Path) -> dict[str, int]:
    """Load jafgen's CSVs into a new DuckDB file with typed columns and primary keys; returns row counts."""
    import duckdb

    db_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (db_path, db_path.with_name(db_path.name + ".wal")):
        stale.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    con = duckdb.connect(str(db_path))
    try:
        for table in TABLES:
            csv = csv_dir / f"raw_{table}.csv"
            con.execute(f"CREATE TABLE {table} ({_DDL[table]})")
            con.execute(f"INSERT INTO {table} SELECT {_SELECT[table]} "
                        "FROM read_csv(?, header = true, all_varchar = true, auto_detect = true)", [str(csv)])
            counts[table] = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return counts


def data_range(db_path: Path) -> tuple[date, date]:
    """First and last order date in the warehouse."""
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        first, last = con.execute("SELECT MIN(ordered_at)::DATE, MAX(ordered_at)::DATE FROM orders").fetchone()  # type: ignore[misc]
    finally:
        con.close()
    return first, last


def write_project(project_dir: Path, today: date) -> Path:
    """Copy the semantic layer into ``project_dir/semantic`` and write ``lore.yaml``."""
    return write_eval_project(project_dir, SEMANTIC_DIR, name="jaffle",
                              description="The jaffle shop (jafgen): a coffee-and-jaffle chain; LORE's second eval domain.", today=today)


def build(project_dir: Path, years: int = DEFAULT_YEARS, seed: int = DEFAULT_SEED) -> dict[str, object]:
    """Generate, load and write the whole project; returns a small report."""
    project_dir = Path(project_dir)
    project_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jafgen-") as tmp:
        csv_dir = generate_csvs(Path(tmp), years=years, seed=seed)
        counts = load_warehouse(csv_dir, project_dir / "warehouse.duckdb")
    first, last = data_range(project_dir / "warehouse.duckdb")
    today = last + timedelta(days=1)
    write_project(project_dir, today)
    return {"counts": counts, "first": first, "last": last, "today": today,
            "seconds": time.perf_counter() - started, "years": years, "seed": seed}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.jaffle.warehouse", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="the project folder to create (or refresh)")
    parser.add_argument("--years", type=int, default=DEFAULT_YEARS,
                        help=f"years simulated from 2018-09-01 (default {DEFAULT_YEARS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    if args.years < 1:
        parser.error("--years must be at least 1")
    report = build(args.dir, years=args.years, seed=args.seed)
    print_report(f"jaffle shop: {args.years} year(s), seed {args.seed}, built in {report['seconds']:.1f} s -> {args.dir}",
                 report, what="orders", width=10)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
