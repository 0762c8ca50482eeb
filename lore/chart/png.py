"""PNG export of a chart through vl-convert (offline: the Vega-Lite engine is bundled)."""

from __future__ import annotations

from typing import Any, Final

from lore.errors import OperatorError
from lore.types import ChartSpec

#: width in pixels used where a spec asks for the width of its container
PNG_WIDTH: Final = 720


def fixed_width(spec: dict[str, Any], width: int = PNG_WIDTH) -> dict[str, Any]:
    """A copy of a spec with ``"container"`` widths replaced by a fixed width (a PNG has no container).

    >>> fixed_width({"width": "container", "layer": [{"mark": "bar", "width": "container"}], "height": 300})
    {'width': 720, 'layer': [{'mark': 'bar', 'width': 720}], 'height': 300}
    """

    def walk(node: Any, key: str | None = None) -> Any:
        if key in ("data", "datasets"):
            return node  # data values are never rewritten
        if isinstance(node, dict):
            return {k: (width if k == "width" and v == "container" else walk(v, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(spec)


def chart_png(chart: ChartSpec, *, scale: float = 2.0, width: int = PNG_WIDTH) -> bytes:
    """Render a chart to PNG bytes, offline and without fetching any URL.

    Raises :class:`~lore.errors.OperatorError` for a table (there is nothing to draw).
    """
    if chart.kind == "table" or chart.spec is None:
        raise OperatorError(
            f"A {chart.kind!r} result has no chart to export as PNG.",
            hint="Show the result as a table, or export it as CSV instead.",
        )
    import vl_convert  # lazy: the PNG renderer loads on the first PNG

    return bytes(vl_convert.vegalite_to_png(fixed_width(chart.spec, width), scale=scale, allowed_base_urls=[]))
