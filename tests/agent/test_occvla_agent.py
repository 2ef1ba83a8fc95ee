"""The OccVLA agent end to end: a tiny run directory driven by the real evaluator on the embedded simulator."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from leaderboard.run import main

# A straight 30 m stretch of OccTown01 (road 20, lane -1, heading +y).
ROUTE_XML = """<routes><route id="1" town="OccTown01">
  <waypoint x="98.25" y="209.5" z="0.0" pitch="0" roll="0" yaw="90"/>
  <waypoint x="98.25" y="239.5" z="0.0" pitch="0" roll="0" yaw="90"/>
</route></routes>
"""


@pytest.fixture(scope="module")
def tiny_run_dir(tmp_path_factory) -> Path:
    from occvla import OccVLAProcessor, build_model, save_run_dir, tokenizer_for_config

    torch.manual_seed(0)
    model = build_model("tiny")
    processor = OccVLAProcessor.for_config(model.config, tokenizer_for_config(model.config))
    out = tmp_path_factory.mktemp("occvla") / "run"
    save_run_dir(out, model, processor)
    return out


@pytest.mark.slow  # an untrained model stands still until the 300 s route timeout: ~10 min here
def test_occvla_agent_runs_a_route_through_the_evaluator(tmp_path, tiny_run_dir):
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTE_XML)
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"run_dir: {tiny_run_dir}\ncamera_width: 160\ncamera_height: 90\npolicy_every: 4\n")
    rc = main(["--agent", "occvla", "--agent-config", str(cfg), "--routes", str(routes), "--checkpoint",
               str(tmp_path / "res.json"), "--vehicles", "0", "--walkers", "0", "--no-progress", "--no-report",
               "--timeout", "60"])
    assert rc == 0
    rec = json.loads((tmp_path / "res.json").read_text())["_checkpoint"]["records"][0]
    # An untrained model need not finish the route (it stands until the route times out, a driving failure as in
    # CARLA's leaderboard), but the agent must run it without crashing.
    driving_failures = (
        "Failed - Agent timed out",
        "Failed - Agent got blocked",
        "Failed - Agent deviated from the route",
    )
    assert rec["status"] in ("Completed", "Perfect", *driving_failures), rec["status"]
    assert rec["meta"]["duration_game"] > 10.0


def test_occvla_agent_in_closed_loop_on_the_embedded_simulator(tiny_run_dir, tmp_path):
    import carla

    from agent.occvla_agent import OccVLAAgent
    from sim.factory import make_simulator
    from sim.geo import geo_reference
    from sim.protocol import SimConfig, TrafficConfig
    from sim.route_planner import interpolate_trajectory

    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"run_dir: {tiny_run_dir}\ncamera_width: 160\ncamera_height: 90\n")
    sim = make_simulator("embedded", SimConfig(traffic=TrafficConfig(vehicles=0, walkers=0)))
    try:
        cmap = sim.load_town("OccTown01")
        keypoints = [carla.Location(98.25, 209.5, 0.0), carla.Location(98.25, 239.5, 0.0)]
        gps, world = interpolate_trajectory(cmap, keypoints, geo_reference=geo_reference(sim._town.xodr_text))
        agent = OccVLAAgent()
        agent.set_global_plan(gps, world)
        agent.setup(str(cfg))
        sim.spawn_ego(carla.Transform(carla.Location(98.25, 209.5, 0.5), carla.Rotation(yaw=90.0)))
        sim.attach_sensors(agent.sensors())
        for _ in range(10):
            data = sim.tick()
            control = agent.run_step(data, sim.frame * 0.05)
            assert isinstance(control, carla.VehicleControl)
            assert all(np.isfinite([control.throttle, control.steer, control.brake]))
            sim.apply_control(control)
        assert agent.last_waypoints.shape == (6, 2) and agent.step_count == 10
        agent.destroy()
    finally:
        sim.close()


def test_agent_inputs_follow_the_route_and_camera_order(tiny_run_dir):
    import carla

    from agent.occvla_agent import OccVLAAgent
    from sim.geo import location_to_gnss
    from sim.route_planner import RoadOption
    from sim.sensors import CAMERA_ORDER

    agent = OccVLAAgent()
    plan_world = [(carla.Transform(carla.Location(0.0, -10.0 * i, 0.0)), RoadOption.LANEFOLLOW) for i in range(3)]
    plan_world.append((carla.Transform(carla.Location(0.0, -30.0, 0.0)), RoadOption.LEFT))
    gps = [({"lat": la, "lon": lo, "z": 0.0}, o) for (t, o) in plan_world
           for la, lo, _ in [location_to_gnss(t.location.x, t.location.y, 0.0, 49.0, 8.0)]]
    agent._global_plan, agent._global_plan_world_coord = gps, plan_world
    agent.setup(str(tiny_run_dir))
    data = {c: (0, np.full((90, 160, 4), 10 * i, np.uint8)) for i, c in enumerate(CAMERA_ORDER)}
    data["SPEED"] = (0, {"speed": 3.0})
    lat, lon, _ = location_to_gnss(0.0, -25.0, 0.0, 49.0, 8.0)  # 5 m before the LEFT point
    data["GPS"] = (0, np.array([lat, lon, 0.0]))
    images, speed, command = agent.model_inputs(data)
    assert images.shape == (6, agent.image_size, agent.image_size, 3)
    assert [int(images[i, 0, 0, 0]) for i in range(6)] == [10 * i for i in range(6)]  # order kept, BGR -> RGB
    assert speed == 3.0 and command == int(RoadOption.LEFT)
    control = agent.run_step(data, 0.0)
    assert all(np.isfinite([control.throttle, control.steer, control.brake]))
    data["GPS"] = (0, np.array([np.nan, np.nan, 0.0]))
    assert agent.run_step(data, 0.05).brake == 1.0  # a faulty GNSS stops the car instead of crashing


def test_missing_run_dir_is_one_line(tmp_path):
    from agent.occvla_agent import OccVLAAgent

    with pytest.raises(FileNotFoundError) as err:
        OccVLAAgent().setup(str(tmp_path))
    assert "model.safetensors" in str(err.value) and "\n" not in str(err.value)
