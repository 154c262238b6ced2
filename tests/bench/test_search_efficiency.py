"""bench/search_efficiency.py: the recipe verdicts, the paired ratios, and ``--quick`` end to end."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from search.front import FrontSpec, Point
from tests.bench.test_benches import PNG_MAGIC, _bench_module, _run

SPEC = FrontSpec(("accuracy", "fairness", "latency_ms"), ("maximize", "maximize", "minimize"),
                 ("accuracy", "fairness.fairness_part", "latency.median_ms"), (1.0, 1 / 3, 0.0), (0.0, 0.0, 6.0))
WIDTHS = (0.05, 0.02, 0.1)


def _point(number: int, acc: float, fair: float, lat: float) -> Point:
    return Point(number, (acc, fair, lat), True, WIDTHS)


def test_recipe_verdicts_follow_the_noise_rule() -> None:
    bench = _bench_module("search_efficiency")
    recipe = _point(-1, 0.50, 0.30, 4.0)
    faster = _point(3, 0.49, 0.30, 1.0)  # within noise on accuracy, far faster: dominates within noise
    assert bench.recipe_verdict(recipe, [faster], SPEC) == ("dominated within noise", 3)
    outright = _point(4, 0.51, 0.31, 2.0)  # better everywhere, latency significantly
    assert bench.recipe_verdict(recipe, [outright], SPEC) == ("dominated within noise", 4)
    close = _point(5, 0.52, 0.29, 4.05)  # no difference beyond the combined half-widths
    assert bench.recipe_verdict(recipe, [close], SPEC) == ("tied within noise", 5)
    worse = _point(6, 0.30, 0.30, 1.0)  # far faster but far less accurate: a trade-off
    assert bench.recipe_verdict(recipe, [worse], SPEC) == ("neither", None)
    assert bench.recipe_verdict(recipe, [worse, close, faster], SPEC) == ("dominated within noise", 3)


def _run_result(bench: object, arm: str, seed: int, trained: int, spent: float, hv: float) -> object:
    outcomes = {"top": trained, "stopped": 0, "screened": 0, "failed": 0, "other": 0}
    return bench.RunResult(arm, seed, [], 0, spent, spent, [2], outcomes, {0: trained}, hv, hv)  # type: ignore[attr-defined]


def test_paired_ratios_pair_by_seed() -> None:
    bench = _bench_module("search_efficiency")
    runs = [_run_result(bench, "multi-fidelity", 0, 30, 360.0, 0.5), _run_result(bench, "fixed-epoch", 0, 10, 360.0, 0.4),
            _run_result(bench, "multi-fidelity", 1, 12, 360.0, 0.3), _run_result(bench, "fixed-epoch", 1, 12, 180.0, 0.0),
            _run_result(bench, "random", 1, 12, 360.0, 0.9)]
    ratios = bench.paired_ratios(runs)
    assert ratios["seeds"] == [0, 1]
    assert ratios["hv"] == [pytest.approx(1.25), math.inf]
    assert ratios["rate"] == [pytest.approx(3.0), pytest.approx(0.5)]
    assert ratios["hv_median"] == math.inf and ratios["rate_median"] == pytest.approx(1.75)
    assert "meets the target" in bench.ratios_text(ratios)


@pytest.mark.slow
def test_search_efficiency_quick(tmp_path: Path) -> None:
    result = _run("search_efficiency.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "search_efficiency_quick.png").read_bytes()[:8] == PNG_MAGIC
    data = json.loads((tmp_path / "search_efficiency_quick.json").read_text())
    assert [r["arm"] for r in data["runs"]] == ["multi-fidelity", "fixed-epoch", "random"]
    for run in data["runs"]:
        assert run["returncode"] == 0 and run["spent_s"] > 0
        assert 0.0 <= run["hv_test"] <= 1.0 and 0.0 <= run["hv_val"] <= 1.0
        assert sum(run["outcomes"].values()) >= 1
    assert any(run["front"] for run in data["runs"]), "no run has a test front"
    assert data["recipe"]["epochs"] >= 1 and 0.0 <= data["recipe"]["record"]["accuracy"] <= 1.0
    text = (tmp_path / "search_efficiency_quick.md").read_text()
    assert re.search(r"median paired HV ratio multi-fidelity / fixed-epoch: \*\*\S+\*\* \(target >= 1.25: ", text)
    assert re.search(r"median paired candidates-per-hour ratio: \*\*\S+x\*\* \(target >= 3x: ", text)
    verdicts = re.findall(r"^\| (multi-fidelity|fixed-epoch|random) +\| 0 +\| \d+ +\| (dominated within noise|"
                          r"tied within noise|neither) ", text, re.MULTILINE)
    assert len(verdicts) == 3
