"""Per-trial log lines: what ``--no-progress`` prints for each finished trial."""

from __future__ import annotations

import datetime
import io

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search import attrs
from search.progress import ProgressCallback

START = datetime.datetime(2026, 1, 1, 12, 0, 0)


def _trial(state: TrialState, **user_attrs: object) -> optuna.trial.FrozenTrial:
    trial = create_trial(state=state, params={"lr": 0.01}, distributions={"lr": FloatDistribution(1e-4, 1.0)},
                         values=[0.5, 0.3, 1.0] if state == TrialState.COMPLETE else None,
                         user_attrs={attrs.CANDIDATE_TEXT: "lcnet x0.5 @96 ce fp32", **user_attrs})
    trial.number = 7
    trial.datetime_start, trial.datetime_complete = START, START + datetime.timedelta(seconds=42)
    return trial


def test_each_finished_trial_logs_one_line_when_the_bar_is_off() -> None:
    log = io.StringIO()
    callback = ProgressCallback(3, 0, disable=True, log=log)
    metrics = {"accuracy": 0.61, "fairness": {"fairness_part": 0.25}, "latency": {"median_ms": 1.234}}
    callback(None, _trial(TrialState.COMPLETE, **{attrs.TRAINED: True, attrs.FEASIBLE: True, attrs.METRICS: metrics}))
    callback(None, _trial(TrialState.COMPLETE, **{attrs.TRAINED: False, attrs.FEASIBLE: False,
                                                  attrs.INFEASIBLE_REASON: "latency 9.1 ms > budget 6.0 ms"}))
    callback(None, _trial(TrialState.FAIL, **{attrs.FAIL_REASON: "out of memory"}))
    callback.close()
    lines = log.getvalue().splitlines()
    assert lines == [
        "trial 7 trained in 42 s: acc 0.610 fair 0.250 lat 1.23 ms | lcnet x0.5 @96 ce fp32",
        "trial 7 screened out in 42 s: latency 9.1 ms > budget 6.0 ms | lcnet x0.5 @96 ce fp32",
        "trial 7 FAILED after 42 s: out of memory",
    ]
    assert callback.best == {"acc": 0.61, "fair": 0.25, "lat_ms": 1.234}


def test_the_bar_prints_no_log_lines() -> None:
    log = io.StringIO()
    callback = ProgressCallback(1, 0, disable=False, log=log)
    callback(None, _trial(TrialState.FAIL, **{attrs.FAIL_REASON: "boom"}))
    callback.close()
    assert log.getvalue() == ""
