"""One lock per host between training and local latency measurement.

A latency figure taken while training shares the cores is wrong (a candidate measured 8.15 ms
beside a training step and 3.77 ms alone, and was screened out over a 6 ms budget). Training steps
take the lock *shared* (any number of trials train at once); a measurement takes it *exclusive*
(it waits for the running steps to end, and no new step starts until it is done). The lock is two
``flock`` files in a folder every process of the user on the host sees
(``$HWSEARCH_COMPUTE_LOCK_DIR``, default ``/tmp/hwsearch-compute-<uid>``), so it spans the
threads of one launcher (``--jobs N``), several launchers and the Ray workers on a host.

Writer preference: a measurement first takes the *turnstile* exclusively, so new training steps
queue behind it instead of starving it; steps hold the turnstile only for an instant.

Invariants: ``flock`` locks belong to open file descriptions, so every thread opens its own
descriptors; a process that dies releases its locks with its descriptors.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ENV_LOCK_DIR = "HWSEARCH_COMPUTE_LOCK_DIR"
MERGE_GAP_S = 0.05
"""Training windows closer than this are merged into one."""


def default_lock_dir() -> Path:
    """``$HWSEARCH_COMPUTE_LOCK_DIR`` or ``/tmp/hwsearch-compute-<uid>``."""
    return Path(os.environ.get(ENV_LOCK_DIR) or f"/tmp/hwsearch-compute-{os.getuid()}")


@dataclass
class Windows:
    """Wall-clock ``(start, end)`` intervals (``time.time()``), adjacent ones merged."""

    spans: list[list[float]] = field(default_factory=list)

    def add(self, start: float, end: float) -> None:
        """Record one interval (merged into the last one when they nearly touch)."""
        if self.spans and start - self.spans[-1][1] <= MERGE_GAP_S:
            self.spans[-1][1] = max(self.spans[-1][1], end)
        else:
            self.spans.append([start, end])


class HostComputeLock:
    """Shared for training steps, exclusive for latency measurements, across the host.

    Args:
        directory: Folder of the lock files (default :func:`default_lock_dir`).
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = Path(directory) if directory is not None else None
        self._local = threading.local()

    @property
    def directory(self) -> Path:
        """The lock folder (resolved on first use, so the environment may set it late)."""
        return self._directory or default_lock_dir()

    def _handles(self) -> tuple[IO[str], IO[str]]:
        handles = getattr(self._local, "handles", None)
        if handles is None or handles[0].name != str(self.directory / "turnstile.lock"):
            self.directory.mkdir(parents=True, exist_ok=True)
            handles = (open(self.directory / "turnstile.lock", "a+"), open(self.directory / "cores.lock", "a+"))
            self._local.handles = handles
        return handles

    @contextlib.contextmanager
    def training_step(self, windows: Windows | None = None) -> Iterator[None]:
        """Hold the cores shared for one training step; records the step's interval in ``windows``."""
        turnstile, cores = self._handles()
        fcntl.flock(turnstile.fileno(), fcntl.LOCK_EX)
        try:
            fcntl.flock(cores.fileno(), fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile.fileno(), fcntl.LOCK_UN)
        start = time.time()
        try:
            yield
        finally:
            end = time.time()
            fcntl.flock(cores.fileno(), fcntl.LOCK_UN)
            if windows is not None:
                windows.add(start, end)

    @contextlib.contextmanager
    def measuring(self, timeout_s: float = 120.0) -> Iterator[bool]:
        """Hold the cores alone while measuring; yields False when they could not be had in time.

        After ``timeout_s`` without the lock (another process trains without ever pausing) the
        measurement goes ahead and the caller labels its figure as taken under load.
        """
        turnstile, cores = self._handles()
        deadline = time.monotonic() + timeout_s
        got_turnstile = _acquire(turnstile, deadline)
        got_cores = got_turnstile and _acquire(cores, deadline)
        try:
            yield got_cores
        finally:
            if got_cores:
                fcntl.flock(cores.fileno(), fcntl.LOCK_UN)
            if got_turnstile:
                fcntl.flock(turnstile.fileno(), fcntl.LOCK_UN)


def _acquire(handle: IO[str], deadline: float) -> bool:
    """Exclusive ``flock`` on ``handle``, polling until ``deadline``."""
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)


HOST_LOCK = HostComputeLock()
"""The lock every trial and the local latency backend of this process use."""
