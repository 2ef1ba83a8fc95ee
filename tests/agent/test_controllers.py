"""Controllers against the real ego vehicle model (sim.embedded.vehicle), no simulator needed."""

from __future__ import annotations

import math

import carla
import numpy as np
import pytest

from agent.controllers import (
    LongitudinalController,
    PIDController,
    RouteFollower,
    WaypointController,
    ego_to_world,
    point_at_distance,
    pure_pursuit_steer,
    waypoints_to_control,
    world_to_ego,
)
from sim.embedded.vehicle import VehicleModel
from sim.types import Pose


def _cross_track(route: np.ndarray, x: float, y: float) -> float:
    a, b = route[:-1], route[1:]
    d = b - a
    t = np.clip(np.sum((np.array([x, y]) - a) * d, axis=1) / np.sum(d * d, axis=1), 0, 1)
    p = a + t[:, None] * d
    return float(np.min(np.hypot(p[:, 0] - x, p[:, 1] - y)))


def _right_turn_route(radius: float = 12.0) -> np.ndarray:
    """Straight east 40 m, a 90 degree right turn (towards +y, CARLA's south), then 60 m south. (N, 2)"""
    pts = [(x, 0.0) for x in np.arange(0.0, 40.0, 1.0)]
    for a in np.linspace(0.0, math.pi / 2, 25)[1:]:
        pts.append((40.0 + radius * math.sin(a), radius - radius * math.cos(a)))
    pts += [(40.0 + radius, radius + d) for d in np.arange(1.0, 60.0, 1.0)]
    return np.array(pts)


def test_pid_terms_and_window():
    pid = PIDController(kp=2.0, ki=1.0, kd=0.0, window=4, dt=0.5)
    assert pid.step(1.0) == pytest.approx(2.0 + 0.5)
    for _ in range(10):
        out = pid.step(1.0)
    assert out == pytest.approx(2.0 + 1.0 * 4 * 0.5)  # the integral only remembers the window
    d = PIDController(kp=0.0, kd=1.0, dt=0.1)
    d.step(0.0)
    assert d.step(1.0) == pytest.approx(10.0)


@pytest.mark.parametrize("kwargs", [{"dt": 0.0}, {"dt": float("nan")}, {"window": 0}])
def test_pid_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match="PIDController"):
        PIDController(1.0, **kwargs)


def test_pid_rejects_nan_error():
    with pytest.raises(ValueError, match="finite"):
        PIDController(1.0).step(float("nan"))


def test_longitudinal_reaches_and_holds_target_speed():
    veh = VehicleModel(Pose())
    lon = LongitudinalController()
    speeds = []
    for _ in range(400):  # 20 s
        throttle, brake = lon.step(8.0, veh.speed)
        veh.step(carla.VehicleControl(throttle=throttle, brake=brake))
        speeds.append(veh.speed)
    assert max(speeds) < 8.0 * 1.08  # little overshoot
    assert abs(np.mean(speeds[-100:]) - 8.0) < 0.3
    # a zero target brings it to a stop and holds it there
    for _ in range(200):
        throttle, brake = lon.step(0.0, veh.speed)
        veh.step(carla.VehicleControl(throttle=throttle, brake=brake))
    assert veh.speed == 0.0
    assert lon.step(0.0, 0.0) == (0.0, lon.cfg.hold_brake)


def test_longitudinal_brakes_only_when_clearly_too_fast():
    lon = LongitudinalController()
    assert lon.step(8.0, 8.1)[1] == 0.0  # within the dead band: coast, no chatter
    throttle, brake = lon.step(4.0, 8.0)
    assert throttle == 0.0 and brake > 0.5


def test_pure_pursuit_signs():
    assert pure_pursuit_steer(10.0, 0.0) == 0.0
    left, right = pure_pursuit_steer(10.0, 2.0), pure_pursuit_steer(10.0, -2.0)
    assert left < 0 < right  # CARLA: positive steer turns right
    assert left == pytest.approx(-right)
    assert pure_pursuit_steer(0.0, 0.0) == 0.0
    assert -1.0 <= pure_pursuit_steer(0.1, 50.0) <= 1.0


def test_frame_conversions_round_trip():
    # A vehicle facing south (yaw 90 in CARLA): a point to the east is on its left.
    ego = world_to_ego(np.array([[11.0, 5.0], [10.0, 8.0]]), 10.0, 5.0, 90.0)
    np.testing.assert_allclose(ego, [[0.0, 1.0], [3.0, 0.0]], atol=1e-9)
    pts = np.random.default_rng(0).normal(size=(20, 2)) * 10
    back = ego_to_world(world_to_ego(pts, 3.0, -2.0, 37.0), 3.0, -2.0, 37.0)
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_point_at_distance_interpolates_and_extrapolates():
    line = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    np.testing.assert_allclose(point_at_distance(line, 5.0), [5.0, 0.0])
    np.testing.assert_allclose(point_at_distance(line, 15.0), [10.0, 5.0])
    np.testing.assert_allclose(point_at_distance(line, 25.0), [10.0, 15.0])


def test_route_follower_tracks_a_turn_closed_loop():
    route = _right_turn_route()
    veh = VehicleModel(Pose(0.0, 0.6, 0.0, 0.0))  # starts 0.6 m off the route
    follower = RouteFollower()
    errors = []
    for step in range(420):
        p = veh.pose
        i = int(np.argmin(np.hypot(route[:, 0] - p.x, route[:, 1] - p.y)))
        in_turn = 30.0 < p.x and p.y < 14.0
        ctrl = follower.control(
            route[max(i - 1, 0) : i + 40], p.x, p.y, p.yaw, veh.speed, 4.5 if in_turn else 8.0
        )
        veh.step(ctrl)
        if step > 60 and i < len(route) - 15:
            errors.append(_cross_track(route, veh.pose.x, veh.pose.y))
    assert veh.pose.y > 40.0  # made it round the corner and down the road
    assert max(errors) < 0.6
    assert np.mean(errors) < 0.2


def test_route_follower_is_steady_over_sparse_path_points():
    """A path with a 6 m gap between two points (a lane-change hop at a junction exit): the lookahead is
    measured from the ego's projection on the path, so the steer stays smooth. Measured from the nearest
    point, which falls behind the ego, the aim point crept towards the car and the steer saturated."""
    path = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [8.0, 0.0], [9.0, 0.0], [10.0, 0.0], [40.0, 0.0]])
    veh = VehicleModel(Pose(0.0, -0.3, 0.0, 0.0))
    veh.speed = 4.8
    follower = RouteFollower()
    steers, offsets = [], []
    for _ in range(60):  # 3 s at ~5 m/s: across the gap and beyond
        p = veh.pose
        ctrl = follower.control(path, p.x, p.y, p.yaw, veh.speed, 5.0)
        veh.step(ctrl)
        steers.append(ctrl.steer)
        offsets.append(abs(veh.pose.y))
    assert max(abs(s) for s in steers) < 0.15
    assert max(offsets) < 0.35 and offsets[-1] < 0.1


def test_waypoint_controller_speed_from_spacing_and_steer_sign():
    wc = WaypointController()
    straight = np.stack([np.arange(1, 7) * 2.5, np.zeros(6)], axis=1)  # (6, 2): 5 m/s
    assert wc.target_speed(straight) == pytest.approx(5.0)
    left = np.stack([np.arange(1, 7) * 2.5, 0.08 * (np.arange(1, 7) * 2.5) ** 2], axis=1)
    assert wc.step(left, 5.0).steer < -0.01
    stop = np.zeros((6, 2))
    ctrl = wc.step(stop, 3.0)
    assert ctrl.throttle == 0.0 and ctrl.brake > 0.0 and ctrl.steer == 0.0


def test_waypoints_to_control_drives_a_predicted_trajectory_closed_loop():
    """Replanning every tick with ideal 6-waypoint predictions of a 6 m/s lane keeps the car on it at 6 m/s."""
    veh = VehicleModel(Pose(0.0, 1.0, 0.0, 0.0))  # 1 m right of the lane y = 0
    wc = WaypointController()
    for _ in range(300):
        p = veh.pose
        along = np.arange(1, 7) * 0.5 * 6.0  # 6 m/s
        world = np.stack([p.x + along, np.zeros(6)], axis=1)  # the lane centre ahead
        veh.step(waypoints_to_control(world_to_ego(world, p.x, p.y, p.yaw), veh.speed, wc))
    assert abs(veh.pose.y) < 0.15
    assert abs(veh.speed - 6.0) < 0.4


@pytest.mark.parametrize("bad", [np.zeros((6,)), np.zeros((6, 3)), np.zeros((0, 2)), np.full((6, 2), np.nan)])
def test_waypoints_to_control_rejects_bad_waypoints(bad):
    with pytest.raises(ValueError, match="waypoints"):
        waypoints_to_control(bad, 1.0)
