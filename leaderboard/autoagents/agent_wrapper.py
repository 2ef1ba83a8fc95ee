"""Sensor-suite validation of the CARLA leaderboard (same module path, rules and messages)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from leaderboard.autoagents.autonomous_agent import Track
from leaderboard.envs.sensor_interface import SensorConfigurationInvalid

MAX_ALLOWED_RADIUS_SENSOR = 3.0  # metres from the vehicle origin
SENSORS_LIMITS: dict[str, int] = {
    "sensor.camera.rgb": 8,
    "sensor.lidar.ray_cast": 2,
    "sensor.other.radar": 4,
    "sensor.other.gnss": 1,
    "sensor.other.imu": 1,
    "sensor.opendrive_map": 1,
    "sensor.speedometer": 1,
}
QUALIFIER_SENSORS_LIMITS: dict[str, int] = {
    "sensor.camera.rgb": 4,
    "sensor.lidar.ray_cast": 1,
    "sensor.other.radar": 2,
    "sensor.other.gnss": 1,
    "sensor.other.imu": 1,
    "sensor.opendrive_map": 1,
    "sensor.speedometer": 1,
}
ALLOWED_SENSORS = tuple(SENSORS_LIMITS)


class AgentError(Exception):
    """The agent failed while driving (an exception in run_step, or a step slower than the timeout)."""


def validate_sensor_configuration(
    sensors: Any, agent_track: Track, selected_track: str, sensor_limits: Mapping[str, int] | None = None
) -> None:
    """Raise SensorConfigurationInvalid unless the sensors are allowed on the selected track.

    sensor_limits: per-type maxima overriding the track's (leaderboard 1.0's rules pass their own).
    """
    try:
        track = Track(selected_track)
    except ValueError:
        raise SensorConfigurationInvalid(
            f"Unknown track '{selected_track}' (valid: {', '.join(t.value for t in Track)})"
        ) from None
    if track != agent_track:
        raise SensorConfigurationInvalid(f"You are submitting to the wrong track [{track}]!")
    if not isinstance(sensors, (list, tuple)):
        raise SensorConfigurationInvalid(
            f"sensors() must return a list of dicts, got {type(sensors).__name__}"
        )
    counts: dict[str, int] = {}
    ids: set[str] = set()
    for s in sensors:
        if not isinstance(s, dict) or "id" not in s or "type" not in s:
            raise SensorConfigurationInvalid(f"A sensor needs 'type' and 'id' keys: {s!r}")
        if s["id"] in ids:
            raise SensorConfigurationInvalid(f"Duplicated sensor tag [{s['id']}]")
        ids.add(s["id"])
        if agent_track == Track.SENSORS and s["type"].startswith("sensor.opendrive_map"):
            raise SensorConfigurationInvalid(
                f"Illegal sensor 'sensor.opendrive_map' used for Track [{agent_track}]!"
            )
        if s["type"] not in ALLOWED_SENSORS:
            raise SensorConfigurationInvalid(f"Illegal sensor '{s['type']}' used for Track [{agent_track}]!")
        if all(k in s for k in ("x", "y", "z")):
            if math.sqrt(s["x"] ** 2 + s["y"] ** 2 + s["z"] ** 2) > MAX_ALLOWED_RADIUS_SENSOR:
                raise SensorConfigurationInvalid(
                    f"Illegal sensor extrinsics used for sensor '{s['id']}'. "
                    f"Max allowed radius is {MAX_ALLOWED_RADIUS_SENSOR}m"
                )
        counts[s["type"]] = counts.get(s["type"], 0) + 1
    limits = (
        QUALIFIER_SENSORS_LIMITS
        if agent_track in (Track.SENSORS_QUALIFIER, Track.MAP_QUALIFIER)
        else SENSORS_LIMITS
    )
    if sensor_limits is not None:
        limits = dict(sensor_limits)
    for stype, max_n in limits.items():
        if counts.get(stype, 0) > max_n:
            raise SensorConfigurationInvalid(
                f"Too many {stype} used! Maximum number allowed is {max_n}, but {counts[stype]} were requested."
            )
