"""The planner knows English, not the demo: no name of the demo's metrics, tables, columns or values appears in
lore/plan/ (code, strings, comments or docstrings). Every domain word comes from the semantic layer and the value
index at run time."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
#: everyday English (and Python) words that happen to name something in the demo too; each is in the planner
#: for its English meaning: "plan" (a query plan), "data", "format" (str.format), "control" (control characters),
#: "series" (time series), "standard" (standard deviation), "database" (write requests), "compute" (what a
#: question asks), "meta", "English", "accounts" (a generic count noun), the reply keys "start_date"/"end_date"
ENGLISH = frozenset({"plan", "data", "format", "control", "series", "standard", "database", "compute", "meta",
                     "english", "accounts", "start_date", "end_date"})


def _demo_words() -> set[str]:
    words: set[str] = set()
    for f in (ROOT / "lore" / "demo" / "semantic").glob("*.yaml"):
        layer = yaml.safe_load(f.read_text(encoding="utf-8"))
        for section in ("sources", "dimensions"):
            for node in layer.get(section) or []:
                words |= {node["name"], node.get("table") or node["name"]}
                for col in node.get("columns") or []:
                    words.add(col["name"])
                    words |= {str(v) for v in col.get("sample_values") or []}
                    for value, names in (col.get("value_synonyms") or {}).items():
                        words |= {str(value), *map(str, names)}
        for metric in layer.get("metrics") or []:
            words.add(metric["name"])
    return {w for w in words if len(w) >= 3 and w.lower() not in ENGLISH}


def test_no_demo_name_appears_in_the_planner() -> None:
    words = _demo_words()
    assert {"total_streaming_hours", "countries", "Brazil"} <= words  # the list is read, not empty
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "lore" / "plan").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for word in words:
            if re.search(r"(?<![A-Za-z0-9_])" + re.escape(word) + r"(?![A-Za-z0-9_])", text, re.IGNORECASE):
                found.setdefault(word, []).append(str(path.relative_to(ROOT)))
    assert not found, "demo names in lore/plan/: " + "; ".join(f"{w} in {', '.join(fs)}" for w, fs in sorted(found.items()))
