"""Every registered occvla env passes gymnasium's checker; the Drive env's spaces, reward and termination."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim  # noqa: F401  (registers the envs)

OCCVLA_ENVS = sorted(k for k in gym.registry if k.startswith("occvla/"))


def test_drive_env_is_registered():
    assert "occvla/Drive-v0" in OCCVLA_ENVS


@pytest.mark.parametrize("env_id", OCCVLA_ENVS)
def test_check_env(env_id):
    """gymnasium's full checker, render check included (it builds a second env while the first is open)."""
    kw = dict(town="OccTown02", width=96, height=54, vehicles=4, walkers=2, max_steps=50)
    env = gym.make(env_id, render_mode="rgb_array", **kw)
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs(mode):
    """Four Drive envs in one process (sync: libsumo + three TraCI) or in four subprocesses (async)."""
    envs = gym.make_vec("occvla/Drive-v0", num_envs=4, vectorization_mode=mode, town="OccTown02", width=64,
                        height=36, vehicles=2, walkers=0, max_steps=30)  # fmt: skip
    try:
        obs, _ = envs.reset(seed=0)
        assert obs["images"].shape == (4, 6, 36, 64, 3) and obs["speed"].shape == (4, 1)
        for _ in range(5):
            obs, reward, terminated, truncated, _ = envs.step(np.tile([[0.6, 0.0, 0.0]], (4, 1)).astype(np.float32))
        assert reward.shape == (4,) and np.all(obs["speed"][:, 0] > 0.1)  # every env drives its own ego
        assert envs.observation_space.contains(obs)
    finally:
        envs.close()


def test_drive_env_defaults_progress_and_truncation():
    env = gym.make("occvla/Drive-v0", town="OccTown02", width=96, height=54, vehicles=0, walkers=0, max_steps=60)
    try:
        obs, info = env.reset(seed=1)
        assert obs["images"].shape == (6, 54, 96, 3) and obs["images"].dtype == np.uint8
        assert info["route_length"] > 50.0
        total, steps, truncated, terminated = 0.0, 0, False, False
        while not (truncated or terminated):
            obs, r, terminated, truncated, info = env.step(np.array([0.5, 0.0, 0.0], np.float32))
            total += r
            steps += 1
        assert steps <= 60 and (truncated or terminated)
        assert total > 5.0  # driving forward along the route earns progress
        with pytest.raises(ValueError, match="3 finite numbers"):
            env.step(np.array([np.nan, 0.0, 0.0]))
    finally:
        env.close()
