"""Evaluate THE ARTIFACT: run the ONNX file with onnxruntime on a data split, as deployed.

This is the only place accuracy and fairness figures come from, so what is reported is what ships
(after quantization), never the float torch model. The artifact runs at the deployment batch size
(1 by default, as ``run_onnx.py`` and a device run it): a dynamically quantized graph computes its
activation scales per batch, so its predictions depend on the batch, and a figure measured at
another batch size would not hold on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEPLOYMENT_BATCH = 1


def onnx_session(artifact: Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session for ``artifact`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])


def predict_logits(artifact: Path, inputs: np.ndarray, *, batch_size: int = DEPLOYMENT_BATCH,
                   threads: int = 1) -> np.ndarray:
    """Logits of ``inputs`` (N,3,R,R float32, preprocessed) by ``artifact``, run ``batch_size`` at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    session = onnx_session(artifact, threads)
    name = session.get_inputs()[0].name
    outputs = [np.asarray(session.run(None, {name: inputs[i:i + batch_size]})[0])
               for i in range(0, len(inputs), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)


def predict_onnx(artifact: Path, inputs: np.ndarray, *, batch_size: int = DEPLOYMENT_BATCH,
                 threads: int = 1) -> np.ndarray:
    """Predicted class indices of ``inputs`` by ``artifact`` (see :func:`predict_logits`)."""
    logits = predict_logits(artifact, inputs, batch_size=batch_size, threads=threads)
    return logits.argmax(axis=1) if len(logits) else np.zeros(0, dtype=np.int64)


@dataclass
class Evaluation:
    """What running an artifact on a split gave.

    Attributes:
        figures: Accuracy, per-group and fairness figures (``evaluators.metrics``).
        predictions: Predicted class of each image, in split order.
        labels: True class of each image.
        groups: Group index of each image.
        batch: Batch size the artifact ran at.
    """

    figures: Any
    predictions: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    batch: int


def evaluate_artifact(
    artifact: Path, dataset: Any, split: str, resolution: int, *, minority_group: str | None,
    threads: int = 1, batch: int = DEPLOYMENT_BATCH,
) -> Evaluation:
    """Figures of ``artifact`` on ``dataset.splits[split]`` at ``resolution``, run ``batch`` images at a time."""
    from evaluators.metrics import classification_figures

    data = dataset.splits[split]
    preds = predict_onnx(artifact, data.arrays(resolution), batch_size=batch, threads=threads)
    figures = classification_figures(
        data.labels, preds, data.groups, class_names=dataset.class_names,
        group_names=dataset.group_names, minority_group=minority_group, grouped=dataset.grouped,
    )
    return Evaluation(figures, preds, data.labels, data.groups, batch)
