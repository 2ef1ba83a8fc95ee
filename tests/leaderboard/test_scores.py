"""Penalties and scores on constructed event sequences equal hand computation (leaderboard 2.0 rules)."""

from __future__ import annotations

import math

import pytest

from leaderboard.scores import (
    GLOBAL_LABELS,
    INFRACTION_KEYS,
    PENALTY_VALUE,
    TrafficEvent,
    TrafficEventType,
    compute_global_record,
    compute_route_record,
    failed_route_record,
    global_values,
)

E = TrafficEventType


def ev(kind: TrafficEventType, msg: str = "m", **data) -> TrafficEvent:
    return TrafficEvent(kind, 0, msg, data)


def test_penalty_table_is_the_leaderboards():
    assert PENALTY_VALUE[E.COLLISION_PEDESTRIAN] == 0.5
    assert PENALTY_VALUE[E.COLLISION_VEHICLE] == 0.6
    assert PENALTY_VALUE[E.COLLISION_STATIC] == 0.65
    assert PENALTY_VALUE[E.TRAFFIC_LIGHT_INFRACTION] == 0.7
    assert PENALTY_VALUE[E.STOP_INFRACTION] == 0.8


def test_fixed_penalties_multiply():
    events = [
        ev(E.COLLISION_VEHICLE),
        ev(E.COLLISION_PEDESTRIAN),
        ev(E.TRAFFIC_LIGHT_INFRACTION),
        ev(E.STOP_INFRACTION),
        ev(E.COLLISION_STATIC),
        ev(E.COLLISION_VEHICLE),
    ]
    rec = compute_route_record("RouteScenario_0_rep0", 0, events, 100.0, 500.0, 60.0, 10.0)
    ip = 0.6 * 0.5 * 0.7 * 0.8 * 0.65 * 0.6
    assert rec["scores"]["score_penalty"] == pytest.approx(ip, abs=1e-6)
    assert rec["scores"]["score_composed"] == pytest.approx(100.0 * ip, abs=1e-4)
    assert rec["status"] == "Completed"
    assert len(rec["infractions"]["collisions_vehicle"]) == 2
    assert rec["num_infractions"] == 6


def test_percentage_penalties():
    # outside lanes 12.5 % -> x (1 - 0.125); min speed 60 % -> x (1 - 0.3 * 0.4) = 0.88
    events = [
        ev(E.OUTSIDE_ROUTE_LANES_INFRACTION, percentage=12.5),
        ev(E.MIN_SPEED_INFRACTION, percentage=60.0),
        ev(E.MIN_SPEED_INFRACTION, percentage=100.0),
    ]
    rec = compute_route_record("RouteScenario_1_rep0", 1, events, 80.0, 300.0, 60.0, 10.0)
    ip = (1 - 0.125) * 0.88 * 1.0
    assert rec["scores"]["score_penalty"] == pytest.approx(ip, abs=1e-6)
    assert rec["scores"]["score_route"] == 80.0
    assert rec["scores"]["score_composed"] == pytest.approx(80.0 * ip, abs=1e-4)
    assert rec["status"] == "Failed"


def test_perfect_and_failure_statuses():
    assert compute_route_record("R_0_rep0", 0, [], 100.0, 10, 1, 1)["status"] == "Perfect"
    dev = compute_route_record("R_0_rep0", 0, [ev(E.ROUTE_DEVIATION)], 40.0, 10, 1, 1)
    assert dev["status"] == "Failed - Agent deviated from the route" and dev["scores"]["score_penalty"] == 1.0
    blk = compute_route_record("R_0_rep0", 0, [ev(E.VEHICLE_BLOCKED)], 40.0, 10, 1, 1)
    assert blk["status"] == "Failed - Agent got blocked"
    to = compute_route_record("R_0_rep0", 0, [], 40.0, 10, 1, 1, timed_out=True)
    assert to["status"] == "Failed - Agent timed out" and to["infractions"]["route_timeout"] == [
        "Route timeout."
    ]
    crash = failed_route_record("R_0_rep0", 0, "Agent crashed", 120.0)
    assert crash["status"] == "Failed - Agent crashed" and crash["scores"]["score_composed"] == 0
    assert set(crash["infractions"]) == set(INFRACTION_KEYS)


def test_global_record_by_hand():
    r0 = compute_route_record(
        "RouteScenario_0_rep0", 0, [ev(E.COLLISION_VEHICLE)], 100.0, 1000.0, 100.0, 20.0
    )
    r1 = compute_route_record(
        "RouteScenario_1_rep0",
        1,
        [
            ev(
                E.OUTSIDE_ROUTE_LANES_INFRACTION,
                "Agent went outside its route lanes for about 50.0 meters (10.0% of the completed route)",
                percentage=10.0,
            )
        ],
        50.0,
        1000.0,
        80.0,
        20.0,
    )
    r2 = failed_route_record("RouteScenario_2_rep0", 2, "Agent crashed", 500.0)
    g = compute_global_record([r0, r1, r2], total_routes=4)  # a 4th route never ran: counts 0
    ds = [60.0, 45.0, 0.0, 0.0]
    assert g["scores_mean"]["score_composed"] == pytest.approx(sum(ds) / 4, abs=1e-6)
    assert g["scores_mean"]["score_route"] == pytest.approx((100 + 50) / 4, abs=1e-6)
    assert g["scores_mean"]["score_penalty"] == pytest.approx((0.6 + 0.9 + 1.0) / 4, abs=1e-6)
    # sample std dev over the total number of routes, as the leaderboard (records that exist only)
    mean = sum(ds) / 4
    std = math.sqrt(sum((d - mean) ** 2 for d in ds[:3]) / 3)
    assert g["scores_std_dev"]["score_composed"] == pytest.approx(round(std, 3))
    km = 1.0 * 1.0 + 1.0 * 0.5 + 0.5 * 0.0  # length x completion
    assert g["infractions"]["collisions_vehicle"] == pytest.approx(round(1 / km, 3))
    assert g["infractions"]["outside_route_lanes"] == pytest.approx(0.05)  # km outside, not per km
    assert g["status"] == "Failed"
    assert [e[0] for e in g["meta"]["exceptions"]] == ["RouteScenario_1_rep0", "RouteScenario_2_rep0"]
    assert g["meta"]["total_length"] == 2500.0
    values = global_values(g)
    assert len(values) == len(GLOBAL_LABELS) == 15
    assert float(values[0]) == g["scores_mean"]["score_composed"]
    assert float(values[4]) == g["infractions"]["collisions_vehicle"]
