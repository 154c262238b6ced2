"""Read-only storage access: URL resolution, clear problems, no file creation, no writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from sqlalchemy.exc import OperationalError

from dashboard.storage import (
    DEFAULT_STORAGE_URL,
    STORAGE_ENV,
    StorageProblem,
    display_url,
    open_storage,
    resolve_storage_url,
    storage_identity,
)


def test_storage_url_precedence() -> None:
    env = {STORAGE_ENV: "sqlite:///env.db"}
    assert resolve_storage_url(["--storage", "sqlite:///cli.db"], env).url == "sqlite:///cli.db"
    assert resolve_storage_url(["--storage=sqlite:///cli.db"], env).source == "--storage"
    assert resolve_storage_url(["-q", "tests/x.py", "-m", "not slow"], env).url == "sqlite:///env.db"
    chosen = resolve_storage_url([], {})
    assert (chosen.url, chosen.source) == (DEFAULT_STORAGE_URL, "default")


def test_display_url_hides_password() -> None:
    shown = display_url("postgresql+psycopg://alice:s3cret@db.example:5432/hw")
    assert "s3cret" not in shown and "alice" in shown and "***" in shown


def test_missing_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "hwsearch.db"
    with pytest.raises(StorageProblem) as caught:
        open_storage(f"sqlite:///{path}")
    assert "no database file" in caught.value.message and caught.value.severity == "error"
    assert "search.launch" in caught.value.hint
    assert not path.exists() and not path.parent.exists()


def test_non_database_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(StorageProblem, match="not an SQLite database"):
        open_storage(f"sqlite:///{path}")


def test_folder_and_memory_urls(tmp_path: Path) -> None:
    with pytest.raises(StorageProblem, match="not a file"):
        open_storage(f"sqlite:///{tmp_path}")
    with pytest.raises(StorageProblem, match="in-memory"):
        open_storage("sqlite://")


def test_bad_and_unsupported_urls() -> None:
    with pytest.raises(StorageProblem, match="not a database URL"):
        open_storage("runs/hwsearch.db")
    with pytest.raises(StorageProblem, match="unsupported database"):
        open_storage("nosuchdb://host/db")


def test_empty_files_are_info_not_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StorageProblem) as caught:
        open_storage(f"sqlite:///{empty}")
    assert caught.value.severity == "info" and "no Optuna tables" in caught.value.message
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE things (id INTEGER)")
    with pytest.raises(StorageProblem, match=r"it has: things") as caught:
        open_storage(f"sqlite:///{other}")
    assert caught.value.severity == "info"
    assert empty.stat().st_size == 0


def test_unreachable_postgres_is_a_message_without_password() -> None:
    with pytest.raises(StorageProblem) as caught:
        open_storage("postgresql://alice:s3cret@127.0.0.1:1/hw")
    assert "s3cret" not in caught.value.message
    assert "cannot read" in caught.value.message or "no driver" in caught.value.message


def test_opened_storage_refuses_writes(seeded_db) -> None:  # type: ignore[no-untyped-def]
    before = seeded_db.path.stat().st_mtime_ns
    storage = open_storage(seeded_db.url)
    try:
        assert {"studies", "trials"} <= storage.table_names()
        assert len(storage.optuna_storage.get_all_studies()) == len(seeded_db.studies)
        with pytest.raises(OperationalError, match="readonly|read-only"):
            with storage.engine.begin() as connection:
                connection.execute(sqlalchemy.text("CREATE TABLE intruder (id INTEGER)"))
        study_id = storage.optuna_storage.get_study_id_from_name("esfair-demo")
        with pytest.raises(optuna.exceptions.StorageInternalError) as caught:
            storage.optuna_storage.set_study_user_attr(study_id, "x", 1)
        assert "readonly" in str(caught.value.__cause__)
    finally:
        storage.close()
    assert seeded_db.path.stat().st_mtime_ns == before


def test_storage_identity_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    assert storage_identity(f"sqlite:///{path}") is None
    sqlite3.connect(path).close()
    first = storage_identity(f"sqlite:///{path}")
    keep = tmp_path / "keep.db"
    path.rename(keep)
    sqlite3.connect(path).close()
    assert first is not None and storage_identity(f"sqlite:///{path}") not in (None, first)
    assert storage_identity("postgresql+psycopg://u:p@127.0.0.1/db") is None
    assert storage_identity("not a url") is None
