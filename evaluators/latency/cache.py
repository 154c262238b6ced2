"""Latency cache: every measured round per (key, backend, device tag, settings), in SQL.

The key is a graph fingerprint for screening figures (one structure, whatever its weights: a
candidate's rung jobs below the top reuse its screening figure) or, for a shipped file, a hash of
its fingerprint and its bytes (``evaluators.pipeline.shipped_latency_key``: weights change speed,
so a shipped figure is the file's own). A key measured again gains rounds, so its figure (the
aggregate of all its rounds) grows more precise and spans more time. Rounds are rows, only ever
inserted, so concurrent workers never overwrite each other. The table lives in the study's
database beside Optuna's, so every process of a study (and every study in the database) shares
it, and a restart loses nothing.

Drift: a result timed beside the reference graph (:mod:`evaluators.latency.reference`) stores its
rounds raw, each with the reference median timed just before it, and the reference rounds
themselves under the reference's id as key. The host's typical speed (:meth:`LatencyCache.baseline`)
is the median of every stored reference round for the backend, device tag and settings; every
aggregate is normalised to it (:mod:`evaluators.latency.normalise`), so figures taken in a slow
minute and in a fast one land on one scale. Rounds stored without a reference count at factor 1.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import DateTime, Engine, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.db import Base, session_scope
from evaluators.latency.benchmark import median_ci
from evaluators.latency.normalise import normalise
from evaluators.latency.reference import REFERENCE_PREFIX


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
    newest round. Figures are normalised to :meth:`baseline` when their rounds carry reference
    rounds (the raw aggregate stays in ``raw_round_medians_ms`` and ``raw_median_ms``). Keys that
    are reference ids hold the reference's own rounds and are not figures (:meth:`count` skips them).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, fingerprint: str, backend: str, device_tag: str, settings: LatencySettings) -> LatencyResult | None:
        """The aggregate of the key's rounds (with ``cached=True``), normalised to the host's baseline, or None."""
        with session_scope(self._engine) as session:
            rows = session.scalars(select(LatencyRoundRow)
                                   .where(*_key(fingerprint, backend, device_tag, settings))
                                   .order_by(LatencyRoundRow.id)).all()
            if not rows:
                return None
            singles = [LatencyResult.from_dict(json.loads(row.result_json)) for row in rows]
            reference = singles[-1].reference
            baseline = self._baseline(session, reference, backend, device_tag, settings) if reference else None
            return dataclasses.replace(_aggregate(list(rows), singles, baseline), cached=True)

    def baseline(self, reference: str, backend: str, device_tag: str, settings: LatencySettings) -> float | None:
        """The host's typical reference median: the median of every stored round of ``reference``
        for this backend, device tag and settings (None when none is stored)."""
        with session_scope(self._engine) as session:
            return self._baseline(session, reference, backend, device_tag, settings)

    @staticmethod
    def _baseline(session: Session, reference: str, backend: str, device_tag: str,
                  settings: LatencySettings) -> float | None:
        medians = session.scalars(select(LatencyRoundRow.median_ms)
                                  .where(*_key(reference, backend, device_tag, settings))).all()
        return float(np.median(medians)) if medians else None

    def add(self, fingerprint: str, settings: LatencySettings, result: LatencyResult) -> LatencyResult:
        """Store every round of ``result`` (raw, each with its reference round) and its reference
        rounds; returns the key's new aggregate."""
        medians = result.raw_round_medians_ms or result.round_medians_ms or (result.median_ms,)
        windows = result.windows or ((0.0, 0.0),) * len(medians)
        references = result.reference_round_ms if len(result.reference_round_ms) == len(medians) else ()
        now = datetime.now(timezone.utc)

        def row(key: str, single: LatencyResult, n: int) -> LatencyRoundRow:
            return LatencyRoundRow(
                fingerprint=key, backend=single.backend, device_tag=single.device_tag,
                settings_key=settings.cache_key(), median_ms=single.median_ms, p90_ms=single.p90_ms,
                mean_ms=single.mean_ms, std_ms=single.std_ms, min_ms=single.min_ms, n=n,
                result_json=json.dumps(single.to_dict()), created_at=now)

        with session_scope(self._engine) as session:
            for i, (median, window) in enumerate(zip(medians, windows)):
                single = dataclasses.replace(
                    result, median_ms=median, rounds=1, round_medians_ms=(median,), raw_round_medians_ms=(),
                    reference_round_ms=(references[i],) if references else (), baseline_ms=None,
                    raw_median_ms=None, windows=(tuple(window),) if result.windows else (),
                    ci_low_ms=None, ci_high_ms=None, cached=False, disturbed_rounds=0)
                session.add(row(fingerprint, single, max(1, result.n // len(medians))))
                if references and result.reference:
                    ref = references[i]
                    reference_round = dataclasses.replace(
                        single, median_ms=ref, p90_ms=ref, mean_ms=ref, std_ms=0.0, min_ms=ref,
                        round_medians_ms=(ref,), reference_round_ms=(), reference=None, of_artifact=False)
                    session.add(row(result.reference, reference_round, 1))
        aggregate = self.get(fingerprint, result.backend, result.device_tag, settings)
        assert aggregate is not None
        return dataclasses.replace(aggregate, cached=False, windows=result.windows,
                                   disturbed_rounds=result.disturbed_rounds)

    def count(self) -> int:
        """Number of cached figures (keys that are not a reference graph's rounds)."""
        with session_scope(self._engine) as session:
            keys = session.execute(select(LatencyRoundRow.fingerprint, LatencyRoundRow.backend,
                                          LatencyRoundRow.device_tag, LatencyRoundRow.settings_key).distinct()).all()
            return sum(1 for key in keys if not key[0].startswith(REFERENCE_PREFIX))


def _key(key: str, backend: str, device_tag: str, settings: LatencySettings) -> tuple[Any, ...]:
    """The conditions selecting one key's rounds."""
    return (LatencyRoundRow.fingerprint == key, LatencyRoundRow.backend == backend,
            LatencyRoundRow.device_tag == device_tag, LatencyRoundRow.settings_key == settings.cache_key())


def _aggregate(rows: list[LatencyRoundRow], singles: list[LatencyResult], baseline: float | None) -> LatencyResult:
    """The rows' aggregate (``singles``: their stored results, in the same order); normalised to
    ``baseline`` when given (rounds of another or no reference count at factor 1)."""
    newest = singles[-1]
    medians = [row.median_ms for row in rows]
    counts = np.asarray([row.n for row in rows], dtype=np.float64)
    means = np.asarray([row.mean_ms for row in rows], dtype=np.float64)
    low, high = median_ci(medians)
    aggregate = dataclasses.replace(
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
        under_load=any(single.under_load for single in singles),
        windows=(),
        raw_round_medians_ms=(),
        reference_round_ms=(),
        baseline_ms=None,
        raw_median_ms=None,
    )
    if baseline is None or not newest.reference:
        return aggregate
    references = tuple(
        single.reference_round_ms[0] if single.reference == newest.reference and single.reference_round_ms
        else baseline for single in singles)
    sessions = len({row.created_at for row in rows})
    return normalise(dataclasses.replace(aggregate, reference_round_ms=references), baseline, sessions)
