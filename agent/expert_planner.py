"""The privileged expert's decision logic: ground truth + route (+ map) -> target speed and a reason.

Everything here is plain numpy on sim.types ground truth, so it is unit-testable without a simulator.
The design is rule based and explicit:

1. A static speed-cap profile along the route: the map's speed limits, curvature (v = sqrt(a_lat / kappa)),
   junction turns and lane changes; looked ahead with a comfortable deceleration.
2. Virtual obstacles on the route, each with a gap and a speed, all handled by one IDM law:
   red / yellow lights and stop signs at their stop lines, vehicles and pedestrians inside the route corridor
   (ego half width + a margin, following the route's curves), and actors whose prediction enters the corridor
   before the ego can clear the conflict point (crossing traffic at junctions, pedestrians stepping out from
   behind parked cars: ground truth sees them all). Predictions are constant-velocity lines, except for vehicles
   following a lane outside a junction: along the lane to the next junction (agent/lane_prediction.py), so
   oncoming cars on a bend stay in their lane. Vehicles approaching a red light stop at
   its line, and background vehicles approaching a junction without lights stand 2 s at its entry first (the
   Traffic Manager's rule): neither is extrapolated through. A yellow seen beginning is passed when the tail
   clears the line before the red.
   Junctions: the ego waits at a junction's entry (never inside it) while a slow vehicle ahead would leave it
   standing there, while a pedestrian or cyclist is in its path inside it, or while crossing traffic is
   predicted (over a longer horizon) to pass through it before the ego could clear.
   Crosswalks: the ego waits before a crosswalk (never on it) while a pedestrian on or beside it is in its
   path, or while a slow vehicle ahead would leave it standing on the crosswalk.
3. The target speed is the minimum over (1) and (2); its reason is the winning constraint.
4. Unstick: standing still for long with nothing legal to wait for first tries a nudge (a sideways offset of
   up to `max_nudge_m` past a stalled, partly-blocking actor, checked with a kinematic rollout of the ego's
   box), else a short creep that ignores predicted vehicles (never red lights, never pedestrians, never
   something already close in the corridor).

Frames: CARLA world (x east, y south, yaw degrees); the route is a polyline in that frame.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import carla
import numpy as np

from agent.controllers import RouteFollower
from agent.expert_config import ExpertConfig
from agent.lane_prediction import along_path, lane_path
from sim.types import ActorState, GroundTruth

# CARLA's RoadOption values (sim/route_planner.RoadOption is an IntEnum with the same numbers).
VOID, LEFT, RIGHT, STRAIGHT, LANEFOLLOW, CHANGELANELEFT, CHANGELANERIGHT = -1, 1, 2, 3, 4, 5, 6

# Reasons for the speed cap per route point (index into CAP_REASONS).
CAP_REASONS = ("cruise", "speed_limit", "curve", "junction_turn", "lane_change")
LEGAL_WAITS = ("red_light", "yellow_light", "stop_sign")  # standing still for these is never "stuck"


# ------------------------------------------------------------------------------------------ route
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
        pts = _smooth_lane_changes(pts, opts, cfg.lane_change_length_m)
        seg = np.diff(pts, axis=0)  # (N-1, 2)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        s = np.concatenate([[0.0], np.cumsum(seg_len)])  # (N,)
        seg_heading = np.arctan2(seg[:, 1], seg[:, 0])
        heading = np.concatenate([seg_heading, seg_heading[-1:]])  # (N,)

        # Curvature from the heading change over +-w metres of arc.
        w = cfg.curve_window_m
        lo = np.searchsorted(s, s - w, side="left")
        hi = np.minimum(np.searchsorted(s, s + w, side="right") - 1, len(s) - 1)
        dh = _wrap(heading[hi] - heading[lo])
        ds = np.maximum(s[hi] - s[lo], 1e-3)
        kappa = np.abs(dh) / ds  # (N,) 1/m
        curve = np.sqrt(cfg.curve_lateral_accel / np.maximum(kappa, 1e-6))
        curve = np.maximum(curve, cfg.min_curve_speed)

        limit = np.minimum(lim, cfg.max_speed)
        turn = np.where(jn & np.isin(opts, (LEFT, RIGHT)), cfg.junction_turn_speed, np.inf)
        lane_change = np.where(
            np.isin(opts, (CHANGELANELEFT, CHANGELANERIGHT)), cfg.lane_change_speed, np.inf
        )
        cruise = np.full(len(pts), cfg.max_speed)
        stack = np.stack([cruise, limit, curve, turn, lane_change])  # (5, N), rows follow CAP_REASONS
        reason = np.argmin(stack, axis=0)
        cap = stack[reason, np.arange(len(pts))]
        return cls(pts, heading, opts, s, limit, cap, reason, jn)

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


def polygon_distance(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance of (M, 2) points to a simple polygon (K, 2); 0 inside. (M,)"""
    a, b = poly, np.roll(poly, -1, axis=0)  # (K, 2) edges a -> b
    ab = b - a
    ap = points[:, None, :] - a[None]  # (M, K, 2)
    t = np.clip(np.sum(ap * ab[None], axis=2) / np.maximum(np.sum(ab * ab, axis=1), 1e-12)[None], 0.0, 1.0)
    d = np.hypot(*np.moveaxis(ap - t[..., None] * ab[None], 2, 0)).min(axis=1)  # (M,)
    # even-odd rule: a ray towards +x crosses the edges that straddle the point's y left of the point
    px, py = points[:, 0:1], points[:, 1:2]
    straddle = (a[None, :, 1] > py) != (b[None, :, 1] > py)
    x_cross = a[None, :, 0] + (py - a[None, :, 1]) * ab[None, :, 0] / np.where(ab[:, 1] == 0, 1e-12, ab[:, 1])[None]
    inside = (np.sum(straddle & (x_cross > px), axis=1) % 2) == 1
    return np.where(inside, 0.0, d)


def _smooth_lane_changes(pts: np.ndarray, opts: np.ndarray, length: float) -> np.ndarray:
    """Spread each lane-change hop of the dense route over `length` metres of the new lane.

    The route planner (as CARLA's) changes lane in one sideways hop between neighbouring lanes; driven or
    swept as a corridor, that diagonal reaches across into the next lane (and its oncoming traffic). Points
    of the new lane are shifted back towards the old lane by a smoothstep-faded offset instead."""
    out = pts.copy()
    if length <= 0 or len(pts) < 3:
        return out
    seg = np.diff(pts, axis=0)  # (N-1, 2)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    hops = np.nonzero((seg_len > 1.5) & np.isin(opts[1:], (CHANGELANELEFT, CHANGELANERIGHT)))[0]
    for i in hops:
        if i + 2 >= len(pts):
            continue
        h = pts[i + 2] - pts[i + 1]
        h /= max(float(np.hypot(*h)), 1e-9)
        normal = np.array([-h[1], h[0]])
        offset = float(np.dot(pts[i] - pts[i + 1], normal))  # old lane, sideways from the new one
        arc = 0.0
        j = i + 1
        while j < len(pts) and arc <= length:
            u = arc / length
            out[j] = pts[j] + (1.0 - u * u * (3.0 - 2.0 * u)) * offset * normal
            if j + 1 < len(pts):
                arc += float(np.hypot(*(pts[j + 1] - pts[j])))
            j += 1
    return out


def _map_attributes(cmap: carla.Map, xy: np.ndarray, cfg: ExpertConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-point speed limits (m/s, from '274' landmarks the route drives past) and junction flags."""
    n = len(xy)
    junction = np.zeros(n, bool)
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
    return limits_kmh / 3.6, junction


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


def _wrap(a: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


# ------------------------------------------------------------------------------------- decisions
@dataclass
class PlannerMemory:
    """What the expert remembers between ticks (copied, never mutated, by `decide`)."""

    route_index: int = 0
    last_time: float | None = None
    stopped_time: float = 0.0  # s standing still with no legal reason
    creep_until: float = -1.0  # timestamp the current creep ends
    stop_sign_waited: dict[int, float] = field(default_factory=dict)  # sign id -> s stood at its line
    stop_sign_cleared: set[int] = field(default_factory=set)
    # lights we committed to pass on yellow -> route arc length the ego centre must reach for its rear to be
    # past the line (the leaderboard tests the tail's crossing)
    yellow_go: dict[int, float] = field(default_factory=dict)
    # signalised stop lines the ego's front is past but its tail is not -> the same arc length: standing with the
    # tail over the line when the light turns red runs it, so a wait for traffic ahead moves past the line
    clear_line: dict[int, float] = field(default_factory=dict)
    light_since: dict[int, tuple[str, float | None]] = field(default_factory=dict)  # id -> (state, seen switching)
    yellow_timed: set[int] = field(default_factory=set)  # yellow_go lights committed to on timing, not braking
    nudge_offset: float = 0.0  # m, + = left of the route: passing a stalled obstacle inside the lane
    nudge_end_s: float = 0.0  # route arc length where the nudge ends
    # background vehicles seen standing at the entry of a junction without lights: their stop is made, they may
    # enter any moment (predicted at constant velocity again once they move)
    stood_at_entry: set[int] = field(default_factory=set)


@dataclass
class Obstacle:
    """A virtual obstacle on the route: `gap` metres from the ego front, moving at `speed` along the route."""

    gap: float
    speed: float
    min_gap: float  # IDM s0
    headway: float  # IDM T
    reason: str
    actor_id: int = -1
    predicted: bool = False
    lateral: float = 0.0  # signed offset of the actor centre from the path, + = left (current obstacles)
    half_width: float = 0.0  # the actor's half extent across the path
    end_s: float = 0.0  # route arc length of the actor's far end
    actor_speed: float = 0.0


@dataclass
class Decision:
    """The debug record of one expert step."""

    target_speed: float  # m/s
    reason: str  # cruise | speed_limit | curve | junction_turn | lane_change | red_light | yellow_light | stop_sign
    #              | lead_vehicle | vehicle_crossing | pedestrian | cyclist | obstacle | junction_blocked
    #              | crosswalk_blocked | nudge_blocked | creep_blocked | creep | route_end
    hazard_id: int = -1
    hazard_distance: float = math.inf
    speed_limit: float = 0.0
    route_index: int = 0
    route_s: float = 0.0  # ego progress along the route, metres
    creeping: bool = False
    nudge_offset: float = 0.0  # m, + = left: lateral offset of the path being followed
    obstacles: list[Obstacle] = field(default_factory=list)


def idm_target_speed(
    v: float, v0: float, gap: float, v_lead: float, min_gap: float, headway: float, cfg: ExpertConfig
) -> tuple[float, float]:
    """Speed to command next (m/s) from the Intelligent Driver Model's acceleration over `cfg.idm_tau`.

    Also returns the interaction ratio (s*/gap)^2: how much the obstacle (not free-road acceleration) matters.
    """
    if gap <= 0.0:
        return 0.0, math.inf
    v = max(v, 0.0)
    a, b = cfg.idm_max_accel, cfg.idm_comfort_decel
    # A lead pulling away counts with the gap it opens meanwhile: IDM alone sets off from a standing queue only
    # once the gap has grown well past s0, a second and more after the car ahead.
    gap += max(v_lead - v, 0.0) * cfg.idm_anticipation_s
    s_star = min_gap + max(0.0, v * headway + v * (v - max(v_lead, 0.0)) / (2.0 * math.sqrt(a * b)))
    interaction = (s_star / gap) ** 2
    acc = a * (1.0 - (v / max(v0, 0.1)) ** cfg.idm_delta - interaction)
    return float(min(max(v + acc * cfg.idm_tau, 0.0), v0)), interaction


def clearing_time(distance: float, v: float, cfg: ExpertConfig) -> float:
    """Seconds the ego needs to drive `distance` metres from speed `v`, accelerating at `cfg.clearing_accel`
    up to max(v, junction turn speed): how long it stays in a conflict zone it enters now."""
    v = max(v, 0.0)
    a = max(cfg.clearing_accel, 1e-3)
    v_cap = max(v, cfg.junction_turn_speed, 0.1)
    t_up = (v_cap - v) / a
    d_up = v * t_up + 0.5 * a * t_up * t_up
    if distance <= d_up:
        return (-v + math.sqrt(v * v + 2.0 * a * max(distance, 0.0))) / a
    return t_up + (distance - d_up) / v_cap


def decide(
    gt: GroundTruth, route: RoutePlan, memory: PlannerMemory, config: ExpertConfig | None = None
) -> tuple[Decision, PlannerMemory]:
    """One decision: pure in (gt, route, memory, config); returns the decision and the next memory."""
    cfg = config or ExpertConfig()
    mem = copy.deepcopy(memory)
    ego = gt.ego
    dt = 0.0 if mem.last_time is None else max(0.0, gt.timestamp - mem.last_time)
    mem.last_time = gt.timestamp
    v = max(float(ego.speed), 0.0)
    ex, ey = float(ego.extent[0]), float(ego.extent[1])

    idx, s_ego = _progress(route, ego.pose.x, ego.pose.y, mem.route_index)
    mem.route_index = idx
    i_end = route.index_at(s_ego + cfg.lookahead_m) + 1

    # 1. speed caps ahead (limit, curves, turns, lane changes), approached at a comfortable deceleration
    j_hi = route.index_at(s_ego + cfg.preview_m) + 1
    ahead = slice(idx, j_hi + 1)
    dist = np.maximum(route.s[ahead] - s_ego - ex, 0.0)  # caps apply from where the front reaches them
    reachable = np.sqrt(route.speed_cap[ahead] ** 2 + 2.0 * cfg.comfort_decel * dist)  # (K,)
    k = int(np.argmin(reachable))
    cruise, cruise_reason = float(reachable[k]), CAP_REASONS[int(route.cap_reason[idx + k])]
    v0 = max(cruise, 0.1)

    if mem.nudge_offset and s_ego > mem.nudge_end_s:
        mem.nudge_offset = 0.0
    nudging = mem.nudge_offset != 0.0
    if nudging:
        v0 = min(v0, cfg.nudge_speed)
        cruise = min(cruise, cfg.nudge_speed)
    creeping = gt.timestamp < mem.creep_until
    path = local_path(route, max(idx - 1, 0), i_end, mem.nudge_offset)
    obstacles: list[Obstacle] = []
    end_gap = route.length + cfg.route_end_overrun_m - s_ego - ex
    obstacles.append(Obstacle(end_gap, 0.0, 0.0, 0.0, "route_end"))
    margin = cfg.nudge_clearance if nudging else None
    block = route.next_junction(s_ego + ex - 0.5)
    ahead_junction = block if block is not None and block[0] > s_ego + ex else None
    unsignalised = _unsignalised_entries(gt, route.junction_entries, cfg)  # (E', 4)
    mem.stood_at_entry = _stood_at_entry(gt, unsignalised, mem.stood_at_entry, cfg)
    actor_obs = _actor_obstacles(
        gt, path, s_ego, v, ex, ey, cfg, creeping, margin, junction=ahead_junction,
        entries=unsignalised, stood=mem.stood_at_entry, lanes=route.lanes,
    )
    # the nearest vehicle or obstacle in the corridor that would slow the ego: going on yellow needs free road
    lead_gap = min(
        (ob.gap for ob in actor_obs if not ob.predicted and ob.speed < v + 0.5), default=math.inf
    )
    obstacles += _stop_line_obstacles(gt, route, idx, i_end, s_ego, v, ex, cfg, mem, dt, lead_gap)
    if mem.yellow_go or mem.clear_line:
        # Committed through a yellow light, or in the junction with the tail still over the line: a vehicle ahead
        # (crossing or queued) must not leave the ego standing on the stop line as it turns red. The wait moves to
        # just past the line when that still stops short of the vehicle (safety first: otherwise it stays).
        clear = max([*mem.yellow_go.values(), *mem.clear_line.values()]) - s_ego
        actor_obs = [
            replace(ob, min_gap=min(ob.min_gap, ob.gap - clear))
            if ob.reason in ("vehicle_crossing", "lead_vehicle") and clear <= ob.gap - 0.5
            else ob
            for ob in actor_obs
        ]
    obstacles += actor_obs
    obstacles += _turn_sweep_obstacles(gt, route, idx, s_ego, v, cfg, mem, actor_obs)
    obstacles += _junction_obstacles(route, s_ego, v, ex, actor_obs, cfg)
    if gt.crosswalks:
        obstacles += _crosswalk_obstacles(gt, route, s_ego, v, ex, ey, actor_obs, cfg)
    if nudging:
        # Planned with nudge_clearance; while driving it, only a real (thinner) contact stops the pass.
        contact = sweep_clear(
            gt, route, idx, mem.nudge_offset, mem.nudge_end_s, cfg, cfg.nudge_clearance / 3.0
        )
        if contact is not None:
            obstacles.append(Obstacle(contact - 0.3, 0.0, 0.0, 0.0, "nudge_blocked"))

    if creeping:
        # The corridor follows the route; in a tight turn the ego's box sweeps wider. Creeping, check the box.
        contact = sweep_clear(
            gt, route, idx, mem.nudge_offset, s_ego + cfg.creep_speed * 2.0, cfg, cfg.creep_corridor_margin,
            extrapolate=False,
        )
        if contact is not None:
            obstacles.append(Obstacle(max(contact - 0.5, 0.0), 0.0, 0.0, 0.0, "creep_blocked"))

    target, reason, hazard = cruise, cruise_reason, None
    for ob in obstacles:
        vt, interaction = idm_target_speed(v, v0, ob.gap, ob.speed, ob.min_gap, ob.headway, cfg)
        if vt < target - 1e-9:
            target = vt
            # A far obstacle only limits acceleration; name it when it really acts.
            if interaction >= cfg.idm_reason_threshold:
                reason, hazard = ob.reason, ob

    # 4. unstick: count standing time that has no legal reason, then creep for a while. A queue at a red light
    # is a legal wait too: creeping up to the car ahead only delays the start when the queue moves.
    queued_at_light = (
        hazard is not None
        and hazard.reason == "lead_vehicle"
        and not hazard.predicted
        and any(ob.reason in LEGAL_WAITS and ob.gap > hazard.gap for ob in obstacles)
    )
    if (
        v < cfg.stuck_speed
        and target < cfg.creep_speed
        and reason not in LEGAL_WAITS
        and reason != "route_end"
        and not queued_at_light
    ):
        mem.stopped_time += dt
    else:
        mem.stopped_time = 0.0
    wait_limit = cfg.unstick_after_s
    in_junction = hazard is not None and bool(
        route.junction[idx : route.index_at(hazard.end_s + ex + cfg.nudge_return_m) + 1].any()
    )
    if (
        hazard is not None
        and hazard.reason == "pedestrian"
        and not hazard.predicted
        and hazard.actor_speed <= cfg.min_predict_speed_walker
        and abs(hazard.lateral) > ey
        and (hazard.lateral < 0.0 or not in_junction)
    ):
        # Someone standing still beside the path is not about to step in front of a standing car: edge past
        # them sooner. In a junction only someone on the kerb side (right), passed on the left: an offset
        # towards the kerb cuts the corner into kerbs and walls.
        wait_limit = min(wait_limit, cfg.unstick_standing_walker_after_s)
    if not creeping and mem.stopped_time >= wait_limit:
        mem.stopped_time = 0.0
        offset = None
        if hazard is not None:
            kerb_side_only = in_junction and hazard.reason == "pedestrian"
            offset = _plan_nudge(gt, route, idx, i_end, s_ego, v, ex, ey, hazard, cfg, kerb_side_only)
        if offset is not None:
            # Pass the stalled obstacle inside the lane; the normal rules stay on, at a walking pace.
            mem.nudge_offset = offset
            mem.nudge_end_s = hazard.end_s + 2.0 * ex + cfg.nudge_return_m
        else:
            mem.creep_until = gt.timestamp + cfg.creep_duration_s
    if creeping and reason not in LEGAL_WAITS and reason != "route_end" and target >= cfg.creep_speed:
        # Obstacles were already filtered for creeping (only close, current ones remain): crawl.
        target, reason = cfg.creep_speed, "creep"

    dec = Decision(
        target_speed=float(target),
        reason=reason,
        hazard_id=hazard.actor_id if hazard else -1,
        hazard_distance=float(hazard.gap) if hazard else math.inf,
        speed_limit=float(route.speed_limit[idx]),
        route_index=idx,
        route_s=float(s_ego),
        creeping=creeping,
        nudge_offset=mem.nudge_offset,
        obstacles=obstacles,
    )
    return dec, mem


def _turn_sweep_obstacles(
    gt: GroundTruth,
    route: RoutePlan,
    idx: int,
    s_ego: float,
    v: float,
    cfg: ExpertConfig,
    mem: PlannerMemory,
    actor_obs: list[Obstacle],
) -> list[Obstacle]:
    """In a junction turn the body points off the path and its outer corners swing wide of the path corridor:
    roll the real box out along the path against the vehicles' predicted boxes (built-in route 5, seed 0: the
    front corner of the ego finishing a right turn met a truck starting its left turn beside it). Slower than
    `turn_sweep_min_speed` the ego edges on with its bare box rolled out at that speed: skipping the check there
    let it creep, brake and creep into a bus edging towards its corner (seed 7, route 6); the full clearance
    would hold it for good beside a vehicle parked just outside its path."""
    j1 = route.index_at(s_ego + cfg.turn_sweep_lookahead_m)
    if not route.junction[idx : j1 + 1].any():
        return []
    turn = abs(float(_wrap(route.heading[j1] - math.radians(gt.ego.pose.yaw))))
    if turn < math.radians(cfg.turn_sweep_min_deg):
        return []
    until = s_ego + max(cfg.turn_sweep_min_m, v * cfg.turn_sweep_s)
    # vehicles ahead in the path driving its way are followed (IDM), not swept against
    seen = frozenset(ob.actor_id for ob in actor_obs if not ob.predicted and ob.speed > cfg.turn_sweep_min_speed)
    clearance = cfg.turn_sweep_clearance if v >= cfg.turn_sweep_min_speed else 0.0
    contact = sweep_clear(
        gt, route, idx, mem.nudge_offset, until, cfg, clearance, speed=max(v, cfg.turn_sweep_min_speed),
        vehicles_only=True, exclude=seen,
    )
    if contact is None:
        return []
    return [Obstacle(max(contact - cfg.turn_sweep_standoff_m, 0.0), 0.0, 0.0, 0.0, "vehicle_crossing")]


def _progress(route: RoutePlan, x: float, y: float, prev_index: int) -> tuple[int, float]:
    """Nearest route point in a forward window (monotonic progress) and the ego's arc length."""
    lo = max(prev_index - 2, 0)
    hi = route.index_at(route.s[min(prev_index, len(route) - 1)] + 30.0) + 2
    a, b, s0 = route.segments(lo, hi)
    s, _, _seg, _ = _project(np.array([[x, y]]), a, b, s0)
    s_ego = float(s[0])
    idx = max(route.index_at(s_ego), prev_index)
    if idx >= len(route) - 2:  # past the last point: keep counting along the final heading
        h = route.heading[-1]
        beyond = (x - route.xy[-1, 0]) * math.cos(h) + (y - route.xy[-1, 1]) * math.sin(h)
        s_ego = max(s_ego, route.length + beyond)
    return idx, s_ego


def _project(
    pts: np.ndarray, a: np.ndarray, b: np.ndarray, s0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project points (M, 2) onto segments a->b (K, 2). Returns arc length (M,), |lateral| (M,), segment (M,),
    and the signed lateral offset (M,), + = left of the travel direction (CARLA frame, y south)."""
    d = b - a  # (K, 2)
    l2 = np.maximum(np.sum(d * d, axis=1), 1e-12)  # (K,)
    rel = pts[:, None, :] - a[None, :, :]  # (M, K, 2)
    t = np.clip(np.sum(rel * d[None], axis=2) / l2[None], 0.0, 1.0)  # (M, K)
    proj = a[None] + t[..., None] * d[None]  # (M, K, 2)
    dist = np.hypot(pts[:, None, 0] - proj[..., 0], pts[:, None, 1] - proj[..., 1])  # (M, K)
    k = np.argmin(dist, axis=1)  # (M,)
    rows = np.arange(len(pts))
    tk = t[rows, k]
    s = s0[k] + tk * np.sqrt(l2[k])
    cross = d[k, 0] * rel[rows, k, 1] - d[k, 1] * rel[rows, k, 0]  # > 0: right of travel (y points south)
    signed = np.where(cross > 0, -dist[rows, k], dist[rows, k])
    return s, dist[rows, k], k, signed


# ------------------------------------------------------------------------------------ stop lines
def _line_crossing(
    route: RoutePlan, i0: int, i1: int, p: tuple[float, float], q: tuple[float, float], extend: float
) -> tuple[float, int] | None:
    """Arc length and segment index where the route (points i0..i1) first crosses segment p-q (lengthened)."""
    p_, q_ = np.asarray(p, np.float64), np.asarray(q, np.float64)
    u = q_ - p_
    n = float(np.hypot(*u))
    if n < 1e-6:
        return None
    u /= n
    p_, q_ = p_ - u * extend, q_ + u * extend
    a, b, s0 = route.segments(i0, i1)
    r = b - a  # (K, 2)
    e = q_ - p_
    den = r[:, 0] * e[1] - r[:, 1] * e[0]  # (K,)
    ok = np.abs(den) > 1e-9
    diff = p_[None] - a  # (K, 2)
    t = np.where(ok, (diff[:, 0] * e[1] - diff[:, 1] * e[0]) / np.where(ok, den, 1.0), -1.0)
    w = np.where(ok, (diff[:, 0] * r[:, 1] - diff[:, 1] * r[:, 0]) / np.where(ok, den, 1.0), -1.0)
    hit = np.nonzero(ok & (t >= 0) & (t <= 1) & (w >= 0) & (w <= 1))[0]
    if len(hit) == 0:
        return None
    k = int(hit[0])
    return float(s0[k] + t[k] * np.hypot(*r[k])), k + max(0, min(i0, len(route) - 2))


def _stop_line_obstacles(
    gt: GroundTruth,
    route: RoutePlan,
    idx: int,
    i_end: int,
    s_ego: float,
    v: float,
    ex: float,
    cfg: ExpertConfig,
    mem: PlannerMemory,
    dt: float,
    lead_gap: float = math.inf,
) -> list[Obstacle]:
    """Red / yellow lights and stop signs on the route ahead as standing obstacles at their lines.

    lead_gap: metres from the ego front to the nearest current obstacle not faster than the ego."""
    out: list[Obstacle] = []
    i0 = max(idx - 4, 0)
    for tl in gt.traffic_lights:  # when each light was seen switching to its state (None: not seen)
        seen = mem.light_since.get(tl.id)
        if seen is None or seen[0] != tl.state:
            mem.light_since[tl.id] = (tl.state, gt.timestamp if seen is not None else None)
    tol = math.radians(cfg.stop_line_heading_tol_deg)
    ex_x, ex_y = gt.ego.pose.x, gt.ego.pose.y
    reach = cfg.lookahead_m + 10.0

    for tl in gt.traffic_lights:
        if math.hypot(tl.x - ex_x, tl.y - ex_y) > reach + 30.0:
            continue
        cross = _line_crossing(route, i0, i_end, tl.stop_line[0], tl.stop_line[1], cfg.stop_line_extend)
        if cross is None:
            continue
        s_line, k = cross
        if abs(float(_wrap(route.heading[k] - math.radians(tl.lane_yaw)))) > tol:
            continue
        gap = s_line - s_ego - ex - cfg.stop_line_margin
        state = tl.state
        tail_clear_s = s_line + ex + cfg.red_light_tail_m  # where the ego centre has its tail past the line
        if s_ego > tail_clear_s:  # through (CARLA tests a segment from the rear to 1 m behind it)
            mem.yellow_go.pop(tl.id, None)
            mem.yellow_timed.discard(tl.id)
            mem.clear_line.pop(tl.id, None)
            continue
        since = mem.light_since[tl.id][1]
        left = cfg.yellow_time_s - (gt.timestamp - since) if since is not None else 0.0  # s of yellow left
        if s_line - s_ego - ex < -0.5:  # the front is past the line, the tail is not
            mem.clear_line[tl.id] = tail_clear_s + cfg.clear_line_margin_m
            if state in ("Red", "Yellow") and v < cfg.red_hold_speed and s_line > s_ego - ex:  # nor the rear
                # Stopped on the line (a pedestrian held it there) as the light went red, committed on yellow
                # or not: driving on now would run the red light. Wait for the green. On yellow too, unless the
                # yellow was seen beginning and the tail, setting off now, clears the line in time.
                d = tail_clear_s - s_ego
                a = max(cfg.clearing_accel, 1e-3)
                t_tail = (-v + math.sqrt(v * v + 2.0 * a * d)) / a
                if state == "Yellow" and t_tail <= left - cfg.yellow_clear_margin_s and lead_gap > d:
                    continue
                out.append(Obstacle(0.0, 0.0, 0.0, 0.0, "red_light" if state == "Red" else "yellow_light", tl.id))
            continue
        if state == "Yellow":
            need = v * v / (2.0 * max(gap, 0.1))
            clears = (
                v > cfg.red_hold_speed
                and (tail_clear_s - s_ego) / v <= left - cfg.yellow_clear_margin_s
                and lead_gap > tail_clear_s - s_ego
            )
            late = need > cfg.yellow_max_decel
            if tl.id in mem.yellow_go and v >= cfg.stuck_speed:
                # A go on timing stands only while the tail still makes it (a pedestrian may slow the ego)
                if tl.id not in mem.yellow_timed or clears or late:
                    continue
            # standing (a pedestrian stopped it), or no longer in time: decide afresh
            mem.yellow_go.pop(tl.id, None)
            mem.yellow_timed.discard(tl.id)
            if late or clears:
                mem.yellow_go[tl.id] = tail_clear_s  # too late to stop comfortably, or clear before the red: go
                if clears and not late:
                    mem.yellow_timed.add(tl.id)
                continue
            out.append(Obstacle(gap, 0.0, 0.0, 0.0, "yellow_light", tl.id))
        elif state == "Red":
            if tl.id in mem.yellow_go and v >= cfg.red_hold_speed and gap < v * v / (4.0 * cfg.idm_comfort_decel):
                continue  # committed on yellow and cannot stop any more (standing, it can: then it waits)
            out.append(Obstacle(gap, 0.0, 0.0, 0.0, "red_light", tl.id))
        else:
            mem.yellow_go.pop(tl.id, None)
    mem.yellow_timed &= set(mem.yellow_go)
    lights = {tl.id for tl in gt.traffic_lights}
    mem.clear_line = {k: s for k, s in mem.clear_line.items() if k in lights and s > s_ego}

    ahead_signs: set[int] = set()
    for sg in gt.stop_signs:
        if math.hypot(sg.x - ex_x, sg.y - ex_y) > reach + 30.0:
            continue
        cross = _line_crossing(route, i0, i_end, sg.stop_line[0], sg.stop_line[1], cfg.stop_line_extend)
        if cross is None:
            continue
        s_line, k = cross
        if abs(float(_wrap(route.heading[k] - math.radians(sg.lane_yaw)))) > tol:
            continue
        front_to_line = s_line - s_ego - ex
        if front_to_line < -ex:  # the centre is past the line
            continue
        ahead_signs.add(sg.id)
        if sg.id in mem.stop_sign_cleared:
            continue
        if v < cfg.stop_sign_stop_speed and front_to_line < cfg.stop_sign_zone_m:
            mem.stop_sign_waited[sg.id] = mem.stop_sign_waited.get(sg.id, 0.0) + dt
            if mem.stop_sign_waited[sg.id] >= cfg.stop_sign_wait_s:
                mem.stop_sign_cleared.add(sg.id)
                continue
        out.append(
            Obstacle(
                max(front_to_line - cfg.stop_line_margin, 0.0) if front_to_line > 0 else 0.0,
                0.0,
                0.0,
                0.0,
                "stop_sign",
                sg.id,
            )
        )
    mem.stop_sign_cleared &= ahead_signs
    mem.stop_sign_waited = {k: t for k, t in mem.stop_sign_waited.items() if k in ahead_signs}
    return out


# -------------------------------------------------------------------------------------- junctions
def _junction_obstacles(
    route: RoutePlan, s_ego: float, v: float, ex: float, actor_obs: list[Obstacle], cfg: ExpertConfig
) -> list[Obstacle]:
    """Do not enter a junction that cannot be left: wait at its entry while a slow vehicle ahead would leave
    the ego standing inside it (across other lanes, where crossing traffic hits it), or while a pedestrian or
    cyclist is (or is about to be) in its path inside it (standing on a stop line, a red light would then
    catch the ego's tail on it)."""
    front = s_ego + ex
    block = route.next_junction(front - 0.5)
    if block is None:
        return []
    start, end = block
    if start <= front or start - front > cfg.lookahead_m:
        return []  # already in (or too far from) the junction
    entry_gap = max(start - front - cfg.junction_entry_margin, 0.0)
    if v * v / (2.0 * max(entry_gap, 0.1)) > cfg.yellow_max_decel:
        return []  # too late to stop before it comfortably
    room = end + 2.0 * ex + cfg.junction_exit_room_m  # where a lead's rear must be so the ego fits behind it
    for ob in actor_obs:
        rear_s = front + ob.gap
        if rear_s >= room:
            continue
        if ob.reason in ("pedestrian", "cyclist"):  # keeps the actor's geometry (a nudge may pass it)
            return [replace(ob, gap=entry_gap, speed=0.0, min_gap=0.0, headway=0.0)]
        if (
            not ob.predicted
            and ob.reason in ("lead_vehicle", "obstacle")
            and ob.speed < cfg.junction_clear_speed
        ):
            return [Obstacle(entry_gap, 0.0, 0.0, 0.0, "junction_blocked", ob.actor_id)]
    return []


def _crosswalk_obstacles(
    gt: GroundTruth,
    route: RoutePlan,
    s_ego: float,
    v: float,
    ex: float,
    ey: float,
    actor_obs: list[Obstacle],
    cfg: ExpertConfig,
) -> list[Obstacle]:
    """Wait before a crosswalk, not on it: while a pedestrian on (or at the kerb of) it is in the ego's path,
    and while a slow vehicle ahead would leave the ego standing on it.

    Stopping a few metres short of the pedestrian (the plain corridor rule) parks the ego's nose on the
    crosswalk; pedestrians waiting to cross then never get their gap, and one walking behind a queued car
    walks into its tail.
    """
    front = s_ego + ex
    spans = route.crosswalk_spans(gt.crosswalks, ey)
    spans = spans[(spans[:, 0] > front) & (spans[:, 0] - front < cfg.lookahead_m)]
    if len(spans) == 0:
        return []
    walkers = (
        {a.id: a for a in gt.actors if _actor_reason(a) == "pedestrian"}
        if any(ob.reason == "pedestrian" for ob in actor_obs)
        else {}
    )
    for s_in, s_out, ci in spans:
        entry_gap = max(s_in - front - cfg.crosswalk_margin_m, 0.0)
        if v * v / (2.0 * max(entry_gap, 0.1)) > cfg.yellow_max_decel:
            continue  # too late to stop before it comfortably
        poly = np.asarray(gt.crosswalks[int(ci)], np.float64)
        room = s_out + 2.0 * ex + cfg.crosswalk_margin_m  # where a lead's rear must be so the ego fits past it
        for ob in actor_obs:
            if ob.reason == "pedestrian" and ob.actor_id in walkers:
                a = walkers[ob.actor_id]
                if polygon_distance(np.array([[a.x, a.y]]), poly)[0] <= cfg.crosswalk_walker_radius_m:
                    return [replace(ob, gap=float(entry_gap), speed=0.0, min_gap=0.0, headway=0.0)]
            elif (
                not ob.predicted
                and ob.reason in ("lead_vehicle", "obstacle")
                and ob.speed < cfg.junction_clear_speed
                and front + ob.gap < room
            ):
                return [Obstacle(float(entry_gap), 0.0, 0.0, 0.0, "crosswalk_blocked", ob.actor_id)]
    return []


# ---------------------------------------------------------------------------------------- actors
def _actor_reason(a: ActorState) -> str:
    if a.category == "walker" or a.vclass == "pedestrian":
        return "pedestrian"
    if a.vclass == "bicycle":  # motorcycles move with traffic: they are vehicles here
        return "cyclist"
    if a.category == "vehicle":
        return "lead_vehicle"
    return "obstacle"


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


def _actor_obstacles(
    gt: GroundTruth,
    path: LocalPath,
    s_ego: float,
    v: float,
    ex: float,
    ey: float,
    cfg: ExpertConfig,
    creeping: bool,
    margin_override: float | None = None,
    exclude: int | None = None,
    junction: tuple[float, float] | None = None,
    entries: np.ndarray | None = None,
    stood: set[int] | frozenset[int] = frozenset(),
    lanes: carla.Map | None = None,
) -> list[Obstacle]:
    """Actors in the path corridor now, or predicted (constant velocity) to enter it before the ego clears.

    junction: (start_s, end_s) of a junction the ego has not entered yet. Crossing traffic predicted (over the
    longer junction horizon) to pass through it makes the ego wait at its entry, not in the middle of it.
    entries: the junction entries without lights (`_unsignalised_entries`). Background vehicles driving towards
    one are predicted to stand at it for `unsignalised_stop_s` first (the TM's rule), unless in `stood` (seen
    standing there already).
    lanes: the town's map. Vehicles following a lane are predicted along it (agent/lane_prediction.py), not in a
    straight line that cuts the inside of a bend.
    """
    ego = gt.ego.pose
    near = [
        a
        for a in gt.actors
        if abs(a.x - ego.x) < cfg.detect_radius_m
        and abs(a.y - ego.y) < cfg.detect_radius_m
        and a.id != exclude
    ]
    if not near:
        return []
    a_seg, b_seg, s0_seg, seg_heading, s_max = path.a, path.b, path.s0, path.heading, path.s_max

    m = len(near)
    pos = np.array([[a.x, a.y] for a in near])  # (M, 2)
    vel = np.array([[a.vx, a.vy] for a in near])  # (M, 2)
    yaw = np.radians([a.yaw for a in near])  # (M,)
    ext = np.array([[a.extent[0], a.extent[1]] for a in near])  # (M, 2)
    reasons = [_actor_reason(a) for a in near]
    soft = np.array([r in ("pedestrian", "cyclist") for r in reasons])  # (M,)
    speed = np.hypot(vel[:, 0], vel[:, 1])  # (M,)
    standing = speed < cfg.min_predict_speed_walker

    s, lat, k, lat_signed = _project(pos, a_seg, b_seg, s0_seg)  # (M,)
    # Walkers moving along the path (a sidewalk beside a narrow lane) keep a small margin: they pass the ego
    # rather than enter its lane. One stepping towards the path keeps the wide one (and its prediction).
    left = np.stack([np.sin(seg_heading[k]), -np.cos(seg_heading[k])], axis=1)  # (M, 2), CARLA y south
    towards = -np.sign(lat_signed) * np.sum(vel * left, axis=1)  # (M,) m/s towards the path
    bend = np.maximum.accumulate(np.abs(_wrap(seg_heading - math.radians(ego.yaw))))  # (K,) turned so far
    straight = bend[k] <= math.radians(cfg.walker_parallel_max_bend_deg)  # (M,)
    parallel = ~standing & (np.abs(towards) <= cfg.walker_parallel_lateral_speed)
    # One walking out of the path ahead (crossed in front of the ego, on their way to the far kerb) only needs
    # the body's clearance: the wide margin is for someone who may step in. Beside the body it stays.
    leaving = ~standing & (towards < -cfg.walker_parallel_lateral_speed) & (s > s_ego + ex)
    parallel_margin = np.where(
        straight, cfg.corridor_margin_parallel_walker, cfg.corridor_margin_turn_parallel_walker
    )  # (M,)
    moving_margin = np.where(leaving, cfg.corridor_margin_leaving_walker, cfg.corridor_margin_walker)  # (M,)
    margin = np.where(
        soft,
        np.where(
            standing,
            cfg.corridor_margin_standing_walker,
            np.where(parallel, parallel_margin, moving_margin),
        ),
        cfg.corridor_margin_vehicle,
    )
    # Creeping and nudging only relax the margins of vehicles: pedestrians and cyclists keep theirs.
    if creeping:
        margin = np.where(soft, margin, cfg.creep_corridor_margin)
    elif margin_override is not None:
        margin = np.where(soft & (margin < margin_override), margin, margin_override)
    half_w = ey + margin  # (M,)

    out: list[Obstacle] = []

    # -- current occupancy of the corridor
    rel = yaw - seg_heading[k]  # (M,)
    half_lat = np.abs(ext[:, 0] * np.sin(rel)) + np.abs(ext[:, 1] * np.cos(rel))  # (M,)
    half_long = np.abs(ext[:, 0] * np.cos(rel)) + np.abs(ext[:, 1] * np.sin(rel))  # (M,)
    tangent = np.stack([np.cos(seg_heading[k]), np.sin(seg_heading[k])], axis=1)  # (M, 2)
    v_along = np.sum(vel * tangent, axis=1)  # (M,)
    inside = (lat - half_lat < half_w) & (s > s_ego) & (s - half_long < s_max)
    occupied = np.zeros(m, bool)
    for i in np.nonzero(inside)[0]:
        gap = float(s[i] - half_long[i] - s_ego - ex)
        if creeping and gap > cfg.creep_min_gap_m and not soft[i]:
            continue
        occupied[i] = True
        r = reasons[i] if soft[i] or near[i].category == "vehicle" else "obstacle"
        geom = {
            "lateral": float(lat_signed[i]),
            "half_width": float(half_lat[i]),
            "end_s": float(s[i] + half_long[i]),
            "actor_speed": float(np.hypot(*vel[i])),
        }
        if soft[i]:
            out.append(
                Obstacle(gap, max(float(v_along[i]), 0.0), cfg.idm_min_gap_walker, 0.5, r, near[i].id, **geom)
            )
        else:
            out.append(
                Obstacle(
                    gap,
                    max(float(v_along[i]), 0.0),
                    cfg.idm_min_gap_vehicle,
                    cfg.idm_time_headway,
                    r,
                    near[i].id,
                    **geom,
                )
            )
    # -- the bumper's sweep along the ego's own heading (pedestrians and cyclists)
    hy = math.radians(ego.yaw)
    rel_e = pos - np.array([ego.x, ego.y])  # (M, 2)
    e_along = rel_e @ np.array([math.cos(hy), math.sin(hy)]) - ex - ext[:, 0]  # (M,) ahead of the bumper
    e_lat = np.abs(rel_e @ np.array([-math.sin(hy), math.cos(hy)])) - ey - ext[:, 1]  # (M,) clear of the side
    # a walker coming towards the bumper closes the distance too (head-on along the outside of a turn, where the
    # path corridor has them beside the path while the body, still pointing outwards, heads at them)
    closing = np.maximum(-(vel @ np.array([math.cos(hy), math.sin(hy)])), 0.0)  # (M,) m/s towards the front
    reach = np.maximum(cfg.bumper_sweep_min_m, (v + closing) * cfg.bumper_sweep_s)  # (M,)
    # a slow ego also waits for one beside its body (walking through a standing car): pulling away would drag the
    # body through them; a fast one cannot brake for that
    behind = -2.0 * (ex + ext[:, 0]) if v < cfg.walker_beside_hold_speed else np.zeros(m)  # (M,)
    swept = soft & ~occupied & (e_along >= behind) & (e_along <= reach) & (e_lat <= cfg.bumper_sweep_margin)
    for i in np.nonzero(swept)[0]:
        occupied[i] = True
        out.append(Obstacle(max(float(e_along[i]), 0.0), 0.0, 0.0, 0.0, reasons[i], near[i].id))
    # -- predicted intrusions (constant velocity); a creeping ego still watches pedestrians and cyclists
    moving = speed > np.where(soft, cfg.min_predict_speed_walker, cfg.min_predict_speed_vehicle)
    movers = np.nonzero(~occupied & moving & (soft | (not creeping)))[0]
    if len(movers) == 0:
        return out
    vehicle_horizon = (
        cfg.predict_horizon_junction_s if junction is not None else cfg.predict_horizon_vehicle_s
    )
    horizon = max(vehicle_horizon, cfg.predict_horizon_walker_s)
    times = np.arange(cfg.predict_step_s, horizon + 1e-9, cfg.predict_step_s)  # (T,)
    # Vehicles that will stop at a red light are not extrapolated past their stop line (ground truth knows
    # every light): crossing traffic waiting for its green must not hold the ego at its own green.
    travel_max = _red_light_travel_limits(gt, pos[movers], vel[movers], yaw[movers], ext[movers, 0], cfg)  # (P,)
    travel_max = np.where(soft[movers], np.inf, travel_max)
    travel = np.minimum(speed[movers, None] * times[None, :], travel_max[:, None])  # (P, T)
    if entries is not None and len(entries):
        background = np.array(
            [near[i].source == "traffic" and near[i].category == "vehicle" and near[i].id not in stood for i in movers]
        )  # (P,)
        to_entry = _entry_gaps(entries, pos[movers], yaw[movers], ext[movers, 0], cfg)  # (P,)
        stops = background & np.isfinite(to_entry)
        stops &= speed[movers] ** 2 <= 2.0 * cfg.other_red_stop_decel * np.maximum(to_entry, 0.1)
        for row in np.nonzero(stops)[0]:
            d = max(float(to_entry[row]), 0.0)
            sp = float(speed[movers[row]])
            release = 2.0 * d / sp + cfg.unsignalised_stop_s  # braking evenly to the entry, then standing
            travel[row] = np.where(times <= release, np.minimum(travel[row], d), d + sp * (times - release))
    direction = vel[movers] / np.maximum(speed[movers], 1e-9)[:, None]  # (P, 2)
    fut = pos[movers, None, :] + direction[:, None, :] * travel[..., None]  # (P, T, 2)
    fyaw = np.repeat(yaw[movers, None], travel.shape[1], axis=1)  # (P, T)
    on_lane = np.zeros(len(movers), bool)  # (P,) predicted along their lane
    if lanes is not None and cfg.lane_prediction:
        for row, i in enumerate(movers):
            if soft[i] or near[i].category != "vehicle":
                continue
            lp = lane_path(
                lanes, *pos[i], float(yaw[i]), *vel[i], float(travel[row].max()),
                math.radians(cfg.lane_predict_heading_tol_deg), cfg.lane_predict_lateral_speed,
            )
            if lp is not None:
                fut[row], fyaw[row] = along_path(lp, travel[row])
                on_lane[row] = True
    p_n, t_n = fut.shape[:2]
    fs, flat, fk, _ = _project(fut.reshape(-1, 2), a_seg, b_seg, s0_seg)  # (P*T,)
    fs, flat, fk = fs.reshape(p_n, t_n), flat.reshape(p_n, t_n), fk.reshape(p_n, t_n)  # (P, T)
    frel = fyaw - seg_heading[fk]  # (P, T)
    fhalf_lat = np.abs(ext[movers, 0, None] * np.sin(frel)) + np.abs(ext[movers, 1, None] * np.cos(frel))
    fhalf_long = np.abs(ext[movers, 0, None] * np.cos(frel)) + np.abs(ext[movers, 1, None] * np.sin(frel))
    t_lim = np.where(soft[movers], cfg.predict_horizon_walker_s, vehicle_horizon)  # (P,)
    fin = (
        (flat - fhalf_lat < half_w[movers, None])
        & (fs - fhalf_long > s_ego + ex * 0.5)
        & (fs < s_max)
        & (times[None, :] <= t_lim[:, None] + 1e-9)
    )  # (P, T)
    if junction is not None:
        # Beyond the normal horizon only conflicts inside the junction count (gap acceptance at its entry).
        in_junction = (fs + fhalf_long >= junction[0]) & (fs - fhalf_long <= junction[1] + ex)
        fin &= (times[None, :] <= cfg.predict_horizon_vehicle_s + 1e-9) | soft[movers, None] | in_junction
    cur_s, _, cur_k, _ = _project(pos[movers], a_seg, b_seg, s0_seg)  # (P,) where the movers are now
    for row in np.nonzero(fin.any(axis=1))[0]:
        i = int(movers[row])
        behind = cur_s[row] < s_ego - ex
        if behind and abs(float(_wrap(yaw[i] - seg_heading[cur_k[row]]))) < math.radians(cfg.same_direction_deg):
            continue  # traffic catching up from behind in our direction is its driver's business
        # Vehicles: the first time they enter. Pedestrians / cyclists: the entry closest to the ego (on a curve
        # their straight walk can cross the corridor twice; stopping before the far crossing blocks the near one).
        j = int(np.argmax(fin[row])) if not soft[i] else int(np.argmin(np.where(fin[row], fs[row], np.inf)))
        t_hit = float(times[j])
        gap = float(fs[row, j] - fhalf_long[row, j] - s_ego - ex)
        if gap < 0:
            # The conflict point is beside the ego: braking does not help, pulling away from a walker does not
            # either (the rest of the body sweeps past them); a slow ego stands until they are through.
            if soft[i] and v < cfg.walker_beside_hold_speed and t_hit <= cfg.walker_beside_hold_s:
                out.append(Obstacle(0.0, 0.0, 0.0, 0.0, reasons[i], near[i].id, predicted=True))
            continue
        heading_diff = abs(float(_wrap(fyaw[row, j] - seg_heading[fk[row, j]])))
        same_dir = heading_diff < math.radians(cfg.same_direction_deg) and not soft[i]
        if on_lane[row]:  # its speed along the ego's path where it joins it
            along = float(speed[i] * math.cos(fyaw[row, j] - seg_heading[fk[row, j]]))
        else:
            along = float(np.dot(vel[i], [math.cos(seg_heading[fk[row, j]]), math.sin(seg_heading[fk[row, j]])]))
        if same_dir:
            # A cut-in: follow it from where it will join the corridor.
            out.append(
                Obstacle(
                    gap,
                    max(along, 0.0),
                    cfg.idm_min_gap_vehicle,
                    cfg.idm_time_headway,
                    "lead_vehicle",
                    near[i].id,
                    predicted=True,
                )
            )
            continue
        # Crossing / oncoming: yield unless the ego clears the conflict point well before the other arrives.
        t_clear = clearing_time(gap + 2.0 * ex + 2.0 * float(fhalf_long[row, j]), v, cfg)
        if t_clear + cfg.crossing_time_buffer_s < t_hit and not soft[i]:
            continue
        r = reasons[i] if soft[i] else "vehicle_crossing"
        min_gap = cfg.idm_min_gap_walker if soft[i] else cfg.idm_min_gap_crossing
        if junction is not None and not soft[i] and fs[row, j] + fhalf_long[row, j] >= junction[0]:
            entry_gap = max(junction[0] - s_ego - ex - cfg.junction_entry_margin, 0.0)
            if v * v / (2.0 * max(entry_gap, 0.1)) <= cfg.yellow_max_decel:
                gap, min_gap = entry_gap, 0.0  # wait at the junction entry
        out.append(Obstacle(gap, 0.0, min_gap, 0.0, r, near[i].id, predicted=True))
    return out


def _red_light_travel_limits(
    gt: GroundTruth,
    pos: np.ndarray,
    vel: np.ndarray,
    yaw: np.ndarray,
    half_length: np.ndarray,
    cfg: ExpertConfig,
) -> np.ndarray:
    """(P,) how far each vehicle (centre) can travel before its front reaches a red (or stoppable yellow) stop
    line it is approaching; inf where no light stops it. A vehicle that could only stop harder than
    `other_red_stop_decel` (red) / `other_yellow_stop_decel` (yellow) is assumed to go through."""
    out = np.full(len(pos), np.inf)
    speed = np.hypot(vel[:, 0], vel[:, 1])  # (P,)
    tol = math.radians(cfg.same_direction_deg)
    for tl in gt.traffic_lights:
        if tl.state not in ("Red", "Yellow"):
            continue
        p, q = np.asarray(tl.stop_line[0], np.float64), np.asarray(tl.stop_line[1], np.float64)
        mid, across = (p + q) / 2.0, q - p
        half = float(np.hypot(*across)) / 2.0
        if half < 1e-6:
            continue
        across /= 2.0 * half
        lane = math.radians(tl.lane_yaw)
        fwd = np.array([math.cos(lane), math.sin(lane)])
        rel = pos - mid  # (P, 2)
        to_line = -(rel @ fwd) - half_length  # (P,) front bumper to the line along the approach
        lateral = np.abs(rel @ across)  # (P,)
        aligned = np.abs(_wrap(yaw - lane)) < tol
        on_approach = aligned & (lateral <= half + cfg.stop_line_extend) & (to_line > -0.5)
        on_approach &= to_line < cfg.lookahead_m
        need = speed**2 / (2.0 * np.maximum(to_line, 0.1))  # (P,) deceleration to stop at the line
        limit = cfg.other_red_stop_decel if tl.state == "Red" else cfg.other_yellow_stop_decel
        stops = on_approach & (need <= limit)
        out = np.where(stops, np.minimum(out, np.maximum(to_line, 0.0)), out)
    return out


def _stood_at_entry(gt: GroundTruth, entries: np.ndarray, stood: set[int], cfg: ExpertConfig) -> set[int]:
    """The background vehicles that have made their stop at a junction without lights: seen standing within
    `unsignalised_stood_zone_m` of its entry, and still before it."""
    if len(entries) == 0:
        return set()
    ego = gt.ego.pose
    cars = [
        a
        for a in gt.actors
        if a.category == "vehicle"
        and a.source == "traffic"
        and abs(a.x - ego.x) < cfg.detect_radius_m
        and abs(a.y - ego.y) < cfg.detect_radius_m
    ]
    if not cars:
        return set()
    pos = np.array([[a.x, a.y] for a in cars])  # (M, 2)
    yaw = np.radians([a.yaw for a in cars])  # (M,)
    to_entry = _entry_gaps(entries, pos, yaw, np.array([a.extent[0] for a in cars]), cfg)  # (M,)
    out = set()
    for a, d in zip(cars, to_entry):
        if d <= cfg.unsignalised_stood_zone_m and (a.id in stood or a.speed < cfg.stuck_speed):
            out.add(a.id)
    return out


def _unsignalised_entries(gt: GroundTruth, entries: np.ndarray, cfg: ExpertConfig) -> np.ndarray:
    """The rows of `entries` (RoutePlan.junction_entries) with no traffic light at them: (E', 4)."""
    if len(entries) == 0:
        return entries
    tol = math.radians(cfg.same_direction_deg)
    signalised = np.zeros(len(entries), bool)
    for tl in gt.traffic_lights:
        mid = (np.asarray(tl.stop_line[0], np.float64) + np.asarray(tl.stop_line[1], np.float64)) / 2.0
        near = np.hypot(entries[:, 0] - mid[0], entries[:, 1] - mid[1]) < 8.0
        signalised |= near & (np.abs(_wrap(entries[:, 2] - math.radians(tl.lane_yaw))) < tol)
    return entries[~signalised]


def _entry_gaps(
    entries: np.ndarray, pos: np.ndarray, yaw: np.ndarray, half_length: np.ndarray, cfg: ExpertConfig
) -> np.ndarray:
    """(P,) metres from each vehicle's front to the junction entry (rows of `entries`) it is driving towards
    (in its lane, heading along it, within the lookahead); inf where there is none. Negative down to -0.5 m:
    the front is just past the entry (SUMO and the TM stand the vehicle about a metre before it)."""
    out = np.full(len(pos), np.inf)
    if len(entries) == 0 or len(pos) == 0:
        return out
    tol = math.radians(cfg.same_direction_deg)
    e = entries  # (E, 4)
    fwd = np.stack([np.cos(e[:, 2]), np.sin(e[:, 2])], axis=1)  # (E, 2)
    rel = pos[:, None, :] - e[None, :, :2]  # (P, E, 2)
    along = np.einsum("pec,ec->pe", rel, fwd)  # (P, E) centre along the entering lane (negative: before it)
    lateral = np.abs(rel[..., 0] * fwd[None, :, 1] - rel[..., 1] * fwd[None, :, 0])  # (P, E)
    to_entry = -along - half_length[:, None]  # (P, E)
    aligned = np.abs(_wrap(yaw[:, None] - e[None, :, 2])) < tol  # (P, E)
    approaching = aligned & (lateral <= e[None, :, 3]) & (to_entry > -0.5) & (to_entry < cfg.lookahead_m)
    return np.where(approaching, to_entry, np.inf).min(axis=1)


def _plan_nudge(
    gt: GroundTruth,
    route: RoutePlan,
    idx: int,
    i_end: int,
    s_ego: float,
    v: float,
    ex: float,
    ey: float,
    hazard: Obstacle,
    cfg: ExpertConfig,
    left_only: bool = False,
) -> float | None:
    """A sideways offset that passes a stalled, partly-blocking actor inside the lane, or None.

    left_only: a pedestrian at a junction's kerb; pass only on the left (away from the kerb of a right-hand road,
    whose corner a right offset cuts) and by at most `max_junction_nudge_m`.

    Only for actors seen now (not predictions), standing or nearly so and close ahead. Pedestrians only when
    they stand still beside the path, not in front of the ego (someone waiting at the kerb of a tight corner
    for their crossing signal); one in front may step anywhere. The shifted corridor must be free of anything
    else standing there, and a kinematic rollout along it (the ego's swept box, corners included) must touch
    nobody where they stand now. Moving traffic is left to the normal rules, which stay on while nudging.
    """
    beside = abs(hazard.lateral) > ey
    if (
        hazard.predicted
        or hazard.actor_id < 0
        or (hazard.reason == "pedestrian" and (hazard.actor_speed > cfg.min_predict_speed_walker or not beside))
        or hazard.actor_speed > cfg.nudge_max_actor_speed
        or hazard.gap > cfg.nudge_max_gap_m
    ):
        return None
    need = ey + hazard.half_width + cfg.nudge_clearance + 0.1
    candidates: list[float] = []
    for side in (1.0, -1.0):  # pass on its left / on its right, from just enough to the largest nudge
        base = hazard.lateral + side * need
        candidates += [base + side * k * 0.15 for k in range(int(2 * cfg.max_nudge_m / 0.15) + 1)]
    candidates = sorted(
        {
            round(o, 3)
            for o in candidates
            if abs(o) <= cfg.max_nudge_m
            and o * (o - hazard.lateral) > 0
            and (not left_only or 0.0 < o <= cfg.max_junction_nudge_m)
        },
        key=abs,
    )
    pass_s = hazard.end_s + ex + cfg.nudge_return_m
    for offset in candidates:
        path = local_path(route, max(idx - 1, 0), i_end, offset)
        # Only what stands in the shifted path rules it out; moving traffic (crossing pedestrians, vehicles) is
        # left to the normal rules, which stay on while nudging.
        blockers = [
            ob
            for ob in _actor_obstacles(gt, path, s_ego, v, ex, ey, cfg, False, cfg.nudge_clearance)
            if ob.gap < pass_s - s_ego and not ob.predicted and ob.actor_speed <= cfg.nudge_max_actor_speed
        ]
        if not blockers and sweep_clear(
            gt, route, idx, offset, pass_s, cfg, cfg.nudge_clearance, extrapolate=False,
            max_actor_speed=cfg.nudge_max_actor_speed,
        ) is None:
            return float(offset)
    return None


def sweep_clear(
    gt: GroundTruth,
    route: RoutePlan,
    idx: int,
    offset: float,
    until_s: float,
    cfg: ExpertConfig,
    clearance: float,
    extrapolate: bool = True,
    max_actor_speed: float = math.inf,
    speed: float | None = None,
    vehicles_only: bool = False,
    exclude: frozenset[int] = frozenset(),
) -> float | None:
    """Roll the ego out along the (shifted) route at `speed` (default: nudge speed) with the real lateral
    controller and check its box (inflated by `clearance` sideways) against every actor (moving ones at constant
    velocity, unless `extrapolate` is False: then against where they stand now). Actors faster than
    `max_actor_speed`, those in `exclude` and, with `vehicles_only`, walkers and cyclists are left out.

    Returns None when the sweep is clear, else the distance travelled before the first contact.
    """
    ego = gt.ego
    p = ego.pose
    ex, ey = float(ego.extent[0]) + 0.2, float(ego.extent[1]) + clearance
    near = [
        a
        for a in gt.actors
        if abs(a.x - p.x) < 30.0 and abs(a.y - p.y) < 30.0 and math.hypot(a.vx, a.vy) <= max_actor_speed
        and a.id not in exclude and not (vehicles_only and _actor_reason(a) in ("pedestrian", "cyclist"))
    ]
    if not near:
        return None
    boxes = np.array([[a.x, a.y, a.extent[0], a.extent[1], math.radians(a.yaw)] for a in near])  # (M, 5)
    vel = np.array([[a.vx, a.vy] for a in near]) if extrapolate else np.zeros((len(near), 2))  # (M, 2)
    i1 = route.index_at(until_s + 10.0) + 1
    path = local_path(route, max(idx - 1, 0), i1, offset)
    pts = np.vstack([path.a, path.b[-1:]])  # (K+1, 2)
    follower = RouteFollower(cfg.lateral)
    x, y, yaw = p.x, p.y, math.radians(p.yaw)
    speed = cfg.nudge_speed if speed is None else speed
    dt = max(0.2, 0.25 / speed)  # steps of 0.25 m at least: a slow rollout over metres needs no finer ones
    wheel_max = math.radians(cfg.lateral.max_steer_deg)
    travelled = 0.0
    s_start = route.s[idx]
    for step in range(int(min(12.0, (until_s - s_start + 2.0) / speed) / dt) + 1):
        t = step * dt
        cur = boxes.copy()
        cur[:, :2] += vel * t
        if _box_overlap((x, y, ex, ey, yaw), cur).any():
            return travelled
        steer = follower.steer(pts, x, y, math.degrees(yaw), speed)
        yaw += speed * math.tan(steer * wheel_max) / cfg.lateral.wheelbase * dt
        x += speed * math.cos(yaw) * dt
        y += speed * math.sin(yaw) * dt
        travelled += speed * dt
    return None


def _box_overlap(box: tuple[float, float, float, float, float], others: np.ndarray) -> np.ndarray:
    """Separating-axis test of one 2D box (x, y, half_x, half_y, yaw rad) against M boxes (M, 5). (M,) bool."""

    def corners(b: np.ndarray) -> np.ndarray:  # (M, 5) -> (M, 4, 2)
        c, s = np.cos(b[:, 4]), np.sin(b[:, 4])
        sx = np.array([1.0, 1.0, -1.0, -1.0])[None] * b[:, 2:3]
        sy = np.array([1.0, -1.0, -1.0, 1.0])[None] * b[:, 3:4]
        return np.stack(
            [b[:, :1] + sx * c[:, None] - sy * s[:, None], b[:, 1:2] + sx * s[:, None] + sy * c[:, None]],
            axis=-1,
        )

    m = len(others)
    a = corners(np.asarray([box], np.float64))[0]  # (4, 2)
    o = corners(others)  # (M, 4, 2)
    yaws = np.concatenate([np.full((m, 1), box[4]), others[:, 4:5]], axis=1)  # (M, 2)
    axes = np.concatenate(
        [np.stack([np.cos(yaws), np.sin(yaws)], -1), np.stack([-np.sin(yaws), np.cos(yaws)], -1)], axis=1
    )  # (M, 4, 2)
    pa = np.einsum("kd,mad->mak", a, axes)  # (M, 4 axes, 4 corners)
    po = np.einsum("mkd,mad->mak", o, axes)
    separated = (pa.max(-1) < po.min(-1)) | (po.max(-1) < pa.min(-1))
    return ~separated.any(-1)


# ------------------------------------------------------------------------------------- planner
class ExpertPlanner:
    """Stateful wrapper: keeps the memory and the PID controllers; step(gt) -> (control, decision)."""

    def __init__(self, route: RoutePlan, config: ExpertConfig | None = None) -> None:
        self.cfg = config or ExpertConfig()
        self.route = route
        self.memory = PlannerMemory()
        self.follower = RouteFollower(self.cfg.lateral, self.cfg.longitudinal)
        self.last_decision: Decision | None = None

    def step(self, gt: GroundTruth) -> tuple[carla.VehicleControl, Decision]:
        decision, self.memory = decide(gt, self.route, self.memory, self.cfg)
        self.last_decision = decision
        e = gt.ego
        path = self.path_ahead(decision.route_index, offset=decision.nudge_offset)
        control = self.follower.control(
            path, e.pose.x, e.pose.y, e.pose.yaw, max(e.speed, 0.0), decision.target_speed
        )
        return control, decision

    def path_ahead(self, index: int, length: float = 30.0, offset: float = 0.0) -> np.ndarray:
        """Route points from just behind `index` to `length` metres ahead, extended straight past the end,
        shifted `offset` metres to the left (a nudge). (K, 2)"""
        r = self.route
        i0 = max(index - 1, 0)
        i1 = r.index_at(r.s[index] + length) + 1
        pts = r.xy[i0 : i1 + 1]
        heading = r.heading[i0 : i1 + 1]
        if i1 >= len(r) - 1:
            h = r.heading[-1]
            ext = r.xy[-1] + np.outer(np.arange(1.0, length + 1.0, 2.0), [math.cos(h), math.sin(h)])
            pts = np.vstack([pts, ext])
            heading = np.concatenate([heading, np.full(len(ext), h)])
        if offset:
            pts = pts + offset * np.stack([np.sin(heading), -np.cos(heading)], axis=1)
        return pts
