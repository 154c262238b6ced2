"""bench/scale_bench.py: its overhead arithmetic, and figure 3's worker processes on SQLite."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _scale_bench() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("scale_bench")


def _trial(number: int, start_s: float, wall_s: float, stages: dict[str, float]) -> SimpleNamespace:
    start = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=start_s)
    return SimpleNamespace(number=number, datetime_start=start, datetime_complete=start + dt.timedelta(seconds=wall_s),
                           user_attrs={"stage_seconds": stages})


def test_overhead_is_driver_wall_clock_minus_stage_seconds() -> None:
    bench = _scale_bench()
    trials = [_trial(1, 10.0, 4.0, {"train": 3.0}), _trial(0, 0.0, 10.0, {"screen": 1.0, "train": 8.0})]
    assert bench.overhead_shares(trials) == [(pytest.approx(1.0), pytest.approx(0.1)),
                                             (pytest.approx(1.0), pytest.approx(0.25))]
    assert bench.span_seconds(trials) == pytest.approx(14.0)


def test_database_workers_fill_one_sqlite_study_exactly(tmp_path: Path) -> None:
    bench = _scale_bench()
    rate = bench.db_throughput(f"sqlite:///{tmp_path / 'db.sqlite'}", "bench", workers=2, target=12)
    assert rate > 0


@pytest.mark.slow
def test_scale_bench_quick(tmp_path: Path) -> None:
    import json

    from tests.bench.test_benches import _run

    result = _run("scale_bench.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "scale_bench_quick.json").read_text())
    assert set(data["slots"]["trials_per_hour"]) == {"1", "2"} and data["slots"]["speedup"] > 0
    assert {k: v["postgresql"] for k, v in data["databases"].items()} == {"2": None, "3": None, "4": None}
    assert all(v["sqlite"] > 0 for v in data["databases"].values())
