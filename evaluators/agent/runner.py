"""Runs each benchmark in a fresh child process, forked from a fork server that preloaded
onnxruntime, so a job starts in milliseconds and a crash costs only that job."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing import forkserver
from pathlib import Path
from typing import Any, Callable

from evaluators.agent import worker
from evaluators.errors import exit_description

_POLL_S = 0.05


@dataclass(frozen=True)
class Outcome:
    """How one benchmark ended: exactly one of ``figures``, ``error`` and ``stopped`` is set.

    Attributes:
        figures: Statistics (``BenchmarkTimes.stats()``), ``threads``, ``runtime`` and
            ``peak_memory_mb``.
        error: Why the model could not be measured (the runtime's text, a crash, a time-out).
        retryable: Whether another attempt may succeed (the error was not the model's fault).
        stopped: Why the agent stopped it (what ``keep_going`` returned).
    """

    figures: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = False
    stopped: str | None = None


class BenchmarkRunner:
    """Benchmarks ONNX files in isolated child processes (Linux fork server)."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload([worker.__name__])

    def start(self) -> None:
        """Start the fork server now, so the first job does not pay for importing onnxruntime."""
        forkserver.ensure_running()

    def run(
        self, artifact: Path, input_shape: list[int], settings: dict[str, Any], *,
        keep_going: Callable[[], str | None], time_limit_s: float,
    ) -> Outcome:
        """Benchmark ``artifact`` in a child process.

        Args:
            artifact: The verified ONNX file.
            input_shape: Timed input shape (NCHW; the batch comes from ``settings``).
            settings: ``LatencySettings.to_dict()``.
            keep_going: Called every few tens of milliseconds; a non-None reason stops the child.
            time_limit_s: The child is killed, and the job failed, after this long.
        """
        receiver, sender = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=worker.measure, args=(sender, str(artifact), tuple(input_shape), settings),
            name="hwsearch-benchmark", daemon=True,
        )
        try:
            process.start()
        except OSError as exc:
            return Outcome(error=f"could not start the benchmark process: {exc}", retryable=True)
        finally:
            sender.close()
        deadline = time.monotonic() + time_limit_s
        try:
            while True:
                if receiver.poll(_POLL_S):
                    try:
                        kind, payload = receiver.recv()
                    except EOFError:
                        process.join(5)
                        return Outcome(error=f"the benchmark process died ({exit_description(process.exitcode)})")
                    return Outcome(figures=payload) if kind == "ok" else Outcome(error=str(payload))
                reason = keep_going()
                if reason is not None:
                    return Outcome(stopped=reason)
                if time.monotonic() > deadline:
                    return Outcome(error=f"the benchmark ran past the agent's time limit of {time_limit_s:g} s")
        finally:
            receiver.close()
            if process.is_alive():
                process.kill()
            process.join(5)
