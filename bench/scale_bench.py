"""Scale-out figures for the README, side by side in one run (5 to 10 minutes on 2 cores, by load).

1. **Trials/hour with 1 vs 2 trial slots** on this machine: the real launcher
   (``python -m search.launch``, local backend) runs the same number of trained trials of one
   fixed-cost recipe (the sampler still chooses learning rate, EMA and label smoothing) with
   ``--jobs 1`` and ``--jobs 2``, alternating (1, 2, 1, 2, ...) so that load from other users of a
   shared machine hits both alike; throughput is counted from the first trial's start to the last
   trial's end, and also over the whole command (start-up and the final test evaluation included).
   The load average is printed with each figure.
2. **Orchestration overhead per trial, Ray vs in-process**: for every trial, the driver's
   wall-clock (ask to tell, from the study) minus the pipeline's own stage seconds, as a share of
   the driver's wall-clock. In-process = ``--jobs 1``; Ray = ``--backend ray`` on a private local
   instance with one trial slot (``--trial-cpus`` = all CPUs), so neither shares the CPU with a
   second trial. The first Ray trial of each worker also builds the worker's trial context; the
   figure is given with and without it, and Ray's start-up is reported on its own.
3. **SQLite vs PostgreSQL, 2-4 concurrent workers on one study**: worker processes run the
   executors' real claim protocol (cross-process lock, COMPLETE + RUNNING count, ``ask``), sample
   the esfair space (random sampler, so the sampler's cost does not hide the storage's), store the
   usual trial attributes and tell, until the study holds the target; trials/s from a common start.

Run: ``python bench/scale_bench.py [--trials 4] [--rounds 2] [--db-trials 100] [--postgres URL]``.
Without ``--postgres`` a throwaway PostgreSQL server is started on 127.0.0.1 (``tests/pg.py``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from search import attrs  # noqa: E402

RECIPE = ("--override", "backbone=mobilenetv3_small", "--override", "width=0.5", "--override", "resolution=64",
          "--override", "epochs=3", "--override", "finetune_epochs=0", "--override", "prune_ratio=0",
          "--override", "quant=fp32", "--override", "loss_kd=0", "--override", "loss_arcface=0",
          "--override", "loss_triplet=0", "--latency", "fake", "--latency-budget", "1000", "--no-progress")


def launch(work: Path, data: Path, study: str, trials: int, *extra: str) -> tuple[float, list[Any]]:
    """Run the launcher once; returns its wall-clock seconds and the study's trials."""
    url = f"sqlite:///{work / 'bench.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWSEARCH_")}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "search.launch", "--data", str(data), "--storage", url, "--study", study,
         "--trials", str(trials), "--out", str(work / "runs"), *RECIPE, *extra],
        cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"launcher failed ({' '.join(extra)}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    finished = [t for t in optuna.load_study(study_name=study, storage=url).trials if t.state.name == "COMPLETE"]
    return wall, finished


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


def figure_slots(work: Path, data: Path, trials: int, rounds: int) -> list[list[Any]]:
    """Figure 1; returns the trials of each ``--jobs 1`` run (the in-process reference of figure 2)."""
    runs: dict[int, list[tuple[float, list[Any]]]] = {1: [], 2: []}
    print(f"\n## 1. Trials/hour, 1 vs 2 trial slots (local backend, this machine; load {load()})\n")
    for round_ in range(rounds):
        for jobs in (1, 2):
            runs[jobs].append(launch(work, data, f"slots-{jobs}-{round_}", trials, "--jobs", str(jobs)))
    print(f"{os.cpu_count()} CPUs; {rounds} alternating runs x {trials} trained trials per setting; "
          f"load now {load()}\n")
    print("| slots | trials/hour (trials only) | trials/hour (whole command) | median trial s |")
    print("|---|---|---|---|")
    rates = {}
    for jobs, results in runs.items():
        done = [t for _, ts in results for t in ts]
        span = sum(span_seconds(ts) for _, ts in results)
        wall = sum(w for w, _ in results)
        rates[jobs] = len(done) / span * 3600
        median = statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
        print(f"| {jobs} | {rates[jobs]:.0f} | {len(done) / wall * 3600:.0f} | {median:.1f} |")
    print(f"\nspeed-up of 2 slots (trials only): {rates[2] / rates[1]:.2f}x")
    return [ts for _, ts in runs[1]]


def figure_overhead(work: Path, data: Path, trials: int, local_runs: list[list[Any]]) -> None:
    """Figure 2."""
    cpus = f"{os.cpu_count() or 1}"
    wall, ray_trials = launch(work, data, "ray-1", trials, "--backend", "ray", "--trial-cpus", cpus)
    print(f"\n## 2. Orchestration overhead per trial, Ray vs in-process (load {load()})\n")
    print("overhead = driver's trial wall-clock (ask to tell) - the pipeline's stage seconds\n")
    print("| executor | median overhead s | median share | share, first trial of a run |")
    print("|---|---|---|---|")
    for name, runs in (("in-process (--jobs 1)", local_runs), ("Ray, 1 slot", [ray_trials])):
        shares = [overhead_shares(run) for run in runs]
        rest = [row for rows in shares for row in rows[1:]] or [row for rows in shares for row in rows]
        first = statistics.median(rows[0][1] for rows in shares)
        print(f"| {name} | {statistics.median(o for o, _ in rest):.2f} | {statistics.median(s for _, s in rest):.1%} "
              f"| {first:.1%} |")
    startup = wall - span_seconds(ray_trials)
    print(f"\nRay run: {wall:.0f} s for the command, {startup:.0f} s of it outside the trials "
          "(Ray start-up, data, final test evaluation, shutdown); the first trial includes the worker's context build")


def _db_worker(url: str, study: str, target: int, ready: Any, go: Any) -> None:
    from search.executors.budget import StudyLock, TrialBudget
    from search.executors.local import run_local
    from search.storage import open_storage
    from spaces.registry import get_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    space = get_space("esfair")
    storage = open_storage(url)
    loaded = optuna.load_study(study_name=study, storage=storage, sampler=optuna.samplers.RandomSampler())
    lock = StudyLock(url, study)

    def objective(trial: Any) -> list[float]:
        candidate = space.sample(trial)
        trial.set_user_attr(attrs.CANDIDATE, candidate.to_params())
        trial.set_user_attr(attrs.CANDIDATE_TEXT, candidate.describe())
        trial.set_user_attr(attrs.STAGE_SECONDS, {"screen": 0.0, "train": 0.0})
        trial.set_user_attr(attrs.TRAINED, True)
        return [random.random(), random.random(), random.random()]

    ready.set()
    go.wait()
    run_local(loaded, TrialBudget(loaded, storage, lock, target), objective, jobs=1)
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


def figure_databases(work: Path, pg_url: str, target: int) -> None:
    """Figure 3."""
    sqlite = f"sqlite:///{work / 'db-bench.sqlite'}"
    print("\n## 3. SQLite vs PostgreSQL, concurrent workers on one study "
          f"(claim + ask + attrs + tell; load {load()})\n")
    print(f"{target} trials per cell, one process per worker, random sampler\n")
    print("| workers | SQLite trials/s | PostgreSQL trials/s |")
    print("|---|---|---|")
    for workers in (2, 3, 4):
        lite = db_throughput(sqlite, f"db-{workers}", workers, target)
        pg = db_throughput(pg_url, f"db-{workers}-{os.getpid()}", workers, target)
        print(f"| {workers} | {lite:.1f} | {pg:.1f} |")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three figures and print them as Markdown tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4, help="trained trials per launcher run (figures 1 and 2)")
    p.add_argument("--rounds", type=int, default=2, help="alternating runs per setting of figure 1")
    p.add_argument("--db-trials", type=int, default=100, help="trials per cell of figure 3")
    p.add_argument("--postgres", help="PostgreSQL URL for figure 3 (default: a throwaway local server)")
    args = p.parse_args(argv)
    from evaluators.data import generate_esfair

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    started = time.perf_counter()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hwsearch-scale-bench-")))
        os.environ["HOME"] = str(work)
        data = generate_esfair(work / "data", seed=0, size=64, counts={"train": 192, "val": 64, "test": 64})
        print(f"# Scale-out bench ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
        in_process = figure_slots(work, data, args.trials, args.rounds)
        figure_overhead(work, data, args.trials, in_process)
        pg_url = args.postgres
        if not pg_url:
            from tests.pg import postgres_server

            pg_url = stack.enter_context(postgres_server("bench"))
        figure_databases(work, pg_url, args.db_trials)
    print(f"\n(bench wall-clock {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
