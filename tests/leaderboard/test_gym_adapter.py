"""A leaderboard agent acts in the gymnasium env through the adapter."""

from __future__ import annotations

import carla
import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the envs)
from leaderboard.gym_adapter import AgentPolicy, control_to_action


def test_the_expert_drives_an_env_episode_to_the_routes_end():
    env = gym.make(
        "occvla/Drive-v0", town="OccTown02", width=64, height=36, vehicles=4, walkers=2, max_steps=3000
    )
    policy = AgentPolicy("expert", "configs/agent/expert_eval.yaml")
    try:
        obs, info = policy.reset(env, seed=0)
        assert set(info["input_data"]) == {
            "SPEED",
            "IMU",
            "GPS",
        }  # the agent's own sensors, leaderboard format
        total, done = 0.0, False
        while not done:
            action = policy(obs, info)
            assert env.action_space.contains(action)
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            done = terminated or truncated
        assert info["arrived"] and not truncated and "collision" not in info["events"]
        assert total > 0.9 * env.unwrapped._route_length()  # progress reward of (nearly) the whole route
    finally:
        policy.close()
        env.close()


def test_control_to_action_and_sensor_clashes():
    a = control_to_action(carla.VehicleControl(throttle=0.3, steer=-0.2, brake=0.0, reverse=True))
    assert a.dtype == np.float32 and a.tolist() == pytest.approx([0.3, -0.2, 0.0])
    env = gym.make("occvla/Drive-v0", town="OccTown02", width=64, height=36, vehicles=0, walkers=0)
    try:
        cam = {"type": "sensor.camera.rgb", "id": "CAM_FRONT", "x": 0.8, "y": 0.0, "z": 1.6, "roll": 0.0,
               "pitch": 0.0, "yaw": 0.0, "width": 800, "height": 450, "fov": 70}  # fmt: skip
        with pytest.raises(ValueError, match="sensor 'CAM_FRONT' clashes with the env's own"):
            env.reset(seed=0, options={"sensors": [cam]})
    finally:
        env.close()
