"""Coordinator settings: command-line flags override ``HWSEARCH_FLEET_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from evaluators.fleet.protocol import MIN_TOKEN_LENGTH

MIB = 1024 * 1024
DEFAULT_STORAGE = "sqlite:///runs/hwsearch.db"
_GENERATE = "generate one with python -c 'import secrets; print(secrets.token_hex(32))'"


class FleetSettings(BaseSettings):
    """How the coordinator runs.

    Invariants: the tokens are at least ``MIN_TOKEN_LENGTH`` characters and differ from each
    other; agents heartbeat every ``lease_seconds / 3`` and long-poll at most
    ``max_wait_seconds``, so ``agent_live_seconds`` (how long after its last request an agent
    still counts as live) must exceed both. TLS needs a certificate and its key, both readable,
    and an enrolment token: legacy shared-token mode never runs over TLS (a deployment that
    bothers to encrypt also wants revocable per-agent credentials).

    Attributes:
        token: The fleet token: the search side's secret (``Authorization: Bearer <token>``);
            env ``HWSEARCH_FLEET_TOKEN``. Without ``enrol_token`` (legacy shared-token mode) it
            also works on every agent route.
        enrol_token: When set, agents enrol with it (it works on ``POST /v1/enrol`` only) and then
            use their own revocable credentials; env ``HWSEARCH_FLEET_ENROL_TOKEN``.
        tls_cert: PEM certificate (chain) to serve HTTPS with; env ``HWSEARCH_FLEET_TLS_CERT``.
        tls_key: Its PEM private key; env ``HWSEARCH_FLEET_TLS_KEY``.
        storage: SQLAlchemy URL of the study database that holds the fleet tables.
        lease_seconds: How long a claimed job stays with its agent without a heartbeat.
        max_attempts: Leases a job may lose (agent died, link cut) before it fails.
        max_artifact_bytes: Largest artifact accepted on upload or served on download.
        max_json_bytes: Largest JSON request body.
        max_wait_seconds: Longest long-poll (job claims and job-status waits).
        agent_live_seconds: How long after its last request an agent counts as live (default:
            45 s, or three times the longest quiet gap of a live agent when that is longer).
        header_timeout_seconds: A connection whose request headers are not complete this long
            after it opened (or after its first byte, on a kept-alive connection) is closed.
        keep_alive_seconds: An idle kept-alive connection is closed after this long.
        max_connections: Connections and requests served at once; beyond, 503.
    """

    model_config = SettingsConfigDict(
        env_prefix="HWSEARCH_FLEET_", extra="forbid", hide_input_in_errors=True, env_ignore_empty=True
    )

    token: SecretStr
    enrol_token: SecretStr | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    storage: str = DEFAULT_STORAGE
    lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    max_attempts: int = Field(default=3, ge=1, le=100)
    max_artifact_bytes: int = Field(default=256 * MIB, ge=1024, le=2048 * MIB)
    max_json_bytes: int = Field(default=1 * MIB, ge=1024, le=64 * MIB)
    max_wait_seconds: float = Field(default=10.0, ge=0.0, le=60.0)
    agent_live_seconds: float | None = Field(default=None, gt=0.0)
    header_timeout_seconds: float = Field(default=10.0, gt=0.0, le=600.0)
    keep_alive_seconds: float = Field(default=5.0, gt=0.0, le=600.0)
    max_connections: int = Field(default=256, ge=8, le=100_000)

    @field_validator("token", "enrol_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the tokens must have at least {MIN_TOKEN_LENGTH} characters; {_GENERATE}")
        return value

    @model_validator(mode="after")
    def _tokens_and_tls_consistent(self) -> "FleetSettings":
        if self.enrol_token is not None and self.enrol_token.get_secret_value() == self.token.get_secret_value():
            raise ValueError(f"the enrolment token must differ from the fleet token (devices hold it); {_GENERATE}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and its key: pass --tls-cert and --tls-key")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"cannot read TLS file {path}: pass an existing PEM file")
        if self.tls_cert is not None and self.enrol_token is None:
            raise ValueError(
                "TLS needs an enrolment token (legacy shared-token mode is off over TLS): pass --enrol-token "
                "or set HWSEARCH_FLEET_ENROL_TOKEN, and give devices that token instead of the fleet token"
            )
        return self

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
    def enrolment(self) -> bool:
        """Whether agents enrol (legacy shared-token mode is off)."""
        return self.enrol_token is not None

    @property
    def scheme(self) -> str:
        """``https`` when TLS is configured, else ``http``."""
        return "https" if self.tls_cert is not None else "http"

    @property
    def live_seconds(self) -> float:
        """How long after its last request an agent counts as live."""
        assert self.agent_live_seconds is not None
        return self.agent_live_seconds

    @property
    def heartbeat_seconds(self) -> float:
        """How often agents must heartbeat a running job (a third of the lease)."""
        return self.lease_seconds / 3.0
