"""Leaderboard-style sensor dicts: the nuScenes camera rig, parsing and validation.

A sensor dict is what `AutonomousAgent.sensors()` returns in the CARLA leaderboard:
{'type': 'sensor.camera.rgb', 'id': 'CAM_FRONT', 'x': 0.8, 'y': 0.0, 'z': 1.6, 'roll': 0, 'pitch': 0,
 'yaw': 0, 'width': 400, 'height': 225, 'fov': 70}. Positions are relative to the vehicle origin in
CARLA's frame (x forward, y right, z up), angles in degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CAMERA_TYPES = ("sensor.camera.rgb", "sensor.camera.depth", "sensor.camera.semantic_segmentation")
OTHER_TYPES = (
    "sensor.speedometer",
    "sensor.other.imu",
    "sensor.other.gnss",
    "sensor.lidar.ray_cast",
    "sensor.other.radar",
    "sensor.opendrive_map",
)
KNOWN_TYPES = CAMERA_TYPES + OTHER_TYPES
MAX_RGB_CAMERAS = 8
MAX_SENSOR_DISTANCE = 3.0  # metres from the vehicle origin, as the CARLA leaderboard enforces

DEFAULT_WIDTH, DEFAULT_HEIGHT = 400, 225  # 16:9 like nuScenes' 1600x900

# nuScenes rig in CARLA vehicle coordinates (as Bench2Drive collects it): id -> (x, y, z, yaw, fov)
NUSCENES_RIG: dict[str, tuple[float, float, float, float, float]] = {
    "CAM_FRONT": (0.80, 0.0, 1.60, 0.0, 70.0),
    "CAM_FRONT_LEFT": (0.27, -0.55, 1.60, -55.0, 70.0),
    "CAM_FRONT_RIGHT": (0.27, 0.55, 1.60, 55.0, 70.0),
    "CAM_BACK": (-2.0, 0.0, 1.60, 180.0, 110.0),
    "CAM_BACK_LEFT": (-0.32, -0.55, 1.60, -110.0, 70.0),
    "CAM_BACK_RIGHT": (-0.32, 0.55, 1.60, 110.0, 70.0),
}
CAMERA_ORDER = tuple(NUSCENES_RIG)  # the order the model sees the six cameras


class SensorConfigError(ValueError):
    """A sensor dict the simulator cannot honour (one line, names the offending value)."""


@dataclass(frozen=True)
class CameraSpec:
    """A camera relative to the vehicle origin (CARLA frame: x forward, y right, z up; degrees)."""

    id: str
    x: float
    y: float
    z: float
    roll: float
    pitch: float
    yaw: float
    width: int
    height: int
    fov: float  # horizontal field of view, degrees
    kind: str = "rgb"  # 'rgb' | 'depth' | 'semantic_segmentation'

    @property
    def focal(self) -> float:
        """Pinhole focal length in pixels (CARLA: f = W / (2 tan(fov/2)), square pixels)."""
        return self.width / (2.0 * math.tan(math.radians(self.fov) / 2.0))

    def intrinsics(self) -> list[list[float]]:
        f = self.focal
        return [[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]]


def nuscenes_rig(width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT, kind: str = "rgb") -> list[CameraSpec]:
    """The six nuScenes cameras at any resolution (same FOVs as the 1600x900 originals)."""
    return [CameraSpec(cid, x, y, z, 0.0, 0.0, yaw, width, height, fov, kind)
            for cid, (x, y, z, yaw, fov) in NUSCENES_RIG.items()]


def rig_sensor_dicts(width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT) -> list[dict[str, Any]]:
    """The six rig cameras as leaderboard sensor dicts."""
    return [{"type": "sensor.camera.rgb", "id": c.id, "x": c.x, "y": c.y, "z": c.z, "roll": c.roll,
             "pitch": c.pitch, "yaw": c.yaw, "width": c.width, "height": c.height, "fov": c.fov}
            for c in nuscenes_rig(width, height)]


def validate_sensors(sensors: list[dict[str, Any]]) -> None:
    """Check sensor dicts as the CARLA leaderboard does; raise SensorConfigError naming the value."""
    if not isinstance(sensors, (list, tuple)):
        raise SensorConfigError(f"sensors() must return a list of dicts, got {type(sensors).__name__}")
    seen: set[str] = set()
    n_rgb = 0
    for s in sensors:
        if not isinstance(s, dict) or "type" not in s or "id" not in s:
            raise SensorConfigError(f"sensor entry needs 'type' and 'id': {s!r}")
        sid, stype = s["id"], s["type"]
        if stype not in KNOWN_TYPES:
            raise SensorConfigError(f"sensor '{sid}': unknown sensor type '{stype}' (known: {', '.join(KNOWN_TYPES)})")
        if sid in seen:
            raise SensorConfigError(f"sensor id '{sid}' is used more than once")
        seen.add(sid)
        if stype == "sensor.camera.rgb":
            n_rgb += 1
        if stype in ("sensor.speedometer", "sensor.opendrive_map"):
            continue  # pseudo-sensors have no position
        x, y, z = (float(s.get(k, 0.0)) for k in ("x", "y", "z"))
        if not all(math.isfinite(v) for v in (x, y, z)):
            raise SensorConfigError(f"sensor '{sid}': position ({x}, {y}, {z}) is not finite")
        dist = math.sqrt(x * x + y * y + z * z)
        if dist > MAX_SENSOR_DISTANCE:
            raise SensorConfigError(
                f"sensor '{sid}' is {dist:.2f} m from the vehicle origin (max {MAX_SENSOR_DISTANCE} m)")
        if stype in CAMERA_TYPES:
            w, h, fov = int(s.get("width", DEFAULT_WIDTH)), int(s.get("height", DEFAULT_HEIGHT)), float(s.get("fov", 90))
            if not (1 <= w <= 4096 and 1 <= h <= 4096):
                raise SensorConfigError(f"camera '{sid}': size {w}x{h} out of range 1..4096")
            if not (1.0 <= fov < 180.0):
                raise SensorConfigError(f"camera '{sid}': fov {fov} out of range [1, 180)")
        if stype == "sensor.other.radar":
            for key in ("horizontal_fov", "vertical_fov"):
                v = float(s.get(key, 30.0))
                if not (0.0 < v <= 180.0):
                    raise SensorConfigError(f"radar '{sid}': {key} {v} out of range (0, 180]")
    if n_rgb > MAX_RGB_CAMERAS:
        raise SensorConfigError(f"{n_rgb} RGB cameras requested; at most {MAX_RGB_CAMERAS} are allowed")


def camera_spec_from_dict(s: dict[str, Any]) -> CameraSpec:
    kind = s["type"].split(".")[-1]
    return CameraSpec(
        id=s["id"], x=float(s.get("x", 0.0)), y=float(s.get("y", 0.0)), z=float(s.get("z", 0.0)),
        roll=float(s.get("roll", 0.0)), pitch=float(s.get("pitch", 0.0)), yaw=float(s.get("yaw", 0.0)),
        width=int(s.get("width", DEFAULT_WIDTH)), height=int(s.get("height", DEFAULT_HEIGHT)),
        fov=float(s.get("fov", 90.0)), kind=kind,
    )


# Blueprint attributes the CARLA leaderboard's agent wrapper sets per sensor type (beyond the dict's own size
# and fov): the real-CARLA backend spawns sensors with these, so an agent sees the same data under both.
LEADERBOARD_LIDAR = {"range": 85, "rotation_frequency": 10, "channels": 64, "upper_fov": 10, "lower_fov": -30,
                     "points_per_second": 600000, "atmosphere_attenuation_rate": 0.004,
                     "dropoff_general_rate": 0.45, "dropoff_intensity_limit": 0.8, "dropoff_zero_intensity": 0.4}
LEADERBOARD_GNSS_NOISE = {"noise_alt_stddev": 0.000005, "noise_lat_stddev": 0.000005, "noise_lon_stddev": 0.000005,
                          "noise_alt_bias": 0.0, "noise_lat_bias": 0.0, "noise_lon_bias": 0.0}
LEADERBOARD_IMU_NOISE = {"noise_accel_stddev_x": 0.001, "noise_accel_stddev_y": 0.001,
                         "noise_accel_stddev_z": 0.015, "noise_gyro_stddev_x": 0.001,
                         "noise_gyro_stddev_y": 0.001, "noise_gyro_stddev_z": 0.001}


def carla_sensor_attributes(s: dict[str, Any]) -> dict[str, str]:
    """The blueprint attributes (name -> string value) a CARLA server's sensor gets for a leaderboard sensor dict."""
    stype = s["type"]
    if stype in CAMERA_TYPES:
        out = {"image_size_x": s.get("width", DEFAULT_WIDTH), "image_size_y": s.get("height", DEFAULT_HEIGHT),
               "fov": s.get("fov", 90.0)}
    elif stype == "sensor.lidar.ray_cast":
        out = dict(LEADERBOARD_LIDAR)
    elif stype == "sensor.other.radar":
        out = {"horizontal_fov": s.get("horizontal_fov", 30.0), "vertical_fov": s.get("vertical_fov", 30.0),
               "points_per_second": 1500, "range": 100}
    elif stype == "sensor.other.gnss":
        out = dict(LEADERBOARD_GNSS_NOISE)
    elif stype == "sensor.other.imu":
        out = dict(LEADERBOARD_IMU_NOISE)
    else:
        out = {}
    return {k: str(v) for k, v in out.items()}

