"""A hostile client against a real coordinator process on loopback: one test per finding of the
probe that motivated the hardening (issue 12), each through real sockets."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from onnx import TensorProto, helper

pytestmark = pytest.mark.slow

AUTH = "Authorization"


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


def _http(coordinator: Any) -> httpx.Client:
    """A raw client of ``coordinator`` with the (legacy shared) fleet token."""
    return httpx.Client(base_url=coordinator.url + "/v1", headers={AUTH: f"Bearer {coordinator.token}"}, timeout=30)


def _external_model(path: Path, location: str, *, length: int) -> Path:
    """``y = x + w`` where ``w``'s bytes live in the external file ``location`` (a crafted model)."""
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[length // 4],
                         data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "exfiltrate",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [length // 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [length // 4])], [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _submit(client: Any, model: Path, shape: list[int], settings: dict[str, Any]) -> str:
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    client.upload(sha, data)
    return str(client.enqueue("cpu-test", sha, shape, settings)["id"])


def _with_artifact(fleet: Any) -> tuple[Any, Any, str]:
    """A started coordinator, a client of it, and the sha256 of a model uploaded there."""
    coordinator = fleet.coordinator()
    client = fleet.client(coordinator)
    data = fleet.model().read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    client.upload(sha, data)
    return coordinator, client, sha


def _finished(fleet: Any, client: Any, job: str) -> dict[str, Any]:
    return dict(fleet.wait_for(lambda: (v := client.job(job, wait_s=2))["state"] in ("done", "failed") and v,
                               120, f"job {job} to finish"))


def test_models_with_external_data_are_refused_before_the_runtime_sees_them(fleet: Any, tmp_path: Path) -> None:
    coordinator = fleet.coordinator()
    agent = fleet.agent(coordinator.url)
    agent.agent_id()
    client = fleet.client(coordinator)
    decoy = fleet.model()
    decoy_sha = hashlib.sha256(decoy.read_bytes()).hexdigest()
    assert _finished(fleet, client, _submit(client, decoy, [1, 3, 8, 8], fleet.quick))["state"] == "done"
    escaping = _external_model(tmp_path / "escaping.onnx", "../../../../../../etc/passwd", length=64)
    sibling = _external_model(tmp_path / "sibling.onnx", f"{decoy_sha}.onnx", length=64)
    for model in (escaping, sibling):
        view = _finished(fleet, client, _submit(client, model, [16], fleet.quick))
        assert view["state"] == "failed", view
        assert "tensor 'w' keeps its data in an external file" in view["error"], view["error"]
        for leak in ("ONNXRuntimeError", "passwd", "root:", decoy_sha, "/etc", "escapes"):
            assert leak not in view["error"], (leak, view["error"])
    assert agent.process.poll() is None


def test_runtime_errors_reach_the_coordinator_as_short_classes_only(fleet: Any, tmp_path: Path) -> None:
    coordinator = fleet.coordinator()
    agent = fleet.agent(coordinator.url)
    agent.agent_id()
    client = fleet.client(coordinator)
    view = _finished(fleet, client, _submit(client, fleet.model(), [1, 3, 8], fleet.quick))
    assert view["state"] == "failed" and "(InvalidArgument): check the job's input shape" in view["error"]
    assert "Invalid rank" not in view["error"] and "ONNXRuntimeError" not in view["error"]
    assert "Invalid rank" in agent.log(), "the runtime's own message stays in the agent's log"


def _raw_json(coordinator: Any, path: str, text: str) -> httpx.Response:
    with _http(coordinator) as http:
        return http.post(path, content=text.encode(), headers={"content-type": "application/json"})


def test_non_finite_numbers_are_422_naming_the_field(fleet: Any) -> None:
    coordinator, _, sha = _with_artifact(fleet)
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = ('{"device_tag": "cpu-test", "artifact_sha256": "%s", "input_shape": [1, 3, 8, 8], '
                '"settings": {"min_time_s": %s}}' % (sha, literal))
        response = _raw_json(coordinator, "/jobs", body)
        assert response.status_code == 422, (literal, response.status_code, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "settings", "min_time_s"]
    response = _raw_json(coordinator, "/agents/nobody/claim", '{"wait_s": NaN}')
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "wait_s"]
    response = _raw_json(coordinator, "/jobs", "[" * 100_000 + "]" * 100_000)
    assert response.status_code in (400, 413, 422), response.text


def test_one_client_chosen_id_enqueued_concurrently_is_one_job_and_no_500(fleet: Any) -> None:
    coordinator, client, sha = _with_artifact(fleet)
    statuses: list[int] = []
    for round_ in range(5):
        body = {"id": f"{round_:02d}" * 16, "device_tag": "cpu-test", "artifact_sha256": sha,
                "input_shape": [1, 3, 8, 8], "settings": fleet.quick}
        barrier = threading.Barrier(10)

        def post() -> None:
            with _http(coordinator) as http:
                barrier.wait()
                statuses.append(http.post("/jobs", json=body).status_code)

        threads = [threading.Thread(target=post) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert sorted(set(statuses)) == [200, 201] and statuses.count(201) == 5, statuses
    assert client.stats()["jobs"] == {"queued": 5}
    with _http(coordinator) as http:
        other = http.post("/jobs", json={"id": "00" * 16, "device_tag": "other", "artifact_sha256": sha,
                                         "input_shape": [1, 3, 8, 8]})
    assert other.status_code == 409 and "fresh id" in other.json()["detail"]


def test_the_input_cap_counts_the_batch(fleet: Any) -> None:
    coordinator, _, sha = _with_artifact(fleet)
    with _http(coordinator) as http:
        huge = http.post("/jobs", json={"device_tag": "cpu-test", "artifact_sha256": sha,
                                        "input_shape": [1, 3, 1024, 1024], "settings": {"batch": 4096}})
        fine = http.post("/jobs", json={"device_tag": "cpu-test", "artifact_sha256": sha,
                                        "input_shape": [1, 3, 1024, 1024], "settings": {"batch": 8}})
    assert huge.status_code == 422 and "batch 4096" in huge.json()["detail"][0]["msg"], huge.text
    assert fine.status_code == 201


def test_implausible_results_are_refused_and_a_plausible_one_is_stored(fleet: Any) -> None:
    coordinator = fleet.coordinator()
    client = fleet.client(coordinator)
    job = _submit(client, fleet.model(), [1, 3, 8, 8], fleet.quick)
    device = {"name": "probe", "device_tag": "cpu-test", "device": "probe", "cores": 1, "ram_mb": 1,
              "runtime": "onnxruntime"}
    good = {"median_ms": 1.0, "p90_ms": 1.2, "mean_ms": 1.05, "std_ms": 0.1, "min_ms": 0.9, "n": 20,
            "threads": 1, "device": "probe", "runtime": "onnxruntime"}
    with _http(coordinator) as http:
        agent = http.post("/agents", json=device).json()["agent_id"]
        lease = http.post(f"/agents/{agent}/claim", json={"wait_s": 0}).json()["lease_id"]
        bad = [
            {"median_ms": 1e308, "p90_ms": 1e308},
            {"min_ms": 1.1, "median_ms": 1.0},
            {"p90_ms": 0.95},
            {"n": 10**30},
            {"min_ms": 0.0},
            {"n": 10**7, "min_ms": 100.0, "median_ms": 100.0, "mean_ms": 100.0, "p90_ms": 100.0},
            {"mean_ms": 0.5},
            {"max_ms": 1.1},
            {"max_ms": 1.5, "std_ms": 0.7},
        ]
        for change in bad:
            response = http.post(f"/jobs/{job}/result", json={"agent_id": agent, "lease_id": lease,
                                                              "measurement": {**good, **change}})
            assert response.status_code == 422, (change, response.text)
            assert response.json()["detail"][0]["loc"][:2] == ["body", "measurement"], response.text
        stored = http.post(f"/jobs/{job}/result", json={"agent_id": agent, "lease_id": lease,
                                                        "measurement": {**good, "max_ms": 1.5}})
    assert stored.status_code == 200 and stored.json()["result"]["median_ms"] == 1.0


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def test_an_upload_and_its_download_hold_bounded_memory(fleet: Any) -> None:
    size = 48 * 1024 * 1024
    coordinator = fleet.coordinator(extra=["--max-artifact-mb", "64"])
    assert coordinator.process is not None
    pid = coordinator.process.pid
    data = b"\x08\x07" + np.random.default_rng(0).bytes(size - 2)
    sha = hashlib.sha256(data).hexdigest()
    client = fleet.client(coordinator)
    client.has_artifact(sha)
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _memory_kib(pid, "VmRSS")
    client.upload(sha, data)
    upload_peak = _memory_kib(pid, "VmHWM") - before
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _memory_kib(pid, "VmRSS")
    with _http(coordinator) as http:
        digest = hashlib.sha256()
        with http.stream("GET", f"/artifacts/{sha}") as response:
            for chunk in response.iter_bytes():
                digest.update(chunk)
    download_peak = _memory_kib(pid, "VmHWM") - before
    assert digest.hexdigest() == sha
    limit_kib = int(1.5 * size / 1024)
    print(f"peak memory above the idle coordinator: upload {upload_peak / 1024:.1f} MiB, "
          f"download {download_peak / 1024:.1f} MiB for a {size / 2**20:.0f} MiB artifact")
    assert upload_peak < limit_kib and download_peak < limit_kib, (upload_peak, download_peak)
    assert upload_peak < size / 1024 / 4, "an upload should cost a few chunks, not a copy of the artifact"


def _connect(coordinator: Any) -> socket.socket:
    return socket.create_connection(_address(coordinator.url), timeout=10)


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_a_wrong_token_is_refused_before_the_body_is_read(fleet: Any) -> None:
    coordinator = fleet.coordinator()
    for token in ("wrong-token-0123456789abcdef", None):
        with _connect(coordinator) as sock:
            auth = f"Authorization: Bearer {token}\r\n" if token else ""
            sock.sendall((f"POST /v1/jobs HTTP/1.1\r\nHost: fleet\r\nContent-Type: application/json\r\n{auth}"
                          "Content-Length: 500000\r\n\r\n").encode())
            sock.settimeout(10)
            started = time.monotonic()
            answer = sock.recv(65536).decode(errors="replace")
            assert answer.startswith("HTTP/1.1 401"), answer
            assert time.monotonic() - started < 5
            assert "connection: close" in answer.lower()
            assert _closed_by_peer(sock, 5)


def test_idle_and_header_dripping_connections_are_closed(fleet: Any) -> None:
    coordinator = fleet.coordinator()
    silent = [_connect(coordinator) for _ in range(10)]
    dripping = [_connect(coordinator) for _ in range(10)]
    request = f"GET /v1/stats HTTP/1.1\r\nHost: fleet\r\n{AUTH}: Bearer {fleet.token}\r\n\r\n".encode()
    deadline = time.monotonic() + 12
    sent = 0
    while time.monotonic() < deadline:
        for sock in dripping:
            try:
                sock.send(request[sent:sent + 1])
            except OSError:
                pass
        sent += 1
        time.sleep(0.3)
    assert sent < len(request), "the drip must be slower than the header deadline"
    client = fleet.client(coordinator)
    assert client.stats()["jobs"] == {}, "the coordinator still serves normal requests"
    for sock in silent + dripping:
        assert _closed_by_peer(sock, 3), "a connection outlived the header deadline"
        sock.close()
