"""Data-collection throughput: key frames written per second (six 400x225 cameras, every label written).

    python benchmarks/collect_rate.py [--workers 2] [--episodes 4] [--ticks 200]

Runs the `tiny` plan (the expert on the built-in town, light traffic) at the dataset's default camera size, into a
temporary folder, once with one worker and, with --workers N > 1, again over N Ray workers. Prints one JSON line
per run and ends with one JSON line holding `keyframes_per_s` (one worker) and `keyframes_per_s_workers`.
The time counts what a user waits for: simulator and town set-up, driving, rendering, labelling and writing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leaderboard.collect import collect, load_plan  # noqa: E402


def run(workers: int, episodes: int, ticks: int) -> dict:
    plan = load_plan("tiny", [f"routes_per_town={episodes}", f"max_ticks={ticks}", "width=400", "height=225"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        card = collect(plan, str(Path(tmp) / "ds"), workers=workers, progress=False)
        wall = time.perf_counter() - t0
    n = card["counts"]["samples"]
    return {
        "workers": workers,
        "episodes": card["counts"]["scenes"],
        "keyframes": n,
        "seconds": round(wall, 2),
        "keyframes_per_s": round(n / wall, 3),
        "mb_per_keyframe": round(card["size_bytes"] / 1e6 / max(n, 1), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="also run over this many Ray workers (1: skip)")
    ap.add_argument("--episodes", type=int, default=4, help="routes of the built-in town")
    ap.add_argument("--ticks", type=int, default=200, help="ticks per episode (20 key frames per 200)")
    args = ap.parse_args()
    one = run(1, args.episodes, args.ticks)
    print(json.dumps(one), flush=True)
    summary = {"keyframes_per_s": one["keyframes_per_s"]}
    if args.workers > 1:
        many = run(args.workers, args.episodes, args.ticks)
        print(json.dumps(many), flush=True)
        summary["keyframes_per_s_workers"] = many["keyframes_per_s"]
        summary["workers"] = args.workers
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
