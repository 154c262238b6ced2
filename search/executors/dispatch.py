"""The launcher's entry to the executors: connect the backend early, then run the trials.

``search.launch`` calls :func:`connect_backend` while it validates its inputs (an unreachable Ray
cluster fails in seconds, before anything is stored) and :func:`execute` once the study is ready.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators.errors import HwsearchError


@dataclass
class SearchPlan:
    """What both backends need to run a search's trials.

    Attributes:
        study: The Optuna study; storage: its ``RDBStorage``; url: the storage URL.
        space: The search space; task: the effective task; overrides: fixed Candidate fields.
        dataset: The loaded data set (local backend); data_spec: ``--data`` as given (Ray workers).
        latency_backend: The driver's latency backend; settings: how latency is measured.
        engine: SQLAlchemy engine of the study's database (latency cache).
        out_dir: Absolute artifact root; study_name: the study's name.
    """

    study: Any
    storage: Any
    url: str
    space: Any
    task: Any
    overrides: Mapping[str, Any]
    dataset: Any
    data_spec: str
    latency_backend: Any
    settings: Any
    engine: Any
    out_dir: Path
    study_name: str

    @property
    def study_dir(self) -> Path:
        """``<out>/<study>``."""
        return self.out_dir / self.study_name


def connect_backend(args: Any, cleanups: list[Callable[[], None]]) -> Any:
    """The Ray session for ``--backend ray`` (its shutdown appended to ``cleanups``), else ``None``.

    Raises:
        HwsearchError: Ray options without ``--backend ray``, ``--jobs`` with it, bad trial
            resources, or an unreachable cluster.
    """
    if args.backend != "ray":
        if args.ray_address or args.trial_cpus != 1.0 or args.trial_gpus != 0.0:
            raise HwsearchError("--ray-address, --trial-cpus and --trial-gpus are for --backend ray",
                                "add --backend ray (or drop them; --jobs N runs parallel trials locally)")
        return None
    if args.jobs != 1:
        raise HwsearchError("--jobs is for --backend local",
                            "with --backend ray, trials at once follow the cluster's resources and --trial-cpus")
    if args.train_device == "cuda" and args.trial_gpus <= 0:
        raise HwsearchError("--train-device cuda with --backend ray needs a GPU per trial",
                            "pass --trial-gpus 1 (or a fraction such as 0.5)")
    from search.executors.ray_session import RayOptions, RaySession

    options = RayOptions(address=args.ray_address, trial_cpus=args.trial_cpus, trial_gpus=args.trial_gpus)
    session = RaySession.connect(options)
    cleanups.append(session.close)
    where = args.ray_address or os.environ.get("RAY_ADDRESS") or "private instance on this machine"
    print(f"ray: {where}, {session.resources()}, {session.capacity()} trial(s) at once")
    return session


def execute(
    args: Any, plan: SearchPlan, session: Any, callbacks: Sequence[Callable[[Any, Any], None]],
) -> None:
    """Run trials until the study holds ``args.trials`` COMPLETE trials (all launchers together)."""
    from search.executors.budget import StudyLock, TrialBudget

    lock = StudyLock(plan.url, plan.study_name)
    budget = TrialBudget(plan.study, plan.storage, lock, args.trials)
    try:
        if session is None:
            _execute_local(args, plan, budget, callbacks)
        else:
            _execute_ray(args, plan, budget, session, callbacks)
    finally:
        lock.close()


def _execute_local(args: Any, plan: SearchPlan, budget: Any, callbacks: Sequence[Callable[[Any, Any], None]]) -> None:
    import torch

    from search.context import build_context, resolve_train_device
    from search.executors.local import preload_pipeline_modules, run_local
    from search.objective import TrialRunner

    preload_pipeline_modules()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.jobs))
    ctx = build_context(dataset=plan.dataset, task=plan.task, backend=plan.latency_backend, settings=plan.settings,
                        engine=plan.engine, study_dir=plan.study_dir, device=resolve_train_device(args.train_device),
                        seed=args.seed)
    runner = TrialRunner(plan.space, ctx, plan.study_dir, plan.overrides)
    run_local(plan.study, budget, runner, jobs=args.jobs, callbacks=callbacks, timeout_s=args.timeout)


def _execute_ray(
    args: Any, plan: SearchPlan, budget: Any, session: Any, callbacks: Sequence[Callable[[Any, Any], None]],
) -> None:
    from search.executors.ray_executor import make_worker_config, run_on_ray

    config = make_worker_config(
        args, space=plan.space, task=plan.task, data_spec=plan.data_spec, out_dir=plan.out_dir,
        study_name=plan.study_name, storage_url=plan.url, backend=plan.latency_backend, settings=plan.settings,
        options=session.options,
    )
    run_on_ray(plan.study, budget, session, config, space=plan.space, overrides=plan.overrides, task=plan.task,
               study_dir=plan.study_dir, callbacks=callbacks, timeout_s=args.timeout)
