"""Held-out test figures of the Pareto set, evaluated once per artifact on the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from search import attrs
from spaces.scores import esfair_score
from spaces.task import Task


def evaluate_on_test(study: Any, trials: Sequence[Any], dataset: Any, task: Task) -> dict[int, dict[str, Any]]:
    """Test-split metrics of each trial's artifact, stored on the study (``hwsearch.test_metrics.N``).

    Already-stored figures for the same artifact sha256 are reused, so a resumed study does not
    evaluate twice. Artifacts that are missing on disk are skipped (their figures stay absent).
    """
    from evaluators.evaluate import evaluate_artifact

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
        figures = evaluate_artifact(path, dataset, "test", resolution, minority_group=task.minority_group)
        latency = metrics["latency"]["median_ms"]
        record = {
            "split": "test", "accuracy": figures.accuracy, "per_group_accuracy": figures.per_group_accuracy,
            "group_counts": figures.group_counts, "fairness": figures.fairness.__dict__,
            "esfair_score": esfair_score(figures.accuracy, figures.fairness.spd, latency,
                                         task.latency_budget_ms or 1.0, task.latency_score_weight),
            "confusion_matrix": figures.confusion_matrix, "artifact_sha256": sha,
        }
        study.set_user_attr(key, record)
        out[trial.number] = record
    return out
