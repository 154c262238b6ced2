"""FAKE latency backend, for fast tests only: computes a figure, measures nothing.

Every result it returns has ``fake=True`` and a device string starting with ``FAKE``, and every
report, model card and dashboard page shows that label.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.latency import register_latency_backend


@dataclass(frozen=True)
class FakeOptions:
    """Settings of the ``fake`` backend (its computed figure's coefficients)."""

    device_tag: str = "fake"
    ms_per_mb: float = 0.4
    ms_per_mpixel: float = 20.0


@register_latency_backend("fake", options=FakeOptions, source="fake",
                          help="computed figures for tests, labelled FAKE everywhere")
class FakeLatencyBackend:
    """Deterministic latency from artifact size and input pixels (no timing at all).

    ``median_ms = ms_per_mb * size_mb + ms_per_mpixel * megapixels``, plus a small deterministic
    jitter from the file's hash, so larger and higher-resolution models are "slower".
    """

    name = "fake"

    def __init__(self, options: FakeOptions | None = None) -> None:
        self.options = options or FakeOptions()
        self.device_tag = self.options.device_tag
        self.ms_per_mb = self.options.ms_per_mb
        self.ms_per_mpixel = self.options.ms_per_mpixel

    def measure(
        self, artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings
    ) -> LatencyResult:
        """A computed, deterministic figure labelled FAKE."""
        data = Path(artifact).read_bytes()
        pixels = 1.0
        for dim in input_shape[1:]:
            pixels *= dim
        jitter = int(hashlib.sha256(data).hexdigest()[:4], 16) / 0xFFFF * 0.05
        median = (self.ms_per_mb * len(data) / 1e6 + self.ms_per_mpixel * pixels / 1e6) * (1 + jitter)
        median /= settings.threads ** 0.5
        return LatencyResult(
            median_ms=median, p90_ms=median * 1.05, mean_ms=median * 1.01, std_ms=median * 0.02,
            min_ms=median * 0.97, n=settings.min_repeats, device="FAKE backend (not a real device)",
            device_tag=self.device_tag, threads=settings.threads, backend=self.name,
            runtime="none (fake)", fake=True, source="fake",
        )
