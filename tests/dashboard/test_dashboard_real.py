"""A real search: ``python -m search.launch --space lpirc`` on a tiny ImageFolder (no groups), then the
dashboard on its database: the same front, noise marks, hypervolume and export picks as the CLI, and
every page rendered with the study's own scores and without fairness widgets.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import read_seeded
from dashboard_checks import (
    assert_clean,
    assert_lpirc_pages,
    assert_same_front_as_the_cli,
    choose_trial,
    open_page,
    texts,
)

from dashboard.pareto import FRONT_STOPPED

pytestmark = pytest.mark.slow

COUNTS = {"train": 48, "val": 24, "test": 24}
LAUNCH = ("--space", "lpirc", "--latency", "fake", "--min-accuracy", "0", "--latency-budget", "1000",
          "--trials", "5", "--rungs", "1,2", "--eta", "2", "--override", "resolution=32", "--override", "loss_kd=0",
          "--override", "finetune_epochs=1", "--no-progress", "--out", "runs", "--seed", "0")


@pytest.fixture(scope="module")
def real_lpirc(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database URL of a finished real lpirc search (5 candidates, rungs of 1 and 2 epochs)."""
    from evaluators.data.synthetic import generate_lpirc

    root = tmp_path_factory.mktemp("real-lpirc")
    data = generate_lpirc(root / "lpirc", size=32, counts=COUNTS)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HWSEARCH_STORAGE", None)
    result = subprocess.run([sys.executable, "-m", "search.launch", "--data", str(data), *LAUNCH], cwd=root,
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Pareto front" in result.stdout
    return f"sqlite:///{root / 'runs' / 'hwsearch.db'}"


def test_real_front_matches_the_cli(real_lpirc: str) -> None:
    loaded = read_seeded(real_lpirc, "lpirc")
    assert_same_front_as_the_cli(real_lpirc, "lpirc", loaded)
    stopped = loaded.frame[loaded.frame["state"] == "PRUNED"]
    assert (stopped["front"] == FRONT_STOPPED).all() and not set(stopped["number"]) & set(loaded.view.members)


def test_every_page_of_the_real_study(app_for, real_lpirc: str) -> None:  # type: ignore[no-untyped-def]
    loaded = read_seeded(real_lpirc, "lpirc")
    assert_lpirc_pages(open_page(app_for(real_lpirc), "Studies", "lpirc"), "lpirc", loaded.view.members[0])
    app = open_page(app_for(real_lpirc), "Studies", "lpirc")
    assert "Rungs: 1 → 2 epochs, η = 2" in texts(app.caption)
    assert "s of 300 s spent" in app.dataframe[0].value.set_index("study").loc["lpirc", "budget"]
    pruned = loaded.frame.loc[loaded.frame["state"] == "PRUNED", "number"].tolist()
    if pruned:
        app.sidebar.radio(key="w.page").set_value("Trial").run()
        choose_trial(app, "lpirc", pruned[0])
        assert_clean(app)
        assert "stopped at rung 0 (1 epoch): rung 0:" in texts(app.info)
