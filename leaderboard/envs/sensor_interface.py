"""The sensor interface between the evaluator and an agent, at the CARLA leaderboard's module path.

In CARLA the sensors push data from callback threads; here the simulator is ticked synchronously, so the
evaluator hands each tick's `input_data` to `update_all()` and the agent's `__call__` reads it back with
`get_data()`. The class names and the `{id: (frame, data)}` layout are CARLA's.
"""

from __future__ import annotations

from typing import Any


class SensorConfigurationInvalid(Exception):
    """The agent's sensors are not allowed (bad type, too many, too far from the vehicle, duplicated id)."""


class SensorReceivedNoData(Exception):
    """A registered sensor has no data for the current frame."""


class SensorInterface:
    """Latest data of every registered sensor, keyed by sensor id."""

    def __init__(self) -> None:
        self._sensors_objects: dict[str, str] = {}  # id -> sensor type
        self._data: dict[str, tuple[int, Any]] = {}
        self.frame: int = 0
        self.timestamp: float = 0.0  # game time of the current frame, seconds

    def register_sensor(self, tag: str, sensor_type: str, sensor: Any = None) -> None:
        if tag in self._sensors_objects:
            raise SensorConfigurationInvalid(f"Duplicated sensor tag [{tag}]")
        self._sensors_objects[tag] = sensor_type

    def update_sensor(self, tag: str, data: Any, frame: int) -> None:
        if tag not in self._sensors_objects:
            raise SensorConfigurationInvalid(f"The sensor with tag [{tag}] has not been created")
        self._data[tag] = (frame, data)

    def update_all(self, input_data: dict[str, tuple[int, Any]], frame: int, timestamp: float) -> None:
        """Store one synchronous tick of every sensor (the evaluator calls this before the agent)."""
        self.frame, self.timestamp = int(frame), float(timestamp)
        self._data = dict(input_data)

    def all_sensors_ready(self) -> bool:
        return all(tag in self._data for tag in self._sensors_objects)

    def get_data(self, frame: int | None = None) -> dict[str, tuple[int, Any]]:
        """The current tick's data, {id: (frame, data)}; SensorReceivedNoData if a registered sensor is missing."""
        missing = [tag for tag in self._sensors_objects if tag not in self._data]
        if missing:
            raise SensorReceivedNoData(f"sensor(s) {', '.join(missing)} sent no data for frame {self.frame}")
        return dict(self._data)
