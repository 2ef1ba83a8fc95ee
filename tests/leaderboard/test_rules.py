"""Leaderboard 1.0 and 2.x rules: records, global records and results files equal hand computation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import carla
import numpy as np
import pytest

from leaderboard.autoagents.agent_wrapper import validate_sensor_configuration
from leaderboard.autoagents.autonomous_agent import Track
from leaderboard.criteria import FixedRouteTimeout, RouteCriteria
from leaderboard.envs.sensor_interface import SensorConfigurationInvalid
from leaderboard.results import ResultsFile
from leaderboard.rules import RULES, get_rules, rules_of_run
from leaderboard.scores import TrafficEvent, TrafficEventType
from leaderboard.scores_v1 import (
    GLOBAL_LABELS_V1,
    compute_global_record_v1,
    compute_route_record_v1,
    failed_route_record_v1,
    global_values_v1,
    keypoint_route_length,
)
from sim.route_planner import RoadOption
from sim.types import ActorState, EgoState, GroundTruth, Pose

E = TrafficEventType
V1, V2 = RULES["1.0"], RULES["2.0"]
TOWN = Path(__file__).resolve().parents[2] / "sim" / "embedded" / "towns" / "OccTown01.xodr"


def ev(kind: TrafficEventType, msg: str = "m", **data) -> TrafficEvent:
    return TrafficEvent(kind, 0, msg, data)


def outside_msg(metres: float, pct: float) -> str:
    return f"Agent went outside its route lanes for about {metres} meters ({pct}% of the completed route)"


def test_rule_selection():
    assert get_rules(None, "1.0") is V1 and get_rules(None, "2.0") is V2
    assert get_rules("2.0", "1.0") is V2 and get_rules("2.1", "1.0") is V2
    assert rules_of_run(None, ["1.0", "1.0"]) is V1
    with pytest.raises(ValueError, match="mix leaderboard formats"):
        rules_of_run(None, ["1.0", "2.0"])
    with pytest.raises(ValueError, match="unknown leaderboard version '3.0'"):
        get_rules("3.0")
    assert V1.route_name("RouteScenario_3", 1) == "RouteScenario_3"
    assert V2.route_name("RouteScenario_3", 1) == "RouteScenario_3_rep1"
    assert V1.route_timeout(1000.4) == 805.0 and V1.route_timeout(10.0) == 13.0  # int(0.8 x 10 + 5)
    assert V2.route_timeout(1000.0) is None


def test_v1_route_record_by_hand():
    events = [
        ev(E.COLLISION_VEHICLE, "c1"),
        ev(E.TRAFFIC_LIGHT_INFRACTION, "r1"),
        ev(E.OUTSIDE_ROUTE_LANES_INFRACTION, outside_msg(12.5, 2.5), percentage=2.5),
        ev(E.COLLISION_STATIC, "s1"),
    ]
    rec = compute_route_record_v1("RouteScenario_7", 3, events, 100.0, 512.3456789, 61.05, 12.3456789)
    ip = 0.6 * 0.7 * (1 - 0.025) * 0.65
    assert rec["scores"] == {
        "score_route": 100.0,
        "score_penalty": ip,
        "score_composed": 100.0 * ip,
    }  # unrounded
    assert rec["status"] == "Completed"  # 1.0 has no 'Perfect'
    assert "num_infractions" not in rec
    assert list(rec) == ["route_id", "index", "status", "infractions", "scores", "meta"]
    assert rec["meta"] == {"duration_system": 12.3456789, "duration_game": 61.05, "route_length": 512.3456789}
    assert rec["infractions"]["collisions_vehicle"] == ["c1"] and rec["infractions"]["collisions_layout"] == [
        "s1"
    ]
    assert set(rec["infractions"]) == {
        "collisions_pedestrian", "collisions_vehicle", "collisions_layout", "red_light", "stop_infraction",
        "outside_route_lanes", "route_dev", "route_timeout", "vehicle_blocked",
    }  # fmt: skip
    perfect = compute_route_record_v1("RouteScenario_0", 0, [], 100.0, 10.0, 1.0, 1.0)
    assert perfect["status"] == "Completed" and perfect["scores"]["score_penalty"] == 1.0
    # the last failure assigned wins: a timeout, then a deviation
    dev = compute_route_record_v1("R", 0, [ev(E.ROUTE_DEVIATION, "d")], 40.0, 10, 1, 1, timed_out=True)
    assert dev["status"] == "Failed - Agent deviated from the route"
    assert dev["infractions"]["route_timeout"] == ["Route timeout."] and dev["infractions"]["route_dev"] == [
        "d"
    ]
    crash = failed_route_record_v1("RouteScenario_2", 2, "Agent crashed", 77.0)
    assert crash["status"] == "Failed - Agent crashed" and crash["scores"]["score_composed"] == 0.0


def test_the_same_events_score_differently_under_2x():
    events = [ev(E.COLLISION_PEDESTRIAN), ev(E.MIN_SPEED_INFRACTION, percentage=60.0)]  # 2.x only: min speed
    r1 = V1.compute_route_record("RouteScenario_1", 0, events, 80.0, 300.0, 60.0, 10.0)
    r2 = V2.compute_route_record("RouteScenario_1_rep0", 0, events, 80.0, 300.0, 60.0, 10.0)
    assert r1["scores"]["score_penalty"] == 0.5
    assert r2["scores"]["score_penalty"] == pytest.approx(0.5 * (1 - 0.3 * 0.4), abs=1e-9)
    assert r1["scores"]["score_composed"] == 40.0 and r2["scores"]["score_composed"] == pytest.approx(35.2)


def test_v1_route_length_is_the_keypoints():
    kps = [(0.0, 0.0, 0.0), (3.0, 4.0, 0.0), (3.0, 4.0, 12.0)]
    assert keypoint_route_length(kps) == 17.0
    assert V1.record_route_length(kps, 99.0) == 17.0 and V2.record_route_length(kps, 99.0) == 99.0


def test_v1_global_record_by_hand():
    r0 = compute_route_record_v1(
        "RouteScenario_0", 0,
        [ev(E.COLLISION_VEHICLE), ev(E.OUTSIDE_ROUTE_LANES_INFRACTION, outside_msg(50.0, 10.0), percentage=10.0)],
        100.0, 1000.0, 100.0, 20.0,
    )  # fmt: skip
    r1 = compute_route_record_v1(
        "RouteScenario_1",
        1,
        [ev(E.TRAFFIC_LIGHT_INFRACTION), ev(E.TRAFFIC_LIGHT_INFRACTION)],
        50.0,
        400.0,
        50,
        8,
    )
    r2 = failed_route_record_v1("RouteScenario_2", 2, "Agent couldn't be set up", 500.0)  # 0 % driven
    g = compute_global_record_v1([r0, r1, r2], total_routes=3)
    ds = [100 * 0.6 * 0.9, 50 * 0.49, 0.0]
    assert g["scores"]["score_composed"] == pytest.approx(sum(ds) / 3)
    assert g["scores"]["score_route"] == pytest.approx(50.0)
    mean = sum(ds) / 3
    assert g["scores_std_dev"]["score_composed"] == pytest.approx(
        math.sqrt(sum((d - mean) ** 2 for d in ds) / 2)
    )
    # per km route by route: r0 drove 1 km, r1 0.2 km; r2 (0 %) is skipped
    assert g["infractions"]["collisions_vehicle"] == pytest.approx(1 / 1.0)
    assert g["infractions"]["red_light"] == pytest.approx(2 / 0.2)
    assert g["infractions"]["outside_route_lanes"] == pytest.approx(1 / 1.0)  # counted as events, not km
    assert g["meta"]["total_length"] == 1900.0 and g["meta"]["duration_game"] == 150.0
    assert g["status"] == "Failed" and [e[0] for e in g["meta"]["exceptions"]] == [
        "RouteScenario_1",
        "RouteScenario_2",
    ]
    values = global_values_v1(g)
    assert len(values) == len(GLOBAL_LABELS_V1) == 12
    assert values[0] == f"{sum(ds) / 3:.3f}" and values[6] == "10.000" and values[4] == "1.000"
    one = compute_global_record_v1([r0], 1)
    assert one["scores_std_dev"] == {"score_route": "NaN", "score_penalty": "NaN", "score_composed": "NaN"}
    assert one["status"] == "Completed" and "exceptions" not in one["meta"]


def _route_keys(n: int) -> list[str]:
    return [f"RouteScenario_{i}_rep0" for i in range(n)]


def test_v1_results_file(tmp_path):
    res = ResultsFile(tmp_path / "r.json", _route_keys(2), rules=V1)
    res.save_sensors([{"type": "sensor.camera.rgb", "id": "a"}])
    res.add(compute_route_record_v1("RouteScenario_0", 0, [], 100.0, 100.0, 10, 1), "RouteScenario_0_rep0")
    mid = res.write()
    assert (
        mid["entry_status"] == "Started" and mid["_checkpoint"]["global_record"] == {} and mid["values"] == []
    )
    res.add(compute_route_record_v1("RouteScenario_1", 1, [], 40.0, 100.0, 10, 1, timed_out=True),
            "RouteScenario_1_rep0")  # fmt: skip
    data = res.write(final=True)
    text = (tmp_path / "r.json").read_text()
    assert list(json.loads(text)) == sorted(data)  # 1.0 writes keys sorted
    # 'Failed - Agent timed out' names the agent: 1.0's 'Finished with agent errors', still eligible
    assert data["entry_status"] == "Finished with agent errors" and data["eligible"] is True
    assert data["_checkpoint"]["progress"] == [2, 2]
    assert [r["route_id"] for r in data["_checkpoint"]["records"]] == ["RouteScenario_0", "RouteScenario_1"]
    assert data["values"][:3] == ["70.000", "70.000", "1.000"] and data["labels"] == list(GLOBAL_LABELS_V1)
    # resuming a 1.0 file matches records by index (1.0 ids repeat across repetitions)
    again = ResultsFile(tmp_path / "r.json", _route_keys(2), resume=True, rules=V1)
    assert again.done("RouteScenario_0_rep0") and again.done("RouteScenario_1_rep0")

    crashed = ResultsFile(tmp_path / "c.json", _route_keys(3), rules=V1)
    crashed.add(failed_route_record_v1("RouteScenario_0", 0, "Simulation crashed"), "RouteScenario_0_rep0")
    data = crashed.write(final=True)
    assert data["entry_status"] == "Crashed" and data["eligible"] is False
    assert data["_checkpoint"]["global_record"] == {} and data["values"] == [] and data["labels"] == []


def test_v2_results_file_crashed_and_invalid(tmp_path):
    res = ResultsFile(tmp_path / "r.json", _route_keys(2), rules=V2)
    res.save_sensors([{"type": "sensor.camera.rgb", "id": "a"}])
    res.add(V2.compute_route_record("RouteScenario_0_rep0", 0, [], 100.0, 100.0, 10, 1))
    mid = res.write()  # 2.x fills the global record only at the end of the run
    assert (
        mid["entry_status"] == "Started" and mid["_checkpoint"]["global_record"] == {} and mid["labels"] == []
    )
    res.add(V2.failed_route_record("RouteScenario_1_rep0", 1, "Simulation crashed"))
    data = res.write(final=True)  # the official empty global record of a crashed run
    assert data["entry_status"] == "Crashed" and data["eligible"] is False
    assert data["_checkpoint"]["global_record"] == {} and data["values"] == [] and data["labels"] == []
    assert data["_checkpoint"]["progress"] == [2, 2]

    no_sensors = ResultsFile(tmp_path / "n.json", _route_keys(1), rules=V2)
    no_sensors.save_sensors([])  # validated, but nothing to save: 2.x's "Missing 'sensors' data"
    no_sensors.add(V2.compute_route_record("RouteScenario_0_rep0", 0, [], 100.0, 100.0, 10, 1))
    data = no_sensors.write(final=True)
    assert data["entry_status"] == "Invalid" and data["eligible"] is False
    assert no_sensors.invalid_reason == "Missing 'sensors' data"
    assert len(data["values"]) == 15  # the global record is still written


def test_sensor_limits_per_version():
    cams = [{"type": "sensor.camera.rgb", "id": f"c{i}", "x": 0.0, "y": 0.0, "z": 1.5} for i in range(5)]
    validate_sensor_configuration(cams, Track.SENSORS, "SENSORS")  # 2.x allows 8
    with pytest.raises(SensorConfigurationInvalid, match="Maximum number allowed is 4, but 5 were requested"):
        validate_sensor_configuration(cams, Track.SENSORS, "SENSORS", V1.sensor_limits)
    lidars = [{"type": "sensor.lidar.ray_cast", "id": f"l{i}"} for i in range(2)]
    with pytest.raises(SensorConfigurationInvalid, match="Maximum number allowed is 1"):
        validate_sensor_configuration(lidars, Track.SENSORS, "SENSORS", V1.sensor_limits)


def _gt(frame: int, x: float, y: float, speed: float, actors=()) -> GroundTruth:
    ego = EgoState(Pose(x, y, 0.0, 90.0), vx=0.0, vy=speed, speed=speed)
    return GroundTruth(frame, frame * 0.05, ego, list(actors), [], [], [])


@pytest.mark.skipif(not TOWN.exists(), reason="built-in town missing")
def test_a_1_0_run_whose_penalties_differ_under_2x():
    """A slow ego 2.6 m right of its lane's centre for half the route: 2.x penalises both the minimum speed (every
    quarter at 50 % of the traffic's) and the outside-lanes distance (2.6 m > 1.75 + 0.5), 1.0 neither
    (no minimum-speed test; 2.6 m < 1.75 + 1.3)."""
    cmap = carla.Map("OccTown01", TOWN.read_text())
    route = [
        (
            carla.Transform(carla.Location(98.25, 200.0 + i, 0.0), carla.Rotation(yaw=90.0)),
            RoadOption.LANEFOLLOW,
        )
        for i in range(41)
    ]
    crit = {v: RouteCriteria(route, cmap, speed_limits_kmh=np.full(41, 30.0), rules=RULES[v]) for v in RULES}
    f = 0
    for y in np.arange(200.0, 240.5, 0.05):
        x = 98.25 if y < 220.0 else 98.25 - 2.6  # second half beside the lane (no lane there: shoulder)
        traffic = [
            ActorState(1, "vehicle.audi.a2", "vehicle", "car", 102.0, float(y), 0, 90, (2, 1, 1), vy=2.0)
        ]
        for c in crit.values():
            c.update(_gt(f, x, float(y), 1.0, traffic))
        f += 1
        if all(c.done for c in crit.values()):
            break
    rec = {}
    for v, c in crit.items():
        c.terminate()
        rules = RULES[v]
        rec[v] = rules.compute_route_record(
            rules.route_name("RouteScenario_0", 0), 0, c.events(), c.completion.actual_value, 40.0, f * 0.05, 1.0,
            timed_out=c.timeout.timed_out,
        )  # fmt: skip
    assert rec["1.0"]["scores"]["score_penalty"] == 1.0 and rec["1.0"]["status"] == "Completed"
    min_speed = [e for e in crit["2.0"].events() if e.type == E.MIN_SPEED_INFRACTION]
    outside = crit["2.0"].outside_lanes.event
    assert [e.data["percentage"] for e in min_speed] == [50.0] * 4
    assert outside is not None and outside.data["percentage"] == pytest.approx(50.0, abs=5.0)
    by_hand = (1 - outside.data["percentage"] / 100) * (1 - 0.3 * 0.5) ** 4
    assert rec["2.0"]["scores"]["score_penalty"] == pytest.approx(by_hand, abs=1e-6)
    assert rec["2.0"]["status"] == "Completed" and rec["2.0"]["route_id"] == "RouteScenario_0_rep0"


def test_v1_fixed_route_timeout():
    t = FixedRouteTimeout(V1.route_timeout(100.0))  # int(0.8 x 100 + 5) = 85 s of game time
    for frame in range(1, 85 * 20 + 1):
        t.update(_gt(frame, 0.0, 0.0, 0.0))
    assert not t.timed_out
    t.update(_gt(85 * 20 + 1, 0.0, 0.0, 0.0))
    assert t.timed_out
