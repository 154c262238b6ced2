"""A search whose latency is measured by a real agent process through the embedded coordinator."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import optuna
import pytest

from search import attrs
from tests.search.clirun import TINY_ARGS, cli, spawn

pytestmark = pytest.mark.slow

TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_embedded_coordinator_and_agent_measure_every_trial(tiny_data: Path, tmp_path: Path) -> None:
    port = free_port()
    os.environ["HWSEARCH_FLEET_TOKEN"] = TOKEN
    agent = spawn("evaluators.agent", "--fleet", f"http://127.0.0.1:{port}", "--device", "testbox",
                  "--name", "bench-agent", "--poll-seconds", "1", "--work-dir", str(tmp_path / "agent"), cwd=tmp_path)
    try:
        result = cli("search.launch", "--data", str(tiny_data), "--trials", "2", "--out", "runs",
                     "--latency", "remote", "--device", "testbox", "--fleet-listen", f"127.0.0.1:{port}",
                     "--fleet-timeout", "120", "--override", "loss_kd=0", *TINY_ARGS, cwd=tmp_path)
    finally:
        agent.terminate()
        agent.wait(timeout=60)
        os.environ.pop("HWSEARCH_FLEET_TOKEN", None)
    assert result.returncode == 0, result.stdout + result.stderr
    study = optuna.load_study(study_name="esfair", storage=f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}")
    assert study.user_attrs[attrs.STUDY_DEVICE_TAG] == "testbox"
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2
    for trial in done:
        latency = trial.user_attrs[attrs.LATENCY]
        assert latency["backend"] == "remote" and latency["device_tag"] == "testbox"
        assert latency["agent"] and not latency["fake"] and "cores" in latency["device"]


def test_no_live_agent_fails_trials_with_a_clear_message(tiny_data: Path, tmp_path: Path) -> None:
    result = cli("search.launch", "--data", str(tiny_data), "--trials", "1", "--out", "runs",
                 "--latency", "remote", "--device", "nobody", "--fleet-listen", f"127.0.0.1:{free_port()}",
                 "--fleet-token", TOKEN, "--fleet-timeout", "3", *TINY_ARGS, cwd=tmp_path)
    assert result.returncode != 0
    assert "no result within the remote latency timeout" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_remote_without_token_or_device_is_one_line(tmp_path: Path) -> None:
    result = cli("search.launch", "--latency", "remote", "--device", "rpi4b", "--fleet", "http://127.0.0.1:9",
                 cwd=tmp_path)
    assert result.returncode == 2 and "fleet token" in result.stderr and "Traceback" not in result.stderr
