"""One trial in DESIGN.md's order, as rungs of fidelity: cheap latency screening first, then
training in rungs (each continuing from the last rung's checkpoint), and after every rung the
artifact that would ship is exported, quantized and evaluated.

A rung job (:class:`RungJob`) is the unit a search schedules:

1. (rung 0 only) Screen: build the architecture, reparameterize (MobileOne), prune uniformly
   (shapes do not depend on weights), export, quantize, fingerprint; latency and size from the
   cache or the backend. Over a budget the candidate stops here, having cost seconds.
2. Train up to the rung's epochs: from scratch (or warm-started weights) at rung 0, from the
   previous rung's checkpoint afterwards (loaded with ``weights_only=True``, sha256 checked).
   A first look (``RungJob.epoch_share < 1``, large training splits) trains that share of each
   epoch's steps and counts as no complete epoch. KD joins once the job allows it (the teacher is trained only when a KD candidate first
   needs it). A candidate with a pruning ratio is pruned by magnitude on its trained weights
   after its first rung and fine-tuned; later rungs train the pruned model.
3. Save the rung checkpoint (``rung_<r>.pt``), export and quantize (static int8 calibrated on
   training images), and evaluate the ONNX artifact with onnxruntime on the validation split at
   the deployment batch size.
4. Latency of the artifact. Below the top rung: the screening figure of the same graph
   fingerprint from the cache (it ranks candidates for promotion). At the top rung: the shipped
   file itself is measured (rounds of fresh sessions until the median's CI is within the target),
   keyed in the cache by its structure *and* its bytes. Weight values change speed: fp16 LCNets
   ran 24 % faster trained than their untrained screening graphs of the same fingerprint, so a
   shipped figure never borrows the screening graph's rounds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import threading
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from evaluators.compute_lock import HOST_LOCK, Windows
from evaluators.contracts import LatencyBackend, LatencyResult, LatencySettings, Metrics
from evaluators.latency.cache import LatencyCache
from evaluators.stages import StageClock
from spaces.candidate import Candidate
from spaces.task import Task

ARTIFACT_NAME = "model.onnx"
CHECKPOINT_FORMAT = 1
CONTINUE_LR_FACTOR = 1.0
"""Peak learning rate of a continuation rung, relative to the candidate's (a warm restart)."""


class TrialCancelled(Exception):
    """Raised inside a training step when the search asked the trial to stop."""


@dataclass
class TrialContext:
    """Everything a trial needs besides its Candidate; shared by the trials of one search.

    Attributes:
        dataset: The loaded ``evaluators.data`` image data set.
        task: The space's task with the effective budgets (objectives, constraints, scores).
        latency_backend: Where latency is measured.
        latency_settings: How it is measured.
        latency_cache: Cache keyed by graph fingerprint (``None`` disables it).
        device: Torch device for training (``cpu`` or ``cuda``).
        seed: Seed of data order, initialisation and calibration.
        teacher: ``teacher(candidate, epochs) -> (model, resolution, validation accuracy)``: the
            KD teacher trained for ``epochs`` epochs (trained once, then cached), or ``None`` (KD
            disabled).
        minority_group: Group ESFair's SPD compares with (``None``: the smallest group).
        calibration_images: Training images used to calibrate static int8 quantization.
        eval_threads: onnxruntime threads for evaluating accuracy.
        eval_batch: Deployment batch size the artifact is evaluated at.
        weights: Warm-start weights (``evaluators.warm_start.WeightsSource``), or ``None``.
        cancel: Set to stop every running trial at its next training step.
    """

    dataset: Any
    task: Task
    latency_backend: LatencyBackend
    latency_settings: LatencySettings
    latency_cache: LatencyCache | None
    device: str = "cpu"
    seed: int = 0
    teacher: Callable[[Candidate, int], tuple[Any, int, float]] | None = None
    minority_group: str | None = None
    calibration_images: int = 64
    eval_threads: int = 1
    eval_batch: int = 1
    weights: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def num_classes(self) -> int:
        """Number of classes of the data set."""
        return len(self.dataset.class_names)

    def step_context(self, windows: Windows) -> Callable[[], Any]:
        """The context entered around every training step: cancellation check, then the host lock."""

        @contextlib.contextmanager
        def step() -> Iterator[None]:
            if self.cancel.is_set():
                raise TrialCancelled("the search was stopped")
            with HOST_LOCK.training_step(windows):
                yield

        return step


@dataclass
class ScreenResult:
    """Latency screening of a candidate's architecture (untrained weights, same graph).

    Attributes:
        fingerprint: Graph fingerprint of the screened artifact.
        latency: Its latency.
        size_bytes: Its size on disk.
        params: Parameters of the compressed architecture.
        macs: Its multiply-accumulates per image.
        violations: The constraints the screen can check, by name (<= 0 met).
        seconds: Wall-clock of the screen.
    """

    fingerprint: str
    latency: LatencyResult
    size_bytes: int
    params: int
    macs: int
    violations: dict[str, float]
    seconds: float

    @property
    def feasible(self) -> bool:
        """True when every constraint the screen checked is met."""
        return all(v <= 0 for v in self.violations.values())

    def metrics(self) -> dict[str, Any]:
        """What the screen knows, in ``Metrics.to_dict()`` shape (latency, size, params, MACs)."""
        return {"latency": self.latency.to_dict(), "size_bytes": self.size_bytes, "params": self.params,
                "macs": self.macs}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record (stored as the trial's ``screen`` attribute)."""
        return {"fingerprint": self.fingerprint, "latency": self.latency.to_dict(), "size_bytes": self.size_bytes,
                "params": self.params, "macs": self.macs, "violations": self.violations, "seconds": self.seconds}


@dataclass(frozen=True)
class Checkpoint:
    """A rung checkpoint on disk: the weights a promoted candidate continues from.

    Attributes:
        path: The ``.pt`` file (a dict of tensors and numbers; ``torch.load(weights_only=True)``).
        sha256: Its sha256, checked before loading.
        rung: The rung that wrote it.
        epochs: Complete training epochs behind it (0 after a first look at a share of an epoch).
        pruned: Whether the weights are those of the pruned architecture.
    """

    path: str
    sha256: str
    rung: int
    epochs: int
    pruned: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Checkpoint":
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["path"]), str(data["sha256"]), int(data["rung"]), int(data["epochs"]), bool(data["pruned"]))


@dataclass(frozen=True)
class RungJob:
    """One unit of work of a trial.

    Attributes:
        rung: Rung index (0 = the first).
        epochs: Training epochs behind the model at the end of the rung (cumulative).
        final: This is the top rung: its figures are the trial's result (and the shipped file's
            own latency is measured).
        teacher_epochs: Epochs of the KD teacher this job may distil from (the search sizes it to
            its budget); 0: KD candidates train without distillation in this job.
        teacher_min_accuracy: The teacher is used only when its validation accuracy is above this
            (the search passes the best validation accuracy a candidate has reached: a teacher
            weaker than the students pulls them down).
        start: Checkpoint to continue from (``None``: a fresh model).
        screen: Screen the candidate first (rung 0 of a new trial).
        max_train_s: Most training seconds this rung may cost (a first rung of a multi-rung
            search); a probe of its first steps stops it when the projection is over
            (:mod:`evaluators.cost_probe`). ``None``: no limit.
        epoch_share: Share of each epoch's optimizer steps the rung trains, the fine-tune after
            pruning included: 1, or less for a *first look* at a large training split (the
            search's :func:`search.plan.first_look_share`). Invariant: ``0 < epoch_share <= 1``,
            and below 1 only for a rung from scratch; such a rung's checkpoint has 0 complete
            epochs behind it, so the next rung trains all of its epochs from the full
            learning rate.
    """

    rung: int
    epochs: int
    final: bool
    teacher_epochs: int = 0
    teacher_min_accuracy: float = 0.0
    start: Checkpoint | None = None
    screen: bool = False
    max_train_s: float | None = None
    epoch_share: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.epoch_share <= 1:
            raise ValueError(f"epoch_share {self.epoch_share} is not in (0, 1]")
        if self.epoch_share < 1 and self.start is not None:
            raise ValueError("only a rung from scratch trains a share of each epoch (a first look)")

    @property
    def epochs_behind(self) -> int:
        """Complete training epochs behind the model at the end of the rung (0 after a first look)."""
        return self.epochs if self.epoch_share >= 1 else 0

    @property
    def train_epochs(self) -> float:
        """Epochs' worth of optimizer steps of the rung's main training (the fine-tune not counted)."""
        start = self.start.epochs if self.start is not None else 0
        return (self.epochs - start) * self.epoch_share


def steps_of_share(steps_per_epoch: int, share: float) -> int:
    """Optimizer steps of ``share`` of an epoch of ``steps_per_epoch`` steps (at least one)."""
    return steps_per_epoch if share >= 1 else max(1, math.ceil(steps_per_epoch * share))


@dataclass
class RungOutcome:
    """What a rung job produced.

    Invariant: ``metrics`` is ``None`` exactly when the job stopped the candidate before it was
    trained: screened out (over a budget) or too costly (``too_costly`` set, its screen kept);
    otherwise its accuracy figures come from running the rung's ``model.onnx`` on the validation
    split, and ``checkpoint`` is the rung's checkpoint.

    Attributes:
        job: The job.
        screen: The screen (jobs with ``screen=True``).
        metrics: The rung's figures.
        checkpoint: The checkpoint the rung wrote.
        stage_seconds: Wall-clock of each stage.
        train_windows: Wall-clock intervals during which this job trained (held the cores shared).
        kd_applied: Whether distillation was part of the loss.
        screen_fingerprint_matched: Whether the artifact's graph equals the screened one.
        teacher_accuracy: The KD teacher's validation accuracy when this job consulted one (it
            was refused when ``kd_applied`` is False), else ``None``.
        too_costly: When the cost probe stopped the rung: ``projected_s``, ``limit_s`` and
            ``step_s`` (:class:`evaluators.cost_probe.TrainingTooCostly`); else ``None``.
        projected_train_s: The cost probe's projection of the rung's training seconds when it
            let the rung train (compare with ``stage_seconds``); else ``None``.
    """

    job: RungJob
    screen: ScreenResult | None
    metrics: Metrics | None
    checkpoint: Checkpoint | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    train_windows: list[list[float]] = field(default_factory=list)
    kd_applied: bool = False
    screen_fingerprint_matched: bool | None = None
    teacher_accuracy: float | None = None
    too_costly: dict[str, float] | None = None
    projected_train_s: float | None = None


def input_shape(candidate: Candidate) -> tuple[int, int, int, int]:
    """NCHW shape of one input image for ``candidate``."""
    return (1, 3, candidate.resolution, candidate.resolution)


def calibration_batches(dataset: Any, resolution: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` training images (seeded choice), preprocessed, in batches of 8."""
    from evaluators.data.preprocess import normalise

    pixels = dataset.splits["train"].pixels(resolution)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(pixels), size=min(count, len(pixels)), replace=False))
    chosen = normalise(pixels[idx])
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


def measure_latency(
    artifact: Path, candidate: Candidate, ctx: TrialContext, *, shipped_sha256: str | None = None,
) -> tuple[str, LatencyResult]:
    """Graph fingerprint of ``artifact`` and its latency.

    Without ``shipped_sha256`` the figure of the same fingerprint, backend, device and settings is
    reused from the cache (one graph structure, whatever its weights). With it (the sha256 of
    ``artifact``, which the caller has already computed) the figure is the file's own: cached
    under :func:`shipped_latency_key` (structure and bytes), measured in full when the file is new
    and given one fresh round when it was measured before (a resumed job that wrote the same
    bytes), so its ``of_artifact`` is True.
    """
    from evaluators.fingerprint import graph_fingerprint

    fingerprint = graph_fingerprint(artifact)
    shipped = shipped_sha256 is not None
    key = shipped_latency_key(fingerprint, shipped_sha256) if shipped_sha256 is not None else fingerprint
    backend, settings, cache = ctx.latency_backend, ctx.latency_settings, ctx.latency_cache
    cached = cache.get(key, backend.name, backend.device_tag, settings) if cache is not None else None
    if cached is not None and not shipped:
        return fingerprint, cached
    run_settings = dataclasses.replace(settings, min_rounds=1, max_rounds=1) if cached is not None else settings
    result = backend.measure(artifact, input_shape(candidate), run_settings)
    if cache is not None:
        result = cache.add(key, settings, result)
    return fingerprint, dataclasses.replace(result, of_artifact=shipped)


def shipped_latency_key(fingerprint: str, artifact_sha256: str) -> str:
    """Cache key of a shipped file's own latency: a sha256 of its graph fingerprint and its bytes.

    Invariant: never equal to a graph fingerprint, so a shipped figure and the screening figure
    of the same structure never share rounds.
    """
    import hashlib

    return hashlib.sha256(f"shipped:{fingerprint}:{artifact_sha256}".encode()).hexdigest()


def screen(candidate: Candidate, ctx: TrialContext, work_dir: Path) -> ScreenResult:
    """Latency, size and complexity of the candidate's compressed, quantized graph, before any training."""
    import time

    from evaluators.complexity import count_macs, count_params

    start = time.perf_counter()
    model = compressed_architecture(candidate, ctx.num_classes, ctx.seed)
    calibration = calibration_batches(ctx.dataset, candidate.resolution, 16, ctx.seed)
    artifact = write_artifact(model, candidate, work_dir, calibration)
    fingerprint, latency = measure_latency(artifact, candidate, ctx)
    size = artifact.stat().st_size
    params, macs = count_params(model), count_macs(model, candidate.resolution)
    known = {"latency": latency.to_dict(), "size_bytes": size, "params": params, "macs": macs}
    violations = ctx.task.screen_violations(known)
    return ScreenResult(fingerprint, latency, size, params, macs, violations, time.perf_counter() - start)


def _fresh_model(candidate: Candidate, ctx: TrialContext) -> Any:
    from evaluators.errors import HwsearchError
    from evaluators.models import BACKBONES, build_model

    weights = None
    if candidate.warm_start:
        variant = BACKBONES.get(candidate.backbone).variant(candidate.width)
        weights = ctx.weights.for_backbone(variant) if ctx.weights is not None else None
        if weights is None:
            raise HwsearchError(f"candidate {candidate.describe()} asks for a warm start, but this search has no "
                                f"pretrained weights for {variant or candidate.backbone} at width {candidate.width:g}",
                                "pass --pretrained PATH with that variant's weights, or drop warm_start")
    return build_model(candidate.backbone, candidate.width, ctx.num_classes, pretrained=candidate.pretrained,
                       weights=weights)


def _restore(checkpoint: Checkpoint, candidate: Candidate, ctx: TrialContext) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The model, loss state and fairness-method state saved in ``checkpoint`` (sha256 checked,
    ``weights_only=True``)."""
    import torch

    from evaluators.errors import HwsearchError
    from evaluators.hashing import sha256_file
    from evaluators.models import build_model

    path = Path(checkpoint.path)
    if not path.is_file() or sha256_file(path) != checkpoint.sha256:
        raise HwsearchError(f"rung checkpoint {path} is missing or does not match its recorded sha256",
                            "the trial cannot continue from it; its earlier figures are kept")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.pruned:
        model = compressed_architecture(candidate, ctx.num_classes, ctx.seed)
    else:
        model = build_model(candidate.backbone, candidate.width, ctx.num_classes)
    model.load_state_dict(state["model"], strict=True)
    return model.train(), dict(state.get("loss") or {}), dict(state.get("fairness") or {})


def _save_checkpoint(path: Path, model: Any, loss_state: dict[str, Any], *, rung: int, epochs: int,
                     pruned: bool, fairness: dict[str, Any] | None = None) -> Checkpoint:
    import torch

    from evaluators.files import atomic_write
    from evaluators.hashing import sha256_file

    state = {"format": CHECKPOINT_FORMAT, "rung": rung, "epochs": epochs, "pruned": pruned,
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "loss": loss_state,
             "fairness": fairness or {}}
    atomic_write(path, lambda handle: torch.save(state, handle))
    return Checkpoint(str(path), sha256_file(path), rung, epochs, pruned)


def _train_rung(
    candidate: Candidate, ctx: TrialContext, trial_dir: Path, job: RungJob, clock: StageClock, windows: Windows,
    probe: Any = None,
) -> tuple[Any, Checkpoint, bool, float | None]:
    """Train the rung; returns the model to ship, its checkpoint, whether KD was used and the
    teacher's validation accuracy (``None`` when no teacher was consulted).

    A teacher whose validation accuracy is not above ``job.teacher_min_accuracy`` is refused: the
    rung trains without distillation. ``probe`` (a :class:`evaluators.cost_probe.TrainingCostProbe`)
    wraps the steps of the main training loop when given (not the fine-tune after pruning: its
    cheaper steps would understate the projection, and a rung already trained is not thrown away).
    """
    import torch

    from evaluators.data import iterate_batches
    from evaluators.fairness import fairness_training
    from evaluators.models import features_and_logits, prepare_for_export
    from evaluators.pruning import prune_uniform
    from evaluators.training import finetune_mix, train

    fairness_state: dict[str, Any] = {}
    if job.start is not None:
        model, loss_state, fairness_state = _restore(job.start, candidate, ctx)
        done, pruned = job.start.epochs, job.start.pruned
    else:
        torch.manual_seed(ctx.seed)
        model, loss_state, done, pruned = _fresh_model(candidate, ctx), {}, 0, False
    teacher, teacher_res, teacher_accuracy = None, None, None
    if candidate.loss.kd > 0 and job.teacher_epochs > 0:
        if ctx.teacher is None:
            raise ValueError("the candidate asks for knowledge distillation but no teacher is configured")
        with clock("teacher"):
            teacher, teacher_res, teacher_accuracy = ctx.teacher(candidate, job.teacher_epochs)
        if teacher_accuracy <= job.teacher_min_accuracy:
            teacher = None
    train_split = ctx.dataset.splits["train"]
    fair = fairness_training(candidate.fairness_method, train_split.labels, train_split.groups,
                             num_groups=len(ctx.dataset.group_names), num_classes=ctx.num_classes)
    if fairness_state and hasattr(fair.weighting, "load_state_dict"):
        fair.weighting.load_state_dict(fairness_state)

    full_steps = -(-len(train_split.labels) // candidate.batch_size)
    steps = steps_of_share(full_steps, job.epoch_share)

    def batches(epoch: int):  # type: ignore[no-untyped-def]
        source = iterate_batches(train_split, candidate.resolution, candidate.batch_size, shuffle=True,
                                 augment=True, seed=ctx.seed * 1000 + done + epoch, sampler=fair.sampler)
        return source if steps == full_steps else islice(source, steps)

    mix = finetune_mix(candidate.loss) if pruned else candidate.loss
    if teacher is None:
        mix = dataclasses.replace(mix, kd=0.0)
    plain_context = ctx.step_context(windows)
    step_context = probe.wrap(plain_context) if probe is not None else plain_context
    lr = candidate.lr if done == 0 else candidate.lr * CONTINUE_LR_FACTOR
    with clock("train"):
        result = train(model, batches, loss_mix=mix, epochs=job.epochs - done, lr=lr, device=ctx.device,
                       teacher=teacher, teacher_resolution=teacher_res, ema=candidate.ema,
                       steps_per_epoch=steps, features_and_logits=features_and_logits, seed=ctx.seed + done,
                       step_context=step_context, initial_loss_state=loss_state,
                       group_weighting=fair.weighting)
        model, loss_state = result.model, result.loss_state
    if candidate.prune_ratio > 0 and not pruned:
        with clock("prune_finetune"):
            model = prepare_for_export(model.cpu())
            model = prune_uniform(model, candidate.prune_ratio, torch.zeros(input_shape(candidate)))
            pruned, loss_state = True, {}
            if candidate.finetune_epochs > 0:
                model = train(model, batches, loss_mix=finetune_mix(mix), epochs=candidate.finetune_epochs,
                              lr=candidate.lr / 3, device=ctx.device, teacher=teacher, teacher_resolution=teacher_res,
                              steps_per_epoch=steps, seed=ctx.seed, step_context=plain_context,
                              group_weighting=fair.weighting).model
    model = model.cpu().eval()
    trial_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = _save_checkpoint(trial_dir / f"rung_{job.rung}.pt", model, loss_state, rung=job.rung,
                                  epochs=job.epochs_behind, pruned=pruned, fairness=_fairness_state(fair))
    return model, checkpoint, teacher is not None, teacher_accuracy


def _cost_probe(candidate: Candidate, ctx: TrialContext, job: RungJob) -> Any:
    """The first rung's cost probe (``None`` when the job has no limit or continues a checkpoint)."""
    from evaluators.cost_probe import TrainingCostProbe, first_rung_steps

    if job.max_train_s is None or job.start is not None:
        return None
    steps = steps_of_share(-(-len(ctx.dataset.splits["train"].labels) // candidate.batch_size), job.epoch_share)
    total = first_rung_steps(steps_per_epoch=steps, epochs=job.epochs, finetune_epochs=candidate.finetune_epochs,
                             prune_ratio=candidate.prune_ratio)
    return TrainingCostProbe(job.max_train_s, total)


def _fairness_state(fair: Any) -> dict[str, Any]:
    """The fairness method's state to continue from (Group DRO's group weights), if it has one."""
    return fair.weighting.state_dict() if hasattr(fair.weighting, "state_dict") else {}


def run_rung(
    candidate: Candidate, ctx: TrialContext, trial_dir: Path, job: RungJob, *,
    on_stage: Callable[[str], None] | None = None, screened: ScreenResult | None = None,
) -> RungOutcome:
    """Run one rung job (screening first when ``job.screen``); writes ``trial_dir/model.onnx``.

    A first rung whose cost probe projects more training seconds than ``job.max_train_s`` ends
    after its first few steps with ``too_costly`` set and no metrics (nothing is saved).

    Raises:
        TrialCancelled: ``ctx.cancel`` was set while training.
    """
    from evaluators.complexity import count_macs, count_params
    from evaluators.cost_probe import TrainingTooCostly
    from evaluators.evaluate import evaluate_artifact
    from evaluators.hashing import sha256_file
    from evaluators.metrics import figure_intervals

    clock = StageClock(on_stage)
    if job.screen:
        screen_dir = trial_dir / "screen"
        with clock("screen"):
            screened = screen(candidate, ctx, screen_dir)
        shutil.rmtree(screen_dir, ignore_errors=True)
        if not screened.feasible:
            return RungOutcome(job, screened, None, stage_seconds=dict(clock.seconds))
    windows = Windows()
    probe = _cost_probe(candidate, ctx, job)
    try:
        model, checkpoint, kd_applied, teacher_accuracy = _train_rung(candidate, ctx, trial_dir, job, clock, windows,
                                                                      probe)
    except TrainingTooCostly as exc:
        stopped = {"projected_s": exc.projected_s, "limit_s": exc.limit_s, "step_s": exc.step_s}
        return RungOutcome(job, screened, None, stage_seconds=dict(clock.seconds), train_windows=windows.spans,
                           too_costly=stopped)
    with clock("export_quantize"):
        calibration = calibration_batches(ctx.dataset, candidate.resolution, ctx.calibration_images, ctx.seed)
        artifact = write_artifact(model, candidate, trial_dir, calibration)
        params, macs = count_params(model), count_macs(model, candidate.resolution)
    with clock("evaluate"):
        evaluation = evaluate_artifact(artifact, ctx.dataset, "val", candidate.resolution,
                                       minority_group=ctx.minority_group, threads=ctx.eval_threads,
                                       batch=ctx.eval_batch)
    artifact_sha256 = sha256_file(artifact)
    with clock("latency"):
        fingerprint, latency = measure_latency(artifact, candidate, ctx,
                                               shipped_sha256=artifact_sha256 if job.final else None)
    figures = evaluation.figures
    metrics = Metrics(
        accuracy=figures.accuracy, per_group_accuracy=figures.per_group_accuracy,
        group_counts=figures.group_counts, fairness=figures.fairness, scores={},
        confusion_matrix=figures.confusion_matrix, class_names=list(ctx.dataset.class_names),
        latency=latency, size_bytes=artifact.stat().st_size, params=params, macs=macs,
        artifact_path=str(artifact), artifact_sha256=artifact_sha256, fingerprint=fingerprint,
        split="val", stage_seconds=dict(clock.seconds),
        intervals=figure_intervals(evaluation, ctx.dataset, seed=ctx.seed),
        eval_batch=evaluation.batch, epochs=job.epochs,
    )
    metrics.scores = ctx.task.score_values(metrics.to_dict())
    matched = None if screened is None else fingerprint == screened.fingerprint
    return RungOutcome(job, screened, metrics, checkpoint, dict(clock.seconds), windows.spans, kd_applied, matched,
                       teacher_accuracy, projected_train_s=probe.projected_s if probe is not None else None)


def run_trial(
    candidate: Candidate, ctx: TrialContext, trial_dir: Path, *,
    on_stage: Callable[[str], None] | None = None, teacher_epochs: int = 3,
) -> RungOutcome:
    """A whole trial at one fidelity: screen, then one rung of ``candidate.epochs`` epochs (KD from a
    teacher of ``teacher_epochs`` epochs when the candidate asks for it).

    Invariant: ``outcome.metrics`` is None exactly when the candidate failed screening; otherwise
    its accuracy figures come from running ``trial_dir/model.onnx`` on the validation split.
    """
    job = RungJob(rung=0, epochs=candidate.epochs, final=True, teacher_epochs=teacher_epochs, screen=True)
    return run_rung(candidate, ctx, trial_dir, job, on_stage=on_stage)
