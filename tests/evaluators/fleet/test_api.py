"""The coordinator's API through FastAPI's TestClient, with the clock overridden (no sleeping)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from evaluators.fleet.admin import revoke_agent
from evaluators.fleet.app import create_app
from evaluators.fleet.dependencies import get_clock
from evaluators.fleet.settings import FleetSettings

TOKEN = "api-test-token-0123456789"
ENROL = "api-enrol-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LEASE = 10.0
MEASUREMENT = {
    "median_ms": 1.0, "p90_ms": 1.2, "mean_ms": 1.05, "std_ms": 0.1, "min_ms": 0.9, "n": 20, "threads": 1,
    "device": "Raspberry Pi 4 Model B Rev 1.4 (aarch64, 4 cores)", "runtime": "onnxruntime 1.18.0",
}


class Clock:
    """A clock the test moves by hand; each reading also advances it a millisecond."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def _app(tmp_path: Path, **overrides: Any) -> FastAPI:
    options: dict[str, Any] = {
        "token": TOKEN, "storage": f"sqlite:///{tmp_path / 'fleet.db'}", "lease_seconds": LEASE,
        "max_attempts": 2, "max_artifact_bytes": 64 * 1024, "max_json_bytes": 16 * 1024, "max_wait_seconds": 0.0,
    }
    settings = FleetSettings(**{**options, **overrides})
    return create_app(settings)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    app = _app(tmp_path)
    app.dependency_overrides[get_clock] = lambda: clock
    with TestClient(app, headers=AUTH) as client:
        yield client


def _upload(api: TestClient, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert api.put(f"/v1/artifacts/{sha}", content=data).status_code in (200, 201)
    return sha


def _register(api: TestClient, name: str, tag: str = "rpi4b") -> str:
    body = {"name": name, "device_tag": tag, "device": "Raspberry Pi 4", "cores": 4, "ram_mb": 4096,
            "runtime": "onnxruntime 1.18.0"}
    response = api.post("/v1/agents", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


def _enqueue(api: TestClient, sha: str, tag: str = "rpi4b") -> str:
    response = api.post("/v1/jobs", json={"device_tag": tag, "artifact_sha256": sha, "input_shape": [1, 3, 8, 8]})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _claim(api: TestClient, agent: str) -> dict[str, Any]:
    response = api.post(f"/v1/agents/{agent}/claim", json={"wait_s": 0})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _post(api: TestClient, job: str, action: str, agent: str, lease: str, **extra: Any) -> Any:
    return api.post(f"/v1/jobs/{job}/{action}", json={"agent_id": agent, "lease_id": lease, **extra})


def _example_path(path: str) -> str:
    return (path.replace("{agent_id}", "agent-1").replace("{job_id}", "0" * 32)
            .replace("{sha256}", "0" * 64))


def test_every_route_requires_the_token(tmp_path: Path) -> None:
    app = _app(tmp_path)
    routes = [(path, method.upper()) for path, item in app.openapi()["paths"].items() for method in item]
    routes.append(("/v1/openapi.json", "GET"))
    assert len(routes) >= 14
    with TestClient(app) as client:
        for path, method in routes:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
                response = client.request(method, _example_path(path), headers=headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/openapi.json", headers=AUTH).status_code == 200


def test_uploads_and_downloads_are_capped_with_413(tmp_path: Path) -> None:
    big = b"\x08" + bytes(70 * 1024)
    with TestClient(_app(tmp_path, max_artifact_bytes=1024 * 1024), headers=AUTH) as roomy:
        sha = _upload(roomy, big)
        assert roomy.get(f"/v1/artifacts/{sha}").content == big
    with TestClient(_app(tmp_path), headers=AUTH) as strict:
        assert strict.put(f"/v1/artifacts/{'1' * 64}", content=big).status_code == 413
        response = strict.get(f"/v1/artifacts/{sha}")
        assert response.status_code == 413 and "cap" in response.json()["detail"]


def test_json_bodies_are_capped_with_413(api: TestClient) -> None:
    response = api.post("/v1/jobs", content=b"[" + b"1," * 20_000 + b"1]", headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_malformed_json_and_fields_are_422_naming_the_field(api: TestClient) -> None:
    sha = _upload(api, b"\x08\x01onnx")
    response = api.post("/v1/jobs", content=b'{"device_tag": "rpi4b",', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "json_invalid"
    cases = [
        ({"input_shape": [1, -3, 8, 8]}, ["body", "input_shape", 1]),
        ({"device_tag": "../etc"}, ["body", "device_tag"]),
        ({"settings": {"threads": 0}}, ["body", "settings", "threads"]),
        ({"settings": {"min_repeats": 10, "max_repeats": 5}}, ["body", "settings"]),
        ({"input_shape": [4096, 4096, 4096]}, ["body", "input_shape"]),
        ({"surprise": 1}, ["body", "surprise"]),
        ({"artifact_sha256": "f" * 64}, ["body", "artifact_sha256"]),
    ]
    for change, location in cases:
        body = {"device_tag": "rpi4b", "artifact_sha256": sha, "input_shape": [1, 3, 8, 8], **change}
        response = api.post("/v1/jobs", json=body)
        assert response.status_code == 422, (change, response.text)
        assert response.json()["detail"][0]["loc"] == location, (change, response.json())
    agent = _register(api, "pi")
    response = api.post(f"/v1/agents/{agent}/claim", json={"wait_s": "soon"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "wait_s"]


def test_ids_are_validated_before_any_lookup(api: TestClient) -> None:
    for path in (
        "/v1/artifacts/..%2F..%2Fetc%2Fpasswd", "/v1/artifacts/../../etc/passwd", "/v1/artifacts/" + "A" * 64,
        "/v1/artifacts/%2e%2e", "/v1/jobs/..%2Fx", "/v1/jobs/not-a-job-id",
    ):
        assert api.get(path).status_code in (404, 422), path
    response = api.get("/v1/artifacts/" + "A" * 64)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path", "sha256"]
    assert api.post("/v1/agents/..%2F..%2Fx/claim", json={}).status_code in (404, 422)
    assert api.post("/v1/agents/Bad_Agent/claim", json={}).status_code == 422


def test_uploads_must_match_their_sha256_and_never_be_pickles(api: TestClient) -> None:
    response = api.put(f"/v1/artifacts/{'0' * 64}", content=b"\x08\x01onnx")
    assert response.status_code == 422 and "sha256" in response.json()["detail"][0]["msg"]
    data = pickle.dumps({"weights": [1, 2, 3]})
    response = api.put(f"/v1/artifacts/{hashlib.sha256(data).hexdigest()}", content=data)
    assert response.status_code == 422 and "pickle" in response.json()["detail"][0]["msg"]
    zipped = b"PK\x03\x04torch-checkpoint"
    response = api.put(f"/v1/artifacts/{hashlib.sha256(zipped).hexdigest()}", content=zipped)
    assert response.status_code == 422 and "zip" in response.json()["detail"][0]["msg"]


def test_a_result_is_accepted_once_and_only_from_the_lease_holder(api: TestClient) -> None:
    sha = _upload(api, b"\x08\x01onnx")
    job = _enqueue(api, sha)
    holder, other = _register(api, "pi-a"), _register(api, "pi-b")
    lease = _claim(api, holder)["lease_id"]
    assert _post(api, job, "result", other, lease, measurement=MEASUREMENT).status_code == 409
    assert _post(api, job, "result", holder, "f" * 32, measurement=MEASUREMENT).status_code == 409
    bad = {**MEASUREMENT, "median_ms": -1}
    response = _post(api, job, "result", holder, lease, measurement=bad)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "measurement", "median_ms"]
    accepted = _post(api, job, "result", holder, lease, measurement=MEASUREMENT)
    assert accepted.status_code == 200, accepted.text
    again = _post(api, job, "result", holder, lease, measurement=MEASUREMENT)
    assert again.status_code == 409 and "done already" in again.json()["detail"]
    result = api.get(f"/v1/jobs/{job}").json()["result"]
    assert result["agent"] == holder and result["backend"] == "remote" and result["device_tag"] == "rpi4b"
    assert result["device"] == MEASUREMENT["device"]
    agents = {a["id"]: a for a in api.get("/v1/agents").json()}
    assert agents[holder]["jobs_done"] == 1 and agents[other]["jobs_done"] == 0


def test_an_expired_lease_is_leased_again_then_fails_after_max_attempts(api: TestClient, clock: Clock) -> None:
    sha = _upload(api, b"\x08\x01onnx")
    job = _enqueue(api, sha)
    first, second = _register(api, "pi-a"), _register(api, "pi-b")
    first_lease = _claim(api, first)["lease_id"]
    clock.now += LEASE + 1
    claimed = _claim(api, second)
    assert claimed["id"] == job and claimed["attempt"] == 2
    refused = _post(api, job, "heartbeat", first, first_lease)
    assert refused.status_code == 409 and second in refused.json()["detail"]
    assert _post(api, job, "result", first, first_lease, measurement=MEASUREMENT).status_code == 409
    clock.now += LEASE + 1
    view = api.get(f"/v1/jobs/{job}").json()
    assert view["state"] == "failed" and view["attempts"] == 2
    assert "max_attempts=2" in view["error"] and second in view["error"]
    assert api.post(f"/v1/agents/{first}/claim", json={"wait_s": 0}).status_code == 204


def test_heartbeats_keep_a_lease(api: TestClient, clock: Clock) -> None:
    job = _enqueue(api, _upload(api, b"\x08\x01onnx"))
    agent = _register(api, "pi")
    lease = _claim(api, agent)["lease_id"]
    for _ in range(3):
        clock.now += LEASE * 0.9
        response = _post(api, job, "heartbeat", agent, lease)
        assert response.status_code == 200 and response.json()["lease_seconds"] == LEASE
    assert api.get(f"/v1/jobs/{job}").json()["state"] == "leased"


def test_release_requeues_without_using_an_attempt(api: TestClient) -> None:
    job = _enqueue(api, _upload(api, b"\x08\x01onnx"))
    agent = _register(api, "pi")
    lease = _claim(api, agent)["lease_id"]
    view = _post(api, job, "release", agent, lease).json()
    assert view["state"] == "queued" and view["attempts"] == 0 and "released" in view["note"]
    assert _claim(api, agent)["attempt"] == 1


def test_failures_are_final_unless_retryable(api: TestClient) -> None:
    sha = _upload(api, b"\x08\x01onnx")
    runtime_error, flaky = _enqueue(api, sha), _enqueue(api, sha)
    agent = _register(api, "pi")
    lease = _claim(api, agent)["lease_id"]
    error = "InvalidProtobuf: [ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Protobuf parsing failed."
    view = _post(api, runtime_error, "failure", agent, lease, error=error).json()
    assert view["state"] == "failed" and error in view["error"]
    lease = _claim(api, agent)["lease_id"]
    view = _post(api, flaky, "failure", agent, lease, error="download corrupted", retryable=True).json()
    assert view["state"] == "queued" and "download corrupted" in view["note"]
    lease = _claim(api, agent)["lease_id"]
    view = _post(api, flaky, "failure", agent, lease, error="download corrupted", retryable=True).json()
    assert view["state"] == "failed" and "attempt 2/2" in view["error"]


def test_a_cancelled_job_stops_its_agent(api: TestClient) -> None:
    job = _enqueue(api, _upload(api, b"\x08\x01onnx"))
    agent = _register(api, "pi")
    lease = _claim(api, agent)["lease_id"]
    view = api.post(f"/v1/jobs/{job}/cancel", json={"reason": "trial timed out"}).json()
    assert view["state"] == "cancelled" and view["error"] == "trial timed out"
    assert _post(api, job, "heartbeat", agent, lease).status_code == 409
    assert _post(api, job, "result", agent, lease, measurement=MEASUREMENT).status_code == 409


def test_jobs_go_to_agents_of_their_tag_oldest_first(api: TestClient) -> None:
    sha = _upload(api, b"\x08\x01onnx")
    jobs = [_enqueue(api, sha, "rpi4b"), _enqueue(api, sha, "jetson"), _enqueue(api, sha, "rpi4b")]
    pi, jetson = _register(api, "pi"), _register(api, "nano", "jetson")
    assert [_claim(api, pi)["id"], _claim(api, pi)["id"]] == [jobs[0], jobs[2]]
    assert api.post(f"/v1/agents/{pi}/claim", json={"wait_s": 0}).status_code == 204
    assert _claim(api, jetson)["id"] == jobs[1]
    assert api.get("/v1/stats").json() == {"jobs": {"leased": 3}, "live_agents": {"rpi4b": 1, "jetson": 1}}


def test_agents_are_live_until_silent_or_gone(api: TestClient, clock: Clock) -> None:
    quiet, leaving = _register(api, "quiet"), _register(api, "leaving")
    assert {a["id"] for a in api.get("/v1/agents", params={"live_only": True}).json()} == {quiet, leaving}
    assert api.post(f"/v1/agents/{leaving}/goodbye").status_code == 204
    live = api.get("/v1/agents", params={"live_only": True, "device_tag": "rpi4b"}).json()
    assert [a["id"] for a in live] == [quiet]
    clock.now += 3600
    assert api.get("/v1/agents", params={"live_only": True}).json() == []
    assert api.post("/v1/agents/never-registered/claim", json={"wait_s": 0}).status_code == 404


def test_a_retried_enqueue_with_the_same_id_queues_one_job(api: TestClient) -> None:
    sha = _upload(api, b"\x08\x01onnx")
    body = {"id": "ab" * 16, "device_tag": "rpi4b", "artifact_sha256": sha, "input_shape": [1, 3, 8, 8]}
    first, retry = api.post("/v1/jobs", json=body), api.post("/v1/jobs", json=body)
    assert (first.status_code, retry.status_code) == (201, 200) and first.json() == retry.json()
    assert api.get("/v1/stats").json()["jobs"] == {"queued": 1}
    assert api.post("/v1/jobs", json={**body, "id": "../x"}).json()["detail"][0]["loc"] == ["body", "id"]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _enrol(client: TestClient, name: str) -> tuple[str, dict[str, str]]:
    body = {"name": name, "device_tag": "rpi4b", "device": "Raspberry Pi 4", "cores": 4, "ram_mb": 4096,
            "runtime": "onnxruntime 1.32.0"}
    response = client.post("/v1/enrol", json=body, headers=_bearer(ENROL))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["credential"].startswith(f"agent.{answer['agent_id']}.")
    return str(answer["agent_id"]), _bearer(answer["credential"])


def test_with_enrolment_each_credential_works_only_where_it_belongs(tmp_path: Path) -> None:
    app = _app(tmp_path, enrol_token=ENROL)
    with TestClient(app) as client:
        pi, pi_auth = _enrol(client, "pi")
        other, other_auth = _enrol(client, "other")
        sha = _upload_with(client, b"\x08\x01onnx", AUTH)
        job = client.post("/v1/jobs", json={"device_tag": "rpi4b", "artifact_sha256": sha, "input_shape": [1, 3, 8, 8]},
                          headers=AUTH).json()["id"]
        assert client.post("/v1/jobs", json={}, headers=_bearer(ENROL)).status_code == 403
        assert client.get("/v1/stats", headers=_bearer(ENROL)).status_code == 403
        assert client.get(f"/v1/artifacts/{sha}", headers=_bearer(ENROL)).status_code == 403
        assert client.get("/v1/stats", headers=pi_auth).status_code == 403
        assert client.post(f"/v1/agents/{pi}/claim", json={"wait_s": 0}, headers=AUTH).status_code == 403
        assert client.post("/v1/enrol", json={}, headers=AUTH).status_code == 403
        assert client.post(f"/v1/agents/{other}/claim", json={"wait_s": 0}, headers=pi_auth).status_code == 403
        claimed = client.post(f"/v1/agents/{pi}/claim", json={"wait_s": 0}, headers=pi_auth).json()
        lease = {"agent_id": pi, "lease_id": claimed["lease_id"]}
        assert client.get(f"/v1/artifacts/{sha}", headers=pi_auth).content == b"\x08\x01onnx"
        spoofed = {"agent_id": pi, "lease_id": claimed["lease_id"], "measurement": MEASUREMENT}
        assert client.post(f"/v1/jobs/{job}/result", json=spoofed, headers=other_auth).status_code == 403
        again = client.post("/v1/agents", json={"name": "pi", "device_tag": "rpi4b", "device": "Raspberry Pi 4",
                                                "cores": 4, "ram_mb": 4096, "runtime": "onnxruntime 1.33"},
                            headers=pi_auth)
        assert again.status_code == 200 and again.json()["agent_id"] == pi
        assert client.post(f"/v1/jobs/{job}/heartbeat", json=lease, headers=pi_auth).status_code == 200
        print(revoke_agent(str(app.state.settings.storage), pi))
        refused = client.post(f"/v1/jobs/{job}/heartbeat", json=lease, headers=pi_auth)
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        wrong = client.post(f"/v1/jobs/{job}/heartbeat", json=lease, headers=_bearer(f"agent.{pi}.{'x' * 43}"))
        assert wrong.status_code == 401 and "revoked" not in wrong.json()["detail"]
        view = client.get(f"/v1/jobs/{job}", headers=AUTH).json()
        assert view["state"] == "queued" and view["attempts"] == 0 and "revoked" in view["note"]
        agents = {a["id"]: a for a in client.get("/v1/agents", headers=AUTH).json()}
        assert (agents[pi]["revoked"], agents[pi]["live"], agents[other]["revoked"]) == (True, False, False)
        assert agents[other]["enrolled"]
        assert client.post(f"/v1/agents/{other}/claim", json={"wait_s": 0}, headers=other_auth).json()["id"] == job


def test_legacy_mode_has_no_enrolment_and_tls_needs_it(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path), headers=AUTH) as legacy:
        response = legacy.post("/v1/enrol", json={"name": "pi", "device_tag": "rpi4b", "device": "pi", "cores": 1,
                                                  "ram_mb": 1, "runtime": "ort"})
        assert response.status_code == 409 and "legacy shared-token mode" in response.json()["detail"]
    pem = tmp_path / "cert.pem"
    pem.write_text("not a certificate")
    for overrides, message in (
        ({"enrol_token": TOKEN}, "must differ"),
        ({"tls_cert": pem, "tls_key": pem}, "TLS needs an enrolment token"),
        ({"tls_cert": pem, "enrol_token": ENROL}, "both a certificate and its key"),
        ({"tls_cert": tmp_path / "absent.pem", "tls_key": pem, "enrol_token": ENROL}, "cannot read TLS file"),
    ):
        with pytest.raises(ValueError, match=message):
            _app(tmp_path, **overrides)


def _upload_with(client: TestClient, data: bytes, headers: dict[str, str]) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert client.put(f"/v1/artifacts/{sha}", content=data, headers=headers).status_code in (200, 201)
    return sha
