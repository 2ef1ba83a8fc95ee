"""Markdown tables from several leaderboard results files (one per seed, agent or route set): the scores, the
infractions per km, and the failure causes counted route by route.

    python scripts/summarize_runs.py runs/occvla_seed*.json                 # one row per file + mean and spread
    python scripts/summarize_runs.py --label OccVLA runs/a.json --label expert runs/b.json   # named rows

The mean row is the mean over files (seeds) of each file's mean; the spread is their standard deviation.
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from leaderboard.results import load_results

COLLISIONS = ("collisions_pedestrian", "collisions_vehicle", "collisions_layout")


def summarize(path: Path) -> dict[str, Any]:
    """One results file -> its scores, per-km rates, route counts and failure causes."""
    data = load_results(path)
    if data is None:
        raise ValueError(f"{path}: not a results file")
    ck = data["_checkpoint"]
    records = ck.get("records") or []
    if not records:
        raise ValueError(f"{path}: no finished route")
    km = (
        sum(
            float(r["meta"].get("route_length", 0.0)) * float(r["scores"]["score_route"]) / 100.0
            for r in records
        )
        / 1000.0
    )  # driven km (route length x completion)
    causes: Counter[str] = Counter()
    for r in records:
        status = str(r["status"])
        if status.startswith("Failed"):
            causes[status.replace("Failed - ", "") or "Failed"] += 1
        for kind, events in r["infractions"].items():
            if events and kind != "min_speed_infractions":
                causes[kind] += len(events)
    count = lambda keys: sum(len(r["infractions"].get(k, [])) for r in records for k in keys)  # noqa: E731
    return {
        "file": str(path),
        "routes": len(records),
        "completed": sum(1 for r in records if float(r["scores"]["score_route"]) >= 100.0 - 1e-6),
        "ds": statistics.fmean(float(r["scores"]["score_composed"]) for r in records),
        "rc": statistics.fmean(float(r["scores"]["score_route"]) for r in records),
        "ip": statistics.fmean(float(r["scores"]["score_penalty"]) for r in records),
        "km": km,
        "collisions_per_km": count(COLLISIONS) / km if km > 0 else float("nan"),
        "red_lights_per_km": count(("red_light",)) / km if km > 0 else float("nan"),
        "causes": causes,
    }


def _ms(vals: list[float], digits: int = 2) -> str:
    mean = statistics.fmean(vals)
    return (
        f"{mean:.{digits}f} ± {statistics.stdev(vals):.{digits}f}" if len(vals) > 1 else f"{mean:.{digits}f}"
    )


def tables(groups: dict[str, list[dict[str, Any]]]) -> str:
    """groups: label -> per-file summaries."""
    out = [
        "| run | files | DS | RC | IP | collisions / km | red lights / km | routes completed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, rows in groups.items():
        for s in rows:
            out.append(
                f"| {label}: {Path(s['file']).stem} | 1 | {s['ds']:.2f} | {s['rc']:.2f} | {s['ip']:.3f} | "
                f"{s['collisions_per_km']:.2f} | {s['red_lights_per_km']:.2f} | {s['completed']}/{s['routes']} |"
            )
        if len(rows) > 1:
            out.append(
                f"| **{label}: mean ± sd** | {len(rows)} | **{_ms([s['ds'] for s in rows])}** | "
                f"{_ms([s['rc'] for s in rows])} | {_ms([s['ip'] for s in rows], 3)} | "
                f"{_ms([s['collisions_per_km'] for s in rows])} | {_ms([s['red_lights_per_km'] for s in rows])} | "
                f"{sum(s['completed'] for s in rows)}/{sum(s['routes'] for s in rows)} |"
            )
    out += ["", "| run | failure causes (route statuses and infraction events, all files) |", "|---|---|"]
    for label, rows in groups.items():
        total: Counter[str] = Counter()
        for s in rows:
            total.update(s["causes"])
        text = ", ".join(f"{k} {v}" for k, v in total.most_common()) or "none"
        out.append(f"| {label} | {text} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    tokens = list(sys.argv[1:] if argv is None else argv)
    if not tokens or tokens[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if tokens else 2
    groups: dict[str, list[dict[str, Any]]] = {}
    label, i = "run", 0
    while i < len(tokens):
        if tokens[i] == "--label":
            if i + 1 >= len(tokens):
                print("error: --label needs a name", file=sys.stderr)
                return 2
            label, i = tokens[i + 1], i + 2
            continue
        try:
            groups.setdefault(label, []).append(summarize(Path(tokens[i])))
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        i += 1
    print(tables(groups))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
