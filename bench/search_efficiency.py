"""Search efficiency on the embedded esfair task: hwsearch's default vs random, Optuna NSGA-II and TPE.

    python bench/search_efficiency.py [--seeds 3 --budget 90] [--quick] [--out runs/bench]

Every arm is the real launcher, ``python -m search.launch``, one run at a time, each in its own
output folder (its own SQLite study and latency cache, so no arm profits from another's
measurements), with the same wall-clock budget (``--timeout``), seed, data and training budget:

* ``hwsearch``: ``python -m search.launch`` with its defaults (today multivariate TPE with
  constraints, ``search.samplers.DEFAULT_SAMPLER``); nothing about the search is changed.
* ``random``: the launcher with ``--sampler random``.
* ``optuna-nsga2`` / ``optuna-tpe``: the same launcher with ``search.samplers.make_sampler``
  replaced by Optuna's ``NSGAIISampler(seed=...)`` / ``TPESampler(seed=...)`` with their default
  settings (population 50; independent TPE with 10 start-up trials); constraints reach them through
  ``Trial.set_constraint`` as for the default.

What is scaled down, uniformly for every arm, so that 4 arms x 3 seeds fit in 30 minutes on 2 CPU
cores (plus any wait for a quiet machine): the data set is the embedded esfair generator (same
classes, groups and minority) with 320 training, 160 validation and 160 test images instead of
1200/400/400, every candidate trains for 4 epochs (``--override epochs=4``: 40 optimiser steps at
the default batch size, about what 1 epoch of the full set gives), and knowledge distillation is
fixed off (``--override loss_kd=0``: its teacher, trained once per study, costs more than an arm's
whole budget here). The latency budget is the space's default (6 ms, measured on
this CPU with one thread). The arm order is rotated per seed so that a drift in the machine's
load does not always hit the same arm, and each run waits (up to 2 minutes) until other users'
processes keep less than half a core busy: on a shared machine another user's job can slow a
trial several-fold (the busy cores before and the load average after each run are printed). A run
gets ``--timeout BUDGET`` and is terminated a few seconds after its budget (SIGTERM; the finished
trials are already stored); only trials finished within the budget count.

Hypervolume (``bench/common.py``): losses ``1 - accuracy``, ``1 - 3 * fairness_part`` and
``latency / latency budget``, reference point (1.1, 1.1, 1.1), feasible trained trials only,
measured on the validation split (what the search sees). ``HV / best`` divides by the
hypervolume of the union of every run's feasible trials (the best front known).

The same command also reports where the contest recipes (``--baselines``, trained with the same
budget but with their own loss mix, KD included) sit against the front hwsearch found, and what
latency-first screening and the latency cache saved in the hwsearch runs (``bench/trial_costs.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    dominates,
    esfair_losses,
    format_table,
    hypervolume,
    non_dominated,
    spread,
)

ARMS: tuple[str, ...] = ("hwsearch", "random", "optuna-nsga2", "optuna-tpe")
DEFAULT_ARM = "hwsearch"
STUDY = "esfair"
RECIPE_STUDY = "recipes"
LAUNCH_WITH = "--launch-with"
"""Internal first argument: run the launcher with ``make_sampler`` replaced (see :func:`launch_with`)."""
GRACE_S = 5.0
"""Seconds after its budget that a run still running is terminated (its in-flight trial is not counted)."""
READY_LINE = "latency: "
"""The launcher prints this line just before optimising; the budget is timed from it."""
QUIET_CORES = 0.5
"""A run starts once the other users' processes keep less than this many cores busy (none of ours runs
in between), or after :data:`QUIET_WAIT_S`; the busy cores at the start of every run are recorded."""
QUIET_WAIT_S = 120.0
HARD_LIMIT_S = 1800.0
"""A run still alive this long after its start is killed (a hung process must not hang the bench)."""


@dataclass(frozen=True)
class Config:
    """Size of one benchmark run (every arm gets the same).

    Attributes:
        seeds: Seeds; each arm runs once per seed.
        budget_s: Wall-clock budget per run, in seconds.
        counts: Images per split of the embedded data set.
        image_size: Side of the generated images.
        overrides: ``--override`` items applied to every arm's candidates.
        recipe_overrides: ``--override`` items of the recipe run.
        arms: Arms to run.
        quiet_wait_s: Longest wait for a quiet machine before each run.
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    budget_s: float = 90.0
    counts: dict[str, int] = field(default_factory=lambda: {"train": 320, "val": 160, "test": 160})
    image_size: int = 224
    overrides: tuple[str, ...] = ("epochs=4", "loss_kd=0")
    recipe_overrides: tuple[str, ...] = ("epochs=4",)
    arms: tuple[str, ...] = ARMS
    quiet_wait_s: float = QUIET_WAIT_S

    def key(self) -> str:
        """Hash of everything that changes a run's result (reused runs must match it)."""
        raw = json.dumps({"counts": self.counts, "size": self.image_size, "overrides": self.overrides,
                          "budget": self.budget_s}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


QUICK = Config(seeds=(0,), budget_s=40.0, counts={"train": 48, "val": 36, "test": 36}, image_size=64,
               overrides=("epochs=1", "loss_kd=0"), recipe_overrides=("epochs=1",), quiet_wait_s=0.0)


@dataclass
class Point:
    """A finished trial of a run, as the benchmark needs it.

    Attributes:
        number: Trial number. finished_s: Seconds from the run's first trial start to this finish.
        trained: Trained (not screened out). feasible: Within every budget.
        losses: Normalised losses (trained trials only). text: Candidate description.
        metrics: Validation metrics (trained trials only). baseline: Recipe name, if any.
    """

    number: int
    finished_s: float
    trained: bool
    feasible: bool
    losses: tuple[float, float, float] | None
    text: str
    metrics: dict[str, Any] | None
    baseline: str | None = None


def launch_with(arm: str, argv: Sequence[str]) -> int:
    """Run ``python -m search.launch argv`` with Optuna's default NSGA-II or TPE as the sampler.

    Only ``search.samplers.make_sampler`` is replaced; everything else is the launcher's own code.
    """
    import optuna

    import search.samplers
    from search.launch import main as launch_main

    builders = {
        "optuna-nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
        "optuna-tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    }
    if arm not in builders:
        raise SystemExit(f"{LAUNCH_WITH} takes one of {', '.join(builders)}, not {arm!r}")

    def make_sampler(name: str, *, seed: int | None, n_startup_trials: int = 4) -> Any:
        return builders[arm](seed)

    search.samplers.make_sampler = make_sampler
    return launch_main(list(argv))


def prepare_data(cfg: Config, work: Path) -> Path:
    """The embedded esfair data set at the benchmark's size (generated once, then reused)."""
    from evaluators.data.synthetic import ensure_embedded

    return ensure_embedded(work / "data", seed=0, size=cfg.image_size, counts=cfg.counts)


def launcher_argv(arm: str, seed: int, cfg: Config, data: Path, run_dir: Path) -> list[str]:
    """Command line of one arm's run (a list for ``subprocess``)."""
    common = ["--space", "esfair", "--study", STUDY, "--out", str(run_dir), "--data", str(data),
              "--seed", str(seed), "--timeout", f"{cfg.budget_s:g}", "--trials", "100000", "--latency", "local",
              "--no-progress"]
    for item in cfg.overrides:
        common += ["--override", item]
    if arm == DEFAULT_ARM:
        return [sys.executable, "-m", "search.launch", *common]
    if arm == "random":
        return [sys.executable, "-m", "search.launch", *common, "--sampler", "random"]
    return [sys.executable, str(Path(__file__).resolve()), LAUNCH_WITH, arm, *common]


def busy_cores(interval_s: float = 3.0) -> float:
    """Cores kept busy on this machine over ``interval_s`` seconds (from ``/proc/stat``; Linux).

    Falls back to the 1-minute load average where ``/proc/stat`` does not exist.
    """
    stat = Path("/proc/stat")
    if not stat.exists():
        return os.getloadavg()[0]

    def sample() -> tuple[float, float]:
        fields = [float(v) for v in stat.read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(interval_s)
    total1, idle1 = sample()
    share = 1.0 - (idle1 - idle0) / max(total1 - total0, 1e-9)
    return share * (os.cpu_count() or 1)


def wait_for_quiet(threshold: float = QUIET_CORES, max_wait_s: float = QUIET_WAIT_S) -> float:
    """Wait until other users keep fewer than ``threshold`` cores busy (at most ``max_wait_s``).

    On a shared machine another user's job can slow a trial several-fold; starting every run on a
    quiet machine keeps the arms comparable. Returns the busy cores when the wait ended.
    """
    deadline = time.monotonic() + max_wait_s
    busy = busy_cores()
    while busy >= threshold and time.monotonic() < deadline:
        busy = busy_cores()
    return busy


def run_process(argv: list[str], budget_s: float | None, log_path: Path) -> tuple[int, float, bool]:
    """Run ``argv``; terminate it ``GRACE_S`` after ``budget_s`` seconds from its ready line.

    SIGTERM ends the launcher at once: finished trials are committed in its SQLite study, the trial
    in flight stays RUNNING there and is not counted.

    Returns the exit code, the wall-clock seconds the process ran, and whether it reached its ready
    line (it started optimising: what happens after that, an interrupt included, is the run's result).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HWSEARCH_STORAGE", None)
    start = time.perf_counter()
    ready: list[float] = []
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=Path(__file__).resolve().parents[1])

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not ready and line.startswith(READY_LINE):
                    ready.append(time.perf_counter())
                log.write(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        interrupted = False
        while proc.poll() is None:
            time.sleep(0.5)
            if time.perf_counter() - start > HARD_LIMIT_S + (budget_s or 0.0):
                proc.kill()
            if budget_s is not None and ready and not interrupted and time.perf_counter() > ready[0] + budget_s + GRACE_S:
                proc.send_signal(signal.SIGTERM)
                interrupted = True
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        reader.join(timeout=10)
    return proc.returncode, time.perf_counter() - start, bool(ready)


def read_points(run_dir: Path, study_name: str, latency_budget_ms: float | None) -> tuple[list[Point], Any]:
    """The finished trials of the study in ``run_dir``, and the study itself."""
    import optuna

    from search import attrs

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{run_dir / 'hwsearch.db'}")
    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    if not starts:
        return [], study
    t0 = min(starts)
    budget = latency_budget_ms or study.user_attrs[attrs.STUDY_TASK]["latency_budget_ms"]
    points = []
    for t in trials:
        if t.state.name != "COMPLETE":
            continue
        metrics = t.user_attrs.get(attrs.METRICS)
        trained = bool(t.user_attrs.get(attrs.TRAINED))
        points.append(Point(
            number=t.number, finished_s=(t.datetime_complete - t0).total_seconds(), trained=trained,
            feasible=bool(t.user_attrs.get(attrs.FEASIBLE)),
            losses=esfair_losses(metrics, budget) if trained and metrics else None,
            text=t.user_attrs.get(attrs.CANDIDATE_TEXT, ""), metrics=metrics,
            baseline=t.user_attrs.get(attrs.BASELINE),
        ))
    return sorted(points, key=lambda p: p.finished_s), study


def front_losses(points: Sequence[Point], until_s: float | None = None) -> list[tuple[float, float, float]]:
    """Losses of the feasible trained points finished by ``until_s``."""
    return [p.losses for p in points if p.feasible and p.losses is not None
            and (until_s is None or p.finished_s <= until_s)]


def hv_curve(points: Sequence[Point], grid: Sequence[float]) -> list[float]:
    """Hypervolume of the feasible front found by each time of ``grid``."""
    return [hypervolume(front_losses(points, t)) for t in grid]


@dataclass
class RunResult:
    """One arm's run for one seed."""

    arm: str
    seed: int
    points: list[Point]
    wall_s: float
    returncode: int
    busy_cores_before: float
    load_average_after: float


def run_or_reuse(arm: str, seed: int, cfg: Config, data: Path, work: Path, fresh: bool) -> RunResult:
    """Run one arm (or reuse a finished run of the same configuration) and read its trials."""
    run_dir = work / f"{arm}-seed{seed}"
    marker = run_dir / "bench-run.json"
    if not fresh and marker.exists() and json.loads(marker.read_text()).get("key") == cfg.key():
        info = json.loads(marker.read_text())
        print(f"  {arm:<13} seed {seed}: reusing {run_dir}", flush=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        argv = launcher_argv(arm, seed, cfg, data, run_dir)
        busy = wait_for_quiet(max_wait_s=cfg.quiet_wait_s)
        code, wall, ready = run_process(argv, cfg.budget_s, run_dir / "launcher.log")
        load = os.getloadavg()[0]
        if not ready:
            tail = (run_dir / "launcher.log").read_text()[-2000:]
            raise SystemExit(f"arm {arm} seed {seed} failed before its search started (exit {code}):\n{tail}")
        info = {"key": cfg.key(), "argv": argv, "returncode": code, "wall_s": wall,
                "busy_cores_before": busy, "load_average_after": load}
        marker.write_text(json.dumps(info, indent=1))
    points, _ = read_points(run_dir, STUDY, None)
    counted = [p for p in points if p.finished_s <= cfg.budget_s]
    print(f"  {arm:<13} seed {seed}: {len(counted)} trials in {cfg.budget_s:g} s "
          f"({sum(p.trained for p in counted)} trained, {sum(not p.trained for p in counted)} screened out), "
          f"HV {hypervolume(front_losses(points, cfg.budget_s)):.3f}; other users' busy cores before "
          f"{info['busy_cores_before']:.1f}, load average after {info['load_average_after']:.1f}", flush=True)
    return RunResult(arm, seed, points, info["wall_s"], info["returncode"], info["busy_cores_before"],
                     info["load_average_after"])


def efficiency_table(runs: Sequence[RunResult], cfg: Config, best_hv: float) -> str:
    """Per arm: trials, HV at the budget, HV over the best known front, paired ratio to the default."""
    by_seed = {(r.arm, r.seed): hypervolume(front_losses(r.points, cfg.budget_s)) for r in runs}
    rows = []
    for arm in cfg.arms:
        mine = [r for r in runs if r.arm == arm]
        hvs = [by_seed[(arm, r.seed)] for r in mine]
        paired = [by_seed[(arm, r.seed)] / by_seed[(DEFAULT_ARM, r.seed)] for r in mine
                  if by_seed.get((DEFAULT_ARM, r.seed), 0.0) > 0]
        trials = [sum(1 for p in r.points if p.finished_s <= cfg.budget_s) for r in mine]
        trained = [sum(1 for p in r.points if p.trained and p.finished_s <= cfg.budget_s) for r in mine]
        rows.append([arm, f"{statistics.median(trials):g}", f"{statistics.median(trained):g}", spread(hvs, 3),
                     spread([h / best_hv for h in hvs] if best_hv > 0 else [], 2), spread(paired, 2)])
    return format_table(["arm", "trials", "trained", "HV", "HV / best", f"HV / {DEFAULT_ARM} (paired)"], rows)


def hv_by_trials(points: Sequence[Point], budget_s: float, max_trials: int) -> list[float]:
    """Hypervolume after each of the first ``max_trials`` trials finished within ``budget_s``
    (the last value carried on when the run finished fewer)."""
    done = [p for p in points if p.finished_s <= budget_s]
    out = []
    for n in range(1, max_trials + 1):
        out.append(hypervolume(front_losses(done[:n])))
    return out


def plot_curves(runs: Sequence[RunResult], cfg: Config, path: Path) -> None:
    """Hypervolume over wall-clock time (left) and over finished trials (right, independent of how
    fast the machine was): median over seeds per arm, min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = list(np.linspace(0.0, cfg.budget_s, 46))
    most = max((sum(1 for p in r.points if p.finished_s <= cfg.budget_s) for r in runs), default=0)
    trials = list(range(1, most + 1))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12.0, 4.2))
    for arm in cfg.arms:
        curves = np.asarray([hv_curve(r.points, grid) for r in runs if r.arm == arm])
        if curves.size == 0:
            continue
        width = 2.4 if arm == DEFAULT_ARM else 1.3
        line, = ax.plot(grid, np.median(curves, axis=0), label=arm, linewidth=width)
        ax.fill_between(grid, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.12)
        if trials:
            by_n = np.asarray([hv_by_trials(r.points, cfg.budget_s, most) for r in runs if r.arm == arm])
            bx.plot(trials, np.median(by_n, axis=0), label=arm, linewidth=width, color=line.get_color())
            bx.fill_between(trials, by_n.min(axis=0), by_n.max(axis=0), color=line.get_color(), alpha=0.12)
    ax.set_xlabel("wall-clock seconds since the first trial started")
    ax.set_ylabel("hypervolume (ref 1.1^3, normalised losses)")
    ax.set_title(f"esfair (embedded, reduced), {len(cfg.seeds)} seed(s): median and min-max")
    bx.set_xlabel("finished trials (within the budget; a run's last value carried on)")
    bx.set_title("the same runs by trial count")
    for a in (ax, bx):
        a.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_recipes(cfg: Config, data: Path, work: Path, fresh: bool) -> list[Point]:
    """Train the space's contest recipes once (``--baselines``) and return them as points.

    They run with a latency budget of 10 s so that every recipe is trained (a recipe over the
    real budget would otherwise be screened out untrained); their latency is then judged against
    the real budget like every other point.
    """
    run_dir = work / "recipes"
    marker = run_dir / "bench-run.json"
    key = hashlib.sha256(json.dumps([cfg.key(), cfg.recipe_overrides]).encode()).hexdigest()[:12]
    if fresh or not marker.exists() or json.loads(marker.read_text()).get("key") != key:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        argv = [sys.executable, "-m", "search.launch", "--space", "esfair", "--study", RECIPE_STUDY,
                "--out", str(run_dir), "--data", str(data), "--seed", "0", "--baselines", "--trials", "3",
                "--latency-budget", "10000", "--latency", "local", "--no-progress"]
        for item in cfg.recipe_overrides:
            argv += ["--override", item]
        code, wall, _ = run_process(argv, None, run_dir / "launcher.log")
        if code != 0:
            raise SystemExit(f"the recipe run failed (exit {code}):\n{(run_dir / 'launcher.log').read_text()[-2000:]}")
        marker.write_text(json.dumps({"key": key, "argv": argv, "returncode": code, "wall_s": wall}, indent=1))
    from spaces.esfair import DEFAULT_LATENCY_BUDGET_MS

    points, _ = read_points(run_dir, RECIPE_STUDY, DEFAULT_LATENCY_BUDGET_MS)
    return [p for p in points if p.baseline and p.losses is not None]


def recipes_table(recipes: Sequence[Point], found: Sequence[tuple[Point, str]], budget_ms: float) -> str:
    """Where each recipe sits against the found models.

    Columns: the recipe's accuracy, fairness part and latency; how many found (feasible) models
    dominate it; the fastest found model at equal or better accuracy, and how much faster it is and
    how its fairness part compares.
    """
    rows = []
    for r in recipes:
        m = r.metrics or {}
        acc, fair, lat = m["accuracy"], m["fairness"]["fairness_part"], m["latency"]["median_ms"]
        dominating = [(f, run) for f, run in found
                      if f.losses is not None and r.losses is not None and dominates(f.losses, r.losses)]
        better_acc = [(f, run) for f, run in found if f.metrics and f.metrics["accuracy"] >= acc]
        if better_acc:
            f, run = min(better_acc, key=lambda fr: fr[0].metrics["latency"]["median_ms"])
            fm = f.metrics
            equal = (f"{run} #{f.number}: acc {fm['accuracy']:.3f}, {fm['latency']['median_ms']:.2f} ms "
                     f"({lat / fm['latency']['median_ms']:.1f}x faster), fairness {fm['fairness']['fairness_part'] - fair:+.3f}")
        else:
            best = max((f.metrics["accuracy"] for f, _ in found if f.metrics), default=float("nan"))
            equal = f"none (best found accuracy {best:.3f})"
        within = "yes" if lat <= budget_ms else "NO"
        names = ", ".join(f"{run} #{f.number}" for f, run in dominating[:3]) + (", ..." if len(dominating) > 3 else "")
        rows.append([r.baseline, f"{acc:.3f}", f"{fair:.3f}", f"{lat:.2f}", within,
                     f"{len(dominating)}" + (f" ({names})" if names else ""), equal])
    return format_table(["recipe", "acc", "fair", "lat_ms", "in budget", "dominated by", "fastest found at >= accuracy"],
                        rows)


def cost_table(runs: Sequence[RunResult], cfg: Config, work: Path) -> str:
    """Latency-first screening and latency-cache savings in the default arm's runs."""
    import optuna
    from trial_costs import savings, study_measurement_seconds

    rows = []
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for r in runs:
        if r.arm != DEFAULT_ARM:
            continue
        study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{work / f'{r.arm}-seed{r.seed}' / 'hwsearch.db'}")
        trials = study.get_trials(deepcopy=False)
        s = savings(trials, study_measurement_seconds(trials), until_s=cfg.budget_s)
        rows.append([f"seed {r.seed}", f"{s.wall_s:.0f}", f"{s.trained}", f"{s.screened}",
                     f"{s.screening_saved_s:.0f}", f"{s.share(s.screening_saved_s):.0%}",
                     f"{s.share(max(0.0, s.screening_saved_median_s)):.0%}",
                     f"{s.cache_hits}", f"{s.measurement_s:.2f}", f"{s.cache_saved_s:.0f}", f"{s.share(s.cache_saved_s):.1%}"])
    return format_table(["run", "wall_s", "trained", "screened", "screen saved_s", "screen share",
                         "(lower bound)", "cache hits", "s/measure", "cache saved_s", "cache share"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every arm and seed, then print and write the four sections and the PNG."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [LAUNCH_WITH]:
        if len(argv) < 2:
            raise SystemExit(f"usage: {LAUNCH_WITH} ARM LAUNCHER-ARGS...")
        return launch_with(argv[1], argv[2:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per arm (default 3)")
    p.add_argument("--budget", type=float, default=90.0, help="wall-clock seconds per run (default 90)")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {','.join(ARMS)}")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder (default runs/bench)")
    p.add_argument("--fresh", action="store_true", help="rerun every run even if a matching one is stored")
    p.add_argument("--no-recipes", action="store_true", help="skip the contest-recipe comparison")
    p.add_argument("--quick", action="store_true", help="CI size: 1 seed, 40 s per run, 120 tiny images")
    args = p.parse_args(argv)
    arms = tuple(a for a in args.arms.split(",") if a)
    if set(arms) - set(ARMS) or DEFAULT_ARM not in arms:
        print(f"error: --arms takes {', '.join(ARMS)} and must include {DEFAULT_ARM}", file=sys.stderr)
        return 2
    base = QUICK if args.quick else Config(seeds=tuple(range(args.seeds)), budget_s=args.budget)
    cfg = dataclasses.replace(base, arms=arms)
    out = args.out.resolve()
    work = out / ("search_efficiency_quick" if args.quick else "search_efficiency")
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = prepare_data(cfg, work)
    overrides = " ".join(f"--override {o}" for o in cfg.overrides)
    print(f"search efficiency on esfair: arms {', '.join(cfg.arms)}; seeds {', '.join(map(str, cfg.seeds))}; "
          f"{cfg.budget_s:g} s of wall-clock per run, one run at a time on {os.cpu_count()} cores\n"
          f"data: embedded esfair generator, {cfg.counts} at {cfg.image_size} px ({data})\n"
          f"every arm: {overrides} (reduced training budget, the same for all)", flush=True)
    runs = []
    for i, seed in enumerate(cfg.seeds):
        order = list(cfg.arms[i % len(cfg.arms):]) + list(cfg.arms[:i % len(cfg.arms)])
        for arm in order:
            runs.append(run_or_reuse(arm, seed, cfg, data, work, args.fresh))
    union = [loss for r in runs for loss in front_losses(r.points, cfg.budget_s)]
    best_hv = hypervolume([union[i] for i in non_dominated(union)]) if union else 0.0
    sections = [
        f"## 1. Hypervolume at an equal wall-clock budget of {cfg.budget_s:g} s per run "
        f"(median [min-max] over {len(cfg.seeds)} seed(s))\n"
        f"HV of the feasible validation front in normalised losses (1-acc, 1-3*fairness_part, latency/6 ms), "
        f"ref (1.1, 1.1, 1.1); best = HV of the union of all runs' fronts = {best_hv:.3f}\n\n"
        + efficiency_table(runs, cfg, best_hv),
    ]
    if not args.no_recipes:
        from spaces.esfair import DEFAULT_LATENCY_BUDGET_MS

        recipes = run_recipes(cfg, data, work, args.fresh)
        found = [(p, f"seed{r.seed}") for r in runs if r.arm == DEFAULT_ARM
                 for p in r.points if p.feasible and p.losses is not None and p.finished_s <= cfg.budget_s]
        sections.append(
            f"## 3. Contest recipes against the models hwsearch found ({DEFAULT_ARM} runs, all seeds; validation "
            f"split)\nrecipes trained with {' '.join(cfg.recipe_overrides)} and their own loss mix; "
            f"fair = ESFair fairness part (max 0.333)\n\n"
            + recipes_table(recipes, found, DEFAULT_LATENCY_BUDGET_MS))
    sections.append(
        f"## 4. Wall-clock saved in the {DEFAULT_ARM} runs (see bench/trial_costs.py for the estimate)\n"
        f"share = saved / (run + saved)\n\n" + cost_table(runs, cfg, work))
    text = "\n\n".join(sections)
    print(f"\n{text}\n")
    png = out / ("search_efficiency_quick.png" if args.quick else "search_efficiency.png")
    plot_curves(runs, cfg, png)
    (png.with_suffix(".md")).write_text(text + "\n")
    (png.with_suffix(".json")).write_text(json.dumps({
        "config": dataclasses.asdict(cfg), "best_hv": best_hv,
        "runs": [{"arm": r.arm, "seed": r.seed, "wall_s": r.wall_s, "returncode": r.returncode,
                  "busy_cores_before": r.busy_cores_before, "load_average_after": r.load_average_after,
                  "points": [dataclasses.asdict(p) | {"metrics": None} for p in r.points]} for r in runs],
    }, indent=1))
    print(f"wrote {png}, {png.with_suffix('.md')}, {png.with_suffix('.json')} "
          f"({(time.perf_counter() - start) / 60:.1f} min)")
    finite = all(math.isfinite(h) for r in runs for h in hv_curve(r.points, [cfg.budget_s]))
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())
