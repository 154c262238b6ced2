"""Helpers to run the real CLIs as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINY_ARGS = ("--override", "resolution=32", "--override", "epochs=1", "--override", "finetune_epochs=1",
             "--latency-budget", "1000", "--min-accuracy", "0", "--no-progress")
"""A tiny search: 32 px, one epoch in one rung, no accuracy floor (tiny data cannot clear chance + 10 points)."""


def cli(module: str, *args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module args`` in ``cwd`` and return the finished process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HWSEARCH_STORAGE", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


def spawn(module: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    """Start ``python -m module args`` in ``cwd`` without waiting."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HWSEARCH_STORAGE", None)
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
