"""The real CLI on a tiny budget, then the exported ONNX file re-evaluated independently."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

from search import attrs
from tests.search.clirun import TINY_ARGS, cli

pytestmark = pytest.mark.slow

STAGES = {"screen", "train", "export_quantize", "evaluate", "latency"}


def independent_figures(model: Path, split_root: Path, class_names: list[str], resolution: int,
                        minority: str) -> dict[str, object]:
    """Accuracy, per-group accuracy and ESFair SPD of ``model`` on ``split_root/<group>/<class>/*.png``,
    one image per run, with nothing but Pillow, numpy and onnxruntime (the published preprocessing:
    RGB, bilinear resize to R x R straight from the file, /255, ImageNet mean and std)."""
    import onnxruntime as ort

    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    hits: dict[str, list[bool]] = {}
    for path in sorted(split_root.glob("*/*/*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB").resize((resolution, resolution), Image.BILINEAR))
        x = np.ascontiguousarray(np.moveaxis((pixels.astype(np.float32) / np.float32(255.0) - mean) / std, -1, 0))
        pred = int(session.run(None, {"input": x[None]})[0].argmax())
        hits.setdefault(path.parent.parent.name, []).append(class_names[pred] == path.parent.name)
    per_group = {group: sum(h) / len(h) for group, h in hits.items()}
    spd = sum(abs(acc - per_group[minority]) for acc in per_group.values()) / len(per_group)
    total = [h for group in hits.values() for h in group]
    return {"accuracy": sum(total) / len(total), "per_group_accuracy": per_group, "spd": spd}


def test_search_export_and_independent_reevaluation(tiny_data: Path, tmp_path: Path) -> None:
    result = cli("search.launch", "--space", "esfair", "--data", str(tiny_data), "--trials", "3",
                 "--latency", "local", "--out", "runs", "--seed", "1", *TINY_ARGS, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Pareto front" in result.stdout and "test accuracy" in result.stdout

    study = optuna.load_study(study_name="esfair", storage=f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    trained = [t for t in complete if t.user_attrs[attrs.TRAINED]]
    assert trained, "the 1000 ms budget screens nothing out"
    for t in trained:
        artifact = Path(t.user_attrs[attrs.ARTIFACT_PATH])
        assert artifact == (tmp_path / "runs" / "esfair" / f"trial_{t.number}" / "model.onnx").resolve()
        assert hashlib.sha256(artifact.read_bytes()).hexdigest() == t.user_attrs[attrs.ARTIFACT_SHA256]
        metrics = t.user_attrs[attrs.METRICS]
        assert STAGES <= set(metrics["stage_seconds"])
        assert not metrics["latency"]["fake"] and "FAKE" not in metrics["latency"]["device"]
        assert metrics["latency"]["rounds"] >= 2 and metrics["latency"]["ci_low_ms"] <= metrics["latency"]["median_ms"]
        assert set(metrics["per_group_accuracy"]) == {"dark", "light", "medium"}
        assert t.values[0] == pytest.approx(metrics["accuracy"])

    pareto = sorted(int(k.rsplit(".", 1)[1]) for k in study.user_attrs if k.startswith(attrs.STUDY_TEST_METRICS_PREFIX))
    assert pareto, "the Pareto set was not evaluated on the test split"
    number = pareto[0]
    exported = cli("search.export", "--storage", "sqlite:///runs/hwsearch.db", "--study", "esfair",
                   "--trial", str(number), "--out", "export", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    out = tmp_path / "export"
    assert {p.name for p in out.iterdir()} == {"model.onnx", "model_card.json", "model_card.md", "run_onnx.py",
                                               "preprocess.py"}
    card = json.loads((out / "model_card.json").read_text())
    assert card["trial"] == number and card["latency"]["device"] in (out / "model_card.md").read_text()

    for number in pareto:
        trial = study.trials[number]
        stored = study.user_attrs[attrs.test_metrics_key(number)]
        figures = independent_figures(Path(trial.user_attrs[attrs.ARTIFACT_PATH]), tiny_data / "test",
                                      trial.user_attrs[attrs.METRICS]["class_names"],
                                      int(trial.user_attrs[attrs.CANDIDATE]["resolution"]),
                                      stored["fairness"]["minority_group"])
        assert figures["accuracy"] == stored["accuracy"]
        assert figures["per_group_accuracy"] == stored["per_group_accuracy"]
        assert figures["spd"] == pytest.approx(stored["fairness"]["spd"], abs=1e-12)
        assert stored["eval_batch"] == 1


def test_pick_best_score_and_bad_trial_number(tiny_data: Path, tmp_path: Path) -> None:
    result = cli("search.launch", "--data", str(tiny_data), "--trials", "2", "--latency", "fake",
                 "--out", "runs", "--override", "loss_kd=0", *TINY_ARGS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "FAKE" in result.stdout
    logged = [line for line in result.stdout.splitlines() if re.match(r"trial \d+ ", line)]
    assert len(logged) == 2 and all(" complete in " in line and "latency_ms" in line for line in logged), logged
    best = cli("search.export", "--storage", "sqlite:///runs/hwsearch.db", "--study", "esfair",
               "--pick", "best-score", "--out", "best", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    assert "Warning" not in best.stderr, best.stderr
    card_md = (tmp_path / "best" / "model_card.md").read_text()
    assert "FAKE latency" in card_md
    assert_snippet_predicts_like_the_model(tmp_path / "best", sorted((tiny_data / "test").rglob("*.png"))[:3])
    missing = cli("search.export", "--storage", "sqlite:///runs/hwsearch.db", "--study", "esfair",
                  "--trial", "99", "--out", "x", cwd=tmp_path)
    assert missing.returncode != 0 and "no trial 99" in missing.stderr and "Traceback" not in missing.stderr


def assert_snippet_predicts_like_the_model(export_dir: Path, images: list[Path]) -> None:
    """The exported ``run_onnx.py`` prints each image's class as the model predicts it, and a call
    without images prints its usage instead of a traceback."""
    import onnxruntime as ort

    assert images, "the tiny data set has no test images"
    card = json.loads((export_dir / "model_card.json").read_text())
    resolution = card["candidate"]["resolution"]
    mean = np.array(card["preprocessing"]["mean"], dtype=np.float32)[:, None, None]
    std = np.array(card["preprocessing"]["std"], dtype=np.float32)[:, None, None]
    session = ort.InferenceSession(str(export_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = []
    for image in images:
        x = np.asarray(Image.open(image).convert("RGB").resize((resolution, resolution), Image.BILINEAR),
                       dtype=np.float32).transpose(2, 0, 1) / 255.0
        logits = session.run(None, {"input": ((x - mean) / std)[None].astype(np.float32)})[0]
        expected.append(f"{image} {card['class_names'][int(logits[0].argmax())]}")

    snippet = export_dir / "run_onnx.py"
    ran = subprocess.run([sys.executable, str(snippet), *map(str, images)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == expected
    usage = subprocess.run([sys.executable, str(snippet), "--help"], capture_output=True, text=True, timeout=120)
    assert usage.returncode != 0 and "usage: python run_onnx.py IMAGE" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_a_first_rung_over_its_share_of_the_budget_stops_after_a_few_steps(tiny_data: Path, tmp_path: Path) -> None:
    result = cli("search.launch", "--space", "esfair", "--data", str(tiny_data), "--trials", "2", "--rungs", "1,2",
                 "--override", "resolution=32", "--override", "batch_size=4", "--override", "finetune_epochs=0",
                 "--latency-budget", "1000", "--min-accuracy", "0", "--no-progress", "--out", "runs",
                 "--max-first-rung-share", "0.000001", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "too costly for this budget: its first rung would train" in result.stdout
    study = optuna.load_study(study_name="esfair", storage=f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for t in study.trials:
        probe = t.user_attrs[attrs.TOO_COSTLY]
        assert probe["projected_s"] > probe["limit_s"] and probe["limit_s"] == pytest.approx(720 * 1e-6)
        assert not t.user_attrs[attrs.TRAINED] and not t.user_attrs[attrs.FEASIBLE]
        assert all(v >= 1.0 for v in t.user_attrs[attrs.CONSTRAINT]), "infeasible to the sampler without floors too"
        assert attrs.rung_key(0) not in t.user_attrs
        assert not (tmp_path / "runs" / "esfair" / f"trial_{t.number}" / "rung_0.pt").exists()
