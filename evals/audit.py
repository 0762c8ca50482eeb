"""Check the locked dependencies for known vulnerabilities with pip-audit (CI runs this: ``./dev.sh audit``).

    python -m evals.audit [--lock requirements.lock] [--service pypi|osv] [--strict]

Runs ``pip-audit -r LOCK --no-deps --disable-pip`` (every version in the lock is pinned, so nothing
is resolved or installed) and prints one line per vulnerable package and a summary. Exit codes:
0 when no known vulnerability was found, 1 when one was, 2 on misuse, 3 with ``--strict`` when
some packages could not be audited (the vulnerability service did not know them or could not be
reached). Without ``--strict`` packages that could not be audited are counted and reported loudly,
never silently passed: on a machine whose network reaches only a package mirror, the summary says
that nothing was audited.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    package: str
    version: str
    id: str
    fix_versions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


class AuditResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    audited: int
    skipped: tuple[tuple[str, str], ...]
    findings: tuple[Finding, ...]

    @property
    def nothing_audited(self) -> bool:
        return self.audited == 0 and bool(self.skipped)


def parse_report(report: dict) -> AuditResult:
    """Read pip-audit's JSON report.

    >>> r = parse_report({"dependencies": [
    ...     {"name": "a", "version": "1", "vulns": [{"id": "PYSEC-1", "fix_versions": ["2"], "aliases": ["CVE-1"]}]},
    ...     {"name": "b", "version": "2", "vulns": []},
    ...     {"name": "c", "version": "3", "skip_reason": "Dependency not found on PyPI"}]})
    >>> r.audited, [f.id for f in r.findings], r.skipped
    (2, ['PYSEC-1'], (('c', 'Dependency not found on PyPI'),))
    """
    audited, skipped, findings = 0, [], []
    for dep in report.get("dependencies", []):
        if dep.get("skip_reason"):
            skipped.append((str(dep.get("name")), str(dep["skip_reason"])))
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            findings.append(Finding(package=dep["name"], version=dep["version"], id=vuln["id"],
                                    fix_versions=tuple(vuln.get("fix_versions") or ()),
                                    aliases=tuple(vuln.get("aliases") or ())))
    return AuditResult(audited=audited, skipped=tuple(skipped), findings=tuple(findings))


def run_pip_audit(lock: Path, service: str) -> dict:
    exe = shutil.which("pip-audit") or str(Path(sys.executable).with_name("pip-audit"))
    if not Path(exe).exists():
        raise SystemExit("pip-audit is not installed: run ./dev.sh audit (it installs the dev extras)")
    cmd = [exe, "-r", str(lock), "--no-deps", "--disable-pip", "-s", service, "-f", "json", "--progress-spinner", "off"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    try:
        return json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        raise SystemExit(f"pip-audit failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=Path("requirements.lock"), help="the pinned requirements file")
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi", help="the vulnerability service")
    parser.add_argument("--strict", action="store_true", help="exit 3 when any package could not be audited")
    args = parser.parse_args(argv)
    if not args.lock.is_file():
        parser.error(f"{args.lock} does not exist (run from the repository root)")
    result = parse_report(run_pip_audit(args.lock, args.service))
    for f in result.findings:
        fix = f"fixed in {', '.join(f.fix_versions)}" if f.fix_versions else "no fixed version yet"
        print(f"VULNERABLE {f.package}=={f.version}: {f.id} {' '.join(f.aliases)} ({fix})")
    print(f"pip-audit ({args.service}): {result.audited} package(s) audited, {len(result.findings)} known "
          f"vulnerability(ies), {len(result.skipped)} package(s) could not be audited")
    if result.nothing_audited:
        reasons = sorted({reason.split(":")[0] for _, reason in result.skipped})
        print("WARNING: nothing was audited: the vulnerability service did not answer for any package "
              f"({'; '.join(reasons)[:300]}). From a machine that reaches the service, run ./dev.sh audit again.")
    if result.findings:
        return 1
    if args.strict and result.skipped:
        return 3
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
