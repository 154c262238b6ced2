"""Local latency backend: onnxruntime on this machine, labelled with this machine's CPU."""

from __future__ import annotations

from pathlib import Path

from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.errors import LatencyError
from evaluators.latency.benchmark import describe_cpu, pin_to_cores, run_benchmark


class LocalLatencyBackend:
    """Benchmarks in this process with pinned intra-op threads (and cores, when asked).

    The result's ``device`` is this machine's real CPU description; ``device_tag`` is ``local``.
    """

    name = "local"

    def __init__(self, device_tag: str = "local") -> None:
        self.device_tag = device_tag
        self._device = describe_cpu()

    def measure(
        self, artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings
    ) -> LatencyResult:
        """Benchmark ``artifact`` here. Raises LatencyError when onnxruntime cannot run it."""
        pin_to_cores(settings.cores)
        try:
            times = run_benchmark(artifact, input_shape, settings)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise LatencyError(
                f"onnxruntime could not run {artifact}: {str(exc).splitlines()[0]}",
                "check the exported model (python -c 'import onnx; onnx.checker.check_model(PATH)')",
            ) from exc
        return LatencyResult(
            **times.stats(), device=self._device, device_tag=self.device_tag,
            threads=settings.threads, backend=self.name, runtime=times.runtime,
            peak_memory_mb=times.peak_memory_mb,
        )
