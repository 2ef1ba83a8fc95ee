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


def change_hops(route: RoutePlan, j: int, cfg: ExpertConfig) -> list[int]:
    """The hops of the lane change whose first new-lane point is `j`: `j` and each next hop the same way within a
    lane change's length of the one before. A change over two lanes hops twice in a row, and route_plan drifts
    across both as one move: its lanes are checked together, before it starts."""
    hops = [j]
    k = j + 1
    while k < len(route):
        if route.s[k] - route.s[hops[-1]] > float(lane_change_length(cfg, route.speed_limit[hops[-1]])):
            break
        if route.option[k] == route.option[j]:
            hops.append(k)
        elif route.option[k] in CHANGES:
            break  # a change back the other way: its own change
        k += 1
    return hops


def _group_start(route: RoutePlan, j: int, cfg: ExpertConfig) -> int:
    """The first hop of the change that hop `j` belongs to (j itself unless a hop the same way lies just before)."""
    while j >= 2:
        p = j - 1  # back to the hop before, no farther than a change spreads over from there
        while (p >= 1 and route.option[p] not in CHANGES
               and route.s[j] - route.s[p] <= float(lane_change_length(cfg, route.speed_limit[p]))):
            p -= 1
        if p < 1 or route.option[p] != route.option[j] or j not in change_hops(route, p, cfg):
            break
        j = p
    return j


def pending_lane_change(
    route: RoutePlan, idx: int, s_ego: float, ex: float, cfg: ExpertConfig
) -> tuple[int, int, float, float, list[int]] | None:
    """(last old-lane index, first new-lane index, start s, length m, the hops) of the next lane change within
    the preview that the ego has not committed to yet, or None. A change over several lanes is one change."""
    found = next_lane_change(route, idx, s_ego, cfg.preview_m)
    if found is None:
        return None
    j = _group_start(route, found[1], cfg)
    i_old = j - 1
    s_h = float(route.s[j])  # the change starts here: route_plan pulls the hop's end back onto the old lane
    length = max(float(lane_change_length(cfg, route.speed_limit[j])), 1.0)
    if s_ego + ex > s_h + cfg.lane_change_commit * length:
        return None  # already moving over: finish the change (the corridor still watches what is ahead)
    return i_old, j, s_h, length, change_hops(route, j, cfg)


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
    i_old, j, s_h, length, hops = pending
    # each target lane: the lane's centre line where a hop lands on it (the route's points before smoothing),
    # extended backwards along the heading the route settles on after the change's last hop. The smoothed route
    # still drifts over for `length` metres and may bend or change lane again before it is done: neither its
    # heading nor its offset there measures the lane (OccGen-2 route 5: a change right just out of a left turn,
    # with a change back left 17 m on, measured 1.1 m wide and went unchecked into a van coming up that lane;
    # OccGen-5 route 10: two hops left in a row out of a turn, measured across the second hop, 0 m wide).
    lanes = route.lane_xy if route.lane_xy is not None else route.xy
    last = hops[-1]
    k = _lane_heading_index(route, last, float(route.s[last]))
    d = lanes[k] - lanes[last]
    hk = math.atan2(float(d[1]), float(d[0]))
    fwd = np.array([math.cos(hk), math.sin(hk)])
    left = np.array([math.sin(hk), -math.cos(hk)])  # CARLA frame (y south): left of the heading
    s_end = float(route.s[last]) + length
    k = min(route.index_at(s_end + 1.0), len(route) - 1)
    # the ego's speed through the change: capped there (route_plan), never assumed slower than min_speed
    cap = float(route.speed_cap[j : k + 1].min())  # lane-change and curve caps along the change
    v_merge = max(min(v, cap), cfg.lane_change_min_speed)
    worst: Obstacle | None = None
    prev = lanes[i_old]
    for h in hops:
        pk = lanes[h]
        width = abs(float(np.dot(prev - pk, left)))  # the lane before to this one, metres
        prev = pk
        if width < 1.5:
            continue  # not a real change of lane (a hop along the same lane)
        a = _gap_blocker(gt, pk, fwd, left, width, float(route.s[h]), length, s_ego, v_merge, ex, cfg, waited)
        if a is not None and worst is None:
            worst = Obstacle(
                max(s_h - s_ego - ex, 0.0), 0.0, 0.3, 0.0, "lane_change_gap", actor_id=a[0], actor_speed=a[1]
            )
    return [worst] if worst is not None else []


def _gap_blocker(
    gt: GroundTruth,
    pk: np.ndarray,
    fwd: np.ndarray,
    left: np.ndarray,
    width: float,
    s_h: float,
    length: float,
    s_ego: float,
    v_merge: float,
    ex: float,
    cfg: ExpertConfig,
    waited: float,
) -> tuple[int, float] | None:
    """(id, speed along the lane) of the first vehicle on the target lane through `pk` that leaves no safe gap
    for the ego moving over from `s_h` to `s_h + length` of its route, else None."""
    hk = math.atan2(float(fwd[1]), float(fwd[0]))
    # the change lasts from the front reaching its start to the centre reaching its end; the actor must stay
    # clear over all of it (its distance to the ego is linear in time: checking both ends is enough)
    times = (max(s_h - ex - s_ego, 0.0) / v_merge, max(s_h + length - s_ego, 0.0) / v_merge)
    t_cross = max(s_h + cfg.lane_change_cross_fraction * length - s_ego, 0.0) / v_merge
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
        if not (behind_ok or ahead_ok):
            return a.id, va
    return None


def _lane_heading_index(route: RoutePlan, j: int, s_h: float, span_m: float = 4.0) -> int:
    """A point `span_m` on along the new lane from the change's first point `j` (before any further lane change):
    the lane's heading where the ego joins it is the direction from `j` to there."""
    k = min(max(route.index_at(s_h + span_m), j + 1), len(route) - 1)
    later = np.nonzero(np.isin(route.option[j + 1 : k + 1], CHANGES))[0]
    if len(later):
        k = j + max(int(later[0]), 1)  # the last point before the next hop (which lands on yet another lane)
    return k
