"""Rule-generated driving QA pairs (stage-1 data when a dataset ships no QA of its own).

Every answer is computed from ground truth in the sample, so the questions are always consistent with the labels:
- "What should the ego vehicle do next?" -> the meta-action.
- "Is the road ahead clear within 10 meters?" -> "yes"/"no": any vehicle/pedestrian voxel in the ego corridor
  x in [0, 10] m, |y| <= 2 m (needs ``occupancy``; Occ3D range [-40, 40] m at whatever pooling).
- "How many vehicles are within 20 meters?" -> a count of the key frame's own vehicle boxes (``current_boxes`` with
  ``current_categories``; pedestrians are not vehicles).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from occvla.metrics.planning import DYNAMIC_OBSTACLE_CLASSES

CORRIDOR_LENGTH_M = 10.0
CORRIDOR_HALF_WIDTH_M = 2.0
NEARBY_RADIUS_M = 20.0


def road_ahead_clear(occupancy: np.ndarray) -> bool:
    """True when no dynamic-obstacle voxel lies in the corridor ahead (Occ3D [-40, 40] m x/y range)."""
    x_n, y_n = occupancy.shape[:2]
    xs = -40.0 + (np.arange(x_n) + 0.5) * (80.0 / x_n)
    ys = -40.0 + (np.arange(y_n) + 0.5) * (80.0 / y_n)
    sel_x = (xs >= 0) & (xs <= CORRIDOR_LENGTH_M)
    sel_y = np.abs(ys) <= CORRIDOR_HALF_WIDTH_M
    region = occupancy[np.ix_(sel_x, sel_y)]
    return not np.isin(region, DYNAMIC_OBSTACLE_CLASSES).any()


def generate_qa(sample: dict[str, Any]) -> list[tuple[str, str]]:
    """QA pairs for a sample dict (see module docstring); uses only what the sample holds."""
    qa = [("What should the ego vehicle do next?", sample["meta_action"])]
    if "occupancy" in sample:
        clear = road_ahead_clear(np.asarray(sample["occupancy"]))
        qa.append(("Is the road ahead clear within 10 meters?", "yes" if clear else "no"))
    if "current_boxes" in sample:
        boxes = np.asarray(sample["current_boxes"]).reshape(-1, 5)
        is_vehicle = np.array([c.startswith("vehicle.") for c in sample["current_categories"]], bool)
        near = is_vehicle & (np.hypot(boxes[:, 0], boxes[:, 1]) <= NEARBY_RADIUS_M)
        qa.append(("How many vehicles are within 20 meters?", str(int(near.sum()))))
    return qa


# ------------------------------------------------------------------ QA from ground-truth annotations (collected data)
EXIST_RADIUS_M = 30.0
REASON_TEXT: dict[str, str] = {
    "red_light": "the traffic light ahead is red",
    "yellow_light": "the traffic light ahead is turning red",
    "stop_sign": "there is a stop sign ahead",
    "lead_vehicle": "a vehicle is ahead in the lane",
    "vehicle_crossing": "a vehicle is crossing the path",
    "pedestrian": "a pedestrian is crossing ahead",
    "cyclist": "a cyclist is ahead",
    "obstacle": "an obstacle blocks the lane",
    "junction_blocked": "the junction ahead is blocked",
    "crosswalk_blocked": "the crosswalk ahead is occupied",
    "junction_turn": "the route turns at the junction",
    "curve": "the road curves ahead",
    "lane_change": "the route changes lanes",
    "route_end": "the route ends here",
    "speed_limit": "the road ahead is clear up to the speed limit",
    "cruise": "the road ahead is clear",
}


def object_noun(category: str) -> str:
    """A plain noun for a nuScenes category name ('human.pedestrian.adult' -> 'pedestrian')."""
    if category.startswith("human.pedestrian"):
        return "pedestrian"
    special = {"vehicle.bus.rigid": "bus", "vehicle.bus.bendy": "bus", "vehicle.construction": "construction vehicle",
               "movable_object.trafficcone": "traffic cone", "vehicle.emergency.ambulance": "ambulance",
               "vehicle.emergency.police": "police car", "movable_object.pushable_pullable": "cart"}
    return special.get(category, category.split(".")[-1].replace("_", " "))


def _direction(x: float, y: float) -> str:
    """Ego-frame bearing (x forward, y left) as one of front, front-left, left, back-left, back, ... ."""
    ang = np.degrees(np.arctan2(y, x))
    names = ("front", "front-left", "left", "back-left", "back", "back-right", "right", "front-right")
    return names[int(((ang + 22.5) % 360) // 45)]


def annotation_qa(objects: list[dict[str, Any]], meta_action: str, reason: str) -> list[tuple[str, str]]:
    """Driving QA from the annotations of one key frame (nuScenes-QA style) and the expert's reason.

    objects: one dict per box at the key frame: ``category`` (nuScenes name), ``x``, ``y`` (ego frame, metres),
    ``moving`` (bool). Answers are computed from these only, so they agree with the annotations by construction.
    """
    def dist(o: dict[str, Any]) -> float:
        return float(np.hypot(o["x"], o["y"]))

    vehicles = [o for o in objects if o["category"].startswith("vehicle.")]
    peds = [o for o in objects if o["category"].startswith("human.pedestrian")]
    qa = [
        (f"Are there any pedestrians within {EXIST_RADIUS_M:.0f} meters?",
         "yes" if any(dist(o) <= EXIST_RADIUS_M for o in peds) else "no"),
        (f"How many vehicles are within {NEARBY_RADIUS_M:.0f} meters?",
         str(sum(dist(o) <= NEARBY_RADIUS_M for o in vehicles))),
    ]
    ahead = [o for o in vehicles if o["x"] > 0 and abs(o["y"]) < 2.0 and dist(o) <= EXIST_RADIUS_M]
    if ahead:
        lead = min(ahead, key=dist)
        qa.append(("Is the vehicle ahead moving?", "yes" if lead["moving"] else "no"))
        qa.append(("How far is the vehicle ahead?", f"{dist(lead):.0f} meters"))
    if objects:
        near = min(objects, key=dist)
        kind = object_noun(near["category"])
        article = "an" if kind[0] in "aeiou" else "a"
        qa.append(("Where is the closest object?", f"{article} {kind}, {_direction(near['x'], near['y'])}, "
                                                  f"{dist(near):.0f} meters"))
    why = REASON_TEXT.get(reason, reason.replace("_", " "))
    qa.append(("What should the ego vehicle do next, and why?", f"{meta_action}, because {why}"))
    return qa
