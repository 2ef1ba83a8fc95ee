"""The agent base class of the CARLA leaderboard, at the same module path and with the same contract.

An agent file written for CARLA's leaderboard (a module-level `get_entry_point()` naming a subclass of
`AutonomousAgent`) runs unchanged under our evaluator, and ours run under CARLA's. Under 2.x rules the evaluator
drives it as leaderboard 2.x does:

    agent = AgentClass(host, port, debug)           # constructor: (carla_host, carla_port, debug=0)
    agent.set_global_plan(gps_route, world_route)   # dense plans; stored downsampled every 200 m
    agent.setup(path_to_conf_file)
    agent.sensors()                                 # validated, then attached to the ego
    control = agent()                               # every tick: reads sensor_interface, calls run_step
    agent.destroy()

Under 1.0 rules (`--leaderboard 1.0`, the default for 1.0 route files) as leaderboard 1.0 does:
`agent = AgentClass(path_to_conf_file)` (the base __init__ calls setup(), so 1.0 agents overriding __init__ work),
then set_global_plan() after set-up, the plan downsampled every 50 m. The base class tells the two apart by the
call: one positional argument is 1.0's constructor, (host, port[, debug]) is 2.x's.

Privileged agents (class attribute `privileged = True`, e.g. the expert) are also given the simulator and the
dense route through `set_privileged(sim, dense_route)` after setup(); sensor-only agents never see either.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

import carla

from leaderboard.envs.sensor_interface import SensorInterface
from sim.route_planner import downsample_route

PLAN_SAMPLE_DISTANCE = 200.0  # metres between kept plan points (leaderboard 2.x)
PLAN_SAMPLE_DISTANCE_1_0 = 50.0  # leaderboard 1.0


class Track(Enum):
    """Leaderboard tracks: SENSORS (cameras, LiDAR, radar, GNSS, IMU, speedometer) and MAP (+ OpenDRIVE map)."""

    SENSORS = "SENSORS"
    MAP = "MAP"
    SENSORS_QUALIFIER = "SENSORS_QUALIFIER"
    MAP_QUALIFIER = "MAP_QUALIFIER"


class AutonomousAgent:
    """Base class of every leaderboard agent. Override setup(), sensors(), run_step() and destroy()."""

    privileged: bool = False  # our extension: True gives set_privileged(sim, dense_route) before the route

    def __init__(
        self, carla_host: str | None = None, carla_port: int | None = None, debug: bool | int = False
    ) -> None:
        """2.x: (carla_host, carla_port, debug). 1.0: (path_to_conf_file), which runs setup() here."""
        self.track = Track.SENSORS
        self._global_plan: list[tuple[dict[str, float], Any]] | None = None  # GPS plan, downsampled
        self._global_plan_world_coord: list[tuple[carla.Transform, Any]] | None = (
            None  # world plan, downsampled
        )
        self.sensor_interface = SensorInterface()
        self.wallclock_t0: float | None = None
        self.debug = debug
        # leaderboard 1.0's constructor: AutonomousAgent(path_to_conf_file) sets the agent up right away
        self.leaderboard_1_0 = carla_port is None and isinstance(carla_host, str)
        self._plan_sample_distance = PLAN_SAMPLE_DISTANCE_1_0 if self.leaderboard_1_0 else PLAN_SAMPLE_DISTANCE
        if self.leaderboard_1_0:
            self.setup(carla_host)

    def setup(self, path_to_conf_file: str) -> None:
        """Initialise the agent (load models, read the config); set `self.track` here."""

    def sensors(self) -> list[dict[str, Any]]:
        """The sensor suite: dicts with type, id, x, y, z, roll, pitch, yaw (+ width, height, fov for cameras)."""
        return []

    def run_step(self, input_data: dict[str, tuple[int, Any]], timestamp: float) -> carla.VehicleControl:
        """One step of driving: {sensor id: (frame, data)} and the game time in seconds -> a control."""
        control = carla.VehicleControl()
        control.steer = 0.0
        control.throttle = 0.0
        control.brake = 0.0
        control.hand_brake = False
        return control

    def destroy(self) -> None:
        """Release everything the agent holds (called after every route)."""

    def __call__(self) -> carla.VehicleControl:
        """Read this tick's sensor data and return the agent's control."""
        input_data = self.sensor_interface.get_data(self.sensor_interface.frame)
        timestamp = self.sensor_interface.timestamp
        if not self.wallclock_t0:
            self.wallclock_t0 = time.time()
        if self.debug:
            wall = time.time() - self.wallclock_t0
            ratio = 0.0 if wall == 0 else timestamp / wall
            print(
                f"=== [Agent] -- System time = {wall:.3f} -- Game time = {timestamp:.3f} -- Ratio = {ratio:.3f}x"
            )
        control = self.run_step(input_data, timestamp)
        control.manual_gear_shift = False
        return control

    @staticmethod
    def get_ros_version() -> int:
        return -1

    def set_global_plan(
        self,
        global_plan_gps: list[tuple[dict[str, float], Any]],
        global_plan_world_coord: list[tuple[carla.Transform, Any]],
    ) -> None:
        """Store the route, downsampled as the leaderboard does (turns, lane changes, every 200 m (1.0: 50 m),
        the end)."""
        ds_ids = downsample_route(
            global_plan_world_coord, getattr(self, "_plan_sample_distance", PLAN_SAMPLE_DISTANCE)
        )
        self._global_plan_world_coord = [
            (global_plan_world_coord[i][0], global_plan_world_coord[i][1]) for i in ds_ids
        ]
        self._global_plan = [global_plan_gps[i] for i in ds_ids]
