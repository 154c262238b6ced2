"""The benchmark child process: one job, isolated from the agent.

A hostile or malformed model can only fail, crash or hang this process; the agent reports that as
the job's failure and keeps serving. Only ONNX files are loaded (by onnxruntime); a pickle or zip
checkpoint is refused before onnxruntime sees it.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy  # noqa: F401  (preloaded into the fork server with onnxruntime: children start warm)
import onnxruntime  # noqa: F401

from evaluators.contracts import LatencySettings
from evaluators.fleet.protocol import not_onnx_reason
from evaluators.latency.benchmark import pin_to_cores, run_benchmark

MAX_ERROR_CHARS = 3000


def _exit_with_agent(conn: Connection) -> None:
    """Exit as soon as the agent's end of ``conn`` closes (the agent died or gave up the job).

    A pipe's write end reports POLLERR once no reader is left, so a watcher thread notices a
    killed agent at once and a benchmark never outlives it.
    """

    def watch() -> None:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLERR | select.POLLHUP)
        poller.poll()
        os._exit(3)

    threading.Thread(target=watch, name="agent-watch", daemon=True).start()


def measure(conn: Connection, artifact: str, input_shape: tuple[int, ...], settings: dict[str, Any]) -> None:
    """Benchmark ``artifact`` and send ``("ok", figures)`` or ``("error", text)`` on ``conn``.

    SIGINT and SIGTERM are ignored here: the agent alone decides whether a running benchmark
    finishes or is killed when it is asked to stop. The process exits when the agent dies.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _exit_with_agent(conn)
    try:
        with open(artifact, "rb") as handle:
            reason = not_onnx_reason(handle.read(8))
        if reason:
            conn.send(("error", f"not an ONNX model: {reason}"))
            return
        parsed = LatencySettings.from_dict(settings)
        pin_to_cores(parsed.cores)
        times = run_benchmark(Path(artifact), input_shape, parsed)
        conn.send(("ok", {
            **times.stats(), "threads": parsed.threads, "runtime": times.runtime,
            "peak_memory_mb": times.peak_memory_mb,
        }))
    except Exception as exc:  # noqa: BLE001 - the runtime's own error text is the job's failure reason
        conn.send(("error", f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]))
    finally:
        conn.close()
