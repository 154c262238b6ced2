"""Seed an Optuna RDB storage with hwsearch-like studies, written the way the launcher stores them.

Trials are added directly (``study.add_trial(create_trial(...))``), with params and
distributions produced by running the real ``esfair`` space function on a recording trial, and
user attributes laid out per :mod:`search.attrs` from real ``Metrics`` / ``LatencyResult``
records. Figures come from a small deterministic model (bigger, sharper models are slower and
more accurate; ArcFace and KD narrow the minority group's gap), not from training.

What one study holds (``esfair-demo``, FAKE latency): the two feasible baselines and one
over-budget baseline, feasible trained trials, over-budget trials (``trained=False``, positive
``constraint``, COMPLETE with the launcher's placeholder values 0/0/latency, plus one PRUNED
without values), one trained trial whose final artifact measured over the budget,
two FAIL trials with a ``fail_reason``, one RUNNING trial, a real artifact file for one trial,
and test-split metrics for one Pareto trial. ``esfair-local`` is a small study with measured
(non-fake) local latency.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from evaluators.contracts import FairnessFigures, LatencyResult, Metrics
from search import attrs
from spaces import Candidate, get_space
from spaces.esfair import ESFAIR_TASK, esfair_baselines
from spaces.scores import esfair_fairness_part, esfair_score, esfair_spd

GROUP_COUNTS = {"light": 300, "medium": 200, "dark": 60}
MINORITY = "dark"
CLASS_COUNTS = {"nevus": 250, "melanoma": 170, "keratosis": 140}
BASE_LATENCY_MS = {
    "mobilenetv3_small": 1.0, "mobilenetv3_large": 3.0, "mobileone_s0": 2.7,
    "mobilenetv2": 6.5, "efficientnet_lite0": 7.5, "lcnet": 0.9,
}
BASE_ACCURACY = {
    "mobilenetv3_small": 0.76, "mobilenetv3_large": 0.82, "mobileone_s0": 0.83,
    "mobilenetv2": 0.81, "efficientnet_lite0": 0.84, "lcnet": 0.72,
}
QUANT_LATENCY = {"fp32": 1.0, "fp16": 1.05, "int8_dynamic": 4.0, "int8_static": 1.4}
QUANT_ACCURACY_LOSS = {"fp32": 0.0, "fp16": 0.0, "int8_dynamic": 0.01, "int8_static": 0.015}
FAKE_DEVICE = "FAKE backend (not a real device)"
LOCAL_DEVICE = "Intel Xeon Platinum 8480 (x86_64, 2 cores)"


class _Recorder:
    """A ``TrialLike`` that answers the space's suggestions and records their distributions.

    With ``fixed`` params it returns those values (an enqueued baseline); otherwise it draws
    uniformly from each distribution with ``rng`` (a random-sampler trial).
    """

    def __init__(self, rng: random.Random, fixed: dict[str, Any] | None = None) -> None:
        self.rng = rng
        self.fixed = fixed or {}
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def _take(self, name: str, distribution: BaseDistribution, draw: Any) -> Any:
        value = self.fixed.get(name, draw)
        self.params[name] = value
        self.distributions[name] = distribution
        return value

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._take(name, CategoricalDistribution(list(choices)), self.rng.choice(list(choices)))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if step:
            draw = round(low + step * self.rng.randint(0, round((high - low) / step)), 10)
        elif log:
            draw = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        else:
            draw = self.rng.uniform(low, high)
        return float(self._take(name, FloatDistribution(low, high, step=step, log=log), draw))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._take(name, IntDistribution(low, high, step=step, log=log), self.rng.randint(low, high)))


@dataclass
class SeededStudy:
    """What :func:`seed_storage` wrote for one study (trial numbers by kind)."""

    name: str
    feasible: list[int] = field(default_factory=list)
    infeasible: list[int] = field(default_factory=list)
    trained_infeasible: list[int] = field(default_factory=list)
    baselines: dict[str, int] = field(default_factory=dict)
    failed: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)
    artifact_trial: int | None = None
    artifact_path: Path | None = None
    test_metrics_trial: int | None = None


def latency_ms(candidate: Candidate) -> float:
    """The seed's latency model (ms)."""
    return 0.15 + (BASE_LATENCY_MS[candidate.backbone] * candidate.width ** 1.5 * (candidate.resolution / 224) ** 2
            * (1 - candidate.prune_ratio) ** 1.5 * QUANT_LATENCY[candidate.quant])


def _latency(candidate: Candidate, fake: bool, rng: random.Random) -> LatencyResult:
    median = latency_ms(candidate) * (1 + rng.uniform(-0.03, 0.03))
    return LatencyResult(
        median_ms=median, p90_ms=median * 1.06, mean_ms=median * 1.02, std_ms=median * 0.03,
        min_ms=median * 0.95, n=40, device=FAKE_DEVICE if fake else LOCAL_DEVICE,
        device_tag="fake" if fake else "local", threads=1, backend="fake" if fake else "local",
        runtime="none (fake)" if fake else "onnxruntime 1.22.0", fake=fake,
    )


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


def _metrics(candidate: Candidate, latency: LatencyResult, artifact: str, rng: random.Random) -> Metrics:
    base = (BASE_ACCURACY[candidate.backbone] + 0.04 * math.log2(candidate.resolution / 64) / math.log2(224 / 64)
            + 0.03 * candidate.width - 0.15 * candidate.prune_ratio ** 2 - QUANT_ACCURACY_LOSS[candidate.quant]
            + rng.uniform(-0.01, 0.01))
    gap = max(0.01, 0.14 - 0.05 * candidate.loss.arcface - 0.04 * candidate.loss.kd + rng.uniform(-0.01, 0.01))
    per_group = {"light": min(0.99, base + 0.02), "medium": min(0.99, base), MINORITY: max(0.05, base - gap)}
    total = sum(GROUP_COUNTS.values())
    accuracy = sum(per_group[g] * n for g, n in GROUP_COUNTS.items()) / total
    spd = esfair_spd(per_group, MINORITY)
    size = int(4e6 * candidate.width ** 2 * (1 - candidate.prune_ratio) * (0.25 if "int8" in candidate.quant else 1))
    return Metrics(
        accuracy=accuracy, per_group_accuracy=per_group, group_counts=dict(GROUP_COUNTS),
        fairness=FairnessFigures(
            minority_group=MINORITY, spd=spd, fairness_part=esfair_fairness_part(spd),
            worst_group_accuracy=min(per_group.values()),
            accuracy_gap=max(per_group.values()) - min(per_group.values()),
            equalized_odds_difference=gap * 0.8,
        ),
        esfair_score=esfair_score(accuracy, spd, latency.median_ms, ESFAIR_TASK.latency_budget_ms or 1.0),
        confusion_matrix=_confusion(accuracy), class_names=list(CLASS_COUNTS), latency=latency,
        size_bytes=size, params=int(1.5e6 * candidate.width ** 2), macs=int(5e7 * (candidate.resolution / 224) ** 2),
        artifact_path=artifact, artifact_sha256=hashlib.sha256(artifact.encode()).hexdigest(),
        fingerprint=hashlib.sha256(candidate.describe().encode()).hexdigest()[:16],
        stage_seconds={"build": 1.2, "export": 0.8, "quantize": 0.5, "latency": 2.0, "train": 95.0,
                       "evaluate": 3.1},
    )


def _task_attr() -> dict[str, Any]:
    return {
        "objectives": [{"name": o.name, "metric": o.metric, "direction": o.direction} for o in ESFAIR_TASK.objectives],
        "latency_budget_ms": ESFAIR_TASK.latency_budget_ms,
        "size_budget_mb": ESFAIR_TASK.size_budget_mb,
        "latency_score_weight": ESFAIR_TASK.latency_score_weight,
    }


class _Writer:
    """Adds trials to one study, numbering them as Optuna will."""

    def __init__(self, study: optuna.Study, out_dir: Path, fake: bool, seed: int) -> None:
        self.study = study
        self.out_dir = out_dir
        self.fake = fake
        self.rng = random.Random(seed)
        self.seeded = SeededStudy(study.study_name)
        self.trained_values: dict[int, list[float]] = {}

    @property
    def number(self) -> int:
        return len(self.study.get_trials(deepcopy=False))

    def _sample(self, fixed: dict[str, Any] | None = None) -> tuple[Candidate, _Recorder]:
        recorder = _Recorder(self.rng, fixed)
        return get_space("esfair").sample(recorder), recorder

    def _common(self, candidate: Candidate) -> dict[str, Any]:
        return {attrs.CANDIDATE: candidate.to_params(), attrs.CANDIDATE_TEXT: candidate.describe(),
                attrs.WORKER: {"host": "seed-host", "pid": 4242}}

    def add(self, fixed: dict[str, Any] | None = None, baseline: str = "", state: TrialState = TrialState.COMPLETE,
            write_artifact: bool = False, final_over_budget: bool = False) -> int:
        """Add one trial; ``final_over_budget`` trains it, then its artifact measures over the budget."""
        candidate, recorder = self._sample(fixed)
        number = self.number
        latency = _latency(candidate, self.fake, self.rng)
        user = self._common(candidate)
        if baseline:
            user[attrs.BASELINE] = baseline
        budget = ESFAIR_TASK.latency_budget_ms or math.inf
        user[attrs.SCREEN] = {"fingerprint": f"fp{number:04d}", "latency": latency.to_dict(), "size_bytes": 1_000_000,
                              "violations": [latency.median_ms - budget, -1.0], "seconds": 2.5}
        values: list[float] | None = None
        if state == TrialState.FAIL:
            user[attrs.FAIL_REASON] = "RuntimeError: DataLoader worker exited unexpectedly"
            user[attrs.STAGE_SECONDS] = {"build": 1.1, "export": 0.7, "train": 12.0}
            self.seeded.failed.append(number)
        elif state == TrialState.RUNNING:
            self.seeded.running.append(number)
        elif latency.median_ms > budget:
            user.update({
                attrs.LATENCY: latency.to_dict(), attrs.FEASIBLE: False, attrs.TRAINED: False,
                attrs.INFEASIBLE_REASON: f"median latency {latency.median_ms:.2f} ms over the {budget:g} ms budget",
                attrs.CONSTRAINT: [latency.median_ms - budget, -1.0],
                attrs.STAGE_SECONDS: {"build": 1.0, "export": 0.6, "quantize": 0.4, "latency": 2.0},
            })
            values = [0.0, 0.0, latency.median_ms] if state == TrialState.COMPLETE else None
            self.seeded.infeasible.append(number)
        else:
            artifact = self.out_dir / f"trial_{number}" / "model.onnx"
            final = latency
            if final_over_budget:
                final = dataclasses.replace(latency, median_ms=budget * 1.2, p90_ms=budget * 1.3, mean_ms=budget * 1.21)
            metrics = _metrics(candidate, final, str(artifact), self.rng)
            if write_artifact:
                artifact.parent.mkdir(parents=True, exist_ok=True)
                payload = f"seeded artifact of trial {number}: {candidate.describe()}".encode()
                artifact.write_bytes(payload)
                metrics.artifact_sha256 = hashlib.sha256(payload).hexdigest()
                self.seeded.artifact_trial, self.seeded.artifact_path = number, artifact
            data = metrics.to_dict()
            values = ESFAIR_TASK.objective_values(data)
            violations = ESFAIR_TASK.constraint_violations(data)
            feasible = all(v <= 0 for v in violations)
            user.update({
                attrs.LATENCY: final.to_dict(), attrs.FEASIBLE: feasible, attrs.TRAINED: True, attrs.METRICS: data,
                attrs.CONSTRAINT: violations, attrs.STAGE_SECONDS: metrics.stage_seconds,
                attrs.ARTIFACT_PATH: str(artifact), attrs.ARTIFACT_SHA256: metrics.artifact_sha256,
            })
            if feasible:
                self.seeded.feasible.append(number)
                self.trained_values[number] = values
            else:
                user[attrs.INFEASIBLE_REASON] = f"final artifact over budget: latency {final.median_ms:.2f} ms"
                self.seeded.trained_infeasible.append(number)
        if baseline:
            self.seeded.baselines[baseline] = number
        self.study.add_trial(create_trial(
            state=state, values=values, params=recorder.params, distributions=recorder.distributions,
            user_attrs=user,
        ))
        return number


def _create(url: str, name: str, out_dir: Path, fake: bool) -> optuna.Study:
    study = optuna.create_study(storage=url, study_name=name, directions=ESFAIR_TASK.directions)
    study.set_user_attr(attrs.STUDY_SPACE, "esfair")
    study.set_user_attr(attrs.STUDY_TASK, _task_attr())
    study.set_user_attr(attrs.STUDY_DEVICE_TAG, "fake" if fake else "local")
    study.set_user_attr(attrs.STUDY_LATENCY_BACKEND, "fake" if fake else "local")
    study.set_user_attr(attrs.STUDY_DATA, "embedded:esfair (seed 0, 560 validation images)")
    study.set_user_attr(attrs.STUDY_OUT_DIR, str(out_dir))
    return study


def seed_demo(url: str, out_root: Path, name: str = "esfair-demo", search_trials: int = 16,
              seed: int = 0) -> SeededStudy:
    """Write the ``esfair-demo`` study (FAKE latency) described in the module docstring."""
    out_dir = out_root / name
    writer = _Writer(_create(url, name, out_dir, fake=True), out_dir, fake=True, seed=seed)
    for recipe, candidate in esfair_baselines().items():
        writer.add(fixed=candidate.to_params(), baseline=recipe)
    for _ in range(search_trials):
        writer.add(write_artifact=writer.seeded.artifact_trial is None)
    over_budget = {"width": 1.0, "resolution": 224, "quant": "int8_dynamic", "prune_ratio": 0.0}
    writer.add(fixed={"backbone": "efficientnet_lite0", **over_budget})
    writer.add(fixed={"backbone": "mobilenetv2", **over_budget}, state=TrialState.PRUNED)
    writer.add(fixed={"backbone": "mobilenetv3_small", "width": 0.5, "resolution": 128, "quant": "fp32"},
               final_over_budget=True)
    writer.add(state=TrialState.FAIL)
    writer.add(state=TrialState.FAIL)
    writer.add(state=TrialState.RUNNING)
    if writer.seeded.artifact_trial is None:
        writer.add(fixed={"backbone": "lcnet", "width": 0.5, "resolution": 96, "quant": "fp32", "prune_ratio": 0.0},
                   write_artifact=True)
    best = max(writer.trained_values, key=lambda n: writer.trained_values[n][0])
    test = dict(writer.study.trials[best].user_attrs[attrs.METRICS], split="test")
    test["accuracy"] = float(test["accuracy"]) - 0.01
    writer.study.set_user_attr(attrs.test_metrics_key(best), test)
    writer.seeded.test_metrics_trial = best
    return writer.seeded


def seed_local(url: str, out_root: Path, name: str = "esfair-local", trials: int = 5, seed: int = 1) -> SeededStudy:
    """Write the small ``esfair-local`` study with measured (non-fake) local latency."""
    out_dir = out_root / name
    writer = _Writer(_create(url, name, out_dir, fake=False), out_dir, fake=False, seed=seed)
    for _ in range(trials):
        writer.add(fixed={"quant": "fp32"})
    return writer.seeded


def seed_storage(url: str, out_root: Path, prefix: str = "") -> dict[str, SeededStudy]:
    """Seed both studies into ``url``, names starting with ``prefix``; returns them by study name."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    demo = seed_demo(url, out_root, name=f"{prefix}esfair-demo")
    local = seed_local(url, out_root, name=f"{prefix}esfair-local")
    return {demo.name: demo, local.name: local}
