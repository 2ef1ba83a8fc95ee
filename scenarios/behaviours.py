"""Behaviours for scenario actors that a Scenario drives tick by tick (sim.protocol.Behaviour contract).

sim.behaviours has fire-and-forget motions; scenarios need actors that wait for a start signal, change speed
on command (a lead vehicle that brakes, holds, drives on), keep off what is ahead of them and stop for red
lights when they are meant to. `PathMotion` is that: a point moving along a polyline with bounded acceleration,
commanded by its Scenario through `start()` / `set_target()`. Deterministic: no randomness, no wall clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scenarios.geometry import Polyline, first_intersection, wrap180
from sim.types import GroundTruth, Pose

LIGHT_HEADING_TOL = 45.0  # degrees between the path and a light's lane_yaw for the light to apply


@dataclass
class PathMotion:
    """Moves along `path` once started; speed tracks `target` within +accel / -decel (m/s, m/s^2).

    obey_lights: stop at the stop line of a Red / Yellow light whose approach the path crosses.
    follow_gap: keep this gap (metres, 0 = off) behind any actor or the ego standing in the path ahead.
    Adversaries (red-light runners, crossing cyclists) leave both off on purpose.
    """

    path: Polyline
    target: float  # m/s once started
    accel: float = 2.0
    decel: float = 4.0
    s: float = 0.0  # arc length now
    v: float = 0.0  # speed now
    active: bool = False
    obey_lights: bool = False
    follow_gap: float = 0.0
    width: float = 1.0  # half width used for the follow corridor, metres
    actor_id: int = -1  # set by the scenario after spawning, so the actor ignores itself
    _stop_lines: dict[int, float] | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        """Reached the end of the path."""
        return self.s >= self.path.length - 1e-6

    def start(self, target: float | None = None, initial_speed: float | None = None) -> None:
        self.active = True
        if target is not None:
            self.target = float(target)
        if initial_speed is not None:
            self.v = float(initial_speed)

    def set_target(self, target: float, decel: float | None = None) -> None:
        self.target = float(target)
        if decel is not None:
            self.decel = float(decel)

    def pose(self, z: float = 0.0) -> Pose:
        x, y, yaw = self.path.point_at(self.s)
        return Pose(x, y, z, yaw)

    # ------------------------------------------------------------------ stepping
    def step(self, pose: Pose, gt: GroundTruth | None, dt: float) -> tuple[Pose, tuple[float, float]]:
        if not self.active or self.done:
            self.v = 0.0
            p = self.pose(pose.z)
            return p, (0.0, 0.0)
        target = self.target
        stop_at = self._stop_distance(gt)
        if stop_at is not None:
            # the speed from which `decel` still stops in the remaining distance
            target = min(target, math.sqrt(2.0 * self.decel * max(stop_at, 0.0)))
        if self.v < target:
            self.v = min(target, self.v + self.accel * dt)
        else:
            self.v = max(target, self.v - self.decel * dt)
        self.s = min(self.path.length, self.s + self.v * dt)
        x, y, yaw = self.path.point_at(self.s)
        r = math.radians(yaw)
        return Pose(x, y, pose.z, yaw), (self.v * math.cos(r), self.v * math.sin(r))

    def _stop_distance(self, gt: GroundTruth | None) -> float | None:
        """Metres to where this actor must stand (red light, something ahead), or None."""
        if gt is None:
            return None
        best: float | None = None
        if self.obey_lights:
            if self._stop_lines is None:
                self._stop_lines = self._find_stop_lines(gt)
            for tl in gt.traffic_lights:
                s_line = self._stop_lines.get(tl.id)
                if s_line is None or tl.state not in ("Red", "Yellow"):
                    continue
                gap = s_line - self.s - 0.5
                if gap < -0.5:  # already past the line (entered on green): go on
                    continue
                if tl.state == "Yellow" and self.v ** 2 / (2.0 * self.decel) > gap:
                    continue  # too close to stop for yellow
                best = gap if best is None else min(best, gap)
        if self.follow_gap > 0.0:
            horizon = self.s + self.v ** 2 / (2.0 * self.decel) + self.follow_gap + 15.0
            others = [(a.id, a.x, a.y, a.extent[0]) for a in gt.actors] + [
                (-1, gt.ego.pose.x, gt.ego.pose.y, gt.ego.extent[0])]
            for aid, x, y, half_len in others:
                if aid == self.actor_id or abs(x - self.path.point_at(self.s)[0]) > 60.0:
                    continue
                s_o, lat = self.path.project(x, y, self.s + 0.5, horizon)
                if not math.isfinite(lat) or abs(lat) > self.width + 1.0:
                    continue
                gap = s_o - self.s - half_len - self.follow_gap
                best = gap if best is None else min(best, gap)
        return best

    def _find_stop_lines(self, gt: GroundTruth) -> dict[int, float]:
        out = {}
        for tl in gt.traffic_lights:
            (x0, y0), (x1, y1) = tl.stop_line
            hit = first_intersection(self.path, Polyline.from_points([(x0, y0), (x1, y1)]))
            if hit is None:
                continue
            yaw = self.path.point_at(hit[0])[2]
            if abs(wrap180(yaw - tl.lane_yaw)) <= LIGHT_HEADING_TOL:
                out[tl.id] = hit[0]
        return out
