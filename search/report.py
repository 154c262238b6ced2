"""Text reports of a study: the Pareto table and the held-out test figures of the Pareto set."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from search import attrs


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def pareto_rows(trials: Sequence[Any], test_metrics: Mapping[int, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per Pareto trial: validation figures, latency, size, candidate, test figures."""
    rows = []
    for t in trials:
        m = t.user_attrs[attrs.METRICS]
        test = test_metrics.get(t.number) or {}
        lat = m["latency"]
        rows.append({
            "trial": t.number,
            "baseline": t.user_attrs.get(attrs.BASELINE) or "",
            "acc": m["accuracy"], "fair": m["fairness"]["fairness_part"], "spd": m["fairness"]["spd"],
            "worst": m["fairness"]["worst_group_accuracy"], "score": m["esfair_score"],
            "lat_med": lat["median_ms"], "lat_p90": lat["p90_ms"], "fake": bool(lat.get("fake")),
            "size_mb": m["size_bytes"] / 1e6, "params_k": m["params"] / 1e3,
            "test_acc": test.get("accuracy"), "test_spd": (test.get("fairness") or {}).get("spd"),
            "test_score": test.get("esfair_score"),
            "candidate": t.user_attrs.get(attrs.CANDIDATE_TEXT, ""),
        })
    return rows


def format_pareto_table(rows: Sequence[Mapping[str, Any]], device_label: str) -> str:
    """Fixed-width table of :func:`pareto_rows`; FAKE latency is labelled as such."""
    if not rows:
        return "No feasible trained trial yet: no Pareto front to show."
    header = (f"{'trial':>5} {'val_acc':>7} {'fair':>6} {'SPD':>6} {'worst':>6} {'score':>6} "
              f"{'lat_ms':>7} {'p90_ms':>7} {'MB':>6} {'test_acc':>8} {'test_SPD':>8} {'test_scr':>8}  candidate")
    lines = [f"Pareto front (validation split; latency on: {device_label})", header, "-" * len(header)]
    for r in rows:
        tag = f"  [baseline: {r['baseline']}]" if r["baseline"] else ""
        lines.append(
            f"{r['trial']:>5} {r['acc']:>7.3f} {r['fair']:>6.3f} {r['spd']:>6.3f} {r['worst']:>6.3f} "
            f"{r['score']:>6.3f} {r['lat_med']:>7.2f} {r['lat_p90']:>7.2f} {r['size_mb']:>6.2f} "
            f"{_fmt(r['test_acc'], '8.3f'):>8} {_fmt(r['test_spd'], '8.3f'):>8} {_fmt(r['test_score'], '8.3f'):>8}"
            f"  {r['candidate']}{tag}"
        )
    if any(r["fake"] for r in rows):
        lines.append("NOTE: latency figures come from the FAKE backend: computed, not measured.")
    lines.append("fair = ESFair fairness part (max 1/3); SPD vs the minority group; score = ESFair "
                 "accuracy + fairness + latency thirds.")
    return "\n".join(lines)


def format_trial_summary(trials: Sequence[Any]) -> str:
    """Counts of trials by outcome."""
    counts: dict[str, int] = {}
    for t in trials:
        if t.state.name == "COMPLETE":
            key = "trained" if t.user_attrs.get(attrs.TRAINED) else "screened out (over budget)"
        else:
            key = t.state.name.lower()
        counts[key] = counts.get(key, 0) + 1
    return "Trials: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
