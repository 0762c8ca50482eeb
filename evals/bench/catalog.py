"""Benchmark retrieval and planning on a large generated semantic layer (run on purpose; not a test).

    python -m evals.bench.catalog [--metrics 5000] [--values 50000] [--questions 300] [--seed 7]
                                  [--workdir DIR] [--reuse-index] [--out results.json]

It generates a valid project in ``--workdir`` (default: a temporary folder): a
semantic layer of YAML files in the format of ``lore/demo/semantic/*.yaml`` with
``--metrics`` metrics over up to 100 fact tables (10 business domains in 10
business lines; each metric is a measure of one fact, optionally restricted to
one segment of it), snowflaked dimension tables whose named attributes
(``index_values: true``) hold about ``--values`` distinct values, and a DuckDB
warehouse with every table (a few hundred rows per fact: the point is the
catalog's size, not the data's).

Then it opens the project with :meth:`lore.Lore.open`, builds the retrieval
index the way ``lore index build`` does (``lore.retriever``), opens it a second
time (the index is reused), and times ``retriever.search(q, k=4)`` (what the
pipeline's retrieve stage runs) and ``planner.plan(q)`` (offline) for generated
questions: metric names and synonyms, by a dimension, with a value filter, with
time ranges and grains, top-N, in varied phrasings. Each question is timed once,
after a warm-up on other questions, so no question embedding is served from a
cache. For every question it knows the metric it was generated from, and the
value it filters on, and reports how often the plan picked them.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from evals.bench.pipeline import Machine, Stats, current_rss_mib, fmt_ms, machine_info, summarize
from lore.errors import LoreError

#: "today" of generated projects (relative time ranges resolve against it)
TODAY = date(2026, 11, 1)
#: the first day of generated data
START = date(2025, 1, 1)
#: fact rows per fact table
FACT_ROWS = 200

# --- the vocabulary of the generated business -------------------------------------------------

#: business lines: every domain exists once per line (a fact table each)
LINES: tuple[str, ...] = ("retail", "wholesale", "marketplace", "enterprise", "franchise",
                          "catering", "export", "outlet", "hospitality", "clinic")


@dataclass(frozen=True)
class Measure:
    column: str
    agg: str
    #: label template: {n} is the domain's singular noun, {p} its plural
    label: str
    synonyms: tuple[str, ...]
    unit: str


@dataclass(frozen=True)
class Domain:
    plural: str
    singular: str
    date_column: str
    segment_column: str
    segment_label: str
    segments: tuple[str, ...]
    measures: tuple[Measure, ...]
    #: the dimensions a fact of this domain links to (besides customers)
    links: tuple[str, ...]


def _m(column: str, agg: str, label: str, synonyms: str, unit: str) -> Measure:
    return Measure(column, agg, label, tuple(s.strip() for s in synonyms.split(",") if s.strip()), unit)


DOMAINS: tuple[Domain, ...] = (
    Domain("orders", "order", "order_date", "fulfillment", "fulfillment type",
           ("express", "pickup", "dropship", "preorder", "backorder", "bulk", "gift", "rush", "overnight"),
           (_m("amount_usd", "sum", "{n} revenue", "{n} sales, gross {n} sales", "USD"),
            _m("quantity", "sum", "{n} units", "{n} items sold, {n} pieces", "units"),
            _m("discount_usd", "sum", "{n} discounts", "{n} markdowns", "USD"),
            _m("*", "count", "{p}", "{p} placed", "orders"),
            _m("customer_id", "count_distinct", "{n} buyers", "unique {n} buyers", "customers"),
            _m("shipping_usd", "sum", "{n} shipping fees", "{n} delivery charges", "USD"),
            _m("tax_usd", "sum", "{n} tax collected", "{n} sales tax", "USD"),
            _m("weight_kg", "sum", "{n} freight weight", "{n} shipped kilograms", "kg"),
            _m("coupons", "sum", "{n} coupon redemptions", "{n} coupons used", "coupons"),
            _m("packages", "sum", "{n} parcels", "{n} boxes packed", "parcels")),
           ("products", "stores", "campaigns")),
    Domain("returns", "return", "return_date", "return_reason", "return reason",
           ("damaged", "defective", "unwanted", "mislabeled", "late", "wrong size", "duplicate", "recalled", "expired"),
           (_m("refund_usd", "sum", "{n} refunds", "{n} refund payouts, refunded dollars", "USD"),
            _m("*", "count", "{p}", "{p} filed, product {p}", "returns"),
            _m("restock_usd", "sum", "{n} restocking cost", "{n} restock spend", "USD"),
            _m("items", "sum", "{n} items", "{p} items sent back", "items"),
            _m("customer_id", "count_distinct", "returning customers", "customers with {p}", "customers"),
            _m("inspection_minutes", "sum", "{n} inspection minutes", "{n} checking minutes", "minutes"),
            _m("credit_usd", "sum", "{n} store credit", "{n} credit issued", "USD"),
            _m("label_usd", "sum", "{n} label cost", "{n} postage", "USD"),
            _m("salvage_usd", "sum", "{n} salvage proceeds", "{n} resale recovery", "USD"),
            _m("handling_minutes", "sum", "{n} handling minutes", "{n} processing minutes", "minutes")),
           ("products", "stores")),
    Domain("tickets", "ticket", "opened_date", "priority", "ticket priority",
           ("urgent", "critical", "routine", "escalated", "billing", "technical", "onboarding", "warranty", "outage"),
           (_m("*", "count", "support {p}", "{p} opened, helpdesk {p}", "tickets"),
            _m("handle_minutes", "sum", "{n} handle minutes", "{n} agent minutes", "minutes"),
            _m("replies", "sum", "{n} replies", "{n} responses sent", "replies"),
            _m("reopens", "sum", "{n} reopens", "{p} reopened", "reopens"),
            _m("customer_id", "count_distinct", "customers with {p}", "{n} requesters", "customers"),
            _m("credits_usd", "sum", "{n} goodwill credits", "{n} compensation", "USD"),
            _m("escalations", "sum", "{n} escalations", "{p} escalated upward", "escalations"),
            _m("csat_points", "sum", "{n} satisfaction points", "{n} csat points", "points"),
            _m("wait_minutes", "sum", "{n} wait minutes", "{n} queue minutes", "minutes"),
            _m("transfers", "sum", "{n} transfers", "{n} handoffs", "transfers")),
           ("employees", "products")),
    Domain("payments", "payment", "paid_date", "method", "payment method",
           ("card", "wire", "cheque", "wallet", "ach", "crypto", "voucher", "installment", "cash"),
           (_m("amount_usd", "sum", "{n} volume", "{n} collected, {n} receipts", "USD"),
            _m("*", "count", "{p}", "{p} received, {n} transactions", "payments"),
            _m("fee_usd", "sum", "{n} processing fees", "{n} gateway fees", "USD"),
            _m("chargebacks", "sum", "{n} chargebacks", "{n} disputes", "chargebacks"),
            _m("customer_id", "count_distinct", "paying customers", "paying accounts", "customers"),
            _m("refund_usd", "sum", "{n} reversals", "{n} refunded amount", "USD"),
            _m("fx_usd", "sum", "{n} currency conversion cost", "{n} fx cost", "USD"),
            _m("retries", "sum", "{n} retries", "{n} reattempts", "retries"),
            _m("late_fee_usd", "sum", "{n} late fees", "{n} penalty fees", "USD"),
            _m("settlement_days", "sum", "{n} settlement days", "{n} clearing days", "days")),
           ("partners",)),
    Domain("invoices", "invoice", "issued_date", "terms", "invoice terms",
           ("prepaid", "net30", "net60", "net90", "milestone", "retainer", "deferred", "consolidated", "proforma"),
           (_m("billed_usd", "sum", "{n} billings", "{n} billed amount, invoiced dollars", "USD"),
            _m("*", "count", "{p}", "{p} issued, {p} sent", "invoices"),
            _m("outstanding_usd", "sum", "{n} receivables", "unpaid {n} balance", "USD"),
            _m("overdue_usd", "sum", "{n} arrears", "overdue {n} balance", "USD"),
            _m("customer_id", "count_distinct", "billed customers", "invoiced customers", "customers"),
            _m("writeoff_usd", "sum", "{n} writeoffs", "{n} bad debt", "USD"),
            _m("lines", "sum", "{n} lines", "{n} line items", "lines"),
            _m("disputed_usd", "sum", "{n} contested dollars", "disputed {n} amount", "USD"),
            _m("reminders", "sum", "{n} reminders", "{n} dunning letters", "reminders"),
            _m("collected_usd", "sum", "{n} collections", "{n} cash collected", "USD")),
           ("partners", "employees")),
    Domain("bookings", "booking", "booked_date", "booking_class", "booking class",
           ("economy", "premium", "suite", "group", "corporate", "weekend", "longstay", "lastminute", "seasonal"),
           (_m("value_usd", "sum", "{n} gross bookings", "{n} booked revenue", "USD"),
            _m("*", "count", "{p}", "{p} made, reservations", "bookings"),
            _m("nights", "sum", "{n} nights", "{n} room nights", "nights"),
            _m("guests", "sum", "{n} guests", "{n} travellers", "guests"),
            _m("customer_id", "count_distinct", "booking customers", "customers who booked", "customers"),
            _m("cancellations", "sum", "{n} cancellations", "{p} cancelled", "cancellations"),
            _m("commission_usd", "sum", "{n} commissions", "{n} agent commission", "USD"),
            _m("upgrades", "sum", "{n} upgrades", "{n} upsells", "upgrades"),
            _m("noshows", "sum", "{n} noshows", "{n} missed arrivals", "noshows"),
            _m("deposit_usd", "sum", "{n} deposits", "{n} advance payments", "USD")),
           ("stores", "campaigns")),
    Domain("leads", "lead", "created_date", "lead_source", "lead source",
           ("webinar", "referral", "tradeshow", "inbound", "outbound", "paid search", "social", "newsletter", "partner"),
           (_m("*", "count", "sales {p}", "{p} created, prospects", "leads"),
            _m("pipeline_usd", "sum", "{n} pipeline", "{n} pipeline dollars", "USD"),
            _m("meetings", "sum", "{n} meetings", "{n} demos booked", "meetings"),
            _m("calls", "sum", "{n} calls", "{n} dials", "calls"),
            _m("customer_id", "count_distinct", "prospect accounts", "accounts with {p}", "customers"),
            _m("won_usd", "sum", "{n} closed won", "{n} won dollars", "USD"),
            _m("emails", "sum", "{n} emails", "{n} touches", "emails"),
            _m("qualified", "sum", "qualified {p}", "{n} qualifications", "leads"),
            _m("lost_usd", "sum", "{n} closed lost", "{n} lost dollars", "USD"),
            _m("score_points", "sum", "{n} scoring points", "{n} fit points", "points")),
           ("campaigns", "employees")),
    Domain("shipments", "shipment", "shipped_date", "service_level", "service level",
           ("ground", "air", "ocean", "rail", "courier", "freight", "parcel", "pallet", "container"),
           (_m("*", "count", "{p}", "{p} dispatched, consignments", "shipments"),
            _m("cost_usd", "sum", "{n} carrier cost", "{n} carrier spend", "USD"),
            _m("transit_days", "sum", "{n} transit days", "{n} days in transit", "days"),
            _m("damaged", "sum", "{n} damages", "{p} damaged", "shipments"),
            _m("customer_id", "count_distinct", "shipped customers", "customers receiving {p}", "customers"),
            _m("distance_km", "sum", "{n} kilometres", "{n} distance", "km"),
            _m("cartons", "sum", "{n} cartons", "{n} crates", "cartons"),
            _m("fuel_usd", "sum", "{n} fuel surcharges", "{n} fuel cost", "USD"),
            _m("delays", "sum", "{n} delays", "{p} delayed", "shipments"),
            _m("insured_usd", "sum", "{n} insured cargo", "{n} cover", "USD")),
           ("products", "stores")),
    Domain("inspections", "inspection", "inspected_date", "inspection_type", "inspection type",
           ("safety", "hygiene", "fire", "electrical", "structural", "environmental", "audit", "followup", "random"),
           (_m("*", "count", "{p}", "{p} performed, site visits", "inspections"),
            _m("violations", "sum", "{n} violations", "{n} findings", "violations"),
            _m("fines_usd", "sum", "{n} fines", "{n} penalties", "USD"),
            _m("hours", "sum", "{n} hours", "inspector hours", "hours"),
            _m("customer_id", "count_distinct", "inspected customers", "customers inspected", "customers"),
            _m("passed", "sum", "passed {p}", "{p} cleared", "inspections"),
            _m("photos", "sum", "{n} photos", "{n} pictures", "photos"),
            _m("remediation_usd", "sum", "{n} remediation cost", "{n} fixes spend", "USD"),
            _m("travel_km", "sum", "{n} travel kilometres", "inspector mileage", "km"),
            _m("checklist_items", "sum", "{n} checklist items", "{n} checks", "items")),
           ("stores", "employees")),
    Domain("rentals", "rental", "rented_date", "rental_plan", "rental plan",
           ("hourly", "overnight", "fleet", "longterm", "shortterm", "oneway", "roundtrip", "trial", "loyalty"),
           (_m("revenue_usd", "sum", "{n} income", "{n} rent collected", "USD"),
            _m("*", "count", "{p}", "{p} started, hires", "rentals"),
            _m("days", "sum", "{n} days", "{n} days out", "days"),
            _m("mileage_km", "sum", "{n} mileage", "{n} kilometres driven", "km"),
            _m("customer_id", "count_distinct", "renting customers", "customers who rented", "customers"),
            _m("damage_usd", "sum", "{n} damage charges", "{n} repair charges", "USD"),
            _m("extensions", "sum", "{n} extensions", "{p} extended", "extensions"),
            _m("insurance_usd", "sum", "{n} insurance", "{n} protection plans", "USD"),
            _m("late_returns", "sum", "{n} late returns", "{p} brought back late", "returns"),
            _m("cleaning_usd", "sum", "{n} cleaning fees", "{n} valeting", "USD")),
           ("products", "stores", "partners")),
)

# words that build dimension values: kept apart from the metric vocabulary above
_SYLLABLES = ("ka", "lo", "ven", "dra", "mi", "sor", "tel", "qua", "zen", "rif", "bel", "nor", "vas", "pim", "gar",
              "lux", "ond", "ree", "tav", "kel", "mor", "sil", "bra", "dun", "fen", "hal", "jor", "kiv", "lan", "pol",
              "rud", "sey", "tor", "ulm", "vir", "wex", "yan", "zor", "cal", "dex")
_TOWN_ENDS = ("ton", "ford", "ville", "burg", "stead", "mouth", "haven", "field", "wick", "dale", "moor", "bury")
_SURNAMES = tuple("""Harlow Finch Whitaker Okafor Lindqvist Moreau Castellano Nakamura Brennan Adebayo Kowalczyk Ferreira
    Halvorsen Delacroix Mbeki Sorensen Takahashi Oyelaran Vasquez Holloway Petrov Abernathy Nguyen Ramirez Kapoor Ashford
    Beaumont Carrington Dunmore Ellsworth Fairbanks Galloway Hargreaves Ingram Jarrett Kensington Lockhart Merriweather
    Northcott Oakley Pemberton Quimby Radcliffe Stanhope Thorne Upton Vickers Wetherby Yardley Zeller Albrecht Bergstrom
    Cavendish Dalgleish Everhart Fitzgerald Gunderson Haverford Ironside Jessup Kirkland Langford Montague Norwood Ormsby
    Prescott Quinlan Rutherford Sinclair Tremblay Underhill Valentin Winslow Yeats Zimmer Aldridge Blackwood Calloway
    Drummond Eastwood Fenwick Grisham Hawthorne Islington Jennings Kimura Ledger Marchetti Nakashima Orwell Pryor Quarles
    Redgrave Sutherland Tolliver Umbridge Vance Whitmore Yoshida Zamora Achebe Bianchi Choudhury Dimitrov Eriksen Fontaine
    Gallagher Haddad Iwasaki Jablonski Kruger Laurent Magnusson Novak Osei Pellegrini""".split())
_FIRST_NAMES = tuple("""Maya Liam Aisha Noah Elena Mateo Priya Oscar Hana Felix Zara Tobias Ingrid Kofi Lucia Arjun Freya
    Dmitri Amara Soren Yusuf Clara Rafael Mei Jonas Leila Hugo Nadia Emil Sofia Tariq Astrid Diego Keiko Lars Imani
    Bruno Anika Cyrus Delphine Elias Farah Gideon Hedda Idris Juno Kasper Lina Marcus Nia Otto Paloma Quentin Rosa
    Silas Thea Umar Vera Wendell Ximena Yara Zane Beatrix Caspian Dahlia Ezra Fiona Gustav Helena Ivo Jasmine Kai""".split())
_INDUSTRIES = ("Textiles", "Ceramics", "Robotics", "Bakery", "Optics", "Tannery", "Brewing", "Joinery", "Apothecary",
               "Printworks", "Glassworks", "Mills", "Foundry", "Creamery", "Orchards", "Pharmacy", "Studios", "Boatyard",
               "Vineyards", "Dairy", "Kitchens", "Laboratories", "Nurseries", "Tailors", "Stationers", "Outfitters",
               "Chandlers", "Ironworks", "Quarries", "Apiaries", "Hatchery", "Roasters", "Distillery", "Millinery",
               "Cartography", "Upholstery", "Cooperage", "Smithy", "Masonry", "Pottery")
_COMPANY_ENDS = ("Ltd", "Holdings", "Group", "Brothers", "Cooperative", "Guild", "Company", "Trust")
_MATERIALS = ("Oak", "Walnut", "Steel", "Copper", "Linen", "Bamboo", "Marble", "Cedar", "Brass", "Slate", "Wool",
              "Cork", "Granite", "Teak", "Pewter", "Jute", "Birch", "Enamel", "Basalt", "Rattan")
_ITEMS = ("Kettle", "Lamp", "Chair", "Stool", "Desk", "Shelf", "Mirror", "Clock", "Vase", "Tray", "Bench", "Rug",
          "Blanket", "Cabinet", "Sconce", "Planter", "Teapot", "Skillet", "Ladle", "Easel", "Hammock", "Lantern",
          "Wardrobe", "Ottoman", "Dresser", "Pitcher", "Colander", "Trivet", "Bookend", "Coaster", "Candlestick",
          "Doorstop", "Footstool", "Headboard", "Mailbox", "Nightstand", "Pouf", "Satchel", "Thermos", "Umbrella")
_PLACES = ("Plaza", "Commons", "Galleria", "Arcade", "Crossing", "Square", "Promenade", "Wharf", "Terrace", "Junction")
_SUPPLY_ENDS = ("Components", "Industrial", "Materials", "Provisions", "Trading", "Sourcing", "Imports", "Fabrication")
_PARTNER_ENDS = ("Alliance", "Collective", "Consortium", "Associates", "Network", "Federation", "Syndicate", "Union")
_THEMES = ("Bright", "Golden", "Silver", "Crimson", "Azure", "Velvet", "Amber", "Emerald", "Cobalt", "Ivory",
           "Scarlet", "Jade", "Coral", "Indigo", "Saffron", "Onyx", "Opal", "Topaz", "Russet", "Sable")
_THEME_NOUNS = ("Meadow", "Harbor", "Summit", "Canyon", "Orchard", "Lagoon", "Prairie", "Glacier", "Tundra", "Delta",
                "Fjord", "Grove", "Mesa", "Reef", "Savanna", "Steppe", "Atoll", "Bayou", "Cove", "Dune")
_CAMPAIGN_ENDS = ("Drive", "Blitz", "Push", "Spotlight", "Showcase", "Rally", "Takeover", "Countdown")
_COUNTRIES = ("Argentina", "Australia", "Austria", "Belgium", "Brazil", "Canada", "Chile", "Colombia", "Denmark",
              "Egypt", "Finland", "France", "Germany", "Ghana", "Greece", "Hungary", "India", "Indonesia", "Ireland",
              "Israel", "Italy", "Japan", "Kenya", "Malaysia", "Mexico", "Morocco", "Netherlands", "New Zealand",
              "Nigeria", "Norway", "Peru", "Philippines", "Poland", "Portugal", "Romania", "Singapore", "South Africa",
              "South Korea", "Spain", "Sweden", "Switzerland", "Thailand", "Turkey", "Ukraine", "Vietnam")
_REGIONS = ("Northern Europe", "Southern Europe", "Western Europe", "Eastern Europe", "North America", "South America",
            "East Asia", "Southeast Asia", "South Asia", "Oceania", "North Africa", "Sub-Saharan Africa", "Middle East")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sizes(_Frozen):
    """How many distinct values each named attribute gets for a target total."""

    cities: int
    customers: int
    products: int
    suppliers: int
    stores: int
    campaigns: int
    partners: int
    employees: int
    brands: int
    districts: int


def sizes_for(values: int) -> Sizes:
    """Split a target number of distinct values over the named attributes (each at most 10,000).

    >>> s = sizes_for(50_000); sum(s.model_dump().values()) >= 50_000, max(s.model_dump().values()) <= 10_000
    (True, True)
    >>> sizes_for(2_000).customers
    360
    """
    shares = {"cities": 0.10, "customers": 0.18, "products": 0.18, "suppliers": 0.11, "stores": 0.11,
              "campaigns": 0.11, "partners": 0.11, "employees": 0.11, "brands": 0.008, "districts": 0.006}
    out = {k: max(8, min(10_000, round(values * v))) for k, v in shares.items()}
    out["brands"] = min(out["brands"], 450)  # categorical, indexed below the 500-value limit
    out["districts"] = min(out["districts"], 450)
    return Sizes(**out)


# --- names -------------------------------------------------------------------------------------


def metric_vocabulary() -> frozenset[str]:
    """Every stem the metrics, facts and attributes are named with (value names avoid them)."""
    from lore.plan.catalog import phrase

    words: set[str] = set()
    for d in DOMAINS:
        for text in (d.plural, d.singular, d.segment_label, *d.segments):
            words.update(phrase(text))
        for m in d.measures:
            for text in (m.label, *m.synonyms):
                words.update(phrase(text.replace("{n}", d.singular).replace("{p}", d.plural)))
    for line in LINES:
        words.update(phrase(line))
    for text in _ATTRIBUTE_WORDS:
        words.update(phrase(text))
    return frozenset(words)


_ATTRIBUTE_WORDS = ("customer", "client", "account name", "customer segment", "segment", "loyalty tier", "tier",
                    "signup date", "city", "town", "country", "nation", "region", "geography", "product", "item name",
                    "brand", "make", "product category", "category", "supplier", "vendor", "supplier tier",
                    "store", "shop", "branch", "district", "store format", "campaign", "marketing campaign",
                    "marketing channel", "partner", "reseller", "partner type", "sales rep", "rep", "employee",
                    "account manager", "team", "launch date")


def _safe_word_check(vocab: frozenset[str]) -> Any:
    """A predicate: may this word appear in a value name (not a metric word, not a likely spelling of one)?"""
    from lore.plan.words import KNOWN_WORDS as _KNOWN_WORDS
    from lore.retrieve.lexical import STOP_WORDS, stem

    spell_vocab = sorted(w for w in vocab if len(w) >= 3)
    memo: dict[str, bool] = {}

    def ok(word: str) -> bool:
        w = word.lower()
        if w not in memo:
            s = stem(w)
            memo[w] = (s not in vocab and w not in STOP_WORDS and w not in _KNOWN_WORDS
                       and not difflib.get_close_matches(s, spell_vocab, n=1, cutoff=0.75))
        return memo[w]

    return ok


def _unique(rng: random.Random, n: int, make: Any, ok: Any, taken: set[str] | None = None) -> list[str]:
    out: list[str] = []
    seen = taken if taken is not None else set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > n * 200:
            raise RuntimeError(f"cannot generate {n} distinct names (got {len(out)})")
        name = make(rng)
        key = name.lower()
        if key in seen or not all(ok(w) for w in name.replace("-", " ").split()):
            continue
        seen.add(key)
        out.append(name)
    return out


def _pseudo(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


def generate_names(sizes: Sizes, seed: int) -> dict[str, list[str]]:
    """The distinct values of every named attribute (deterministic for a seed)."""
    rng = random.Random(seed)
    ok = _safe_word_check(metric_vocabulary())
    brands = _unique(rng, sizes.brands, lambda r: _pseudo(r, 2) + r.choice(("a", "o", "ix", "on", "el")), ok)
    towns = _unique(rng, sizes.cities, lambda r: _pseudo(r, r.choice((1, 2))) + r.choice(_TOWN_ENDS), ok)
    taken: set[str] = set()  # person and company names never repeat across attributes
    return {
        "brands": brands,
        "cities": towns,
        "districts": _unique(rng, sizes.districts, lambda r: f"{_pseudo(r, 2)} {r.choice(('Heights', 'Flats', 'Quarter', 'Gardens'))}", ok),
        "customers": _unique(rng, sizes.customers, lambda r: f"{r.choice(_SURNAMES)} {r.choice(_SURNAMES)} "
                             f"{r.choice(_INDUSTRIES)}" + (f" {r.choice(_COMPANY_ENDS)}" if r.random() < 0.3 else ""), ok, taken),
        "products": _unique(rng, sizes.products, lambda r: f"{r.choice(brands)} {r.choice(_MATERIALS)} {r.choice(_ITEMS)}", ok),
        "suppliers": _unique(rng, sizes.suppliers, lambda r: f"{_pseudo(r, 2)} {r.choice(_SUPPLY_ENDS)}", ok, taken),
        "stores": _unique(rng, sizes.stores, lambda r: f"{r.choice(towns)} {r.choice(_PLACES)}", ok),
        "campaigns": _unique(rng, sizes.campaigns, lambda r: f"{r.choice(_THEMES)} {r.choice(_THEME_NOUNS)} "
                             f"{r.choice(_CAMPAIGN_ENDS)}" + (f" {_pseudo(r, 1)}" if r.random() < 0.7 else ""), ok),
        "partners": _unique(rng, sizes.partners, lambda r: f"{_pseudo(r, 2)} {r.choice(_PARTNER_ENDS)}", ok, taken),
        "employees": _unique(rng, sizes.employees, lambda r: f"{r.choice(_FIRST_NAMES)} {r.choice(_SURNAMES)}", ok, taken),
    }


# --- the semantic layer ------------------------------------------------------------------------


def _col(name: str, label: str, description: str, *, kind: str = "categorical", synonyms: Sequence[str] = (),
         index_values: bool | None = None, unique: bool = False, samples: Sequence[str] = ()) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "label": label, "kind": kind, "description": description}
    if synonyms:
        col["synonyms"] = list(synonyms)
    if samples:
        col["sample_values"] = list(samples)
    if index_values is not None:
        col["index_values"] = index_values
    if unique:
        col["unique"] = True
    return col


SEGMENTS = ("smb", "mid market", "strategic", "public sector", "nonprofit", "startup", "education", "healthcare")
TIERS = ("bronze", "silver", "gold", "platinum")
CATEGORIES = ("kitchenware", "furniture", "lighting", "textiles", "garden", "storage", "decor", "outdoor", "bathroom",
              "stationery", "travel", "tableware")
STORE_FORMATS = ("flagship", "mall kiosk", "warehouse club", "popup", "high street")
SUPPLIER_TIERS = ("preferred", "approved", "probation", "strategic supplier")
PARTNER_TYPES = ("reseller", "distributor", "integrator", "affiliate")
CHANNELS = ("email", "social", "search", "display", "radio", "print")
TEAMS = ("north team", "south team", "key accounts", "inside sales", "field sales")


def dimension_nodes(names: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The dimension tables: regions <- countries <- cities <- customers, and products, suppliers, stores..."""

    def node(name: str, label: str, description: str, key: str, columns: list[dict[str, Any]],
             links: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "table": name, "label": label, "description": description,
                               "owner": "catalog-bench", "primary_key": [key], "columns": columns}
        if links:
            out["links"] = [{"to": to, "on": f"{name}.{fk} = {to}.{fk}"} for to, fk in links]
        return out

    return [
        node("regions", "region", "Sales regions of the world.", "region_id",
             [_col("region_name", "region", "Sales region, e.g. Northern Europe.", synonyms=("geography",))]),
        node("countries", "country", "Countries customers are based in.", "country_id",
             [_col("country_name", "country", "Country name in English.", synonyms=("nation",))], [("regions", "region_id")]),
        node("cities", "city", "Cities customers are based in.", "city_id",
             [_col("city_name", "city", "City name.", synonyms=("town",), index_values=True)], [("countries", "country_id")]),
        node("customers", "customer", "Customer companies, with their segment, loyalty tier and home city.", "customer_id",
             [_col("customer_name", "customer", "Customer company name.", synonyms=("client", "account name"),
                   index_values=True, unique=True),
              _col("segment", "customer segment", "Customer segment.", synonyms=("segment",), samples=SEGMENTS),
              _col("loyalty_tier", "loyalty tier", "Loyalty programme tier.", synonyms=("tier",), samples=TIERS),
              _col("signup_date", "signup date", "Day the customer signed up.", kind="time")],
             [("cities", "city_id")]),
        node("suppliers", "supplier", "Suppliers of the products.", "supplier_id",
             [_col("supplier_name", "supplier", "Supplier company name.", synonyms=("vendor",), index_values=True, unique=True),
              _col("supplier_tier", "supplier tier", "Supplier rating.", samples=SUPPLIER_TIERS)]),
        node("products", "product", "The product catalogue.", "product_id",
             [_col("product_name", "product", "Product name as sold.", synonyms=("item name",), index_values=True, unique=True),
              _col("brand", "brand", "Product brand.", synonyms=("make",)),
              _col("category", "product category", "Product category.", synonyms=("category",), samples=CATEGORIES),
              _col("launch_date", "launch date", "Day the product launched.", kind="time")],
             [("suppliers", "supplier_id")]),
        node("stores", "store", "Physical stores and branches.", "store_id",
             [_col("store_name", "store", "Store name.", synonyms=("shop", "branch"), index_values=True, unique=True),
              _col("district", "district", "Retail district of the store."),
              _col("store_format", "store format", "Store format.", samples=STORE_FORMATS)]),
        node("campaigns", "campaign", "Marketing campaigns.", "campaign_id",
             [_col("campaign_name", "campaign", "Campaign name.", synonyms=("marketing campaign",), index_values=True, unique=True),
              _col("channel", "marketing channel", "Marketing channel of the campaign.", samples=CHANNELS)]),
        node("partners", "partner", "Channel partners.", "partner_id",
             [_col("partner_name", "partner", "Partner company name.", synonyms=("reseller",), index_values=True, unique=True),
              _col("partner_type", "partner type", "Kind of partner.", samples=PARTNER_TYPES)]),
        node("employees", "sales rep", "Employees who own customer relationships.", "employee_id",
             [_col("employee_name", "sales rep", "Employee full name.", synonyms=("rep", "employee", "account manager"),
                   index_values=True, unique=True),
              _col("team", "team", "Sales team.", samples=TEAMS)]),
    ]


_KEYS = {"customers": "customer_id", "products": "product_id", "stores": "store_id", "campaigns": "campaign_id",
         "partners": "partner_id", "employees": "employee_id", "suppliers": "supplier_id"}


@dataclass(frozen=True)
class FactPlan:
    """One fact table: its business line and domain."""

    line: str
    domain: Domain

    @property
    def name(self) -> str:
        return f"{self.line}_{self.domain.plural}"

    @property
    def links(self) -> tuple[str, ...]:
        return ("customers", *self.domain.links)


@dataclass(frozen=True)
class MetricPlan:
    """One generated metric, and the phrases a question may name it by."""

    name: str
    fact: FactPlan
    measure: Measure
    segment: str | None
    label: str
    synonyms: tuple[str, ...]


def _fill(text: str, d: Domain) -> str:
    return text.replace("{n}", d.singular).replace("{p}", d.plural)


def plan_metrics(n_metrics: int) -> list[MetricPlan]:
    """``n_metrics`` metrics spread evenly over the fact tables (lines x domains), in a stable order.

    >>> ms = plan_metrics(5000); len(ms), len({m.name for m in ms}), len({m.fact.name for m in ms})
    (5000, 5000, 100)
    >>> plan_metrics(3)[0].label
    'retail order revenue'
    """
    per_fact = len(DOMAINS[0].measures) * (1 + len(DOMAINS[0].segments))
    n_facts = max(1, min(len(LINES) * len(DOMAINS), max(-(-n_metrics // per_fact), n_metrics // 20)))
    facts = [FactPlan(line, d) for line in LINES for d in DOMAINS][:n_facts]
    out: list[MetricPlan] = []
    slots = [(f, seg, m) for seg_i in range(1 + len(DOMAINS[0].segments)) for f in facts for m in f.domain.measures
             for seg in [None if seg_i == 0 else f.domain.segments[seg_i - 1]]]
    for fact, segment, measure in slots[:n_metrics]:
        d = fact.domain
        base = _fill(measure.label, d)
        prefix = f"{fact.line} {segment} " if segment else f"{fact.line} "
        key = (segment or "all").replace(" ", "_")
        name = f"{fact.name}_{key}_{measure.column.replace('*', 'rows')}_{measure.agg}"
        out.append(MetricPlan(name=name, fact=fact, measure=measure, segment=segment, label=prefix + base,
                              synonyms=tuple(prefix + _fill(s, d) for s in measure.synonyms)))
    return out


def source_node(fact: FactPlan) -> dict[str, Any]:
    d = fact.domain
    cols = [_col(d.date_column, f"{d.singular} date", f"Day of the {d.singular}.", kind="time"),
            _col(d.segment_column, d.segment_label, f"{d.segment_label.capitalize()} of the {d.singular}.",
                 samples=d.segments, index_values=False)]
    return {"name": fact.name, "table": fact.name, "label": f"{fact.line} {d.singular}",
            "description": f"One row per {fact.line} {d.singular}.", "owner": f"{fact.line}-analytics",
            "primary_key": [f"{d.singular}_id"], "time_column": d.date_column, "columns": cols,
            "links": [{"to": to, "on": f"{fact.name}.{_KEYS[to]} = {to}.{_KEYS[to]}"} for to in fact.links]}


def metric_entry(m: MetricPlan) -> dict[str, Any]:
    d = m.fact.domain
    what = {"sum": "Sum of", "count": "Number of", "count_distinct": "Distinct count of"}[m.measure.agg]
    column = m.measure.column.replace("_", " ") if m.measure.column != "*" else f"{d.plural}"
    seg = f" with {d.segment_label} {m.segment}" if m.segment else ""
    out: dict[str, Any] = {"name": m.name, "label": m.label, "description": f"{what} {column} over {m.fact.line} "
                           f"{d.plural}{seg}.", "synonyms": list(m.synonyms), "owner": f"{m.fact.line}-analytics",
                           "unit": m.measure.unit, "source": m.fact.name, "agg": m.measure.agg}
    if m.measure.column != "*":
        out["expr"] = m.measure.column
    if m.segment:
        out["filter"] = f"{d.segment_column} = '{m.segment}'"
    return out


def write_layer(folder: Path, metrics: Sequence[MetricPlan], names: dict[str, list[str]]) -> None:
    """One YAML file per domain (its facts and metrics) and one for the dimensions."""
    folder.mkdir(parents=True, exist_ok=True)
    facts = list(dict.fromkeys(m.fact for m in metrics))
    dump = lambda data: yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=200)  # noqa: E731
    (folder / "dimensions.yaml").write_text("# Generated by evals/bench/catalog.py\n" + dump(
        {"dimensions": dimension_nodes(names)}), encoding="utf-8")
    for d in DOMAINS:
        fs = [f for f in facts if f.domain is d]
        if not fs:
            continue
        data = {"sources": [source_node(f) for f in fs],
                "metrics": [metric_entry(m) for m in metrics if m.fact.domain is d]}
        (folder / f"{d.plural}.yaml").write_text("# Generated by evals/bench/catalog.py\n" + dump(data), encoding="utf-8")


# --- the warehouse -----------------------------------------------------------------------------


def write_warehouse(path: Path, facts: Sequence[FactPlan], names: dict[str, list[str]], seed: int) -> None:
    """Every table of the layer, with a few hundred rows per fact (generated in DuckDB SQL)."""
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute(f"SELECT setseed({(seed % 1000) / 1000})")

        def table(name: str, key: str, labels: Sequence[str], label_col: str, extra: str = "") -> None:
            con.execute(f"CREATE TABLE {name} AS SELECT CAST(i AS BIGINT) AS {key}, CAST(v AS VARCHAR) AS {label_col}"
                        f"{extra} FROM (SELECT unnest(range(1, ?::BIGINT + 1)) AS i, unnest(?::VARCHAR[]) AS v)",
                        [len(labels), list(labels)])

        def pick(options: Sequence[str]) -> str:
            quoted = ", ".join("'" + o.replace("'", "''") + "'" for o in options)
            return f"list_extract([{quoted}], 1 + CAST(floor(random() * {len(options)}) AS INTEGER))"

        def fk(n: int) -> str:
            return f"CAST(1 + floor(random() * {n}) AS BIGINT)"

        days = (TODAY - START).days
        day = f"DATE '{START.isoformat()}' + CAST(floor(random() * {days}) AS INTEGER)"
        table("regions", "region_id", _REGIONS, "region_name")
        table("countries", "country_id", _COUNTRIES, "country_name", f", {fk(len(_REGIONS))} AS region_id")
        table("cities", "city_id", names["cities"], "city_name", f", {fk(len(_COUNTRIES))} AS country_id")
        table("customers", "customer_id", names["customers"], "customer_name",
              f", {pick(SEGMENTS)} AS segment, {pick(TIERS)} AS loyalty_tier, {day} AS signup_date, "
              f"{fk(len(names['cities']))} AS city_id")
        table("suppliers", "supplier_id", names["suppliers"], "supplier_name", f", {pick(SUPPLIER_TIERS)} AS supplier_tier")
        brands = sorted({p.split(" ")[0] for p in names["products"]})
        con.execute(f"CREATE TABLE products AS SELECT CAST(i AS BIGINT) AS product_id, v AS product_name, "
                    f"split_part(v, ' ', 1) AS brand, {pick(CATEGORIES)} AS category, {day} AS launch_date, "
                    f"{fk(len(names['suppliers']))} AS supplier_id "
                    f"FROM (SELECT unnest(range(1, ?::BIGINT + 1)) AS i, unnest(?::VARCHAR[]) AS v)",
                    [len(names["products"]), list(names["products"])])
        assert len(brands) <= 500
        table("stores", "store_id", names["stores"], "store_name",
              f", {pick(names['districts'])} AS district, {pick(STORE_FORMATS)} AS store_format")
        table("campaigns", "campaign_id", names["campaigns"], "campaign_name", f", {pick(CHANNELS)} AS channel")
        table("partners", "partner_id", names["partners"], "partner_name", f", {pick(PARTNER_TYPES)} AS partner_type")
        table("employees", "employee_id", names["employees"], "employee_name", f", {pick(TEAMS)} AS team")
        sizes = {"customers": len(names["customers"]), "products": len(names["products"]),
                 "stores": len(names["stores"]), "campaigns": len(names["campaigns"]),
                 "partners": len(names["partners"]), "employees": len(names["employees"])}
        for f in facts:
            d = f.domain
            cols = [f"CAST(i AS BIGINT) AS {d.singular}_id", f"{day} AS {d.date_column}",
                    f"{pick(d.segments)} AS {d.segment_column}"]
            cols += [f"{fk(sizes[to])} AS {_KEYS[to]}" for to in f.links]
            cols += [f"round(random() * 100, 2) AS {m.column}" for m in d.measures
                     if m.column not in ("*", "customer_id")]
            con.execute(f"CREATE TABLE {f.name} AS SELECT {', '.join(cols)} FROM range(1, {FACT_ROWS + 1}) t(i)")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def generate_project(folder: Path, *, metrics: int, values: int, seed: int = 7) -> tuple[list[MetricPlan], dict[str, list[str]]]:
    """Write a LORE project (lore.yaml, semantic/, warehouse.duckdb) into ``folder``; returns what it generated."""
    folder.mkdir(parents=True, exist_ok=True)
    plans = plan_metrics(metrics)
    names = generate_names(sizes_for(values), seed)
    write_layer(folder / "semantic", plans, names)
    write_warehouse(folder / "warehouse.duckdb", list(dict.fromkeys(m.fact for m in plans)), names, seed)
    (folder / "lore.yaml").write_text(yaml.safe_dump({
        "name": "catalog-bench", "description": "A large generated semantic layer (evals/bench/catalog.py).",
        "warehouse": "warehouse.duckdb", "semantic_layer": "semantic", "dialect": "duckdb",
        "today": TODAY.isoformat()}, sort_keys=False), encoding="utf-8")
    return plans, names


# --- questions ---------------------------------------------------------------------------------

#: the attributes each linked dimension offers for "by X" (label words as a person would type them)
_DIM_PHRASES: dict[str, tuple[str, ...]] = {
    "customers": ("customer segment", "segment", "loyalty tier", "tier", "city", "country", "region", "customer"),
    "products": ("product category", "brand", "supplier", "product"),
    "stores": ("store", "district", "store format"),
    "campaigns": ("campaign", "marketing channel"),
    "partners": ("partner", "partner type"),
    "employees": ("sales rep", "team"),
}
#: the named values a question may filter on, per linked dimension (key of generate_names)
_VALUE_SOURCES: dict[str, tuple[str, ...]] = {
    "customers": ("customers", "cities"), "products": ("products", "suppliers"), "stores": ("stores",),
    "campaigns": ("campaigns",), "partners": ("partners",), "employees": ("employees",),
}
_VALUE_ATTRS = {"customers": "customers.customer_name", "cities": "cities.city_name",
                "products": "products.product_name", "suppliers": "suppliers.supplier_name",
                "stores": "stores.store_name", "campaigns": "campaigns.campaign_name",
                "partners": "partners.partner_name", "employees": "employees.employee_name"}
_OPENERS = ("", "", "what was the ", "what were the ", "show me ", "show ", "give me the ", "I need ", "can you show ",
            "tell me the ", "chart ", "what is our ", "how did ", "list ", "plot the ")
_BY = ("by", "by", "per", "broken down by", "for each", "split by", "across", "grouped by")
_FOR = ("for", "for", "at", "only for", "from", "with", "for customer", "just for")
_TIMES = ("last month", "in 2025", "in 2026", "this year", "last quarter", "since March 2026", "in Q2 2026",
          "over the last 6 months", "year to date", "last week", "between January and March 2026", "in October 2026",
          "last year", "in the past 90 days", "during H1 2026")
_GRAINS = ("by month", "monthly", "per week", "by quarter", "over time", "weekly", "by year")


class Generated(_Frozen):
    """A generated question and what it should plan to."""

    question: str
    kind: str
    metric: str
    value: str | None = None
    value_ref: str | None = None


def _metric_phrase(rng: random.Random, m: MetricPlan) -> str:
    """The metric as a person might name it: its label, a synonym, its name, or its label reordered."""
    choice = rng.random()
    if choice < 0.45 or not m.synonyms:
        return m.label
    if choice < 0.8:
        return rng.choice(m.synonyms)
    if choice < 0.9:
        return m.name.replace("_", " ") if rng.random() < 0.3 else m.label.upper() if rng.random() < 0.3 else m.label.title()
    words = m.label.split()
    return f"{words[-1]} of {' '.join(words[:-1])}" if len(words) >= 3 else m.label


def generate_questions(metrics: Sequence[MetricPlan], names: dict[str, list[str]], n: int, seed: int) -> list[Generated]:
    """``n`` questions over random metrics, in varied phrasings; deterministic for a seed."""
    rng = random.Random(seed * 7919 + n)
    out: list[Generated] = []
    kinds = ("metric", "metric_dim", "metric_value", "metric_time", "metric_dim_time", "metric_value_time",
             "metric_grain", "top_n")
    for i in range(n):
        m = rng.choice(metrics)
        kind = kinds[i % len(kinds)]
        phrase_text = _metric_phrase(rng, m)
        opener = rng.choice(_OPENERS)
        dims = [p for link in m.fact.links for p in _DIM_PHRASES.get(link, ())]
        parts = [opener + phrase_text]
        value = value_ref = None
        if kind in ("metric_dim", "metric_dim_time"):
            parts.append(f"{rng.choice(_BY)} {rng.choice(dims)}")
        if kind in ("metric_value", "metric_value_time"):
            source = rng.choice([s for link in m.fact.links for s in _VALUE_SOURCES.get(link, ())])
            value, value_ref = rng.choice(names[source]), _VALUE_ATTRS[source]
            connector = rng.choice(_FOR)
            if connector == "for customer" and source != "customers":
                connector = "for"
            parts.append(f"{connector} {value if rng.random() < 0.7 else value.lower()}")
        if kind in ("metric_time", "metric_dim_time", "metric_value_time"):
            parts.append(rng.choice(_TIMES))
        if kind == "metric_grain":
            parts.append(rng.choice(_GRAINS) + (f" {rng.choice(_TIMES)}" if rng.random() < 0.5 else ""))
        if kind == "top_n":
            dim = rng.choice([d for d in dims if d not in ("segment", "tier", "loyalty tier", "customer segment")] or dims)
            plural = {"city": "cities", "country": "countries", "category": "categories", "product category":
                      "product categories", "sales rep": "sales reps"}.get(dim, dim + "s")
            parts = [f"top {rng.choice((3, 5, 10))} {plural} by {phrase_text}"] + \
                    ([rng.choice(_TIMES)] if rng.random() < 0.5 else [])
        text = " ".join(parts)
        if opener.startswith(("what", "how", "can")) and rng.random() < 0.6:
            text += "?"
        out.append(Generated(question=text, kind=kind, metric=m.name, value=value, value_ref=value_ref))
    return out


# --- measuring ---------------------------------------------------------------------------------


class Outcome(_Frozen):
    question: str
    kind: str
    status: str
    metric_ok: bool
    value_ok: bool | None = None
    retrieve_ms: float
    plan_ms: float
    planned_metrics: tuple[str, ...] = ()


class CatalogReport(_Frozen):
    machine: Machine
    metrics: int
    facts: int
    dimension_nodes: int
    values_indexed: int
    documents: dict[str, int]
    generate_s: float
    index_build_s: float
    index_reused: bool = False
    first_open_s: float
    rss_after_build_mib: float | None
    rss_after_open_mib: float | None
    retrieve: Stats
    plan: Stats
    retrieve_plan: Stats
    planned: int
    clarified: int
    refused: int
    metric_accuracy: float
    value_accuracy: float | None
    by_kind: dict[str, dict[str, float]]
    misses: tuple[Outcome, ...] = ()


def value_grounded(plan: Any, value: str, ref: str) -> bool:
    return any(f.ref == ref and value in tuple(str(v) for v in f.values) for f in plan.filters)


def run_questions(lore: Any, questions: Sequence[Generated], *, warmup: Sequence[Generated] = ()) -> list[Outcome]:
    """Time retrieve (``retriever.search(q, k=4)``) and plan (``planner.plan(q)``) once per question."""
    retriever, planner = lore.retriever, lore.planner
    for q in warmup:
        retriever.search(q.question, k=4)
        planner.plan(q.question)
    out: list[Outcome] = []
    gc.collect()
    for q in questions:
        t0 = time.perf_counter()
        retriever.search(q.question, k=4)
        t1 = time.perf_counter()
        outcome = planner.plan(q.question)
        t2 = time.perf_counter()
        plan = outcome.plan if outcome.status == "plan" else None
        metrics = tuple(plan.metrics) if plan is not None else ()
        value_ok = None
        if q.value is not None and q.value_ref is not None:
            value_ok = plan is not None and value_grounded(plan, q.value, q.value_ref)
        out.append(Outcome(question=q.question, kind=q.kind, status=outcome.status, metric_ok=metrics[:1] == (q.metric,),
                           value_ok=value_ok, retrieve_ms=(t1 - t0) * 1000, plan_ms=(t2 - t1) * 1000,
                           planned_metrics=metrics))
    return out


def bench(workdir: Path, *, metrics: int, values: int, questions: int, seed: int, reuse_index: bool = False,
          log: Any = print) -> CatalogReport:
    import shutil

    from lore import Lore

    machine = machine_info()
    folder = workdir / f"catalog-{metrics}m-{values}v-seed{seed}"
    t0 = time.perf_counter()
    log(f"generating {metrics:,} metrics and about {values:,} values in {folder}")
    plans, names = generate_project(folder, metrics=metrics, values=values, seed=seed)
    generate_s = time.perf_counter() - t0
    state = folder / ".lore"
    reused = reuse_index and (state / "index").is_dir()
    if not reused:
        shutil.rmtree(state, ignore_errors=True)
    log("building the index (as `lore index build`)" + (": reusing the one built before" if reused else ""))
    t0 = time.perf_counter()
    with Lore.open(folder, model="offline") as lore:
        retriever = lore.retriever
        documents = {k: retriever.count(k) for k in ("metric", "dimension", "value", "example")}
        index_build_s = time.perf_counter() - t0
        rss_build = current_rss_mib()
        n_nodes = sum(1 for n in lore.layer.nodes.values() if n.kind == "dimension")
    del lore, retriever
    gc.collect()
    log("opening it again (the index is reused)")
    t0 = time.perf_counter()
    lore = Lore.open(folder, model="offline")
    try:
        lore.retriever.search("warm up", k=1)
        lore.planner
        first_open_s = time.perf_counter() - t0
        rss_open = current_rss_mib()
        qs = generate_questions(plans, names, questions, seed)
        warm = generate_questions(plans, names, 20, seed + 1)
        log(f"timing {len(qs)} questions")
        outcomes = run_questions(lore, qs, warmup=warm)
    finally:
        lore.close()
    retrieve = [o.retrieve_ms for o in outcomes]
    plan = [o.plan_ms for o in outcomes]
    both = [a + b for a, b in zip(retrieve, plan)]
    with_value = [o for o in outcomes if o.value_ok is not None]
    by_kind: dict[str, dict[str, float]] = {}
    for kind in dict.fromkeys(o.kind for o in outcomes):
        group = [o for o in outcomes if o.kind == kind]
        by_kind[kind] = {"n": len(group), "planned": sum(o.status == "plan" for o in group),
                         "metric_ok": sum(o.metric_ok for o in group),
                         "p95_ms": summarize([o.retrieve_ms + o.plan_ms for o in group]).p95 or 0.0}
    return CatalogReport(
        machine=machine, metrics=len(plans), facts=len({m.fact.name for m in plans}), dimension_nodes=n_nodes,
        values_indexed=documents["value"], documents=documents, generate_s=round(generate_s, 2),
        index_build_s=round(index_build_s, 2), index_reused=reused, first_open_s=round(first_open_s, 2),
        rss_after_build_mib=rss_build, rss_after_open_mib=rss_open,
        retrieve=summarize(retrieve), plan=summarize(plan), retrieve_plan=summarize(both),
        planned=sum(o.status == "plan" for o in outcomes), clarified=sum(o.status == "clarify" for o in outcomes),
        refused=sum(o.status == "refuse" for o in outcomes),
        metric_accuracy=round(sum(o.metric_ok for o in outcomes) / len(outcomes), 4) if outcomes else 0.0,
        value_accuracy=round(sum(bool(o.value_ok) for o in with_value) / len(with_value), 4) if with_value else None,
        by_kind=by_kind, misses=tuple(o for o in outcomes if not o.metric_ok or o.value_ok is False)[:40],
    )


# --- report ------------------------------------------------------------------------------------


def report_lines(r: CatalogReport, *, show_misses: int = 10) -> list[Table | str]:
    m = r.machine
    extra = ", ".join(f"{k} {v}" for k, v in m.versions.items())
    out: list[Table | str] = [
        f"LORE catalog-scale benchmark, {m.date}",
        f"{m.platform} ({m.processor}), {m.cpu_count} CPUs" + (f" ({m.cpus_usable} usable)" if m.cpus_usable else ""),
        f"python {m.python}, duckdb {m.duckdb}" + (f", {extra}" if extra else ""),
        "",
        f"layer: {r.metrics:,} metrics over {r.facts} facts, {r.dimension_nodes} dimension tables; index: "
        + ", ".join(f"{v:,} {k}s" for k, v in r.documents.items()),
    ]
    t = Table(title="build and memory")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("generate layer + warehouse", f"{r.generate_s:.1f} s")
    t.add_row("index build (lore index build)" + (", index reused" if r.index_reused else ", from scratch"),
              f"{r.index_build_s:.1f} s")
    t.add_row("first open (index reused, to a ready planner)", f"{r.first_open_s:.2f} s")
    t.add_row("RSS after the build", f"{r.rss_after_build_mib or 0:.0f} MiB")
    t.add_row("RSS after a fresh open", f"{r.rss_after_open_mib or 0:.0f} MiB")
    out.append(t)
    lt = Table(title=f"latency per question ({r.retrieve.n} questions, each timed once)")
    for c, j in (("stage", "left"), ("p50 ms", "right"), ("p95 ms", "right"), ("mean ms", "right"), ("max ms", "right")):
        lt.add_column(c, justify=j)  # type: ignore[arg-type]
    for name, s in (("retrieve (search k=4)", r.retrieve), ("plan (offline)", r.plan), ("retrieve + plan", r.retrieve_plan)):
        lt.add_row(name, fmt_ms(s.p50), fmt_ms(s.p95), fmt_ms(s.mean), fmt_ms(s.max))
    out.append(lt)
    n = r.retrieve.n or 1
    out.append(f"planned {r.planned} of {n}, clarified {r.clarified}, refused {r.refused}; intended metric planned "
               f"{r.metric_accuracy:.1%}" + (f"; value filter grounded {r.value_accuracy:.1%}" if r.value_accuracy is not None else ""))
    kt = Table(title="by kind of question")
    for c in ("kind", "n", "planned", "intended metric", "p95 ms"):
        kt.add_column(c, justify="left" if c == "kind" else "right")
    for kind, v in r.by_kind.items():
        kt.add_row(kind, str(int(v["n"])), str(int(v["planned"])), str(int(v["metric_ok"])), fmt_ms(v["p95_ms"]))
    out.append(kt)
    if r.misses and show_misses:
        out.append("some misses: " + "; ".join(f"“{o.question}” -> {o.status} {list(o.planned_metrics)}"
                                               for o in r.misses[:show_misses]))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evals.bench.catalog",
                                description="Benchmark retrieval and planning on a large generated semantic layer.")
    p.add_argument("--metrics", type=int, default=5000, help="metrics to generate (default: 5000)")
    p.add_argument("--values", type=int, default=50_000, help="distinct dimension values to index (default: 50000)")
    p.add_argument("--questions", type=int, default=300, help="generated questions to time (default: 300)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, default=None, help="where the project is generated (default: a temp folder)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON to this file")
    p.add_argument("--reuse-index", action="store_true",
                   help="keep a retrieval index built by an earlier run in --workdir (default: build it from scratch)")
    return p


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.metrics < 1 or args.values < 100 or args.questions < 1:
        parser.error("--metrics and --questions must be positive, --values at least 100")
    if args.metrics > len(LINES) * len(DOMAINS) * 100:
        parser.error(f"--metrics can be at most {len(LINES) * len(DOMAINS) * 100}")
    out = console or Console(width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True)
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="lore-bench-catalog-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir.expanduser().resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = bench(workdir, metrics=args.metrics, values=args.values, questions=args.questions, seed=args.seed,
                       reuse_index=args.reuse_index, log=lambda msg: err.print(f"[dim]{msg}[/]", highlight=False))
    except LoreError as e:
        err.print(f"[red]error:[/] {e}")
        return 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    for line in report_lines(report):
        out.print(line, highlight=False)
    if args.out:
        args.out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
        out.print(f"results written to {args.out}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
