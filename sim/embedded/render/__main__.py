"""Timing snippet: `python -m sim.embedded.render [--town OccTown01] [--map-dir DIR] [--weather ClearNoon]`.

Six 400x225 nuScenes cameras at a road point of a town, 50 vehicles and 25 pedestrians within 60 m, a dozen
traffic lights; prints per-call wall and CPU milliseconds (median over --frames calls). Not a test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sim.embedded.maps import load_town
from sim.embedded.render import Renderer
from sim.embedded.scene import build_static_scene
from sim.sensors import nuscenes_rig
from sim.types import DEFAULT_EXTENTS, OCC, ActorState, Pose, TrafficLightState
from sim.weather import weather_from_name


def _traffic(scene, rng: np.random.Generator) -> tuple[Pose, list[ActorState], list[TrafficLightState]]:
    g = scene.ground
    rows, cols = np.nonzero(g.classes == OCC["driveable_surface"])
    k = len(rows) // 2
    ex, ey = g.x_min + (cols[k] + 0.5) * g.resolution, g.y_min + (rows[k] + 0.5) * g.resolution
    ego = Pose(ex, ey, 0.0, 0.0)

    def near(cls: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        r, c = np.nonzero(g.classes == cls)
        x, y = g.x_min + (c + 0.5) * g.resolution, g.y_min + (r + 0.5) * g.resolution
        d = np.hypot(x - ex, y - ey)
        idx = np.nonzero((d < 60.0) & (d > 6.0))[0]
        pick = rng.choice(idx, n, replace=len(idx) < n)
        return x[pick], y[pick]

    kinds = ["car"] * 35 + ["van"] * 5 + ["truck"] * 4 + ["bus"] * 2 + ["motorcycle"] * 2 + ["bicycle"] * 2
    vx, vy = near(OCC["driveable_surface"], len(kinds))
    px, py = near(OCC["sidewalk"], 25)
    actors = [
        ActorState(
            i,
            "vehicle.bench",
            "vehicle",
            kind,
            float(vx[i]),
            float(vy[i]),
            0.0,
            float(rng.uniform(0, 360)),
            DEFAULT_EXTENTS[kind],
            color=tuple(rng.uniform(0, 1, 3)),
        )
        for i, kind in enumerate(kinds)
    ]
    actors += [
        ActorState(
            100 + i,
            "walker.bench",
            "walker",
            "pedestrian",
            float(px[i]),
            float(py[i]),
            0.0,
            float(rng.uniform(0, 360)),
            DEFAULT_EXTENTS["pedestrian"],
            color=tuple(rng.uniform(0, 1, 3)),
        )
        for i in range(25)
    ]
    lights = [
        TrafficLightState(
            i,
            ("Red", "Green", "Yellow")[i % 3],
            ex + rng.uniform(-50, 50),
            ey + rng.uniform(-50, 50),
            0.0,
            0.0,
            ((0, 0), (0, 0)),
            0.0,
        )
        for i in range(12)
    ]
    return ego, actors, lights


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--town", default="OccTown01")
    p.add_argument("--map-dir", default=None)
    p.add_argument("--weather", default="ClearNoon")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--depth", action="store_true", help="also read depth and semantic back")
    args = p.parse_args()
    scene = build_static_scene(load_town(args.town, args.map_dir), 0)
    ego, actors, lights = _traffic(scene, np.random.default_rng(0))
    weather = weather_from_name(args.weather)
    with Renderer(scene, nuscenes_rig()) as r:
        r.render(ego, actors, lights, weather)  # compiles this weather's shader variants
        wall, cpu = [], []
        for f in range(args.frames):
            t, c = time.perf_counter(), time.process_time()
            r.render(ego, actors, lights, weather, frame=f, want_depth=args.depth, want_semantic=args.depth)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    print(
        f"{args.town}: {len(scene.mesh.positions) // 3} static triangles, {len(actors)} actors, {args.weather}: "
        f"wall median {np.median(wall) * 1e3:.1f} ms (min {min(wall) * 1e3:.1f}), "
        f"cpu median {np.median(cpu) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
