"""Shared helpers of the benchmarks: a study's fronts and hypervolume (through ``search.front``, the
one module for them), launcher subprocesses, outputs and tables.

Fronts and hypervolume: every bench scores a study exactly as the launcher's report and the
dashboard do, with :mod:`search.front`: the objectives, directions and scales come from the task
record the study stores (``hwsearch.task``): for esfair ``1 - accuracy``, ``1 - 3 * fairness_part``
and ``latency / budget``, reference 1.1 in every scaled loss, moocore's exact hypervolume as a
fraction of the reference box. :func:`study_hypervolume` on the ``val`` split is the launcher's
own figure; on the ``test`` split it takes the validation front's members with the test-split
figures the launcher stored for them (``hwsearch.test_metrics.<n>``), latency as measured.

Importing this module puts the repository root first on ``sys.path``, and :func:`launcher_env`
puts it first on ``PYTHONPATH``, so a bench and the launchers it starts run this tree's code.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from search import attrs  # noqa: E402
from search.front import FrontSpec, Point, front, half_widths, hypervolume, points_from_trials  # noqa: E402
from spaces.task import metric_value  # noqa: E402

SPLITS = ("val", "test")


def spread(values: Sequence[float | None], digits: int = 2) -> str:
    """``median [min-max]`` of ``values``, e.g. ``0.51 [0.44-0.60]``; ``n/a`` when empty."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "n/a"
    med = statistics.median(finite)
    return f"{med:.{digits}f} [{min(finite):.{digits}f}-{max(finite):.{digits}f}]"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text table with columns padded to their widest cell (markdown-compatible pipes)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def bench_parser(doc: str, quick: str) -> argparse.ArgumentParser:
    """A bench's argument parser (described by the first line of ``doc``) with ``--out`` and
    ``--quick`` (``quick`` says what the CI size is)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder (default runs/bench)")
    p.add_argument("--quick", action="store_true", help=f"CI size: {quick}")
    return p


@dataclass(frozen=True)
class Outputs:
    """Where a bench writes.

    Attributes:
        name: ``<stem>``, or ``<stem>_quick`` for ``--quick`` (the outputs' file name).
        out: The output folder (``--out``, absolute).
        work: ``out/name``, the bench's working folder.
    """

    name: str
    out: Path
    work: Path


def outputs(stem: str, args: argparse.Namespace) -> Outputs:
    """The :class:`Outputs` of bench ``stem`` run with ``args`` (from :func:`bench_parser`)."""
    name = f"{stem}_quick" if args.quick else stem
    out = Path(args.out).resolve()
    return Outputs(name, out, out / name)


def write_outputs(out_dir: Path, name: str, text: str, data: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.md`` (``text``) and ``<name>.json`` (``data``); print where."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{name}.md", out_dir / f"{name}.json"
    md.write_text(text.rstrip() + "\n")
    js.write_text(json.dumps(data, indent=1, default=str))
    print(f"wrote {md} and {js}")
    return md, js


def launcher_env() -> dict[str, str]:
    """This process's environment for a launcher subprocess: this tree first on ``PYTHONPATH``,
    unbuffered output, and no ``HWSEARCH_STORAGE`` (each run uses the database in its own folder)."""
    env = {k: v for k, v in os.environ.items() if k != "HWSEARCH_STORAGE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True)
class Launch:
    """A finished launcher process.

    Attributes:
        argv: Its arguments after ``python -m search.launch``.
        returncode: Exit code (``-9`` when it was killed at ``limit_s``).
        wall_s: Wall-clock seconds of the whole command.
        peak_rss_mb: Its peak resident memory (``wait4``), in MB.
        log: File holding its stdout and stderr.
    """

    argv: tuple[str, ...]
    returncode: int
    wall_s: float
    peak_rss_mb: float
    log: Path

    def tail(self, chars: int = 3000) -> str:
        """The end of its output."""
        return self.log.read_text(errors="replace")[-chars:]


def run_launcher(argv: Sequence[str], log: Path, *, limit_s: float | None = None) -> Launch:
    """Run ``python -m search.launch argv`` to its end (killed after ``limit_s``), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "search.launch", *argv], stdout=handle,
                                stderr=subprocess.STDOUT, env=launcher_env(), cwd=ROOT)
        timer = threading.Timer(limit_s, proc.kill) if limit_s else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Launch(tuple(argv), proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024.0, log)


def embedded_data(out: Path, *, size: int | None = None, counts: Mapping[str, int] | None = None) -> Path:
    """The embedded esfair data set (generation seed 0; ``size``/``counts`` default to its own 224 px,
    1200/400/400), generated once under ``<out>/data`` and shared by the benches writing to ``out``."""
    from evaluators.data.synthetic import ensure_embedded

    return ensure_embedded(out / "data", "esfair", seed=0, size=size, counts=counts)


def pipeline_context(dataset: Any, work: Path, *, latency_threads: int = 1) -> Any:
    """The trial context the launcher builds for ``--seed 0`` (local latency backend with the launcher's
    settings and a latency cache in ``work``, no KD teacher), its budgets lifted so that any candidate
    is trained; torch's threads set as the launcher sets them for ``--jobs 1`` (all CPUs)."""
    import torch

    from evaluators.contracts import LatencySettings
    from evaluators.db import make_engine
    from evaluators.latency import make_latency_backend
    from search.context import build_context
    from spaces.registry import get_space

    torch.set_num_threads(os.cpu_count() or 1)
    task = get_space("esfair").task.with_settings(latency_budget_ms=1e9, size_budget_mb=1e9)
    return build_context(dataset=dataset, task=task, backend=make_latency_backend("local"),
                         settings=LatencySettings(threads=latency_threads, batch=1),
                         engine=make_engine(f"sqlite:///{work / 'latency.db'}"), study_dir=work, device="cpu",
                         seed=0)


def open_study(run_dir: Path, name: str) -> Any:
    """The study ``name`` in ``<run_dir>/hwsearch.db`` (the launcher's default storage for ``--out run_dir``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=name, storage=f"sqlite:///{run_dir / 'hwsearch.db'}")


def study_spec(study: Any) -> FrontSpec:
    """The study's front spec, from the task record it stores."""
    return FrontSpec.from_record(study.user_attrs[attrs.STUDY_TASK])


def record_point(number: int, record: Mapping[str, Any], spec: FrontSpec, feasible: bool = True) -> Point:
    """A front point of a metrics record (``Metrics.to_dict()`` or a test record); a missing figure is NaN."""
    values = tuple(_number(metric_value(record, path)) for path in spec.metrics)
    return Point(number, values, feasible, half_widths(record, spec))


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def study_points(study: Any, split: str = "val", spec: FrontSpec | None = None) -> list[Point]:
    """Points of the study: every trial on ``val``; on ``test``, the validation front's members with
    their stored test figures (members without test figures are left out)."""
    spec = spec or study_spec(study)
    points = points_from_trials(study.get_trials(deepcopy=False), spec)
    if split == "val":
        return points
    if split != "test":
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    records = ((p.number, study.user_attrs.get(attrs.test_metrics_key(p.number))) for p in front(points, spec))
    return [record_point(number, record, spec) for number, record in records if record]


def study_hypervolume(study: Any, split: str = "val") -> float:
    """Hypervolume fraction of the study's points on ``split`` (:func:`study_points`), by ``search.front``."""
    spec = study_spec(study)
    return hypervolume(study_points(study, split, spec), spec)


def rung_counts(trials: Sequence[Any]) -> dict[int, int]:
    """Rung jobs finished, by rung (records a continuation copied from another trial count once)."""
    counts: dict[int, int] = {}
    for t in trials:
        for rung, record in attrs.rung_records(t.user_attrs).items():
            if record.get("copied_from") is None:
                counts[rung] = counts.get(rung, 0) + 1
    return counts


def outcome_counts(trials: Sequence[Any]) -> dict[str, int]:
    """Trials by outcome: ``top`` (finished the top rung), ``stopped`` (PRUNED at a lower rung),
    ``screened`` (COMPLETE, never trained), ``failed``, ``other``."""
    out = {"top": 0, "stopped": 0, "screened": 0, "failed": 0, "other": 0}
    for t in trials:
        state = t.state.name
        if state == "COMPLETE":
            out["top" if t.user_attrs.get(attrs.TRAINED) else "screened"] += 1
        elif state == "PRUNED":
            out["stopped"] += 1
        elif state == "FAIL":
            out["failed"] += 1
        else:
            out["other"] += 1
    return out
