"""Latency repeatability: does a latency figure the search measured hold when measured again later?

    python bench/latency_repeatability.py [--artifacts 12 --gap 60] [--run RUN_DIR [--study esfair]] [--quick]

Artifacts: by default ``--artifacts`` candidates drawn from the esfair space (Optuna's random
sampler, seed 0), built untrained as the search screens them
(``evaluators.pipeline.compressed_architecture``: timm build, reparameterization, uniform pruning)
and written with ``write_artifact`` (ONNX export and the candidate's quantization; static int8 is
calibrated on 16 images of a small generated esfair set); with ``--run``, the artifacts of a
finished run's trained trials instead.

Every artifact is measured as the search measures it: the local backend (onnxruntime in this
process, the host's compute lock held) with the launcher's settings (``LatencySettings(threads=1,
batch=1)``: rounds of fresh sessions until the 95 % CI of the median is within +-5 %, 3 to 12
rounds, at most 8 s). After ``--gap`` seconds all are measured again with the same procedure, in a
seeded shuffle of the first order (interleaved with the first pass's order, so a drift of the
machine does not hit the artifacts in the same sequence). Figures: the share of second medians
inside the first measurement's 95 % CI (target >= 80 %), the median and largest ``|ratio - 1|``
of the two medians, and the CI half-widths (relative to the median) of both passes; with
``--run``, also the share of second medians inside the CI the search stored for the trial's
shipped file (top-rung trials only: a trial stopped at a lower rung stores its untrained
screening graph's figure, which the trained file need not match).

Every figure is given twice, side by side: **normalised** (what the search stores: each round
divided by the reference graph's round timed just before it, at one baseline, see
``evaluators.latency.normalise``; the baseline is the run's cache baseline with ``--run``, else the
median of the first pass's reference rounds) and **raw** (the round medians as timed, the CI over
them).

``--screening-graphs`` (with ``--run``): also rebuild each trained artifact's untrained screening
graph (same candidate, seed 0: the same graph fingerprint, other weights) and time the two files
interleaved ``--repeats`` times: the trained / untrained ratio says whether a screening figure
could stand for the shipped file (it cannot for every graph: weight values change speed).

``--quick``: 3 artifacts at 64 px, no gap. Writes ``<out>/latency_repeatability[_quick].{md,json}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import bench_parser, embedded_data, format_table, open_study, outputs, write_outputs

from search import attrs

TARGET_INSIDE = 0.80
CALIBRATION_COUNTS = {"train": 32, "val": 8, "test": 8}


@dataclass(frozen=True)
class Artifact:
    """An ONNX file to measure.

    Attributes:
        name: Label (trial number or candidate index). path: The file. resolution: Input side.
        candidate: Candidate description. stored: The latency the search stored for it (``--run``).
    """

    name: str
    path: Path
    resolution: int
    candidate: str
    stored: dict[str, Any] | None = None


@dataclass(frozen=True)
class Measurement:
    """One measurement: median, its 95 % CI and half-width relative to the median, rounds, seconds
    taken, and the half-width from the rounds' spread alone (without the between-session term)."""

    median_ms: float
    ci_low_ms: float | None
    ci_high_ms: float | None
    half_width: float | None
    rounds: int
    seconds: float
    rounds_half_width: float | None = None

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the CI (never, without one)."""
        return self.ci_low_ms is not None and self.ci_high_ms is not None and self.ci_low_ms <= value <= self.ci_high_ms


@dataclass(frozen=True)
class Timed:
    """A backend's result for one artifact and the seconds the measurement took."""

    result: Any
    seconds: float

    def raw(self) -> Measurement:
        """The figure as timed: median and CI of the raw round medians."""
        from evaluators.latency.benchmark import median_ci

        rounds = self.result.raw_round_medians_ms or self.result.round_medians_ms
        low, high = median_ci(rounds)
        median = statistics.median(rounds)
        half = None if low is None or high is None else (high - low) / 2 / median
        return Measurement(median, low, high, half, len(rounds), self.seconds, _log_half(low, high))

    def normalised(self, baseline_ms: float | None) -> Measurement:
        """The figure normalised to ``baseline_ms`` (as measured when no reference was timed)."""
        from evaluators.latency.benchmark import median_ci
        from evaluators.latency.normalise import normalise

        if baseline_ms is None:
            return self.raw()
        r = normalise(self.result, baseline_ms)
        return Measurement(r.median_ms, r.ci_low_ms, r.ci_high_ms, r.ci_half_width, r.rounds, self.seconds,
                           _log_half(*median_ci(r.round_medians_ms)))


def _log_half(low: float | None, high: float | None) -> float | None:
    """Half-width of ``[low, high]`` on the log scale (``median_ci`` builds it there)."""
    return None if low is None or high is None else (math.log(high) - math.log(low)) / 2


def sampled_candidates(count: int, seed: int, resolution: int | None) -> list[Any]:
    """``count`` esfair candidates drawn by Optuna's random sampler (``resolution`` fixed when given)."""
    import optuna

    from spaces.candidate import Candidate
    from spaces.registry import SampleContext, get_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = get_space("esfair")
    study = optuna.create_study(directions=space.task.directions, sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(count):
        candidate = space.sample(study.ask(), SampleContext(grouped_data=True))
        if resolution is not None:
            candidate = Candidate.from_params({**candidate.to_params(), "resolution": resolution})
        out.append(candidate)
    return out


def built_artifacts(count: int, out: Path, work: Path, resolution: int | None) -> list[Artifact]:
    """Untrained artifacts of sampled candidates, written as the search's screen writes them."""
    from evaluators.data import load_dataset

    data = embedded_data(out, counts=CALIBRATION_COUNTS)
    dataset = load_dataset(str(data), cache_root=work / "data", seed=0)
    out = []
    for i, candidate in enumerate(sampled_candidates(count, 0, resolution)):
        path = untrained_artifact(candidate, dataset, work / "artifacts" / f"candidate_{i}")
        out.append(Artifact(f"c{i}", path, candidate.resolution, candidate.describe()))
    return out


def untrained_artifact(candidate: Any, dataset: Any, folder: Path) -> Path:
    """``candidate``'s untrained graph written as the search's screen writes it (seed 0, 16 calibration images)."""
    from evaluators.pipeline import calibration_batches, compressed_architecture, write_artifact

    model = compressed_architecture(candidate, dataset.num_classes, seed=0)
    return write_artifact(model, candidate, folder, calibration_batches(dataset, candidate.resolution, 16, 0))


def run_artifacts(run_dir: Path, study_name: str, count: int) -> list[Artifact]:
    """The artifacts of a finished run's trained trials (the first ``count`` whose file exists)."""
    study = open_study(run_dir, study_name)
    out = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        path = Path(t.user_attrs.get(attrs.ARTIFACT_PATH) or "")
        if t.user_attrs.get(attrs.TRAINED) and path.is_file() and len(out) < count:
            out.append(Artifact(f"#{t.number}", path, int(t.user_attrs[attrs.CANDIDATE]["resolution"]),
                                t.user_attrs.get(attrs.CANDIDATE_TEXT, ""), t.user_attrs.get(attrs.LATENCY)))
    return out


def measure(backend: Any, artifact: Artifact, settings: Any) -> Timed:
    """One measurement of ``artifact`` by ``backend`` with ``settings``."""
    start = time.perf_counter()
    result = backend.measure(artifact.path, (1, 3, artifact.resolution, artifact.resolution), settings)
    return Timed(result, time.perf_counter() - start)


def measure_all(artifacts: Sequence[Artifact], order: Sequence[int], label: str) -> dict[int, Timed]:
    """Measure ``artifacts`` in ``order`` as the search does (local backend, the launcher's settings)."""
    from evaluators.contracts import LatencySettings
    from evaluators.latency import make_latency_backend

    backend, settings = make_latency_backend("local"), LatencySettings(threads=1, batch=1)
    out = {}
    for i in order:
        out[i] = measure(backend, artifacts[i], settings)
        m, slowdown = out[i].raw(), out[i].result.host_slowdown
        host = "" if slowdown is None else f", host at {slowdown:.2f}x its own reference median"
        print(f"  {label} {artifacts[i].name:<5} {m.median_ms:8.3f} ms raw, CI +-{(m.half_width or 0):.1%}, "
              f"{m.rounds} rounds, {m.seconds:.1f} s{host}", flush=True)
    return out


def run_baseline(run_dir: Path) -> float | None:
    """The host's typical reference median stored in the run's latency cache (local backend, the
    launcher's settings), or None (a run without reference rounds)."""
    from evaluators.contracts import LatencySettings
    from evaluators.db import make_engine
    from evaluators.latency.cache import LatencyCache
    from evaluators.latency.reference import reference_id

    cache = LatencyCache(make_engine(f"sqlite:///{run_dir / 'hwsearch.db'}"))
    return cache.baseline(reference_id(), "local", "local", LatencySettings(threads=1, batch=1))


def pass_baseline(first: dict[int, Timed]) -> float | None:
    """The median of every reference round of the first pass (None without reference rounds)."""
    rounds = [r for t in first.values() for r in t.result.reference_round_ms]
    return statistics.median(rounds) if rounds else None


def stored_contains(stored: dict[str, Any] | None, value: float, baseline_ms: float | None = None) -> bool | None:
    """Whether ``value`` lies inside the CI the search stored for the shipped file (``None``: no stored
    CI, or the stored figure is its untrained screening graph's, whose weights run at another speed).

    With ``baseline_ms`` the stored figure is first renormalised to it (the run's final baseline:
    a figure stored early in a run was normalised to the few reference rounds stored by then).
    """
    from evaluators.contracts import LatencyResult
    from evaluators.latency.normalise import normalise

    if not stored or not stored.get("of_artifact") or stored.get("ci_low_ms") is None or stored.get("ci_high_ms") is None:
        return None
    if baseline_ms is None:
        return stored["ci_low_ms"] <= value <= stored["ci_high_ms"]
    figure = normalise(LatencyResult.from_dict(stored), baseline_ms)
    assert figure.ci_low_ms is not None and figure.ci_high_ms is not None
    return figure.ci_low_ms <= value <= figure.ci_high_ms


def session_sd_estimate(pairs: Sequence[tuple[Measurement, Measurement]]) -> float | None:
    """Spread of a figure between two measurement sessions beyond its rounds' own noise (sd of the
    log figure; robust: from the median |log(2nd/1st)| and the median squared standard errors).

    ``Var(log 2nd/1st) = 2 s^2 + se_1^2 + se_2^2``, each ``se`` from the rounds' half-width over
    its Student-t quantile; None when no pair has both intervals.
    """
    from evaluators.latency.benchmark import _T975

    def se(m: Measurement) -> float | None:
        if m.rounds_half_width is None or m.rounds < 2:
            return None
        return m.rounds_half_width / (_T975[m.rounds - 2] if m.rounds - 1 <= len(_T975) else 1.96)

    usable = [(a, b, se(a), se(b)) for a, b in pairs]
    usable = [(a, b, x, y) for a, b, x, y in usable if x is not None and y is not None]
    if not usable:
        return None
    spread = statistics.median(abs(math.log(b.median_ms / a.median_ms)) for a, b, _, _ in usable) / 0.6745
    noise = statistics.median(x * x + y * y for _, _, x, y in usable)
    return math.sqrt(max(0.0, (spread * spread - noise) / 2))


def summary(artifacts: Sequence[Artifact], first: dict[int, Measurement],
            second: dict[int, Measurement], baseline_ms: float | None = None) -> dict[str, Any]:
    """The bench's figures over every artifact (``baseline_ms``: also compare with the stored
    figures renormalised to it)."""
    indices = range(len(artifacts))
    inside = [first[i].contains(second[i].median_ms) for i in indices]
    errors = [abs(second[i].median_ms / first[i].median_ms - 1.0) for i in indices]
    widths = [w for i in indices for w in (first[i].half_width, second[i].half_width) if w is not None]
    stored = [stored_contains(a.stored, second[i].median_ms) for i, a in enumerate(artifacts)]
    known = [s for s in stored if s is not None]
    shipped = [(second[i].median_ms / a.stored["median_ms"], (a.stored["ci_high_ms"] - a.stored["ci_low_ms"]) / 2
                / a.stored["median_ms"]) for i, a in enumerate(artifacts) if stored[i] is not None]
    rebased = [] if baseline_ms is None else [
        r for i, a in enumerate(artifacts) if (r := stored_contains(a.stored, second[i].median_ms, baseline_ms)) is not None]
    return {
        "session_sd_estimate": session_sd_estimate([(first[i], second[i]) for i in indices]),
        "artifacts": len(artifacts), "inside": sum(inside), "inside_share": sum(inside) / max(1, len(inside)),
        "median_abs_ratio_error": statistics.median(errors) if errors else None,
        "max_abs_ratio_error": max(errors, default=None),
        "median_half_width": statistics.median(widths) if widths else None, "max_half_width": max(widths, default=None),
        "not_precise": sum(1 for w in widths if w > 0.05), "measurements": len(widths),
        "inside_stored_share": sum(known) / len(known) if known else None, "with_stored_ci": len(known),
        "inside_rebased_share": sum(rebased) / len(rebased) if rebased else None,
        "stored_ratios": [r for r, _ in shipped], "stored_half_widths": [w for _, w in shipped],
    }


def report(artifacts: Sequence[Artifact], passes: dict[str, tuple[dict[int, Measurement], dict[int, Measurement]]],
           figures: dict[str, dict[str, Any]], gap_s: float, baseline_ms: float | None) -> str:
    """The per-artifact table (normalised and raw) and the summary lines of both."""
    (nf, ns), (rf, rs) = passes["normalised"], passes["raw"]
    rows = []
    for i, a in enumerate(artifacts):
        ci = "-" if nf[i].ci_low_ms is None else f"{nf[i].ci_low_ms:.3f}-{nf[i].ci_high_ms:.3f}"
        rows.append([a.name, a.candidate, f"{nf[i].median_ms:.3f}", ci, f"{(nf[i].half_width or 0):.1%}",
                     f"{ns[i].median_ms:.3f}", "yes" if nf[i].contains(ns[i].median_ms) else "NO",
                     f"{rf[i].median_ms:.3f}", f"{rs[i].median_ms:.3f}",
                     "yes" if rf[i].contains(rs[i].median_ms) else "NO"])
    table = format_table(["artifact", "candidate", "1st ms", "1st 95% CI", "+-", "2nd ms", "inside",
                          "raw 1st", "raw 2nd", "raw inside"], rows)
    norm, raw = figures["normalised"], figures["raw"]
    verdict = "meets" if norm["inside_share"] >= TARGET_INSIDE else "FALLS SHORT of"
    where = "none: no reference rounds" if baseline_ms is None else f"{baseline_ms:.4f} ms"
    lines = [
        f"second medians inside the first measurement's 95 % CI: **normalised {norm['inside']}/{norm['artifacts']} = "
        f"{norm['inside_share']:.0%}** ({verdict} the target of {TARGET_INSIDE:.0%}); raw {raw['inside']}/"
        f"{raw['artifacts']} = {raw['inside_share']:.0%}; second pass {gap_s:g} s after the first, in a shuffled "
        f"order; reference baseline {where}",
    ]
    for label, f in (("normalised", norm), ("raw", raw)):
        lines.append(
            f"{label}: |2nd/1st - 1| median {f['median_abs_ratio_error']:.1%}, largest {f['max_abs_ratio_error']:.1%}; "
            f"CI half-widths median {f['median_half_width']:.1%}, largest {f['max_half_width']:.1%}, "
            f"{f['not_precise']} of {f['measurements']} wider than +-5 %")
        if label == "normalised" and f["session_sd_estimate"] is not None:
            from evaluators.latency.normalise import SESSION_SD

            lines.append(f"normalised: spread between the two passes beyond the rounds' noise (sd, robust): "
                         f"{f['session_sd_estimate']:.1%} (the stored CI assumes {SESSION_SD:.1%} per session)")
        if f["with_stored_ci"]:
            rebased = ("" if f["inside_rebased_share"] is None else
                       f"; {f['inside_rebased_share']:.0%} with the stored figure renormalised to the run's final baseline")
            lines.append(f"{label}: second medians inside the CI the search stored for the shipped file (top-rung "
                         f"trials): {f['inside_stored_share']:.0%} of {f['with_stored_ci']}{rebased}; "
                         f"2nd / stored median {statistics.median(f['stored_ratios']):.3f} "
                         f"({min(f['stored_ratios']):.3f}-{max(f['stored_ratios']):.3f}), stored CI half-widths "
                         f"median {statistics.median(f['stored_half_widths']):.1%}")
    return table + "\n\n" + "\n".join(lines)


def screening_graph_ratios(artifacts: Sequence[Artifact], run_dir: Path, study_name: str, work: Path,
                           repeats: int) -> tuple[str, list[dict[str, Any]]]:
    """Trained file against its rebuilt untrained screening graph, timed interleaved ``repeats`` times."""
    from evaluators.contracts import LatencySettings
    from evaluators.data import load_dataset
    from evaluators.fingerprint import graph_fingerprint
    from evaluators.latency import make_latency_backend
    from spaces.candidate import Candidate

    data = next((run_dir / "data").glob("esfair-*"))
    dataset = load_dataset(str(data), cache_root=work / "data", seed=0)
    backend, settings = make_latency_backend("local"), LatencySettings(threads=1, batch=1)
    study = open_study(run_dir, study_name)
    params = {f"#{t.number}": t.user_attrs[attrs.CANDIDATE] for t in study.get_trials(deepcopy=False)
              if attrs.CANDIDATE in t.user_attrs}
    rows, records = [], []
    for artifact in artifacts:
        candidate = Candidate.from_params(params[artifact.name])
        untrained = untrained_artifact(candidate, dataset, work / "screening" / artifact.name.lstrip("#"))
        same = graph_fingerprint(untrained) == graph_fingerprint(artifact.path)
        shape = (1, 3, candidate.resolution, candidate.resolution)
        ratios = []
        for _ in range(repeats):
            trained_ms = backend.measure(artifact.path, shape, settings).median_ms
            ratios.append(trained_ms / backend.measure(untrained, shape, settings).median_ms)
        ratio = statistics.median(ratios)
        print(f"  {artifact.name:<5} trained / screening graph {ratio:.3f} ({min(ratios):.3f}-{max(ratios):.3f})",
              flush=True)
        rows.append([artifact.name, artifact.candidate, "yes" if same else "NO", f"{ratio:.3f}",
                     f"{min(ratios):.3f}-{max(ratios):.3f}"])
        records.append({"artifact": artifact.name, "same_fingerprint": same, "ratios": ratios})
    off = sum(1 for r in records if abs(statistics.median(r["ratios"]) - 1.0) > 0.10)
    table = format_table(["artifact", "candidate", "same fingerprint", "trained / screening", "range"], rows)
    return (f"{table}\n\n{off} of {len(records)} trained files ran more than 10 % apart from their untrained "
            f"screening graph ({repeats} interleaved repeats each)"), records


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    p = bench_parser(__doc__, "3 artifacts at 64 px, no gap")
    p.add_argument("--artifacts", type=int, default=12, help="artifacts to measure (default 12)")
    p.add_argument("--gap", type=float, default=60.0, help="seconds between the two passes (default 60)")
    p.add_argument("--run", type=Path, help="a finished run folder (--out of the launcher): measure its artifacts")
    p.add_argument("--study", default="esfair", help="study name in --run (default esfair)")
    p.add_argument("--screening-graphs", action="store_true",
                   help="with --run: time each trained file against its rebuilt untrained screening graph")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats for --screening-graphs (default 3)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build or find the artifacts, measure them twice, print and write the figures."""
    args = parse(argv)
    count, gap, resolution = (3, 0.0, 64) if args.quick else (args.artifacts, args.gap, None)
    name, out, work = dataclasses.astuple(outputs("latency_repeatability", args))
    started = time.perf_counter()
    if args.run:
        artifacts = run_artifacts(args.run.resolve(), args.study, count)
    else:
        artifacts = built_artifacts(count, out, work, resolution)
    if not artifacts:
        print("error: no artifact to measure", file=sys.stderr)
        return 2
    print(f"latency repeatability: {len(artifacts)} artifacts, local backend, threads 1", flush=True)
    first = measure_all(artifacts, range(len(artifacts)), "1st")
    time.sleep(gap)
    order = list(range(len(artifacts)))
    random.Random(0).shuffle(order)
    second = measure_all(artifacts, order, "2nd")
    baseline = (run_baseline(args.run.resolve()) if args.run else None) or pass_baseline(first)
    passes = {
        "normalised": ({i: t.normalised(baseline) for i, t in first.items()},
                       {i: t.normalised(baseline) for i, t in second.items()}),
        "raw": ({i: t.raw() for i, t in first.items()}, {i: t.raw() for i, t in second.items()}),
    }
    figures = {label: summary(artifacts, *pair, baseline if label == "normalised" else None)
               for label, pair in passes.items()}
    text = report(artifacts, passes, figures, gap, baseline)
    screening: list[dict[str, Any]] = []
    if args.run and args.screening_graphs:
        print("trained files against their untrained screening graphs:", flush=True)
        section, screening = screening_graph_ratios(artifacts, args.run.resolve(), args.study, work, args.repeats)
        text += "\n\n## Trained file against its untrained screening graph\n\n" + section
    print(f"\n{text}\n")
    write_outputs(out, name, text, {
        "screening_graphs": screening,
        "figures": figures, "gap_s": gap, "baseline_ms": baseline,
        "source": str(args.run) if args.run else "sampled esfair candidates",
        "artifacts": [{**dataclasses.asdict(a), "path": str(a.path),
                       **{f"{label}_{n}": dataclasses.asdict(pair[k][i]) for label, pair in passes.items()
                          for k, n in enumerate(("first", "second"))},
                       "first_result": first[i].result.to_dict(), "second_result": second[i].result.to_dict()}
                      for i, a in enumerate(artifacts)],
        "wall_s": time.perf_counter() - started,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
