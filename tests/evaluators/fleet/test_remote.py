"""Failures of the remote backend and of the embedded coordinator that need no agent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from evaluators.contracts import LatencySettings
from evaluators.errors import HwsearchError, LatencyError
from evaluators.fleet.server import start_embedded
from evaluators.fleet.settings import FleetSettings
from evaluators.latency import make_latency_backend

TOKEN = "remote-test-token-0123456789"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_coordinator_fails_the_measurement_within_the_timeout(tiny_model: Path) -> None:
    backend = make_latency_backend(
        "remote", fleet_url=f"http://127.0.0.1:{_closed_port()}", token=TOKEN, device_tag="rpi4b", timeout_s=1.0
    )
    assert backend.name == "remote" and backend.device_tag == "rpi4b"
    with pytest.raises(LatencyError, match="stayed unreachable") as failure:
        backend.measure(tiny_model, (1, 3, 8, 8), LatencySettings())
    assert "python -m evaluators.fleet serve" in failure.value.fix


def test_a_missing_artifact_is_a_latency_error(tmp_path: Path) -> None:
    backend = make_latency_backend("remote", fleet_url="http://127.0.0.1:9", token=TOKEN, device_tag="rpi4b")
    with pytest.raises(LatencyError, match="cannot read artifact"):
        backend.measure(tmp_path / "absent.onnx", (1, 3, 8, 8), LatencySettings())


def test_embedding_on_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    settings = FleetSettings(token=TOKEN, storage=f"sqlite:///{tmp_path / 'study.db'}")
    with start_embedded(settings, "127.0.0.1", 0) as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(HwsearchError, match=f"cannot listen on 127.0.0.1:{port}"):
            start_embedded(settings, "127.0.0.1", port)


def test_settings_errors_never_echo_the_token() -> None:
    with pytest.raises(ValueError) as failure:
        FleetSettings(token="short-secret")
    assert "short-secret" not in str(failure.value) and "at least 16 characters" in str(failure.value)
