"""`srunner.scenariomanager.timer.GameTime`: the game clock agents read, restarted every route.

The evaluator (or the gymnasium adapter) restarts it before each route and feeds it every tick, so
`GameTime.get_time()` is the same number an agent's run_step receives as `timestamp` (0.05 s at the first step).
"""

from __future__ import annotations

import datetime
from typing import Any


class GameTime:
    """scenario_runner's GameTime: elapsed game seconds since the route started, the frame and the wall clock."""

    _current_game_time = 0.0
    _carla_time = 0.0
    _last_frame = 0
    _platform_timestamp: datetime.datetime | float = 0
    _init = False

    @staticmethod
    def on_carla_tick(timestamp: Any) -> None:
        """Advance on a tick (an object with frame, delta_seconds, elapsed_seconds, as carla.Timestamp)."""
        if GameTime._last_frame < timestamp.frame:
            frames = timestamp.frame - GameTime._last_frame if GameTime._init else 1
            GameTime._current_game_time += timestamp.delta_seconds * frames
            GameTime._last_frame = timestamp.frame
            GameTime._platform_timestamp = datetime.datetime.now()
            GameTime._init = True
            GameTime._carla_time = timestamp.elapsed_seconds

    @staticmethod
    def restart() -> None:
        GameTime._current_game_time = 0.0
        GameTime._carla_time = 0.0
        GameTime._last_frame = 0
        GameTime._init = False

    @staticmethod
    def get_time() -> float:
        return GameTime._current_game_time

    @staticmethod
    def get_carla_time() -> float:
        return GameTime._carla_time

    @staticmethod
    def get_wallclocktime() -> datetime.datetime | float:
        return GameTime._platform_timestamp

    @staticmethod
    def get_frame() -> int:
        return GameTime._last_frame
