"""``lore ui``: registered through the entry-point group, with flags that match the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ui.cli import APP_PATH, streamlit_command


def lore(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lore")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lore.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)


def test_lore_ui_help_lists_its_options() -> None:
    done = lore("ui", "--help")
    assert done.returncode == 0, done.stderr
    for flag in ("--project", "--port", "--host"):
        assert flag in done.stdout
    assert "127.0.0.1" in done.stdout


def test_lore_ui_refuses_a_missing_project_before_starting_a_server(tmp_path: Path) -> None:
    done = lore("ui", "--project", str(tmp_path / "nowhere"), "--port", "8599")
    assert done.returncode == 2
    assert "No LORE project" in done.stderr and "lore demo init" in done.stderr


def test_the_server_is_headless_on_loopback_without_telemetry() -> None:
    cmd = streamlit_command(Path("/p"), port=8600, host="127.0.0.1", python="python")
    assert cmd[1:5] == ["-m", "streamlit", "run", str(APP_PATH)]
    assert {"--server.headless=true", "--browser.gatherUsageStats=false", "--server.address=127.0.0.1",
            "--server.port=8600", "--runner.magicEnabled=false"} <= set(cmd)
    assert APP_PATH.is_file()
