"""Where studies live: resolving the storage URL and opening Optuna's RDB storage.

Precedence: ``--storage`` > env ``HWSEARCH_STORAGE`` > ``sqlite:///<out>/hwsearch.db`` (``out``
defaults to ``runs``). Heartbeats are on, so a trial whose process died is failed by the next
process that asks for a trial (after ``grace_period`` seconds).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from evaluators.errors import StorageError

ENV_STORAGE = "HWSEARCH_STORAGE"
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 40


def resolve_storage_url(storage: str | None, out_dir: Path) -> str:
    """The storage URL to use (see the module docstring for the precedence)."""
    return storage or os.environ.get(ENV_STORAGE) or f"sqlite:///{out_dir / 'hwsearch.db'}"


def _check_sqlite_file(url: str) -> None:
    path = Path(url[len("sqlite:///"):])
    if path.exists() and path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise StorageError(
                    f"{path} is not an SQLite database",
                    "point --storage at a database file (or a new path) instead of this file",
                )


def open_storage(url: str):  # type: ignore[no-untyped-def]
    """Optuna ``RDBStorage`` for ``url`` with heartbeats, creating SQLite folders as needed.

    Raises:
        StorageError: Unreachable server, bad URL, or a file that is not a database.
    """
    import optuna
    from sqlalchemy.exc import ArgumentError

    from evaluators.db import ensure_sqlite_parent, with_schema_retry

    if url.startswith("sqlite:///"):
        _check_sqlite_file(url)
        ensure_sqlite_parent(url)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    def rdb_storage() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeats are experimental in Optuna; we rely on them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=HEARTBEAT_INTERVAL_S,
                                              grace_period=HEARTBEAT_GRACE_S)

    try:
        return with_schema_retry(rdb_storage)
    except (ArgumentError, ValueError) as exc:
        raise StorageError(f"bad storage URL {url!r}: {exc}",
                           "use a SQLAlchemy URL such as sqlite:///runs/hwsearch.db") from exc
    except Exception as exc:  # noqa: BLE001 - drivers raise many types for "unreachable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"cannot open storage {url!r}: {first}",
            "check that the database server is running and the URL, user and password are right",
        ) from exc
