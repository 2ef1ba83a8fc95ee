"""The expert's route: a dense polyline with per-point speed caps, junction and lane attributes from carla.Map,
and the local path (route or a sideways-offset copy) the obstacle checks run along."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import carla
import numpy as np

from agent.expert_config import ExpertConfig
from agent.geometry import polygon_distance, project_onto_segments, wrap_angle
from sim.route_planner import beside_sidewalk

# CARLA's RoadOption values (sim/route_planner.RoadOption is an IntEnum with the same numbers).
VOID, LEFT, RIGHT, STRAIGHT, LANEFOLLOW, CHANGELANELEFT, CHANGELANERIGHT = -1, 1, 2, 3, 4, 5, 6


# Reasons for the speed cap per route point (index into CAP_REASONS).
CAP_REASONS = ("cruise", "speed_limit", "curve", "junction_turn", "lane_change")


@dataclass
class RoutePlan:
    """A dense route with per-point attributes. Arrays have N entries, N >= 2."""

    xy: np.ndarray  # (N, 2) world points, metres
    heading: np.ndarray  # (N,) travel direction, radians (CARLA yaw convention)
    option: np.ndarray  # (N,) int RoadOption
    s: np.ndarray  # (N,) arc length from the first point, metres
    speed_limit: np.ndarray  # (N,) m/s, the map's limit (capped by config.max_speed)
    speed_cap: np.ndarray  # (N,) m/s, min(limit, curve, junction turn, lane change)
    cap_reason: np.ndarray  # (N,) int index into CAP_REASONS
    junction: np.ndarray  # (N,) bool
    # (E, 4) [x, y, yaw (rad), half lane width]: where lanes enter the map's junctions (map-wide, static)
    junction_entries: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)), repr=False, compare=False)
    lanes: carla.Map | None = field(default=None, repr=False, compare=False)  # the town's map: lane prediction
    # (N, 2) the lane centres under the points, before the lane-change hops were smoothed (xy pulls the first
    # metres of a new lane back towards the old one): the geometry of a lane change's target lane
    lane_xy: np.ndarray | None = field(default=None, repr=False, compare=False)
    # (the polygon list the spans were computed for, the spans); crosswalks are static per town
    _crosswalk_cache: tuple[Sequence[np.ndarray], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.xy)

    @property
    def length(self) -> float:
        return float(self.s[-1])

    @classmethod
    def build(
        cls,
        xy: np.ndarray,
        options: Sequence[int] | None = None,
        speed_limits: np.ndarray | None = None,
        junction: np.ndarray | None = None,
        config: ExpertConfig | None = None,
    ) -> RoutePlan:
        """From raw points: drops duplicates, computes headings, arc length, curvature caps.

        speed_limits: (N,) m/s per point or None for the config's default limit.
        """
        cfg = config or ExpertConfig()
        pts = np.asarray(xy, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
            raise ValueError(f"a route needs at least 2 points of shape (N, 2), got {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise ValueError("route points contain non-finite values")
        n = len(pts)
        opts = np.full(n, LANEFOLLOW, np.int64) if options is None else np.asarray(options, np.int64)
        lim = (
            np.full(n, cfg.default_speed_limit_kmh / 3.6)
            if speed_limits is None
            else np.asarray(speed_limits, np.float64)
        )
        jn = np.zeros(n, bool) if junction is None else np.asarray(junction, bool)
        for name, arr in (("options", opts), ("speed_limits", lim), ("junction", jn)):
            if len(arr) != n:
                raise ValueError(f"route {name} has {len(arr)} entries for {n} points")
        keep = np.concatenate([[True], np.hypot(*np.diff(pts, axis=0).T) > 1e-3])
        pts, opts, lim, jn = pts[keep], opts[keep], lim[keep], jn[keep]
        if len(pts) < 2:
            raise ValueError("a route needs at least 2 distinct points")
        lane_xy = pts
        pts = _smooth_lane_changes(pts, opts, lane_change_length(cfg, lim))
        seg = np.diff(pts, axis=0)  # (N-1, 2)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        s = np.concatenate([[0.0], np.cumsum(seg_len)])  # (N,)
        seg_heading = np.arctan2(seg[:, 1], seg[:, 0])
        heading = np.concatenate([seg_heading, seg_heading[-1:]])  # (N,)

        # Curvature from the heading change over +-w metres of arc.
        w = cfg.curve_window_m
        lo = np.searchsorted(s, s - w, side="left")
        hi = np.minimum(np.searchsorted(s, s + w, side="right") - 1, len(s) - 1)
        dh = wrap_angle(heading[hi] - heading[lo])
        ds = np.maximum(s[hi] - s[lo], 1e-3)
        kappa = np.abs(dh) / ds  # (N,) 1/m
        curve = np.sqrt(cfg.curve_lateral_accel / np.maximum(kappa, 1e-6))
        curve = np.maximum(curve, cfg.min_curve_speed)

        limit = np.minimum(lim, cfg.max_speed)
        turn = np.where(jn & np.isin(opts, (LEFT, RIGHT)), cfg.junction_turn_speed, np.inf)
        # in town the lane-change cap; off town streets (a highway, faster than the town cap) a change keeps near
        # the traffic's speed: merging slowly into faster traffic is what makes it brake
        fast = limit > min(cfg.town_max_speed, cfg.max_speed) + 1e-6
        lc_speed = np.where(fast, np.maximum(cfg.lane_change_speed, cfg.fast_lane_change_fraction * limit),
                            cfg.lane_change_speed)
        lane_change = np.where(np.isin(opts, (CHANGELANELEFT, CHANGELANERIGHT)), lc_speed, np.inf)
        cruise = np.full(len(pts), cfg.max_speed)
        stack = np.stack([cruise, limit, curve, turn, lane_change])  # (5, N), rows follow CAP_REASONS
        reason = np.argmin(stack, axis=0)
        cap = stack[reason, np.arange(len(pts))]
        return cls(pts, heading, opts, s, limit, cap, reason, jn, lane_xy=lane_xy)

    @classmethod
    def from_dense_route(
        cls,
        dense_route: Sequence[tuple[Any, Any]],
        cmap: carla.Map | None = None,
        config: ExpertConfig | None = None,
    ) -> RoutePlan:
        """From the leaderboard's dense plan [(carla.Transform, RoadOption)], with limits/junctions from cmap."""
        cfg = config or ExpertConfig()
        if len(dense_route) < 2:
            raise ValueError(f"the dense route has {len(dense_route)} points; at least 2 are needed")
        xy = np.array([[t.location.x, t.location.y] for t, _ in dense_route], dtype=np.float64)
        options = [int(getattr(o, "value", o)) for _, o in dense_route]
        limits = junction = None
        if cmap is not None:
            limits, junction = _map_attributes(cmap, xy, cfg)
        plan = cls.build(xy, options, limits, junction, cfg)
        if cmap is not None:
            plan.junction_entries = junction_entries(cmap)
            plan.lanes = cmap
        return plan

    def segments(self, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segment starts (K, 2), ends (K, 2) and start arc lengths (K,) for points i0..i1 (inclusive)."""
        i0 = max(0, min(i0, len(self) - 2))
        i1 = max(i0 + 1, min(i1, len(self) - 1))
        return self.xy[i0:i1], self.xy[i0 + 1 : i1 + 1], self.s[i0:i1]

    def next_junction(self, s_from: float) -> tuple[float, float] | None:
        """(start_s, end_s) of the first junction block that ends after arc length `s_from`, or None."""
        i = self.index_at(s_from)
        idx = np.nonzero(self.junction[i:])[0]
        if len(idx) == 0:
            return None
        start = i + int(idx[0])
        rest = np.nonzero(~self.junction[start:])[0]
        end = start + int(rest[0]) if len(rest) else len(self) - 1
        return float(self.s[start]), float(self.s[end])

    def index_at(self, s: float) -> int:
        return int(min(max(np.searchsorted(self.s, s, side="right") - 1, 0), len(self) - 1))

    def crosswalk_spans(self, polygons: Sequence[np.ndarray], half_width: float) -> np.ndarray:
        """(C, 3) [s_in, s_out, polygon index]: the stretches of route where a box `half_width` either side of
        it overlaps a crosswalk, sorted by s_in. Cached for the same polygon list (crosswalks are static)."""
        if self._crosswalk_cache is not None and self._crosswalk_cache[0] is polygons:
            return self._crosswalk_cache[1]
        spans: list[tuple[float, float, int]] = []
        # the route resampled every 0.25 m: (M, 2) points and their arc lengths
        ss = np.arange(0.0, self.length, 0.25)
        pts = np.stack([np.interp(ss, self.s, self.xy[:, 0]), np.interp(ss, self.s, self.xy[:, 1])], axis=1)
        for ci, poly in enumerate(polygons):
            poly = np.asarray(poly, np.float64)
            lo, hi = poly.min(axis=0) - half_width, poly.max(axis=0) + half_width
            near = np.nonzero(np.all((pts >= lo) & (pts <= hi), axis=1))[0]
            if len(near) == 0:
                continue
            hit = near[polygon_distance(pts[near], poly) <= half_width]
            if len(hit) == 0:
                continue
            runs = np.split(hit, np.nonzero(np.diff(hit) > 1)[0] + 1)  # contiguous stretches
            spans += [(float(ss[r[0]]), float(ss[r[-1]]), ci) for r in runs]
        out = np.array(sorted(spans), np.float64).reshape(-1, 3)
        self._crosswalk_cache = (polygons, out)
        return out


def lane_change_length(cfg: ExpertConfig, limit: np.ndarray | float) -> np.ndarray:
    """Metres of new lane a lane change is spread over, per route point: `lane_change_length_m`, or
    `lane_change_time_s` at the speed limit where that is longer (highways)."""
    return np.maximum(cfg.lane_change_length_m, np.asarray(limit, np.float64) * cfg.lane_change_time_s)


def _smooth_lane_changes(pts: np.ndarray, opts: np.ndarray, length: np.ndarray | float) -> np.ndarray:
    """Spread each lane-change hop of the dense route over `length` metres of the new lane (per point or one).

    The route planner (as CARLA's) changes lane in one sideways hop between neighbouring lanes; driven or
    swept as a corridor, that diagonal reaches across into the next lane (and its oncoming traffic). Points
    of the new lane are shifted back towards the old lane by a smoothstep-faded offset instead."""
    out = pts.copy()
    lengths = np.broadcast_to(np.asarray(length, np.float64), (len(pts),))
    if len(pts) < 3:
        return out
    seg = np.diff(pts, axis=0)  # (N-1, 2)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    hops = np.nonzero((seg_len > 1.5) & np.isin(opts[1:], (CHANGELANELEFT, CHANGELANERIGHT)))[0]
    is_hop = np.zeros(len(pts), bool)
    is_hop[hops + 1] = True  # a point reached by a hop
    for i in hops:
        # the new lane's heading: past any further hops right after this one (a change over two lanes hops twice
        # in a row; measured across the second hop, the first one looked like no sideways move at all)
        m = i + 1
        while m + 1 < len(pts) and is_hop[m + 1]:
            m += 1
        if m + 1 >= len(pts):
            continue
        h = pts[m + 1] - pts[m]
        h /= max(float(np.hypot(*h)), 1e-9)
        normal = np.array([-h[1], h[0]])
        offset = float(np.dot(pts[i] - pts[i + 1], normal))  # old lane, sideways from the new one
        length = float(lengths[i + 1])
        if length <= 0:
            continue
        arc = 0.0
        j = i + 1
        while j < len(pts) and arc <= length:
            u = arc / length
            out[j] += (1.0 - u * u * (3.0 - 2.0 * u)) * offset * normal  # hops close together add up
            if j + 1 < len(pts):
                arc += float(np.hypot(*(pts[j + 1] - pts[j])))
            j += 1
    return out


def _map_attributes(cmap: carla.Map, xy: np.ndarray, cfg: ExpertConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-point speed limits (m/s, from '274' landmarks the route drives past) and junction flags.

    On town streets (a sidewalk beside the lane; junctions take the street they are entered from) the limit is
    capped at `cfg.town_max_speed_kmh`: CARLA's Town01 has 90 km/h signs on its town streets. Roads without a
    sidewalk (highways, ramps) keep the map's limit, up to `cfg.max_speed_kmh`.
    """
    n = len(xy)
    junction = np.zeros(n, bool)
    town = np.ones(n, bool)
    street = True
    road_kmh = road_speed_limits(cmap)
    own = np.full(n, np.nan)  # km/h: the limit of the road under each point, where the map gives lane limits
    changes: dict[int, tuple[int, float]] = {}  # landmark id -> (route index, km/h)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    step = 8  # query every few points with an overlapping window
    for i in range(n):
        wp = cmap.get_waypoint(
            carla.Location(float(xy[i, 0]), float(xy[i, 1]), 0.0),
            project_to_road=True,
            lane_type=carla.LaneType.Driving,
        )
        if wp is None:
            continue
        junction[i] = wp.is_junction
        own[i] = road_kmh.get(wp.road_id, np.nan)
        if not wp.is_junction:
            street = beside_sidewalk(wp)
        town[i] = street
        if i % step or wp.is_junction:
            continue
        window = float(s[min(i + step, n - 1)] - s[i]) + 2.0
        for lm in wp.get_landmarks_of_type(window, "274", False):
            j = int(min(np.searchsorted(s, s[i] + lm.distance), n - 1))
            if lm.id not in changes:
                changes[lm.id] = (j, float(lm.value))
    limits_kmh = np.full(n, cfg.default_speed_limit_kmh)
    for j, value in sorted(changes.values()):
        if value > 0:  # CARLA's '274' values are km/h (the xodr says mph; CARLA reads km/h)
            limits_kmh[j:] = value
    limits_kmh = np.where(np.isnan(own), limits_kmh, own)  # a map's lane limits win over signs
    capped = town if cfg.town_cap_lane_limits else town & np.isnan(own)
    limits_kmh = np.where(capped, np.minimum(limits_kmh, cfg.town_max_speed_kmh), limits_kmh)
    return limits_kmh / 3.6, junction


_LANE_SPEED_RE = re.compile(r'<speed\s+sOffset="[^"]*"\s+max="([^"]+)"\s+unit="([^"]+)"')
_ROAD_RE = re.compile(r'<road\b(?:[^>"]|"[^"]*")*?\sid="([^"]+)"')  # attribute values may hold '>'
_UNIT_KMH = {"km/h": 1.0, "m/s": 3.6, "mph": 1.609344}


def road_speed_limits(cmap: carla.Map) -> dict[int, float]:
    """Road id -> km/h from the OpenDRIVE lane <speed> records of the map (the fastest lane of each road), or {}.

    The generated towns write each road's limit on its lanes; carla.Map gives a route only the '274' signs it
    drives past, so a route starting after a road's sign would otherwise drive the default limit there. CARLA's
    own towns have no lane speed records (their signs stay the source)."""
    text = cmap.to_opendrive()
    out: dict[int, float] = {}
    starts = [(m.start(), m.group(1)) for m in _ROAD_RE.finditer(text)]
    for k, (pos, rid) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(text)
        for m in _LANE_SPEED_RE.finditer(text, pos, end):
            factor = _UNIT_KMH.get(m.group(2))
            if factor is not None and rid.lstrip("-").isdigit():
                out[int(rid)] = max(out.get(int(rid), 0.0), float(m.group(1)) * factor)
    return out


def junction_entries(cmap: carla.Map) -> np.ndarray:
    """(E, 4) [x, y, yaw (rad), half lane width]: the start of every driving lane into a junction of the map,
    one row per entering lane (the connecting lanes leaving it share the point)."""
    junctions: dict[int, Any] = {}
    for wp in cmap.generate_waypoints(2.0):
        if wp.is_junction:
            j = wp.get_junction()
            junctions.setdefault(j.id, j)
    rows: dict[tuple[float, float], tuple[float, float, float, float]] = {}
    for j in junctions.values():
        for entry, _ in j.get_waypoints(carla.LaneType.Driving):
            t = entry.transform
            key = (round(t.location.x, 1), round(t.location.y, 1))
            rows.setdefault(key, (t.location.x, t.location.y, math.radians(t.rotation.yaw), entry.lane_width / 2))
    return np.array(list(rows.values()), np.float64).reshape(-1, 4)


@dataclass
class LocalPath:
    """The stretch of route the ego will drive, possibly shifted sideways (a nudge). Segments a -> b."""

    a: np.ndarray  # (K, 2) segment starts
    b: np.ndarray  # (K, 2) segment ends
    s0: np.ndarray  # (K,) route arc length at each start
    heading: np.ndarray  # (K,) radians
    offset: float  # m, + = left

    @property
    def s_max(self) -> float:
        return float(self.s0[-1] + np.hypot(*(self.b[-1] - self.a[-1])))


def local_path(route: RoutePlan, i0: int, i1: int, offset: float = 0.0) -> LocalPath:
    """Route points i0..i1 as segments, shifted `offset` metres to the left of travel (negative: right)."""
    a, b, s0 = route.segments(i0, i1)
    heading = np.arctan2(b[:, 1] - a[:, 1], b[:, 0] - a[:, 0])  # (K,)
    if offset:
        left = np.stack([np.sin(heading), -np.cos(heading)], axis=1)  # (K, 2): CARLA y points south
        a, b = a + offset * left, b + offset * left
    return LocalPath(a, b, s0, heading, float(offset))


def route_progress(route: RoutePlan, x: float, y: float, prev_index: int) -> tuple[int, float]:
    """Nearest route point in a forward window (monotonic progress) and the ego's arc length."""
    lo = max(prev_index - 2, 0)
    hi = route.index_at(route.s[min(prev_index, len(route) - 1)] + 30.0) + 2
    a, b, s0 = route.segments(lo, hi)
    s, _, _seg, _ = project_onto_segments(np.array([[x, y]]), a, b, s0)
    s_ego = float(s[0])
    idx = max(route.index_at(s_ego), prev_index)
    if idx >= len(route) - 2:  # past the last point: keep counting along the final heading
        h = route.heading[-1]
        beyond = (x - route.xy[-1, 0]) * math.cos(h) + (y - route.xy[-1, 1]) * math.sin(h)
        s_ego = max(s_ego, route.length + beyond)
    return idx, s_ego
