"""The demo project with an access section, shared by the HTTP API and MCP tests: its principals, a copy of the
session's demo project carrying them, and the hand-written SQL their numbers are checked against."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

#: EMEA rows only
ANA = "ana@example.com"
#: every row, but not the cloud_cost metric
BO = "bo@example.com"
#: no limits
OPS = "ops@example.com"
ACCESS = {
    "default": "all",
    "users": {
        ANA: {"rows": ["countries.region = 'EMEA'"]},
        BO: {"hide_metrics": ["cloud_cost"]},
        OPS: {"unrestricted": True},
    },
}
#: streaming hours by region in 2026, by hand (``{extra}``: more WHERE conditions)
HOURS_BY_REGION_2026 = """
    SELECT c.region, SUM(s.streaming_hours)
    FROM streaming_sessions s
    JOIN accounts a ON a.account_id = s.account_id
    JOIN countries c ON c.country_iso_code = a.country_iso_code
    WHERE s.session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31' {extra}
    GROUP BY 1"""


def copy_with_access(demo_dir: Path, folder: Path) -> Path:
    """A copy of the demo project in ``folder`` with ``ACCESS`` (no answers, keys or votes of earlier runs)."""
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns("answers.sqlite*", "api.sqlite*", "feedback.sqlite*"))
    config = yaml.safe_load((folder / "lore.yaml").read_text())
    config["access"] = ACCESS
    (folder / "lore.yaml").write_text(yaml.safe_dump(config))
    return folder
