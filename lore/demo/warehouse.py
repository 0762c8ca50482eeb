"""The deterministic demo warehouse generator.

Builds the DuckDB warehouse described in the demo warehouse contract
(``demo-warehouse.md``: table and column names, types and value domains are fixed) entirely with DuckDB
SQL: ``range()`` for rows and ``hash(seed, salt, key...)`` for pseudo randomness,
never ``random()`` and never Python loops over rows. Every value is a pure
function of the seed, the scale and row keys, and every table is inserted in
primary-key order, so the same seed and scale give identical table contents
whatever the thread count (for one DuckDB version: ``hash`` is not promised to
stay the same across DuckDB releases).

How the data is shaped, so that answers and charts are worth looking at:

- The service launches on 2025-01-01: a launch wave of sign-ups, then growth
  with yearly seasonality (holiday peaks) and weekend bumps. Account ids are
  assigned in sign-up order, so "accounts signed up by day d" is ``1..K(d)``
  and every fact row picks an account that already existed.
- Streaming volume follows the signed-up base with weekly (weekend peaks) and
  yearly (December holidays high, July low) seasonality, a partial outage on
  2025-08-14 and a live-event spike on 2026-02-08. Countries are skewed (the
  US is about a fifth of accounts). Catalogue titles have Zipf-like
  popularity; new releases (every Friday) get launch spikes and a few become
  hits. Premium accounts stream more often and longer; tv sessions are longer
  than mobile ones; mobile-first countries stream more on phones.
- Experiments: accounts join tests by hash; in ``homepage_row_order_2025q3``
  cell B streams about 3% more, in ``continue_watching_rank_2026q1`` cell C
  about 2% less.
- Games launch over time (install spikes after launch, boosted while
  user-acquisition campaigns spend); game sessions come from accounts that
  installed the game, mostly recent installers.
- Cloud costs grow per team, with a runaway-compute incident (ml-platform,
  2026-03-09..13, utilisation collapses) and an optimisation
  (encoding-pipeline compute from 2025-10-01: cheaper and busier).
- Cash spend walks each production through its phases in order, month by
  month, splitting a log-normal budget; a third of productions are TBD slots
  launching after the data ends.
- ASR word error rates differ by language and drop after a model upgrade on
  2025-11-03; about 1% of evaluations have badly out-of-sync timing.

Dimension dates (title releases, game launches, production launches) may lie
outside the fact date range; every fact date lies in it.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from types import MappingProxyType

from lore.errors import OperatorError
from lore.execute.build import BuildConnection, BuildIOError, open_build_connection

# --- the contract ---------------------------------------------------------------

#: First and last fact date (inclusive).
DATE_START = date(2025, 1, 1)
DATE_END = date(2026, 10, 31)

#: Tables in build order (dimensions first); also the order progress is reported in.
TABLES: tuple[str, ...] = (
    "countries",
    "teams",
    "experiments",
    "games",
    "titles",
    "productions",
    "accounts",
    "streaming_sessions",
    "ab_allocations",
    "ua_campaigns",
    "game_installs",
    "game_sessions",
    "cloud_costs",
    "cash_spend",
    "asr_evaluations",
)

#: Largest scale accepted (scale 100 is about 100 million streaming sessions).
MAX_SCALE = 100.0

# --- sizes ----------------------------------------------------------------------

#: Dimension tables whose size never changes with the scale.
FIXED_SIZES: Mapping[str, int] = MappingProxyType({
    "countries": 20,
    "teams": 25,
    "experiments": 10,
    "games": 30,
    "titles": 2000,
    "productions": 400,
})
#: Tables whose exact size is ``round(base * scale)`` (at least 1).
SCALED_SIZES: Mapping[str, int] = MappingProxyType({
    "accounts": 50_000,
    "streaming_sessions": 1_000_000,
    "ua_campaigns": 3_000,
    "game_installs": 100_000,
    "game_sessions": 400_000,
    "asr_evaluations": 20_000,
})
#: Tables whose size is drawn, not fixed: the expected size (per account for
#: ``ab_allocations``, absolute for the others), measured over seeds.
AB_ALLOCATIONS_PER_ACCOUNT = 1.53
EXPECTED_CLOUD_COSTS = 146_000
EXPECTED_CASH_SPEND = 5_650

N_NEW_TITLES = 500  # titles released within the date range, on Fridays
N_TBD_PRODUCTIONS = 133  # about a third of the 400 productions
TITLE_TYPE_SIZES: Mapping[str, int] = MappingProxyType(
    {"movie": 900, "series": 700, "documentary": 250, "standup": 150}
)

# --- small dimensions, as data -------------------------------------------------

#: (iso code, name, region, relative weight of accounts)
COUNTRIES: tuple[tuple[str, str, str, float], ...] = (
    ("US", "United States", "UCAN", 22.0),
    ("CA", "Canada", "UCAN", 4.0),
    ("MX", "Mexico", "LATAM", 6.0),
    ("BR", "Brazil", "LATAM", 9.0),
    ("AR", "Argentina", "LATAM", 3.0),
    ("CO", "Colombia", "LATAM", 2.5),
    ("GB", "United Kingdom", "EMEA", 7.0),
    ("FR", "France", "EMEA", 5.0),
    ("DE", "Germany", "EMEA", 6.0),
    ("ES", "Spain", "EMEA", 4.0),
    ("IT", "Italy", "EMEA", 3.5),
    ("NL", "Netherlands", "EMEA", 2.0),
    ("PL", "Poland", "EMEA", 2.0),
    ("TR", "Turkey", "EMEA", 2.0),
    ("ZA", "South Africa", "EMEA", 1.5),
    ("IN", "India", "APAC", 6.0),
    ("JP", "Japan", "APAC", 4.0),
    ("KR", "South Korea", "APAC", 3.0),
    ("AU", "Australia", "APAC", 3.0),
    ("ID", "Indonesia", "APAC", 2.5),
)

#: (team name, org): five teams in each of the five orgs.
TEAMS: tuple[tuple[str, str], ...] = (
    ("playback-core", "streaming"),
    ("encoding-pipeline", "streaming"),
    ("cdn-edge", "streaming"),
    ("recs-ranking", "streaming"),
    ("search-discovery", "streaming"),
    ("studio-finance", "studio"),
    ("production-tools", "studio"),
    ("dubbing-ml", "studio"),
    ("content-planning", "studio"),
    ("vfx-render", "studio"),
    ("games-platform", "games"),
    ("games-backend", "games"),
    ("games-analytics", "games"),
    ("ua-marketing", "games"),
    ("games-live-ops", "games"),
    ("data-platform", "data"),
    ("data-warehouse", "data"),
    ("ml-platform", "data"),
    ("experimentation", "data"),
    ("analytics-eng", "data"),
    ("appsec", "security"),
    ("identity", "security"),
    ("detection-response", "security"),
    ("secrets-mgmt", "security"),
    ("cloud-security", "security"),
)

#: (test_id, test_name, start, end, share of accounts allocated, number of cells,
#:  cell with a real effect on streaming hours, its multiplier)
EXPERIMENTS: tuple[tuple[int, str, date, date, float, int, str | None, float | None], ...] = (
    (1, "homepage_row_order_2025q1", date(2025, 2, 3), date(2025, 3, 16), 0.20, 2, None, None),
    (2, "autoplay_previews_2025q2", date(2025, 4, 7), date(2025, 5, 25), 0.30, 2, None, None),
    (3, "search_ranking_v2_2025q2", date(2025, 5, 5), date(2025, 6, 29), 0.15, 3, None, None),
    (4, "download_nudge_2025q3", date(2025, 7, 7), date(2025, 8, 17), 0.10, 2, None, None),
    (5, "homepage_row_order_2025q3", date(2025, 8, 25), date(2025, 10, 19), 0.35, 2, "B", 1.03),
    (6, "kids_profile_prompt_2025q4", date(2025, 10, 27), date(2025, 12, 14), 0.12, 2, None, None),
    (7, "continue_watching_rank_2026q1", date(2026, 1, 12), date(2026, 3, 8), 0.25, 3, "C", 0.98),
    (8, "plan_picker_layout_2026q1", date(2026, 2, 2), date(2026, 3, 29), 0.20, 3, None, None),
    (9, "trailer_autoplay_2026q2", date(2026, 4, 13), date(2026, 6, 7), 0.30, 2, None, None),
    (10, "recommendation_diversity_2026q3", date(2026, 7, 6), date(2026, 9, 13), 0.40, 3, None, None),
)

# --- word lists for names --------------------------------------------------------

ADJECTIVES: tuple[str, ...] = (
    "Silent", "Broken", "Hidden", "Golden", "Crimson", "Last", "Lost", "Midnight", "Wild", "Distant",
    "Frozen", "Burning", "Quiet", "Hollow", "Velvet", "Secret", "Electric", "Northern", "Iron", "Paper",
    "Glass", "Savage", "Gentle", "Bitter", "Lucky", "Restless", "Endless", "Silver", "Scarlet", "Forgotten",
    "Falling", "Rising", "Sacred", "Fragile", "Hungry", "Brave", "Wicked", "Little", "Lonely", "Dark",
    "Bright", "Shattered", "Perfect", "Final", "Borrowed", "Stolen", "Sleeping", "Dangerous", "Sweet", "Black",
)  # fmt: skip
NOUNS: tuple[str, ...] = (
    "Harbor", "Kingdom", "River", "Promise", "Garden", "Empire", "Witness", "Signal", "Horizon", "Orchard",
    "Frontier", "Circle", "Mirror", "Lighthouse", "Storm", "Season", "Shadow", "Letter", "Island", "Crown",
    "Bridge", "Winter", "Summer", "Valley", "Reckoning", "Inheritance", "Departure", "Descent", "Verdict", "Covenant",
    "Tide", "Ember", "Fortune", "Echo", "Hunter", "Stranger", "Dynasty", "Kitchen", "Academy", "Getaway",
    "Protocol", "Paradox", "Orbit", "Nomad", "Heist", "Rebellion", "Sanctuary", "Labyrinth", "Masquerade", "Compass",
    "Archive", "Voyage", "Alibi", "Outpost", "Carnival", "Requiem", "Wedding", "Engine", "Lantern", "Oracle",
)  # fmt: skip
PLACES: tuple[str, ...] = (
    "Lisbon", "Seoul", "Havana", "Marrakesh", "Oslo", "Osaka", "Bogota", "Mumbai", "Naples", "Berlin",
    "Buenos Aires", "Cape Town", "Istanbul", "Kyoto", "Dublin", "Montreal", "Sicily", "Patagonia", "Yukon", "Manila",
    "Valparaiso", "Tangier", "Sarajevo", "Reykjavik", "Oaxaca", "Busan", "Goa", "Rio", "Detroit", "Memphis",
)  # fmt: skip
FIRST_NAMES: tuple[str, ...] = (
    "Maya", "Dev", "Lucia", "Tomas", "Aisha", "Kenji", "Priya", "Marco", "Zoe", "Omar",
    "Hana", "Jonah", "Ines", "Rafael", "Nadia", "Felix", "Amara", "Leo", "Sofia", "Kwame",
    "Yuna", "Diego", "Clara", "Ravi", "Elena", "Malik", "Freya", "Mateo", "Noor", "Sam",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Ortiz", "Okafor", "Lindqvist", "Tanaka", "Moreau", "Kapoor", "Silva", "Novak", "Haddad", "Kim",
    "Fischer", "Rossi", "Mensah", "Park", "Delgado", "Walsh", "Nakamura", "Costa", "Ibrahim", "Becker",
    "Reyes", "Sato", "Laurent", "Mehta", "Brennan", "Yilmaz", "Andersen", "Vargas", "Chen", "Dube",
)  # fmt: skip
STANDUP_TAGS: tuple[str, ...] = (
    "Unfiltered", "Growing Pains", "No Notes", "Overthinking It", "Family Business", "Late Bloomer",
    "Small Talk", "Mixed Signals", "Worst Case", "Plan B", "Unsupervised", "Second Opinion",
    "Home Remedies", "Good Intentions", "The Long Way",
)  # fmt: skip
GAME_FIRST_WORDS: tuple[str, ...] = (
    "Star", "Tiny", "Crystal", "Shadow", "Pixel", "Neon", "Kingdom", "Dragon",
    "Super", "Dream", "Ocean", "Ember", "Lucky", "Wild", "Cosmic",
)  # fmt: skip
#: second word of a game name, and the genre it implies
GAME_SECOND_WORDS: tuple[tuple[str, str], ...] = (
    ("Match", "puzzle"), ("Blocks", "puzzle"), ("Riddles", "puzzle"),
    ("Blast", "action"), ("Arena", "action"), ("Heist", "action"),
    ("Saga", "narrative"), ("Tales", "narrative"), ("Chronicles", "narrative"),
    ("League", "sports"), ("Kart", "sports"), ("Striker", "sports"),
    ("Garden", "casual"), ("Cafe", "casual"), ("Pets", "casual"),
)  # fmt: skip

# --- pure helpers ---------------------------------------------------------------


def table_counts_for_scale(scale: float) -> dict[str, int]:
    """Expected row counts per table at ``scale``, in build order.

    Exact for the fixed dimensions and for ``accounts``, ``streaming_sessions``,
    ``ua_campaigns``, ``game_installs``, ``game_sessions`` and
    ``asr_evaluations``; an expectation (within a few percent) for
    ``ab_allocations``, ``cloud_costs`` and ``cash_spend``.

    >>> counts = table_counts_for_scale(1)
    >>> counts["streaming_sessions"], counts["accounts"], counts["titles"]
    (1000000, 50000, 2000)
    >>> table_counts_for_scale(0.01)["streaming_sessions"], table_counts_for_scale(0.01)["countries"]
    (10000, 20)
    >>> list(table_counts_for_scale(2)) == list(TABLES)
    True
    >>> table_counts_for_scale(0)
    Traceback (most recent call last):
    ...
    lore.errors.OperatorError: The demo warehouse scale must be greater than 0, got 0.
    Use for example --scale 1 (about a million streaming sessions) or --scale 0.01 for a tiny one.
    """
    scale = validate_scale(scale)
    counts: dict[str, int] = {}
    for table in TABLES:
        if table in FIXED_SIZES:
            counts[table] = FIXED_SIZES[table]
        elif table in SCALED_SIZES:
            counts[table] = scaled_count(SCALED_SIZES[table], scale)
        elif table == "ab_allocations":
            counts[table] = round(scaled_count(SCALED_SIZES["accounts"], scale) * AB_ALLOCATIONS_PER_ACCOUNT)
        elif table == "cloud_costs":
            counts[table] = EXPECTED_CLOUD_COSTS
        else:
            counts[table] = EXPECTED_CASH_SPEND
    return counts


def scaled_count(base: int, scale: float) -> int:
    """``base * scale`` rounded, never below 1.

    >>> scaled_count(50_000, 0.01), scaled_count(3_000, 0.0001), scaled_count(1_000_000, 10)
    (500, 1, 10000000)
    """
    return max(1, round(base * scale))


def validate_scale(scale: float) -> float:
    """Return ``scale`` as a float if it is usable, else raise :class:`OperatorError`.

    >>> validate_scale(0.5)
    0.5
    >>> validate_scale(101)
    Traceback (most recent call last):
    ...
    lore.errors.OperatorError: The demo warehouse scale must be at most 100, got 101.
    Scale 1 is about a million streaming sessions; scale 100 already takes minutes and gigabytes.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise OperatorError(
            f"The demo warehouse scale must be a finite number, got {scale!r}.",
            hint="Use for example --scale 1 or --scale 0.01.",
        )
    if scale <= 0:
        raise OperatorError(
            f"The demo warehouse scale must be greater than 0, got {scale}.",
            hint="Use for example --scale 1 (about a million streaming sessions) or --scale 0.01 for a tiny one.",
        )
    if scale > MAX_SCALE:
        raise OperatorError(
            f"The demo warehouse scale must be at most {MAX_SCALE:g}, got {scale}.",
            hint="Scale 1 is about a million streaming sessions; scale 100 already takes minutes and gigabytes.",
        )
    return float(scale)


def validate_seed(seed: int) -> int:
    """Return ``seed`` if it is a usable seed (an int in [0, 2**63)), else raise :class:`OperatorError`.

    >>> validate_seed(42)
    42
    >>> validate_seed(-1)
    Traceback (most recent call last):
    ...
    lore.errors.OperatorError: The demo warehouse seed must be an integer from 0 to 2**63-1, got -1.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise OperatorError(f"The demo warehouse seed must be an integer from 0 to 2**63-1, got {seed!r}.")
    return seed


def weighted_buckets(weights: Sequence[float], size: int = 1000) -> tuple[int, ...]:
    """Spread ``size`` buckets over choices in proportion to ``weights`` (largest remainder).

    Returns the 1-based choice index of every bucket, so a uniform number ``u`` in
    [0, 1) picks choice ``buckets[floor(u * size)]``. Every choice with a positive
    weight gets at least one bucket.

    >>> weighted_buckets([3, 1], size=8)
    (1, 1, 1, 1, 1, 1, 2, 2)
    >>> b = weighted_buckets([22, 0.01, 5], size=100)
    >>> len(b), b.count(2) >= 1
    (100, True)
    """
    if size < len(weights) or not weights or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("need positive weights and at least one bucket per choice")
    total = sum(weights)
    exact = [w * size / total for w in weights]
    counts = [max(1, math.floor(x)) if w > 0 else 0 for x, w in zip(exact, weights)]
    by_remainder = sorted(range(len(weights)), key=lambda k: (-(exact[k] - math.floor(exact[k])), k))
    k = 0
    while sum(counts) < size:
        counts[by_remainder[k % len(weights)]] += 1
        k += 1
    while sum(counts) > size:
        largest = max(range(len(counts)), key=lambda j: (counts[j], -j))
        counts[largest] -= 1
    return tuple(choice + 1 for choice, n in enumerate(counts) for _ in range(n))


def build_variables(scale: float, seed: int) -> dict[str, object]:
    """The session variables the generator's SQL reads through ``getvariable``.

    >>> v = build_variables(0.01, 7)
    >>> v["lore_seed"], v["lore_n_accounts"], v["lore_n_days"], v["lore_n_months"]
    (7, 500, 669, 22)
    """
    n_days = (DATE_END - DATE_START).days + 1
    n_months = (DATE_END.year - DATE_START.year) * 12 + DATE_END.month - DATE_START.month + 1
    return {
        "lore_seed": seed,
        "lore_start": DATE_START,
        "lore_n_days": n_days,
        "lore_n_months": n_months,
        "lore_n_accounts": scaled_count(SCALED_SIZES["accounts"], scale),
        "lore_n_sessions": scaled_count(SCALED_SIZES["streaming_sessions"], scale),
        "lore_n_campaigns": scaled_count(SCALED_SIZES["ua_campaigns"], scale),
        "lore_n_installs": scaled_count(SCALED_SIZES["game_installs"], scale),
        "lore_n_game_sessions": scaled_count(SCALED_SIZES["game_sessions"], scale),
        "lore_n_asr": scaled_count(SCALED_SIZES["asr_evaluations"], scale),
        "lore_n_games": FIXED_SIZES["games"],
        "lore_n_new_titles": N_NEW_TITLES,
        "lore_n_catalog_titles": FIXED_SIZES["titles"] - N_NEW_TITLES,
        "lore_n_movies": TITLE_TYPE_SIZES["movie"],
        "lore_n_series": TITLE_TYPE_SIZES["series"],
        "lore_n_documentaries": TITLE_TYPE_SIZES["documentary"],
        "lore_n_standups": TITLE_TYPE_SIZES["standup"],
        "lore_n_titled_productions": FIXED_SIZES["productions"] - N_TBD_PRODUCTIONS,
        "lore_n_tbd_productions": N_TBD_PRODUCTIONS,
        "lore_country_codes": [c[0] for c in COUNTRIES],
        "lore_country_buckets": list(weighted_buckets([c[3] for c in COUNTRIES], 1000)),
        "lore_adjectives": list(ADJECTIVES),
        "lore_nouns": list(NOUNS),
        "lore_places": list(PLACES),
        "lore_first_names": list(FIRST_NAMES),
        "lore_last_names": list(LAST_NAMES),
        "lore_standup_tags": list(STANDUP_TAGS),
        "lore_game_first": list(GAME_FIRST_WORDS),
        "lore_game_second": [w for w, _ in GAME_SECOND_WORDS],
        "lore_game_second_genre": [g for _, g in GAME_SECOND_WORDS],
    }


# --- SQL: helpers shared by every step (temporary, never stored) ---------------------

_MACROS: tuple[str, ...] = (
    # A uniform number in (0, 1) from the seed, a salt and two integer keys. DuckDB's
    # multi-argument hash only XOR-combines the argument hashes (values for two salts
    # come out strongly correlated), so the combined hash is hashed once more to mix it.
    """CREATE TEMP MACRO _u(salt, k1, k2) AS
        ((hash(hash(getvariable('lore_seed'), salt, (k1)::BIGINT, (k2)::BIGINT)) >> 11)::DOUBLE + 0.5)
        / 9007199254740992.0""",
    # The same with a text key.
    """CREATE TEMP MACRO _ut(salt, key, k2) AS
        ((hash(hash(getvariable('lore_seed'), salt, (key)::VARCHAR, (k2)::BIGINT)) >> 11)::DOUBLE + 0.5)
        / 9007199254740992.0""",
    # Standard normal numbers (Box-Muller).
    """CREATE TEMP MACRO _z(salt, k1, k2) AS
        sqrt(-2.0 * ln(_u(salt || '/r', k1, k2))) * cos(2.0 * pi() * _u(salt || '/t', k1, k2))""",
    """CREATE TEMP MACRO _zt(salt, key, k2) AS
        sqrt(-2.0 * ln(_ut(salt || '/r', key, k2))) * cos(2.0 * pi() * _ut(salt || '/t', key, k2))""",
    # Day index <-> date, and the position of a day in the range (0 .. 1).
    "CREATE TEMP MACRO _day(i) AS getvariable('lore_start') + (i)::INTEGER",
    "CREATE TEMP MACRO _idx(d) AS date_diff('day', getvariable('lore_start'), d)::INTEGER",
    "CREATE TEMP MACRO _t(i) AS (i) / (getvariable('lore_n_days') - 1.0)",
    "CREATE TEMP MACRO _month_start(m) AS make_date(year(getvariable('lore_start')) + (m) // 12, (m) % 12 + 1, 1)",
    # Country by weight from a uniform number.
    """CREATE TEMP MACRO _country_pick(u) AS getvariable('lore_country_codes')[
        getvariable('lore_country_buckets')[1 + floor((u) * 1000)::INTEGER]]""",
    # Account attributes are pure functions of the account id, so facts can use them
    # without a join. The first 20 accounts cover the 20 countries, one each.
    """CREATE TEMP MACRO _country(a) AS CASE WHEN a <= 20 THEN getvariable('lore_country_codes')[(a)::INTEGER]
        ELSE _country_pick(_u('country', a, 0)) END""",
    """CREATE TEMP MACRO _plan(a) AS CASE WHEN _u('plan', a, 0) < 0.36 THEN 'basic_with_ads'
        WHEN _u('plan', a, 0) < 0.77 THEN 'standard' ELSE 'premium' END""",
    """CREATE TEMP MACRO _age(a) AS CASE WHEN _u('age', a, 0) < 0.17 THEN '18-24'
        WHEN _u('age', a, 0) < 0.44 THEN '25-34' WHEN _u('age', a, 0) < 0.68 THEN '35-44'
        WHEN _u('age', a, 0) < 0.86 THEN '45-54' ELSE '55+' END""",
    # How likely an account is to be the one streaming (premium streams more).
    """CREATE TEMP MACRO _activity(a) AS _u('activity', a, 0)
        + CASE _plan(a) WHEN 'premium' THEN 0.35 WHEN 'standard' THEN 0.15 ELSE 0.0 END""",
    # How likely an account is to install a game (younger accounts more).
    """CREATE TEMP MACRO _gamer(a) AS _u('gamer', a, 0)
        + CASE _age(a) WHEN '18-24' THEN 0.45 WHEN '25-34' THEN 0.3 WHEN '35-44' THEN 0.15 ELSE 0.0 END""",
    "CREATE TEMP MACRO _in_test(t, a, rate) AS _u('ab_in', t, a) < rate",
    "CREATE TEMP MACRO _cell(t, a, n) AS ['A', 'B', 'C'][1 + floor(_u('ab_cell', t, a) * n)::INTEGER]",
    "CREATE TEMP MACRO _weekend(d) AS isodow(d) >= 6",
    "CREATE TEMP MACRO _weekly(d) AS [0.9, 0.87, 0.89, 0.93, 1.08, 1.25, 1.2][isodow(d)]",
    """CREATE TEMP MACRO _season(d) AS 1.0 + 0.1 * cos(2.0 * pi() * (dayofyear(d) - 15) / 365.25)
        + CASE WHEN (month(d) = 12 AND day(d) >= 20) OR (month(d) = 1 AND day(d) <= 3) THEN 0.18 ELSE 0.0 END""",
    "CREATE TEMP MACRO _gpop(g) AS exp(0.6 * _z('game_pop', g, 0))",
    "CREATE TEMP TABLE _cal AS SELECT range::INTEGER AS i, _day(range) AS d FROM range(getvariable('lore_n_days'))",
    """CREATE TEMP TABLE _exp (test_id BIGINT, start_date DATE, end_date DATE, rate DOUBLE,
        n_cells INTEGER, effect_cell VARCHAR, effect_mult DOUBLE)""",
)

# --- SQL: the tables ----------------------------------------------------------------
# Dimension tables declare their primary keys. Fact keys are unique by construction
# (and tested) but not declared: DuckDB would build an ART index for each, which
# more than doubles the file size and buys nothing for analytical queries.

_DDL: Mapping[str, str] = MappingProxyType({
    "countries": """CREATE TABLE countries (
        country_iso_code VARCHAR PRIMARY KEY, country_name VARCHAR NOT NULL, region VARCHAR NOT NULL)""",
    "teams": "CREATE TABLE teams (team_name VARCHAR PRIMARY KEY, org VARCHAR NOT NULL)",
    "experiments": """CREATE TABLE experiments (
        test_id BIGINT PRIMARY KEY, test_name VARCHAR NOT NULL, start_date DATE NOT NULL, end_date DATE NOT NULL)""",
    "games": """CREATE TABLE games (
        game_id BIGINT PRIMARY KEY, game_name VARCHAR NOT NULL UNIQUE, game_genre VARCHAR NOT NULL,
        launch_date DATE NOT NULL)""",
    "titles": """CREATE TABLE titles (
        title_id BIGINT PRIMARY KEY, title_name VARCHAR NOT NULL UNIQUE, title_type VARCHAR NOT NULL,
        genre VARCHAR NOT NULL, original_language VARCHAR NOT NULL, release_date DATE NOT NULL)""",
    "productions": """CREATE TABLE productions (
        production_id BIGINT PRIMARY KEY, production_name VARCHAR NOT NULL, title_id BIGINT,
        format VARCHAR NOT NULL, is_tbd_slot BOOLEAN NOT NULL, budget_usd DOUBLE NOT NULL,
        launch_date DATE NOT NULL)""",
    "accounts": """CREATE TABLE accounts (
        account_id BIGINT PRIMARY KEY, country_iso_code VARCHAR NOT NULL, plan VARCHAR NOT NULL,
        signup_date DATE NOT NULL, age_band VARCHAR NOT NULL)""",
    "streaming_sessions": """CREATE TABLE streaming_sessions (
        session_id BIGINT NOT NULL, session_date DATE NOT NULL, account_id BIGINT NOT NULL,
        title_id BIGINT NOT NULL, device_type VARCHAR NOT NULL, streaming_hours DOUBLE NOT NULL)""",
    "ab_allocations": """CREATE TABLE ab_allocations (
        test_id BIGINT NOT NULL, account_id BIGINT NOT NULL, cell VARCHAR NOT NULL, allocated_date DATE NOT NULL)""",
    "ua_campaigns": """CREATE TABLE ua_campaigns (
        campaign_id BIGINT NOT NULL, game_id BIGINT NOT NULL, country_iso_code VARCHAR NOT NULL,
        channel VARCHAR NOT NULL, start_date DATE NOT NULL, end_date DATE NOT NULL, spend_usd DOUBLE NOT NULL)""",
    "game_installs": """CREATE TABLE game_installs (
        install_id BIGINT NOT NULL, install_date DATE NOT NULL, account_id BIGINT NOT NULL,
        game_id BIGINT NOT NULL, platform VARCHAR NOT NULL)""",
    "game_sessions": """CREATE TABLE game_sessions (
        game_session_id BIGINT NOT NULL, session_date DATE NOT NULL, account_id BIGINT NOT NULL,
        game_id BIGINT NOT NULL, minutes_played DOUBLE NOT NULL)""",
    "cloud_costs": """CREATE TABLE cloud_costs (
        usage_date DATE NOT NULL, team_name VARCHAR NOT NULL, service VARCHAR NOT NULL,
        cloud_region VARCHAR NOT NULL, cost_usd DOUBLE NOT NULL, cpu_hours DOUBLE NOT NULL,
        cpu_utilization DOUBLE NOT NULL)""",
    "cash_spend": """CREATE TABLE cash_spend (
        spend_date DATE NOT NULL, production_id BIGINT NOT NULL, phase VARCHAR NOT NULL, amount_usd DOUBLE NOT NULL)""",
    "asr_evaluations": """CREATE TABLE asr_evaluations (
        evaluation_id BIGINT NOT NULL, evaluation_date DATE NOT NULL, title_id BIGINT NOT NULL,
        language VARCHAR NOT NULL, word_count INTEGER NOT NULL, word_errors INTEGER NOT NULL,
        timing_offset_ms DOUBLE NOT NULL)""",
})

# Rows per (day) or (day, game) cell are spread by cumulative integer weights:
# cell k gets the ids floor(N * W_<k / W) .. floor(N * W_<=k / W) - 1, which sums
# to exactly N and is exact integer arithmetic (no float sums, so no dependence
# on how threads split the work).

_STEPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "games": (
        """INSERT INTO games
        WITH first_word AS (SELECT unnest(getvariable('lore_game_first')) AS w),
        second_word AS (
            SELECT unnest(getvariable('lore_game_second')) AS w, unnest(getvariable('lore_game_second_genre')) AS genre
        ),
        pool AS (SELECT f.w || ' ' || s.w AS game_name, s.genre FROM first_word f, second_word s),
        picked AS (
            SELECT game_name, genre,
                row_number() OVER (ORDER BY _ut('game_pick', game_name, 0), game_name) AS k
            FROM pool
        ),
        dated AS (
            SELECT game_name, genre,
                CASE WHEN k <= 18
                    THEN DATE '2019-01-01' + floor(_ut('game_launch', game_name, 0) * 2191)::INTEGER
                    ELSE _day(30 + floor(_ut('game_launch', game_name, 0) * 516)::INTEGER)
                END AS launch_date
            FROM picked WHERE k <= getvariable('lore_n_games')
        )
        SELECT row_number() OVER (ORDER BY launch_date, game_name) AS game_id, game_name, genre, launch_date
        FROM dated ORDER BY game_id""",
    ),
    "titles": (
        """CREATE TEMP TABLE _title_pool AS
        WITH adj AS (SELECT unnest(getvariable('lore_adjectives')) AS w),
        noun AS (SELECT unnest(getvariable('lore_nouns')) AS w),
        place AS (SELECT unnest(getvariable('lore_places')) AS w),
        fname AS (SELECT unnest(getvariable('lore_first_names')) AS w),
        lname AS (SELECT unnest(getvariable('lore_last_names')) AS w),
        tag AS (SELECT unnest(getvariable('lore_standup_tags')) AS w),
        cand(title_type, pattern, title_name) AS (
            SELECT 'movie', 1, 'The ' || noun.w FROM noun
            UNION ALL SELECT 'movie', 2, 'The ' || adj.w || ' ' || noun.w FROM adj, noun
            UNION ALL SELECT 'movie', 3, noun.w || ' of ' || place.w FROM noun, place
            UNION ALL SELECT 'series', 1, 'House of ' || noun.w FROM noun
            UNION ALL SELECT 'series', 2, place.w || ' ' || noun.w FROM place, noun
            UNION ALL SELECT 'series', 3, adj.w || ' ' || place.w FROM adj, place
            UNION ALL SELECT 'documentary', 1, 'Inside the ' || noun.w FROM noun
            UNION ALL SELECT 'documentary', 2, 'The ' || noun.w || ' Effect' FROM noun
            UNION ALL SELECT 'documentary', 3, 'Chasing ' || place.w FROM place
            UNION ALL SELECT 'documentary', 4, 'Life in ' || place.w FROM place
            UNION ALL SELECT 'documentary', 5, place.w || ': Behind the ' || noun.w FROM place, noun
            UNION ALL SELECT 'standup', 1, fname.w || ' ' || lname.w || ': ' || tag.w FROM fname, lname, tag
            UNION ALL SELECT 'standup', 2, fname.w || ' ' || lname.w || ': Live in ' || place.w FROM fname, lname, place
        ),
        uniq AS (
            SELECT * FROM cand QUALIFY row_number() OVER (PARTITION BY title_name ORDER BY title_type, pattern) = 1
        ),
        -- round robin over the patterns of a type, so small patterns are not drowned out
        in_pattern AS (
            SELECT *, row_number() OVER (
                PARTITION BY title_type, pattern ORDER BY _ut('title_pick', title_name, 0), title_name) AS prk
            FROM uniq
        ),
        ranked AS (
            SELECT *, row_number() OVER (
                PARTITION BY title_type ORDER BY prk, _ut('title_mix', title_name, 0), title_name) AS rk
            FROM in_pattern
        )
        SELECT title_type, title_name FROM ranked
        WHERE rk <= CASE title_type WHEN 'movie' THEN getvariable('lore_n_movies')
            WHEN 'series' THEN getvariable('lore_n_series')
            WHEN 'documentary' THEN getvariable('lore_n_documentaries')
            ELSE getvariable('lore_n_standups') END""",
        """INSERT INTO titles
        WITH fridays AS (
            SELECT min(d) AS first_friday, count(*) AS n_fridays FROM _cal WHERE isodow(d) = 5
        ),
        p AS (
            SELECT title_type, title_name,
                row_number() OVER (ORDER BY _ut('title_new', title_name, 0), title_name) AS nk,
                _ut('title_genre', title_name, 0) AS g, _ut('title_language', title_name, 0) AS l
            FROM _title_pool
        ),
        dated AS (
            SELECT p.*,
                CASE WHEN nk <= getvariable('lore_n_new_titles')
                    -- new releases: a few every Friday of the range
                    THEN f.first_friday + 7 * ((nk - 1) * f.n_fridays // getvariable('lore_n_new_titles'))::INTEGER
                    -- the catalogue: 2005 .. 2024, more of it recent
                    ELSE DATE '2005-01-01' + floor(sqrt(_ut('title_release', title_name, 0))
                        * date_diff('day', DATE '2005-01-01', getvariable('lore_start')))::INTEGER
                END AS release_date
            FROM p, fridays f
        )
        SELECT row_number() OVER (ORDER BY release_date, title_name) AS title_id, title_name, title_type,
            CASE title_type
                WHEN 'standup' THEN 'comedy'
                WHEN 'documentary' THEN CASE WHEN g < 0.45 THEN 'reality' WHEN g < 0.65 THEN 'drama'
                    WHEN g < 0.77 THEN 'action' WHEN g < 0.87 THEN 'sci-fi' ELSE 'kids' END
                WHEN 'series' THEN CASE WHEN g < 0.24 THEN 'drama' WHEN g < 0.41 THEN 'comedy'
                    WHEN g < 0.53 THEN 'thriller' WHEN g < 0.65 THEN 'reality' WHEN g < 0.73 THEN 'action'
                    WHEN g < 0.79 THEN 'animation' WHEN g < 0.86 THEN 'sci-fi' WHEN g < 0.92 THEN 'romance'
                    WHEN g < 0.95 THEN 'horror' ELSE 'kids' END
                ELSE CASE WHEN g < 0.2 THEN 'drama' WHEN g < 0.35 THEN 'comedy' WHEN g < 0.52 THEN 'action'
                    WHEN g < 0.66 THEN 'thriller' WHEN g < 0.73 THEN 'animation' WHEN g < 0.81 THEN 'sci-fi'
                    WHEN g < 0.89 THEN 'romance' WHEN g < 0.96 THEN 'horror' ELSE 'kids' END
            END AS genre,
            CASE WHEN l < 0.55 THEN 'en' WHEN l < 0.67 THEN 'es' WHEN l < 0.75 THEN 'ko' WHEN l < 0.82 THEN 'ja'
                WHEN l < 0.87 THEN 'fr' WHEN l < 0.91 THEN 'de' WHEN l < 0.96 THEN 'hi' ELSE 'pt' END
                AS original_language,
            release_date
        FROM dated ORDER BY title_id""",
        # titles released by each day (title ids follow release dates, so these are ids 1..n)
        """CREATE TEMP TABLE _title_days AS
        SELECT c.i, count(t.title_id) AS n_titles FROM _cal c JOIN titles t ON t.release_date <= c.d GROUP BY c.i""",
        # catalogue popularity ranks (a random order of the titles released before the range)
        """CREATE TEMP TABLE _catalog_rank AS
        SELECT row_number() OVER (ORDER BY _u('title_pop', title_id, 0), title_id) AS pop_rank, title_id
        FROM titles WHERE release_date < getvariable('lore_start')""",
    ),
    "productions": (
        """INSERT INTO productions
        WITH titled AS (
            SELECT title_id AS k, title_id, title_name AS production_name, title_type AS format,
                FALSE AS is_tbd_slot, release_date AS launch_date
            FROM titles WHERE release_date >= getvariable('lore_start')
            QUALIFY row_number() OVER (ORDER BY _u('production_pick', title_id, 0), title_id)
                <= getvariable('lore_n_titled_productions')
        ),
        tbd_raw AS (
            SELECT 1000000 + range AS k,
                _day(getvariable('lore_n_days') + floor(_u('tbd_launch', range, 0) * 300)::INTEGER) AS d0,
                CASE WHEN _u('tbd_format', range, 0) < 0.45 THEN 'movie' WHEN _u('tbd_format', range, 0) < 0.85
                    THEN 'series' WHEN _u('tbd_format', range, 0) < 0.95 THEN 'documentary' ELSE 'standup' END
                    AS format
            FROM range(getvariable('lore_n_tbd_productions'))
        ),
        tbd_dated AS (
            -- the Friday on or after d0
            SELECT k, format, d0 + ((12 - isodow(d0)) % 7)::INTEGER AS launch_date FROM tbd_raw
        ),
        tbd AS (
            SELECT k, NULL::BIGINT AS title_id,
                'TBD ' || format || ' ' || strftime(launch_date, '%Y-%m') || ' #'
                    || row_number() OVER (PARTITION BY format, strftime(launch_date, '%Y-%m') ORDER BY k)
                    AS production_name,
                format, TRUE AS is_tbd_slot, launch_date
            FROM tbd_dated
        ),
        all_rows AS (
            SELECT k, title_id, production_name, format, is_tbd_slot, launch_date FROM titled
            UNION ALL SELECT k, title_id, production_name, format, is_tbd_slot, launch_date FROM tbd
        )
        SELECT row_number() OVER (ORDER BY launch_date, is_tbd_slot, k) AS production_id, production_name,
            title_id, format, is_tbd_slot,
            round(CASE format WHEN 'series' THEN 45e6 WHEN 'movie' THEN 28e6 WHEN 'documentary' THEN 4e6 ELSE 2e6 END
                * exp(0.55 * _z('budget', k, 0))
                * CASE WHEN _u('tentpole', k, 0) < 0.015 THEN 4.0 ELSE 1.0 END / 1000.0) * 1000.0 AS budget_usd,
            launch_date
        FROM all_rows ORDER BY production_id""",
    ),
    "accounts": (
        # sign-ups per day: a launch wave, then growth with seasonality
        """CREATE TEMP TABLE _signup_days AS
        WITH w AS (
            SELECT i, d, round(1e6 * (
                (1.0 + 1.3 * _t(i)) * (1.0 + 0.15 * cos(2.0 * pi() * (dayofyear(d) - 10) / 365.25))
                    * CASE WHEN _weekend(d) THEN 1.12 ELSE 1.0 END * exp(0.08 * _z('signup_day', i, 0))
                + 25.0 * exp(-i / 21.0)))::BIGINT AS w
            FROM _cal
        ),
        c AS (SELECT i, d, w, sum(w) OVER (ORDER BY i) AS cw, sum(w) OVER () AS tw FROM w)
        SELECT i, d,
            (getvariable('lore_n_accounts')::HUGEINT * (cw - w) // tw)::BIGINT AS lo,
            (getvariable('lore_n_accounts')::HUGEINT * cw // tw)::BIGINT AS hi
        FROM c""",
        """INSERT INTO accounts
        SELECT r.range AS account_id, _country(r.range) AS country_iso_code, _plan(r.range) AS plan,
            s.d AS signup_date, _age(r.range) AS age_band
        FROM _signup_days s, range(s.lo + 1, s.hi + 1) r
        ORDER BY account_id""",
    ),
    "streaming_sessions": (
        # sessions per day follow the signed-up base (hi = accounts signed up by that day)
        """CREATE TEMP TABLE _stream_days AS
        WITH w AS (
            SELECT s.i, s.d, s.hi AS n_accounts, t.n_titles,
                round(1000.0 * s.hi * _weekly(s.d) * _season(s.d) * (1.0 + 0.15 * _t(s.i))
                    * exp(0.05 * _z('stream_day', s.i, 0))
                    * CASE s.d WHEN DATE '2025-08-14' THEN 0.55 WHEN DATE '2026-02-08' THEN 1.35 ELSE 1.0 END
                )::BIGINT AS w
            FROM _signup_days s JOIN _title_days t USING (i)
        ),
        c AS (SELECT *, sum(w) OVER (ORDER BY i) AS cw, sum(w) OVER () AS tw FROM w)
        SELECT i, d, n_accounts, n_titles,
            (getvariable('lore_n_sessions')::HUGEINT * (cw - w) // tw)::BIGINT AS lo,
            (getvariable('lore_n_sessions')::HUGEINT * cw // tw)::BIGINT AS hi
        FROM c""",
        """INSERT INTO streaming_sessions
        WITH base AS (
            SELECT r.range + 1 AS session_id, s.d AS session_date, s.n_accounts, s.n_titles
            FROM _stream_days s, range(s.lo, s.hi) r
        ),
        cand AS (
            SELECT session_id, session_date,
                -- three candidate accounts among those signed up; the most active one streams
                1 + floor(_u('s_account1', session_id, 0) * n_accounts)::BIGINT AS a1,
                1 + floor(_u('s_account2', session_id, 0) * n_accounts)::BIGINT AS a2,
                1 + floor(_u('s_account3', session_id, 0) * n_accounts)::BIGINT AS a3,
                -- new releases: mostly the recent ones, the better of two candidates
                n_titles - floor((n_titles - getvariable('lore_n_catalog_titles'))
                    * pow(_u('s_new1', session_id, 0), 2.5))::BIGINT AS t1,
                n_titles - floor((n_titles - getvariable('lore_n_catalog_titles'))
                    * pow(_u('s_new2', session_id, 0), 2.5))::BIGINT AS t2,
                _u('s_is_new', session_id, 0) < 0.45 * least(1.0,
                    (n_titles - getvariable('lore_n_catalog_titles')) / 200.0) AS wants_new,
                -- the catalogue: Zipf-like (exponent 0.8) popularity ranks
                least(getvariable('lore_n_catalog_titles'), floor(pow(
                    (pow(getvariable('lore_n_catalog_titles'), 0.2) - 1.0) * _u('s_zipf', session_id, 0) + 1.0,
                    5.0)))::BIGINT AS cat_rank
            FROM base
        ),
        scored AS (
            SELECT *, _activity(a1) AS s1, _activity(a2) AS s2, _activity(a3) AS s3 FROM cand
        ),
        picked AS (
            SELECT session_id, session_date, cat_rank,
                CASE WHEN s1 >= s2 AND s1 >= s3 THEN a1 WHEN s2 >= s3 THEN a2 ELSE a3 END AS account_id,
                CASE WHEN wants_new THEN
                    CASE WHEN _u('title_hit', t1, 0) >= _u('title_hit', t2, 0) THEN t1 ELSE t2 END
                END AS new_title
            FROM scored
        ),
        titled AS (
            SELECT p.session_id, p.session_date, p.account_id, coalesce(p.new_title, cr.title_id) AS title_id
            FROM picked p JOIN _catalog_rank cr ON cr.pop_rank = p.cat_rank
        ),
        enriched AS (
            SELECT x.*, t.title_type, _plan(x.account_id) AS plan, _country(x.account_id) AS country,
                coalesce(CASE WHEN _in_test(e.test_id, x.account_id, e.rate)
                    AND _cell(e.test_id, x.account_id, e.n_cells) = e.effect_cell THEN e.effect_mult END, 1.0)
                    AS effect
            FROM titled x
            JOIN titles t ON t.title_id = x.title_id
            LEFT JOIN _exp e ON e.effect_mult IS NOT NULL AND x.session_date BETWEEN e.start_date AND e.end_date
        ),
        device AS (
            SELECT *,
                0.42 + CASE plan WHEN 'premium' THEN 0.1 WHEN 'basic_with_ads' THEN -0.08 ELSE 0.0 END
                    - CASE WHEN country IN ('IN', 'ID', 'TR', 'ZA', 'CO', 'BR', 'MX') THEN 0.15 ELSE 0.0 END AS p_tv,
                0.30 + CASE WHEN country IN ('IN', 'ID', 'TR', 'ZA', 'CO', 'BR', 'MX') THEN 0.2 ELSE 0.0 END
                    AS p_mobile,
                _u('s_device', session_id, 0) AS ud
            FROM enriched
        ),
        typed AS (
            SELECT *, CASE WHEN ud < p_tv THEN 'tv' WHEN ud < p_tv + p_mobile THEN 'mobile'
                WHEN ud < p_tv + p_mobile + 0.14 THEN 'web' ELSE 'tablet' END AS device_type
            FROM device
        )
        SELECT session_id, session_date, account_id, title_id, device_type,
            round(least(10.0, greatest(0.02,
                CASE device_type WHEN 'tv' THEN 1.15 WHEN 'tablet' THEN 0.75 WHEN 'web' THEN 0.7 ELSE 0.42 END
                * CASE title_type WHEN 'movie' THEN 1.35 WHEN 'documentary' THEN 0.9 WHEN 'standup' THEN 0.75
                    ELSE 1.0 END
                * CASE plan WHEN 'premium' THEN 1.15 WHEN 'basic_with_ads' THEN 0.9 ELSE 1.0 END
                * CASE WHEN _weekend(session_date) THEN 1.12 ELSE 1.0 END
                * CASE WHEN _u('s_binge', session_id, 0) < 0.001 THEN 4.0 ELSE 1.0 END
                * effect * exp(0.55 * _z('s_hours', session_id, 0)))), 2) AS streaming_hours
        FROM typed ORDER BY session_id""",
    ),
    "ab_allocations": (
        """INSERT INTO ab_allocations
        SELECT e.test_id, a.account_id, _cell(e.test_id, a.account_id, e.n_cells) AS cell,
            least(e.end_date, greatest(e.start_date, a.signup_date)
                + floor(10 * pow(_u('ab_lag', e.test_id, a.account_id), 2))::INTEGER) AS allocated_date
        FROM _exp e JOIN accounts a ON a.signup_date <= e.end_date
        WHERE _in_test(e.test_id, a.account_id, e.rate)
        ORDER BY e.test_id, a.account_id""",
    ),
    "ua_campaigns": (
        """CREATE TEMP TABLE _ua AS
        WITH base AS (
            SELECT range AS k,
                1 + floor(_u('ua_game1', range, 0) * getvariable('lore_n_games'))::BIGINT AS g1,
                1 + floor(_u('ua_game2', range, 0) * getvariable('lore_n_games'))::BIGINT AS g2
            FROM range(getvariable('lore_n_campaigns'))
        ),
        g AS (
            SELECT b.k, gm.game_id, _idx(gm.launch_date) AS launch_i
            FROM base b JOIN games gm ON gm.game_id = CASE WHEN _gpop(b.g1) >= _gpop(b.g2) THEN b.g1 ELSE b.g2 END
        ),
        s AS (
            -- campaigns start at most two weeks before launch, bunched around launch for new games
            SELECT k, game_id, launch_i, greatest(0, launch_i - 14) AS lo_i,
                7 + floor(_u('ua_length', k, 0) * 36)::INTEGER AS n_days
            FROM g
        ),
        st AS (
            SELECT *, lo_i + floor((getvariable('lore_n_days') - 10 - lo_i)
                * pow(_u('ua_start', k, 0), CASE WHEN launch_i >= 0 THEN 1.8 ELSE 1.0 END))::INTEGER AS start_i
            FROM s
        ),
        full_rows AS (
            SELECT *, least(getvariable('lore_n_days') - 1, start_i + n_days - 1) AS end_i,
                _country_pick(_u('ua_country', k, 0)) AS country_iso_code,
                0.12 + 0.2 * _t(start_i) AS p_tiktok, _u('ua_channel', k, 0) AS uc
            FROM st
        )
        SELECT k, game_id, start_i, end_i, country_iso_code,
            CASE WHEN uc < p_tiktok THEN 'tiktok' WHEN uc < p_tiktok + (1.0 - p_tiktok) * 0.52 THEN 'google'
                ELSE 'meta' END AS channel,
            round(120.0
                * CASE WHEN country_iso_code IN ('US', 'CA', 'GB', 'AU', 'DE', 'NL') THEN 1.5
                    WHEN country_iso_code IN ('FR', 'JP', 'KR', 'ES', 'IT') THEN 1.1
                    WHEN country_iso_code IN ('IN', 'ID') THEN 0.35 ELSE 0.6 END
                * (end_i - start_i + 1) / 21.0
                * CASE WHEN start_i BETWEEN launch_i - 14 AND launch_i + 30 THEN 2.5 ELSE 1.0 END
                * CASE WHEN _u('ua_outlier', k, 0) < 0.005 THEN 8.0 ELSE 1.0 END
                * exp(0.6 * _z('ua_spend', k, 0)), 2) AS spend_usd
        FROM full_rows""",
        """INSERT INTO ua_campaigns
        SELECT row_number() OVER (ORDER BY start_i, k) AS campaign_id, game_id, country_iso_code, channel,
            _day(start_i) AS start_date, _day(end_i) AS end_date, spend_usd
        FROM _ua ORDER BY campaign_id""",
    ),
    "game_installs": (
        # campaign spend per game and day, in integer cents
        """CREATE TEMP TABLE _ua_daily AS
        SELECT game_id, r.range::INTEGER AS i, sum(round(spend_usd * 100.0 / (end_i - start_i + 1))::BIGINT) AS cents
        FROM _ua, range(start_i, end_i + 1) r GROUP BY ALL""",
        """CREATE TEMP TABLE _install_cells AS
        WITH gd AS (
            SELECT g.game_id, c.i, c.d, c.i - _idx(g.launch_date) AS age
            FROM games g JOIN _cal c ON c.d >= g.launch_date
        ),
        mean_spend AS (SELECT greatest(1, coalesce(sum(cents) // count(*), 1)) AS m FROM _ua_daily),
        w AS (
            SELECT gd.game_id, gd.i, gd.d, s.hi AS n_accounts,
                round(1000.0 * (s.hi > 0)::INTEGER * _gpop(gd.game_id) * (1.0 + 4.0 * exp(-gd.age / 25.0))
                    * (1.0 + 0.5 * _t(gd.i)) * CASE WHEN _weekend(gd.d) THEN 1.15 ELSE 1.0 END * _season(gd.d)
                    * (1.0 + 0.6 * coalesce(u.cents, 0) / ms.m) * exp(0.15 * _z('install_day', gd.game_id, gd.i))
                )::BIGINT AS w
            FROM gd
            JOIN _signup_days s ON s.i = gd.i
            CROSS JOIN mean_spend ms
            LEFT JOIN _ua_daily u ON u.game_id = gd.game_id AND u.i = gd.i
        ),
        c AS (SELECT *, sum(w) OVER (ORDER BY i, game_id) AS cw, sum(w) OVER () AS tw FROM w)
        SELECT game_id, i, d, n_accounts,
            (getvariable('lore_n_installs')::HUGEINT * (cw - w) // tw)::BIGINT AS lo,
            (getvariable('lore_n_installs')::HUGEINT * cw // tw)::BIGINT AS hi
        FROM c""",
        """INSERT INTO game_installs
        WITH base AS (
            SELECT r.range + 1 AS install_id, c.d AS install_date, c.game_id,
                1 + floor(_u('i_account1', r.range, 0) * c.n_accounts)::BIGINT AS a1,
                1 + floor(_u('i_account2', r.range, 0) * c.n_accounts)::BIGINT AS a2
            FROM _install_cells c, range(c.lo, c.hi) r
        ),
        picked AS (
            SELECT install_id, install_date, game_id,
                CASE WHEN _gamer(a1) >= _gamer(a2) THEN a1 ELSE a2 END AS account_id
            FROM base
        )
        SELECT install_id, install_date, account_id, game_id,
            CASE WHEN _u('i_platform', install_id, 0) < CASE
                WHEN _country(account_id) IN ('US', 'CA', 'GB', 'JP', 'AU') THEN 0.58
                WHEN _country(account_id) IN ('FR', 'DE', 'NL', 'IT', 'ES', 'KR') THEN 0.32 ELSE 0.14 END
                THEN 'ios' ELSE 'android' END AS platform
        FROM picked ORDER BY install_id""",
    ),
    "game_sessions": (
        """CREATE TEMP TABLE _install_rank AS
        SELECT game_id, row_number() OVER (PARTITION BY game_id ORDER BY install_id) AS gidx, account_id
        FROM game_installs""",
        """CREATE TEMP TABLE _game_session_cells AS
        WITH cum AS (
            SELECT c.game_id, c.i, c.d, g.game_genre,
                sum(c.hi - c.lo) OVER (PARTITION BY c.game_id ORDER BY c.i) AS installed
            FROM _install_cells c JOIN games g USING (game_id)
        ),
        w AS (
            SELECT *, round(1000.0 * pow(installed::DOUBLE, 0.85)
                * CASE game_genre WHEN 'narrative' THEN 0.8 WHEN 'casual' THEN 1.3 WHEN 'puzzle' THEN 1.2 ELSE 1.0 END
                * CASE WHEN _weekend(d) THEN 1.2 ELSE 1.0 END * _season(d)
                * exp(0.1 * _z('game_session_day', game_id, i)))::BIGINT AS w
            FROM cum
        ),
        c AS (SELECT *, sum(w) OVER (ORDER BY i, game_id) AS cw, sum(w) OVER () AS tw FROM w)
        SELECT game_id, game_genre, i, d, installed::BIGINT AS installed,
            (getvariable('lore_n_game_sessions')::HUGEINT * (cw - w) // tw)::BIGINT AS lo,
            (getvariable('lore_n_game_sessions')::HUGEINT * cw // tw)::BIGINT AS hi
        FROM c""",
        """INSERT INTO game_sessions
        WITH base AS (
            -- players are accounts that installed the game by then, mostly recent installers
            SELECT r.range + 1 AS game_session_id, c.d AS session_date, c.game_id, c.game_genre,
                c.installed - floor(c.installed * pow(_u('gs_player', r.range, 0), 2.5))::BIGINT AS gidx
            FROM _game_session_cells c, range(c.lo, c.hi) r
        )
        SELECT b.game_session_id, b.session_date, ir.account_id, b.game_id,
            round(least(480.0, greatest(0.5,
                CASE b.game_genre WHEN 'narrative' THEN 34.0 WHEN 'action' THEN 26.0 WHEN 'sports' THEN 22.0
                    WHEN 'puzzle' THEN 14.0 ELSE 11.0 END
                * CASE WHEN _weekend(b.session_date) THEN 1.15 ELSE 1.0 END
                * CASE WHEN _u('gs_marathon', b.game_session_id, 0) < 0.003 THEN 5.0 ELSE 1.0 END
                * exp(0.75 * _z('gs_minutes', b.game_session_id, 0)))), 1) AS minutes_played
        FROM base b JOIN _install_rank ir ON ir.game_id = b.game_id AND ir.gidx = b.gidx
        ORDER BY b.game_session_id""",
    ),
    "cloud_costs": (
        """INSERT INTO cloud_costs
        WITH svc(service, cost_factor, cpu_share, cpu_price, util_adj) AS (
            VALUES ('compute', 1.5, 0.9, 0.045, 0.0), ('storage', 0.8, 0.05, 0.4, -0.1),
                ('data_transfer', 0.6, 0.02, 0.8, -0.15), ('database', 1.0, 0.6, 0.09, 0.1),
                ('streaming_pipeline', 1.2, 0.8, 0.05, 0.05)
        ),
        reg(cloud_region, region_factor) AS (
            VALUES ('us-east-1', 1.0), ('us-west-2', 0.55), ('eu-west-1', 0.6), ('ap-northeast-1', 0.4)
        ),
        combos AS (
            SELECT t.team_name, t.org, s.*, r.*, t.team_name || '/' || s.service || '/' || r.cloud_region AS ck
            FROM teams t CROSS JOIN svc s CROSS JOIN reg r
        ),
        used AS (
            -- every team runs compute in us-east-1; the rest is a per-team selection
            SELECT *,
                exp(ln(600.0) + 0.9 * _zt('cc_base', ck, 0)) * cost_factor * region_factor
                    * CASE org WHEN 'streaming' THEN 1.6 WHEN 'data' THEN 1.3 WHEN 'games' THEN 0.8
                        WHEN 'studio' THEN 0.7 ELSE 0.5 END AS base_cost,
                0.1 + 0.8 * _ut('cc_growth', team_name, 0) AS growth,
                0.2 + 0.5 * _ut('cc_util', team_name, 0) + util_adj AS base_util
            FROM combos
            WHERE (service = 'compute' AND cloud_region = 'us-east-1')
                OR _ut('cc_combo', ck, 0) < CASE WHEN service = 'streaming_pipeline'
                    AND org NOT IN ('streaming', 'data') THEN 0.1 ELSE 0.45 END
        ),
        daily AS (
            SELECT c.d AS usage_date, c.i, u.*,
                CASE WHEN team_name = 'ml-platform' AND service = 'compute'
                    AND c.d BETWEEN DATE '2026-03-09' AND DATE '2026-03-13' THEN TRUE ELSE FALSE END AS runaway,
                CASE WHEN team_name = 'encoding-pipeline' AND service = 'compute'
                    AND c.d >= DATE '2025-10-01' THEN TRUE ELSE FALSE END AS optimised
            FROM used u CROSS JOIN _cal c
        ),
        costed AS (
            SELECT *, round(base_cost * (1.0 + growth * _t(i))
                * CASE WHEN _weekend(usage_date) THEN CASE WHEN org = 'streaming' THEN 1.15 ELSE 0.82 END
                    ELSE 1.0 END
                * CASE WHEN runaway THEN 5.0 ELSE 1.0 END
                * CASE WHEN optimised THEN 0.65 ELSE 1.0 END
                * CASE WHEN team_name = 'cdn-edge' AND service = 'data_transfer'
                    AND usage_date BETWEEN DATE '2025-12-24' AND DATE '2025-12-27' THEN 2.5 ELSE 1.0 END
                * exp(0.06 * _zt('cc_day', ck, i)), 2) AS cost_usd
            FROM daily
        )
        SELECT usage_date, team_name, service, cloud_region, cost_usd,
            round(cost_usd * cpu_share / cpu_price, 2) AS cpu_hours,
            round(least(0.98, greatest(0.02, CASE WHEN runaway THEN 0.08 ELSE base_util END
                + CASE WHEN optimised THEN 0.2 ELSE 0.0 END + 0.04 * _zt('cc_util_day', ck, i))), 4)
                AS cpu_utilization
        FROM costed ORDER BY usage_date, team_name, service, cloud_region""",
    ),
    "cash_spend": (
        """INSERT INTO cash_spend
        WITH p AS (
            SELECT production_id, format, budget_usd,
                (year(launch_date) - year(getvariable('lore_start'))) * 12 + month(launch_date) - 1 AS lm,
                4 + floor(_u('cs_dev', production_id, 0) * 7)::INTEGER AS n_dev,
                2 + floor(_u('cs_pre', production_id, 0) * 4)::INTEGER AS n_pre,
                CASE format WHEN 'series' THEN 5 WHEN 'movie' THEN 3 ELSE 2 END
                    + floor(_u('cs_prod', production_id, 0) * 5)::INTEGER AS n_prod,
                3 + floor(_u('cs_post', production_id, 0) * 5)::INTEGER AS n_post
            FROM productions
        ),
        b AS (
            -- phases back to back, ending with a launch phase from the month before launch to the month after
            SELECT *, lm - 1 AS launch_start, lm - 1 - n_post AS post_start, lm - 1 - n_post - n_prod AS prod_start,
                lm - 1 - n_post - n_prod - n_pre AS pre_start, lm - 1 - n_post - n_prod - n_pre - n_dev AS dev_start
            FROM p
        ),
        months AS (
            SELECT b.*, r.range::INTEGER AS m FROM b, range(getvariable('lore_n_months')) r
            WHERE r.range BETWEEN b.dev_start AND b.lm + 1
        ),
        phased AS (
            SELECT *,
                CASE WHEN m >= launch_start THEN 'launch' WHEN m >= post_start THEN 'post_production'
                    WHEN m >= prod_start THEN 'production' WHEN m >= pre_start THEN 'pre_production'
                    ELSE 'development' END AS phase,
                CASE WHEN m >= launch_start THEN 0.12 / 3 WHEN m >= post_start THEN 0.18 / n_post
                    WHEN m >= prod_start THEN 0.55 / n_prod WHEN m >= pre_start THEN 0.09 / n_pre
                    ELSE 0.06 / n_dev END AS share
            FROM months
        )
        SELECT _month_start(m) + floor(_u('cs_day', production_id, m)
                * day(last_day(_month_start(m))))::INTEGER AS spend_date,
            production_id, phase,
            round(budget_usd * share * (0.75 + 0.5 * _u('cs_amount', production_id, m)), 2) AS amount_usd
        FROM phased ORDER BY spend_date, production_id""",
    ),
    "asr_evaluations": (
        """CREATE TEMP TABLE _asr_days AS
        WITH w AS (
            SELECT c.i, c.d, t.n_titles,
                round(1e6 * (1.0 + _t(c.i)) * CASE WHEN _weekend(c.d) THEN 0.3 ELSE 1.0 END
                    * exp(0.2 * _z('asr_day', c.i, 0)))::BIGINT AS w
            FROM _cal c JOIN _title_days t USING (i)
        ),
        c AS (SELECT *, sum(w) OVER (ORDER BY i) AS cw, sum(w) OVER () AS tw FROM w)
        SELECT i, d, n_titles,
            (getvariable('lore_n_asr')::HUGEINT * (cw - w) // tw)::BIGINT AS lo,
            (getvariable('lore_n_asr')::HUGEINT * cw // tw)::BIGINT AS hi
        FROM c""",
        """INSERT INTO asr_evaluations
        WITH base AS (
            -- titles already released, mostly recent ones (dubbing follows releases)
            SELECT r.range + 1 AS evaluation_id, a.d AS evaluation_date,
                a.n_titles - floor(a.n_titles * pow(_u('asr_title', r.range, 0), 2.0))::BIGINT AS title_id
            FROM _asr_days a, range(a.lo, a.hi) r
        ),
        j AS (
            SELECT b.*, t.title_type, _u('asr_language', b.evaluation_id, 0) AS ul
            FROM base b JOIN titles t USING (title_id)
        ),
        l AS (
            SELECT *,
                CASE WHEN ul < 0.25 THEN 'en' WHEN ul < 0.45 THEN 'es' WHEN ul < 0.57 THEN 'pt'
                    WHEN ul < 0.67 THEN 'fr' WHEN ul < 0.77 THEN 'de' WHEN ul < 0.85 THEN 'ja'
                    WHEN ul < 0.92 THEN 'ko' ELSE 'hi' END AS language,
                greatest(200.0, round(CASE title_type WHEN 'movie' THEN 9000.0 WHEN 'documentary' THEN 7000.0
                    WHEN 'standup' THEN 8500.0 ELSE 4500.0 END
                    * exp(0.25 * _z('asr_words', evaluation_id, 0))))::INTEGER AS word_count,
                evaluation_date >= DATE '2025-11-03' AS new_model
            FROM j
        ),
        e AS (
            SELECT *,
                CASE language WHEN 'en' THEN 0.055 WHEN 'es' THEN 0.07 WHEN 'pt' THEN 0.08 WHEN 'fr' THEN 0.075
                    WHEN 'de' THEN 0.08 WHEN 'ja' THEN 0.12 WHEN 'ko' THEN 0.11 ELSE 0.13 END
                * CASE WHEN new_model THEN 0.8 ELSE 1.0 END
                * CASE WHEN _u('asr_bad_audio', evaluation_id, 0) < 0.005 THEN 4.0 ELSE 1.0 END
                * exp(0.3 * _z('asr_wer', evaluation_id, 0)) AS wer
            FROM l
        )
        SELECT evaluation_id, evaluation_date, title_id, language, word_count,
            least(word_count, round(word_count * wer))::INTEGER AS word_errors,
            round(CASE WHEN _u('asr_desync', evaluation_id, 0) < 0.01
                THEN 600.0 + 1900.0 * _u('asr_desync_ms', evaluation_id, 0)
                ELSE abs(CASE language WHEN 'ja' THEN 85.0 WHEN 'ko' THEN 80.0 WHEN 'hi' THEN 90.0 ELSE 60.0 END
                    - CASE WHEN new_model THEN 15.0 ELSE 0.0 END + 25.0 * _z('asr_offset', evaluation_id, 0))
                END, 1) AS timing_offset_ms
        FROM e ORDER BY evaluation_id""",
    ),
})


# --- I/O: running the steps --------------------------------------------------------------

ProgressFn = Callable[[str, int, int], None]


def generate_warehouse(
    path: Path,
    *,
    scale: float = 1.0,
    seed: int = 42,
    progress: ProgressFn | None = None,
    threads: int = 2,
) -> dict[str, int]:
    """Build the demo warehouse at ``path`` and return the row count of every table.

    The database is built in a temporary file next to ``path`` and renamed over it
    at the end, so ``path`` is never a half-built warehouse (an existing file is
    replaced). ``progress(table, done, total)`` is called after each table.
    ``threads`` changes only the speed, never the data.

    Raises :class:`OperatorError` for a scale outside (0, 100], a bad seed, or a
    path that cannot be written. Other DuckDB errors would be bugs and propagate.
    """
    scale = validate_scale(scale)
    seed = validate_seed(seed)
    path = Path(path)
    if path.is_dir():
        raise OperatorError(
            f"Cannot build the demo warehouse at {path}: it is a directory.",
            hint="Give a file path such as warehouse.duckdb.",
        )
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        counts = _build(tmp, build_variables(scale, seed), progress, threads)
        os.replace(tmp, path)
    except (OSError, BuildIOError) as err:
        raise OperatorError(
            f"Could not build the demo warehouse at {path}: {err}",
            hint="Check that the directory is writable and has free space.",
        ) from err
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(OSError):  # best effort: the build's own error is what matters
                leftover.unlink(missing_ok=True)
    return counts


def _build(path: Path, variables: Mapping[str, object], progress: ProgressFn | None, threads: int) -> dict[str, int]:
    con = open_build_connection(path, threads=threads)
    try:
        _set_variables(con, variables)
        for statement in _MACROS:
            con.execute(statement)
        counts: dict[str, int] = {}
        for done, table in enumerate(TABLES, start=1):
            con.execute(_DDL[table])
            _fill(con, table)
            row = con.execute("SELECT count(*) FROM " + table).fetchone()  # table is from TABLES, not input
            counts[table] = int(row[0]) if row else 0
            if progress is not None:
                progress(table, done, len(TABLES))
        con.execute("CHECKPOINT")
        return counts
    finally:
        con.close()


def _set_variables(con: BuildConnection, variables: Mapping[str, object]) -> None:
    for name, value in variables.items():
        if not name.isidentifier() or not name.startswith("lore_"):  # names are ours, checked anyway
            raise ValueError(f"bad variable name {name!r}")
        con.execute("SET VARIABLE " + name + " = ?", [value])


def _fill(con: BuildConnection, table: str) -> None:
    """Insert the rows of one table (small dimensions from Python data, the rest by SQL)."""
    if table == "countries":
        con.executemany("INSERT INTO countries VALUES (?, ?, ?)", [c[:3] for c in COUNTRIES])
    elif table == "teams":
        con.executemany("INSERT INTO teams VALUES (?, ?)", list(TEAMS))
    elif table == "experiments":
        con.executemany("INSERT INTO experiments VALUES (?, ?, ?, ?)", [e[:4] for e in EXPERIMENTS])
        con.executemany(
            "INSERT INTO _exp VALUES (?, ?, ?, ?, ?, ?, ?)", [(e[0], *e[2:]) for e in EXPERIMENTS]
        )
    else:
        for statement in _STEPS[table]:
            con.execute(statement)
