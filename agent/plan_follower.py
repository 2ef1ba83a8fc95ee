"""A diagnostic agent: the expert's own 3 s plan, driven through the OccVLA agent's control path.

Is a learned agent's failure the model's or the control's? This agent answers it: every ``policy_every`` ticks it
takes the trajectory the expert would plan from the current state (``agent.collector.expert_plan``: the same six
ego-frame waypoints the datasets label), exactly where OccVLA takes the model's; in between it follows that
trajectory dead-reckoned (agent/ego_motion.py), and ``WaypointController`` turns it into controls. So it drives
what a perfect planning head would, at OccVLA's rate, with OccVLA's controller: its driving score is the ceiling the
control path leaves to the model (README, "OccVLA-small").

Privileged (it reads the simulator's ground truth, as the expert does); no cameras are rendered.

    python leaderboard/run.py --agent plan-follower [--agent-config FILE]

``--agent-config``: the expert's YAML overrides (agent/expert_config.py) plus ``policy_every`` (default: OccVLA's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import carla
import numpy as np
import yaml

from agent.collector import expert_plan
from agent.controllers import WaypointController
from agent.ego_motion import EgoMotion
from agent.expert import ExpertAgent
from agent.expert_config import ExpertConfig
from agent.occvla_agent import SENSOR_TICK, OccVLAAgentConfig


def get_entry_point() -> str:
    return "PlanFollowerAgent"


class PlanFollowerAgent(ExpertAgent):
    """The expert's plan every ``policy_every`` ticks, followed as OccVLA follows its model's trajectory."""

    def setup(self, path_to_conf_file: str | None) -> None:
        data: dict[str, Any] = {}
        if path_to_conf_file:
            path = Path(path_to_conf_file)
            if not path.is_file():
                raise FileNotFoundError(f"plan-follower config file not found: {path}")
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ValueError(f"{path}: not valid YAML ({type(exc).__name__})") from None
            if not isinstance(data, dict):
                raise ValueError(f"{path_to_conf_file}: expected a mapping of settings")
        self.policy_every = int(data.pop("policy_every", OccVLAAgentConfig().policy_every))
        if self.policy_every < 1:
            raise ValueError(f"policy_every must be >= 1, got {self.policy_every}")
        super().setup(None)
        self.config = ExpertConfig.from_dict({**data, "cameras": False})  # one line on an unknown key
        self.controller = WaypointController()
        self.motion = EgoMotion()
        self.step_count = 0
        self.last_steer = 0.0
        self.last_timestamp: float | None = None
        self.plan = np.zeros((6, 2), np.float32)  # the expert's waypoints at the last call (ego frame then)

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> carla.VehicleControl:
        if self.planner is None or self._sim is None:
            raise RuntimeError("PlanFollowerAgent is privileged: set_privileged must be called before run_step")
        gt = self._sim.ground_truth()
        self.planner.step(gt)  # keeps the expert's memory (light states seen, lane-change progress) in step
        speed = float(input_data["SPEED"][1]["speed"])
        dt = SENSOR_TICK if self.last_timestamp is None else max(0.0, timestamp - self.last_timestamp)
        self.last_timestamp = timestamp
        self.motion.advance(speed, self.last_steer, dt)
        if self.step_count % self.policy_every == 0:
            self.plan, self.last_decision = expert_plan(self.planner, gt, self.config)
            self.motion.reset()
        self.step_count += 1
        control = self.controller.step(self.motion.follow_trajectory(self.plan), speed)
        self.last_steer = float(control.steer)
        return control
