"""The simulator protocol both backends implement (embedded: sim/embedded, real CARLA: sim/carla).

Consumers (the leaderboard evaluator, the gymnasium env, the data collector) talk to a `Simulator`
only. One simulator instance per process (libsumo and a CARLA client are per-process); pass it
explicitly, never through a global.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import carla
import numpy as np

from sim.types import GroundTruth, Pose, StaticScene


class SimulatorError(RuntimeError):
    """A simulator failure with a one-line, user-facing message."""


class TownNotFoundError(SimulatorError):
    pass


@dataclass
class OccupancyFrame:
    """Occ3D-format occupancy around the ego: arrays indexed [x, y, z] in the ego frame (x fwd, y left)."""

    semantics: np.ndarray  # (200, 200, 16) uint8, Occ3D class ids, 17 = free
    mask_camera: np.ndarray  # (200, 200, 16) bool, seen by at least one camera
    mask_lidar: np.ndarray  # (200, 200, 16) bool, seen by the (simulated) LiDAR


class Behaviour(Protocol):
    """A scripted behaviour for a scenario actor: returns the actor's next pose and world velocity.

    Called once per tick with the actor's current pose, the ground truth of the previous tick and dt.
    """

    def step(self, pose: Pose, gt: GroundTruth | None, dt: float) -> tuple[Pose, tuple[float, float]]: ...


@dataclass
class TrafficConfig:
    """NPC traffic around the ego (SUMO-driven in the embedded backend, TrafficManager in CARLA)."""

    vehicles: int = 40
    walkers: int = 20
    seed: int = 0
    radius: float = 100.0  # keep NPCs within this distance of the ego (respawn farther ones)
    # NPC vehicles drive at most speed_limit * speed_fraction (m/s); on a map that gives lane limits (OpenDRIVE
    # lane <speed>, as the generated towns do), speed_fraction of each lane's limit. CARLA's default limit is
    # 30 km/h and its Traffic Manager drives background traffic 30 % below the limit by default
    # (global_percentage_speed_difference = 30), as in leaderboard 1.0. Leaderboard 2.0's background activity
    # sets that to 0 and asks each vehicle for the ego's speed limit: speed_fraction = 1.0 (its minimum-speed
    # criterion compares the ego with that traffic).
    speed_limit: float = 30.0 / 3.6
    speed_fraction: float = 0.7
    # `vehicles` is capped by the driving-lane length within the radius: never denser than this many vehicles
    # per km of lane (lanes between junctions, as in the SUMO network). 24.5 is CARLA's leaderboard-1.0
    # background density in Town01: 120 vehicles on its 4.89 km of such lanes. Without the cap, 40 vehicles
    # around the ego were 2.4x that density on Town01 and jammed small towns. None: no cap.
    max_vehicles_per_km: float | None = 24.5


@dataclass
class SimConfig:
    town: str = "OccTown01"
    map_dir: str | None = None
    seed: int = 0
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    render_depth: bool = False  # also render depth buffers (needed for occupancy mask_camera)
    cache_dir: str | None = None  # generated towns, SUMO nets, static scenes; None = ~/.cache/occvla-drive


class Simulator(ABC):
    """A CARLA-compatible world that ticks synchronously at FIXED_DELTA_SECONDS."""

    @abstractmethod
    def load_town(self, name: str, map_dir: str | Path | None = None) -> carla.Map:
        """Load a town by name (map_dir, then $CARLA_ROOT, then built-in towns, then generated
        `OccGen-<seed>` towns). Returns its carla.Map."""

    @property
    @abstractmethod
    def map(self) -> carla.Map: ...

    @property
    @abstractmethod
    def frame(self) -> int: ...

    @abstractmethod
    def spawn_ego(self, transform: carla.Transform) -> None:
        """Place the ego vehicle (Lincoln MKZ-sized) at a world transform, at rest."""

    @abstractmethod
    def attach_sensors(self, sensors: list[dict[str, Any]]) -> None:
        """Attach leaderboard-style sensor dicts to the ego (validated; SensorConfigError on bad input)."""

    @abstractmethod
    def set_weather(self, weather: carla.WeatherParameters) -> None: ...

    @abstractmethod
    def get_weather(self) -> carla.WeatherParameters: ...

    @abstractmethod
    def set_street_lights(self, on: bool) -> None:
        """Switch the town's street lights (CARLA's light manager, LightGroup.Street); vehicles keep theirs."""

    @abstractmethod
    def set_traffic_light_state(self, tl_id: int, state: str) -> None:
        """Force one traffic light ('Red' | 'Yellow' | 'Green' | 'Off'; id as in ground_truth().traffic_lights).
        Holds only while the lights are frozen (freeze_traffic_lights(True)); scenarios use it."""

    @abstractmethod
    def freeze_traffic_lights(self, frozen: bool) -> None:
        """Stop (True) or resume (False) every light's programme, as CARLA's world.freeze_all_traffic_lights."""

    @abstractmethod
    def spawn_actor(self, type_id: str, transform: carla.Transform, behaviour: Behaviour | None = None,
                    source: str = "scenario") -> int:
        """Spawn a scenario actor (vehicle / walker / static prop / parked vehicle); returns its id."""

    @abstractmethod
    def destroy_actor(self, actor_id: int) -> None: ...

    @abstractmethod
    def open_vehicle_door(self, actor_id: int) -> None:
        """Open a scenario vehicle's front-left door (CARLA: vehicle.open_door(VehicleDoor.FL)); the open door
        is part of the world from then on (drawn, collidable)."""

    @abstractmethod
    def apply_control(self, control: carla.VehicleControl) -> None:
        """The control used for the next tick (CARLA semantics: throttle, brake, steer, hand_brake, reverse)."""

    @abstractmethod
    def tick(self) -> dict[str, tuple[int, Any]]:
        """Advance 0.05 s; return sensor data as the leaderboard's input_data: id -> (frame, data)."""

    @abstractmethod
    def ground_truth(self) -> GroundTruth:
        """Privileged state after the last tick (events are those of the last tick)."""

    @abstractmethod
    def occupancy(self) -> OccupancyFrame:
        """Occ3D ground truth around the ego after the last tick."""

    def static_scene(self) -> StaticScene | None:
        """The static geometry (embedded backend only); None where the backend has none."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
