"""HTTP client of the coordinator's API, used by the agent and by the remote latency backend.

Needs only httpx (it runs on the Raspberry Pi agent). Errors are typed by what the caller should
do: :class:`FleetUnavailable` (retry later), :class:`FleetAuthError` (fix the token or
credential), :class:`FleetTlsError` (fix the CA) and :class:`FleetRejected` (the request itself
was refused; carries the status and the reason).
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path
from typing import Any

import httpx

from evaluators.fleet.protocol import AGENT_CREDENTIAL_PREFIX, API_PREFIX


class FleetError(Exception):
    """A request to the coordinator did not succeed.

    Attributes:
        status: HTTP status, or None when no response came back.
        detail: The coordinator's reason (or the transport error), one line.
    """

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail if status is None else f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class FleetUnavailable(FleetError):
    """The coordinator is unreachable, timed out or answered 5xx: try again later."""


class FleetAuthError(FleetError):
    """The coordinator refused the token or the agent credential (401): wrong, unknown or revoked."""


class FleetTlsError(FleetError):
    """The coordinator's TLS certificate cannot be verified: a configuration error, not an outage."""


class FleetRejected(FleetError):
    """The coordinator refused the request (404, 409, 413, 422 ...)."""


class ArtifactError(FleetError):
    """A downloaded artifact is over the size cap or does not match its sha256."""


def tls_verification(url: str, ca: str | Path | None) -> ssl.SSLContext | bool:
    """How to verify the coordinator's certificate: against ``ca`` when given, else the default CAs.

    Raises:
        ValueError: ``ca`` for an ``http://`` URL (nothing to verify), or an unreadable CA file.
    """
    if ca is None:
        return True
    if not url.startswith("https://"):
        raise ValueError(f"a CA file ({ca}) is only used with an https:// fleet URL, not {url}")
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot read the CA file {ca}: {exc}") from exc


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}" for item in detail
        )
    return str(detail)


class FleetClient:
    """A thread-safe client of one coordinator.

    Args:
        url: The coordinator's base URL, e.g. ``https://192.168.1.10:8765``.
        token: The fleet token, enrolment token or agent credential (sent as ``Authorization:
            Bearer``; never logged); None to set one later with :meth:`use_credential`.
        timeout: Seconds for connecting and for each request without a long-poll.
        ca: PEM bundle of the CA that signed an ``https://`` coordinator's certificate (default:
            the system's CAs).

    Raises:
        ValueError: When ``url`` is not an http(s) URL, or ``ca`` cannot be used with it.
    """

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0, ca: str | Path | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"fleet URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._http = httpx.Client(base_url=self.url + API_PREFIX, timeout=timeout, verify=tls_verification(url, ca))
        self._kind = "fleet token"
        if token:
            self.use_credential(token)

    def use_credential(self, credential: str) -> None:
        """Authenticate every later request with ``credential`` (after an enrolment)."""
        self._http.headers["Authorization"] = f"Bearer {credential}"
        self._kind = "agent credential" if credential.startswith(AGENT_CREDENTIAL_PREFIX) else "fleet token"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> "FleetClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code == 401:
            raise FleetAuthError(f"the coordinator at {self.url} refused the {self._kind}: {_detail(response)}", 401)
        if response.status_code >= 500:
            raise FleetUnavailable(_detail(response), response.status_code)
        if response.status_code >= 400:
            raise FleetRejected(_detail(response), response.status_code)
        return response

    def _request(
        self, method: str, path: str, *, wait_s: float = 0.0, timeout_s: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        base = self._timeout if timeout_s is None else timeout_s
        timeout = httpx.Timeout(base + wait_s, connect=base)
        try:
            response = self._http.request(method, path, timeout=timeout, **kwargs)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        return self._check(response)

    def _transport_error(self, exc: httpx.TransportError) -> FleetError:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            return FleetTlsError(
                f"cannot verify the certificate of the fleet coordinator at {self.url}: "
                f"{getattr(cause, 'verify_message', '') or cause}"
            )
        return FleetUnavailable(f"cannot reach the fleet coordinator at {self.url}: {type(exc).__name__}: {exc}")

    def register(self, info: dict[str, Any]) -> dict[str, Any]:
        """Register an agent; returns its id and timing contract."""
        return dict(self._request("POST", "/agents", json=info).json())

    def enrol(self, info: dict[str, Any]) -> dict[str, Any]:
        """Enrol a new agent with the enrolment token; returns its id, timing and ``credential``.

        Raises:
            FleetRejected: 409 when the coordinator runs in legacy shared-token mode.
        """
        return dict(self._request("POST", "/enrol", json=info).json())

    def claim(self, agent_id: str, wait_s: float) -> dict[str, Any] | None:
        """Lease a job for ``agent_id``'s device tag, waiting up to ``wait_s``; None when none came."""
        response = self._request("POST", f"/agents/{agent_id}/claim", json={"wait_s": wait_s}, wait_s=wait_s)
        return None if response.status_code == 204 else dict(response.json())

    def heartbeat(self, job_id: str, agent_id: str, lease_id: str, *, timeout_s: float | None = None) -> None:
        """Extend a lease; :class:`FleetRejected` (409) means stop working on the job."""
        self._request(
            "POST", f"/jobs/{job_id}/heartbeat", json={"agent_id": agent_id, "lease_id": lease_id},
            timeout_s=timeout_s,
        )

    def download(self, sha256: str, dest: Path, *, max_bytes: int) -> None:
        """Stream artifact ``sha256`` into ``dest``, verifying its size cap and digest.

        Raises:
            ArtifactError: Over ``max_bytes``, or the bytes do not hash to ``sha256`` (``dest`` is
                removed).
        """
        digest = hashlib.sha256()
        size = 0
        try:
            with self._http.stream("GET", f"/artifacts/{sha256}") as response, dest.open("wb") as out:
                if response.status_code >= 400:
                    response.read()
                self._check(response)
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ArtifactError(f"artifact {sha256} is over the agent's cap of {max_bytes} bytes", 413)
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise ArtifactError(f"downloaded artifact hashes to {digest.hexdigest()}, not {sha256}")
        except httpx.TransportError as exc:
            dest.unlink(missing_ok=True)
            raise self._transport_error(exc) from exc
        except FleetError:
            dest.unlink(missing_ok=True)
            raise

    def post_result(self, job_id: str, agent_id: str, lease_id: str, measurement: dict[str, Any]) -> dict[str, Any]:
        """Report a measurement; :class:`FleetRejected` (409) when it is not accepted."""
        body = {"agent_id": agent_id, "lease_id": lease_id, "measurement": measurement}
        return dict(self._request("POST", f"/jobs/{job_id}/result", json=body).json())

    def post_failure(self, job_id: str, agent_id: str, lease_id: str, error: str, *, retryable: bool) -> dict[str, Any]:
        """Report that a job could not be measured."""
        body = {"agent_id": agent_id, "lease_id": lease_id, "error": error[:4000], "retryable": retryable}
        return dict(self._request("POST", f"/jobs/{job_id}/failure", json=body).json())

    def release(self, job_id: str, agent_id: str, lease_id: str) -> dict[str, Any]:
        """Give a leased job back to the queue."""
        body = {"agent_id": agent_id, "lease_id": lease_id}
        return dict(self._request("POST", f"/jobs/{job_id}/release", json=body).json())

    def goodbye(self, agent_id: str) -> None:
        """Tell the coordinator this agent stopped."""
        self._request("POST", f"/agents/{agent_id}/goodbye")

    def has_artifact(self, sha256: str) -> bool:
        """Whether the coordinator stores artifact ``sha256``."""
        try:
            self._request("HEAD", f"/artifacts/{sha256}")
        except FleetRejected as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def upload(self, sha256: str, data: bytes) -> dict[str, Any]:
        """Upload an artifact under its sha256."""
        return dict(self._request(
            "PUT", f"/artifacts/{sha256}", content=data, headers={"content-type": "application/octet-stream"}
        ).json())

    def enqueue(
        self, device_tag: str, sha256: str, input_shape: list[int], settings: dict[str, Any],
        *, max_attempts: int | None = None, job_id: str | None = None,
    ) -> dict[str, Any]:
        """Queue a job; returns its view (``id``, ``state`` ...).

        Args:
            job_id: A fresh 32-hex-digit id chosen by the caller, which makes retries of this
                request safe (the coordinator returns the job the first one created).
        """
        body: dict[str, Any] = {
            "device_tag": device_tag, "artifact_sha256": sha256, "input_shape": input_shape, "settings": settings,
        }
        if max_attempts is not None:
            body["max_attempts"] = max_attempts
        if job_id is not None:
            body["id"] = job_id
        return dict(self._request("POST", "/jobs", json=body).json())

    def job(self, job_id: str, *, wait_s: float = 0.0) -> dict[str, Any]:
        """A job's view; with ``wait_s``, once it finished or after that long (server-capped)."""
        return dict(self._request("GET", f"/jobs/{job_id}", params={"wait_s": wait_s}, wait_s=wait_s).json())

    def cancel(self, job_id: str, reason: str) -> dict[str, Any]:
        """Cancel a queued or leased job."""
        return dict(self._request("POST", f"/jobs/{job_id}/cancel", json={"reason": reason[:1000]}).json())

    def jobs(
        self, *, state: str | None = None, device_tag: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Jobs, oldest first."""
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        if device_tag:
            params["device_tag"] = device_tag
        return list(self._request("GET", "/jobs", params=params).json())

    def agents(self, *, device_tag: str | None = None, live_only: bool = False) -> list[dict[str, Any]]:
        """Registered agents, most recently seen first."""
        params: dict[str, Any] = {"live_only": live_only}
        if device_tag:
            params["device_tag"] = device_tag
        return list(self._request("GET", "/agents", params=params).json())

    def stats(self) -> dict[str, Any]:
        """Job counts by state and live agents by device tag."""
        return dict(self._request("GET", "/stats").json())
