"""API keys: each names one principal of lore.yaml's ``access:`` section; only a hash is stored.

A token reads ``lore_<id>_<secret>``: the id (12 hex digits) finds the key, the secret (32 random bytes,
URL-safe base64) proves it. The store keeps the id, the principal, a label, the SHA-256 of the secret and
the dates, never the token: it is shown once, by ``lore keys create``. A random 256-bit secret needs no salt
or slow hash (nothing to guess from its hash); comparisons are constant-time. A revoked key stays listed (who
had it, until when) and never verifies again, in every worker at once: each request reads the store.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from lore.errors import AskerError, UnknownReference

from ui.api.store import Database, now

#: what every token starts with (so a leaked one is easy to recognise and search for)
TOKEN_PREFIX: Final = "lore_"
_TOKEN = re.compile(r"^lore_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: str
    #: the identity the key acts as: a ``users:`` key of lore.yaml's access section, one of its identities, or a
    #: group member's name (without an access section, any name: it is recorded with answers and votes)
    principal: str
    name: str | None
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_token() -> tuple[str, str, str]:
    """A new key's id, its token, and the hash stored for it.

    >>> key_id, token, stored = new_token()
    >>> parse_token(token)[0] == key_id, stored == secret_hash(parse_token(token)[1]), token.startswith("lore_")
    (True, True, True)
    """
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{TOKEN_PREFIX}{key_id}_{secret}", secret_hash(secret)


def parse_token(token: str) -> tuple[str, str] | None:
    """A token's id and secret, or None when it is not shaped like one.

    >>> parse_token("lore_0123456789ab_" + "x" * 43)
    ('0123456789ab', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx')
    >>> parse_token("lore_0123456789ab_short"), parse_token("Bearer lore_x"), parse_token("")
    (None, None, None)
    """
    match = _TOKEN.match(token.strip())
    return (match.group("id"), match.group("secret")) if match else None


def secret_hash(secret: str) -> str:
    """The stored form of a secret: SHA-256, hex.

    >>> secret_hash("s")[:12]
    '043a718774c5'
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyStore:
    """Create, list, revoke and check API keys (in the API's SQLite file)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, principal: str, *, name: str | None = None) -> tuple[ApiKey, str]:
        """A new key for ``principal`` and its token (shown once: only its hash is kept)."""
        principal = principal.strip() if isinstance(principal, str) else ""
        if not principal:
            raise AskerError("A key needs the principal it acts as (--principal NAME).",
                             hint="Name a user of lore.yaml's access section, e.g. --principal ana@example.com.")
        key_id, token, stored = new_token()
        key = ApiKey(id=key_id, principal=principal, name=(name or "").strip() or None, created_at=now())
        with self.db.write() as conn:
            conn.execute("INSERT INTO api_keys (id, principal, name, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?)",
                         (key.id, key.principal, key.name, stored, key.created_at))
        return key, token

    def list(self) -> list[ApiKey]:
        """Every key, newest first (revoked ones too)."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT id, principal, name, created_at, revoked_at FROM api_keys "
                                "ORDER BY created_at DESC, id").fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key at once (revoking it again changes nothing); raises UnknownReference for an unknown id."""
        with self.db.write() as conn:
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now(), key_id))
            row = conn.execute("SELECT id, principal, name, created_at, revoked_at FROM api_keys WHERE id = ?",
                               (key_id,)).fetchone()
        if row is None:
            raise UnknownReference(f"No API key with id {key_id!r}.", hint="List the keys with `lore keys list`.")
        return ApiKey(*row)

    def verify(self, token: str) -> ApiKey | None:
        """The key a token proves (revoked keys included: check :attr:`ApiKey.active`); None when it proves none."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        with self.db.read() as conn:
            row = conn.execute("SELECT id, principal, name, created_at, revoked_at, secret_sha256 FROM api_keys "
                               "WHERE id = ?", (key_id,)).fetchone()
        if row is None or not hmac.compare_digest(row[5], secret_hash(secret)):
            return None
        return ApiKey(*row[:5])
