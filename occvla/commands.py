"""Navigation commands given to OccVLA, numbered like CARLA's ``RoadOption``.

The leaderboard hands the agent a route annotated with ``agents.navigation.local_planner.RoadOption`` values;
keeping the same integers here means a command flows from the route to the model prompt with no lookup table.
The model never sees the integer: the processor puts ``COMMAND_TEXT[command]`` into the prompt.
"""

from __future__ import annotations

from enum import IntEnum


class Command(IntEnum):
    """High-level navigation command (values identical to CARLA's ``RoadOption``)."""

    VOID = -1
    LEFT = 1
    RIGHT = 2
    STRAIGHT = 3
    LANEFOLLOW = 4
    CHANGELANELEFT = 5
    CHANGELANERIGHT = 6


COMMAND_TEXT: dict[Command, str] = {
    Command.VOID: "follow the lane",
    Command.LEFT: "turn left at the next intersection",
    Command.RIGHT: "turn right at the next intersection",
    Command.STRAIGHT: "go straight at the next intersection",
    Command.LANEFOLLOW: "follow the lane",
    Command.CHANGELANELEFT: "change to the left lane",
    Command.CHANGELANERIGHT: "change to the right lane",
}


def to_command(value: int | str | Command) -> Command:
    """Return the ``Command`` for an int value, a name (``"LEFT"``, ``"lanefollow"``) or a ``Command``.

    Raises:
        ValueError: the value names no command.
    """
    if isinstance(value, Command):
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("_", "").replace(" ", "")
        for cmd in Command:
            if cmd.name == key:
                return cmd
        raise ValueError(f"unknown navigation command {value!r}; expected one of {[c.name for c in Command]}")
    try:
        return Command(int(value))
    except (ValueError, TypeError):
        raise ValueError(
            f"unknown navigation command {value!r}; expected one of {[int(c) for c in Command]}"
        ) from None


def command_text(value: int | str | Command) -> str:
    """Prompt text for a navigation command (see ``COMMAND_TEXT``)."""
    return COMMAND_TEXT[to_command(value)]
