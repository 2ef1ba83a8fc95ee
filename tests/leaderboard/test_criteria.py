"""Leaderboard criteria on constructed ground-truth sequences (no simulator needed)."""

from __future__ import annotations

import math
from pathlib import Path

import carla
import numpy as np
import pytest

from leaderboard.criteria import (
    ActorBlockedTest,
    CollisionTest,
    InRouteTest,
    MinimumSpeedRouteTest,
    OutsideRouteLanesTest,
    RouteCompletionTest,
    RouteCriteria,
    RouteGeometry,
    RouteTimeout,
    RunningRedLightTest,
    RunningStopTest,
)
from leaderboard.scores import TrafficEventType
from sim.route_planner import RoadOption
from sim.types import ActorState, EgoState, GroundTruth, Pose, SimEvent, StopSign, TrafficLightState

E = TrafficEventType
TOWN = Path(__file__).resolve().parents[2] / "sim" / "embedded" / "towns" / "OccTown01.xodr"


def straight_route(n: int = 101, x0: float = 0.0, y: float = 0.0) -> list[tuple[carla.Transform, RoadOption]]:
    return [
        (carla.Transform(carla.Location(x0 + i, y, 0.0), carla.Rotation(yaw=0.0)), RoadOption.LANEFOLLOW)
        for i in range(n)
    ]


def gt(
    frame: int,
    x: float,
    y: float = 0.0,
    yaw: float = 0.0,
    speed: float = 5.0,
    events=(),
    lights=(),
    stops=(),
    actors=(),
) -> GroundTruth:
    vx, vy = speed * math.cos(math.radians(yaw)), speed * math.sin(math.radians(yaw))
    ego = EgoState(Pose(x, y, 0.0, yaw), vx=vx, vy=vy, speed=speed)
    return GroundTruth(frame, frame * 0.05, ego, list(actors), list(lights), list(stops), list(events))


def collision(
    frame: int, other: int, category: str = "vehicle", type_id: str = "vehicle.tesla.model3"
) -> SimEvent:
    return SimEvent(frame, "collision", 0.0, 0.0, other, category, type_id)


def test_route_completion_and_target():
    geo = RouteGeometry.from_route(straight_route())
    c = RouteCompletionTest(geo)
    for f, x in enumerate(np.arange(0.0, 50.6, 0.25)):
        c.update(gt(f, float(x)))
    assert c.actual_value == pytest.approx(50.0, abs=0.01) and not c.success
    for f, x in enumerate(np.arange(50.0, 100.6, 0.25)):
        c.update(gt(1000 + f, float(x)))
    assert c.success and c.actual_value == 100.0


def test_collisions_deduplicated_as_the_leaderboard():
    c = CollisionTest()
    c.update(gt(1, 10.0, events=[collision(1, 7)]))
    c.update(gt(2, 10.1, events=[collision(2, 7)]))  # same actor within 5 s
    c.update(gt(3, 12.0, events=[collision(3, 8)]))  # another actor but within 5 m of the last one
    c.update(gt(200, 30.0, events=[collision(200, 9, "walker", "walker.pedestrian.0001")]))
    c.update(gt(400, 60.0, events=[collision(400, -3, "static", "static.prop.building")]))
    c2 = CollisionTest()
    c2.update(gt(1, 0.0, speed=0.0))
    c2.update(gt(2, 0.0, speed=0.0, events=[collision(2, 5)]))  # at rest: not the ego's fault
    assert [e.type for e in c.events] == [E.COLLISION_VEHICLE, E.COLLISION_PEDESTRIAN, E.COLLISION_STATIC]
    assert "type=walker.pedestrian.0001 and id=9" in c.events[1].message
    assert c2.events == []


def light(state: str, x: float = 50.0) -> TrafficLightState:
    return TrafficLightState(3, state, x, 5.0, 0.0, 180.0, ((x, -2.0), (x, 2.0)), 0.0)


def test_red_light_crossing():
    for state, expected in (("Red", 1), ("Green", 0), ("Yellow", 0)):
        t = RunningRedLightTest()
        for f, x in enumerate(np.arange(40.0, 60.0, 0.2)):
            t.update(gt(f, float(x), lights=[light(state)]))
        assert len(t.events) == expected, state
    t = RunningRedLightTest()  # driving the other way across the same line: not this light's approach
    for f, x in enumerate(np.arange(60.0, 40.0, -0.2)):
        t.update(gt(f, float(x), yaw=180.0, lights=[light("Red")]))
    assert t.events == []


def test_stop_sign_requires_a_full_stop():
    sign = StopSign(4, 50.0, 3.0, 0.0, 180.0, ((50.0, -1.75), (50.0, 1.75)), 0.0)
    ran = RunningStopTest()
    for f, x in enumerate(np.arange(30.0, 70.0, 0.25)):
        ran.update(gt(f, float(x), stops=[sign]))
    assert [e.type for e in ran.events] == [E.STOP_INFRACTION]
    stopped = RunningStopTest()
    f = 0
    for x in np.arange(30.0, 48.5, 0.25):
        stopped.update(gt(f, float(x), stops=[sign]))
        f += 1
    for _ in range(5):
        stopped.update(gt(f, 48.5, speed=0.0, stops=[sign]))
        f += 1
    for x in np.arange(48.5, 70.0, 0.25):
        stopped.update(gt(f, float(x), stops=[sign]))
        f += 1
    assert stopped.events == []


def test_blocked_after_180_s():
    t = ActorBlockedTest()
    t.update(gt(0, 0.0, speed=2.0))
    for f in range(1, 20 * 180 + 1):
        t.update(gt(f, 0.0, speed=0.05))
    assert not t.failed
    t.update(gt(20 * 180 + 2, 0.0, speed=0.05))
    assert t.failed and t.events[0].type == E.VEHICLE_BLOCKED


def test_route_deviation_beyond_30_m():
    geo = RouteGeometry.from_route(straight_route())
    t = InRouteTest(geo)
    t.update(gt(0, 2.0, y=29.0))
    assert not t.failed
    t.update(gt(1, 2.0, y=31.0))
    assert t.failed and t.events[0].type == E.ROUTE_DEVIATION


def test_min_speed_quarters():
    geo = RouteGeometry.from_route(straight_route())
    t = MinimumSpeedRouteTest(geo, checkpoints=4)
    f = 0
    for x in np.arange(0.0, 99.5, 0.2):
        traffic = [  # a neighbour keeping pace 10 m away; a parked NPC 500 m away is not surrounding traffic
            ActorState(1, "vehicle.audi.a2", "vehicle", "car", float(x), 10, 0, 0, (2, 1, 1), vx=8.0),
            ActorState(2, "vehicle.audi.a2", "vehicle", "car", 500.0, 10, 0, 0, (2, 1, 1), vx=0.0),
        ]
        t.update(gt(f, float(x), speed=4.0, actors=traffic))  # half the traffic's speed
        f += 1
    t.terminate(f)
    assert len(t.checkpoint_values) == 4 and all(v == 50.0 for v in t.checkpoint_values)
    assert [e.data["percentage"] for e in t.events] == [50.0] * 4


def test_route_timeout_grows_with_progress():
    route = straight_route()
    t = RouteTimeout(RouteGeometry.from_route(route), np.full(len(route), 30.0))
    for f, x in enumerate(np.arange(0.0, 100.0, 0.5)):
        t.update(gt(f + 1, float(x)))
    assert t.timeout_value == pytest.approx(300.0 + 99.0 / (30 / 3.6 * 0.1), rel=1e-6)
    assert not t.timed_out


@pytest.mark.skipif(not TOWN.exists(), reason="built-in town missing")
def test_outside_route_lanes_percentage_on_a_real_map():
    cmap = carla.Map("OccTown01", TOWN.read_text())
    # OccTown01 road 20, lane -1: a straight lane heading +y at x = 98.25
    route = [
        (
            carla.Transform(carla.Location(98.25, 200.0 + i, 0.0), carla.Rotation(yaw=90.0)),
            RoadOption.LANEFOLLOW,
        )
        for i in range(41)
    ]
    t = OutsideRouteLanesTest(RouteGeometry.from_route(route), cmap)
    f = 0
    for y in np.arange(200.0, 220.0, 0.25):  # first half in the lane
        t.update(gt(f, 98.25, y=float(y), yaw=90.0))
        f += 1
    for y in np.arange(220.0, 240.0, 0.25):  # second half 12 m to the side: off every lane
        t.update(gt(f, 110.25 + 20.0, y=float(y), yaw=90.0))
        f += 1
    assert t.event is not None
    assert t.event.data["percentage"] == pytest.approx(50.0, abs=6.0)
    assert t.event.message.startswith("Agent went outside its route lanes for about ")
    crit = RouteCriteria(route, cmap)
    assert len(crit.timeout.limits) == len(route) and crit.timeout.limits[0] > 0
