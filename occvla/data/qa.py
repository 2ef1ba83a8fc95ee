"""Rule-generated driving QA pairs (stage-1 data when a dataset ships no QA of its own).

Every answer is computed from ground truth in the sample, so the questions are always consistent with the labels:
- "What should the ego vehicle do next?" -> the meta-action.
- "Is the road ahead clear within 10 meters?" -> "yes"/"no": any vehicle/pedestrian voxel in the ego corridor
  x in [0, 10] m, |y| <= 2 m (needs ``occupancy``; Occ3D range [-40, 40] m at whatever pooling).
- "How many vehicles are within 20 meters?" -> a count of agent boxes at the first future step (needs
  ``agent_boxes``).
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
    if "agent_boxes" in sample:
        boxes, valid = np.asarray(sample["agent_boxes"]), np.asarray(sample["agent_valid"])
        near = valid[0] & (np.hypot(boxes[0, :, 0], boxes[0, :, 1]) <= NEARBY_RADIUS_M)
        qa.append(("How many vehicles are within 20 meters?", str(int(near.sum()))))
    return qa
