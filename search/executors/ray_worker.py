"""What runs inside a Ray worker: rebuild the trial context once per process, run one trial.

The driver sends a small picklable :class:`WorkerConfig` with every task; the worker builds the
:class:`evaluators.pipeline.TrialContext` from it on first use (data set, latency backend, latency
cache in the study's database, KD teacher) and keeps it in a module global keyed by the config, so
later trials in the same worker process pay nothing for it.

Paths: trials write under ``out_dir`` exactly as the driver names it. On a cluster, give the nodes
the same path (a shared volume) or let the driver keep the artifacts: when the worker runs on
another host than the driver, the artifact's bytes travel back with the result and the driver
writes them to the same path on its side.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators.contracts import LatencySettings

_CONTEXTS: dict[WorkerConfig, Any] = {}


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs to rebuild a search's trial context (picklable, hashable).

    Attributes:
        space: Space name (the task comes from it).
        latency_budget_ms: Effective latency budget (``None``: the space's).
        minority_group: Effective minority group (``None``: the space's or the smallest).
        data_spec: ``--data`` as given (a path must exist on every node).
        out_dir: Absolute artifact root.
        study_name: The study (artifacts go to ``<out_dir>/<study>/trial_<n>``).
        storage_url: The study's database (the latency cache lives there).
        latency_backend: ``local``, ``fake`` or ``remote``.
        latency_options: Keyword arguments of the backend (for ``remote``: fleet URL, token, device
            tag, timeout), as sorted pairs; never shown in ``repr``.
        latency_settings: How latency is measured.
        seed: The search's seed.
        train_device: ``auto``, ``cpu`` or ``cuda``; ``auto`` uses the GPU Ray gave the task.
        torch_threads: Torch intra-op threads per trial (the task's CPUs).
        driver_host: Host name of the driver.
    """

    space: str
    latency_budget_ms: float | None
    minority_group: str | None
    data_spec: str
    out_dir: str
    study_name: str
    storage_url: str = field(repr=False)
    latency_backend: str
    latency_options: tuple[tuple[str, Any], ...] = field(repr=False)
    latency_settings: LatencySettings
    seed: int
    train_device: str
    torch_threads: int
    driver_host: str

    def trial_dir(self, number: int) -> Path:
        """Folder of trial ``number``."""
        return Path(self.out_dir) / self.study_name / f"trial_{number}"


@dataclass
class WorkerResult:
    """What a worker sends back for one trial (picklable).

    Attributes:
        outcome: ``evaluators.pipeline.TrialOutcome``, or ``None`` when the trial raised.
        reason: ``fail_reason`` when it raised.
        traceback: The traceback when it raised (also in ``error.log`` on the worker's disk).
        worker: ``{host, pid, ray_node}`` of the worker process.
        artifact: The artifact's bytes when the worker's host is not the driver's, else ``None``.
        context_seconds: Seconds spent building the context (0 when it was cached).
        seconds: Seconds the task ran in the worker.
    """

    outcome: Any
    reason: str | None
    traceback: str | None
    worker: dict[str, Any]
    artifact: bytes | None = None
    context_seconds: float = 0.0
    seconds: float = 0.0


def _train_device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        from evaluators.errors import HwsearchError

        raise HwsearchError(f"--train-device cuda but the Ray worker on {socket.gethostname()} sees no GPU",
                            "pass --trial-gpus 1 (or more) so Ray places trials on GPU nodes")
    return choice


def build_worker_context(config: WorkerConfig) -> Any:
    """The trial context described by ``config`` (cached per worker process)."""
    cached = _CONTEXTS.get(config)
    if cached is not None:
        return cached
    import torch

    from evaluators.data import load_dataset
    from evaluators.db import make_engine
    from evaluators.latency import make_latency_backend
    from search.context import build_context, effective_task
    from spaces.registry import get_space

    torch.set_num_threads(max(1, config.torch_threads))
    task = effective_task(get_space(config.space), config.latency_budget_ms, config.minority_group)
    out_dir = Path(config.out_dir)
    dataset = load_dataset(config.data_spec, cache_root=out_dir / "data", seed=config.seed)
    backend = make_latency_backend(config.latency_backend, **dict(config.latency_options))
    ctx = build_context(
        dataset=dataset, task=task, backend=backend, settings=config.latency_settings,
        engine=make_engine(config.storage_url), study_dir=out_dir / config.study_name,
        device=_train_device(config.train_device), seed=config.seed,
    )
    _CONTEXTS[config] = ctx
    return ctx


def _identity() -> dict[str, Any]:
    identity: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        import ray

        identity["ray_node"] = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (direct calls) there is no node
        identity["ray_node"] = None
    return identity


def run_trial_task(config: WorkerConfig, params: dict[str, Any], number: int) -> WorkerResult:
    """Run trial ``number`` with candidate ``params``; never raises for a failing trial.

    A failure comes back as ``reason`` + ``traceback`` (and ``error.log`` in the trial folder); only
    the death of the worker process itself reaches the driver as a Ray error.
    """
    from evaluators.pipeline import run_trial
    from search.objective import failure_reason
    from spaces.candidate import Candidate

    start = time.perf_counter()
    identity = _identity()
    trial_dir = config.trial_dir(number)
    context_seconds = 0.0
    try:
        fresh = config not in _CONTEXTS
        ctx = build_worker_context(config)
        context_seconds = time.perf_counter() - start if fresh else 0.0
        outcome = run_trial(Candidate.from_params(params), ctx, trial_dir)
    except Exception as exc:  # noqa: BLE001 - a failing trial is a result, not a crash
        text = traceback.format_exc()
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "error.log").write_text(text)
        return WorkerResult(None, failure_reason(exc), text, identity, context_seconds=context_seconds,
                            seconds=time.perf_counter() - start)
    artifact = None
    if outcome.metrics is not None and identity["host"] != config.driver_host:
        artifact = Path(outcome.metrics.artifact_path).read_bytes()
    return WorkerResult(outcome, None, None, identity, artifact, context_seconds, time.perf_counter() - start)
