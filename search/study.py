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


def create_or_resume_study(
    *, name: str, storage: Any, space: SpaceSpec, sampler: Any, study_attrs: dict[str, Any]
):  # type: ignore[no-untyped-def]
    """Create study ``name`` or load it to resume.

    A study created for another space, or with other objectives, is refused (its trials could not
    be compared), naming both. Study attributes are written once, at creation (the rung ladder
    among them: the rungs of a study never change, so its rung records stay comparable).

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


def _driver(worker: dict[str, Any]) -> dict[str, Any]:
    """The launcher process of a trial's ``worker`` record (a Ray trial names its driver)."""
    return worker.get("driver") or worker


def recover_interrupted_trials(study: Any) -> list[int]:
    """Mark as FAIL, with a ``fail_reason``, the RUNNING trials whose launcher on this host is gone.

    Trials of live launchers (on this host or, judged by Optuna's heartbeat, on others) are left
    alone: several launchers may share one study. Returns the numbers of the trials failed.
    """
    import optuna
    from optuna.trial import TrialState

    me = socket.gethostname()
    recovered = []
    storage = study._storage  # noqa: SLF001 - Optuna exposes no public way to fail another process's trial
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        launcher = _driver(trial.user_attrs.get(attrs.WORKER) or {})
        if launcher.get("host") == me and not _pid_alive(int(launcher.get("pid", -1))):
            reason = f"interrupted: its launcher (pid {launcher.get('pid')} on {me}) died"
            storage.set_trial_user_attr(trial._trial_id, attrs.FAIL_REASON, reason)  # noqa: SLF001
            storage.set_trial_system_attr(trial._trial_id, "fail_reason", reason)  # noqa: SLF001
            if storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):  # noqa: SLF001
                recovered.append(trial.number)
    stale = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    optuna.storages.fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if trial.number in stale and not trial.user_attrs.get(attrs.FAIL_REASON):
            storage.set_trial_user_attr(trial._trial_id, attrs.FAIL_REASON,  # noqa: SLF001
                                        "interrupted: its launcher stopped sending heartbeats")
            recovered.append(trial.number)
    return recovered


def enqueue_continuations(study: Any, top_rung: int) -> list[int]:
    """Enqueue a continuation of every failed trial that had been promoted past a rung.

    A trial interrupted while training a rung it was promoted to (a crash, a kill, a stop) keeps
    its rung records and checkpoints; a new trial with the same parameters and ``continues = n``
    picks it up from its last promoted checkpoint instead of training again from scratch. Each
    interrupted trial is continued once. Returns the numbers of the trials continued.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    continued = {t.user_attrs.get(attrs.CONTINUES) for t in trials}
    queued = []
    for trial in trials:
        if trial.state != TrialState.FAIL or trial.number in continued:
            continue
        records = attrs.rung_records(trial.user_attrs)
        promoted = [r for r, rec in records.items()
                    if (rec.get("decision") or {}).get("promote") and rec.get("checkpoint") and r < top_rung]
        if promoted:
            study.enqueue_trial(trial.params, user_attrs={attrs.CONTINUES: trial.number}, skip_if_exists=False)
            queued.append(trial.number)
    return queued


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


def enqueue_start_point(study: Any, space: SpaceSpec) -> str | None:
    """Enqueue the space's start point as the first candidate of a new study; returns its name.

    Nothing is enqueued (``None``) when the space has none or the study has any trial already (a
    resumed study keeps the course it took).
    """
    start = space.start_point()
    if start is None or study.get_trials(deepcopy=False):
        return None
    name, candidate = start
    study.enqueue_trial(candidate.to_params(), user_attrs={attrs.START_POINT: name})
    return name


def finished_count(study: Any) -> int:
    """Candidates evaluated: COMPLETE (top rung or screened out) and PRUNED (stopped) trials."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
