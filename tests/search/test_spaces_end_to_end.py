"""Any space, any data: the lpirc space on ungrouped data, a user's own space from a plugin file with
a non-ESFair objective and a screening constraint, and one-line refusals of what cannot work."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import optuna
import pytest

from evaluators.data.synthetic import generate_lpirc
from search import attrs
from tests.search.clirun import TINY_ARGS, assert_one_line_error, cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain ImageFolder (``ROOT/<split>/<class>/*.png``, no groups), 32 px."""
    return generate_lpirc(tmp_path_factory.mktemp("imagefolder") / "data", size=32,
                          counts={"train": 64, "val": 32, "test": 32})


def _study(tmp_path: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}")


def test_lpirc_on_its_embedded_data_reports_its_own_scores(tmp_path: Path) -> None:
    result = cli("search.launch", "--space", "lpirc", "--trials", "2", "--latency", "fake", "--out", "runs",
                 "--override", "epochs=1", "--override", "resolution=64", "--min-accuracy", "0", "--no-progress",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedded:lpirc" in result.stdout and "no groups" in result.stdout
    lines = result.stdout.splitlines()
    header = lines[next(i for i, line in enumerate(lines) if line.startswith("Pareto front")) + 1]
    assert "lpirc" in header and "latency_ms" in header and "fairness" not in header and "SPD" not in header
    study = _study(tmp_path, "lpirc")
    trained = [t for t in study.trials if t.state.name == "COMPLETE" and t.user_attrs.get(attrs.TRAINED)]
    assert trained
    for t in trained:
        metrics = t.user_attrs[attrs.METRICS]
        assert set(metrics["scores"]) == {"lpirc", "mnasnet"} and metrics["fairness"] is None
        assert metrics["scores"]["lpirc"] == pytest.approx(metrics["accuracy"] / max(30.0, metrics["latency"]["median_ms"]))
        assert len(t.values) == 2


def test_lpirc_on_a_user_image_folder(image_folder: Path, tmp_path: Path) -> None:
    result = cli("search.launch", "--space", "lpirc", "--data", str(image_folder), "--trials", "2",
                 "--latency", "fake", "--out", "runs", *TINY_ARGS, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{image_folder}: 128 images, 4 classes, no groups" in result.stdout
    assert sum(t.state.name == "COMPLETE" for t in _study(tmp_path, "lpirc").trials) == 2


def test_a_fairness_space_refuses_data_without_groups_in_one_line(image_folder: Path, tmp_path: Path) -> None:
    result = cli("search.launch", "--space", "esfair", "--data", str(image_folder), "--out", "runs", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, "optimises group fairness", "has no groups", "--space lpirc")
    assert not (tmp_path / "runs" / "hwsearch.db").exists() or not optuna.get_all_study_names(
        f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}")


PLUGIN = '''
"""A user's own space in one file: accuracy up, MACs down, a MACs budget checked before training."""
from spaces import Candidate, Constraint, Objective, Task, register_space

TASK = Task(
    default_data="embedded:lpirc",
    objectives=(Objective("accuracy", "accuracy", "maximize", worst=0.0, best=1.0),
                Objective("macs", "macs", "minimize", worst=1e12)),
    constraints=(Constraint("macs_over_budget", "macs", {bound}, label="MACs"),),
    scores={{"accuracy_per_mmac": lambda m, task: m["accuracy"] / (m["macs"] / 1e6)}},
)


@register_space("tinymacs", task=TASK)
def tinymacs(trial):
    return Candidate(backbone="mobilenetv3_small", width=trial.suggest_categorical("width", [0.35, 1.0]),
                     resolution=32, quant="fp32", epochs=1, finetune_epochs=0)
'''


def test_a_plugin_space_with_its_own_objective_screens_out_with_the_tasks_worst_values(
    image_folder: Path, tmp_path: Path,
) -> None:
    from evaluators.complexity import count_macs
    from evaluators.models import build_model

    small = count_macs(build_model("mobilenetv3_small", 0.35, 4), 32)
    large = count_macs(build_model("mobilenetv3_small", 1.0, 4), 32)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "tinymacs_space.py").write_text(textwrap.dedent(PLUGIN.format(bound=(small + large) / 2)))
    env = {"PYTHONPATH": f"{plugins}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "HWSEARCH_PLUGINS": "tinymacs_space"}
    result = cli("search.launch", "--space", "tinymacs", "--data", str(image_folder), "--trials", "6", "--rungs", "1",
                 "--sampler", "random", "--latency", "fake", "--out", "runs", "--min-accuracy", "0",
                 "--no-progress", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = [t for t in _study(tmp_path, "tinymacs").trials if t.state.name == "COMPLETE"]
    screened = [t for t in trials if not t.user_attrs[attrs.TRAINED]]
    trained = [t for t in trials if t.user_attrs[attrs.TRAINED]]
    assert screened and trained, [t.params for t in trials]
    for t in screened:
        assert t.params["width"] == 1.0
        assert t.values == [0.0, pytest.approx(large)], "the task's worst accuracy, the screen's measured MACs"
        assert "MACs" in t.user_attrs[attrs.INFEASIBLE_REASON] and t.user_attrs[attrs.CONSTRAINT][0] > 0
    for t in trained:
        metrics = t.user_attrs[attrs.METRICS]
        assert t.values == [pytest.approx(metrics["accuracy"]), pytest.approx(small)]
        assert set(metrics["scores"]) == {"accuracy_per_mmac"}
    assert "accuracy_per_mmac" in result.stdout


@pytest.mark.parametrize("args, needles", [
    (("--latency-budget", "-3"), ("--latency-budget -3", "> 0")),
    (("--timeout", "nan"), ("--timeout nan",)),
    (("--eta", "1"), ("--eta 1", ">= 2")),
    (("--floor", "accuracy"), ("--floor 'accuracy'", "OBJECTIVE=NUMBER")),
    (("--floor", "speed=3"), ("unknown objective", "speed")),
    (("--rungs", "3,1"), ("--rungs '3,1'",)),
    (("--min-accuracy", "1.5"), ("--min-accuracy 1.5",)),
    (("--trials", "0"), ("--trials 0",)),
    (("--override", "quant=int4"), ("unknown quantization scheme 'int4'",)),
    (("--pretrained", "/nonexistent/weights"), ("--pretrained /nonexistent/weights",)),
])
def test_every_bad_value_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    result = cli("search.launch", *args, "--out", "runs", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "runs" / "hwsearch.db").exists()


def test_a_search_warm_starts_from_a_local_weights_file(image_folder: Path, tmp_path: Path) -> None:
    import torch

    from evaluators.models import build_model

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(build_model("mobilenetv3_small", 0.75, 1000).state_dict(), weights / "mobilenetv3_small_075.pth")
    result = cli("search.launch", "--space", "lpirc", "--data", str(image_folder), "--trials", "1",
                 "--pretrained", str(weights), "--override", "backbone=mobilenetv3_small", "--override", "width=0.75",
                 "--override", "warm_start=true", "--latency", "fake", "--out", "runs", *TINY_ARGS, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warm starts offered for mobilenetv3_small x0.75" in result.stdout
    trial = _study(tmp_path, "lpirc").trials[0]
    assert trial.state.name == "COMPLETE" and trial.user_attrs[attrs.CANDIDATE]["warm_start"] is True
    assert " warm " in trial.user_attrs[attrs.CANDIDATE_TEXT]
