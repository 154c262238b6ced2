"""Drift normalisation: a latency figure expressed at the host's typical speed.

Each round of an artifact is paired with a round of the reference graph
(:mod:`evaluators.latency.reference`) timed just before it. The host's speed in that round is the
reference's median then; its typical speed is the **baseline**, the median of every reference
round the latency cache holds for the backend, device tag and settings (or, without a cache, of
the measurement's own reference rounds). A round's normalised median is::

    raw_i * baseline / reference_i

so a figure taken while the host ran 20 % slow is scaled back by that 20 %, and two figures of
the same file taken minutes apart agree as far as the artifact and the reference slow down
together (measured on the 2-core VM over 15 minutes with training bursts in between: the spread
of ten files' medians fell from 37 % raw to 7 % normalised). The figure, its CI and
``round_medians_ms`` are the normalised values; the raw timings stay in
``raw_round_medians_ms`` and ``raw_median_ms``. Rounds without a reference (older cache rows, the
fleet agent, which has no ``onnx`` to build the graph) count at factor 1.

The reference does not slow down exactly as every artifact does, so a normalised figure keeps a
small error per measurement session that more rounds of the same session do not shrink; its CI
includes :data:`SESSION_SD` for that, so it holds for a measurement taken later.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence

from evaluators.contracts import LatencyResult
from evaluators.latency.benchmark import median_ci


SESSION_SD = 0.015
"""Spread (sd of the log figure) of a normalised local figure between measurement sessions on one
host, beyond its rounds' own noise. ``python bench/latency_repeatability.py --run RUN`` estimates
it from two passes over a run's artifacts: 1.1 % and 1.7 % on two default runs of 2026-12-06
(robust estimates); an aggregate of ``k`` sessions carries ``SESSION_SD / sqrt(k)``."""


def normalised_rounds(raw: Sequence[float], reference: Sequence[float], baseline_ms: float) -> list[float]:
    """``raw_i * baseline_ms / reference_i`` for each paired round (``raw_i`` where ``reference_i <= 0``).

    Raises:
        ValueError: When the sequences differ in length or the baseline is not positive.
    """
    if len(raw) != len(reference):
        raise ValueError(f"{len(raw)} rounds but {len(reference)} reference rounds: they must be paired")
    if baseline_ms <= 0:
        raise ValueError(f"baseline must be positive, got {baseline_ms}")
    return [r * baseline_ms / ref if ref > 0 else r for r, ref in zip(raw, reference)]


def normalise(result: LatencyResult, baseline_ms: float | None = None, sessions: int = 1) -> LatencyResult:
    """``result`` with its median, CI and round medians at ``baseline_ms`` (default: its own reference median).

    The CI includes the between-session spread :data:`SESSION_SD` of ``sessions`` measurement
    sessions (the rounds' count of separate measurements). A result without reference rounds
    comes back unchanged. Normalising twice starts from the raw rounds again, so it never compounds.
    """
    raw = result.raw_round_medians_ms or result.round_medians_ms
    if not result.reference_round_ms or len(result.reference_round_ms) != len(raw):
        return result
    baseline = baseline_ms if baseline_ms is not None else statistics.median(result.reference_round_ms)
    values = normalised_rounds(raw, result.reference_round_ms, baseline)
    low, high = median_ci(values, SESSION_SD / math.sqrt(max(1, sessions)))
    return dataclasses.replace(
        result, median_ms=statistics.median(values), ci_low_ms=low, ci_high_ms=high,
        round_medians_ms=tuple(values), raw_round_medians_ms=tuple(raw), raw_median_ms=statistics.median(raw),
        baseline_ms=baseline)
