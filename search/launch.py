"""``python -m search.launch --space esfair``: run (or resume) a hardware-aware search.

Order of work: validate everything cheap first (configuration, space, storage, data, backend), so
bad input fails in seconds with one line naming the problem and the fix, before anything is
stored; then create or resume the study, recover trials a crash interrupted (and continue the
promoted ones from their checkpoints), plan the budget, run, and report the front with its
held-out test figures.

Exit codes: 0 done, 1 the failure guard stopped the search, 2 bad input, 130 / 143 stopped by
SIGINT / SIGTERM (every trial this launcher had started is then FAIL with an "interrupted"
reason, its rung checkpoints kept; re-run the same command to resume).
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from typing import Any, Sequence

from evaluators.errors import HwsearchError
from evaluators.secret_args import glue_secret_values
from search import attrs
from search.cli import build_parser
from search.config import MAX_EPOCHS, ConfigError, SearchConfig
from search.stop import EXIT_BAD_INPUT, EXIT_FAILING, SearchStopped, StopSignal
from spaces.candidate import CandidateError
from spaces.registries import UnknownNameError, load_plugins

WARM_WIDTHS = (0.25, 0.35, 0.5, 0.75, 1.0, 1.25, 1.4, 1.5)
"""Widths checked for pretrained variants (timm publishes weights at these multipliers)."""


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _latency_backend(config: SearchConfig, cleanups: list[Any]) -> tuple[Any, str]:
    from evaluators.latency import make_latency_backend

    if config.latency != "remote":
        backend = make_latency_backend(config.latency)
        return backend, backend.device_tag
    from search.fleet_link import remote_backend

    backend = remote_backend(config, config.storage_url, cleanups)
    return backend, backend.device_tag


def effective_floors(config: SearchConfig, task: Any, dataset: Any) -> dict[str, float]:
    """The floors of this run: ``--floor``s, and an accuracy floor clearly above chance.

    The accuracy floor is ``--min-accuracy`` when given (0 disables it), else chance + 10 points,
    chance being the accuracy of always predicting the most frequent training class, on the
    validation split (at most halfway from chance to 1 for very imbalanced data).
    """
    floors = dict(config.floors)
    if "accuracy" in task.objective_names and "accuracy" not in floors:
        if config.min_accuracy is None:
            chance = dataset.majority_share("val")
            floors["accuracy"] = round(min(chance + 0.10, chance + (1.0 - chance) / 2.0), 4)
        elif config.min_accuracy > 0:
            floors["accuracy"] = config.min_accuracy
    return floors


def warm_start_context(config: SearchConfig, grouped: bool) -> Any:
    """What the space may sample: warm starts where ``--pretrained`` has weights, groups or not."""
    from evaluators.models import BACKBONES
    from evaluators.warm_start import WeightsSource
    from spaces.registry import SampleContext

    weights = WeightsSource.from_option(config.pretrained)
    if weights is None:
        return SampleContext(grouped_data=grouped)
    found = set()
    variants = set()
    for name in BACKBONES.names():
        for width in WARM_WIDTHS:
            variant = BACKBONES.get(name).variant(width)
            if variant is None:
                continue
            variants.add(variant)
            if weights.for_backbone(variant) is not None:
                found.add((name, width))
    unused = weights.unmatched_files(variants)
    if unused:
        print(f"pretrained: {len(unused)} file(s) match no backbone variant and are not used: {', '.join(unused)}")
    if not found:
        raise HwsearchError(f"--pretrained {config.pretrained}: no weights for any backbone of this search",
                            "name files after their timm variant, e.g. mobilenetv3_small_075.pth")
    print("pretrained: warm starts offered for " + ", ".join(f"{b} x{w:g}" for b, w in sorted(found)))
    return SampleContext(warm_starts=frozenset(found), grouped_data=grouped)


def known_rungs(config: SearchConfig, study: Any) -> tuple[int, ...] | None:
    """The study's rung ladder if it has one, else the one asked for (``None``: the plan chooses).

    Raises:
        ConfigError: The study was created with other rungs than ``--rungs``/``--override epochs`` ask.
    """
    stored = study.user_attrs.get(attrs.STUDY_RUNGS)
    wanted = (config.fixed_epochs,) if config.fixed_epochs else config.rungs
    if stored is None:
        return wanted
    stored = tuple(int(e) for e in stored)
    if wanted is not None and tuple(wanted) != stored:
        raise ConfigError(f"study {config.study!r} trains in rungs {','.join(map(str, stored))}, not "
                          f"{','.join(map(str, wanted))}", "pass another --study, or drop --rungs/--override epochs")
    return stored


def study_first_look(config: SearchConfig, study: Any, rungs: tuple[int, ...] | None, train_images: int) -> float:
    """Share of each epoch the study's first rungs train, stored on the study the first time.

    The stored share wins (every first rung of a study is ranked at one fidelity); a new study
    takes ``--first-look``, or :func:`search.plan.first_look_share` of its training split; a
    one-rung search (its first rung is the trial) and a study that already has first rungs from
    before the share was stored train whole epochs.

    Raises:
        ConfigError: ``--first-look`` differs from the study's, or asks for a share in a one-rung search.
    """
    from search.attrs import rung_label
    from search.plan import first_look_share

    stored = study.user_attrs.get(attrs.STUDY_FIRST_LOOK)
    if stored is not None:
        share = float(stored)
        if config.first_look is not None and abs(config.first_look - share) > 1e-9:
            what = "whole epochs" if share >= 1 else f"{rung_label(1, share)} of an epoch"
            raise ConfigError(f"study {config.study!r} trains {what} in its first rungs, not --first-look "
                              f"{config.first_look:g}", "pass another --study, or drop --first-look")
        return share
    one_rung = rungs is not None and len(rungs) == 1
    if one_rung and config.first_look is not None and config.first_look < 1:
        raise ConfigError(f"--first-look {config.first_look:g} needs a search in rungs, but every candidate trains in "
                          "one rung here (--override epochs or a one-rung --rungs)",
                          "drop --first-look, or pass --rungs with two or more rungs")
    earlier = any(attrs.rung_key(0) in t.user_attrs for t in study.get_trials(deepcopy=False))
    if one_rung or earlier:
        share = 1.0
    elif config.first_look is not None:
        share = config.first_look
    else:
        share = first_look_share(train_images, config.eta)
    study.set_user_attr(attrs.STUDY_FIRST_LOOK, share)
    return share


def run(config: SearchConfig) -> int:
    """Run the search described by ``config``; returns the process exit code."""
    import optuna

    from evaluators.contracts import LatencySettings
    from evaluators.data import load_dataset
    from evaluators.db import make_engine
    from search.executors.dispatch import SearchRun, connect_backend, execute
    from search.final_eval import evaluate_on_test
    from search.front import FrontSpec
    from search.executors.scheduler import Budget
    from search.progress import FailureGuard, SearchProgress
    from search.report import format_front_table, format_lower_rung_front, format_trial_summary, front_rows
    from search.samplers import make_sampler
    from search.storage import open_storage
    from search.study import (
        create_or_resume_study,
        enqueue_baselines,
        enqueue_continuations,
        enqueue_start_point,
        finished_count,
        recover_interrupted_trials,
    )
    from spaces.registry import get_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = get_space(config.space)
    storage = open_storage(config.storage_url)
    engine = make_engine(config.storage_url)
    data_spec = config.data or space.task.default_data
    dataset = load_dataset(data_spec, cache_root=config.out_dir / "data", seed=config.seed)
    print(dataset.describe())
    if space.task.needs_groups and not dataset.grouped:
        needing = ", ".join(o.name for o in space.task.objectives if o.needs_groups)
        raise ConfigError(f"space {space.name!r} optimises group fairness ({needing}) but {data_spec} has no groups",
                          "give the data groups (ROOT/<group>/<class>/ or a CSV group column), or use a space "
                          "without fairness objectives (e.g. --space lpirc)")
    task = space.task.with_settings(latency_budget_ms=config.latency_budget_ms, minority_group=config.minority_group)
    task = task.with_settings(floors=effective_floors(config, task, dataset))
    context = warm_start_context(config, dataset.grouped)
    cleanups: list[Any] = []
    try:
        backend, device_tag = _latency_backend(config, cleanups)
        session = connect_backend(config, cleanups)
        settings = LatencySettings(threads=config.latency_threads, batch=1)
        study = create_or_resume_study(
            name=config.study, storage=storage, space=space, sampler=make_sampler(config.sampler, seed=config.seed),
            study_attrs={
                attrs.STUDY_TASK: task.record(), attrs.STUDY_DEVICE_TAG: device_tag,
                attrs.STUDY_LATENCY_BACKEND: config.latency, attrs.STUDY_DATA: dataset.describe(),
                attrs.STUDY_OUT_DIR: str(config.out_dir),
            },
        )
        recovered = recover_interrupted_trials(study)
        if recovered:
            print(f"resume: trials {recovered} were interrupted by a crash or a stop; marked failed")
        if config.start_point and (start := enqueue_start_point(study, space)) is not None:
            print(f"start point enqueued: {start} (trained first and brought to the top rung; "
                  "--no-start-point skips it)")
        if config.baselines:
            queued = enqueue_baselines(study, space)
            if queued:
                print(f"baselines enqueued: {', '.join(queued)}")
        spent = float(study.user_attrs.get(attrs.STUDY_SPENT_S, 0.0))
        remaining = max(0.0, config.timeout_s - spent)
        print(f"study {config.study!r} in {config.storage_url}: {finished_count(study)} candidate(s) evaluated, "
              f"{spent:.0f} of {config.timeout_s:.0f} s spent" + (f", cap {config.trials}" if config.trials else ""))
        if config.latency == "fake":
            print("latency: FAKE backend - figures are computed, not measured")
        else:
            print(f"latency: {config.latency} backend, device tag {device_tag!r}, budget {task.latency_budget_ms} ms")
        guard = FailureGuard()
        evaluated = finished_count(study)
        capped = config.trials is not None and evaluated >= config.trials
        if remaining > 0 and not capped:
            started = time.monotonic()
            rungs = known_rungs(config, study)
            if study.user_attrs.get(attrs.STUDY_RUNGS) is None and rungs is not None:
                study.set_user_attr(attrs.STUDY_RUNGS, list(rungs))
                study.set_user_attr(attrs.STUDY_ETA, config.eta)
            if rungs is not None:
                continued = enqueue_continuations(study, len(rungs) - 1)
                if continued:
                    print(f"resume: trials {continued} continue from their last promoted rung checkpoint")
            study.set_user_attr(attrs.STUDY_BUDGET_S, config.timeout_s)
            first_look = study_first_look(config, study, rungs, len(dataset.splits["train"]))
            print(opening_plan(config, rungs, remaining, first_look))
            budget = Budget(total_s=config.timeout_s, spent_before_s=spent,
                            cap=None if config.trials is None else config.trials - evaluated,
                            eta=config.eta, max_epochs=MAX_EPOCHS)
            run_ = SearchRun(config=config, study=study, storage=storage, space=space, task=task,
                             spec=FrontSpec.from_task(task), dataset=dataset, data_spec=data_spec,
                             latency_backend=backend, settings=settings, engine=engine, context=context,
                             rungs=rungs, budget=budget, first_look=first_look)
            progress = SearchProgress(remaining, task, rungs or (1,), disable=config.no_progress,
                                      first_look=first_look)

            def planned(plan: Any) -> None:
                progress.set_rungs(plan.rungs)
                progress.write(plan.describe())

            try:
                execute(run_, session, [progress, guard], remaining_s=remaining, stop=StopSignal(),
                        on_tick=progress.tick, on_rung=progress.rung_finished, on_plan=planned, started=started)
            finally:
                progress.close()
        trials = study.get_trials(deepcopy=False)
        print(format_trial_summary(trials))
        for t in trials:
            if t.state.name == "FAIL" and t.user_attrs.get(attrs.FAIL_REASON):
                print(f"  trial {t.number} failed: {t.user_attrs[attrs.FAIL_REASON]}")
        rows = front_rows(study, trials, task)
        test = evaluate_on_test(study, [r.trial for r in rows], dataset, task, eval_batch=config.eval_batch)
        label = rows[0].trial.user_attrs[attrs.METRICS]["latency"]["device"] if rows else device_tag
        print(format_front_table(rows, task, test, label))
        if not rows and study.user_attrs.get(attrs.STUDY_RUNGS):
            print(format_lower_rung_front(trials, task, tuple(study.user_attrs[attrs.STUDY_RUNGS])))
        if rows:
            print(f"export one: python -m search.export --storage {config.storage_url} --study {config.study} "
                  f"--trial {rows[0].trial.number} --out export/")
        if guard.tripped:
            return _fail(guard.tripped, EXIT_FAILING)
        return 0
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def opening_plan(config: SearchConfig, rungs: tuple[int, ...] | None, remaining_s: float,
                 first_look: float = 1.0) -> str:
    """The plan as far as it is known before anything is timed."""
    from search.attrs import ladder_label, rung_label

    spent = config.timeout_s - remaining_s
    head = f"plan: {remaining_s:.0f} s of a {config.timeout_s:.0f} s budget" + (
        f" ({spent:.0f} s spent earlier)" if spent > 0 else "")
    cap = f", at most {config.trials} candidates" if config.trials else ""
    look = (f"; each first rung is a first look at {rung_label(1, first_look)} of an epoch (--first-look 1 trains "
            "whole epochs)") if first_look < 1 else ""
    if rungs is not None:
        return f"{head}; rungs {ladder_label(rungs, first_look)} epochs (η={config.eta}){look}{cap}"
    start = f"a first look at {rung_label(1, first_look)} of an epoch" if first_look < 1 else "1 epoch"
    return (f"{head}; every candidate starts with {start}; the rungs (up to {MAX_EPOCHS} epochs, η={config.eta}) "
            f"are chosen once {config.eta} candidates are timed{cap}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, validate, run; user errors become one line and exit code 2."""
    logging.getLogger("optuna").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="optuna")
    warnings.filterwarnings("ignore", message=".*experimental.*")
    try:
        load_plugins()
        args = build_parser().parse_args(glue_secret_values(argv, {"--fleet-token"}))
        return run(SearchConfig.from_args(args))
    except (HwsearchError, UnknownNameError, CandidateError, ImportError) as exc:
        return _fail(str(exc))
    except SearchStopped as exc:
        print(f"\n{exc.reason}: finished trials and rung checkpoints are stored; re-run the same command to resume",
              file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
