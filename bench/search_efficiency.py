"""Search efficiency on the esfair task at equal wall-clock: multi-fidelity vs fixed-epoch vs random.

    python bench/search_efficiency.py [--seeds 3 --budget 360] [--quick] [--fresh] [--out runs/bench]

Every arm is the real launcher, ``python -m search.launch --space esfair``, one run at a time, each
in its own folder (its own SQLite study, latency cache and pixel cache), with the same
``--timeout`` (default 6 min), seed and data: the full embedded default data set (1200/400/400
images at 224 px), generated once and given to every run with ``--data``.

* ``multi-fidelity``: the launcher's defaults (the planned rungs, asynchronous successive halving,
  the space's start point trained first and brought to the top rung).
* ``fixed-epoch``: ``--override epochs=2 --override finetune_epochs=1 --no-start-point``: every
  candidate trains 2 epochs in one rung, from the sampler's first candidate on (the search before
  rungs and start points).
* ``random``: the fixed-epoch arm with ``--sampler random``.
* ``first-look`` (only with ``--arms``): the defaults with ``--first-look 0.333333333``: first rungs of a
  third of an epoch, which the embedded data's 1,200 training images do not get by default.
* ``ladder-1-3-9`` (only with ``--arms``): the defaults with ``--rungs 1,3,9``, for when the plan
  chooses fewer rungs at this budget.
* ``no-start-point`` (only with ``--arms``): the defaults with ``--no-start-point``, to tell what the
  start point adds from what the rungs add.

The arm order is rotated per seed. Each run is scored by the hypervolume of its **test-split**
front: the members of its validation front with the test figures the launcher stored for them
(``hwsearch.test_metrics.<n>``, latency as measured), by ``search.front`` with the task's scales
(``bench/common.py``). Candidates evaluated = trained trials (COMPLETE at the top rung + PRUNED at
a lower rung); candidates per hour divide them by the study's spent budget (``hwsearch.spent_s``).
The targets (issue 9) are a median paired test-HV ratio multi-fidelity / fixed-epoch >= 1.25 and
a median paired candidates-per-hour ratio >= 3; both are reported whether met or not.

The ESFair sample recipe (MobileNetV2 x1 @224, CE, fp32, no pruning) is trained once through the
real pipeline (``evaluators.pipeline.run_rung``: screen, train, export, evaluate the ONNX
artifact) with the same wall-clock: one epoch is timed, then a fresh model trains as many epochs
as fit in the budget; its test figures come from ``search.final_eval.evaluate_on_test``. For
every run the bench says whether a member of the run's test front dominates it within noise
(``search.front.dominated_within_noise``: bootstrap intervals of the test figures, the latency
CI), ties it (no objective differs by more than the combined half-widths), or neither.

``--quick`` (CI): 48/36/36 images at 64 px, 30 s per run, 1 seed, and for every arm alike
``--override resolution=64 --min-accuracy 0`` (tiny models are below the default accuracy floor).
Writes ``<out>/search_efficiency[_quick].{md,json,png}``; runs are kept under
``<out>/search_efficiency[_quick]/`` and reused when their configuration matches (``--fresh`` reruns).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    bench_parser,
    embedded_data,
    format_table,
    open_study,
    outcome_counts,
    outputs,
    pipeline_context,
    record_point,
    run_launcher,
    rung_counts,
    spread,
    study_points,
    study_spec,
    write_outputs,
)
from search import attrs
from search.front import FrontSpec, Point, dominated_within_noise, front, hypervolume

FIXED_EPOCHS = ("--override", "epochs=2", "--override", "finetune_epochs=1", "--no-start-point")
ARMS: dict[str, tuple[str, ...]] = {
    "multi-fidelity": (),
    "fixed-epoch": FIXED_EPOCHS,
    "random": ("--sampler", "random", *FIXED_EPOCHS),
    "ladder-1-3-9": ("--rungs", "1,3,9"),
    "first-look": ("--first-look", "0.333333333"),
    "no-start-point": ("--no-start-point",),
}
"""Every arm's launcher arguments; ``ladder-1-3-9`` (the default search with the 1 -> 3 -> 9 ladder forced,
whatever the plan would choose) and ``first-look`` (the default search with first rungs of a third of an
epoch, which the embedded data's 1,200 training images do not get by default) and ``no-start-point`` run
only when ``--arms`` names them."""
DEFAULT_ARMS = ("multi-fidelity", "fixed-epoch", "random")
NEW_ARM, REFERENCE_ARM = "multi-fidelity", "fixed-epoch"
TARGET_HV_RATIO = 1.25
TARGET_RATE_RATIO = 3.0
STUDY = "esfair"
RECIPE = "esfair-sample-mobilenetv2"
RECIPE_NUMBER = -1
"""Point number of the recipe (trial numbers are >= 0)."""
CURVE_POINTS = 41


@dataclass(frozen=True)
class Config:
    """Size of one benchmark (every arm gets the same).

    Attributes:
        seeds: Seeds; each arm runs once per seed.
        budget_s: ``--timeout`` of every run (and the recipe's training wall-clock).
        counts: Images per split of the embedded data (``None``: the default 1200/400/400).
        image_size: Side of the generated images.
        arms: The arms, in the order of the first seed.
        extra: Launcher arguments added to every arm.
        quick: CI size.
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    budget_s: float = 360.0
    counts: dict[str, int] | None = None
    image_size: int = 224
    arms: tuple[str, ...] = DEFAULT_ARMS
    extra: tuple[str, ...] = ()
    quick: bool = False

    def key(self, arm: str) -> str:
        """Hash of what changes ``arm``'s result (a stored run is reused only when it matches)."""
        raw = json.dumps([ARMS[arm], self.budget_s, self.counts, self.image_size, self.extra], sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


QUICK = Config(seeds=(0,), budget_s=30.0, counts={"train": 48, "val": 36, "test": 36}, image_size=64,
               extra=("--override", "resolution=64", "--min-accuracy", "0"), quick=True)


@dataclass
class RunResult:
    """One arm x seed run, read back from its study.

    Attributes:
        arm, seed: Which run. argv: Its launcher arguments. returncode, wall_s: Of the command.
        spent_s: The study's spent search budget. rungs: Its rung ladder (epochs).
        outcomes: Trials by outcome (:func:`common.outcome_counts`). per_rung: Rung jobs by rung.
        hv_val, hv_test: Hypervolume of the validation points / of the front members' test figures.
        front: The validation front's members with their test figures (``number``, test values,
            half-widths, candidate).
        curve: ``(seconds since the first trial started, validation HV)`` after each finished trial.
    """

    arm: str
    seed: int
    argv: list[str]
    returncode: int
    wall_s: float
    spent_s: float
    rungs: list[int]
    outcomes: dict[str, int]
    per_rung: dict[int, int]
    hv_val: float
    hv_test: float
    front: list[dict[str, Any]] = field(default_factory=list)
    curve: list[tuple[float, float]] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        """Trained candidates: finished the top rung or stopped at a lower one."""
        return self.outcomes["top"] + self.outcomes["stopped"]

    @property
    def per_hour(self) -> float:
        """Trained candidates per hour of spent budget."""
        return self.evaluated / self.spent_s * 3600.0 if self.spent_s > 0 else math.nan

    def front_points(self) -> list[Point]:
        """The front members' test figures as ``search.front`` points."""
        return [Point(m["number"], tuple(m["values"]), True, tuple(m["half_widths"])) for m in self.front]


def launcher_argv(arm: str, seed: int, cfg: Config, data: Path, run_dir: Path) -> list[str]:
    """Arguments of one arm's launcher run."""
    return ["--space", "esfair", "--study", STUDY, "--out", str(run_dir), "--data", str(data), "--seed", str(seed),
            "--timeout", f"{cfg.budget_s:g}", "--latency", "local", "--no-progress", *ARMS[arm], *cfg.extra]


def hv_curve(study: Any, spec: FrontSpec) -> list[tuple[float, float]]:
    """Validation hypervolume after each finished trial, by seconds since the first trial started."""
    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    if not starts:
        return []
    t0 = min(starts)
    finished = {t.number: (t.datetime_complete - t0).total_seconds() for t in trials if t.datetime_complete}
    points = sorted((p for p in study_points(study, "val", spec) if p.number in finished),
                    key=lambda p: finished[p.number])
    return [(finished[p.number], hypervolume(points[: i + 1], spec)) for i, p in enumerate(points)]


def read_run(arm: str, seed: int, run_dir: Path, info: dict[str, Any]) -> RunResult:
    """A finished run's figures, from its study."""
    study = open_study(run_dir, STUDY)
    spec = study_spec(study)
    trials = study.get_trials(deepcopy=False)
    candidates = {t.number: t.user_attrs.get(attrs.CANDIDATE_TEXT, "") for t in trials}
    test = study_points(study, "test", spec)
    members = [{"number": p.number, "values": list(p.values), "half_widths": list(p.half_widths),
                "candidate": candidates.get(p.number, "")} for p in test]
    return RunResult(
        arm=arm, seed=seed, argv=info["argv"], returncode=info["returncode"], wall_s=info["wall_s"],
        spent_s=float(study.user_attrs.get(attrs.STUDY_SPENT_S, 0.0)),
        rungs=[int(e) for e in study.user_attrs.get(attrs.STUDY_RUNGS) or []], outcomes=outcome_counts(trials),
        per_rung=rung_counts(trials), hv_val=hypervolume(study_points(study, "val", spec), spec),
        hv_test=hypervolume(test, spec), front=members, curve=hv_curve(study, spec),
    )


def run_arm(arm: str, seed: int, cfg: Config, data: Path, work: Path, fresh: bool) -> RunResult:
    """Run one arm and seed (or reuse a stored run of the same configuration) and read it back."""
    run_dir = work / f"{arm}-seed{seed}"
    marker = run_dir / "bench-run.json"
    if not fresh and marker.exists() and json.loads(marker.read_text()).get("key") == cfg.key(arm):
        info = json.loads(marker.read_text())
        print(f"  {arm:<14} seed {seed}: reusing {run_dir}", flush=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        argv = launcher_argv(arm, seed, cfg, data, run_dir)
        load = os.getloadavg()[0]
        launch = run_launcher(argv, run_dir / "launcher.log", limit_s=3 * cfg.budget_s + 900)
        if launch.returncode != 0:
            raise SystemExit(f"arm {arm} seed {seed} failed (exit {launch.returncode}):\n{launch.tail()}")
        info = {"key": cfg.key(arm), "argv": argv, "returncode": launch.returncode, "wall_s": launch.wall_s,
                "load_before": load}
        marker.write_text(json.dumps(info, indent=1))
    run = read_run(arm, seed, run_dir, info)
    print(f"  {arm:<14} seed {seed}: {run.evaluated} candidates trained ({run.per_hour:.0f}/h), "
          f"{run.outcomes['screened']} screened out, rungs {ladder_text(run)}; HV test {run.hv_test:.3f}, "
          f"val {run.hv_val:.3f}; {run.wall_s:.0f} s for the command", flush=True)
    return run


def ladder_text(run: RunResult) -> str:
    """``1ep:31 3ep:9 9ep:3``: rung jobs finished at each rung of the run's ladder."""
    return " ".join(f"{epochs}ep:{run.per_rung.get(r, 0)}" for r, epochs in enumerate(run.rungs)) or "-"


def runs_table(runs: Sequence[RunResult]) -> str:
    """One row per run."""
    rows = [[r.arm, r.seed, ladder_text(r), r.evaluated, r.outcomes["screened"], r.outcomes["failed"],
             f"{r.spent_s:.0f}", f"{r.per_hour:.0f}", len(r.front), f"{r.hv_val:.3f}", f"{r.hv_test:.3f}"]
            for r in runs]
    return format_table(["arm", "seed", "rung jobs", "trained", "screened", "failed", "spent s", "cand/h",
                         "front", "HV val", "HV test"], rows)


def arms_table(runs: Sequence[RunResult]) -> str:
    """Per arm, median [min-max] over seeds."""
    rows = []
    for arm in ARMS:
        mine = [r for r in runs if r.arm == arm]
        if mine:
            rows.append([arm, spread([r.evaluated for r in mine], 0), spread([r.per_hour for r in mine], 0),
                         "; ".join(ladder_text(r) for r in mine), spread([r.outcomes["screened"] for r in mine], 0),
                         spread([r.hv_test for r in mine], 3)])
    return format_table(["arm", "candidates trained", "candidates / h", "rung jobs, per seed", "screened out",
                         "HV (test front)"], rows)


def ratio(a: float, b: float) -> float:
    """``a / b``; infinite when only ``b`` is 0, NaN when both are."""
    if b > 0:
        return a / b
    return math.inf if a > 0 else math.nan


def paired_ratios(runs: Sequence[RunResult]) -> dict[str, Any]:
    """Per seed and median: test-HV and candidates-per-hour ratios of the new arm to the reference."""
    by = {(r.arm, r.seed): r for r in runs}
    seeds = sorted({r.seed for r in runs if (NEW_ARM, r.seed) in by and (REFERENCE_ARM, r.seed) in by})
    hv = [ratio(by[(NEW_ARM, s)].hv_test, by[(REFERENCE_ARM, s)].hv_test) for s in seeds]
    rate = [ratio(by[(NEW_ARM, s)].per_hour, by[(REFERENCE_ARM, s)].per_hour) for s in seeds]
    return {"seeds": seeds, "hv": hv, "rate": rate, "hv_median": _median(hv), "rate_median": _median(rate)}


def _median(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def ratios_text(ratios: dict[str, Any]) -> str:
    """The paired ratios, per seed and as medians, against their targets."""
    rows = [[s, f"{h:.2f}", f"{c:.2f}"] for s, h, c in zip(ratios["seeds"], ratios["hv"], ratios["rate"])]
    table = format_table(["seed", f"HV test {NEW_ARM} / {REFERENCE_ARM}", "candidates/h ratio"], rows)

    def verdict(value: float, target: float) -> str:
        return "meets the target" if value >= target else "FALLS SHORT of the target"

    return (f"{table}\n\nmedian paired HV ratio {NEW_ARM} / {REFERENCE_ARM}: **{ratios['hv_median']:.2f}** "
            f"(target >= {TARGET_HV_RATIO}: {verdict(ratios['hv_median'], TARGET_HV_RATIO)})\n"
            f"median paired candidates-per-hour ratio: **{ratios['rate_median']:.2f}x** "
            f"(target >= {TARGET_RATE_RATIO:g}x: {verdict(ratios['rate_median'], TARGET_RATE_RATIO)})")


@dataclass
class Recipe:
    """The ESFair sample recipe trained with one run's wall-clock.

    Attributes:
        epochs: Epochs that fit the budget. epoch_s: Measured seconds of one training epoch.
        other_s: Measured seconds of the rest of a job (screen, export, evaluation, latency).
        job_s: Wall-clock of the job that trained ``epochs`` epochs.
        point: Its test figures as a front point. record: Its test record.
    """

    epochs: int
    epoch_s: float
    other_s: float
    job_s: float
    point: Point
    record: dict[str, Any]


def train_recipe(data: Path, work: Path, budget_s: float, spec: FrontSpec) -> Recipe:
    """Time one epoch of the recipe, then train a fresh one for as many epochs as fit ``budget_s`` (in the
    launcher's trial context, its budgets lifted so that the recipe is always trained: its latency is
    judged against the real budget afterwards)."""
    from evaluators.pipeline import RungJob, run_rung
    from spaces.registry import get_space

    from evaluators.data import load_dataset

    shutil.rmtree(work, ignore_errors=True)
    ctx = pipeline_context(load_dataset(str(data), cache_root=work / "data", seed=0), work)
    base = get_space("esfair").baselines()[RECIPE]
    probe = run_rung(dataclasses.replace(base, epochs=1), ctx, work / "one-epoch",
                     RungJob(rung=0, epochs=1, final=True, screen=True))
    epoch_s = probe.stage_seconds.get("train", 0.0)
    other_s = sum(v for k, v in probe.stage_seconds.items() if k != "train")
    epochs = max(1, int((budget_s - other_s) // epoch_s)) if epoch_s > 0 else 1
    print(f"  recipe: one epoch {epoch_s:.1f} s, rest of a job {other_s:.1f} s -> {epochs} epochs in {budget_s:g} s",
          flush=True)
    start = time.perf_counter()
    outcome = run_rung(dataclasses.replace(base, epochs=epochs), ctx, work / f"{epochs}-epochs",
                       RungJob(rung=0, epochs=epochs, final=True, screen=True))
    job_s = time.perf_counter() - start
    record = test_record(outcome, base, ctx.dataset)
    return Recipe(epochs, epoch_s, other_s, job_s, record_point(RECIPE_NUMBER, record, spec), record)


def test_record(outcome: Any, candidate: Any, dataset: Any) -> dict[str, Any]:
    """The test-split record of a rung outcome's artifact, made by ``search.final_eval`` as the launcher
    makes it for a front member (an in-memory study and trial hold the attributes it reads)."""
    import optuna

    from search.final_eval import evaluate_on_test
    from spaces.registry import get_space

    task = get_space("esfair").task
    study = optuna.create_study(directions=task.directions)
    trial = study.ask()
    metrics = outcome.metrics.to_dict()
    for key, value in ((attrs.METRICS, metrics), (attrs.CANDIDATE, candidate.to_params()),
                       (attrs.ARTIFACT_PATH, metrics["artifact_path"]), (attrs.ARTIFACT_SHA256, metrics["artifact_sha256"])):
        trial.set_user_attr(key, value)
    return evaluate_on_test(study, [trial], dataset, task)[trial.number]


def significant(a: Point, b: Point, spec: FrontSpec) -> list[int]:
    """Per objective: +1 when ``b`` is better than ``a`` by more than the combined half-widths
    (``search.front``'s noise rule), -1 when worse by more, 0 within noise."""
    out = []
    for k, direction in enumerate(spec.directions):
        gain = (b.values[k] - a.values[k]) * (1.0 if direction == "maximize" else -1.0)
        noise = math.hypot(_width(a, k), _width(b, k))
        out.append(1 if gain > noise else -1 if gain < -noise else 0)
    return out


def _width(point: Point, k: int) -> float:
    width = point.half_widths[k] if k < len(point.half_widths) else 0.0
    return width if math.isfinite(width) else 0.0


def dominates_within_noise(member: Point, recipe: Point, spec: FrontSpec) -> bool:
    """``search.front``'s noise rule for the pair: not significantly worse in any objective and
    significantly better in one. When the member dominates the recipe outright the recipe is off the
    pair's front (where ``dominated_within_noise`` looks), so only the "better in one" part is left."""
    pair = [recipe, member]
    if recipe in front(pair, spec):
        return dominated_within_noise(pair, spec).get(RECIPE_NUMBER) == member.number
    return any(s > 0 for s in significant(recipe, member, spec))


def recipe_verdict(recipe: Point, members: Sequence[Point], spec: FrontSpec) -> tuple[str, int | None]:
    """Whether a member dominates the recipe within noise, ties it, or neither; and which member."""
    for member in members:
        if dominates_within_noise(member, recipe, spec):
            return "dominated within noise", member.number
    for member in members:
        if all(s == 0 for s in significant(recipe, member, spec)):
            return "tied within noise", member.number
    return "neither", None


def recipe_text(recipe: Recipe, runs: Sequence[RunResult], spec: FrontSpec, budget_ms: float | None) -> str:
    """The recipe's figures and, per run, how the run's test front compares with it."""
    r = recipe.record
    acc_i = (r.get("intervals") or {}).get("accuracy") or [math.nan, math.nan]
    lat = r["latency"]
    in_budget = budget_ms is None or lat["median_ms"] <= budget_ms
    head = (f"ESFair sample recipe ({RECIPE}: MobileNetV2 x1 @224, CE, fp32, no pruning), trained {recipe.epochs} "
            f"epoch(s) in a {recipe.job_s:.0f} s job (one epoch {recipe.epoch_s:.1f} s + {recipe.other_s:.1f} s "
            f"per job): test accuracy {r['accuracy']:.3f} [{acc_i[0]:.3f}-{acc_i[1]:.3f}], fairness part "
            f"{r['fairness']['fairness_part']:.3f}, latency {lat['median_ms']:.2f} ms "
            f"[{_ci(lat)}]" + ("" if budget_ms is None else
                               f" ({'within' if in_budget else 'OVER'} the {budget_ms:g} ms budget)"))
    rows = []
    for run in runs:
        verdict, number = recipe_verdict(recipe.point, run.front_points(), spec)
        member = next((m for m in run.front if m["number"] == number), None)
        shown = "-" if member is None else (f"#{number} " + ", ".join(
            f"{n} {v:.3f}" for n, v in zip(spec.names, member["values"])) + f": {member['candidate']}")
        rows.append([run.arm, run.seed, len(run.front), verdict, shown])
    return head + "\n\n" + format_table(["arm", "seed", "front", "vs the recipe (test split)", "member"], rows)


def _ci(latency: dict[str, Any]) -> str:
    low, high = latency.get("ci_low_ms"), latency.get("ci_high_ms")
    return "no CI" if low is None or high is None else f"{low:.2f}-{high:.2f}"


def plot_curves(runs: Sequence[RunResult], cfg: Config, path: Path) -> None:
    """Validation hypervolume over wall-clock per arm: median over seeds, min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    horizon = max([cfg.budget_s, *(t for r in runs for t, _ in r.curve)])
    grid = np.linspace(0.0, horizon, CURVE_POINTS)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for arm in ARMS:
        curves = np.asarray([[max([hv for t, hv in r.curve if t <= g], default=0.0) for g in grid]
                             for r in runs if r.arm == arm])
        if curves.size == 0:
            continue
        line, = ax.plot(grid, np.median(curves, axis=0), label=arm, linewidth=2.2 if arm == NEW_ARM else 1.3)
        ax.fill_between(grid, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.15)
    ax.axvline(cfg.budget_s, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("seconds since the run's first trial started")
    ax.set_ylabel("validation hypervolume (fraction)")
    ax.set_title(f"esfair, {len(cfg.seeds)} seed(s), {cfg.budget_s:g} s per run: median and min-max")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    p = bench_parser(__doc__, "tiny data, 30 s per run, 1 seed")
    p.add_argument("--seeds", type=int, default=3, help="seeds per arm (default 3)")
    p.add_argument("--budget", type=float, default=360.0, help="--timeout of every run, in seconds (default 360)")
    p.add_argument("--fresh", action="store_true", help="rerun every run even when a matching one is stored")
    p.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                   help=f"comma-separated arms among {', '.join(ARMS)} (default: {','.join(DEFAULT_ARMS)})")
    p.add_argument("--no-recipe", action="store_true", help="skip the ESFair sample recipe")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every arm and seed and the recipe; print and write the figures."""
    args = parse(argv)
    arms = tuple(a for a in args.arms.split(",") if a)
    if set(arms) - set(ARMS) or NEW_ARM not in arms:
        print(f"error: --arms takes {', '.join(ARMS)} and must include {NEW_ARM}", file=sys.stderr)
        return 2
    base = QUICK if args.quick else Config(seeds=tuple(range(args.seeds)), budget_s=args.budget)
    cfg = dataclasses.replace(base, arms=arms)
    name, out, work = dataclasses.astuple(outputs("search_efficiency", args))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = embedded_data(out, size=cfg.image_size, counts=cfg.counts)
    print(f"search efficiency on esfair: arms {', '.join(cfg.arms)}; seeds {', '.join(map(str, cfg.seeds))}; "
          f"--timeout {cfg.budget_s:g} per run, one run at a time on {os.cpu_count()} CPUs; data {data}"
          + (f"; every arm {' '.join(cfg.extra)}" if cfg.extra else ""), flush=True)
    runs = []
    arms = list(cfg.arms)
    for i, seed in enumerate(cfg.seeds):
        for arm in arms[i % len(arms):] + arms[:i % len(arms)]:
            runs.append(run_arm(arm, seed, cfg, data, work, args.fresh))
    spec = study_spec(open_study(work / f"{NEW_ARM}-seed{cfg.seeds[0]}", STUDY))
    ratios = paired_ratios(runs)
    sections = [
        f"## Runs (--timeout {cfg.budget_s:g} s each; HV = search.front hypervolume fraction, test = the "
        f"validation front's members on the test split)\n\n{runs_table(runs)}",
        f"## Arms (median [min-max] over {len(cfg.seeds)} seed(s))\n\n{arms_table(runs)}",
    ]
    if REFERENCE_ARM in cfg.arms:
        sections.append(f"## Paired ratios, {NEW_ARM} / {REFERENCE_ARM}\n\n{ratios_text(ratios)}")
    recipe = None
    if not args.no_recipe:
        recipe = train_recipe(data, work / "recipe", cfg.budget_s, spec)
        budget_ms = study_task_budget(work / f"{NEW_ARM}-seed{cfg.seeds[0]}")
        sections.append(f"## The ESFair sample recipe at the same wall-clock\n\n"
                        f"{recipe_text(recipe, runs, spec, budget_ms)}")
    text = "\n\n".join(sections)
    print(f"\n{text}\n")
    plot_curves(runs, cfg, out / f"{name}.png")
    write_outputs(out, name, text, {
        "config": dataclasses.asdict(cfg), "runs": [dataclasses.asdict(r) for r in runs], "ratios": ratios,
        "targets": {"hv_ratio": TARGET_HV_RATIO, "rate_ratio": TARGET_RATE_RATIO},
        "recipe": None if recipe is None else dataclasses.asdict(recipe),
        "wall_s": time.perf_counter() - started,
    })
    print(f"also {out / f'{name}.png'}; {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def study_task_budget(run_dir: Path) -> float | None:
    """The latency budget of a run's task."""
    return open_study(run_dir, STUDY).user_attrs[attrs.STUDY_TASK].get("latency_budget_ms")


if __name__ == "__main__":
    sys.exit(main())
