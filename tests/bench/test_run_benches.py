"""The benches that read launcher runs (README figures, trial costs): their field comparison, and
their ``--quick`` forms end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.test_benches import _bench_module, _run


def test_determinism_differences_name_their_reason() -> None:
    bench = _bench_module("readme_figures")
    a = {"accuracy": 0.5, "scores": {"esfair": 0.7}, "latency": {"median_ms": 1.0}, "artifact_path": "/a/model.onnx",
         "stage_seconds": {"train": 3.0}, "intervals": {"accuracy": [0.4, 0.6]}}
    b = {**a, "scores": {"esfair": 0.71}, "latency": {"median_ms": 1.1}, "artifact_path": "/b/model.onnx",
         "stage_seconds": {"train": 3.2}}
    diff = bench.differences(a, b)
    assert set(diff) == {"scores.esfair", "latency.median_ms", "artifact_path", "stage_seconds.train"}
    assert diff["scores.esfair"] == "a score that includes the measured latency"
    assert not any(why.startswith("NOT") for why in diff.values())
    worse = bench.differences(a, {**b, "accuracy": 0.49, "intervals": {"accuracy": [0.39, 0.6]}})
    assert worse["accuracy"].startswith("NOT") and worse["scores.esfair"].startswith("NOT")
    assert worse["intervals.accuracy"].startswith("NOT")


@pytest.mark.slow
def test_readme_figures_quick(tmp_path: Path) -> None:
    result = _run("readme_figures.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "readme_figures_quick.json").read_text())
    assert data["wall_s"] > 0 and data["peak_rss_mb"] > 100
    assert sum(data["outcomes"].values()) >= 1 and data["rungs"]
    assert data["trial0"]["candidate"]["backbone"]
    assert data["determinism"]["compared"] is True
    assert all(not key.startswith("accuracy") for key in data["determinism"]["nondeterministic_figures"])
    text = (tmp_path / "readme_figures_quick.md").read_text()
    for needle in ("wall-clock of the whole command", "Pareto front", "best test accuracy on the front",
                   "trial 0:", "## Cost", "## Determinism"):
        assert needle in text


@pytest.mark.slow
def test_trial_costs_quick(tmp_path: Path) -> None:
    result = _run("trial_costs.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "trial_costs_quick.json").read_text())
    assert sum(data["outcomes"].values()) >= 1
    savings = data["savings"]
    assert savings["cache"]["calls"] >= savings["cache"]["measurements"] + savings["cache"]["fresh_rounds"]
    assert savings["measurement_s"] > 0 or not data["outcomes"]["top"]
    text = (tmp_path / "trial_costs_quick.md").read_text()
    assert "Stages of the trained trials" in text and "latency cache:" in text
