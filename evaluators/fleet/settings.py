"""Coordinator settings: command-line flags override ``HWSEARCH_FLEET_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from evaluators.fleet.protocol import MIN_TOKEN_LENGTH

MIB = 1024 * 1024


class FleetSettings(BaseSettings):
    """How the coordinator runs.

    Invariants: the token is at least ``MIN_TOKEN_LENGTH`` characters; agents heartbeat every
    ``lease_seconds / 3`` and long-poll at most ``max_wait_seconds``, so ``agent_live_seconds``
    (how long after its last request an agent still counts as live) must exceed both.

    Attributes:
        token: Shared secret every request must carry (``Authorization: Bearer <token>``);
            env ``HWSEARCH_FLEET_TOKEN``.
        storage: SQLAlchemy URL of the study database that holds the fleet tables.
        lease_seconds: How long a claimed job stays with its agent without a heartbeat.
        max_attempts: Leases a job may lose (agent died, link cut) before it fails.
        max_artifact_bytes: Largest artifact accepted on upload or served on download.
        max_json_bytes: Largest JSON request body.
        max_wait_seconds: Longest long-poll (job claims and job-status waits).
        agent_live_seconds: How long after its last request an agent counts as live (default:
            45 s, or three times the longest quiet gap of a live agent when that is longer).
    """

    model_config = SettingsConfigDict(env_prefix="HWSEARCH_FLEET_", extra="forbid", hide_input_in_errors=True)

    token: SecretStr
    storage: str = "sqlite:///runs/hwsearch.db"
    lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    max_attempts: int = Field(default=3, ge=1, le=100)
    max_artifact_bytes: int = Field(default=256 * MIB, ge=1024, le=2048 * MIB)
    max_json_bytes: int = Field(default=1 * MIB, ge=1024, le=64 * MIB)
    max_wait_seconds: float = Field(default=10.0, ge=0.0, le=60.0)
    agent_live_seconds: float | None = Field(default=None, gt=0.0)

    @field_validator("token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the fleet token must have at least {MIN_TOKEN_LENGTH} characters; generate one with "
                "python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return value

    @model_validator(mode="after")
    def _liveness_window_covers_polls(self) -> "FleetSettings":
        quiet = max(self.max_wait_seconds, self.heartbeat_seconds)
        if self.agent_live_seconds is None:
            self.agent_live_seconds = max(45.0, 3.0 * quiet)
        elif self.agent_live_seconds <= quiet:
            raise ValueError(
                "agent_live_seconds must exceed max_wait_seconds and lease_seconds / 3, or idle "
                "and busy agents would look dead between their requests"
            )
        return self

    @property
    def live_seconds(self) -> float:
        """How long after its last request an agent counts as live."""
        assert self.agent_live_seconds is not None
        return self.agent_live_seconds

    @property
    def heartbeat_seconds(self) -> float:
        """How often agents must heartbeat a running job (a third of the lease)."""
        return self.lease_seconds / 3.0
