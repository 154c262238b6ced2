"""The ``lpirc`` space: accuracy against latency, no fairness, as in the Low-Power Image Recognition
Challenge and MnasNet's search.

Objectives: accuracy ↑ and median latency ↓ on the target device. Reported scores: LPIRC 2018's
accuracy per runtime (:func:`spaces.scores.lpirc_score`) and MnasNet's soft-constrained reward
around the latency budget (:func:`spaces.scores.mnasnet_reward`). It runs on data without groups:
the embedded ``embedded:lpirc`` set (an ImageFolder) or any ``--data`` in ImageFolder layout.
"""

from __future__ import annotations

from typing import Any, Mapping

from spaces.candidate import Candidate, LossMix
from spaces.registry import SampleContext, TrialLike, register_space, sample_architecture
from spaces.scores import lpirc_score, mnasnet_reward
from spaces.task import Objective, Task

BACKBONES: tuple[str, ...] = (
    "mobilenetv3_small", "mobilenetv3_large", "mobilenetv2", "mnasnet", "efficientnet_lite0", "lcnet",
)
WIDTHS: tuple[float, ...] = (0.5, 0.75, 1.0)
RESOLUTIONS: tuple[int, ...] = (64, 96, 128)
QUANTS: tuple[str, ...] = ("fp32", "fp16", "int8_static")
DEFAULT_LATENCY_BUDGET_MS = 4.0
"""Median single-thread budget on the local x86 CPU (also MnasNet's target); pass
``--latency-budget`` for a phone or a Raspberry Pi."""


def _lpirc(metrics: Mapping[str, Any], task: Task) -> float:
    return lpirc_score(metrics["accuracy"], metrics["latency"]["median_ms"])


def _mnasnet(metrics: Mapping[str, Any], task: Task) -> float:
    return mnasnet_reward(metrics["accuracy"], metrics["latency"]["median_ms"], task.latency_budget_ms or 1.0)


LPIRC_TASK = Task(
    default_data="embedded:lpirc",
    objectives=(
        Objective("accuracy", "accuracy", "maximize", worst=0.0, best=1.0),
        Objective("latency_ms", "latency.median_ms", "minimize", best=0.0),
    ),
    scores={"lpirc": _lpirc, "mnasnet": _mnasnet},
    latency_budget_ms=DEFAULT_LATENCY_BUDGET_MS,
    size_budget_mb=20.0,
    default_timeout_s=300.0,
)


def lpirc_baselines() -> dict[str, Candidate]:
    """MobileNetV2 and MnasNet at full width, the LPIRC-era references."""
    return {
        "mobilenetv2-128": Candidate(backbone="mobilenetv2", width=1.0, resolution=128, quant="fp32"),
        "mnasnet-128": Candidate(backbone="mnasnet", width=1.0, resolution=128, quant="fp32"),
    }


def lpirc_start_point() -> tuple[str, Candidate]:
    """The search's first candidate: MobileNetV3-small at full width and the largest searched
    resolution, cross-entropy, fp32, no pruning (cheaper than either LPIRC reference)."""
    return "mobilenetv3-small-128", Candidate(backbone="mobilenetv3_small", width=1.0, resolution=128, quant="fp32")


@register_space("lpirc", task=LPIRC_TASK, baselines=lpirc_baselines, start_point=lpirc_start_point)
def lpirc_space(trial: TrialLike, context: SampleContext) -> Candidate:
    """Define-by-run lpirc space: architecture, input size, compression and the training recipe."""
    backbone, width, warm = sample_architecture(trial, context, BACKBONES, WIDTHS)
    return Candidate(
        backbone=backbone,
        width=width,
        resolution=trial.suggest_categorical("resolution", list(RESOLUTIONS)),
        loss=LossMix(ce=1.0, kd=trial.suggest_categorical("loss_kd", [0.0, 1.0]),
                     label_smoothing=trial.suggest_categorical("loss_label_smoothing", [0.0, 0.1])),
        prune_ratio=trial.suggest_float("prune_ratio", 0.0, 0.5, step=0.25),
        quant=trial.suggest_categorical("quant", list(QUANTS)),
        lr=trial.suggest_float("lr", 1e-3, 1e-2, log=True),
        ema=trial.suggest_categorical("ema", [False, True]),
        warm_start=warm,
    )
