"""The Ray backend: trials as Ray tasks, the Optuna study in the RDB storage as the only truth.

The driver (the launcher process) claims each trial from the study (ask), samples its candidate
with the space's define-by-run function, and submits
:func:`search.executors.ray_worker.run_trial_task` as a task that reserves ``--trial-cpus`` and
``--trial-gpus``; it keeps at most as many tasks in flight as the cluster's resources can run at
once (:class:`search.executors.ray_session.RaySession`), stores each result with the same
function the local backend uses and tells the study. Ray Tune's ``OptunaSearch`` is not used: it
keeps its own in-memory study.

A worker process that dies (killed, out of memory, node lost) fails only its trial, with the Ray
error as ``fail_reason``; tasks are never retried (a retry would be a new trial).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluators.contracts import LatencySettings
from search import attrs
from search.executors.budget import TrialBudget
from search.executors.driver import Finished, run_trials
from search.executors.ray_session import RayOptions, RaySession
from search.executors.ray_worker import WorkerConfig, WorkerResult, run_trial_task
from search.objective import record_failure, record_outcome, sample_candidate
from search.study import worker_identity
from spaces.registry import SpaceSpec


class RaySlots:
    """Runs trials as Ray tasks; results are stored on the trials in the driver.

    Args:
        session: The connected Ray session (its capacity bounds the tasks in flight).
        config: The worker configuration sent with every task.
        space: The search space (sampled on the driver).
        overrides: Candidate fields fixed for every trial.
        task: The effective task.
        study_dir: The driver's ``<out>/<study>`` folder.
    """

    def __init__(self, session: RaySession, config: WorkerConfig, space: SpaceSpec,
                 overrides: Mapping[str, Any], task: Any, study_dir: Path) -> None:
        import ray

        self.session = session
        self.config = config
        self.space = space
        self.overrides = dict(overrides)
        self.task = task
        self.study_dir = study_dir
        self._remote = ray.remote(num_cpus=session.options.trial_cpus, num_gpus=session.options.trial_gpus,
                                  max_retries=0)(run_trial_task)
        self._config_ref = ray.put(config)
        self._running: dict[Any, Any] = {}

    def capacity(self) -> int:
        """Trials the cluster can run at once."""
        return self.session.capacity()

    def running(self) -> list[Any]:
        """Trials submitted and not yet collected."""
        return list(self._running.values())

    def start(self, trial: Any) -> None:
        """Sample ``trial``'s candidate here and submit it as a Ray task."""
        candidate = sample_candidate(self.space, trial, self.overrides)
        ref = self._remote.options(name=f"hwsearch-trial-{trial.number}").remote(
            self._config_ref, candidate.to_params(), trial.number)
        self._running[ref] = trial

    def collect(self, timeout_s: float) -> list[Finished]:
        """Store and return the trials whose tasks ended, waiting up to ``timeout_s``."""
        import ray

        if not self._running:
            return []
        refs = list(self._running)
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return [self._finish(ref, self._running.pop(ref)) for ref in ready]

    def _finish(self, ref: Any, trial: Any) -> Finished:
        import ray
        from ray.exceptions import RayError

        trial_dir = self.study_dir / f"trial_{trial.number}"
        try:
            result: WorkerResult = ray.get(ref)
        except RayError as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            reason = f"Ray worker failed: {type(exc).__name__}: {first}"[:500]
            record_failure(trial, reason, trial_dir, f"{type(exc).__name__}\n{exc}\n")
            return Finished(trial, None, reason)
        trial.set_user_attr(attrs.WORKER, {**result.worker, "driver": worker_identity()})
        local_disk = result.worker.get("host") == self.config.driver_host
        if result.outcome is None:
            reason = result.reason or "the trial failed without a reason"
            record_failure(trial, reason, None if local_disk else trial_dir, result.traceback)
            return Finished(trial, None, reason)
        if result.artifact is not None:
            _write_artifact(Path(result.outcome.metrics.artifact_path), result.artifact)
        return Finished(trial, record_outcome(trial, result.outcome, self.task))

    def abandon(self) -> None:
        """Cancel (force-kill) the tasks still running."""
        import ray

        for ref in list(self._running):
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self._running.clear()


def _write_artifact(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def latency_options(args: Any, backend: Any) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments that rebuild the driver's latency ``backend`` in a worker.

    For ``remote``: the fleet URL (``--fleet``, or the URL of the coordinator that
    ``--fleet-listen`` embedded in the launcher, which must then be reachable from the nodes),
    the token, the device tag and the timeout.
    """
    if args.latency != "remote":
        return ()
    from search.fleet_link import ENV_TOKEN

    client = getattr(backend, "_client", None)
    url = args.fleet or getattr(client, "url", None)
    token = args.fleet_token or os.environ.get(ENV_TOKEN)
    return tuple(sorted({"fleet_url": url, "token": token, "device_tag": backend.device_tag,
                         "timeout_s": args.fleet_timeout}.items()))


def _absolute_data(data_spec: str) -> str:
    path = Path(data_spec)
    return str(path.resolve()) if ":" not in data_spec and path.exists() else data_spec


def _absolute_sqlite(url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:" and not url[len(prefix):].startswith("/"):
        return prefix + str(Path(url[len(prefix):]).resolve())
    return url


def make_worker_config(
    args: Any, *, space: SpaceSpec, task: Any, data_spec: str, out_dir: Path, study_name: str,
    storage_url: str, backend: Any, settings: LatencySettings, options: RayOptions,
) -> WorkerConfig:
    """The :class:`WorkerConfig` of the search described by the launcher's ``args``.

    Relative data paths and SQLite files are made absolute (workers do not share the driver's
    working directory).
    """
    device = "cpu" if options.trial_gpus <= 0 else args.train_device
    return WorkerConfig(
        space=space.name, latency_budget_ms=task.latency_budget_ms, minority_group=args.minority_group,
        data_spec=_absolute_data(str(data_spec)), out_dir=str(out_dir.resolve()), study_name=study_name,
        storage_url=_absolute_sqlite(storage_url), latency_backend=args.latency,
        latency_options=latency_options(args, backend), latency_settings=settings, seed=args.seed,
        train_device=device, torch_threads=max(1, math.ceil(options.trial_cpus)), driver_host=socket.gethostname(),
    )


def run_on_ray(
    study: Any, budget: TrialBudget, session: RaySession, config: WorkerConfig, *, space: SpaceSpec,
    overrides: Mapping[str, Any], task: Any, study_dir: Path,
    callbacks: Sequence[Callable[[Any, Any], None]] = (), timeout_s: float | None = None,
) -> None:
    """Run the study's trials as Ray tasks until ``budget`` is reached."""
    slots = RaySlots(session, config, space, overrides, task, study_dir)
    run_trials(study, slots, budget, callbacks=callbacks, timeout_s=timeout_s)
