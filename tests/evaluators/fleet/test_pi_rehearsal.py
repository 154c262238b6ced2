"""The arm64 rehearsal (``scripts/pi_rehearsal.sh``): the agent installed as the README says into an
emulated Debian arm64 root, measuring through a TLS coordinator on loopback, its outputs compared
with x86 onnxruntime. Slow: a cold run builds the root (minutes); later runs reuse the cached root
(``HWSEARCH_REHEARSAL_CACHE``, default ``/var/cache/hwsearch-pi-rehearsal``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

LIMIT_S = 3000
"""Longest run allowed; a cold run (root build included) takes 13 min or more on 2 cores."""

pytestmark = [pytest.mark.slow, pytest.mark.arm64, pytest.mark.timeout(LIMIT_S + 300)]

ROOT = Path(__file__).resolve().parents[3]
SCHEMES = ("fp32", "fp16", "int8_static")


def _host_cannot() -> str | None:
    if os.geteuid() != 0:
        return "the arm64 rehearsal needs root (mmdebstrap, binfmt_misc, mounts, chroot)"
    if "binfmt_misc" not in Path("/proc/filesystems").read_text():
        return "this kernel has no binfmt_misc, so it cannot run arm64 binaries through qemu-user"
    return None


def test_the_agent_runs_on_an_emulated_arm64_root_and_agrees_with_x86() -> None:
    reason = _host_cannot()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = subprocess.Popen(["bash", str(ROOT / "scripts" / "pi_rehearsal.sh")], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output = script.communicate(timeout=LIMIT_S)[0]
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGTERM)
            script.wait(120)
    print(output)
    assert script.returncode == 0, output[-4000:]
    for scheme in SCHEMES:
        assert f"  {scheme}: argmax agreement ARM vs x86" in output and "-- ok" in output, scheme
        assert f"  {scheme}: median" in output and "EMULATED latency (not the device's speed)" in output
    assert "the arm64 rehearsal passed" in output
