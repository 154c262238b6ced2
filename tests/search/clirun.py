"""Helpers to run the real CLIs as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINY_ARGS = ("--override", "resolution=32", "--override", "epochs=1", "--override", "finetune_epochs=1",
             "--latency-budget", "1000", "--min-accuracy", "0", "--no-progress")
"""A tiny search: 32 px, one epoch in one rung, no accuracy floor (tiny data cannot clear chance + 10 points)."""


def cli(module: str, *args: str, cwd: Path, timeout: float = 900,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module args`` in ``cwd`` (with ``env`` added) and return the finished process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    env.pop("HWSEARCH_STORAGE", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


def spawn(module: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    """Start ``python -m module args`` in ``cwd`` without waiting."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HWSEARCH_STORAGE", None)
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """The process failed with exactly one ``error:`` line (no traceback) that holds every needle."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for needle in needles:
        assert needle in error_lines[0], error_lines[0]
