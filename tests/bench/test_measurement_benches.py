"""The benches that measure components directly (latency repeatability, data throughput, quantization
schemes): their arithmetic, and their ``--quick`` forms end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.test_benches import _bench_module, _run


def _measurement(bench: object, median: float, low: float | None, high: float | None) -> object:
    half = None if low is None else (high - low) / 2 / median
    return bench.Measurement(median, low, high, half, 3, 1.0, half)  # type: ignore[attr-defined]


def test_repeatability_summary_counts_medians_inside_the_first_ci(tmp_path: Path) -> None:
    bench = _bench_module("latency_repeatability")
    artifacts = [bench.Artifact(f"c{i}", tmp_path / f"{i}.onnx", 64, "x") for i in range(3)]
    artifacts[2] = bench.Artifact("c2", tmp_path / "2.onnx", 64, "x", {"ci_low_ms": 1.0, "ci_high_ms": 1.5,
                                                                          "median_ms": 1.25, "of_artifact": True})
    first = {0: _measurement(bench, 1.0, 0.96, 1.04), 1: _measurement(bench, 2.0, 1.92, 2.08),
             2: _measurement(bench, 1.2, None, None)}
    second = {0: _measurement(bench, 1.03, 1.0, 1.06), 1: _measurement(bench, 2.4, 2.3, 2.5),
              2: _measurement(bench, 1.2, 1.1, 1.3)}
    figures = bench.summary(artifacts, first, second)
    assert figures["inside"] == 1 and figures["inside_share"] == pytest.approx(1 / 3)
    assert figures["median_abs_ratio_error"] == pytest.approx(0.03)
    assert figures["max_abs_ratio_error"] == pytest.approx(0.2)
    assert figures["inside_stored_share"] == 1.0 and figures["with_stored_ci"] == 1
    assert figures["stored_ratios"] == [pytest.approx(1.2 / 1.25)] and figures["stored_half_widths"] == [0.2]
    assert figures["session_sd_estimate"] > 0.05, "a 3 % and a 20 % gap between passes are far beyond rounds of +-4 %"
    same = [(_measurement(bench, 1.0, 0.9, 1.1), _measurement(bench, 1.0, 0.9, 1.1))] * 3
    assert bench.session_sd_estimate(same) == 0.0 and bench.session_sd_estimate([]) is None
    assert figures["measurements"] == 5 and figures["not_precise"] == 1
    passes = {"normalised": (first, second), "raw": (first, second)}
    text = bench.report(artifacts, passes, {"normalised": figures, "raw": figures}, 0.0, None)
    assert "FALLS SHORT of the target of 80%" in text and "raw 1/3 = 33%" in text


def test_repeatability_normalises_both_passes_to_one_baseline() -> None:
    from evaluators.contracts import LatencyResult

    bench = _bench_module("latency_repeatability")

    def timed(raw: tuple[float, ...], reference: tuple[float, ...]) -> object:
        result = LatencyResult(median_ms=sorted(raw)[1], p90_ms=max(raw), mean_ms=1.0, std_ms=0.0, min_ms=min(raw),
                               n=30, device="cpu", device_tag="local", threads=1, backend="local", runtime="ort",
                               rounds=3, round_medians_ms=raw, reference_round_ms=reference, reference="ref-x")
        return bench.Timed(result, 1.0)

    quiet, slowed = timed((1.0, 1.02, 0.98), (0.3, 0.3, 0.3)), timed((1.5, 1.53, 1.47), (0.45, 0.45, 0.45))
    baseline = bench.pass_baseline({0: quiet})
    assert baseline == 0.3
    assert quiet.normalised(baseline).contains(slowed.normalised(baseline).median_ms), "drift divided out"
    assert not quiet.raw().contains(slowed.raw().median_ms), "raw figures 50 % apart"


@pytest.mark.slow
def test_latency_repeatability_quick(tmp_path: Path) -> None:
    result = _run("latency_repeatability.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "latency_repeatability_quick.json").read_text())
    for label in ("normalised", "raw"):
        assert data["figures"][label]["artifacts"] == 3 and 0.0 <= data["figures"][label]["inside_share"] <= 1.0
    assert data["baseline_ms"] > 0
    for artifact in data["artifacts"]:
        assert artifact["normalised_first"]["median_ms"] > 0 and artifact["raw_second"]["median_ms"] > 0
        assert artifact["raw_first"]["rounds"] >= 3
        assert len(artifact["first_result"]["reference_round_ms"]) == artifact["raw_first"]["rounds"]
    assert "second medians inside the first measurement's 95 % CI" in (
        tmp_path / "latency_repeatability_quick.md").read_text()


@pytest.mark.slow
def test_data_throughput_quick(tmp_path: Path) -> None:
    result = _run("data_throughput.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "data_throughput_quick.json").read_text())
    assert {(r["split"], r["resolution"]) for r in data["decode"]} == {
        (s, r) for s in ("train", "val", "test") for r in (64, 128)}
    assert all(r["decode_s"] > 0 and r["cache_mb"] > 0 for r in data["decode"])
    assert [(r["backbone"], r["resolution"], r["layout"]) for r in data["loop"]] == [
        ("mobilenetv3_small", px, layout) for px in (64, 128) for layout in ("contiguous", "channels_last")]
    assert all(len(r["epoch_s"]) == 3 and r["warm_images_per_s"] > 0 for r in data["loop"])
    assert all(r["speedup"] > 0 for r in data["loop"] if r["layout"] == "channels_last")


@pytest.mark.slow
def test_quant_schemes_quick(tmp_path: Path) -> None:
    result = _run("quant_schemes.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "quant_schemes_quick.json").read_text())
    rows = {r["scheme"]: r for r in data["schemes"]}
    assert set(rows) == {"fp32", "fp16", "int8_dynamic", "int8_static"}
    assert rows["fp16"]["mb"] < rows["fp32"]["mb"] and rows["int8_static"]["mb"] < rows["fp16"]["mb"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["median_ms"] > 0 for r in rows.values())
