"""Local latency is never measured while another trial trains: two trials at once (threads, or Ray
workers), and the stored timestamps of every measurement round and every training step never overlap."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest

from search import attrs
from tests.search.clirun import cli
from tests.search.scaleutil import cheap_with_epochs

pytestmark = pytest.mark.slow


def _windows(url: str) -> tuple[list[tuple[int, float, float]], list[tuple[int, float, float]]]:
    """``(measurement windows, training windows)`` of every trial, each as ``(trial, start, end)``."""
    measured, trained = [], []
    for t in optuna.load_study(study_name="esfair", storage=url).get_trials(deepcopy=False):
        latencies = [(t.user_attrs.get(attrs.SCREEN) or {}).get("latency") or {},
                     (t.user_attrs.get(attrs.METRICS) or {}).get("latency") or {}]
        measured += [(t.number, a, b) for latency in latencies for a, b in latency.get("windows") or []]
        for record in attrs.rung_records(t.user_attrs).values():
            trained += [(t.number, a, b) for a, b in record.get("train_windows") or []]
    return measured, trained


def _check(url: str) -> None:
    measured, trained = _windows(url)
    assert measured and trained
    overlaps = [(m, s) for m in measured for s in trained if m[1] < s[2] and s[1] < m[2]]
    assert overlaps == [], overlaps[:3]
    concurrent = any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in trained for b in trained)
    assert concurrent, "two trials should have trained at the same time"
    interleaved = [m for m in measured
                   if any(s[0] != m[0] and s[2] <= m[1] for s in trained)
                   and any(s[0] != m[0] and s[1] >= m[2] for s in trained)]
    assert interleaved, "some measurement should have happened while another trial was mid-training"


def test_two_local_slots_never_measure_while_the_other_trains(tiny_data: Path, tmp_path: Path) -> None:
    result = cli("search.launch", "--data", str(tiny_data), "--trials", "6", "--jobs", "2", "--latency", "local",
                 "--out", "runs", *cheap_with_epochs(3), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    _check(f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}")


def test_two_ray_workers_never_measure_while_the_other_trains(tiny_data: Path, tmp_path: Path) -> None:
    cpus = f"{(os.cpu_count() or 2) / 2:g}"
    result = cli("search.launch", "--data", str(tiny_data), "--trials", "6", "--backend", "ray", "--trial-cpus",
                 cpus, "--latency", "local", "--out", "runs", *cheap_with_epochs(3), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    _check(f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}")

