"""The Slack bot: LORE answers app mentions, direct messages and ``/lore`` in threads.

- :mod:`ui.slack.blocks`: pure functions that turn an :class:`~lore.types.Answer` into Block Kit
  (escaped text, a compact table, a context line, feedback buttons) and Slack text back into a question.
- :mod:`ui.slack.app`: :func:`~ui.slack.app.build_app` wires a slack-bolt ``App`` (HTTP or Socket Mode)
  to a LORE project.
- :mod:`ui.slack.asgi`: the ``/slack/events`` route that serves it over HTTP, in ``lore slack`` or ``lore serve``.
- :mod:`ui.slack.cli`: the ``lore slack`` command.

Nothing is imported or opened at import time; see ``docs/slack.md`` for installing the app.
"""
