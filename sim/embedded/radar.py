"""A 'sensor.other.radar' through the occupancy label grid, with Doppler velocities from ground truth.

CARLA's radar casts `points_per_second x dt` rays inside an elliptical field of view each tick (at random, with
uniform density over the ellipse) and returns one detection per hit: its depth, azimuth, altitude and velocity
relative to the sensor along the ray (negative when the target closes in). The leaderboard's sensor interface
hands the agent an (N, 4) float32 array [depth, altitude, azimuth, velocity] (CARLA's raw [velocity, azimuth,
altitude, depth] flipped), angles in radians, azimuth positive to the right, altitude positive up.

Here the rays are a fixed sunflower pattern over the same ellipse (deterministic, the same density), cast through
the Occ3D label grid with the LiDAR's voxel traversal (sim/embedded/lidar.py). A hit inside an actor's box
carries that actor's velocity, any other hit the world's (zero); the ego's velocity is subtracted.

Limits: as the LiDAR's: returns only inside the grid (40 m each side, 5.4 m up), not CARLA's 100 m range, and
on voxel faces (0.4 m quantisation); the sensor's own velocity omits the yaw rate's lever arm.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.embedded.lidar import LidarModel

if TYPE_CHECKING:
    from sim.embedded.occupancy import OccGridSpec
    from sim.types import ActorState, EgoState

FIXED_DELTA_SECONDS = 0.05
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
BOX_TOLERANCE = 0.45  # m: hits land on voxel faces up to one voxel (0.4 m) outside an actor's box


@dataclass(frozen=True)
class RadarSpec:
    """A radar on the vehicle. mount is in the ego frame (x fwd, y left, z up), metres; angles in degrees as the
    sensor dict gives them (CARLA frame: yaw positive to the right)."""

    horizontal_fov: float = 30.0
    vertical_fov: float = 30.0
    points_per_second: int = 1500  # the leaderboard's setting
    range: float = 100.0  # metres (the leaderboard's setting); the grid's edge comes first
    mount: tuple[float, float, float] = (0.0, 0.0, 1.0)
    pitch: float = 0.0
    yaw: float = 0.0
    roll: float = 0.0

    def __post_init__(self) -> None:
        for name in ("horizontal_fov", "vertical_fov"):
            v = getattr(self, name)
            if not (0.0 < v <= 180.0):
                raise ValueError(f"radar {name} must be in (0, 180] degrees, got {v}")
        if self.points_per_second < 1 or not self.range > 0:
            raise ValueError(f"radar points_per_second ({self.points_per_second}) and range ({self.range}) must be "
                             "positive")

    @staticmethod
    def from_sensor_dict(s: dict[str, Any]) -> RadarSpec:
        """From a leaderboard 'sensor.other.radar' dict (CARLA vehicle frame: y right, so ego y = -y)."""
        return RadarSpec(
            horizontal_fov=float(s.get("horizontal_fov", 30.0)), vertical_fov=float(s.get("vertical_fov", 30.0)),
            points_per_second=int(s.get("points_per_second", 1500)), range=float(s.get("range", 100.0)),
            mount=(float(s.get("x", 0.0)), -float(s.get("y", 0.0)), float(s.get("z", 1.0))),
            pitch=float(s.get("pitch", 0.0)), yaw=float(s.get("yaw", 0.0)), roll=float(s.get("roll", 0.0)),
        )

    @property
    def n_rays(self) -> int:
        return max(1, round(self.points_per_second * FIXED_DELTA_SECONDS))

    def angles(self) -> tuple[np.ndarray, np.ndarray]:
        """Per ray: azimuth (right +) and altitude (up +) in the sensor frame, radians: a sunflower over the
        ellipse of half-axes fov / 2."""
        i = np.arange(self.n_rays)
        r = np.sqrt((i + 0.5) / self.n_rays)
        theta = i * GOLDEN_ANGLE
        return (r * math.radians(self.horizontal_fov) / 2 * np.cos(theta),
                r * math.radians(self.vertical_fov) / 2 * np.sin(theta))

    def directions(self) -> np.ndarray:
        """Unit ray directions (R, 3) in the ego frame (y left)."""
        from sim.embedded.occupancy import carla_rotation
        from sim.embedded.vec import rows_times

        az, alt = self.angles()
        d = np.stack([np.cos(alt) * np.cos(az), np.cos(alt) * np.sin(az), np.sin(alt)], -1)  # sensor, y right
        d = rows_times(d, carla_rotation(self.pitch, self.yaw, self.roll).T)  # vehicle frame, y right
        d[:, 1] *= -1.0
        return d


@functools.lru_cache(maxsize=8)
def _model(spec: RadarSpec, grid: OccGridSpec) -> LidarModel:
    return LidarModel(spec, grid)  # type: ignore[arg-type]  # the scan needs only mount and directions()


def radar_detections(semantics: np.ndarray, spec: RadarSpec, ego: EgoState, actors: list[ActorState],
                     grid: OccGridSpec | None = None) -> np.ndarray:
    """Serve 'sensor.other.radar' from a label grid and the actors: (N, 4) float32 [depth, altitude, azimuth,
    velocity], as the leaderboard hands it to agents."""
    from sim.embedded.occupancy import OCC3D_GRID, ego_to_world

    model = _model(spec, grid or OCC3D_GRID)
    scan = model.scan(semantics)
    keep = scan.distance <= spec.range
    ray, depth, pts_ego = scan.ray[keep], scan.distance[keep], scan.points_ego[keep]
    az, alt = (a[ray] for a in spec.angles())
    dirs = model.dirs[ray]  # (N, 3) ego frame
    c, s = math.cos(math.radians(ego.pose.yaw)), math.sin(math.radians(ego.pose.yaw))
    dirs_w = np.stack([dirs[:, 0] * c + dirs[:, 1] * s, dirs[:, 0] * s - dirs[:, 1] * c], -1)  # (N, 2) world xy
    target_v = _hit_velocities(ego_to_world(pts_ego, ego.pose), actors)  # (N, 2)
    rel = target_v - np.array([ego.vx, ego.vy])
    out = np.empty((len(ray), 4), np.float32)
    out[:, 0], out[:, 1], out[:, 2] = depth, alt, az
    out[:, 3] = np.sum(rel * dirs_w, axis=1)
    return out


def _hit_velocities(points_w: np.ndarray, actors: list[ActorState]) -> np.ndarray:
    """World-frame (vx, vy) of the actor whose box (grown by BOX_TOLERANCE) holds each hit point; 0 elsewhere."""
    v = np.zeros((len(points_w), 2))
    if not len(points_w) or not actors:
        return v
    best = np.full(len(points_w), np.inf)
    for a in actors:
        yaw = math.radians(a.yaw)
        dx, dy = points_w[:, 0] - a.x, points_w[:, 1] - a.y
        lx, ly = dx * math.cos(yaw) + dy * math.sin(yaw), -dx * math.sin(yaw) + dy * math.cos(yaw)
        lz = points_w[:, 2] - (a.z + a.extent[2])
        ex, ey, ez = (e + BOX_TOLERANCE for e in a.extent)
        inside = (np.abs(lx) <= ex) & (np.abs(ly) <= ey) & (np.abs(lz) <= ez)
        closer = inside & (np.hypot(lx, ly) < best)
        best[closer] = np.hypot(lx, ly)[closer]
        v[closer] = (a.vx, a.vy)
    return v
