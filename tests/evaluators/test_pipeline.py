"""One trial in DESIGN.md's order, on real files: screening first, then the artifact's own figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from evaluators.contracts import LatencySettings
from evaluators.data import load_dataset
from evaluators.db import make_engine
from evaluators.evaluate import evaluate_artifact
from evaluators.latency import make_latency_backend
from evaluators.latency.cache import LatencyCache
from evaluators.pipeline import TrialContext, run_trial
from spaces import Candidate, get_space


@pytest.fixture(scope="module")
def tiny_dataset(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import torch

    torch.set_num_threads(1)
    return load_dataset(tiny_data, cache_root=tmp_path_factory.mktemp("cache"))


def make_ctx(dataset, tmp_path: Path, budget_ms: float) -> TrialContext:  # type: ignore[no-untyped-def]
    task = dataclasses.replace(get_space("esfair").task, latency_budget_ms=budget_ms)
    return TrialContext(
        dataset=dataset, task=task, latency_backend=make_latency_backend("local"),
        latency_settings=LatencySettings(warmup=1, min_repeats=5, min_time_s=0.05),
        latency_cache=LatencyCache(make_engine(f"sqlite:///{tmp_path / 'cache.db'}")),
    )


CANDIDATE = Candidate(backbone="mobilenetv3_small", width=0.5, resolution=32, prune_ratio=0.3,
                      quant="int8_static", epochs=1, finetune_epochs=1)


def test_over_budget_candidate_is_screened_out_untrained(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outcome = run_trial(CANDIDATE, make_ctx(tiny_dataset, tmp_path, budget_ms=1e-6), tmp_path / "trial")
    assert outcome.metrics is None and not outcome.screen.feasible
    assert set(outcome.stage_seconds) == {"screen"}
    assert "latency" in outcome.screen.reason(1e-6, None)
    assert not (tmp_path / "trial" / "model.onnx").exists()


def test_feasible_trial_reports_the_artifacts_own_figures(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(tiny_dataset, tmp_path, budget_ms=1e6)
    stages: list[str] = []
    outcome = run_trial(CANDIDATE, ctx, tmp_path / "trial", on_stage=stages.append)
    metrics = outcome.metrics
    assert metrics is not None
    assert stages[0] == "screen" and stages.index("train") < stages.index("export_quantize") < stages.index("evaluate")
    artifact = Path(metrics.artifact_path)
    assert artifact == tmp_path / "trial" / "model.onnx" and artifact.stat().st_size == metrics.size_bytes
    again = evaluate_artifact(artifact, tiny_dataset, "val", 32, minority_group=None)
    assert again.accuracy == metrics.accuracy and again.per_group_accuracy == metrics.per_group_accuracy
    assert outcome.screen_fingerprint_matched and metrics.latency.cached
    assert metrics.fingerprint == outcome.screen.fingerprint
    assert metrics.params > 0 and metrics.macs > 0 and len(metrics.artifact_sha256) == 64
    import onnx

    ops = {node.op_type for node in onnx.load(str(artifact)).graph.node}
    assert "QuantizeLinear" in ops, "int8_static must ship a quantized graph"
