"""The dashboard on PostgreSQL: pages render and the connection refuses writes.

Uses ``HWSEARCH_TEST_POSTGRES_URL`` when set (e.g.
``postgresql+psycopg://user:pass@127.0.0.1:5432/db``), else a throwaway server from ``tests/pg.py``;
skipped with the reason only when no server can be started. Studies are seeded under a
unique prefix and deleted afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from dashboard_seed import seed_storage
from sqlalchemy.exc import SQLAlchemyError

from dashboard.storage import open_storage

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_studies(tmp_path: Path, pg_url: str):  # type: ignore[no-untyped-def]
    prefix = f"dash-{uuid.uuid4().hex[:8]}-"
    studies = seed_storage(pg_url, tmp_path / "runs", prefix=prefix)
    yield studies
    for name in studies:
        optuna.delete_study(study_name=name, storage=pg_url)


def test_pages_on_postgres(app_for, pg_studies, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    app = app_for(pg_url).run()
    assert not app.exception and not app.error
    assert set(pg_studies) <= set(app.dataframe[0].value["study"])
    for name in (n for n in pg_studies if n.endswith(("esfair-demo", "lpirc-demo"))):
        app.sidebar.selectbox(key="w.study").set_value(name)
        for page in ("Studies", "Pareto", "Trial", "Insight", "Fleet"):
            app.sidebar.radio(key="w.page").set_value(page).run()
            assert not app.exception and not app.error, (name, page)
    storage = open_storage(pg_url)
    try:
        with pytest.raises(SQLAlchemyError, match="read-only"):
            with storage.engine.begin() as connection:
                connection.execute(sqlalchemy.text("CREATE TABLE hwsearch_dashboard_intruder (id int)"))
    finally:
        storage.close()
