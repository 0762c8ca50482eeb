"""``lore slack``: run the Slack bot for a project.

Registered through the ``lore.commands`` entry-point group, so the core never imports it.
Tokens come from the environment (``LORE_SLACK_BOT_TOKEN``, ``LORE_SLACK_SIGNING_SECRET``,
``LORE_SLACK_APP_TOKEN`` for Socket Mode), never from the command line, where other users
of the machine could read them. ``LORE_SLACK_CHANNEL_SCOPE`` (``members`` or ``ephemeral``)
says for whom channel answers are computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lore.cli import ProjectOpt, handle_errors


def register(app: typer.Typer) -> None:
    """Add ``lore slack`` to the ``lore`` command."""

    @app.command("slack")
    @handle_errors
    def slack_cmd(
        project: ProjectOpt = Path("."),
        port: Annotated[Optional[int], typer.Option("--port", min=1, max=65535, envvar="LORE_SLACK_PORT",
                                                    help="HTTP mode: the port to listen on (default 3000).")] = None,
        host: Annotated[Optional[str], typer.Option("--host", envvar="LORE_SLACK_HOST",
                                                    help="HTTP mode: the interface to listen on (default 127.0.0.1; "
                                                         "0.0.0.0 in a container).")] = None,
    ) -> None:
        """Run the Slack bot: it answers mentions, DMs and /lore in threads, with charts and feedback buttons.

        HTTP mode needs LORE_SLACK_BOT_TOKEN and LORE_SLACK_SIGNING_SECRET; Slack calls /slack/events on this port
        through your HTTPS proxy (`lore serve` can also serve it, next to the HTTP API). Socket Mode needs LORE_SLACK_BOT_TOKEN and LORE_SLACK_APP_TOKEN, and no public URL.
        In channels, answers are computed for every member (LORE_SLACK_CHANNEL_SCOPE=members, the default) or shown
        to the asker alone (ephemeral). docs/slack.md has the app manifest.
        """
        from pydantic import ValidationError
        from rich.console import Console

        from lore.core import Lore
        from lore.errors import OperatorError
        from lore.settings import Settings
        from ui.slack.app import require_credentials, run, slack_mode

        try:
            settings = Settings(project=project)
        except ValidationError as err:
            problems = "; ".join(f"LORE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in err.errors())
            raise OperatorError(f"A LORE_ setting is not valid: {problems}.",
                                hint="Fix or unset it (docs/slack.md lists the bot's settings).") from None
        require_credentials(settings)  # fail before opening anything
        out = Console(stderr=True, highlight=False)
        lore = Lore.open(project, settings=settings)
        with out.status("Opening the project and its retrieval index…"):
            lore.warm_up()  # engine, layer, index, embedder, planner and compiler, before threads share them
            _ = lore.planner, lore.compiler
        out.print(f"LORE Slack bot for {lore.project.root} ({slack_mode(settings)} mode).")
        try:
            run(lambda: lore, settings, host=host, port=port, on_ready=out.print)
        except KeyboardInterrupt:
            out.print("Stopped.")
