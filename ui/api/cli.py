"""``lore serve`` (the HTTP API) and ``lore keys`` (its API keys).

Registered through the ``lore.commands`` entry-point group, so the core never imports them. The server is
uvicorn running the app factory :func:`ui.api.app.app_from_env`: the project and the settings reach it (and each
of ``--workers`` processes) through ``LORE_*`` variables, never through the command line of another process.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from lore.cli import JsonOpt, ProjectOpt, console, handle_errors
from lore.project import Project

#: the app factory uvicorn imports in every worker
APP_FACTORY = "ui.api.app:app_from_env"
#: how long an idle keep-alive connection stays open (uvicorn's default, 5 s, is shorter than a client's pause
#: between requests: it closes connections the client is about to reuse, and that request fails; a proxy or load
#: balancer in front should time out first, so this is above their usual 60 s)
KEEP_ALIVE_S = 75


def serve_env(project: Path, trust_header: str | None, slack: bool | None = None) -> dict[str, str]:
    """The variables the server's workers read their project, trusted header and Slack switch from.

    >>> serve_env(Path("/p"), None)
    {'LORE_PROJECT': '/p'}
    >>> serve_env(Path("/p"), "X-Forwarded-User")["LORE_API_TRUST_HEADER"]
    'X-Forwarded-User'
    >>> serve_env(Path("/p"), None, slack=False)["LORE_API_SLACK"]
    'false'
    """
    env = {"LORE_PROJECT": str(project)}
    if trust_header:
        env["LORE_API_TRUST_HEADER"] = trust_header
    if slack is not None:
        env["LORE_API_SLACK"] = "true" if slack else "false"
    return env


def register(app: typer.Typer) -> None:
    """Add ``lore serve`` and ``lore keys`` to the ``lore`` command."""
    keys_app = typer.Typer(help="API keys of the HTTP API (`lore serve`): each acts as one principal of lore.yaml's "
                                "access section; only a hash is stored, in .lore/api.sqlite.", no_args_is_help=True)
    app.add_typer(keys_app, name="keys")

    @app.command("serve")
    @handle_errors
    def serve_cmd(
        project: ProjectOpt = Path("."),
        host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
        workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes (each opens the "
                                             "project; rate limits are per worker).")] = 1,
        trust_header: Annotated[Optional[str], typer.Option(
            "--trust-header", envvar="LORE_API_TRUST_HEADER",
            help="Behind an authenticating proxy on this machine: the header naming the signed-in user (e.g. "
                 "X-Forwarded-User), trusted only from loopback peers. Off by default.")] = None,
        slack: Annotated[Optional[bool], typer.Option(
            "--slack/--no-slack", envvar="LORE_API_SLACK",
            help="Serve the Slack bot at /slack/events too (needs LORE_SLACK_BOT_TOKEN and LORE_SLACK_SIGNING_SECRET). "
                 "Default: when both are set.")] = None,
    ) -> None:
        """Serve the HTTP API (/v1: conversations, streaming, feedback, metrics, SQL, data; /docs, /openapi.json).

        Callers authenticate with an API key from `lore keys create`. docs/api.md has every endpoint. With the Slack
        bot's settings, the bot answers at /slack/events of the same server (docs/slack.md).
        """
        import uvicorn  # lazy: the server loads with the command that runs it
        from pydantic import ValidationError

        from lore.errors import OperatorError
        from lore.settings import Settings
        from ui.api.app import slack_wanted  # lazy: the API loads with the command that serves it
        from ui.api.service import is_loopback  # lazy: the API loads with the command that serves it

        root = Project.open(project).root  # a missing project fails here, with the fix in the message
        try:
            # a bad LORE_ setting fails here, not in each worker
            settings = Settings(project=root, **({"api_slack": slack} if slack is not None else {}))
        except ValidationError as err:
            problems = "; ".join(f"LORE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in err.errors())
            raise OperatorError(f"A LORE_ setting is not valid: {problems}.",
                                hint="Fix or unset it (docs/api.md lists the API's settings).") from None
        if trust_header and not is_loopback(host):
            raise OperatorError(f"--trust-header needs --host on loopback (127.0.0.1 or ::1), not {host}.",
                                hint="Run the authenticating proxy on this machine and let it reach LORE on loopback: "
                                     "anyone who reached the port directly could otherwise name any user.")
        if slack_wanted(settings):
            from ui.slack.asgi import require_http_credentials  # lazy: slack-bolt loads when the bot is served

            require_http_credentials(settings)  # missing tokens fail here, naming the variables
            if workers > 1:
                raise OperatorError("The Slack bot keeps each thread's conversation and the deliveries it has seen in "
                                    f"its process: it cannot be served by {workers} workers.",
                                    hint="Serve it with --workers 1, or run the API with --no-slack and the bot on its "
                                         "own with `lore slack`.")
        os.environ.update(serve_env(root, trust_header, slack))
        bot = ", the Slack bot at /slack/events" if slack_wanted(settings) else ""
        typer.echo(f"LORE API for {root} on http://{host}:{port} (docs at /docs{bot}; Ctrl+C to stop)", err=True)
        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, proxy_headers=False,
                    server_header=False, log_level="info", timeout_graceful_shutdown=30,
                    timeout_keep_alive=KEEP_ALIVE_S)

    @keys_app.command("create")
    @handle_errors
    def keys_create(
        principal: Annotated[str, typer.Option("--principal", help="Who the key acts as: a user of lore.yaml's access "
                                               "section (their scope applies to every request).")],
        name: Annotated[Optional[str], typer.Option("--name", help="A label: who or what uses the key.")] = None,
        project: ProjectOpt = Path("."),
        as_json: JsonOpt = False,
    ) -> None:
        """Create an API key and print its token (once: only its hash is stored)."""
        from lore.access import AccessConfig  # lazy: loaded by the command that needs it
        from ui.api.keys import KeyStore  # lazy: loaded by the command that needs it
        from ui.api.store import API_FILE, Database  # lazy: loaded by the command that needs it

        proj = Project.open(project)
        access = AccessConfig.parse(proj.config.access, where=str(proj.root / "lore.yaml"))
        key, token = KeyStore(Database(proj.state_dir / API_FILE)).create(principal, name=name)
        if as_json:
            typer.echo(json.dumps({"id": key.id, "principal": key.principal, "name": key.name, "token": token}))
            return
        out = console()
        out.print(f"Key {key.id} for {key.principal}. Its token (shown only now; store it as a secret):")
        typer.echo(token)
        if access is not None and not access.principal(principal).known:
            out.print(f"Note: the access section does not name {principal}: `default: {access.default}` applies to "
                      "this key.", style="yellow")

    @keys_app.command("list")
    @handle_errors
    def keys_list(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
        """List the API keys (never their tokens), revoked ones too."""
        from rich.table import Table  # lazy: loaded by the command that needs it

        from ui.api.keys import KeyStore  # lazy: loaded by the command that needs it
        from ui.api.store import API_FILE, Database  # lazy: loaded by the command that needs it

        proj = Project.open(project)
        keys = KeyStore(Database(proj.state_dir / API_FILE)).list()
        if as_json:
            typer.echo(json.dumps([asdict(k) for k in keys], indent=2))
            return
        if not keys:
            console().print("No API keys yet: `lore keys create --principal NAME` makes one.")
            return
        table = Table(title="API keys", title_justify="left", header_style="bold")
        for head in ("id", "principal", "name", "created", "revoked"):
            table.add_column(head)
        for k in keys:
            table.add_row(k.id, k.principal, k.name or "", k.created_at[:19], (k.revoked_at or "")[:19])
        console().print(table)

    @keys_app.command("revoke")
    @handle_errors
    def keys_revoke(
        key_id: Annotated[str, typer.Argument(help="The key's id (`lore keys list`).")],
        project: ProjectOpt = Path("."),
    ) -> None:
        """Revoke an API key: every worker refuses it from the next request on."""
        from ui.api.keys import KeyStore  # lazy: loaded by the command that needs it
        from ui.api.store import API_FILE, Database  # lazy: loaded by the command that needs it

        key = KeyStore(Database(Project.open(project).state_dir / API_FILE)).revoke(key_id)
        console().print(f"Key {key.id} ({key.principal}) is revoked since {key.revoked_at}.")
