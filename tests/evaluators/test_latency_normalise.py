"""Drift normalisation: the reference graph, the arithmetic, the local backend and the cache."""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.db import make_engine
from evaluators.latency import make_latency_backend
from evaluators.latency.cache import LatencyCache
from evaluators.latency.normalise import normalise, normalised_rounds
from evaluators.latency.reference import REFERENCE_SHAPE, reference_bytes, reference_graph, reference_id
from tests.evaluators.test_latency import SETTINGS, conv_model


def result(raw: tuple[float, ...], reference: tuple[float, ...]) -> LatencyResult:
    median = statistics.median(raw)
    return LatencyResult(median_ms=median, p90_ms=max(raw), mean_ms=median, std_ms=0.0, min_ms=min(raw), n=10,
                         device="cpu", device_tag="local", threads=1,
                         backend="local", runtime="ort", rounds=len(raw), round_medians_ms=raw,
                         reference_round_ms=reference, reference="ref-test")


def test_the_reference_graph_is_the_same_bytes_every_time_and_runs(tmp_path: Path) -> None:
    assert reference_bytes() == reference_bytes()
    assert reference_id().startswith("ref-") and len(reference_id()) == 20
    path = reference_graph(tmp_path)
    assert path.read_bytes() == reference_bytes() and reference_id() in path.name
    assert reference_graph(tmp_path) == path, "written once per folder"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": np.zeros(REFERENCE_SHAPE, np.float32)})[0]
    assert logits.shape == (1, 4) and np.isfinite(logits).all()


def test_a_round_timed_on_a_slow_host_is_scaled_back_to_the_baseline() -> None:
    assert normalised_rounds([2.0, 1.0], [0.6, 0.3], baseline_ms=0.3) == pytest.approx([1.0, 1.0])
    slowed = normalise(result((1.0, 2.0, 1.0), (0.3, 0.6, 0.3)), baseline_ms=0.3)
    assert slowed.round_medians_ms == pytest.approx((1.0, 1.0, 1.0)) and slowed.median_ms == pytest.approx(1.0)
    assert slowed.raw_round_medians_ms == (1.0, 2.0, 1.0) and slowed.raw_median_ms == 1.0
    assert slowed.host_slowdown == pytest.approx(1.0)
    assert "normalised to the host's typical speed" in slowed.label()
    with pytest.raises(ValueError, match="paired"):
        normalised_rounds([1.0], [0.3, 0.3], 0.3)


def test_normalising_twice_starts_from_the_raw_rounds_and_a_result_without_reference_is_unchanged() -> None:
    once = normalise(result((1.0, 1.2, 1.1), (0.30, 0.36, 0.33)), baseline_ms=0.3)
    twice = normalise(once, baseline_ms=0.6)
    assert twice.median_ms == pytest.approx(2 * once.median_ms), "rescaled from raw, not compounded"
    plain = dataclasses.replace(result((1.0, 1.2, 1.1), ()), reference=None)
    assert normalise(plain, 0.3) is plain and plain.host_slowdown is None


def test_the_local_backend_pairs_every_round_with_a_reference_round(tmp_path: Path) -> None:
    settings = dataclasses.replace(SETTINGS, min_rounds=3, max_rounds=3)
    measured = make_latency_backend("local").measure(conv_model(tmp_path / "m.onnx"), (1, 3, 32, 32), settings)
    assert measured.reference == reference_id()
    assert len(measured.reference_round_ms) == len(measured.raw_round_medians_ms) == measured.rounds == 3
    assert measured.baseline_ms == pytest.approx(statistics.median(measured.reference_round_ms))
    assert measured.ci_low_ms <= measured.median_ms <= measured.ci_high_ms
    assert LatencyResult.from_dict(measured.to_dict()) == measured
    off = make_latency_backend("local", reference=False).measure(conv_model(tmp_path / "m.onnx"), (1, 3, 32, 32),
                                                                 settings)
    assert off.reference is None and not off.reference_round_ms and off.host_slowdown is None


def test_the_cache_normalises_every_figure_to_the_baseline_of_all_stored_reference_rounds(tmp_path: Path) -> None:
    cache = LatencyCache(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    settings = LatencySettings()
    cache.add("quiet", settings, normalise(result((1.0, 1.0, 1.0), (0.3, 0.3, 0.3))))
    busy = dataclasses.replace(normalise(result((2.0, 2.2, 2.0), (0.6, 0.66, 0.6))), disturbed_rounds=2)
    stored = cache.add("busy", settings, busy)
    assert stored.disturbed_rounds == 2, "the measurement's own count comes back"
    assert cache.get("busy", "local", "local", settings).disturbed_rounds == 0, "an aggregate has no such count"
    assert cache.baseline("ref-test", "local", "local", settings) == pytest.approx(0.45)
    assert stored.baseline_ms == pytest.approx(0.45) and stored.median_ms == pytest.approx(1.5)
    quiet = cache.get("quiet", "local", "local", settings)
    assert quiet is not None and quiet.median_ms == pytest.approx(1.5), "both on one scale"
    assert quiet.raw_median_ms == pytest.approx(1.0) and quiet.host_slowdown == pytest.approx(0.3 / 0.45)
    assert cache.count() == 2, "the reference's rounds are not a figure"
    fleet = dataclasses.replace(result((4.0, 4.0), ()), reference=None, backend="remote", device_tag="rpi4b")
    assert cache.add("fleet", settings, fleet).median_ms == 4.0, "no reference: stored as measured"


def test_rounds_timed_in_a_slow_spell_of_the_host_are_left_out_and_retaken(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    from evaluators.latency import benchmark

    # (artifact ms, reference ms) per paired round, as timed; a spell slows the graphs by different factors
    script = iter([(1.4, 0.55), (1.0, 0.37), (1.02, 0.38), (1.9, 0.56), (0.99, 0.37), (1.01, 0.375)])

    def paired_round(*_: object) -> tuple[list[float], list[float], tuple[float, float]]:
        artifact, reference = next(script)
        return [artifact] * 5, [reference] * 5, (0.0, 1.0)

    monkeypatch.setattr(benchmark, "_paired_round", paired_round)
    settings = LatencySettings(min_rounds=4, max_rounds=12, target_ci=0.05)
    times = benchmark.run_benchmark(tmp_path / "m.onnx", (1, 3, 32, 32), settings, reference=(tmp_path / "r.onnx", (1,)))
    assert times.round_medians == [1.0, 1.02, 0.99, 1.01], "the two rounds of the spell are left out, four are kept"
    assert times.reference_medians == [0.37, 0.38, 0.37, 0.375] and times.disturbed_rounds == 2
    assert len(times.windows) == 4 and len(times.times_ms) == 20
    assert benchmark._undisturbed([0.55, 0.37, 0.40, 0.41]) == [1, 2], "within 10 % of the fastest round"
    lucky = [0.40, 0.30, 0.41, 0.60, 0.42]
    assert benchmark._undisturbed(lucky) == [0, 1, 2, 4], "a lone lucky round is kept but is not the baseline"
    assert benchmark._undisturbed(lucky[:3]) == [1], "too few rounds to tell a lucky round from a slow spell"


def test_a_normalised_ci_includes_the_spread_between_sessions_and_shrinks_with_more_sessions(tmp_path: Path) -> None:
    from evaluators.latency.normalise import SESSION_SD

    steady = normalise(result((1.0, 1.0, 1.0), (0.3, 0.3, 0.3)))
    assert steady.ci_low_ms == pytest.approx(np.exp(-1.96 * SESSION_SD))
    assert steady.ci_high_ms == pytest.approx(np.exp(1.96 * SESSION_SD)), "identical rounds still leave the session's error"
    plain = dataclasses.replace(result((1.0, 1.0, 1.0), ()), reference=None)
    assert normalise(plain) == plain, "a raw figure (the fleet's) keeps its rounds-only CI"
    cache = LatencyCache(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    cache.add("file", LatencySettings(), steady)
    twice = cache.add("file", LatencySettings(), steady)
    assert twice.rounds == 6
    assert twice.ci_high_ms == pytest.approx(np.exp(1.96 * SESSION_SD / np.sqrt(2))), "two sessions"
