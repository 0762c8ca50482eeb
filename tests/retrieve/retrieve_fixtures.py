"""Test data for the retrieval tests: a small handwritten semantic layer, its values, a counting embedder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lore.retrieve.embed import Embedder
from lore.semantic.spec import Column, Link, Metric, Node, SemanticLayer


def make_layer(version: str = "v1", *, extra_metric: Metric | None = None) -> SemanticLayer:
    countries = Node(
        name="countries",
        kind="dimension",
        table="countries",
        label="Country",
        description="Countries where accounts live and stream.",
        primary_key=("country_iso_code",),
        columns=(
            Column(name="country_iso_code", label="country ISO code", synonyms=("country code",)),
            Column(name="country_name", label="country name", synonyms=("country", "nation")),
            Column(
                name="region",
                label="region",
                description="Commercial region that groups countries.",
                synonyms=("geo", "market", "territory"),
            ),
        ),
    )
    accounts = Node(
        name="accounts",
        kind="dimension",
        table="accounts",
        description="Subscriber accounts.",
        primary_key=("account_id",),
        columns=(
            Column(name="account_id", kind="identifier"),
            Column(name="plan", label="subscription plan", synonyms=("tier", "package")),
            Column(name="signup_date", kind="time", label="signup date"),
        ),
        links=(Link(to="countries", on="accounts.country_iso_code = countries.country_iso_code"),),
    )
    sessions = Node(
        name="streaming_sessions",
        table="streaming_sessions",
        description="One row per viewing session.",
        primary_key=("session_id",),
        time_column="session_date",
        columns=(
            Column(name="session_date", kind="time", label="session date"),
            Column(name="device_type", label="device type", synonyms=("device", "screen")),
        ),
        links=(Link(to="accounts", on="streaming_sessions.account_id = accounts.account_id"),),
    )
    installs = Node(
        name="game_installs",
        table="game_installs",
        description="One row per game install.",
        primary_key=("install_id",),
        time_column="install_date",
        columns=(
            Column(name="install_date", kind="time", label="install date"),
            Column(name="platform", label="mobile platform", synonyms=("operating system", "os")),
        ),
    )
    metrics = [
        Metric(
            name="total_streaming_hours",
            label="Total streaming hours",
            description="Sum of the hours of video streamed.",
            synonyms=("watch time", "hours watched", "viewing hours"),
            unit="hours",
            source="streaming_sessions",
            agg="sum",
            expr="streaming_hours",
        ),
        Metric(
            name="streaming_session_count",
            label="Streaming sessions",
            description="Number of viewing sessions.",
            synonyms=("sessions", "plays"),
            source="streaming_sessions",
            agg="count",
        ),
        Metric(
            name="new_signups",
            label="New signups",
            description="Accounts created, dated by signup date.",
            synonyms=("registrations", "new subscribers"),
            source="accounts",
            agg="count",
        ),
        Metric(
            name="game_installs",
            label="Game installs",
            description="Number of times a game was installed.",
            synonyms=("downloads", "installs"),
            source="game_installs",
            agg="count",
        ),
    ]
    if extra_metric is not None:
        metrics.append(extra_metric)
    return SemanticLayer(
        nodes={n.name: n for n in (countries, accounts, sessions, installs)},
        metrics={m.name: m for m in metrics},
        version=version,
    )


VALUES: dict[str, list[str]] = {
    "countries.country_name": ["United States", "Brazil", "South Korea", "Germany", "Japan"],
    "countries.country_iso_code": ["US", "BR", "KR", "DE", "JP"],
    "countries.region": ["UCAN", "LATAM", "EMEA", "APAC"],
    "accounts.plan": ["basic_with_ads", "standard", "premium"],
    "streaming_sessions.device_type": ["tv", "mobile", "web", "tablet"],
    "game_installs.platform": ["ios", "android"],
}


class CountingEmbedder(Embedder):
    """Our own embedder, recording the texts the model really runs on (not a mock: the model runs)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.batches: list[int] = []
        self.texts: list[str] = []

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        self.texts.extend(texts)
        return super()._encode_batch(texts)
