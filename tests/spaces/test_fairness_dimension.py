"""The ``fairness_method`` dimension: Candidate field, esfair sampling, and resuming older studies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from search.samplers import SAMPLERS, make_sampler
from spaces import FAIRNESS_METHODS, Candidate, CandidateError, get_space

BASE = {"backbone": "mobilenetv3_small", "width": 0.75, "resolution": 64}


def test_candidate_fairness_method_defaults_validates_and_round_trips() -> None:
    assert Candidate(**BASE).fairness_method == "none"
    with pytest.raises(CandidateError) as info:
        Candidate(**BASE, fairness_method="fairmixup")
    assert "fairmixup" in str(info.value) and all(m in str(info.value) for m in FAIRNESS_METHODS)
    for method in FAIRNESS_METHODS:
        cand = Candidate(**BASE, fairness_method=method)
        assert cand.to_params()["fairness_method"] == method
        assert Candidate.from_params(cand.to_params()) == cand


def test_params_of_an_older_study_read_as_none() -> None:
    old = {k: v for k, v in Candidate(**BASE, prune_ratio=0.2).to_params().items() if k != "fairness_method"}
    assert Candidate.from_params(old).fairness_method == "none"


def test_describe_names_the_method_only_when_not_none() -> None:
    assert "none" not in Candidate(**BASE).describe()
    assert Candidate(**BASE).describe() == "mobilenetv3_small x0.75 @64 ce fp32"
    assert Candidate(**BASE, fairness_method="groupdro").describe() == "mobilenetv3_small x0.75 @64 ce groupdro fp32"


class _WithoutFairnessMethod:
    """A trial as an esfair space from before ``fairness_method`` saw it: the param is never suggested."""

    def __init__(self, trial: optuna.trial.Trial) -> None:
        self._trial = trial

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return "none" if name == "fairness_method" else self._trial.suggest_categorical(name, choices)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


def _run(study: optuna.Study, trials: int, old: bool) -> list[Candidate]:
    space = get_space("esfair")
    out = []
    for _ in range(trials):
        trial = study.ask()
        cand = space.sample(_WithoutFairnessMethod(trial) if old else trial)
        accuracy = 0.5 + 0.1 * (cand.fairness_method != "none") + 0.01 * cand.width
        study.tell(trial, [accuracy, 0.2, float(cand.resolution) / 100])
        out.append(cand)
    return out


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_resuming_an_older_study_samples_the_new_dimension(tmp_path: Path, sampler: str) -> None:
    storage = f"sqlite:///{tmp_path / 'old.db'}"
    directions = get_space("esfair").task.directions
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    old = optuna.create_study(study_name="esfair", storage=storage, directions=directions,
                              sampler=make_sampler(sampler, seed=0))
    _run(old, 8, old=True)
    assert all("fairness_method" not in t.params for t in old.trials)

    resumed = optuna.load_study(study_name="esfair", storage=storage, sampler=make_sampler(sampler, seed=1))
    new = _run(resumed, 12, old=False)
    trials = resumed.get_trials(deepcopy=False)
    assert len(trials) == 20 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert [Candidate.from_params(t.params).fairness_method for t in trials[:8]] == ["none"] * 8
    assert all(t.params["fairness_method"] == c.fairness_method for t, c in zip(trials[8:], new))
    assert len({c.fairness_method for c in new}) >= 2
