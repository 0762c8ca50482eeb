"""``lore doctor``'s check of the browser the chat page's browser test drives (``lore.checks`` entry point ``browser``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

from lore.doctor import Check, DoctorContext

#: Debian's Chromium: the browser test never downloads a browser build of its own
CHROMIUM = Path("/usr/bin/chromium")


def checks(ctx: DoctorContext) -> Iterator[Check]:
    if not CHROMIUM.exists():
        yield Check(name="browser", status="warn", detail=f"no Chromium at {CHROMIUM}: the chat page's browser test "
                    "will be skipped", fix="apt-get install -y chromium (./dev.sh test does it when run as root).")
        return
    try:
        done = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        yield Check(name="browser", status="warn", detail=f"{CHROMIUM} does not run: {err}",
                    fix="Reinstall it: apt-get install --reinstall chromium.")
        return
    if done.returncode != 0:
        yield Check(name="browser", status="warn", detail=f"{CHROMIUM} --version failed: {done.stderr.strip()[:200]}",
                    fix="Reinstall it: apt-get install --reinstall chromium.")
        return
    yield Check(name="browser", status="ok", detail=f"{done.stdout.strip()} (for the chat page's browser test)")
