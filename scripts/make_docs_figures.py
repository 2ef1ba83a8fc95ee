"""Make the README figures: 2x3 camera mosaics (ClearNoon, HardRainNight, LowSunGlare, ClearNightNoStreetLights)
and an occupancy top view.

    python scripts/make_docs_figures.py [--town OccTown01] [--map-dir DIR] [--out docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from scenarios.weather_sets import named_weather
from sim.embedded.maps import spawn_points
from sim.factory import make_simulator
from sim.protocol import SimConfig, TrafficConfig
from sim.sensors import rig_sensor_dicts
from sim.types import OCC_CLASSES

# Occ3D-style palette (RGB 0..255), index = class id; free (17) is not drawn.
PALETTE = np.array([
    [0, 0, 0], [255, 120, 50], [255, 192, 203], [255, 255, 0], [0, 150, 245], [0, 255, 255], [200, 180, 0],
    [255, 0, 0], [255, 240, 150], [135, 60, 0], [160, 32, 240], [255, 0, 255], [175, 0, 75], [75, 0, 75],
    [150, 240, 80], [230, 230, 250], [0, 175, 0], [255, 255, 255],
], dtype=np.uint8)


def mosaic(data: dict) -> np.ndarray:
    """2x3 BGR mosaic in the nuScenes layout: front row FL F FR, back row BL B BR."""
    order = [["CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT"], ["CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"]]
    rows = []
    for row in order:
        tiles = []
        for cid in row:
            img = np.ascontiguousarray(data[cid][1][:, :, :3])
            cv2.putText(img, cid, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(img)
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def occupancy_top_view(semantics: np.ndarray, path: Path) -> None:
    """Top view: the highest non-free class per column, ego at the centre, x forward = up."""
    occ = semantics != 17
    k = np.where(occ.any(-1), semantics.shape[2] - 1 - np.argmax(occ[:, :, ::-1], axis=-1), -1)
    top = np.where(k >= 0, np.take_along_axis(semantics, np.clip(k, 0, None)[..., None], -1)[..., 0], 17)
    img = PALETTE[top]  # (X, Y, 3) with X forward, Y left
    img = img[::-1, ::-1]  # rows: forward at the top; columns: left on the left
    fig, ax = plt.subplots(figsize=(6, 6.6))
    ax.imshow(img, extent=(40, -40, -40, 40))
    ax.plot(0, 0, marker="^", color="k", markersize=8)
    ax.set_xlabel("y (m, left +)")
    ax.set_ylabel("x (m, forward +)")
    present = sorted(set(np.unique(top).tolist()) - {17})
    handles = [plt.Rectangle((0, 0), 1, 1, color=PALETTE[c] / 255.0) for c in present]
    ax.legend(handles, [OCC_CLASSES[c] for c in present], loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4,
              fontsize=7, frameon=False)
    ax.set_title("Occ3D ground truth (200x200x16, 0.4 m), top view")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--town", default="OccTown01")
    ap.add_argument("--map-dir", default=None)
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--spawn", type=int, default=3, help="index into the town's spawn points")
    ap.add_argument("--warmup", type=int, default=100, help="ticks to let traffic fill the scene")
    ap.add_argument("--weathers", nargs="+", default=["ClearNoon", "HardRainNight", "LowSunGlare",
                                                       "ClearNightNoStreetLights"],
                    help="named weathers to draw (presets or custom, scenarios.weather_sets)")
    ap.add_argument("--no-occupancy", action="store_true", help="skip the occupancy figure")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sim = make_simulator("embedded", SimConfig(seed=0, traffic=TrafficConfig(vehicles=40, walkers=30, seed=0)))
    cmap = sim.load_town(args.town, args.map_dir)
    sim.spawn_ego(spawn_points(cmap)[args.spawn])
    sim.attach_sensors(rig_sensor_dicts(400, 225))
    for _ in range(args.warmup):
        sim.tick()
    for name in args.weathers:
        w = named_weather(name)
        sim.set_weather(w.for_heading(sim.ground_truth().ego.pose.yaw))  # a low sun ahead of the ego
        sim.set_street_lights(w.street_lights)
        data = sim.tick()
        cv2.imwrite(str(out / f"cameras_{name}.jpg"), mosaic(data), [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(f"wrote {out / f'cameras_{name}.jpg'}")
    if not args.no_occupancy:
        occupancy_top_view(sim.occupancy().semantics, out / "occupancy_top.png")
        print(f"wrote {out / 'occupancy_top.png'}")
    sim.close()


if __name__ == "__main__":
    main()
