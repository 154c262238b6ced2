"""Refuse any artifact that is not a self-contained ONNX model, before onnxruntime sees it.

An ONNX tensor may keep its bytes in an "external data" file named by a path inside the model.
A runtime that follows such a path reads a file of the device (``../../etc/passwd``, a credential
beside the model) into a tensor whose values can then leak through an error message or an output.
The agent only ever measures self-contained models, so any tensor with external data is refused
here, wherever it hides: graph initializers, sparse initializers, ``Constant``-style node
attributes, subgraphs of control-flow nodes, model-local functions and training graphs.

The scan reads the protocol-buffer wire format directly (standard library only: the agent has no
``onnx`` package). It never accepts a model on its own: onnxruntime still validates whatever
passes. Invariant: :func:`refusal` returns None only for bytes that parse as a ``ModelProto``
with a graph and whose every reachable ``TensorProto`` keeps its data inline.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Iterator

from evaluators.fleet.protocol import not_onnx_reason

MAX_DEPTH = 32
"""Deepest nesting of subgraphs scanned; deeper models are refused (no recursion bombs). Protocol
buffers parsers stop at 100 nested messages, i.e. 33 subgraph levels, so no real model is deeper."""

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_EXTERNAL = 1
"""``TensorProto.DataLocation.EXTERNAL``."""

# Field numbers of onnx.proto that can lead to a TensorProto.
_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 20, 25
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_SPARSE_INIT = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_FUNCTION_NODE, _FUNCTION_ATTRIBUTE_PROTO = 7, 11
_TRAINING_INIT, _TRAINING_ALGORITHM = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14


class Refused(Exception):
    """The artifact must not be loaded; the message is short and names no file content."""


def _varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise Refused("not an ONNX model: the file is not a valid protocol buffer")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(field number, wire type, value or start, end)`` of each field in ``data[start:end]``.

    For length-delimited fields the value is the payload's start offset and ``end`` its end;
    for the others the value is the decoded number (fixed-width ones are skipped, value 0).
    """
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Refused("not an ONNX model: the file is not a valid protocol buffer")
        if wire == _VARINT:
            value, pos = _varint(data, pos, end)
            yield number, wire, value, pos
        elif wire == _LEN:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise Refused("not an ONNX model: the file is truncated or not a protocol buffer")
            yield number, wire, pos, pos + length
            pos += length
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
            if pos > end:
                raise Refused("not an ONNX model: the file is truncated or not a protocol buffer")
            yield number, wire, 0, pos
        else:
            raise Refused("not an ONNX model: the file is not a valid protocol buffer")


def _children(data: memoryview, start: int, end: int, numbers: frozenset[int]) -> Iterator[tuple[int, int, int]]:
    """Length-delimited fields of ``numbers`` in one message: ``(number, start, end)``."""
    for number, wire, value, stop in _fields(data, start, end):
        if number in numbers and wire == _LEN:
            yield number, value, stop


def _tensor(data: memoryview, start: int, end: int) -> None:
    name = ""
    external = False
    for number, wire, value, stop in _fields(data, start, end):
        if number == _TENSOR_EXTERNAL and wire == _LEN:
            external = True
        elif number == _TENSOR_LOCATION and wire == _VARINT and value == _EXTERNAL:
            external = True
        elif number == _TENSOR_NAME and wire == _LEN:
            name = bytes(data[value:stop][:64]).decode("utf-8", "replace")
    if external:
        label = f" {name!r}" if name.isprintable() and name else ""
        raise Refused(
            f"refused: tensor{label} keeps its data in an external file; only self-contained ONNX "
            "models are measured (save the model with its weights inside, e.g. onnx.save(model, path) "
            "without save_as_external_data)"
        )


def _sparse(data: memoryview, start: int, end: int) -> None:
    for _, child_start, child_end in _children(data, start, end, frozenset({_SPARSE_VALUES, _SPARSE_INDICES})):
        _tensor(data, child_start, child_end)


def _attribute(data: memoryview, start: int, end: int, depth: int) -> None:
    wanted = frozenset({_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES})
    for number, child_start, child_end in _children(data, start, end, wanted):
        if number in (_ATTR_T, _ATTR_TENSORS):
            _tensor(data, child_start, child_end)
        elif number in (_ATTR_SPARSE, _ATTR_SPARSES):
            _sparse(data, child_start, child_end)
        else:
            _graph(data, child_start, child_end, depth + 1)


def _node(data: memoryview, start: int, end: int, depth: int) -> None:
    for _, child_start, child_end in _children(data, start, end, frozenset({_NODE_ATTRIBUTE})):
        _attribute(data, child_start, child_end, depth)


def _graph(data: memoryview, start: int, end: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Refused(f"refused: subgraphs are nested deeper than {MAX_DEPTH} levels")
    wanted = frozenset({_GRAPH_NODE, _GRAPH_INIT, _GRAPH_SPARSE_INIT})
    for number, child_start, child_end in _children(data, start, end, wanted):
        if number == _GRAPH_INIT:
            _tensor(data, child_start, child_end)
        elif number == _GRAPH_SPARSE_INIT:
            _sparse(data, child_start, child_end)
        else:
            _node(data, child_start, child_end, depth)


def _function(data: memoryview, start: int, end: int) -> None:
    for number, child_start, child_end in _children(
        data, start, end, frozenset({_FUNCTION_NODE, _FUNCTION_ATTRIBUTE_PROTO})
    ):
        if number == _FUNCTION_NODE:
            _node(data, child_start, child_end, 1)
        else:
            _attribute(data, child_start, child_end, 1)


def _training(data: memoryview, start: int, end: int) -> None:
    for _, child_start, child_end in _children(data, start, end, frozenset({_TRAINING_INIT, _TRAINING_ALGORITHM})):
        _graph(data, child_start, child_end, 1)


def check_model_bytes(data: memoryview) -> None:
    """Raise :class:`Refused` unless ``data`` is a ``ModelProto`` with a graph and no external data."""
    reason = not_onnx_reason(bytes(data[:8]))
    if reason:
        raise Refused(f"not an ONNX model: {reason}")
    has_graph = False
    wanted = frozenset({_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS})
    for number, start, end in _children(data, 0, len(data), wanted):
        if number == _MODEL_GRAPH:
            has_graph = True
            _graph(data, start, end, 0)
        elif number == _MODEL_TRAINING:
            _training(data, start, end)
        else:
            _function(data, start, end)
    if not has_graph:
        raise Refused("not an ONNX model: the file has no graph")


def refusal(path: Path) -> str | None:
    """Why the file at ``path`` must not be loaded, in one short line, or None when it may be.

    The file is memory-mapped, not read into memory, so large models cost no extra RAM.
    """
    with path.open("rb") as handle:
        if handle.seek(0, 2) == 0:
            return "not an ONNX model: the file is empty"
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                check_model_bytes(view)
            except Refused as exc:
                return str(exc)
            finally:
                view.release()
    return None
