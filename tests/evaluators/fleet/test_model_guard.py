"""The agent's refusal of non-self-contained models, on crafted ONNX files; emulator detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from evaluators.agent import model_guard
from evaluators.agent.device import emulator
from evaluators.agent.failures import error_class


def _external(name: str = "w") -> TensorProto:
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    return tensor


def _model(graph: onnx.GraphProto, **fields: object) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **fields)
    model.ir_version = 8
    return model


def _identity_graph(initializers: list[TensorProto] | None = None, nodes: list[onnx.NodeProto] | None = None,
                    sparse: list[onnx.SparseTensorProto] | None = None) -> onnx.GraphProto:
    return helper.make_graph(
        nodes or [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], initializers or [], sparse_initializer=sparse,
    )


def _write(tmp_path: Path, model: onnx.ModelProto | bytes) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    return path


def test_a_self_contained_model_passes(tmp_path: Path) -> None:
    weight = numpy_helper.from_array(np.ones(4, dtype=np.float32), "w")
    graph = _identity_graph([weight], [helper.make_node("Add", ["x", "w"], ["y"])])
    assert model_guard.refusal(_write(tmp_path, _model(graph))) is None


def _if_with_constant(tensor: TensorProto) -> onnx.GraphProto:
    branch = helper.make_graph([helper.make_node("Constant", [], ["k"], value=tensor)], "branch", [],
                               [helper.make_tensor_value_info("k", TensorProto.FLOAT, [4])])
    inner_if = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    return helper.make_graph([inner_if], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])


def _hiding_places() -> dict[str, onnx.ModelProto]:
    sparse = helper.make_sparse_tensor(_external("values"), numpy_helper.from_array(np.array([0], np.int64), "i"), [4])
    function = helper.make_function(
        "local", "f", ["x"], ["y"], [helper.make_node("Constant", [], ["y"], value=_external())],
        [helper.make_opsetid("", 17)],
    )
    trained = _model(_identity_graph())
    trained.training_info.add().initialization.CopyFrom(_identity_graph([_external()]))
    location_only = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    return {
        "initializer": _model(_identity_graph([_external()])),
        "location flag without entries": _model(_identity_graph([location_only])),
        "sparse initializer": _model(_identity_graph(sparse=[sparse])),
        "constant in a subgraph": _model(_if_with_constant(_external())),
        "model-local function": _model(_identity_graph(), functions=[function]),
        "training graph": trained,
    }


@pytest.mark.parametrize("place", sorted(_hiding_places()))
def test_external_data_is_found_wherever_it_hides(tmp_path: Path, place: str) -> None:
    reason = model_guard.refusal(_write(tmp_path, _hiding_places()[place]))
    assert reason is not None and "keeps its data in an external file" in reason, (place, reason)
    assert "passwd" not in reason


def _varint(value: int) -> bytes:
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protocol-buffer field (graph.node = 1, node.attribute = 5, attribute.g = 6)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_non_onnx_payloads_and_bombs_are_refused(tmp_path: Path) -> None:
    cases = {
        b"": "empty", b"\x80\x04\x95" + bytes(20): "pickle", b"PK\x03\x04rest": "zip",
        b"\x08\x07" + b"\xff" * 50: "protocol buffer", b"\x08\x08": "no graph", b"\x3a\x10\x0a": "truncated",
    }
    for data, word in cases.items():
        reason = model_guard.refusal(_write(tmp_path, data))
        assert reason is not None and word in reason, (data[:8], reason)
    graph = b""
    for _ in range(model_guard.MAX_DEPTH + 1):
        graph = _field(1, _field(5, _field(6, graph)))
    reason = model_guard.refusal(_write(tmp_path, b"\x08\x08" + _field(7, graph)))
    assert reason is not None and "nested deeper" in reason


def test_runtime_errors_become_fixed_sentences() -> None:
    import onnxruntime as ort

    try:
        ort.InferenceSession(b"\x08\x07" + b"secret bytes \xff" * 10)
    except Exception as exc:  # noqa: BLE001 - whatever the runtime raises is what the agent sees
        sentence = error_class(exc)
    assert "InvalidProtobuf" in sentence and "secret" not in sentence
    assert error_class(MemoryError()) == "the device ran out of memory running the model (MemoryError)"
    assert error_class(ValueError("/etc/shadow contents")) == "the benchmark failed (ValueError)"


def test_emulation_is_recognised_from_procfs(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.mkdir()
    (x86 / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n")
    assert emulator("aarch64", x86) == "qemu-user on Intel(R) Xeon(R) (x86_64 host)"
    assert emulator("x86_64", x86) is None
    pi = tmp_path / "pi"
    (pi / "sys" / "fs" / "binfmt_misc").mkdir(parents=True)
    (pi / "cpuinfo").write_text("processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nModel\t: Raspberry Pi 4\n")
    assert emulator("aarch64", pi) is None
    (pi / "sys" / "fs" / "binfmt_misc" / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\n")
    assert emulator("aarch64", pi) is not None and "qemu-user" in str(emulator("aarch64", pi))
