"""Load a semantic layer from YAML files into :class:`~lore.semantic.spec.SemanticLayer`.

A layer is one YAML file or a folder of them (read in name order). Each file may
hold ``sources:``, ``dimensions:`` and ``metrics:`` lists. Loading collects
*every* problem (malformed YAML, wrong fields, duplicates) with its file and
line before raising :class:`~lore.errors.SemanticLayerError`; the deeper checks
are in :mod:`lore.semantic.validate`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lore.errors import OperatorError, SemanticLayerError
from lore.semantic.issues import Issue
from lore.semantic.spec import Metric, Node, SemanticLayer

_LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """A safe YAML loader that records the line of every mapping as ``__line__``.

    Only ``true``/``false`` are booleans: YAML 1.1 would read the link key ``on``
    (and ``yes``, ``no``, ``off``) as a boolean.
    """


_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=deep)
    keys_seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys_seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        keys_seen.add(key)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != _LINE}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def line_at(data: Any, loc: Iterable[Any]) -> int | None:
    """The line of the deepest mapping on a pydantic error location."""
    line = data.get(_LINE) if isinstance(data, dict) else None
    cur = data
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        else:
            break
        if isinstance(cur, dict) and _LINE in cur:
            line = cur[_LINE]
    return line


def layer_files(path: Path) -> list[Path]:
    """The YAML files of a layer: the file itself, or a folder's ``*.yaml``/``*.yml`` in name order."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    raise OperatorError(
        f"Semantic layer not found at {path}",
        hint="Point `semantic_layer` in lore.yaml at a YAML file or a folder of them, or run `lore demo init DIR`.",
    )


def parse_documents(docs: list[tuple[str, str]]) -> tuple[SemanticLayer, list[Issue]]:
    """Parse ``(file name, YAML text)`` pairs into a layer plus the issues found while loading.

    >>> layer, issues = parse_documents([("m.yaml", "metrics:\\n  - name: x\\n    source: s\\n    agg: sum\\n")])
    >>> sorted(layer.metrics), issues
    (['x'], [])
    >>> _, issues = parse_documents([("bad.yaml", "metrics: [\\n")])
    >>> issues[0].code, issues[0].file, issues[0].line
    ('yaml_syntax', 'bad.yaml', 2)
    """
    issues: list[Issue] = []
    nodes: dict[str, Node] = {}
    metrics: dict[str, Metric] = {}
    locations: dict[str, tuple[str, int]] = {}
    digest = hashlib.sha256()

    for fname, text in docs:
        digest.update(fname.encode() + b"\0" + text.encode() + b"\0")
        try:
            data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
            problem = getattr(err, "problem", None) or str(err)
            issues.append(
                Issue(
                    code="yaml_syntax",
                    message=f"malformed YAML: {problem}",
                    file=fname,
                    line=(mark.line + 1) if mark else None,
                    hint="check indentation, colons and closing brackets",
                )
            )
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            issues.append(Issue(code="yaml_shape", message="top level must be a mapping with sources/dimensions/metrics", file=fname, line=1))
            continue
        unknown = set(data) - {"sources", "dimensions", "metrics", _LINE}
        for key in sorted(unknown):
            issues.append(
                Issue(code="unknown_section", message=f"unknown top-level key '{key}'", file=fname,
                      line=data.get(_LINE), hint="use sources, dimensions or metrics")
            )
        for section, model, kind in (("sources", Node, "source"), ("dimensions", Node, "dimension"), ("metrics", Metric, None)):
            items = data.get(section) or []
            if not isinstance(items, list):
                issues.append(Issue(code="yaml_shape", message=f"'{section}' must be a list", file=fname, line=data.get(_LINE)))
                continue
            for i, raw in enumerate(items):
                line = raw.get(_LINE) if isinstance(raw, dict) else None
                if not isinstance(raw, dict):
                    issues.append(Issue(code="yaml_shape", message=f"{section}[{i}] must be a mapping", file=fname, line=line))
                    continue
                clean = _strip_lines(raw)
                if kind is not None:
                    clean.setdefault("kind", kind)
                try:
                    obj = model.model_validate(clean)
                except ValidationError as err:
                    name = clean.get("name", f"{section}[{i}]")
                    for e in err.errors():
                        loc = ".".join(str(p) for p in e["loc"])
                        issues.append(
                            Issue(code="invalid_field", message=f"{name}: {loc}: {e['msg']}", file=fname,
                                  line=line_at(raw, e["loc"]) or line, path=f"{section}.{name}.{loc}")
                        )
                    continue
                key = ("metric:" if kind is None else "node:") + obj.name
                if key in locations:
                    prev = locations[key]
                    issues.append(
                        Issue(code="duplicate_name", message=f"'{obj.name}' is defined twice (first at {prev[0]}:{prev[1]})",
                              file=fname, line=line)
                    )
                    continue
                locations[key] = (fname, line or 0)
                if kind is None:
                    metrics[obj.name] = obj  # type: ignore[assignment]
                else:
                    nodes[obj.name] = obj  # type: ignore[assignment]
                    for j, col in enumerate(raw.get("columns") or []):
                        if isinstance(col, dict) and "name" in col:
                            locations[f"column:{obj.name}.{col['name']}"] = (fname, col.get(_LINE, line or 0))
                    for j, link in enumerate(raw.get("links") or []):
                        if isinstance(link, dict):
                            locations[f"link:{obj.name}#{j}"] = (fname, link.get(_LINE, line or 0))

    layer = SemanticLayer(nodes=nodes, metrics=metrics, version=digest.hexdigest()[:16], locations=locations)
    return layer, issues


def read_layer(path: Path) -> tuple[SemanticLayer, list[Issue]]:
    """Read a layer's files from disk; returns the layer and the loading issues (no raising)."""
    files = layer_files(path)
    if not files:
        raise OperatorError(f"No YAML files in {path}", hint="Add a *.yaml file with sources, dimensions and metrics.")
    base = path if path.is_dir() else path.parent
    docs = []
    for f in files:
        try:
            docs.append((str(f.relative_to(base)), f.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            docs.append((str(f.relative_to(base)), ""))
            raise OperatorError(f"{f} is not UTF-8 text", hint="Save the file as UTF-8.") from None
    return parse_documents(docs)


def load_layer(path: Path) -> SemanticLayer:
    """Read and structurally load a layer; raise :class:`SemanticLayerError` listing every loading issue."""
    layer, issues = read_layer(path)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise SemanticLayerError(errors)
    return layer
