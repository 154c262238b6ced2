"""Shared fixtures: a tiny embedded data set in the grouped-folder layout, and a quiet HOME."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

TINY_COUNTS = {"train": 96, "val": 48, "test": 48}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated dermatology-like set at 48 px with 192 images (real files on disk)."""
    from evaluators.data import generate_esfair

    root = tmp_path_factory.mktemp("tiny-esfair") / "esfair"
    return generate_esfair(root, seed=0, size=48, counts=TINY_COUNTS)


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """onnxruntime and Ray write under $HOME; keep the user's home clean."""
    home = tmp_path_factory.mktemp("home")
    os.environ["HOME"] = str(home)
    os.environ.pop("HWSEARCH_STORAGE", None)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL: ``HWSEARCH_TEST_POSTGRES_URL`` when set, else a throwaway server per module
    (``tests/pg.py``); skips with the reason only when no server can be started."""
    env = os.environ.get("HWSEARCH_TEST_POSTGRES_URL", "")
    if env:
        yield env
        return
    from tests.pg import PostgresUnavailable, postgres_server

    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
