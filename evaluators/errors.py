"""User-facing errors: each names the problem and the fix, and the CLIs print them on one line."""

from __future__ import annotations

import signal


class HwsearchError(Exception):
    """An error caused by input or environment, not by a bug.

    Args:
        problem: What is wrong, naming the offending path, value or URL.
        fix: What the user should do about it.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} -- fix: {fix}")
        self.problem = problem
        self.fix = fix


class DataError(HwsearchError):
    """The data set is missing, malformed or unreadable."""


class StorageError(HwsearchError):
    """The study storage cannot be reached or is not a database."""


class LatencyError(HwsearchError):
    """Latency could not be measured (no agent for the device, runtime failure, timeout)."""


def exit_description(code: int | None) -> str:
    """How a child process ended, for an error message: ``killed by SIGKILL`` or ``exit status 3``."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
