"""The privileged expert: a rule-based autopilot on ground truth, registered as the leaderboard agent `expert`.

It drives from the simulator's ground truth and the map (never from its cameras), so it is the upper bound of
every table and the driver of data collection. Its sensors() still declare the six nuScenes rig cameras plus
speedometer, IMU and GNSS, so a data collector records the same streams the OccVLA agent sees.

Privileged contract (leaderboard/run.py): the class attribute `privileged = True` asks the evaluator to call
`set_privileged(sim, dense_route)` after setup() and set_global_plan(), before the first run_step().
The decision logic lives in agent/expert_planner.py (the IDM law over obstacles, unstick), with the route in
agent/route_plan.py and the obstacles in agent/expert_obstacles.py (stop lines, junctions, crosswalks) and
agent/expert_actors.py (other road users, swept boxes): plain numpy on ground truth, unit-tested without a simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import carla

from agent.expert_config import ExpertConfig
from agent.expert_planner import Decision, ExpertPlanner
from agent.route_plan import RoutePlan
from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track
from sim.sensors import rig_sensor_dicts


def get_entry_point() -> str:
    return "ExpertAgent"


class ExpertAgent(AutonomousAgent):
    """Rule-based privileged autopilot: route following, IDM car following, lights, stop signs, yielding."""

    privileged = True

    def setup(self, path_to_conf_file: str | None) -> None:
        """path_to_conf_file: a YAML/JSON file of ExpertConfig overrides, or '' / None for the defaults."""
        self.track = Track.SENSORS
        self.config = ExpertConfig.from_file(path_to_conf_file or None)
        self._sim: Any = None
        self.planner: ExpertPlanner | None = None
        self.last_decision: Decision | None = None

    def sensors(self) -> list[dict[str, Any]]:
        cams = (
            rig_sensor_dicts(self.config.camera_width, self.config.camera_height)
            if self.config.cameras
            else []
        )
        return cams + [
            {"type": "sensor.speedometer", "id": "SPEED", "reading_frequency": 20},
            {
                "type": "sensor.other.imu",
                "id": "IMU",
                "x": 0.0,
                "y": 0.0,
                "z": 0.0,
                "roll": 0.0,
                "pitch": 0.0,
                "yaw": 0.0,
                "sensor_tick": 0.05,
            },
            {"type": "sensor.other.gnss", "id": "GPS", "x": 0.0, "y": 0.0, "z": 0.0},
        ]

    def set_privileged(self, sim: Any, dense_route: Sequence[tuple[carla.Transform, Any]]) -> None:
        """Ground-truth access: the simulator (sim.ground_truth(), sim.map) and the dense route with RoadOptions."""
        if not hasattr(self, "config"):
            raise RuntimeError("ExpertAgent.set_privileged called before setup()")
        self._sim = sim
        self.planner = ExpertPlanner(
            RoutePlan.from_dense_route(dense_route, sim.map, self.config), self.config
        )

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> carla.VehicleControl:
        if self.planner is None or self._sim is None:
            raise RuntimeError(
                "ExpertAgent is privileged: the evaluator must call set_privileged(sim, dense_route) "
                "before run_step (class attribute privileged = True)"
            )
        control, self.last_decision = self.planner.step(self._sim.ground_truth())
        return control

    def destroy(self) -> None:
        self._sim = None
        self.planner = None
