"""Per-user access: which metrics and dimensions a user may see, and which rows.

Policies live in ``lore.yaml`` under ``access:``. Every rule that applies to a user
narrows what the user sees; no rule ever widens another::

    access:
      default: all                  # users no rule names: all (no limits), none, or a group's name
      groups:
        emea:
          members: [ana@example.com]
          hide_metrics: [content_cash_spend, production_budget]
          rows:
            - countries.region = 'EMEA'
      users:
        ana@example.com:
          identities: ["slack:T0123:U0456"]     # the same person in Slack
          hide_dimensions: ["accounts.birth_year"]
          rows:
            - filter: countries.country_iso_code IN ('DE', 'FR')
              unreachable: hide_facts           # or: hide, show

``metrics`` / ``dimensions`` are allow-lists of names or glob patterns (default ``*``),
``hide_metrics`` / ``hide_dimensions`` deny-lists. A row filter is a predicate over one
node's attributes. It is enforced where every SQL string is checked: the guard replaces
each table the query reads with a subquery that keeps only the rows in scope, following
the declared many-to-one links from that table to the filter's node (``via`` names roles
when several paths exist). A table whose rows cannot be tied to the filter's node is
hidden when it is a fact (``unreachable: hide_facts``, the default), always (``hide``),
or left whole (``show``). Metrics over hidden facts, dimensions of hidden nodes and the
columns only hidden metrics read disappear from retrieval, prompts, plans and SQL.

The identity comes from the caller (the chat page's sign-in, Slack's signed payload, the
operator's ``--user``), never from the question or the model.

>>> config = AccessConfig.model_validate({"groups": {"g": {"members": ["Ana"], "hide_metrics": ["m2"]}}})
>>> [name for name, _ in rules_for(config, "ana")]
['group:g']
>>> rules_for(config, "bob") is None
True
"""


from lore.access.config import (AccessConfig, Principal, Rule, RowRule, normalize_identity, rules_for, rules_for_all,
                                scope_id)
from lore.access.outside import Outside, cut_metadata, mentions, outside_access, outside_message, refs_visible
from lore.access.scope import Scope, build_scope
from lore.access.scoped import (ExampleJudge, NoAccessPlanner, ScopedPlanner, ScopedRetriever, outside, scoped_layer,
                                scoped_values)

__all__ = ["AccessConfig", "ExampleJudge", "NoAccessPlanner", "Outside", "Principal", "Rule", "RowRule", "Scope",
           "ScopedPlanner", "ScopedRetriever", "build_scope", "cut_metadata", "mentions", "normalize_identity", "outside",
           "outside_access", "outside_message", "refs_visible", "rules_for", "rules_for_all", "scope_id", "scoped_layer",
           "scoped_values"]
