"""Kill or stop the real launcher mid-study, run the same command again: nothing finished is lost,
and a candidate promoted through two rungs continues from its rung checkpoint."""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from search import attrs
from tests.search.clirun import TINY_ARGS, cli, spawn
from tests.search.scaleutil import cheap_with_epochs
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

def _trials(url: str) -> list[Any]:
    if not Path(url[len("sqlite:///"):]).exists():
        return []
    try:
        return optuna.load_study(study_name="esfair", storage=url).get_trials(deepcopy=False)
    except Exception:  # noqa: BLE001 - not created yet, or the launcher is creating the schema
        return []


def _ladder_args(data: Path) -> tuple[str, ...]:
    """CHEAP candidates of every width (so their figures differ) in rungs of 1, 2 and 20 epochs, eta 2."""
    overrides = cheap_with_epochs(None, free=("width",))
    return ("--data", str(data), "--rungs", "1,2,20", "--eta", "2", "--trials", "8", "--timeout", "900",
            "--latency", "fake", "--out", "runs", *overrides)


def test_a_killed_search_continues_its_promoted_candidate_from_the_rung_checkpoint(
    tiny_data: Path, tmp_path: Path,
) -> None:
    args = _ladder_args(tiny_data)
    url = f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}"
    proc = spawn("search.launch", *args, cwd=tmp_path)
    try:
        def training_top_rung() -> Any:
            assert proc.poll() is None, proc.communicate()[0]
            for t in _trials(url):
                record = t.user_attrs.get(attrs.rung_key(1)) or {}
                if t.state.name == "RUNNING" and (record.get("decision") or {}).get("promote"):
                    return t
            return None

        promoted = wait_for(training_top_rung, 600, "a candidate promoted through two rungs, training the third",
                            step=0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    checkpoint = promoted.user_attrs[attrs.rung_key(1)]["checkpoint"]
    assert hashlib.sha256(Path(checkpoint["path"]).read_bytes()).hexdigest() == checkpoint["sha256"]
    finished_before = {t.number: tuple(t.values) for t in _trials(url) if t.state.name == "COMPLETE"}

    again = cli("search.launch", *args, cwd=tmp_path, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "interrupted by a crash or a stop" in again.stdout
    assert "continue from their last promoted rung checkpoint" in again.stdout

    trials = {t.number: t for t in _trials(url)}
    killed = trials[promoted.number]
    assert killed.state.name == "FAIL" and killed.user_attrs[attrs.FAIL_REASON].startswith("interrupted")
    continuation = next(t for t in trials.values() if t.user_attrs.get(attrs.CONTINUES) == promoted.number)
    assert continuation.state.name == "COMPLETE" and continuation.params == killed.params
    top = continuation.user_attrs[attrs.rung_key(2)]
    assert top["resumed_from"] == {"trial": promoted.number, "rung": 1, "checkpoint_sha256": checkpoint["sha256"]}
    assert top["epochs"] == 20 and top.get("copied_from") is None
    for rung in (0, 1):
        copied = continuation.user_attrs[attrs.rung_key(rung)]
        assert copied["copied_from"] == promoted.number
        assert copied["checkpoint"] == killed.user_attrs[attrs.rung_key(rung)]["checkpoint"]
    assert "screen" not in top["stage_seconds"] and "prune_finetune" not in top["stage_seconds"]
    for number, values in finished_before.items():
        assert trials[number].state.name == "COMPLETE" and tuple(trials[number].values) == values
    assert all(t.state.name != "RUNNING" for t in trials.values())


def test_sigterm_mid_trial_fails_it_exits_143_without_abort_and_a_rerun_resumes(
    tiny_data: Path, tmp_path: Path,
) -> None:
    args = ("--data", str(tiny_data), "--trials", "3", "--latency", "fake", "--out", "runs",
            "--override", "loss_kd=0", *TINY_ARGS)
    url = f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}"
    proc = spawn("search.launch", *args, cwd=tmp_path)
    try:
        def training() -> bool:
            assert proc.poll() is None, proc.communicate()[0]
            return any(t.state.name == "RUNNING" and t.user_attrs.get(attrs.CANDIDATE) for t in _trials(url))

        wait_for(training, 600, "a trial that is training", step=0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, out
    assert "terminate called" not in out and "Traceback" not in out, out
    assert "interrupted: SIGTERM received" in out and "re-run the same command to resume" in out
    states = [(t.state.name, t.user_attrs.get(attrs.FAIL_REASON, "")) for t in _trials(url)]
    assert "RUNNING" not in [s for s, _ in states]
    assert any(s == "FAIL" and r.startswith("interrupted: SIGTERM") for s, r in states), states

    again = cli("search.launch", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sum(t.state.name == "COMPLETE" for t in _trials(url)) == 3
