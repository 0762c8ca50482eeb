"""The link graph: join paths from a fact to the nodes its dimensions live on.

Paths are enumerated depth-first over *simple* paths (a node is never visited
twice on one path), so a cycle among links always terminates. Choosing a path:

1. keep paths whose link roles contain the requested roles, in order;
2. prefer paths that cannot duplicate fact rows (only many_to_one / one_to_one
   links, or a fanning link whose target key is pinned by equality filters or
   by constant conditions in the link's ``on``);
3. take the shortest; a tie is an ambiguity and an error that lists the roles.

When only fanning paths exist, the caller says whether it can use one
(``allow_fanning``): the compiler can when every metric of the fact is
duplication-invariant (count_distinct, min, max) or when it deduplicates the
fact's rows by their primary key; a listing cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import sqlglot
from sqlglot import exp

from lore.errors import CompileError
from lore.semantic.spec import Link, Node, SemanticLayer

MAX_DEPTH = 6
FANNING = frozenset({"one_to_many", "many_to_many"})


@dataclass(frozen=True)
class Edge:
    """One declared link, from ``source`` to ``link.to``; ``index`` is its position on the source node."""

    source: str
    index: int
    link: Link

    @property
    def target(self) -> str:
        return self.link.to

    @property
    def label(self) -> str:
        role = f"[{self.link.role}]" if self.link.role else ""
        return f"{self.source} -> {self.target}{role}"

    @cached_property
    def condition(self) -> exp.Expression:
        return sqlglot.parse_one(self.link.on, read="duckdb")

    @cached_property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Equality pairs ``(source column, target column)`` of the join condition.

        >>> Edge("a", 0, Link(to="b", on="a.x = b.y AND b.z = a.w")).pairs
        (('x', 'y'), ('w', 'z'))
        """
        out = []
        for eq in self.condition.find_all(exp.EQ):
            left, right = eq.this, eq.expression
            if isinstance(left, exp.Column) and isinstance(right, exp.Column):
                if left.table == self.source and right.table == self.target:
                    out.append((left.name, right.name))
                elif right.table == self.source and left.table == self.target:
                    out.append((right.name, left.name))
        return tuple(out)

    @cached_property
    def constants(self) -> frozenset[str]:
        """Target columns the join condition fixes to one literal (top-level ``AND`` conjuncts only).

        >>> Edge("a", 0, Link(to="b", on="a.x = b.y AND b.kind = 'home' AND b.n IN (1)")).constants == {"kind", "n"}
        True
        >>> Edge("a", 0, Link(to="b", on="a.x = b.y AND (b.kind = 'home' OR b.kind = 'work')")).constants
        frozenset()
        """
        out = set()
        for c in conjuncts(self.condition):
            subject, values = None, []
            if isinstance(c, exp.EQ):
                for side, other in ((c.this, c.expression), (c.expression, c.this)):
                    if isinstance(side, exp.Column) and side.table == self.target:
                        subject, values = side, [other]
                        break
            elif isinstance(c, exp.In) and not c.args.get("query") and len(c.expressions) == 1:
                subject, values = c.this, list(c.expressions)
            if (isinstance(subject, exp.Column) and subject.table == self.target
                    and all(isinstance(v, (exp.Literal, exp.Boolean)) for v in values)):
                out.add(subject.name)
        return frozenset(out)

    @property
    def fixed_target_columns(self) -> frozenset[str]:
        """Target columns one source row determines through this link: equality pairs and constants."""
        return frozenset(dst for _, dst in self.pairs) | self.constants


Path = tuple[Edge, ...]


def conjuncts(tree: exp.Expression) -> list[exp.Expression]:
    """The top-level ``AND`` terms of a predicate (parentheses unwrapped).

    >>> [c.sql() for c in conjuncts(sqlglot.parse_one("a = 1 AND (b = 2 AND (c = 3 OR d = 4))"))]
    ['a = 1', 'b = 2', 'c = 3 OR d = 4']
    """
    if isinstance(tree, exp.And):
        return conjuncts(tree.this) + conjuncts(tree.expression)
    if isinstance(tree, exp.Paren):
        return conjuncts(tree.this)
    return [tree]


class LinkGraph:
    """Adjacency over the layer's declared links."""

    def __init__(self, layer: SemanticLayer) -> None:
        self.layer = layer
        self.edges: dict[str, list[Edge]] = {
            name: [Edge(name, i, link) for i, link in enumerate(node.links) if link.to in layer.nodes]
            for name, node in layer.nodes.items()
        }

    def paths(self, start: str, target: str, *, max_depth: int = MAX_DEPTH) -> list[Path]:
        """Every simple path of links from ``start`` to ``target`` (the empty path when they are equal)."""
        if start == target:
            return [()]
        found: list[Path] = []

        def walk(node: str, path: list[Edge], seen: set[str]) -> None:
            if len(path) >= max_depth:
                return
            for edge in self.edges.get(node, ()):
                if edge.target in seen:
                    continue
                path.append(edge)
                if edge.target == target:
                    found.append(tuple(path))
                else:
                    seen.add(edge.target)
                    walk(edge.target, path, seen)
                    seen.discard(edge.target)
                path.pop()

        walk(start, [], {start})
        return found

    def reachable(self, start: str, *, max_depth: int = MAX_DEPTH) -> list[str]:
        """Nodes reachable from ``start`` through links (start first)."""
        seen = [start]
        frontier = [start]
        for _ in range(max_depth):
            nxt = []
            for node in frontier:
                for edge in self.edges.get(node, ()):
                    if edge.target not in seen:
                        seen.append(edge.target)
                        nxt.append(edge.target)
            frontier = nxt
        return seen


def roles_match(path: Path, roles: Sequence[str]) -> bool:
    """Whether the roles on a path contain ``roles`` as an ordered subsequence.

    >>> p = (Edge("f", 0, Link(to="a", on="f.a = a.id", role="origin")),)
    >>> roles_match(p, ["origin"]), roles_match(p, ["destination"]), roles_match(p, [])
    (True, False, True)
    """
    it = iter(e.link.role for e in path if e.link.role)
    return all(any(r == have for have in it) for r in roles)


def pinned_columns(layer: SemanticLayer, graph: LinkGraph, equalities: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Close a set of ``(node, column)`` pinned to one value by equality filters.

    A unique column or a full primary key pins the whole key; a link's equality
    pairs carry a pin across the link in both directions.
    """
    pinned = set(equalities)
    changed = True
    while changed:
        changed = False
        for name, node in layer.nodes.items():
            cols = {c for n, c in pinned if n == name}
            unique = {c.name for c in node.columns if c.unique}
            if node.primary_key and (cols & unique or set(node.primary_key) <= cols):
                for key in node.primary_key:
                    if (name, key) not in pinned:
                        pinned.add((name, key))
                        changed = True
            for edge in graph.edges.get(name, ()):
                for src_col, dst_col in edge.pairs:
                    a, b = (edge.source, src_col), (edge.target, dst_col)
                    if a in pinned and b not in pinned:
                        pinned.add(b)
                        changed = True
                    elif b in pinned and a not in pinned:
                        pinned.add(a)
                        changed = True
    return pinned


def fans_out(edge: Edge, layer: SemanticLayer, pinned: set[tuple[str, str]]) -> bool:
    """Whether following ``edge`` can duplicate rows of the node it starts from."""
    if edge.link.cardinality not in FANNING:
        return False
    target = layer.nodes[edge.target]
    if not target.primary_key:
        return True
    covered = edge.fixed_target_columns | {c for n, c in pinned if n == edge.target}
    return not set(target.primary_key) <= covered


def describe_path(path: Path) -> str:
    return " -> ".join([path[0].source] + [e.target + (f"[{e.link.role}]" if e.link.role else "") for e in path]) if path else "(the fact itself)"


def choose_path(
    graph: LinkGraph,
    fact: str,
    target: str,
    *,
    roles: Sequence[str] = (),
    allow_fanning: bool,
    pinned: set[tuple[str, str]],
    ref: str,
    metrics: Sequence[str] = (),
) -> Path:
    """Pick the join path from ``fact`` to ``target`` for reference ``ref`` (see the module docstring).

    ``allow_fanning``: whether a path that can duplicate ``fact`` rows may be taken when no other path exists.
    """
    layer = graph.layer
    all_paths = graph.paths(fact, target)
    if not all_paths:
        reachable = [n for n in graph.reachable(fact) if n != fact]
        raise CompileError(
            f"'{ref}' cannot be reached from '{fact}'"
            + (f" (needed for {', '.join(metrics)})" if metrics else ""),
            hint="From " + fact + " you can reach: " + (", ".join(reachable) if reachable else "no other node") + ".",
        )
    paths = [p for p in all_paths if roles_match(p, roles)]
    if not paths:
        options = sorted({"->".join(e.link.role for e in p if e.link.role) for p in all_paths} - {""})
        raise CompileError(
            f"no path from '{fact}' to '{target}' has the role(s) {list(roles)} for '{ref}'",
            suggestions=[f"{ref.split('[')[0]}[{o}]" for o in options],
        )
    safe = [p for p in paths if not any(fans_out(e, layer, pinned) for e in p)]
    if not safe and not allow_fanning:
        edge = next(e for e in paths[0] if fans_out(e, layer, pinned))
        target_node = layer.nodes[edge.target]
        free = [k for k in target_node.primary_key if k not in edge.fixed_target_columns]
        fix = (
            f" Fix {', '.join(edge.target + '.' + k for k in free)} with an equality filter, or"
            if free
            else ""
        )
        raise CompileError(
            f"joining {fact} to '{ref}' goes through the {edge.link.cardinality} link '{edge.label}', "
            f"which would duplicate {fact} rows and inflate "
            + (", ".join(metrics) if metrics else "the metric"),
            hint=f"{fix} ask for a duplication-invariant metric (count_distinct, min, max).".strip(),
        )
    candidates = safe or paths
    shortest = min(len(p) for p in candidates)
    best = [p for p in candidates if len(p) == shortest]
    if len(best) > 1:
        options = []
        for p in best:
            r = "->".join(e.link.role for e in p if e.link.role)
            options.append(f"{ref.split('[')[0].split(':')[0]}[{r}]" if r else describe_path(p))
        raise CompileError(
            f"'{ref}' is ambiguous from '{fact}': it can be reached by {len(best)} paths",
            hint="Name a role: " + ", ".join(options) + ".",
        )
    return best[0]


def node_of(layer: SemanticLayer, name: str) -> Node:
    return layer.nodes[name]
