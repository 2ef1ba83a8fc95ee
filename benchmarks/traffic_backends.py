"""NPC traffic through in-process libsumo (the first simulator of a process) vs a SUMO subprocess over TraCI
(every further one: libsumo allows one simulation per process).

Builds two embedded simulators in this process on the same town and seed, no cameras, the ego standing, and
times `tick()` (which steps SUMO and reads every NPC pose and light state). Prints one JSON line.

    python benchmarks/traffic_backends.py [--town OccTown01] [--vehicles 40] [--walkers 20] [--ticks 400]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from sim.embedded.maps import spawn_points
from sim.factory import make_simulator
from sim.protocol import SimConfig, TrafficConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--town", default="OccTown01")
    p.add_argument("--map-dir", default=None)
    p.add_argument("--vehicles", type=int, default=40)
    p.add_argument("--walkers", type=int, default=20)
    p.add_argument("--ticks", type=int, default=400)
    a = p.parse_args()
    sims = []
    for _ in range(2):
        cfg = SimConfig(seed=0, traffic=TrafficConfig(vehicles=a.vehicles, walkers=a.walkers, seed=0))
        s = make_simulator("embedded", cfg)
        cmap = s.load_town(a.town, a.map_dir)
        s.spawn_ego(spawn_points(cmap)[0])
        sims.append(s)
    out = {}
    try:
        for s in sims:
            times = []
            for _ in range(a.ticks):
                t0 = time.perf_counter()
                s.tick()
                times.append(time.perf_counter() - t0)
            backend = s._traffic.backend  # noqa: SLF001 - which SUMO API this simulator got
            out[f"{backend}_ms_per_tick"] = round(1000 * statistics.median(times), 3)
            out[f"{backend}_actors"] = len(s.ground_truth().actors)
    finally:
        for s in sims:
            s.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
