"""Access rules: the ``access:`` section of lore.yaml, who is who, and which rules apply to a user."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import ValidationError, field_validator

from lore.errors import ConfigError
from lore.types import Frozen


log = logging.getLogger("lore.access")

#: the alias prefix of the tables inside a row-filter subquery
ALIAS = "_lore_scope"
Unreachable = Literal["hide_facts", "hide", "show"]


class RowRule(Frozen):
    """One row filter: a predicate over one node's attributes, e.g. ``countries.region = 'EMEA'``."""

    filter: str
    #: roles on the path from a table to the filter's node, when several paths exist
    via: tuple[str, ...] = ()
    #: tables whose rows cannot be tied to the filter's node: hide facts (default), hide all, or show whole
    unreachable: Unreachable = "hide_facts"


class Rule(Frozen):
    """What one group or user may see (every field narrows; the defaults narrow nothing)."""

    #: groups only: the identities in the group
    members: tuple[str, ...] = ()
    #: users only: the groups the user is in
    groups: tuple[str, ...] = ()
    #: users only: other names of the same person (``slack:TEAM:USER``)
    identities: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("*",)
    hide_metrics: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ("*",)
    hide_dimensions: tuple[str, ...] = ()
    rows: tuple[RowRule, ...] = ()
    #: says "no limits" explicitly: the person (or the group's members) is not under ``default:``
    unrestricted: bool = False

    @field_validator("rows", mode="before")
    @classmethod
    def _plain_filters(cls, value: Any) -> Any:
        if isinstance(value, (str, dict)):
            value = [value]
        if isinstance(value, (list, tuple)):
            return [{"filter": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("members", "groups", "identities", "metrics", "hide_metrics", "dimensions", "hide_dimensions",
                     mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def limits(self) -> dict[str, Any]:
        """The fields that narrow access (not who the rule is for), for the scope's identity."""
        return self.model_dump(mode="json", exclude={"members", "groups", "identities", "unrestricted"})

    @property
    def narrows(self) -> bool:
        return self.limits() != Rule().limits()


class AccessConfig(Frozen):
    """The ``access:`` section of ``lore.yaml``."""

    #: users no rule names: ``all`` (no limits), ``none`` (nothing) or a group's name
    default: str = "all"
    groups: dict[str, Rule] = {}
    users: dict[str, Rule] = {}

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, *, where: str = "lore.yaml") -> AccessConfig | None:
        """Validate the raw section; None when there is none. Errors say which key is wrong."""
        if raw is None:
            return None
        try:
            config = cls.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(f"access.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ConfigError(f"{where}: {problems}", hint="See the README's 'Access control' section for the keys.") from None
        known = set(config.groups)
        if config.default not in ("all", "none") and config.default not in known:
            raise ConfigError(f"{where}: access.default is {config.default!r}, which is not a group",
                              hint="Use all, none or one of the groups: " + (", ".join(sorted(known)) or "(none defined)"))
        for user, rule in config.users.items():
            for group in rule.groups:
                if group not in known:
                    raise ConfigError(f"{where}: access.users.{user}.groups names {group!r}, which is not a group",
                                      hint="Define it under access.groups, or remove it.")
            if rule.members:
                raise ConfigError(f"{where}: access.users.{user} has members; members belong to groups")
        for name, rule in config.groups.items():
            if rule.groups or rule.identities:
                raise ConfigError(f"{where}: access.groups.{name} may not have groups or identities",
                                  hint="List the group's people under members.")
        for kind, entries in (("users", config.users), ("groups", config.groups)):
            for name, rule in entries.items():
                if rule.unrestricted and rule.narrows:
                    raise ConfigError(f"{where}: access.{kind}.{name} says unrestricted: true and also sets limits",
                                      hint="Remove unrestricted (the limits apply) or the limits (no limits).")
        owners: dict[str, str] = {}
        for name, rule in config.users.items():
            for identity in {normalize_identity(name), *(normalize_identity(i) for i in rule.identities)}:
                if identity in owners and owners[identity] != name:
                    raise ConfigError(f"{where}: the identity {identity!r} belongs to two users, access.users."
                                      f"{owners[identity]} and access.users.{name}",
                                      hint="One identity names one person: remove it from one of them.")
                owners[identity] = name
        if config.default != "all":
            for name, rule in config.users.items():
                if not rule.narrows and not rule.groups and not rule.unrestricted and not config.groups_of(name):
                    warnings.warn(
                        f"{where}: access.users.{name} sets no limits and is in no group, so `default: "
                        f"{config.default}` applies to it (older versions gave such an entry no limits). To keep "
                        "that, write `unrestricted: true` under it.", DeprecationWarning, stacklevel=2)
                    log.warning("access.users.%s has no limits and no group: default %s applies "
                                "(write unrestricted: true for no limits)", name, config.default)
        return config

    def groups_of(self, user: str) -> tuple[str, ...]:
        """The groups a ``users:`` entry belongs to: those it names, and those listing any of its identities."""
        rule = self.users[user]
        mine = {normalize_identity(user), *(normalize_identity(i) for i in rule.identities)}
        listed = [g for g, group in self.groups.items() if mine & {normalize_identity(m) for m in group.members}]
        return tuple(dict.fromkeys([*rule.groups, *listed]))

    def principal(self, identity: str) -> Principal:
        """The person ``identity`` names: a ``users:`` entry holding it (by key or ``identities:``), else the
        identity alone; with every group that lists any of that person's identities."""
        me = normalize_identity(identity)
        for name, rule in self.users.items():
            mine = (normalize_identity(name), *(normalize_identity(i) for i in rule.identities))
            if me in mine:
                return Principal(id=f"user:{normalize_identity(name)}", name=name, identities=tuple(dict.fromkeys(mine)),
                                 groups=self.groups_of(name), known=True)
        groups = tuple(g for g, group in self.groups.items() if me in {normalize_identity(m) for m in group.members})
        return Principal(id=me, name=identity.strip(), identities=(me,), groups=groups, known=bool(groups))


def normalize_identity(identity: str) -> str:
    """The one form identities are compared in: Unicode NFKC, inner spaces collapsed, ends trimmed, case folded.

    >>> normalize_identity("  Ana@Example.COM "), normalize_identity("slack:T1:UANA") == normalize_identity("SLACK:t1:uana")
    ('ana@example.com', True)
    """
    return " ".join(unicodedata.normalize("NFKC", identity).split()).casefold()


class Principal(Frozen):
    """One person, whichever of their identities arrived (a login email, ``slack:TEAM:USER``, a header value)."""

    #: stable id: ``user:<entry>`` for a ``users:`` entry, else the normalised identity
    id: str
    #: the ``users:`` key, or the identity as given
    name: str
    #: every normalised identity known to be this person
    identities: tuple[str, ...]
    #: the groups that apply to the person
    groups: tuple[str, ...] = ()
    #: the access section names this person (a ``users:`` entry or a group member)
    known: bool = False


def rules_for(config: AccessConfig | None, user: str | None) -> tuple[tuple[str, Rule], ...] | None:
    """The named rules that apply to ``user``; None when nothing limits them.

    ``user=None`` is the operator (the Python API and the CLI without ``--user``): no limits. Whichever
    identity arrives, the rules are the person's: their ``users:`` entry, every group that lists any of their
    identities, and ``default:`` when neither gives a rule (a ``users:`` entry with no limits and no group is
    under ``default:`` too; ``unrestricted: true`` says "no limits" explicitly).

    >>> cfg = AccessConfig.model_validate({"default": "none"})
    >>> [n for n, _ in rules_for(cfg, "stranger")]
    ['default:none']
    >>> rules_for(cfg, None) is None
    True
    """
    if config is None or user is None:
        return None
    person = config.principal(user)
    rules: list[tuple[str, Rule]] = []
    entry = config.users.get(person.name) if person.id.startswith("user:") else None
    if entry is not None and entry.narrows:
        rules.append((f"user:{person.name}", entry))
    rules += [(f"group:{g}", config.groups[g]) for g in person.groups]
    named = bool(rules) or (entry is not None and entry.unrestricted)
    if not named:
        if config.default == "all":
            return None
        if config.default == "none":
            return (("default:none", Rule(metrics=(), dimensions=())),)
        return ((f"group:{config.default}", config.groups[config.default]),)
    narrowing = tuple((n, r) for n, r in rules if r.narrows)
    return narrowing or None


def rules_for_all(config: AccessConfig | None, users: Sequence[str | None]) -> tuple[tuple[str, Rule], ...] | None:
    """The rules of several people at once: what every one of them may see (each person's rules narrow it).

    >>> cfg = AccessConfig.model_validate({"default": "all", "users": {"a": {"hide_metrics": ["m"]}}})
    >>> [n for n, _ in rules_for_all(cfg, ["a", "b"])], rules_for_all(cfg, ["b"]) is None
    (['user:a'], True)
    """
    merged: dict[str, Rule] = {}
    for user in users:
        for name, rule in rules_for(config, user) or ():
            merged.setdefault(name, rule)
    return tuple(merged.items()) or None


def scope_id(rules: Sequence[tuple[str, Rule]]) -> str:
    """A short stable id of what the rules allow (users with the same limits share caches).

    >>> scope_id([("group:a", Rule(hide_metrics=("x",)))]) == scope_id([("user:b", Rule(hide_metrics=("x",)))])
    True
    """
    limits = sorted(json.dumps(r.limits(), sort_keys=True) for _, r in rules)
    return "scope-" + hashlib.sha256(json.dumps(limits).encode()).hexdigest()[:16]


def _matches(name: str, patterns: Iterable[str]) -> bool:
    """Case-insensitive glob match.

    >>> _matches("countries.region", ["countries.*"]), _matches("x", [])
    (True, False)
    """
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns)


def _allowed(name: str, allow: Iterable[str], deny: Iterable[str]) -> bool:
    return _matches(name, allow) and not _matches(name, deny)
