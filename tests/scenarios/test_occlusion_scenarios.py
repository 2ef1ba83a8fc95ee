"""Leaderboard-2.0 occlusion scenarios on the embedded simulator (OccTown01, no NPC traffic): each triggers at its
trigger point, does what it describes, and its hidden actor shows no pixel on any of the six cameras' semantic
render until it leaves its cover (no other walker or car is in the world to confuse the count)."""

from __future__ import annotations

import math
from collections.abc import Callable

import carla
import numpy as np
import pytest

from scenarios import make_scenario
from sim.sensors import rig_sensor_dicts
from sim.types import OCC
from tests.scenarios.conftest import JUNCTION_TRIGGER, STRAIGHT_TRIGGER

SEMANTIC_RIG = [
    {**s, "type": "sensor.camera.semantic_segmentation", "width": 400, "height": 225}
    for s in rig_sensor_dicts(400, 225)
]
TURN_TRIGGER = JUNCTION_TRIGGER  # First St before the 4-way junction C11: the ego turns right there


@pytest.fixture(scope="module")
def sem_sim():
    """(sim, cmap) with six semantic cameras; closed at the end of the module."""
    from sim.factory import make_simulator
    from sim.protocol import SimConfig, TrafficConfig

    sim = make_simulator("embedded", SimConfig(seed=0, traffic=TrafficConfig(vehicles=0, walkers=0)))
    cmap = sim.load_town("OccTown01")
    sim.spawn_ego(carla.Transform(carla.Location(-1.75, 150.0, 0.5), carla.Rotation(yaw=90.0)))
    sim.attach_sensors(SEMANTIC_RIG)
    sim.tick()
    try:
        yield sim, cmap
    finally:
        sim.close()


def start_before(sim, sc, back: float) -> None:
    """Put the ego on the scenario's own path `back` metres before its trigger point (heading along it)."""
    x0, y0, yaw0 = sc.ego_path.point_at(0.0)
    r = math.radians(yaw0)
    sim.spawn_ego(
        carla.Transform(
            carla.Location(x0 - back * math.cos(r), y0 - back * math.sin(r), 0.5), carla.Rotation(yaw=yaw0)
        )
    )


def follow(sim, sc, ticks: int, speed: float = 6.0, probe: Callable | None = None) -> list[dict]:
    """Drive the ego along the scenario's ego path (pure pursuit, ~speed m/s); the scenario ticks after the
    simulator, as in the evaluator. Returns per tick: the scenario state, the ego's (x, y) and what
    `probe(gt, data)` measured right then (ground-truth actor states are live objects: read them in the tick)."""
    log = []
    data = sim.tick()
    gt = sim.ground_truth()
    for _ in range(ticks):
        e = gt.ego.pose
        s, _ = sc.ego_path.project(e.x, e.y)
        tx, ty, _ = sc.ego_path.point_at(min(max(s, 0.0) + 6.0, sc.ego_path.length))
        if s <= 0.0:
            x0, y0, yaw0 = sc.ego_path.point_at(0.0)
            d = math.hypot(x0 - e.x, y0 - e.y)
            tx, ty = (
                (x0 + 6.0 * math.cos(math.radians(yaw0)), y0 + 6.0 * math.sin(math.radians(yaw0)))
                if d < 6.0
                else (x0, y0)
            )
        alpha = math.atan2(ty - e.y, tx - e.x) - math.radians(e.yaw)
        ld = max(math.hypot(tx - e.x, ty - e.y), 1.0)
        steer = math.atan2(2.0 * 2.875 * math.sin(alpha), ld) / math.radians(70.0)
        control = carla.VehicleControl(
            throttle=0.6 if gt.ego.speed < speed else 0.0, steer=float(np.clip(steer, -1.0, 1.0))
        )
        sim.apply_control(sc.control_hook(control, sim.frame))
        data = sim.tick()
        gt = sim.ground_truth()
        sc.tick(gt)
        log.append(
            {
                "state": sc.state,
                "ego": (gt.ego.pose.x, gt.ego.pose.y),
                "probe": probe(gt, data) if probe is not None else None,
            }
        )
    return log


def pixels(data: dict, occ_class: int) -> int:
    return int(sum((frame[:, :, 2] == occ_class).sum() for _, frame in data.values()))


def actor_pixels(data: dict, gt, actor_id: int) -> int:
    """Pixels of the actor's class inside its projected 3D box, over the six cameras (the town's own parked cars
    share the class; they are not in the box)."""
    from sim.embedded.render.math3d import project_points
    from sim.sensors import camera_spec_from_dict

    a = next((a for a in gt.actors if a.id == actor_id), None)
    if a is None:
        return 0
    ex, ey, ez = a.extent
    yaw = math.radians(a.yaw)
    c, s = math.cos(yaw), math.sin(yaw)
    corners = np.array(
        [
            [a.x + c * fx - s * fy, a.y + s * fx + c * fy, a.z + fz]
            for fx in (-ex, ex)
            for fy in (-ey, ey)
            for fz in (0.0, 2 * ez)
        ]
    )  # (8, 3)
    total = 0
    for spec in SEMANTIC_RIG:
        cam = camera_spec_from_dict(spec)
        uv, depth = project_points(gt.ego.pose, cam, corners)
        if (depth <= 0.1).any():
            continue  # partly behind the camera: the box's projection is not its bounding rectangle
        u0, v0 = np.floor(uv.min(axis=0)).astype(int)
        u1, v1 = np.ceil(uv.max(axis=0)).astype(int)
        u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, cam.width), min(v1, cam.height)
        if u0 < u1 and v0 < v1:
            total += int((data[spec["id"]][1][v0:v1, u0:u1, 2] == a.occ_class).sum())
    return total


def trigger_tick(log: list[dict], sc, distance: float) -> tuple[int, int]:
    """(first tick the scenario runs, first tick the ego is within its trigger distance)."""
    tx, ty = sc.trigger_xy
    first_run = next(i for i, r in enumerate(log) if r["state"] != "idle")
    first_near = next(
        i for i, r in enumerate(log) if math.hypot(r["ego"][0] - tx, r["ego"][1] - ty) <= distance
    )
    return first_run, first_near


CROSSINGS = [
    ("DynamicObjectCrossing", {"blocker_model": "static.prop.busstoplb"}, STRAIGHT_TRIGGER, 240),
    ("DynamicObjectCrossing", {"blocker_model": "static.prop.advertisement"}, STRAIGHT_TRIGGER, 240),
    (
        "DynamicObjectCrossing",
        {"blocker_model": "static.prop.container", "crossing_angle": 20.0},
        STRAIGHT_TRIGGER,
        240,
    ),
    ("ParkingCrossingPedestrian", {}, STRAIGHT_TRIGGER, 240),
    ("VehicleTurningRoutePedestrian", {"turn": "right"}, TURN_TRIGGER, 400),  # the walker waits past the turn
]


@pytest.mark.parametrize("sid,params,trigger,ticks", CROSSINGS, ids=[f"{c[0]}-{c[1]}" for c in CROSSINGS])
def test_hidden_walker_is_invisible_until_it_leaves_cover(sem_sim, sid, params, trigger, ticks) -> None:
    sim, cmap = sem_sim
    sc = make_scenario(sid, **params)
    sc.setup(sim, cmap, trigger, np.random.default_rng(0))
    try:
        start_before(sim, sc, 30.0)

        def probe(gt, data):
            a = next((a for a in gt.actors if a.id == sc.hidden_id), None)
            lat = sc.ego_path.project(a.x, a.y)[1] if a is not None else float("nan")
            return sc.revealed(gt), pixels(data, OCC["pedestrian"]), lat

        log = follow(sim, sc, ticks, probe=probe)
        revealed_at = next((i for i, r in enumerate(log) if r["probe"][0]), None)
        assert revealed_at is not None and revealed_at > 40, f"{sid}: revealed at tick {revealed_at}"
        for i, r in enumerate(log[:revealed_at]):
            assert r["probe"][1] == 0, (
                f"{sid}: {r['probe'][1]} walker pixels at tick {i}, before it left cover"
            )
        # ... and then it is seen (the check above is not vacuous), and it crosses the ego's lane
        assert max(r["probe"][1] for r in log[revealed_at:]) > 50
        assert min(r["probe"][2] for r in log[revealed_at:] if r["probe"][2] == r["probe"][2]) < -1.75
        first_run, first_near = trigger_tick(log, sc, sc.config.trigger_distance)
        assert first_run == first_near  # triggered at the trigger point
        assert log[first_run - 1]["state"] == "idle"
    finally:
        sc.cleanup()


def test_hidden_red_light_runner_is_seen_only_near_the_conflict_point(sem_sim) -> None:
    sim, cmap = sem_sim
    sc = make_scenario("occlusion/hidden_red_light_runner")
    sc.setup(sim, cmap, JUNCTION_TRIGGER, np.random.default_rng(0))
    try:
        start_before(sim, sc, 20.0)
        roles = {p.role for p in sc.placements}
        assert {"queue_truck", "queue_bus", "container0"} <= roles
        log = follow(
            sim,
            sc,
            420,
            speed=5.0,
            probe=lambda gt, data: (
                actor_pixels(data, gt, sc.hidden_id),
                sc.conflict_distance(),
                [tl.state for tl in gt.traffic_lights],
            ),
        )
        first_seen = next((r["probe"][1] for r in log if r["probe"][0] > 0), None)
        assert first_seen is not None, "the runner was never seen"
        assert first_seen <= 15.0, f"the runner was seen {first_seen:.1f} m from the conflict point"
        first_run, first_near = trigger_tick(log, sc, sc.config.trigger_distance)
        assert first_run == first_near
        held = log[first_run + 1]["probe"][2]  # the trigger tick holds the lights for the next one
        assert "Red" in held and "Green" in held
        assert sc.conflict_distance() < 0  # it ran through the junction
    finally:
        sc.cleanup()


@pytest.mark.parametrize("sid", ["ParkingCutIn", "StaticCutIn"])
def test_cut_in_pulls_into_the_ego_lane_ahead_of_the_ego(sem_sim, sid) -> None:
    sim, cmap = sem_sim
    sc = make_scenario(sid)
    sc.setup(sim, cmap, STRAIGHT_TRIGGER, np.random.default_rng(1))
    try:
        car = next(p for p in sc.placements if p.role == "cut_in")
        blockers = [p for p in sc.placements if p.role.startswith("blocker")]
        assert len(blockers) == (1 if sid == "ParkingCutIn" else 3)
        assert sc.ego_path.project(car.x, car.y)[1] > 1.0  # starts on the right, off the lane centre
        start_before(sim, sc, 22.0)

        def probe(gt, data):
            a = next((a for a in gt.actors if a.id == car.actor_id), None)
            if a is None:
                return None
            s_car, lat = sc.ego_path.project(a.x, a.y)
            return a.speed, s_car, lat, sc.ego_s

        log = follow(sim, sc, 300, speed=5.0, probe=probe)
        first_run, first_near = trigger_tick(log, sc, sc.config.trigger_distance)
        assert first_run == first_near
        moved = [i for i, r in enumerate(log) if r["probe"] and r["probe"][0] > 0.5]
        assert moved and moved[0] >= first_run
        in_lane = [r["probe"] for r in log[moved[0] :] if r["probe"] and abs(r["probe"][2]) < 0.5]
        assert in_lane, f"{sid}: the car never reached the ego lane"
        assert in_lane[0][1] > in_lane[0][3] + 3.0  # ahead of the ego
    finally:
        sc.cleanup()


def test_vehicle_opens_door_into_the_ego_lane_with_oncoming_traffic(sem_sim) -> None:
    sim, cmap = sem_sim
    sc = make_scenario("VehicleOpensDoorTwoWays")
    sc.setup(sim, cmap, STRAIGHT_TRIGGER, np.random.default_rng(2))
    try:
        assert len(sc.oncoming) >= 1
        start_before(sim, sc, 22.0)
        log = follow(sim, sc, 300, speed=4.0)
        first_run, first_near = trigger_tick(log, sc, sc.config.trigger_distance)
        assert first_run == first_near
        assert sc.door_open
        door = [a for a in sim.ground_truth().actors if a.type_id == "static.prop.vehicledoor"]
        assert len(door) == 1
        _, lat_door = sc.ego_path.project(door[0].x, door[0].y)
        _, lat_car = sc.ego_path.project(*next((p.x, p.y) for p in sc.placements if p.role == "parked"))
        assert lat_door < lat_car - 1.0  # out of the car's side, into the ego lane
        assert any(m.active for m in sc.oncoming)
    finally:
        sc.cleanup()


def test_route_xml_parameters_reach_the_scenario(tmp_path) -> None:
    """A 2.0 route file's <param value=...> tags set the scenario's parameters (they used to be dropped)."""
    from scenarios.manager import scenario_params
    from sim.routes import ScenarioConfig

    cfg = ScenarioConfig(
        "DynamicObjectCrossing_1",
        "DynamicObjectCrossing",
        [(0, 0, 0, 0)],
        parameters={
            "distance": {"value": "22"},
            "direction": {"value": "left"},
            "blocker_model": {"value": "static.prop.container"},
            "crossing_angle": {"value": "10"},
            "flow_speed": {"value": "9"},
        },
    )
    params, ignored = scenario_params(cfg)
    assert params == {
        "distance": 22.0,
        "direction": "left",
        "blocker_model": "static.prop.container",
        "crossing_angle": 10.0,
    }
    assert ignored == ["flow_speed"]
    sc = make_scenario("DynamicObjectCrossing", **params)
    assert sc.config.distance == 22.0 and sc.config.blocker_model == "static.prop.container"


@pytest.mark.parametrize("sid", ["occlusion/parked_truck_pedestrian", "occlusion/parked_row_pedestrian"])
def test_older_occlusion_setups_hide_their_walker_too(sem_sim, sid) -> None:
    """The parked truck used to show 1-9 walker pixels under its body for ~64 frames; vehicles now have a closed
    underbody, so nothing of the walker shows until it steps past the occluders' lane-side face."""
    from scenarios.leaderboard1 import half_width

    sim, cmap = sem_sim
    sc = make_scenario(sid, adversary="walker")
    sc.setup(sim, cmap, STRAIGHT_TRIGGER, np.random.default_rng(0))
    try:
        occ = [p for p in sc.placements if p.role.startswith("occluder")]
        adv = next(p for p in sc.placements if p.role == "adversary")
        inner = min(sc.ego_path.project(p.x, p.y)[1] - half_width(p.type_id) for p in occ)
        start_before(sim, sc, 30.0)

        def probe(gt, data):
            a = next((a for a in gt.actors if a.id == adv.actor_id), None)
            if a is None:
                return True, 0
            lat = sc.ego_path.project(a.x, a.y, sc.s_cross - 15.0, sc.s_cross + 15.0)[1]
            return lat - 0.25 < inner + 0.1, pixels(data, OCC["pedestrian"])

        log = follow(sim, sc, 240, probe=probe)
        revealed_at = next(i for i, r in enumerate(log) if r["probe"][0])
        assert revealed_at > 40
        assert all(r["probe"][1] == 0 for r in log[:revealed_at])
        assert max(r["probe"][1] for r in log[revealed_at:]) > 50
    finally:
        sc.cleanup()
