"""Latency cache: one measurement per (graph fingerprint, device tag, settings), kept in SQL.

The table lives in the study's database beside Optuna's, so every process of a study (and every
study in the database) shares it, and a restart loses nothing.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

from sqlalchemy import DateTime, Engine, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.db import Base, session_scope


class LatencyCacheRow(Base):
    """A cached latency measurement."""

    __tablename__ = "hwsearch_latency_cache"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    settings_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    result_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LatencyCache:
    """Read-through cache of latency results keyed by graph fingerprint, device and settings.

    Invariant: the first result stored for a key wins; later ``put`` calls for it are ignored, so
    concurrent workers measuring the same graph agree on one figure.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, fingerprint: str, device_tag: str, settings: LatencySettings) -> LatencyResult | None:
        """The cached result (with ``cached=True``), or None."""
        with session_scope(self._engine) as session:
            row = session.get(LatencyCacheRow, (fingerprint, device_tag, settings.cache_key()))
            if row is None:
                return None
            result = LatencyResult.from_dict(json.loads(row.result_json))
        return dataclasses.replace(result, cached=True)

    def put(self, fingerprint: str, settings: LatencySettings, result: LatencyResult) -> LatencyResult:
        """Store ``result`` unless the key already has one; returns the stored (winning) result."""
        key = (fingerprint, result.device_tag, settings.cache_key())
        try:
            with session_scope(self._engine) as session:
                session.add(LatencyCacheRow(
                    fingerprint=key[0], device_tag=key[1], settings_key=key[2],
                    result_json=json.dumps(dataclasses.replace(result, cached=False).to_dict()),
                    created_at=datetime.now(timezone.utc),
                ))
        except IntegrityError:
            existing = self.get(fingerprint, result.device_tag, settings)
            assert existing is not None
            return existing
        return result

    def count(self) -> int:
        """Number of cached measurements."""
        with session_scope(self._engine) as session:
            return len(session.scalars(select(LatencyCacheRow.fingerprint)).all())
