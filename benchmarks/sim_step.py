"""Embedded simulator speed: per-phase tick timings and occupancy ground-truth cost.

Runs six 400x225 RGB cameras, NPC traffic (>= 40 vehicles, >= 20 pedestrians within 100 m), traffic lights and
ClearNoon, with the ego lane-keeping on its own. Prints a table and ends with one JSON line.

    python benchmarks/sim_step.py                       # a built-in town
    python benchmarks/sim_step.py --town Town01 --map-dir ../shared/carla/maps
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import carla
import numpy as np

from sim.embedded.maps import spawn_points
from sim.factory import make_simulator
from sim.protocol import SimConfig, TrafficConfig
from sim.sensors import rig_sensor_dicts
from sim.types import FIXED_DELTA_SECONDS


def lane_keep(cmap: carla.Map, gt, target_speed: float = 7.0) -> carla.VehicleControl:
    """A minimal pure-pursuit lane keeper so the ego moves through traffic during the benchmark."""
    p = gt.ego.pose
    wp = cmap.get_waypoint(carla.Location(p.x, p.y, p.z))
    nxt = wp.next(6.0)
    tgt = (nxt[0] if nxt else wp).transform.location
    ang = math.atan2(tgt.y - p.y, tgt.x - p.x) - math.radians(p.yaw)
    ang = (ang + math.pi) % (2 * math.pi) - math.pi
    steer = float(np.clip(ang * 1.2, -1, 1))
    err = target_speed - gt.ego.speed
    return carla.VehicleControl(throttle=float(np.clip(0.3 * err, 0, 0.75)), brake=float(np.clip(-0.3 * err, 0, 1)),
                                steer=steer)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--town", default="OccTown01")
    ap.add_argument("--map-dir", default=None)
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--vehicles", type=int, default=45)
    ap.add_argument("--walkers", type=int, default=25)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--height", type=int, default=225)
    ap.add_argument("--occupancy-every", type=int, default=5, help="measure occupancy GT every N ticks")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    sim = make_simulator("embedded", SimConfig(seed=args.seed, render_depth=True,
                                               traffic=TrafficConfig(args.vehicles, args.walkers, args.seed,
                                                                     max_vehicles_per_km=None)))
    cmap = sim.load_town(args.town, args.map_dir)
    t_load = time.perf_counter() - t0
    spawns = spawn_points(cmap)
    sim.spawn_ego(spawns[len(spawns) // 2])
    sim.attach_sensors(rig_sensor_dicts(args.width, args.height) + [{"type": "sensor.speedometer", "id": "speed"}])
    sim.set_weather(carla.WeatherParameters.ClearNoon)
    tick_ms, occ_ms, phases, counts = [], [], {}, []
    for i in range(args.warmup + args.ticks):
        t = time.perf_counter()
        sim.tick()
        dt = time.perf_counter() - t
        gt = sim.ground_truth()
        sim.apply_control(lane_keep(cmap, gt))
        if i < args.warmup:
            continue
        tick_ms.append(dt * 1e3)
        for k, v in sim.timings.items():
            phases.setdefault(k, []).append(v * 1e3)
        e = gt.ego.pose
        near = [a for a in gt.actors if math.hypot(a.x - e.x, a.y - e.y) <= 100.0]
        counts.append((sum(a.category == "vehicle" for a in near), sum(a.category == "walker" for a in near)))
        if i % args.occupancy_every == 0:
            t = time.perf_counter()
            sim.occupancy()
            occ_ms.append((time.perf_counter() - t) * 1e3)
    n_lights = len(gt.traffic_lights)
    sim.close()

    med = statistics.median(tick_ms)
    print(f"town {args.town}: load {t_load:.2f} s, {args.ticks} ticks measured after {args.warmup} warm-up ticks")
    print(f"{'phase':<12}{'median ms':>10}{'p90 ms':>10}")
    for k, v in phases.items():
        print(f"{k:<12}{statistics.median(v):>10.2f}{np.percentile(v, 90):>10.2f}")
    print(f"{'tick':<12}{med:>10.2f}{np.percentile(tick_ms, 90):>10.2f}")
    print(f"{'occupancy':<12}{statistics.median(occ_ms):>10.2f}{np.percentile(occ_ms, 90):>10.2f}")
    veh = statistics.median(c[0] for c in counts)
    walk = statistics.median(c[1] for c in counts)
    print(f"within 100 m (median): {veh} vehicles, {walk} pedestrians; {n_lights} traffic-light heads")
    print(json.dumps({
        "town": args.town, "cameras": 6, "width": args.width, "height": args.height,
        "ms_per_tick_median": round(med, 2), "ms_occupancy_median": round(statistics.median(occ_ms), 2),
        "realtime_factor": round(FIXED_DELTA_SECONDS * 1e3 / med, 2),
        "vehicles_within_100m_median": veh, "walkers_within_100m_median": walk, "traffic_lights": n_lights,
        "phases_ms_median": {k: round(statistics.median(v), 2) for k, v in phases.items()},
    }))


if __name__ == "__main__":
    main()
