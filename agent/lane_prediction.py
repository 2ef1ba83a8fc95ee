"""Where a road vehicle will drive: along its lane (carla.Map) up to the next junction, then straight on.

Constant-velocity extrapolation cuts the inside of every bend: on a curved road the expert saw each oncoming car
predicted across its own lane and braked for it (route 6 of the built-in set slowed to 1.5 m/s five times in its
first 300 m). Ground truth includes the map, so a vehicle on a lane outside a junction that heads along the lane
and does not move sideways (no lane change under way) is predicted along the lane's centre line, at its current
offset from it. Which way it will turn in the next junction is unknown: from the junction's entry on it goes
straight along the lane's last heading, as the plain extrapolation did. Everything else (vehicles inside a
junction, changing lanes, against the lane's direction, off the road) keeps the straight line.
"""

from __future__ import annotations

import math

import carla
import numpy as np

from agent.geometry import wrap_angle

STEP_M = 2.0  # spacing of the lane points walked ahead (chord error 2 cm on a 25 m bend)


def lane_path(
    cmap: carla.Map,
    x: float,
    y: float,
    yaw: float,
    vx: float,
    vy: float,
    length: float,
    heading_tol: float,
    max_lateral_speed: float,
) -> np.ndarray | None:
    """(K, 3) [x, y, heading (rad)] from the vehicle along its lane, at least `length` metres long, or None when
    the vehicle is not following a lane outside a junction (then extrapolate it in a straight line).

    yaw and heading_tol in radians; the path starts at the vehicle's position.
    """
    wp = cmap.get_waypoint(carla.Location(x, y, 0.0), project_to_road=True, lane_type=carla.LaneType.Driving)
    if wp is None or wp.is_junction:
        return None
    t = wp.transform
    lane_yaw = math.radians(t.rotation.yaw)
    if abs(wrap_angle(yaw - lane_yaw)) > heading_tol:
        return None
    nx, ny = -math.sin(lane_yaw), math.cos(lane_yaw)  # right of the lane (CARLA y south)
    offset = (x - t.location.x) * nx + (y - t.location.y) * ny
    if abs(offset) > wp.lane_width / 2 or abs(vx * nx + vy * ny) > max_lateral_speed:
        return None
    pts = [(x, y, yaw)]
    walked = 0.0
    cur = wp
    while walked < length:
        nxt = cur.next(STEP_M)
        if not nxt:
            break
        # a lane ends in one successor (or in several inside the junction it enters: stop there)
        cur = nxt[0]
        if cur.is_junction:
            break
        tr = cur.transform
        h = math.radians(tr.rotation.yaw)
        loc = tr.location
        pts.append((loc.x - offset * math.sin(h), loc.y + offset * math.cos(h), h))
        walked += STEP_M
    # on from the lane's end (a junction's entry, a dead end) straight along its last heading, for what is left
    # of `length` (the lane points are STEP_M apart; the first one is up to STEP_M from the vehicle)
    h = pts[-1][2]
    rest = length - walked + STEP_M
    pts.append((pts[-1][0] + math.cos(h) * rest, pts[-1][1] + math.sin(h) * rest, h))
    path = np.array(pts, np.float64)  # (K, 3)
    path[:, 2] = np.unwrap(path[:, 2])
    return path


def along_path(path: np.ndarray, travel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (..., 2) and headings (...,) at arc lengths `travel` (any shape) along a `lane_path`."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path[:, :2], axis=0).T))])  # (K,)
    xy = np.stack([np.interp(travel, s, path[:, 0]), np.interp(travel, s, path[:, 1])], axis=-1)
    return xy, np.interp(travel, s, path[:, 2])
