"""Creating, resuming and recovering hwsearch studies in Optuna's RDB storage."""

from __future__ import annotations

import os
import socket
from typing import Any

from evaluators.errors import HwsearchError
from search import attrs
from spaces.registry import SpaceSpec


def worker_identity() -> dict[str, Any]:
    """``{host, pid}`` of this process, stored on each trial it runs."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def task_record(space: SpaceSpec, latency_budget_ms: float | None) -> dict[str, Any]:
    """What the study records of its task (objectives, directions, budgets)."""
    task = space.task
    return {
        "objectives": [{"name": o.name, "metric": o.metric, "direction": o.direction} for o in task.objectives],
        "latency_budget_ms": latency_budget_ms,
        "size_budget_mb": task.size_budget_mb,
        "minority_group": task.minority_group,
        "latency_score_weight": task.latency_score_weight,
    }


def create_or_resume_study(
    *, name: str, storage: Any, space: SpaceSpec, sampler: Any, study_attrs: dict[str, Any]
):  # type: ignore[no-untyped-def]
    """Create study ``name`` or load it to resume.

    A study created for another space, or with other objectives, is refused (its trials could not
    be compared), naming both. Study attributes are written once, at creation.

    Raises:
        HwsearchError: When the existing study does not match.
    """
    import optuna

    directions = space.task.directions
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, directions=directions, load_if_exists=True
    )
    existing_space = study.user_attrs.get(attrs.STUDY_SPACE)
    if existing_space is None and not study.trials:
        for key, value in study_attrs.items():
            study.set_user_attr(key, value)
        study.set_user_attr(attrs.STUDY_SPACE, space.name)
    elif existing_space != space.name:
        raise HwsearchError(
            f"study {name!r} was created for space {existing_space!r}, not {space.name!r}",
            "pass another --study name, or the study's own --space",
        )
    if [d.name.lower() for d in study.directions] != directions:
        raise HwsearchError(
            f"study {name!r} has directions {[d.name.lower() for d in study.directions]}, "
            f"the space needs {directions}", "pass another --study name",
        )
    return study


def recover_interrupted_trials(study: Any) -> list[int]:
    """Mark as FAIL the RUNNING trials whose process on this host is gone.

    Trials run by live processes (on this host or, judged by Optuna's heartbeat, on others) are
    left alone: several launchers may share one study. Returns the numbers of the trials failed.
    """
    import optuna
    from optuna.trial import TrialState

    me = socket.gethostname()
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(attrs.WORKER) or {}
        if worker.get("host") == me and not _pid_alive(int(worker.get("pid", -1))):
            storage = study._storage  # noqa: SLF001 - Optuna exposes no public way to fail a trial
            storage.set_trial_system_attr(trial._trial_id, "fail_reason", "interrupted: its process died")  # noqa: SLF001
            if storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):  # noqa: SLF001
                recovered.append(trial.number)
    optuna.storages.fail_stale_trials(study)
    return recovered


def enqueue_baselines(study: Any, space: SpaceSpec) -> list[str]:
    """Enqueue the space's baseline recipes once each (skipped when already in the study)."""
    done = {t.user_attrs.get(attrs.BASELINE) for t in study.get_trials(deepcopy=False)}
    queued = []
    for name, candidate in space.baselines().items():
        if name in done:
            continue
        params = candidate.to_params()
        study.enqueue_trial(params, user_attrs={attrs.BASELINE: name})
        queued.append(name)
    return queued


def finished_count(study: Any) -> int:
    """Number of COMPLETE trials (feasible or screened out); the ``--trials`` budget counts these."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
