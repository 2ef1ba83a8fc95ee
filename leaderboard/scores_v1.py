"""Scoring and results-file layout of CARLA leaderboard 1.0 (branch `leaderboard-1.0`), as tables and pure functions.

What 1.0 does differently from 2.x (leaderboard/scores.py), all reproduced here:
  - penalties: the five fixed factors and outside-route-lanes (x (1 - pct / 100)); no minimum speed, no scenario
    timeout, no yield-to-emergency-vehicle; no 'num_infractions' in a record;
  - nothing is rounded in the records; the route length is the sum of straight 3D distances between the route
    file's keypoints, not the dense route's;
  - a route that reached its end is 'Completed' (no 'Perfect');
  - global record: key 'scores' (not 'scores_mean'), std dev 'NaN' for a single route, infractions per km summed
    route by route (count / km driven on that route, routes with 0 completion skipped), outside-route-lanes counted
    as events; status 'Completed' unless a route is not;
  - 12 values, each '{:.3f}'; entry status 'Finished', 'Finished with agent errors' (a route status naming the
    agent: crashes, set-up failures, timeouts, deviations, blockages) or 'Finished with missing data' (not eligible).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from leaderboard.scores import GLOBAL_LABELS, TrafficEvent, TrafficEventType

E = TrafficEventType

PENALTY_VALUE_V1: dict[TrafficEventType, float] = {
    E.COLLISION_PEDESTRIAN: 0.50,
    E.COLLISION_VEHICLE: 0.60,
    E.COLLISION_STATIC: 0.65,
    E.TRAFFIC_LIGHT_INFRACTION: 0.70,
    E.STOP_INFRACTION: 0.80,
}
PENALTY_NAME_V1: dict[TrafficEventType, str] = {
    E.COLLISION_PEDESTRIAN: "collisions_pedestrian",
    E.COLLISION_VEHICLE: "collisions_vehicle",
    E.COLLISION_STATIC: "collisions_layout",
    E.TRAFFIC_LIGHT_INFRACTION: "red_light",
    E.STOP_INFRACTION: "stop_infraction",
    E.OUTSIDE_ROUTE_LANES_INFRACTION: "outside_route_lanes",
    E.ROUTE_DEVIATION: "route_dev",
    E.VEHICLE_BLOCKED: "vehicle_blocked",
}
# Record infraction keys, in 1.0's order.
INFRACTION_KEYS_V1: tuple[str, ...] = (
    "collisions_pedestrian",
    "collisions_vehicle",
    "collisions_layout",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "route_dev",
    "route_timeout",
    "vehicle_blocked",
)
# Events that end the route and name the failure (the last one assigned wins, as in 1.0).
FAILURE_OF_EVENT_V1: dict[TrafficEventType, str] = {
    E.ROUTE_DEVIATION: "Agent deviated from the route",
    E.VEHICLE_BLOCKED: "Agent got blocked",
}
GLOBAL_LABELS_V1: tuple[str, ...] = GLOBAL_LABELS[:12]  # 2.x appended its new infractions after 1.0's twelve
_VALUE_KEYS_V1: tuple[str, ...] = INFRACTION_KEYS_V1  # the values list follows the record order
VALUE_FORMAT_V1 = "{:.3f}"
ENTRY_FINISHED = "Finished"
ENTRY_AGENT_ERRORS = "Finished with agent errors"
ENTRY_MISSING_DATA = "Finished with missing data"


def keypoint_route_length(keypoints: Sequence[tuple[float, float, float]]) -> float:
    """1.0's route length: straight 3D distances between consecutive route-file keypoints, summed (metres)."""
    return float(sum(math.dist(a, b) for a, b in zip(keypoints[:-1], keypoints[1:])))


def compute_route_record_v1(
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
    """Score one route as 1.0's compute_route_statistics.

    route_completion: percentage 0..100 (100 when the route's end was reached); route_length: keypoint_route_length.
    """
    infractions: dict[str, list[str]] = {k: [] for k in INFRACTION_KEYS_V1}
    score_penalty = 1.0
    if timed_out:
        infractions["route_timeout"].append("Route timeout.")
        failure_message = "Agent timed out"
    for ev in events:
        if ev.type in PENALTY_VALUE_V1:
            score_penalty *= PENALTY_VALUE_V1[ev.type]
        elif ev.type == E.OUTSIDE_ROUTE_LANES_INFRACTION:
            score_penalty *= 1 - float(ev.data["percentage"]) / 100
        elif ev.type in FAILURE_OF_EVENT_V1:
            failure_message = FAILURE_OF_EVENT_V1[ev.type]
        else:
            continue  # route completion; 2.x-only events never reach a 1.0 route
        infractions[PENALTY_NAME_V1[ev.type]].append(ev.message)
    score_route = float(route_completion)
    target_reached = score_route >= 100
    if target_reached:
        status = "Completed"
    else:
        status = "Failed" + (f" - {failure_message}" if failure_message else "")
    return {
        "route_id": route_id,
        "index": index,
        "status": status,
        "infractions": infractions,
        "scores": {
            "score_route": score_route,
            "score_penalty": score_penalty,
            "score_composed": max(score_route * score_penalty, 0.0),
        },
        "meta": {
            "duration_system": float(duration_system),
            "duration_game": float(duration_game),
            "route_length": float(route_length),
        },
    }


def failed_route_record_v1(
    route_id: str, index: int, failure_message: str, route_length: float = 0.0
) -> dict[str, Any]:
    """A route that could not be driven (agent set-up, sensors, simulator): score 0."""
    return compute_route_record_v1(
        route_id, index, [], 0.0, route_length, 0.0, 0.0, failure_message=failure_message
    )


def compute_global_record_v1(records: list[dict[str, Any]], total_routes: int) -> dict[str, Any]:
    """1.0's global record over the run's records (`total_routes` divides the means)."""
    total = max(int(total_routes), 1)
    g: dict[str, Any] = {
        "route_id": -1,
        "index": -1,
        "status": "Completed",
        "infractions": {k: 0.0 for k in INFRACTION_KEYS_V1},
        "scores": {"score_route": 0.0, "score_penalty": 0.0, "score_composed": 0.0},
        "meta": {"total_length": 0.0, "duration_system": 0.0, "duration_game": 0.0},
        "scores_std_dev": {"score_route": 0.0, "score_penalty": 0.0, "score_composed": 0.0},
    }
    for r in records:
        for k in g["scores"]:
            g["scores"][k] += r["scores"][k]
        g["meta"]["total_length"] += r["meta"]["route_length"]
        g["meta"]["duration_game"] += r["meta"]["duration_game"]
        g["meta"]["duration_system"] += r["meta"]["duration_system"]
        km = r["scores"]["score_route"] / 100 * r["meta"]["route_length"] / 1000.0
        # 1.0 skips routes with no completion ("caused by the leaderboard"); a zero-length route would divide by 0
        if r["scores"]["score_route"] != 0 and km > 0:
            for k in g["infractions"]:
                g["infractions"][k] += len(r["infractions"].get(k, [])) / km
        if r["status"] != "Completed":
            g["status"] = "Failed"
            g["meta"].setdefault("exceptions", []).append((r["route_id"], r["index"], r["status"]))
    for k in g["scores"]:
        g["scores"][k] /= float(total)
    if total == 1:
        g["scores_std_dev"] = {k: "NaN" for k in g["scores_std_dev"]}
    else:
        for k in g["scores_std_dev"]:
            ss = sum((r["scores"][k] - g["scores"][k]) ** 2 for r in records)
            g["scores_std_dev"][k] = math.sqrt(ss / float(total - 1))
    return g


def global_values_v1(g: dict[str, Any]) -> list[str]:
    """The 12 `values` of a 1.0 results file, each formatted '{:.3f}', in the order of GLOBAL_LABELS_V1."""
    s = g["scores"]
    nums = [s["score_composed"], s["score_route"], s["score_penalty"]] + [
        g["infractions"][k] for k in _VALUE_KEYS_V1
    ]
    return [VALUE_FORMAT_V1.format(v) for v in nums]


def final_entry_status_v1(
    records: list[dict[str, Any]], total_routes: int, progress: Sequence[int]
) -> tuple[str, bool]:
    """(entry_status, eligible) of a 1.0 run that reached its end (1.0's save_global_record)."""
    if len(records) != total_routes or len(progress) != 2 or progress[0] != progress[1]:
        return ENTRY_MISSING_DATA, False
    if any("Agent" in r["status"] for r in records):
        return ENTRY_AGENT_ERRORS, True
    return ENTRY_FINISHED, True
