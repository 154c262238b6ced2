"""Quantization schemes applied to an exported ONNX model (the ``Candidate.quant`` choices).

Registered schemes (the names of ``spaces.candidate.QUANT_SCHEMES``):

* ``fp32``: the exported graph, copied unchanged.
* ``fp16``: onnxconverter-common's float16 conversion with ``keep_io_types=True``, so the
  graph still takes and returns float32 (Cast nodes at both ends).
* ``int8_dynamic``: ``quantize_dynamic`` with QUInt8 weights (QInt8 is ~3x slower on x86).
  Activations are quantized at run time.
* ``int8_static``: ``quantize_static`` in QDQ format, per-channel weights, QUInt8 activations /
  QInt8 weights (U8S8: ~3x faster than S8S8 on x86), MinMax ranges from the calibration batches.
  Removable activations (Relu/Clip right after a quantized producer) are folded into the Q/DQ
  pair by onnxruntime; that decision depends only on the graph, never on weights or data.

Both int8 schemes run ``quant_pre_process`` first with ``skip_optimization=True``: its
optimization pass merges equal-valued initializers (the all-zero biases of an untrained model),
which would make the quantized structure depend on the weights. Afterwards, nodes and
initializers that nothing reads (the Clip bounds left behind by folded activations) are removed.

Invariants: every scheme writes a single self-contained ``.onnx`` file with the same input and
output names and float32 I/O as the source; its graph structure depends on the source's
structure and the scheme, not on weight values or calibration data (see
:mod:`evaluators.fingerprint`). Intermediate files live in a private temporary directory and the
destination appears atomically, so concurrent calls on different files are safe.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from spaces.registries import Registry

SchemeFn = Callable[[Path, Path, "Iterable[np.ndarray] | None", Path], None]
"""``(src, dst, calibration, workdir)``: write the quantized ``src`` to ``dst``."""

SCHEMES: Registry[SchemeFn] = Registry("quantization scheme")
_WARNINGS_LOCK = threading.Lock()


def register_scheme(name: str) -> Callable[[SchemeFn], SchemeFn]:
    """Decorator registering a quantization scheme under ``name``.

    Raises:
        ValueError: If ``name`` is already registered.
    """
    return SCHEMES.register(name)


def list_schemes() -> list[str]:
    """Registered scheme names, sorted."""
    return SCHEMES.names()


def quantize(
    src: Path, dst: Path, scheme: str, calibration: Iterable[np.ndarray] | None = None
) -> Path:
    """Write ``src`` quantized with ``scheme`` to ``dst``.

    Args:
        src: An ONNX model from :func:`evaluators.export.export_onnx` (not modified; may equal
            ``dst``).
        dst: Output path; its folder is created.
        scheme: A name from :func:`list_schemes`.
        calibration: For ``int8_static`` only (ignored otherwise): batches of preprocessed images,
            float32 NCHW with the model's input size, as the model sees them in deployment.

    Returns:
        ``dst``.

    Raises:
        UnknownNameError: Unknown scheme (the message lists the known ones; also a ValueError).
        ValueError: ``src`` has NaN or
            infinite weights (diverged training; int8 quantizers would fail with a bare
            assertion), or ``int8_static`` has no, empty or mis-shaped calibration batches.
        FileNotFoundError: ``src`` does not exist.
    """
    fn = SCHEMES.get(scheme)
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"ONNX model {src} does not exist")
    _require_finite_weights(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hwsearch-quant-") as tmp:
        workdir = Path(tmp)
        out = workdir / "quantized.onnx"
        fn(src, out, calibration, workdir)
        partial = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.partial")
        try:
            shutil.copyfile(out, partial)
            os.replace(partial, dst)
        finally:
            partial.unlink(missing_ok=True)
    return dst


def _require_finite_weights(src: Path) -> None:
    import onnx
    from onnx import numpy_helper

    for tensor in onnx.load(str(src)).graph.initializer:
        values = numpy_helper.to_array(tensor)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(
                f"{src} has non-finite values in {tensor.name!r}: training diverged; "
                "nothing to quantize"
            )


@register_scheme("fp32")
def _fp32(src: Path, dst: Path, calibration: Iterable[np.ndarray] | None, workdir: Path) -> None:
    shutil.copyfile(src, dst)


@register_scheme("fp16")
def _fp16(src: Path, dst: Path, calibration: Iterable[np.ndarray] | None, workdir: Path) -> None:
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(dst))


@register_scheme("int8_dynamic")
def _int8_dynamic(
    src: Path, dst: Path, calibration: Iterable[np.ndarray] | None, workdir: Path
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(_pre_process(src, workdir)), str(dst), weight_type=QuantType.QUInt8)
    _drop_dead_code(dst)


@register_scheme("int8_static")
def _int8_static(
    src: Path, dst: Path, calibration: Iterable[np.ndarray] | None, workdir: Path
) -> None:
    """QDQ, U8 activations and S8 per-channel weights calibrated by min/max, weights on 7 bits.

    Invariant: onnxruntime's integer kernels give this file's float-reference outputs (to within
    one requantization step, no argmax moved) on every CPU, so the accuracy measured here holds on
    the device. With full 8-bit weights, x86 CPUs
    without VNNI (AVX2 only) multiply U8 x S8 pairs with a saturating 16-bit add (VPMADDUBSW): on a
    2-core AVX2 EPYC a MobileNetV3's argmax agreed with the float reference (and with ARM, which
    does not saturate) on 176 of 200 images, max |delta logit| 12.5; with ``reduce_range`` the
    outputs are bit-identical and the accuracy the same (0.45 on the same 200 images).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if calibration is None:
        raise ValueError(
            "int8_static needs calibration batches (float32 NCHW preprocessed training images)"
        )
    graph_input = onnx.load(str(src), load_external_data=False).graph.input[0]
    reader = _CalibrationReader(graph_input.name, _input_dims(graph_input), calibration)
    quantize_static(
        str(_pre_process(src, workdir)),
        str(dst),
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    _drop_dead_code(dst)


def _pre_process(src: Path, workdir: Path) -> Path:
    """onnxruntime's pre-quantization shape inference, *without* its graph optimization.

    The optimization step merges initializers whose values are equal (e.g. the zero biases of an
    untrained model), which made the quantized graph's structure depend on the weights; the
    exporter has already folded BatchNorm and constants, so nothing else is lost (measured on
    MobileNetV3-small at 128 px, 1 thread: static int8 0.77 ms with or without it).
    """
    from onnxruntime.quantization import quant_pre_process

    prepared = workdir / "preprocessed.onnx"
    quant_pre_process(str(src), str(prepared), skip_optimization=True)
    return prepared


def _drop_dead_code(path: Path) -> None:
    """Remove nodes and initializers nothing reads (e.g. the ``Constant`` bounds of a Clip that
    the quantizer folded into its Q/DQ pair), which onnxruntime would warn about on every load."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    changed = False
    while True:
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [node for node in graph.node if not any(name in used for name in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
        changed = True
    unused = [tensor for tensor in graph.initializer if tensor.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    if changed or unused:
        onnx.save(model, str(path))


def _input_dims(value_info: Any) -> tuple[int | None, ...]:
    """Static dimensions of a graph input, ``None`` where symbolic (the batch)."""
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


class _CalibrationReader:
    """onnxruntime ``CalibrationDataReader`` over an iterable of float32 NCHW batches.

    The first batch is read (and checked) on construction, so a missing calibration set fails
    before any work; every batch is checked against the model input's static dimensions, so a
    wrong resolution or layout fails with a clear message instead of inside onnxruntime.
    """

    def __init__(self, input_name: str, dims: tuple[int | None, ...], batches: Iterable[np.ndarray]):
        self._name = input_name
        self._dims = dims
        self._batches: Iterator[np.ndarray] = iter(batches)
        first = next(self._batches, None)
        if first is None:
            raise ValueError("int8_static got an empty calibration set")
        self._first: dict[str, np.ndarray] | None = self._check(first)

    def _check(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        array = np.ascontiguousarray(batch, dtype=np.float32)
        if array.ndim != len(self._dims) or any(
            want is not None and want != got for want, got in zip(self._dims, array.shape)
        ):
            expected = "x".join("N" if d is None else str(d) for d in self._dims)
            raise ValueError(
                f"calibration batch of shape {array.shape} does not fit the model input {expected}"
            )
        return {self._name: array}

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next input feed, or ``None`` when the batches are exhausted."""
        if self._first is not None:
            feed, self._first = self._first, None
            return feed
        batch = next(self._batches, None)
        return None if batch is None else self._check(batch)

    def __iter__(self) -> "_CalibrationReader":
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed
