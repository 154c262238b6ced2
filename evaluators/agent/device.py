"""What the agent tells the coordinator about its device."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from evaluators.latency.benchmark import describe_cpu


@dataclass(frozen=True)
class DeviceInfo:
    """A device as registered with the coordinator.

    Attributes:
        name: Agent name (the host name by default).
        device_tag: The tag whose jobs the agent claims, e.g. ``rpi4b``.
        device: What really runs the jobs (device-tree model or CPU model, arch, cores); this is
            the ``device`` of every result the agent reports.
        machine: CPU architecture (``aarch64``).
        cores: CPUs this process may run on.
        ram_mb: Physical memory.
        runtime: ``onnxruntime <version>``.
        python: Python version.
        tags: Free-form labels (e.g. ``fan``, ``bookworm``).
    """

    name: str
    device_tag: str
    device: str
    machine: str
    cores: int
    ram_mb: int
    runtime: str
    python: str
    tags: list[str] = field(default_factory=list)

    def registration(self) -> dict[str, Any]:
        """The body of ``POST /v1/agents``."""
        return asdict(self)


def ram_mb() -> int:
    """Physical memory in MiB (``/proc/meminfo``, else ``sysconf``; 0 when unknown)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024))
    except (ValueError, OSError, AttributeError):
        return 0


def usable_cores() -> set[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def detect(device_tag: str, *, name: str | None = None, tags: list[str] | None = None) -> DeviceInfo:
    """Describe this machine (without importing onnxruntime: its version comes from metadata)."""
    return DeviceInfo(
        name=(name or socket.gethostname() or "agent")[:64], device_tag=device_tag,
        device=describe_cpu()[:256], machine=platform.machine()[:32], cores=len(usable_cores()),
        ram_mb=ram_mb(), runtime=f"onnxruntime {metadata.version('onnxruntime')}",
        python=platform.python_version(), tags=list(tags or []),
    )
