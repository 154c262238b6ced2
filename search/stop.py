"""Stopping a search cleanly: SIGINT and SIGTERM become a flag the driver checks between steps.

A signal handler that raises can fire anywhere, for instance between ``study.ask()`` and the line
that records the new trial, and a trial would escape the stop path and stay RUNNING forever. So
the handler only records the signal; the driver checks :attr:`StopSignal.requested` at points
where every trial it created is accounted for, and runs its one stop path (see
:mod:`search.executors.driver`). A second Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` at once,
for a user who does not want to wait; the driver's stop path runs then too.

Exit codes (documented in the README): 130 after SIGINT, 143 after SIGTERM (128 + the signal
number, the shell's convention), 0 for a search that ran to its budget, 1 when the failure guard
stopped it, 2 for bad input.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

EXIT_OK = 0
EXIT_FAILING = 1
EXIT_BAD_INPUT = 2


class SearchStopped(Exception):
    """Raised by the driver after its stop path ran; carries the exit code."""

    def __init__(self, reason: str, exit_code: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code


class StopSignal:
    """Records SIGINT/SIGTERM while installed (main thread only; elsewhere it only offers :meth:`request`)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._event = threading.Event()

    @property
    def requested(self) -> bool:
        """True once a stop was asked for."""
        return self._event.is_set()

    @property
    def reason(self) -> str:
        """``"interrupted: SIGTERM received"``-style ``fail_reason`` of the trials a stop fails."""
        name = signal.Signals(self.signum).name if self.signum else "a stop request"
        return f"interrupted: {name} received; the launcher stopped before the trial finished"

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a stop as the signal ``signum`` would."""
        if self.signum is None:
            self.signum = signum
        self._event.set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``, waking at once on a stop; returns :attr:`requested`."""
        return self._event.wait(timeout_s)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.request(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopSignal"]:
        """Install the handlers for the body of the ``with`` block (a no-op off the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
