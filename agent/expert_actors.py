"""The expert's obstacles from other actors: vehicles and pedestrians in the path corridor, predicted ones that
enter it before the ego clears the conflict point (lane-following or constant-velocity predictions, stops at red
lights and at junctions without lights), and the swept-box checks for junction turns and nudges."""

from __future__ import annotations

import math

import carla
import numpy as np

from agent.controllers import RouteFollower
from agent.expert_config import ExpertConfig
from agent.expert_obstacles import Obstacle, PlannerMemory, actor_reason
from agent.geometry import box_overlap, project_onto_segments, wrap_angle
from agent.lane_prediction import along_path, lane_path
from agent.route_plan import LocalPath, RoutePlan, local_path
from sim.types import GroundTruth


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


def actor_obstacles(
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
    entries: the junction entries without lights (`unsignalised_entries`). Background vehicles driving towards
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
    reasons = [actor_reason(a) for a in near]
    soft = np.array([r in ("pedestrian", "cyclist") for r in reasons])  # (M,)
    speed = np.hypot(vel[:, 0], vel[:, 1])  # (M,)
    standing = speed < cfg.min_predict_speed_walker

    s, lat, k, lat_signed = project_onto_segments(pos, a_seg, b_seg, s0_seg)  # (M,)
    # Walkers moving along the path (a sidewalk beside a narrow lane) keep a small margin: they pass the ego
    # rather than enter its lane. One stepping towards the path keeps the wide one (and its prediction).
    left = np.stack([np.sin(seg_heading[k]), -np.cos(seg_heading[k])], axis=1)  # (M, 2), CARLA y south
    towards = -np.sign(lat_signed) * np.sum(vel * left, axis=1)  # (M,) m/s towards the path
    bend = np.maximum.accumulate(np.abs(wrap_angle(seg_heading - math.radians(ego.yaw))))  # (K,) turned so far
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
    fs, flat, fk, _ = project_onto_segments(fut.reshape(-1, 2), a_seg, b_seg, s0_seg)  # (P*T,)
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
    cur_s, _, cur_k, _ = project_onto_segments(pos[movers], a_seg, b_seg, s0_seg)  # (P,) where the movers are now
    # At the route's start the path begins at the ego: everything behind it projects onto the path's first point
    # and would count as ahead. There, behind the ego's rear along its heading is behind (OccGen-13 route 27: a
    # van coming up behind the ego standing at its start was taken for a cut-in ahead and held the ego back).
    at_start = cur_s <= s0_seg[0] + 1e-6  # (P,)
    behind_ego = at_start & (rel_e[movers] @ np.array([math.cos(hy), math.sin(hy)]) < -ex)  # (P,)
    for row in np.nonzero(fin.any(axis=1))[0]:
        i = int(movers[row])
        behind = cur_s[row] < s_ego - ex or bool(behind_ego[row])
        if behind and abs(float(wrap_angle(yaw[i] - seg_heading[cur_k[row]]))) < math.radians(cfg.same_direction_deg):
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
        heading_diff = abs(float(wrap_angle(fyaw[row, j] - seg_heading[fk[row, j]])))
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
    lines = _stopping_lines(gt.traffic_lights, cfg)
    if lines is None:
        return np.full(len(pos), np.inf)
    mid, across, fwd, half, lane, limit = lines  # (L, 2) (L, 2) (L, 2) (L,) (L,) (L,)
    speed = np.hypot(vel[:, 0], vel[:, 1])  # (P,)
    rx, ry = pos[:, 0:1] - mid[:, 0], pos[:, 1:2] - mid[:, 1]  # (P, L)
    to_line = -(rx * fwd[:, 0] + ry * fwd[:, 1]) - half_length[:, None]  # (P, L) front bumper to the line
    lateral = np.abs(rx * across[:, 0] + ry * across[:, 1])  # (P, L)
    aligned = np.abs(wrap_angle(yaw[:, None] - lane)) < math.radians(cfg.same_direction_deg)
    on_approach = aligned & (lateral <= half + cfg.stop_line_extend) & (to_line > -0.5)
    on_approach &= to_line < cfg.lookahead_m
    need = speed[:, None] ** 2 / (2.0 * np.maximum(to_line, 0.1))  # (P, L) deceleration to stop at the line
    stops = on_approach & (need <= limit)
    return np.where(stops, np.maximum(to_line, 0.0), np.inf).min(axis=1, initial=np.inf)


# [the traffic-light list, the config, their stopping lines]: a tick's decision and its rollout share one list
# (ground truth builds a new list every tick, so an old one never changes under the cache)
_LINES_CACHE: list = [None, None, None]


def _stopping_lines(lights: list, cfg: ExpertConfig) -> tuple[np.ndarray, ...] | None:
    """The stop lines of the red and yellow lights as arrays: (mid (L, 2), unit across (L, 2), unit approach
    direction (L, 2), half length (L,), lane yaw rad (L,), the deceleration a vehicle still stops with (L,)),
    or None without any. Cached for the same list (the expert's rollout decides six times on one tick's lights)."""
    if _LINES_CACHE[0] is lights and _LINES_CACHE[1] is cfg:
        return _LINES_CACHE[2]
    rows = []
    for tl in lights:
        if tl.state not in ("Red", "Yellow"):
            continue
        p, q = np.asarray(tl.stop_line[0], np.float64), np.asarray(tl.stop_line[1], np.float64)
        mid, across = (p + q) / 2.0, q - p
        half = float(np.hypot(*across)) / 2.0
        if half < 1e-6:
            continue
        across /= 2.0 * half
        lane = math.radians(tl.lane_yaw)
        limit = cfg.other_red_stop_decel if tl.state == "Red" else cfg.other_yellow_stop_decel
        rows.append((*mid, *across, math.cos(lane), math.sin(lane), half, lane, limit))
    out = None
    if rows:
        arr = np.array(rows, np.float64)  # (L, 9)
        out = (arr[:, 0:2], arr[:, 2:4], arr[:, 4:6], arr[:, 6], arr[:, 7], arr[:, 8])
    _LINES_CACHE[:] = [lights, cfg, out]
    return out


def stood_at_entry(gt: GroundTruth, entries: np.ndarray, stood: set[int], cfg: ExpertConfig) -> set[int]:
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


def unsignalised_entries(gt: GroundTruth, entries: np.ndarray, cfg: ExpertConfig) -> np.ndarray:
    """The rows of `entries` (RoutePlan.junction_entries) with no traffic light at them: (E', 4)."""
    if len(entries) == 0:
        return entries
    tol = math.radians(cfg.same_direction_deg)
    signalised = np.zeros(len(entries), bool)
    for tl in gt.traffic_lights:
        mid = (np.asarray(tl.stop_line[0], np.float64) + np.asarray(tl.stop_line[1], np.float64)) / 2.0
        near = np.hypot(entries[:, 0] - mid[0], entries[:, 1] - mid[1]) < 8.0
        signalised |= near & (np.abs(wrap_angle(entries[:, 2] - math.radians(tl.lane_yaw))) < tol)
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
    aligned = np.abs(wrap_angle(yaw[:, None] - e[None, :, 2])) < tol  # (P, E)
    approaching = aligned & (lateral <= e[None, :, 3]) & (to_entry > -0.5) & (to_entry < cfg.lookahead_m)
    return np.where(approaching, to_entry, np.inf).min(axis=1)


def turn_sweep_obstacles(
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
    turn = abs(float(wrap_angle(route.heading[j1] - math.radians(gt.ego.pose.yaw))))
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
        and a.id not in exclude and not (vehicles_only and actor_reason(a) in ("pedestrian", "cyclist"))
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
        if box_overlap((x, y, ex, ey, yaw), cur).any():
            return travelled
        steer = follower.steer(pts, x, y, math.degrees(yaw), speed)
        yaw += speed * math.tan(steer * wheel_max) / cfg.lateral.wheelbase * dt
        x += speed * math.cos(yaw) * dt
        y += speed * math.sin(yaw) * dt
        travelled += speed * dt
    return None
