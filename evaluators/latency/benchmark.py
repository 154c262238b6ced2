"""The benchmark loop shared by the local backend and the fleet agent.

Needs only onnxruntime and numpy (it runs on the Raspberry Pi agent, where there is no torch).
Only ONNX files are ever loaded.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluators.contracts import LatencySettings


@dataclass(frozen=True)
class BenchmarkTimes:
    """Raw timings of one benchmark, in milliseconds, plus the peak memory it saw.

    Invariants: ``round_medians`` has one entry per round, ``times_ms`` holds every timed run of
    every round, ``windows`` the wall-clock ``(start, end)`` of each round (the reference's runs
    included); ``reference_medians`` is empty or has one entry per round: the median of the
    reference graph's runs interleaved with that round's; ``disturbed_rounds`` counts rounds
    timed and left out (none of the lists holds them).
    """

    times_ms: list[float]
    peak_memory_mb: float
    runtime: str
    round_medians: list[float] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    reference_medians: list[float] = field(default_factory=list)
    disturbed_rounds: int = 0

    def stats(self) -> dict[str, float | int]:
        """median/p90/mean/std/min in ms and ``n``; the median is the median of the round medians."""
        arr = np.asarray(self.times_ms, dtype=np.float64)
        rounds = self.round_medians or [float(np.median(arr))]
        return {
            "median_ms": float(np.median(rounds)),
            "p90_ms": float(np.percentile(arr, 90)),
            "mean_ms": float(arr.mean()),
            "std_ms": float(arr.std()),
            "min_ms": float(arr.min()),
            "n": int(arr.size),
        }

    def round_stats(self) -> dict[str, object]:
        """The rounds: their count, raw medians, the CI of the median, the timing windows and the
        paired reference medians (normalise with :func:`evaluators.latency.normalise.normalise`)."""
        low, high = median_ci(self.round_medians)
        return {"rounds": len(self.round_medians), "round_medians_ms": tuple(self.round_medians),
                "ci_low_ms": low, "ci_high_ms": high, "windows": tuple(self.windows),
                "reference_round_ms": tuple(self.reference_medians), "disturbed_rounds": self.disturbed_rounds}


_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086)
"""Student t 97.5 % quantiles for 1..20 degrees of freedom (1.96 beyond)."""


def median_ci(round_medians: Sequence[float], session_sd: float = 0.0) -> tuple[float | None, float | None]:
    """95 % confidence interval of the median latency from independent round medians.

    Latency is skewed and multiplicative, so the interval is built on the log round medians and
    exponentiated. It is centred on the reported figure, the median of the round medians, with the
    normal-theory standard error of a sample median (sqrt(pi/2) times that of the mean) and a
    Student-t quantile: for roughly log-normal rounds it covers the true median, and it always
    contains the reported median (a geometric-mean centre did not when a few rounds were slow).
    ``session_sd`` (sd of the log figure between measurement sessions, beyond the rounds' own
    noise) widens the half-width in quadrature by 1.96 times it, so the interval also holds for a
    measurement taken at another time. ``(None, None)`` with fewer than two rounds.
    """
    values = np.log(np.asarray([m for m in round_medians if m > 0], dtype=np.float64))
    if len(values) < 2:
        return None, None
    t = _T975[len(values) - 2] if len(values) - 1 <= len(_T975) else 1.96
    centre = float(np.median(values))
    rounds_half = t * math.sqrt(math.pi / 2.0) * float(values.std(ddof=1)) / math.sqrt(len(values))
    half = math.hypot(rounds_half, 1.96 * session_sd)
    return math.exp(centre - half), math.exp(centre + half)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if platform.system() == "Linux" else peak / 1e6


def pin_to_cores(cores: tuple[int, ...] | None) -> None:
    """Pin this process to ``cores`` (Linux only; a no-op when ``cores`` is None)."""
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))


def _session(artifact: Path, settings: LatencySettings) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])


BLOCK_S = 0.02
"""Length of one block of an artifact's runs in a paired round (the reference's blocks: half)."""


class _Timed:
    """A fresh, warmed-up session of one graph on random input, timed run by run."""

    def __init__(self, graph: Path, feed_shape: tuple[int, ...], settings: LatencySettings) -> None:
        self.session = _session(graph, settings)
        input_name = self.session.get_inputs()[0].name  # type: ignore[attr-defined]
        self.feed = {input_name: np.random.default_rng(0).standard_normal(feed_shape).astype(np.float32)}
        for _ in range(settings.warmup):
            self.session.run(None, self.feed)  # type: ignore[attr-defined]

    def runs(self, at_most: int, enough: Callable[[int, float], bool]) -> list[float]:
        """Time runs (ms) until ``enough(runs, seconds)`` holds or ``at_most`` runs are done."""
        times: list[float] = []
        total = 0.0
        while len(times) < at_most and not enough(len(times), total):
            start = time.perf_counter()
            self.session.run(None, self.feed)  # type: ignore[attr-defined]
            elapsed = time.perf_counter() - start
            times.append(elapsed * 1e3)
            total += elapsed
        return times


def _one_round(artifact: Path, feed_shape: tuple[int, ...], settings: LatencySettings) -> tuple[list[float], tuple[float, float]]:
    """A fresh session, warm-up, then timed runs until the round's minimum count and time."""
    started = time.time()
    times = _Timed(artifact, feed_shape, settings).runs(
        settings.max_repeats, lambda count, seconds: count >= settings.min_repeats and seconds >= settings.min_time_s)
    return times, (started, time.time())


def _paired_round(
    artifact: Path, feed_shape: tuple[int, ...], reference: tuple[Path, tuple[int, ...]], settings: LatencySettings,
) -> tuple[list[float], list[float], tuple[float, float]]:
    """A round of ``artifact`` interleaved with the reference graph: fresh sessions of both, then
    alternating blocks (the reference's :data:`BLOCK_S` / 2, the artifact's :data:`BLOCK_S`) until
    the artifact's runs meet the round's minimum count and time (or its maximum count).

    The host on this VM slows down in spells of about a second, unseen by the process (no steal,
    no other busy thread: measured 2026-12-06); a whole reference round before the artifact's
    missed spells that began after it. Blocks of tens of milliseconds put both graphs in the same
    spell. Only a block's first run follows the other graph (colder caches); the round's figure is
    the median of its runs. Returns the artifact's runs, the reference's runs and the window.
    """
    started = time.time()
    timed, ref = _Timed(artifact, feed_shape, settings), _Timed(*reference, settings)
    times: list[float] = []
    reference_times: list[float] = []
    spent = 0.0

    def round_done(count: int, seconds: float) -> bool:
        return len(times) + count >= settings.min_repeats and spent + seconds >= settings.min_time_s

    while len(times) < settings.max_repeats and not round_done(0, 0.0):
        reference_times += ref.runs(settings.max_repeats, lambda count, seconds: count >= 1 and seconds >= BLOCK_S / 2)
        block = timed.runs(settings.max_repeats - len(times),
                           lambda count, seconds: (count >= 1 and seconds >= BLOCK_S) or round_done(count, seconds))
        times += block
        spent += sum(block) / 1e3
    return times, reference_times, (started, time.time())


def run_benchmark(
    artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings, *, rounds: int | None = None,
    reference: tuple[Path, tuple[int, ...]] | None = None,
) -> BenchmarkTimes:
    """Time ``artifact`` with onnxruntime on random input of ``input_shape``, in rounds.

    Each round builds a fresh session (its memory layout is part of what varies between
    measurements), warms up, then times runs until ``min_repeats`` and ``min_time_s`` are both met
    or ``max_repeats`` is reached. Rounds continue until ``min_rounds`` are done and the 95 %
    confidence interval of the median (:func:`median_ci`) is within ``+-target_ci``, or
    ``max_rounds`` rounds or ``max_time_s`` seconds are spent. One intra-op pool of
    ``settings.threads``, sequential execution.

    With a ``reference`` (graph file, input shape), every round interleaves blocks of the
    artifact's runs with blocks of the reference's (:func:`_paired_round`; the reference takes
    about a third of the time); a round whose reference ran :data:`DISTURBED` slower than the
    measurement's fastest is left out and retaken (it does not count towards the rounds; the
    time cap still holds, and at least ``min_rounds`` rounds are timed before it applies); the
    precision target applies to the artifact / reference ratios of the rounds kept.

    Args:
        rounds: Exactly this many rounds (e.g. 1 to add a fresh round to a cached figure).
        reference: The reference graph and its input shape (:mod:`evaluators.latency.reference`).

    Raises:
        onnxruntime's exceptions for files it cannot load or run (callers turn them into
        ``LatencyError``).
    """
    import onnxruntime as ort

    shape = (settings.batch, *input_shape[1:])
    runs: list[list[float]] = []
    medians: list[float] = []
    windows: list[tuple[float, float]] = []
    references: list[float] = []
    began = time.perf_counter()
    wanted_min = rounds if rounds is not None else settings.min_rounds
    wanted_max = rounds if rounds is not None else settings.max_rounds
    while True:
        if reference is not None:
            round_times, reference_times, window = _paired_round(artifact, shape, reference, settings)
            references.append(float(np.median(reference_times)))
        else:
            round_times, window = _one_round(artifact, shape, settings)
        runs.append(round_times)
        medians.append(float(np.median(round_times)))
        windows.append(window)
        kept = _undisturbed(references) if references else list(range(len(runs)))
        out_of_time = time.perf_counter() - began >= settings.max_time_s
        if len(kept) >= wanted_max or (out_of_time and len(runs) >= wanted_min):
            break
        if len(kept) < wanted_min:
            continue
        judged = [medians[i] / references[i] if references else medians[i] for i in kept]
        low, high = median_ci(judged)
        if low is not None and high is not None and (high - low) / 2 <= settings.target_ci * float(np.median(judged)):
            break
    return BenchmarkTimes(
        [t for i in kept for t in runs[i]], _peak_rss_mb(), f"onnxruntime {ort.__version__}",
        [medians[i] for i in kept], [windows[i] for i in kept],
        [references[i] for i in kept] if references else [], len(runs) - len(kept))


DISTURBED = 1.10
"""A paired round is left out when its reference median exceeds the measurement's fastest by this
factor: the host was in a slow spell. Spells slow different graphs by different factors (on
2026-12-06 a 1.4-1.5x slower reference came with a 1.1x and a 1.9x slower artifact), so a
disturbed round cannot be normalised back; it is retaken instead."""


LONE_AFTER = 5
"""Rounds timed before a fastest round with no other within :data:`DISTURBED` of it counts as a
lone lucky round rather than the baseline (with fewer, one fast round against two slow ones may be
the machine's normal speed among a slow spell's rounds)."""


def _undisturbed(references: Sequence[float]) -> list[int]:
    """Indices of the rounds whose reference median is within :data:`DISTURBED` of the fastest.

    Once :data:`LONE_AFTER` rounds are timed, the baseline is the fastest round that another round
    confirms (one within :data:`DISTURBED` of it), not a lone lucky one: measured against such a
    round every later one looked disturbed, and a CI run retook 299 short rounds until the time
    cap. Lucky rounds faster than the baseline are kept. With no confirmed round the fastest is the
    baseline.
    """
    ordered = sorted(references)
    fastest = ordered[0]
    if len(ordered) >= LONE_AFTER:
        fastest = next((ref for ref, after in zip(ordered, ordered[1:]) if after <= DISTURBED * ref), fastest)
    return [i for i, ref in enumerate(references) if ref <= DISTURBED * fastest]


def describe_cpu() -> str:
    """What this machine's CPU is, e.g. ``Intel(R) Xeon(R) ... (x86_64, 2 cores)``.

    Reads the device-tree model (Raspberry Pi), then ``/proc/cpuinfo``, then ``platform``.
    """
    model = ""
    tree = Path("/proc/device-tree/model")
    if tree.exists():
        model = tree.read_bytes().rstrip(b"\x00").decode(errors="replace").strip()
    if not model and Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                model = value.strip()
                break
    model = model or platform.processor() or "unknown CPU"
    return f"{model} ({platform.machine()}, {os.cpu_count()} cores)"
