"""The ego vehicle: a kinematic bicycle with CARLA's control semantics and a Lincoln MKZ's limits.

Why not a dynamic tyre model: agents are tuned against CARLA's PhysX vehicle, which at urban speeds behaves
close to a kinematic bicycle with a lateral-acceleration cap; a kinematic model is deterministic, cheap and
good enough for closed-loop evaluation of planners that output waypoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import carla

from sim.types import EGO_EXTENT, FIXED_DELTA_SECONDS, EgoState, Pose


@dataclass(frozen=True)
class VehicleParams:
    wheelbase: float = 2.875  # m, Lincoln MKZ 2017
    max_steer_deg: float = 70.0  # front-wheel angle at steer = 1, as CARLA's MKZ physics
    steer_time_constant: float = 0.08  # s, first-order steering lag
    max_lateral_accel: float = 8.0  # m/s^2, tyre friction cap on yaw rate at speed
    max_accel: float = 3.8  # m/s^2 at full throttle from standstill
    max_power_accel_speed: float = 8.0  # m/s; above it acceleration falls as 1/v (power limit)
    max_brake_decel: float = 8.0  # m/s^2 at brake = 1
    hand_brake_decel: float = 5.0  # m/s^2
    rolling_decel: float = 0.15  # m/s^2 coast-down at low speed
    drag: float = 0.0004  # 1/m: aero decel = drag * v^2
    max_speed: float = 50.0  # m/s
    max_reverse_speed: float = 6.0  # m/s
    extent: tuple[float, float, float] = EGO_EXTENT


def _clip(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else min(v, hi)


class VehicleModel:
    """Integrates carla.VehicleControl at a fixed step. Pose in CARLA's world frame (yaw clockwise from +x)."""

    def __init__(self, pose: Pose, params: VehicleParams | None = None) -> None:
        self.params = params or VehicleParams()
        self.pose = Pose(pose.x, pose.y, pose.z, pose.yaw, 0.0, 0.0)
        self.speed = 0.0  # signed, along heading
        self.steer_angle = 0.0  # rad, actual front wheel angle
        self.yaw_rate = 0.0  # deg/s
        self.accel = 0.0  # m/s^2 along heading
        self.lat_accel = 0.0
        self.control = carla.VehicleControl()

    def stop(self) -> None:
        """Zero the velocity (an inelastic collision)."""
        self.speed = 0.0
        self.yaw_rate = 0.0

    def step(self, control: carla.VehicleControl, dt: float = FIXED_DELTA_SECONDS) -> None:
        p = self.params
        self.control = control
        throttle = _clip(float(control.throttle), 0.0, 1.0)
        brake = _clip(float(control.brake), 0.0, 1.0)
        steer = _clip(float(control.steer), -1.0, 1.0)
        if not all(math.isfinite(v) for v in (throttle, brake, steer)):
            throttle, brake, steer = 0.0, 1.0, 0.0  # a NaN control is treated as an emergency stop
        direction = -1.0 if control.reverse else 1.0

        # Steering with a first-order lag towards the commanded wheel angle (CARLA: +steer turns right).
        target = steer * math.radians(p.max_steer_deg)
        alpha = 1.0 - math.exp(-dt / p.steer_time_constant)
        self.steer_angle += alpha * (target - self.steer_angle)

        v = self.speed
        av = abs(v)
        drive = throttle * p.max_accel * min(1.0, p.max_power_accel_speed / max(av, 1e-3))
        resist = brake * p.max_brake_decel + (p.hand_brake_decel if control.hand_brake else 0.0)
        resist += p.rolling_decel + p.drag * v * v
        # Throttle pushes in the gear's direction; brake and resistances oppose motion.
        a = direction * drive
        if av > 1e-6:
            a -= math.copysign(resist, v)
            new_v = v + a * dt
            if (new_v > 0) != (v > 0) and abs(direction * drive) < resist:
                new_v = 0.0  # resistances stop the car, never reverse it
        else:
            new_v = a * dt if abs(direction * drive) > resist else 0.0
        new_v = _clip(new_v, -p.max_reverse_speed, p.max_speed)
        self.accel = (new_v - v) / dt
        self.speed = new_v

        # Kinematic bicycle about the vehicle centre; yaw rate capped by the lateral-acceleration limit.
        vm = 0.5 * (v + new_v)
        yaw_rate = vm * math.tan(self.steer_angle) / p.wheelbase  # rad/s
        if abs(vm) > 0.5:
            cap = p.max_lateral_accel / abs(vm)
            yaw_rate = _clip(yaw_rate, -cap, cap)
        self.lat_accel = yaw_rate * vm
        yaw = math.radians(self.pose.yaw)
        mid = yaw + 0.5 * yaw_rate * dt
        self.pose.x += vm * math.cos(mid) * dt
        self.pose.y += vm * math.sin(mid) * dt
        self.pose.yaw = (math.degrees(yaw + yaw_rate * dt) + 180.0) % 360.0 - 180.0
        self.yaw_rate = math.degrees(yaw_rate)

    def state(self) -> EgoState:
        yaw = math.radians(self.pose.yaw)
        return EgoState(
            pose=Pose(self.pose.x, self.pose.y, self.pose.z, self.pose.yaw, 0.0, 0.0),
            vx=self.speed * math.cos(yaw), vy=self.speed * math.sin(yaw), speed=self.speed,
            accel=(self.accel, self.lat_accel, 0.0), yaw_rate=self.yaw_rate, extent=self.params.extent,
            steer=float(self.control.steer), throttle=float(self.control.throttle),
            brake=float(self.control.brake),
        )
