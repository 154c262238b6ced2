"""What the agent tells the coordinator about its device, emulation included.

An agent running under an instruction-set emulator (qemu-user: an arm64 root on an x86 machine)
must never pass its timings off as the device's: :func:`emulator` detects the emulator, the
device string then starts with ``EMULATED`` and every measurement says ``source="emulated"``.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from evaluators.fleet.protocol import EMULATED_PREFIX
from evaluators.latency.benchmark import describe_cpu

ARM_MACHINES = frozenset({"aarch64", "arm64", "armv7l", "armv8l", "armv6l"})
_X86_VENDORS = ("GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls")


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
        tags: Free-form labels (e.g. ``fan``, ``bookworm``); ``emulated`` when it is.
        emulated: Whether an emulator runs this agent (its timings say nothing about the device).
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
    emulated: bool = False

    def registration(self) -> dict[str, Any]:
        """The body of ``POST /v1/agents`` and ``POST /v1/enrol`` (``emulated`` shows in the device)."""
        body = asdict(self)
        del body["emulated"]
        return body


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


def _cpuinfo_field(text: str, names: tuple[str, ...]) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in names and value.strip():
            return value.strip()
    return ""


def emulator(machine: str | None = None, proc: Path = Path("/proc")) -> str | None:
    """What emulates this process, e.g. ``qemu-user on Intel(R) Xeon(R) (x86_64 host)``, or None.

    Two signs, either enough: an ARM ``machine`` whose ``/proc/cpuinfo`` describes an x86 CPU
    (qemu-user passes the host's through), or the kernel registering a qemu interpreter for this
    very architecture in ``binfmt_misc`` (a native kernel needs none).

    Args:
        machine: The architecture this process sees (default ``platform.machine()``).
        proc: Where procfs is mounted.
    """
    machine = machine or platform.machine()
    if machine not in ARM_MACHINES:
        return None
    try:
        cpuinfo = (proc / "cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    vendor = _cpuinfo_field(cpuinfo, ("vendor_id",))
    host = _cpuinfo_field(cpuinfo, ("model name",)) or vendor
    if vendor in _X86_VENDORS or " sse2 " in f" {_cpuinfo_field(cpuinfo, ('flags',))} ":
        return f"qemu-user on {host} (x86_64 host)"
    qemu_arch = "aarch64" if machine in ("aarch64", "arm64") else "arm"
    registration = proc / "sys" / "fs" / "binfmt_misc" / f"qemu-{qemu_arch}"
    try:
        if registration.read_text().startswith("enabled"):
            return f"qemu-user on a non-ARM host ({host or 'unknown CPU'})"
    except OSError:
        pass
    return None


def detect(device_tag: str, *, name: str | None = None, tags: list[str] | None = None) -> DeviceInfo:
    """Describe this machine (without importing onnxruntime: its version comes from metadata).

    Under an emulator the device string reads ``EMULATED <arch> under <emulator>`` and the tags
    gain ``emulated``, so no listing can mistake it for the real board.
    """
    machine = platform.machine()
    emulated_by = emulator(machine)
    labels = list(tags or [])
    if emulated_by is None:
        device = describe_cpu()
    else:
        device = f"{EMULATED_PREFIX} {machine} under {emulated_by}, {os.cpu_count()} cores"
        labels = [*labels, "emulated"] if "emulated" not in labels else labels
    return DeviceInfo(
        name=(name or socket.gethostname() or "agent")[:64], device_tag=device_tag,
        device=device[:256], machine=machine[:32], cores=len(usable_cores()),
        ram_mb=ram_mb(), runtime=f"onnxruntime {metadata.version('onnxruntime')}",
        python=platform.python_version(), tags=labels[:16], emulated=emulated_by is not None,
    )
