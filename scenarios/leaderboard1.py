"""The CARLA leaderboard-1.0 scenario types, by the names of its trigger JSON ('Scenario1' ... 'Scenario10').

Each reproduces the scenario_runner behaviour as closely as scripted kinematic actors allow (our own code,
written from the public scenario descriptions):

  Scenario1  ControlLoss                   deterministic steer/throttle noise on the ego for a few seconds
  Scenario2  FollowLeadingVehicle          a lead car drives off, brakes hard to a stop, waits, drives on
  Scenario3  DynamicObjectCrossing         a pedestrian (or cyclist) steps out from behind a van parked on the right
  Scenario4  VehicleTurningRoute           after the ego turns at a junction, a cyclist crosses its exit road
  Scenario5  OtherLeadingVehicle           a lead car slows to a crawl and speeds up again; a car beside it
                                           (same direction) blocks a lane change where there is such a lane
  Scenario6  ManeuverOppositeDirection     a broken-down car half on the shoulder of the ego lane, oncoming traffic;
                                           passing needs the opposite lane's space, so the ego must time it
  Scenario7  OppositeVehicleRunningRedLight  the ego has green; a car from the side runs its red across the ego path
  Scenario8  SignalizedJunctionLeftTurn    the ego turns left on green; oncoming cars go straight (ego yields)
  Scenario9  SignalizedJunctionRightTurn   the ego turns right and has red; cars from the left cross on green
  Scenario10 NoSignalJunctionCrossing      lights off; a car from the side crosses and does not yield

Scenario6 by design: the embedded expert cannot change lanes, it can only shift inside its lane (up to
~1.6 m, agent/expert_config.max_nudge_m). The obstacle therefore stands 1 m right of the lane centre, so passing
is possible with a nudge that reaches ~0.9 m into the opposite lane while no oncoming car is there, and it
drives away after `hold_time` seconds so an agent that only waits is never blocked for good.

Scripted actors do not see SUMO traffic; lead vehicles (Scenario2/5/6) stop for red lights and keep a gap
to whatever stands on their path, adversaries (crossing cars, cyclists, pedestrians) do neither, on purpose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import carla
import numpy as np

from scenarios.base import Scenario, ScenarioError, ScenarioParams
from scenarios.behaviours import PathMotion
from scenarios.geometry import (
    Connector,
    Polyline,
    approach_side,
    cross_section,
    first_intersection,
    junction_connectors,
    junction_span,
    lane_behind,
    lane_path,
)
from sim.route_planner import LANE_CHANGES
from sim.types import DEFAULT_EXTENTS, GroundTruth

CARS = ("vehicle.tesla.model3", "vehicle.audi.a2", "vehicle.nissan.micra", "vehicle.toyota.prius",
        "vehicle.mercedes.coupe", "vehicle.lincoln.mkz_2017", "vehicle.seat.leon", "vehicle.citroen.c3")
WALKERS = tuple(f"walker.pedestrian.{i:04d}" for i in range(1, 15))
BICYCLES = ("vehicle.diamondback.century", "vehicle.bh.crossbike", "vehicle.gazelle.omafiets")
VAN = "vehicle.volkswagen.t2"
EGO_HALF_LENGTH = DEFAULT_EXTENTS["car"][0]
MIN_ETA_SPEED = 3.0  # m/s assumed for the ego when it is slower, so adversaries still start


def pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def half_width(type_id: str) -> float:
    from sim.blueprints import classify

    return classify(type_id)[2][1]


def half_length(type_id: str) -> float:
    from sim.blueprints import classify

    return classify(type_id)[2][0]


# ---------------------------------------------------------------------------------------------- Scenario1
@dataclass
class ControlLossParams(ScenarioParams):
    duration: float = 4.0  # seconds of perturbed control after the trigger
    # scenario_runner's ChangeNoiseParameters: each jitter pulls the steer left by |N(0, steer_std)| less
    # steer_bias (never right), and adds |N(0, steer_std)| plus throttle_bias to the throttle
    steer_std: float = 0.01
    steer_bias: float = 0.001
    throttle_bias: float = 0.045
    period: float = 0.4  # seconds each noise value is held (10 jitters, as scenario_runner's)
    trigger_distance: float = 4.0


class ControlLoss(Scenario):
    """Scenario1: the ego loses control for a moment (wet patch, pothole): its own control is perturbed, with
    scenario_runner's noise model and magnitudes (a steer offset of at most a few hundredths, to the left). A
    steer std of 0.06 held 0.5 s, either way, had pushed the expert into roadside trees at 30 km/h."""

    Config = ControlLossParams
    description = "ego control loss: seeded steer/throttle jitter for a few seconds (scenario_runner magnitudes)"

    def _build(self) -> None:
        c = self.config
        n = max(1, math.ceil(c.duration / c.period))
        draw = np.abs(self.rng.normal(0.0, c.steer_std, n))  # (n,)
        self.steer_noise = np.minimum(0.0, -(draw - c.steer_bias))  # (n,) in steer units, <= 0
        self.throttle_noise = draw + c.throttle_bias  # (n,) added to the throttle

    def control_hook(self, control: carla.VehicleControl, frame: int) -> carla.VehicleControl:
        if self.trigger_frame is None:
            return control
        t = (frame - self.trigger_frame) * 0.05
        if t < 0 or t >= self.config.duration:
            return control
        k = min(int(t / self.config.period), len(self.steer_noise) - 1)
        out = carla.VehicleControl(
            throttle=float(np.clip(control.throttle + self.throttle_noise[k], 0.0, 1.0)),
            steer=float(np.clip(control.steer + self.steer_noise[k], -1.0, 1.0)),
            brake=float(control.brake), hand_brake=bool(control.hand_brake), reverse=bool(control.reverse),
            manual_gear_shift=bool(control.manual_gear_shift), gear=int(control.gear))
        return out

    def _update(self, gt: GroundTruth) -> None:
        if self.elapsed(gt) >= self.config.duration:
            self.finish()


# ---------------------------------------------------------------------------------------------- lead vehicles
LANE_CHANGE_LOOK_BACK_M = 40.0  # a change this far before a trigger may still be under way past it


def _no_lane_change(self: Scenario, s_end: float, look_back: float = LANE_CHANGE_LOOK_BACK_M) -> None:
    """ScenarioError when the route changes lane between `look_back` metres before the trigger and `s_end`
    metres past it.

    A lead vehicle drives the ego's route from ahead of the trigger, so after a lane change it stands, waiting for
    the trigger, in the lane the ego must change into: the ego holds back for a gap that never opens before it
    reaches the trigger (OccGen-2 route 5: a change 8 m before the trigger, the ego blocked 11 m short of its
    8 m radius). A change shortly before the trigger lands on the lead's lane too (it spans tens of metres)."""
    if not self.route:
        return
    pts = np.array([[t.location.x, t.location.y] for t, _ in self.route])  # (N, 2)
    x, y = self.trigger_xy
    i = int(np.argmin(np.hypot(pts[:, 0] - x, pts[:, 1] - y)))
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])  # (N,)
    s = s - s[i]  # metres past the trigger
    for (_, opt), d in zip(self.route, s, strict=True):
        if -look_back <= d <= s_end and opt in LANE_CHANGES:
            where = f"{d:.0f} m past" if d >= 0 else f"{-d:.0f} m before"
            raise ScenarioError(f"scenario {self.id}: the route changes lane {where} the trigger, into the lane "
                                "where the lead vehicle would stand")


def _clear_run(self: Scenario, s0: float, need: float) -> float:
    """The largest s <= s0 with `need` metres of path before the next junction after it (ScenarioError if none)."""
    span = junction_span(self.cmap, self.ego_path, 0.0, s0 + need + 5.0)
    if span is None or span[1] > s0 + need:
        return s0
    s = span[1] - need
    if s < 8.0:
        raise ScenarioError(f"scenario {self.id}: a junction {span[1]:.0f} m past the trigger leaves no room")
    return s


@dataclass
class FollowLeadingVehicleParams(ScenarioParams):
    distance: float = 25.0  # lead vehicle's start, metres ahead of the trigger along the ego path
    speed: float = 8.0  # m/s cruise
    brake_after: float = 35.0  # metres the lead drives before braking
    decel: float = 5.0  # m/s^2 of its hard brake
    hold_time: float = 6.0  # seconds it stands before driving on
    trigger_distance: float = 8.0


class FollowLeadingVehicle(Scenario):
    """Scenario2: a lead vehicle in the ego lane drives off, brakes hard to a standstill, waits, drives on."""

    Config = FollowLeadingVehicleParams
    description = "lead vehicle brakes hard to a stop, waits, drives on"

    @staticmethod
    def lead_span(c: FollowLeadingVehicleParams) -> float:
        """Metres from the lead's start to past where it stands."""
        return c.brake_after + 10.0

    def _build(self) -> None:
        c = self.config
        s0 = _clear_run(self, c.distance, 6.0)
        _no_lane_change(self, s0 + self.lead_span(c))  # where the lead spawns and stands
        self.s_lead0 = s0
        path = self.drive_path.sub(s0, self.drive_path.length)
        self.lead = PathMotion(path, c.speed, accel=2.0, decel=c.decel, obey_lights=True, follow_gap=4.0)
        x, y, yaw = path.point_at(0.0)
        self.spawn("lead", pick(self.rng, CARS), x, y, yaw, "driving", self.lead)
        self.phase, self.t_stop = "cruise", 0.0

    def _update(self, gt: GroundTruth) -> None:
        m, c = self.lead, self.config
        if self.phase == "cruise" and m.s >= c.brake_after:
            self.phase = "brake"
            m.set_target(0.0, c.decel)
        elif self.phase == "brake" and m.v <= 1e-3:
            self.phase, self.t_stop = "hold", self.elapsed(gt)
        elif self.phase == "hold" and self.elapsed(gt) - self.t_stop >= c.hold_time:
            self.phase = "drive"
            m.set_target(c.speed, 4.0)
            self.finish()


@dataclass
class OtherLeadingVehicleParams(ScenarioParams):
    distance: float = 30.0
    speed: float = 8.0
    slow_speed: float = 2.0  # m/s the lead slows to
    slow_after: float = 30.0  # metres driven before it slows
    slow_for: float = 25.0  # metres driven slowly before it speeds up again
    trigger_distance: float = 8.0


class OtherLeadingVehicle(Scenario):
    """Scenario5: the lead slows to a crawl then speeds up; a car in the next same-direction lane keeps pace."""

    Config = OtherLeadingVehicleParams
    description = "lead vehicle slows to a crawl and speeds up; neighbour lane occupied"

    @staticmethod
    def lead_span(c: OtherLeadingVehicleParams) -> float:
        """Metres from the lead's start to where it speeds up again."""
        return c.slow_after + c.slow_for

    def _build(self) -> None:
        c = self.config
        s0 = _clear_run(self, c.distance, 6.0)
        _no_lane_change(self, s0 + self.lead_span(c))  # where the lead spawns and crawls
        path = self.drive_path.sub(s0, self.drive_path.length)
        self.lead = PathMotion(path, c.speed, decel=3.0, obey_lights=True, follow_gap=4.0)
        x, y, yaw = path.point_at(0.0)
        self.spawn("lead", pick(self.rng, CARS), x, y, yaw, "driving", self.lead)
        self.phase = "cruise"
        # a neighbour in the adjacent lane of the same direction, level with the ego's future position
        wp = self.cmap.get_waypoint(carla.Location(x, y, 0.0), project_to_road=True)
        side = None
        for cand in (wp.get_left_lane(), wp.get_right_lane()):
            if (cand is not None and cand.lane_type == carla.LaneType.Driving
                    and cand.lane_id * wp.lane_id > 0):
                side = cand
                break
        if side is not None:
            back = side.previous(12.0)
            start = back[0] if back else side
            npath = lane_path(start, 200.0)
            self.neighbour = PathMotion(npath, c.speed, obey_lights=True, follow_gap=4.0)
            nx, ny, nyaw = npath.point_at(0.0)
            self.spawn("neighbour", pick(self.rng, CARS), nx, ny, nyaw, "driving", self.neighbour)

    def _update(self, gt: GroundTruth) -> None:
        m, c = self.lead, self.config
        if self.phase == "cruise" and m.s >= c.slow_after:
            self.phase = "slow"
            m.set_target(c.slow_speed, 3.0)
        elif self.phase == "slow" and m.s >= c.slow_after + c.slow_for:
            self.phase = "resume"
            m.set_target(c.speed)
            self.finish()


@dataclass
class ManeuverOppositeDirectionParams(ScenarioParams):
    distance: float = 35.0  # the broken-down vehicle, metres past the trigger
    lateral: float = 1.0  # metres right of the lane centre (half on the shoulder)
    hold_time: float = 30.0  # seconds after the trigger when it drives away (math.inf: never)
    oncoming_speed: float = 7.0
    oncoming_gap: float = 30.0  # metres between the two oncoming cars
    trigger_distance: float = 12.0


class ManeuverOppositeDirection(Scenario):
    """Scenario6: an obstacle partly blocks the ego lane while oncoming cars come down the other lane."""

    Config = ManeuverOppositeDirectionParams
    description = "broken-down car half in the ego lane, oncoming traffic; pass in a gap or wait"

    def _build(self) -> None:
        c = self.config
        bp = pick(self.rng, CARS)
        s_obs = _clear_run(self, c.distance, half_length(bp) + 8.0)
        self.s_obs = s_obs
        x, y, yaw = self.ego_path.offset_point(s_obs, c.lateral)
        # the obstacle drives away along the lane (back onto the centre line) once its hold time is over
        away = self.drive_path.sub(s_obs, self.drive_path.length)
        pts = [(x, y), *map(tuple, away.xy[away.s > 8.0])]
        self.obstacle = PathMotion(Polyline.from_points(pts), 6.0, obey_lights=True, follow_gap=4.0)
        self.spawn("obstacle", bp, x, y, yaw, "driving", self.obstacle)
        self.oncoming = spawn_oncoming(self, s_obs, c.oncoming_gap, c.oncoming_speed)

    def _on_trigger(self, gt: GroundTruth) -> None:
        for m in self.oncoming:
            m.start(initial_speed=self.config.oncoming_speed)

    def _update(self, gt: GroundTruth) -> None:
        if not self.obstacle.active and self.elapsed(gt) >= self.config.hold_time:
            self.obstacle.start()
            self.finish()


def spawn_oncoming(sc: Scenario, s_at: float, gap: float, speed: float) -> list[PathMotion]:
    """Two oncoming cars (idle until started) on the nearest opposite-direction lane left of the ego path at s_at,
    starting 25 m and 25 + gap m past it (fewer when a junction comes first)."""
    ex, ey, _ = sc.ego_path.point_at(s_at)
    wp = sc.cmap.get_waypoint(carla.Location(ex, ey, 0.0), project_to_road=True)
    opp = wp.get_left_lane()
    if opp is None or opp.lane_type != carla.LaneType.Driving or opp.lane_id * wp.lane_id > 0:
        raise ScenarioError(f"scenario {sc.id}: no opposite lane left of the ego lane at ({ex:.1f}, {ey:.1f})")
    out: list[PathMotion] = []
    # upstream of an opposite-direction lane lies ahead of the ego; it stops early at a junction
    approach = lane_behind(opp, 25.0 + gap)
    path = Polyline.from_points([*map(tuple, approach.xy), *map(tuple, lane_path(opp, 60.0).xy[1:])])
    last = None
    for k in range(2):
        s0 = approach.length - (25.0 + k * gap)
        if s0 < 0.0:
            if last is not None and last < 8.0:
                break  # no room for a second car before the junction
            s0 = 0.0
        last = s0
        m = PathMotion(path.sub(s0, path.length), speed, obey_lights=True, follow_gap=4.0)
        px, py, pyaw = m.path.point_at(0.0)
        sc.spawn(f"oncoming{k}", pick(sc.rng, CARS), px, py, pyaw, "driving", m)
        out.append(m)
    return out


# ---------------------------------------------------------------------------------------------- crossing
@dataclass
class DynamicObjectCrossingParams(ScenarioParams):
    distance: float = 18.0  # crossing point, metres past the trigger along the ego path
    distance_jitter: float = 2.0  # +- uniform jitter of that distance (rng)
    adversary: str = "walker"  # 'walker' | 'bicycle' | 'auto' (rng: 3 in 4 walkers)
    walker_speed: float = 2.0  # m/s
    bicycle_speed: float = 4.5
    lead_time: float = 0.5  # it reaches the ego lane centre this long before the ego's front would (s) ...
    min_start_distance: float = 6.0  # ... or starts when the ego's front is this close (slow egos)
    occluder: str = VAN  # blueprint of what hides it ('' = nothing)
    occluders: int = 1  # parked in a row behind the crossing line
    occluder_gap: float = 1.2  # metres between parked vehicles
    trigger_distance: float = 20.0


class DynamicObjectCrossing(Scenario):
    """Scenario3: a pedestrian or cyclist steps out from behind a vehicle parked on the right and crosses."""

    Config = DynamicObjectCrossingParams
    description = "pedestrian/cyclist steps out from behind a parked van on the right"

    def _build(self) -> None:
        c = self.config
        if c.adversary not in ("walker", "bicycle", "auto"):
            raise ScenarioError(f"scenario {self.id}: adversary must be walker, bicycle or auto, got {c.adversary!r}")
        kind = c.adversary if c.adversary != "auto" else ("walker" if self.rng.random() < 0.75 else "bicycle")
        s_c = c.distance + float(self.rng.uniform(-c.distance_jitter, c.distance_jitter))
        s_c = _clear_run(self, s_c, 10.0)
        self.s_cross = s_c
        cs = cross_section(self.cmap, self.ego_path, s_c)
        # parked vehicles: inner edge just outside the driving lanes, their front before the crossing line
        s_front = s_c - 0.9
        lateral = cs.right_drive_edge
        if c.occluder:
            hw, hl = half_width(c.occluder), half_length(c.occluder)
            lateral = cs.right_drive_edge + 0.1 + hw
            for k in range(max(0, c.occluders)):
                s_k = s_front - hl - k * (2 * hl + c.occluder_gap)
                ox, oy, oyaw = self.ego_path.offset_point(s_k, lateral)
                self.spawn(f"occluder{k}", c.occluder, ox, oy, oyaw, "roadside", source="parked")
        else:
            lateral = cs.right_drive_edge + 1.0
        if kind == "walker":
            bp, speed = pick(self.rng, WALKERS), c.walker_speed
        else:
            bp, speed = pick(self.rng, BICYCLES), c.bicycle_speed
        start = self.ego_path.offset_point(s_c, lateral)
        end = self.ego_path.offset_point(s_c, cs.left_drive_edge - 1.0)
        self.cross = PathMotion(Polyline.from_points([start[:2], end[:2]]), speed, accel=4.0)
        self.lateral_start = lateral
        self.spawn("adversary", bp, start[0], start[1], self.cross.path.point_at(0.0)[2], "roadside", self.cross)
        self.adversary_kind = kind

    def _on_trigger(self, gt: GroundTruth) -> None:
        pass  # the adversary waits for the ego to come close

    def _update(self, gt: GroundTruth) -> None:
        if self.cross.active:
            if self.cross.done:
                self.finish()
            return
        c = self.config
        dist = self.s_cross - self.ego_s - EGO_HALF_LENGTH
        eta = dist / max(gt.ego.speed, MIN_ETA_SPEED)
        t_centre = self.lateral_start / self.cross.target  # seconds to the ego lane centre
        if eta <= t_centre + c.lead_time or dist <= c.min_start_distance or self.elapsed(gt) > 30.0:
            self.cross.start(initial_speed=self.cross.target)


@dataclass
class VehicleTurningRouteParams(ScenarioParams):
    exit_distance: float = 8.0  # crossing point, metres past the junction exit on the ego's new road
    speed: float = 4.5  # cyclist, m/s
    lead_time: float = 0.3  # the cyclist reaches the ego path this long before the ego front would (s)
    trigger_distance: float = 15.0


class VehicleTurningRoute(Scenario):
    """Scenario4: the ego turns at a junction; a cyclist crosses the road it turns into."""

    Config = VehicleTurningRouteParams
    description = "cyclist crosses the road the ego turns into"
    turns = ("left", "right")
    placement = "junction"

    def _build(self) -> None:
        c = self.config
        span = junction_span(self.cmap, self.ego_path, 0.0, 90.0)
        if span is None:
            raise ScenarioError(f"scenario {self.id}: no junction within 90 m of the trigger")
        _, s_in, s_out = span
        self.s_entry = s_in
        s_x = s_out + c.exit_distance
        if s_x + 5.0 > self.ego_path.length:
            raise ScenarioError(f"scenario {self.id}: the ego path ends right after the junction")
        self.s_cross = s_x
        cs = cross_section(self.cmap, self.ego_path, s_x)
        start = self.ego_path.offset_point(s_x, cs.right_drive_edge + 0.8)
        end = self.ego_path.offset_point(s_x, cs.left_drive_edge - 1.0)
        self.cross = PathMotion(Polyline.from_points([start[:2], end[:2]]), c.speed, accel=3.0)
        self.t_to_lane = (cs.right_drive_edge + 0.8) / c.speed
        self.spawn("cyclist", pick(self.rng, BICYCLES), start[0], start[1], self.cross.path.point_at(0.0)[2],
                   "roadside", self.cross)

    def _on_trigger(self, gt: GroundTruth) -> None:
        pass

    def _update(self, gt: GroundTruth) -> None:
        if self.cross.active:
            if self.cross.done:
                self.finish()
            return
        v = max(gt.ego.speed, MIN_ETA_SPEED)
        eta = (self.s_cross - self.ego_s - EGO_HALF_LENGTH) / v
        if (self.ego_s >= self.s_entry - 5.0 and eta <= self.t_to_lane + self.config.lead_time) \
                or self.elapsed(gt) > 30.0:
            self.cross.start(initial_speed=self.config.speed)


# ---------------------------------------------------------------------------------------------- junctions
@dataclass
class JunctionParams(ScenarioParams):
    side: str = "auto"  # where adversaries come from: 'left' | 'right' | 'opposite' | 'auto' (scenario default)
    speed: float = 8.0  # adversary m/s (flying start)
    count: int = 1  # adversaries, one behind the other
    gap_time: float = 2.5  # seconds between them
    # the first reaches the conflict point this long before the ego's front would; below ~0.6 s a car crossing
    # at 8 m/s hits an ego at 6 m/s that does not react
    lead_time: float = 0.3
    max_wait: float = 20.0  # seconds after the trigger when adversaries start regardless of the ego
    trigger_distance: float = 15.0


class JunctionScenario(Scenario):
    """Common machinery: the ego's movement through the next junction and adversaries crossing it."""

    Config = JunctionParams
    placement = "junction"
    sides: ClassVar[tuple[str, ...]] = ("left", "right")  # adversary approaches to choose from
    movement: ClassVar[str] = "straight"  # adversary movement
    # light state per approach side seen from the ego ('same' is the ego's own); {} leaves the lights alone
    light_plan: ClassVar[dict[str, str]] = {}
    ego_turns: ClassVar[tuple[str, ...]] = ("left", "right", "straight")

    def _build(self) -> None:
        c = self.config
        span = junction_span(self.cmap, self.ego_path, 0.0, 90.0)
        if span is None:
            raise ScenarioError(f"scenario {self.id}: no junction within 90 m of the trigger")
        self.junction, s_in, s_out = span
        self.s_entry, self.s_exit = s_in, s_out
        conns = junction_connectors(self.junction, back=60.0, after=60.0)
        ego_c = self._ego_connector(conns)
        if ego_c.turn not in self.ego_turns:
            raise ScenarioError(f"scenario {self.id}: the ego goes {ego_c.turn} at the junction, "
                                f"the scenario needs {'/'.join(self.ego_turns)}")
        self.ego_conn = ego_c
        side = c.side if c.side != "auto" else pick(self.rng, self.sides)
        if side not in ("left", "right", "opposite"):
            raise ScenarioError(f"scenario {self.id}: side must be left, right, opposite or auto, got {side!r}")
        cands = []
        for conn in conns:
            if approach_side(ego_c.entry_yaw, conn.entry_yaw) != side:
                continue
            hit = self._conflict(conn)
            if hit is not None:
                cands.append((conn.turn != self.movement, conn, hit))
        if not cands:
            raise ScenarioError(f"scenario {self.id}: no movement from the {side} crosses the ego's path")
        cands.sort(key=lambda t: t[0])
        best = [t for t in cands if t[0] == cands[0][0]]
        _, conn, (s_ego_c, s_adv_c) = best[int(self.rng.integers(len(best)))]
        self.side, self.adv_conn, self.s_conflict, self.s_adv_conflict = side, conn, s_ego_c, s_adv_c
        self.adversaries: list[PathMotion] = []
        self.adv_conflict_s: list[float] = []
        for k in range(max(1, c.count)):
            s0 = max(0.0, conn.s_entry - 35.0 - k * c.gap_time * c.speed)
            path = conn.path.sub(s0, conn.path.length)
            m = PathMotion(path, c.speed, decel=6.0)
            x, y, yaw = path.point_at(0.0)
            self.spawn(f"adversary{k}", pick(self.rng, CARS), x, y, yaw, "driving", m)
            self.adversaries.append(m)
            self.adv_conflict_s.append(s_adv_c - s0)  # conflict point on each adversary's own path
        self.started = False
        self._extra_build()

    def _extra_build(self) -> None:
        pass

    def _ego_connector(self, conns: list[Connector]) -> Connector:
        ex0, ey0, _ = self.ego_path.point_at(self.s_entry)
        ex1, ey1, _ = self.ego_path.point_at(self.s_exit)

        def err(cn: Connector) -> float:
            a = cn.path.point_at(cn.s_entry)
            b = cn.path.point_at(cn.s_exit)
            return math.hypot(a[0] - ex0, a[1] - ey0) + math.hypot(b[0] - ex1, b[1] - ey1)

        best = min(conns, key=err)
        if err(best) > 8.0:
            raise ScenarioError(f"scenario {self.id}: the ego path matches no lane movement of junction "
                                f"{self.junction.id}")
        return best

    def _conflict(self, conn: Connector) -> tuple[float, float] | None:
        """(s on the ego path, s on the connector path) where they first cross or merge inside the junction area."""
        ego = self.ego_path.sub(max(0.0, self.s_entry - 3.0), self.s_exit + 12.0)
        off = max(0.0, self.s_entry - 3.0)
        other = conn.path.sub(max(0.0, conn.s_entry - 3.0), conn.s_exit + 12.0)
        o_off = max(0.0, conn.s_entry - 3.0)
        hit = first_intersection(ego, other)
        if hit is not None:
            return hit[0] + off, hit[1] + o_off
        for s in np.arange(0.0, ego.length, 0.5):  # merging movements: the first point closer than 1.5 m
            x, y, _ = ego.point_at(float(s))
            so, lat = other.project(x, y)
            if abs(lat) < 1.5:
                return float(s) + off, so + o_off
        return None

    def _on_trigger(self, gt: GroundTruth) -> None:
        if self.light_plan:
            self.hold_lights(self._light_states(gt))

    def _light_states(self, gt: GroundTruth) -> dict[int, str]:
        bb = self.junction.bounding_box
        cx, cy = bb.location.x, bb.location.y
        reach = max(bb.extent.x, bb.extent.y) + 12.0
        out = {}
        for tl in gt.traffic_lights:
            (x0, y0), (x1, y1) = tl.stop_line
            if math.hypot((x0 + x1) / 2 - cx, (y0 + y1) / 2 - cy) > reach:
                continue
            side = approach_side(self.ego_conn.entry_yaw, tl.lane_yaw)
            if side in self.light_plan:
                out[tl.id] = self.light_plan[side]
        return out

    def _update(self, gt: GroundTruth) -> None:
        c = self.config
        if not self.started:
            first = self.adversaries[0]
            adv_eta = (self.adv_conflict_s[0] - first.s) / max(c.speed, 0.1)
            v = max(gt.ego.speed, MIN_ETA_SPEED)
            ego_eta = (self.s_conflict - self.ego_s - EGO_HALF_LENGTH) / v
            if ego_eta <= adv_eta + c.lead_time or self.elapsed(gt) > c.max_wait:
                self.started = True
                for m in self.adversaries:
                    m.start(initial_speed=c.speed)
            return
        if all(m.s > sc + 10.0 for m, sc in zip(self.adversaries, self.adv_conflict_s)):
            self.finish()


class OppositeVehicleRunningRedLight(JunctionScenario):
    """Scenario7: the ego crosses on green; a vehicle from the side runs its red light across the ego's path."""

    description = "ego has green; a car from the side runs the red across its path"
    light_plan: ClassVar[dict[str, str]] = {"same": "Green", "opposite": "Green", "left": "Red", "right": "Red"}


@dataclass
class LeftTurnParams(JunctionParams):
    side: str = "opposite"
    count: int = 2
    lead_time: float = 0.0


class SignalizedJunctionLeftTurn(JunctionScenario):
    """Scenario8: the ego turns left on green; oncoming vehicles drive straight through (the ego yields)."""

    Config = LeftTurnParams
    description = "unprotected left turn on green against oncoming traffic"
    sides = ("opposite",)
    turns = ("left",)
    ego_turns = ("left",)
    light_plan: ClassVar[dict[str, str]] = {"same": "Green", "opposite": "Green", "left": "Red", "right": "Red"}


@dataclass
class RightTurnParams(JunctionParams):
    side: str = "left"
    count: int = 2
    lead_time: float = 0.5


class SignalizedJunctionRightTurn(JunctionScenario):
    """Scenario9: the ego turns right with red; crossing traffic from the left drives straight on green."""

    Config = RightTurnParams
    description = "right turn: ego on red, crossing traffic from the left on green"
    sides = ("left",)
    turns = ("right",)
    ego_turns = ("right",)
    light_plan: ClassVar[dict[str, str]] = {"same": "Red", "opposite": "Red", "left": "Green", "right": "Green"}


@dataclass
class NoSignalParams(JunctionParams):
    lead_time: float = 0.0


class NoSignalJunctionCrossing(JunctionScenario):
    """Scenario10: lights off (or none); a vehicle from the side crosses at the same time and does not yield."""

    Config = NoSignalParams
    description = "unsignalised crossing: a car from the side arrives together with the ego"
    light_plan: ClassVar[dict[str, str]] = {"same": "Off", "opposite": "Off", "left": "Off", "right": "Off"}


# name -> (class, CARLA scenario_runner class name used by leaderboard 2.0 route files)
LEADERBOARD1: dict[str, tuple[type[Scenario], str]] = {
    "Scenario1": (ControlLoss, "ControlLoss"),
    "Scenario2": (FollowLeadingVehicle, "FollowLeadingVehicle"),
    "Scenario3": (DynamicObjectCrossing, "DynamicObjectCrossing"),
    "Scenario4": (VehicleTurningRoute, "VehicleTurningRoute"),
    "Scenario5": (OtherLeadingVehicle, "OtherLeadingVehicle"),
    "Scenario6": (ManeuverOppositeDirection, "ManeuverOppositeDirection"),
    "Scenario7": (OppositeVehicleRunningRedLight, "OppositeVehicleRunningRedLight"),
    "Scenario8": (SignalizedJunctionLeftTurn, "SignalizedJunctionLeftTurn"),
    "Scenario9": (SignalizedJunctionRightTurn, "SignalizedJunctionRightTurn"),
    "Scenario10": (NoSignalJunctionCrossing, "NoSignalJunctionCrossing"),
}


def lane_change_free_span(scenario_type: str) -> tuple[float, float] | None:
    """(metres before, metres past) its trigger over which a route must not change lane for a scenario of this type
    with its default parameters to be placed (the lead-vehicle scenarios refuse such triggers); None: no need."""
    cls = LEADERBOARD1[scenario_type][0]
    span = getattr(cls, "lead_span", None)
    if span is None:
        return None
    c = cls.Config()
    return LANE_CHANGE_LOOK_BACK_M, c.distance + span(c)
