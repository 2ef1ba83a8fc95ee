import math

import carla
import pytest

from sim.embedded.vehicle import VehicleModel
from sim.types import Pose


def drive(model: VehicleModel, control: carla.VehicleControl, seconds: float) -> None:
    for _ in range(int(round(seconds / 0.05))):
        model.step(control)


def test_full_throttle_accelerates_within_realistic_limits():
    v = VehicleModel(Pose())
    drive(v, carla.VehicleControl(throttle=1.0), 5.0)
    assert 10.0 < v.speed < 25.0  # a mid-size sedan: 0-100 km/h in 6-12 s
    assert v.pose.x > 20.0 and abs(v.pose.y) < 1e-9


def test_full_brake_stops_and_never_reverses():
    v = VehicleModel(Pose())
    drive(v, carla.VehicleControl(throttle=1.0), 4.0)
    v0 = v.speed
    drive(v, carla.VehicleControl(brake=1.0), 0.5)
    decel = (v0 - v.speed) / 0.5
    assert 6.0 < decel < 10.0
    drive(v, carla.VehicleControl(brake=1.0), 5.0)
    assert v.speed == 0.0


def test_positive_steer_turns_right_in_carla_frame():
    v = VehicleModel(Pose(yaw=0.0))
    drive(v, carla.VehicleControl(throttle=0.4, steer=0.3), 3.0)
    assert v.pose.yaw > 10.0  # yaw grows clockwise (towards +y, south) in CARLA
    assert v.pose.y > 0.0


def test_reverse_gear_moves_backwards():
    v = VehicleModel(Pose(yaw=90.0))
    drive(v, carla.VehicleControl(throttle=0.5, reverse=True), 2.0)
    assert v.speed < 0.0 and v.pose.y < -0.5


def test_hand_brake_and_nan_control_stop_the_car():
    v = VehicleModel(Pose())
    drive(v, carla.VehicleControl(throttle=1.0), 3.0)
    drive(v, carla.VehicleControl(hand_brake=True), 4.0)
    assert v.speed == 0.0
    drive(v, carla.VehicleControl(throttle=1.0), 2.0)
    drive(v, carla.VehicleControl(throttle=float("nan")), 4.0)
    assert v.speed == 0.0


def test_lateral_acceleration_is_capped_at_speed():
    v = VehicleModel(Pose())
    drive(v, carla.VehicleControl(throttle=1.0), 6.0)
    v.step(carla.VehicleControl(throttle=0.3, steer=1.0))
    for _ in range(10):
        v.step(carla.VehicleControl(throttle=0.3, steer=1.0))
        assert abs(v.lat_accel) <= v.params.max_lateral_accel + 1e-6
    assert math.isfinite(v.pose.x)


@pytest.mark.parametrize("yaw", [0.0, 90.0, -135.0])
def test_state_velocity_matches_heading(yaw):
    v = VehicleModel(Pose(yaw=yaw))
    drive(v, carla.VehicleControl(throttle=0.5), 1.0)
    s = v.state()
    assert math.isclose(math.degrees(math.atan2(s.vy, s.vx)), yaw, abs_tol=1e-6)
