"""``python -m search.export``: a chosen trial's artifact as a deployable ONNX file + model card.

Writes ``OUT/model.onnx`` (verified against the sha256 recorded at search time),
``OUT/model_card.json``, ``OUT/model_card.md``, ``OUT/preprocess.py`` (THE preprocessing, a
byte-identical copy of the module the search's loader uses) and ``OUT/run_onnx.py`` (onnxruntime,
numpy and Pillow only; it runs one image at a time, the batch the figures were measured at).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

from evaluators.errors import HwsearchError
from search import attrs

PREPROCESSING = {
    "code": "preprocess.py (a copy of hwsearch's evaluators/data/preprocess.py, the loader's own)",
    "color": "RGB (PIL Image.open(path).convert('RGB'))",
    "resize": "PIL Image.resize((R, R), Image.BILINEAR) straight from the decoded image",
    "scale": "divide by 255",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "layout": "NCHW float32, input name 'input', output 'logits', one image per run",
}

CARD_SNIPPET = '''import json
import numpy as np
import onnxruntime as ort
from PIL import Image
from preprocess import preprocess

card = json.load(open("model_card.json"))
with Image.open("image.jpg") as image:
    x = preprocess(image.convert("RGB"), card["candidate"]["resolution"])[None]
logits = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
print(card["class_names"][int(logits[0].argmax())])
'''
"""The model card's usage example (the test suite runs it)."""

SNIPPET = '''"""Run the exported hwsearch model with onnxruntime: python run_onnx.py IMAGE [IMAGE ...]

Each image is preprocessed by preprocess.py (the search's own preprocessing) and run on its own,
at batch 1, as the model's figures were measured.
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from preprocess import preprocess  # noqa: E402

CARD = json.loads((HERE / "model_card.json").read_text())
R = CARD["candidate"]["resolution"]


def load(path):
    """The model input of one image file: float32 (3, R, R)."""
    with Image.open(path) as image:
        return preprocess(image.convert("RGB"), R)


def main(paths):
    if not paths or any(p.startswith("-") for p in paths):
        sys.exit("usage: python run_onnx.py IMAGE [IMAGE ...]  (prints each image's predicted class)")
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        sys.exit(f"no such image file: {', '.join(missing)}")
    session = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    for path in paths:
        logits = session.run(None, {"input": load(path)[None]})[0]
        print(path, CARD["class_names"][int(np.asarray(logits)[0].argmax())])


if __name__ == "__main__":
    main(sys.argv[1:])
'''


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.export", description=__doc__.splitlines()[0])
    p.add_argument("--storage", help="Optuna storage URL; also env HWSEARCH_STORAGE (default sqlite:///runs/hwsearch.db)")
    p.add_argument("--study", required=True, help="study name")
    pick = p.add_mutually_exclusive_group(required=True)
    pick.add_argument("--trial", type=int, help="trial number to export")
    pick.add_argument("--pick", metavar="best-score|best-OBJECTIVE",
                      help="choose among the front members that are not dominated within noise: the best space "
                      "score (best-score) or the best value of one objective (e.g. best-accuracy, best-latency_ms)")
    p.add_argument("--out", type=Path, default=Path("export"), help="output folder (default: export)")
    return p


def study_task(study: Any) -> Any:
    """The study's space task with the budgets and floors the study recorded."""
    from spaces.registry import get_space

    space = get_space(study.user_attrs[attrs.STUDY_SPACE])
    record = study.user_attrs.get(attrs.STUDY_TASK) or {}
    return space.task.with_settings(latency_budget_ms=record.get("latency_budget_ms"),
                                    floors=record.get("floors") or {}, minority_group=record.get("minority_group"))


def pick_trial(study: Any, how: str) -> Any:
    """The front member chosen by ``how`` (``best-score`` or ``best-<objective>``), ignoring members
    dominated within noise (they are on the front only by differences smaller than their intervals).

    Raises:
        HwsearchError: No front yet, or an unknown choice.
    """
    from search.report import front_rows

    task = study_task(study)
    rows = [r for r in front_rows(study, study.get_trials(deepcopy=False), task) if r.dominated_by is None]
    if not rows:
        raise HwsearchError(f"study {study.study_name!r} has no feasible candidate at the top rung",
                            "run the search longer (--timeout) or relax --latency-budget / --min-accuracy")
    if how == "best-score":
        score = task.primary_score
        if score is None:
            raise HwsearchError(f"space {study.user_attrs[attrs.STUDY_SPACE]!r} names no score",
                                f"pick one of: {', '.join('best-' + n for n in task.objective_names)}")
        return max(rows, key=lambda r: r.trial.user_attrs[attrs.METRICS]["scores"][score]).trial
    name = how.removeprefix("best-")
    if not how.startswith("best-") or name not in task.objective_names:
        choices = ", ".join(["best-score"] + [f"best-{n}" for n in task.objective_names])
        raise HwsearchError(f"--pick {how!r} is not a known choice", f"pick one of: {choices}")
    index = task.objective_names.index(name)
    sign = 1.0 if task.objectives[index].maximize else -1.0
    return max(rows, key=lambda r: sign * r.trial.values[index]).trial


def model_card(study: Any, trial: Any) -> dict[str, Any]:
    """The JSON model card of ``trial``."""
    metrics = trial.user_attrs[attrs.METRICS]
    return {
        "study": study.study_name, "trial": trial.number, "space": study.user_attrs.get(attrs.STUDY_SPACE),
        "baseline": trial.user_attrs.get(attrs.BASELINE),
        "start_point": trial.user_attrs.get(attrs.START_POINT),
        "candidate": trial.user_attrs[attrs.CANDIDATE], "candidate_text": trial.user_attrs.get(attrs.CANDIDATE_TEXT),
        "class_names": metrics["class_names"], "validation": {
            "accuracy": metrics["accuracy"], "per_group_accuracy": metrics["per_group_accuracy"],
            "group_counts": metrics["group_counts"], "fairness": metrics["fairness"],
            "scores": metrics.get("scores") or {}, "confusion_matrix": metrics["confusion_matrix"],
            "intervals": metrics.get("intervals") or {}, "eval_batch": metrics.get("eval_batch", 1),
        },
        "test": study.user_attrs.get(attrs.test_metrics_key(trial.number)),
        "latency": metrics["latency"], "size_bytes": metrics["size_bytes"], "params": metrics["params"],
        "macs": metrics["macs"], "epochs": metrics.get("epochs"), "sha256": metrics["artifact_sha256"],
        "fingerprint": metrics["fingerprint"], "data": study.user_attrs.get(attrs.STUDY_DATA),
        "task": study.user_attrs.get(attrs.STUDY_TASK), "preprocessing": PREPROCESSING,
    }


def _with_interval(value: float | None, pair: Sequence[float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f} [{pair[0]:.4f}, {pair[1]:.4f}]" if pair else f"{value:.4f}"


def _split_rows(name: str, figures: dict[str, Any]) -> list[str]:
    intervals = figures.get("intervals") or {}
    fairness = figures.get("fairness") or {}
    scores = ", ".join(f"{k} {v:.4f}" for k, v in (figures.get("scores") or {}).items()) or "-"
    return [f"| {name} | {_with_interval(figures.get('accuracy'), intervals.get('accuracy'))} | "
            f"{_with_interval(fairness.get('spd'), intervals.get('fairness.spd'))} | "
            f"{_with_interval(fairness.get('worst_group_accuracy'), intervals.get('fairness.worst_group_accuracy'))} | "
            f"{scores} |"]


def card_markdown(card: dict[str, Any]) -> str:
    """Human-readable model card."""
    lat = card["latency"]
    fake = "  **FAKE latency: computed by the fake backend, not measured.**" if lat.get("fake") else ""
    if lat.get("source") == "emulated":
        fake += "  **EMULATED: timed under an instruction-set emulator; says nothing about the device's speed.**"
    val = card["validation"]
    ci = (f", 95 % CI of the median [{lat['ci_low_ms']:.3f}, {lat['ci_high_ms']:.3f}] ms over {lat.get('rounds', 1)} "
          "rounds" if lat.get("ci_low_ms") is not None else "")
    lines = [
        f"# Model card: {card['study']} trial {card['trial']}", "",
        f"Candidate: `{card['candidate_text']}`" + (f" (baseline recipe {card['baseline']})" if card["baseline"] else ""),
        "", "## Figures (measured on the ONNX artifact itself, with onnxruntime, one image at a time)", "",
        "Brackets: bootstrap 95 % intervals (resampled within each group).", "",
        "| split | accuracy | SPD | worst group | scores |", "|---|---|---|---|---|",
        *_split_rows("val", val),
    ]
    if card["test"]:
        lines += _split_rows("test", card["test"])
    if val["per_group_accuracy"]:
        lines += ["", "## Per-group accuracy (validation)", "", "| group | samples | accuracy |", "|---|---|---|"]
        minority = (val["fairness"] or {}).get("minority_group")
        for group, acc in val["per_group_accuracy"].items():
            mark = " (minority)" if group == minority else ""
            pair = val["intervals"].get(f"per_group_accuracy.{group}")
            lines.append(f"| {group}{mark} | {val['group_counts'].get(group, '')} | {_with_interval(acc, pair)} |")
    lines += [
        "", "## Latency", "",
        f"Median {lat['median_ms']:.3f} ms{ci}; p90 {lat['p90_ms']:.3f} ms, std {lat['std_ms']:.3f} ms over "
        f"{lat['n']} runs, {lat['threads']} thread(s), on **{lat['device']}** (tag `{lat['device_tag']}`, "
        f"{lat['backend']} backend, {lat.get('runtime', '')}).{fake}", "",
        "## Model", "",
        f"Size {card['size_bytes'] / 1e6:.3f} MB, {card['params']:,} parameters, {card['macs']:,} MACs, "
        f"trained {card.get('epochs') or '?'} epochs; sha256 `{card['sha256']}`.", "",
        "## Preprocessing", "", *(f"- {k}: {v}" for k, v in card["preprocessing"].items()), "",
        "## Use", "", "`python run_onnx.py IMAGE...` (needs onnxruntime, numpy, Pillow), or in Python:", "",
        "```python", CARD_SNIPPET.rstrip(), "```", "",
    ]
    return "\n".join(lines)


def export_trial(study: Any, trial: Any, out: Path) -> Path:
    """Write the artifact, model cards, preprocessing and snippet of ``trial`` into ``out``.

    Raises:
        HwsearchError: When the trial has no artifact, the file is gone, or its sha256 changed.
    """
    import importlib

    from evaluators.hashing import sha256_file

    preprocess_module = importlib.import_module("evaluators.data.preprocess")

    if not trial.user_attrs.get(attrs.TRAINED) or attrs.METRICS not in trial.user_attrs:
        raise HwsearchError(f"trial {trial.number} has no trained artifact (state {trial.state.name}, "
                            f"{trial.user_attrs.get(attrs.INFEASIBLE_REASON) or trial.user_attrs.get(attrs.FAIL_REASON) or 'not trained'})",
                            "pick a trained trial (see the Pareto table) or use --pick best-score")
    source = Path(trial.user_attrs[attrs.ARTIFACT_PATH])
    if not source.is_file():
        raise HwsearchError(f"artifact {source} of trial {trial.number} is missing",
                            "run the export on the machine (or volume) that holds the search's runs folder")
    if sha256_file(source) != trial.user_attrs[attrs.ARTIFACT_SHA256]:
        raise HwsearchError(f"artifact {source} does not match the sha256 recorded for trial {trial.number}",
                            "the file was changed or replaced after the search; re-run that trial")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "model.onnx")
    card = model_card(study, trial)
    (out / "model_card.json").write_text(json.dumps(card, indent=2))
    (out / "model_card.md").write_text(card_markdown(card))
    shutil.copyfile(Path(preprocess_module.__file__), out / "preprocess.py")
    (out / "run_onnx.py").write_text(SNIPPET)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    import optuna

    from search.storage import open_storage, resolve_storage_url

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        storage = open_storage(resolve_storage_url(args.storage, Path("runs")))
        try:
            study = optuna.load_study(study_name=args.study, storage=storage)
        except KeyError:
            names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "(none)"
            raise HwsearchError(f"no study {args.study!r} in the storage", f"pick one of: {names}") from None
        if args.pick:
            trial = pick_trial(study, args.pick)
        else:
            numbers = {t.number: t for t in study.get_trials(deepcopy=False)}
            if args.trial not in numbers:
                raise HwsearchError(f"study {args.study!r} has no trial {args.trial}",
                                    f"pick a number between 0 and {max(numbers, default=-1)}")
            trial = numbers[args.trial]
        out = export_trial(study, trial, args.out)
    except HwsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported trial {trial.number} ({trial.user_attrs.get(attrs.CANDIDATE_TEXT)}) to {out}/: "
          "model.onnx, model_card.md, model_card.json, preprocess.py, run_onnx.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
