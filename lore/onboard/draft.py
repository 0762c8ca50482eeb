"""`lore init`: survey a warehouse and draft a semantic layer a person reviews.

Three steps, each small:

* :func:`survey` asks the warehouse (through :mod:`lore.execute.introspect`, on the hardened read-only engine)
  for its tables, columns, declared constraints and the shape of the values, and finds keys and links from
  evidence: a declared constraint, or a name that points at a table together with values that are all there;
* :func:`draft_layer` (pure) decides, from that profile alone, what is a fact and what a dimension, which
  column dates a fact, which columns are categories, identifiers or amounts, and drafts the metrics
  (a count per table, a sum per amount, an average per rate); every guess a person should check becomes a
  ``# review:`` note;
* :func:`render` writes the draft as YAML files, one per table with its metrics, the notes as comments.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from lore.onboard.profile import ColumnProfile, Evidence, ForeignKey, Key, TableProfile, WarehouseProfile
from lore.types import Frozen

#: a text column with at most this many values is a category, and its values are sampled
CATEGORY_MAX = 50
#: a text column with more values than this share of its rows names rows rather than groups them
IDENTIFIER_SHARE = 0.5
#: text longer than this on average is free text: not a category, values not indexed
FREE_TEXT_LENGTH = 40
#: values quoted as samples of a category
SAMPLES = 8
#: a link found from values alone needs at least this many distinct values (small codes match by chance)
VALUES_ONLY_MIN_DISTINCT = 20
#: columns profiled by one query (one scan of the table each)
STATS_PER_QUERY = 40
#: a link found from a name may have up to this share of values its target lacks (orphans, reported)
ORPHAN_SHARE = 0.05

Progress = Callable[[str, int, int], None]

_SPLIT_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_TABLE_AFFIXES = re.compile(r"^(?:raw|stg|dim|fct|fact|tbl|src|int|mart)_+|_+(?:dim|fact|tbl|table)$", re.I)
_KEYISH = re.compile(r"(?:^|_)(?:id|key|code|sku|uuid|guid|number|num|no|nr|ref)$|(?<=[a-z])(?:Id|ID|Key|Code|Ref)$")
_KEY_SUFFIX = re.compile(r"_?(?:id|key|code|uuid|guid|number|num|no|nr|ref)$", re.I)
#: amounts that read as a rate or a level, averaged rather than summed
_AVERAGED = re.compile(r"(?:^|_)(?:rate|ratio|pct|percent|percentage|share|score|rating|age|avg|average|mean|"
                       r"probability|prob|index|level|grade|temperature|temp)(?:_|$)", re.I)
#: numbers that are positions or codes, never added up
_NOT_MEASURE = re.compile(r"(?:^|_)(?:lat|latitude|lon|lng|longitude|year|month|day|week|quarter|hour|zip|"
                          r"zipcode|postcode|postal|phone|version|seq|sequence|rank|position|order_no)(?:_|$)", re.I)
#: amounts of money, by the words of their names
_MONEY = re.compile(r"(?:^|_)(?:amount|amt|price|cost|costs|revenue|sales|total|subtotal|premium|premiums|paid|"
                    r"payment|fee|fees|spend|spent|salary|balance|tax|discount|value|charge|charges|income|"
                    r"profit|margin|budget|loss|losses|refund|usd|eur|gbp|dollars|cents)(?:_|$)", re.I)
#: money of one transaction (a price, a total, a tax, a fee): kept in whole numbers, it is in cents (minor units),
#: since such amounts have cents; coarse money (a salary, a budget, a premium, a balance) may be whole units
_CENTS = re.compile(r"(?:^|_)(?:amount|amt|price|cost|costs|total|subtotal|paid|payment|fee|fees|tax|discount|"
                    r"charge|charges|refund|spend|spent|cents)(?:_|$)", re.I)
#: money named in whole units of a currency
_MAJOR_UNITS = re.compile(r"(?:^|_)(?:usd|eur|gbp|dollars|euros|pounds)(?:_|$)", re.I)
#: a time column that says when a row happened, preferred as the fact's date
_EVENT_TIME = re.compile(r"(?:^|_)(?:created|ordered|placed|occurred|event|transaction|txn|booked|sold|paid|"
                         r"posted|submitted|reported|started|start|date|timestamp|ts|at|on|time|day)(?:_|$)", re.I)


# --- words -----------------------------------------------------------------------------------------------------------


def words(name: str) -> str:
    """A column or table name as lower-case words.

    >>> words("Claim_Open_Date"), words("orderTotal"), words("HTTPStatus"), words("tax_paid")
    ('claim open date', 'order total', 'http status', 'tax paid')
    """
    text = _SPLIT_CAMEL.sub(" ", name).replace("_", " ").replace("-", " ")
    return " ".join(text.lower().split())


#: abbreviations common in column names, read out in labels ("order_qty" is labelled "order quantity")
_ABBREVIATIONS = {"qty": "quantity", "amt": "amount", "nbr": "number", "num": "number", "cust": "customer",
                  "txn": "transaction", "trx": "transaction", "dt": "date", "desc": "description", "addr": "address",
                  "acct": "account", "emp": "employee", "dept": "department", "prod": "product", "pct": "percent",
                  "avg": "average", "cnt": "count", "yr": "year", "qtr": "quarter", "wk": "week", "mgr": "manager",
                  "ctry": "country", "msg": "message", "usr": "user", "pmt": "payment", "curr": "currency",
                  "loc": "location", "lang": "language", "tel": "telephone"}


def spoken(name: str) -> str:
    """A name as words with its abbreviations read out.

    >>> spoken("order_qty"), spoken("CustAddr"), spoken("txn_dt"), spoken("status")
    ('order quantity', 'customer address', 'transaction date', 'status')
    """
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words(name).split())


def singular(text: str) -> str:
    """The singular of a label's last word ("supplies" -> "supply", "order items" -> "order item").

    >>> [singular(w) for w in ("customers", "supplies", "addresses", "status", "claim payments", "data", "boxes")]
    ['customer', 'supply', 'address', 'status', 'claim payment', 'data', 'box']
    """
    head, _, last = text.rpartition(" ")
    if last.endswith("ies") and len(last) > 4:
        last = last[:-3] + "y"
    elif last.endswith(("sses", "xes", "ches", "shes", "zes")):
        last = last[:-2]
    elif last.endswith("s") and not last.endswith(("ss", "us", "is")) and len(last) > 3:
        last = last[:-1]
    return f"{head} {last}" if head else last


def plural(text: str) -> str:
    """The plural of a label's last word.

    >>> [plural(w) for w in ("customer", "supply", "box", "claim payment", "day", "status")]
    ['customers', 'supplies', 'boxes', 'claim payments', 'days', 'statuses']
    """
    head, _, last = text.rpartition(" ")
    if last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("s", "x", "ch", "sh", "z")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def table_label(name: str) -> str:
    """What one row of a table is called: its name without warehouse affixes, singular.

    >>> table_label("raw_customers"), table_label("fct_order_items"), table_label("ClaimPayments")
    ('customer', 'order item', 'claim payment')
    """
    return singular(spoken(_TABLE_AFFIXES.sub("", name) or name))


def node_name(text: str) -> str:
    """A valid layer name (letters, digits, underscores, not starting with a digit).

    >>> node_name("order-items"), node_name("2024 sales"), node_name("Orders")
    ('order_items', 't_2024_sales', 'orders')
    """
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower() or "t"
    return f"t_{name}" if name[0].isdigit() else name


def _stem(column: str) -> str:
    """A key-like column's name without its key suffix, as words ("customer_id" -> "customer")."""
    return words(_KEY_SUFFIX.sub("", column) or column)


def is_keyish(column: str) -> bool:
    """Whether a column's name says it holds ids or codes.

    >>> [is_keyish(c) for c in ("id", "customer_id", "CustomerID", "sku", "policy_number", "width", "paid")]
    [True, True, True, True, True, False, False]
    """
    return bool(_KEYISH.search(column)) or column.lower() == "id"


def names_target(column: str, table: TableProfile) -> bool:
    """Whether a column's name points at a table through its key: ``customer_id``, ``customer`` or ``CustomerId`` at
    ``customers(id)``; ``sku`` at ``products(sku)``; ``policy_id`` at ``policies(policy_id)``; with a role in front,
    ``pickup_store_id`` at ``stores``.
    """
    if table.key is None or len(table.key.columns) != 1:
        return False
    key = table.key.columns[0]
    if column.lower() == key.lower() and key.lower() not in ("id", "key", "code", "uuid", "guid"):
        return True
    return role_of(column, table) is not None


def role_of(column: str, table: TableProfile) -> str | None:
    """The words a column's name puts before the table it points at ("" for none), None when it names another.

    >>> t = TableProfile(name="stations", key=Key(columns=("id",), evidence="declared"))
    >>> role_of("start_station_id", t), role_of("station_id", t), role_of("StationId", t), role_of("status_id", t)
    ('start', '', '', None)
    """
    label = table_label(table.name)
    stem = _stem(column)
    for name in (label, words(table.name), plural(label)):
        if stem == name:
            return ""
        if stem.endswith(" " + name):
            return stem[: -len(name) - 1]
    return None


# --- survey ----------------------------------------------------------------------------------------------------------


def survey(engine: Any, *, progress: Progress | None = None) -> WarehouseProfile:
    """Profile every table and view of the warehouse behind ``engine`` (a :class:`lore.execute.engine.Engine`)."""
    from lore.execute import introspect as ask  # the queries; duckdb stays inside lore/execute

    catalog = ask.read_catalog(engine)
    total = len(catalog) * 2
    tables: list[TableProfile] = []
    skipped: list[tuple[str, str]] = []
    for i, entry in enumerate(catalog):
        if progress:
            progress(f"profiling {entry.ref}", i, total)
        if not entry.columns:
            skipped.append((entry.ref, "it has no columns"))
            continue
        rows = ask.row_count(engine, entry.ref)
        columns = []
        families = [ColumnProfile(name=col.name, type=col.type).family for col in entry.columns]
        pairs = [(c.name, f) for c, f in zip(entry.columns, families)]
        every = [stat for at in range(0, len(pairs), STATS_PER_QUERY)  # a wide table is read a few columns at a time
                 for stat in ask.column_stats(engine, entry.ref, pairs[at:at + STATS_PER_QUERY], rows)]
        for col, family, stats in zip(entry.columns, families, every):
            samples: tuple[str, ...] = ()
            if family in ("text", "boolean", "integer") and 0 < stats.distinct <= CATEGORY_MAX:
                samples = tuple(ask.top_values(engine, entry.ref, col.name, SAMPLES))
            columns.append(ColumnProfile(name=col.name, type=col.type, comment=col.comment, nulls=stats.nulls,
                                         distinct=stats.distinct, samples=samples, avg_length=stats.avg_length,
                                         low=stats.low, high=stats.high))
        table = TableProfile(schema_name=entry.schema_name, name=entry.name, rows=rows, comment=entry.comment,
                             is_view=entry.is_view, columns=tuple(columns))
        key = _find_key(engine, table, entry.primary_key, entry.unique, ask.is_unique)
        tables.append(table.model_copy(update={"key": key}))
    declared = {e.ref: e.foreign_keys for e in catalog}
    for i, table in enumerate(tables):
        if progress:
            progress(f"linking {table.ref}", len(catalog) + i, total)
        links = _find_links(engine, table, tables, declared.get(table.ref, ()), ask.missing_from)
        tables[i] = table.model_copy(update={"links": tuple(links)})
    if progress:
        progress("done", total, total)
    return WarehouseProfile(tables=tuple(tables), skipped=tuple(skipped))


def _find_key(engine: Any, table: TableProfile, declared: tuple[str, ...], unique: tuple[tuple[str, ...], ...],
              is_unique: Callable[..., bool]) -> Key | None:
    """The declared primary key; else a declared unique column; else a key-like column whose values are unique;
    else a pair of key-like columns that is."""
    if declared:
        return Key(columns=declared, evidence="declared")
    for cols in unique:
        if len(cols) == 1 and (c := table.column(cols[0])) is not None and c.nulls == 0:
            return Key(columns=cols, evidence="declared")
    if table.rows == 0:
        return None
    label = table_label(table.name).replace(" ", "_")
    candidates = [c for c in table.columns if c.family in ("text", "integer") and c.nulls == 0 and c.distinct == table.rows]
    candidates.sort(key=lambda c: (c.name.lower() not in ("id", f"{label}_id", f"{label}id", f"{label}_key"),
                                   not is_keyish(c.name)))
    for col in candidates:
        if is_keyish(col.name) and is_unique(engine, table.ref, (col.name,)):
            return Key(columns=(col.name,), evidence="names_and_values")
    keyish = [c for c in table.columns if is_keyish(c.name) and c.family in ("text", "integer", "time")
              and c.nulls == 0] + [c for c in table.columns if c.family == "time" and c.nulls == 0
                                   and not is_keyish(c.name)]
    for i, first in enumerate(keyish):
        for second in keyish[i + 1:]:
            if first.family == "time" and second.family == "time":
                continue
            if first.distinct * second.distinct >= table.rows and is_unique(engine, table.ref, (first.name, second.name)):
                return Key(columns=(first.name, second.name), evidence="values")
    return None


def _find_links(engine: Any, table: TableProfile, tables: list[TableProfile],
                declared: tuple[tuple[str, str, str], ...], missing_from: Callable[..., tuple[int, int]]) -> list[ForeignKey]:
    """Declared foreign keys; then, for each other key-like column, the table its name points at when its values
    are there (a few orphans allowed, and reported), or failing a name, the one table whose key holds every value."""
    links: list[ForeignKey] = []
    done: set[str] = set()
    for column, target, target_column in declared:
        links.append(ForeignKey(column=column, target=target, target_column=target_column, evidence="declared"))
        done.add(column)
    own_key = table.key.columns if table.key and len(table.key.columns) == 1 else ()
    for col in table.columns:
        if col.name in done or col.name in own_key or col.family not in ("text", "integer") or col.distinct == 0:
            continue
        targets = [t for t in tables if t.ref != table.ref and t.key is not None and len(t.key.columns) == 1
                   and (kc := t.column(t.key.columns[0])) is not None and kc.family == col.family]
        named = [t for t in targets if names_target(col.name, t)]
        found: ForeignKey | None = None
        for target in named:
            key = target.key.columns[0]  # type: ignore[union-attr]
            distinct, missing = missing_from(engine, table.ref, col.name, target.ref, key)
            if distinct and missing <= ORPHAN_SHARE * distinct:
                found = ForeignKey(column=col.name, target=target.ref, target_column=key, evidence="names_and_values",
                                   distinct=distinct, missing=missing)
                break
        if found is None and not named and is_keyish(col.name) and col.distinct >= VALUES_ONLY_MIN_DISTINCT:
            fits = []
            for target in targets:
                key = target.key.columns[0]  # type: ignore[union-attr]
                kc = target.column(key)
                if kc is None or kc.distinct < col.distinct:
                    continue
                distinct, missing = missing_from(engine, table.ref, col.name, target.ref, key)
                if distinct and missing == 0:
                    fits.append(ForeignKey(column=col.name, target=target.ref, target_column=key, evidence="values",
                                           distinct=distinct, missing=0))
            if len(fits) == 1:
                found = fits[0]
        if found is not None:
            links.append(found)
    return links


# --- the draft -------------------------------------------------------------------------------------------------------


class DraftItem(Frozen):
    """One node or metric of the draft, as it will be written, with what a person should check about it."""

    data: dict[str, Any]
    notes: tuple[str, ...] = ()


class DraftFile(Frozen):
    """One YAML file of the draft: a table's node and the metrics over it."""

    name: str
    header: tuple[str, ...] = ()
    sources: tuple[DraftItem, ...] = ()
    dimensions: tuple[DraftItem, ...] = ()
    metrics: tuple[DraftItem, ...] = ()


class Draft(Frozen):
    files: tuple[DraftFile, ...] = ()
    #: what was found, for the summary: tables, facts, dimensions, keys and links by evidence, metrics, notes
    facts: int = 0
    dimensions: int = 0
    keys: dict[str, int] = {}
    links: dict[str, int] = {}
    metrics: int = 0
    notes: int = 0
    skipped: tuple[tuple[str, str], ...] = ()
    #: the last day any fact's time column reaches (ISO), for "relative dates resolve against today"
    data_ends: str | None = None


def qualified_label(column: str, label: str) -> str:
    """A column's label: its name in words, with the row's name in front when one word alone is vague.

    >>> qualified_label("amount", "claim payment"), qualified_label("order_total", "order"), qualified_label("name", "store")
    ('claim payment amount', 'order total', 'store name')
    >>> qualified_label("charge_amount", "ride charge"), qualified_label("payment_date", "claim payment")
    ('ride charge amount', 'claim payment date')
    """
    text = spoken(column)
    head, tail = label.split(), text.split()
    for k in range(min(len(head) - 1, len(tail)), 0, -1):
        if head[-k:] == tail[:k]:  # "charge_amount" of a "ride charge": the label's last words begin the name
            return " ".join(head + tail[k:])
    if " " in text or any(w in text.split() for w in label.split()):
        return text
    return f"{label} {text}"


def _column_kind(col: ColumnProfile, rows: int) -> str:
    """What a column is to the layer: time, boolean, category, identifier, free text, amount or number."""
    family = col.family
    if family == "time":
        return "time"
    if family == "boolean":
        return "boolean"
    if family == "text":
        if col.avg_length is not None and col.avg_length > FREE_TEXT_LENGTH:
            return "free_text"
        if col.distinct <= CATEGORY_MAX:
            return "category"
        if is_keyish(col.name) or col.distinct > IDENTIFIER_SHARE * max(rows, 1):
            return "identifier"
        return "category"
    if family in ("integer", "decimal"):
        if is_keyish(col.name):
            return "identifier"
        if _NOT_MEASURE.search(col.name):
            return "number"
        if family == "integer" and col.distinct <= 12 and not _MONEY.search(col.name) and not _AVERAGED.search(col.name):
            return "category"
        return "amount"
    return "skip"


def _time_column(table: TableProfile, link_columns: set[str]) -> tuple[str | None, list[str]]:
    """The column that dates the table's rows, and the other time columns (for the review note)."""
    times = [c for c in table.columns if c.family == "time" and c.name not in link_columns]
    if not times:
        return None, []
    complete = [c for c in times if c.nulls == 0] or times
    best = min(complete, key=lambda c: (not _EVENT_TIME.search(c.name), c.nulls, table.columns.index(c)))
    return best.name, [c.name for c in times if c.name != best.name]


def _draft_table(table: TableProfile, profile: WarehouseProfile, names: dict[str, str], incoming: set[str]) -> DraftFile:
    label = table_label(table.name)
    name = names[table.ref]
    link_cols = {fk.column for fk in table.links}
    key_cols = set(table.key.columns) if table.key else set()
    node: dict[str, Any] = {"name": name, "table": table.ref, "label": label}
    if table.comment:
        node["description"] = table.comment
    else:
        node["description"] = f"One row per {label}."
    notes: list[str] = []
    if table.is_view:
        notes.append("a view: its rows are whatever the view's query returns")
    if table.key:
        node["primary_key"] = list(table.key.columns)
        if table.key.evidence != "declared":
            how = "its values are unique and never NULL" if len(table.key.columns) == 1 else \
                "the combination is unique and never NULL"
            notes.append(f"primary key {table.key.columns} inferred: {how} in {table.rows:,} rows; declare it in the "
                         "warehouse or keep it here if it is right")
    else:
        notes.append("no primary key found: counts over joins to one-to-many links are refused for this table; "
                     "add primary_key if a column (or two) identifies a row")
    time_col, others = _time_column(table, link_cols)
    measures: list[ColumnProfile] = []
    columns: list[dict[str, Any]] = []
    for col in table.columns:
        if col.name in link_cols:
            continue
        kind = _column_kind(col, table.rows)
        if col.name in key_cols and len(key_cols) == 1:
            # the key is an attribute without being declared; say what it is only when it has a comment
            if col.comment:
                columns.append({"name": col.name, "kind": "identifier", "description": col.comment})
            continue
        entry: dict[str, Any] = {"name": col.name}
        text = qualified_label(col.name, label) if kind != "time" and kind != "boolean" else spoken(col.name)
        if text != words(col.name):
            entry["label"] = text
        unique = col.family == "text" and col.nulls == 0 and col.distinct == table.rows > 1 and len(key_cols) <= 1
        if kind == "time":
            entry["kind"] = "time"
        elif kind == "boolean":
            entry["kind"] = "boolean"
        elif kind == "category":
            if col.samples:
                entry["sample_values"] = list(col.samples)
        elif kind == "identifier":
            entry["kind"] = "identifier"
        elif kind == "free_text":
            entry["index_values"] = False
            notes.append(f"{col.name}: long free text ({col.avg_length:.0f} characters on average), values not indexed")
        elif kind in ("amount", "number"):
            entry["kind"] = "numeric"
            if kind == "amount":
                measures.append(col)
        else:
            notes.append(f"{col.name} ({col.type}) left out: LORE cannot group or filter on this type")
            continue
        if unique and kind in ("category", "identifier"):
            entry["unique"] = True
            notes.append(f"{col.name} marked unique: no two {plural(label)} share a value today; remove it if they may")
        if col.comment:
            entry["description"] = col.comment
        columns.append(entry)
    # a fact without a date of its own (an order's lines) is dated by the fact it belongs to: a sql: node adds that
    # fact's date, and the table itself stays a node (the SQL guard allows only the layer's tables)
    is_fact = bool(table.links) or table.ref not in incoming or not table.key
    through = _dated_through(table, profile) if is_fact and not time_col else None
    priced: tuple[ForeignKey, TableProfile, ColumnProfile] | None = None
    price_alias: str | None = None
    raw_item: DraftItem | None = None
    if through is not None:
        fk, parent, parent_time = through
        unsampled = _first_unsampled(table, link_cols, key_cols)
        if unsampled is not None:
            notes.append(f"undated; its {table_label(parent.name)}'s {parent_time.name} could date it through "
                         f"{fk.column}, but {unsampled} has more values than a sql: node can list: "
                         "write a sql: node with that date by hand (docs/semantic-layer.md, 2.2)")
            through = None
    if through is not None:
        fk, parent, parent_time = through
        parent_label = table_label(parent.name)
        alias = parent_time.name if table.column(parent_time.name) is None else \
            node_name(f"{parent_label}_{parent_time.name}")
        raw_name = node_name(f"raw_{name}")
        while raw_name in set(names.values()) | {name}:
            raw_name += "_table"
        priced = _priced_thing(table, fk, profile, measures)
        price_alias = None
        if priced is not None:  # the lines of a sale with no amount of their own: each line sells at its thing's price
            thing_fk, thing, price = priced
            price_alias = node_name(f"{table_label(thing.name)}_{price.name}") if not price.name.lower().startswith(
                node_name(table_label(thing.name))) else price.name
            if table.column(price_alias) is not None or price_alias == alias:
                priced, price_alias = None, None
        node = {("sql" if k == "table" else k): (_dated_sql(table, fk, parent, parent_time.name, alias,
                                                            priced[:2] + (price.name, price_alias) if priced else None)
                                                 if k == "table" else v) for k, v in node.items()}
        if priced is not None and price_alias is not None:
            thing_label = table_label(thing.name)
            columns.append({"name": price_alias, "label": spoken(price_alias), "kind": "numeric",
                            "type": price.type.upper(),
                            "description": f"The price of the {label}'s {thing_label} ({thing.ref}.{price.name}, through "
                                           f"{thing_fk.column}): what the {label} sold for."})
            notes.append(f"{table.ref} has no amount: each {label} is counted at its {thing_label}'s {price.name} (a "
                         f"sum of {price_alias} is the sales of the {plural(thing_label)}); check that no discount "
                         "or quantity changes it")
        spoken_time = spoken(parent_time.name)
        time_label = spoken_time if set(parent_label.split()) <= set(spoken_time.split()) else \
            (f"{parent_label} {spoken_time}" if "date" in spoken_time.split() else f"{parent_label} date")
        columns.append({"name": alias, "label": time_label, "kind": "time", "type": parent_time.type.upper(),
                        "description": f"When the {parent_label} of the {label} happened ({parent.ref}.{parent_time.name}, "
                                       f"through {fk.column})."})
        time_col = alias
        notes.append(f"{table.ref} has no date: a sql: node dates each {label} by its {parent_label}'s "
                     f"{parent_time.name} (through {fk.column}); the table itself is the node {raw_name}")
        raw: dict[str, Any] = {"name": raw_name, "table": table.ref, "label": f"raw {label} row",
                               "description": f"The {table.ref} table as stored: the node {name} reads it and adds the "
                                              f"date. Group and filter by {plural(label)} instead."}
        if table.key:
            raw["primary_key"] = list(table.key.columns)
        raw_item = DraftItem(data=raw)
    if time_col:
        node["time_column"] = time_col
        if others:
            notes.append(f"time_column {time_col} dates this table's metrics ('by month', 'last year'); "
                         f"other dates: {', '.join(others)}")
    if columns:
        node["columns"] = columns
    links = []
    for fk in table.links:
        target = profile.table(fk.target)
        target_name = names.get(fk.target, node_name(fk.target))
        link: dict[str, Any] = {"to": target_name, "on": f"{name}.{fk.column} = {target_name}.{fk.target_column}"}
        if sum(other.target == fk.target for other in table.links) > 1:  # linked twice: each link plays a role
            role = role_of(fk.column, target) if target is not None else None
            link["role"] = node_name(role or fk.column)
        links.append(link)
        if fk.evidence == "values":
            notes.append(f"link {fk.column} -> {fk.target}.{fk.target_column} found from values alone (all {fk.distinct:,} "
                         "values are there); check it")
        if fk.missing:
            notes.append(f"link {fk.column} -> {fk.target}.{fk.target_column}: {fk.missing:,} of {fk.distinct:,} values "
                         f"have no {table_label(target.name) if target else fk.target} (they group under NULL)")
    if links:
        node["links"] = links
    # a table others link to is a dimension unless it links on itself (an order, between its lines and its customer)
    metrics = _draft_metrics(table, name, label, measures, is_fact)
    if through is not None and priced is not None and price_alias is not None:
        # the sum of the lines' prices is the things' sales ("product sales"); their average is the thing's own
        thing_label, cents = table_label(priced[1].name), in_cents(priced[2])
        metrics.append(DraftItem(data={
            "name": node_name(f"{thing_label}_sales"), "label": f"{thing_label} sales",
            "description": f"Sales of {plural(thing_label)}: the {priced[2].name} of each {label} sold"
                           + (", in cents divided by 100." if cents else "."),
            "synonyms": [f"sales of {plural(thing_label)}", f"{thing_label} revenue"], "source": name, "agg": "sum",
            "expr": f"{price_alias} / 100.0" if cents else price_alias, "format": "currency"}))
        measures.append(priced[2].model_copy(update={"name": price_alias}))  # (for the notes on units below)
    if is_fact:
        metrics += _distinct_linked(table, profile, name, label, names)
    cents = [m.name for m in measures if in_cents(m)]
    if cents:
        notes.append(f"whole-number amounts read as cents ({', '.join(cents)}): the metrics divide them by 100; if "
                     f"they are whole units of a currency without cents (yen, won), use expr: {cents[0]} (no / 100.0)")
    whole = [m.name for m in measures if m.family == "integer" and _MONEY.search(m.name) and not in_cents(m)]
    if whole:
        notes.append(f"whole-number amounts ({', '.join(whole)}): if they are cents, divide in the metrics' "
                     "expr (e.g. expr: amount / 100.0) and set unit")
    item = DraftItem(data=node, notes=tuple(notes))
    dated = (through[2] if through else table.column(time_col)) if time_col else None
    header = (f"{table.ref}: {table.rows:,} rows" + (" (a view)" if table.is_view else "")
              + (f", {time_col} from {dated.low[:10]} to {dated.high[:10]}" if dated and dated.low and dated.high else "")
              + (f"; {table.comment}" if table.comment else ""),)
    if is_fact:
        return DraftFile(name=name, header=header, sources=(item,), metrics=tuple(metrics),
                         dimensions=(raw_item,) if raw_item else ())
    return DraftFile(name=name, header=header, dimensions=(item,), metrics=tuple(metrics))


def _dated_through(table: TableProfile, profile: WarehouseProfile) -> tuple[ForeignKey, TableProfile, ColumnProfile] | None:
    """The link, the fact and its date that date an undated fact's rows: a fact it belongs to (one that links on
    itself) with a date, named like an event first. None when no linked fact has one."""
    found = []
    for fk in table.links:
        parent = profile.table(fk.target)
        if parent is None or parent.ref == table.ref or not parent.links:
            continue
        time_name, _ = _time_column(parent, {p.column for p in parent.links})
        col = parent.column(time_name) if time_name else None
        if col is not None:
            found.append((not _EVENT_TIME.search(col.name), col.nulls, fk, parent, col))
    if not found:
        return None
    best = min(found, key=lambda f: (f[0], f[1]))
    return best[2], best[3], best[4]


def _first_unsampled(table: TableProfile, link_cols: set[str], key_cols: set[str]) -> str | None:
    """The first category of the table with values beyond its samples (a sql: node's values are only its
    samples), or None when every category is sampled whole."""
    for col in table.columns:
        if col.name in link_cols or col.name in key_cols:
            continue
        if _column_kind(col, table.rows) == "category" and col.distinct > len(col.samples):
            return col.name
    return None


def _dated_sql(table: TableProfile, fk: ForeignKey, parent: TableProfile, time_name: str, alias: str,
               priced: tuple[ForeignKey, TableProfile, str, str] | None = None) -> str:
    """``SELECT t.*, p.<date> AS <alias> FROM t LEFT JOIN p ON t.<fk> = p.<key>``, built and quoted by sqlglot; with
    ``priced`` (a link to a thing, the thing, its price column and the alias), the thing's price too."""
    import sqlglot.expressions as exp  # lazy: only drafts with undated facts need it

    same = table.name.lower() == parent.name.lower()  # ops.orders and orders: aliases tell them apart
    mine, theirs = ("t", "p") if same else (table.name, parent.name)
    ours = exp.alias_(exp.to_table(table.ref), mine, table=True) if same else exp.to_table(table.ref)
    other = exp.alias_(exp.to_table(parent.ref), theirs, table=True) if same else exp.to_table(parent.ref)
    query = (exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier(mine)),
                        exp.alias_(exp.column(time_name, table=theirs), alias))
             .from_(ours)
             .join(other, join_type="left",
                   on=exp.EQ(this=exp.column(fk.column, table=mine), expression=exp.column(fk.target_column, table=theirs))))
    if priced is not None:
        thing_fk, thing, price, price_alias = priced
        held = "g" if thing.name.lower() in (table.name.lower(), parent.name.lower(), "t", "p") else thing.name
        query = query.select(exp.alias_(exp.column(price, table=held), price_alias)).join(
            exp.alias_(exp.to_table(thing.ref), held, table=True) if held == "g" else exp.to_table(thing.ref),
            join_type="left", on=exp.EQ(this=exp.column(thing_fk.column, table=mine),
                                        expression=exp.column(thing_fk.target_column, table=held)))
    return query.sql(dialect="duckdb", pretty=True) + "\n"


def _priced_thing(table: TableProfile, parent_fk: ForeignKey, profile: WarehouseProfile,
                  measures: list[ColumnProfile]) -> tuple[ForeignKey, TableProfile, ColumnProfile] | None:
    """The thing each row of ``table`` sells and its price, when the rows are the lines of a sale (they belong to a
    table whose rows are sales) with no money of their own, linked once to one table with one price column: an
    order's items, each the sale of one product at its price."""
    parent = profile.table(parent_fk.target)
    if parent is None or table_label(parent.name) not in vocabulary()["transactions"] \
            or any(_MONEY.search(m.name) for m in measures):
        return None
    found = []
    for fk in table.links:
        thing = profile.table(fk.target)
        if fk is parent_fk or thing is None or sum(o.target == fk.target for o in table.links) > 1:
            continue
        prices = [c for c in thing.columns if c.family in ("integer", "decimal")
                  and re.search(r"(?:^|_)(?:price|unit_price|list_price)(?:_|$)", c.name, re.I)]
        if len(prices) == 1:
            found.append((fk, thing, prices[0]))
    return found[0] if len(found) == 1 else None


def in_cents(col: ColumnProfile) -> bool:
    """Whether a money column holds cents: the money of one transaction (a price, a total, a tax, a fee) stored in
    whole numbers, unless its name says a currency's whole unit (``amount_usd``). Such amounts have cents, so whole
    numbers are minor units; a salary, a budget or a premium may well be kept in whole dollars, and is left alone.

    >>> from lore.onboard.profile import ColumnProfile
    >>> [in_cents(ColumnProfile(name=n, type=t)) for n, t in (("order_total", "INTEGER"), ("price", "BIGINT"),
    ...  ("price", "DECIMAL(8,2)"), ("amount_usd", "INTEGER"), ("annual_premium", "INTEGER"), ("total_cents", "INTEGER"))]
    [True, True, False, False, False, True]
    """
    return col.family == "integer" and bool(_CENTS.search(col.name)) and not _MAJOR_UNITS.search(col.name)


def _draft_metrics(table: TableProfile, name: str, label: str, measures: list[ColumnProfile],
                   is_fact: bool) -> list[DraftItem]:
    rows = plural(label)
    out = [DraftItem(data={"name": f"{name}_count" if not name.endswith("_count") else f"{name}_rows",
                           "label": f"number of {rows}", "description": f"Number of {rows} (rows of {table.ref}).",
                           "synonyms": [f"{label} count", f"count of {rows}"], "unit": rows, "format": "integer",
                           "source": name, "agg": "count"})]
    for col in measures:
        text = qualified_label(col.name, label)
        money = bool(_MONEY.search(col.name))
        if _AVERAGED.search(col.name):
            data: dict[str, Any] = {"name": node_name(f"avg_{col.name}"), "label": f"average {text}",
                                    "description": f"Average {text} over {rows}.", "source": name, "agg": "avg",
                                    "expr": col.name}
            out.append(DraftItem(data=data))
            continue
        cents = money and in_cents(col)
        expr = f"{col.name} / 100.0" if cents else col.name
        unit = f" ({col.name} holds cents: divided by 100)" if cents else ""
        data = {"name": node_name(f"total_{col.name}") if col.name.lower() != f"total_{col.name}".lower() else col.name,
                "label": text, "description": f"Sum of {text} over {rows}{unit}.", "synonyms": [f"total {text}"],
                "source": name, "agg": "sum", "expr": expr}
        if money:
            data["format"] = "currency"
        avg = {"name": node_name(f"avg_{col.name}"), "label": f"average {text}",
               "description": f"Average {text} per {label}{unit}.", "synonyms": [f"mean {text}", f"{text} per {label}"],
               "source": name, "agg": "avg", "expr": expr}
        if money:
            avg["format"] = "currency"
        if is_fact:  # a sum over the rows of a dimension (prices of products) means nothing: its average does
            out.append(DraftItem(data=data))
        out.append(DraftItem(data=avg))
    return out


def _distinct_linked(table: TableProfile, profile: WarehouseProfile, name: str, label: str,
                     names: dict[str, str]) -> list[DraftItem]:
    """For each thing a fact's rows belong to (linked once, through a one-column key), the number of those things
    among the fact's rows: "customers with orders" counts the distinct customers of the orders. Per-entity rates
    ("orders per customer") and "on how many claims" are built from these counts."""
    out = []
    rows = plural(label)
    for fk in table.links:
        target = profile.table(fk.target)
        if target is None or target.ref == table.ref or sum(o.target == fk.target for o in table.links) > 1:
            continue
        things = plural(table_label(target.name))
        out.append(DraftItem(data={
            "name": node_name(f"{names.get(fk.target, target.name)}_with_{name}"),
            "label": f"{things} with {rows}", "description": f"Number of distinct {things} among the {rows} "
                                                             f"(distinct {fk.column}).",
            "synonyms": [f"number of {things} with {rows}", f"distinct {things} with {rows}"],
            "unit": things, "format": "integer", "source": name, "agg": "count_distinct", "expr": fk.column}))
    return out


def _unique_metric_names(files: list[DraftFile]) -> list[DraftFile]:
    """Metric names are unique across a layer: a name drafted twice (a view over a table, two tables with a
    ``cost`` column) gets its table's name in front, from the second on."""
    taken: set[str] = set()
    out = []
    for f in files:
        metrics = []
        for item in f.metrics:
            name = item.data["name"]
            if name in taken:
                name = node_name(f"{f.name}_{name}")
                item = item.model_copy(update={"data": {**item.data, "name": name}})
            taken.add(name)
            metrics.append(item)
        out.append(f.model_copy(update={"metrics": tuple(metrics)}))
    return out


# --- the words people use -------------------------------------------------------------------------------------------


@functools.cache
def vocabulary() -> dict[str, Any]:
    """LORE's common business words (``vocabulary.yaml`` next to this module): ``things`` (a row noun -> what
    people also call one) and ``amounts`` (the words for a money column's sum, by the column's and the rows'
    words)."""
    text = (Path(__file__).with_name("vocabulary.yaml")).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return {"things": {k: list(v) for k, v in (data.get("things") or {}).items()},
            "amounts": list(data.get("amounts") or []), "transactions": set(data.get("transactions") or ()),
            "units_sold": list(data.get("units_sold") or ()), "quantity_columns": set(data.get("quantity_columns") or ())}


def initialism(label: str) -> str | None:
    """The letters a label of three words or more is known by ("line of business" -> "lob"); None for shorter
    labels and for letters that spell a common word.

    >>> initialism("line of business"), initialism("order total"), initialism("annual recurring revenue")
    ('lob', None, 'arr')
    >>> initialism("total home expenses") is None  # spells "the"
    True
    """
    from lore.plan.words import FUNCTION_WORDS, KNOWN_WORDS  # the planner's own words are never a synonym
    from lore.retrieve.lexical import STOP_WORDS

    parts = label.split()
    if len(parts) < 3:
        return None
    letters = "".join(w[0] for w in parts if w[0].isalpha())
    if len(letters) < 3 or letters in STOP_WORDS or letters in FUNCTION_WORDS or letters in KNOWN_WORDS:
        return None
    return letters


def _amount_words(column_label: str, row_noun: str, key: str = "say") -> list[str]:
    """The words people say for the sum of a money column labelled ``column_label`` on rows of ``row_noun`` (with
    ``key="average"``, for its average: "average order value"; ``{row}`` in a word is the row noun)."""
    words_of = column_label.split()
    out: list[str] = []
    for rule in vocabulary()["amounts"]:
        rows = rule.get("rows")
        if rows and row_noun not in rows and row_noun.split()[-1] not in rows:
            continue
        if any(words_of[-len(c.split()):] == c.split() for c in rule.get("column") or ()):
            said = [str(w).replace("{row}", row_noun) for w in rule.get(key) or ()]
            out += [w for w in said if w not in out]
    return out


def _units_sold(f: DraftFile, main: DraftItem, files: list[DraftFile],
                profile: WarehouseProfile) -> tuple[str, list[str]] | None:
    """The metric that counts units sold, and its words, when ``f``'s rows are the lines of a sale: they belong to
    a table whose rows are sales (an order) and to a thing (a product). The sum of a quantity column when there is
    one ("products sold", "units sold"), else the count of the lines (each line one unit)."""
    if not f.sources:
        return None
    labels = {g.name: (g.sources or g.dimensions)[0].data["label"] for g in files}
    targets = [link["to"] for link in main.data.get("links") or ()]
    sales = [t for t in targets if labels.get(t) in vocabulary()["transactions"]]
    things = [t for t in targets if t not in sales and t in labels and not any(g.sources for g in files if g.name == t)]
    if len(sales) != 1 or len(things) != 1:
        return None
    quantity = [m for m in f.metrics if m.data.get("agg") == "sum" and words(str(m.data.get("expr"))) in
                vocabulary()["quantity_columns"]]
    counts = [m for m in f.metrics if m.data.get("agg") == "count" and m.data.get("source") == main.data["name"]]
    chosen = quantity[0] if len(quantity) == 1 else counts[0] if counts and not quantity else None
    if chosen is None:
        return None
    return chosen.data["name"], [f"{plural(labels[things[0]])} sold", *vocabulary()["units_sold"]]


def _names_of(files: list[DraftFile]) -> set[str]:
    """Every name, label, synonym and sample value of the draft, lower case, singular and plural."""
    out: set[str] = set()

    def add(text: Any) -> None:
        if isinstance(text, str) and text:
            t = words(text) if "_" in text else text.lower()
            out.update({t, singular(t), plural(t)})

    for f in files:
        for item in f.sources + f.dimensions + f.metrics:
            for key in ("name", "label"):
                add(item.data.get(key))
            for syn in item.data.get("synonyms") or ():
                add(syn)
            for col in item.data.get("columns") or ():
                add(col.get("name"))
                add(col.get("label"))
                for v in col.get("sample_values") or ():
                    add(str(v))
    return out


def _verb_of_date(name: str) -> str | None:
    """The past participle a date column's name starts with: ``reported_date`` -> "reported", ``opened_at`` ->
    "opened" (people say "claims reported in June"); None for ``loss_date``, ``created`` alone or longer names.

    >>> [_verb_of_date(n) for n in ("reported_date", "opened_at", "hired_on", "loss_date", "shipped", "first_ordered_at")]
    ['reported', 'opened', 'hired', None, None, None]
    """
    parts = name.lower().split("_")
    if len(parts) == 2 and parts[1] in ("date", "at", "on", "time", "day", "ts", "timestamp", "dt") \
            and parts[0].endswith("ed") and len(parts[0]) > 4 and parts[0].isalpha():
        return parts[0]
    return None


def _add_vocabulary(files: list[DraftFile], profile: WarehouseProfile) -> list[DraftFile]:
    """The draft with the words people use (``vocabulary.yaml``, and initialisms of long attribute labels) as
    synonyms, each noted for review; a word the draft already uses, or that two things would get, is left out."""
    taken = _names_of(files) | {w for t in profile.tables for c in t.columns
                                for w in (words(c.name), spoken(c.name), _stem(c.name))}
    offers: dict[str, set[tuple[str, ...]]] = {}  # word -> the things offered it

    def offer(target: tuple[str, ...], word: str) -> None:
        offers.setdefault(word, set()).add(target)

    for f in files:
        main = (f.sources or f.dimensions)[0]
        for word in vocabulary()["things"].get(main.data["label"], ()):
            offer(("node", f.name), word)
        for col in main.data.get("columns") or ():
            if col.get("kind") not in ("time", "numeric", "boolean"):
                short = initialism(spoken(col["name"]))  # its own name's words, not the row's name in front
                if short:
                    offer(("column", f.name, col["name"]), short)
            elif col.get("kind") == "time" and _verb_of_date(col["name"]):
                offer(("column", f.name, col["name"]), _verb_of_date(col["name"]))  # "reported in June"
        for m in f.metrics:
            if m.data.get("agg") == "sum" and m.data.get("format") == "currency":
                for word in _amount_words(m.data["label"], main.data["label"]):
                    offer(("metric", f.name, m.data["name"]), word)
            elif m.data.get("agg") == "avg" and m.data.get("format") == "currency" \
                    and str(m.data["label"]).startswith("average "):
                for word in _amount_words(m.data["label"].removeprefix("average "), main.data["label"], "average"):
                    offer(("metric", f.name, m.data["name"]), word)
        sold = _units_sold(f, main, files, profile)
        if sold is not None:
            for word in sold[1]:
                offer(("metric", f.name, sold[0]), word)
    given: dict[tuple[str, ...], list[str]] = {}
    for word, targets in offers.items():
        if len(targets) == 1 and not ({word, singular(word), plural(word)} & taken):
            given.setdefault(next(iter(targets)), []).append(word)
    out = []
    for f in files:
        table = profile.table(next((i.data["table"] for i in f.sources + f.dimensions if "table" in i.data), ""))
        main = (f.sources or f.dimensions)[0]
        data = dict(main.data)
        notes = list(main.notes)
        node_words = given.get(("node", f.name), [])
        if node_words:
            data["synonyms"] = list(data.get("synonyms") or ()) + node_words
            article = "an" if data["label"][:1] in "aeiou" else "a"
            notes.append(f"synonyms {node_words} are common words for {article} {data['label']} (LORE's vocabulary): keep "
                         "the ones your people use")
        if data.get("columns"):
            columns = []
            for col in data["columns"]:
                extra = given.get(("column", f.name, col["name"]), [])
                if extra:
                    col = {**col, "synonyms": list(col.get("synonyms") or ()) + extra}
                    if extra[0] == _verb_of_date(col["name"]):
                        notes.append(f"{col['name']}: synonym {extra[0]!r} is the verb its name starts with "
                                     f"(“{plural(data['label'])} {extra[0]} in June” filters this date); remove it if "
                                     "it misleads")
                    else:
                        notes.append(f"{col['name']}: synonym {extra[0]!r} is its initials; remove it if nobody says it")
                columns.append(col)
            data["columns"] = columns
        main = main.model_copy(update={"data": data, "notes": tuple(notes)})
        metrics = []
        for m in f.metrics:
            mdata, mnotes = dict(m.data), list(m.notes)
            if node_words and mdata.get("agg") == "count" and mdata.get("source") == data["name"]:
                mdata["synonyms"] = list(mdata.get("synonyms") or ()) + [f"number of {plural(w)}" for w in node_words]
            amount = given.get(("metric", f.name, mdata["name"]), [])
            if amount:
                col = table.column(str(mdata.get("expr")).split(" / ")[0]) if table is not None else None
                if col is not None and col.family == "integer" and not in_cents(col):
                    mnotes.append(f"people may call it {', '.join(amount)}: add those synonyms once its unit is "
                                  "right (whole numbers may be cents)")
                else:
                    mdata["synonyms"] = list(mdata.get("synonyms") or ()) + amount
                    mnotes.append(f"synonyms {amount} are common words for this metric (LORE's vocabulary): keep "
                                  "the ones your people mean by it")
            metrics.append(m.model_copy(update={"data": mdata, "notes": tuple(mnotes)}))
        sources = (main,) + f.sources[1:] if f.sources else ()
        dimensions = f.dimensions if f.sources else (main,) + f.dimensions[1:]
        out.append(f.model_copy(update={"sources": sources, "dimensions": dimensions, "metrics": tuple(metrics)}))
    return out


def draft_layer(profile: WarehouseProfile) -> Draft:
    """The semantic layer drafted from a warehouse profile: one file per table, notes where a person should look."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for table in profile.tables:
        base = node_name(table.name)
        name = base if base not in taken else node_name(f"{table.schema_name}_{table.name}")
        taken.add(name)
        names[table.ref] = name
    incoming = {fk.target for t in profile.tables for fk in t.links}
    files = _add_vocabulary(_unique_metric_names([_draft_table(t, profile, names, incoming) for t in profile.tables]),
                            profile)
    keys: dict[str, int] = {}
    links: dict[str, int] = {}
    for t in profile.tables:
        ev: Evidence | str = t.key.evidence if t.key else "none"
        keys[ev] = keys.get(ev, 0) + 1
        for fk in t.links:
            links[fk.evidence] = links.get(fk.evidence, 0) + 1
    return Draft(files=tuple(files), facts=sum(len(f.sources) for f in files),
                 dimensions=sum(len(f.dimensions) for f in files), keys=keys, links=links,
                 metrics=sum(len(f.metrics) for f in files),
                 notes=sum(len(i.notes) for f in files for i in f.sources + f.dimensions + f.metrics),
                 skipped=profile.skipped, data_ends=_data_ends(profile, files))


def _data_ends(profile: WarehouseProfile, files: list[DraftFile]) -> str | None:
    ends = []
    for f in files:
        for item in f.sources:
            if "table" not in item.data:  # a sql: node dated by the fact it belongs to: that fact's end counts
                continue
            table = profile.table(item.data["table"])
            col = table.column(item.data["time_column"]) if table and item.data.get("time_column") else None
            if col is not None and col.high:
                ends.append(col.high[:10])
    return max(ends, default=None)


# --- YAML ------------------------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """YAML as a person writes it: SQL over several lines as a ``|`` block."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _dump_item(item: DraftItem) -> str:
    body = yaml.dump([item.data], Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True,
                     width=110)
    lines = ["  " + line if line else line for line in body.splitlines()]
    notes = [f"  # review: {n}" for n in item.notes]
    return "\n".join(notes + lines) + "\n"


def render(draft: Draft, *, warehouse: str, today: date) -> dict[str, str]:
    """The draft's files: ``{"orders.yaml": "...yaml text..."}``."""
    out: dict[str, str] = {}
    for f in draft.files:
        parts = [f"# Drafted by `lore init` from {warehouse} on {today.isoformat()}.",
                 *(f"# {line}" for line in f.header),
                 "# Check every '# review:' note, add descriptions and synonyms people use, then run",
                 "# `lore semantic validate`. docs/semantic-layer.md is the reference.", ""]
        for section, items in (("sources", f.sources), ("dimensions", f.dimensions), ("metrics", f.metrics)):
            if items:
                parts.append(f"{section}:")
                parts.extend(_dump_item(i) for i in items)
        out[f"{f.name}.yaml"] = "\n".join(parts).rstrip() + "\n"
    return out
