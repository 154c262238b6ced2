"""Read-only access to the study database, with messages a person can act on.

Where the URL comes from, first match wins: ``--storage URL`` among the script arguments
(``streamlit run dashboard/app.py -- --storage URL``), the ``HWSEARCH_STORAGE`` environment
variable, then the launcher's default :data:`DEFAULT_STORAGE_URL`.

Read-only guarantees:
    * A SQLite path that does not exist is reported, never created: the file is checked before
      any connection, and connections open it with ``mode=rw`` (no create) and
      ``PRAGMA query_only``, so SQLite itself refuses any write.
    * PostgreSQL sessions start with ``default_transaction_read_only=on``.
    * Optuna's ``RDBStorage`` is built with ``skip_table_creation=True`` and only after the
      Optuna tables were seen, so it never creates or stamps a schema.
"""

from __future__ import annotations

import argparse
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna
import sqlalchemy
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

DEFAULT_STORAGE_URL = "sqlite:///runs/hwsearch.db"
"""The launcher's default database (relative to the working directory)."""
STORAGE_ENV = "HWSEARCH_STORAGE"
SQLITE_MAGIC = b"SQLite format 3\x00"
OPTUNA_REQUIRED_TABLES = frozenset({"studies", "trials", "version_info"})
CONNECT_TIMEOUT_S = 5
HINT_LAUNCH = (
    "start a search with `python -m search.launch --space esfair` (it creates the database), "
    "or point the dashboard at another one with `-- --storage URL` or HWSEARCH_STORAGE"
)


class StorageProblem(Exception):
    """The storage cannot be shown; carries a message for people, not a traceback.

    Attributes:
        message: What is wrong, naming the URL (password hidden).
        hint: What to do about it.
        severity: ``"error"`` (cannot read) or ``"info"`` (readable, nothing to show yet).
    """

    def __init__(self, message: str, hint: str = "", severity: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.severity = severity


@dataclass(frozen=True)
class StorageChoice:
    """The storage URL the dashboard shows and where it came from.

    Attributes:
        url: The URL as given.
        source: ``"--storage"``, ``"HWSEARCH_STORAGE"`` or ``"default"``.
    """

    url: str
    source: str


@dataclass
class ReadOnlyStorage:
    """An opened storage.

    Invariant: ``engine`` and ``optuna_storage`` only ever read (see the module docstring).

    Attributes:
        url: The URL as given.
        display_url: The URL with any password hidden, safe to show.
        engine: SQLAlchemy engine for plain reads (the fleet tables).
        optuna_storage: Optuna's RDB storage over the same database.
    """

    url: str
    display_url: str
    engine: Engine
    optuna_storage: optuna.storages.RDBStorage

    def table_names(self) -> set[str]:
        """Tables in the database now."""
        return set(sqlalchemy.inspect(self.engine).get_table_names())

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()
        self.optuna_storage.engine.dispose()


def resolve_storage_url(argv: Sequence[str], environ: Mapping[str, str]) -> StorageChoice:
    """The storage URL: ``--storage`` in ``argv``, else ``HWSEARCH_STORAGE``, else the default.

    Args:
        argv: Script arguments (``sys.argv[1:]``); unknown arguments are ignored, so a test
            runner's own arguments do no harm.
        environ: Environment variables.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--storage", default=None)
    known, _ = parser.parse_known_args(list(argv))
    if known.storage:
        return StorageChoice(known.storage, "--storage")
    if environ.get(STORAGE_ENV):
        return StorageChoice(environ[STORAGE_ENV], STORAGE_ENV)
    return StorageChoice(DEFAULT_STORAGE_URL, "default")


def display_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (unparsable URLs come back unchanged)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageProblem(
            f"{url!r} is not a database URL",
            "use e.g. sqlite:///runs/hwsearch.db or postgresql+psycopg://user:pass@host/db",
        ) from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = _prefer_installed_postgres_driver(parsed)
    return parsed


def _prefer_installed_postgres_driver(parsed: URL) -> URL:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 when only it is installed."""
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_path(parsed: URL) -> Path:
    """The database file of a SQLite URL, checked to be an existing SQLite file (or empty file).

    Raises:
        StorageProblem: For an in-memory URL, a missing path, a folder or a non-SQLite file.
    """
    shown = parsed.render_as_string(hide_password=True)
    if not parsed.database or parsed.database == ":memory:":
        raise StorageProblem(
            f"{shown} is an in-memory database: a new, empty one in every process", HINT_LAUNCH
        )
    path = Path(parsed.database).expanduser()
    if not path.exists():
        raise StorageProblem(f"no database file at {path.resolve()} ({shown})", HINT_LAUNCH)
    if not path.is_file():
        raise StorageProblem(f"{path.resolve()} is not a file ({shown})", HINT_LAUNCH)
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_MAGIC))
    if header and header != SQLITE_MAGIC:
        raise StorageProblem(
            f"{path.resolve()} is not an SQLite database ({shown})",
            "point --storage at the database the launcher wrote (runs/hwsearch.db by default)",
        )
    return path


def storage_identity(url: str) -> tuple[int, int] | None:
    """``(device, inode)`` of a SQLite URL's file, so a replaced file is opened anew; else None."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    try:
        info = Path(parsed.database).expanduser().stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _sqlite_creator(path: Path) -> Callable[[], sqlite3.Connection]:
    uri = f"{path.resolve().as_uri().replace('file://', 'file:', 1)}?mode=rw"

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA query_only = ON")
        return connection

    return connect


def _engine_kwargs(parsed: URL) -> dict[str, Any]:
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {"creator": _sqlite_creator(sqlite_path(parsed))}
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "postgresql":
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "options": "-c default_transaction_read_only=on",
        }
    elif backend == "mysql":
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return kwargs


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_storage(url: str) -> ReadOnlyStorage:
    """Open ``url`` read-only, or explain why it cannot be shown.

    Raises:
        StorageProblem: ``severity="error"`` for a bad URL, a missing or non-database file, an
            unreachable server or an incompatible Optuna schema; ``severity="info"`` for a
            database without Optuna tables (nothing has run against it yet).
    """
    parsed = _parse(url)
    shown = parsed.render_as_string(hide_password=True)
    try:
        kwargs = _engine_kwargs(parsed)
        engine = sqlalchemy.create_engine(parsed, **kwargs)
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    except StorageProblem:
        raise
    except NoSuchModuleError:
        raise StorageProblem(
            f"unsupported database in {shown}", "use a sqlite:/// or postgresql+psycopg:// URL"
        ) from None
    except ImportError as exc:
        raise StorageProblem(f"no driver for {shown}: {exc}", "install the database driver") from None
    except SQLAlchemyError as exc:
        raise StorageProblem(f"cannot read {shown}: {_first_line(exc)}", HINT_LAUNCH) from None
    missing = OPTUNA_REQUIRED_TABLES - tables
    if missing:
        engine.dispose()
        found = f" (it has: {', '.join(sorted(tables))})" if tables else ""
        raise StorageProblem(
            f"no studies yet: {shown} has no Optuna tables{found}", HINT_LAUNCH, severity="info"
        )
    try:
        study_storage = optuna.storages.RDBStorage(
            parsed.render_as_string(hide_password=False), engine_kwargs=kwargs,
            skip_table_creation=True,
        )
    except (SQLAlchemyError, RuntimeError) as exc:
        engine.dispose()
        raise StorageProblem(
            f"cannot read the Optuna tables of {shown}: {_first_line(exc)}",
            "the database was written by another Optuna version; `optuna storage upgrade "
            "--storage URL` migrates it (that writes to it)",
        ) from None
    return ReadOnlyStorage(url=url, display_url=shown, engine=engine, optuna_storage=study_storage)
