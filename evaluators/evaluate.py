"""Evaluate THE ARTIFACT: run the ONNX file with onnxruntime on a data split.

This is the only place accuracy and fairness figures come from, so what is reported is what ships
(after quantization), never the float torch model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def predict_onnx(artifact: Path, inputs: np.ndarray, *, batch_size: int = 64, threads: int = 1) -> np.ndarray:
    """Predicted class indices of ``inputs`` (N,3,R,R float32, preprocessed) by ``artifact``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    preds = [
        np.asarray(session.run(None, {name: inputs[i:i + batch_size]})[0]).argmax(axis=1)
        for i in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def evaluate_artifact(
    artifact: Path, dataset: Any, split: str, resolution: int, *, minority_group: str | None,
    threads: int = 1,
) -> Any:
    """Accuracy/fairness figures of ``artifact`` on ``dataset.splits[split]`` at ``resolution``.

    Returns:
        The ``evaluators.metrics`` figures object for that split.
    """
    from evaluators.metrics import classification_figures

    data = dataset.splits[split]
    preds = predict_onnx(artifact, data.arrays(resolution), threads=threads)
    return classification_figures(
        data.labels, preds, data.groups, class_names=dataset.class_names,
        group_names=dataset.group_names, minority_group=minority_group,
    )
