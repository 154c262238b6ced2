"""Contracts between the evaluators and their callers: latency and metrics records.

Pure dataclasses (no torch/onnxruntime), so ``search`` and ``dashboard`` import them freely.
Every record round-trips through ``to_dict`` / ``from_dict`` as JSON-safe dictionaries, which is
how they are stored on Optuna trials (user attributes) and sent over the fleet's HTTP API.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable


@dataclass(frozen=True)
class LatencySettings:
    """How to benchmark one artifact.

    Invariants: ``threads >= 1``; ``warmup >= 0``; ``1 <= min_repeats <= max_repeats``;
    ``1 <= min_rounds <= max_rounds``; every float finite and >= 0. A measurement is made of
    rounds (each a fresh session); within a round, repeats continue until both ``min_repeats``
    runs and ``min_time_s`` seconds are done, or ``max_repeats`` runs are done. Rounds continue
    until ``min_rounds`` are done and the 95 % CI of the median is within ``+-target_ci``, or
    ``max_rounds`` rounds or ``max_time_s`` seconds are spent.

    Attributes:
        threads: onnxruntime intra-op threads (inter-op is 1, sequential execution).
        warmup: Untimed runs first.
        min_repeats: Minimum timed runs.
        max_repeats: Maximum timed runs.
        min_time_s: Minimum timed seconds of one round.
        cores: CPU cores to pin the benchmark to (``None``: no pinning).
        batch: Batch size of the timed input.
        min_rounds: Fewest rounds.
        max_rounds: Most rounds.
        target_ci: Wanted half-width of the median's 95 % CI, relative (0.05 = +-5 %).
        max_time_s: Time cap of a measurement (rounds stop once it is spent).
    """

    threads: int = 1
    warmup: int = 5
    min_repeats: int = 10
    max_repeats: int = 500
    min_time_s: float = 0.3
    cores: tuple[int, ...] | None = None
    batch: int = 1
    min_rounds: int = 3
    max_rounds: int = 12
    target_ci: float = 0.05
    max_time_s: float = 8.0

    def __post_init__(self) -> None:
        if self.threads < 1 or self.warmup < 0 or not 1 <= self.min_repeats <= self.max_repeats:
            raise ValueError("need threads >= 1, warmup >= 0 and 1 <= min_repeats <= max_repeats")
        if not 1 <= self.min_rounds <= self.max_rounds or self.batch < 1:
            raise ValueError("need 1 <= min_rounds <= max_rounds and batch >= 1")
        for name in ("min_time_s", "target_ci", "max_time_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}={value} must be finite and >= 0")

    def cache_key(self) -> str:
        """Settings that change the measured figure (what the latency cache keys on)."""
        cores = ",".join(map(str, self.cores)) if self.cores else "any"
        return f"t{self.threads}-b{self.batch}-c{cores}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        data = dataclasses.asdict(self)
        data["cores"] = list(self.cores) if self.cores else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatencySettings":
        """Inverse of :meth:`to_dict` (ignores unknown keys from newer writers)."""
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
        if data.get("cores") is not None:
            data["cores"] = tuple(int(c) for c in data["cores"])
        return cls(**data)


@dataclass(frozen=True)
class LatencyResult:
    """Latency statistics of one artifact on one device, in milliseconds.

    Attributes:
        median_ms, p90_ms, mean_ms, std_ms, min_ms: Statistics over ``n`` timed runs.
        n: Number of timed runs (all rounds together).
        device: What really ran it, e.g. ``"Intel Xeon ... (x86_64, 2 cores)"`` or
            ``"Raspberry Pi 4 Model B Rev 1.4"``; the fake backend says ``"FAKE ..."``.
        device_tag: The tag the search asked for (``local``, ``rpi4b``, ``fake``).
        threads: Intra-op threads used.
        backend: ``local``, ``remote`` or ``fake``.
        runtime: ``onnxruntime <version>`` that ran it.
        fake: True only for the fake backend: the figure was computed, not measured.
        agent: Fleet agent id that measured it (remote backend only).
        peak_memory_mb: Peak resident memory of the benchmarking process, when known.
        cached: True when the figure came from the latency cache.
        source: How the figure was obtained: ``measured`` (timed on the device named by
            ``device``), ``emulated`` (timed under an instruction-set emulator such as qemu-user:
            says nothing about the real device's speed), ``predicted`` (a model's estimate) or
            ``fake`` (computed by the fake backend, tests only).
        under_load: True when the figure was taken while other work shared the cores (it is
            then not a clean measurement and is labelled so).
        rounds: Measurement rounds behind the figure (each a fresh session, timed until its own
            minimum time); ``median_ms`` is the median of the round medians.
        ci_low_ms, ci_high_ms: 95 % confidence interval of the median (``None`` with one round
            or for a computed figure).
        windows: Wall-clock ``(start, end)`` (``time.time()``) of every round this process timed,
            so a reader can check that no training ran at the same time.
        round_medians_ms: The median of each round, normalised to the host's typical speed when
            a reference graph was timed beside it (:mod:`evaluators.latency.normalise`); the
            figure and its CI are computed from these.
        of_artifact: True when every round timed this very file, weights included (a shipped
            figure); False for the figure of its graph structure timed on another file of the
            same fingerprint (the untrained screening graph), which can differ in speed.
        raw_round_medians_ms: Each round's median as timed (empty: not normalised, equal to
            ``round_medians_ms``).
        reference_round_ms: The median of the reference graph's runs interleaved with each
            round's (empty: no reference was timed).
        reference: Id of the reference graph (:func:`evaluators.latency.reference.reference_id`).
        baseline_ms: The host's typical reference median the figure is normalised to.
        raw_median_ms: Median of the raw round medians (what was timed, before normalising).
        disturbed_rounds: Rounds this measurement timed and left out because the host was in a
            slow spell (:data:`evaluators.latency.benchmark.DISTURBED`); 0 for a cached aggregate.
    """

    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    n: int
    device: str
    device_tag: str
    threads: int
    backend: str
    runtime: str = ""
    fake: bool = False
    agent: str | None = None
    peak_memory_mb: float | None = None
    cached: bool = False
    source: str = "measured"
    under_load: bool = False
    rounds: int = 1
    ci_low_ms: float | None = None
    ci_high_ms: float | None = None
    windows: tuple[tuple[float, float], ...] = ()
    round_medians_ms: tuple[float, ...] = ()
    of_artifact: bool = False
    raw_round_medians_ms: tuple[float, ...] = ()
    reference_round_ms: tuple[float, ...] = ()
    reference: str | None = None
    baseline_ms: float | None = None
    raw_median_ms: float | None = None
    disturbed_rounds: int = 0

    def label(self) -> str:
        """Human label of where the figure comes from (says FAKE, EMULATED, PREDICTED when so)."""
        text = f"{self.device} [{self.backend}, {self.threads} thr]"
        if self.fake or self.source == "fake":
            return f"FAKE latency (not measured): {text}"
        if self.source == "emulated":
            text = f"EMULATED latency (not the device's speed): {text}"
        elif self.source == "predicted":
            text = f"PREDICTED latency (not measured): {text}"
        if self.host_slowdown is not None:
            text = f"{text} (normalised to the host's typical speed; it ran at {self.host_slowdown:.2f}x that)"
        return f"{text} (measured under load)" if self.under_load else text

    @property
    def host_slowdown(self) -> float | None:
        """How slow the host ran while this figure's rounds were timed, relative to its typical speed
        (the reference's median over the baseline: 1.2 = 20 % slower); ``None`` when not normalised."""
        if not self.reference_round_ms or not self.baseline_ms:
            return None
        return statistics.median(self.reference_round_ms) / self.baseline_ms

    @property
    def ci_half_width(self) -> float | None:
        """Half the width of the CI relative to the median (0.05 = +-5 %), when there is one."""
        if self.ci_low_ms is None or self.ci_high_ms is None or self.median_ms <= 0:
            return None
        return (self.ci_high_ms - self.ci_low_ms) / 2.0 / self.median_ms

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        data = dataclasses.asdict(self)
        data["windows"] = [list(w) for w in self.windows]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatencyResult":
        """Inverse of :meth:`to_dict` (ignores unknown keys from newer writers)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        kept["windows"] = tuple(tuple(float(x) for x in w) for w in kept.get("windows") or ())
        for name in ("round_medians_ms", "raw_round_medians_ms", "reference_round_ms"):
            kept[name] = tuple(float(x) for x in kept.get(name) or ())
        return cls(**kept)


@runtime_checkable
class LatencyBackend(Protocol):
    """Measures the latency of an ONNX artifact.

    Implementations: ``evaluators.latency.local`` (onnxruntime here), ``evaluators.latency.remote``
    (the fleet), ``evaluators.latency.fake`` (tests only, labelled fake).
    """

    name: str
    device_tag: str

    def measure(
        self, artifact: Path, input_shape: tuple[int, ...], settings: LatencySettings
    ) -> LatencyResult:
        """Benchmark ``artifact`` on input of ``input_shape`` (NCHW, float32).

        Raises:
            evaluators.errors.LatencyError: When it cannot be measured.
        """
        ...


@dataclass
class FairnessFigures:
    """Group-fairness figures of one evaluation.

    Attributes:
        minority_group: Group SPD compares with.
        spd: ESFair statistical-parity difference of accuracy.
        fairness_part: ESFair fairness third, in [0, 1/3].
        worst_group_accuracy: Lowest per-group accuracy.
        accuracy_gap: Best minus worst group accuracy.
        equalized_odds_difference: fairlearn's, one-vs-rest per class, maximum over classes.
    """

    minority_group: str
    spd: float
    fairness_part: float
    worst_group_accuracy: float
    accuracy_gap: float
    equalized_odds_difference: float


@dataclass
class Metrics:
    """Everything measured about one trial's artifact.

    Invariants: ``accuracy`` and ``per_group_accuracy`` were computed by running the ONNX
    artifact (after quantization) with onnxruntime on ``split``, at the deployment batch size;
    ``latency`` belongs to that same artifact (or one with the same graph fingerprint);
    ``fairness`` is ``None`` exactly when the data has no groups; ``scores`` hold every score the
    task names; ``intervals`` map a dotted metric path (``accuracy``, ``fairness.spd``,
    ``per_group_accuracy.<group>``) to its bootstrap 95 % interval ``[low, high]``.

    Attributes:
        accuracy: Top-1 accuracy on ``split``.
        per_group_accuracy: Accuracy of each group (empty for data without groups).
        group_counts: Number of evaluated samples of each group.
        fairness: Fairness figures, or ``None`` for data without groups.
        scores: The task's named scores (``{"esfair": 0.71}``).
        confusion_matrix: Rows true class, columns predicted class.
        class_names: Names of the classes in confusion-matrix order.
        latency: Latency of the artifact on the target device.
        size_bytes: Artifact size on disk.
        params: Parameter count of the (pruned) torch model.
        macs: Multiply-accumulates of one forward pass at ``resolution``.
        artifact_path: Path of the ONNX file.
        artifact_sha256: Its sha256.
        fingerprint: Graph fingerprint (structure + shapes + quant scheme, not weights).
        split: Data split the accuracy figures come from (``val`` during search, ``test`` after).
        stage_seconds: Wall-clock seconds of each pipeline stage.
        intervals: Bootstrap 95 % intervals by metric path.
        eval_batch: Batch size the artifact was evaluated at (the deployment batch).
        epochs: Training epochs behind the artifact.
    """

    accuracy: float
    per_group_accuracy: dict[str, float]
    group_counts: dict[str, int]
    fairness: FairnessFigures | None
    scores: dict[str, float]
    confusion_matrix: list[list[int]]
    class_names: list[str]
    latency: LatencyResult
    size_bytes: int
    params: int
    macs: int
    artifact_path: str
    artifact_sha256: str
    fingerprint: str
    split: str = "val"
    stage_seconds: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    eval_batch: int = 1
    epochs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (what trials store as the ``metrics`` user attribute)."""
        data = dataclasses.asdict(self)
        data["latency"] = self.latency.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Metrics":
        """Inverse of :meth:`to_dict`; reads records of older hwsearch versions too (``esfair_score``)."""
        data = dict(data)
        legacy = data.pop("esfair_score", None)
        data.setdefault("scores", {} if legacy is None else {"esfair": legacy})
        data["fairness"] = FairnessFigures(**data["fairness"]) if data.get("fairness") else None
        data["latency"] = LatencyResult.from_dict(data["latency"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
