"""The reference graph: a fixed small ONNX network timed beside every artifact to see the host's speed.

A shared or throttling machine changes speed over minutes (measured on the 2-core VM: the same
idle process timed the same files 7-9 % apart 15 minutes later, and right after a training burst
one graph ran 77 % slower than before it). A figure taken in one such minute does not hold in the
next. Timing this graph in a round of its own just before each round of the artifact measures the
host's speed at that moment; :mod:`evaluators.latency.normalise` divides it out. The graph is
built from ``onnx.helper`` with seeded weights (no torch, no download), so its bytes, and
:data:`REFERENCE_SHAPE`, are the same on every machine with the same ``onnx`` version;
:func:`reference_id` names those bytes, and figures normalised with different references are
never mixed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

REFERENCE_PREFIX = "ref-"
"""Every reference id starts with this (graph fingerprints and shipped keys are hex digests)."""

REFERENCE_SHAPE = (1, 3, 96, 96)
"""Input shape of the reference graph (NCHW, float32)."""

_LAYERS = ((3, 24, 3, 2, 1), (24, 24, 3, 1, 24), (24, 48, 1, 1, 1), (48, 48, 3, 1, 48), (48, 96, 1, 1, 1),
           (96, 96, 3, 2, 96), (96, 128, 1, 1, 1))
"""(in channels, out channels, kernel, stride, groups) of the convolutions: a MobileNet-like stem,
depthwise and pointwise layers, about 0.3 ms at one thread on a 2-core x86 VM (a smaller one, 0.03 ms, timed
mostly call overhead)."""


@lru_cache(maxsize=1)
def reference_bytes() -> bytes:
    """The serialized reference graph (deterministic: the same bytes on every call; built once per process).

    Raises:
        ImportError: When the ``onnx`` package is missing (the agent-only install).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, previous = [], [], "input"
    for i, (cin, cout, kernel, stride, groups) in enumerate(_LAYERS):
        weight = (rng.standard_normal((cout, cin // groups, kernel, kernel)) * 0.2).astype(np.float32)
        bias = (rng.standard_normal(cout) * 0.05).astype(np.float32)
        inits += [numpy_helper.from_array(weight, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        nodes.append(helper.make_node("Conv", [previous, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[kernel] * 2,
                                      strides=[stride] * 2, pads=[kernel // 2] * 4, group=groups))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        previous = f"r{i}"
    head = (rng.standard_normal((4, _LAYERS[-1][1])) * 0.2).astype(np.float32)
    inits += [numpy_helper.from_array(head, "head"), numpy_helper.from_array(np.zeros(4, np.float32), "head_bias")]
    nodes += [helper.make_node("GlobalAveragePool", [previous], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["flat"]),
              helper.make_node("Gemm", ["flat", "head", "head_bias"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "hwsearch_latency_reference",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(REFERENCE_SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [REFERENCE_SHAPE[0], 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                              producer_name="hwsearch-latency-reference")
    return model.SerializeToString(deterministic=True)


@lru_cache(maxsize=1)
def reference_id() -> str:
    """``ref-`` and the first 16 hex digits of the reference graph's sha256."""
    return REFERENCE_PREFIX + hashlib.sha256(reference_bytes()).hexdigest()[:16]


def reference_graph(folder: Path | None = None) -> Path:
    """The reference graph as a file (written once per folder, atomically; default: the temp folder).

    Invariant: the file's bytes are :func:`reference_bytes`; its name carries :func:`reference_id`.
    """
    folder = folder or Path(tempfile.gettempdir()) / "hwsearch"
    path = folder / f"latency-{reference_id()}.onnx"
    data = reference_bytes()
    if path.is_file() and path.read_bytes() == data:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, suffix=".onnx.tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
    return path
