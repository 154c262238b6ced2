"""Kill the launcher mid-study (SIGKILL), run the same command again: nothing finished is lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import optuna
import pytest

from search import attrs
from tests.search.clirun import TINY_ARGS, cli, spawn

pytestmark = pytest.mark.slow


def _states(url: str) -> list[tuple[int, str, tuple | None]]:
    if not Path(url[len("sqlite:///"):]).exists():
        return []
    try:
        study = optuna.load_study(study_name="esfair", storage=url)
    except Exception:  # noqa: BLE001 - not created yet, or the launcher is creating the schema
        return []
    return [(t.number, t.state.name, tuple(t.values) if t.values else None) for t in study.trials]


def test_killed_launcher_resumes_and_reruns_the_interrupted_trial(tiny_data: Path, tmp_path: Path) -> None:
    args = ("--data", str(tiny_data), "--trials", "4", "--latency", "fake", "--out", "runs",
            "--override", "loss_kd=0", *TINY_ARGS)
    url = f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}"
    proc = spawn("search.launch", *args, cwd=tmp_path)
    deadline = time.monotonic() + 600
    before: list[tuple[int, str, tuple | None]] = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            before = _states(url)
            if any(s == "COMPLETE" for _, s, _ in before) and any(s == "RUNNING" for _, s, _ in before):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the launcher finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_running = [n for n, s, _ in _states(url) if s == "RUNNING"]
    assert killed_running, "a trial should be left RUNNING by the kill"
    finished_before = {n: v for n, s, v in _states(url) if s == "COMPLETE"}

    again = cli("search.launch", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "interrupted by a crash" in again.stdout

    study = optuna.load_study(study_name="esfair", storage=url)
    by_number = {t.number: t for t in study.trials}
    for number in killed_running:
        assert by_number[number].state.name == "FAIL"
        assert "interrupted" in by_number[number].system_attrs.get("fail_reason", "")
    for number, values in finished_before.items():
        assert by_number[number].state.name == "COMPLETE" and tuple(by_number[number].values) == values
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 4
    assert all(t.user_attrs.get(attrs.CANDIDATE) for t in study.trials if t.state.name == "COMPLETE")
