"""Closed-loop speed of the OccVLA agent: its run_step, the policy call and the simulator tick, and the real-time
factor (simulated seconds per wall second) of the route loop.

Drives a built-in route the way `python leaderboard/run.py --agent occvla` does (six 400x225 cameras, default
traffic and scenarios, the agent's default policy rate), through leaderboard.route_runner.run_route, for
``--max-ticks`` ticks. Prints a table and ends with one JSON line (``run_step_ms_median``, ``policy_ms_median``,
``realtime_factor``). Target on the 2-core CPU machine: realtime_factor >= 1.0.

    python benchmarks/closed_loop.py                                # checkpoints/occvla-small, route 0, 600 ticks
    python benchmarks/closed_loop.py --policy-every 2 --max-ticks 400
    python benchmarks/closed_loop.py --run-dir /runs/stage3 --routes-subset 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import yaml
from _timing import percentile, timed

from agent.occvla_agent import DEFAULT_RUN_DIR, OccVLAAgent, OccVLAAgentConfig
from leaderboard.evaluator import BUILTIN_ROUTES
from leaderboard.route_runner import RouteOptions, run_route
from sim.factory import make_simulator
from sim.protocol import SimConfig, TrafficConfig
from sim.routes import parse_routes_file
from sim.types import FIXED_DELTA_SECONDS

STEP_MS: list[float] = []
POLICY_MS: list[float] = []
TICK_MS: list[float] = []
TICK_T: list[float] = []  # perf_counter at each tick's end: the loop's wall time without route set-up


class TimedOccVLA(OccVLAAgent):
    """The OccVLA agent with its run_step and its policy calls timed."""

    def setup(self, path_to_conf_file: str) -> None:
        super().setup(path_to_conf_file)
        self.policy.predict = timed(self.policy.predict, POLICY_MS)
        self.run_step = timed(self.run_step, STEP_MS)  # as the evaluator calls it (AutonomousAgent.__call__)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR), help="an OccVLA run directory")
    ap.add_argument("--routes-subset", default="0", help="built-in route ids")
    ap.add_argument("--max-ticks", type=int, default=600, help="ticks per route (20 Hz); 600 = 30 s")
    ap.add_argument(
        "--policy-every",
        type=int,
        default=OccVLAAgentConfig.policy_every,
        help="run the model every N ticks (the agent's default)",
    )
    ap.add_argument("--torch-threads", type=int, default=OccVLAAgentConfig.torch_threads)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (Path(args.run_dir) / "model.safetensors").is_file():
        raise SystemExit(f"error: {args.run_dir} has no model.safetensors (train one: make train-small)")

    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "agent.yaml"
        conf.write_text(
            yaml.safe_dump(
                {
                    "run_dir": args.run_dir,
                    "policy_every": args.policy_every,
                    "torch_threads": args.torch_threads,
                }
            )
        )
        sim = make_simulator("embedded", SimConfig(seed=args.seed, traffic=TrafficConfig(seed=args.seed)))
        sim.tick = timed(sim.tick, TICK_MS, TICK_T)
        opts = RouteOptions(
            agent="occvla",
            agent_config=str(conf),
            seed=args.seed,
            max_ticks=args.max_ticks,
            leaderboard="2.0",
        )  # six cameras: past 1.0's four
        loop_wall = game = 0.0
        try:
            for config in parse_routes_file(BUILTIN_ROUTES, args.routes_subset):
                n0 = len(TICK_T)
                outcome = run_route(sim, TimedOccVLA, config, opts)
                ticks = len(TICK_T) - n0
                if ticks > 1:
                    loop_wall += TICK_T[-1] - TICK_T[n0]
                    game += (ticks - 1) * FIXED_DELTA_SECONDS
                rec = outcome.record
                print(
                    f"{config.route_id}: {rec['status']}, RC {rec['scores']['score_route']:.1f} % "
                    f"after {ticks} ticks"
                )
        finally:
            sim.close()
    if not STEP_MS:
        raise SystemExit("error: the agent never ran (see the route status above)")

    rows = {"agent run_step": STEP_MS, "policy predict": POLICY_MS, "simulator tick": TICK_MS}
    print(f"{'':16}{'calls':>7}{'median ms':>11}{'p90 ms':>9}{'mean ms':>9}")
    for name, v in rows.items():
        print(
            f"{name:16}{len(v):7d}{statistics.median(v):11.2f}{percentile(v, 90):9.2f}{statistics.fmean(v):9.2f}"
        )
    rtf = game / loop_wall if loop_wall else 0.0
    print(
        f"real-time factor: {rtf:.2f} simulated s per wall s (policy every {args.policy_every} ticks, "
        f"{args.torch_threads} torch thread(s))"
    )
    print(
        json.dumps(
            {
                "run_dir": args.run_dir,
                "routes": args.routes_subset,
                "seed": args.seed,
                "ticks": len(TICK_MS),
                "policy_every": args.policy_every,
                "torch_threads": args.torch_threads,
                "run_step_ms_median": round(statistics.median(STEP_MS), 2),
                "run_step_ms_p90": round(percentile(STEP_MS, 90), 2),
                "policy_ms_median": round(statistics.median(POLICY_MS), 2),
                "sim_tick_ms_median": round(statistics.median(TICK_MS), 2),
                "realtime_factor": round(rtf, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
