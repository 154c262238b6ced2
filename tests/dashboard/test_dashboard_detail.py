"""The Trial and Studies pages' pure shaping: rung records, decisions, occupancy, budget, figures with
intervals, artifact and export command."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dashboard import detail
from dashboard.data import half_width_column, score_column
from dashboard.fidelity import (
    OUTCOME_PENDING,
    OUTCOME_PROMOTED,
    OUTCOME_STOPPED,
    OUTCOME_TOP,
    budget_text,
    ladder_text,
    rung_epochs,
    rung_history,
    rung_occupancy,
    stopped_text,
)
from search import attrs


def test_rung_history_of_a_finisher(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    number = next(n for n in seeded_db.demo.complete if n != seeded_db.demo.continuation)
    user = demo.trials[number].user_attrs
    history = rung_history(user, demo.info)
    assert list(history["rung"]) == [0, 1, 2] and list(history["epochs"]) == [1, 3, 9]
    for _, row in history.iterrows():
        record = user[attrs.rung_key(int(row["rung"]))]
        assert [row[n] for n in demo.info.objective_names] == pytest.approx(record["values"])
        assert row[score_column("esfair")] == pytest.approx(record["figures"]["scores"]["esfair"])
    assert history[half_width_column("accuracy")].notna().all()
    assert history["decision"].iloc[0].startswith("promoted: rung 0:") and history["decision"].iloc[-1] == ""


def test_rung_history_of_a_continuation(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    seeded = seeded_db.demo
    history = rung_history(demo.trials[seeded.continuation].user_attrs, demo.info)
    copied = history[history["copied from"] != ""]
    assert set(copied["copied from"]) == {f"trial {seeded.interrupted}"}
    resumed = history[history["resumed from"] != ""]
    assert len(resumed) == 1 and resumed["rung"].iloc[0] == copied["rung"].max() + 1
    assert f"trial {seeded.interrupted}'s rung" in resumed["resumed from"].iloc[0]


def test_stopped_text(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    frame = demo.frame.set_index("number")
    number = seeded_db.demo.stopped[1][0]
    text = stopped_text(frame.loc[number], demo.info)
    assert text.startswith("stopped at rung 1 (3 epochs): rung 1:") and "continue" in text


def test_occupancy(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    seeded = seeded_db.demo
    table = rung_occupancy(demo.trials, demo.info).set_index("rung")
    assert list(table.index) == [0, 1, 2] and list(table["epochs"]) == [1, 3, 9]
    assert table.loc[0, OUTCOME_STOPPED] == len(seeded.stopped[0])
    assert table.loc[1, OUTCOME_STOPPED] == len(seeded.stopped[1])
    assert table.loc[2, OUTCOME_TOP] == len(seeded.complete) and table.loc[2, OUTCOME_PROMOTED] == 0
    for rung in (0, 1):  # every promotion finished its next rung (the interrupted one in its continuation)
        assert table.loc[rung, OUTCOME_PROMOTED] == table.loc[rung + 1, "candidates"]
    assert (table["candidates"] == table[[OUTCOME_PROMOTED, OUTCOME_STOPPED, OUTCOME_TOP, OUTCOME_PENDING]]
            .sum(axis=1)).all()
    assert table["candidates"].is_monotonic_decreasing


def test_budget_and_ladder(demo, legacy) -> None:  # type: ignore[no-untyped-def]
    assert budget_text(demo.info) == "412 s of 600 s spent (69%)"
    assert ladder_text(demo.info) == "1 → 3 → 9 epochs, η = 2"
    assert budget_text(legacy.info) == "" and ladder_text(legacy.info) == ""
    assert rung_occupancy(legacy.trials, legacy.info).empty


def test_a_first_look_reads_as_a_share_of_an_epoch(demo) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    looked = dataclasses.replace(demo.info, first_look=1 / 3)
    assert ladder_text(looked) == "1/3 → 3 → 9 epochs, η = 2"
    assert rung_epochs(looked, 0) == "rung 0 (1/3 epoch)" and rung_epochs(looked, 1) == "rung 1 (3 epochs)"
    assert list(rung_occupancy(demo.trials, looked)["epochs"])[:2] == pytest.approx([1 / 3, 3])


def test_figures_frame_follows_the_task(seeded_db, demo, lpirc_demo) -> None:  # type: ignore[no-untyped-def]
    metrics = demo.trials[seeded_db.demo.complete[0]].user_attrs[attrs.METRICS]
    figures = detail.figures_frame(metrics, demo.info).set_index("figure")
    assert list(figures.index) == ["accuracy", "fairness", "latency_ms", "SPD", "worst group", "esfair"]
    assert list(figures["kind"]) == ["objective"] * 3 + ["detail"] * 2 + ["score"]
    assert figures.loc["accuracy", "95 % low"] == pytest.approx(metrics["intervals"]["accuracy"][0])
    assert figures.loc["latency_ms", "95 % high"] == pytest.approx(metrics["latency"]["ci_high_ms"])
    assert figures.loc["SPD", "±"] > 0 and figures.loc["esfair", "±"] != figures.loc["esfair", "±"]  # NaN
    lpirc = lpirc_demo.trials[seeded_db.lpirc.complete[0]].user_attrs[attrs.METRICS]
    figures = detail.figures_frame(lpirc, lpirc_demo.info)
    assert list(figures["figure"]) == ["accuracy", "latency_ms", "lpirc", "mnasnet"]
    assert detail.group_accuracy_frame(lpirc).empty


def test_group_accuracy_and_latency_facts(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    metrics = demo.trials[seeded_db.demo.complete[0]].user_attrs[attrs.METRICS]
    groups = detail.group_accuracy_frame(metrics)
    assert list(groups["group"]) == ["light", "medium", "dark"]
    assert groups.loc[groups["minority"], "group"].tolist() == ["dark"]
    assert (groups["low"] < groups["accuracy"]).all() and (groups["accuracy"] < groups["high"]).all()
    facts = ", ".join(detail.latency_facts(metrics["latency"]))
    assert "95 % CI [" in facts and "in 3 round(s)" in facts and "UNDER LOAD" not in facts
    assert "UNDER LOAD" in ", ".join(detail.latency_facts({**metrics["latency"], "under_load": True}))
    matrix = detail.confusion_frame(metrics)
    assert list(matrix.index) == ["nevus", "melanoma", "keratosis"] == list(matrix.columns)
    assert int(matrix.to_numpy().sum()) == sum(metrics["group_counts"].values())
    stats = detail.latency_stats_frame(metrics["latency"])
    assert list(stats["stat"]) == ["min", "median", "mean", "p90"] and stats["ms"].is_monotonic_increasing
    stages = detail.stage_frame(demo.trials[seeded_db.demo.complete[0]].user_attrs["stage_seconds"])
    assert stages["share"].sum() == pytest.approx(1.0)
    assert detail.confusion_frame({}).empty and detail.stage_frame({}).empty


def test_export_command_is_quoted() -> None:
    command = detail.export_command("sqlite:///runs/hw.db", "my study", 7, detail.default_export_dir("my study", 7))
    assert command == ("python -m search.export --storage sqlite:///runs/hw.db --study 'my study' "
                       "--trial 7 --out 'exports/my study/trial_7'")


def test_artifact_resolution_and_hash(tmp_path: Path) -> None:
    out_dir = tmp_path / "runs" / "s"
    (out_dir / "trial_1").mkdir(parents=True)
    artifact = out_dir / "trial_1" / "model.onnx"
    artifact.write_bytes(b"onnx bytes")
    assert detail.resolve_artifact(str(artifact), "", tmp_path) == artifact
    relative = detail.resolve_artifact("trial_1/model.onnx", str(out_dir), tmp_path / "elsewhere")
    assert relative == out_dir / "trial_1" / "model.onnx"
    assert detail.resolve_artifact("missing.onnx", str(out_dir), tmp_path) is None
    assert detail.resolve_artifact("", str(out_dir), tmp_path) is None
    good = detail.read_artifact(artifact, hashlib.sha256(b"onnx bytes").hexdigest())
    assert good.data == b"onnx bytes" and good.matches is True
    assert detail.read_artifact(artifact, "0" * 64).matches is False
    assert detail.read_artifact(artifact, "").matches is None
