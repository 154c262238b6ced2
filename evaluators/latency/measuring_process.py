"""A measuring process of its own: the local backend's benchmarks run outside the trial's process.

A figure timed inside the launcher (a torch process holding gigabytes of training state, with a
progress display and a driver loop as neighbour threads) came out 1-9 % slower (median 2.7 %) than
the same file re-measured later in a quiet process, while the paired reference rounds showed the
host at its usual speed; the stored CI missed the quiet figure for 6 of 9 shipped files
(2026-12-06). Measured from this child in the same kind of run, the re-measurements landed at
0.998-1.045 of the stored figures. The child imports only numpy and onnxruntime (never torch),
is started once per process on first use and serves every measurement after it.

Protocol: one JSON line per request on the child's stdin, ``{"artifact", "shape", "settings",
"rounds", "reference"}``, one JSON line per reply on its stdout, ``{"ok": BenchmarkTimes fields}``
or ``{"error": text}``. The child ignores SIGINT and SIGTERM (its parent decides) and exits when
its stdin closes, so it never outlives its parent by more than the measurement in flight.

Invariants: one request at a time per process (a lock; measurements are exclusive on the host
anyway); a child that died is replaced on the next request; a forked copy of the parent never
uses its parent's child (the owner's pid is checked).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from evaluators.contracts import LatencySettings
from evaluators.errors import exit_description
from evaluators.latency.benchmark import BenchmarkTimes, pin_to_cores, run_benchmark

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class MeasuringProcessError(RuntimeError):
    """The measuring process could not measure: the runtime's first line, or how the process died."""


class MeasuringProcess:
    """A torch-free child process that runs :func:`run_benchmark` on request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._owner = os.getpid()

    def measure(
        self, artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings, *,
        rounds: int | None = None, reference: tuple[Path, tuple[int, ...]] | None = None,
    ) -> BenchmarkTimes:
        """:func:`run_benchmark` with the same arguments, run in the child (started when needed).

        Raises:
            MeasuringProcessError: When onnxruntime failed on the file (its message's first line)
                or the child died (it is restarted on the next call).
        """
        request = {"artifact": str(artifact), "shape": list(input_shape), "settings": settings.to_dict(),
                   "rounds": rounds, "reference": [str(reference[0]), list(reference[1])] if reference else None}
        with self._lock:
            process = self._running()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                code = process.wait()
                self._process = None
                raise MeasuringProcessError(f"the measuring process died ({exit_description(code)})")
        reply = json.loads(line)
        if "error" in reply:
            raise MeasuringProcessError(reply["error"])
        return _times_from_dict(reply["ok"])

    def close(self) -> None:
        """Close the child's stdin (it exits after the measurement in flight) and reap it."""
        with self._lock:
            process, self._process = self._process, None
        if process is None or os.getpid() != self._owner:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _running(self) -> subprocess.Popen[str]:
        if os.getpid() != self._owner:
            self._process, self._owner = None, os.getpid()
        if self._process is None or self._process.poll() is not None:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
            self._process = subprocess.Popen(
                [sys.executable, "-c", f"from {__name__} import serve; serve()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, bufsize=1)
        return self._process


def _times_from_dict(data: dict[str, Any]) -> BenchmarkTimes:
    """Inverse of ``dataclasses.asdict`` on :class:`BenchmarkTimes` (JSON turned the windows into lists)."""
    return BenchmarkTimes(**{**data, "windows": [(float(a), float(b)) for a, b in data["windows"]]})


_SHARED: MeasuringProcess | None = None
_SHARED_LOCK = threading.Lock()


def shared_measuring_process() -> MeasuringProcess:
    """This process's measuring process (one per process, closed at exit)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = MeasuringProcess()
            atexit.register(_SHARED.close)
        return _SHARED


def serve() -> None:
    """The child's main: answer requests on stdin until it closes.

    SIGINT and SIGTERM are ignored (the parent decides when the child stops: it closes the pipe).
    The replies get the original stdout to themselves; anything a library prints goes to stderr.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    answer(sys.stdin, replies)


def answer(requests: IO[str], replies: IO[str]) -> None:
    """Answer each JSON request line of ``requests`` with one JSON reply line on ``replies``."""
    for line in requests:
        request = json.loads(line)
        try:
            settings = LatencySettings.from_dict(request["settings"])
            pin_to_cores(settings.cores)
            reference = request["reference"]
            times = run_benchmark(
                Path(request["artifact"]), tuple(request["shape"]), settings, rounds=request["rounds"],
                reference=(Path(reference[0]), tuple(reference[1])) if reference else None)
            reply: dict[str, Any] = {"ok": dataclasses.asdict(times)}
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            reply = {"error": (str(exc).splitlines() or [type(exc).__name__])[0]}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
