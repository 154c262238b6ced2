"""Per-trial cost by stage, and the wall-clock that latency-first screening and the latency cache saved.

    python bench/trial_costs.py [--storage sqlite:///runs/hwsearch.db] [--study esfair] [--no-measure]

How the savings are estimated (:func:`savings`), from one finished study:

* **Screening.** Without it, a candidate over the latency budget would be trained, exported and
  evaluated before its final latency showed it infeasible. Its cost is estimated from the trained
  trials of the same study: their median non-screening seconds per millisecond of latency, times
  the screened candidate's measured latency (training cost grows with the compute that latency
  measures; over-budget candidates are the big ones). The lower bound ``median`` charges each
  screened candidate just the median trained trial instead. Screening's own overhead is charged
  too: every trained trial spent its screening seconds, less the one latency measurement that a
  run without screening would have made at its end anyway.
* **Latency cache.** Every cache hit (the final artifact of a trained trial has the screened graph's
  fingerprint; a repeated architecture hits at screening) would otherwise be one more measurement.
  A measurement's cost is measured (:func:`measurement_seconds`): the wall-clock of the local
  backend benchmarking the study's own artifacts, session creation and warm-up included.
* A share is ``saved / (run wall-clock + saved)``: the part of the run that would have been spent
  without the feature.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from search import attrs
from search.storage import open_storage, resolve_storage_url

SCREEN_STAGE = "screen"


@dataclass(frozen=True)
class Savings:
    """Wall-clock saved by screening and by the latency cache in one study (seconds).

    Attributes:
        wall_s: First trial start to last trial finish.
        trained: Trained trials. screened: Trials screened out (over a budget, never trained).
        screened_cost_s: What screening the screened-out candidates cost.
        screening_overhead_s: Screening seconds of the trained trials, less one measurement each.
        unscreened_cost_s: Estimated cost of training the screened-out candidates (latency-scaled).
        unscreened_cost_median_s: The same, charging each the median trained trial (lower bound).
        cache_hits: Latency measurements served by the cache (final artifacts and screens).
        measurement_s: Seconds one latency measurement costs.
    """

    wall_s: float
    trained: int
    screened: int
    screened_cost_s: float
    screening_overhead_s: float
    unscreened_cost_s: float
    unscreened_cost_median_s: float
    cache_hits: int
    measurement_s: float

    @property
    def screening_saved_s(self) -> float:
        """Seconds screening saved (latency-scaled estimate)."""
        return self.unscreened_cost_s - self.screened_cost_s - self.screening_overhead_s

    @property
    def screening_saved_median_s(self) -> float:
        """Seconds screening saved (median-trial lower bound)."""
        return self.unscreened_cost_median_s - self.screened_cost_s - self.screening_overhead_s

    @property
    def cache_saved_s(self) -> float:
        """Seconds the latency cache saved."""
        return self.cache_hits * self.measurement_s

    def share(self, saved_s: float) -> float:
        """``saved / (wall + saved)``: the part of the run without the feature that it saves."""
        return saved_s / (self.wall_s + saved_s) if self.wall_s + saved_s > 0 else 0.0


def _total(trial: Any) -> float:
    return float(sum(trial.user_attrs.get(attrs.STAGE_SECONDS, {}).values()))


def _after_screen(trial: Any) -> float:
    stages = trial.user_attrs.get(attrs.STAGE_SECONDS, {})
    return float(sum(v for k, v in stages.items() if k != SCREEN_STAGE))


def _screen_latency_ms(trial: Any) -> float:
    return float(trial.user_attrs.get(attrs.SCREEN, {}).get("latency", {}).get("median_ms", 0.0))


def _screen_cached(trial: Any) -> bool:
    return bool(trial.user_attrs.get(attrs.SCREEN, {}).get("latency", {}).get("cached"))


def measurement_seconds(artifacts: Sequence[Path], resolutions: Sequence[int], limit: int = 3) -> float:
    """Median wall-clock of one local latency measurement (the backend's default settings).

    Args:
        artifacts: ONNX files to benchmark (the first ``limit`` that exist are used).
        resolutions: Input size of each artifact.
        limit: How many artifacts to time.

    Returns:
        Median seconds, or 0.0 when no artifact exists.
    """
    from evaluators.contracts import LatencySettings
    from evaluators.latency.local import LocalLatencyBackend

    backend, settings, seconds = LocalLatencyBackend(), LatencySettings(), []
    for path, resolution in zip(artifacts, resolutions):
        if len(seconds) >= limit:
            break
        if not Path(path).exists():
            continue
        start = time.perf_counter()
        backend.measure(Path(path), (1, 3, resolution, resolution), settings)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) if seconds else 0.0


def savings(trials: Sequence[Any], measurement_s: float, until_s: float | None = None) -> Savings:
    """Estimate what screening and the latency cache saved over ``trials`` (see the module doc).

    Args:
        trials: The study's trials (frozen).
        measurement_s: Seconds one latency measurement costs (:func:`measurement_seconds`).
        until_s: Only count trials finished this many seconds after the first trial started.
    """
    started = [t for t in trials if t.datetime_start is not None]
    if not started:
        return Savings(0.0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, measurement_s)
    t0 = min(t.datetime_start for t in started)
    done = [t for t in trials if t.state.name == "COMPLETE" and t.datetime_complete is not None]
    if until_s is not None:
        done = [t for t in done if (t.datetime_complete - t0).total_seconds() <= until_s]
    trained = [t for t in done if t.user_attrs.get(attrs.TRAINED)]
    screened = [t for t in done if not t.user_attrs.get(attrs.TRAINED)]
    wall = max(((t.datetime_complete - t0).total_seconds() for t in done), default=0.0)
    per_ms = [_after_screen(t) / _screen_latency_ms(t) for t in trained if _screen_latency_ms(t) > 0]
    rate = statistics.median(per_ms) if per_ms else 0.0
    median_trained = statistics.median([_after_screen(t) for t in trained]) if trained else 0.0
    hits = sum(1 for t in trained if t.user_attrs.get(attrs.METRICS, {}).get("latency", {}).get("cached"))
    hits += sum(1 for t in done if _screen_cached(t))
    overhead = sum(max(0.0, t.user_attrs.get(attrs.STAGE_SECONDS, {}).get(SCREEN_STAGE, 0.0) - measurement_s)
                   for t in trained)
    return Savings(
        wall_s=wall, trained=len(trained), screened=len(screened),
        screened_cost_s=sum(_total(t) for t in screened), screening_overhead_s=overhead,
        unscreened_cost_s=sum(rate * _screen_latency_ms(t) for t in screened),
        unscreened_cost_median_s=median_trained * len(screened),
        cache_hits=hits, measurement_s=measurement_s,
    )


def study_measurement_seconds(trials: Sequence[Any], limit: int = 3) -> float:
    """:func:`measurement_seconds` on the artifacts of the study's trained trials."""
    trained = [t for t in trials if t.user_attrs.get(attrs.TRAINED) and t.user_attrs.get(attrs.ARTIFACT_PATH)]
    return measurement_seconds([Path(t.user_attrs[attrs.ARTIFACT_PATH]) for t in trained],
                               [int(t.user_attrs[attrs.CANDIDATE]["resolution"]) for t in trained], limit)


def main() -> None:
    """Print the stage table and the savings of one study."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storage")
    p.add_argument("--study", default="esfair")
    p.add_argument("--no-measure", action="store_true",
                   help="do not time latency measurements (the cache's savings are then not estimated)")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=args.study, storage=open_storage(resolve_storage_url(args.storage, Path("runs"))))
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    trained = [t for t in done if t.user_attrs.get(attrs.TRAINED)]
    screened = [t for t in done if not t.user_attrs.get(attrs.TRAINED)]
    if not done:
        raise SystemExit("no finished trial in this study")
    wall = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in study.trials)).total_seconds()
    print(f"study {args.study}: {len(done)} finished ({len(trained)} trained, {len(screened)} screened out), "
          f"{wall / 60:.1f} min from first start to last finish")
    stages = sorted({s for t in trained for s in t.user_attrs[attrs.STAGE_SECONDS]})
    print(f"{'stage':<16} {'median_s':>8} {'mean_s':>8} {'share':>6}")
    totals = [sum(t.user_attrs[attrs.STAGE_SECONDS].values()) for t in trained]
    grand = sum(totals) or 1.0
    for stage in stages:
        values = [t.user_attrs[attrs.STAGE_SECONDS].get(stage, 0.0) for t in trained]
        print(f"{stage:<16} {statistics.median(values):>8.1f} {statistics.mean(values):>8.1f} "
              f"{sum(values) / grand:>6.1%}")
    if trained:
        print(f"{'trained trial':<16} {statistics.median(totals):>8.1f} {statistics.mean(totals):>8.1f}")
    measure = 0.0 if args.no_measure else study_measurement_seconds(study.trials)
    s = savings(study.trials, measure)
    if screened and trained:
        print(f"screened out: {s.screened} candidates, {s.screened_cost_s:.0f} s of screening; training them would "
              f"have cost ~{s.unscreened_cost_s / 60:.1f} min (latency-scaled; >= {s.unscreened_cost_median_s / 60:.1f} "
              f"min at the median trained trial); latency-first screening saved ~{s.screening_saved_s / 60:.1f} min "
              f"({s.share(s.screening_saved_s):.0%} of the run it would have been; lower bound "
              f"{s.share(max(0.0, s.screening_saved_median_s)):.0%})")
    hits = sum(1 for t in trained if t.user_attrs[attrs.METRICS]["latency"].get("cached"))
    print(f"latency cache: {hits}/{len(trained)} final artifacts measured from the cache (fingerprint hit), "
          f"{s.cache_hits} hits in all")
    if not args.no_measure:
        print(f"one latency measurement costs {s.measurement_s:.2f} s here; the cache saved ~{s.cache_saved_s:.0f} s "
              f"({s.share(s.cache_saved_s):.1%} of the run)")


if __name__ == "__main__":
    main()
