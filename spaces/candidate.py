"""The Candidate: one point of the search space, independent of Optuna.

Evaluators receive a Candidate, never an Optuna trial. ``to_params`` / ``from_params`` round-trip
through the flat ``{name: primitive}`` dictionaries that Optuna stores as trial params, so a
Candidate can be rebuilt from any finished trial (``Candidate.from_params(trial.params)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

QUANT_SCHEMES: tuple[str, ...] = ("fp32", "fp16", "int8_dynamic", "int8_static")
"""The built-in quantization schemes (``evaluators.quantization`` registers them; a plugin may
register more, which is why a Candidate checks only that ``quant`` is a name).

- ``fp32``: the exported graph as is.
- ``fp16``: weights and activations in float16, float32 inputs/outputs (``keep_io_types``).
- ``int8_dynamic``: onnxruntime dynamic quantization, QUInt8 weights (QInt8 is ~3x slower on x86).
- ``int8_static``: QDQ static quantization, per-channel, U8 activations / S8 weights, calibrated on
  training images.
"""

FAIRNESS_METHODS: tuple[str, ...] = ("none", "balanced_sampler", "reweight", "groupdro")
"""Group-aware training methods every evaluator understands (``evaluators.fairness``).

- ``none``: plain training, every sample weighs the same.
- ``balanced_sampler``: training batches drawn with replacement, uniformly over the non-empty
  group x class cells of the training split.
- ``reweight``: each sample's loss weighted by 1 / frequency of its group x class cell
  (weights of mean 1 over the training split).
- ``groupdro``: online Group DRO (Sagawa et al. 2020): the loss is a weighted mean of the
  groups' losses, the weights following an exponentiated-gradient ascent on the worst group.

All but ``none`` need data with at least two groups. None of them changes the shipped model's
graph: latency and the artifact's interface are the same for every method.
"""


class CandidateError(ValueError):
    """Raised when a parameter dictionary does not describe a valid Candidate."""


@dataclass(frozen=True)
class LossMix:
    """Weights of the training losses; a weight of 0 disables that loss.

    Invariant: all weights are >= 0 and ``ce`` + ``arcface`` > 0, so the classifier head always
    receives a classification signal.
    """

    ce: float = 1.0
    arcface: float = 0.0
    triplet: float = 0.0
    kd: float = 0.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        for name in ("ce", "arcface", "triplet", "kd", "label_smoothing"):
            if getattr(self, name) < 0:
                raise CandidateError(f"loss weight {name}={getattr(self, name)} must be >= 0")
        if self.ce + self.arcface <= 0:
            raise CandidateError("loss mix needs ce > 0 or arcface > 0 to train the classifier")
        if self.label_smoothing >= 1:
            raise CandidateError("label_smoothing must be < 1")

    def describe(self) -> str:
        """Short human-readable form, e.g. ``ce+arc0.5+kd1.0 ls0.1``."""
        parts = []
        if self.ce:
            parts.append("ce" if self.ce == 1 else f"ce{self.ce:g}")
        for name, short in (("arcface", "arc"), ("triplet", "tri"), ("kd", "kd")):
            weight = getattr(self, name)
            if weight:
                parts.append(f"{short}{weight:g}")
        text = "+".join(parts)
        return f"{text} ls{self.label_smoothing:g}" if self.label_smoothing else text


@dataclass(frozen=True)
class Candidate:
    """A classifier recipe: architecture, input size, training recipe, compression.

    Invariants: ``0 < width``, ``resolution`` a positive multiple of 8 (callers resize to it),
    ``0 <= prune_ratio < 1``, ``quant`` a non-empty name (the evaluators' scheme registry resolves
    it and fails fast on unknown names), ``epochs >= 1``,
    ``fairness_method`` in :data:`FAIRNESS_METHODS`.

    Attributes:
        backbone: Name in the evaluators' backbone registry (e.g. ``mobilenetv3_small``).
        width: Channel multiplier applied to every layer of the backbone.
        resolution: Square input size in pixels.
        loss: The loss mix.
        prune_ratio: Fraction of channels removed per layer by structured pruning.
        quant: Quantization scheme of the shipped ONNX artifact.
        epochs: Training epochs over the training split (before pruning).
        finetune_epochs: Fine-tuning epochs after pruning (ignored when ``prune_ratio == 0``).
        lr: Peak learning rate (AdamW, cosine schedule).
        batch_size: Training batch size.
        ema: Whether an exponential moving average of the weights is evaluated and shipped.
        pretrained: Optional local path to a timm state dict to start from (never downloaded);
            fixed by ``--override pretrained=PATH``.
        warm_start: Start from the pretrained weights the search was given (``--pretrained``) for
            this backbone and width; a searched dimension where such weights exist.
        fairness_method: Group-aware training method, one of :data:`FAIRNESS_METHODS`; studies
            from before this field existed read as ``none``.
    """

    backbone: str
    width: float
    resolution: int
    loss: LossMix = field(default_factory=LossMix)
    prune_ratio: float = 0.0
    quant: str = "fp32"
    epochs: int = 2
    finetune_epochs: int = 1
    lr: float = 3e-3
    batch_size: int = 32
    ema: bool = False
    pretrained: str | None = None
    warm_start: bool = False
    fairness_method: str = "none"

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise CandidateError(f"width={self.width} must be > 0")
        if self.resolution <= 0 or self.resolution % 8:
            raise CandidateError(f"resolution={self.resolution} must be a positive multiple of 8")
        if not 0 <= self.prune_ratio < 1:
            raise CandidateError(f"prune_ratio={self.prune_ratio} must be in [0, 1)")
        if not isinstance(self.quant, str) or not self.quant.strip():
            raise CandidateError(f"quant={self.quant!r} must name a quantization scheme, e.g. {', '.join(QUANT_SCHEMES)}")
        if self.fairness_method not in FAIRNESS_METHODS:
            raise CandidateError(
                f"fairness_method={self.fairness_method!r} is not one of {', '.join(FAIRNESS_METHODS)}"
            )
        if self.epochs < 1 or self.finetune_epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise CandidateError("epochs >= 1, finetune_epochs >= 0, batch_size >= 1, lr > 0")

    def to_params(self) -> dict[str, Any]:
        """Flat dictionary of primitives, suitable for Optuna params and JSON."""
        params = {k: v for k, v in dataclasses.asdict(self).items() if k != "loss"}
        params.update({f"loss_{k}": v for k, v in dataclasses.asdict(self.loss).items()})
        if params["pretrained"] is None:
            del params["pretrained"]
        if not params["warm_start"]:
            del params["warm_start"]
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "Candidate":
        """Inverse of :meth:`to_params`; unknown keys raise :class:`CandidateError`.

        Keys a field gained after a study started (``fairness_method``) take their defaults, so
        the params of older trials still give their Candidate.
        """
        params = dict(params)
        loss_fields = {f.name for f in dataclasses.fields(LossMix)}
        loss = {k[5:]: float(params.pop(k)) for k in list(params) if k.startswith("loss_")}
        unknown = set(loss) - loss_fields
        own = {f.name for f in dataclasses.fields(cls)} - {"loss"}
        unknown |= set(params) - own
        if unknown:
            raise CandidateError(f"unknown candidate parameters: {', '.join(sorted(unknown))}")
        missing = {"backbone", "width", "resolution"} - set(params)
        if missing:
            raise CandidateError(f"missing candidate parameters: {', '.join(sorted(missing))}")
        for key, kind in (("width", float), ("prune_ratio", float), ("lr", float)):
            if key in params:
                params[key] = kind(params[key])
        for key in ("resolution", "epochs", "finetune_epochs", "batch_size"):
            if key in params:
                params[key] = int(params[key])
        for key in ("ema", "warm_start"):
            if key in params:
                params[key] = bool(params[key])
        return cls(loss=LossMix(**loss), **params)

    def describe(self) -> str:
        """One-line summary, e.g. ``mobilenetv3_small x0.75 @128 ce ls0.1 groupdro prune0.3 int8_static``.

        The fairness method shows only when it is not ``none``.
        """
        text = f"{self.backbone} x{self.width:g} @{self.resolution} {self.loss.describe()}"
        if self.fairness_method != "none":
            text += f" {self.fairness_method}"
        if self.prune_ratio:
            text += f" prune{self.prune_ratio:g}"
        if self.ema:
            text += " ema"
        if self.warm_start or self.pretrained:
            text += " warm"
        return f"{text} {self.quant}"
