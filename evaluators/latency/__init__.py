"""Latency backends: local (onnxruntime here), remote (the fleet), fake (tests only)."""

from __future__ import annotations

from evaluators.contracts import LatencyBackend

BACKENDS = ("local", "remote", "fake")


def make_latency_backend(name: str, **options: object) -> LatencyBackend:
    """Build the backend ``name`` (``local``, ``remote`` or ``fake``).

    Raises:
        ValueError: For an unknown name, listing the known ones.
    """
    if name == "local":
        from evaluators.latency.local import LocalLatencyBackend

        return LocalLatencyBackend(**options)  # type: ignore[arg-type]
    if name == "fake":
        from evaluators.latency.fake import FakeLatencyBackend

        return FakeLatencyBackend(**options)  # type: ignore[arg-type]
    if name == "remote":
        from evaluators.latency.remote import RemoteLatencyBackend  # type: ignore[import-not-found]

        return RemoteLatencyBackend(**options)  # type: ignore[arg-type]
    raise ValueError(f"unknown latency backend {name!r}; known: {', '.join(BACKENDS)}")
