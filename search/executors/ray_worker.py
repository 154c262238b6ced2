"""What runs inside a Ray worker: rebuild the trial context once per process, run one rung job.

The driver sends a small picklable :class:`WorkerConfig` with every task; the worker builds the
:class:`evaluators.pipeline.TrialContext` from it on first use (data set, latency backend, latency
cache in the study's database, KD teacher) and keeps it in a module global keyed by the config, so
later jobs in the same worker process pay nothing for it.

Paths: jobs write under ``out_dir`` exactly as the driver names it. On a cluster, give the nodes
the same path (a shared volume) or let the driver keep the files: when the worker runs on another
host than the driver, the artifact's and the rung checkpoint's bytes travel back with the result
and the driver writes them to the same paths on its side; a job continuing from a checkpoint
receives its bytes and writes them where the worker expects them.
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
        floors: Effective floors, as sorted pairs.
        data_spec: ``--data`` as given (a path must exist on every node).
        out_dir: Absolute artifact root.
        study_name: The study (artifacts go to ``<out_dir>/<study>/trial_<n>``).
        storage_url: The study's database (the latency cache lives there).
        latency_backend: The backend's registered name.
        latency_options: The backend's options (a frozen dataclass; never shown in ``repr``).
        latency_settings: How latency is measured.
        seed: The search's seed.
        train_device: ``auto``, ``cpu`` or ``cuda``; ``auto`` uses the GPU Ray gave the task.
        torch_threads: Torch intra-op threads per trial (the task's CPUs).
        driver_host: Host name of the driver.
        eval_batch: Deployment batch size of evaluations.
        pretrained: ``--pretrained`` as given.
        plugins: ``HWSEARCH_PLUGINS`` of the driver (modules registering spaces, backbones...).
    """

    space: str
    latency_budget_ms: float | None
    minority_group: str | None
    floors: tuple[tuple[str, float], ...]
    data_spec: str
    out_dir: str
    study_name: str
    storage_url: str = field(repr=False)
    latency_backend: str
    latency_options: Any = field(repr=False)
    latency_settings: LatencySettings
    seed: int
    train_device: str
    torch_threads: int
    driver_host: str
    eval_batch: int = 1
    pretrained: str | None = None
    plugins: str = ""

    def trial_dir(self, number: int) -> Path:
        """Folder of trial ``number``."""
        return Path(self.out_dir) / self.study_name / f"trial_{number}"


@dataclass
class WorkerResult:
    """What a worker sends back for one job (picklable).

    Attributes:
        outcome: ``evaluators.pipeline.RungOutcome``, or ``None`` when the job raised or was cancelled.
        reason: ``fail_reason`` when it raised.
        traceback: The traceback when it raised (also in ``error.log`` on the worker's disk).
        worker: ``{host, pid, ray_node}`` of the worker process.
        artifact: The artifact's bytes when the worker's host is not the driver's, else ``None``.
        checkpoint: The rung checkpoint's bytes, likewise.
        context_seconds: Seconds spent building the context (0 when it was cached).
        seconds: Seconds the task ran in the worker.
        cancelled: The job stopped on request.
    """

    outcome: Any
    reason: str | None
    traceback: str | None
    worker: dict[str, Any]
    artifact: bytes | None = None
    checkpoint: bytes | None = None
    context_seconds: float = 0.0
    seconds: float = 0.0
    cancelled: bool = False


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
    from search.context import build_context
    from spaces.registries import load_plugins
    from spaces.registry import get_space

    load_plugins(config.plugins)
    torch.set_num_threads(max(1, config.torch_threads))
    task = get_space(config.space).task.with_settings(
        latency_budget_ms=config.latency_budget_ms, minority_group=config.minority_group, floors=dict(config.floors))
    out_dir = Path(config.out_dir)
    dataset = load_dataset(config.data_spec, cache_root=out_dir / "data", seed=config.seed)
    backend = make_latency_backend(config.latency_backend, config.latency_options)
    ctx = build_context(
        dataset=dataset, task=task, backend=backend, settings=config.latency_settings,
        engine=make_engine(config.storage_url), study_dir=out_dir / config.study_name,
        device=_train_device(config.train_device), seed=config.seed, eval_batch=config.eval_batch,
        pretrained=config.pretrained,
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


def _place_checkpoint(job: Any, data: bytes | None) -> None:
    """Write the start checkpoint's bytes where the job expects them, unless the file is already there."""
    from evaluators.hashing import sha256_file

    start = job.start
    if start is None or data is None:
        return
    path = Path(start.path)
    if path.is_file() and sha256_file(path) == start.sha256:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def run_job_task(config: WorkerConfig, params: dict[str, Any], number: int, job: Any,
                 checkpoint: bytes | None = None) -> WorkerResult:
    """Run rung job ``job`` of trial ``number`` with candidate ``params``; never raises for a failing job.

    A failure comes back as ``reason`` + ``traceback`` (and ``error.log`` in the trial folder); only
    the death of the worker process itself reaches the driver as a Ray error.
    """
    from evaluators.pipeline import TrialCancelled, run_rung
    from search.records import failure_reason
    from spaces.candidate import Candidate

    start = time.perf_counter()
    identity = _identity()
    trial_dir = config.trial_dir(number)
    context_seconds = 0.0
    try:
        fresh = config not in _CONTEXTS
        ctx = build_worker_context(config)
        context_seconds = time.perf_counter() - start if fresh else 0.0
        _place_checkpoint(job, checkpoint)
        outcome = run_rung(Candidate.from_params(params), ctx, trial_dir, job)
    except TrialCancelled:
        return WorkerResult(None, None, None, identity, cancelled=True, seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a failing trial is a result, not a crash
        text = traceback.format_exc()
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "error.log").write_text(text)
        return WorkerResult(None, failure_reason(exc), text, identity, context_seconds=context_seconds,
                            seconds=time.perf_counter() - start)
    artifact = checkpoint_bytes = None
    if outcome.metrics is not None and identity["host"] != config.driver_host:
        artifact = Path(outcome.metrics.artifact_path).read_bytes()
        checkpoint_bytes = Path(outcome.checkpoint.path).read_bytes() if outcome.checkpoint else None
    return WorkerResult(outcome, None, None, identity, artifact, checkpoint_bytes, context_seconds,
                        time.perf_counter() - start)
