"""The fleet with real processes on 127.0.0.1: a coordinator under uvicorn and agent daemons."""

from __future__ import annotations

import hashlib
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import onnx
import pytest
from onnx import TensorProto, helper

from evaluators.contracts import LatencySettings
from evaluators.errors import LatencyError
from evaluators.fleet.client import FleetClient, FleetRejected
from evaluators.fleet.server import start_embedded
from evaluators.fleet.settings import FleetSettings
from evaluators.latency.benchmark import describe_cpu
from evaluators.latency.remote import RemoteLatencyBackend

pytestmark = pytest.mark.slow


def _settings(values: dict[str, Any]) -> LatencySettings:
    return LatencySettings.from_dict(values)


def _submit(client: FleetClient, model: Path, settings: dict[str, Any], tag: str = "cpu-test") -> str:
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    client.upload(sha, data)
    return str(client.enqueue(tag, sha, [1, 3, 8, 8], settings)["id"])


def test_agents_sharing_a_tag_share_the_queue_and_trials_record_who_measured(fleet: Any) -> None:
    coordinator = fleet.coordinator()
    agents = [fleet.agent(coordinator.url), fleet.agent(coordinator.url)]
    ids = {agent.agent_id() for agent in agents}
    results: list[Any] = []
    with RemoteLatencyBackend(coordinator.url, fleet.token, "cpu-test", timeout_s=120) as backend:
        model = fleet.model()

        def measure() -> None:
            results.append(backend.measure(model, fleet.input_shape, _settings(fleet.slow(1.0))))

        threads = [threading.Thread(target=measure) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
    assert len(results) == 6
    assert {result.agent for result in results} == ids
    for result in results:
        assert result.backend == "remote" and result.device_tag == "cpu-test" and not result.fake
        assert result.device == describe_cpu() and result.runtime.startswith("onnxruntime ")
        assert result.n >= 1 and 0 < result.min_ms <= result.median_ms <= result.p90_ms
        assert result.peak_memory_mb and result.peak_memory_mb > 0


def test_an_agent_killed_mid_job_is_replaced_and_the_job_measured_once(fleet: Any) -> None:
    coordinator = fleet.coordinator(lease_seconds=2.0)
    first, second = fleet.agent(coordinator.url), fleet.agent(coordinator.url)
    by_id = {first.agent_id(): first, second.agent_id(): second}
    client = fleet.client(coordinator)
    job = _submit(client, fleet.model(), fleet.slow(3.0))
    holder = fleet.wait_for(lambda: client.job(job)["agent_id"], 60, "an agent to lease the job")
    by_id[holder].signal(signal.SIGKILL)
    survivor = next(agent_id for agent_id in by_id if agent_id != holder)
    view = fleet.wait_for(lambda: (v := client.job(job))["state"] == "done" and v, 120, "the job to finish")
    assert view["result"]["agent"] == survivor and view["agent_id"] == survivor
    assert view["attempts"] == 2 and holder in view["note"]
    done = {agent["id"]: agent["jobs_done"] for agent in client.agents()}
    assert done == {holder: 0, survivor: 1}
    assert by_id[survivor].log().count(f"job {job}: done") == 1


def test_a_restarted_coordinator_loses_no_job_and_agents_reconnect(fleet: Any) -> None:
    coordinator = fleet.coordinator()
    client = fleet.client(coordinator)
    model = fleet.model()
    waiting = [_submit(client, model, fleet.quick, tag="no-agent-yet") for _ in range(3)]
    jobs = [_submit(client, model, fleet.slow(0.3)) for _ in range(12)]
    agent = fleet.agent(coordinator.url)
    agent.agent_id()
    fleet.wait_for(lambda: client.stats()["jobs"].get("done", 0) >= 3, 120, "three jobs done")
    coordinator.kill()
    fleet.wait_for(lambda: "coordinator unavailable" in agent.log(), 60, "the agent to notice")
    coordinator.start()
    client = fleet.client(coordinator)
    fleet.wait_for(lambda: client.stats()["jobs"].get("done", 0) == len(jobs), 180, "every job done")
    views = {view["id"]: view for view in client.jobs()}
    assert {views[job]["state"] for job in jobs} == {"done"}
    assert {views[job]["state"] for job in waiting} == {"queued"}
    assert sum(agent["jobs_done"] for agent in client.agents()) == len(jobs)
    assert agent.process.poll() is None


def test_a_wrong_token_is_refused_everywhere(fleet: Any, tiny_model: Path) -> None:
    coordinator = fleet.coordinator()
    intruder = fleet.agent(coordinator.url, "cpu-test", "--token", "not-the-fleet-token-at-all")
    assert intruder.wait(60) == 2
    assert "refused the fleet token" in intruder.log() and "fix:" in intruder.log()
    assert httpx.get(f"{coordinator.url}/v1/stats").status_code == 401
    with RemoteLatencyBackend(coordinator.url, "not-the-fleet-token-at-all", "cpu-test", timeout_s=30) as backend:
        with pytest.raises(LatencyError, match="refused the fleet token"):
            backend.measure(tiny_model, fleet.input_shape, _settings(fleet.quick))


def _bad_models(folder: Path, good: Path) -> dict[str, Path]:
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + b"\xff" * 200)
    truncated = folder / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    unknown_op = helper.make_model(helper.make_graph(
        [helper.make_node("Exfiltrate", ["x"], ["y"], domain="evil.example")], "evil",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    ), opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("evil.example", 1)])
    unknown_op.ir_version = 8
    evil = folder / "unknown_op.onnx"
    onnx.save(unknown_op, str(evil))
    return {"garbage": garbage, "truncated": truncated, "unknown_op": evil}


def test_corrupt_and_hostile_models_fail_their_job_and_the_agent_keeps_serving(fleet: Any, tmp_path: Path) -> None:
    coordinator = fleet.coordinator()
    agent = fleet.agent(coordinator.url)
    agent_id = agent.agent_id()
    good = fleet.model()
    with RemoteLatencyBackend(coordinator.url, fleet.token, "cpu-test", timeout_s=120) as backend:
        expected = {"garbage": "not a valid protocol buffer", "truncated": "truncated or not a protocol buffer",
                    "unknown_op": "(Fail)"}
        for name, path in _bad_models(tmp_path, good).items():
            with pytest.raises(LatencyError) as failure:
                backend.measure(path, fleet.input_shape, _settings(fleet.quick))
            assert expected[name] in str(failure.value) and agent_id in str(failure.value), (name, failure.value)
            assert "[ONNXRuntimeError]" not in str(failure.value)
        with pytest.raises(LatencyError, match="InvalidArgument"):
            backend.measure(good, (1, 3, 8), _settings(fleet.quick))
        result = backend.measure(good, fleet.input_shape, _settings(fleet.quick))
    assert result.agent == agent_id and agent.process.poll() is None
    client = fleet.client(coordinator)
    pickled = b"\x80\x04\x95" + bytes(32)
    with pytest.raises(FleetRejected, match="pickle"):
        client.upload(hashlib.sha256(pickled).hexdigest(), pickled)


def test_a_tag_without_live_agents_fails_after_the_timeout_and_cancels_its_job(fleet: Any, tiny_model: Path) -> None:
    coordinator = fleet.coordinator()
    fleet.agent(coordinator.url).agent_id()
    with RemoteLatencyBackend(coordinator.url, fleet.token, "rpi4b", timeout_s=3) as backend:
        with pytest.raises(LatencyError) as failure:
            backend.measure(tiny_model, fleet.input_shape, _settings(fleet.quick))
    message = str(failure.value)
    assert "no live agent for device tag 'rpi4b'" in message and "live tags: cpu-test" in message
    assert "python -m evaluators.agent" in message
    jobs = fleet.client(coordinator).jobs(device_tag="rpi4b")
    assert [job["state"] for job in jobs] == ["cancelled"]


def test_sigterm_finishes_the_running_job_or_releases_it_after_the_drain(fleet: Any) -> None:
    coordinator = fleet.coordinator()
    client = fleet.client(coordinator)
    patient = fleet.agent(coordinator.url)
    patient_id = patient.agent_id()
    job = _submit(client, fleet.model(), fleet.slow(2.0))
    fleet.wait_for(lambda: client.job(job)["state"] == "leased", 60, "the job to be leased")
    patient.signal(signal.SIGTERM)
    assert patient.wait(60) == 0
    view = client.job(job)
    assert view["state"] == "done" and view["result"]["agent"] == patient_id
    hasty = fleet.agent(coordinator.url, "cpu-test", "--drain-seconds", "0.5")
    hasty.agent_id()
    job = _submit(client, fleet.model(), fleet.slow(600.0))
    fleet.wait_for(lambda: client.job(job)["state"] == "leased", 60, "the job to be leased")
    hasty.signal(signal.SIGTERM)
    assert hasty.wait(60) == 0
    view = client.job(job)
    assert view["state"] == "queued" and view["attempts"] == 0 and "released" in view["note"]
    assert client.agents(live_only=True) == []


def test_the_launcher_can_embed_the_coordinator(fleet: Any, tmp_path: Path, tiny_model: Path) -> None:
    settings = FleetSettings(token=fleet.token, storage=f"sqlite:///{tmp_path / 'study.db'}")
    with start_embedded(settings, "127.0.0.1", 0) as embedded:
        agent = fleet.agent(embedded.url)
        with RemoteLatencyBackend(embedded.url, fleet.token, "cpu-test", timeout_s=120) as backend:
            result = backend.measure(tiny_model, fleet.input_shape, _settings(fleet.quick))
        assert result.agent == agent.agent_id() and result.backend == "remote"
        agent.signal(signal.SIGTERM)
        assert agent.wait(60) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{embedded.url}/v1/stats", timeout=5)
