"""How soon a search on real-size data shows results: a grouped folder of ~5,000 200-px JPEGs.

    python bench/first_results.py [--images 5000] [--budget 1500] [--quick] [--out runs/bench]

Makes (once, cached under ``<out>/photos-<images>``) a grouped image folder like a user's: 5 groups
with a 4 % minority, 2 classes, ~``images`` JPEG photos of 200 x 200 px rendered by the embedded
lesion generator (the minority on the darkest skin tone, where lesions have the least contrast).
Then runs the real launcher on it with ``--timeout BUDGET`` and watches its log: when the plan is
printed, when the first rung result arrives, when the first trained trial finishes (is told to
Optuna: complete, or stopped at a rung; a candidate screened out untrained, over the latency budget
or too costly for the budget, is counted apart), whether a KD teacher was trained and what it
cost. It stops the launcher (SIGTERM, the documented clean stop) once the first trained trial has
finished, and checks that the stop left no trial RUNNING.

Target (issue 9): the first trial finishes within 10 % of the budget, the teacher included.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GROUP_SHARES = {"g1-light": 0.40, "g2-light": 0.25, "g3-medium": 0.18, "g4-medium": 0.13, "g5-dark": 0.04}
SKIN = {"g1-light": "light", "g2-light": "light", "g3-medium": "medium", "g4-medium": "medium", "g5-dark": "dark"}
CLASSES = ("nevus", "melanoma")


def make_photos(root: Path, images: int, size: int = 200, seed: int = 0) -> Path:
    """The grouped JPEG folder ``root/<group>/<class>/<index>.jpg`` (made once; a marker says it is complete)."""
    from PIL import Image

    from evaluators.data.lesions import render_lesion

    marker = root / ".complete.json"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for group_index, (group, share) in enumerate(GROUP_SHARES.items()):
        for index in range(round(images * share)):
            cls = CLASSES[index % len(CLASSES)]
            folder = root / group / cls
            folder.mkdir(parents=True, exist_ok=True)
            pixels = render_lesion(np.random.default_rng([seed, group_index, index]), cls, SKIN[group],
                                   size).image
            Image.fromarray(pixels).save(folder / f"{index:05d}.jpg", quality=int(rng.integers(85, 96)))
    marker.write_text(json.dumps({"images": images, "size": size, "seed": seed}))
    return root


def watch(data: Path, budget: float, out: Path) -> dict[str, object]:
    """Run the launcher on ``data`` in a fresh folder (a new study, cold pixel cache, as a new user's
    first run) and time its first results; stop it after the first finished trial."""
    run = out / "first-results-run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HWSEARCH_STORAGE", None)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "search.launch", "--data", str(data), "--timeout", str(budget),
                             "--out", str(run), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    seen: dict[str, object] = {}
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        now = round(time.monotonic() - start, 1)
        lines.append(f"[{now:7.1f} s] {line.rstrip()}")
        print(lines[-1], flush=True)
        if line.startswith("plan:"):
            seen.setdefault("plan_s", now)
            seen["plan"] = line.strip()
        if line.startswith("KD teacher"):
            seen["teacher"] = line.strip()
        if re.match(r"trial \d+ rung \d+ ", line):
            seen.setdefault("first_rung_result_s", now)
        if re.match(r"trial \d+ screened out", line):
            seen.setdefault("first_screened_out_s", now)
            seen["screened_out"] = int(seen.get("screened_out", 0)) + 1
            seen["too_costly"] = int(seen.get("too_costly", 0)) + ("too costly" in line)
        if re.match(r"trial \d+ (complete|stopped|FAILED)", line) and "first_trial_finished_s" not in seen:
            seen["first_trial_finished_s"] = now
            proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)
    seen["exit_code"] = proc.returncode
    seen["log"] = lines
    import optuna

    study = optuna.load_study(study_name="esfair", storage=f"sqlite:///{run / 'hwsearch.db'}")
    seen["running_after_stop"] = sum(t.state.name == "RUNNING" for t in study.trials)
    teacher = list((run / "esfair" / "teacher").glob("teacher-*.json"))
    seen["teacher_s"] = json.loads(teacher[0].read_text())["seconds"] if teacher else 0.0
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--budget", type=float, default=1500.0)
    parser.add_argument("--quick", action="store_true", help="CI size: 300 images, a 300 s budget")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args(argv)
    images, budget = (300, 300.0) if args.quick else (args.images, args.budget)
    out = args.out.resolve()
    began = time.monotonic()
    data = make_photos(out / f"photos-{images}", images)
    print(f"data: {data} ({sum(1 for _ in data.rglob('*.jpg'))} JPEGs, made in {time.monotonic() - began:.0f} s)")
    seen = watch(data, budget, out)
    first = seen.get("first_trial_finished_s")
    share = None if first is None else float(first) / budget
    summary = {
        "images": images, "budget_s": budget, "plan": seen.get("plan"), "teacher": seen.get("teacher", "not trained"),
        "teacher_s": seen["teacher_s"], "first_rung_result_s": seen.get("first_rung_result_s"),
        "first_trial_finished_s": first, "share_of_budget": share, "exit_code": seen["exit_code"],
        "screened_out": seen.get("screened_out", 0), "too_costly": seen.get("too_costly", 0),
        "first_screened_out_s": seen.get("first_screened_out_s"),
        "running_after_stop": seen["running_after_stop"],
    }
    (out / "first_results.json").write_text(json.dumps({**summary, "log": seen["log"]}, indent=1))
    verdict = "meets" if share is not None and share <= 0.10 else "MISSES"
    lines = [f"first results on {images} real-size JPEGs, {budget:.0f} s budget (python bench/first_results.py)",
             f"- {summary['plan']}", f"- KD teacher: {summary['teacher']} ({summary['teacher_s']:.0f} s)",
             f"- first rung result after {summary['first_rung_result_s']} s of the launcher's run",
             f"- first finished trained trial after {first} s = {100 * (share or 0):.1f} % of the budget "
             f"({verdict} the 10 % target)",
             f"- screened out before it: {summary['screened_out']} candidate(s), {summary['too_costly']} of them too "
             f"costly for the budget (first after {summary['first_screened_out_s']} s)",
             f"- SIGTERM then: exit code {seen['exit_code']}, {seen['running_after_stop']} trial(s) left RUNNING"]
    (out / "first_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if seen["running_after_stop"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
