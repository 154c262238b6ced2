"""The seed's figure model: deterministic, plausible figures of a candidate after some epochs.

Bigger, sharper models are slower and more accurate; more epochs raise accuracy; ArcFace, KD and
the group-aware training methods narrow the minority group's gap (the methods cost a little
accuracy). Figures carry bootstrap-like 95 % intervals and latency a CI of its median, shaped as
``Metrics.to_dict()`` and ``LatencyResult.to_dict()`` hold them. Nothing here trains anything.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from evaluators.contracts import FairnessFigures, LatencyResult, Metrics
from spaces import Candidate, Task
from spaces.scores import esfair_fairness_part, esfair_spd

GROUP_COUNTS = {"light": 1200, "medium": 800, "dark": 240}
MINORITY = "dark"
CLASS_COUNTS = {"nevus": 1000, "melanoma": 680, "keratosis": 560}
BASE_LATENCY_MS = {
    "mobilenetv3_small": 1.0, "mobilenetv3_large": 3.0, "mobileone_s0": 2.7, "mnasnet": 2.4,
    "mobilenetv2": 6.5, "efficientnet_lite0": 7.5, "lcnet": 0.9,
}
BASE_ACCURACY = {
    "mobilenetv3_small": 0.76, "mobilenetv3_large": 0.82, "mobileone_s0": 0.83, "mnasnet": 0.82,
    "mobilenetv2": 0.81, "efficientnet_lite0": 0.84, "lcnet": 0.72,
}
QUANT_LATENCY = {"fp32": 1.0, "fp16": 1.05, "int8_dynamic": 4.0, "int8_static": 1.4}
QUANT_ACCURACY_LOSS = {"fp32": 0.0, "fp16": 0.0, "int8_dynamic": 0.01, "int8_static": 0.015}
METHOD_GAP = {"none": 1.0, "balanced_sampler": 0.7, "reweight": 0.75, "groupdro": 0.55}
METHOD_ACCURACY_COST = {"none": 0.0, "balanced_sampler": 0.006, "reweight": 0.004, "groupdro": 0.012}
FAKE_DEVICE = "FAKE backend (not a real device)"
LOCAL_DEVICE = "Intel Xeon Platinum 8480 (x86_64, 2 cores)"
TOP_EPOCHS = 9


def latency_ms(candidate: Candidate) -> float:
    """The seed's latency model (ms)."""
    return 0.15 + (BASE_LATENCY_MS[candidate.backbone] * candidate.width ** 1.5 * (candidate.resolution / 224) ** 2
                   * (1 - candidate.prune_ratio) ** 1.5 * QUANT_LATENCY[candidate.quant])


def latency_result(median: float, fake: bool, rng: random.Random, under_load: bool = False) -> LatencyResult:
    """A latency record of three rounds around ``median`` with a +-2.5 % CI of the median."""
    rounds = tuple(median * (1 + rng.uniform(-0.02, 0.02)) for _ in range(3))
    return LatencyResult(
        median_ms=median, p90_ms=median * 1.06, mean_ms=median * 1.02, std_ms=median * 0.03,
        min_ms=median * 0.95, n=60, device=FAKE_DEVICE if fake else LOCAL_DEVICE,
        device_tag="fake" if fake else "local", threads=1, backend="fake" if fake else "local",
        runtime="none (fake)" if fake else "onnxruntime 1.22.0", fake=fake, source="fake" if fake else "measured",
        under_load=under_load, rounds=3, ci_low_ms=median * 0.975, ci_high_ms=median * 1.025,
        round_medians_ms=rounds,
    )


def _half_width(p: float, n: int) -> float:
    return 1.96 * math.sqrt(max(p * (1 - p), 1e-4) / n)


def _pair(value: float, half: float) -> list[float]:
    return [max(0.0, value - half), min(1.0, value + half)]


def accuracy_at(candidate: Candidate, epochs: int, rng: random.Random) -> float:
    """Validation accuracy of ``candidate`` after ``epochs`` epochs (before group effects)."""
    return (BASE_ACCURACY[candidate.backbone] + 0.04 * math.log2(candidate.resolution / 64) / math.log2(224 / 64)
            + 0.03 * candidate.width - 0.15 * candidate.prune_ratio ** 2 - QUANT_ACCURACY_LOSS[candidate.quant]
            - 0.10 * (1 / epochs - 1 / TOP_EPOCHS) - METHOD_ACCURACY_COST[candidate.fairness_method]
            + rng.uniform(-0.01, 0.01))


def per_group_at(candidate: Candidate, accuracy: float, rng: random.Random) -> dict[str, float]:
    """Per-group accuracy around ``accuracy``: the minority group trails by a gap the recipe narrows."""
    gap = (0.14 - 0.05 * candidate.loss.arcface - 0.04 * candidate.loss.kd) * METHOD_GAP[candidate.fairness_method]
    gap = max(0.01, gap + rng.uniform(-0.01, 0.01))
    return {"light": min(0.99, accuracy + 0.02), "medium": min(0.99, accuracy), MINORITY: max(0.05, accuracy - gap)}


def _confusion(accuracy: float) -> list[list[int]]:
    matrix = []
    names = list(CLASS_COUNTS)
    for index, name in enumerate(names):
        total = CLASS_COUNTS[name]
        right = round(total * accuracy)
        wrong = total - right
        row = [0] * len(names)
        row[index] = right
        row[(index + 1) % len(names)] = wrong // 2
        row[(index + 2) % len(names)] = wrong - wrong // 2
        matrix.append(row)
    return matrix


def _fairness(per_group: dict[str, float]) -> tuple[FairnessFigures, dict[str, list[float]]]:
    spd = esfair_spd(per_group, MINORITY)
    minority_half = _half_width(per_group[MINORITY], GROUP_COUNTS[MINORITY])
    spd_half = minority_half * (len(per_group) - 1) / len(per_group)
    figures = FairnessFigures(
        minority_group=MINORITY, spd=spd, fairness_part=esfair_fairness_part(spd),
        worst_group_accuracy=min(per_group.values()), accuracy_gap=max(per_group.values()) - min(per_group.values()),
        equalized_odds_difference=(max(per_group.values()) - min(per_group.values())) * 0.8,
    )
    intervals = {
        "fairness.spd": [max(0.0, spd - spd_half), spd + spd_half],
        "fairness.fairness_part": [esfair_fairness_part(spd + spd_half),
                                   esfair_fairness_part(max(0.0, spd - spd_half))],
        "fairness.worst_group_accuracy": _pair(figures.worst_group_accuracy, minority_half),
    }
    intervals.update({f"per_group_accuracy.{g}": _pair(a, _half_width(a, GROUP_COUNTS[g]))
                      for g, a in per_group.items()})
    return figures, intervals


def make_metrics(candidate: Candidate, task: Task, *, epochs: int, per_group: dict[str, float] | None,
                 accuracy: float, latency: LatencyResult, artifact: str, sha256: str, grouped: bool) -> Metrics:
    """A ``Metrics`` record with the task's scores and 95 % intervals (groups only when ``grouped``)."""
    total = sum(GROUP_COUNTS.values())
    fairness, intervals = (None, {})
    if grouped and per_group:
        accuracy = sum(per_group[g] * n for g, n in GROUP_COUNTS.items()) / total
        fairness, intervals = _fairness(per_group)
    intervals["accuracy"] = _pair(accuracy, _half_width(accuracy, total))
    size = int(4e6 * candidate.width ** 2 * (1 - candidate.prune_ratio) * (0.25 if "int8" in candidate.quant else 1))
    metrics = Metrics(
        accuracy=accuracy, per_group_accuracy=dict(per_group or {}) if grouped else {},
        group_counts=dict(GROUP_COUNTS) if grouped else {}, fairness=fairness, scores={},
        confusion_matrix=_confusion(accuracy), class_names=list(CLASS_COUNTS), latency=latency, size_bytes=size,
        params=int(1.5e6 * candidate.width ** 2), macs=int(5e7 * (candidate.resolution / 224) ** 2),
        artifact_path=artifact, artifact_sha256=sha256,
        fingerprint=hashlib.sha256(candidate.describe().encode()).hexdigest()[:16],
        stage_seconds=stage_seconds(epochs), intervals=intervals, eval_batch=1, epochs=epochs,
    )
    metrics.scores = task.score_values(metrics.to_dict())
    return metrics


def stage_seconds(epochs: int, screen: bool = False) -> dict[str, float]:
    """Wall-clock of a rung's stages."""
    stages = {"screen": 2.4} if screen else {}
    stages.update({"train": 10.5 * epochs, "export_quantize": 0.8, "evaluate": 0.6, "latency": 0.4})
    return stages


def legacy_latency(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a ``LatencyResult.to_dict()``) as hwsearch stored it before rounds and sources existed."""
    new = ("source", "under_load", "rounds", "ci_low_ms", "ci_high_ms", "windows", "round_medians_ms")
    return {k: v for k, v in data.items() if k not in new}


def legacy_metrics(data: dict[str, Any], esfair: float) -> dict[str, Any]:
    """``data`` (a ``Metrics.to_dict()``) as hwsearch stored it before scores, intervals and rounds existed."""
    old = {k: v for k, v in data.items() if k not in ("scores", "intervals", "eval_batch", "epochs")}
    old["esfair_score"] = esfair
    old["latency"] = legacy_latency(data["latency"])
    return old
