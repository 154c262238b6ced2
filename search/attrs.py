"""The storage layout: keys hwsearch writes on Optuna studies and trials.

Optuna's RDB storage is the single source of truth. The dashboard, ``search.export`` and any
other reader use these names (and only these) to find what a trial measured.

Study user attributes:
    ``hwsearch.space``: space name. ``hwsearch.task``: ``Task.record()`` (objectives with their
    directions, best and worst values, constraints and floors, score names, budgets).
    ``hwsearch.device_tag``: target device tag (``local``, ``rpi4b``, ``fake``).
    ``hwsearch.latency_backend``: ``local`` | ``remote`` | ``fake``.
    ``hwsearch.data``: description of the data set. ``hwsearch.out_dir``: artifact root.
    ``hwsearch.test_metrics.<number>``: Metrics dict of Pareto trial ``<number>`` on the test split
    (finished trials are read-only in Optuna, so these live on the study).
    ``hwsearch.rungs``: training epochs of each fidelity rung, fixed when the study is created.
    ``hwsearch.eta``: the successive-halving factor. ``hwsearch.first_look``: share of each epoch
    a first rung trains (1, or 1/η on a large training split), fixed when the study is created. ``hwsearch.budget_s``: the study's wall-clock
    budget (``--timeout`` of its last run). ``hwsearch.spent_s``: seconds of the budget spent by its
    runs so far. ``hwsearch.plan``: the last run's plan, in words.

Trial user attributes:
    ``candidate``: ``Candidate.to_params()``. ``candidate_text``: ``Candidate.describe()``.
    ``rung.<r>``: what rung ``r`` gave: ``{rung, epochs, epoch_share, values, feasible, figures,
    checkpoint, seconds, stage_seconds, train_epochs, train_s, kd, decision, train_windows, resumed_from, copied_from,
    projected_train_s}`` (the first-rung cost probe's projection, when it let the rung train).
    ``rung``: the highest rung finished. ``stopped``: why a PRUNED trial stopped (a promotion
    decision, or the budget). ``continues``: number of the interrupted trial this one continues.
    ``screen``: screening record ``{fingerprint, latency, size_bytes, seconds}``.
    ``latency``: ``LatencyResult.to_dict()`` of the artifact.
    ``feasible``: bool. ``infeasible_reason``: why not (over the latency or size budget, or too
    costly to train for the search's budget).
    ``too_costly``: ``{projected_s, limit_s, step_s}`` when the first-rung cost probe stopped the
    candidate after a few training steps (it is then recorded as screened out).
    ``trained``: bool (infeasible candidates are never trained).
    ``metrics``: ``Metrics.to_dict()`` of the highest rung (trained trials only); a COMPLETE
    trial's objective values come from its top rung, a PRUNED one has none (Optuna's rule).
    ``stage_seconds``: wall-clock of each stage. ``artifact_path`` / ``artifact_sha256``.
    ``baseline``: recipe name for trials enqueued by ``--baselines``.
    ``constraint``: Optuna constraint values (<= 0 feasible), read by the samplers.
    ``worker``: ``{host, pid}`` of the process that ran the trial.
    ``fail_reason``: why a failed trial failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STUDY_SPACE = "hwsearch.space"
STUDY_TASK = "hwsearch.task"
STUDY_DEVICE_TAG = "hwsearch.device_tag"
STUDY_LATENCY_BACKEND = "hwsearch.latency_backend"
STUDY_DATA = "hwsearch.data"
STUDY_OUT_DIR = "hwsearch.out_dir"
STUDY_TEST_METRICS_PREFIX = "hwsearch.test_metrics."
STUDY_RUNGS = "hwsearch.rungs"
STUDY_ETA = "hwsearch.eta"
STUDY_FIRST_LOOK = "hwsearch.first_look"
STUDY_SPENT_S = "hwsearch.spent_s"
STUDY_BUDGET_S = "hwsearch.budget_s"
STUDY_PLAN = "hwsearch.plan"

CANDIDATE = "candidate"
CANDIDATE_TEXT = "candidate_text"
SCREEN = "screen"
LATENCY = "latency"
FEASIBLE = "feasible"
INFEASIBLE_REASON = "infeasible_reason"
TRAINED = "trained"
METRICS = "metrics"
STAGE_SECONDS = "stage_seconds"
ARTIFACT_PATH = "artifact_path"
ARTIFACT_SHA256 = "artifact_sha256"
BASELINE = "baseline"
START_POINT = "start_point"
CONSTRAINT = "constraint"
WORKER = "worker"
FAIL_REASON = "fail_reason"
RUNG = "rung"
RUNG_PREFIX = "rung."
STOPPED = "stopped"
CONTINUES = "continues"
TOO_COSTLY = "too_costly"


def rung_key(rung: int) -> str:
    """Trial attribute holding the record of rung ``rung``."""
    return f"{RUNG_PREFIX}{rung}"


def rung_records(user_attrs: dict) -> dict[int, dict]:
    """The rung records of a trial's user attributes, by rung."""
    return {int(k[len(RUNG_PREFIX):]): v for k, v in user_attrs.items()
            if k.startswith(RUNG_PREFIX) and k[len(RUNG_PREFIX):].isdigit()}


def record_epoch_seconds(record: Mapping[str, Any] | None) -> float | None:
    """Training seconds per epoch a stored rung record measured (``None`` when it trained nothing)."""
    if not record or not record.get("train_epochs") or not record.get("train_s"):
        return None
    return float(record["train_s"]) / float(record["train_epochs"])


def test_metrics_key(trial_number: int) -> str:
    """Study attribute holding the test-split metrics of Pareto trial ``trial_number``."""
    return f"{STUDY_TEST_METRICS_PREFIX}{trial_number}"


def rung_label(epochs: int, share: float = 1.0) -> str:
    """A rung's epochs for people: ``"3"``, or ``"1/3"`` for a first look at a third of an epoch."""
    if share >= 1:
        return str(epochs)
    inverse = 1.0 / share
    return f"{epochs}/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-6 else f"{epochs * share:.2f}"


def ladder_label(rungs: tuple[int, ...], first_look: float = 1.0) -> str:
    """``"1/3 → 3 → 9"``: the ladder's epochs, the first rung as a share when it is a first look."""
    return " → ".join(rung_label(e, first_look if r == 0 else 1.0) for r, e in enumerate(rungs))
