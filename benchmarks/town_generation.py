"""Generation time of OccGen-<seed> towns: .xodr, SUMO network and static scene, uncached and cached.

Each seed is built twice in a fresh cache folder (deleted afterwards): the first pass writes the .xodr
(generator + writer), parses it in carla.Map, converts the SUMO network (netconvert) and builds the static scene;
the second pass reads all three from the cache. Prints a table and ends with one JSON line.

    python benchmarks/town_generation.py [--seeds 0 1 2 ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sim.embedded.cache import cached_static_scene
from sim.embedded.maps import load_town
from sim.embedded.sumo_net import convert_network
from sim.embedded.towns.occgen import features, occgen_spec


def build(seed: int, cache: Path) -> dict[str, float]:
    """Seconds per phase of loading one generated town the way the embedded simulator does."""
    t0 = time.perf_counter()
    town = load_town(f"OccGen-{seed}", cache_dir=cache)
    t1 = time.perf_counter()
    convert_network(town.xodr_path, cache / "sumo")
    t2 = time.perf_counter()
    cached_static_scene(town, 0, cache)
    t3 = time.perf_counter()
    return {"xodr": t1 - t0, "sumo": t2 - t1, "scene": t3 - t2, "total": t3 - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    args = ap.parse_args(argv)
    rows = []
    root = Path(tempfile.mkdtemp(prefix="occgen-bench-"))
    try:
        for seed in args.seeds:
            cache = root / str(seed)
            cold, warm = build(seed, cache), build(seed, cache)
            f = features(occgen_spec(seed))
            rows.append((seed, cold, warm, f))
            print(
                f"OccGen-{seed:<3d} uncached: xodr {cold['xodr']:.2f} s, SUMO {cold['sumo']:.2f} s, scene "
                f"{cold['scene']:.2f} s = {cold['total']:.2f} s | cached {warm['total']:.2f} s | "
                f"{f['lanes3_edges']} three-lane roads, {f['signalised_4way'] + f['signalised_t']} lit junctions"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {
        "towns": len(rows),
        "uncached_median_s": round(statistics.median(r[1]["total"] for r in rows), 3),
        "uncached_max_s": round(max(r[1]["total"] for r in rows), 3),
        "cached_median_s": round(statistics.median(r[2]["total"] for r in rows), 3),
        "cached_max_s": round(max(r[2]["total"] for r in rows), 3),
        "xodr_median_s": round(statistics.median(r[1]["xodr"] for r in rows), 3),
        "sumo_median_s": round(statistics.median(r[1]["sumo"] for r in rows), 3),
        "scene_median_s": round(statistics.median(r[1]["scene"] for r in rows), 3),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
