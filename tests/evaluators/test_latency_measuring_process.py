"""The local backend's measuring process: a real torch-free child that survives bad files and deaths."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from pathlib import Path

import pytest

from evaluators.errors import LatencyError
from evaluators.latency.local import LocalLatencyBackend, LocalOptions
from evaluators.latency.measuring_process import MeasuringProcess, MeasuringProcessError, shared_measuring_process
from tests.evaluators.test_latency import SETTINGS, conv_model

SHAPE = (1, 3, 32, 32)


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_the_local_backend_measures_in_a_child_that_never_loads_torch(tmp_path: Path) -> None:
    import torch  # noqa: F401  (the test process is a torch process, as the launcher is)

    model = conv_model(tmp_path / "m.onnx")
    result = LocalLatencyBackend().measure(model, SHAPE, SETTINGS)
    child = shared_measuring_process()._process
    assert child is not None and child.poll() is None and child.pid != os.getpid()
    assert "onnxruntime" in _maps(child.pid) and "libtorch" not in _maps(child.pid)
    assert result.rounds >= SETTINGS.min_rounds and result.reference and len(result.reference_round_ms) == result.rounds
    in_process = LocalLatencyBackend(LocalOptions(own_process=False)).measure(model, SHAPE, SETTINGS)
    assert in_process.rounds >= SETTINGS.min_rounds and in_process.backend == result.backend == "local"


def test_a_broken_file_is_a_clear_error_and_the_child_keeps_serving(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    backend = LocalLatencyBackend()
    with pytest.raises(LatencyError, match="INVALID_PROTOBUF") as info:
        backend.measure(broken, SHAPE, SETTINGS)
    assert "onnx.checker" in info.value.fix
    assert backend.measure(conv_model(tmp_path / "m.onnx"), SHAPE, SETTINGS).median_ms > 0


def test_a_killed_child_fails_only_its_measurement_and_is_replaced(tmp_path: Path) -> None:
    model = conv_model(tmp_path / "m.onnx")
    process = MeasuringProcess()
    try:
        process.measure(model, SHAPE, SETTINGS)
        first = process._process
        assert first is not None
        first.kill()
        first.wait()
        assert process.measure(model, SHAPE, SETTINGS).round_medians
        second = process._process
        assert second is not None and second.pid != first.pid
        threading.Timer(0.5, second.kill).start()
        with pytest.raises(MeasuringProcessError, match="died .*SIGKILL"):
            process.measure(model, SHAPE, dataclasses.replace(SETTINGS, min_time_s=5.0, max_repeats=10**6))
        assert process.measure(model, SHAPE, SETTINGS).round_medians
    finally:
        process.close()


def test_the_child_ignores_interrupts_and_exits_when_its_parent_closes_the_pipe(tmp_path: Path) -> None:
    process = MeasuringProcess()
    process.measure(conv_model(tmp_path / "m.onnx"), SHAPE, SETTINGS)
    child = process._process
    assert child is not None
    os.kill(child.pid, signal.SIGINT)
    os.kill(child.pid, signal.SIGTERM)
    assert process.measure(conv_model(tmp_path / "m.onnx"), SHAPE, SETTINGS).round_medians
    process.close()
    assert child.returncode == 0


def test_a_benchmark_crosses_the_pipe_whole() -> None:
    import json

    from evaluators.latency.benchmark import BenchmarkTimes
    from evaluators.latency.measuring_process import _times_from_dict

    times = BenchmarkTimes([1.0, 1.1, 0.9], 80.0, "onnxruntime x", [1.0], [(1.5, 2.5)], [0.37], disturbed_rounds=2)
    assert _times_from_dict(json.loads(json.dumps(dataclasses.asdict(times)))) == times
