"""``python -m search.export``: a chosen trial's artifact as a deployable ONNX file + model card.

Writes ``OUT/model.onnx`` (verified against the sha256 recorded at search time),
``OUT/model_card.json``, ``OUT/model_card.md`` and ``OUT/run_onnx.py`` (onnxruntime + Pillow only).
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
    "color": "RGB",
    "resize": "PIL Image.resize((R, R), Image.BILINEAR) directly from the decoded image",
    "scale": "divide by 255",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "layout": "NCHW float32, input name 'input', output 'logits'",
}

SNIPPET = '''"""Run the exported hwsearch model with onnxruntime: python run_onnx.py IMAGE [IMAGE ...]"""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = Path(__file__).parent
CARD = json.loads((HERE / "model_card.json").read_text())
R = CARD["candidate"]["resolution"]
MEAN = np.array(CARD["preprocessing"]["mean"], dtype=np.float32)[:, None, None]
STD = np.array(CARD["preprocessing"]["std"], dtype=np.float32)[:, None, None]


def preprocess(path):
    image = Image.open(path).convert("RGB").resize((R, R), Image.BILINEAR)
    x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return ((x - MEAN) / STD).astype(np.float32)


paths = sys.argv[1:]
if not paths or any(p.startswith("-") for p in paths):
    sys.exit("usage: python run_onnx.py IMAGE [IMAGE ...]  (prints each image's predicted class)")
missing = [p for p in paths if not Path(p).is_file()]
if missing:
    sys.exit(f"no such image file: {', '.join(missing)}")
session = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
batch = np.stack([preprocess(p) for p in paths])
logits = session.run(None, {"input": batch})[0]
for path, row in zip(paths, logits):
    print(path, CARD["class_names"][int(row.argmax())])
'''


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.export", description=__doc__.splitlines()[0])
    p.add_argument("--storage", help="Optuna storage URL; also env HWSEARCH_STORAGE (default sqlite:///runs/hwsearch.db)")
    p.add_argument("--study", required=True, help="study name")
    pick = p.add_mutually_exclusive_group(required=True)
    pick.add_argument("--trial", type=int, help="trial number to export")
    pick.add_argument("--pick", choices=["best-score"], help="choose the feasible trial with the best space score")
    p.add_argument("--out", type=Path, default=Path("export"), help="output folder (default: export)")
    return p


def pick_best_score(study: Any) -> Any:
    """The feasible trained trial with the highest space score (ESFair score for esfair)."""
    from search.pareto import feasible_trained
    from spaces.registry import get_space

    candidates = feasible_trained(study.get_trials(deepcopy=False))
    if not candidates:
        raise HwsearchError(f"study {study.study_name!r} has no feasible trained trial",
                            "run the search longer or relax --latency-budget")
    space = get_space(study.user_attrs[attrs.STUDY_SPACE])
    budget = (study.user_attrs.get(attrs.STUDY_TASK) or {}).get("latency_budget_ms")
    import dataclasses

    task = dataclasses.replace(space.task, latency_budget_ms=budget)
    return max(candidates, key=lambda t: task.score(t.user_attrs[attrs.METRICS], task))


def model_card(study: Any, trial: Any) -> dict[str, Any]:
    """The JSON model card of ``trial``."""
    metrics = trial.user_attrs[attrs.METRICS]
    return {
        "study": study.study_name, "trial": trial.number, "space": study.user_attrs.get(attrs.STUDY_SPACE),
        "baseline": trial.user_attrs.get(attrs.BASELINE),
        "candidate": trial.user_attrs[attrs.CANDIDATE], "candidate_text": trial.user_attrs.get(attrs.CANDIDATE_TEXT),
        "class_names": metrics["class_names"], "validation": {
            "accuracy": metrics["accuracy"], "per_group_accuracy": metrics["per_group_accuracy"],
            "group_counts": metrics["group_counts"], "fairness": metrics["fairness"],
            "esfair_score": metrics["esfair_score"], "confusion_matrix": metrics["confusion_matrix"],
        },
        "test": study.user_attrs.get(attrs.test_metrics_key(trial.number)),
        "latency": metrics["latency"], "size_bytes": metrics["size_bytes"], "params": metrics["params"],
        "macs": metrics["macs"], "sha256": metrics["artifact_sha256"], "fingerprint": metrics["fingerprint"],
        "data": study.user_attrs.get(attrs.STUDY_DATA), "task": study.user_attrs.get(attrs.STUDY_TASK),
        "preprocessing": PREPROCESSING,
    }


def card_markdown(card: dict[str, Any]) -> str:
    """Human-readable model card."""
    lat = card["latency"]
    fake = "  **FAKE latency: computed by the fake backend, not measured.**" if lat.get("fake") else ""
    val = card["validation"]
    lines = [
        f"# Model card: {card['study']} trial {card['trial']}", "",
        f"Candidate: `{card['candidate_text']}`" + (f" (baseline recipe {card['baseline']})" if card["baseline"] else ""),
        "", "## Figures (measured on the ONNX artifact itself, with onnxruntime)", "",
        "| split | accuracy | SPD | fairness part | worst group | ESFair score |", "|---|---|---|---|---|---|",
        f"| val | {val['accuracy']:.4f} | {val['fairness']['spd']:.4f} | {val['fairness']['fairness_part']:.4f} | "
        f"{val['fairness']['worst_group_accuracy']:.4f} | {val['esfair_score']:.4f} |",
    ]
    if card["test"]:
        t = card["test"]
        lines.append(f"| test | {t['accuracy']:.4f} | {t['fairness']['spd']:.4f} | {t['fairness']['fairness_part']:.4f} | "
                     f"{t['fairness']['worst_group_accuracy']:.4f} | {t['esfair_score']:.4f} |")
    lines += ["", "## Per-group accuracy (validation)", "", "| group | samples | accuracy |", "|---|---|---|"]
    minority = val["fairness"]["minority_group"]
    for group, acc in val["per_group_accuracy"].items():
        mark = " (minority)" if group == minority else ""
        lines.append(f"| {group}{mark} | {val['group_counts'].get(group, '')} | {acc:.4f} |")
    lines += [
        "", "## Latency", "",
        f"Median {lat['median_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms, std {lat['std_ms']:.3f} ms over {lat['n']} runs, "
        f"{lat['threads']} thread(s), on **{lat['device']}** (tag `{lat['device_tag']}`, {lat['backend']} backend, "
        f"{lat.get('runtime', '')}).{fake}", "",
        "## Model", "",
        f"Size {card['size_bytes'] / 1e6:.3f} MB, {card['params']:,} parameters, {card['macs']:,} MACs; "
        f"sha256 `{card['sha256']}`.", "",
        "## Preprocessing", "", *(f"- {k}: {v}" for k, v in card["preprocessing"].items()), "",
        "Run it: `python run_onnx.py IMAGE...` (needs onnxruntime, numpy, Pillow).", "",
    ]
    return "\n".join(lines)


def export_trial(study: Any, trial: Any, out: Path) -> Path:
    """Write the artifact, model cards and snippet of ``trial`` into ``out``.

    Raises:
        HwsearchError: When the trial has no artifact, the file is gone, or its sha256 changed.
    """
    from evaluators.hashing import sha256_file

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
            trial = pick_best_score(study)
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
          "model.onnx, model_card.md, model_card.json, run_onnx.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
