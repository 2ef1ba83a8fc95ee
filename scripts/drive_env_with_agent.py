#!/usr/bin/env python
"""Drive `occvla/Drive-v0` with a leaderboard agent (leaderboard/gym_adapter.py) and print its return.

python scripts/drive_env_with_agent.py --agent expert --agent-config configs/agent/expert_eval.yaml
python scripts/drive_env_with_agent.py --agent path/to/my_agent.py --town OccTown01 --episodes 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import gymnasium as gym

import sim  # noqa: F401  (registers the envs)
from leaderboard.gym_adapter import AgentPolicy


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", default="expert", help="registered agent name or agent .py file")
    p.add_argument("--agent-config", default="", help="passed to the agent's setup()")
    p.add_argument(
        "--leaderboard", choices=("1.0", "2.0"), default="2.0", help="how the agent is constructed"
    )
    p.add_argument("--town", default="OccTown02")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=4000)
    p.add_argument("--vehicles", type=int, default=10)
    p.add_argument("--walkers", type=int, default=5)
    a = p.parse_args()
    env = gym.make(
        "occvla/Drive-v0", town=a.town, vehicles=a.vehicles, walkers=a.walkers, max_steps=a.max_steps
    )
    policy = AgentPolicy(a.agent, a.agent_config, leaderboard=a.leaderboard)
    try:
        for ep in range(a.episodes):
            obs, info = policy.reset(env, seed=a.seed + ep)
            ret, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy(obs, info))
                ret += reward
                steps += 1
                done = terminated or truncated
            end = "arrived" if info["arrived"] else "collision" if terminated else "truncated"
            print(
                f"episode {ep}: return {ret:.1f} in {steps} steps ({end}, route {info['route_completion']:.0%})"
            )
    finally:
        policy.close()
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
