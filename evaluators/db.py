"""SQLAlchemy plumbing shared by the tables hwsearch keeps beside Optuna's (latency cache, fleet).

All hwsearch tables derive from :class:`Base` and live in the study's database; table names start
with ``hwsearch_`` so they never collide with Optuna's.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from evaluators.errors import StorageError


class Base(DeclarativeBase):
    """Declarative base of every hwsearch table."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def ensure_sqlite_parent(url: str) -> None:
    """Create the folder of a ``sqlite:///path`` database file (no-op for other URLs)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        Path(url[len(prefix):]).parent.mkdir(parents=True, exist_ok=True)


T = TypeVar("T")
SCHEMA_ATTEMPTS = 5


def _schema_race(exc: Exception) -> bool:
    return isinstance(exc, IntegrityError) or "already exists" in str(exc)


def with_schema_retry(create: Callable[[], T]) -> T:
    """``create()``, retried when another process was creating the same tables at that moment.

    Launchers, coordinators and dashboards may start together on a fresh database; creating
    tables "if missing" then races (PostgreSQL: duplicate ``pg_type`` row or relation; SQLite:
    table already exists, Alembic's version row). The loser finds the tables on its next attempt.
    """
    for attempt in range(1, SCHEMA_ATTEMPTS):
        try:
            return create()
        except Exception as exc:
            if not _schema_race(exc):
                raise
            time.sleep(0.2 * attempt + random.random() * 0.3)
    return create()


TABLE_MODULES = ("evaluators.latency.cache", "evaluators.fleet.tables")
"""Modules defining hwsearch tables; importing them registers the tables on :class:`Base`."""


def _register_tables() -> None:
    import importlib

    for module in TABLE_MODULES:
        importlib.import_module(module)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with hwsearch's tables created.

    SQLite gets WAL mode and a busy timeout so the launcher, the coordinator and the dashboard
    can share one file.

    Raises:
        StorageError: When the database cannot be reached or is not a database.
    """
    ensure_sqlite_parent(url)
    _register_tables()
    try:
        engine = create_engine(url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        with_schema_retry(lambda: Base.metadata.create_all(engine))
    except Exception as exc:  # noqa: BLE001 - any driver error means the same to the user
        raise StorageError(
            f"cannot use storage {url!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            "pass a reachable database URL with --storage (e.g. sqlite:///runs/hwsearch.db or "
            "postgresql+psycopg://user:pass@host/db)",
        ) from exc
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error (Optuna's pattern)."""
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
