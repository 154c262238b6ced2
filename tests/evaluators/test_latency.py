"""LatencyBackend contract (shared by the local and FAKE backends) and the latency cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from evaluators.contracts import LatencyBackend, LatencyResult, LatencySettings
from evaluators.db import make_engine
from evaluators.errors import LatencyError
from evaluators.latency import make_latency_backend
from evaluators.latency.cache import LatencyCache


def conv_model(path: Path, channels: int = 8) -> Path:
    """A real ONNX classifier: Conv -> Relu -> GlobalAveragePool -> Flatten."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((channels, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", channels])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


SETTINGS = LatencySettings(threads=1, warmup=2, min_repeats=10, max_repeats=50, min_time_s=0.05)


@pytest.fixture(params=["local", "fake"])
def backend(request: pytest.FixtureRequest) -> LatencyBackend:
    return make_latency_backend(request.param)


def test_backend_contract(backend: LatencyBackend, tmp_path: Path) -> None:
    result = backend.measure(conv_model(tmp_path / "m.onnx"), (1, 3, 32, 32), SETTINGS)
    assert isinstance(backend, LatencyBackend)
    assert result.backend == backend.name and result.device_tag == backend.device_tag
    assert 0 < result.min_ms <= result.median_ms <= result.p90_ms
    assert result.n >= SETTINGS.min_repeats and result.threads == 1
    assert LatencyResult.from_dict(result.to_dict()) == result
    assert result.fake == (backend.name == "fake")
    assert ("FAKE" in result.label()) == result.fake
    assert ("FAKE" in result.device) == result.fake


def test_local_backend_names_the_real_cpu_and_fails_clearly_on_a_broken_file(tmp_path: Path) -> None:
    backend = make_latency_backend("local")
    result = backend.measure(conv_model(tmp_path / "m.onnx"), (1, 3, 32, 32), SETTINGS)
    assert "cores" in result.device and result.runtime.startswith("onnxruntime")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    with pytest.raises(LatencyError, match="broken.onnx"):
        backend.measure(broken, (1, 3, 32, 32), SETTINGS)


def test_repeats_per_round_stop_at_max_and_continue_to_min_time(tmp_path: Path) -> None:
    backend = make_latency_backend("local")
    model = conv_model(tmp_path / "m.onnx")
    one_round = dict(min_rounds=1, max_rounds=1)
    capped = backend.measure(model, (1, 3, 32, 32),
                             LatencySettings(warmup=0, min_repeats=5, max_repeats=7, min_time_s=60, **one_round))
    assert capped.n == 7 and capped.rounds == 1 and capped.ci_low_ms is None
    quick = backend.measure(model, (1, 3, 32, 32),
                            LatencySettings(warmup=0, min_repeats=5, max_repeats=500, min_time_s=0, **one_round))
    assert quick.n == 5


def test_rounds_continue_until_the_median_ci_is_tight_or_the_cap(tmp_path: Path) -> None:
    backend = make_latency_backend("local")
    model = conv_model(tmp_path / "m.onnx")
    settings = LatencySettings(warmup=1, min_repeats=5, min_time_s=0.05, min_rounds=3, max_rounds=6, target_ci=0.0)
    result = backend.measure(model, (1, 3, 32, 32), settings)
    assert result.rounds == 6 and len(result.round_medians_ms) == 6 and len(result.windows) == 6
    assert result.ci_low_ms <= result.median_ms <= result.ci_high_ms
    loose = backend.measure(model, (1, 3, 32, 32), LatencySettings(warmup=1, min_repeats=5, min_time_s=0.02,
                                                                    min_rounds=3, max_rounds=6, target_ci=10.0))
    assert loose.rounds == 3
    assert all(start < end for start, end in result.windows)
    assert not result.under_load


def test_median_ci_is_a_log_t_interval_of_round_medians() -> None:
    from evaluators.latency.benchmark import median_ci

    assert median_ci([1.0]) == (None, None)
    low, high = median_ci([1.0, 1.0, 1.0])
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    low, high = median_ci([1.0, 1.1, 0.9, 1.05, 0.95])
    assert 0.85 < low < 1.0 < high < 1.15


def test_the_latency_interval_contains_the_reported_median_when_some_rounds_are_slow() -> None:
    """Six slow rounds out of 13 (a cache that gathered rounds from a busy and a quiet hour): the
    stored median is the median of the round medians, and its interval must hold it."""
    from evaluators.latency.benchmark import median_ci

    rounds = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.01, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    low, high = median_ci(rounds)
    assert low <= float(np.median(rounds)) <= high


@pytest.mark.parametrize("rounds", [3, 6, 12])
def test_the_latency_interval_covers_the_true_median_of_log_normal_rounds(rounds: int) -> None:
    from evaluators.latency.benchmark import median_ci

    rng = np.random.default_rng(rounds)
    covered = [low <= 1.0 <= high
               for low, high in (median_ci(list(np.exp(rng.normal(0.0, 0.05, rounds)))) for _ in range(2000))]
    assert 0.93 <= float(np.mean(covered)) <= 0.995


def test_fake_backend_is_deterministic_and_grows_with_input(tmp_path: Path) -> None:
    backend = make_latency_backend("fake")
    model = conv_model(tmp_path / "m.onnx")
    small = backend.measure(model, (1, 3, 32, 32), SETTINGS)
    assert backend.measure(model, (1, 3, 32, 32), SETTINGS) == small
    assert backend.measure(model, (1, 3, 64, 64), SETTINGS).median_ms > small.median_ms


def test_unknown_backend_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="known latency backends: fake, local, remote"):
        make_latency_backend("gpu")


def test_cache_keys_on_fingerprint_backend_device_and_settings_and_adds_rounds(tmp_path: Path) -> None:
    cache = LatencyCache(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    backend = make_latency_backend("local")
    model = conv_model(tmp_path / "m.onnx")
    first = backend.measure(model, (1, 3, 32, 32), SETTINGS)
    assert cache.get("fp", "local", "local", SETTINGS) is None
    stored = cache.add("fp", SETTINGS, first)
    assert stored.rounds == first.rounds and stored.median_ms == pytest.approx(first.median_ms)
    hit = cache.get("fp", "local", "local", SETTINGS)
    assert hit is not None and hit.cached and hit.rounds == first.rounds
    assert cache.get("fp", "fake", "local", SETTINGS) is None, "another backend is another figure"
    assert cache.get("fp", "local", "rpi4b", SETTINGS) is None
    assert cache.get("fp", "local", "local", LatencySettings(threads=2)) is None
    extra = backend.measure(model, (1, 3, 32, 32), LatencySettings(**{**SETTINGS.to_dict(), "min_rounds": 1,
                                                                        "max_rounds": 1}))
    grown = cache.add("fp", SETTINGS, extra)
    assert grown.rounds == first.rounds + 1 and cache.count() == 1
    assert grown.raw_round_medians_ms == (*first.raw_round_medians_ms, extra.raw_median_ms), "rounds stored raw"
    assert len(grown.reference_round_ms) == grown.rounds and grown.baseline_ms is not None


def test_cache_survives_a_new_engine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = make_latency_backend("fake").measure(conv_model(tmp_path / "m.onnx"), (1, 3, 32, 32), SETTINGS)
    LatencyCache(make_engine(url)).add("fp", SETTINGS, result)
    again = LatencyCache(make_engine(url)).get("fp", "fake", "fake", SETTINGS)
    assert again is not None and again.median_ms == result.median_ms and again.fake
