"""The agent's own credential, kept on disk so that a restart does not enrol again.

The file is JSON (``{"fleet": URL, "agent_id": ID, "credential": SECRET}``), created with mode 0600
(owner read/write only) before any secret is written to it, and replaced atomically, so a crash
never leaves a half-written or world-readable credential behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from evaluators.fleet.protocol import AGENT_CREDENTIAL_PREFIX


class CredentialFileError(Exception):
    """The credential file exists but cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class StoredCredential:
    """An enrolled agent's identity.

    Attributes:
        fleet: The coordinator URL it was issued by (informational).
        agent_id: The agent's id.
        credential: ``agent.<id>.<secret>``, sent as the Bearer token.
    """

    fleet: str
    agent_id: str
    credential: str


def load(path: Path) -> StoredCredential | None:
    """The credential stored at ``path``, or None when there is none yet.

    Raises:
        CredentialFileError: Unreadable, malformed, or readable by other users.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise CredentialFileError(
            f"the credential file {path} is readable by other users (mode {oct(mode & 0o777)}): "
            f"run chmod 600 {path}, or delete it and enrol again"
        )
    try:
        data = json.loads(path.read_text())
        stored = StoredCredential(str(data["fleet"]), str(data["agent_id"]), str(data["credential"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CredentialFileError(f"the credential file {path} is unreadable ({exc}): delete it to enrol again") from exc
    if not stored.credential.startswith(f"{AGENT_CREDENTIAL_PREFIX}{stored.agent_id}."):
        raise CredentialFileError(f"the credential file {path} does not hold an agent credential: delete it")
    return stored


def save(path: Path, stored: StoredCredential) -> None:
    """Write ``stored`` to ``path`` (mode 0600, atomically; the folder is created 0700 if missing)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"fleet": stored.fleet, "agent_id": stored.agent_id, "credential": stored.credential}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(partial, 0o600)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
