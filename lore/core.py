"""The ``Lore`` object: one project, its semantic layer, its guarded engine.

>>> # lore = Lore.open("demo")
>>> # lore.semantic.sql(metrics=["total_streaming_hours"], dimensions=["countries.region"])
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lore.errors import SemanticLayerError
from lore.project import Project
from lore.semantic.compile import Compiler
from lore.semantic.load import load_layer
from lore.semantic.spec import SemanticLayer
from lore.semantic.validate import validate
from lore.settings import Settings
from lore.types import CompiledQuery, Filter, OrderBy, ResultSet, SemanticQuery

if TYPE_CHECKING:  # pragma: no cover
    from lore.execute.engine import Engine
    from lore.pipeline import Chat
    from lore.plan.catalog import Catalog
    from lore.plan.offline import OfflinePlanner
    from lore.retrieve import Retriever
    from lore.types import Answer

#: attributes with more distinct values than this are not indexed value by value (unless index_values: true)
MAX_INDEXED_VALUES = 500
#: the most values indexed for an attribute marked index_values: true
MAX_NAMED_VALUES = 10_000


def dimension_values(lore: Lore) -> dict[str, list[str]]:
    """Read (or load from the cache) the distinct values the value index grounds filters with."""
    import hashlib
    import json

    wh = lore.project.warehouse_path
    stat = wh.stat()
    key = hashlib.sha256(f"{lore.layer.version}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = lore.project.state_dir / "values.json"
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return {k: list(v) for k, v in cached["values"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    values: dict[str, list[str]] = {}
    for node in lore.layer.nodes.values():
        if not node.table:
            continue
        for col in node.columns:
            wanted = col.index_values if col.index_values is not None else col.kind in ("categorical", "boolean")
            if not wanted:
                continue
            limit = MAX_NAMED_VALUES if col.index_values else MAX_INDEXED_VALUES
            found = lore.engine.distinct_values(node.table, col.name, max_values=limit)
            if found is not None:
                values[f"{node.name}.{col.name}"] = found
    try:
        lore.project.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "values": values}), encoding="utf-8")
        tmp.replace(cache)
    except OSError:
        pass  # a read-only project still works, only slower to start
    return values


def parse_order(item: str | OrderBy) -> OrderBy:
    """``"-x"`` or ``"x desc"`` orders descending; ``"x"`` or ``"x asc"`` ascending.

    >>> parse_order("-total_streaming_hours")
    OrderBy(ref='total_streaming_hours', descending=True)
    >>> parse_order("countries.region asc").descending
    False
    """
    if isinstance(item, OrderBy):
        return item
    text = item.strip()
    if text.startswith("-"):
        return OrderBy(ref=text[1:].strip(), descending=True)
    parts = text.rsplit(None, 1)
    if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
        return OrderBy(ref=parts[0], descending=parts[1].lower() == "desc")
    return OrderBy(ref=text)


class SemanticAPI:
    """DataJunction-style access: ask for metrics by dimensions with filters, get SQL or data."""

    def __init__(self, lore: Lore) -> None:
        self._lore = lore

    def query(
        self,
        metrics: Sequence[str],
        dimensions: Sequence[str] = (),
        filters: Iterable[str | Filter] = (),
        order_by: Iterable[str | OrderBy] = (),
        limit: int | None = None,
    ) -> SemanticQuery:
        return SemanticQuery(
            metrics=tuple(metrics), dimensions=tuple(dimensions), filters=tuple(filters),
            order_by=tuple(parse_order(o) for o in order_by), limit=limit,
        )

    def compile(self, metrics: Sequence[str], dimensions: Sequence[str] = (), filters: Iterable[str | Filter] = (),
                order_by: Iterable[str | OrderBy] = (), limit: int | None = None, *, dialect: str | None = None) -> CompiledQuery:
        """Compile to SQL with column metadata (see :class:`~lore.types.CompiledQuery`)."""
        q = self.query(metrics, dimensions, filters, order_by, limit)
        return self._lore.compiler.compile(q, dialect=dialect or self._lore.project.config.dialect)

    def sql(self, metrics: Sequence[str], dimensions: Sequence[str] = (), filters: Iterable[str | Filter] = (),
            order_by: Iterable[str | OrderBy] = (), limit: int | None = None, *, dialect: str | None = None) -> str:
        """The SQL for a semantic query, in the project's dialect or ``dialect``."""
        return self.compile(metrics, dimensions, filters, order_by, limit, dialect=dialect).sql

    def data(self, metrics: Sequence[str], dimensions: Sequence[str] = (), filters: Iterable[str | Filter] = (),
             order_by: Iterable[str | OrderBy] = (), limit: int | None = None) -> ResultSet:
        """Run a semantic query on the warehouse (through the guard) and return the result."""
        compiled = self.compile(metrics, dimensions, filters, order_by, limit, dialect="duckdb")
        return self._lore.run_compiled(compiled)


class Lore:
    """One open project. Cheap to create; the warehouse and the layer load on first use."""

    def __init__(self, project: Project, settings: Settings) -> None:
        self.project = project
        self.settings = settings
        self._lock = threading.Lock()

    @classmethod
    def open(cls, project: str | Path = ".", *, settings: Settings | None = None, **overrides: Any) -> Lore:
        """Open a project folder made by ``lore demo init`` (or any folder with a ``lore.yaml``)."""
        proj = Project.open(project)
        base = settings or Settings(project=proj.root)
        if overrides:
            base = base.model_copy(update=overrides)
        return cls(proj, base)

    # --- lazily built parts ------------------------------------------------------
    @cached_property
    def engine(self) -> Engine:
        from lore.execute.engine import Engine

        return Engine.open(self.project.warehouse_path, self.settings)

    @cached_property
    def schema(self) -> dict[str, dict[str, str]]:
        """The warehouse tables the semantic layer exposes: table -> column -> type."""
        full = self.engine.schema()
        allowed = {t.lower() for t in self.layer.tables}
        return {t: cols for t, cols in full.items() if t.lower() in allowed}

    @cached_property
    def layer(self) -> SemanticLayer:
        layer = load_layer(self.project.semantic_path)
        issues = [i for i in validate(layer, self.engine.schema()) if i.severity == "error"]
        if issues:
            raise SemanticLayerError(issues)
        return layer

    @cached_property
    def compiler(self) -> Compiler:
        return Compiler(self.layer, schema=self.schema)

    @property
    def semantic(self) -> SemanticAPI:
        return SemanticAPI(self)

    # --- asking questions ----------------------------------------------------------
    @cached_property
    def values(self) -> dict[str, list[str]]:
        """Distinct values of the layer's low-cardinality attributes (cached in .lore/ per data and layer version)."""
        return dimension_values(self)

    @cached_property
    def retriever(self) -> Retriever:
        from lore.retrieve import Retriever

        return Retriever.open(self.project.state_dir / "index", self.layer, self.values)

    @cached_property
    def catalog(self) -> Catalog:
        from lore.plan.catalog import Catalog

        return Catalog.build(self.layer)

    @cached_property
    def planner(self) -> OfflinePlanner:
        from lore.plan.offline import Context, OfflinePlanner

        today = self.settings.today or self.project.config.today or self.settings.today_or_now()
        return OfflinePlanner(Context(catalog=self.catalog, searcher=self.retriever, today=today))

    def chat(self, user: str | None = None, *, conversation_id: str | None = None) -> Chat:
        """Start a conversation; follow-up questions refine the previous answer."""
        from lore.pipeline import Chat

        return Chat(self, user=user, conversation_id=conversation_id)

    def ask(self, question: str, *, user: str | None = None) -> Answer:
        """Answer one self-contained question (use :meth:`chat` for follow-ups)."""
        return self.chat(user=user).ask(question)

    # --- running SQL ------------------------------------------------------------
    def run_compiled(self, compiled: CompiledQuery) -> ResultSet:
        """Guard and run compiled SQL; the result keeps the compiler's column metadata."""
        result = self.sql(compiled.sql)
        if len(result.columns) == len(compiled.columns):
            result = result.model_copy(update={"columns": compiled.columns})
        return result

    def guard(self, sql: str):  # -> GuardedSQL
        """Check ``sql`` with the allow-list guard against this project's tables (raises GuardError)."""
        from lore.guard import guard_sql

        return guard_sql(sql, self.schema, dialect="duckdb", default_limit=self.settings.default_limit,
                         max_rows=self.settings.max_rows)

    def sql(self, sql: str) -> ResultSet:
        """Run a SQL string through the same guard as generated SQL, then on the hardened engine."""
        guarded = self.guard(sql)
        return self.engine.run(guarded.sql, timeout_s=self.settings.query_timeout_s, max_rows=self.settings.max_rows)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.close()
            del self.__dict__["engine"]

    def __enter__(self) -> Lore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
