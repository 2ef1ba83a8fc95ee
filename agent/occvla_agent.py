"""The OccVLA leaderboard agent: six cameras + speed + route command -> OccVLA -> 3 s trajectory -> PID control.

A sensor-only agent (it never reads ground truth): it localises on the route with GNSS + the IMU compass, picks
the navigation command of the route ahead, asks the policy for a meta-action and six ego-frame waypoints, and
tracks them with the shared PID controllers. The occupancy branch is never run at inference.

    python leaderboard/run.py --agent occvla --agent-config checkpoints/occvla-small
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import carla
import cv2
import numpy as np
import yaml

from agent.controllers import WaypointController
from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track
from sim.geo import gnss_to_location
from sim.sensors import CAMERA_ORDER, rig_sensor_dicts

ROUTE_SEARCH_WINDOW = 10  # route points ahead searched for the nearest one
DEFAULT_RUN_DIR = Path(__file__).resolve().parents[1] / "checkpoints" / "occvla-small"


def get_entry_point() -> str:
    return "OccVLAAgent"


@dataclass
class OccVLAAgentConfig:
    """What `--agent-config` sets: a run directory, or a YAML file with these keys."""

    run_dir: str = str(DEFAULT_RUN_DIR)
    camera_width: int = 400  # rendered size; images are resized to the model's square input
    camera_height: int = 225
    policy_every: int = 1  # run the model every N ticks; in between, the last trajectory is re-used
    reached_distance: float = 7.0  # metres: a route point within this counts as passed
    # The simulator renders beside the model on the same cores; two OpenMP threads then spin against it.
    torch_threads: int = 1


class RouteCommands:
    """Which RoadOption the route asks for next, from the GPS plan and the GNSS position (as TransFuser does)."""

    def __init__(self, gps_plan: list[tuple[dict[str, float], Any]], reached_distance: float) -> None:
        self.lat0, self.lon0 = gps_plan[0][0]["lat"], gps_plan[0][0]["lon"]
        self.points = np.array([self.to_local(p["lat"], p["lon"]) for p, _ in gps_plan])  # (P, 2) local metres
        self.options = [int(getattr(o, "value", o)) for _, o in gps_plan]
        self.reached = reached_distance
        self.index = 0

    def to_local(self, lat: float, lon: float) -> tuple[float, float]:
        x, y, _ = gnss_to_location(lat, lon, 0.0, self.lat0, self.lon0)
        return x, y

    def command(self, lat: float, lon: float) -> int:
        pos = np.array(self.to_local(lat, lon))
        window = self.points[self.index:self.index + ROUTE_SEARCH_WINDOW]  # (<=W, 2); the route never goes back
        d = np.hypot(window[:, 0] - pos[0], window[:, 1] - pos[1])
        self.index += int(np.argmin(d))
        if d.min() < self.reached and self.index < len(self.points) - 1:
            self.index += 1  # close to a route point: the next one is where we are heading
        opt = self.options[min(self.index, len(self.options) - 1)]
        return 4 if opt == -1 else opt  # VOID -> LANEFOLLOW


class OccVLAAgent(AutonomousAgent):
    def setup(self, path_to_conf_file: str) -> None:
        import torch

        from occvla.policy import OccVLAPolicy

        self.track = Track.SENSORS
        self.cfg = self.preflight(path_to_conf_file)
        torch.set_num_threads(max(1, self.cfg.torch_threads))
        self.policy = OccVLAPolicy.from_run_dir(Path(self.cfg.run_dir))
        self.image_size = self.policy.processor.image_size
        self.controller = WaypointController()
        self.route: RouteCommands | None = None
        self.step_count = 0
        self.last_waypoints = np.zeros((6, 2), np.float32)
        self.last_meta_action = ""
        self.fault_count = 0

    @classmethod
    def preflight(cls, path_to_conf_file: str) -> OccVLAAgentConfig:
        """The config, checked without loading the model: the evaluator calls this once before any route (a
        missing checkpoint would fail every route the same way). Raises FileNotFoundError / ValueError."""
        cfg = cls._read_config(path_to_conf_file)
        run_dir = Path(cfg.run_dir)
        if not (run_dir / "model.safetensors").is_file():
            raise FileNotFoundError(f"OccVLA run directory '{run_dir}' has no model.safetensors "
                                    "(train one with occvla-train or pass --agent-config RUN_DIR)")
        return cfg

    @staticmethod
    def _read_config(path: str) -> OccVLAAgentConfig:
        if not path:
            return OccVLAAgentConfig()
        p = Path(path)
        if p.is_dir():
            return OccVLAAgentConfig(run_dir=str(p))
        if p.suffix in (".yaml", ".yml") and p.is_file():
            data = yaml.safe_load(p.read_text()) or {}
            unknown = set(data) - set(OccVLAAgentConfig.__dataclass_fields__)
            if unknown:
                raise ValueError(f"{p}: unknown OccVLA agent config keys {sorted(unknown)}")
            return OccVLAAgentConfig(**data)
        raise FileNotFoundError(f"OccVLA agent config '{path}' is neither a run directory nor a YAML file")

    def sensors(self) -> list[dict[str, Any]]:
        cfg = getattr(self, "cfg", OccVLAAgentConfig())
        return rig_sensor_dicts(cfg.camera_width, cfg.camera_height) + [
            {"type": "sensor.speedometer", "id": "SPEED", "reading_frequency": 20},
            {"type": "sensor.other.imu", "id": "IMU", "x": 0.0, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0,
             "yaw": 0.0, "sensor_tick": 0.05},
            {"type": "sensor.other.gnss", "id": "GPS", "x": 0.0, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0,
             "yaw": 0.0, "sensor_tick": 0.05},
        ]

    def model_inputs(self, input_data: dict[str, tuple[int, Any]]) -> tuple[np.ndarray, float, int]:
        """Sensor data -> (images (6, S, S, 3) uint8 RGB in camera order, speed m/s, RoadOption command)."""
        s = self.image_size
        images = np.stack([cv2.resize(np.ascontiguousarray(input_data[c][1][:, :, 2::-1]), (s, s),
                                      interpolation=cv2.INTER_AREA) for c in CAMERA_ORDER])  # (6, S, S, 3)
        speed = float(input_data["SPEED"][1]["speed"])
        lat, lon = float(input_data["GPS"][1][0]), float(input_data["GPS"][1][1])
        if self.route is None:
            self.route = RouteCommands(self._global_plan, self.cfg.reached_distance)
        return images, speed, self.route.command(lat, lon)

    def run_step(self, input_data: dict[str, tuple[int, Any]], timestamp: float) -> carla.VehicleControl:
        images, speed, command = self.model_inputs(input_data)
        if not math.isfinite(speed) or not np.isfinite(input_data["GPS"][1][:2]).all():
            self.fault_count += 1  # a faulty sensor: stop safely rather than drive blind
            return carla.VehicleControl(brake=1.0)
        if self.step_count % max(1, self.cfg.policy_every) == 0:
            out = self.policy.predict(images, speed, command)
            self.last_waypoints, self.last_meta_action = out.waypoints, out.meta_action
        self.step_count += 1
        return self.controller.step(self.last_waypoints, speed)

    def destroy(self) -> None:
        self.policy = None
