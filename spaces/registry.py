"""Registry of search spaces, in timm's style: register by decorator, fail fast on unknown names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from spaces.candidate import Candidate
from spaces.task import Task


class TrialLike(Protocol):
    """The part of ``optuna.trial.Trial`` a space function uses (define-by-run)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...


SpaceFn = Callable[[TrialLike], Candidate]


class UnknownSpaceError(KeyError):
    """Raised for a space name that is not registered; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class SpaceSpec:
    """A registered space.

    Attributes:
        name: Registry name (``esfair``).
        fn: Define-by-run function; it only calls ``trial.suggest_*`` (no computation), so Optuna
            and Ray drivers can share it.
        task: Data, objectives, constraints and score of the space.
        baselines: Hand-designed recipes, by name, that ``--baselines`` enqueues first.
    """

    name: str
    fn: SpaceFn
    task: Task
    baselines: Callable[[], dict[str, Candidate]]

    def sample(self, trial: TrialLike) -> Candidate:
        """Run the define-by-run function on ``trial``."""
        return self.fn(trial)


_REGISTRY: dict[str, SpaceSpec] = {}


def register_space(
    name: str, *, task: Task, baselines: Callable[[], dict[str, Candidate]] | None = None
) -> Callable[[SpaceFn], SpaceFn]:
    """Decorator registering a define-by-run space function under ``name``."""

    def decorate(fn: SpaceFn) -> SpaceFn:
        if name in _REGISTRY:
            raise ValueError(f"space {name!r} is already registered")
        _REGISTRY[name] = SpaceSpec(name=name, fn=fn, task=task, baselines=baselines or dict)
        return fn

    return decorate


def list_spaces() -> list[str]:
    """Registered space names, sorted."""
    return sorted(_REGISTRY)


def get_space(name: str) -> SpaceSpec:
    """The registered space ``name``.

    Raises:
        UnknownSpaceError: With the list of known spaces.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownSpaceError(
            f"unknown space {name!r}; known spaces: {', '.join(list_spaces()) or '(none)'}"
        ) from None
