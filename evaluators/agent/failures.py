"""What a failed benchmark tells the coordinator: a short class, never the runtime's own text.

onnxruntime's error messages quote the model's content and the device's files (a shape read from
an external file, a path, tensor values). Anyone holding a token could craft a model whose error
text carries bytes of the device back to them, so only a fixed sentence chosen by the exception's
type leaves the agent; the full text stays in the agent's local log.
"""

from __future__ import annotations

import re

MAX_LOCAL_CHARS = 500
"""How much of the runtime's own message the agent's local log keeps."""

_RUNTIME_CLASSES = {
    "InvalidProtobuf": "the runtime could not parse the model (InvalidProtobuf): export it again",
    "InvalidGraph": "the runtime rejected the graph (InvalidGraph): check the model with onnx.checker",
    "NotImplemented": "the model uses an operator or type this runtime does not implement (NotImplemented): "
                      "check the opset and the device's onnxruntime version",
    "InvalidArgument": "the runtime refused the model's input or arguments (InvalidArgument): check the "
                       "job's input shape and batch against the model's input",
    "NoSuchFile": "the runtime could not open a file the model names (NoSuchFile)",
    "NoModel": "the runtime found no model (NoModel)",
    "Fail": "the runtime failed to load or run the model (Fail)",
    "RuntimeException": "the runtime failed while running the model (RuntimeException)",
    "EngineError": "the runtime's engine failed (EngineError)",
    "EPFail": "the execution provider failed (EPFail)",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def error_class(exc: BaseException) -> str:
    """One fixed sentence for ``exc`` that quotes nothing from its message.

    onnxruntime's exception types get a sentence with a fix; any other exception is named by its
    type only (``MemoryError``), which the agent's own code, not the model, defines.
    """
    name = type(exc).__name__
    if name in _RUNTIME_CLASSES:
        return _RUNTIME_CLASSES[name]
    if isinstance(exc, MemoryError):
        return "the device ran out of memory running the model (MemoryError)"
    return f"the benchmark failed ({name if _NAME.match(name) else 'unknown error'})"


def local_text(exc: BaseException) -> str:
    """The exception's own text, shortened, for the agent's local log only."""
    return f"{type(exc).__name__}: {exc}"[:MAX_LOCAL_CHARS]
