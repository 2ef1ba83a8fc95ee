"""Lane-following prediction of road vehicles (agent/lane_prediction.py) on OccTown02's carla.Map."""

from __future__ import annotations

import math
from pathlib import Path

import carla
import numpy as np
import pytest

from agent.route_plan import junction_entries
from agent.lane_prediction import along_path, lane_path

REPO = Path(__file__).resolve().parents[2]
TOL = math.radians(20.0)


@pytest.fixture(scope="module")
def town02() -> carla.Map:
    return carla.Map("OccTown02", (REPO / "sim" / "embedded" / "towns" / "OccTown02.xodr").read_text())


def _lane(cmap: carla.Map, x: float, y: float) -> carla.Waypoint:
    return cmap.get_waypoint(
        carla.Location(x, y, 0.0), project_to_road=True, lane_type=carla.LaneType.Driving
    )


def _distance_to_lane_centre(cmap: carla.Map, xy: np.ndarray) -> np.ndarray:
    out = []
    for x, y in xy:
        loc = _lane(cmap, float(x), float(y)).transform.location
        out.append(math.hypot(x - loc.x, y - loc.y))
    return np.array(out)


def test_a_car_on_a_bend_is_predicted_along_its_lane(town02):
    """OccTown02's 90-degree bend (radius ~30 m): the prediction stays on the lane a straight line leaves."""
    wp = _lane(town02, 137.4, 1.6)  # the lane driving east towards the bend, then north
    t = wp.transform
    yaw = math.radians(t.rotation.yaw)
    path = lane_path(
        town02, t.location.x, t.location.y, yaw, 5.8 * math.cos(yaw), 5.8 * math.sin(yaw), 90.0, TOL, 0.5
    )
    assert path is not None
    travel = np.arange(0.0, 90.0, 2.0)  # (T,) 30 m straight, the bend's 47 m, straight on
    xy, heading = along_path(path, travel)
    assert _distance_to_lane_centre(town02, xy).max() < 0.3
    assert np.degrees(abs(heading[-1] - heading[0])) == pytest.approx(90.0, abs=5.0)  # round the bend
    straight = np.stack(
        [t.location.x + travel * math.cos(yaw), t.location.y + travel * math.sin(yaw)], axis=1
    )
    assert _distance_to_lane_centre(town02, straight[-5:]).min() > 3.0
    assert np.allclose(np.hypot(*np.diff(xy, axis=0).T), 2.0, atol=0.05)  # arc length is travel


def test_the_lateral_offset_in_the_lane_is_kept(town02):
    wp = _lane(town02, 201.6, 35.0)
    t = wp.transform
    yaw = math.radians(t.rotation.yaw)
    x, y = t.location.x + 0.4 * -math.sin(yaw), t.location.y + 0.4 * math.cos(yaw)  # 0.4 m right of centre
    path = lane_path(town02, x, y, yaw, 0.0, 5.0 * math.sin(yaw), 20.0, TOL, 0.5)
    assert path is not None
    assert _distance_to_lane_centre(town02, path[1:10, :2]) == pytest.approx(0.4, abs=0.05)


@pytest.mark.parametrize(
    "why, yaw_off_deg, lateral_speed",
    [("changing lanes", 5.0, 1.2), ("against the lane", 180.0, 0.0), ("across it", 60.0, 0.0)],
)
def test_cars_not_following_their_lane_keep_the_straight_line(town02, why, yaw_off_deg, lateral_speed):
    t = _lane(town02, 201.6, 35.0).transform
    lane_yaw = math.radians(t.rotation.yaw)
    yaw = lane_yaw + math.radians(yaw_off_deg)
    right = np.array([-math.sin(lane_yaw), math.cos(lane_yaw)])
    vel = 5.0 * np.array([math.cos(yaw), math.sin(yaw)]) + lateral_speed * right
    assert lane_path(town02, t.location.x, t.location.y, yaw, *vel, 30.0, TOL, 0.5) is None, why


def test_inside_a_junction_the_straight_line_is_kept(town02):
    x, y, yaw, _ = junction_entries(town02)[0]
    inside = (x + 3.0 * math.cos(yaw), y + 3.0 * math.sin(yaw))
    assert _lane(town02, *inside).is_junction
    assert lane_path(town02, *inside, yaw, 5.0 * math.cos(yaw), 5.0 * math.sin(yaw), 30.0, TOL, 0.5) is None


def test_from_a_junction_entry_on_the_path_goes_straight(town02):
    """Which way it turns is unknown: past the entry the prediction is the line along the lane's last heading."""
    x, y, yaw, _ = next(e for e in junction_entries(town02) if e[2] == pytest.approx(math.pi / 2))
    start = _lane(town02, x, y - 12.0).transform.location  # 12 m before it on a straight approach
    path = lane_path(town02, start.x, start.y, yaw, 0.0, 5.0, 40.0, TOL, 0.5)
    assert path is not None
    xy, heading = along_path(path, np.array([20.0, 30.0, 40.0]))  # 8 to 28 m past the entry
    d = xy - np.array([x, y])
    assert np.allclose(d @ [-math.sin(yaw), math.cos(yaw)], 0.0, atol=0.3)  # on the entry's line
    assert np.allclose(d @ [math.cos(yaw), math.sin(yaw)], [8.0, 18.0, 28.0], atol=0.6)
    assert np.allclose(heading, heading[0])
