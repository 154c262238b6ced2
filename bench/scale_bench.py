"""Scale-out figures for the README, side by side in one run (5 to 10 minutes on 2 cores, by load).

1. **Trials/hour with 1 vs 2 trial slots** on this machine: the real launcher
   (``python -m search.launch``, local backend) runs the same number of trained trials of one
   fixed-cost recipe in one rung (the sampler still chooses learning rate, EMA, label smoothing
   and the fairness method) with ``--jobs 1`` and ``--jobs 2``, alternating (1, 2, 1, 2, ...) so
   that load from other users of a shared machine hits both alike; throughput is counted from the
   first trial's start to the last trial's end, and also over the whole command (start-up and the
   final test evaluation included). The load average is printed with each figure.
2. **Orchestration overhead per trial, Ray vs in-process**: for every trial, the driver's
   wall-clock (ask to tell, from the study) minus the pipeline's own stage seconds, as a share of
   the driver's wall-clock. In-process = ``--jobs 1``; Ray = ``--backend ray`` on a private local
   instance with one trial slot (``--trial-cpus`` = all CPUs), so neither shares the CPU with a
   second trial. The first Ray trial of each worker also builds the worker's trial context; the
   figure is given with and without it, and Ray's start-up is reported on its own.
3. **SQLite vs PostgreSQL, 2-4 concurrent workers on one study**: worker processes run the
   executors' real claim protocol (``search.executors.budget.TrialBudget``: cross-process lock,
   COMPLETE + PRUNED + RUNNING count, ``ask``), sample the esfair space (random sampler, so the
   sampler's cost does not hide the storage's), store the usual trial attributes and tell, until
   the study holds the target; trials/s from a common start.

Run: ``python bench/scale_bench.py [--trials 4] [--rounds 2] [--db-trials 100] [--postgres URL]``.
Without ``--postgres`` a throwaway PostgreSQL server is started on 127.0.0.1 (``tests/pg.py``).
``--quick``: 2 trials, 1 round, 12 database trials, SQLite only, no Ray. Writes
``<out>/scale_bench[_quick].{md,json}``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence

import optuna
from common import bench_parser, format_table, outputs, run_launcher, write_outputs

from search import attrs

RECIPE = ("--override", "backbone=mobilenetv3_small", "--override", "width=0.5", "--override", "resolution=64",
          "--override", "epochs=3", "--override", "finetune_epochs=0", "--override", "prune_ratio=0",
          "--override", "quant=fp32", "--override", "loss_kd=0", "--override", "loss_arcface=0",
          "--override", "loss_triplet=0", "--latency", "fake", "--latency-budget", "1000", "--no-progress")


def launch(work: Path, data: Path, study: str, trials: int, *extra: str) -> tuple[float, list[Any]]:
    """Run the launcher once; returns its wall-clock seconds and the study's trials."""
    url = f"sqlite:///{work / 'bench.db'}"
    result = run_launcher(["--data", str(data), "--storage", url, "--study", study, "--trials", str(trials),
                           "--out", str(work / "runs"), *RECIPE, *extra], work / f"{study}.log")
    if result.returncode != 0:
        raise SystemExit(f"launcher failed ({' '.join(extra)}):\n{result.tail()}")
    finished = [t for t in optuna.load_study(study_name=study, storage=url).trials if t.state.name == "COMPLETE"]
    return result.wall_s, finished


def span_seconds(trials: Sequence[Any]) -> float:
    """From the first trial's start to the last trial's end."""
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    return (last - first).total_seconds()


def overhead_shares(trials: Sequence[Any]) -> list[tuple[float, float]]:
    """``(overhead seconds, share of the trial's wall-clock)`` per trial, in trial order."""
    out = []
    for trial in sorted(trials, key=lambda t: t.number):
        wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
        inside = sum(trial.user_attrs.get(attrs.STAGE_SECONDS, {}).values())
        out.append((wall - inside, (wall - inside) / wall))
    return out


def load() -> str:
    """The 1-minute load average (other users of a shared machine show here)."""
    return f"{os.getloadavg()[0]:.1f}"


def figure_slots(work: Path, data: Path, trials: int, rounds: int) -> tuple[str, dict[str, Any], list[list[Any]]]:
    """Figure 1; also returns the trials of each ``--jobs 1`` run (the in-process reference of figure 2)."""
    runs: dict[int, list[tuple[float, list[Any]]]] = {1: [], 2: []}
    before = load()
    for round_ in range(rounds):
        for jobs in (1, 2):
            runs[jobs].append(launch(work, data, f"slots-{jobs}-{round_}", trials, "--jobs", str(jobs)))
    rows, rates = [], {}
    for jobs, results in runs.items():
        done = [t for _, ts in results for t in ts]
        span = sum(span_seconds(ts) for _, ts in results)
        wall = sum(w for w, _ in results)
        rates[jobs] = len(done) / span * 3600
        median = statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
        rows.append([jobs, f"{rates[jobs]:.0f}", f"{len(done) / wall * 3600:.0f}", f"{median:.1f}"])
    text = (f"## 1. Trials/hour, 1 vs 2 trial slots (local backend, this machine; load {before} before, {load()} "
            f"after)\n\n{os.cpu_count()} CPUs; {rounds} alternating runs x {trials} trained trials per setting\n\n"
            + format_table(["slots", "trials/hour (trials only)", "trials/hour (whole command)", "median trial s"], rows)
            + f"\n\nspeed-up of 2 slots (trials only): {rates[2] / rates[1]:.2f}x")
    return text, {"trials_per_hour": rates, "speedup": rates[2] / rates[1]}, [ts for _, ts in runs[1]]


def figure_overhead(work: Path, data: Path, trials: int, local_runs: list[list[Any]]) -> tuple[str, dict[str, Any]]:
    """Figure 2."""
    cpus = f"{os.cpu_count() or 1}"
    wall, ray_trials = launch(work, data, "ray-1", trials, "--backend", "ray", "--trial-cpus", cpus)
    rows, data_out = [], {}
    for name, runs in (("in-process (--jobs 1)", local_runs), ("Ray, 1 slot", [ray_trials])):
        shares = [overhead_shares(run) for run in runs]
        rest = [row for rows_ in shares for row in rows_[1:]] or [row for rows_ in shares for row in rows_]
        first = statistics.median(rows_[0][1] for rows_ in shares)
        median_s, median_share = statistics.median(o for o, _ in rest), statistics.median(s for _, s in rest)
        rows.append([name, f"{median_s:.2f}", f"{median_share:.1%}", f"{first:.1%}"])
        data_out[name] = {"median_s": median_s, "median_share": median_share, "first_share": first}
    startup = wall - span_seconds(ray_trials)
    text = (f"## 2. Orchestration overhead per trial, Ray vs in-process (load {load()})\n\n"
            "overhead = driver's trial wall-clock (ask to tell) - the pipeline's stage seconds\n\n"
            + format_table(["executor", "median overhead s", "median share", "share, first trial of a run"], rows)
            + f"\n\nRay run: {wall:.0f} s for the command, {startup:.0f} s of it outside the trials (Ray start-up, "
            "data, final test evaluation, shutdown); the first trial includes the worker's context build")
    return text, {**data_out, "ray_command_s": wall, "ray_outside_trials_s": startup}


def _db_worker(url: str, study: str, target: int, ready: Any, go: Any) -> None:
    from search.executors.budget import StudyLock, TrialBudget
    from search.storage import open_storage
    from spaces.registry import SampleContext, get_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage")
    space = get_space("esfair")
    storage = open_storage(url)
    loaded = optuna.load_study(study_name=study, storage=storage, sampler=optuna.samplers.RandomSampler())
    lock = StudyLock(url, study)
    budget = TrialBudget(loaded, storage, lock, target)
    owned: dict[int, Any] = {}
    ready.set()
    go.wait()
    while not budget.reached():
        trial = budget.claim(owned)
        if trial is None:
            time.sleep(0.01)
            continue
        candidate = space.sample(trial, SampleContext(grouped_data=True))
        trial.set_user_attr(attrs.CANDIDATE, candidate.to_params())
        trial.set_user_attr(attrs.CANDIDATE_TEXT, candidate.describe())
        trial.set_user_attr(attrs.STAGE_SECONDS, {"screen": 0.0, "train": 0.0})
        trial.set_user_attr(attrs.TRAINED, True)
        loaded.tell(trial, [random.random(), random.random(), random.random()])
        owned.pop(trial.number, None)
    lock.close()


def db_throughput(url: str, study: str, workers: int, target: int) -> float:
    """Trials/s of ``workers`` processes filling one study to ``target``."""
    from search.storage import open_storage
    from spaces.registry import get_space

    optuna.create_study(study_name=study, storage=open_storage(url), directions=get_space("esfair").task.directions)
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [ctx.Process(target=_db_worker, args=(url, study, target, ready, go)) for ready in readies]
    for proc in procs:
        proc.start()
    for ready in readies:
        ready.wait(timeout=120)
    start = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"a worker failed on {url.split(':')[0]}")
    seconds = time.perf_counter() - start
    complete = [t for t in optuna.load_study(study_name=study, storage=url).trials if t.state.name == "COMPLETE"]
    assert len(complete) == target, (len(complete), target)
    return target / seconds


def figure_databases(work: Path, pg_url: str | None, target: int) -> tuple[str, dict[str, Any]]:
    """Figure 3 (SQLite only when ``pg_url`` is None)."""
    sqlite = f"sqlite:///{work / 'db-bench.sqlite'}"
    rows, out = [], {}
    for workers in (2, 3, 4):
        lite = db_throughput(sqlite, f"db-{workers}", workers, target)
        pg = db_throughput(pg_url, f"db-{workers}-{os.getpid()}", workers, target) if pg_url else None
        rows.append([workers, f"{lite:.1f}", "-" if pg is None else f"{pg:.1f}"])
        out[str(workers)] = {"sqlite": lite, "postgresql": pg}
    text = (f"## 3. SQLite vs PostgreSQL, concurrent workers on one study (claim + ask + attrs + tell; load {load()})"
            f"\n\n{target} trials per cell, one process per worker, random sampler\n\n"
            + format_table(["workers", "SQLite trials/s", "PostgreSQL trials/s"], rows))
    return text, out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three figures; print and write them as Markdown tables."""
    p = bench_parser(__doc__, "2 trials, 1 round, 12 database trials, SQLite only, no Ray")
    p.add_argument("--trials", type=int, default=4, help="trained trials per launcher run (figures 1 and 2)")
    p.add_argument("--rounds", type=int, default=2, help="alternating runs per setting of figure 1")
    p.add_argument("--db-trials", type=int, default=100, help="trials per cell of figure 3")
    p.add_argument("--postgres", help="PostgreSQL URL for figure 3 (default: a throwaway local server)")
    args = p.parse_args(argv)
    from evaluators.data import generate_esfair

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    trials, rounds, db_trials = (2, 1, 12) if args.quick else (args.trials, args.rounds, args.db_trials)
    started = time.perf_counter()
    sections, data_out = [f"# Scale-out bench ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})"], {}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hwsearch-scale-bench-")))
        os.environ["HOME"] = str(work)
        data = generate_esfair(work / "data", seed=0, size=64, counts={"train": 192, "val": 64, "test": 64})
        text, data_out["slots"], in_process = figure_slots(work, data, trials, rounds)
        sections.append(text)
        print(text, flush=True)
        if not args.quick:
            text, data_out["overhead"] = figure_overhead(work, data, trials, in_process)
            sections.append(text)
            print(text, flush=True)
        pg_url = args.postgres
        if not pg_url and not args.quick:
            from tests.pg import postgres_server

            pg_url = stack.enter_context(postgres_server("bench"))
        text, data_out["databases"] = figure_databases(work, pg_url, db_trials)
        sections.append(text)
        print(text, flush=True)
    wall = time.perf_counter() - started
    sections.append(f"(bench wall-clock {wall:.0f} s)")
    where = outputs("scale_bench", args)
    write_outputs(where.out, where.name, "\n\n".join(sections), {**data_out, "wall_s": wall})
    return 0


if __name__ == "__main__":
    sys.exit(main())
