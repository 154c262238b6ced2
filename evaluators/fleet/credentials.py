"""Per-agent credentials: ``agent.<agent id>.<secret>``, of which the coordinator stores a hash.

Standard library only. The secret is 256 random bits, so a plain SHA-256 is the right storage
form (a slow password hash buys nothing against a secret that cannot be guessed); comparisons are
constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from evaluators.fleet.protocol import AGENT_CREDENTIAL_PREFIX, AGENT_ID_PATTERN

_SECRET = r"[A-Za-z0-9_-]{43}"
_CREDENTIAL = re.compile(
    re.escape(AGENT_CREDENTIAL_PREFIX) + "(" + AGENT_ID_PATTERN.strip("^$") + r")\.(" + _SECRET + ")$"
)
_NOTHING = hashlib.sha256(b"").hexdigest()


def issue(agent_id: str) -> tuple[str, str]:
    """A new credential for ``agent_id`` and the hash to store: ``(credential, secret_sha256)``."""
    secret = secrets.token_urlsafe(32)
    return f"{AGENT_CREDENTIAL_PREFIX}{agent_id}.{secret}", digest(secret)


def digest(secret: str) -> str:
    """The stored form of a secret (hex SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(text: str) -> tuple[str, str] | None:
    """``(agent_id, secret)`` of a well-formed credential, else None."""
    match = _CREDENTIAL.match(text)
    return None if match is None else (match.group(1), match.group(2))


def matches(secret: str, stored_sha256: str | None) -> bool:
    """Whether ``secret`` hashes to ``stored_sha256`` (constant-time; False when nothing is stored).

    Takes as long for an unknown agent as for a known one, so timing reveals no agent ids.
    """
    return hmac.compare_digest(digest(secret), stored_sha256 or _NOTHING) and stored_sha256 is not None
