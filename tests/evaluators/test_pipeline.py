"""One trial in DESIGN.md's order, on real files: screening first, then the artifact's own figures."""

from __future__ import annotations

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
    task = get_space("esfair").task.with_settings(latency_budget_ms=budget_ms)
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
    assert outcome.screen.violations["latency_over_budget_ms"] > 0
    assert outcome.screen.macs > 0 and outcome.screen.params > 0
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
    again = evaluate_artifact(artifact, tiny_dataset, "val", 32, minority_group=None).figures
    assert again.accuracy == metrics.accuracy and again.per_group_accuracy == metrics.per_group_accuracy
    assert metrics.eval_batch == 1 and set(metrics.scores) == {"esfair"}
    low, high = metrics.intervals["accuracy"]
    assert low <= metrics.accuracy <= high and "fairness.spd" in metrics.intervals
    assert outcome.screen_fingerprint_matched
    shipped, screened = metrics.latency, outcome.screen.latency
    assert shipped.of_artifact and not screened.of_artifact, "the shipped figure is the file's own"
    assert shipped.rounds >= ctx.latency_settings.min_rounds and shipped.ci_low_ms is not None
    assert not set(shipped.round_medians_ms) & set(screened.round_medians_ms), "no screening round is reused"
    assert metrics.fingerprint == outcome.screen.fingerprint
    assert metrics.params > 0 and metrics.macs > 0 and len(metrics.artifact_sha256) == 64
    import onnx

    ops = {node.op_type for node in onnx.load(str(artifact)).graph.node}
    assert "QuantizeLinear" in ops, "int8_static must ship a quantized graph"


def test_a_shipped_figure_is_the_files_own_and_other_weights_are_measured_apart(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from evaluators.hashing import sha256_file
    from evaluators.pipeline import calibration_batches, compressed_architecture, measure_latency, write_artifact

    ctx = make_ctx(tiny_dataset, tmp_path, budget_ms=1e6)
    calibration = calibration_batches(tiny_dataset, CANDIDATE.resolution, 4, 0)
    files = [write_artifact(compressed_architecture(CANDIDATE, tiny_dataset.num_classes, seed), CANDIDATE,
                            tmp_path / f"seed{seed}", calibration) for seed in (0, 1)]
    (graph_a, screened), (graph_b, _) = (measure_latency(f, CANDIDATE, ctx) for f in files)
    assert graph_a == graph_b and ctx.latency_cache.count() == 1, "one structure: one screening figure"
    (_, first), (_, other) = (measure_latency(f, CANDIDATE, ctx, shipped_sha256=sha256_file(f)) for f in files)
    assert ctx.latency_cache.count() == 3, "each shipped file gets its own figure, apart from the screen"
    assert first.of_artifact and other.of_artifact and not screened.of_artifact
    assert first.rounds >= ctx.latency_settings.min_rounds
    _, again = measure_latency(files[0], CANDIDATE, ctx, shipped_sha256=sha256_file(files[0]))
    assert again.rounds == first.rounds + 1, "the same bytes measured again gain one fresh round"
    assert again.raw_round_medians_ms[:first.rounds] == first.raw_round_medians_ms, "stored rounds kept as timed"


def test_a_promoted_rung_continues_from_its_checkpoint(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from evaluators.hashing import sha256_file
    from evaluators.pipeline import RungJob, run_rung

    ctx = make_ctx(tiny_dataset, tmp_path, budget_ms=1e6)
    first = run_rung(CANDIDATE, ctx, tmp_path / "trial", RungJob(rung=0, epochs=1, final=False, screen=True))
    checkpoint = first.checkpoint
    assert checkpoint is not None and checkpoint.pruned and checkpoint.epochs == 1
    assert sha256_file(Path(checkpoint.path)) == checkpoint.sha256
    state = torch.load(checkpoint.path, weights_only=True)
    assert state["rung"] == 0 and state["pruned"]
    second = run_rung(CANDIDATE, ctx, tmp_path / "trial", RungJob(rung=1, epochs=2, final=True, start=checkpoint))
    assert second.screen is None and second.metrics is not None and second.metrics.epochs == 2
    assert "prune_finetune" not in second.stage_seconds, "a pruned checkpoint is trained on, not pruned again"
    assert second.checkpoint is not None and second.checkpoint.rung == 1
    assert first.metrics is not None and not first.metrics.latency.of_artifact, "a lower rung reuses the screen"
    assert first.metrics.latency.round_medians_ms == first.screen.latency.round_medians_ms
    assert second.metrics.latency.of_artifact, "the top rung measures the file it ships"
    assert second.train_windows and all(start <= end for start, end in second.train_windows)


def test_a_tampered_checkpoint_is_refused(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from evaluators.errors import HwsearchError
    from evaluators.pipeline import RungJob, run_rung

    ctx = make_ctx(tiny_dataset, tmp_path, budget_ms=1e6)
    candidate = dataclasses.replace(CANDIDATE, prune_ratio=0.0)
    first = run_rung(candidate, ctx, tmp_path / "t", RungJob(rung=0, epochs=1, final=False, screen=True))
    Path(first.checkpoint.path).write_bytes(b"not a checkpoint")
    with pytest.raises(HwsearchError, match="does not match its recorded sha256"):
        run_rung(candidate, ctx, tmp_path / "t", RungJob(rung=1, epochs=2, final=True, start=first.checkpoint))


@pytest.mark.parametrize(("teacher_accuracy", "used"), [(0.40, False), (0.90, True)])
def test_a_teacher_not_above_the_candidates_is_refused(tiny_dataset, tmp_path: Path, teacher_accuracy: float,  # type: ignore[no-untyped-def]
                                                       used: bool) -> None:
    import dataclasses

    from evaluators.models import build_model
    from evaluators.pipeline import RungJob, run_rung
    from spaces.candidate import LossMix

    teacher = build_model("mobilenetv3_small", 0.5, len(tiny_dataset.class_names))
    forwards: list[int] = []
    teacher.register_forward_hook(lambda *_: forwards.append(1))
    ctx = dataclasses.replace(make_ctx(tiny_dataset, tmp_path, budget_ms=1e6),
                              teacher=lambda candidate, epochs: (teacher, 32, teacher_accuracy))
    candidate = dataclasses.replace(CANDIDATE, prune_ratio=0.0, loss=LossMix(kd=1.0))
    job = RungJob(rung=1, epochs=1, final=True, teacher_epochs=3, teacher_min_accuracy=0.5, screen=True)
    outcome = run_rung(candidate, ctx, tmp_path / "trial", job)
    assert outcome.teacher_accuracy == teacher_accuracy and outcome.kd_applied is used
    assert bool(forwards) is used, "a refused teacher is never run"


def test_a_first_rung_over_its_cost_limit_stops_after_a_few_steps(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from evaluators.pipeline import RungJob, run_rung

    ctx = make_ctx(tiny_dataset, tmp_path, budget_ms=1e6)
    candidate = dataclasses.replace(CANDIDATE, batch_size=8, epochs=3)
    job = RungJob(rung=0, epochs=3, final=False, screen=True, max_train_s=1e-4)
    outcome = run_rung(candidate, ctx, tmp_path / "trial", job)
    assert outcome.metrics is None and outcome.screen is not None and outcome.screen.feasible
    assert outcome.too_costly is not None and outcome.too_costly["projected_s"] > outcome.too_costly["limit_s"] == 1e-4
    assert not (tmp_path / "trial" / "rung_0.pt").exists() and not (tmp_path / "trial" / "model.onnx").exists()
    roomy = run_rung(candidate, ctx, tmp_path / "roomy", dataclasses.replace(job, max_train_s=1e6))
    assert roomy.metrics is not None and roomy.too_costly is None
    assert 0 < roomy.projected_train_s < 1e6


def test_a_first_look_trains_its_share_of_each_epoch_and_the_next_rung_all_of_its_epochs(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    import dataclasses

    from evaluators.pipeline import RungJob, run_rung

    ctx = make_ctx(tiny_dataset, tmp_path, budget_ms=1e6)
    steps: list[int] = []
    plain = ctx.step_context

    def counting(windows):  # type: ignore[no-untyped-def]
        inner = plain(windows)

        @contextlib.contextmanager
        def step():  # type: ignore[no-untyped-def]
            steps.append(1)
            with inner():
                yield

        return step

    ctx.step_context = counting  # type: ignore[method-assign]
    candidate = dataclasses.replace(CANDIDATE, prune_ratio=0.0, batch_size=4)
    per_epoch = -(-len(tiny_dataset.splits["train"].labels) // 4)
    look = run_rung(candidate, ctx, tmp_path / "t", RungJob(rung=0, epochs=1, final=False, screen=True, epoch_share=1 / 3))
    assert len(steps) == -(-per_epoch // 3) < per_epoch
    assert look.metrics is not None and look.checkpoint is not None and look.checkpoint.epochs == 0
    steps.clear()
    run_rung(candidate, ctx, tmp_path / "t", RungJob(rung=1, epochs=2, final=True, start=look.checkpoint))
    assert len(steps) == 2 * per_epoch, "a look leaves no complete epoch behind: the next rung trains both"
    with pytest.raises(ValueError, match="only a rung from scratch"):
        RungJob(rung=1, epochs=2, final=True, start=look.checkpoint, epoch_share=0.5)
    with pytest.raises(ValueError, match="not in"):
        RungJob(rung=0, epochs=1, final=False, epoch_share=0.0)
