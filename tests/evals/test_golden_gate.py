"""The release gates: LORE must meet evals/golden/gate.yaml on evals/golden/demo.yaml and on the blind sets.

The demo set is written for the demo generated with seed 11 (its seed-dependent cases name games of that
seed); it holds at any scale, so the gate builds a small seed-11 demo of its own. The blind sets (`sets:` in
gate.yaml) name the warehouse they were written for: a demo (seed, scale), the jaffle shop (seed, years) or the
insurer (evals/insurance: seed, scale).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evals.harness import EvalReport, evaluate, load_golden
from evals.report import write_report

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "evals" / "golden" / "demo.yaml"
GATE = ROOT / "evals" / "golden" / "gate.yaml"
#: the generator seed the golden set is written for, and a scale its top-N cases have no ties at
GOLDEN_SEED = 11
GOLDEN_SCALE = 0.05


def explain(report: EvalReport, out: Path) -> str:
    """Per-category and per-domain figures and the failing cases, for the assertion message."""
    s = report.summary
    lines = [f"accuracy {s.accuracy:.1%} ({s.n_correct}/{s.n_cases}); "
             f"accuracy at confidence >= 0.8: {s.confidence.accuracy_at_high} "
             f"({s.confidence.share_at_high} of answers); report: {out / 'report.html'}"]
    for title, groups in (("category", s.by_category), ("domain", s.by_domain)):
        lines.append(f"{title:<16} {'cases':>5} {'correct':>7} {'accuracy':>8}")
        lines += [f"{name:<16} {g.n:>5} {g.correct:>7} {g.accuracy:>8.1%}" for name, g in groups.items()]
    lines.append("failures:")
    lines += [f"  {c.id}: {c.question[:70]} -> {c.reason[:90]}" for c in report.failures()]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def golden_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lore.demo.project import init_demo

    folder = tmp_path_factory.mktemp("golden") / "project"
    init_demo(folder, scale=GOLDEN_SCALE, seed=GOLDEN_SEED)
    return folder


def test_golden_gate(golden_project: Path, tmp_path: Path) -> None:
    from lore import Lore

    gate = yaml.safe_load(GATE.read_text(encoding="utf-8"))
    golden = load_golden(GOLDEN)
    with Lore.open(golden_project, today=golden.today, feedback=False) as lore:
        report = evaluate(lore, golden, GOLDEN)
    write_report(report, tmp_path)
    s = report.summary
    message = explain(report, tmp_path)
    print(message)
    assert s.gold_errors == 0, "some gold SQL failed: fix evals/golden/demo.yaml\n" + message
    assert s.accuracy is not None and s.accuracy >= gate["min_accuracy"], message
    if s.confidence.share_at_high:
        assert s.confidence.accuracy_at_high >= gate["min_accuracy_at_0_8"], message


SETS = yaml.safe_load(GATE.read_text(encoding="utf-8")).get("sets", {})


@pytest.fixture(scope="module")
def jaffle_project(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], Path]:
    """Jaffle-shop warehouses built on demand, once per (seed, years)."""
    return {}


@pytest.mark.parametrize("name", sorted(SETS))
def test_blind_set_gate(name: str, golden_project: Path, jaffle_project: dict[tuple[int, int], Path],
                        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    from lore import Lore

    spec = SETS[name]
    where = spec["warehouse"]
    if where["kind"] == "demo":
        assert (where["seed"], where["scale"]) == (GOLDEN_SEED, GOLDEN_SCALE), "one demo build serves every demo set"
        project = golden_project
    elif where["kind"] == "jaffle":
        from evals.jaffle.warehouse import build

        key = (where["seed"], where["years"])
        if key not in jaffle_project:
            folder = tmp_path_factory.mktemp("jaffle") / "project"
            build(folder, years=where["years"], seed=where["seed"])
            jaffle_project[key] = folder
        project = jaffle_project[key]
    else:
        assert where["kind"] == "insurance", f"unknown warehouse kind {where['kind']!r} in gate.yaml"
        from evals.insurance.warehouse import build as build_insurance

        folder = tmp_path_factory.mktemp("insurance") / "project"
        build_insurance(folder, seed=where["seed"], scale=where["scale"])
        project = folder
    path = GOLDEN.parent / name
    golden = load_golden(path)
    with Lore.open(project, today=golden.today, feedback=False) as lore:
        report = evaluate(lore, golden, path)
    write_report(report, tmp_path)
    s = report.summary
    message = explain(report, tmp_path)
    print(message)
    assert s.gold_errors == 0, f"some gold SQL failed: fix evals/golden/{name}\n" + message
    assert s.accuracy is not None and s.accuracy >= spec["min_accuracy"], message
    if s.confidence.share_at_high:
        assert s.confidence.accuracy_at_high >= spec["min_accuracy_at_0_8"], message
