"""One trial, in DESIGN.md's order: cheap latency screening first, then train, prune, export,
quantize, and evaluate the artifact that would ship.

1. Build the architecture, reparameterize (MobileOne), prune uniformly (shapes do not depend on
   weights), export, quantize, fingerprint the graph.
2. Latency from the cache or the backend; over the latency or size budget the candidate stops here
   (infeasible), having cost seconds.
3. Train with the loss mix (KD teacher from the study's cache), EMA when asked; reparameterize;
   prune by magnitude on the trained weights to the same shapes; fine-tune.
4. Export and quantize (static int8 calibrated on training images).
5. Evaluate the ONNX artifact with onnxruntime on the validation split.
6. Latency of the final artifact (a cache hit when its fingerprint equals step 1's).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from evaluators.contracts import LatencyBackend, LatencyResult, LatencySettings, Metrics
from evaluators.latency.cache import LatencyCache
from evaluators.stages import StageClock
from spaces.candidate import Candidate
from spaces.task import Task

ARTIFACT_NAME = "model.onnx"


@dataclass
class TrialContext:
    """Everything a trial needs besides its Candidate; shared by the trials of one search.

    Attributes:
        dataset: The loaded ``evaluators.data`` image data set.
        task: The space's task with the effective budgets (objectives, budgets, score).
        latency_backend: Where latency is measured.
        latency_settings: How it is measured.
        latency_cache: Cache keyed by graph fingerprint (``None`` disables it).
        device: Torch device for training (``cpu`` or ``cuda``).
        seed: Seed of data order, initialisation and calibration.
        teacher: ``teacher(candidate) -> (model, resolution)`` for KD, or ``None`` (KD disabled).
        minority_group: Group ESFair's SPD compares with (``None``: the smallest group).
        calibration_images: Training images used to calibrate static int8 quantization.
        eval_threads: onnxruntime threads for evaluating accuracy.
    """

    dataset: Any
    task: Task
    latency_backend: LatencyBackend
    latency_settings: LatencySettings
    latency_cache: LatencyCache | None
    device: str = "cpu"
    seed: int = 0
    teacher: Callable[[Candidate], tuple[Any, int]] | None = None
    minority_group: str | None = None
    calibration_images: int = 64
    eval_threads: int = 1

    @property
    def num_classes(self) -> int:
        """Number of classes of the data set."""
        return len(self.dataset.class_names)


@dataclass
class ScreenResult:
    """Latency screening of a candidate's architecture (untrained weights, same graph)."""

    fingerprint: str
    latency: LatencyResult
    size_bytes: int
    violations: list[float]
    seconds: float

    @property
    def feasible(self) -> bool:
        """True when every constraint value is <= 0."""
        return all(v <= 0 for v in self.violations)

    def reason(self, budget_ms: float | None, size_budget_mb: float | None) -> str:
        """Why the candidate is infeasible ('' when feasible)."""
        reasons = []
        if self.violations[0] > 0:
            reasons.append(f"latency {self.latency.median_ms:.2f} ms > budget {budget_ms:g} ms")
        if len(self.violations) > 1 and self.violations[1] > 0:
            reasons.append(f"size {self.size_bytes / 1e6:.2f} MB > budget {size_budget_mb:g} MB")
        return "; ".join(reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record (stored as the trial's ``screen`` attribute)."""
        return {"fingerprint": self.fingerprint, "latency": self.latency.to_dict(),
                "size_bytes": self.size_bytes, "violations": self.violations, "seconds": self.seconds}


@dataclass
class TrialOutcome:
    """What a trial produced: its screening, and metrics when it was trained."""

    screen: ScreenResult
    metrics: Metrics | None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    screen_fingerprint_matched: bool | None = None


def input_shape(candidate: Candidate) -> tuple[int, int, int, int]:
    """NCHW shape of one input image for ``candidate``."""
    return (1, 3, candidate.resolution, candidate.resolution)


def calibration_batches(dataset: Any, resolution: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` training images (seeded choice), preprocessed, in batches of 8."""
    train = dataset.splits["train"]
    arrays = train.arrays(resolution)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(arrays), size=min(count, len(arrays)), replace=False)
    chosen = arrays[np.sort(idx)]
    return [chosen[i:i + 8] for i in range(0, len(chosen), 8)]


def compressed_architecture(candidate: Candidate, num_classes: int, seed: int) -> Any:
    """The candidate's architecture with untrained weights, reparameterized and pruned."""
    import torch

    from evaluators.models import build_model, prepare_for_export
    from evaluators.pruning import prune_uniform

    torch.manual_seed(seed)
    model = prepare_for_export(build_model(candidate.backbone, candidate.width, num_classes))
    if candidate.prune_ratio > 0:
        example = torch.zeros(input_shape(candidate))
        model = prune_uniform(model, candidate.prune_ratio, example)
    return model.eval()


def write_artifact(model: Any, candidate: Candidate, out_dir: Path, calibration: list[np.ndarray]) -> Path:
    """Export ``model`` to ONNX and apply the candidate's quantization: ``out_dir/model.onnx``."""
    from evaluators.export import export_onnx
    from evaluators.models import prepare_for_export
    from evaluators.quantization import quantize

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(prepare_for_export(model), out_dir / "fp32.onnx", candidate.resolution)
    artifact = quantize(fp32, out_dir / ARTIFACT_NAME, candidate.quant,
                        calibration if candidate.quant == "int8_static" else None)
    if fp32 != artifact:
        fp32.unlink(missing_ok=True)
    return artifact


def measure_latency(artifact: Path, candidate: Candidate, ctx: TrialContext) -> tuple[str, LatencyResult]:
    """Graph fingerprint of ``artifact`` and its latency (from the cache when it is there)."""
    from evaluators.fingerprint import graph_fingerprint

    fingerprint = graph_fingerprint(artifact)
    backend, settings = ctx.latency_backend, ctx.latency_settings
    if ctx.latency_cache is not None:
        cached = ctx.latency_cache.get(fingerprint, backend.device_tag, settings)
        if cached is not None:
            return fingerprint, cached
    result = backend.measure(artifact, input_shape(candidate), settings)
    if ctx.latency_cache is not None:
        result = ctx.latency_cache.put(fingerprint, settings, result)
    return fingerprint, result


def screen(candidate: Candidate, ctx: TrialContext, work_dir: Path) -> ScreenResult:
    """Latency and size of the candidate's compressed, quantized graph, before any training."""
    import time

    start = time.perf_counter()
    model = compressed_architecture(candidate, ctx.num_classes, ctx.seed)
    calibration = calibration_batches(ctx.dataset, candidate.resolution, 16, ctx.seed)
    artifact = write_artifact(model, candidate, work_dir, calibration)
    fingerprint, latency = measure_latency(artifact, candidate, ctx)
    size = artifact.stat().st_size
    violations = ctx.task.constraint_violations(
        {"latency": {"median_ms": latency.median_ms}, "size_bytes": size}
    )
    return ScreenResult(fingerprint, latency, size, violations, time.perf_counter() - start)


def train_candidate(candidate: Candidate, ctx: TrialContext, clock: StageClock) -> Any:
    import torch

    from evaluators.data import iterate_batches
    from evaluators.fairness import fairness_training
    from evaluators.models import build_model, features_and_logits, prepare_for_export
    from evaluators.pruning import prune_uniform
    from evaluators.training import finetune_mix, train

    teacher, teacher_res = None, None
    if candidate.loss.kd > 0:
        if ctx.teacher is None:
            raise ValueError("the candidate asks for knowledge distillation but no teacher is configured")
        with clock("teacher"):
            teacher, teacher_res = ctx.teacher(candidate)
    train_split = ctx.dataset.splits["train"]
    fair = fairness_training(candidate.fairness_method, train_split.labels, train_split.groups,
                             num_groups=len(ctx.dataset.group_names), num_classes=ctx.num_classes)

    def batches(epoch: int):  # type: ignore[no-untyped-def]
        return iterate_batches(train_split, candidate.resolution, candidate.batch_size, shuffle=True,
                               augment=True, seed=ctx.seed * 1000 + epoch, sampler=fair.sampler)

    steps = -(-len(train_split.labels) // candidate.batch_size)
    with clock("train"):
        torch.manual_seed(ctx.seed)
        model = build_model(candidate.backbone, candidate.width, ctx.num_classes,
                            pretrained=candidate.pretrained)
        result = train(model, batches, loss_mix=candidate.loss, epochs=candidate.epochs, lr=candidate.lr,
                       device=ctx.device, teacher=teacher, teacher_resolution=teacher_res, ema=candidate.ema,
                       steps_per_epoch=steps, features_and_logits=features_and_logits, seed=ctx.seed,
                       group_weighting=fair.weighting)
        model = result.model
    if candidate.prune_ratio > 0:
        with clock("prune_finetune"):
            model = prepare_for_export(model.cpu())
            example = torch.zeros(input_shape(candidate))
            model = prune_uniform(model, candidate.prune_ratio, example)
            if candidate.finetune_epochs > 0:
                model = train(model, batches, loss_mix=finetune_mix(candidate.loss),
                              epochs=candidate.finetune_epochs, lr=candidate.lr / 3, device=ctx.device,
                              teacher=teacher, teacher_resolution=teacher_res, steps_per_epoch=steps,
                              seed=ctx.seed, group_weighting=fair.weighting).model
    return model.cpu().eval()


def run_trial(
    candidate: Candidate, ctx: TrialContext, trial_dir: Path, *,
    on_stage: Callable[[str], None] | None = None,
) -> TrialOutcome:
    """Run one trial; writes ``trial_dir/model.onnx`` for feasible candidates.

    Invariant: ``outcome.metrics`` is None exactly when the candidate failed screening; otherwise
    its accuracy figures come from running ``trial_dir/model.onnx`` on the validation split.
    """
    from evaluators.complexity import count_macs, count_params
    from evaluators.evaluate import evaluate_artifact
    from evaluators.hashing import sha256_file
    from spaces.scores import esfair_score

    clock = StageClock(on_stage)
    screen_dir = trial_dir / "screen"
    with clock("screen"):
        screened = screen(candidate, ctx, screen_dir)
    shutil.rmtree(screen_dir, ignore_errors=True)
    if not screened.feasible:
        return TrialOutcome(screened, None, dict(clock.seconds))
    model = train_candidate(candidate, ctx, clock)
    with clock("export_quantize"):
        calibration = calibration_batches(ctx.dataset, candidate.resolution, ctx.calibration_images, ctx.seed)
        artifact = write_artifact(model, candidate, trial_dir, calibration)
        params, macs = count_params(model), count_macs(model, candidate.resolution)
    with clock("evaluate"):
        figures = evaluate_artifact(artifact, ctx.dataset, "val", candidate.resolution,
                                    minority_group=ctx.minority_group, threads=ctx.eval_threads)
    with clock("latency"):
        fingerprint, latency = measure_latency(artifact, candidate, ctx)
    budget = ctx.task.latency_budget_ms or 1.0
    metrics = Metrics(
        accuracy=figures.accuracy, per_group_accuracy=figures.per_group_accuracy,
        group_counts=figures.group_counts, fairness=figures.fairness,
        esfair_score=esfair_score(figures.accuracy, figures.fairness.spd, latency.median_ms, budget,
                                  ctx.task.latency_score_weight),
        confusion_matrix=figures.confusion_matrix, class_names=list(ctx.dataset.class_names),
        latency=latency, size_bytes=artifact.stat().st_size, params=params, macs=macs,
        artifact_path=str(artifact), artifact_sha256=sha256_file(artifact), fingerprint=fingerprint,
        split="val", stage_seconds=dict(clock.seconds),
    )
    return TrialOutcome(screened, metrics, dict(clock.seconds), fingerprint == screened.fingerprint)
