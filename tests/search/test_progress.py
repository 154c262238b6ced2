"""Per-trial log lines: what ``--no-progress`` prints for each finished trial."""

from __future__ import annotations

import datetime
import io

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search import attrs
from search.progress import SearchProgress, occupancy_text
from spaces.registry import get_space

START = datetime.datetime(2026, 1, 1, 12, 0, 0)


def _trial(state: TrialState, **user_attrs: object) -> optuna.trial.FrozenTrial:
    trial = create_trial(state=state, params={"lr": 0.01}, distributions={"lr": FloatDistribution(1e-4, 1.0)},
                         values=[0.5, 0.3, 1.0] if state == TrialState.COMPLETE else None,
                         user_attrs={attrs.CANDIDATE_TEXT: "lcnet x0.5 @96 ce fp32", **user_attrs})
    trial.number = 7
    trial.datetime_start, trial.datetime_complete = START, START + datetime.timedelta(seconds=42)
    return trial


TASK = get_space("esfair").task


def test_each_finished_trial_logs_one_line_when_the_bar_is_off() -> None:
    log = io.StringIO()
    callback = SearchProgress(60, TASK, (1, 3, 9), disable=True, log=log)
    rung2 = {"epochs": 9, "values": [0.61, 0.25, 1.234]}
    callback(None, _trial(TrialState.COMPLETE, **{attrs.TRAINED: True, attrs.FEASIBLE: True, attrs.RUNG: 2,
                                                  attrs.rung_key(2): rung2}))
    callback(None, _trial(TrialState.PRUNED, **{attrs.TRAINED: True, attrs.RUNG: 0, attrs.STOPPED: "rung 0: 4 of 6",
                                                attrs.rung_key(0): {"epochs": 1, "values": [0.4, 0.2, 2.0]}}))
    callback(None, _trial(TrialState.COMPLETE, **{attrs.TRAINED: False, attrs.FEASIBLE: False,
                                                  attrs.INFEASIBLE_REASON: "latency 9.1 ms > budget 6.0 ms"}))
    callback(None, _trial(TrialState.FAIL, **{attrs.FAIL_REASON: "out of memory"}))
    callback.close()
    lines = log.getvalue().splitlines()
    assert lines == [
        "trial 7 complete in 42 s (9 epochs): accuracy 0.5 fairness 0.3 latency_ms 1 | lcnet x0.5 @96 ce fp32",
        "trial 7 stopped at rung 0 after 42 s: accuracy 0.4 fairness 0.2 latency_ms 2 | rung 0: 4 of 6 | "
        "lcnet x0.5 @96 ce fp32",
        "trial 7 screened out in 42 s: latency 9.1 ms > budget 6.0 ms | lcnet x0.5 @96 ce fp32",
        "trial 7 FAILED after 42 s: out of memory",
    ]
    assert callback.best == {"accuracy": 0.5, "fairness": 0.3, "latency_ms": 1.0}


def test_the_bar_prints_no_log_lines() -> None:
    log = io.StringIO()
    callback = SearchProgress(60, TASK, (1,), disable=False, log=log)
    callback(None, _trial(TrialState.FAIL, **{attrs.FAIL_REASON: "boom"}))
    callback.close()
    assert log.getvalue() == ""


def test_rung_occupancy_names_epochs_finished_and_running() -> None:
    assert occupancy_text({0: 12, 1: 4}, {0: 1, 2: 1}, (1, 3, 9)) == "1ep:12(+1) 3ep:4 9ep:0(+1)"
