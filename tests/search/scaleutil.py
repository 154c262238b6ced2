"""Helpers of the scale-out tests: cheap trial overrides, process trees, polling a study."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CHEAP = ("--override", "backbone=mobilenetv3_small", "--override", "width=0.35", "--override", "resolution=32",
         "--override", "epochs=1", "--override", "finetune_epochs=0", "--override", "prune_ratio=0",
         "--override", "quant=fp32", "--override", "loss_kd=0", "--override", "loss_arcface=0",
         "--override", "loss_triplet=0", "--min-accuracy", "0", "--latency-budget", "1000", "--no-progress")
"""Overrides that make a trained trial take seconds (the sampler still chooses lr, EMA, smoothing)."""

SCREENED_OUT = (*CHEAP[:-3], "--latency-budget", "0.0001", "--no-progress")


def cheap_with_epochs(epochs: int | None, free: tuple[str, ...] = ()) -> tuple[str, ...]:
    """CHEAP with every candidate trained ``epochs`` epochs in one rung, or (``None``) in the rungs
    the command asks for; the candidate fields named in ``free`` are left to the sampler."""
    pairs = [CHEAP[i:i + 2] for i in range(0, len(CHEAP) - 1, 2)]
    dropped = {("--override", "epochs=1")} | {pair for pair in pairs if pair[1].split("=")[0] in free}
    kept = tuple(a for pair in pairs if pair not in dropped for a in pair)
    return (*kept, *(("--override", f"epochs={epochs}") if epochs else ()), "--no-progress")
"""Like CHEAP, but every candidate is over the latency budget: COMPLETE after screening, untrained."""


def children(pid: int) -> dict[int, list[int]]:
    """``{parent: [child, ...]}`` for every process (from /proc)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """All processes below ``pid``."""
    tree, out, todo = children(pid), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    """The process's command line ('' when it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pids: Iterable[int]) -> list[int]:
    """Those of ``pids`` that still exist (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL each of ``pids`` (processes this test started), ignoring those already gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def trial_states(url: str, study: str) -> list[tuple[int, str, dict[str, Any]]]:
    """``(number, state, user_attrs)`` of the study's trials ([] before it exists).

    Reads without creating Optuna's tables, so polling never races the launcher that creates them.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        return []
    try:
        storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True, skip_table_creation=True)
    except SQLAlchemyError:
        return []
    try:
        trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    except (KeyError, SQLAlchemyError):
        return []
    finally:
        storage.engine.dispose()
    return [(t.number, t.state.name, t.user_attrs) for t in trials]
