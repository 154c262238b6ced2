"""A stop never leaves a trial RUNNING: SIGTERM/SIGINT at any point of the ask -> dispatch -> run cycle.

The race of issue 14 (a trial asked around the moment SIGTERM arrived stayed RUNNING) is driven
here with real processes and real signals: the driver loop, the study and the stop path are the
launcher's; only the jobs are cheap (:mod:`tests.search.stopper`). A widened ask->dispatch window
(``HWSEARCH_DEBUG_DISPATCH_DELAY_S``) and random signal times put the signal everywhere.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from search import attrs
from search.executors.driver import ENV_DISPATCH_DELAY



def _states(url: str) -> list[tuple[str, str]]:
    study = optuna.load_study(study_name="stop", storage=url)
    return [(t.state.name, t.user_attrs.get(attrs.FAIL_REASON, "")) for t in study.get_trials(deepcopy=False)]


def _signal_at_random_points(tmp_path: Path, signum: int, repetitions: int, *extra: str) -> None:
    """Start the stopper ``repetitions`` times on one study and stop it with ``signum`` at random times."""
    rng = random.Random(signum)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = {**os.environ, ENV_DISPATCH_DELAY: "0.15", "PYTHONUNBUFFERED": "1"}
    seen_running_points = 0
    for repetition in range(repetitions):
        proc = subprocess.Popen([sys.executable, "-m", "tests.search.stopper", url, str(tmp_path), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=Path(__file__).resolve().parents[2])
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "started":
            proc.kill()
            raise AssertionError(f"the stopper did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(rng.uniform(0.0, 1.5))
        before = [s for s, _ in _states(url)].count("RUNNING")
        seen_running_points += before > 0
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum, (repetition, err)
        assert "terminate called" not in err and "Traceback" not in err, err
        states = _states(url)
        assert all(state != "RUNNING" for state, _ in states), (repetition, states)
        interrupted = [reason for state, reason in states if state == "FAIL"]
        assert all(reason.startswith("interrupted:") for reason in interrupted), interrupted
    assert seen_running_points >= repetitions // 2, "the signal should often arrive while trials run"
    assert sum(state == "FAIL" for state, _ in _states(url)) >= repetitions // 2


@pytest.mark.parametrize("signum, repetitions", [(signal.SIGTERM, 20), (signal.SIGINT, 6)])
def test_signals_at_random_points_never_leave_a_trial_running(tmp_path: Path, signum: int, repetitions: int) -> None:
    _signal_at_random_points(tmp_path, signum, repetitions)


@pytest.mark.slow
def test_the_ray_executor_shares_the_stop_path(tmp_path: Path) -> None:
    _signal_at_random_points(tmp_path, signal.SIGTERM, 6, "--ray")
