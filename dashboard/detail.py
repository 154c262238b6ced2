"""Pure shaping for the Trial page: one trial's records as small frames, its artifact, its export.

Inputs are the dictionaries stored on the trial (``Metrics.to_dict()``,
``LatencyResult.to_dict()``, ``stage_seconds``); every function tolerates missing keys, since
untrained, stopped and failed trials carry only part of them. Intervals are the stored 95 %
intervals (:func:`dashboard.data.figure_interval`); a figure without one shows none.
"""

from __future__ import annotations

import hashlib
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from dashboard.data import figure_interval
from dashboard.info import StudyInfo
from spaces.task import metric_value

LATENCY_STATS: tuple[tuple[str, str], ...] = (
    ("min_ms", "min"), ("median_ms", "median"), ("mean_ms", "mean"), ("p90_ms", "p90"),
)
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
FIGURE_COLUMNS: tuple[str, ...] = ("figure", "kind", "value", "95 % low", "95 % high", "±")


def _figure_row(name: str, kind: str, value: float | None, pair: tuple[float, float] | None) -> dict[str, Any]:
    return {"figure": name, "kind": kind, "value": math.nan if value is None else value,
            "95 % low": pair[0] if pair else math.nan, "95 % high": pair[1] if pair else math.nan,
            "±": abs(pair[1] - pair[0]) / 2 if pair else math.nan}


def figures_frame(metrics: Mapping[str, Any], info: StudyInfo) -> pd.DataFrame:
    """The figures the study's task names, with their 95 % intervals.

    One row per objective (``kind`` objective), detail (detail) and score (score), in the task's
    order; columns :data:`FIGURE_COLUMNS`. Values come from ``metrics`` by metric path (NaN when
    missing); scores have no interval.
    """
    rows = [_figure_row(o.name, "objective", metric_value(metrics, o.metric), figure_interval(metrics, o.metric))
            for o in info.objectives]
    rows += [_figure_row(d.label, "detail", metric_value(metrics, d.metric), figure_interval(metrics, d.metric))
             for d in info.details]
    scores = metrics.get("scores") or {}
    rows += [_figure_row(name, "score", scores.get(name), None) for name in info.scores]
    return pd.DataFrame(rows, columns=list(FIGURE_COLUMNS))


def group_accuracy_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Per-group accuracy: ``group``, ``accuracy``, ``low``, ``high``, ``samples``, ``minority``.

    ``low``/``high`` bound the 95 % interval (``per_group_accuracy.<group>``; NaN when none was
    stored). The minority group is ``metrics.fairness.minority_group`` (the group fairness figures
    compare with; one True row at most). Groups keep the order they were stored in; data without
    groups gives an empty frame.
    """
    per_group = dict(metrics.get("per_group_accuracy") or {})
    counts = dict(metrics.get("group_counts") or {})
    minority = (metrics.get("fairness") or {}).get("minority_group")
    pairs = [figure_interval(metrics, f"per_group_accuracy.{g}") for g in per_group]
    return pd.DataFrame({
        "group": list(per_group),
        "accuracy": [float(v) for v in per_group.values()],
        "low": [p[0] if p else math.nan for p in pairs],
        "high": [p[1] if p else math.nan for p in pairs],
        "samples": [int(counts.get(g, 0)) for g in per_group],
        "minority": [g == minority for g in per_group],
    })


def confusion_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Confusion matrix with true classes as rows and predicted classes as columns.

    Class names come from ``class_names``; missing names become ``class <i>``.
    """
    matrix = [list(map(int, row)) for row in metrics.get("confusion_matrix") or []]
    names = list(metrics.get("class_names") or [])
    size = len(matrix)
    names = [str(names[i]) if i < len(names) else f"class {i}" for i in range(size)]
    return pd.DataFrame(matrix, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def latency_stats_frame(latency: Mapping[str, Any]) -> pd.DataFrame:
    """Summary statistics of a latency record: ``stat``, ``ms`` (present ones, in rising order)."""
    rows = [(label, float(latency[key])) for key, label in LATENCY_STATS if latency.get(key) is not None]
    return pd.DataFrame(rows, columns=["stat", "ms"])


def latency_facts(latency: Mapping[str, Any]) -> list[str]:
    """Short facts of a latency record: the median's 95 % CI, runs and rounds, threads, runtime, agent, cache, load."""
    facts = []
    if latency.get("ci_low_ms") is not None and latency.get("ci_high_ms") is not None:
        facts.append(f"median {float(latency['median_ms']):.4g} ms, 95 % CI "
                     f"[{float(latency['ci_low_ms']):.4g}, {float(latency['ci_high_ms']):.4g}] ms")
    facts.append(f"n={latency.get('n', '?')} runs in {latency.get('rounds', 1)} round(s)")
    facts.append(f"{latency.get('threads', '?')} thread(s)")
    facts.append(f"runtime {latency.get('runtime') or '?'}")
    if latency.get("agent"):
        facts.append(f"agent {latency['agent']}")
    if latency.get("cached"):
        facts.append("from the latency cache")
    if latency.get("under_load"):
        facts.append("measured UNDER LOAD (other work shared the cores)")
    return facts


def stage_frame(stage_seconds: Mapping[str, Any]) -> pd.DataFrame:
    """Wall-clock cost per stage: ``stage``, ``seconds``, ``share`` (of the total), stored order."""
    stages = {str(k): float(v) for k, v in (stage_seconds or {}).items()}
    total = sum(stages.values())
    return pd.DataFrame({
        "stage": list(stages),
        "seconds": list(stages.values()),
        "share": [v / total if total > 0 else 0.0 for v in stages.values()],
    })


def params_frame(params: Mapping[str, Any]) -> pd.DataFrame:
    """Candidate parameters as ``parameter``, ``value`` rows (values shown as text), sorted."""
    return pd.DataFrame(
        [(str(k), str(v)) for k, v in sorted(params.items())], columns=["parameter", "value"]
    )


def resolve_artifact(path: str, out_dir: str, cwd: Path) -> Path | None:
    """Where the artifact file is on this machine, or None.

    Tries ``path`` as given (relative paths from ``cwd``), then relative to the study's
    ``out_dir``.
    """
    if not path:
        return None
    given = Path(path).expanduser()
    tries = [given] if given.is_absolute() else [cwd / given]
    if out_dir and not given.is_absolute():
        tries.append(Path(out_dir).expanduser() / given)
    for candidate in tries:
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class ArtifactCheck:
    """An artifact read for download.

    Attributes:
        data: File contents.
        sha256: Hash of ``data``.
        matches: True when ``sha256`` equals the stored hash; None when none was stored.
    """

    data: bytes
    sha256: str
    matches: bool | None


def read_artifact(path: Path, expected_sha256: str) -> ArtifactCheck:
    """Read ``path`` and compare its sha256 with the stored one.

    Raises:
        ValueError: When the file is larger than :data:`MAX_DOWNLOAD_BYTES`.
    """
    size = path.stat().st_size
    if size > MAX_DOWNLOAD_BYTES:
        raise ValueError(f"{path} is {size / 1e6:.0f} MB, over the {MAX_DOWNLOAD_BYTES / 1e6:.0f} MB download cap")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    return ArtifactCheck(data, digest, (digest == expected_sha256) if expected_sha256 else None)


def export_command(storage_url: str, study: str, trial: int, out_dir: str) -> str:
    """The ``search.export`` command line for one trial, shell-quoted."""
    parts = [
        "python", "-m", "search.export", "--storage", storage_url, "--study", study,
        "--trial", str(int(trial)), "--out", out_dir,
    ]
    return " ".join(shlex.quote(p) for p in parts)


def default_export_dir(study: str, trial: int) -> str:
    """Default ``--out`` of the export command: ``exports/<study>/trial_<n>``."""
    return f"exports/{study}/trial_{int(trial)}"
