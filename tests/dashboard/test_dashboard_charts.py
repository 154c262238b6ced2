"""Figure builders: trace kinds, FAKE labels, colours, budget line."""

from __future__ import annotations

import pandas as pd

from dashboard import charts, detail
from dashboard.pareto import FRONT_PARETO, hypervolume_history


def _names(figure) -> list[str]:  # type: ignore[no-untyped-def]
    return [trace.name for trace in figure.data]


def test_pareto_2d_kinds_and_fake_axis(seeded_db, loaded) -> None:  # type: ignore[no-untyped-def]
    info, _, frame = loaded
    figure = charts.pareto_figure(frame, info, ("latency_ms", "accuracy"), colour_by="quant")
    names = _names(figure)
    assert names[:2] == ["dominated", "infeasible (over budget)"]
    assert any(n.startswith(f"{FRONT_PARETO}: quant=") for n in names)
    assert "baseline: esfair-winner-mobileone-s0" in names
    assert "FAKE" in figure.layout.xaxis.title.text and "FAKE" not in figure.layout.yaxis.title.text
    assert figure.layout.xaxis.type == "log"
    assert figure.layout.shapes[0].x0 == info.latency_budget_ms
    front_points = sum(len(t.x) for t in figure.data if t.name.startswith(FRONT_PARETO))
    assert front_points == int((frame["front"] == FRONT_PARETO).sum())
    infeasible = figure.data[1]
    crosses = frame[frame["front"] == "infeasible (over budget)"]
    demo = seeded_db.demo
    screened_out = len(demo.infeasible) - 1  # the last one is PRUNED, not COMPLETE
    assert len(infeasible.x) == len(crosses) == screened_out + len(demo.trained_infeasible)
    assert all(pd.notna(infeasible.y))
    untrained = [y for y, trained in zip(infeasible.y, crosses["trained"]) if not trained]
    assert len(untrained) == screened_out and max(untrained) < frame["accuracy"].min()  # on the rug
    trained = [y for y, t in zip(infeasible.y, crosses["trained"]) if t]
    assert trained == list(crosses.loc[crosses["trained"], "accuracy"])  # at its measured accuracy
    assert all(t.marker.color == charts.GREY for t in figure.data[:1])
    hover = figure.data[1].hovertext[0]
    assert "not trained: latency only" in hover and "FAKE" in hover


def test_pareto_3d_and_toggles(loaded) -> None:  # type: ignore[no-untyped-def]
    info, _, frame = loaded
    figure = charts.pareto_figure(frame, info, tuple(info.objective_names), show_dominated=False,
                                  show_infeasible=False, log_latency=False)
    assert all(t.type == "scatter3d" for t in figure.data)
    assert "dominated" not in _names(figure) and "infeasible (over budget)" not in _names(figure)
    assert "FAKE" in figure.layout.scene.zaxis.title.text
    assert figure.layout.scene.zaxis.type == "linear"


def test_colour_map_is_stable_and_continuous_for_many_numbers() -> None:
    frame = pd.DataFrame({"param.res": [128, 64, 224, 64]})
    assert list(charts.colour_map(frame, "res")) == ["64", "128", "224"]
    many = pd.DataFrame({"param.lr": [i / 100 for i in range(40)]})
    assert charts.colour_map(many, "lr") is None
    assert charts.ordered_values(pd.Series(["fp32", "fp16", None])) == ["fp16", "fp32"]


def test_other_figures(loaded) -> None:  # type: ignore[no-untyped-def]
    info, trials, frame = loaded
    number = int(frame.loc[frame["trained"], "number"].iloc[0])
    metrics = trials[number].user_attrs["metrics"]
    bars = charts.group_accuracy_figure(detail.group_accuracy_frame(metrics))
    assert list(bars.data[0].x) == ["light", "medium", "dark (minority)"]
    heat = charts.confusion_figure(detail.confusion_frame(metrics))
    assert heat.data[0].type == "heatmap"
    latency = charts.latency_figure(detail.latency_stats_frame(metrics["latency"]), 0.1, "ms", 6.0)
    assert [t.name for t in latency.data] == ["min", "median", "mean", "p90"]
    hv = charts.hypervolume_figure(hypervolume_history(frame, info))
    assert hv.data[0].line.shape == "hv"
    effect = charts.effect_figure(frame, "resolution", "latency_ms", info, fake=True)
    assert [t.name for t in effect.data] == sorted({t.name for t in effect.data}, key=int)
    assert "FAKE" in effect.layout.yaxis.title.text and effect.layout.yaxis.type == "log"
    assert charts.effect_figure(frame, "quant", "accuracy", info, fake=True).layout.yaxis.type == "linear"
