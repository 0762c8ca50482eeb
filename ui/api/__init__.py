"""LORE's HTTP API: one ASGI app (FastAPI) over a project, served by ``lore serve``.

- :mod:`ui.api.app`: the app factory, its routes and the error mapping (problem JSON);
- :mod:`ui.api.service`: what the routes share (the project, the stores, the rate limiter), never per request;
- :mod:`ui.api.store`: the API's SQLite file in the project's ``.lore/`` (conversations, answers, keys);
- :mod:`ui.api.keys`: API keys, stored hashed, each naming a principal of lore.yaml's ``access:``;
- :mod:`ui.api.limits`: the per-key token bucket and the request-size limit;
- :mod:`ui.api.cli`: ``lore serve`` and ``lore keys``, registered through the ``lore.commands`` entry points.

Like the chat page and the Slack bot it is an adapter: it calls :mod:`lore` (and the feedback API through
``Lore.feedback``), and the core never imports it. See docs/api.md.
"""
