"""ONNX export of a model's deployable form, and artifact hashing.

The legacy TorchScript exporter (``dynamo=False``, opset 17) is used: the dynamo exporter ignores
opset 17, writes a separate ``.onnx.data`` file and is 10-25x slower (STACK-NOTES.md). The graph
contract every later stage relies on:

* one input ``input``: float32 NCHW ``[batch, 3, resolution, resolution]``, batch dynamic;
* one output ``logits``: float32 ``[batch, num_classes]``;
* weights embedded in the single ``.onnx`` file (no external data);
* BatchNorm folded into the convolutions and MobileOne reparameterized (eval-mode export of
  :func:`evaluators.models.prepare_for_export`), so the file is what ships;
* a structure that depends only on the architecture, never on weight values: the exporter's
  deduplication of equal-valued initializers is switched off (see ``_drop_initializer_inputs``).
"""

from __future__ import annotations

import os
import threading
import uuid
import warnings
from pathlib import Path

import torch
from torch import nn

from evaluators.models import prepare_for_export

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

_EXPORT_LOCK = threading.Lock()
"""The TorchScript exporter keeps global state and ``warnings.catch_warnings`` is process-wide:
exports run one at a time, which is safe from several threads."""


def export_onnx(model: nn.Module, path: Path, resolution: int) -> Path:
    """Export the deployable form of ``model`` to ``path`` and check it.

    ``model`` is not modified. The file appears atomically (written beside ``path``, then
    renamed), so a reader never sees half a model. Exporter deprecation and tracer warnings are
    suppressed.

    Returns:
        ``path``.

    Raises:
        onnx.checker.ValidationError: The exported graph is invalid (a bug, not a user error).
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deployable = prepare_for_export(model)
    example = torch.zeros(1, 3, resolution, resolution, dtype=torch.float32)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with _EXPORT_LOCK, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                deployable,
                (example,),
                str(partial),
                dynamo=False,
                export_params=True,
                opset_version=OPSET,
                do_constant_folding=True,
                keep_initializers_as_inputs=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        _drop_initializer_inputs(partial)
        onnx.checker.check_model(str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _drop_initializer_inputs(path: Path) -> None:
    """Remove initializers from the graph inputs, leaving ``input`` as the only input.

    The export keeps initializers as graph inputs only to switch off the exporter's
    initializer-deduplication pass, which merges tensors with *equal values* (e.g. the all-zero
    biases of a freshly initialised model) and so makes the graph structure depend on the weights.
    """
    import onnx

    model = onnx.load(str(path))
    initializers = {tensor.name for tensor in model.graph.initializer}
    kept = [value for value in model.graph.input if value.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    onnx.save(model, str(path))
