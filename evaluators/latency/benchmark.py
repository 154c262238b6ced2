"""The benchmark loop shared by the local backend and the fleet agent.

Needs only onnxruntime and numpy (it runs on the Raspberry Pi agent, where there is no torch).
Only ONNX files are ever loaded.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluators.contracts import LatencySettings


@dataclass(frozen=True)
class BenchmarkTimes:
    """Raw timings of one benchmark, in milliseconds, plus the peak memory it saw."""

    times_ms: list[float]
    peak_memory_mb: float
    runtime: str

    def stats(self) -> dict[str, float | int]:
        """median/p90/mean/std/min in ms and ``n``."""
        arr = np.asarray(self.times_ms, dtype=np.float64)
        return {
            "median_ms": float(np.median(arr)),
            "p90_ms": float(np.percentile(arr, 90)),
            "mean_ms": float(arr.mean()),
            "std_ms": float(arr.std()),
            "min_ms": float(arr.min()),
            "n": int(arr.size),
        }


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if platform.system() == "Linux" else peak / 1e6


def pin_to_cores(cores: tuple[int, ...] | None) -> None:
    """Pin this process to ``cores`` (Linux only; a no-op when ``cores`` is None)."""
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))


def run_benchmark(artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings) -> BenchmarkTimes:
    """Time ``artifact`` with onnxruntime on random input of ``input_shape``.

    Warm-up runs first, then timed runs until ``min_repeats`` and ``min_time_s`` are both met or
    ``max_repeats`` is reached. One intra-op pool of ``settings.threads``, sequential execution.

    Raises:
        onnxruntime's exceptions for files it cannot load or run (callers turn them into
        ``LatencyError``).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    shape = (settings.batch, *input_shape[1:])
    feed = {input_name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    for _ in range(settings.warmup):
        session.run(None, feed)
    times: list[float] = []
    total = 0.0
    while len(times) < settings.max_repeats and (
        len(times) < settings.min_repeats or total < settings.min_time_s
    ):
        start = time.perf_counter()
        session.run(None, feed)
        elapsed = time.perf_counter() - start
        times.append(elapsed * 1e3)
        total += elapsed
    return BenchmarkTimes(times, _peak_rss_mb(), f"onnxruntime {ort.__version__}")


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
