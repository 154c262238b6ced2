"""Local latency backend: onnxruntime on this machine, labelled with this machine's CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evaluators.compute_lock import HOST_LOCK
from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.errors import LatencyError
from evaluators.latency import register_latency_backend
from evaluators.latency.benchmark import describe_cpu, pin_to_cores, run_benchmark


@dataclass(frozen=True)
class LocalOptions:
    """Settings of the ``local`` backend."""

    device_tag: str = "local"


@register_latency_backend("local", options=LocalOptions, help="onnxruntime on this machine's CPU")
class LocalLatencyBackend:
    """Benchmarks in this process with pinned intra-op threads (and cores, when asked).

    The result's ``device`` is this machine's real CPU description; ``device_tag`` is ``local``.
    """

    name = "local"

    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        self.device_tag = self.options.device_tag
        self._device = describe_cpu()

    def measure(
        self, artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings
    ) -> LatencyResult:
        """Benchmark ``artifact`` here, alone on the cores (:data:`HOST_LOCK`).

        Raises:
            LatencyError: When onnxruntime cannot run it.
        """
        return self._measure(artifact, input_shape, settings, None)

    def add_round(
        self, artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings
    ) -> LatencyResult:
        """One fresh round only (what a cached figure gains when its file is measured again)."""
        return self._measure(artifact, input_shape, settings, 1)

    def _measure(
        self, artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings, rounds: int | None
    ) -> LatencyResult:
        pin_to_cores(settings.cores)
        try:
            with HOST_LOCK.measuring() as alone:
                times = run_benchmark(artifact, input_shape, settings, rounds=rounds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise LatencyError(
                f"onnxruntime could not run {artifact}: {str(exc).splitlines()[0]}",
                "check the exported model (python -c 'import onnx; onnx.checker.check_model(PATH)')",
            ) from exc
        return LatencyResult(
            **times.stats(), **times.round_stats(), device=self._device, device_tag=self.device_tag,  # type: ignore[arg-type]
            threads=settings.threads, backend=self.name, runtime=times.runtime,
            peak_memory_mb=times.peak_memory_mb, under_load=not alone,
        )
