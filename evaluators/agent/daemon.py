"""The agent's main loop: register, claim, fetch, benchmark, report; back off when the coordinator
is away; on SIGTERM finish (or release) the current job and stop."""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators.agent import credential
from evaluators.agent.credential import CredentialFileError, StoredCredential
from evaluators.agent.device import DeviceInfo, usable_cores
from evaluators.agent.runner import BenchmarkRunner, Outcome
from evaluators.fleet.client import (
    ArtifactError,
    FleetAuthError,
    FleetClient,
    FleetError,
    FleetRejected,
    FleetTlsError,
    FleetUnavailable,
)
from evaluators.fleet.protocol import is_sha256

log = logging.getLogger("hwsearch.agent")

KEEP_ARTIFACTS = 32
"""Downloaded artifacts kept in the work directory (newest first)."""

RELEASE = "release"
"""Why a job is stopped when the agent shuts down: it goes back to the queue."""


@dataclass(frozen=True)
class AgentOptions:
    """How the agent runs (the command-line flags).

    Attributes:
        threads: When set, every job runs with this many intra-op threads (results say so);
            else the job's own thread count.
        cores: When set, jobs that name no cores are pinned to these; a job's own cores must
            be among the CPUs this process may use.
        poll_s: Longest long-poll for a job (the coordinator may cap it).
        work_dir: Where downloaded artifacts are kept.
        credential_path: Where the agent's own credential is kept once it enrolled (mode 0600);
            default ``work_dir / "credential.json"``.
        max_artifact_bytes: Larger artifacts are refused (the job fails).
        job_time_limit_s: A benchmark running longer is killed and its job failed.
        drain_s: After SIGTERM, how long the current job may still run before it is released.
        result_retry_s: How long to keep retrying to post a result while the coordinator is away.
        backoff_max_s: Longest pause between reconnection attempts.
    """

    threads: int | None = None
    cores: tuple[int, ...] | None = None
    poll_s: float = 5.0
    work_dir: Path = Path.home() / ".cache" / "hwsearch-agent"
    credential_path: Path | None = None
    max_artifact_bytes: int = 256 * 1024 * 1024
    job_time_limit_s: float = 900.0
    drain_s: float = 30.0
    result_retry_s: float = 300.0
    backoff_max_s: float = 30.0

    @property
    def credential_file(self) -> Path:
        """Where the credential lives."""
        return self.credential_path or self.work_dir / "credential.json"


class Backoff:
    """Exponential back-off with jitter: 0.5 s, 1 s, 2 s ... up to ``cap``, each drawn in [d/2, d]."""

    def __init__(self, cap: float, first: float = 0.5) -> None:
        self._cap = cap
        self._first = first
        self._failures = 0

    def next(self) -> float:
        """The pause before the next try."""
        delay = min(self._cap, self._first * 2 ** min(self._failures, 30))
        self._failures += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        """A request succeeded."""
        self._failures = 0


class Heartbeat(threading.Thread):
    """Keeps one lease alive while its job runs; records why it was lost, if it was.

    Invariant: ``lost`` is set only by a refusal from the coordinator (409/404: the job was
    cancelled, re-leased or finished; 401: this agent was revoked); an unreachable coordinator
    just means trying again next interval.
    """

    def __init__(self, client: FleetClient, job_id: str, agent_id: str, lease_id: str, interval: float) -> None:
        super().__init__(name=f"heartbeat-{job_id[:8]}", daemon=True)
        self._client = client
        self._ids = (job_id, agent_id, lease_id)
        self._interval = interval
        self._done = threading.Event()
        self.lost: str | None = None

    def run(self) -> None:
        """Heartbeat every ``interval`` until stopped or the lease is lost."""
        while not self._done.wait(self._interval):
            try:
                self._client.heartbeat(*self._ids, timeout_s=self._interval)
            except (FleetRejected, FleetAuthError) as exc:
                self.lost = exc.detail
                return
            except FleetError as exc:
                log.warning("job %s: heartbeat failed (%s); retrying", self._ids[0], exc)

    def stop(self) -> None:
        """Stop heartbeating (returns at once; the thread ends within one request)."""
        self._done.set()


class Agent:
    """One agent process.

    Invariants: at most one job at a time; a result is posted only for the lease that produced
    it; a job it cannot finish is released (shutdown) or left to its lease (crash, lost link),
    never silently dropped.
    """

    def __init__(self, client: FleetClient, device: DeviceInfo, options: AgentOptions) -> None:
        self._client = client
        self._device = device
        self._options = options
        self._runner = BenchmarkRunner()
        self._credential: StoredCredential | None = None
        self._agent_id: str | None = None
        self._stop_requested_at: float | None = None
        self._abort = False
        self.jobs_done = 0
        self.jobs_failed = 0

    def request_stop(self) -> None:
        """Stop after the current job (first call) or at once, releasing it (second call).

        Safe to call from a signal handler: it only sets flags.
        """
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        else:
            self._abort = True

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop_requested_at is not None

    def run(self) -> int:
        """Serve jobs until asked to stop; returns the process exit status.

        Returns:
            0 after a requested stop, 2 when the coordinator refuses the token, the credential
            (revoked) or the registration, or the credential file is unusable.
        """
        self._options.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._credential = credential.load(self._options.credential_file)
        except CredentialFileError as exc:
            log.error("%s", exc)
            return 2
        if self._credential is not None:
            self._client.use_credential(self._credential.credential)
        self._runner.start()
        backoff = Backoff(self._options.backoff_max_s)
        while not self.stopping:
            try:
                if self._agent_id is None:
                    self._register()
                assert self._agent_id is not None
                job = self._client.claim(self._agent_id, self._options.poll_s)
                backoff.reset()
                if job is not None:
                    self._process(job)
            except FleetAuthError as exc:
                log.error("%s -- fix: %s", exc, self._auth_fix())
                return 2
            except CredentialFileError as exc:
                log.error("%s", exc)
                return 2
            except FleetTlsError as exc:
                log.error("%s -- fix: pass --ca with the PEM file of the CA that signed the coordinator's "
                          "certificate (its subject names must include the host of --fleet)", exc)
                return 2
            except FleetUnavailable as exc:
                delay = backoff.next()
                log.warning("coordinator unavailable (%s); retrying in %.1f s", exc, delay)
                self._sleep(delay)
            except FleetRejected as exc:
                if self._agent_id is None:
                    log.error("the coordinator refused this agent's registration: %s", exc)
                    return 2
                if exc.status == 404:
                    log.warning("the coordinator does not know agent %s (%s); registering again", self._agent_id, exc)
                    self._agent_id = None
                    continue
                delay = backoff.next()
                log.error("the coordinator refused a request (%s); retrying in %.1f s", exc, delay)
                self._sleep(delay)
        self._goodbye()
        log.info("stopped after %d jobs done, %d failed", self.jobs_done, self.jobs_failed)
        return 0

    def _auth_fix(self) -> str:
        if self._credential is None:
            return "pass the coordinator's enrolment token (or, in legacy mode, its fleet token) with --token or " \
                   "HWSEARCH_FLEET_TOKEN"
        return (f"the coordinator no longer accepts this agent's credential (revoked, or issued by another "
                f"coordinator database); to enrol the device again as a new agent, an operator deletes "
                f"{self._options.credential_file} and restarts it with the current enrolment token")

    def _enrol(self) -> bool:
        """Enrol with the token and keep the credential; False on a legacy shared-token coordinator.

        A coordinator older than enrolment has no such route (404/405); one in legacy mode says 409.

        Raises:
            CredentialFileError: The credential cannot be written (the agent must not run on a
                credential it would lose at the next restart).
        """
        try:
            answer = self._client.enrol(self._device.registration())
        except FleetRejected as exc:
            if exc.status in (404, 405, 409):
                return False
            raise
        stored = StoredCredential(self._client.url, str(answer["agent_id"]), str(answer["credential"]))
        try:
            credential.save(self._options.credential_file, stored)
        except OSError as exc:
            raise CredentialFileError(
                f"enrolled as {stored.agent_id} but cannot write the credential to {self._options.credential_file} "
                f"({exc.strerror or exc}): make its folder writable, or pass --credential PATH"
            ) from exc
        self._credential = stored
        self._client.use_credential(stored.credential)
        log.info("enrolled as %s; credential kept in %s", stored.agent_id, self._options.credential_file)
        return True

    def _register(self) -> None:
        mode = "own credential"
        if self._credential is None and not self._enrol():
            mode = "legacy shared token"
        answer = self._client.register(self._device.registration())
        self._agent_id = str(answer["agent_id"])
        log.info(
            "registered as %s for device tag %s (%s) at %s (%s)", self._agent_id, self._device.device_tag,
            self._device.device, self._client.url, mode,
        )

    def _goodbye(self) -> None:
        if self._agent_id is None:
            return
        try:
            self._client.goodbye(self._agent_id)
        except FleetError as exc:
            log.warning("could not say goodbye to the coordinator: %s", exc)

    def _sleep(self, seconds: float, *, until_abort: bool = False) -> None:
        """Sleep, waking early on a stop request (or only on an abort with ``until_abort``)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (self._abort if until_abort else self.stopping):
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def _process(self, job: dict[str, Any]) -> None:
        assert self._agent_id is not None
        job_id, lease_id = job["id"], job["lease_id"]
        log.info("job %s: claimed (attempt %d/%d)", job_id, job["attempt"], job["max_attempts"])
        heartbeat = Heartbeat(self._client, job_id, self._agent_id, lease_id, float(job["heartbeat_seconds"]))
        heartbeat.start()
        try:
            outcome = self._measure(job, heartbeat)
            self._report(job_id, lease_id, outcome)
        finally:
            heartbeat.stop()

    def _measure(self, job: dict[str, Any], heartbeat: Heartbeat) -> Outcome:
        try:
            settings = self._effective_settings(job["settings"])
            artifact = self._fetch(job["artifact_sha256"])
        except ValueError as exc:
            return Outcome(error=str(exc))
        except ArtifactError as exc:
            return Outcome(error=str(exc), retryable=exc.status != 413)
        except FleetRejected as exc:
            return Outcome(error=f"could not download artifact {job['artifact_sha256']}: {exc}")

        log.info(
            "job %s: benchmarking %s (threads %s, cores %s)", job["id"], job["artifact_sha256"][:12],
            settings.get("threads"), settings.get("cores") or "any",
        )

        def keep_going() -> str | None:
            if heartbeat.lost is not None:
                return f"lease lost: {heartbeat.lost}"
            started = self._stop_requested_at
            if self._abort or (started is not None and time.monotonic() - started > self._options.drain_s):
                return RELEASE
            return None

        return self._runner.run(
            artifact, job["input_shape"], settings, keep_going=keep_going,
            time_limit_s=self._options.job_time_limit_s,
        )

    def _report(self, job_id: str, lease_id: str, outcome: Outcome) -> None:
        assert self._agent_id is not None
        try:
            if outcome.figures is not None:
                self._post_result(job_id, lease_id, outcome.figures)
            elif outcome.stopped == RELEASE:
                self._client.release(job_id, self._agent_id, lease_id)
                log.info("job %s: released (agent stopping)", job_id)
            elif outcome.stopped is not None:
                log.warning("job %s: stopped (%s)", job_id, outcome.stopped)
            else:
                error = outcome.error or "unknown error"
                answer = self._client.post_failure(job_id, self._agent_id, lease_id, error, retryable=outcome.retryable)
                if answer["state"] == "failed":
                    self.jobs_failed += 1
                    log.warning("job %s: failed: %s", job_id, error)
                else:
                    log.warning("job %s: handed back for another attempt: %s", job_id, error)
        except FleetRejected as exc:
            log.warning("job %s: the coordinator refused the report: %s", job_id, exc)

    def _post_result(self, job_id: str, lease_id: str, figures: dict[str, Any]) -> None:
        assert self._agent_id is not None
        source = "emulated" if self._device.emulated else "measured"
        measurement = {**figures, "device": self._device.device, "source": source}
        backoff = Backoff(self._options.backoff_max_s)
        give_up = time.monotonic() + self._options.result_retry_s
        while True:
            try:
                self._client.post_result(job_id, self._agent_id, lease_id, measurement)
            except FleetUnavailable as exc:
                if self._abort or time.monotonic() > give_up:
                    log.error("job %s: gave up posting the result (%s); its lease will expire", job_id, exc)
                    return
                delay = backoff.next()
                log.warning(
                    "job %s: coordinator unavailable while posting the result (%s); retrying in %.1f s",
                    job_id, exc, delay,
                )
                self._sleep(delay, until_abort=True)
                continue
            self.jobs_done += 1
            log.info("job %s: done, median %.4f ms over %d runs", job_id, figures["median_ms"], figures["n"])
            return

    def _effective_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The job's settings with this agent's ``--threads`` / ``--cores`` policy applied.

        Raises:
            ValueError: When the job's cores are not available to this agent.
        """
        effective = dict(settings)
        if self._options.threads is not None:
            effective["threads"] = self._options.threads
        if not effective.get("cores") and self._options.cores:
            effective["cores"] = list(self._options.cores)
        wanted = set(effective.get("cores") or ())
        available = usable_cores()
        if not wanted <= available:
            raise ValueError(
                f"the job asks for cores {sorted(wanted - available)}, which this agent cannot use "
                f"(available: {sorted(available)})"
            )
        return effective

    def _fetch(self, sha256: str) -> Path:
        """The verified local copy of artifact ``sha256`` (downloaded unless cached).

        Raises:
            ValueError: When ``sha256`` is not a sha256 digest (it names a file here).
        """
        if not is_sha256(sha256):
            raise ValueError(f"the coordinator sent an invalid artifact id {sha256[:80]!r}")
        folder = self._options.work_dir / "artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{sha256}.onnx"
        if path.exists() and _sha256_of(path) == sha256:
            os.utime(path)
            return path
        partial = folder / f"{sha256}.{os.getpid()}.part"
        self._client.download(sha256, partial, max_bytes=self._options.max_artifact_bytes)
        os.replace(partial, path)
        _prune(folder, KEEP_ARTIFACTS)
        return path


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _prune(folder: Path, keep: int) -> None:
    files = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
