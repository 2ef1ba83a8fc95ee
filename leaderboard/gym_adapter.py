"""Any leaderboard agent acting in the gymnasium env `occvla/Drive-v0`.

RL or fine-tuning code written for gymnasium can start from a trained leaderboard agent (OccVLA, the expert, a
third-party agent file): `AgentPolicy.reset(env)` builds the agent and starts an episode with the agent's sensors
attached; `policy(obs, info)` turns the env's observation into the agent's `input_data`, calls the agent as the
evaluator would and turns its carla.VehicleControl into the env's action `[throttle, steer, brake]`.

    policy = AgentPolicy("expert", "configs/agent/expert_eval.yaml")
    obs, info = policy.reset(env, seed=0)
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs, info))

The agent is set up as leaderboard 1.0 orders it (setup(), then the plan), because the episode's route exists only
once env.reset() ran, and reset needs the agent's sensors; constructed as 2.x does (`Agent(host, port, debug)`)
unless `leaderboard="1.0"`. Privileged agents get `set_privileged(simulator, dense_route)`. GameTime and the
CarlaDataProvider helpers are served from the env's simulator (leaderboard/carla_helpers). `reverse` and
`hand_brake` of the control have no counterpart in the env's action and are dropped.
"""

from __future__ import annotations

from typing import Any

import carla
import numpy as np

from leaderboard import carla_helpers
from leaderboard.autoagents.agent_wrapper import validate_sensor_configuration
from leaderboard.registry import load_agent_class
from leaderboard.rules import construct_agent, get_rules
from sim.types import FIXED_DELTA_SECONDS


def control_to_action(control: carla.VehicleControl) -> np.ndarray:
    """carla.VehicleControl -> the Drive env's action (3,) float32 [throttle, steer, brake], clipped to its box."""
    a = np.array([control.throttle, control.steer, control.brake], np.float32)
    return np.clip(a, [0.0, -1.0, 0.0], [1.0, 1.0, 1.0]).astype(np.float32)


class AgentPolicy:
    """A leaderboard agent (registered name or agent file) as a policy of `occvla/Drive-v0`."""

    def __init__(
        self,
        agent: str,
        agent_config: str = "",
        track: str = "SENSORS",
        leaderboard: str = "2.0",
        debug: int = 0,
    ) -> None:
        carla_helpers.install()
        self.agent_class = load_agent_class(agent)
        self.agent_config = agent_config
        self.track = track
        self.rules = get_rules(leaderboard)
        self.debug = debug
        self.agent: Any = None
        self._helpers: carla_helpers.RouteHelpers | None = None
        self._game_time = 0.0
        self._frame = 0

    def reset(self, env: Any, seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Build and set up a fresh agent, reset `env` with its sensors, give it the episode's route."""
        self.close()
        agent = construct_agent(
            self.agent_class, self.rules, self.agent_config, "localhost", 2000, self.debug
        )
        if self.rules.version != "1.0":
            agent.setup(self.agent_config)
        sensors = agent.sensors()
        limits = self.rules.sensor_limits if self.rules.version == "1.0" else None
        validate_sensor_configuration(sensors, agent.track, self.track, limits)
        obs, info = env.reset(seed=seed, options={"sensors": sensors})
        u = env.unwrapped
        agent.set_global_plan(u.gps_route, u.dense_route)
        for s in sensors:
            agent.sensor_interface.register_sensor(s["id"], s["type"])
        self._helpers = carla_helpers.RouteHelpers(u.simulator, u.dense_route, seed or 0)
        if getattr(agent, "privileged", False) and hasattr(agent, "set_privileged"):
            agent.set_privileged(u.simulator, u.dense_route)
        self.agent = agent
        self._game_time = 0.0
        return obs, info

    def input_data(self, obs: dict[str, Any], info: dict[str, Any]) -> dict[str, tuple[int, Any]]:
        """The agent's `input_data` of this step: its sensors' readings the env returned in `info`."""
        data = dict(info.get("input_data") or {})
        if not data:
            raise RuntimeError("no sensor data in info: reset the env through AgentPolicy.reset(env)")
        return data

    def __call__(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        """The agent's action for this observation."""
        if self.agent is None:
            raise RuntimeError("call AgentPolicy.reset(env) first")
        data = self.input_data(obs, info)
        frame = max(f for f, _ in data.values())
        self._game_time += FIXED_DELTA_SECONDS
        self._helpers.tick(frame, self._game_time)
        self.agent.sensor_interface.update_all(data, frame, self._game_time)
        return control_to_action(self.agent())

    def close(self) -> None:
        """Destroy the agent (also done by the next reset)."""
        if self.agent is not None:
            self.agent.destroy()
            self.agent = None
        if self._helpers is not None:
            self._helpers.release()
            self._helpers = None
