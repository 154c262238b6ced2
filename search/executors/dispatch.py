"""The launcher's entry to the executors: connect the backend early, then run the search's jobs.

``search.launch`` calls :func:`connect_backend` while it validates its inputs (an unreachable Ray
cluster fails in seconds, before anything is stored) and :func:`execute` once the study and the
plan are ready.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evaluators.errors import HwsearchError
from search.config import SearchConfig


@dataclass
class SearchRun:
    """What the executors need to run a search.

    Attributes:
        config: The validated configuration.
        study: The Optuna study; storage: its ``RDBStorage``.
        space: The search space; task: the effective task; spec: its front spec.
        dataset: The loaded data set (local backend); data_spec: the data as given (Ray workers).
        latency_backend: The driver's latency backend; settings: how latency is measured.
        engine: SQLAlchemy engine of the study's database (latency cache).
        context: What the space may sample (warm starts, groups).
        rungs: The study's rung ladder (``None``: chosen once the first rungs are timed).
        budget: What the plan divides (``search.executors.scheduler.Budget``).
        first_look: Share of each epoch the study's first rungs train (``search.plan.first_look_share``).
    """

    config: SearchConfig
    study: Any
    storage: Any
    space: Any
    task: Any
    spec: Any
    dataset: Any
    data_spec: str
    latency_backend: Any
    settings: Any
    engine: Any
    context: Any
    rungs: tuple[int, ...] | None
    budget: Any
    first_look: float = 1.0

    @property
    def study_dir(self) -> Any:
        """``<out>/<study>``."""
        return self.config.out_dir / self.config.study


def connect_backend(config: SearchConfig, cleanups: list[Callable[[], None]]) -> Any:
    """The Ray session for ``--backend ray`` (its shutdown appended to ``cleanups``), else ``None``.

    Raises:
        HwsearchError: Ray options without ``--backend ray``, ``--jobs`` with it, bad trial
            resources, or an unreachable cluster.
    """
    if config.backend != "ray":
        if config.ray_address or config.trial_cpus != 1.0 or config.trial_gpus != 0.0:
            raise HwsearchError("--ray-address, --trial-cpus and --trial-gpus are for --backend ray",
                                "add --backend ray (or drop them; --jobs N runs parallel trials locally)")
        return None
    if config.jobs != 1:
        raise HwsearchError("--jobs is for --backend local",
                            "with --backend ray, trials at once follow the cluster's resources and --trial-cpus")
    if config.train_device == "cuda" and config.trial_gpus <= 0:
        raise HwsearchError("--train-device cuda with --backend ray needs a GPU per trial",
                            "pass --trial-gpus 1 (or a fraction such as 0.5)")
    from search.executors.ray_session import RayOptions, RaySession

    options = RayOptions(address=config.ray_address, trial_cpus=config.trial_cpus, trial_gpus=config.trial_gpus)
    session = RaySession.connect(options)
    cleanups.append(session.close)
    where = config.ray_address or os.environ.get("RAY_ADDRESS") or "private instance on this machine"
    print(f"ray: {where}, {session.resources()}, {session.capacity()} trial(s) at once")
    return session


def local_slots(run: SearchRun) -> Any:
    """Threads of this process, ``--jobs`` at once, on one trial context."""
    import torch

    from search.context import build_context, resolve_train_device
    from search.executors.local import ThreadSlots, preload_pipeline_modules

    config = run.config
    preload_pipeline_modules()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // config.jobs))
    ctx = build_context(dataset=run.dataset, task=run.task, backend=run.latency_backend, settings=run.settings,
                        engine=run.engine, study_dir=run.study_dir, device=resolve_train_device(config.train_device),
                        seed=config.seed, eval_batch=config.eval_batch, pretrained=config.pretrained)
    return ThreadSlots(ctx, config.jobs)


def execute(
    run: SearchRun, session: Any, callbacks: Sequence[Callable[[Any, Any], None]], *,
    remaining_s: float, stop: Any, on_tick: Callable[[Any], None] | None = None,
    on_rung: Callable[..., None] | None = None, on_plan: Callable[[Any], None] | None = None,
    started: float | None = None,
) -> Any:
    """Run the search's jobs until the budget or the ``--trials`` cap is spent.

    ``remaining_s`` counts from ``started`` (``time.monotonic()`` when the run began planning, so
    the probe's seconds are part of the budget), or from now.

    Returns:
        The driver (its counters), after the run.

    Raises:
        SearchStopped: A signal stopped the search (every trial it owned is FAIL by then).
    """
    from search.executors.budget import StudyLock, TrialBudget
    from search.context import teacher_macs
    from search.executors.driver import Driver
    from search.executors.scheduler import Scheduler
    from search.plan import CostModel

    config = run.config
    lock = StudyLock(config.storage_url, config.study)
    claims = TrialBudget(run.study, run.storage, lock, config.trials)
    if session is None:
        slots = local_slots(run)
    else:
        from search.executors.ray_executor import RaySlots, make_worker_config

        worker = make_worker_config(config, task=run.task, data_spec=run.data_spec, backend=run.latency_backend,
                                    settings=run.settings)
        slots = RaySlots(session, worker)
    scheduler = Scheduler(
        study=run.study, space=run.space, overrides=config.overrides, context=run.context, spec=run.spec,
        rungs=run.rungs, budget=run.budget, cost=CostModel(rate=0.0, images=len(run.dataset.splits["train"])),
        deadline=(time.monotonic() if started is None else started) + remaining_s, study_dir=run.study_dir,
        teacher_macs=lambda: teacher_macs(run.dataset), first_rung_share=config.max_first_rung_share,
        first_look=run.first_look,
    )
    driver = Driver(study=run.study, claims=claims, slots=slots, scheduler=scheduler, task=run.task,
                    callbacks=callbacks, stop=stop, on_tick=on_tick, on_rung=on_rung,
                    grace_s=max(60.0, 0.1 * config.timeout_s), started=started, on_plan=on_plan)
    try:
        driver.run()
    finally:
        slots.shutdown(5.0)
        lock.close()
    return driver
