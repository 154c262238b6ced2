"""Scalar scores of the contests the spaces target (pure arithmetic, no dependencies).

LPIRC 2018 (Low-Power Image Recognition Challenge, accuracy per runtime): ``acc / max(30 * T,
runtime)`` with ``runtime`` the total milliseconds for ``T`` images, i.e. a 30 ms-per-image floor
below which speed earns nothing. hwsearch reports it for ``T = 1000`` images with runtime in
seconds, so the score reads ``accuracy / max(30, latency_ms)`` in 1/s (the ranking is the same
for any ``T``). MnasNet (Tan et al. 2019): ``acc * (latency / target) ** w`` with ``w = -0.07``,
a soft latency constraint around the target.


ESFair (ESWEEK 2024 fair-ML challenge) as its sample code computes it:
``SPD = sum_g |acc_g - acc_minority| / n_groups``; fairness part ``((0.2 - SPD) / 0.2) / 3``, 0 when
``SPD > 0.2``; accuracy part ``acc / 3``. The contest's latency third is not published. hwsearch's
latency part is ``weight * max(0, 1 - latency / budget)`` with ``weight = 1/3`` by default: 1/3 at zero
latency, 0 at or over the latency budget. Set the weight to 0 for the two published thirds only.
"""

from __future__ import annotations

from typing import Mapping

ESFAIR_SPD_LIMIT = 0.2


def esfair_spd(per_group_accuracy: Mapping[str, float], minority_group: str) -> float:
    """Statistical-parity difference of accuracy against the minority group.

    Args:
        per_group_accuracy: Accuracy of every group (all groups count in ``n_groups``).
        minority_group: The group every other group is compared with.

    Raises:
        KeyError: If ``minority_group`` has no accuracy.
    """
    reference = per_group_accuracy[minority_group]
    return sum(abs(acc - reference) for acc in per_group_accuracy.values()) / len(per_group_accuracy)


def esfair_fairness_part(spd: float) -> float:
    """``((0.2 - SPD) / 0.2) / 3``, or 0 when SPD exceeds 0.2. Range [0, 1/3]."""
    if spd > ESFAIR_SPD_LIMIT:
        return 0.0
    return ((ESFAIR_SPD_LIMIT - spd) / ESFAIR_SPD_LIMIT) / 3.0


def esfair_accuracy_part(accuracy: float) -> float:
    """``accuracy / 3``. Range [0, 1/3]."""
    return accuracy / 3.0


def esfair_latency_part(latency_ms: float, budget_ms: float, weight: float = 1.0 / 3.0) -> float:
    """hwsearch's documented latency third: ``weight * max(0, 1 - latency / budget)``."""
    if budget_ms <= 0:
        return 0.0
    return weight * max(0.0, 1.0 - latency_ms / budget_ms)


def esfair_score(
    accuracy: float, spd: float, latency_ms: float, budget_ms: float, latency_weight: float = 1.0 / 3.0
) -> float:
    """Accuracy part + fairness part + latency part (see the module docstring)."""
    return (
        esfair_accuracy_part(accuracy)
        + esfair_fairness_part(spd)
        + esfair_latency_part(latency_ms, budget_ms, latency_weight)
    )


LPIRC_IMAGES = 1000
LPIRC_FLOOR_MS = 30.0


def lpirc_score(accuracy: float, latency_ms: float, images: int = LPIRC_IMAGES) -> float:
    """LPIRC 2018: ``acc / max(30 ms * T, runtime)`` for ``T`` images at ``latency_ms`` each, runtime in s."""
    runtime_s = images * latency_ms / 1000.0
    return accuracy / max(LPIRC_FLOOR_MS * images / 1000.0, runtime_s)


def mnasnet_reward(accuracy: float, latency_ms: float, target_ms: float, w: float = -0.07) -> float:
    """MnasNet's soft-constraint reward ``acc * (lat / target) ** w``."""
    return accuracy * (latency_ms / target_ms) ** w
