"""bench/fairness_methods.py: its paired summary on known predictions, and ``--quick`` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from evaluators.metrics import classification_figures
from tests.bench.test_benches import _bench_module, _run

FIGURES = ("accuracy", "minority_accuracy", "spd", "worst_group_accuracy")


def _dataset(rng: np.random.Generator) -> SimpleNamespace:
    groups = np.repeat([0, 1, 2], [60, 30, 10])
    labels = rng.integers(0, 3, len(groups))
    split = SimpleNamespace(labels=labels, groups=groups)
    return SimpleNamespace(splits={"val": split}, group_names=["light", "medium", "dark"], class_names=list("abc"))


def test_summary_is_paired_by_seed_and_matches_the_metrics() -> None:
    bench = _bench_module("fairness_methods")
    rng = np.random.default_rng(0)
    dataset = _dataset(rng)
    labels = dataset.splits["val"].labels
    cfg = bench.Config(seeds=(0, 1, 2), methods=("none", "reweight", "groupdro"), n_resamples=300)
    runs = []
    for seed in cfg.seeds:
        plain = np.where(rng.random(len(labels)) < 0.7, labels, (labels + 1) % 3)
        fixed = np.where(dataset.splits["val"].groups == 2, labels, plain)  # right on every dark sample
        runs += [bench.Run("none", seed, 1.0, {"val": plain}), bench.Run("reweight", seed, 1.0, {"val": plain}),
                 bench.Run("groupdro", seed, 1.0, {"val": fixed})]
    summary = bench.summarise_split(runs, cfg, dataset, "val", "dark")
    for seed_index, run in enumerate(r for r in runs if r.method == "none"):
        figures = classification_figures(labels, run.predictions["val"], dataset.splits["val"].groups,
                                         class_names=dataset.class_names, group_names=dataset.group_names,
                                         minority_group="dark")
        assert summary["none"]["accuracy"]["seeds"][seed_index] == pytest.approx(figures.accuracy)
        assert summary["none"]["spd"]["seeds"][seed_index] == pytest.approx(figures.fairness.spd)
    for name in FIGURES:
        same = summary["reweight"][f"{name}_vs_none"]
        assert same == {"point": 0.0, "low": 0.0, "high": 0.0}  # identical models: paired difference is exactly 0
        assert summary["none"][name]["low"] <= summary["none"][name]["point"] <= summary["none"][name]["high"]
    better = summary["groupdro"]["minority_accuracy_vs_none"]
    assert better["low"] > 0 and summary["groupdro"]["minority_accuracy"]["point"] == 1.0
    assert "accuracy_vs_none" not in summary["none"]


@pytest.mark.slow
def test_fairness_methods_quick(tmp_path: Path) -> None:
    result = _run("fairness_methods.py", "--quick", "--out", str(tmp_path), "--data-cache", str(tmp_path / "data"),
                  cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "fairness_methods_quick.json").read_text())
    methods = data["config"]["methods"]
    assert set(methods) == {"none", "balanced_sampler", "reweight", "groupdro"}
    for split in ("val", "test"):
        for method in methods:
            for name in FIGURES:
                figure = data["summary"][split][method][name]
                assert 0.0 <= figure["low"] <= figure["high"] <= 1.0 and len(figure["seeds"]) == 1
    weights = data["groupdro_final_weights"]["seed0"]
    assert set(weights) == {"dark", "light", "medium"} and sum(weights.values()) == pytest.approx(1.0)
    table = (tmp_path / "fairness_methods_quick.md").read_text()
    assert table.count("| groupdro ") == 4 and "### test split" in table
