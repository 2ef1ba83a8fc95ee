"""The human-readable side of a run: a markdown report beside the results JSON and one plot per route.

Per route: the map's lanes in grey, the route in blue, the driven path in black and a marker per infraction.
Traces are saved as `<results stem>_report/<route_id>.npz` so a resumed run still reports every route.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import carla
import numpy as np

MARKERS = {  # infraction kind -> (matplotlib marker, colour, label)
    "COLLISION_VEHICLE": ("X", "red", "collision (vehicle)"),
    "COLLISION_PEDESTRIAN": ("X", "magenta", "collision (pedestrian)"),
    "COLLISION_STATIC": ("X", "orange", "collision (layout)"),
    "TRAFFIC_LIGHT_INFRACTION": ("s", "red", "red light"),
    "STOP_INFRACTION": ("8", "darkred", "stop sign"),
    "ROUTE_DEVIATION": ("*", "purple", "route deviation"),
    "VEHICLE_BLOCKED": ("P", "brown", "blocked"),
    "OUTSIDE_ROUTE_LANES_INFRACTION": ("D", "gold", "outside route lanes"),
}


def report_dir(results_path: str | Path) -> Path:
    p = Path(results_path)
    return p.with_name(p.stem + "_report")


def lane_polylines(cmap: carla.Map, step: float = 2.0) -> list[np.ndarray]:
    """Every lane segment of the map as an (P, 2) polyline, for drawing."""
    out = []
    for a, b in cmap.get_topology():
        pts = [(a.transform.location.x, a.transform.location.y)]
        w = a
        for _ in range(5000):
            nxt = w.next(step)
            if not nxt or w.transform.location.distance(b.transform.location) < step:
                break
            w = nxt[0]
            pts.append((w.transform.location.x, w.transform.location.y))
        pts.append((b.transform.location.x, b.transform.location.y))
        out.append(np.array(pts))
    return out


def save_route_artifacts(results_path: str | Path, outcome: Any, lanes: list[np.ndarray]) -> Path | None:
    """Save the trace (npz) and the plot (png) of one finished route; returns the png path."""
    out = report_dir(results_path)
    out.mkdir(parents=True, exist_ok=True)
    rid = outcome.record["route_id"]
    kinds = np.array([k for k, _, _ in outcome.infractions], dtype=str)
    pts = np.array([(x, y) for _, x, y in outcome.infractions], dtype=np.float64).reshape(-1, 2)
    np.savez_compressed(
        out / f"{rid}.npz", route=outcome.route_xy, trace=outcome.trace_xy, kinds=kinds, points=pts
    )
    if len(outcome.route_xy) == 0:
        return None
    return plot_route(
        out / f"{rid}.png",
        outcome.record,
        outcome.route_xy,
        outcome.trace_xy,
        list(zip(kinds.tolist(), pts[:, 0].tolist(), pts[:, 1].tolist())),
        lanes,
    )


def plot_route(
    path: Path,
    record: dict[str, Any],
    route_xy: np.ndarray,
    trace_xy: np.ndarray,
    infractions: list[tuple[str, float, float]],
    lanes: list[np.ndarray],
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    allxy = np.concatenate([route_xy] + ([trace_xy] if len(trace_xy) else []))
    lo, hi = allxy.min(0) - 30, allxy.max(0) + 30
    for lane in lanes:
        if np.any((lane[:, 0] > lo[0]) & (lane[:, 0] < hi[0]) & (lane[:, 1] > lo[1]) & (lane[:, 1] < hi[1])):
            ax.plot(lane[:, 0], lane[:, 1], color="0.8", lw=0.8, zorder=1)
    ax.plot(route_xy[:, 0], route_xy[:, 1], color="tab:blue", lw=3, alpha=0.5, label="route", zorder=2)
    ax.plot(*route_xy[0], "o", color="tab:green", ms=8, label="start", zorder=4)
    ax.plot(*route_xy[-1], "o", color="tab:red", ms=8, label="end", zorder=4)
    if len(trace_xy):
        ax.plot(trace_xy[:, 0], trace_xy[:, 1], color="black", lw=1.2, label="driven", zorder=3)
    seen = set()
    for kind, x, y in infractions:
        marker, color, label = MARKERS.get(kind, ("o", "black", kind.lower()))
        ax.plot(
            x, y, marker, color=color, ms=11, mec="black", zorder=5, label=None if kind in seen else label
        )
        seen.add(kind)
    s = record["scores"]
    ax.set_title(
        f"{record['route_id']}: {record['status']}\nDS {s['score_composed']:.1f} = RC {s['score_route']:.1f}"
        f" x IP {s['score_penalty']:.3f}",
        fontsize=10,
    )
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(hi[1], lo[1])  # CARLA's y points south: draw north up
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, east)")
    ax.set_ylabel("y (m, south)")
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_markdown_report(results_path: str | Path, data: dict[str, Any], command: str = "") -> Path:
    """`<results stem>_report.md`: global scores, a table of routes, infraction lists and plot links."""
    results_path = Path(results_path)
    out = results_path.with_name(results_path.stem + "_report.md")
    rdir = report_dir(results_path)
    ck = data["_checkpoint"]
    lines = [f"# Leaderboard results: {results_path.name}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"Entry status: **{data['entry_status']}**, progress {ck['progress'][0]}/{ck['progress'][1]} routes.",
        "",
    ]
    if data.get("values"):
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {label} | {value} |" for label, value in zip(data["labels"], data["values"])]
        lines += ["", "Infractions are per km driven (outside route lanes: km driven outside).", ""]
    lines += [
        "| route | status | driving score | route completion | infraction penalty | length (m) | game time (s) |"
        " infractions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ck["records"]:
        s, m = r["scores"], r["meta"]
        inf = ", ".join(f"{k} {len(v)}" for k, v in r["infractions"].items() if v) or "-"
        link = (
            f"[{r['route_id']}]({rdir.name}/{r['route_id']}.png)"
            if (rdir / f"{r['route_id']}.png").exists()
            else r["route_id"]
        )
        lines.append(
            f"| {link} | {r['status']} | {s['score_composed']:.2f} | {s['score_route']:.2f} | "
            f"{s['score_penalty']:.3f} | {m['route_length']:.0f} | {m['duration_game']:.1f} | {inf} |"
        )
    lines.append("")
    for r in ck["records"]:
        msgs = [m for v in r["infractions"].values() for m in v]
        if msgs:
            lines += [f"### {r['route_id']}", ""] + [f"- {m}" for m in msgs] + [""]
    out.write_text("\n".join(lines))
    return out
