"""One preprocessing: the loader, the model card's snippet and the exported run_onnx.py turn the same
640 x 480 JPEG into identical tensors, and the figures are measured at the deployment batch."""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from evaluators.data import load_dataset
from search.export import CARD_SNIPPET, SNIPPET

RESOLUTION = 96
PREPROCESS = Path(importlib.import_module("evaluators.data.preprocess").__file__ or "")
"""THE preprocessing module (``evaluators.data`` exports a function of the same name)."""


def _photo(path: Path, seed: int) -> Path:
    """A 640 x 480 JPEG with real structure (gradients and noise), not a flat colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640]
    pixels = np.stack([(x * 255 // 640), (y * 255 // 480), ((x + y) % 255)], axis=-1).astype(np.int16)
    pixels += rng.integers(-40, 40, pixels.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def _model(path: Path, classes: int) -> Path:
    """A tiny ONNX classifier with the export contract's names (input ``input``, output ``logits``)."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [classes, 3], np.linspace(-1, 1, classes * 3).tolist())
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1)],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, RESOLUTION, RESOLUTION])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """An export folder as ``search.export`` writes it (card, preprocess.py, run_onnx.py, model)."""
    out = tmp_path / "export"
    out.mkdir()
    _model(out / "model.onnx", 2)
    (out / "model_card.json").write_text(json.dumps({"candidate": {"resolution": RESOLUTION},
                                                     "class_names": ["a", "b"]}))
    shutil.copyfile(PREPROCESS, out / "preprocess.py")
    (out / "run_onnx.py").write_text(SNIPPET)
    return out


def _run_onnx_module(out: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("run_onnx_under_test", out / "run_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_a_jpeg_gives_identical_tensors_in_loader_card_snippet_and_run_onnx(
    export_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "photos"
    for cls in ("a", "b"):
        for i in range(4):
            _photo(data / cls / f"{cls}{i}.jpg", seed=i + (10 if cls == "b" else 0))
    photo = data / "a" / "a0.jpg"
    assert Image.open(photo).size == (640, 480)
    dataset = load_dataset(data, cache_root=tmp_path / "cache")
    split = next(s for s in dataset.splits.values() if photo in s.paths)
    from_loader = split.arrays(RESOLUTION)[split.paths.index(photo)]

    from_run_onnx = _run_onnx_module(export_dir).load(str(photo))

    monkeypatch.chdir(export_dir)
    monkeypatch.syspath_prepend(str(export_dir))
    namespace: dict[str, object] = {}
    exec(CARD_SNIPPET.replace('"image.jpg"', repr(str(photo))), namespace)  # noqa: S102 - the card's own example
    from_card = np.asarray(namespace["x"])[0]

    assert from_loader.shape == (3, RESOLUTION, RESOLUTION) and from_loader.dtype == np.float32
    np.testing.assert_array_equal(from_run_onnx, from_loader)
    np.testing.assert_array_equal(from_card, from_loader)
    assert (export_dir / "preprocess.py").read_bytes() == PREPROCESS.read_bytes()


def test_int8_dynamic_figures_are_the_batch_1_ones(tiny_data: Path, tmp_path: Path) -> None:
    """Dynamic int8 computes activation scales per batch: the stored figure is the deployment batch's."""
    from evaluators.contracts import LatencySettings
    from evaluators.evaluate import predict_onnx
    from evaluators.latency import make_latency_backend
    from evaluators.pipeline import TrialContext, run_trial
    from spaces import Candidate, get_space

    dataset = load_dataset(tiny_data, cache_root=tmp_path / "cache")
    ctx = TrialContext(dataset=dataset, task=get_space("esfair").task.with_settings(latency_budget_ms=1e6),
                       latency_backend=make_latency_backend("fake"), latency_settings=LatencySettings(),
                       latency_cache=None)
    candidate = Candidate(backbone="mobilenetv3_small", width=0.5, resolution=32, quant="int8_dynamic", epochs=1)
    metrics = run_trial(candidate, ctx, tmp_path / "trial").metrics
    assert metrics is not None and metrics.eval_batch == 1
    val = dataset.splits["val"]
    one = predict_onnx(Path(metrics.artifact_path), val.arrays(32), batch_size=1)
    many = predict_onnx(Path(metrics.artifact_path), val.arrays(32), batch_size=64)
    assert metrics.accuracy == float(np.mean(one == val.labels)), "the stored figure is the deployment batch's"
    assert len(many) == len(one)
