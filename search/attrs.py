"""The storage layout: keys hwsearch writes on Optuna studies and trials.

Optuna's RDB storage is the single source of truth. The dashboard, ``search.export`` and any
other reader use these names (and only these) to find what a trial measured.

Study user attributes:
    ``hwsearch.space``: space name. ``hwsearch.task``: objectives, directions and budgets.
    ``hwsearch.device_tag``: target device tag (``local``, ``rpi4b``, ``fake``).
    ``hwsearch.latency_backend``: ``local`` | ``remote`` | ``fake``.
    ``hwsearch.data``: description of the data set. ``hwsearch.out_dir``: artifact root.
    ``hwsearch.test_metrics.<number>``: Metrics dict of Pareto trial ``<number>`` on the test split
    (finished trials are read-only in Optuna, so these live on the study).

Trial user attributes:
    ``candidate``: ``Candidate.to_params()``. ``candidate_text``: ``Candidate.describe()``.
    ``screen``: screening record ``{fingerprint, latency, size_bytes, seconds}``.
    ``latency``: ``LatencyResult.to_dict()`` of the artifact.
    ``feasible``: bool. ``infeasible_reason``: why not (over the latency or size budget).
    ``trained``: bool (infeasible candidates are never trained).
    ``metrics``: ``Metrics.to_dict()`` (trained trials only).
    ``stage_seconds``: wall-clock of each stage. ``artifact_path`` / ``artifact_sha256``.
    ``baseline``: recipe name for trials enqueued by ``--baselines``.
    ``constraint``: Optuna constraint values (<= 0 feasible), read by the samplers.
    ``worker``: ``{host, pid}`` of the process that ran the trial.
    ``fail_reason``: why a failed trial failed.
"""

from __future__ import annotations

STUDY_SPACE = "hwsearch.space"
STUDY_TASK = "hwsearch.task"
STUDY_DEVICE_TAG = "hwsearch.device_tag"
STUDY_LATENCY_BACKEND = "hwsearch.latency_backend"
STUDY_DATA = "hwsearch.data"
STUDY_OUT_DIR = "hwsearch.out_dir"
STUDY_TEST_METRICS_PREFIX = "hwsearch.test_metrics."

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
CONSTRAINT = "constraint"
WORKER = "worker"
FAIL_REASON = "fail_reason"


def test_metrics_key(trial_number: int) -> str:
    """Study attribute holding the test-split metrics of Pareto trial ``trial_number``."""
    return f"{STUDY_TEST_METRICS_PREFIX}{trial_number}"
