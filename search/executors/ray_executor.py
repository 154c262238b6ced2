"""The Ray backend: rung jobs as Ray tasks, the Optuna study in the RDB storage as the only truth.

The driver (the launcher process) claims each trial from the study (ask), samples its candidate
with the space's define-by-run function, and submits each rung job as
:func:`search.executors.ray_worker.run_job_task`, a task that reserves ``--trial-cpus`` and
``--trial-gpus``; it keeps at most as many tasks in flight as the cluster's resources can run at
once (:class:`search.executors.ray_session.RaySession`), stores each result in the driver and
decides promotions there, exactly as the local backend does. Ray Tune's ``OptunaSearch`` is not
used: it keeps its own in-memory study.

A worker process that dies (killed, out of memory, node lost) fails only its trial, with the Ray
error as ``fail_reason``; tasks are never retried (a retry would run a rung twice).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

from search.config import SearchConfig
from search.executors.jobs import Job, JobDone
from search.executors.ray_session import RaySession
from search.executors.ray_worker import WorkerConfig, WorkerResult, run_job_task


class RaySlots:
    """Runs rung jobs as Ray tasks; results come back to the driver.

    Args:
        session: The connected Ray session (its capacity bounds the tasks in flight).
        config: The worker configuration sent with every task.
        task: The task function (``run_job_task``; tests give a cheap one with its signature).
    """

    def __init__(self, session: RaySession, config: WorkerConfig,
                 task: Callable[..., WorkerResult] = run_job_task) -> None:
        import ray

        self.session = session
        self.config = config
        self._remote = ray.remote(num_cpus=session.options.trial_cpus, num_gpus=session.options.trial_gpus,
                                  max_retries=0)(task)
        self._config_ref = ray.put(config)
        self._running: dict[Any, Job] = {}

    def capacity(self) -> int:
        """Jobs the cluster can run at once."""
        return self.session.capacity()

    def running(self) -> list[Job]:
        """Jobs submitted and not yet collected."""
        return list(self._running.values())

    def start(self, job: Job) -> None:
        """Submit ``job`` as a Ray task (with its start checkpoint's bytes, for workers on other hosts)."""
        checkpoint = Path(job.rung.start.path).read_bytes() if job.rung.start is not None else None
        ref = self._remote.options(name=f"hwsearch-trial-{job.number}").remote(
            self._config_ref, job.candidate.to_params(), job.number, job.rung, checkpoint)
        self._running[ref] = job

    def collect(self, timeout_s: float) -> list[JobDone]:
        """The jobs whose tasks ended, waiting up to ``timeout_s``."""
        import ray

        if not self._running:
            time.sleep(min(timeout_s, 0.05))
            return []
        refs = list(self._running)
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return [self._done(ref, self._running.pop(ref)) for ref in ready]

    def _done(self, ref: Any, job: Job) -> JobDone:
        import ray
        from ray.exceptions import RayError, TaskCancelledError

        try:
            result: WorkerResult = ray.get(ref)
        except TaskCancelledError:
            return JobDone(job, cancelled=True)
        except RayError as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            reason = f"Ray worker failed: {type(exc).__name__}: {first}"[:500]
            job.trial_dir.mkdir(parents=True, exist_ok=True)
            (job.trial_dir / "error.log").write_text(f"{type(exc).__name__}\n{exc}\n")
            return JobDone(job, reason=reason)
        worker = {**result.worker, "driver": {"host": socket.gethostname(), "pid": os.getpid()}}
        if result.cancelled:
            return JobDone(job, cancelled=True, worker=worker)
        if result.outcome is None:
            if result.worker.get("host") != self.config.driver_host and result.traceback:
                job.trial_dir.mkdir(parents=True, exist_ok=True)
                (job.trial_dir / "error.log").write_text(result.traceback)
            return JobDone(job, reason=result.reason or "the job failed without a reason", traceback=result.traceback,
                           worker=worker)
        outcome = result.outcome
        if result.artifact is not None:
            _write_if_changed(Path(outcome.metrics.artifact_path), result.artifact)
        if result.checkpoint is not None and outcome.checkpoint is not None:
            _write_if_changed(Path(outcome.checkpoint.path), result.checkpoint)
        return JobDone(job, outcome=outcome, worker=worker)

    def cancel(self, job: Job | None = None) -> None:
        """Cancel ``job``'s task (or every task) without killing the worker processes."""
        import ray

        for ref, running in list(self._running.items()):
            if job is None or running.number == job.number:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=False)

    def shutdown(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the (cancelled) tasks to end, then force-kill the rest (the
        session's close stops Ray itself). Returns whether every task ended by itself.

        A task is force-killed only when it has not ended: a force cancel that raced with the end
        of a task already cancelled crashed the driver inside Ray ("Check failed: Tried to complete
        task that was not pending", an abort instead of exit 143).
        """
        import ray

        refs = list(self._running)
        ended: list[Any] = []
        if refs:
            with contextlib.suppress(Exception):
                ended, _ = ray.wait(refs, num_returns=len(refs), timeout=max(0.0, timeout_s))
        done = set(ended)
        for ref in refs:
            if ref not in done:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        self._running.clear()
        return len(done) == len(refs)


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _absolute_data(data_spec: str) -> str:
    path = Path(data_spec)
    return str(path.resolve()) if ":" not in data_spec and path.exists() else data_spec


def _absolute_sqlite(url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:" and not url[len(prefix):].startswith("/"):
        return prefix + str(Path(url[len(prefix):]).resolve())
    return url


def make_worker_config(
    config: SearchConfig, *, task: Any, data_spec: str, backend: Any, settings: Any,
) -> WorkerConfig:
    """The :class:`WorkerConfig` of the search described by ``config``.

    Relative data paths and SQLite files are made absolute (workers do not share the driver's
    working directory); the latency backend travels as its registered name and options.
    """
    from evaluators.latency import backend_options
    from spaces.registries import ENV_PLUGINS

    device = "cpu" if config.trial_gpus <= 0 else config.train_device
    return WorkerConfig(
        space=config.space, latency_budget_ms=task.latency_budget_ms, minority_group=config.minority_group,
        floors=tuple(sorted(task.floors.items())), data_spec=_absolute_data(str(data_spec)),
        out_dir=str(config.out_dir), study_name=config.study, storage_url=_absolute_sqlite(config.storage_url),
        latency_backend=backend.name, latency_options=backend_options(backend), latency_settings=settings,
        seed=config.seed, train_device=device, torch_threads=max(1, math.ceil(config.trial_cpus)),
        driver_host=socket.gethostname(), eval_batch=config.eval_batch, pretrained=config.pretrained,
        plugins=os.environ.get(ENV_PLUGINS, ""),
    )
