"""Meta-actions: the short text OccVLA writes before it plans ("turn left, decelerate").

A meta-action is one lateral x one longitudinal word group from a fixed vocabulary. Ground truth is derived from the
future trajectory by the deterministic rules below, so labels need no annotation and are identical across datasets
(nuScenes, simulator logs). All thresholds are module constants; change them in one place.

Inputs: ``traj`` (6, 2) future waypoints in the ego frame (x forward, y left, metres) at 0.5 s .. 3.0 s, and the
current ego speed in m/s. The origin (0, 0) is the ego position now.

Lateral rules (first that applies wins):
 1. Standing or reversing: path length < ``MOVING_MIN_PATH_M`` or forward progress x_end < -``REVERSE_MIN_M``
    -> "keep lane" (no lateral intent can be read from it).
 2. Turn: |final heading| >= ``TURN_HEADING_DEG`` -> "turn left" (heading > 0, counter-clockwise) / "turn right".
    The final heading is the direction of the chord over the last second (waypoint 4 -> 6), falling back to the
    chord from the origin when that is shorter than ``HEADING_MIN_CHORD_M``.
 3. Lane change: |y_end| >= ``LANE_CHANGE_MIN_OFFSET_M`` and the offset is at least ``LANE_CHANGE_ARC_RATIO`` times
    the offset that a constant-curvature arc with the same final heading would give (y_arc = x_end * tan(h / 2)).
    I.e. the ego has moved sideways and is (nearly) parallel again: a lane change. A curved lane produces an
    offset consistent with its heading and stays "keep lane". A lane change still at its peak heading at 3 s is,
    by this rule, "keep lane": the label is given once the manoeuvre is visible as such.
 4. Otherwise "keep lane".

Longitudinal rules (first that applies wins):
 1. Stop: path length < ``STOP_PATH_M`` or end speed < ``STOP_SPEED_MPS``. The end speed is the chord length over
    the last second (waypoint 4 -> 6) divided by 1 s.
 2. Accelerate: end speed - current speed >= ``ACCEL_DELTA_MPS`` (0.5 m/s^2 over 3 s).
 3. Decelerate: end speed - current speed <= -``ACCEL_DELTA_MPS``.
 4. Otherwise "keep speed".
"""

from __future__ import annotations

import math
import re

import numpy as np

LATERAL: tuple[str, ...] = ("keep lane", "turn left", "turn right", "change lane left", "change lane right")
LONGITUDINAL: tuple[str, ...] = ("accelerate", "keep speed", "decelerate", "stop")
META_ACTIONS: tuple[str, ...] = tuple(f"{lat}, {lon}" for lat in LATERAL for lon in LONGITUDINAL)

NUM_WAYPOINTS = 6
DT_S = 0.5  # waypoint spacing
TURN_HEADING_DEG = 30.0
LANE_CHANGE_MIN_OFFSET_M = 2.0
LANE_CHANGE_ARC_RATIO = 1.5
HEADING_MIN_CHORD_M = 0.5
MOVING_MIN_PATH_M = 1.0
REVERSE_MIN_M = 0.5
STOP_PATH_M = 1.0
STOP_SPEED_MPS = 0.5
ACCEL_DELTA_MPS = 1.5


def _check(traj: np.ndarray, speed: float) -> np.ndarray:
    t = np.asarray(traj, dtype=np.float64)
    if t.shape != (NUM_WAYPOINTS, 2):
        raise ValueError(f"meta-action needs a ({NUM_WAYPOINTS}, 2) trajectory, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"meta-action trajectory has non-finite values: {t.tolist()}")
    if not math.isfinite(float(speed)) or float(speed) < 0:
        raise ValueError(f"meta-action speed must be a finite non-negative m/s value, got {speed!r}")
    return t


def _path(t: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((1, 2)), t], axis=0)  # (7, 2) origin first


def final_heading_deg(traj: np.ndarray) -> float:
    """Heading (deg, CCW positive, 0 = ego x axis) of the motion over the last second; 0 when too short."""
    p = _path(np.asarray(traj, dtype=np.float64))
    for a in (len(p) - 3, 0):
        chord = p[-1] - p[a]
        if np.hypot(*chord) >= HEADING_MIN_CHORD_M:
            return math.degrees(math.atan2(chord[1], chord[0]))
    return 0.0


def end_speed(traj: np.ndarray) -> float:
    """Speed (m/s) over the last second of the trajectory (waypoint 4 -> 6)."""
    t = np.asarray(traj, dtype=np.float64)
    return float(np.hypot(*(t[-1] - t[-3])) / (2 * DT_S))


def lateral_from_trajectory(traj: np.ndarray, speed: float = 0.0) -> str:
    """Lateral part of the meta-action (see module docstring, rules 1-4)."""
    t = _check(traj, speed)
    p = _path(t)
    length = float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())
    x_end, y_end = t[-1]
    if length < MOVING_MIN_PATH_M or x_end < -REVERSE_MIN_M:
        return "keep lane"
    h = final_heading_deg(t)
    if abs(h) >= TURN_HEADING_DEG:
        return "turn left" if h > 0 else "turn right"
    y_arc = x_end * math.tan(math.radians(h) / 2)
    if abs(y_end) >= LANE_CHANGE_MIN_OFFSET_M and abs(y_end) >= LANE_CHANGE_ARC_RATIO * abs(y_arc):
        return "change lane left" if y_end > 0 else "change lane right"
    return "keep lane"


def longitudinal_from_trajectory(traj: np.ndarray, speed: float) -> str:
    """Longitudinal part of the meta-action (see module docstring, rules 1-4)."""
    t = _check(traj, speed)
    p = _path(t)
    length = float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())
    v_end = end_speed(t)
    if length < STOP_PATH_M or v_end < STOP_SPEED_MPS:
        return "stop"
    dv = v_end - float(speed)
    if dv >= ACCEL_DELTA_MPS:
        return "accelerate"
    if dv <= -ACCEL_DELTA_MPS:
        return "decelerate"
    return "keep speed"


def meta_action_from_trajectory(traj: np.ndarray, speed: float) -> str:
    """``"<lateral>, <longitudinal>"`` for a (6, 2) ego-frame future trajectory and the current speed (m/s)."""
    return f"{lateral_from_trajectory(traj, speed)}, {longitudinal_from_trajectory(traj, speed)}"


_LAT_RE = "|".join(re.escape(s) for s in sorted(LATERAL, key=len, reverse=True))
_LON_RE = "|".join(re.escape(s) for s in sorted(LONGITUDINAL, key=len, reverse=True))
_META_RE = re.compile(rf"({_LAT_RE})\s*[,;]?\s*({_LON_RE})")


def parse_meta_action(text: str) -> tuple[str, str] | None:
    """First ``(lateral, longitudinal)`` pair found in generated text (case/space-insensitive), else None."""
    norm = re.sub(r"\s+", " ", str(text).lower()).strip()
    m = _META_RE.search(norm)
    return (m.group(1), m.group(2)) if m else None


def meta_action_index(text: str) -> int:
    """Index of a meta-action string in ``META_ACTIONS`` (after parsing); -1 if it names none."""
    pair = parse_meta_action(text)
    return META_ACTIONS.index(f"{pair[0]}, {pair[1]}") if pair else -1
