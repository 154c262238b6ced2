"""The README's default-run figures, regenerated: ``python -m search.launch --space esfair`` in a fresh
folder, what it found, what it cost, and whether its first trial repeats exactly.

    python bench/readme_figures.py [--quick] [--out runs/bench]

1. **The default run**: the launcher with its defaults (``--no-progress`` only, so its log has one
   line per trial) in an empty folder, so the embedded data set is generated as on a first run.
   Wall-clock of the whole command and its peak RSS (``wait4``); trials by outcome and by rung; the
   front with validation and test figures and their 95 % intervals (``~``: dominated within noise,
   ``search.front``); the front's best test accuracy; how many members are less than 10 points
   above chance on the test split (chance: the share of the training split's majority class in
   the test split); trial 0's candidate and figures at each rung;
   the cost of the trials by stage and what screening and the latency cache saved
   (``bench/trial_costs.py``).
2. **Determinism**: trial 0 again in two fresh folders (``--trials 1 --rungs 1``, seed 0, the same
   data; one rung of one epoch: what repeats or not does not depend on the epoch count, and it keeps
   the check to minutes). Its stored validation figures are compared field by field; every field
   that differs is listed with the reason.

``--quick``: 48/36/36 images at 64 px, ``--timeout 30 --override resolution=64 --min-accuracy 0``.
Writes ``<out>/readme_figures[_quick].{md,json}``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common import (
    Launch,
    bench_parser,
    embedded_data,
    format_table,
    open_study,
    outcome_counts,
    outputs,
    run_launcher,
    rung_counts,
    study_points,
    study_spec,
    write_outputs,
)
from search import attrs
from search.front import FrontSpec, dominated_within_noise, front

STUDY = "esfair"
QUICK_COUNTS = {"train": 48, "val": 36, "test": 36}
QUICK_ARGS = ("--timeout", "30", "--override", "resolution=64", "--min-accuracy", "0")
CHANCE_MARGIN = 0.10
TIMING_PREFIXES = ("latency.", "stage_seconds.")
"""Stored fields that are wall-clock measurements: they differ between any two runs."""
PATH_FIELDS = ("artifact_path",)
"""Stored fields that name the run's folder."""


def data_argv(quick: bool, out: Path) -> list[str]:
    """``--data`` of the default run: none (the embedded default, generated in the run's folder), or
    the quick form's tiny set."""
    return ["--data", str(embedded_data(out, size=64, counts=QUICK_COUNTS))] if quick else []


def fresh_launch(run_dir: Path, argv: Sequence[str]) -> Launch:
    """The launcher in an emptied ``run_dir``; exits the bench when it fails."""
    shutil.rmtree(run_dir, ignore_errors=True)
    launch = run_launcher(["--space", "esfair", "--out", str(run_dir), *argv, "--no-progress"],
                          run_dir.parent / f"{run_dir.name}.log")
    if launch.returncode != 0:
        raise SystemExit(f"{' '.join(launch.argv)} failed (exit {launch.returncode}):\n{launch.tail()}")
    return launch


def _pm(value: float | None, half: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}" + (f"±{half:.{digits}f}" if half else "")


def front_table(study: Any, spec: FrontSpec) -> tuple[str, list[dict[str, Any]]]:
    """The front with validation and test figures (± half-width of the 95 % interval)."""
    val = study_points(study, "val", spec)
    members = front(val, spec)
    noise = dominated_within_noise(val, spec)
    test = {p.number: p for p in study_points(study, "test", spec)}
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    rows, records = [], []
    for p in members:
        t = test.get(p.number)
        record = study.user_attrs.get(attrs.test_metrics_key(p.number)) or {}
        score = (record.get("scores") or {}).get("esfair")
        cells = [f"{p.number}{'~' if p.number in noise else ''}"]
        cells += [_pm(v, h) for v, h in zip(p.values, p.half_widths)]
        cells += [_pm(v, h) for v, h in zip(t.values[:2], t.half_widths[:2])] if t else ["-", "-"]
        cells += [_pm(score, None), trials[p.number].user_attrs.get(attrs.CANDIDATE_TEXT, "")]
        rows.append(cells)
        records.append({"number": p.number, "val": list(p.values), "val_half_widths": list(p.half_widths),
                        "test": list(t.values) if t else None, "test_half_widths": list(t.half_widths) if t else None,
                        "dominated_within_noise_by": noise.get(p.number), "test_esfair": score,
                        "candidate": trials[p.number].user_attrs.get(attrs.CANDIDATE_TEXT, "")})
    header = ["trial", *(f"val {n}" for n in spec.names), *(f"test {n}" for n in spec.names[:2]), "test esfair",
              "candidate"]
    return format_table(header, rows), records


def chance_figures(members: Sequence[Mapping[str, Any]], dataset: Any) -> dict[str, Any]:
    """The front's best test accuracy, chance (the test split's majority-class share) and the
    members within :data:`CHANCE_MARGIN` of it."""
    chance = dataset.majority_share("test")
    accuracies = [m["test"][0] for m in members if m["test"]]
    near = [m["number"] for m in members if m["test"] and m["test"][0] < chance + CHANCE_MARGIN]
    return {"best_test_accuracy": max(accuracies, default=None), "chance": chance, "near_chance": near}


def trial_zero(study: Any) -> tuple[str, dict[str, Any]]:
    """Trial 0's candidate, outcome and figures at each rung."""
    t = next((t for t in study.get_trials(deepcopy=False) if t.number == 0), None)
    if t is None:
        return "trial 0: none", {}
    rungs = attrs.rung_records(t.user_attrs)
    lines = [f"trial 0: {t.user_attrs.get(attrs.CANDIDATE_TEXT, '')}; {t.state.name}"
             + ("" if t.user_attrs.get(attrs.TRAINED) or t.state.name != "COMPLETE" else " (screened out: "
                + str(t.user_attrs.get(attrs.INFEASIBLE_REASON, "")) + ")")]
    for rung, record in sorted(rungs.items()):
        figures = record.get("figures") or {}
        lines.append(f"  rung {rung} ({record.get('epochs')} epochs, {record.get('seconds', 0):.0f} s): accuracy "
                     f"{figures.get('accuracy', math.nan):.3f}, fairness part "
                     f"{(figures.get('fairness') or {}).get('fairness_part', math.nan):.3f}, latency "
                     f"{figures.get('latency_ms', math.nan):.3f} ms"
                     + "".join(f"; {d['reason']}" for d in [record.get("decision")] if d))
    if t.user_attrs.get(attrs.STOPPED):
        lines.append(f"  stopped: {t.user_attrs[attrs.STOPPED]}")
    test = study.user_attrs.get(attrs.test_metrics_key(0))
    if test:
        lines.append(f"  test split: accuracy {test['accuracy']:.3f}, fairness part "
                     f"{test['fairness']['fairness_part']:.3f}")
    return "\n".join(lines), {"candidate": t.user_attrs.get(attrs.CANDIDATE), "state": t.state.name,
                              "rungs": {str(k): v.get("figures") for k, v in rungs.items()}, "test": test}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists kept whole)."""
    if not isinstance(value, Mapping):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, str]:
    """Fields of two stored metrics records that differ, each with the reason.

    A score (``scores.*``) that differs while every figure but the timings is equal differs
    because it includes the measured latency (ESFair's latency third does).
    """
    flat_a, flat_b = flatten(a), flatten(b)
    differ = [k for k in sorted(set(flat_a) | set(flat_b)) if flat_a.get(k) != flat_b.get(k)]
    figures_equal = all(k.startswith((*TIMING_PREFIXES, "scores.")) or k in PATH_FIELDS for k in differ)
    out = {}
    for key in differ:
        if key.startswith(TIMING_PREFIXES):
            out[key] = "a wall-clock measurement: differs between any two runs"
        elif key in PATH_FIELDS:
            out[key] = "names the run's folder"
        elif key.startswith("scores.") and figures_equal:
            out[key] = "a score that includes the measured latency"
        elif key in ("artifact_sha256", "size_bytes"):
            out[key] = "the ONNX file's bytes differ"
        else:
            out[key] = "NOT deterministic: training or evaluation gave another result"
    return out


def determinism(work: Path, argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Trial 0 in two fresh folders; which of its stored validation figures differ, and why."""
    metrics = []
    for label in ("a", "b"):
        run_dir = work / f"trial0-{label}"
        fresh_launch(run_dir, ["--trials", "1", "--rungs", "1", *argv])
        trial = next(t for t in open_study(run_dir, STUDY).get_trials(deepcopy=False) if t.number == 0)
        metrics.append(trial.user_attrs.get(attrs.METRICS) or {})
    if not all(metrics):
        return "determinism: trial 0 was not trained in both runs (screened out or failed)", {"compared": False}
    diff = differences(*metrics)
    figures = [k for k, why in diff.items() if why.startswith("NOT")]
    head = (f"determinism: trial 0 ({' '.join(argv)} --trials 1 --rungs 1) in two fresh folders: its validation "
            f"figures are {'IDENTICAL' if not figures else 'NOT identical'} ({len(flatten(metrics[0]))} stored fields, "
            f"{len(diff)} differ)")
    rows = [[key, _short(flatten(metrics[0]).get(key)), _short(flatten(metrics[1]).get(key)), why]
            for key, why in diff.items()]
    table = format_table(["field", "run a", "run b", "why"], rows) if rows else ""
    return head + ("\n\n" + table if table else ""), {"compared": True, "differences": diff,
                                                      "nondeterministic_figures": figures}


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else f"{value:.6g}"
    return text if len(text) <= 40 else text[:37] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the default search and the determinism check; print and write the figures."""
    from evaluators.data import load_dataset
    from trial_costs import analyse

    args = bench_parser(__doc__, "tiny data, 30 s budget").parse_args(argv)
    name, out, work = dataclasses.astuple(outputs("readme_figures", args))
    started = time.perf_counter()
    run_dir = work / "default"
    extra = [*data_argv(args.quick, out), *(QUICK_ARGS if args.quick else ())]
    launch = fresh_launch(run_dir, extra)
    study = open_study(run_dir, STUDY)
    spec = study_spec(study)
    trials = study.get_trials(deepcopy=False)
    outcomes, per_rung = outcome_counts(trials), rung_counts(trials)
    ladder = [int(e) for e in study.user_attrs.get(attrs.STUDY_RUNGS) or []]
    table, members = front_table(study, spec)
    data_spec = extra[1] if args.quick else "embedded:esfair"
    chance = chance_figures(members, load_dataset(data_spec, cache_root=run_dir / "data", seed=0))
    zero_text, zero = trial_zero(study)
    costs_text, costs = analyse(study, f"sqlite:///{run_dir / 'hwsearch.db'}")
    data_folder = extra[1] if args.quick else str(embedded_data(run_dir))
    det_text, det = determinism(work, ["--data", data_folder, *(QUICK_ARGS[2:] if args.quick else ())])
    failed = [f"trial {t.number}: {t.user_attrs.get(attrs.FAIL_REASON, '')}" for t in trials if t.state.name == "FAIL"]
    best = chance["best_test_accuracy"]
    text = "\n\n".join([
        f"## The default run: python -m search.launch --space esfair {' '.join(extra)} (fresh folder)\n\n"
        f"wall-clock of the whole command **{launch.wall_s / 60:.1f} min** ({launch.wall_s:.0f} s), peak RSS "
        f"{launch.peak_rss_mb / 1024:.2f} GB; {study.user_attrs.get(attrs.STUDY_PLAN, '')}; "
        f"{float(study.user_attrs.get(attrs.STUDY_SPENT_S, 0)):.0f} s of the budget spent",
        f"trials: {outcomes['top']} complete at the top rung, {outcomes['stopped']} stopped at a lower rung, "
        f"{outcomes['screened']} screened out, {outcomes['failed']} failed; rung jobs: "
        + " ".join(f"{e} epochs: {per_rung.get(r, 0)}" for r, e in enumerate(ladder))
        + ("".join(f"\n  {line}" for line in failed)),
        f"Pareto front (± = half-width of the 95 % interval; ~ = dominated within noise):\n\n{table}",
        f"best test accuracy on the front: {'-' if best is None else f'{best:.3f}'}; chance (majority class of the "
        f"test split) {chance['chance']:.3f}; front members less than {CHANCE_MARGIN * 100:.0f} points above chance "
        "on the test split: "
        f"{len(chance['near_chance'])} of {len(members)}"
        + (f" (trials {', '.join(map(str, chance['near_chance']))})" if chance["near_chance"] else ""),
        zero_text, f"## Cost (bench/trial_costs.py on this run)\n\n{costs_text}", f"## Determinism\n\n{det_text}",
    ])
    print(f"\n{text}\n")
    write_outputs(out, name, text, {
        "command": ["python", "-m", "search.launch", *launch.argv], "wall_s": launch.wall_s,
        "peak_rss_mb": launch.peak_rss_mb, "outcomes": outcomes, "rungs": ladder,
        "rung_jobs": {str(k): v for k, v in per_rung.items()}, "front": members, **chance, "trial0": zero,
        "costs": costs, "determinism": det, "bench_wall_s": time.perf_counter() - started,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
