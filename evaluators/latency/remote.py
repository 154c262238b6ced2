"""Remote latency backend: each artifact is measured by a fleet agent on the target device."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, TypeVar

from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.errors import LatencyError
from evaluators.fleet.client import (
    FleetAuthError,
    FleetClient,
    FleetError,
    FleetRejected,
    FleetTlsError,
    FleetUnavailable,
)
from evaluators.fleet.protocol import CA_ENV, CANCELLED, DONE, FAILED, LEASED

log = logging.getLogger(__name__)
T = TypeVar("T")

_WAIT_CHUNK_S = 10.0
_MAX_RETRY_PAUSE_S = 5.0


class RemoteLatencyBackend:
    """Sends artifacts to the fleet coordinator and waits for an agent of ``device_tag`` to measure.

    Invariants: a call returns a result measured by a real agent (``backend="remote"``, ``agent``
    and ``device`` saying which one and what hardware; ``source="emulated"`` when that agent runs
    under an emulator, so its figure is never taken for the device's) or raises ``LatencyError`` within about
    ``timeout_s``; it never hangs. A job that times out is cancelled, so no agent measures it later.
    The coordinator stores each artifact once (uploads are skipped when its sha256 is known), and
    a job request retried after a lost response does not queue the job twice (client-chosen id).

    Args:
        fleet_url: The coordinator's URL, e.g. ``https://10.0.0.2:8765``.
        token: The fleet token.
        device_tag: Which devices measure (``rpi4b``); agents with that tag share the queue.
        timeout_s: Longest wait for one measurement, queueing included.
        poll_s: First pause before retrying when the coordinator cannot be reached (it doubles up
            to 5 s); status checks themselves long-poll on the coordinator and need no pause.
        ca: PEM bundle that verifies an ``https://`` coordinator (default: env
            ``HWSEARCH_FLEET_CA``, else the system's CAs).

    Raises:
        ValueError: Non-positive times, a URL that is not http(s), or a CA file that cannot be used.
    """

    name = "remote"

    def __init__(
        self, fleet_url: str, token: str, device_tag: str, timeout_s: float = 600.0, poll_s: float = 0.2,
        ca: str | Path | None = None,
    ) -> None:
        if timeout_s <= 0 or poll_s <= 0:
            raise ValueError("timeout_s and poll_s must be positive")
        self.device_tag = device_tag
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.ca = ca or os.environ.get(CA_ENV) or None
        self._client = FleetClient(fleet_url, token, ca=self.ca)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> "RemoteLatencyBackend":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def measure(
        self, artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings
    ) -> LatencyResult:
        """Measure ``artifact`` on an agent of ``device_tag``.

        Raises:
            LatencyError: When the artifact cannot be read or is refused, the token is wrong, no
                live agent finishes the job within ``timeout_s`` (the job is then cancelled), or
                the agent reports that the runtime could not run the model.
        """
        deadline = time.monotonic() + self.timeout_s
        try:
            data = Path(artifact).read_bytes()
        except OSError as exc:
            raise LatencyError(f"cannot read artifact {artifact}: {exc.strerror}", "check the path") from exc
        sha256 = hashlib.sha256(data).hexdigest()
        job_id = uuid.uuid4().hex
        job = self._retrying(deadline, lambda: self._submit(job_id, sha256, data, input_shape, settings), artifact)
        log.debug("artifact %s: job %s queued for %s", artifact, job["id"], self.device_tag)
        while time.monotonic() < deadline:
            remaining = deadline - time.monotonic()
            job = self._retrying(
                deadline, lambda: self._client.job(job["id"], wait_s=min(_WAIT_CHUNK_S, max(0.0, remaining))),
                artifact,
            )
            if job["state"] == DONE:
                return LatencyResult.from_dict(job["result"])
            if job["state"] == FAILED:
                raise LatencyError(
                    f"the fleet could not measure {artifact} on {self.device_tag!r}: {job['error']}",
                    "check that the artifact loads with onnxruntime on the device "
                    "(python -c 'import onnxruntime as o; o.InferenceSession(PATH)')",
                )
            if job["state"] == CANCELLED:
                raise LatencyError(
                    f"the fleet job for {artifact} was cancelled: {job['error']}", "run the trial again"
                )
        reason = f"no result within the remote latency timeout of {self.timeout_s:g} s"
        try:
            final = self._client.cancel(job["id"], reason)
        except FleetError as exc:
            raise LatencyError(
                f"{reason} for {artifact} on {self.device_tag!r}, and the coordinator is unreachable: {exc}",
                f"check the coordinator at {self._client.url}",
            ) from exc
        if final["state"] == DONE:
            return LatencyResult.from_dict(final["result"])
        raise self._timeout_error(job, artifact, reason)

    def _submit(
        self, job_id: str, sha256: str, data: bytes, input_shape: tuple[int, ...], settings: LatencySettings
    ) -> dict[str, Any]:
        """Upload the artifact unless stored, then queue job ``job_id`` (safe to retry)."""
        if not self._client.has_artifact(sha256):
            self._client.upload(sha256, data)
        return self._client.enqueue(self.device_tag, sha256, list(input_shape), settings.to_dict(), job_id=job_id)

    def _retrying(self, deadline: float, call: Callable[[], T], artifact: Path) -> T:
        """``call()``, retried with back-off while the coordinator is unreachable, until ``deadline``."""
        pause = self.poll_s
        while True:
            try:
                return call()
            except FleetAuthError as exc:
                raise LatencyError(
                    f"{exc.detail} (measuring {artifact})",
                    "pass the coordinator's token (--fleet-token or HWSEARCH_FLEET_TOKEN)",
                ) from exc
            except FleetTlsError as exc:
                raise LatencyError(
                    f"{exc.detail} (measuring {artifact})",
                    "pass --fleet-ca (or set HWSEARCH_FLEET_CA) with the PEM file of the CA that signed the "
                    "coordinator's certificate",
                ) from exc
            except FleetRejected as exc:
                fix = "check the artifact and the settings"
                if exc.status == 413:
                    fix = "raise the coordinator's --max-artifact-mb"
                raise LatencyError(f"the fleet coordinator refused the job for {artifact}: {exc}", fix) from exc
            except FleetUnavailable as exc:
                if time.monotonic() + pause > deadline:
                    raise LatencyError(
                        f"the fleet coordinator stayed unreachable while measuring {artifact}: {exc}",
                        f"start it (python -m evaluators.fleet serve ...) or check the fleet URL {self._client.url}",
                    ) from exc
                log.warning("fleet coordinator unavailable (%s); retrying in %.1f s", exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, _MAX_RETRY_PAUSE_S)

    def _timeout_error(self, job: dict[str, Any], artifact: Path, reason: str) -> LatencyError:
        """Why ``job`` (as last seen before it was cancelled) did not finish in time."""
        if job["state"] == LEASED:
            return LatencyError(
                f"agent {job['agent_id']} did not finish measuring {artifact} on {self.device_tag!r}: "
                f"{reason} (job {job['id']} cancelled)",
                "raise the remote latency timeout, or check that agent's log",
            )
        try:
            live = self._client.agents(device_tag=self.device_tag, live_only=True)
            tags = ", ".join(sorted({a["device_tag"] for a in self._client.agents(live_only=True)})) or "none"
        except FleetError:
            live, tags = [], "unknown"
        history = f"; last attempt: {job['note']}" if job.get("note") else ""
        ca = f" --ca {self.ca}" if self.ca else ""
        start = f"python -m evaluators.agent --fleet {self._client.url}{ca} --token ... --device {self.device_tag}"
        return LatencyError(
            f"no live agent for device tag {self.device_tag!r} picked up the job for {artifact}: {reason} "
            f"(job {job['id']} cancelled; {len(live)} live agents with that tag; live tags: {tags}{history})",
            f"start an agent on the device: {start}",
        )
