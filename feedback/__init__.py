"""The feedback loop: votes that teach LORE, safely.

- :mod:`feedback.store`: the SQLite store (WAL, one durable transaction per
  event, idempotency keys); LORE's :class:`~lore.plugins.FeedbackBackend`,
  found through the ``lore.plugins`` entry point ``feedback``.
- :mod:`feedback.policy`: who reviews, whose votes verify at once.
- :mod:`feedback.review`: nominations become verified examples only after
  their SQL re-runs through the guard and the policy accepts them.
- :mod:`feedback.seed`: a file of questions and plans (``lore import dbt``
  writes one from saved queries) verified as examples, by the same votes
  and review.
- :mod:`feedback.export`: OpenAI chat and preference fine-tuning datasets.
- :mod:`feedback.cli`: ``lore feedback vote | review | seed | export | stats``.

The core (``lore/``) never imports this package.
"""
