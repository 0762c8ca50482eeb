"""What a person sees: ``lore ui`` on loopback, driven by headless Chromium through Playwright.

Streamlit renders after the page loads (a plain ``chromium --screenshot`` is blank), so the
test waits for the answer before it checks the answer text, the chart and the confidence
badge, and saves a screenshot into the test's output folder (and to /tmp/lore_ui.png).

Needs Debian's Chromium (``apt-get install chromium``) and Playwright for Python
(``pip install playwright``; no ``playwright install``: the system browser is used).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lore import Lore
from ui import render

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = "streaming hours by region in 2026"
SHARED_SCREENSHOT = Path("/tmp/lore_ui.png")

pytestmark = pytest.mark.slow


@pytest.fixture()
def sync_playwright() -> Any:
    """Playwright's entry point, or a skip that says what to install (checked before the server starts)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright; the test uses Debian's Chromium)")
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    return sync_playwright


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lore_command() -> list[str]:
    """The installed ``lore`` next to this interpreter, else the same CLI through ``python -m``."""
    exe = Path(sys.executable).with_name("lore")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lore.cli"]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`lore ui` exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"`lore ui` did not become healthy in {timeout:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture()
def server(sync_playwright: Any, project_copy: Path, tmp_path: Path) -> Iterator[str]:
    """``lore ui --project COPY --port P --host 127.0.0.1`` in its own process group, stopped after the test."""
    port = free_port()
    log = tmp_path / "lore-ui.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                      os.environ.get("PYTHONPATH")]))}
    with log.open("wb") as out:
        proc = subprocess.Popen([*lore_command(), "ui", "--project", str(project_copy), "--port", str(port),
                                 "--host", "127.0.0.1"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()  # `lore ui` forwards it to the Streamlit server
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_chat_page_answers_with_chart_and_badge_in_a_real_browser(sync_playwright: Any, server: str,
                                                                      project_copy: Path, tmp_path: Path) -> None:
    # what the page must show: the same question through the public API (the warehouse opens read-only twice)
    with Lore.open(project_copy) as lore:
        expected = lore.chat().ask(QUESTION)
    assert expected.status == "answered"
    badge = render.confidence_badge(expected)

    shot = tmp_path / "chat_page.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1500})
            page.goto(server, wait_until="domcontentloaded")
            page.get_by_text("What would you like to know?").wait_for(timeout=90_000)
            box = page.get_by_test_id("stChatInputTextArea")
            box.fill(QUESTION)
            box.press("Enter")

            headline = page.locator("[data-testid=stChatMessage] h4").first
            headline.wait_for(timeout=120_000)
            assert headline.inner_text().strip() == render.strip_markup(expected.message)

            chart = page.get_by_test_id("stVegaLiteChart").first  # the vega-embed view: an SVG (or canvas) of marks
            chart.locator("svg.marks, canvas.marks").first.wait_for(timeout=30_000)
            assert chart.locator("svg.marks .mark-rect path, canvas.marks").count() >= 1  # the bars are drawn

            page.get_by_text(badge.label).first.wait_for(timeout=10_000)  # the badge: level and score
            page.get_by_test_id("stDataFrame").first.wait_for(timeout=10_000)
            page.get_by_test_id("stFeedback").first.wait_for(timeout=10_000)
            assert page.get_by_test_id("stDownloadButton").count() == 2

            page.wait_for_timeout(1500)  # let the table and the chart finish drawing before the picture
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert shot.stat().st_size > 20_000
    try:
        shutil.copyfile(shot, SHARED_SCREENSHOT)
    except OSError:
        pass  # the copy is a convenience for people; the test's own folder has the picture
