"""hwsearch's search driver on 3-objective problems with known Pareto fronts, against pymoo's NSGA-II.

    python bench/known_fronts.py [--budget 100 --seeds 10] [--quick] [--out runs/bench]

What runs: pymoo's DTLZ2, DTLZ4, WFG4 and WFG9 with 3 objectives and 8 variables, encoded like the
esfair space: of the 8 variables, 3 are floats, 1 a float on a 0.05 grid (``suggest_float(step=)``,
like ``prune_ratio``), 2 integers (``suggest_int(0, 20)``) and 2 categoricals with 7 levels
(:data:`LEVELS`). The grids and levels hold the optimal distance value of DTLZ2/4 (0.5) and WFG4
(0.35), so their true fronts stay reachable; WFG9's optimal distance values depend on one another
(0.125, 0.166, 0.226, 0.35 for the last one at 0.35) and are not all on the grids, so its best
reachable ratio is a little below 1 for every arm alike. A candidate is decoded from these to the
problem's box.

The driver is the one hwsearch's launcher runs (:func:`run_optuna`): a sampler from
``search.samplers.make_sampler`` (or Optuna's defaults, for comparison), define-by-run
suggestions, ask/tell in batches of ``--batch`` pending trials (what ``--jobs N`` does), and
constraints recorded with ``search.samplers.record_constraints`` before the objectives are known,
the way the search records a screened candidate's (``search.records``). The constraint mimics the latency budget:
a candidate whose distance variables stray from their optimum by more than the median of uniform
random candidates is infeasible (about half the random candidates, like a latency budget screening
out half the architectures) and gets no objective evaluation; its values are reported as the
worst (the reference point), exactly like a screened-out trial. The constraint never cuts the true
front (the front lies at zero distance), so the true front and its hypervolume are unchanged.

Hypervolume (``search.front.hypervolume_of_scaled``, the search's own): objectives divided by the
front's nadir (DTLZ: 1, 1, 1; WFG: 2, 4, 6), so the true front spans [0, 1] per objective, reference
1.1 in every objective, only feasible evaluated points; the ratio is to the exact hypervolume of the
true front, ``1.1**3 - pi/6`` (all four fronts are the unit-sphere octant after normalisation).

Arms: ``hwsearch-tpe`` (the default, ``make_sampler("tpe")``), ``tpe-startup10`` (the same with
10 random start-up trials), ``optuna-tpe`` (``TPESampler()`` defaults: independent TPE for
multi-objective studies), ``hwsearch-nsga2`` (population 8), ``optuna-nsga2`` (``NSGAIISampler()``
defaults, population 50), ``random``, ``hwsearch-tpe-x4`` (the default sampler asked for 4 trials
at a time: ``--jobs 4``), ``hwsearch-tpe-screened`` (the default where screened-out candidates are
free, as they nearly are in hwsearch: the budget counts evaluated candidates only), and
``pymoo-nsga2`` (pymoo's NSGA-II with population ``budget // 5``, i.e. five generations, on the
same encoding: a continuous genome snapped to the grid/levels before evaluation, the constraint
as pymoo's inequality constraint).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import format_table, spread

from search.front import REFERENCE, hypervolume_of_scaled

N_VAR = 8
N_OBJ = 3
LEVELS: tuple[float, ...] = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)
"""Categorical levels (in the unit box): hold DTLZ's optimal distance value 0.5 and WFG's 0.35."""
INT_STEPS = 20
KINDS: tuple[str, ...] = ("float", "float", "int", "cat", "step", "cat", "int", "float")
"""Variable kinds by index: like the esfair space, a mix of floats, a stepped float, integers and
categoricals."""
PROBLEMS: tuple[str, ...] = ("dtlz2", "dtlz4", "wfg4", "wfg9")
OPTUNA_ARMS: tuple[str, ...] = (
    "hwsearch-tpe", "tpe-startup10", "optuna-tpe", "hwsearch-nsga2", "optuna-nsga2", "random",
    "hwsearch-tpe-x4", "hwsearch-tpe-screened",
)
ARMS: tuple[str, ...] = (*OPTUNA_ARMS, "pymoo-nsga2")
DEFAULT_ARM = "hwsearch-tpe"
MAX_ASKS_FACTOR = 10
"""The screened arm stops after ``MAX_ASKS_FACTOR * budget`` asks even if few were feasible."""
SPHERE_FRONT_HV = (REFERENCE ** N_OBJ - math.pi / 6.0) / REFERENCE ** N_OBJ
"""Hypervolume fraction (of the reference box) of the unit-sphere octant front (DTLZ2/4, WFG4-9 after
normalisation): the reference box minus the octant of the unit ball."""


@dataclass(frozen=True)
class KnownFront:
    """A pymoo problem with a spherical front, its normalisation and its screening constraint.

    Attributes:
        name: pymoo name.
        problem: The pymoo problem (8 variables, 3 objectives).
        nadir: Per-objective scale of the true front (its ideal is the origin).
        distance_index: First index of the distance variables (the rest are position variables).
        optimum: Optimal value of the distance variables, in the unit box (the centre of the
            constraint; WFG9's optimal values vary around it and are feasible).
        threshold: Median distance deviation of uniform random candidates (the constraint bound).
    """

    name: str
    problem: Any
    nadir: np.ndarray
    distance_index: int
    optimum: float
    threshold: float

    @classmethod
    def make(cls, name: str, constrained: bool = True) -> KnownFront:
        """Build problem ``name`` (one of :data:`PROBLEMS`); unconstrained: every point feasible."""
        from pymoo.problems import get_problem

        problem = get_problem(name, n_var=N_VAR, n_obj=N_OBJ)
        if name.startswith("dtlz"):
            nadir, index, optimum = np.ones(N_OBJ), N_OBJ - 1, 0.5
        else:
            nadir, index, optimum = 2.0 * np.arange(1, N_OBJ + 1), int(problem.k), 0.35
        rng = np.random.default_rng(12345)
        samples = np.stack([decode_unit(row) for row in rng.random((4000, N_VAR))])
        deviation = np.sum((samples[:, index:] - optimum) ** 2, axis=1)
        threshold = float(np.median(deviation)) if constrained else math.inf
        return cls(name, problem, nadir, index, optimum, threshold)

    def constraint(self, unit: np.ndarray) -> float:
        """Constraint value of a decoded unit-box point (<= 0 feasible)."""
        return float(np.sum((unit[self.distance_index:] - self.optimum) ** 2) - self.threshold)

    def evaluate(self, unit: np.ndarray) -> np.ndarray:
        """Normalised objective vector of a decoded unit-box point."""
        x = self.problem.xl + unit * (self.problem.xu - self.problem.xl)
        return np.asarray(self.problem.evaluate(x[None])[0], dtype=float) / self.nadir


def decode_unit(genome: np.ndarray) -> np.ndarray:
    """Snap a continuous genome in [0, 1]^8 to the mixed encoding (grid, levels) of :data:`KINDS`."""
    out = np.clip(np.asarray(genome, dtype=float), 0.0, 1.0).copy()
    levels = np.asarray(LEVELS)
    for i, kind in enumerate(KINDS):
        if kind == "int":
            out[i] = round(out[i] * INT_STEPS) / INT_STEPS
        elif kind == "step":
            out[i] = round(out[i] / 0.05) * 0.05
        elif kind == "cat":
            out[i] = levels[int(np.argmin(np.abs(levels - out[i])))]
    return out


def suggest_unit(trial: Any) -> np.ndarray:
    """Define-by-run suggestion of the 8 variables, returned as a point of the unit box."""
    values = []
    for i, kind in enumerate(KINDS):
        name = f"x{i}"
        if kind == "float":
            values.append(trial.suggest_float(name, 0.0, 1.0))
        elif kind == "step":
            values.append(trial.suggest_float(name, 0.0, 1.0, step=0.05))
        elif kind == "int":
            values.append(trial.suggest_int(name, 0, INT_STEPS) / INT_STEPS)
        else:
            values.append(float(trial.suggest_categorical(name, list(LEVELS))))
    return np.asarray(values)


def optuna_sampler(arm: str, seed: int) -> Any:
    """The Optuna sampler of ``arm``."""
    import optuna

    from search.samplers import make_sampler

    if arm in ("hwsearch-tpe", "hwsearch-tpe-x4", "hwsearch-tpe-screened"):
        return make_sampler("tpe", seed=seed)
    if arm == "tpe-startup10":
        return make_sampler("tpe", seed=seed, n_startup_trials=10)
    if arm == "hwsearch-nsga2":
        return make_sampler("nsga2", seed=seed)
    if arm == "random":
        return make_sampler("random", seed=seed)
    if arm == "optuna-tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if arm == "optuna-nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise ValueError(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")


Record = tuple[bool, list[float]]
"""One evaluation: (feasible, normalised objective vector or the reference point)."""


def run_optuna(arm: str, front: KnownFront, budget: int, seed: int) -> list[Record]:
    """Run ``arm`` on ``front`` for ``budget`` counted evaluations; returns them in order."""
    import optuna

    from search.samplers import record_constraints

    study = optuna.create_study(directions=["minimize"] * N_OBJ, sampler=optuna_sampler(arm, seed))
    batch = 4 if arm.endswith("-x4") else 1
    screened_free = arm.endswith("-screened")
    worst = [1.1] * N_OBJ
    records: list[Record] = []
    asks = 0
    while len(records) < budget and asks < MAX_ASKS_FACTOR * budget:
        pending = []
        for _ in range(min(batch, budget - len(records))):
            trial = study.ask()
            unit = suggest_unit(trial)
            violation = front.constraint(unit)
            record_constraints(trial, {"distance_over_budget": violation})
            pending.append((trial, unit, violation))
        asks += len(pending)
        for trial, unit, violation in pending:
            if violation > 0:
                study.tell(trial, worst)
                if not screened_free:
                    records.append((False, worst))
                continue
            values = front.evaluate(unit)
            study.tell(trial, [float(v) for v in values])
            records.append((True, [float(v) for v in values]))
    return records


def run_pymoo(front: KnownFront, budget: int, seed: int) -> list[Record]:
    """pymoo's NSGA-II (population ``budget // 5``) on the same encoding and constraint."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.optimize import minimize

    records: list[Record] = []

    class Encoded(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=N_VAR, n_obj=N_OBJ, n_ieq_constr=1, xl=0.0, xu=1.0)

        def _evaluate(self, x: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            units = [decode_unit(row) for row in x]
            g = np.array([[front.constraint(u)] for u in units])
            f = []
            for unit, violation in zip(units, g[:, 0]):
                values = front.evaluate(unit) if violation <= 0 else np.full(N_OBJ, 1.1)
                f.append(values)
                records.append((bool(violation <= 0), [float(v) for v in values]))
            out["F"], out["G"] = np.asarray(f), g

    pop = max(4, budget // 5)
    minimize(Encoded(), NSGA2(pop_size=pop), ("n_eval", budget), seed=seed, verbose=False)
    return records[:budget]


def hv_ratio(records: Sequence[Record]) -> float:
    """Hypervolume of the feasible evaluated points over the true front's hypervolume."""
    feasible = np.asarray([v for ok, v in records if ok], dtype=float).reshape(-1, N_OBJ)
    return hypervolume_of_scaled(feasible, REFERENCE) / SPHERE_FRONT_HV


def curve(records: Sequence[Record], points: Sequence[int]) -> list[float]:
    """HV ratio after each of ``points`` evaluations."""
    return [hv_ratio(records[:n]) for n in points]


def run_all(problems: Sequence[str], arms: Sequence[str], seeds: Sequence[int], budget: int,
            constrained: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every (problem, arm, seed): HV ratio at ``budget`` and a convergence curve."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    step = max(1, budget // 20)
    points = list(range(step, budget + 1, step))
    results: dict[str, Any] = {"budget": budget, "seeds": list(seeds), "points": points,
                               "constrained": constrained, "runs": {}}
    for name in problems:
        front = KnownFront.make(name, constrained)
        for arm in arms:
            start = time.perf_counter()
            ratios, curves, feasible = [], [], []
            for seed in seeds:
                records = run_pymoo(front, budget, seed) if arm == "pymoo-nsga2" else run_optuna(arm, front, budget, seed)
                ratios.append(hv_ratio(records))
                curves.append(curve(records, points))
                feasible.append(sum(ok for ok, _ in records) / max(1, len(records)))
            results["runs"][f"{name}/{arm}"] = {"ratios": ratios, "curves": curves, "feasible_share": feasible}
            log(f"  {name:<6} {arm:<22} HV ratio {spread(ratios, 3)}  ({time.perf_counter() - start:.1f} s)")
    return results


def table(results: dict[str, Any], problems: Sequence[str], arms: Sequence[str]) -> str:
    """Arms x problems: median [min-max] HV ratio to the true front, feasible share, mean rank of the
    medians, and paired wins/losses against the default (same problem and seed)."""
    runs = results["runs"]
    medians = {arm: [statistics.median(runs[f"{p}/{arm}"]["ratios"]) for p in problems] for arm in arms}
    rows = []
    for arm in arms:
        cells = [spread(runs[f"{p}/{arm}"]["ratios"], 3) for p in problems]
        feasible = statistics.median(statistics.median(runs[f"{p}/{arm}"]["feasible_share"]) for p in problems)
        ranks = [sorted(-medians[a][j] for a in arms).index(-medians[arm][j]) + 1 for j in range(len(problems))]
        paired = "-"
        if arm != DEFAULT_ARM and DEFAULT_ARM in arms:
            pairs = [(a, b) for p in problems
                     for a, b in zip(runs[f"{p}/{arm}"]["ratios"], runs[f"{p}/{DEFAULT_ARM}"]["ratios"])]
            wins = sum(a > b + 1e-9 for a, b in pairs)
            losses = sum(a < b - 1e-9 for a, b in pairs)
            paired = f"{wins}/{len(pairs) - wins - losses}/{losses}"
        rows.append([arm, *cells, f"{feasible:.0%}", f"{statistics.mean(ranks):.1f}", paired])
    return format_table(["arm", *problems, "feasible", "mean rank", f"vs {DEFAULT_ARM} W/T/L"], rows)


def plot(results: dict[str, Any], problems: Sequence[str], arms: Sequence[str], path: Path) -> None:
    """Median HV ratio against evaluations, one panel per problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(problems), figsize=(4.2 * len(problems), 3.6), squeeze=False)
    for ax, name in zip(axes[0], problems):
        for arm in arms:
            curves = np.asarray(results["runs"][f"{name}/{arm}"]["curves"])
            ax.plot(results["points"], np.median(curves, axis=0), label=arm,
                    linewidth=2.2 if arm == "hwsearch-tpe" else 1.1)
        ax.set_title(f"{name.upper()} (3 obj, 8 mixed vars)")
        ax.set_xlabel("evaluations")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("HV / HV(true front), median over seeds")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run every arm, print and write the table, the JSON and the PNG."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=100, help="evaluations per run (default 100)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per arm and problem (default 10)")
    p.add_argument("--problems", default=",".join(PROBLEMS), help=f"comma-separated subset of {','.join(PROBLEMS)}")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {','.join(ARMS)}")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder (default runs/bench)")
    p.add_argument("--no-constraint", action="store_true", help="no screening constraint (every candidate is evaluated)")
    p.add_argument("--quick", action="store_true", help="CI size: 2 problems, budget 30, 2 seeds")
    args = p.parse_args(argv)
    problems = [s for s in args.problems.split(",") if s]
    arms = [s for s in args.arms.split(",") if s]
    budget, seeds = args.budget, args.seeds
    if args.quick:
        problems, budget, seeds = problems[:1] + problems[2:3], 30, 2
    unknown = sorted(set(problems) - set(PROBLEMS)) + sorted(set(arms) - set(ARMS))
    if unknown:
        print(f"error: unknown problem/arm {', '.join(unknown)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    constrained = not args.no_constraint
    setting = "with the screening constraint" if constrained else "unconstrained"
    print(f"known fronts: {', '.join(problems)}; {budget} evaluations, seeds 0-{seeds - 1}, {setting}; "
          f"HV ratio to the true front (ref 1.1^3 on nadir-normalised objectives)")
    start = time.perf_counter()
    results = run_all(problems, arms, list(range(seeds)), budget, constrained)
    text = table(results, problems, arms)
    header = (f"HV ratio to the true front at {budget} evaluations ({setting}), median [min-max] over {seeds} "
              f"seeds; feasible = median share of evaluations that met the constraint; mean rank of the "
              f"per-problem medians; W/T/L = runs (problem x seed) with a higher/equal/lower HV than {DEFAULT_ARM}")
    print(f"\n{header}\n{text}\n")
    stem = args.out / f"known_fronts{'' if constrained else '-unconstrained'}-{budget}"
    stem.with_suffix(".md").write_text(f"{header}\n\n{text}\n")
    stem.with_suffix(".json").write_text(json.dumps({"problems": problems, "arms": arms, **results}, indent=1))
    plot(results, problems, arms, stem.with_suffix(".png"))
    print(f"wrote {stem}.md, {stem}.json, {stem}.png ({(time.perf_counter() - start) / 60:.1f} min)")
    if not all(math.isfinite(r) for run in results["runs"].values() for r in run["ratios"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
