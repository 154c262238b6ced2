"""Wakes this coordinator's long-polls when a request here changes a job.

A hint only: long-polls re-read the database on every wake-up and at least every
``FALLBACK_SECONDS``, so changes made by another coordinator process, or by the clock (an expired
lease), are seen too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType
from typing import Callable, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

FALLBACK_SECONDS = 0.25
"""Longest sleep of a long-poll between two reads of the database."""


class Wakeup:
    """A broadcast wake-up that any thread can ring and any event loop can wait on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def ticket(self) -> "Ticket":
        """A registration to enter before reading the database and wait on afterwards."""
        return Ticket(self)

    def notify(self) -> None:
        """Wake every current waiter (thread-safe)."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                continue

    def _add(self, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.add(waiter)

    def _remove(self, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.discard(waiter)


class Ticket:
    """One long-poll round's registration: a notify after ``__enter__`` is never lost."""

    def __init__(self, wakeup: Wakeup) -> None:
        self._wakeup = wakeup
        self._waiter = (asyncio.get_running_loop(), asyncio.Event())

    def __enter__(self) -> "Ticket":
        self._wakeup._add(self._waiter)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._wakeup._remove(self._waiter)

    async def wait(self, timeout: float) -> None:
        """Return on a notify, or after ``min(timeout, FALLBACK_SECONDS)``."""
        try:
            await asyncio.wait_for(self._waiter[1].wait(), timeout=max(0.0, min(timeout, FALLBACK_SECONDS)))
        except TimeoutError:
            pass


async def long_poll(attempt: Callable[[bool], T | None], *, wait_s: float, wakeup: Wakeup) -> T | None:
    """Call ``attempt`` (in the thread pool) until it returns a value or ``wait_s`` has passed.

    Args:
        attempt: Reads the database; returns None to keep waiting. Called with ``final=True``
            once the wait is over, when it should return its current answer.
        wait_s: Longest wait in seconds (0: one final attempt).
        wakeup: Rings when this process changes a job.
    """
    deadline = time.monotonic() + wait_s
    while True:
        remaining = deadline - time.monotonic()
        with wakeup.ticket() as ticket:
            result = await run_in_threadpool(attempt, remaining <= 0)
            if result is not None or remaining <= 0:
                return result
            await ticket.wait(remaining)
