"""Graph fingerprint: a hash of an ONNX model's structure, blind to its weight values.

The fingerprint covers what decides the cost of running a graph: the operators in their order,
how they are wired, their attributes, the opsets, the graph input/output types and shapes, and
the dtypes and shapes of all constant tensors. Weight values, quantization scales/zero points,
and all tensor and node names are left out, so
an untrained candidate and the same candidate after training (pruned to the same shapes,
quantized with the same scheme, calibrated on other images) share a fingerprint, and its latency
is measured once. A different width, resolution, prune ratio or quantization scheme changes
shapes, dtypes or operators, hence the fingerprint.

Canonical form:
    * Computed tensors are named by position: graph inputs ``i<k>``, node outputs ``t<k>`` in
      the order the nodes are stored (exporters and onnxruntime's quantizer emit nodes in a
      deterministic, structure-derived order).
    * Constants are inlined at every use as an expression tree: an initializer or tensor
      attribute is ``(dtype, shape)``; a node that reads only constants (``Constant``, the
      ``DequantizeLinear`` of a quantized weight, a ``Cast`` of an fp16 weight) is
      ``(op, attributes, argument trees)`` and does not appear in the node list. So sharing one
      initializer between several nodes (which exporters and optimizers do when values happen
      to be equal) hashes like separate copies.
    * ``Identity`` nodes are aliases: they and their outputs leave no trace (the TorchScript
      exporter emits them when it merges equal-valued parameters).
    * Only int64 constants contribute their values, because they are structural (reshape
      targets, axes, pads) and no learned or calibrated tensor is int64. Float constants are never
      hashed, even architectural ones such as Clip bounds, because they cannot be told apart from
      learned scalars; quantized weights, int32 biases, scales and zero points are not either.
    * Initializers that no node reads are ignored (they do not change the computation).
    * Symbolic dimensions hash as ``?`` whatever their name.

This module needs only ``onnx`` (no torch, no onnxruntime): the fleet and the cache can use it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FINGERPRINT_VERSION = 1
"""Bumped whenever the canonical form changes, so old cache entries stop matching."""

_INT64_VALUES_LIMIT = 4096
"""int64 constants larger than this contribute only dtype and shape."""


def graph_fingerprint(onnx_path: Path) -> str:
    """Hex sha256 of the canonical structure of the ONNX model at ``onnx_path``.

    Raises:
        FileNotFoundError: The file does not exist.
    """
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return fingerprint_model(model)


def fingerprint_model(model: Any) -> str:
    """Hex sha256 of the canonical structure of an in-memory ``onnx.ModelProto``."""
    opsets = sorted((entry.domain or "ai.onnx", int(entry.version)) for entry in model.opset_import)
    canonical = {
        "version": FINGERPRINT_VERSION,
        "opsets": opsets,
        "graph": _Canonicalizer().graph(model.graph, top_level=True),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_NOT_CONSTANT_FOLDABLE = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
"""Operators whose output is not a function of their inputs, never treated as constants."""


class _Canonicalizer:
    """Describes graphs without names or float values; constants are inlined per use."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}
        self._constants: dict[str, Any] = {}
        self._count = 0

    def _new_id(self, name: str, prefix: str = "t") -> str:
        token = f"{prefix}{self._count}"
        self._count += 1
        self._ids[name] = token
        return token

    def _reference(self, name: str) -> Any:
        if not name:
            return ""
        if name in self._constants:
            return self._constants[name]
        return self._ids.get(name, "undefined")

    def graph(self, graph: Any, *, top_level: bool = False) -> dict[str, Any]:
        for tensor in graph.initializer:
            self._constants[tensor.name] = ["const", *_tensor(tensor)]
        for sparse in graph.sparse_initializer:
            self._constants[sparse.values.name] = ["sparse", *_tensor(sparse.values)]
        inputs = [
            [self._new_id(value.name, "i" if top_level else "s"), _value_type(value)]
            for value in graph.input
            if value.name not in self._constants
        ]
        nodes = []
        for node in graph.node:
            domain = node.domain or "ai.onnx"
            attributes = sorted((a.name, self._attribute(a)) for a in node.attribute)
            arguments = [self._reference(name) for name in node.input]
            if node.op_type == "Identity" and domain == "ai.onnx" and node.output[0]:
                self._alias(node.output[0], node.input[0])
                continue
            if self._is_constant(node):
                for index, name in enumerate(node.output):
                    if name:
                        self._constants[name] = ["expr", domain, node.op_type, attributes, arguments, index]
                continue
            outputs = [self._new_id(name) if name else "" for name in node.output]
            nodes.append([domain, node.op_type, arguments, outputs, attributes])
        outputs = [[self._reference(value.name), _value_type(value)] for value in graph.output]
        return {"inputs": inputs, "nodes": nodes, "outputs": outputs}

    def _alias(self, name: str, source: str) -> None:
        """Make ``name`` hash exactly like ``source`` (an Identity node is no computation)."""
        if source in self._constants:
            self._constants[name] = self._constants[source]
        else:
            self._ids[name] = self._ids.get(source, "undefined")

    def _is_constant(self, node: Any) -> bool:
        """A node computing only from constants (an initializer expression, e.g. DQ of a weight)."""
        from onnx import AttributeProto

        if node.op_type in _NOT_CONSTANT_FOLDABLE or any(
            a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute
        ):
            return False
        return all(name in self._constants for name in node.input if name)

    def _attribute(self, attribute: Any) -> Any:
        from onnx import AttributeProto

        kind = attribute.type
        if kind == AttributeProto.FLOAT:
            return ["f", repr(attribute.f)]
        if kind == AttributeProto.INT:
            return ["i", attribute.i]
        if kind == AttributeProto.STRING:
            return ["s", attribute.s.decode("utf-8", "replace")]
        if kind == AttributeProto.TENSOR:
            return ["t", _tensor(attribute.t)]
        if kind == AttributeProto.GRAPH:
            return ["g", self.graph(attribute.g)]
        if kind == AttributeProto.FLOATS:
            return ["fs", [repr(v) for v in attribute.floats]]
        if kind == AttributeProto.INTS:
            return ["is", list(attribute.ints)]
        if kind == AttributeProto.STRINGS:
            return ["ss", [v.decode("utf-8", "replace") for v in attribute.strings]]
        if kind == AttributeProto.TENSORS:
            return ["ts", [_tensor(t) for t in attribute.tensors]]
        if kind == AttributeProto.GRAPHS:
            return ["gs", [self.graph(g) for g in attribute.graphs]]
        return ["other", int(kind)]


def _tensor(tensor: Any) -> list[Any]:
    """dtype and shape of a constant; values too for small int64 tensors (structural)."""
    from onnx import TensorProto, numpy_helper

    described: list[Any] = [int(tensor.data_type), list(tensor.dims)]
    size = 1
    for dim in tensor.dims:
        size *= dim
    if tensor.data_type == TensorProto.INT64 and size <= _INT64_VALUES_LIMIT:
        described.append(numpy_helper.to_array(tensor).reshape(-1).tolist())
    return described


def _value_type(value: Any) -> list[Any]:
    """Element type and shape of a graph input/output; symbolic dimensions become ``?``."""
    tensor_type = value.type.tensor_type
    if not value.type.HasField("tensor_type"):
        return [value.type.WhichOneof("value")]
    dims: list[Any] = []
    if tensor_type.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else "?" for d in tensor_type.shape.dim]
    else:
        dims = ["unranked"]
    return [int(tensor_type.elem_type), dims]
