"""Registry of search spaces: register by decorator, fail fast on unknown names."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from spaces.candidate import Candidate
from spaces.registries import Registry, UnknownNameError
from spaces.task import Task


class TrialLike(Protocol):
    """The part of ``optuna.trial.Trial`` a space function uses (define-by-run)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...


@dataclass(frozen=True)
class SampleContext:
    """What the search tells a space function about this run (picklable, no computation).

    Attributes:
        warm_starts: ``(backbone, width)`` pairs for which pretrained weights are at hand; a
            space offers the ``warm_start`` dimension only for those.
        grouped_data: Whether the data has groups (group-aware training methods need them).
    """

    warm_starts: frozenset[tuple[str, float]] = field(default_factory=frozenset)
    grouped_data: bool = True

    def has_weights(self, backbone: str, width: float) -> bool:
        """True when pretrained weights exist for ``backbone`` at ``width``."""
        return (backbone, float(width)) in self.warm_starts


def sample_architecture(trial: TrialLike, context: SampleContext, backbones: Sequence[str],
                        widths: Sequence[float]) -> tuple[str, float, bool]:
    """``(backbone, width, warm_start)``: the architecture dimensions every built-in space shares.

    ``warm_start`` is a dimension only for a backbone and width the run has pretrained weights for
    (``--pretrained``), so a search without weights has exactly the dimensions it can use.
    """
    backbone = trial.suggest_categorical("backbone", list(backbones))
    width = trial.suggest_categorical("width", list(widths))
    warm = context.has_weights(backbone, width) and bool(trial.suggest_categorical("warm_start", [False, True]))
    return backbone, width, warm


SpaceFn = Callable[..., Candidate]
"""``fn(trial)`` or ``fn(trial, context)``: only calls ``trial.suggest_*``, returns a Candidate."""


class UnknownSpaceError(UnknownNameError):
    """Raised for a space name that is not registered; the message lists the known ones."""


def no_start_point() -> None:
    """The start point of a space that declares none: its search starts where its sampler does."""
    return None


@dataclass(frozen=True)
class SpaceSpec:
    """A registered space.

    Attributes:
        name: Registry name (``esfair``).
        fn: Define-by-run function; it only calls ``trial.suggest_*`` (no computation), so Optuna
            and Ray drivers can share it. It takes the trial, and a :class:`SampleContext` when its
            signature has a second parameter.
        task: Data, objectives, constraints and scores of the space.
        baselines: Hand-designed recipes, by name, that ``--baselines`` enqueues first.
        start_point: The space's starting candidate, by name (``None``: the search starts where
            its sampler does): a plain, cheap recipe that a new study trains first and brings to
            the top rung, so that a search never returns less than the first thing a practitioner
            would try (SMAC's "default configuration first"). ``--no-start-point`` skips it.
    """

    name: str
    fn: SpaceFn
    task: Task
    baselines: Callable[[], dict[str, Candidate]]
    start_point: Callable[[], tuple[str, Candidate] | None] = field(default=no_start_point)

    def sample(self, trial: TrialLike, context: SampleContext | None = None) -> Candidate:
        """Run the define-by-run function on ``trial``."""
        if len(inspect.signature(self.fn).parameters) >= 2:
            return self.fn(trial, context or SampleContext())
        return self.fn(trial)


SPACES: Registry[SpaceSpec] = Registry("space", UnknownSpaceError)


def register_space(
    name: str, *, task: Task, baselines: Callable[[], dict[str, Candidate]] | None = None,
    start_point: Callable[[], tuple[str, Candidate] | None] | None = None,
) -> Callable[[SpaceFn], SpaceFn]:
    """Decorator registering a define-by-run space function under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorate(fn: SpaceFn) -> SpaceFn:
        SPACES.add(name, SpaceSpec(name=name, fn=fn, task=task, baselines=baselines or dict,
                                   start_point=start_point or no_start_point))
        return fn

    return decorate


def list_spaces() -> list[str]:
    """Registered space names, sorted."""
    return SPACES.names()


def get_space(name: str) -> SpaceSpec:
    """The registered space ``name``.

    Raises:
        UnknownSpaceError: With the list of known spaces.
    """
    return SPACES.get(name)
