"""Latency cache: every measured round per (key, backend, device tag, settings), in SQL.

The key is a graph fingerprint for screening figures (one structure, whatever its weights: a
candidate's rung jobs below the top reuse its screening figure) or, for a shipped file, a hash of
its fingerprint and its bytes (``evaluators.pipeline.shipped_latency_key``: weights change speed,
so a shipped figure is the file's own). A key measured again gains rounds, so its figure (the
aggregate of all its rounds) grows more precise and spans more time. Rounds are rows, only ever
inserted, so concurrent workers never overwrite each other. The table lives in the study's
database beside Optuna's, so every process of a study (and every study in the database) shares
it, and a restart loses nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import DateTime, Engine, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.db import Base, session_scope
from evaluators.latency.benchmark import median_ci


class LatencyRoundRow(Base):
    """One measured round of one graph on one device."""

    __tablename__ = "hwsearch_latency_rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    backend: Mapped[str] = mapped_column(String(32))
    device_tag: Mapped[str] = mapped_column(String(64))
    settings_key: Mapped[str] = mapped_column(String(128))
    median_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    mean_ms: Mapped[float] = mapped_column(Float)
    std_ms: Mapped[float] = mapped_column(Float)
    min_ms: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    result_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LatencyCache:
    """Read-through cache of latency rounds keyed by fingerprint, backend, device tag and settings.

    Invariant: :meth:`get` aggregates every round stored for the key: the median of the round
    medians, its 95 % CI over rounds (:func:`evaluators.latency.benchmark.median_ci`), ``n`` the
    total timed runs, ``rounds`` the number of rounds; device, runtime and labels come from the
    newest round.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, fingerprint: str, backend: str, device_tag: str, settings: LatencySettings) -> LatencyResult | None:
        """The aggregate of the key's rounds (with ``cached=True``), or None."""
        with session_scope(self._engine) as session:
            rows = session.scalars(
                select(LatencyRoundRow)
                .where(LatencyRoundRow.fingerprint == fingerprint, LatencyRoundRow.backend == backend,
                       LatencyRoundRow.device_tag == device_tag,
                       LatencyRoundRow.settings_key == settings.cache_key())
                .order_by(LatencyRoundRow.id)
            ).all()
            if not rows:
                return None
            return dataclasses.replace(_aggregate(rows), cached=True)

    def add(self, fingerprint: str, settings: LatencySettings, result: LatencyResult) -> LatencyResult:
        """Store every round of ``result``; returns the key's new aggregate."""
        medians = result.round_medians_ms or (result.median_ms,)
        windows = result.windows or ((0.0, 0.0),) * len(medians)
        now = datetime.now(timezone.utc)
        with session_scope(self._engine) as session:
            for median, window in zip(medians, windows):
                single = dataclasses.replace(result, median_ms=median, rounds=1, round_medians_ms=(median,),
                                             windows=(tuple(window),) if result.windows else (),
                                             ci_low_ms=None, ci_high_ms=None, cached=False)
                session.add(LatencyRoundRow(
                    fingerprint=fingerprint, backend=result.backend, device_tag=result.device_tag,
                    settings_key=settings.cache_key(), median_ms=median, p90_ms=result.p90_ms,
                    mean_ms=result.mean_ms, std_ms=result.std_ms, min_ms=result.min_ms,
                    n=max(1, result.n // len(medians)), result_json=_json(single), created_at=now,
                ))
        aggregate = self.get(fingerprint, result.backend, result.device_tag, settings)
        assert aggregate is not None
        return dataclasses.replace(aggregate, cached=False, windows=result.windows)

    def count(self) -> int:
        """Number of cached keys."""
        with session_scope(self._engine) as session:
            keys = session.execute(select(LatencyRoundRow.fingerprint, LatencyRoundRow.backend,
                                          LatencyRoundRow.device_tag, LatencyRoundRow.settings_key).distinct()).all()
            return len(keys)


def _json(result: LatencyResult) -> str:
    import json

    return json.dumps(result.to_dict())


def _aggregate(rows: list[LatencyRoundRow]) -> LatencyResult:
    import json

    newest = LatencyResult.from_dict(json.loads(rows[-1].result_json))
    medians = [row.median_ms for row in rows]
    counts = np.asarray([row.n for row in rows], dtype=np.float64)
    means = np.asarray([row.mean_ms for row in rows], dtype=np.float64)
    low, high = median_ci(medians)
    return dataclasses.replace(
        newest,
        median_ms=float(np.median(medians)),
        p90_ms=float(np.median([row.p90_ms for row in rows])),
        mean_ms=float((counts * means).sum() / counts.sum()),
        std_ms=float(np.sqrt(np.mean([row.std_ms ** 2 for row in rows]))),
        min_ms=float(min(row.min_ms for row in rows)),
        n=int(counts.sum()),
        rounds=len(rows),
        round_medians_ms=tuple(medians),
        ci_low_ms=low,
        ci_high_ms=high,
        under_load=any(LatencyResult.from_dict(json.loads(r.result_json)).under_load for r in rows),
        windows=(),
    )
