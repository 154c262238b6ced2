"""Claiming trials of a shared study: at most ``cap`` evaluated candidates across all launchers.

A launcher may start a trial only while ``COMPLETE + PRUNED + RUNNING < cap``. Counting and creating the
trial happen under a cross-process lock, so launchers on one study never overshoot the target;
a trial that fails frees its place, so none is lost. The lock is

- PostgreSQL: a transaction-scoped advisory lock keyed by the study name (released by the server
  when the launcher's connection dies);
- SQLite: ``flock`` on ``<database>.claim.lock`` beside the database file (SQLite is single-host);
- any other database: a lock inside this process only (launchers on one study may then overshoot).
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from search import attrs
from search.study import worker_identity


def _advisory_key(study_name: str) -> int:
    digest = hashlib.sha256(f"hwsearch-claim:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class StudyLock:
    """Mutual exclusion between the launchers of study ``study_name`` in database ``url``.

    Args:
        url: The storage URL (SQLAlchemy form).
        study_name: The study; launchers of other studies do not wait for each other.
    """

    def __init__(self, url: str, study_name: str) -> None:
        self.url = url
        self.study_name = study_name
        self._local = threading.Lock()
        self._engine: Any = None
        self._lock_file: Path | None = None
        if url.startswith("postgresql"):
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            self._engine = create_engine(url, poolclass=NullPool)
        elif url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            self._lock_file = Path(url[len("sqlite:///"):] + ".claim.lock")

    @property
    def scope(self) -> str:
        """``database`` (PostgreSQL), ``host`` (SQLite file) or ``process``."""
        if self._engine is not None:
            return "database"
        return "host" if self._lock_file is not None else "process"

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the body of the ``with`` block."""
        with self._local:
            if self._engine is not None:
                from sqlalchemy import text

                with self._engine.begin() as conn:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _advisory_key(self.study_name)})
                    yield
            elif self._lock_file is not None:
                with self._lock_file.open("a") as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX)
                    try:
                        yield
                    finally:
                        fcntl.flock(handle, fcntl.LOCK_UN)
            else:
                yield

    def close(self) -> None:
        """Release the connection pool (PostgreSQL)."""
        if self._engine is not None:
            self._engine.dispose()


class TrialBudget:
    """The ``--trials`` cap of a study shared by any number of launchers, and the trials it hands out.

    Args:
        study: The Optuna study (RDB storage).
        storage: Its ``RDBStorage`` (heartbeats are recorded there).
        lock: The study's :class:`StudyLock`.
        cap: Candidates (COMPLETE + PRUNED trials) the study should reach, counting earlier runs and
            other launchers; ``None`` for no cap (the time budget decides).
    """

    def __init__(self, study: Any, storage: Any, lock: StudyLock, cap: int | None) -> None:
        self.study = study
        self.storage = storage
        self.lock = lock
        self.cap = cap

    def finished(self) -> int:
        """COMPLETE and PRUNED trials in the study now (candidates evaluated)."""
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def reached(self) -> bool:
        """True once the study holds ``cap`` evaluated candidates."""
        return self.cap is not None and self.finished() >= self.cap

    def claim(self, owned: dict[int, Any]) -> Any | None:
        """A new RUNNING trial for this launcher, entered into ``owned``; ``None`` when the cap is taken.

        ``None`` means evaluated + running trials already reach the cap: either the study is done
        or other launchers' running trials may still finish it (wait and ask again). The trial is
        created with the ``worker`` attribute and a first heartbeat, so a crash of this launcher
        is recovered like any other, and it is in ``owned`` before this returns, so the launcher's
        stop path cannot miss it.
        """
        import optuna
        from optuna.trial import TrialState

        with self.lock.hold():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optuna.storages.fail_stale_trials(self.study)
            if self.cap is not None:
                live = self.study.get_trials(deepcopy=False,
                                             states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
                if len(live) >= self.cap:
                    return None
            trial = self.study.ask()
            owned[trial.number] = trial
            trial.set_user_attr(attrs.WORKER, worker_identity())
            self.heartbeat(trial)
            return trial

    def heartbeat(self, trial: Any) -> None:
        """Record that ``trial``'s launcher is alive (Optuna fails trials whose heartbeat stops)."""
        self.storage.record_heartbeat(trial._trial_id)  # noqa: SLF001 - Optuna's Trial has no public id
