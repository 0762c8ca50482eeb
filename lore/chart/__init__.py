"""Charts by rules: a result's shape and the question's semantics choose a Vega-Lite spec
from a closed set of kinds (KPI, line, bar, grouped bar, stacked bar, scatter, table).

Nothing an LLM or a user wrote is executed: specs are declarative, data is inline, and
text from the data appears only as data values.
"""

from lore.chart.build import PALETTE, build_chart, choose_chart, validate_spec
from lore.chart.png import chart_png
from lore.chart.rules import ChartPlan, ChartRequest, decide

__all__ = [
    "PALETTE",
    "ChartPlan",
    "ChartRequest",
    "build_chart",
    "chart_png",
    "choose_chart",
    "decide",
    "validate_spec",
]
