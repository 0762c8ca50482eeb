"""The guard's test corpus (tests/guard/test_guard.py), loaded as data for the red-team suite and the fuzzers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def guard_cases() -> ModuleType:
    """The module tests/guard/test_guard.py (its ADVERSARIAL, VALID, SCHEMA, FIXTURE_SQL and FRAGMENTS)."""
    path = Path(__file__).resolve().parents[1] / "guard" / "test_guard.py"
    spec = importlib.util.spec_from_file_location("_redteam_guard_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
