"""Gallery of generated towns: top views with junction kinds and lane counts drawn in.

    python scripts/towns_gallery.py [--seeds 0 1 2 3 4 5] [--out docs/img/occgen_gallery.png]

Each panel is one `OccGen-<seed>` town drawn from carla.Map lane geometry: driving lanes coloured by the number
of lanes per direction of their road (1 grey, 2 blue, 3 purple; highway stretches green, ramps orange), parking
lanes tan, sidewalks light grey, and every junction marked by kind (signalised 4-way, unsignalised 4-way,
signalised T, unsignalised T, ramp merge/diverge).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.embedded.maps import load_town
from sim.embedded.scene import SceneConfig, sample_lanes
from sim.embedded.towns.occgen import features, occgen_spec, town_name

LANE_COLOURS = {1: "#8c8c8c", 2: "#3b6fb6", 3: "#7b3fa0"}
HIGHWAY_COLOUR, RAMP_COLOUR = "#2e8b57", "#e6862e"
JUNCTION_ASPHALT = "#5a5a5a"
TYPE_COLOURS = {"parking": "#c8b48c", "sidewalk": "#d9d9d9", "shoulder": "#b0b0b0"}
MARKERS = {  # kind -> (marker, colour, label)
    "sig4": ("o", "#d62728", "signalised 4-way"),
    "uns4": ("s", "#ff9f1c", "unsignalised 4-way"),
    "sigT": ("^", "#d62728", "signalised T"),
    "unsT": ("^", "#2ca02c", "unsignalised T"),
    "ramp": ("D", "#e6862e", "ramp merge / diverge"),
}


def draw_town(ax: plt.Axes, seed: int, cache_dir: Path | None) -> None:
    spec = occgen_spec(seed)
    town = load_town(town_name(seed), cache_dir=cache_dir)
    lanes_of_road = {i + 1: e.style.lanes for i, e in enumerate(spec.edges)}  # road ids follow spec.edges
    special = {
        i + 1: RAMP_COLOUR if e.style.oneway else HIGHWAY_COLOUR
        for i, e in enumerate(spec.edges)
        if e.style.oneway or e.name.startswith("Highway")
    }
    polys, colours = [], []
    for strip in sample_lanes(town, SceneConfig(fine_step=2.0)):
        le, re = strip.left_edge[:, :2], strip.right_edge[:, :2]
        poly = [*map(tuple, le), *map(tuple, re[::-1])]
        if strip.lane_type == "driving":
            colour = (
                JUNCTION_ASPHALT
                if strip.junction >= 0
                else special.get(strip.road_id, LANE_COLOURS[lanes_of_road.get(strip.road_id, 1)])
            )
        else:
            colour = TYPE_COLOURS.get(strip.lane_type, "#cccccc")
        polys.append(poly)
        colours.append(colour)
    ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="none"))
    arms: dict[str, int] = {}
    for e in spec.edges:
        arms[e.a] = arms.get(e.a, 0) + 1
        arms[e.b] = arms.get(e.b, 0) + 1
    sig = set(spec.signalised or ())
    for node, (x, y) in spec.nodes.items():
        ramps = any(e.style.oneway for e in spec.edges if node in (e.a, e.b))
        kind = (
            "ramp"
            if ramps and node in ("D", "M")
            else ("sig" if node in sig else "uns") + ("4" if arms[node] >= 4 else "T")
        )
        marker, colour, _ = MARKERS[kind]
        ax.plot(x, y, marker=marker, color=colour, markersize=9, markeredgecolor="black", zorder=3)
    f = features(spec)
    ax.set_title(f"{spec.name}: {f['min_speed_kmh']}-{f['max_speed_kmh']} km/h", fontsize=10)
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.invert_yaxis()  # CARLA's y points south: north up
    ax.set_xticks([])
    ax.set_yticks([])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 4, 7, 12])
    ap.add_argument("--out", type=Path, default=Path("docs/img/occgen_gallery.png"))
    ap.add_argument("--cols", type=int, default=3)
    ap.add_argument("--cache-dir", type=Path, default=None, help="cache root (default ~/.cache/occvla-drive)")
    args = ap.parse_args(argv)
    rows = -(-len(args.seeds) // args.cols)
    fig, axes = plt.subplots(rows, args.cols, figsize=(4.2 * args.cols, 4.2 * rows + 0.6), squeeze=False)
    for ax, seed in zip(axes.flat, args.seeds, strict=False):
        draw_town(ax, seed, args.cache_dir)
    for ax in list(axes.flat)[len(args.seeds) :]:
        ax.axis("off")
    handles = [
        Patch(color=c, label=f"{k} lane{'s' if k > 1 else ''} per direction") for k, c in LANE_COLOURS.items()
    ]
    handles += [Patch(color=HIGHWAY_COLOUR, label="highway"), Patch(color=RAMP_COLOUR, label="ramp")]
    handles += [Patch(color=TYPE_COLOURS["parking"], label="parking lane")]
    handles += [
        Line2D([], [], marker=m, color=c, markeredgecolor="black", linestyle="none", label=lab)
        for m, c, lab in MARKERS.values()
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
