"""ESFair score arithmetic against hand-computed values."""

from __future__ import annotations

import pytest

from spaces.scores import (esfair_fairness_part, esfair_latency_part, esfair_score, esfair_spd, lpirc_score,
                           mnasnet_reward)


def test_spd_by_hand() -> None:
    acc = {"light": 0.90, "medium": 0.85, "dark": 0.70}
    # |0.90-0.70| + |0.85-0.70| + |0.70-0.70| = 0.35, over 3 groups
    assert esfair_spd(acc, "dark") == pytest.approx(0.35 / 3)


def test_fairness_part_is_zero_beyond_the_limit_and_a_third_at_zero_spd() -> None:
    assert esfair_fairness_part(0.0) == pytest.approx(1 / 3)
    assert esfair_fairness_part(0.1) == pytest.approx(0.5 / 3)
    assert esfair_fairness_part(0.2) == pytest.approx(0.0)
    assert esfair_fairness_part(0.25) == 0.0


def test_latency_part_and_score() -> None:
    assert esfair_latency_part(0.0, 10.0) == pytest.approx(1 / 3)
    assert esfair_latency_part(5.0, 10.0) == pytest.approx(1 / 6)
    assert esfair_latency_part(12.0, 10.0) == 0.0
    assert esfair_score(0.9, 0.1, 5.0, 10.0) == pytest.approx(0.3 + 0.5 / 3 + 1 / 6)
    assert esfair_score(0.9, 0.1, 5.0, 10.0, latency_weight=0.0) == pytest.approx(0.3 + 0.5 / 3)


def test_other_scores() -> None:
    assert lpirc_score(0.6, 60.0) == pytest.approx(0.6 / 60.0), "1000 images at 60 ms: 60 s of runtime"
    assert lpirc_score(0.6, 10.0) == pytest.approx(0.6 / 30.0), "faster than 30 ms per image earns nothing more"
    assert lpirc_score(0.6, 60.0, images=10) == pytest.approx(0.6 / 0.6)
    assert mnasnet_reward(0.8, 80.0, 80.0) == pytest.approx(0.8)
    assert mnasnet_reward(0.8, 160.0, 80.0) < 0.8
