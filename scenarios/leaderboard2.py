"""Leaderboard-2.0 occlusion scenarios, by their CARLA scenario_runner names (route XML `<scenario type=...>`).

Our own scripted versions of the public scenario descriptions, each hiding what the ego must react to:

  DynamicObjectCrossing          a walker (or cyclist) steps out from behind a static prop on the roadside
                                 (`blocker_model`: a bus stop, an advertisement board, a container, ... at real size)
  ParkingCrossingPedestrian      a walker steps out from in front of a van parked on the roadside
  VehicleTurningRoutePedestrian  after the ego turns, a walker crosses its new road from behind an advertisement board
  ParkingCutIn                   a car parked on the roadside in front of a parked van pulls out into the ego's lane
  StaticCutIn                    a car in a line of vehicles standing on the right pulls out into the ego's lane
  VehicleOpensDoorTwoWays        a car parked on the right opens its door into the ego's lane; oncoming traffic
  occlusion/hidden_red_light_runner  a signalised junction: a line of containers along the crossing road hides a
                                 red-light runner from the right until it is close to the conflict point

Parameters are the leaderboard-2.0 ones where it has them (`distance`, `direction`, `blocker_model`,
`crossing_angle`), in metres and degrees; a route XML's `<param value=.../>` tags set them (ScenarioManager).
Every scenario's hidden actor stands where its occluder hides it from every camera of a car approaching in the ego
lane (a walker in line with and just downstream of its occluder), until it moves; `hidden` names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import carla

from scenarios.base import Scenario, ScenarioError, ScenarioParams
from scenarios.behaviours import PathMotion
from scenarios.geometry import Polyline, cross_section
from scenarios.leaderboard1 import (
    CARS,
    EGO_HALF_LENGTH,
    MIN_ETA_SPEED,
    WALKERS,
    JunctionParams,
    OppositeVehicleRunningRedLight,
    VehicleTurningRoute,
    VehicleTurningRouteParams,
    _clear_run,
    half_length,
    half_width,
    pick,
    spawn_oncoming,
)
from sim.types import GroundTruth

VAN = "vehicle.volkswagen.t2"
TRUCK = "vehicle.carlamotors.carlacola"
BUS = "vehicle.mitsubishi.fusorosa"
CONTAINER = "static.prop.container"
WALKER_HALF = 0.25  # walker half-width (sim.types.DEFAULT_EXTENTS['pedestrian'])


REVEAL_MARGIN = 0.1  # m: a walker this close to its cover's lane-side face is leaving it (seen at an angle)
COVER_GAP = 0.1  # m between the occluder's downstream end and the walker hiding behind it


def place_behind_cover(
    sc: Scenario, s_c: float, side: float, bp: str, source: str, speed: float, crossing_angle: float = 0.0
) -> None:
    """Spawn an occluder on the roadside of `sc.ego_path` at `side` (+1 right, -1 left) just before s_c, and a
    walker hiding in line behind it (downstream, within its width), who will cross the road at s_c: first
    straight out of cover, then at `crossing_angle` degrees from the perpendicular, towards the ego's direction.
    Thin props (boards) stand across the road, facing the traffic, as real ones do. Sets sc.cross (the walk),
    sc.s_cross, sc.side, sc.lateral_start, sc.occluder_inner, sc._hidden_id."""
    cs = cross_section(sc.cmap, sc.ego_path, s_c)
    edge = cs.right_drive_edge if side > 0 else -cs.left_drive_edge
    hl, hw = half_length(bp), half_width(bp)
    across = 2 * hw < 1.0  # a board: turn it to face the traffic
    along, depth = (hw, hl) if across else (hl, hw)  # half-sizes along the road and across it
    lateral = side * (edge + 0.3 + depth)  # occluder centre, just off the driving lanes
    s_occ = s_c - COVER_GAP - WALKER_HALF - along  # its downstream end just behind the walker
    ox, oy, oyaw = sc.ego_path.offset_point(s_occ, lateral)
    sc.spawn("occluder", bp, ox, oy, oyaw + (90.0 if across else 0.0), "roadside", source=source)
    sc.occluder_inner = side * (edge + 0.3)  # the occluder's lane-side face (lateral from the ego path)
    start = sc.ego_path.offset_point(s_c, lateral)
    out = sc.ego_path.offset_point(s_c, sc.occluder_inner - side * (WALKER_HALF + 0.3))  # just out of cover
    far = (-cs.left_drive_edge if side > 0 else cs.right_drive_edge) + 1.0
    ds = (abs(sc.occluder_inner) + far) * math.tan(math.radians(crossing_angle))
    end = sc.ego_path.offset_point(s_c + ds, -side * far)
    sc.cross = PathMotion(Polyline.from_points([start[:2], out[:2], end[:2]]), speed, accel=4.0)
    sc.s_cross, sc.side, sc.lateral_start = s_c, side, abs(lateral)
    sc._hidden_id = sc.spawn(
        getattr(sc, "hidden_role", "adversary"),
        pick(sc.rng, WALKERS),
        start[0],
        start[1],
        sc.cross.path.point_at(0.0)[2],
        "roadside",
        sc.cross,
    )


class CrossingFromCover(Scenario):
    """Common machinery: an occluder on the roadside, a walker/cyclist in line just downstream of it, crossing
    the road when the ego comes close. Subclasses choose the occluder (`_occluder()`)."""

    hidden_role: ClassVar[str] = "adversary"

    def _occluder(self) -> tuple[str, str]:
        """(blueprint, source) of what hides the adversary."""
        raise NotImplementedError

    def _build(self) -> None:
        c = self.config
        if c.direction not in ("right", "left"):
            raise ScenarioError(f"scenario {self.id}: direction must be right or left, got {c.direction!r}")
        s_c = _clear_run(self, float(c.distance), 8.0)
        bp, source = self._occluder()
        place_behind_cover(
            self, s_c, 1.0 if c.direction == "right" else -1.0, bp, source, c.walker_speed, c.crossing_angle
        )

    def _on_trigger(self, gt: GroundTruth) -> None:
        pass  # the adversary waits for the ego to come close

    def _update(self, gt: GroundTruth) -> None:
        if self.cross.active:
            if self.cross.done:
                self.finish()
            return
        dist = self.s_cross - self.ego_s - EGO_HALF_LENGTH
        eta = dist / max(gt.ego.speed, MIN_ETA_SPEED)
        t_lane = self.lateral_start / self.cross.target  # seconds to the ego lane centre
        if (
            eta <= t_lane + self.config.lead_time
            or dist <= self.config.min_start_distance
            or self.elapsed(gt) > 30.0
        ):
            self.cross.start(initial_speed=self.cross.target)

    def revealed(self, gt: GroundTruth) -> bool:
        """Whether the hidden actor has left its cover: its lane-side edge is past the occluder's lane-side face."""
        a = next((a for a in gt.actors if a.id == self.hidden_id), None)
        if a is None:
            return True
        _, lat = self.ego_path.project(a.x, a.y, self.s_cross - 15.0, self.s_cross + 15.0)
        return self.side * lat - WALKER_HALF < abs(self.occluder_inner) + REVEAL_MARGIN

    @property
    def hidden_id(self) -> int:
        """The hidden actor's id (kept after it is retired at the end of its path)."""
        return self._hidden_id


@dataclass
class DynamicObjectCrossingParams(ScenarioParams):
    distance: float = 15.0  # crossing point, metres past the trigger along the ego path
    direction: str = "right"  # the side the walker comes from
    blocker_model: str = (
        "static.prop.busstoplb"  # the prop that hides it (real sizes: sim.blueprints.PROP_EXTENTS)
    )
    crossing_angle: float = 0.0  # degrees from the perpendicular, towards the ego's direction of travel
    walker_speed: float = 2.0  # m/s
    lead_time: float = 0.6  # it reaches the ego lane centre this long before the ego's front would (s) ...
    min_start_distance: float = 6.0  # ... or starts when the ego's front is this close (slow egos)
    trigger_distance: float = 15.0


class DynamicObjectCrossing(CrossingFromCover):
    """Leaderboard 2.0: a walker steps out from behind a static prop (bus stop, advertisement, container...)."""

    Config = DynamicObjectCrossingParams
    description = "walker steps out from behind a roadside prop (bus stop, advertisement board, container)"

    def _occluder(self) -> tuple[str, str]:
        bp = self.config.blocker_model
        if not bp.startswith("static.prop."):
            raise ScenarioError(f"scenario {self.id}: blocker_model must be a static.prop.*, got {bp!r}")
        return bp, "scenario"


@dataclass
class ParkingCrossingPedestrianParams(DynamicObjectCrossingParams):
    blocker_model: str = VAN  # the parked vehicle (taller than a walker, so it hides one)
    walker_speed: float = 1.6


class ParkingCrossingPedestrian(CrossingFromCover):
    """Leaderboard 2.0: a walker steps out from in front of a vehicle parked on the roadside."""

    Config = ParkingCrossingPedestrianParams
    description = "walker steps out from in front of a parked van"

    def _occluder(self) -> tuple[str, str]:
        bp = self.config.blocker_model
        if not bp.startswith("vehicle."):
            raise ScenarioError(f"scenario {self.id}: blocker_model must be a vehicle.*, got {bp!r}")
        return bp, "parked"


@dataclass
class VehicleTurningRoutePedestrianParams(VehicleTurningRouteParams):
    speed: float = 1.8  # walker, m/s
    blocker_model: str = "static.prop.advertisement"
    lead_time: float = 0.6


class VehicleTurningRoutePedestrian(VehicleTurningRoute):
    """Leaderboard 2.0: after the ego turns at a junction, a walker hidden by an advertisement board on the new
    road's right crosses it."""

    Config = VehicleTurningRoutePedestrianParams
    description = "after the ego's turn, a walker crosses from behind an advertisement board"
    hidden_role: ClassVar[str] = "adversary"

    def _build(self) -> None:
        super()._build()  # a crossing cyclist at the exit: replace it with a walker behind a board
        cyc = next(p for p in self.placements if p.role == "cyclist")
        self._sim.destroy_actor(cyc.actor_id)
        self.placements.remove(cyc)
        self.motions.pop(cyc.actor_id, None)
        c = self.config
        place_behind_cover(self, self.s_cross, 1.0, c.blocker_model, "scenario", c.speed)
        self.t_to_lane = self.lateral_start / c.speed

    revealed = CrossingFromCover.revealed
    hidden_id = CrossingFromCover.hidden_id


# ---------------------------------------------------------------------------------------------- cut-ins
@dataclass
class CutInParams(ScenarioParams):
    distance: float = 30.0  # the cutting car's front, metres past the trigger
    direction: str = "right"  # only the right side (the kerb in right-hand traffic)
    speed: float = 6.0  # m/s the cutting car reaches in the ego lane
    merge_length: float = 10.0  # metres it takes to get from the kerb to the lane centre
    lead_time: float = 2.2  # it starts when the ego's front would reach it within this (s) ...
    min_start_distance: float = 10.0  # ... or the ego's front is this close
    trigger_distance: float = 20.0


class CutIn(Scenario):
    """Common machinery: a car stands on the right (parked at the kerb or stopped in a line) and pulls out into
    the ego lane in front of the ego, then drives on along it."""

    Config = CutInParams
    hidden_role: ClassVar[str] = "cut_in"
    blockers: ClassVar[int] = 1  # vehicles standing behind the cutting car

    def _build(self) -> None:
        c = self.config
        if c.direction != "right":
            raise ScenarioError(f"scenario {self.id}: direction must be right, got {c.direction!r}")
        bp = pick(self.rng, CARS)
        hl, hw = half_length(bp), half_width(bp)
        s_car = _clear_run(self, float(c.distance), c.merge_length + 15.0) - hl
        cs = cross_section(self.cmap, self.ego_path, s_car)
        lateral = self._lateral(cs.right_drive_edge, hw)
        s_next = s_car - hl - 1.0
        for k in range(self.blockers):
            vb = VAN if k == 0 else pick(self.rng, CARS)
            bhl, bhw = half_length(vb), half_width(vb)
            sb = s_next - bhl
            bx, by, byaw = self.ego_path.offset_point(sb, self._lateral(cs.right_drive_edge, bhw))
            self.spawn(f"blocker{k}", vb, bx, by, byaw, "roadside", source="parked")
            s_next = sb - bhl - 1.0
        # path: from the parked pose, a smooth S to the lane centre over merge_length, then along the drive path
        pts = []
        for i in range(11):
            t = i / 10.0
            lat = lateral * (1.0 - (3 * t * t - 2 * t**3))
            x, y, _ = self.ego_path.offset_point(s_car + t * c.merge_length, lat)
            pts.append((x, y))
        rest = self.drive_path.sub(s_car + c.merge_length + 1.0, self.drive_path.length)
        pts += [tuple(p) for p in rest.xy]
        self.car = PathMotion(Polyline.from_points(pts), c.speed, accel=2.5, obey_lights=True, follow_gap=4.0)
        x, y, yaw = self.ego_path.offset_point(s_car, lateral)
        self.spawn(self.hidden_role, bp, x, y, yaw, "roadside", self.car)
        self.s_car = s_car

    def _lateral(self, edge: float, hw: float) -> float:
        return edge + 0.2 + hw

    def _on_trigger(self, gt: GroundTruth) -> None:
        pass

    def _update(self, gt: GroundTruth) -> None:
        if self.car.active:
            if self.car.s > self.config.merge_length + 5.0:
                self.finish()
            return
        dist = self.s_car - self.ego_s - 2 * EGO_HALF_LENGTH
        eta = dist / max(gt.ego.speed, MIN_ETA_SPEED)
        if eta <= self.config.lead_time or dist <= self.config.min_start_distance or self.elapsed(gt) > 30.0:
            self.car.start()


class ParkingCutIn(CutIn):
    """Leaderboard 2.0: a car parked at the kerb in front of a parked van pulls out into the ego's lane."""

    description = "a car parked in front of a van pulls out into the ego lane"
    blockers = 1


class StaticCutIn(CutIn):
    """Leaderboard 2.0: a car in a line of vehicles standing on the right (half on the shoulder, as stopped traffic
    in a lane the ego does not use) pulls out into the ego's lane."""

    description = "a car in a line of stopped vehicles on the right cuts into the ego lane"
    blockers = 3

    def _lateral(self, edge: float, hw: float) -> float:
        return edge - 0.6 + hw  # partly on the lane edge: stopped traffic, not parked


# ---------------------------------------------------------------------------------------------- door
@dataclass
class OpensDoorParams(ScenarioParams):
    distance: float = 35.0  # the parked car's centre, metres past the trigger
    direction: str = "right"
    door_time: float = 2.5  # the door opens when the ego's front would reach the car within this (s)
    oncoming_speed: float = 7.0
    oncoming_gap: float = 25.0  # metres between the two oncoming cars
    trigger_distance: float = 20.0


class VehicleOpensDoorTwoWays(Scenario):
    """Leaderboard 2.0: a car parked on the right opens its driver's door into the ego's lane; passing it needs
    the opposite lane, where traffic comes."""

    Config = OpensDoorParams
    description = "a parked car opens its door into the ego lane; oncoming traffic"

    def _build(self) -> None:
        c = self.config
        if c.direction != "right":
            raise ScenarioError(f"scenario {self.id}: direction must be right, got {c.direction!r}")
        bp = pick(self.rng, CARS)
        hl, hw = half_length(bp), half_width(bp)
        s_car = _clear_run(self, float(c.distance), hl + 10.0)
        cs = cross_section(self.cmap, self.ego_path, s_car)
        # parked with its left side on the lane edge; left-hand door (it is parked facing the ego's direction)
        x, y, yaw = self.ego_path.offset_point(s_car, cs.right_drive_edge + 0.1 + hw)
        self.car_id = self.spawn("parked", bp, x, y, yaw, "roadside", source="parked")
        self.s_car = s_car
        self.door_open = False
        self.oncoming = spawn_oncoming(self, s_car, c.oncoming_gap, c.oncoming_speed)

    def _on_trigger(self, gt: GroundTruth) -> None:
        for m in self.oncoming:
            m.start(initial_speed=self.config.oncoming_speed)

    def _update(self, gt: GroundTruth) -> None:
        if self.door_open:
            return
        dist = self.s_car - self.ego_s - 2 * EGO_HALF_LENGTH
        if dist / max(gt.ego.speed, MIN_ETA_SPEED) <= self.config.door_time or dist < 8.0:
            self._sim.open_vehicle_door(self.car_id)
            self.door_open = True
            self.finish()


# ---------------------------------------------------------------------------------------------- junction
@dataclass
class HiddenRunnerParams(JunctionParams):
    side: str = "right"
    containers: int = 7  # containers end to end along the crossing road, from the junction corner back (43 m)
    lead_time: float = 0.3


class HiddenRedLightRunner(OppositeVehicleRunningRedLight):
    """A signalised junction (ego green): a car from the right runs its red light past a truck and a bus standing
    at that red in the lane beside it, while containers along the crossing road hide its approach; it comes into
    view only close to the conflict point. Without a second lane on that approach only the containers hide it."""

    Config = HiddenRunnerParams
    description = (
        "containers along the crossing road hide a red-light runner from the right until it is close"
    )
    sides = ("right",)
    hidden_role: ClassVar[str] = "adversary0"

    def _extra_build(self) -> None:
        conn = self.adv_conn
        # 1. traffic standing at the red light in the lane beside the runner's (a truck at the stop line, a bus
        #    behind it): the runner overtakes them through its red, hidden until it passes the truck's front
        wp = conn.entry.previous(2.0)
        lane = wp[0] if wp else conn.entry
        inner = lane.get_left_lane()
        if (
            inner is not None
            and inner.lane_type == carla.LaneType.Driving
            and inner.lane_id * lane.lane_id > 0
        ):
            off = -lane.lane_width / 2.0 - inner.lane_width / 2.0  # left of the runner's lane
            s_front = conn.s_entry + 2.0  # the truck has stopped late, its nose 2 m over the junction edge
            for role, bp in (("queue_truck", TRUCK), ("queue_bus", BUS)):
                hl = half_length(bp)
                if s_front - 2 * hl < 0.0:
                    break
                x, y, yaw = conn.path.offset_point(s_front - hl, off)
                self.spawn(role, bp, x, y, yaw, "driving", source="parked")
                s_front -= 2 * hl + 1.5
        # 2. containers end to end along the crossing road's roadside on the ego's side (a building site),
        #    hiding the runner's approach from the ego's approach
        ex, ey, _ = self.ego_path.point_at(max(self.s_entry - 12.0, 0.0))
        _, lat_ego = conn.path.project(ex, ey, 0.0, conn.s_entry + 5.0)
        side = 1.0 if lat_ego > 0 else -1.0
        hl, hw = half_length(CONTAINER), half_width(CONTAINER)
        s = conn.s_entry - 1.5 - hl
        for k in range(max(0, self.config.containers)):
            if s - hl < 0.0:
                break
            cs = cross_section(self.cmap, conn.path, s)
            edge = cs.right_drive_edge if side > 0 else -cs.left_drive_edge
            x, y, yaw = conn.path.offset_point(s, side * (edge + 0.3 + hw))
            self.spawn(f"container{k}", CONTAINER, x, y, yaw, "roadside")
            s -= 2 * hl - 0.02  # end to end: no gap to see through
        # 3. and round the corner along the ego's approach, up to the junction
        s = self.s_entry - 1.5 - hl
        for k in range(2):
            if s - hl < 0.0:
                break
            cs = cross_section(self.cmap, self.ego_path, s)
            x, y, yaw = self.ego_path.offset_point(s, cs.right_drive_edge + 0.3 + hw)
            self.spawn(f"corner_container{k}", CONTAINER, x, y, yaw, "roadside")
            s -= 2 * hl - 0.02

    def conflict_distance(self) -> float:
        """Metres the runner still has to its conflict point with the ego's path (now)."""
        return self.adv_conflict_s[0] - self.adversaries[0].s

    @property
    def hidden_id(self) -> int:
        """The runner's id."""
        return self.adversaries[0].actor_id


# name -> class; registered under the leaderboard-2.0 name (and an 'occlusion/' id where 2.0 has none)
LEADERBOARD2: dict[str, type[Scenario]] = {
    "DynamicObjectCrossing": DynamicObjectCrossing,
    "ParkingCrossingPedestrian": ParkingCrossingPedestrian,
    "VehicleTurningRoutePedestrian": VehicleTurningRoutePedestrian,
    "ParkingCutIn": ParkingCutIn,
    "StaticCutIn": StaticCutIn,
    "VehicleOpensDoorTwoWays": VehicleOpensDoorTwoWays,
    "occlusion/hidden_red_light_runner": HiddenRedLightRunner,
}
