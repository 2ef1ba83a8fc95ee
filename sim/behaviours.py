"""Scripted behaviours for scenario actors (crossing pedestrians, cut-ins, parked cars, ...).

Each is a small deterministic object with `step(pose, gt, dt) -> (pose, (vx, vy))` (sim.protocol.Behaviour);
world frame is CARLA's (x east, y south, yaw degrees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.types import GroundTruth, Pose


@dataclass
class Stationary:
    """Stays where it was spawned (parked vehicles, props)."""

    def step(self, pose: Pose, gt: GroundTruth | None, dt: float) -> tuple[Pose, tuple[float, float]]:
        return pose, (0.0, 0.0)


@dataclass
class ConstantVelocity:
    """Moves along its heading (or a fixed yaw) at a constant speed, optionally for a limited distance."""

    speed: float
    yaw: float | None = None
    max_distance: float = math.inf
    _travelled: float = 0.0

    def step(self, pose: Pose, gt: GroundTruth | None, dt: float) -> tuple[Pose, tuple[float, float]]:
        if self._travelled >= self.max_distance:
            return pose, (0.0, 0.0)
        yaw = math.radians(pose.yaw if self.yaw is None else self.yaw)
        d = min(self.speed * dt, self.max_distance - self._travelled)
        self._travelled += d
        vx, vy = math.cos(yaw) * d / dt, math.sin(yaw) * d / dt
        return Pose(pose.x + vx * dt, pose.y + vy * dt, pose.z, math.degrees(yaw)), (vx, vy)


@dataclass
class TriggeredMotion:
    """Waits until the ego comes within `trigger_distance`, then runs `then` (e.g. a crossing pedestrian)."""

    trigger_distance: float
    then: ConstantVelocity
    triggered: bool = False

    def step(self, pose: Pose, gt: GroundTruth | None, dt: float) -> tuple[Pose, tuple[float, float]]:
        if not self.triggered and gt is not None:
            e = gt.ego.pose
            self.triggered = math.hypot(e.x - pose.x, e.y - pose.y) <= self.trigger_distance
        if not self.triggered:
            return pose, (0.0, 0.0)
        return self.then.step(pose, gt, dt)


@dataclass
class WaypointFollower:
    """Follows a polyline of world (x, y) points at a target speed, then stops."""

    points: list[tuple[float, float]]
    speed: float
    _index: int = field(default=0)

    def step(self, pose: Pose, gt: GroundTruth | None, dt: float) -> tuple[Pose, tuple[float, float]]:
        budget = self.speed * dt
        x, y, yaw = pose.x, pose.y, pose.yaw
        while budget > 1e-9 and self._index < len(self.points):
            tx, ty = self.points[self._index]
            d = math.hypot(tx - x, ty - y)
            if d <= budget:
                x, y, budget = tx, ty, budget - d
                self._index += 1
            else:
                yaw = math.degrees(math.atan2(ty - y, tx - x))
                x += (tx - x) / d * budget
                y += (ty - y) / d * budget
                budget = 0.0
        vx, vy = (x - pose.x) / dt, (y - pose.y) / dt
        return Pose(x, y, pose.z, yaw), (vx, vy)
