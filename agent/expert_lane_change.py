"""Gap acceptance for the lane changes a route asks for (multi-lane roads, arterials).

The route planner puts each lane change at a fixed place (a sideways hop that agent/route_plan.py spreads over
`lane_change_length_m` of the new lane). Before the ego starts such a change it checks the target lane: a vehicle
there must be far enough ahead of where the ego will merge, or far enough behind it that it need not brake
(a time headway plus the closing speed). Otherwise a virtual stop at the start of the change holds the ego in
its own lane until the gap opens. Once the ego's front is past the start of the change it is committed.
Plain numpy on ground truth, like the other obstacle sources.
"""

from __future__ import annotations

import math

import numpy as np

from agent.expert_config import ExpertConfig
from agent.expert_obstacles import Obstacle
from agent.route_plan import CHANGELANELEFT, CHANGELANERIGHT, RoutePlan, lane_change_length
from sim.types import GroundTruth

CHANGES = (CHANGELANELEFT, CHANGELANERIGHT)


def next_lane_change(route: RoutePlan, idx: int, s_ego: float, horizon: float) -> tuple[int, int] | None:
    """(index of the last old-lane point, index of the first point past the change) of the next lane change that
    starts within `horizon` m ahead of `s_ego`, or None."""
    hi = route.index_at(s_ego + horizon) + 1
    opts = route.option[idx : hi + 1]
    starts = np.nonzero(np.isin(opts, CHANGES))[0]
    if len(starts) == 0:
        return None
    j = idx + int(starts[0])  # first point on the new lane
    if j == 0:
        # a route that starts with a change: its first point carries the change's option, yet the ego stands on
        # the old lane there; the hop lands on the next point
        if len(route) < 2 or route.option[1] not in CHANGES:
            return None
        j = 1
    return j - 1, j


def pending_lane_change(
    route: RoutePlan, idx: int, s_ego: float, ex: float, cfg: ExpertConfig
) -> tuple[int, int, float, float] | None:
    """(last old-lane index, first new-lane index, start s, length m) of the next lane change within the preview
    that the ego has not committed to yet, or None."""
    found = next_lane_change(route, idx, s_ego, cfg.preview_m)
    if found is None:
        return None
    i_old, j = found
    s_h = float(route.s[j])  # the change starts here: route_plan pulls the hop's end back onto the old lane
    length = max(float(lane_change_length(cfg, route.speed_limit[j])), 1.0)
    if s_ego + ex > s_h + cfg.lane_change_commit * length:
        return None  # already moving over: finish the change (the corridor still watches what is ahead)
    return i_old, j, s_h, length


def lane_change_obstacles(
    gt: GroundTruth,
    route: RoutePlan,
    idx: int,
    s_ego: float,
    v: float,
    ex: float,
    cfg: ExpertConfig,
    waited: float = 0.0,
) -> list[Obstacle]:
    """A stop before the next lane change while a vehicle on the target lane leaves no safe gap (else []).

    waited: seconds the ego has stood before this change. Past `lane_change_patience_s` a vehicle behind on the
    target lane only has to be able to brake for the ego (comfortably, after a reaction time) once the ego's body
    begins to cross into its lane, instead of never having to brake."""
    pending = pending_lane_change(route, idx, s_ego, ex, cfg)
    if pending is None:
        return []
    i_old, j, s_h, length = pending
    # the target lane: the new lane's centre line where the hop lands on it (the route's points before
    # smoothing), extended backwards along its heading there. The smoothed route still drifts over for
    # `length` metres and may bend or change lane again before it is done: neither its heading nor its offset
    # there measures the lane (OccGen-2 route 5: a change right just out of a left turn, with a change back
    # left 17 m on, measured 1.1 m wide and went unchecked into a van coming up that lane).
    lanes = route.lane_xy if route.lane_xy is not None else route.xy
    k = _lane_heading_index(route, j, s_h)
    pk = lanes[j]
    d = lanes[k] - pk
    hk = math.atan2(float(d[1]), float(d[0]))
    fwd = np.array([math.cos(hk), math.sin(hk)])
    left = np.array([math.sin(hk), -math.cos(hk)])  # CARLA frame (y south): left of the heading
    width = abs(float(np.dot(lanes[i_old] - pk, left)))  # old lane to new lane, metres
    if width < 1.5:
        return []  # not a real change of lane (a hop along the same lane)
    k = min(route.index_at(s_h + length + 1.0), len(route) - 1)
    # the ego's speed through the change: capped there (route_plan), never assumed slower than min_speed
    cap = float(route.speed_cap[j : k + 1].min())  # lane-change and curve caps along the change
    v_merge = max(min(v, cap), cfg.lane_change_min_speed)
    # the change lasts from the front reaching its start to the centre reaching its end; the actor must stay
    # clear over all of it (its distance to the ego is linear in time: checking both ends is enough)
    times = (max(s_h - ex - s_ego, 0.0) / v_merge, max(s_h + length - s_ego, 0.0) / v_merge)
    t_cross = max(s_h + cfg.lane_change_cross_fraction * length - s_ego, 0.0) / v_merge
    worst: Obstacle | None = None
    for a in gt.actors:
        if a.category != "vehicle":
            continue
        rel = np.array([a.x, a.y]) - pk
        lat = float(np.dot(rel, left))
        if abs(lat) > width / 2.0 + 0.3:
            continue  # not on the target lane
        if abs((math.radians(a.yaw) - hk + math.pi) % (2 * math.pi) - math.pi) > math.radians(45):
            continue  # not driving along it
        lon = float(np.dot(rel, fwd))  # along the target lane from the change start
        if not -cfg.lane_change_look_back_m <= lon <= cfg.preview_m:
            continue
        va = max(float(a.vx * fwd[0] + a.vy * fwd[1]), 0.0)
        # actor centre ahead of the ego centre (both along the target lane), at the start and the end
        d = [lon + va * t - (s_ego + v_merge * t - s_h) for t in times]
        reach = ex + float(a.extent[0]) + cfg.lane_change_margin_m
        if waited >= cfg.lane_change_patience_s:
            # From when the body begins to cross into the target lane: a vehicle behind brakes to the ego's speed
            # (a standing one beside the ego's rear is passed before the body gets there); one ahead is followed.
            dp = [lon + va * t - (s_ego + v_merge * t - s_h) for t in (t_cross, times[1])]
            near = ex + float(a.extent[0]) + cfg.lane_change_patient_margin_m
            closing = max(va - v_merge, 0.0)
            brake = va * cfg.lane_change_rear_reaction_s + closing**2 / (2.0 * max(cfg.lane_change_rear_decel, 0.1))
            behind_ok = dp[0] < -(near + brake)
            ahead_ok = min(dp) > near + max(v_merge - va, 0.0) * 1.0
        else:
            behind_ok = max(d) < -(reach + va * cfg.lane_change_rear_headway_s + max(va - v_merge, 0.0) * 1.5)
            ahead_ok = min(d) > reach + max(v_merge - va, 0.0) * 1.0
        if behind_ok or ahead_ok:
            continue
        ob = Obstacle(
            max(s_h - s_ego - ex, 0.0), 0.0, 0.3, 0.0, "lane_change_gap", actor_id=a.id, actor_speed=va
        )
        if worst is None:
            worst = ob
    return [worst] if worst is not None else []


def _lane_heading_index(route: RoutePlan, j: int, s_h: float, span_m: float = 4.0) -> int:
    """A point `span_m` on along the new lane from the change's first point `j` (before any further lane change):
    the lane's heading where the ego joins it is the direction from `j` to there."""
    k = min(max(route.index_at(s_h + span_m), j + 1), len(route) - 1)
    later = np.nonzero(np.isin(route.option[j + 1 : k + 1], CHANGES))[0]
    if len(later):
        k = j + max(int(later[0]), 1)  # the last point before the next hop (which lands on yet another lane)
    return k
