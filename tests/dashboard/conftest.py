"""Fixtures of the dashboard tests: seeded temp-file SQLite studies and an AppTest factory."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import optuna
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for _path in (str(REPO), str(HERE)):  # the helpers beside this file, whatever pytest's import mode
    if _path not in sys.path:
        sys.path.insert(0, _path)

from dashboard_seed import SeededStudy, seed_storage  # noqa: E402

APP = REPO / "dashboard" / "app.py"
APP_TIMEOUT_S = 120


@dataclass
class SeededDB:
    """A seeded database file.

    Attributes:
        url: Its ``sqlite:///`` URL.
        path: The file.
        out_root: Root of the studies' artifact folders.
        studies: What was written, by study name.
    """

    url: str
    path: Path
    out_root: Path
    studies: dict[str, SeededStudy]

    @property
    def demo(self) -> SeededStudy:
        """The ``esfair-demo`` study (FAKE latency, every kind of trial)."""
        return self.studies["esfair-demo"]

    @property
    def lpirc(self) -> SeededStudy:
        """The ``lpirc-demo`` study (no groups; scores lpirc and mnasnet)."""
        return self.studies["lpirc-demo"]


def make_seeded(folder: Path) -> SeededDB:
    """Seed a new database file under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hwsearch.db"
    url = f"sqlite:///{path}"
    studies = seed_storage(url, folder / "runs")
    return SeededDB(url, path, folder / "runs", studies)


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> SeededDB:
    """A seeded database shared by the tests that only read it."""
    return make_seeded(tmp_path_factory.mktemp("seeded"))


@pytest.fixture
def fresh_db(tmp_path: Path, seeded_db: SeededDB) -> SeededDB:
    """A copy of the seeded database of this test's own (for tests that add trials or tables)."""
    folder = tmp_path / "fresh"
    folder.mkdir()
    path = folder / "hwsearch.db"
    shutil.copyfile(seeded_db.path, path)
    return replace(seeded_db, url=f"sqlite:///{path}", path=path)


def read_seeded(url: str, name: str):  # type: ignore[no-untyped-def]
    """Study ``name`` of ``url`` read through the dashboard's storage, as :func:`dashboard.ui.load_study` does."""
    from dashboard.info import study_info
    from dashboard.storage import open_storage
    from dashboard.study import read_study

    storage = open_storage(url)
    try:
        frozen = next(s for s in storage.optuna_storage.get_all_studies() if s.study_name == name)
        trials = storage.optuna_storage.get_all_trials(storage.optuna_storage.get_study_id_from_name(name))
    finally:
        storage.close()
    return read_study(study_info(frozen), trials)


@pytest.fixture(scope="session")
def demo(seeded_db: SeededDB):  # type: ignore[no-untyped-def]
    """``esfair-demo`` as the pages load it (:class:`dashboard.ui.LoadedStudy`)."""
    return read_seeded(seeded_db.url, "esfair-demo")


@pytest.fixture(scope="session")
def lpirc_demo(seeded_db: SeededDB):  # type: ignore[no-untyped-def]
    """``lpirc-demo`` as the pages load it."""
    return read_seeded(seeded_db.url, "lpirc-demo")


@pytest.fixture(scope="session")
def legacy(seeded_db: SeededDB):  # type: ignore[no-untyped-def]
    """``esfair-legacy`` (the layout before rungs) as the pages load it."""
    return read_seeded(seeded_db.url, "esfair-legacy")


@pytest.fixture
def app_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], object]:
    """Factory: an AppTest of ``dashboard/app.py`` reading the storage URL given (via HWSEARCH_STORAGE).

    Runs in a temp working directory so the default relative database path resolves there.
    """
    from streamlit.testing.v1 import AppTest

    from dashboard.ui import cached_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    monkeypatch.chdir(tmp_path)

    def make(url: str) -> AppTest:
        cached_storage.clear()
        if url:
            monkeypatch.setenv("HWSEARCH_STORAGE", url)
        else:
            monkeypatch.delenv("HWSEARCH_STORAGE", raising=False)
        return AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)

    yield make
    cached_storage.clear()
