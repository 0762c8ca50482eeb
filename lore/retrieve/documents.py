"""What the retriever indexes: pure functions from the semantic layer, values and examples to documents.

One :class:`IndexDoc` per

- metric: name, label, description, synonyms, unit;
- dimension attribute (``node.attr``): label, description, synonyms, the node's
  label and description, a few sample values;
- value of a low-cardinality attribute: the value plus its attribute label,
  e.g. ``"Brazil (country name)"``;
- verified example: its question.

Each document has the text that is embedded and the phrases the lexical
scorer matches (see :mod:`lore.retrieve.lexical`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence

from lore.retrieve.lexical import LexicalDoc
from lore.semantic.spec import Column, Metric, Node, SemanticLayer
from lore.types import Frozen, Kind

KINDS: tuple[str, ...] = ("metric", "dimension", "value", "example")
#: how many documents of each kind the retrieve stage keeps for the planners (they take their best few)
RETRIEVE_K = 8

#: bump when what is indexed, or how, changes: persisted indexes then rebuild
INDEX_FORMAT = "lore-index-1"

#: by default, values are indexed for categorical attributes with at most this many distinct values
DEFAULT_MAX_VALUES = 500
#: never index more values than this for one attribute, even when asked to
HARD_MAX_VALUES = 10_000
#: sample values quoted in an attribute's text
SAMPLES_IN_TEXT = 8


class Example(Frozen):
    """A verified question -> plan example (from the feedback loop)."""

    id: str
    question: str
    plan_json: str
    sql: str | None = None

    @property
    def content_hash(self) -> str:
        return _digest([self.question, self.plan_json, self.sql])


class IndexDoc(Frozen):
    """One indexed document."""

    id: str
    kind: Kind
    #: metric name | dimension ref "node.attr" | the value's dimension ref | the example id
    ref: str
    value: str | None = None
    #: the text that is embedded (and shown as Hit.text)
    text: str
    #: lexical phrases with weights: names, labels, synonyms, the value
    phrases: tuple[tuple[str, float], ...] = ()
    #: further words for the lexical scorer (descriptions)
    bag: str = ""
    example: Example | None = None

    def metadata(self) -> dict[str, str]:
        """chromadb metadata (strings only; chromadb keeps no None)."""
        meta = {"kind": self.kind, "ref": self.ref}
        if self.value is not None:
            meta["value"] = self.value
        if self.example is not None:
            meta["plan_json"] = self.example.plan_json
            meta["content_hash"] = self.example.content_hash
            if self.example.sql is not None:
                meta["sql"] = self.example.sql
        return meta

    def lexical(self) -> LexicalDoc:
        return LexicalDoc(self.id, self.kind, self.phrases, self.bag, symmetric=self.kind == "example")


def _digest(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _sentence(text: str) -> str:
    """Trim and end with a full stop.

    >>> _sentence(" Sum of hours streamed "), _sentence("Done."), _sentence("")
    ('Sum of hours streamed.', 'Done.', '')
    """
    text = " ".join(text.split())
    if text and text[-1] not in ".!?":
        text += "."
    return text


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _spaced(name: str) -> str:
    return name.replace("_", " ")


def metric_doc(metric: Metric) -> IndexDoc:
    """The document of a metric.

    >>> d = metric_doc(Metric(name="game_installs", description="Installs of a game", synonyms=("downloads",), unit="installs"))
    >>> d.id, d.text
    ('metric:game_installs', 'game installs. Installs of a game. Also called: downloads. Unit: installs.')
    """
    names = [metric.display] + ([_spaced(metric.name)] if _spaced(metric.name) != metric.display.lower() else [])
    text = _join(
        _sentence(" / ".join(dict.fromkeys(names))),
        _sentence(metric.description),
        _sentence("Also called: " + ", ".join(metric.synonyms)) if metric.synonyms else "",
        _sentence(f"Unit: {metric.unit}") if metric.unit else "",
    )
    phrases = [(metric.name, 1.0), (metric.display, 1.0)] + [(s, 1.0) for s in metric.synonyms]
    return IndexDoc(
        id=f"metric:{metric.name}",
        kind="metric",
        ref=metric.name,
        text=text,
        phrases=tuple(phrases),
        bag=_join(metric.description, metric.unit or ""),
    )


def dimension_doc(node: Node, column: Column, samples: Sequence[str] = ()) -> IndexDoc:
    """The document of a dimension attribute ``node.attr``.

    >>> node = Node(name="countries", kind="dimension", description="Countries where accounts live")
    >>> col = Column(name="region", synonyms=("market",))
    >>> dimension_doc(node, col, ["EMEA", "APAC"]).text
    'region of countries. Also called: market. countries: Countries where accounts live. Values: EMEA, APAC.'
    """
    ref = f"{node.name}.{column.name}"
    shown = list(dict.fromkeys(list(column.sample_values) + list(samples)))[:SAMPLES_IN_TEXT]
    text = _join(
        _sentence(f"{column.display} of {node.display}"),
        _sentence(column.description),
        _sentence("Also called: " + ", ".join(column.synonyms)) if column.synonyms else "",
        _sentence(f"{node.display}: {node.description}") if node.description else "",
        _sentence("Values: " + ", ".join(shown)) if shown else "",
    )
    phrases = [(column.name, 1.0), (column.display, 1.0), (f"{node.name} {column.name}", 1.0)]
    phrases += [(s, 1.0) for s in column.synonyms]
    phrases += [(node.display, 0.5)] + [(s, 0.5) for s in node.synonyms]
    return IndexDoc(
        id=f"dimension:{ref}",
        kind="dimension",
        ref=ref,
        text=text,
        phrases=tuple(phrases),
        bag=_join(column.description, node.description),
    )


def value_doc(ref: str, label: str, value: str) -> IndexDoc:
    """The document of one value of an attribute.

    >>> value_doc("countries.country_name", "country name", "Brazil").text
    'Brazil (country name)'
    """
    return IndexDoc(
        id=f"value:{ref}={value}",
        kind="value",
        ref=ref,
        value=value,
        text=f"{value} ({label})",
        phrases=((value, 0.8),),
    )


def example_doc(example: Example) -> IndexDoc:
    return IndexDoc(
        id=f"example:{example.id}",
        kind="example",
        ref=example.id,
        text=example.question,
        phrases=((example.question, 1.0),),
        example=example,
    )


def _find_column(layer: SemanticLayer, ref: str) -> tuple[Node | None, Column | None]:
    node_name, _, attr = ref.partition(".")
    node = layer.node(node_name)
    return node, (node.column(attr) if node is not None else None)


def indexable_values(column: Column | None, values: Sequence[str], *, max_values: int = DEFAULT_MAX_VALUES) -> list[str]:
    """The distinct values of an attribute that get a document of their own.

    ``index_values: true`` indexes every value (up to :data:`HARD_MAX_VALUES`),
    ``false`` none; unset, only categorical attributes with at most
    ``max_values`` distinct values (low cardinality).

    >>> indexable_values(Column(name="plan"), ["premium", "standard", "premium", "", None])
    ['premium', 'standard']
    >>> indexable_values(Column(name="plan"), ["a", "b", "c"], max_values=2)
    []
    >>> indexable_values(Column(name="day", kind="time"), ["2026-01-01"])
    []
    """
    distinct = list(dict.fromkeys(str(v) for v in values if v is not None and str(v).strip()))
    if column is not None and column.index_values is not None:
        return distinct[:HARD_MAX_VALUES] if column.index_values else []
    if column is not None and column.kind != "categorical":
        return []
    return distinct if len(distinct) <= max_values else []


def layer_documents(
    layer: SemanticLayer, values: Mapping[str, Sequence[str]], *, max_values: int = DEFAULT_MAX_VALUES
) -> tuple[IndexDoc, ...]:
    """Every metric, dimension attribute and indexable value of a layer, in a stable order.

    ``values`` maps dimension refs to their distinct values. A ref the layer
    does not know is still indexed, labelled by its attribute name.
    """
    docs: list[IndexDoc] = [metric_doc(layer.metrics[name]) for name in sorted(layer.metrics)]
    for node_name in sorted(layer.nodes):
        node = layer.nodes[node_name]
        for column in node.columns:
            docs.append(dimension_doc(node, column, values.get(f"{node.name}.{column.name}", ())))
    for ref in sorted(values):
        node, column = _find_column(layer, ref)
        label = column.display if column is not None else _spaced(ref.rpartition(".")[2])
        for value in indexable_values(column, values[ref], max_values=max_values):
            docs.append(value_doc(ref, label, value))
    return tuple(docs)


def content_hash(embedder_name: str, layer: SemanticLayer, docs: Iterable[IndexDoc]) -> str:
    """A hash of everything a persisted index depends on (examples excluded: they sync one by one)."""
    return _digest(
        [INDEX_FORMAT, embedder_name, layer.version, [[d.id, d.text, d.metadata()] for d in docs]]
    )
