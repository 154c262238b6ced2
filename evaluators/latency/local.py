"""Local latency backend: onnxruntime on this machine, labelled with this machine's CPU."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from evaluators.compute_lock import HOST_LOCK
from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.errors import LatencyError
from evaluators.latency import register_latency_backend
from evaluators.latency.benchmark import describe_cpu, pin_to_cores, run_benchmark
from evaluators.latency.measuring_process import shared_measuring_process
from evaluators.latency.normalise import normalise
from evaluators.latency.reference import REFERENCE_SHAPE, reference_graph, reference_id


@dataclass(frozen=True)
class LocalOptions:
    """Settings of the ``local`` backend.

    Attributes:
        device_tag: Tag of the figures (cache key part).
        reference: Time the reference graph beside every round and normalise the figure to the
            host's typical speed (:mod:`evaluators.latency.normalise`).
        own_process: Benchmark in a torch-free process of its own
            (:mod:`evaluators.latency.measuring_process`), not in the caller's (a trial's process
            timed the same files 1-9 % slower); False measures in this process.
    """

    device_tag: str = "local"
    reference: bool = True
    own_process: bool = True


@register_latency_backend("local", options=LocalOptions, help="onnxruntime on this machine's CPU")
class LocalLatencyBackend:
    """Benchmarks on this machine with pinned intra-op threads (and cores, when asked), in the
    process's measuring process (``options.own_process``, the default) or in this process.

    The result's ``device`` is this machine's real CPU description; ``device_tag`` is ``local``.
    With ``options.reference`` (the default, and ``onnx`` installed to build the graph) each round
    is paired with a round of the reference graph and the figure is normalised to the speed the
    host had in this measurement's reference rounds; the latency cache renormalises it to the
    host's typical speed over every stored reference round.
    """

    name = "local"

    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        self.device_tag = self.options.device_tag
        self._device = describe_cpu()
        self._reference: tuple[Path, tuple[int, ...]] | None = None
        self._reference_id: str | None = None
        if self.options.reference:
            with contextlib.suppress(ImportError):
                self._reference, self._reference_id = (reference_graph(), REFERENCE_SHAPE), reference_id()

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
        try:
            with HOST_LOCK.measuring() as alone:
                if self.options.own_process:
                    times = shared_measuring_process().measure(
                        artifact, input_shape, settings, rounds=rounds, reference=self._reference)
                else:
                    pin_to_cores(settings.cores)
                    times = run_benchmark(artifact, input_shape, settings, rounds=rounds, reference=self._reference)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise LatencyError(
                f"onnxruntime could not run {artifact}: {str(exc).splitlines()[0]}",
                "check the exported model (python -c 'import onnx; onnx.checker.check_model(PATH)')",
            ) from exc
        return normalise(LatencyResult(
            **times.stats(), **times.round_stats(), device=self._device, device_tag=self.device_tag,  # type: ignore[arg-type]
            threads=settings.threads, backend=self.name, runtime=times.runtime,
            peak_memory_mb=times.peak_memory_mb, under_load=not alone,
            reference=self._reference_id,
        ))
