"""The benchmark child process: one job, isolated from the agent.

A hostile or malformed model can only fail, crash or hang this process; the agent reports that as
the job's failure and keeps serving. Before onnxruntime sees a file, :mod:`model_guard` refuses
anything but a self-contained ONNX model (pickles, zip checkpoints, external data). The model then
runs from a private folder that holds nothing but itself, so even a reference the scan missed could
name no other file. What goes back to the coordinator on failure is a short class from
:mod:`failures`, never the runtime's message (it can quote file contents).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy  # noqa: F401  (preloaded into the fork server with onnxruntime: children start warm)
import onnxruntime  # noqa: F401

from evaluators.agent import model_guard
from evaluators.agent.failures import error_class, local_text
from evaluators.contracts import LatencySettings
from evaluators.fleet.protocol import ROUND_KEYS, MAX_INPUT_ELEMENTS, MEASUREMENT_KEYS, effective_input_elements
from evaluators.latency.benchmark import pin_to_cores, run_benchmark


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


def _alone(artifact: Path, folder: Path) -> Path:
    """``artifact`` as the only file of ``folder`` (a hard link: ``folder`` is beside it, so on the
    same file system; a copy only if the file system has no hard links)."""
    target = folder / "model.onnx"
    try:
        os.link(artifact, target)
    except OSError:
        shutil.copyfile(artifact, target)
    return target


def _figures(times: Any, settings: LatencySettings) -> dict[str, Any]:
    """The statistics the protocol carries, plus what ran them."""
    stats = dict(times.stats())
    if "max_ms" not in stats:
        stats["max_ms"] = max(times.times_ms)
    rounds = times.round_stats()
    return {
        **{key: stats[key] for key in MEASUREMENT_KEYS}, "threads": settings.threads,
        "runtime": times.runtime, "peak_memory_mb": times.peak_memory_mb,
        **{key: list(rounds[key]) if isinstance(rounds[key], tuple) else rounds[key] for key in ROUND_KEYS},
    }


def _benchmark(artifact: Path, input_shape: tuple[int, ...], settings: dict[str, Any]) -> tuple[str, Any]:
    refusal = model_guard.refusal(artifact)
    if refusal:
        return "error", refusal
    parsed = LatencySettings.from_dict(settings)
    elements = effective_input_elements(input_shape, parsed.batch)
    if elements > MAX_INPUT_ELEMENTS:
        return "error", (f"refused: the timed input (batch {parsed.batch}) has {elements} elements, over the "
                         f"cap of {MAX_INPUT_ELEMENTS}")
    pin_to_cores(parsed.cores)
    with tempfile.TemporaryDirectory(prefix="job-", dir=artifact.parent) as folder:
        times = run_benchmark(_alone(artifact, Path(folder)), input_shape, parsed)
    return "ok", _figures(times, parsed)


def measure(conn: Connection, artifact: str, input_shape: tuple[int, ...], settings: dict[str, Any]) -> None:
    """Benchmark ``artifact`` and send ``("ok", figures)`` or ``("error", short class)`` on ``conn``.

    SIGINT and SIGTERM are ignored here: the agent alone decides whether a running benchmark
    finishes or is killed when it is asked to stop. The process exits when the agent dies. The
    runtime's own error text goes to this process's stderr (the agent's log), never to ``conn``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _exit_with_agent(conn)
    try:
        conn.send(_benchmark(Path(artifact), input_shape, settings))
    except Exception as exc:  # noqa: BLE001 - every failure becomes the job's (sanitised) failure
        print(f"benchmark failed (kept on this device): {local_text(exc)}", file=sys.stderr, flush=True)
        conn.send(("error", error_class(exc)))
    finally:
        conn.close()
