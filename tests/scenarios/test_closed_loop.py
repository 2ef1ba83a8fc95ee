"""Short closed loops on the embedded simulator: an ego driven straight at ~6 m/s (no agent) meets the scenarios."""

from __future__ import annotations

import math

import carla
import numpy as np

from scenarios import make_scenario
from sim.types import GroundTruth
from tests.scenarios.conftest import JUNCTION_TRIGGER, STRAIGHT_TRIGGER


def drive(sim, sc, ticks: int, speed: float = 6.0, on_tick=None) -> GroundTruth:
    """Straight-ahead ego (steer 0) holding ~speed; the scenario ticks after the simulator, as in the evaluator."""
    gt = sim.ground_truth()
    for _ in range(ticks):
        control = carla.VehicleControl(throttle=0.6 if gt.ego.speed < speed else 0.0)
        sim.apply_control(sc.control_hook(control, sim.frame))
        sim.tick()
        gt = sim.ground_truth()
        sc.tick(gt)
        if on_tick is not None:
            on_tick(gt)
    return gt


def place_ego(sim, x: float, y: float, yaw: float = 90.0) -> None:
    sim.spawn_ego(carla.Transform(carla.Location(x, y, 0.5), carla.Rotation(yaw=yaw)))
    sim.tick()


def test_scenario3_pedestrian_crosses_the_ego_lane_once_triggered(town_sim):
    sim, cmap = town_sim
    place_ego(sim, 98.25, 185.0)  # 30 m before the trigger (trigger distance 20 m)
    sc = make_scenario("Scenario3", adversary="walker")
    sc.setup(sim, cmap, STRAIGHT_TRIGGER, np.random.default_rng(0))
    walker = next(p for p in sc.placements if p.role == "adversary")
    assert walker.type_id.startswith("walker.")
    lateral: list[tuple[str, float, bool]] = []  # (scenario state, walker lateral from the ego path, walking)

    def record(gt: GroundTruth) -> None:
        a = next((a for a in gt.actors if a.id == walker.actor_id), None)
        if a is None:  # removed at the end of its path once the ego is 25 m away
            lateral.append(("retired", float("nan"), False))
            return
        _, lat = sc.ego_path.project(a.x, a.y)
        lateral.append((sc.state, lat, a.speed > 0.1))

    try:
        drive(sim, sc, 300, on_tick=record)
    finally:
        sc.cleanup()
    # idle before the trigger, on the right roadside
    idle = [r for r in lateral if r[0] == "idle"]
    assert idle and not any(walking for _, _, walking in idle)
    assert all(lat > 1.75 for _, lat, _ in idle)
    assert lateral[-1][0] == "retired"
    # once triggered it walks from the right of the ego lane through it to the far side
    lats = [lat for st, lat, _ in lateral if st != "retired"]
    assert min(lats) < -1.75 - 3.5  # past the opposite lane
    first_in_lane = next(i for i, lat in enumerate(lats) if abs(lat) < 1.75)
    assert lateral[first_in_lane][0] != "idle"
    assert any(walking for _, _, walking in lateral[first_in_lane:])


def test_control_loss_is_deterministic_and_bounded(town_sim):
    sim, cmap = town_sim
    outs = []
    for seed in (3, 3, 4):
        place_ego(sim, 98.25, 214.0)  # inside the 4 m trigger distance
        sc = make_scenario("Scenario1")
        sc.setup(sim, cmap, STRAIGHT_TRIGGER, np.random.default_rng(seed))
        sc.tick(sim.ground_truth())
        assert sc.state == "running"
        f0 = sc.trigger_frame
        base = carla.VehicleControl(throttle=0.5, steer=0.1)
        seq = [sc.control_hook(base, f0 + k) for k in range(100)]
        outs.append([(round(c.throttle, 6), round(c.steer, 6)) for c in seq])
        assert base.throttle == 0.5 and abs(base.steer - 0.1) < 1e-6  # the agent's control is never modified
        n = round(sc.config.duration / 0.05)
        assert sum(abs(c.steer - base.steer) > 1e-4 for c in seq[:n]) > n // 2
        assert all(c is base for c in seq[n:])  # untouched once the control loss is over
        assert all(-1.0 <= c.steer <= 1.0 and 0.0 <= c.throttle <= 1.0 for c in seq)
        # scenario_runner's magnitudes: the steer pulled left by a few hundredths at most, the throttle up
        assert all(base.steer - 0.05 < c.steer <= base.steer and c.throttle >= base.throttle for c in seq[:n])
        sc.cleanup()
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_scenario7_holds_the_lights_and_the_runner_crosses(town_sim):
    sim, cmap = town_sim
    place_ego(sim, 98.25, 35.0)
    sc = make_scenario("Scenario7", turn="straight", side="right")
    sc.setup(sim, cmap, JUNCTION_TRIGGER, np.random.default_rng(0))
    adv = sc.adversaries[0]
    states: list[dict[int, str]] = []

    def record(gt: GroundTruth) -> None:
        if sc.state == "running" and gt.frame > sc.trigger_frame:  # lights set at the trigger show a tick later
            states.append({t.id: t.state for t in gt.traffic_lights})

    try:
        drive(sim, sc, 300, on_tick=record)
        held = sc._light_states(sim.ground_truth())
        # the ego's approach shows green, the adversary's red, all the time the scenario runs
        ego_light = [i for i, st in held.items() if st == "Green"]
        red = [i for i, st in held.items() if st == "Red"]
        assert ego_light and red and states
        assert all(s[i] == "Green" for s in states for i in ego_light)
        assert all(s[i] == "Red" for s in states for i in red)
        assert adv.active and adv.s > sc.adv_conflict_s[0]  # it ran the red across the ego's path
        x, y, _ = adv.path.point_at(sc.adv_conflict_s[0])
        cx, cy, _ = sc.ego_path.point_at(sc.s_conflict)
        assert math.hypot(x - cx, y - cy) < 1.5
    finally:
        sc.cleanup()
    assert not sc._lights_held


def test_scenario2_lead_brakes_waits_and_drives_on(town_sim):
    sim, cmap = town_sim
    place_ego(sim, 98.25, 212.0)
    sc = make_scenario("Scenario2", hold_time=2.0, brake_after=15.0)
    sc.setup(sim, cmap, STRAIGHT_TRIGGER, np.random.default_rng(0))
    phases: list[str] = []
    try:
        drive(sim, sc, 260, speed=3.0, on_tick=lambda gt: phases.append(sc.phase))
    finally:
        sc.cleanup()
    seen = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert seen == ["cruise", "brake", "hold", "drive"] and sc.state == "done"


def test_an_actor_standing_at_its_paths_end_in_front_of_the_ego_is_removed(town_sim):
    """A path may end in the ego's lane (a crossing car's, past the junction): the car must not stand there for
    good (OccGen-14 route 29: the ego waited behind it until the route timed out as blocked)."""
    from scenarios.base import RETIRE_AFTER_S, RETIRE_DISTANCE, Scenario
    from scenarios.behaviours import PathMotion
    from scenarios.geometry import Polyline

    class EndsAhead(Scenario):
        def _build(self) -> None:  # a car driving 6 m down the ego's lane, to 12 m ahead of the ego
            path = Polyline.from_points([(98.25, 221.0), (98.25, 227.0)])
            self.spawn("blocker", "vehicle.tesla.model3", 98.25, 221.0, 90.0, "driving", PathMotion(path, 6.0))

    sim, cmap = town_sim
    place_ego(sim, 98.25, 215.0)
    sc = EndsAhead()
    sc.setup(sim, cmap, STRAIGHT_TRIGGER, np.random.default_rng(0))
    blocker = sc.placements[0].actor_id
    alive = []
    for _ in range(round((RETIRE_AFTER_S + 4.0) / 0.05)):
        sim.apply_control(carla.VehicleControl(brake=1.0))  # the ego stands behind it, within RETIRE_DISTANCE
        sim.tick()
        gt = sim.ground_truth()
        sc.tick(gt)
        near = [a for a in gt.actors if a.id == blocker]
        assert not near or math.hypot(near[0].x - gt.ego.pose.x, near[0].y - gt.ego.pose.y) < RETIRE_DISTANCE
        alive.append(bool(near))
    ticks_alive = sum(alive)
    assert alive[0] and not alive[-1]  # it drove, stood at its path's end, and was removed
    assert RETIRE_AFTER_S / 0.05 < ticks_alive < (RETIRE_AFTER_S + 3.0) / 0.05
    sc.cleanup()


def test_an_actor_of_a_finished_scenario_stuck_on_its_way_is_removed(town_sim):
    """After its scenario, an actor driving on is background: one that cannot go on (OccGen-6 route 13: a car
    leaving Scenario6 stood 160 s at a crossing, walkers waiting for it, the ego behind it) is removed."""
    from scenarios.base import RETIRE_STUCK_S, Scenario
    from scenarios.behaviours import PathMotion
    from scenarios.geometry import Polyline

    class DrivesOff(Scenario):
        def _build(self) -> None:  # a car driving 60 m down the ego's lane, a cone standing in its way 20 m on
            path = Polyline.from_points([(98.25, 225.0), (98.25, 285.0)])
            self.spawn("car", "vehicle.tesla.model3", 98.25, 225.0, 90.0, "driving", PathMotion(path, 5.0,
                                                                                            follow_gap=4.0))
            self.spawn("cone", "static.prop.trafficcone01", 98.25, 245.0, 90.0, "driving")

        def _on_trigger(self, gt: GroundTruth) -> None:
            super()._on_trigger(gt)
            self.finish()  # the script is over; the car drives on as background

    sim, cmap = town_sim
    place_ego(sim, 98.25, 215.0)
    sc = DrivesOff()
    sc.setup(sim, cmap, STRAIGHT_TRIGGER, np.random.default_rng(0))
    car = sc.placements[0].actor_id
    seen: list[tuple[float, float] | None] = []
    for _ in range(round((RETIRE_STUCK_S + 12.0) / 0.05)):
        sim.apply_control(carla.VehicleControl(brake=1.0))
        sim.tick()
        gt = sim.ground_truth()
        sc.tick(gt)
        a = next((a for a in gt.actors if a.id == car), None)
        seen.append(None if a is None else (a.y, a.speed))
    assert sc.state == "done"
    stood = [k for k, v in enumerate(seen) if v is not None and v[1] < 0.1 and v[0] > 230.0]
    assert stood and seen[stood[0]][0] < 245.0 - 4.0  # it stopped behind the cone ...
    gone = next(k for k, v in enumerate(seen) if v is None)  # ... and was removed once stuck there long enough
    assert abs((gone - stood[0]) * 0.05 - RETIRE_STUCK_S) < 1.0
    sc.cleanup()
