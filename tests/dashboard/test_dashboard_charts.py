"""Figure builders: trace kinds, noise rings, stopped trials, fidelity colours, intervals, FAKE labels."""

from __future__ import annotations

import pandas as pd

from dashboard import charts, detail, trial_charts
from dashboard.fidelity import OUTCOMES, rung_history, rung_occupancy
from dashboard.pareto import (
    FRONT_INFEASIBLE,
    FRONT_MEMBERS,
    FRONT_NOISE,
    FRONT_PARETO,
    FRONT_STOPPED,
    hypervolume_frame,
)
from search import attrs


def _names(figure) -> list[str]:  # type: ignore[no-untyped-def]
    return [trace.name for trace in figure.data]


def _trace(figure, prefix: str):  # type: ignore[no-untyped-def]
    return next(t for t in figure.data if t.name.startswith(prefix))


def test_pareto_2d_kinds_and_fake_axis(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    info, frame, seeded = demo.info, demo.frame, seeded_db.demo
    figure = charts.pareto_figure(frame, info, ("latency_ms", "accuracy"), colour_by="quant")
    names = _names(figure)
    assert names[:3] == ["dominated", FRONT_STOPPED, FRONT_INFEASIBLE]
    assert any(n.startswith(f"{FRONT_PARETO}: quant=") for n in names)
    assert "baseline: esfair-winner-mobileone-s0" in names
    assert "FAKE" in figure.layout.xaxis.title.text and "FAKE" not in figure.layout.yaxis.title.text
    assert figure.layout.xaxis.type == "log" and figure.layout.shapes[0].x0 == info.latency_budget_ms
    front_points = sum(len(t.x) for t in figure.data if t.name.startswith(f"{FRONT_PARETO}:"))
    assert front_points == int(frame["front"].isin(FRONT_MEMBERS).sum())
    stopped = _trace(figure, FRONT_STOPPED)
    assert len(stopped.x) == len(seeded.pruned) and stopped.marker.color == charts.GREY
    assert all("stopped at rung" in h for h in stopped.hovertext)
    infeasible = _trace(figure, FRONT_INFEASIBLE)
    crosses = frame[frame["front"] == FRONT_INFEASIBLE]
    assert len(infeasible.x) == len(crosses) == len(seeded.screened_out) + 2
    untrained = [y for y, trained in zip(infeasible.y, crosses["trained"]) if not trained]
    assert len(untrained) == len(seeded.screened_out) and max(untrained) < frame["accuracy"].min()  # on the rug
    hover = " ".join(infeasible.hovertext)
    assert "not trained: latency only" in hover and "FAKE" in hover and "accuracy floor" in hover


def test_noise_ring_says_by_which_trial(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    figure = charts.pareto_figure(demo.frame, demo.info, ("latency_ms", "accuracy"))
    ring = _trace(figure, charts.NOISE_RING)
    noisy = demo.frame[demo.frame["front"] == FRONT_NOISE]
    assert sorted(ring.customdata) == sorted(noisy["number"]) and seeded_db.demo.noise_member in ring.customdata
    assert ring.marker.symbol == "circle-open"
    for number, text in zip(ring.customdata, ring.hovertext):
        by = int(noisy.set_index("number").loc[number, "dominated_by"])
        assert f"dominated within noise by trial {by}" in text and "±" in text


def test_colour_by_rung_colours_stopped_trials(demo) -> None:  # type: ignore[no-untyped-def]
    figure = charts.pareto_figure(demo.frame, demo.info, ("latency_ms", "accuracy"), colour_by="rung")
    names = _names(figure)
    assert {f"{FRONT_STOPPED}: rung=0", f"{FRONT_STOPPED}: rung=1", f"{FRONT_PARETO}: rung=2"} <= set(names)
    colours = charts.colour_map(demo.frame, "epochs")
    assert list(colours) == ["1", "3", "9"]
    hidden = charts.pareto_figure(demo.frame, demo.info, ("latency_ms", "accuracy"), show_stopped=False)
    assert not any(n.startswith(FRONT_STOPPED) for n in _names(hidden))


def test_pareto_3d_and_toggles(demo) -> None:  # type: ignore[no-untyped-def]
    info = demo.info
    figure = charts.pareto_figure(demo.frame, info, tuple(info.objective_names), show_dominated=False,
                                  show_infeasible=False, log_latency=False)
    assert all(t.type == "scatter3d" for t in figure.data)
    assert "dominated" not in _names(figure) and FRONT_INFEASIBLE not in _names(figure)
    assert "FAKE" in figure.layout.scene.zaxis.title.text and figure.layout.scene.zaxis.type == "linear"


def test_colour_map_is_stable_and_continuous_for_many_numbers() -> None:
    frame = pd.DataFrame({"param.res": [128, 64, 224, 64]})
    assert list(charts.colour_map(frame, "res")) == ["64", "128", "224"]
    many = pd.DataFrame({"param.lr": [i / 100 for i in range(40)]})
    assert charts.colour_map(many, "lr") is None
    assert charts.ordered_values(pd.Series(["fp32", "fp16", None])) == ["fp16", "fp32"]
    assert charts.colour_map(frame, "nothing") == {}


def test_trial_figures(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    user = demo.trials[seeded_db.demo.complete[0]].user_attrs
    metrics = user[attrs.METRICS]
    bars = trial_charts.group_accuracy_figure(detail.group_accuracy_frame(metrics))
    assert list(bars.data[0].x) == ["light", "medium", "dark (minority)"]
    assert len(bars.data[0].error_y.array) == 3 and min(bars.data[0].error_y.arrayminus) > 0
    latency = metrics["latency"]
    figure = trial_charts.latency_figure(detail.latency_stats_frame(latency), 0.1, "ms", 6.0,
                                         (latency["ci_low_ms"], latency["ci_high_ms"]), latency["round_medians_ms"])
    assert [t.name for t in figure.data] == ["min", "median", "mean", "p90", "round medians"]
    median = figure.data[1]
    assert median.error_x.arrayminus[0] + median.error_x.array[0] == (latency["ci_high_ms"] - latency["ci_low_ms"])
    history = rung_history(user, demo.info)
    rungs = trial_charts.rung_history_figure(history, demo.info.objective_names)
    assert len(rungs.data) == 3 and list(rungs.data[0].x) == [1, 3, 9]
    assert "promoted" in rungs.data[0].hovertext[0]
    assert trial_charts.confusion_figure(detail.confusion_frame(metrics)).data[0].type == "heatmap"


def test_study_figures(demo) -> None:  # type: ignore[no-untyped-def]
    occupancy = charts.occupancy_figure(rung_occupancy(demo.trials, demo.info), OUTCOMES)
    assert [t.name for t in occupancy.data] == list(OUTCOMES) and occupancy.layout.barmode == "stack"
    assert list(occupancy.data[0].x) == ["rung 0 (1 ep)", "rung 1 (3 ep)", "rung 2 (9 ep)"]
    hv = charts.hypervolume_figure(hypervolume_frame(demo.view, demo.info))
    assert hv.data[0].line.shape == "hv"
    effect = charts.effect_figure(demo.frame, "resolution", "latency_ms", demo.info, charts.latency_note(demo.frame))
    assert [t.name for t in effect.data] == sorted({t.name for t in effect.data}, key=int)
    assert "FAKE" in effect.layout.yaxis.title.text and effect.layout.yaxis.type == "log"
