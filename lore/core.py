"""The ``Lore`` object: one project, its semantic layer, its guarded engine.

Opening a project costs a fraction of a second: each part is imported and opened where it is first used (the
engine with duckdb, the index with chromadb, the planner, a model with langchain), each such import marked
``lazy``.

>>> # lore = Lore.open("demo")
>>> # lore.semantic.sql(metrics=["total_streaming_hours"], dimensions=["countries.region"])
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lore.errors import BadInput, LoreError, OperatorError, SemanticLayerError
from lore.inputs import require_text
from lore.project import Project
from lore.semantic.compile import Compiler
from lore.semantic.load import load_layer
from lore.semantic.spec import SemanticLayer
from lore.semantic.validate import validate
from lore.settings import Settings
from lore.tables import table_key
from lore.types import CompiledQuery, Filter, OrderBy, QueryPlan, ResultSet, SemanticQuery

if TYPE_CHECKING:  # pragma: no cover
    from lore.access import AccessConfig, Scope, ScopedRetriever
    from lore.cache import AnswerCache, CachedPlan, CachedResult, DiskCache
    from lore.execute.base import WarehouseEngine
    from lore.llm.log import ExchangeLog
    from lore.llm.models import ModelHandle
    from lore.pipeline import Chat
    from lore.plan.cascade import Planner
    from lore.plan.catalog import Catalog
    from lore.plan.example import VerifiedExamples
    from lore.plan.llm import LLMPlanner
    from lore.plugins import Correction, FeedbackBackend, Vote
    from lore.retrieve import Example, Retriever
    from lore.types import Answer

#: attributes with more distinct values than this are not indexed value by value (unless index_values: true)
MAX_INDEXED_VALUES = 500
#: the most values indexed for an attribute marked index_values: true
MAX_NAMED_VALUES = 10_000
#: the profile's queries that run at once (engines serve many threads; a server engine answers them in parallel)
PROFILE_WORKERS = 4


def dimension_values(lore: Lore | ProjectParts) -> dict[str, list[str]]:
    """The distinct values the value index grounds filters with (see :func:`data_profile`)."""
    return data_profile(lore)[0]


def data_profile(lore: Lore | ProjectParts) -> tuple[dict[str, list[str]], dict[str, tuple[str, str]]]:
    """Read (or load from the cache) what the planner knows of the data: the distinct values of low-cardinality
    attributes, and the first and last day of each fact's own time column (``node -> (first, last)``).

    Attributes whose values are not read (a ``sql:`` node's, or above the cardinality limit) but that list
    ``sample_values`` or ``value_synonyms`` in the layer are known by those.
    """
    key = hashlib.sha256(f"{lore.layer.version}|{lore.engine.data_version()}|3".encode()).hexdigest()[:16]
    cache = lore.project.state_dir / "values.json"
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return ({k: list(v) for k, v in cached["values"].items()},
                    {k: (str(v[0]), str(v[1])) for k, v in cached.get("bounds", {}).items()})
    except (OSError, ValueError, KeyError, AttributeError, TypeError, IndexError):
        pass
    # one small query per attribute and per fact: on a server engine each costs a round trip and a job (about
    # half a second on Spark), so they run a few at a time; the results are gathered in the layer's order
    asked: list[tuple[str, Callable[[], Any]]] = []
    for node in lore.layer.nodes.values():
        for col in node.columns:
            wanted = col.index_values if col.index_values is not None else col.kind in ("categorical", "boolean")
            if wanted and node.table:
                limit = MAX_NAMED_VALUES if col.index_values else MAX_INDEXED_VALUES
                asked.append((f"values:{node.name}.{col.name}",
                              partial(lore.engine.distinct_values, node.table, col.name, max_values=limit)))
        if node.kind == "source" and node.table and node.time_column:
            asked.append((f"bounds:{node.name}", partial(lore.engine.time_bounds, node.table, node.time_column)))
    with ThreadPoolExecutor(max_workers=PROFILE_WORKERS, thread_name_prefix="lore-profile") as pool:
        found = dict(zip([key for key, _ in asked], pool.map(lambda item: item[1](), asked), strict=True))
    values: dict[str, list[str]] = {}
    bounds: dict[str, tuple[str, str]] = {}
    for node in lore.layer.nodes.values():
        for col in node.columns:
            ref = f"{node.name}.{col.name}"
            if found.get(f"values:{ref}") is not None:
                values[ref] = found[f"values:{ref}"]
            if ref not in values and col.kind == "categorical" and (col.sample_values or col.value_synonyms):
                values[ref] = list(dict.fromkeys([*map(str, col.sample_values), *map(str, col.value_synonyms)]))
        if found.get(f"bounds:{node.name}") is not None:
            bounds[node.name] = found[f"bounds:{node.name}"]
    try:
        lore.project.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "values": values, "bounds": bounds}), encoding="utf-8")
        tmp.replace(cache)
    except OSError:
        pass  # a read-only project still works, only slower to start
    return values, bounds


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


_SEMANTIC_EXAMPLE = ('For example: lore.semantic.sql(metrics=["total_streaming_hours"], dimensions=["countries.region"], '
                     'filters=["countries.region = \'EMEA\'"], order_by=["-total_streaming_hours"], limit=10)')


def _names(value: object, what: str, model: type | None = None) -> tuple:
    """A name (or ``model`` instance) or a list of them, as a tuple; anything else is a BadInput saying what to pass.

    >>> _names("total_streaming_hours", "metrics"), _names(["a", "b"], "metrics")
    (('total_streaming_hours',), ('a', 'b'))
    >>> _names(None, "metrics")
    Traceback (most recent call last):
    ...
    lore.errors.BadInput: metrics takes a name (str) or a list of names, not None.
    For example: lore.semantic.sql(metrics=["total_streaming_hours"], dimensions=["countries.region"], \
filters=["countries.region = 'EMEA'"], order_by=["-total_streaming_hours"], limit=10)
    """
    kinds: tuple[type, ...] = (str,) if model is None else (str, model)
    if isinstance(value, kinds):
        return (value,)
    if value is None or isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise BadInput(f"{what} takes a name (str) or a list of names, not {_kind(value)}.", hint=_fix(value))
    items = tuple(value)
    for item in items:
        if not isinstance(item, kinds):
            raise BadInput(f"{what} takes a list of names (str), not a list holding {_kind(item)}.", hint=_fix(item))
    return items


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _fix(value: object) -> str:
    decode = 'Decode bytes first (data.decode("utf-8")). ' if isinstance(value, (bytes, bytearray)) else ""
    return decode + _SEMANTIC_EXAMPLE


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
        """The semantic query; a name may be given alone (``metrics="m"``); a value of another type is a BadInput."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise BadInput(f"limit takes a whole number or None, not {type(limit).__name__}.", hint=_SEMANTIC_EXAMPLE)
        return SemanticQuery(
            metrics=_names(metrics, "metrics"), dimensions=_names(dimensions, "dimensions"),
            filters=_names(filters, "filters", Filter),
            order_by=tuple(parse_order(o) for o in _names(order_by, "order_by", OrderBy)), limit=limit,
        )

    def compile(self, metrics: Sequence[str], dimensions: Sequence[str] = (), filters: Iterable[str | Filter] = (),
                order_by: Iterable[str | OrderBy] = (), limit: int | None = None, *, dialect: str | None = None) -> CompiledQuery:
        """Compile to SQL with column metadata (see :class:`~lore.types.CompiledQuery`)."""
        q = self.query(metrics, dimensions, filters, order_by, limit)
        return self._lore.compiler.compile(q, dialect=dialect or self._lore.project.dialect)

    def sql(self, metrics: Sequence[str], dimensions: Sequence[str] = (), filters: Iterable[str | Filter] = (),
            order_by: Iterable[str | OrderBy] = (), limit: int | None = None, *, dialect: str | None = None) -> str:
        """The SQL for a semantic query, in the project's dialect or ``dialect``."""
        return self.compile(metrics, dimensions, filters, order_by, limit, dialect=dialect).sql

    def data(self, metrics: Sequence[str], dimensions: Sequence[str] = (), filters: Iterable[str | Filter] = (),
             order_by: Iterable[str | OrderBy] = (), limit: int | None = None) -> ResultSet:
        """Run a semantic query on the warehouse (through the guard) and return the result."""
        compiled = self.compile(metrics, dimensions, filters, order_by, limit, dialect=self._lore.dialect)
        return self._lore.run_compiled(compiled)


class ProjectParts:
    """The parts of one project that every view of it shares, each opened on first use: the hardened engine, the
    whole semantic layer and its values, the retrieval index, the model and its log, the answer caches and the
    feedback backend. One per project; closed by the project's :class:`Lore`."""

    def __init__(self, lore: Lore) -> None:
        self.project = lore.project
        self.settings = lore.settings
        #: the project's own (unscoped) Lore: the feedback plugin is given it
        self.lore = lore
        self.lock = threading.Lock()
        # feedback: the store revision the retriever's verified examples reflect
        self.examples_lock = threading.Lock()
        self.examples_revision = 0
        # access control: one view per distinct set of rules
        self.views: dict[str, Lore] = {}

    def opened(self, part: str) -> bool:
        """Whether ``part`` (a cached property's name) has been opened."""
        return part in self.__dict__

    @cached_property
    def engine(self) -> WarehouseEngine:
        from lore.execute.open import open_engine  # lazy: the engine's library loads when it opens

        return open_engine(self.project, self.settings)

    @cached_property
    def layer(self) -> SemanticLayer:
        """The whole semantic layer, checked against the warehouse (raises SemanticLayerError)."""
        layer = load_layer(self.project.semantic_path)
        issues = [i for i in validate(layer, self.engine.schema()) if i.severity == "error"]
        if issues:
            raise SemanticLayerError(issues)
        return layer

    @cached_property
    def schema(self) -> dict[str, dict[str, str]]:
        """The warehouse tables the semantic layer exposes: table -> column -> type."""
        full = self.engine.schema()
        allowed = {table_key(t) for t in self.layer.tables}
        return {t: cols for t, cols in full.items() if table_key(t) in allowed}

    @cached_property
    def values(self) -> dict[str, list[str]]:
        return data_profile(self)[0]

    @cached_property
    def time_bounds(self) -> dict[str, tuple[str, str]]:
        return data_profile(self)[1]

    @cached_property
    def retriever(self) -> Retriever:
        """The project's index: every metric, attribute, value and verified example (views filter it)."""
        from lore.retrieve import Retriever  # lazy: chromadb and the embedder load with the index

        # feedback: the index holds exactly the verified examples of the feedback store
        revision, examples = self._verified_examples()
        retriever = Retriever.open(self.project.state_dir / "index", self.layer, self.values, examples=examples)
        self.examples_revision = revision
        return retriever

    @cached_property
    def llm_log(self) -> ExchangeLog:
        from lore.llm.log import ExchangeLog  # lazy: only with a model

        return ExchangeLog.for_project(self.project.state_dir)

    @cached_property
    def model(self) -> ModelHandle:
        from lore.llm.models import connect  # lazy: only with a model

        return connect(self.settings.model, self.settings, self.project.state_dir, log=self.llm_log)

    @cached_property
    def access(self) -> AccessConfig | None:
        from lore.access import AccessConfig  # lazy: loaded on the first access check

        return AccessConfig.parse(self.project.config.access, where=str(self.project.root / "lore.yaml"))

    @cached_property
    def answer_cache(self) -> AnswerCache[CachedResult] | None:
        if not self.settings.answer_cache:
            return None
        from lore.cache import AnswerCache, CachedResult, TieredCache  # lazy: loaded with the first cache

        entries, size = self.settings.answer_cache_entries, self.settings.answer_cache_mb * 1024 * 1024
        disk = self.disk_cache
        if disk is None:
            return AnswerCache(max_entries=entries, max_bytes=size)
        return TieredCache(disk, "result", CachedResult, max_entries=entries, max_bytes=size)

    @cached_property
    def plan_cache(self) -> AnswerCache[CachedPlan] | None:
        if not self.settings.answer_cache:
            return None
        from lore.cache import AnswerCache, CachedPlan, TieredCache  # lazy: loaded with the first cache

        entries, size = self.settings.answer_cache_entries, 16 * 1024 * 1024
        disk = self.disk_cache
        if disk is None:
            return AnswerCache(max_entries=entries, max_bytes=size)
        return TieredCache(disk, "plan", CachedPlan, max_entries=entries, max_bytes=size)

    @cached_property
    def disk_cache(self) -> DiskCache | None:
        if not self.settings.answer_cache or self.settings.answer_cache_disk_mb <= 0:
            return None
        from lore.cache import DISK_FILE, DiskCache  # lazy: loaded with the first cache

        return DiskCache(self.project.state_dir / DISK_FILE, max_bytes=self.settings.answer_cache_disk_mb * 1024 * 1024)

    @cached_property
    def feedback_backend(self) -> FeedbackBackend | None:
        if not self.settings.feedback:
            return None
        from lore.plugins import load_feedback_backend  # lazy: entry points are read on first use

        return load_feedback_backend(self.lore)

    def _verified_examples(self) -> tuple[int, list[Example]]:
        """The store's revision and verified examples; none (logged) when the store cannot be read."""
        try:
            backend = self.feedback_backend
            if backend is None:
                return 0, []
            revision = backend.examples_revision()
            return revision, list(backend.verified_examples())
        except LoreError as err:
            logging.getLogger("lore.feedback").warning("verified examples not loaded: %s", err)
            return 0, []

    def close(self) -> None:
        if self.__dict__.get("disk_cache") is not None:
            self.__dict__.pop("disk_cache").close()
        if "model" in self.__dict__:
            self.__dict__.pop("model").close()
        if "engine" in self.__dict__:
            self.__dict__.pop("engine").close()


class Lore:
    """One open project, as one person may see it. Cheap to create; the warehouse and the layer load on first use.

    ``Lore.open(...)`` sees the whole project (``scope`` None). :meth:`for_user` gives the same project through
    a :class:`~lore.access.Scope`: the scope is applied to the layer, the schema, the values, the retriever, the
    planner, the guard and the cache keys; the engine, the index, the caches, the model and the feedback store
    are the project's (:class:`ProjectParts`), shared by every view and never rebuilt per user.

    What it composes, each in its own module: the stages of an answer (:mod:`lore.pipeline`, through
    :meth:`chat` and :meth:`ask`), the planner (:mod:`lore.plan.build`), the verified examples
    (:attr:`examples`, :mod:`lore.plan.example`), the caches' keys (:mod:`lore.pipeline.memo`), access
    (:mod:`lore.access`, through :meth:`for_user`), feedback (the :class:`~lore.plugins.FeedbackBackend` seam) and
    the semantic API (:attr:`semantic`).
    """

    def __init__(self, project: Project, settings: Settings, *, scope: Scope | None = None,
                 parts: ProjectParts | None = None) -> None:
        self.project = project
        self.settings = settings
        #: what this view may see (None: the whole project)
        self.scope = scope
        self.parts = parts if parts is not None else ProjectParts(self)

    @classmethod
    def open(cls, project: str | Path = ".", *, settings: Settings | None = None, **overrides: Any) -> Lore:
        """Open a project folder made by ``lore demo init`` (or any folder with a ``lore.yaml``)."""
        proj = Project.open(project)
        base = settings or Settings(project=proj.root)
        if overrides:
            base = base.model_copy(update=overrides)
        return cls(proj, base)

    # --- the project's parts (shared by every view) ----------------------------------------
    @property
    def engine(self) -> WarehouseEngine:
        return self.parts.engine

    @property
    def dialect(self) -> str:
        """The dialect the engine runs: answers' SQL is compiled, guarded and run in it."""
        return self.project.config.engine.dialect

    @property
    def llm_log(self) -> ExchangeLog:
        """The log of every LLM exchange (``.lore/llm.sqlite``)."""
        return self.parts.llm_log

    @property
    def model(self) -> ModelHandle:
        """The chat model of ``settings.model`` (for ``local``, its server is started here and stopped by close())."""
        return self.parts.model

    @property
    def time_bounds(self) -> dict[str, tuple[str, str]]:
        """Each fact's first and last day of data (``node -> (first, last)``, ISO dates)."""
        return self.parts.time_bounds

    @property
    def answer_cache(self) -> AnswerCache[CachedResult] | None:
        """The answer cache (None when ``settings.answer_cache`` is off): in memory, in front of the project's
        shared file ``.lore/answers.sqlite`` (:attr:`disk_cache`); entries are keyed by scope."""
        return self.parts.answer_cache

    @property
    def plan_cache(self) -> AnswerCache[CachedPlan] | None:
        """The plan memo: what retrieval and planning made of a question asked before (None when the cache is off)."""
        return self.parts.plan_cache

    @property
    def disk_cache(self) -> DiskCache | None:
        """The answer cache's tier shared by every process of the project (None: the cache or the tier is off)."""
        return self.parts.disk_cache

    @property
    def feedback_backend(self) -> FeedbackBackend | None:
        """The installed feedback backend (the ``feedback`` package), or None when none is installed or it is off.

        Raises :class:`OperatorError` when a backend is installed but cannot be loaded.
        """
        return self.parts.feedback_backend

    @property
    def access(self) -> AccessConfig | None:
        """The ``access:`` section of lore.yaml, validated (None: no per-user limits)."""
        return self.parts.access

    # --- this view: the project through its scope ---------------------------------------------
    @cached_property
    def layer(self) -> SemanticLayer:
        """The semantic layer this view sees (the whole layer, or the scope's, without what names rows outside it)."""
        if self.scope is None:
            return self.parts.layer
        from lore.access import scoped_layer  # lazy: loaded on the first access check

        return scoped_layer(self.scope, self.values, self.parts.values)

    @property
    def schema(self) -> dict[str, dict[str, str]]:
        """The warehouse tables and columns this view may read: table -> column -> type."""
        return self.parts.schema if self.scope is None else self.scope.schema

    @cached_property
    def values(self) -> dict[str, list[str]]:
        """Distinct values of the layer's low-cardinality attributes (cached in .lore/ per data and layer version);
        in a scope, only those of visible attributes in the rows in scope."""
        if self.scope is None:
            return self.parts.values
        from lore.access import scoped_values  # lazy: loaded on the first access check

        return scoped_values(self.scope, self.parts.values, lambda sql: self.run_sql(sql).rows, self.dialect)

    @cached_property
    def retriever(self) -> Retriever | ScopedRetriever:
        """The index as this view sees it (in a scope: hits outside it removed; the index itself is shared)."""
        if self.scope is None:
            return self.parts.retriever
        from lore.access import ExampleJudge, ScopedRetriever  # lazy: loaded on the first access check

        return ScopedRetriever(self.parts.retriever, self.scope, self.values, example_ok=ExampleJudge(self),
                               layer=self.layer)

    @cached_property
    def compiler(self) -> Compiler:
        return Compiler(self.layer, schema=self.schema)

    @property
    def semantic(self) -> SemanticAPI:
        return SemanticAPI(self)

    @cached_property
    def catalog(self) -> Catalog:
        from lore.plan.catalog import Catalog  # lazy: the planner loads on the first question

        return Catalog.build(self.layer)

    @property
    def today(self):  # -> date
        """The date relative time ranges resolve against (settings, then lore.yaml, then the real today)."""
        return self.settings.today or self.project.config.today or self.settings.today_or_now()

    def built_versions(self) -> tuple[str | None, str | None]:
        """The semantic layer's version and the LLM prompt's id, of what this instance has already built (None
        for what it has not): recording an answer reads them without loading a layer or starting a model."""
        layer = self.parts.layer if self.parts.opened("layer") else None
        planner = self.__dict__.get("planner")  # (cached properties live in the instance's dict once built)
        return (layer.version if layer is not None else None,
                getattr(planner, "prompt_version", None) if planner is not None else None)

    @cached_property
    def planner(self) -> Planner:
        """``--model offline``: the offline planner; otherwise the cascade (or the LLM alone with LORE_PLANNER=llm).
        In a scope: the same, telling the asker what the question names outside their access (see
        :mod:`lore.plan.build`)."""
        from lore.plan.build import build_planner  # lazy: the planner loads on the first question

        return build_planner(self)

    @cached_property
    def llm_planner(self) -> LLMPlanner:
        from lore.plan.build import build_llm_planner  # lazy: only with a model

        return build_llm_planner(self)

    @cached_property
    def examples(self) -> VerifiedExamples:
        """The verified examples this view plans with (kept in step with the feedback store)."""
        from lore.plan.example import VerifiedExamples  # lazy: the planner loads on the first question

        return VerifiedExamples(self)

    def compile_plan(self, plan: QueryPlan) -> CompiledQuery:
        """The SQL a plan runs: its free SQL when it names no metric, else its compiled semantic query.

        The one place that decides it, for answers, checks and feedback reviews alike.
        """
        if plan.runs_sql:
            return CompiledQuery(sql=plan.sql or "")
        return self.compiler.compile(plan.semantic_query(), dialect=self.dialect)

    # --- access control: see lore/access/ ----------------------------------------------------
    def for_user(self, user: str | None) -> Lore:
        """This project as ``user`` may see it (the project's own view when no rule limits them; None is the
        operator).

        The identity must come from a verified source (a sign-in, a signed Slack request, the operator),
        never from a question or a model. Users whose rules allow the same share one view.
        """
        from lore.access import rules_for  # lazy: loaded on the first access check

        return self._view(rules_for(self.access, user))

    def for_users(self, users: Sequence[str | None]) -> Lore:
        """This project as *every one* of ``users`` may see it: the narrowest view, for an answer several people
        read (a Slack channel). Each person's rules narrow it; ``None`` (the operator) adds no limit."""
        from lore.access import rules_for_all  # lazy: loaded on the first access check

        return self._view(rules_for_all(self.access, users))

    def principal(self, identity: str):  # -> Principal
        """The person an identity names under this project's access section (the identity alone without one)."""
        from lore.access import AccessConfig  # lazy: loaded on the first access check

        return (self.access or AccessConfig()).principal(identity)

    def _view(self, rules) -> Lore:  # rules: tuple[tuple[str, Rule], ...] | None
        """The project's view through ``rules`` (None: the project's own), made once per distinct set of rules."""
        from lore.access import build_scope, scope_id  # lazy: loaded on the first access check

        parts = self.parts
        if rules is None:
            return parts.lore
        key = scope_id(rules)
        with parts.lock:
            view = parts.views.get(key)
            if view is None:
                scope = build_scope(parts.layer, parts.schema, rules, dialect=self.dialect)
                view = parts.views[key] = Lore(self.project, self.settings, scope=scope, parts=parts)
        return view

    def chat(self, user: str | None = None, *, conversation_id: str | None = None) -> Chat:
        """Start a conversation; follow-up questions refine the previous answer."""
        from lore.pipeline import Chat  # lazy: the pipeline loads on the first question

        return Chat(self, user=user, conversation_id=conversation_id)

    def ask(self, question: str, *, user: str | None = None) -> Answer:
        """Answer one self-contained question (use :meth:`chat` for follow-ups)."""
        return self.chat(user=user).ask(question)

    # --- warm-up: see lore/cache/ -------------------------------------------------------
    def warm_up(self) -> dict[str, float]:
        """Open everything the first question needs, so it is not slow; returns the seconds each part took.

        The engine, the semantic layer, the compiler, the retriever (its index and embedder: one search), the
        planner and the answer caches; then a trivial query (the first metric, compiled, guarded and run).
        Servers call this at start (then, optionally, :func:`lore.cache.warm` with their example questions).
        """
        took: dict[str, float] = {}

        def step(name: str, fn: Callable[[], object]) -> None:
            t0 = time.perf_counter()
            fn()
            took[name] = round(time.perf_counter() - t0, 4)

        if self.scope is not None:  # the project's parts first, then this view's own
            took = self.parts.lore.warm_up()
            self.values, self.retriever, self.planner  # noqa: B018 - built once, before threads share them
            return took
        step("engine", lambda: self.engine)
        step("layer", lambda: (self.layer, self.compiler, self.catalog))
        step("retriever", lambda: self.retriever.search("warm up", k=1))
        step("planner", lambda: self.planner)
        step("caches", lambda: (self.answer_cache, self.plan_cache))  # made once here, before threads share them
        if self.layer.metrics:
            first = next(iter(self.layer.metrics))
            step("query", lambda: self.run_compiled(self.semantic.compile([first], dialect=self.dialect)))
        return took

    # --- feedback: through the FeedbackBackend seam of lore/plugins.py -----------------
    def _require_feedback(self) -> FeedbackBackend:
        backend = self.feedback_backend
        if backend is None:
            raise OperatorError("Feedback is not available: no feedback backend is installed, or LORE_FEEDBACK is off.",
                                hint="Install LORE with its feedback package (`pip install -e .`) and unset LORE_FEEDBACK.")
        return backend

    def feedback(self, answer_id: str, rating: int, *, user: str, comment: str | None = None,
                 correction: Correction | QueryPlan | dict[str, Any] | str | None = None,
                 idempotency_key: str | None = None, verified: bool = False) -> Vote:
        """Thumbs up (``rating=+1``) or down (``-1``) on an answer, by ``user``; returns once the vote is durable.

        ``correction`` (with a thumbs down) is the corrected SQL or plan (or both, when they return the same
        result). A thumbs up nominates the question -> plan pair; it teaches LORE only once verified (reviewer
        or the operator's policy). Votes count once per person (:meth:`principal`), whichever identity names them.
        ``verified=True`` says ``user`` came from an authenticated channel (Slack's signed request, the chat
        page's sign-in or a trusted proxy header); only such votes count toward the policy's
        ``trusted_users`` and ``auto_verify_min_users``, and a pair they verify is checked in their scope.
        Pass the same ``idempotency_key`` when retrying: the vote is stored once.
        """
        from lore.plugins import Correction  # lazy: entry points are read on first use

        return self._require_feedback().vote(answer_id, rating, user=user, comment=comment,
                                             correction=Correction.coerce(correction), idempotency_key=idempotency_key,
                                             verified=verified)

    def record_answer(self, answer: Answer) -> None:
        """Store an answer so feedback can point at it by ``answer.id`` (the pipeline does this for every answer)."""
        self._require_feedback().record_answer(answer)

    # --- running SQL ------------------------------------------------------------
    def run_compiled(self, compiled: CompiledQuery) -> ResultSet:
        """Guard and run compiled SQL; the result keeps the compiler's column metadata."""
        return self.run_sql(compiled.sql).described_by(compiled.columns)

    def run_semantic(self, compiled: CompiledQuery) -> tuple[ResultSet, bool]:
        """Guard and run a semantic query's compiled SQL through the answer cache: the same SQL on the same data,
        layer, day, limits and scope reuses the result computed before (in this process or, through the cache's
        file, another). Returns the result and whether it came from the cache."""
        from lore.cache import CachedResult  # lazy: loaded with the first query
        from lore.pipeline.memo import semantic_cache_key  # lazy: loaded with the first query

        cache = self.answer_cache
        if cache is None:
            return self.run_compiled(compiled), False
        key = semantic_cache_key(self, compiled.sql)
        hit = cache.get(key)
        if hit is not None:
            return hit.result, True
        guarded = self.guard(compiled.sql)
        result = self._execute(guarded.sql).described_by(compiled.columns)
        cache.put(key, CachedResult(compiled=compiled, guarded=guarded, result=result))
        return result, False

    def guard(self, sql: str):  # -> GuardedSQL
        """Check ``sql`` with the allow-list guard against the tables and columns this view may read, with its
        row filters wrapped around every table (raises GuardError)."""
        from lore.guard import guard_sql  # lazy: loaded with the first query

        return guard_sql(sql, self.schema, dialect=self.dialect, default_limit=self.settings.default_limit,
                         max_rows=self.settings.max_rows,
                         row_filters=self.scope.row_filters if self.scope is not None else None)

    def run_sql(self, sql: str) -> ResultSet:
        """Run a SQL string through the same guard as generated SQL, then on the hardened engine."""
        sql = require_text(sql, what="Lore.run_sql() takes the SQL", example='lore.run_sql("SELECT region, count(*) '
                           'FROM countries GROUP BY region")')
        return self._execute(self.guard(sql).sql)

    def _execute(self, guarded_sql: str) -> ResultSet:
        """Run SQL the guard returned on the hardened engine, within the query time limit and the row cap."""
        return self.engine.run(guarded_sql, timeout_s=self.settings.query_timeout_s, max_rows=self.settings.max_rows)

    def __getattr__(self, name: str) -> Any:
        """Names of earlier releases, each still working with a DeprecationWarning (see README, "Upgrading")."""
        moved = _MOVED.get(name)
        if moved is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        new, get = moved
        warnings.warn(f"Lore.{name} is now {new}; the old name still works and will be removed in a later release.",
                      DeprecationWarning, stacklevel=2)
        return get(self)

    def close(self) -> None:
        """Close the project's parts (the engine, the model's server, the cache file); a view closes nothing: its
        parts belong to the project."""
        if self.parts.lore is not self:
            return
        if self.parts.opened("model"):
            self.__dict__.pop("llm_planner", None)
            self.__dict__.pop("planner", None)
        self.parts.close()

    def __enter__(self) -> Lore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _function_of(module: str, name: str) -> Callable[[Lore], Any]:
    """``module.name`` with a Lore as its first argument (the module imported on first use)."""
    return lambda lore: partial(getattr(importlib.import_module(module), name), lore)


#: members of earlier releases: old name -> (where it lives now, how to reach it from a Lore)
_MOVED: dict[str, tuple[str, Callable[[Lore], Any]]] = {
    "sql": ("Lore.run_sql() (it runs the SQL; Lore.semantic.sql() returns SQL text)", lambda lore: lore.run_sql),
    "few_shot_examples": ("Lore.examples.nearest()", lambda lore: lore.examples.nearest),
    "sync_examples": ("Lore.examples.sync()", lambda lore: lore.examples.sync),
    "examples_revision": ("Lore.examples.revision()", lambda lore: lore.examples.revision),
    "example_planner": ("Lore.examples.planner", lambda lore: lore.examples.planner),
    "cache_key": ("lore.pipeline.memo.answer_cache_key(lore, plan)", _function_of("lore.pipeline.memo", "answer_cache_key")),
    "plan_cache_key": ("lore.pipeline.memo.plan_cache_key(lore, question, previous)",
                       _function_of("lore.pipeline.memo", "plan_cache_key")),
    "check_plan": ("lore.plan.build.check_plan(lore, plan)", _function_of("lore.plan.build", "check_plan")),
}

