"""The leaderboard's route criteria, evaluated on the simulator's ground truth once per tick.

Each test follows scenario_runner's atomic criterion of the same name (leaderboard 2.0 route set-up):
RouteCompletionTest, OutsideRouteLanesTest, CollisionTest, RunningRedLightTest, RunningStopTest,
MinimumSpeedRouteTest (4 checkpoints), InRouteTest (30 m, ends the route), ActorBlockedTest (0.1 m/s for
180 s, ends the route) and the RouteTimeoutBehavior. They read `sim.types.GroundTruth` only, so they work
the same on every backend. Where ground truth differs from a CARLA server (stop-sign trigger volumes,
traffic-light stop lines), the docstring of the test says what stands in for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import carla
import numpy as np

from leaderboard.rules import RULES, LeaderboardRules
from leaderboard.scores import TrafficEvent, TrafficEventType
from sim.route_planner import RoadOption
from sim.types import GroundTruth

E = TrafficEventType
DEFAULT_SPEED_LIMIT_KMH = 30.0  # a CARLA vehicle's speed limit before it passes any speed sign


def _fmt(x: float, y: float, z: float) -> str:
    return f"(x={round(x, 3)}, y={round(y, 3)}, z={round(z, 3)})"


@dataclass
class RouteGeometry:
    """A dense route as arrays: positions (N, 3), unit forward vectors (N, 2), accumulated metres (N,)."""

    xyz: np.ndarray
    fwd: np.ndarray
    accum: np.ndarray
    options: list[RoadOption]

    @staticmethod
    def from_route(route: Sequence[tuple[carla.Transform, RoadOption]]) -> RouteGeometry:
        if len(route) < 2:
            raise ValueError(f"a route needs at least 2 points, got {len(route)}")
        xyz = np.array([[t.location.x, t.location.y, t.location.z] for t, _ in route], dtype=np.float64)
        yaw = np.radians([t.rotation.yaw for t, _ in route])
        fwd = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)
        seg = np.linalg.norm(np.diff(xyz, axis=0), axis=1)
        accum = np.concatenate([[0.0], np.cumsum(seg)])
        return RouteGeometry(xyz, fwd, accum, [RoadOption(o) for _, o in route])

    def __len__(self) -> int:
        return len(self.xyz)

    @property
    def length(self) -> float:
        return float(self.accum[-1])

    def passed(self, index: int, x: float, y: float) -> bool:
        """True when (x, y) is ahead of route point `index` along its forward vector (the leaderboard's dot test)."""
        d = np.array([x, y]) - self.xyz[index, :2]
        return float(d @ self.fwd[index]) > 0

    def advance(self, index: int, window: int, x: float, y: float) -> int:
        """The furthest point among the next `window` ones that (x, y) has passed; `index` if none."""
        new = index
        for i in range(index + 1, min(index + window + 1, len(self))):
            if self.passed(i, x, y):
                new = i
        return new


# ---------------------------------------------------------------------- individual tests
class RouteCompletionTest:
    """Percentage of the route (by distance) the ego has passed; 100 once > 99 % and within 10 m of the end."""

    WINDOWS_SIZE = 2
    DISTANCE_THRESHOLD = 10.0
    PERCENTAGE_THRESHOLD = 99.0

    def __init__(self, geo: RouteGeometry) -> None:
        self.geo = geo
        self.index = 0
        self.actual_value = 0.0
        self.success = False
        self._perc = geo.accum / max(geo.length, 1e-9) * 100.0

    def update(self, gt: GroundTruth) -> None:
        if self.success:
            return
        p = gt.ego.pose
        for i in range(self.index, min(self.index + self.WINDOWS_SIZE + 1, len(self.geo))):
            if self.geo.passed(i, p.x, p.y):
                self.index = i
                self.actual_value = float(self._perc[i])
        self.actual_value = round(self.actual_value, 2)
        end = self.geo.xyz[-1]
        if (
            self.actual_value > self.PERCENTAGE_THRESHOLD
            and math.dist((p.x, p.y, p.z), tuple(end)) < self.DISTANCE_THRESHOLD
        ):
            self.success = True
            self.actual_value = 100.0

    def event(self, frame: int) -> TrafficEvent:
        return TrafficEvent(
            E.ROUTE_COMPLETION,
            frame,
            f"Agent has completed {self.actual_value} of the route",
            {"route_completed": self.actual_value},
        )


class OutsideRouteLanesTest:
    """Metres of route driven while off the driving/parking lanes or in a lane of the wrong direction.

    Reported as a percentage of the route distance driven so far (one event, updated as it grows).
    `v1=True` is leaderboard 1.0's variant (with allowed_out_distance=1.3): a route point counts as passed by the
    forward vector of the map's lane waypoint there (2.x: the route transform's), and after a road/lane change
    outside a junction a same-direction lane clears the wrong-lane state (2.x only toggles on a reversal).
    """

    ALLOWED_OUT_DISTANCE = 0.5
    MAX_VEHICLE_ANGLE = 120.0
    MAX_WAYPOINT_ANGLE = 150.0
    WINDOWS_SIZE = 3

    def __init__(
        self, geo: RouteGeometry, cmap: carla.Map, allowed_out_distance: float | None = None, v1: bool = False
    ) -> None:
        self.geo, self.map = geo, cmap
        self.allowed_out_distance = self.ALLOWED_OUT_DISTANCE if allowed_out_distance is None else allowed_out_distance
        self.v1 = v1
        self._map_fwd: dict[int, np.ndarray] = {}  # 1.0: route index -> (3,) forward of the map waypoint there
        self.index = 0
        self.outside_lane_active = False
        self.wrong_lane_active = False
        self._last_road_id: int | None = None
        self._last_lane_id: int | None = None
        self._last_wp: carla.Waypoint | None = None
        self.total_distance = 0.0
        self.wrong_distance = 0.0
        self.event: TrafficEvent | None = None

    def update(self, gt: GroundTruth) -> None:
        p = gt.ego.pose
        loc = carla.Location(p.x, p.y, p.z)
        if self._last_wp is None:
            self._last_wp = self.map.get_waypoint(loc)
        self._outside_driving_lanes(loc)
        self._wrong_lane(loc, p.yaw)
        for i in range(self.index + 1, min(self.index + self.WINDOWS_SIZE + 1, len(self.geo))):
            if self._passed(i, p.x, p.y, p.z):
                d = float(np.linalg.norm(self.geo.xyz[i] - self.geo.xyz[self.index]))
                self.total_distance += d
                if self.outside_lane_active or self.wrong_lane_active:
                    self.wrong_distance += d
                if self.wrong_distance:
                    self._set_event(gt.frame)
                self.index = i

    def _passed(self, i: int, x: float, y: float, z: float) -> bool:
        if not self.v1:
            return self.geo.passed(i, x, y)
        if i not in self._map_fwd:
            pt = self.geo.xyz[i]
            wp = self.map.get_waypoint(carla.Location(float(pt[0]), float(pt[1]), float(pt[2])))
            f = wp.transform.get_forward_vector() if wp is not None else None
            self._map_fwd[i] = (
                np.array([f.x, f.y, f.z]) if f is not None else np.array([*self.geo.fwd[i], 0.0])
            )
        return float((np.array([x, y, z]) - self.geo.xyz[i]) @ self._map_fwd[i]) > 0

    def _set_event(self, frame: int) -> None:
        pct = self.wrong_distance / self.total_distance * 100
        msg = (
            f"Agent went outside its route lanes for about {round(self.wrong_distance, 3)} meters "
            f"({round(pct, 2)}% of the completed route)"
        )
        if self.event is None:
            self.event = TrafficEvent(E.OUTSIDE_ROUTE_LANES_INFRACTION, frame)
        self.event.frame, self.event.message = frame, msg
        self.event.data = {"distance": self.wrong_distance, "percentage": pct}

    def _outside_driving_lanes(self, loc: carla.Location) -> None:
        driving = self.map.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Driving)
        parking = self.map.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Parking)
        d_drive = loc.distance(driving.transform.location) if driving is not None else math.inf
        d_park = loc.distance(parking.transform.location) if parking is not None else math.inf
        if d_drive == math.inf and d_park == math.inf:
            self.outside_lane_active = True
            return
        dist, width = (d_park, parking.lane_width) if d_drive >= d_park else (d_drive, driving.lane_width)
        self.outside_lane_active = bool(dist > width / 2 + self.allowed_out_distance)

    def _wrong_lane(self, loc: carla.Location, ego_yaw: float) -> None:
        wp = self.map.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Driving)
        if wp is None:
            return
        if wp.is_junction:
            self.wrong_lane_active = False
        elif self._last_road_id != wp.road_id or self._last_lane_id != wp.lane_id:
            if self._last_wp is not None and self._last_wp.is_junction:
                angle = (wp.transform.rotation.yaw % 360 - ego_yaw % 360) % 360
                self.wrong_lane_active = not (
                    angle < self.MAX_VEHICLE_ANGLE or angle > 360 - self.MAX_VEHICLE_ANGLE
                )
            elif self._last_wp is not None:
                angle = (self._last_wp.transform.rotation.yaw % 360 - wp.transform.rotation.yaw % 360) % 360
                if self.v1:  # 1.0: a reversal toggles, any other lane change clears
                    if self.MAX_WAYPOINT_ANGLE <= angle <= 360 - self.MAX_WAYPOINT_ANGLE:
                        self.wrong_lane_active = not self.wrong_lane_active
                    else:
                        self.wrong_lane_active = False
                elif self.MAX_WAYPOINT_ANGLE < angle < 360 - self.MAX_WAYPOINT_ANGLE:
                    self.wrong_lane_active = not self.wrong_lane_active
        self._last_road_id, self._last_lane_id, self._last_wp = wp.road_id, wp.lane_id, wp


class CollisionTest:
    """Collisions from the simulator's contact events, classified and de-duplicated as the leaderboard does.

    Two collisions within 5 m count once; the same actor again within 5 s counts once; a collision while the
    ego is (almost) at rest (< 0.1 m/s, measured on the tick before the contact) is not the ego's fault.
    """

    COLLISION_RADIUS = 5.0
    MAX_ID_TIME = 5.0
    EPSILON = 0.1

    def __init__(self) -> None:
        self.events: list[TrafficEvent] = []
        self._last_id: int | None = None
        self._last_time: float | None = None
        self._last_loc: tuple[float, float, float] | None = None
        self._prev_speed = 0.0

    def update(self, gt: GroundTruth) -> None:
        p = gt.ego.pose
        here = (p.x, p.y, p.z)
        if self._last_loc is not None and math.dist(here, self._last_loc) > self.COLLISION_RADIUS:
            self._last_loc = None
        if self._last_id is not None and gt.timestamp - self._last_time > self.MAX_ID_TIME:
            self._last_id = None
        speed = max(self._prev_speed, math.hypot(gt.ego.vx, gt.ego.vy))
        for ev in gt.events:
            if ev.kind != "collision":
                continue
            if self._last_id is not None and ev.other_id == self._last_id:
                continue
            if self._last_loc is not None and math.dist(here, self._last_loc) <= self.COLLISION_RADIUS:
                continue
            if speed < self.EPSILON:
                continue
            kind = self._classify(ev.other_type_id, ev.other_category)
            if kind is None:
                continue
            self._last_time, self._last_loc = gt.timestamp, here
            if ev.other_id >= 0:
                self._last_id = ev.other_id
            msg = (
                f"Agent collided against object with type={ev.other_type_id or ev.other_category} and "
                f"id={ev.other_id} at {_fmt(*here)}"
            )
            self.events.append(
                TrafficEvent(kind, gt.frame, msg, {"x": p.x, "y": p.y, "z": p.z, "other_id": ev.other_id})
            )
        self._prev_speed = math.hypot(gt.ego.vx, gt.ego.vy)

    @staticmethod
    def _classify(type_id: str, category: str) -> TrafficEventType | None:
        t = type_id or ""
        if ("static" in t or "traffic" in t) and "sidewalk" not in t:
            return E.COLLISION_STATIC
        if "vehicle" in t:
            return E.COLLISION_VEHICLE
        if "walker" in t:
            return E.COLLISION_PEDESTRIAN
        return {
            "static": E.COLLISION_STATIC,
            "vehicle": E.COLLISION_VEHICLE,
            "walker": E.COLLISION_PEDESTRIAN,
        }.get(category)


def _segments_intersect(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float], d: tuple[float, float]
) -> bool:
    def orient(p, q, r) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    def on_seg(p, q, r) -> bool:
        return (
            min(p[0], r[0]) - 1e-9 <= q[0] <= max(p[0], r[0]) + 1e-9
            and min(p[1], r[1]) - 1e-9 <= q[1] <= max(p[1], r[1]) + 1e-9
        )

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if ((o1 > 0) != (o2 > 0)) and ((o3 > 0) != (o4 > 0)) and o1 != 0 and o2 != 0 and o3 != 0 and o4 != 0:
        return True
    return (
        (o1 == 0 and on_seg(a, c, b))
        or (o2 == 0 and on_seg(a, d, b))
        or (o3 == 0 and on_seg(c, a, d))
        or (o4 == 0 and on_seg(c, b, d))
    )


class RunningRedLightTest:
    """Crossing a red light's stop line with the vehicle's tail, driving along the approach direction.

    As the leaderboard: the tail segment (from 0.8 x half-length to half-length + 1 m behind the centre) must
    intersect the stop line while the light is Red and the ego heads the way of the lane (positive dot product).
    The stop line is GroundTruth's `stop_line` (the server's trigger-volume waypoints stand behind it in CARLA),
    widened to 0.6 lane width each side of its centre when it is shorter. The same light is never counted twice
    in a row.
    """

    DISTANCE_LIGHT = 15.0

    def __init__(self) -> None:
        self.events: list[TrafficEvent] = []
        self._last_id: int | None = None

    def update(self, gt: GroundTruth) -> None:
        p = gt.ego.pose
        ext = gt.ego.extent[0]
        yaw = math.radians(p.yaw)
        fx, fy = math.cos(yaw), math.sin(yaw)
        tail_close = (p.x - 0.8 * ext * fx, p.y - 0.8 * ext * fy)
        tail_far = (p.x - (ext + 1.0) * fx, p.y - (ext + 1.0) * fy)
        for tl in gt.traffic_lights:
            if self._last_id is not None and self._last_id == tl.id:
                continue
            if tl.state != "Red":
                continue
            (x1, y1), (x2, y2) = tl.stop_line
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            if math.hypot(cx - p.x, cy - p.y) > self.DISTANCE_LIGHT:
                continue
            ly = math.radians(tl.lane_yaw)
            if fx * math.cos(ly) + fy * math.sin(ly) <= 0:
                continue
            if _segments_intersect(tail_close, tail_far, (x1, y1), (x2, y2)):
                msg = f"Agent ran a red light {tl.id} at {_fmt(tl.x, tl.y, tl.z)}"
                self.events.append(
                    TrafficEvent(
                        E.TRAFFIC_LIGHT_INFRACTION,
                        gt.frame,
                        msg,
                        {"id": tl.id, "x": tl.x, "y": tl.y, "z": tl.z},
                    )
                )
                self._last_id = tl.id
                break


class RunningStopTest:
    """Passing a stop sign's area without having come to a stop (< 0.1 m/s) while inside it.

    CARLA tests the sign's trigger volume against waypoints up to 4 m ahead of the ego. Here the trigger area
    is the approach lane from STOP_ZONE_BEFORE metres before the stop line to STOP_ZONE_AFTER metres past it
    (lateral: the stop line's half length x 1.2), tested against the ego centre and points up to 4 m ahead.
    """

    PROXIMITY_THRESHOLD = 4.0
    SPEED_THRESHOLD = 0.1
    WAYPOINT_STEP = 0.5
    STOP_ZONE_BEFORE = 3.0
    STOP_ZONE_AFTER = 1.0

    def __init__(self) -> None:
        self.events: list[TrafficEvent] = []
        self._target = None
        self._stop_completed = False
        self._last_failed: int | None = None

    def _affected(self, gt: GroundTruth, sign) -> bool:
        p = gt.ego.pose
        yaw = math.radians(p.yaw)
        fx, fy = math.cos(yaw), math.sin(yaw)
        ly = math.radians(sign.lane_yaw)
        lx, lyy = math.cos(ly), math.sin(ly)
        if fx * lx + fy * lyy < -0.17:
            return False
        (x1, y1), (x2, y2) = sign.stop_line
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = max(math.hypot(x2 - x1, y2 - y1) / 2, 1.0) * 1.2
        steps = int(self.PROXIMITY_THRESHOLD / self.WAYPOINT_STEP)
        for k in range(steps + 1):
            px, py = p.x + k * self.WAYPOINT_STEP * fx, p.y + k * self.WAYPOINT_STEP * fy
            along = (px - cx) * lx + (py - cy) * lyy
            across = -(px - cx) * lyy + (py - cy) * lx
            if -self.STOP_ZONE_BEFORE <= along <= self.STOP_ZONE_AFTER and abs(across) <= half:
                return True
        return False

    def update(self, gt: GroundTruth) -> None:
        speed = math.hypot(gt.ego.vx, gt.ego.vy)
        yaw = math.radians(gt.ego.pose.yaw)
        if gt.ego.vx * math.cos(yaw) + gt.ego.vy * math.sin(yaw) < -0.17 * max(speed, 1e-9):
            return  # going backwards: ignore stops
        if self._target is None:
            for sign in gt.stop_signs:
                if self._affected(gt, sign):
                    self._target = sign
                    break
            return
        if not self._stop_completed and speed < self.SPEED_THRESHOLD:
            self._stop_completed = True
        if not self._affected(gt, self._target):
            if not self._stop_completed and self._last_failed != self._target.id:
                s = self._target
                msg = f"Agent ran a stop with id={s.id} at {_fmt(s.x, s.y, s.z)}"
                self.events.append(
                    TrafficEvent(E.STOP_INFRACTION, gt.frame, msg, {"id": s.id, "x": s.x, "y": s.y, "z": s.z})
                )
                self._last_failed = s.id
            self._target = None
            self._stop_completed = False


class MinimumSpeedRouteTest:
    """Ego mean speed vs the surrounding traffic's mean speed, per quarter of the route (leaderboard 2.0).

    'Surrounding traffic' = the background vehicles (ground-truth actors with source 'traffic') within
    SURROUNDING_RADIUS of the ego; a quarter without any gives 100 %. A quarter below 100 % is a
    MIN_SPEED_INFRACTION with that percentage. CARLA averages over every background vehicle, but its
    background activity only keeps vehicles on the roads around the ego; our NPCs fill a 100 m disc, so the
    radius keeps the comparison to the traffic the ego actually shares the road with.
    """

    WINDOWS_SIZE = 2
    RATIO = 1.0
    SURROUNDING_RADIUS = 50.0  # metres

    def __init__(self, geo: RouteGeometry, checkpoints: int = 4) -> None:
        self.geo = geo
        self.checkpoint_dist = geo.length / checkpoints
        self.index = 0
        self.current_dist = 0.0
        self._mean_speed = self._actor_speed = 0.0
        self._points = 0
        self.events: list[TrafficEvent] = []
        self.checkpoint_values: list[float] = []

    def update(self, gt: GroundTruth) -> None:
        p = gt.ego.pose
        for i in range(self.index, min(self.index + self.WINDOWS_SIZE + 1, len(self.geo))):
            if self.geo.passed(i, p.x, p.y):
                self.index = i
        if self.geo.accum[self.index] - self.current_dist > self.checkpoint_dist:
            self._close_checkpoint(gt.frame)
            self.current_dist = float(self.geo.accum[self.index])
        p0 = gt.ego.pose
        background = [
            a for a in gt.actors
            if a.category == "vehicle" and a.source == "traffic"
            and (a.x - p0.x) ** 2 + (a.y - p0.y) ** 2 <= self.SURROUNDING_RADIUS**2
        ]
        if background:
            self._mean_speed += sum(a.speed for a in background) / len(background)
            self._actor_speed += math.hypot(gt.ego.vx, gt.ego.vy)
            self._points += 1

    def _close_checkpoint(self, frame: int) -> None:
        if self._points > 0 and self._mean_speed:
            value = round(
                (self._actor_speed / self._points) / (self.RATIO * self._mean_speed / self._points) * 100, 2
            )
        else:
            value = 100.0
        if value < 100:
            self.events.append(
                TrafficEvent(
                    E.MIN_SPEED_INFRACTION,
                    frame,
                    f"Average speed is {value}% of the surrounding traffic's one",
                    {"percentage": value},
                )
            )
        self.checkpoint_values.append(value)
        self._mean_speed = self._actor_speed = 0.0
        self._points = 0

    def terminate(self, frame: int) -> None:
        """Routes end near 99 %: record the last checkpoint when the ego got past 95 % of the route."""
        if self.geo.accum[self.index] / max(self.geo.length, 1e-9) > 0.95:
            self._close_checkpoint(frame)


class InRouteTest:
    """Route deviation: more than 30 m from the route, or more than 30 % of the route driven over 15 m off it."""

    MAX_ROUTE_PERCENTAGE = 30.0
    WINDOWS_SIZE = 5

    def __init__(self, geo: RouteGeometry, offroad_max: float = 30.0) -> None:
        self.geo = geo
        self.offroad_max = offroad_max
        self.offroad_min = offroad_max / 2
        self.index = 0
        self.out_route_distance = 0.0
        self.in_safe_route = True
        self.events: list[TrafficEvent] = []
        self.failed = False

    def update(self, gt: GroundTruth) -> None:
        if self.failed:
            return
        p = gt.ego.pose
        lo, hi = self.index, min(self.index + self.WINDOWS_SIZE + 1, len(self.geo))
        d = np.hypot(self.geo.xyz[lo:hi, 0] - p.x, self.geo.xyz[lo:hi, 1] - p.y)
        closest = lo + int(len(d) - 1 - np.argmin(d[::-1]))  # the furthest of equally close points
        shortest = float(d[closest - lo])
        off_route = True
        if shortest < self.offroad_max:
            off_route = False
            self.in_safe_route = shortest < self.offroad_min
        if closest != self.index:
            new = float(self.geo.accum[closest] - self.geo.accum[self.index])
            if not self.in_safe_route:
                self.out_route_distance += new
                if 100 * self.out_route_distance / max(self.geo.length, 1e-9) > self.MAX_ROUTE_PERCENTAGE:
                    off_route = True
            self.index = closest
        if off_route:
            self.failed = True
            self.events.append(
                TrafficEvent(
                    E.ROUTE_DEVIATION,
                    gt.frame,
                    f"Agent deviated from the route at {_fmt(p.x, p.y, p.z)}",
                    {"x": p.x, "y": p.y, "z": p.z},
                )
            )


class ActorBlockedTest:
    """The ego below `min_speed` for more than `max_time` seconds: blocked, the route ends."""

    def __init__(self, min_speed: float = 0.1, max_time: float = 180.0) -> None:
        self.min_speed, self.max_time = min_speed, max_time
        self._last_valid: float | None = None
        self.events: list[TrafficEvent] = []
        self.failed = False

    def update(self, gt: GroundTruth) -> None:
        if self.failed:
            return
        speed = math.hypot(gt.ego.vx, gt.ego.vy)
        if speed < self.min_speed and self._last_valid is not None:
            if gt.timestamp - self._last_valid > self.max_time:
                p = gt.ego.pose
                self.failed = True
                self.events.append(
                    TrafficEvent(
                        E.VEHICLE_BLOCKED,
                        gt.frame,
                        f"Agent got blocked at {_fmt(p.x, p.y, p.z)}",
                        {"x": p.x, "y": p.y, "z": p.z},
                    )
                )
        else:
            self._last_valid = gt.timestamp


class RouteTimeout:
    """Leaderboard 2.0 route timeout: 300 s, plus for every metre advanced, 1 / (10 % of the speed limit) s."""

    MIN_TIMEOUT = 300.0
    TIMEOUT_ROUTE_PERC = 10.0
    WINDOW = 3

    def __init__(self, geo: RouteGeometry, speed_limits_kmh: np.ndarray) -> None:
        self.geo = geo
        self.limits = speed_limits_kmh  # (N,) km/h at each route point
        self.index = 0
        self.timeout_value = self.MIN_TIMEOUT
        self.start_time: float | None = None
        self.timed_out = False

    def update(self, gt: GroundTruth) -> None:
        if self.start_time is None:
            self.start_time = gt.timestamp - 0.05
        p = gt.ego.pose
        new = self.index
        for i in range(self.index, min(self.index + self.WINDOW + 1, len(self.geo))):
            if self.geo.passed(i, p.x, p.y):
                new = i
        if new > self.index:
            dist = float(self.geo.accum[new] - self.geo.accum[self.index])
            speed = max(float(self.limits[new]), 1.0) / 3.6 * self.TIMEOUT_ROUTE_PERC / 100
            self.timeout_value += dist / speed
            self.index = new
        if gt.timestamp - self.start_time > self.timeout_value:
            self.timed_out = True


class FixedRouteTimeout:
    """Leaderboard 1.0 route timeout: a fixed budget of int(0.8 s x dense route metres + 5 s) of game time."""

    def __init__(self, timeout_value: float) -> None:
        self.timeout_value = float(timeout_value)
        self.start_time: float | None = None
        self.timed_out = False

    def update(self, gt: GroundTruth) -> None:
        if self.start_time is None:
            self.start_time = gt.timestamp - 0.05
        if gt.timestamp - self.start_time > self.timeout_value:
            self.timed_out = True


# ---------------------------------------------------------------------- speed limits along a route
def _road_speeds(xodr: str) -> dict[int, float]:
    """road id -> first <speed max> of the road's <type> records, km/h."""
    out: dict[int, float] = {}
    for m in re.finditer(r"<road\b([^>]*)>(.*?)</road>", xodr, flags=re.DOTALL):
        rid = re.search(r'\bid="([^"]+)"', m.group(1))
        sp = re.search(r'<type\b[^>]*>\s*<speed\s+max="([^"]+)"(?:\s+unit="([^"]+)")?', m.group(2))
        if not rid or not sp:
            continue
        try:
            v = float(sp.group(1))
            road = int(rid.group(1))
        except ValueError:
            continue
        unit = (sp.group(2) or "m/s").lower()
        out[road] = v if unit == "km/h" else v * 1.609344 if unit == "mph" else v * 3.6
    return out


def route_speed_limits(cmap: carla.Map, route: Sequence[tuple[carla.Transform, RoadOption]]) -> np.ndarray:
    """Speed limit (km/h) the ego would have at each route point.

    Speed-limit signs (OpenDRIVE signal type 274) passed along the route set the limit, as a CARLA vehicle's
    limit is set by the sign trigger volumes; before the first sign, the road's <type><speed> record or 30 km/h.
    """
    n = len(route)
    limits = np.full(n, DEFAULT_SPEED_LIMIT_KMH)
    try:
        speeds = _road_speeds(cmap.to_opendrive())
    except RuntimeError:
        speeds = {}
    xy = np.array([[t.location.x, t.location.y] for t, _ in route])
    yaws = np.array([t.rotation.yaw for t, _ in route])
    changes: dict[int, float] = {}
    for lm in cmap.get_all_landmarks_of_type("274"):
        loc = lm.transform.location
        d = np.hypot(xy[:, 0] - loc.x, xy[:, 1] - loc.y)
        # a sign governs the route where it stands beside it (< 8 m) facing the travel direction (+-60 deg)
        dyaw = np.abs((yaws - lm.transform.rotation.yaw + 180.0) % 360.0 - 180.0)
        cand = np.nonzero((d < 8.0) & ((dyaw < 60.0) | (dyaw > 120.0)))[0]
        if len(cand) and lm.value > 0:
            changes[int(cand[0])] = float(lm.value)
    current = None
    for i, (t, _) in enumerate(route):
        if i in changes:
            current = changes[i]
        if current is not None:
            limits[i] = current
        elif speeds:
            wp = cmap.get_waypoint(t.location)
            if wp is not None and wp.road_id in speeds:
                limits[i] = speeds[wp.road_id]
    return limits


# ---------------------------------------------------------------------- all of them
class RouteCriteria:
    """Every criterion of a leaderboard route, updated together once per tick."""

    def __init__(
        self,
        route: Sequence[tuple[carla.Transform, RoadOption]],
        cmap: carla.Map,
        speed_limits_kmh: np.ndarray | None = None,
        rules: LeaderboardRules | None = None,
    ) -> None:
        rules = rules or RULES["2.0"]
        self.rules = rules
        self.geo = RouteGeometry.from_route(route)
        self.completion = RouteCompletionTest(self.geo)
        self.outside_lanes = OutsideRouteLanesTest(
            self.geo, cmap, rules.outside_lanes_allowed_m, v1=rules.outside_lanes_v1
        )
        self.collision = CollisionTest()
        self.red_light = RunningRedLightTest()
        self.stop = RunningStopTest()
        # 1.0 has no minimum-speed test: the object stays (a no-op) so observers can read it either way
        self.min_speed = MinimumSpeedRouteTest(self.geo, checkpoints=4)
        self.in_route = InRouteTest(self.geo, offroad_max=30.0)
        self.blocked = ActorBlockedTest(min_speed=0.1, max_time=180.0)
        fixed = rules.route_timeout(self.geo.length)
        if fixed is not None:
            self.timeout: RouteTimeout | FixedRouteTimeout = FixedRouteTimeout(fixed)
        else:
            limits = speed_limits_kmh if speed_limits_kmh is not None else route_speed_limits(cmap, route)
            self.timeout = RouteTimeout(self.geo, limits)
        self._frame = 0

    def update(self, gt: GroundTruth) -> None:
        self._frame = gt.frame
        for c in (
            self.completion,
            self.outside_lanes,
            self.collision,
            self.red_light,
            self.stop,
            self.min_speed if self.rules.min_speed_test else None,
            self.in_route,
            self.blocked,
            self.timeout,
        ):
            if c is not None:
                c.update(gt)

    @property
    def done(self) -> bool:
        """The route ends: target reached, deviated, blocked or timed out."""
        return (
            self.completion.success or self.in_route.failed or self.blocked.failed or self.timeout.timed_out
        )

    def terminate(self) -> None:
        if self.rules.min_speed_test:
            self.min_speed.terminate(self._frame)

    def events(self) -> list[TrafficEvent]:
        """All events in frame order, the route-completion event included (as the statistics manager reads them)."""
        evs = [
            *self.collision.events,
            *self.red_light.events,
            *self.stop.events,
            *self.min_speed.events,
            *self.in_route.events,
            *self.blocked.events,
        ]
        if self.outside_lanes.event is not None:
            evs.append(self.outside_lanes.event)
        evs.sort(key=lambda e: e.frame)
        evs.append(self.completion.event(self._frame))
        return evs
