"""Scoring of the CARLA leaderboard (2.0 statistics manager semantics), as data tables and pure functions.

Per route: driving score = route completion (%) x infraction penalty, where the penalty starts at 1.0 and is
multiplied by a fixed factor per infraction (PENALTY_VALUE) or by a percentage-based factor (PENALTY_PERC):
  - outside route lanes ('increases', per-unit value 0): penalty *= 1 - pct / 100, pct = metres driven outside the
    route's lanes as a percentage of the route distance driven so far. Leaderboard 1.0 and 2.0 agree on this.
  - minimum speed ('decreases', 0.7): penalty *= 1 - 0.3 * (1 - pct / 100), pct = ego mean speed as a percentage of
    the surrounding traffic's, once per route quarter where it is below 100 (leaderboard 2.0; 1.0 had no such test).
Route deviation and agent blocked end the route without a penalty factor (completion stops growing).
Globally: means over all routes of the run (routes that failed or never ran count with their score, 0 when
nothing was driven), sample standard deviations, and infractions per km driven (km = route length x completion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class TrafficEventType(Enum):
    """Event kinds, named as scenario_runner's TrafficEventType."""

    COLLISION_STATIC = "COLLISION_STATIC"
    COLLISION_VEHICLE = "COLLISION_VEHICLE"
    COLLISION_PEDESTRIAN = "COLLISION_PEDESTRIAN"
    ROUTE_DEVIATION = "ROUTE_DEVIATION"
    ROUTE_COMPLETION = "ROUTE_COMPLETION"
    ROUTE_COMPLETED = "ROUTE_COMPLETED"
    TRAFFIC_LIGHT_INFRACTION = "TRAFFIC_LIGHT_INFRACTION"
    WRONG_WAY_INFRACTION = "WRONG_WAY_INFRACTION"
    ON_SIDEWALK_INFRACTION = "ON_SIDEWALK_INFRACTION"
    STOP_INFRACTION = "STOP_INFRACTION"
    OUTSIDE_LANE_INFRACTION = "OUTSIDE_LANE_INFRACTION"
    OUTSIDE_ROUTE_LANES_INFRACTION = "OUTSIDE_ROUTE_LANES_INFRACTION"
    VEHICLE_BLOCKED = "VEHICLE_BLOCKED"
    MIN_SPEED_INFRACTION = "MIN_SPEED_INFRACTION"
    YIELD_TO_EMERGENCY_VEHICLE = "YIELD_TO_EMERGENCY_VEHICLE"
    SCENARIO_TIMEOUT = "SCENARIO_TIMEOUT"


E = TrafficEventType

# Infractions that multiply the penalty by a fixed factor.
PENALTY_VALUE: dict[TrafficEventType, float] = {
    E.COLLISION_PEDESTRIAN: 0.50,
    E.COLLISION_VEHICLE: 0.60,
    E.COLLISION_STATIC: 0.65,
    E.TRAFFIC_LIGHT_INFRACTION: 0.70,
    E.STOP_INFRACTION: 0.80,
    E.SCENARIO_TIMEOUT: 0.70,
    E.YIELD_TO_EMERGENCY_VEHICLE: 0.70,
}
# Infractions scaled by the event's 'percentage': (per-unit value, 'increases' | 'decreases').
PENALTY_PERC: dict[TrafficEventType, tuple[float, str]] = {
    E.OUTSIDE_ROUTE_LANES_INFRACTION: (0.0, "increases"),
    E.MIN_SPEED_INFRACTION: (0.7, "decreases"),
}
# Results-JSON infraction keys.
PENALTY_NAME: dict[TrafficEventType, str] = {
    E.COLLISION_STATIC: "collisions_layout",
    E.COLLISION_PEDESTRIAN: "collisions_pedestrian",
    E.COLLISION_VEHICLE: "collisions_vehicle",
    E.TRAFFIC_LIGHT_INFRACTION: "red_light",
    E.STOP_INFRACTION: "stop_infraction",
    E.OUTSIDE_ROUTE_LANES_INFRACTION: "outside_route_lanes",
    E.MIN_SPEED_INFRACTION: "min_speed_infractions",
    E.YIELD_TO_EMERGENCY_VEHICLE: "yield_emergency_vehicle_infractions",
    E.SCENARIO_TIMEOUT: "scenario_timeouts",
    E.ROUTE_DEVIATION: "route_dev",
    E.VEHICLE_BLOCKED: "vehicle_blocked",
}
INFRACTION_KEYS: tuple[str, ...] = tuple(PENALTY_NAME.values()) + ("route_timeout",)

# Route failure kinds -> (entry_status, status suffix), as the leaderboard's FAILURE_MESSAGES.
FAILURE_MESSAGES: dict[str, tuple[str, str]] = {
    "Simulation": ("Crashed", "Simulation crashed"),
    "Sensors": ("Rejected", "Agent's sensors were invalid"),
    "Agent_init": ("Started", "Agent couldn't be set up"),
    "Agent_runtime": ("Started", "Agent crashed"),
}
ENTRY_STATUS_VALUES = ("Started", "Finished", "Rejected", "Crashed", "Invalid")
ELIGIBLE = {"Started": False, "Finished": True, "Rejected": False, "Crashed": False, "Invalid": False}
ROUND_DIGITS = 3
ROUND_DIGITS_SCORE = 6

GLOBAL_LABELS: tuple[str, ...] = (
    "Avg. driving score",
    "Avg. route completion",
    "Avg. infraction penalty",
    "Collisions with pedestrians",
    "Collisions with vehicles",
    "Collisions with layout",
    "Red lights infractions",
    "Stop sign infractions",
    "Off-road infractions",
    "Route deviations",
    "Route timeouts",
    "Agent blocked",
    "Yield emergency vehicles infractions",
    "Scenario timeouts",
    "Min speed infractions",
)
_GLOBAL_VALUE_KEYS: tuple[str, ...] = (
    "collisions_pedestrian",
    "collisions_vehicle",
    "collisions_layout",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "route_dev",
    "route_timeout",
    "vehicle_blocked",
    "yield_emergency_vehicle_infractions",
    "scenario_timeouts",
    "min_speed_infractions",
)


@dataclass
class TrafficEvent:
    """One thing a criterion observed: its kind, the frame, a human message and numbers (location, percentage)."""

    type: TrafficEventType
    frame: int
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # 'x', 'y', 'z'; 'percentage'; 'route_completed'; ...


def empty_route_record(route_id: str, index: int = -1) -> dict[str, Any]:
    """A route record in the results JSON layout, before the route ran."""
    return {
        "index": index,
        "route_id": route_id,
        "status": "Started",
        "num_infractions": 0,
        "infractions": {k: [] for k in INFRACTION_KEYS},
        "scores": {"score_route": 0, "score_penalty": 0, "score_composed": 0},
        "meta": {"route_length": 0, "duration_game": 0, "duration_system": 0},
    }


def apply_percentage_penalty(score_penalty: float, event_type: TrafficEventType, percentage: float) -> float:
    per_unit, kind = PENALTY_PERC[event_type]
    if kind == "decreases":
        return score_penalty * (1 - (1 - per_unit) * (1 - percentage / 100))
    if kind == "increases":
        return score_penalty * (1 - (1 - per_unit) * percentage / 100)
    raise ValueError(f"unknown penalty kind '{kind}' for {event_type.name}")


def compute_route_record(
    route_id: str,
    index: int,
    events: list[TrafficEvent],
    route_completion: float,
    route_length: float,
    duration_game: float,
    duration_system: float,
    timed_out: bool = False,
    failure_message: str = "",
) -> dict[str, Any]:
    """Score one route from its events, as the leaderboard's compute_route_statistics.

    route_completion: percentage 0..100 (the RouteCompletionTest value; 100 when the target was reached).
    failure_message: set when something outside the criteria stopped the route ('Agent crashed', ...). As in the
    leaderboard, the last assignment wins: a route timeout, then a deviation or blockage, overrides it.
    """
    rec = empty_route_record(route_id, index)
    score_penalty = 1.0
    rec["meta"] = {
        "route_length": round(route_length, ROUND_DIGITS),
        "duration_game": round(duration_game, ROUND_DIGITS),
        "duration_system": round(duration_system, ROUND_DIGITS),
    }
    if timed_out:
        rec["infractions"]["route_timeout"].append("Route timeout.")
        failure_message = "Agent timed out"
    for ev in events:
        if ev.type in PENALTY_VALUE:
            score_penalty *= PENALTY_VALUE[ev.type]
            rec["infractions"][PENALTY_NAME[ev.type]].append(ev.message)
        elif ev.type in PENALTY_PERC:
            score_penalty = apply_percentage_penalty(score_penalty, ev.type, float(ev.data["percentage"]))
            rec["infractions"][PENALTY_NAME[ev.type]].append(ev.message)
        elif ev.type == E.ROUTE_DEVIATION:
            failure_message = "Agent deviated from the route"
            rec["infractions"][PENALTY_NAME[ev.type]].append(ev.message)
        elif ev.type == E.VEHICLE_BLOCKED:
            failure_message = "Agent got blocked"
            rec["infractions"][PENALTY_NAME[ev.type]].append(ev.message)
    score_route = float(route_completion)
    target_reached = score_route >= 100
    rec["scores"] = {
        "score_route": round(score_route, ROUND_DIGITS_SCORE),
        "score_penalty": round(score_penalty, ROUND_DIGITS_SCORE),
        "score_composed": round(max(score_route * score_penalty, 0.0), ROUND_DIGITS_SCORE),
    }
    rec["num_infractions"] = sum(len(v) for v in rec["infractions"].values())
    if target_reached:
        rec["status"] = "Completed" if rec["num_infractions"] > 0 else "Perfect"
    else:
        rec["status"] = "Failed" + (f" - {failure_message}" if failure_message else "")
    return rec


def failed_route_record(
    route_id: str, index: int, failure_message: str, route_length: float = 0.0
) -> dict[str, Any]:
    """A route that could not be driven at all (agent set-up, sensors, simulator): score 0."""
    return compute_route_record(
        route_id, index, [], 0.0, route_length, 0.0, 0.0, failure_message=failure_message
    )


def _outside_lanes_km(record: dict[str, Any]) -> float:
    """Km driven outside route lanes, read back from the infraction message (as the leaderboard does)."""
    msgs = record["infractions"].get("outside_route_lanes", [])
    if not msgs:
        return 0.0
    return float(msgs[0].split(" ")[8]) / 1000


def compute_global_record(records: list[dict[str, Any]], total_routes: int) -> dict[str, Any]:
    """The `global_record` of the results JSON over the finished records of a run of `total_routes` routes."""
    total = max(int(total_routes), 1)
    g: dict[str, Any] = {
        "index": -1,
        "route_id": -1,
        "status": "Perfect",
        "infractions": {k: 0 for k in INFRACTION_KEYS},
        "scores_mean": {"score_composed": 0, "score_route": 0, "score_penalty": 0},
        "scores_std_dev": {"score_composed": 0, "score_route": 0, "score_penalty": 0},
        "meta": {"total_length": 0, "duration_game": 0, "duration_system": 0, "exceptions": []},
    }
    status = "Perfect"
    for r in records:
        for k in g["scores_mean"]:
            g["scores_mean"][k] += r["scores"][k] / total
        g["meta"]["total_length"] += r["meta"]["route_length"]
        g["meta"]["duration_game"] += r["meta"]["duration_game"]
        g["meta"]["duration_system"] += r["meta"]["duration_system"]
        result = "Failed" if "Failed" in r["status"] else r["status"]
        if result == "Failed":
            g["meta"]["exceptions"].append((r["route_id"], r["index"], r["status"]))
            status = "Failed"
        elif status == "Perfect" and result != "Perfect":
            status = result
    for k in g["scores_mean"]:
        g["scores_mean"][k] = round(g["scores_mean"][k], ROUND_DIGITS_SCORE)
    g["status"] = status
    if total > 1:
        for k in g["scores_std_dev"]:
            ss = sum((r["scores"][k] - g["scores_mean"][k]) ** 2 for r in records)
            g["scores_std_dev"][k] = round(math.sqrt(ss / float(total - 1)), ROUND_DIGITS)
    km_driven = 0.0
    for r in records:
        km_driven += r["meta"]["route_length"] / 1000 * r["scores"]["score_route"] / 100
        for k in g["infractions"]:
            g["infractions"][k] += (
                _outside_lanes_km(r) if k == "outside_route_lanes" else len(r["infractions"].get(k, []))
            )
    km_driven = max(km_driven, 0.001)
    for k in g["infractions"]:
        if k != "outside_route_lanes":
            g["infractions"][k] /= km_driven
        g["infractions"][k] = round(g["infractions"][k], ROUND_DIGITS)
    return g


def global_values(g: dict[str, Any]) -> list[str]:
    """The results JSON `values` list, in the order of GLOBAL_LABELS."""
    sm = g["scores_mean"]
    return [str(sm["score_composed"]), str(sm["score_route"]), str(sm["score_penalty"])] + [
        str(g["infractions"][k]) for k in _GLOBAL_VALUE_KEYS
    ]
