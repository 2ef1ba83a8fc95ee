"""Closed-loop evaluation speed with the privileged expert: planner time and simulator time per tick.

Drives built-in routes the way `leaderboard/run.py --agent expert --agent-config configs/agent/expert_eval.yaml`
does (cameras off, default traffic), through leaderboard.route_runner.run_route, and times the expert's run_step
and the simulator's tick apart. Prints a table and ends with one JSON line.

    python benchmarks/expert_step.py                         # built-in routes 0 and 4, seed 0
    python benchmarks/expert_step.py --routes-subset 6 --seed 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _timing import percentile, timed

from agent.expert import ExpertAgent
from leaderboard.evaluator import BUILTIN_ROUTES
from leaderboard.route_runner import RouteOptions, run_route
from sim.factory import make_simulator
from sim.protocol import SimConfig, TrafficConfig
from sim.routes import parse_routes_file
from sim.types import FIXED_DELTA_SECONDS

EVAL_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "agent" / "expert_eval.yaml"
STEP_MS: list[float] = []
TICK_MS: list[float] = []


class TimedExpert(ExpertAgent):
    """The expert, its run_step timed (planner + controllers, as the evaluator calls it)."""

    def setup(self, path_to_conf_file: str | None) -> None:
        super().setup(path_to_conf_file)
        self.run_step = timed(self.run_step, STEP_MS)  # as the evaluator calls it (AutonomousAgent.__call__)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes-subset", default="0,4", help="built-in route ids ('0-7' for all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    sim = make_simulator("embedded", SimConfig(seed=args.seed, traffic=TrafficConfig(seed=args.seed)))
    sim.tick = timed(sim.tick, TICK_MS)
    opts = RouteOptions(agent="expert", agent_config=str(EVAL_CONFIG), seed=args.seed)
    wall = game = 0.0
    try:
        for config in parse_routes_file(BUILTIN_ROUTES, args.routes_subset):
            t0 = time.perf_counter()
            n0 = len(TICK_MS)
            outcome = run_route(sim, TimedExpert, config, opts)
            wall += time.perf_counter() - t0
            game += (len(TICK_MS) - n0) * FIXED_DELTA_SECONDS
            print(
                f"{config.route_id}: {outcome.record['status']}, DS {outcome.record['scores']['score_composed']:.2f}, "
                f"{len(TICK_MS) - n0} ticks"
            )
    finally:
        sim.close()

    rows = {"expert run_step": STEP_MS, "simulator tick": TICK_MS}
    print(f"{'':18}{'median ms':>10}{'p90 ms':>10}{'mean ms':>10}")
    for name, v in rows.items():
        print(f"{name:18}{statistics.median(v):10.2f}{percentile(v, 90):10.2f}{statistics.fmean(v):10.2f}")
    print(f"game seconds per wall second: {game / wall:.2f} (route set-up included)")
    print(
        json.dumps(
            {
                "routes": args.routes_subset,
                "seed": args.seed,
                "ticks": len(TICK_MS),
                "expert_step_ms_median": round(statistics.median(STEP_MS), 2),
                "expert_step_ms_p90": round(percentile(STEP_MS, 90), 2),
                "sim_tick_ms_median": round(statistics.median(TICK_MS), 2),
                "game_s_per_wall_s": round(game / wall, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
