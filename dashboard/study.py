"""One study as the pages read it: its attributes, trials, trials frame and front (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from optuna.trial import FrozenTrial

from dashboard.data import FAKE_LABEL, latency_kind, trials_frame
from dashboard.info import StudyInfo
from dashboard.pareto import FrontView, front_view, with_front


@dataclass
class LoadedStudy:
    """One study read now.

    Invariant: ``frame`` holds one row per trial of ``trials``, marked by ``view``.

    Attributes:
        info: Its attributes.
        trials: Its trials, as Optuna returns them.
        frame: The trials frame with the ``front`` marks.
        view: The study's front (:mod:`search.front`'s, as the CLI computes it).
    """

    info: StudyInfo
    trials: list[FrozenTrial]
    frame: pd.DataFrame
    view: FrontView

    @property
    def latency_is_fake(self) -> bool:
        """True when any latency of the study is computed by the fake backend."""
        return latency_kind(self.info, self.frame) == FAKE_LABEL


def read_study(info: StudyInfo, trials: list[FrozenTrial]) -> LoadedStudy:
    """A study's trials framed and marked with its front."""
    view = front_view(trials, info)
    return LoadedStudy(info, trials, with_front(trials_frame(trials, info), view), view)
