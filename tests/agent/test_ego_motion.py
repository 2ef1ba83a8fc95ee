"""Dead reckoning between policy calls and the creep safeguard (agent/ego_motion.py)."""

import math

import numpy as np

from agent.controllers import world_to_ego
from agent.ego_motion import EgoMotion, StuckConfig, StuckSafeguard


def test_fixed_points_move_with_the_ego_translation_and_turn():
    m = EgoMotion()
    for _ in range(8):  # 0.4 s at 6 m/s, steering left
        m.advance(6.0, -0.1, 0.05)
    assert m.pose.x > 2.0 and m.pose.y > 0.0 and m.pose.yaw > 0.0  # moved forward and turned left
    pts = np.array([[10.0, 0.0], [12.0, 3.0], [5.0, -2.0]])
    got = m.to_current_frame(pts)
    # independent check: the points as a world seen from the new pose (CARLA frame: y right, yaw clockwise)
    want = world_to_ego(pts * [1, -1], m.pose.x, -m.pose.y, -math.degrees(m.pose.yaw))
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_a_stop_point_comes_nearer_as_the_ego_drives_on():
    m = EgoMotion()
    stop_at_10m = np.tile([[10.0, 0.0]], (6, 1))
    for _ in range(4):  # 0.2 s at 5 m/s, straight
        m.advance(5.0, 0.0, 0.05)
    np.testing.assert_allclose(m.follow_trajectory(stop_at_10m), np.tile([[9.0, 0.0]], (6, 1)), atol=1e-6)


def test_constant_velocity_trajectory_is_retimed_not_shrunk():
    m = EgoMotion()
    wps = np.stack([5.0 * np.arange(1, 7) * 0.5, np.zeros(6)], 1)  # 5 m/s straight
    for _ in range(3):
        m.advance(5.0, 0.0, 0.05)
    np.testing.assert_allclose(m.follow_trajectory(wps), wps, atol=1e-6)  # same speed read off it
    m.reset()
    np.testing.assert_allclose(m.follow_trajectory(wps), wps, atol=1e-6)


def test_stuck_safeguard_creeps_after_standing_and_resets():
    s = StuckSafeguard(StuckConfig(stuck_seconds=1.0, creep_seconds=0.5, creep_speed=2.0))
    for _ in range(19):
        s.update(0.0, 0.05)
    assert not s.should_check()
    s.update(0.0, 0.05)
    assert s.should_check()
    s.blocked_for_a_reason()  # something in the way: wait another period
    assert not s.should_check() and not s.creeping
    for _ in range(20):
        s.update(0.0, 0.05)
    s.start_creep()
    wps = s.creep_waypoints(np.zeros((6, 2)))
    np.testing.assert_allclose(wps[:, 0], 2.0 * 0.5 * np.arange(1, 7), atol=1e-6)  # straight at creep speed
    assert np.allclose(wps[:, 1], 0.0)
    for _ in range(10):
        s.update(0.0, 0.05)
    assert not s.creeping and s.still_time == 0.0 and s.creeps == 1
    s.update(3.0, 0.05)  # moving resets the counter
    assert s.still_time == 0.0
    side = s.creep_waypoints(np.tile([[0.0, 5.0]], (6, 1)))  # a sideways "trajectory": clipped heading
    assert abs(math.degrees(math.atan2(side[-1, 1], side[-1, 0]))) <= 30.0 + 1e-6
