"""Held-out test figures of the front, evaluated once per artifact on the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from search import attrs
from spaces.task import Task

ARTIFACT_FIGURES = ("latency", "size_bytes", "params", "macs", "fingerprint", "epochs")
"""Figures of the artifact itself, the same on every split (scores may read them)."""


def evaluate_on_test(study: Any, trials: Sequence[Any], dataset: Any, task: Task, *,
                     eval_batch: int = 1) -> dict[int, dict[str, Any]]:
    """Test-split figures of each trial's artifact, stored on the study (``hwsearch.test_metrics.N``).

    The artifact runs at the deployment batch size, like on the validation split; the record holds
    accuracy, per-group and fairness figures with their bootstrap intervals, the artifact's own
    figures (:data:`ARTIFACT_FIGURES`) and the task's scores. Already-stored figures for the same artifact sha256 are
    reused, so a resumed study does not evaluate twice. Artifacts that are missing on disk are
    skipped (their figures stay absent).
    """
    import dataclasses

    from evaluators.evaluate import evaluate_artifact
    from evaluators.metrics import figure_intervals

    out: dict[int, dict[str, Any]] = {}
    for trial in trials:
        key = attrs.test_metrics_key(trial.number)
        sha = trial.user_attrs.get(attrs.ARTIFACT_SHA256)
        stored = study.user_attrs.get(key)
        if stored and stored.get("artifact_sha256") == sha:
            out[trial.number] = stored
            continue
        path = Path(trial.user_attrs.get(attrs.ARTIFACT_PATH, ""))
        if not path.is_file():
            continue
        metrics = trial.user_attrs[attrs.METRICS]
        resolution = int(trial.user_attrs[attrs.CANDIDATE]["resolution"])
        evaluation = evaluate_artifact(path, dataset, "test", resolution, minority_group=task.minority_group,
                                       batch=eval_batch)
        figures = evaluation.figures
        record = {
            "split": "test", "accuracy": figures.accuracy, "per_group_accuracy": figures.per_group_accuracy,
            "group_counts": figures.group_counts,
            "fairness": dataclasses.asdict(figures.fairness) if figures.fairness else None,
            "confusion_matrix": figures.confusion_matrix, "artifact_sha256": sha,
            "intervals": figure_intervals(evaluation, dataset, seed=0), "eval_batch": evaluation.batch,
            **{key: metrics[key] for key in ARTIFACT_FIGURES if key in metrics},
        }
        record["scores"] = task.score_values(record)
        study.set_user_attr(key, record)
        out[trial.number] = record
    return out
