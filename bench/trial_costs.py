"""Per-trial cost by stage and rung, and the wall-clock that latency-first screening and the latency
cache saved, in one finished study.

    python bench/trial_costs.py [--run RUN_DIR | --storage URL] [--study esfair] [--no-measure] [--quick]

``--run DIR`` reads ``DIR/hwsearch.db`` (the launcher's ``--out DIR``; default ``runs``). Trained
trials are the COMPLETE ones that were trained and the PRUNED ones (stopped at a lower rung); their
``stage_seconds`` add up every rung they ran.

How the savings are estimated (:func:`savings`):

* **Screening.** Without it, a candidate over the latency budget would have run its first rung job
  (training, export, evaluation) before its latency showed it infeasible; it would never have been
  promoted. That cost is estimated from the study's own rung-0 jobs: their median non-screening
  seconds per millisecond of latency, times the screened candidate's latency (training cost grows
  with the compute latency measures; over-budget candidates are the big ones). The lower bound
  charges each screened candidate the median rung-0 job instead. Screening's own overhead is
  charged too: every trained trial's screening seconds, less the one measurement that a search
  without screening would still have made.
* **Latency cache.** Every latency call (one per screen, one per rung job) that the cache answered
  saved a measurement; a top-rung job measures its shipped file in full (a fresh round only when
  the same bytes were measured before). The calls come from the trials, the measurements
  actually made from the cache's table (rounds stored together by one call), and what a
  measurement and a round cost here is timed on the study's own artifacts
  (:func:`measurement_seconds`).
* A share is ``saved / (run wall-clock + saved)``: the part of the run that would have been spent
  without the feature.

``--quick`` runs a tiny search first (48 training images, 30 s, ``--latency-budget 1`` so that some
candidates are screened out) and reads it. Writes ``<out>/trial_costs[_quick].{md,json}``.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import (
    bench_parser,
    embedded_data,
    format_table,
    outcome_counts,
    outputs,
    run_launcher,
    rung_counts,
    write_outputs,
)

from search import attrs

SCREEN_STAGE = "screen"
QUICK_COUNTS = {"train": 48, "val": 36, "test": 36}


def trained_trials(trials: Sequence[Any]) -> list[Any]:
    """COMPLETE trials that were trained, and PRUNED trials (trained, stopped at a lower rung)."""
    return [t for t in trials if t.state.name in ("COMPLETE", "PRUNED") and t.user_attrs.get(attrs.TRAINED)]


def screened_trials(trials: Sequence[Any]) -> list[Any]:
    """COMPLETE trials that were screened out (never trained)."""
    return [t for t in trials if t.state.name == "COMPLETE" and not t.user_attrs.get(attrs.TRAINED)]


def _stages(trial: Any) -> dict[str, float]:
    return trial.user_attrs.get(attrs.STAGE_SECONDS) or {}


def _screen_latency_ms(trial: Any) -> float:
    return float(((trial.user_attrs.get(attrs.SCREEN) or {}).get("latency") or {}).get("median_ms", 0.0))


def _screen_seconds(trial: Any) -> float:
    return float((trial.user_attrs.get(attrs.SCREEN) or {}).get("seconds") or 0.0)


def stage_rows(trials: Sequence[Any]) -> list[list[str]]:
    """Per stage over the trained trials: median and mean seconds, share of their total."""
    trained = trained_trials(trials)
    totals = [sum(_stages(t).values()) for t in trained]
    grand = sum(totals) or 1.0
    rows = []
    for stage in sorted({s for t in trained for s in _stages(t)}):
        values = [_stages(t).get(stage, 0.0) for t in trained]
        rows.append([stage, f"{statistics.median(values):.1f}", f"{statistics.mean(values):.1f}",
                     f"{sum(values) / grand:.1%}"])
    if trained:
        rows.append(["trained trial", f"{statistics.median(totals):.1f}", f"{statistics.mean(totals):.1f}", ""])
    return rows


def rung_rows(trials: Sequence[Any], rungs: Sequence[int]) -> list[list[str]]:
    """Per rung: jobs run there and the median seconds of one (records copied by continuations skipped)."""
    seconds: dict[int, list[float]] = {}
    for t in trials:
        for rung, record in attrs.rung_records(t.user_attrs).items():
            if record.get("copied_from") is None:
                seconds.setdefault(rung, []).append(float(record.get("seconds") or 0.0))
    epochs = dict(enumerate(rungs))
    return [[rung, epochs.get(rung, "?"), len(values), f"{statistics.median(values):.1f}"]
            for rung, values in sorted(seconds.items())]


def probe_figures(trials: Sequence[Any]) -> dict[str, Any]:
    """The first-rung cost probe: candidates it stopped, and how its projection compared with the
    training seconds of the rungs it let train (training + fine-tune after pruning)."""
    stopped = [t.user_attrs[attrs.TOO_COSTLY] for t in trials if t.user_attrs.get(attrs.TOO_COSTLY)]
    ratios = []
    for t in trials:
        record = attrs.rung_records(t.user_attrs).get(0) or {}
        projected = record.get("projected_train_s")
        stages = record.get("stage_seconds") or {}
        if projected and record.get("copied_from") is None:
            ratios.append((stages.get("train", 0.0) + stages.get("prune_finetune", 0.0)) / float(projected))
    return {"stopped": len(stopped), "stopped_projected_s": sorted(round(float(p["projected_s"]), 1) for p in stopped),
            "limit_s": float(stopped[0]["limit_s"]) if stopped else None, "actual_over_projected": sorted(ratios)}


def probe_text(figures: dict[str, Any]) -> str:
    """One paragraph on the cost probe (empty when the study never used it)."""
    ratios = figures["actual_over_projected"]
    if not ratios and not figures["stopped"]:
        return ""
    parts = [f"first-rung cost probe: stopped {figures['stopped']} candidate(s) as too costly"]
    if figures["stopped"]:
        parts[0] += f" (projected {', '.join(f'{p:.0f}' for p in figures['stopped_projected_s'])} s; " \
                    f"limit {figures['limit_s']:.0f} s)"
    if ratios:
        parts.append(f"the {len(ratios)} first rungs it let train took {statistics.median(ratios):.2f}x its projection "
                     f"(median; {ratios[0]:.2f}-{ratios[-1]:.2f})")
    return "; ".join(parts)


@dataclass(frozen=True)
class CacheCalls:
    """Latency calls of a study and what the cache's table says was measured.

    Attributes:
        calls: Screens plus rung jobs (each asked for one latency figure).
        measurements: Whole measurements made (calls that stored several rounds).
        fresh_rounds: Single rounds added to a cached figure (a shipped file measured again).
    """

    calls: int
    measurements: int
    fresh_rounds: int

    @property
    def hits(self) -> int:
        """Calls the cache answered without measuring anything."""
        return max(0, self.calls - self.measurements - self.fresh_rounds)


def cache_calls(trials: Sequence[Any], storage_url: str) -> CacheCalls:
    """Count the study's latency calls, and the measurements its database's latency table holds (the
    reference graph's rounds, stored beside them, are not measurements)."""
    from sqlalchemy import func, select

    from evaluators.db import make_engine, session_scope
    from evaluators.latency.cache import LatencyRoundRow
    from evaluators.latency.reference import REFERENCE_PREFIX

    screens = sum(1 for t in trials if t.user_attrs.get(attrs.SCREEN))
    jobs = sum(rung_counts(trials).values())
    engine = make_engine(storage_url)
    with session_scope(engine) as session:
        batches = session.execute(
            select(func.count()).select_from(LatencyRoundRow)
            .where(LatencyRoundRow.fingerprint.not_like(f"{REFERENCE_PREFIX}%"))
            .group_by(LatencyRoundRow.fingerprint, LatencyRoundRow.settings_key, LatencyRoundRow.created_at)).all()
    engine.dispose()
    sizes = [int(row[0]) for row in batches]
    return CacheCalls(screens + jobs, sum(1 for n in sizes if n > 1), sum(1 for n in sizes if n == 1))


def measurement_seconds(trials: Sequence[Any], limit: int = 3) -> tuple[float, float]:
    """Median wall-clock of one whole local latency measurement and of one added round, timed on the
    study's first ``limit`` trained artifacts with the launcher's settings (0, 0 when none exists)."""
    from evaluators.contracts import LatencySettings
    from evaluators.latency import make_latency_backend

    backend, settings = make_latency_backend("local"), LatencySettings(threads=1, batch=1)
    whole, single = [], []
    for t in trained_trials(trials):
        path = Path(t.user_attrs.get(attrs.ARTIFACT_PATH) or "")
        if len(whole) >= limit or not path.is_file():
            continue
        resolution = int(t.user_attrs[attrs.CANDIDATE]["resolution"])
        for seconds, method in ((whole, backend.measure), (single, backend.add_round)):  # type: ignore[attr-defined]
            start = time.perf_counter()
            method(path, (1, 3, resolution, resolution), settings)
            seconds.append(time.perf_counter() - start)
    return (statistics.median(whole), statistics.median(single)) if whole else (0.0, 0.0)


@dataclass(frozen=True)
class Savings:
    """Wall-clock saved by screening and by the latency cache in one study (seconds).

    Attributes:
        wall_s: First trial start to last trial finish.
        trained, screened: Trained trials and screened-out ones.
        screened_cost_s: What screening the screened-out candidates cost.
        screening_overhead_s: Screening seconds of the trained trials, less one measurement each.
        unscreened_cost_s: Estimated rung-0 cost of the screened-out candidates (latency-scaled).
        unscreened_cost_median_s: The same at the median rung-0 job (lower bound).
        cache: The latency calls. measurement_s, round_s: What a measurement and a round cost here.
    """

    wall_s: float
    trained: int
    screened: int
    screened_cost_s: float
    screening_overhead_s: float
    unscreened_cost_s: float
    unscreened_cost_median_s: float
    cache: CacheCalls
    measurement_s: float
    round_s: float

    @property
    def screening_saved_s(self) -> float:
        """Seconds screening saved (latency-scaled estimate)."""
        return self.unscreened_cost_s - self.screened_cost_s - self.screening_overhead_s

    @property
    def screening_saved_median_s(self) -> float:
        """Seconds screening saved (median-job lower bound)."""
        return self.unscreened_cost_median_s - self.screened_cost_s - self.screening_overhead_s

    @property
    def cache_saved_s(self) -> float:
        """Seconds the latency cache saved."""
        return self.cache.hits * self.measurement_s + self.cache.fresh_rounds * max(0.0, self.measurement_s - self.round_s)

    def share(self, saved_s: float) -> float:
        """``saved / (wall + saved)``: the part of the run without the feature that it saves."""
        return saved_s / (self.wall_s + saved_s) if self.wall_s + saved_s > 0 else 0.0


def _rung0_after_screen(trial: Any) -> float | None:
    record = attrs.rung_records(trial.user_attrs).get(0)
    if not record or record.get("copied_from") is not None:
        return None
    return float(record.get("seconds") or 0.0) - float((record.get("stage_seconds") or {}).get(SCREEN_STAGE, 0.0))


def savings(trials: Sequence[Any], cache: CacheCalls, measurement_s: float, round_s: float) -> Savings:
    """Estimate what screening and the latency cache saved over ``trials`` (see the module doc)."""
    started = [t.datetime_start for t in trials if t.datetime_start is not None]
    ended = [t.datetime_complete for t in trials if t.datetime_complete is not None and t.state.name != "FAIL"]
    wall = (max(ended) - min(started)).total_seconds() if started and ended else 0.0
    trained, screened = trained_trials(trials), screened_trials(trials)
    rung0 = [(t, s) for t in trained if (s := _rung0_after_screen(t)) is not None]
    per_ms = [s / _screen_latency_ms(t) for t, s in rung0 if _screen_latency_ms(t) > 0]
    rate = statistics.median(per_ms) if per_ms else 0.0
    median_job = statistics.median(s for _, s in rung0) if rung0 else 0.0
    overhead = sum(max(0.0, _stages(t).get(SCREEN_STAGE, 0.0) - measurement_s) for t in trained)
    return Savings(
        wall_s=wall, trained=len(trained), screened=len(screened),
        screened_cost_s=sum(_screen_seconds(t) for t in screened), screening_overhead_s=overhead,
        unscreened_cost_s=sum(rate * _screen_latency_ms(t) for t in screened),
        unscreened_cost_median_s=median_job * len(screened), cache=cache, measurement_s=measurement_s,
        round_s=round_s,
    )


def savings_text(s: Savings) -> str:
    """The savings in words."""
    lines = []
    if s.screened and s.trained:
        lines.append(
            f"screening: {s.screened} candidate(s) screened out in {s.screened_cost_s:.0f} s; their first rung would "
            f"have cost ~{s.unscreened_cost_s:.0f} s (latency-scaled; >= {s.unscreened_cost_median_s:.0f} s at the "
            f"median rung-0 job); screening cost the trained trials {s.screening_overhead_s:.0f} s; saved "
            f"~{s.screening_saved_s:.0f} s ({s.share(s.screening_saved_s):.0%} of the run it would have been; lower "
            f"bound {s.share(max(0.0, s.screening_saved_median_s)):.0%})")
    else:
        lines.append(f"screening: nothing screened out; it cost the trained trials {s.screening_overhead_s:.0f} s "
                     f"({s.screening_overhead_s / s.wall_s if s.wall_s else 0.0:.1%} of the run)")
    lines.append(f"latency cache: {s.cache.calls} latency calls (screens + rung jobs), {s.cache.measurements} whole "
                 f"measurements and {s.cache.fresh_rounds} fresh rounds made, {s.cache.hits} answered "
                 "from the cache")
    if s.measurement_s:
        lines.append(f"one measurement costs {s.measurement_s:.2f} s here, one round {s.round_s:.2f} s: the cache "
                     f"saved ~{s.cache_saved_s:.0f} s ({s.share(s.cache_saved_s):.1%} of the run)")
    return "\n".join(lines)


def analyse(study: Any, storage_url: str, measure: bool = True) -> tuple[str, dict[str, Any]]:
    """The report's text and figures for ``study``."""
    trials = study.get_trials(deepcopy=False)
    outcomes = outcome_counts(trials)
    rungs = [int(e) for e in study.user_attrs.get(attrs.STUDY_RUNGS) or []]
    measurement_s, round_s = measurement_seconds(trials) if measure else (0.0, 0.0)
    s = savings(trials, cache_calls(trials, storage_url), measurement_s, round_s)
    head = (f"study {study.study_name}: {outcomes['top']} complete at the top rung, {outcomes['stopped']} stopped "
            f"at a lower rung, {outcomes['screened']} screened out, {outcomes['failed']} failed; "
            f"{s.wall_s / 60:.1f} min from the first start to the last finish")
    probe = probe_figures(trials)
    text = "\n\n".join(part for part in [
        head, "Stages of the trained trials (all rungs):\n\n" + format_table(["stage", "median s", "mean s", "share"],
                                                                            stage_rows(trials)),
        "Rung jobs:\n\n" + format_table(["rung", "epochs", "jobs", "median s"], rung_rows(trials, rungs)),
        savings_text(s), probe_text(probe)] if part)
    data = {"study": study.study_name, "outcomes": outcomes, "rungs": rungs, "savings": asdict(s),
            "screening_saved_s": s.screening_saved_s, "cache_saved_s": s.cache_saved_s, "cost_probe": probe}
    return text, data


def quick_run(out: Path, work: Path) -> Path:
    """A tiny search to read (the ``--quick`` form)."""
    data = embedded_data(out, size=64, counts=QUICK_COUNTS)
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    launch = run_launcher(["--space", "esfair", "--out", str(run_dir), "--data", str(data), "--timeout", "30",
                           "--latency-budget", "1", "--override", "resolution=64", "--min-accuracy", "0",
                           "--no-progress"], work / "launcher.log")
    if launch.returncode != 0:
        raise SystemExit(f"the quick search failed (exit {launch.returncode}):\n{launch.tail()}")
    return run_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Print and write the stage table and the savings of one study."""
    import optuna

    from search.storage import open_storage, resolve_storage_url

    p = bench_parser(__doc__, "run a tiny search first and read it")
    p.add_argument("--run", type=Path, default=Path("runs"), help="the launcher's --out folder (default runs)")
    p.add_argument("--storage", help="storage URL (default: sqlite:///<run>/hwsearch.db)")
    p.add_argument("--study", default="esfair")
    p.add_argument("--no-measure", action="store_true",
                   help="do not time latency measurements (the cache's savings are then not estimated)")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    where = outputs("trial_costs", args)
    run_dir = quick_run(where.out, where.work) if args.quick else args.run.resolve()
    url = args.storage or resolve_storage_url(None, run_dir)
    study = optuna.load_study(study_name=args.study, storage=open_storage(url))
    if not trained_trials(study.trials) and not screened_trials(study.trials):
        print("error: no finished trial in this study", file=sys.stderr)
        return 2
    text, data = analyse(study, url, measure=not args.no_measure)
    print(f"{text}\n")
    write_outputs(where.out, where.name, text, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
