"""Sampler registry: ``tpe`` (default), ``nsga2``, ``random``; unknown names fail fast.

Default: multivariate TPE with constraints, chosen on the evidence of ``bench/known_fronts.py`` (README,
"Search efficiency"). DESIGN.md's earlier measurement on 3-objective DTLZ2/WFG4 at 100
evaluations gave multivariate TPE a hypervolume ratio of 0.51/0.50 against NSGA-II 0.29/0.46 and
random 0.28/0.45; at the budgets of a search (tens of trials) NSGA-II's population-based updates
barely start. Constraints (latency/size budgets) reach the samplers through the ``constraint``
user attribute each trial stores.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from search import attrs

SAMPLERS = ("tpe", "nsga2", "random")
DEFAULT_SAMPLER = "tpe"


def constraints_from_trial(trial: Any) -> Sequence[float]:
    """Optuna ``constraints_func``: the stored constraint values (<= 0 feasible)."""
    return trial.user_attrs.get(attrs.CONSTRAINT, [0.0])


def record_constraints(trial: Any, violations: Mapping[str, float]) -> None:
    """Store constraint values (<= 0 met) by name where this Optuna's samplers read them.

    Optuna >= 5 reads ``Trial.set_constraint``; older releases read the ``constraint`` user
    attribute through :func:`constraints_from_trial`. The user attribute is written either way
    (hwsearch's readers use it).
    """
    trial.set_user_attr(attrs.CONSTRAINT, [float(v) for v in violations.values()])
    if hasattr(trial, "set_constraint"):
        for name, value in violations.items():
            trial.set_constraint(name, float(value))


def make_sampler(name: str, *, seed: int | None, n_startup_trials: int = 4):  # type: ignore[no-untyped-def]
    """Build sampler ``name``.

    Args:
        name: One of :data:`SAMPLERS`.
        seed: Sampler seed (``None`` for a random seed).
        n_startup_trials: Random trials before TPE models the results (small budgets need few).

    Raises:
        ValueError: For an unknown name, listing the known ones.
    """
    import optuna

    legacy = None if hasattr(optuna.trial.Trial, "set_constraint") else constraints_from_trial
    builders: dict[str, Callable[[], Any]] = {
        "tpe": lambda: optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, n_startup_trials=n_startup_trials,
            constraints_func=legacy,
        ),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(
            seed=seed, population_size=8, constraints_func=legacy
        ),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    if name not in builders:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}")
    return builders[name]()
