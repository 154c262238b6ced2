"""``python -m search.launch --space esfair``: run (or resume) a hardware-aware search.

Order of work: validate everything cheap first (space, storage, data, backend), so bad input fails
in seconds with one line naming the problem and the fix, before anything is stored; then create or
resume the study, recover trials a crash interrupted, optimise, and report the Pareto front with
its held-out test figures.
"""

from __future__ import annotations

import logging
import warnings
import sys
from pathlib import Path
from typing import Any, Sequence

from evaluators.errors import HwsearchError
from evaluators.secret_args import glue_secret_values
from search import attrs
from search.cli import build_parser
from spaces.candidate import CandidateError
from spaces.registry import UnknownSpaceError


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _latency_backend(args: Any, storage_url: str, cleanups: list[Any]) -> tuple[Any, str]:
    from evaluators.latency import make_latency_backend

    if args.latency != "remote":
        return make_latency_backend(args.latency), args.latency
    from search.fleet_link import remote_backend

    backend = remote_backend(args, storage_url, cleanups)
    return backend, backend.device_tag


def run(args: Any) -> int:
    """Run the search described by parsed ``args``; returns the process exit code."""
    import optuna
    from optuna.trial import TrialState

    from evaluators.contracts import LatencySettings
    from evaluators.data import load_dataset
    from evaluators.db import make_engine
    from search.context import effective_task
    from search.executors.dispatch import SearchPlan, connect_backend, execute
    from search.final_eval import evaluate_on_test
    from search.objective import parse_overrides
    from search.pareto import pareto_trials
    from search.progress import FailureGuard, ProgressCallback
    from search.report import format_pareto_table, format_trial_summary, pareto_rows
    from search.samplers import make_sampler
    from search.storage import open_storage, resolve_storage_url
    from search.study import create_or_resume_study, enqueue_baselines, finished_count, recover_interrupted_trials
    from spaces.registry import get_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.trials < 1 or args.jobs < 1:
        return _fail("--trials and --jobs must be >= 1")
    space = get_space(args.space)
    overrides = parse_overrides(args.override)
    task = effective_task(space, args.latency_budget, args.minority_group)
    out_dir: Path = args.out.resolve()
    study_name = args.study or space.name
    url = resolve_storage_url(args.storage, args.out)
    storage = open_storage(url)
    engine = make_engine(url)
    data_spec = args.data or task.default_data
    dataset = load_dataset(data_spec, cache_root=out_dir / "data", seed=args.seed)
    print(dataset.describe())
    cleanups: list[Any] = []
    try:
        backend, device_tag = _latency_backend(args, url, cleanups)
        session = connect_backend(args, cleanups)
        settings = LatencySettings(threads=args.latency_threads)
        sampler = make_sampler(args.sampler, seed=args.seed)
        from search.study import task_record

        study = create_or_resume_study(
            name=study_name, storage=storage, space=space, sampler=sampler,
            study_attrs={
                attrs.STUDY_TASK: task_record(space, task.latency_budget_ms),
                attrs.STUDY_DEVICE_TAG: device_tag, attrs.STUDY_LATENCY_BACKEND: args.latency,
                attrs.STUDY_DATA: dataset.describe(), attrs.STUDY_OUT_DIR: str(out_dir),
            },
        )
        recovered = recover_interrupted_trials(study)
        if recovered:
            print(f"resume: trials {recovered} were interrupted by a crash; marked failed, their budget is run again")
        if args.baselines:
            queued = enqueue_baselines(study, space)
            if queued:
                print(f"baselines enqueued: {', '.join(queued)}")
        done = finished_count(study)
        print(f"study {study_name!r} in {url}: {done} finished trial(s), target {args.trials}")
        study_dir = out_dir / study_name
        if args.latency == "fake":
            print("latency: FAKE backend - figures are computed, not measured")
        else:
            print(f"latency: {args.latency} backend, device tag {device_tag!r}, budget {task.latency_budget_ms} ms")
        guard = FailureGuard()
        if done < args.trials:
            progress = ProgressCallback(args.trials, done, disable=args.no_progress)
            try:
                plan = SearchPlan(study=study, storage=storage, url=url, space=space, task=task, overrides=overrides,
                                  dataset=dataset, data_spec=data_spec, latency_backend=backend, settings=settings,
                                  engine=engine, out_dir=out_dir, study_name=study_name)
                execute(args, plan, session, [progress, guard])
            finally:
                progress.close()
        trials = study.get_trials(deepcopy=False)
        print(format_trial_summary(trials))
        for t in trials:
            if t.state == TrialState.FAIL and t.user_attrs.get(attrs.FAIL_REASON):
                print(f"  trial {t.number} failed: {t.user_attrs[attrs.FAIL_REASON]} "
                      f"(traceback: {study_dir / f'trial_{t.number}' / 'error.log'})")
        front = pareto_trials(trials, task.directions)
        test = evaluate_on_test(study, front, dataset, task)
        label = front[0].user_attrs[attrs.METRICS]["latency"]["device"] if front else device_tag
        print(format_pareto_table(pareto_rows(front, test), label))
        if front:
            print(f"export one: python -m search.export --storage {url} --study {study_name} "
                  f"--trial {front[0].number} --out export/")
        if guard.tripped:
            return _fail(guard.tripped, 1)
        return 0
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run, and turn user errors into one line and a non-zero exit code."""
    args = build_parser().parse_args(glue_secret_values(argv, {"--fleet-token"}))
    logging.getLogger("optuna").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="optuna")
    warnings.filterwarnings("ignore", message=".*experimental.*")
    try:
        return run(args)
    except (HwsearchError, UnknownSpaceError, CandidateError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are stored; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
