"""The wire protocol shared by the coordinator, the agent and the remote backend.

Standard library only: the agent imports this module on a device that has no FastAPI, no pydantic
and no SQLAlchemy.
"""

from __future__ import annotations

import math
import re

API_PREFIX = "/v1"
"""Every endpoint lives under this prefix."""

TOKEN_ENV = "HWSEARCH_FLEET_TOKEN"
"""Environment variable that holds the fleet token when ``--token`` is not given."""

CA_ENV = "HWSEARCH_FLEET_CA"
"""Environment variable naming the CA bundle that verifies an ``https://`` coordinator."""

AGENT_CREDENTIAL_PREFIX = "agent."
"""Per-agent credentials read ``agent.<agent id>.<secret>`` (Bearer-token characters only)."""

EMULATED_PREFIX = "EMULATED"
"""Start of the device string of an agent that runs under an instruction-set emulator."""

MAX_INPUT_ELEMENTS = 1 << 26
"""Largest timed input (elements, batch included) a job may ask for: 256 MB of float32."""

MAX_LATENCY_MS = 3_600_000.0
"""Largest plausible single-inference latency (one hour); a larger figure is refused."""

MAX_TIMED_MS = 7 * 24 * 3_600_000.0
"""Largest plausible total timed time of one job (``n * min_ms``): a week."""

MAX_RUNS = 10_000_000
"""Largest plausible number of timed runs in one measurement."""

MEASUREMENT_KEYS = ("median_ms", "p90_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "n")
"""Benchmark statistics an agent reports (``threads``, ``runtime``, ``device`` ... come beside)."""

ROUND_KEYS = ("rounds", "round_medians_ms", "ci_low_ms", "ci_high_ms")
"""How the agent's rounds went: their count and medians, the 95 % CI of the median."""

MIN_TOKEN_LENGTH = 16
"""Shortest token the coordinator accepts."""

QUEUED = "queued"
LEASED = "leased"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
JOB_STATES = (QUEUED, LEASED, DONE, FAILED, CANCELLED)
TERMINAL_STATES = frozenset({DONE, FAILED, CANCELLED})
"""A job in one of these states never changes again."""

SHA256_PATTERN = r"^[0-9a-f]{64}$"
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
LEASE_ID_PATTERN = r"^[0-9a-f]{32}$"
AGENT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
DEVICE_TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

_SHA256 = re.compile(SHA256_PATTERN)
_DEVICE_TAG = re.compile(DEVICE_TAG_PATTERN)


def is_sha256(text: str) -> bool:
    """True for a lowercase hex sha256 digest (the only artifact key the store accepts)."""
    return bool(_SHA256.match(text))


def is_device_tag(text: str) -> bool:
    """True for a device tag such as ``rpi4b`` or ``jetson-nano.fp16``."""
    return bool(_DEVICE_TAG.match(text))


def effective_input_elements(input_shape: list[int] | tuple[int, ...], batch: int) -> int:
    """Elements of the input a job really times: ``input_shape`` with its batch replaced by ``batch``.

    The benchmark feeds ``(batch, *input_shape[1:])``, so this (not ``input_shape`` alone) is what
    the size cap :data:`MAX_INPUT_ELEMENTS` applies to.
    """
    return math.prod((batch, *input_shape[1:]))


def not_onnx_reason(head: bytes) -> str | None:
    """Why the file starting with ``head`` is certainly not an ONNX model, or None.

    ONNX files are protocol buffers; this catches the formats people confuse with them (Python
    pickles, ``torch.save`` zip archives, HDF5, empty files) before anything tries to load them.
    It never accepts a file: onnxruntime still validates whatever passes.

    Args:
        head: The first bytes of the file (8 are enough).
    """
    if not head:
        return "the file is empty"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "it is a Python pickle, which is never loaded"
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive (a torch.save checkpoint?), not ONNX"
    if head.startswith(b"\x89HDF"):
        return "it is an HDF5 file (Keras?), not ONNX"
    return None
