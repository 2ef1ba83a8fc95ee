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

import math
from dataclasses import dataclass, field, replace

import carla
import numpy as np

from agent.controllers import RouteFollower
from agent.expert_actors import (
    actor_obstacles,
    stood_at_entry,
    sweep_clear,
    turn_sweep_obstacles,
    unsignalised_entries,
)
from agent.expert_config import ExpertConfig
from agent.expert_lane_change import lane_change_obstacles, pending_lane_change
from agent.expert_obstacles import (
    Obstacle,
    PlannerMemory,
    crosswalk_obstacles,
    junction_obstacles,
    stop_line_obstacles,
)
from agent.route_plan import CAP_REASONS, RoutePlan, local_path, route_progress
from sim.types import GroundTruth

LEGAL_WAITS = ("red_light", "yellow_light", "stop_sign", "lane_change_gap")  # standing still for these is never "stuck"


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


def _look_further(cfg: ExpertConfig, v: float) -> ExpertConfig:
    """Above town speeds (highways) the preview of speed caps, the corridor and the actor radius grow with the
    braking distance at `comfort_decel` (+20 m): 176 m at 90 km/h. At town speeds the config is unchanged."""
    reach = v * v / (2.0 * cfg.comfort_decel) + 20.0
    if reach <= cfg.preview_m:
        return cfg
    return replace(
        cfg,
        preview_m=reach,
        lookahead_m=max(cfg.lookahead_m, reach),
        detect_radius_m=max(cfg.detect_radius_m, reach + 10.0),
    )


def decide(
    gt: GroundTruth, route: RoutePlan, memory: PlannerMemory, config: ExpertConfig | None = None
) -> tuple[Decision, PlannerMemory]:
    """One decision: pure in (gt, route, memory, config); returns the decision and the next memory."""
    cfg = config or ExpertConfig()
    mem = memory.copy()
    ego = gt.ego
    dt = 0.0 if mem.last_time is None else max(0.0, gt.timestamp - mem.last_time)
    mem.last_time = gt.timestamp
    v = max(float(ego.speed), 0.0)
    cfg = _look_further(cfg, v)
    ex, ey = float(ego.extent[0]), float(ego.extent[1])

    idx, s_ego = route_progress(route, ego.pose.x, ego.pose.y, mem.route_index)
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
    unsignalised = unsignalised_entries(gt, route.junction_entries, cfg)  # (E', 4)
    mem.stood_at_entry = stood_at_entry(gt, unsignalised, mem.stood_at_entry, cfg)
    actor_obs = actor_obstacles(
        gt, path, s_ego, v, ex, ey, cfg, creeping, margin, junction=ahead_junction,
        entries=unsignalised, stood=mem.stood_at_entry, lanes=route.lanes,
    )
    # the nearest vehicle or obstacle in the corridor that would slow the ego: going on yellow needs free road
    lead_gap = min(
        (ob.gap for ob in actor_obs if not ob.predicted and ob.speed < v + 0.5), default=math.inf
    )
    obstacles += stop_line_obstacles(gt, route, idx, i_end, s_ego, v, ex, cfg, mem, dt, lead_gap)
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
    # time stood at the start of a change (for a gap, a light, a queue); kept while the ego sets off into it
    pending = pending_lane_change(route, idx, s_ego, ex, cfg)
    if pending is None or pending[2] - s_ego - ex >= cfg.lane_change_wait_zone_m:
        mem.lane_change_wait = 0.0
    elif v < cfg.lane_change_wait_speed:
        mem.lane_change_wait += dt
    obstacles += lane_change_obstacles(gt, route, idx, s_ego, v, ex, cfg, mem.lane_change_wait)
    obstacles += turn_sweep_obstacles(gt, route, idx, s_ego, v, cfg, mem, actor_obs)
    obstacles += junction_obstacles(route, s_ego, v, ex, actor_obs, cfg)
    if gt.crosswalks:
        obstacles += crosswalk_obstacles(gt, route, s_ego, v, ex, ey, actor_obs, cfg)
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
            for ob in actor_obstacles(gt, path, s_ego, v, ex, ey, cfg, False, cfg.nudge_clearance)
            if ob.gap < pass_s - s_ego and not ob.predicted and ob.actor_speed <= cfg.nudge_max_actor_speed
        ]
        if not blockers and sweep_clear(
            gt, route, idx, offset, pass_s, cfg, cfg.nudge_clearance, extrapolate=False,
            max_actor_speed=cfg.nudge_max_actor_speed,
        ) is None:
            return float(offset)
    return None


class ExpertPlanner:
    """Stateful wrapper: keeps the memory and the PID controllers; step(gt) -> (control, decision)."""

    def __init__(self, route: RoutePlan, config: ExpertConfig | None = None) -> None:
        self.cfg = config or ExpertConfig()
        self.route = route
        self.memory = PlannerMemory()
        self.follower = RouteFollower(self.cfg.lateral, self.cfg.longitudinal)
        self.last_decision: Decision | None = None
        self._memo: tuple[GroundTruth, PlannerMemory, Decision, PlannerMemory] | None = None

    def decide_now(self, gt: GroundTruth) -> tuple[Decision, PlannerMemory]:
        """`decide` on this ground truth from the current memory, without advancing it. Memoised for the same
        ground truth and memory: a data collector rolls the expert's plan out from the state the expert is about
        to decide on, and both then cost one decision (decide is pure, so the result is the same)."""
        memo = self._memo
        if memo is not None and memo[0] is gt and memo[1] is self.memory:
            return memo[2], memo[3]
        decision, mem = decide(gt, self.route, self.memory, self.cfg)
        self._memo = (gt, self.memory, decision, mem)
        return decision, mem

    def step(self, gt: GroundTruth) -> tuple[carla.VehicleControl, Decision]:
        decision, self.memory = self.decide_now(gt)
        self._memo = None
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
