"""``lore ui``: start the chat page (a Streamlit server in a subprocess).

Registered through the ``lore.commands`` entry-point group, so the core never imports it.
The server runs headless, sends no usage statistics and listens on loopback unless told
otherwise; the project folder reaches the page through ``LORE_PROJECT``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Final

import typer

from lore.cli import ProjectOpt, handle_errors

#: the Streamlit script
APP_PATH: Final = Path(__file__).with_name("app.py")
#: where the page finds its project (also read by the app when started by hand)
PROJECT_ENV: Final = "LORE_PROJECT"

#: the look of the page: LORE's chart palette blue, a light base, rounded corners
THEME: Final[Mapping[str, str]] = {
    "theme.base": "light",
    "theme.primaryColor": "#0072B2",
    "theme.backgroundColor": "#FFFFFF",
    "theme.secondaryBackgroundColor": "#F4F6F9",
    "theme.textColor": "#1F2A37",
    "theme.baseRadius": "medium",
}


def streamlit_command(project: Path, *, port: int, host: str, python: str | None = None) -> list[str]:
    """The command line that serves the chat page.

    >>> cmd = streamlit_command(Path("/p"), port=8600, host="127.0.0.1", python="py")
    >>> cmd[:4], cmd[4].endswith("app.py")
    (['py', '-m', 'streamlit', 'run'], True)
    >>> "--browser.gatherUsageStats=false" in cmd, "--server.headless=true" in cmd, "--server.port=8600" in cmd
    (True, True, True)
    >>> cmd[-2:]
    ['--project', '/p']
    """
    options = {
        "server.port": str(port),
        "server.address": host,
        "server.headless": "true",
        "server.fileWatcherType": "none",
        "server.runOnSave": "false",
        "browser.gatherUsageStats": "false",
        "browser.serverAddress": host,
        "browser.serverPort": str(port),
        "client.toolbarMode": "viewer",
        "runner.magicEnabled": "false",
        "client.showErrorDetails": "false",
        "global.developmentMode": "false",
        **THEME,
    }
    return [python or sys.executable, "-m", "streamlit", "run", str(APP_PATH),
            *(f"--{k}={v}" for k, v in options.items()), "--", "--project", str(project)]


def ui_env(project: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: the caller's, with the project and no telemetry.

    >>> env = ui_env(Path("/p"), {"PATH": "/bin"})
    >>> env["LORE_PROJECT"], env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"], env["PATH"]
    ('/p', 'false', '/bin')
    """
    return {**base, PROJECT_ENV: str(project), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            "STREAMLIT_SERVER_HEADLESS": "true"}


def run_ui(project: Path, *, port: int, host: str, argv_extra: Sequence[str] = ()) -> int:
    """Serve the chat page until interrupted; returns the server's exit code."""
    cmd = streamlit_command(project, port=port, host=host)
    typer.echo(f"LORE chat page for {project} on http://{host}:{port} (Ctrl+C to stop)", err=True)
    proc = subprocess.Popen([*cmd, *argv_extra], env=ui_env(project, os.environ))

    def forward(signum: int, frame: object) -> None:  # a stopped `lore ui` stops its server too
        proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    """Add ``lore ui`` to the ``lore`` command."""

    @app.command("ui")
    @handle_errors
    def ui_cmd(
        project: ProjectOpt = Path("."),
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve the page on.")] = 8501,
        host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    ) -> None:
        """Open the chat page: ask questions, see answers with charts, give feedback."""
        from lore.project import Project

        root = Project.open(project).root  # a missing project fails here, with the fix in the message
        raise typer.Exit(run_ui(root, port=port, host=host))
