"""PID and pure-pursuit controllers shared by the privileged expert and the OccVLA agent.

Two ways in:
- `RouteFollower`: follow a world-frame route (the expert's dense plan) at a target speed.
- `WaypointController` / `waypoints_to_control`: turn a predicted ego-frame trajectory (6 waypoints, 0.5 s apart,
  nuScenes ego frame: x forward, y left, metres) into a carla.VehicleControl, as TransFuser / InterFuser do: the
  target speed comes from the waypoint spacing, the steering from an aim point on the trajectory.

Sign conventions: CARLA's steer is positive to the right. Points handed to `pure_pursuit_steer` are in the nuScenes
ego frame (y left), so a point on the left gives a negative steer. This module is the one place in agent/ that
converts between the two frames.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import carla
import numpy as np

from sim.types import FIXED_DELTA_SECONDS


# ------------------------------------------------------------------------------------------- PID
class PIDController:
    """A discrete PID with a windowed integral (no wind-up) and a backward-difference derivative."""

    def __init__(
        self, kp: float, ki: float = 0.0, kd: float = 0.0, window: int = 20, dt: float = FIXED_DELTA_SECONDS
    ) -> None:
        if dt <= 0 or not math.isfinite(dt):
            raise ValueError(f"PIDController: dt must be a positive number, got {dt}")
        if window < 1:
            raise ValueError(f"PIDController: window must be >= 1, got {window}")
        self.kp, self.ki, self.kd, self.dt = float(kp), float(ki), float(kd), float(dt)
        self._errors: deque[float] = deque(maxlen=int(window))

    def reset(self) -> None:
        self._errors.clear()

    def step(self, error: float) -> float:
        """One control step on `error` (setpoint - measurement); returns the control effort."""
        error = float(error)
        if not math.isfinite(error):
            raise ValueError(f"PIDController.step: error must be finite, got {error}")
        self._errors.append(error)
        integral = sum(self._errors) * self.dt
        derivative = (self._errors[-1] - self._errors[-2]) / self.dt if len(self._errors) > 1 else 0.0
        return self.kp * error + self.ki * integral + self.kd * derivative


# ------------------------------------------------------------------------------------ longitudinal
@dataclass
class LongitudinalConfig:
    """Speed tracking: a PID on (target - speed) mapped to throttle (>0) or brake (<0)."""

    kp: float = 0.9
    ki: float = 0.15
    kd: float = 0.02
    window: int = 20  # ticks of integral memory (1 s at 20 Hz)
    max_throttle: float = 0.75
    brake_gain: float = 0.35  # brake per m/s of over-speed (beyond `brake_deadband`)
    brake_deadband: float = 0.3  # m/s of over-speed tolerated before braking (coasting handles it)
    max_brake: float = 1.0
    stop_speed: float = 0.05  # m/s; a target below it means "stand still": hold the brake
    hold_brake: float = 0.6  # brake applied while standing still (stays put without slamming)


class LongitudinalController:
    """Target speed -> (throttle, brake). Brakes only when clearly too fast, so it does not chatter."""

    def __init__(self, config: LongitudinalConfig | None = None, dt: float = FIXED_DELTA_SECONDS) -> None:
        self.cfg = config or LongitudinalConfig()
        self.pid = PIDController(self.cfg.kp, self.cfg.ki, self.cfg.kd, self.cfg.window, dt)

    def reset(self) -> None:
        self.pid.reset()

    def step(self, target_speed: float, speed: float) -> tuple[float, float]:
        """Returns (throttle, brake) in [0, 1] for the target and measured speeds (m/s)."""
        if not (math.isfinite(target_speed) and math.isfinite(speed)):
            raise ValueError(
                f"LongitudinalController.step: non-finite speeds target={target_speed} speed={speed}"
            )
        c = self.cfg
        target_speed = max(0.0, float(target_speed))
        if target_speed < c.stop_speed:
            self.pid.reset()
            if speed < 0.3:
                return 0.0, c.hold_brake
            return 0.0, min(c.max_brake, max(c.hold_brake, c.brake_gain * speed))
        over = speed - target_speed
        if over > c.brake_deadband:
            self.pid.reset()
            return 0.0, float(np.clip(c.brake_gain * (over - c.brake_deadband) + 0.15, 0.0, c.max_brake))
        u = self.pid.step(target_speed - speed)
        return float(np.clip(u, 0.0, c.max_throttle)), 0.0


# ------------------------------------------------------------------------------------------ lateral
@dataclass
class LateralConfig:
    """Pure pursuit to a lookahead point; lookahead grows with speed."""

    wheelbase: float = 2.875  # m (Lincoln MKZ 2017, the ego in both backends)
    max_steer_deg: float = 70.0  # front-wheel angle at steer = 1
    lookahead_min: float = 3.0  # m
    lookahead_max: float = 12.0
    lookahead_gain: float = 0.55  # s: lookahead = min + gain * speed
    steer_limit: float = 1.0  # |steer| clip
    damping: float = 0.0  # optional PID-D term on the pursuit angle (0 = pure pursuit)

    def lookahead(self, speed: float) -> float:
        return float(
            np.clip(
                self.lookahead_min + self.lookahead_gain * max(speed, 0.0),
                self.lookahead_min,
                self.lookahead_max,
            )
        )


def pure_pursuit_steer(
    point_fwd: float, point_left: float, wheelbase: float = 2.875, max_steer_deg: float = 70.0
) -> float:
    """CARLA steer in [-1, 1] that drives the vehicle on an arc through an ego-frame point (x fwd, y left).

    Pure pursuit: curvature = 2 y / L^2 with L the distance to the point; wheel angle = atan(wheelbase * curvature).
    A point on the left (y > 0) gives a negative (left) CARLA steer.
    """
    dist2 = point_fwd * point_fwd + point_left * point_left
    if dist2 < 1e-6:
        return 0.0
    curvature = 2.0 * point_left / dist2  # 1/m, positive = turn left
    wheel = math.atan(wheelbase * curvature)
    return float(np.clip(-wheel / math.radians(max_steer_deg), -1.0, 1.0))


def world_to_ego(points_xy: np.ndarray, x: float, y: float, yaw_deg: float) -> np.ndarray:
    """World points (CARLA frame, y south) -> nuScenes ego frame (x forward, y left). (N, 2) -> (N, 2)."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    yaw = math.radians(yaw_deg)
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = pts[:, 0] - x, pts[:, 1] - y
    fwd = c * dx + s * dy
    right = -s * dx + c * dy
    return np.stack([fwd, -right], axis=1)  # (N, 2), y left


def ego_to_world(points_ego: np.ndarray, x: float, y: float, yaw_deg: float) -> np.ndarray:
    """Inverse of world_to_ego: (N, 2) ego (x fwd, y left) -> (N, 2) world (CARLA frame)."""
    pts = np.asarray(points_ego, dtype=np.float64).reshape(-1, 2)
    yaw = math.radians(yaw_deg)
    c, s = math.cos(yaw), math.sin(yaw)
    fwd, right = pts[:, 0], -pts[:, 1]
    return np.stack([x + c * fwd - s * right, y + s * fwd + c * right], axis=1)


def nearest_segment_projection(pts: np.ndarray) -> np.ndarray:
    """The polyline (N >= 2, ego frame) from the origin's projection on its closest segment onwards. (K, 2)"""
    a, b = pts[:-1], pts[1:]  # (N-1, 2) segments a -> b
    d = b - a
    t = np.clip(np.sum(-a * d, axis=1) / np.maximum(np.sum(d * d, axis=1), 1e-12), 0.0, 1.0)  # (N-1,)
    q = a + t[:, None] * d  # (N-1, 2) closest point of each segment
    i = int(np.argmin(np.hypot(q[:, 0], q[:, 1])))
    return np.vstack([q[i : i + 1], pts[i + 1 :]])


def point_at_distance(polyline: np.ndarray, distance: float) -> np.ndarray:
    """The point `distance` metres along a polyline (N, 2) from its first point; extrapolates past the end."""
    pts = np.asarray(polyline, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 1:
        return pts[0].copy()
    seg = np.diff(pts, axis=0)  # (N-1, 2)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])  # (N,)
    if distance >= cum[-1]:
        last = seg[seg_len > 1e-9]
        if len(last) == 0:
            return pts[-1].copy()
        d = last[-1] / np.linalg.norm(last[-1])
        return pts[-1] + d * (distance - cum[-1])
    i = int(np.searchsorted(cum, distance, side="right") - 1)
    i = min(max(i, 0), len(seg) - 1)
    t = (distance - cum[i]) / max(seg_len[i], 1e-9)
    return pts[i] + t * seg[i]


class RouteFollower:
    """Lateral + longitudinal control along a world-frame polyline (the expert's route)."""

    def __init__(
        self,
        lateral: LateralConfig | None = None,
        longitudinal: LongitudinalConfig | None = None,
        dt: float = FIXED_DELTA_SECONDS,
    ) -> None:
        self.lat = lateral or LateralConfig()
        self.lon = LongitudinalController(longitudinal, dt)
        self._prev_angle = 0.0
        self.dt = dt
        self.last_aim_world: np.ndarray | None = None

    def reset(self) -> None:
        self.lon.reset()
        self._prev_angle = 0.0

    def steer(self, path_ahead_world: np.ndarray, x: float, y: float, yaw_deg: float, speed: float) -> float:
        """Steer towards the lookahead point on `path_ahead_world` ((N, 2), starting near the ego)."""
        ego_pts = world_to_ego(path_ahead_world, x, y, yaw_deg)  # (N, 2)
        # Measure the lookahead from the ego's projection on the path (its closest segment), not from a path
        # vertex: with sparse vertices (a lane-change hop) the nearest vertex can lie metres behind the ego.
        rel = nearest_segment_projection(ego_pts) if len(ego_pts) > 1 else ego_pts
        aim = point_at_distance(rel, self.lat.lookahead(speed))
        self.last_aim_world = ego_to_world(aim[None], x, y, yaw_deg)[0]
        steer = pure_pursuit_steer(float(aim[0]), float(aim[1]), self.lat.wheelbase, self.lat.max_steer_deg)
        if self.lat.damping > 0:
            angle = math.atan2(aim[1], max(aim[0], 1e-3))
            steer -= self.lat.damping * (angle - self._prev_angle) / self.dt
            self._prev_angle = angle
        return float(np.clip(steer, -self.lat.steer_limit, self.lat.steer_limit))

    def control(
        self,
        path_ahead_world: np.ndarray,
        x: float,
        y: float,
        yaw_deg: float,
        speed: float,
        target_speed: float,
    ) -> carla.VehicleControl:
        """A full VehicleControl: pure-pursuit steer + PID speed tracking."""
        throttle, brake = self.lon.step(target_speed, speed)
        steer = self.steer(path_ahead_world, x, y, yaw_deg, speed)
        return carla.VehicleControl(throttle=throttle, steer=steer, brake=brake)


# ------------------------------------------------------------------------- trajectory -> control
@dataclass
class WaypointControlConfig:
    """Tunables for turning a predicted ego-frame trajectory into a control (TransFuser-like)."""

    waypoint_dt: float = 0.5  # s between predicted waypoints
    speed_segments: int = 2  # target speed = mean speed over the first k segments (from the ego origin)
    max_speed: float = 12.0  # m/s cap on the speed read off the waypoints
    stop_speed: float = 0.4  # m/s: a trajectory slower than this means "stop"
    lateral: LateralConfig = field(
        default_factory=lambda: LateralConfig(lookahead_min=2.5, lookahead_max=8.0, lookahead_gain=0.35)
    )
    longitudinal: LongitudinalConfig = field(default_factory=LongitudinalConfig)


class WaypointController:
    """Stateful controller for a stream of predicted trajectories (keeps the PID memory between ticks)."""

    def __init__(self, config: WaypointControlConfig | None = None, dt: float = FIXED_DELTA_SECONDS) -> None:
        self.cfg = config or WaypointControlConfig()
        self.lon = LongitudinalController(self.cfg.longitudinal, dt)
        self.last_target_speed = 0.0

    def reset(self) -> None:
        self.lon.reset()

    def target_speed(self, waypoints_ego: np.ndarray) -> float:
        """Mean speed over the first `speed_segments` segments, origin included (m/s)."""
        wps = _check_waypoints(waypoints_ego)  # (T, 2)
        k = max(1, min(self.cfg.speed_segments, len(wps)))
        pts = np.vstack([[0.0, 0.0], wps[:k]])  # (k+1, 2)
        length = float(np.sum(np.hypot(*np.diff(pts, axis=0).T)))
        return float(min(length / (k * self.cfg.waypoint_dt), self.cfg.max_speed))

    def step(self, waypoints_ego: np.ndarray, speed: float) -> carla.VehicleControl:
        """(T, 2) ego-frame waypoints (x fwd, y left) + measured speed (m/s) -> carla.VehicleControl."""
        wps = _check_waypoints(waypoints_ego)
        if not math.isfinite(speed):
            raise ValueError(f"waypoints_to_control: speed must be finite, got {speed}")
        c = self.cfg
        target = self.target_speed(wps)
        self.last_target_speed = target
        # Below stop_speed the trajectory means "stop"; over-speed braking is the longitudinal controller's job.
        throttle, brake = self.lon.step(0.0 if target < c.stop_speed else target, speed)
        path = np.vstack([[0.0, 0.0], wps])  # (T+1, 2)
        aim = point_at_distance(path, c.lateral.lookahead(speed))
        steer = 0.0
        if target >= c.stop_speed and float(np.hypot(*wps[-1])) > 0.5:
            steer = pure_pursuit_steer(
                float(aim[0]), float(aim[1]), c.lateral.wheelbase, c.lateral.max_steer_deg
            )
        steer = float(np.clip(steer, -c.lateral.steer_limit, c.lateral.steer_limit))
        return carla.VehicleControl(throttle=throttle, steer=steer, brake=brake)


def waypoints_to_control(
    waypoints_ego: np.ndarray, speed: float, controller: WaypointController | None = None
) -> carla.VehicleControl:
    """One-shot convenience: (T, 2) ego-frame waypoints (x fwd, y left, 0.5 s apart) + speed -> VehicleControl.

    Pass a persistent `controller` when calling every tick so the PID keeps its integral.
    """
    return (controller or WaypointController()).step(waypoints_ego, speed)


def _check_waypoints(waypoints_ego: np.ndarray) -> np.ndarray:
    wps = np.asarray(waypoints_ego, dtype=np.float64)
    if wps.ndim != 2 or wps.shape[1] != 2 or wps.shape[0] < 1:
        raise ValueError(f"waypoints must have shape (T, 2) (x forward, y left), got {wps.shape}")
    if not np.all(np.isfinite(wps)):
        raise ValueError("waypoints contain non-finite values")
    return wps
