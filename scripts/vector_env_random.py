#!/usr/bin/env python
"""Step a vector of `occvla/Drive-v0` envs with random actions and print steps per second (trains nothing).

python scripts/vector_env_random.py --num-envs 4 --mode async --steps 200
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import sim  # noqa: F401  (registers the envs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--mode", choices=("sync", "async"), default="async", help="gymnasium vectorization_mode")
    p.add_argument("--steps", type=int, default=200, help="vector steps to time (after reset)")
    p.add_argument("--town", default="OccTown02")
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=90)
    p.add_argument("--vehicles", type=int, default=10)
    p.add_argument("--walkers", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    envs = gym.make_vec(
        "occvla/Drive-v0", num_envs=a.num_envs, vectorization_mode=a.mode, town=a.town, width=a.width,
        height=a.height, vehicles=a.vehicles, walkers=a.walkers,
    )  # fmt: skip
    try:
        t0 = time.perf_counter()
        envs.reset(seed=a.seed)
        t_reset = time.perf_counter() - t0
        envs.action_space.seed(a.seed)
        t0 = time.perf_counter()
        for _ in range(a.steps):
            envs.step(envs.action_space.sample())  # envs that end reset themselves (autoreset)
        dt = time.perf_counter() - t0
    finally:
        envs.close()
    print(
        f"{a.num_envs} envs ({a.mode}), {a.width}x{a.height} cameras: reset {t_reset:.1f} s; {a.steps} vector steps "
        f"in {dt:.1f} s = {a.steps / dt:.1f} vector steps/s, {a.steps * a.num_envs / dt:.1f} env steps/s"
    )


if __name__ == "__main__":
    main()
