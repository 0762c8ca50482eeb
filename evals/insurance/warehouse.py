"""Build the insurance eval project: a small property & casualty insurer, generated with stdlib ``random``.

    python -m evals.insurance.warehouse DIR [--seed 7] [--scale 1.0]

writes ``DIR/warehouse.duckdb``, ``DIR/semantic/*.yaml`` (copied from ``evals/insurance/semantic/``) and
``DIR/lore.yaml`` (``today:`` pinned to 2025-07-01, the day after the data ends), and prints the size of every
table.

What it simulates: **Harbor Mutual**, a regional P&C insurer selling through 40 independent agents in five
regions. The warehouse holds three years, 2022-07-01 to 2025-06-30: the policies in force on 2022-07-01 (some
incepted as early as 2019) and every policy written since, with their premium, claims and payments in that
window; the book grows over the three years. Individuals buy auto and home policies; small businesses
buy commercial property, liability and (a few) auto policies. Policies run in 12-month terms and renew
until they lapse or are cancelled. Claims arrive all year (collisions peak in winter, hail and wind in
spring, theft in summer) and in bursts after twelve named catastrophes (hurricanes in late summer and
autumn, spring hail, winter wildfires, flash floods). Claims are reported after their loss date (claims
not yet reported by the data's end are not in the data), some are denied, and those still open have no
closed date. Payments on a claim are indemnity (paid to the insured or a third party), expense (adjusters,
lawyers, appraisers: loss adjustment expense) and recoveries (salvage, subrogation).

The tables (every date a ``DATE``, money in US dollars as ``DECIMAL(12,2)``):

================  ======================================================================  ======================
table             columns                                                                  primary key
================  ======================================================================  ======================
agents            id, name, region, hired_on                                               id
policyholders     id, name, birth_date (NULL for businesses), state (2-letter code),       id
                  segment ('individual' | 'small business')
policies          id, policy_number ('P-000123'), policyholder_id, agent_id,               id
                  line_of_business ('auto' | 'home' | 'commercial property' | 'liability'),
                  status ('active' | 'lapsed' | 'cancelled'), effective_date,
                  expiration_date, annual_premium
coverages         id, code ('COLL', 'FLOOD', ...), name                                    id
policy_coverages  policy_id, coverage_id, limit_amount, deductible                         (policy_id, coverage_id)
catastrophes      id, name ('Hurricane Ian', ...), kind ('hurricane' | 'wildfire' |        id
                  'hail' | 'flood'), start_date
claims            id, claim_number ('CLM-000123'), policy_id, coverage_id, catastrophe_id  id
                  (NULL unless a named catastrophe), loss_date, reported_date,
                  closed_date (NULL while open), status ('open' | 'closed' | 'denied'), cause
claim_payments    id, claim_id, payment_date, kind ('indemnity' | 'expense' | 'salvage' |  id
                  'subrogation'), amount (always positive)
premiums          policy_id, month (first of the month), written_premium, earned_premium,  (policy_id, month)
                  earned_exposure (policy-years earned in the month)
================  ======================================================================  ======================

Conventions: ``effective_date`` is the first day of cover (the inception of the first term, possibly before
the data starts) and ``expiration_date`` the day cover ends (exclusive): the end of the current term for an
active policy, the end of the last term for a lapsed one (not renewed), the cancellation date for a cancelled
one. The annual premium is the same for every term. Premium rows exist from July 2022 only (a term that
started earlier was written before the data). Written premium is booked in full in the month each term starts, and a
cancellation books the unearned part back as a negative written premium in its month; earned premium and
earned exposure accrue by day over each term (``annual_premium * days / days in the term``). Salvage and
subrogation amounts are **stored positive**: they are money coming back, so net paid = indemnity + expense -
salvage - subrogation. A claim's coverage is always one its policy holds, and its loss date falls inside the
policy's cover.

Deterministic: one ``random.Random(seed)`` drives everything, so one seed and scale always give the same
tables. ``--scale`` multiplies the number of policyholders simulated (6,500 at scale 1); agents, coverages and
catastrophes are fixed.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from evals.project_files import print_report
from evals.project_files import write_project as write_eval_project

#: the semantic layer copied into every built project
SEMANTIC_DIR = Path(__file__).resolve().parent / "semantic"
DEFAULT_SEED = 7
DEFAULT_SCALE = 1.0
#: first and last day of data, and the pinned "today" (the day after the last)
START = date(2022, 7, 1)
#: the book is simulated from here; only what is in force from ``START`` on is kept
BOOK_START = date(2019, 7, 1)
END = date(2025, 6, 30)
TODAY = date(2025, 7, 1)
#: policyholders at scale 1
POLICYHOLDERS_AT_SCALE_1 = 6500

#: tables in load order, with their DDL
TABLES: dict[str, str] = {
    "agents": "id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, region VARCHAR NOT NULL, hired_on DATE NOT NULL",
    "policyholders": ("id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, birth_date DATE, state VARCHAR NOT NULL, "
                      "segment VARCHAR NOT NULL"),
    "policies": ("id INTEGER PRIMARY KEY, policy_number VARCHAR NOT NULL UNIQUE, policyholder_id INTEGER NOT NULL, "
                 "agent_id INTEGER NOT NULL, line_of_business VARCHAR NOT NULL, status VARCHAR NOT NULL, "
                 "effective_date DATE NOT NULL, expiration_date DATE NOT NULL, annual_premium DECIMAL(12,2) NOT NULL"),
    "coverages": "id INTEGER PRIMARY KEY, code VARCHAR NOT NULL UNIQUE, name VARCHAR NOT NULL",
    "policy_coverages": ("policy_id INTEGER NOT NULL, coverage_id INTEGER NOT NULL, limit_amount DECIMAL(12,2) NOT NULL, "
                         "deductible DECIMAL(12,2) NOT NULL, PRIMARY KEY (policy_id, coverage_id)"),
    "catastrophes": "id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, kind VARCHAR NOT NULL, start_date DATE NOT NULL",
    "claims": ("id INTEGER PRIMARY KEY, claim_number VARCHAR NOT NULL UNIQUE, policy_id INTEGER NOT NULL, "
               "coverage_id INTEGER NOT NULL, catastrophe_id INTEGER, loss_date DATE NOT NULL, "
               "reported_date DATE NOT NULL, closed_date DATE, status VARCHAR NOT NULL, cause VARCHAR NOT NULL"),
    "claim_payments": ("id INTEGER PRIMARY KEY, claim_id INTEGER NOT NULL, payment_date DATE NOT NULL, "
                       "kind VARCHAR NOT NULL, amount DECIMAL(12,2) NOT NULL"),
    "premiums": ("policy_id INTEGER NOT NULL, month DATE NOT NULL, written_premium DECIMAL(12,2) NOT NULL, "
                 "earned_premium DECIMAL(12,2) NOT NULL, earned_exposure DOUBLE NOT NULL, PRIMARY KEY (policy_id, month)"),
}

# --- reference data -------------------------------------------------------------------------------------------

#: state code -> (share of policyholders, agent region, auto rate factor, property rate factor)
STATES: dict[str, tuple[float, str, float, float]] = {
    "FL": (0.18, "Southeast", 1.35, 2.0),
    "GA": (0.08, "Southeast", 1.0, 1.1),
    "NC": (0.08, "Southeast", 0.85, 1.0),
    "TX": (0.18, "South Central", 1.05, 1.4),
    "LA": (0.06, "South Central", 1.4, 1.8),
    "CA": (0.14, "West", 1.1, 1.25),
    "AZ": (0.06, "West", 0.95, 0.9),
    "CO": (0.07, "West", 1.05, 1.15),
    "NY": (0.08, "Northeast", 1.25, 1.05),
    "IL": (0.07, "Midwest", 0.95, 0.95),
}
#: agents per region
AGENTS_PER_REGION: dict[str, int] = {"Southeast": 13, "South Central": 9, "West": 10, "Northeast": 4, "Midwest": 4}

#: id, code, name
COVERAGES: tuple[tuple[int, str, str], ...] = (
    (1, "BI", "Bodily Injury"),
    (2, "PD", "Property Damage"),
    (3, "COLL", "Collision"),
    (4, "COMP", "Comprehensive"),
    (5, "FIRE", "Fire"),
    (6, "WIND", "Wind and Hail"),
    (7, "FLOOD", "Flood"),
    (8, "THEFT", "Theft"),
    (9, "GL", "General Liability"),
    (10, "PRODL", "Products Liability"),
)
COVERAGE_ID: dict[str, int] = {code: cid for cid, code, _ in COVERAGES}


@dataclass(frozen=True)
class Catastrophe:
    """A named catastrophe: the states it hit and the claim probability per line for a policy in force there."""

    id: int
    name: str
    kind: str
    start_date: date
    #: state -> probability that an exposed property policy claims
    hit: dict[str, float]
    #: multiplier of ``hit`` for auto policies with comprehensive cover
    auto_factor: float
    #: median ground-up loss of a property claim
    severity: float


CATASTROPHES: tuple[Catastrophe, ...] = (
    Catastrophe(1, "Hurricane Ian", "hurricane", date(2022, 9, 28), {"FL": 0.14, "NC": 0.021}, 0.15, 16000),
    Catastrophe(2, "Fort Lauderdale Flood", "flood", date(2023, 4, 12), {"FL": 0.035}, 0.5, 19500),
    Catastrophe(3, "Denver Hailstorm", "hail", date(2023, 5, 10), {"CO": 0.154}, 0.9, 10000),
    Catastrophe(4, "Chicago Flash Flood", "flood", date(2023, 7, 2), {"IL": 0.12}, 0.6, 16500),
    Catastrophe(5, "Hurricane Idalia", "hurricane", date(2023, 8, 30), {"FL": 0.042, "GA": 0.035}, 0.1, 13500),
    Catastrophe(6, "Smokehouse Creek Fire", "wildfire", date(2024, 2, 26), {"TX": 0.01}, 0.3, 105000),
    Catastrophe(7, "Houston Flood", "flood", date(2024, 5, 2), {"TX": 0.028}, 0.6, 18000),
    Catastrophe(8, "Dallas Hailstorm", "hail", date(2024, 5, 28), {"TX": 0.077}, 0.9, 10500),
    Catastrophe(9, "Hurricane Beryl", "hurricane", date(2024, 7, 8), {"TX": 0.042, "LA": 0.028}, 0.1, 11000),
    Catastrophe(10, "Hurricane Helene", "hurricane", date(2024, 9, 26), {"FL": 0.049, "GA": 0.063, "NC": 0.056}, 0.15, 14000),
    Catastrophe(11, "Hurricane Milton", "hurricane", date(2024, 10, 9), {"FL": 0.098}, 0.15, 16500),
    Catastrophe(12, "Palisades Fire", "wildfire", date(2025, 1, 7), {"CA": 0.025}, 0.3, 195000),
)

#: line -> annual claim rate per coverage code (claims per policy-year, outside catastrophes)
CLAIM_RATES: dict[str, dict[str, float]] = {
    "auto": {"BI": 0.028, "PD": 0.1, "COLL": 0.12, "COMP": 0.2},
    "home": {"FIRE": 0.015, "WIND": 0.05, "THEFT": 0.035, "FLOOD": 0.01},
    "commercial property": {"FIRE": 0.035, "WIND": 0.06, "THEFT": 0.08, "FLOOD": 0.012},
    "liability": {"GL": 0.11, "PRODL": 0.06},
}
#: coverage code -> (median ground-up loss, lognormal sigma); commercial property doubles property losses
SEVERITY: dict[str, tuple[float, float]] = {
    "BI": (11000, 1.0), "PD": (2800, 0.7), "COLL": (4300, 0.7), "COMP": (800, 1.0),
    "FIRE": (24000, 1.1), "WIND": (8000, 0.9), "THEFT": (3200, 0.9), "FLOOD": (19000, 0.8),
    "GL": (14000, 1.1), "PRODL": (24000, 1.2),
}
#: coverage code -> ((cause, weight), ...)
CAUSES: dict[str, tuple[tuple[str, float], ...]] = {
    "BI": (("collision", 1.0),), "PD": (("collision", 1.0),), "COLL": (("collision", 1.0),),
    "COMP": (("glass breakage", 0.55), ("theft", 0.12), ("animal strike", 0.18), ("vandalism", 0.08), ("hail", 0.07)),
    "FIRE": (("fire", 0.8), ("lightning", 0.2)), "WIND": (("wind", 0.5), ("hail", 0.5)),
    "THEFT": (("theft", 0.8), ("vandalism", 0.2)), "FLOOD": (("flood", 1.0),),
    "GL": (("slip and fall", 0.6), ("third-party property damage", 0.4)), "PRODL": (("product defect", 1.0),),
}
#: monthly seasonality (January first) of attritional claims, by coverage code
_COLLISION = (1.3, 1.2, 1.0, 0.9, 0.9, 0.9, 1.0, 1.0, 0.9, 1.0, 1.1, 1.3)
_HAIL = (0.5, 0.7, 1.2, 1.8, 2.0, 1.6, 1.0, 0.8, 0.9, 0.7, 0.5, 0.5)
_THEFT = (0.8, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.3, 1.1, 1.0, 0.9, 0.9)
_FIRE = (1.4, 1.3, 1.1, 0.9, 0.8, 0.8, 0.9, 0.9, 0.9, 1.0, 1.2, 1.4)
SEASON: dict[str, tuple[float, ...]] = {"BI": _COLLISION, "PD": _COLLISION, "COLL": _COLLISION, "WIND": _HAIL,
                                        "THEFT": _THEFT, "FIRE": _FIRE}
#: coverage code -> (min, max) days from report to settlement
SETTLE_DAYS: dict[str, tuple[int, int]] = {
    "BI": (90, 720), "PD": (15, 60), "COLL": (12, 45), "COMP": (7, 35), "FIRE": (45, 300), "WIND": (25, 200),
    "THEFT": (20, 90), "FLOOD": (45, 260), "GL": (90, 800), "PRODL": (150, 900),
}
#: coverage code -> mean days from loss to report (outside catastrophes)
REPORT_LAG: dict[str, float] = {"BI": 9, "PD": 3, "COLL": 2, "COMP": 4, "FIRE": 2, "WIND": 6, "THEFT": 3,
                                "FLOOD": 5, "GL": 35, "PRODL": 60}
#: coverage code -> probability that a claim is denied
DENIAL: dict[str, float] = {"BI": 0.06, "PD": 0.04, "COLL": 0.05, "COMP": 0.07, "FIRE": 0.08, "WIND": 0.09,
                            "THEFT": 0.14, "FLOOD": 0.11, "GL": 0.12, "PRODL": 0.1}

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Lisa",
    "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Andrew",
    "Emily", "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa",
    "Luis", "Deborah", "Jose", "Stephanie", "Timothy", "Maria", "Ronald", "Rebecca", "Jason", "Sharon", "Edward",
    "Laura", "Jeffrey", "Cynthia", "Ryan", "Amy", "Jacob", "Angela", "Gary", "Priya", "Nicholas", "Mei", "Eric",
    "Aisha", "Jonathan", "Fatima",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers",
    "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox",
    "Ward", "Richardson", "Patel", "Chen", "Okafor", "Kowalski",
)
TRADES = (
    "Plumbing", "Bakery", "Auto Repair", "Landscaping", "Dental", "Hardware", "Cafe", "Roofing", "Electric",
    "Construction", "Florist", "Printing", "Brewing", "Pet Grooming", "Consulting", "Marine Supply", "Catering",
    "Fitness", "Tile & Stone", "Bookkeeping",
)


# --- small helpers --------------------------------------------------------------------------------------------

def add_years(d: date, years: int) -> date:
    """``d`` plus whole years (29 February becomes 28 February).

    >>> add_years(date(2024, 2, 29), 1), add_years(date(2022, 7, 15), 2)
    (datetime.date(2025, 2, 28), datetime.date(2024, 7, 15))
    """
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def month_start(d: date) -> date:
    """The first day of ``d``'s month."""
    return d.replace(day=1)


def next_month(d: date) -> date:
    """The first day of the month after ``d``'s."""
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's method; ``lam`` is small here)."""
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """A lognormal draw with the given median."""
    return median * math.exp(rng.gauss(0.0, sigma))


def money(x: float) -> float:
    """Round to cents."""
    return round(x + 0.0, 2)


def pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    """One value of ``(value, weight)`` pairs."""
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def days_between(a: date, b: date) -> int:
    """Whole days from ``a`` to ``b``."""
    return (b - a).days


# --- the simulation -------------------------------------------------------------------------------------------

@dataclass
class Policy:
    """One policy while it is simulated: its terms, coverages and state."""

    id: int
    holder: int
    agent: int
    line: str
    state: str
    effective: date
    annual_premium: float
    #: term start dates, in order
    terms: list[date] = field(default_factory=list)
    status: str = "active"
    expiration: date = END
    #: coverage code -> (limit, deductible)
    coverages: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def cover_end(self) -> date:
        """The last day of cover inside the data (inclusive)."""
        return min(self.expiration - timedelta(days=1), END)

    def in_force(self, day: date) -> bool:
        """Whether the policy covers ``day``."""
        return self.effective <= day < self.expiration and day <= END


@dataclass
class Claim:
    """One claim while it is simulated."""

    policy: Policy
    coverage: str
    loss_date: date
    reported: date
    cause: str
    cat: Catastrophe | None
    closed: date | None = None
    status: str = "open"
    payments: list[tuple[date, str, float]] = field(default_factory=list)


class Simulation:
    """Generates every table's rows from one seeded ``random.Random``."""

    def __init__(self, seed: int = DEFAULT_SEED, scale: float = DEFAULT_SCALE) -> None:
        self.rng = random.Random(f"harbor-mutual-{seed}")
        self.scale = scale
        self.agents: list[tuple[int, str, str, date]] = []
        self.agent_weight: dict[int, float] = {}
        self.holders: list[tuple[int, str, date | None, str, str]] = []
        self.policies: list[Policy] = []
        self.claims: list[Claim] = []

    # agents and policyholders ------------------------------------------------------------------------------------
    def make_agents(self) -> None:
        """40 agents with unique names, spread over the five regions, each with a productivity weight."""
        rng = self.rng
        names: set[str] = set()
        next_id = 1
        for region, n in AGENTS_PER_REGION.items():
            for _ in range(n):
                while True:
                    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                    if name not in names:
                        names.add(name)
                        break
                hired = date(2010, 1, 1) + timedelta(days=rng.randrange(days_between(date(2010, 1, 1), date(2024, 3, 1))))
                self.agents.append((next_id, name, region, hired))
                self.agent_weight[next_id] = lognormal(rng, 1.0, 0.6)
                next_id += 1

    def pick_agent(self, region: str, on: date) -> int:
        """An agent of ``region`` hired by ``on`` (any agent of the region if none), by productivity."""
        pool = [a for a in self.agents if a[2] == region and a[3] <= on] or [a for a in self.agents if a[2] == region]
        return self.rng.choices([a[0] for a in pool], weights=[self.agent_weight[a[0]] for a in pool])[0]

    def join_date(self) -> date:
        """A policyholder's first inception date, from three years before the data starts to its end.

        Before ``START`` the book is steady; from ``START`` on it grows, so later months get more new business.
        """
        months = 72
        weights = [1.0 if i < 36 else 1.0 + (i - 36) / 15 for i in range(months)]
        m = self.rng.choices(range(months), weights=weights)[0]
        first = date(BOOK_START.year + (BOOK_START.month - 1 + m) // 12, (BOOK_START.month - 1 + m) % 12 + 1, 1)
        return first + timedelta(days=self.rng.randrange(days_between(first, next_month(first))))

    def make_book(self) -> None:
        """Policyholders, their policies (one per line bought), coverages and lifecycles.

        The book is simulated from ``BOOK_START``; the warehouse keeps the policies still in force on ``START``
        or written after it, and the policyholders who hold one.
        """
        rng = self.rng
        n_holders = max(50, round(POLICYHOLDERS_AT_SCALE_1 * self.scale))
        state_codes = list(STATES)
        state_weights = [STATES[s][0] for s in state_codes]
        holders: list[tuple[date, str, str, date | None, str, list[Policy]]] = []
        for _ in range(n_holders):
            state = rng.choices(state_codes, weights=state_weights)[0]
            joined = self.join_date()
            agent = self.pick_agent(STATES[state][1], joined)
            if rng.random() < 0.8:
                segment = "individual"
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                birth: date | None = date(1945, 1, 1) + timedelta(
                    days=rng.randrange(days_between(date(1945, 1, 1), date(2004, 1, 1))))
                lines = [ln for ln, p in (("auto", 0.78), ("home", 0.5)) if rng.random() < p] or ["auto"]
            else:
                segment = "small business"
                suffix = rng.choice(("", "", " LLC", " Inc.", " Co."))
                name = f"{rng.choice(LAST_NAMES)} {rng.choice(TRADES)}{suffix}"
                birth = None
                lines = [ln for ln, p in (("commercial property", 0.7), ("liability", 0.6), ("auto", 0.25))
                         if rng.random() < p] or ["liability"]
            kept: list[Policy] = []
            for i, line in enumerate(lines):
                start = joined if i == 0 or rng.random() < 0.5 else joined + timedelta(days=rng.randint(20, 420))
                if start > END:
                    continue
                policy = Policy(id=0, holder=0, agent=agent, line=line, state=state, effective=start,
                                annual_premium=self.premium(line, state))
                self.add_coverages(policy)
                self.run_lifecycle(policy)
                if policy.expiration > START:
                    kept.append(policy)
            if kept:
                holders.append((min(p.effective for p in kept), name, segment, birth, state, kept))
        holders.sort(key=lambda h: h[0])
        for holder_id, (_, name, segment, birth, state, kept) in enumerate(holders, start=1):
            self.holders.append((holder_id, name, birth, state, segment))
            for policy in kept:
                policy.holder = holder_id
                self.policies.append(policy)
        self.policies.sort(key=lambda p: (p.effective, p.holder, p.line))
        for policy_id, policy in enumerate(self.policies, start=1):
            policy.id = policy_id

    def premium(self, line: str, state: str) -> float:
        """The annual premium of a new policy."""
        _, _, auto_f, prop_f = STATES[state]
        if line == "auto":
            return money(lognormal(self.rng, 1650 * auto_f, 0.25))
        if line == "home":
            return money(lognormal(self.rng, 1900 * prop_f, 0.3))
        if line == "commercial property":
            return money(lognormal(self.rng, 6000 * prop_f, 0.45))
        return money(lognormal(self.rng, 3800, 0.4))

    def add_coverages(self, policy: Policy) -> None:
        """The coverages a policy carries, with limits and deductibles fitting its line and state."""
        rng, cov = self.rng, policy.coverages
        coastal = policy.state in ("FL", "LA", "TX")
        if policy.line == "auto":
            cov["BI"] = (float(rng.choice((50000, 100000, 250000, 500000))), 0.0)
            cov["PD"] = (float(rng.choice((25000, 50000, 100000))), 0.0)
            has_coll = rng.random() < 0.75
            if has_coll:
                cov["COLL"] = (float(rng.randrange(12000, 65000, 500)), float(rng.choice((500, 500, 1000, 1000, 2000))))
            if rng.random() < (0.92 if has_coll else 0.3):
                cov["COMP"] = (float(rng.randrange(12000, 65000, 500)), float(rng.choice((250, 500, 500, 1000))))
            return
        if policy.line == "liability":
            cov["GL"] = (float(rng.choice((1000000, 1000000, 2000000))), float(rng.choice((0, 1000, 2500))))
            if rng.random() < 0.4:
                cov["PRODL"] = (float(rng.choice((1000000, 2000000))), float(rng.choice((1000, 2500, 5000))))
            return
        commercial = policy.line == "commercial property"
        dwelling = float(rng.randrange(500000, 5000000, 25000) if commercial else rng.randrange(180000, 950000, 5000))
        cov["FIRE"] = (dwelling, float(rng.choice((1000, 2500, 5000) if commercial else (1000, 1000, 2500))))
        wind_deductible = round(dwelling * rng.choice((0.02, 0.05))) if coastal else rng.choice((1000, 2500, 5000))
        cov["WIND"] = (dwelling, float(wind_deductible))
        cov["THEFT"] = (float(rng.randrange(100000, 500000, 10000) if commercial else rng.randrange(10000, 60000, 5000)),
                        float(rng.choice((500, 1000, 2500))))
        flood_take_up = {"FL": 0.45, "LA": 0.5, "TX": 0.3, "NC": 0.2}.get(policy.state, 0.08)
        if rng.random() < flood_take_up:
            cov["FLOOD"] = (float(min(dwelling, 250000 if not commercial else 500000)), float(rng.choice((1250, 2000, 5000))))

    def run_lifecycle(self, policy: Policy) -> None:
        """Renew term by term until the policy lapses, is cancelled, or is in force at the data's end."""
        rng = self.rng
        renew = {"auto": 0.8, "home": 0.87, "commercial property": 0.85, "liability": 0.83}[policy.line]
        start = policy.effective
        while True:
            policy.terms.append(start)
            end = add_years(start, 1)
            if rng.random() < 0.05:
                cancelled = start + timedelta(days=rng.randint(20, 330))
                if cancelled <= END:
                    policy.status, policy.expiration = "cancelled", cancelled
                    return
            if end > END:
                policy.status, policy.expiration = "active", end
                return
            if rng.random() >= renew:
                policy.status, policy.expiration = "lapsed", end
                return
            start = end

    # premiums ----------------------------------------------------------------------------------------------------
    def premium_rows(self) -> list[tuple[int, date, float, float, float]]:
        """One row per policy and month with premium activity: written, earned and earned exposure."""
        rows: list[tuple[int, date, float, float, float]] = []
        for p in self.policies:
            acc: dict[date, list[float]] = {}
            for start in p.terms:
                term_end = add_years(start, 1)
                term_days = days_between(start, term_end)
                acc.setdefault(month_start(start), [0.0, 0.0, 0.0])[0] += p.annual_premium
                stop = min(term_end, p.expiration, END + timedelta(days=1))
                if p.status == "cancelled" and start <= p.expiration < term_end:
                    unearned = p.annual_premium * days_between(p.expiration, term_end) / term_days
                    acc.setdefault(month_start(p.expiration), [0.0, 0.0, 0.0])[0] -= unearned
                cursor = start
                while cursor < stop:
                    nxt = min(next_month(cursor), stop)
                    days = days_between(cursor, nxt)
                    slot = acc.setdefault(month_start(cursor), [0.0, 0.0, 0.0])
                    slot[1] += p.annual_premium * days / term_days
                    slot[2] += days / term_days
                    cursor = nxt
            for month in sorted(m for m in acc if m >= START):
                w, e, x = acc[month]
                rows.append((p.id, month, money(w), money(e), round(x, 6)))
        return rows

    # claims ------------------------------------------------------------------------------------------------------
    def attritional_claims(self) -> None:
        """Everyday claims: a Poisson count per policy and coverage over its cover, thinned by season."""
        rng = self.rng
        for p in self.policies:
            first, last = max(p.effective, START), p.cover_end
            if last < first:
                continue
            span = days_between(first, last) + 1
            for code, rate in CLAIM_RATES[p.line].items():
                if code not in p.coverages:
                    continue
                season = SEASON.get(code)
                peak = max(season) if season else 1.0
                scale = 1.6 if p.line == "commercial property" and code == "THEFT" else 1.0
                for _ in range(poisson(rng, rate * scale * peak * span / 365.25)):
                    day = first + timedelta(days=rng.randrange(span))
                    if season and rng.random() > season[day.month - 1] / peak:
                        continue
                    self.new_claim(p, code, day, pick(rng, CAUSES[code]), None)

    def catastrophe_claims(self) -> None:
        """Bursts of claims from the policies in force in the states a catastrophe hit."""
        rng = self.rng
        for cat in CATASTROPHES:
            for p in self.policies:
                base = cat.hit.get(p.state)
                if not base or not p.in_force(cat.start_date):
                    continue
                day = cat.start_date + timedelta(days=rng.choice((0, 0, 0, 1, 1, 2)))
                if not p.in_force(day):
                    day = cat.start_date
                if p.line in ("home", "commercial property"):
                    if cat.kind == "flood":
                        if "FLOOD" in p.coverages and rng.random() < base * 4:
                            self.new_claim(p, "FLOOD", day, "flood", cat)
                        continue
                    if rng.random() < base:
                        code = {"hurricane": "WIND", "hail": "WIND", "wildfire": "FIRE"}[cat.kind]
                        cause = {"hurricane": "wind", "hail": "hail", "wildfire": "wildfire"}[cat.kind]
                        self.new_claim(p, code, day, cause, cat)
                        if cat.kind == "hurricane" and "FLOOD" in p.coverages and rng.random() < 0.45:
                            self.new_claim(p, "FLOOD", day, "flood", cat)
                elif p.line == "auto" and "COMP" in p.coverages and rng.random() < base * cat.auto_factor:
                    cause = {"hurricane": "flood", "flood": "flood", "hail": "hail", "wildfire": "wildfire"}[cat.kind]
                    self.new_claim(p, "COMP", day, cause, cat)

    def new_claim(self, p: Policy, code: str, loss: date, cause: str, cat: Catastrophe | None) -> None:
        """Report, settle (or deny) and pay one claim; a claim reported after the data's end is left out."""
        rng = self.rng
        lag = rng.expovariate(1.0 / (12.0 if cat else REPORT_LAG[code]))
        reported = loss + timedelta(days=int(lag))
        if reported > END or loss < START:
            return
        claim = Claim(policy=p, coverage=code, loss_date=loss, reported=reported, cause=cause, cat=cat)
        limit, deductible = p.coverages[code]
        commercial = p.line == "commercial property"
        if rng.random() < DENIAL[code] * (0.5 if cat else 1.0):
            decided = reported + timedelta(days=rng.randint(10, 75))
            for _ in range(rng.choice((1, 2, 2, 3))):
                self.pay(claim, "expense", lognormal(rng, 450, 0.5), reported, min(decided, END))
            if decided <= END:
                claim.status, claim.closed = "denied", decided
            self.claims.append(claim)
            return
        median, sigma = SEVERITY[code]
        if cat is not None and code != "COMP":
            median, sigma = cat.severity, 1.0
        elif cat is not None:
            median = {"hail": 4200, "flood": 14000, "hurricane": 12000, "wildfire": 24000}[cat.kind]
        if commercial and code in ("FIRE", "WIND", "THEFT", "FLOOD"):
            median *= 2.2
        ground_up = lognormal(rng, median, sigma)
        indemnity = max(0.0, min(ground_up, limit) - deductible)
        low, high = SETTLE_DAYS[code]
        if cat is not None:
            low, high = low + 20, high + 90
        settle = reported + timedelta(days=rng.randint(low, high))
        # indemnity in one or more parts, the last on the settlement day
        if code in ("BI", "GL", "PRODL"):
            parts = 1 + poisson(rng, 2.5)
        elif indemnity > 20000:
            parts = rng.randint(2, 6)
        else:
            parts = rng.choice((1, 1, 2, 2, 3))
        if indemnity > 0:
            shares = [rng.uniform(0.5, 1.5) for _ in range(parts)]
            total = sum(shares)
            for i, share in enumerate(shares):
                when = settle if i == parts - 1 else reported + timedelta(
                    days=rng.randint(5, max(6, days_between(reported, settle) - 1)))
                self.pay(claim, "indemnity", indemnity * share / total, when, when)
        n_expense = (4 + poisson(rng, 5.0)) if code in ("BI", "GL", "PRODL") else (2 + poisson(rng, 2.5))
        expense_total = indemnity * rng.uniform(0.05, 0.12) + 120 * n_expense
        for _ in range(n_expense):
            self.pay(claim, "expense", expense_total / n_expense * rng.uniform(0.6, 1.4), reported, settle)
        if settle <= END:
            claim.status, claim.closed = "closed", settle
            self.recoveries(claim, code, indemnity, settle)
        self.claims.append(claim)

    def recoveries(self, claim: Claim, code: str, indemnity: float, settled: date) -> None:
        """Salvage and subrogation after a claim settles (stored as positive amounts)."""
        rng = self.rng
        if indemnity <= 0 or claim.cat is not None:
            return
        if code == "COLL" and rng.random() < 0.3:
            when = settled + timedelta(days=rng.randint(30, 240))
            self.pay(claim, "subrogation", indemnity * rng.uniform(0.4, 1.0), when, when)
        if code in ("COLL", "COMP") and (indemnity > 9000 or claim.cause == "theft") and rng.random() < 0.55:
            when = settled + timedelta(days=rng.randint(10, 60))
            self.pay(claim, "salvage", indemnity * rng.uniform(0.08, 0.25), when, when)
        if code == "FIRE" and rng.random() < 0.06:
            when = settled + timedelta(days=rng.randint(90, 400))
            self.pay(claim, "subrogation", indemnity * rng.uniform(0.2, 0.6), when, when)

    def pay(self, claim: Claim, kind: str, amount: float, earliest: date, latest: date) -> None:
        """Record a payment on a day between ``earliest`` and ``latest`` when it falls inside the data."""
        span = max(0, days_between(earliest, latest))
        when = earliest + timedelta(days=self.rng.randint(0, span)) if span else earliest
        amount = money(max(amount, 25.0))
        if START <= when <= END:
            claim.payments.append((when, kind, amount))

    def run(self) -> None:
        """The whole simulation."""
        self.make_agents()
        self.make_book()
        self.attritional_claims()
        self.catastrophe_claims()

    # rows --------------------------------------------------------------------------------------------------------
    def rows(self) -> dict[str, list[tuple[object, ...]]]:
        """Every table's rows, in load order, ids assigned in date order."""
        claims = sorted(self.claims, key=lambda c: (c.reported, c.loss_date, c.policy.id, c.coverage))
        claim_rows: list[tuple[object, ...]] = []
        payments: list[tuple[date, int, str, float]] = []
        for claim_id, c in enumerate(claims, start=1):
            claim_rows.append((claim_id, f"CLM-{claim_id:06d}", c.policy.id, COVERAGE_ID[c.coverage],
                               c.cat.id if c.cat else None, c.loss_date, c.reported, c.closed, c.status, c.cause))
            payments.extend((when, claim_id, kind, amount) for when, kind, amount in c.payments)
        payments.sort(key=lambda r: (r[0], r[1], r[2]))
        return {
            "agents": [tuple(a) for a in self.agents],
            "policyholders": [tuple(h) for h in self.holders],
            "policies": [(p.id, f"P-{p.id:06d}", p.holder, p.agent, p.line, p.status, p.effective, p.expiration,
                          p.annual_premium) for p in self.policies],
            "coverages": [tuple(c) for c in COVERAGES],
            "policy_coverages": [(p.id, COVERAGE_ID[code], limit, deductible)
                                 for p in self.policies for code, (limit, deductible)
                                 in sorted(p.coverages.items(), key=lambda kv: COVERAGE_ID[kv[0]])],
            "catastrophes": [(c.id, c.name, c.kind, c.start_date) for c in CATASTROPHES],
            "claims": claim_rows,
            "claim_payments": [(i, claim_id, when, kind, amount)
                               for i, (when, claim_id, kind, amount) in enumerate(payments, start=1)],
            "premiums": list(self.premium_rows()),
        }


# --- loading and the project ----------------------------------------------------------------------------------

def load_warehouse(rows: dict[str, list[tuple[object, ...]]], db_path: Path) -> dict[str, int]:
    """Write the rows into a new DuckDB file (through temporary CSVs, typed by the DDL); returns row counts."""
    import duckdb

    db_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (db_path, db_path.with_name(db_path.name + ".wal")):
        stale.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    con = duckdb.connect(str(db_path))
    try:
        with tempfile.TemporaryDirectory(prefix="insurance-") as tmp:
            for table, ddl in TABLES.items():
                path = Path(tmp) / f"{table}.csv"
                with path.open("w", newline="", encoding="utf-8") as fh:
                    writer = csv.writer(fh)
                    for row in rows[table]:
                        writer.writerow(["" if v is None else v for v in row])
                con.execute(f"CREATE TABLE {table} ({ddl})")
                con.execute(f"INSERT INTO {table} SELECT * FROM read_csv(?, header = false, all_varchar = true)",
                            [str(path)])
                counts[table] = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return counts


def write_project(project_dir: Path, today: date = TODAY) -> Path:
    """Copy the semantic layer into ``project_dir/semantic`` and write ``lore.yaml``."""
    return write_eval_project(project_dir, SEMANTIC_DIR, name="insurance",
                              description="Harbor Mutual: a small property & casualty insurer (synthetic); LORE's third eval domain.", today=today)


def build(project_dir: Path, seed: int = DEFAULT_SEED, scale: float = DEFAULT_SCALE) -> dict[str, object]:
    """Simulate, load and write the whole project; returns a small report."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    project_dir = Path(project_dir)
    project_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sim = Simulation(seed=seed, scale=scale)
    sim.run()
    counts = load_warehouse(sim.rows(), project_dir / "warehouse.duckdb")
    write_project(project_dir, TODAY)
    return {"counts": counts, "first": START, "last": END, "today": TODAY,
            "seconds": time.perf_counter() - started, "seed": seed, "scale": scale}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.insurance.warehouse", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="the project folder to create (or refresh)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE,
                        help=f"multiplies the number of policyholders (default {DEFAULT_SCALE})")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    report = build(args.dir, seed=args.seed, scale=args.scale)
    print_report(f"insurance: seed {args.seed}, scale {args.scale}, built in {report['seconds']:.1f} s -> {args.dir}",
                 report, what="data", width=16)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
