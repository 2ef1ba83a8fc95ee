"""leaderboard/run.py spawns a route's scenarios, adds occlusion scenarios and applies sensor faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leaderboard import route_runner
from leaderboard.run import main
from tests.leaderboard.conftest import SLOW_AGENT

# OccTown01, First St S heading south: 40 m (tiny) and 75 m routes, both ending before the T-junction at y ~ 290
ROUTE = """<?xml version="1.0"?>
<routes>
  <route id="1" town="OccTown01">
    <waypoints><position x="98.25" y="209.5" z="0"/><position x="98.25" y="{end}" z="0"/></waypoints>
    <scenarios>{scenarios}</scenarios>
  </route>
</routes>
"""
CROSSING = ('<scenario name="DynamicObjectCrossing_1" type="DynamicObjectCrossing">'
            '<trigger_point x="98.25" y="212.0" z="0" yaw="90"/></scenario>')
UNKNOWN = '<scenario name="ParkedObstacle_1" type="ParkedObstacle"><trigger_point x="98.25" y="215" z="0"/></scenario>'

# A CARLA-contract agent that records whether its camera ever went black (for --sensor-fault).
RECORDING_AGENT = SLOW_AGENT.replace(
    "        frame, image = input_data['Center']\n",
    "        frame, image = input_data['Center']\n"
    "        import os\n"
    "        if image[..., :3].max() == 0:\n"
    "            open(os.environ['BLACK_MARK'], 'w').write('black')\n",
)


def run(tmp_path: Path, routes: Path, agent: Path, *extra: str) -> dict:
    code = main(["--agent", str(agent), "--routes", str(routes), "--checkpoint", str(tmp_path / "res.json"),
                 "--debug-checkpoint", str(tmp_path / "live.txt"), "--vehicles", "0", "--walkers", "0",
                 "--no-progress", "--no-report", *extra])
    assert code == 0
    return json.loads((tmp_path / "res.json").read_text())["_checkpoint"]["records"][0]


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    p = tmp_path / "slow_agent.py"
    p.write_text(SLOW_AGENT)
    return p


def test_route_scenario_is_spawned_and_unknown_types_are_skipped(tmp_path, agent, capsys, monkeypatch):
    monkeypatch.setattr(route_runner, "_NOTED", set())  # skip notes are printed once per process
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTE.format(end=249.5, scenarios=CROSSING + UNKNOWN))
    rec = run(tmp_path, routes, agent)
    # the agent drives straight on at 5 m/s and never brakes: the pedestrian stepping out is hit
    assert len(rec["infractions"]["collisions_pedestrian"]) == 1
    assert rec["scores"]["score_penalty"] == pytest.approx(0.5)
    err = capsys.readouterr().err
    assert err.count("ParkedObstacle skipped: no implementation registered") == 1
    rec_off = run(tmp_path, routes, agent, "--scenarios-mode", "off")
    assert rec_off["infractions"]["collisions_pedestrian"] == []
    assert rec_off["scores"]["score_composed"] == pytest.approx(100.0)


def test_occlusion_and_sensor_fault_flags(tmp_path, monkeypatch):
    agent = tmp_path / "rec_agent.py"
    agent.write_text(RECORDING_AGENT)
    mark = tmp_path / "black.txt"
    monkeypatch.setenv("BLACK_MARK", str(mark))
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTE.format(end=284.5, scenarios=""))
    rec = run(tmp_path, routes, agent, "--occlusion", "occlusion/parked_truck_pedestrian",
              "--sensor-fault", "fault/camera_dropout")
    assert len(rec["infractions"]["collisions_pedestrian"]) == 1  # hidden by the truck, hit by a blind agent
    assert mark.exists()  # the agent saw dropped (black) frames


def test_bad_scenario_flags_are_one_line_errors(tmp_path, agent, capsys):
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTE.format(end=249.5, scenarios=""))
    for flag, value in (("--occlusion", "occlusion/nope"), ("--sensor-fault", "fault/nope")):
        code = main(["--agent", str(agent), "--routes", str(routes), "--checkpoint", str(tmp_path / "r.json"),
                     flag, value, "--no-progress"])
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {flag} '{value}'"), err


def test_record_shows_what_the_faulted_agent_saw_in_a_custom_weather(tmp_path, agent):
    """--record with --sensor-fault: the video's camera tiles are the faulted ones (the three front cameras
    black at camera_blackout:3), in a named custom weather."""
    import cv2

    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTE.format(end=249.5, scenarios=""))
    run(tmp_path, routes, agent, "--record", str(tmp_path / "rec"), "--sensor-fault", "camera_blackout:3",
        "--weather", "ClearNoonFogDense")
    cap = cv2.VideoCapture(str(tmp_path / "rec" / "RouteScenario_1_rep0.mp4"))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    assert len(frames) > 5
    h = frames[-1].shape[0] // 2  # the camera grid: front cameras on top, back cameras below, top view right
    grid_w = frames[-1].shape[1] - frames[-1].shape[0]
    top = frames[-1][20:h, :grid_w].astype(float)  # below the tile labels
    bottom = frames[-1][h + 20 :, :grid_w].astype(float)
    assert top.mean() < 3.0 < 30.0 < bottom.mean()


def test_weather_flag_takes_custom_names_and_lists_them(tmp_path, agent, capsys):
    assert main(["--agent", str(agent), "--weather", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"ClearNoon", "ClearNoonFogDense", "LowSunGlare", "ClearNightNoStreetLights"} <= set(names)
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTE.format(end=249.5, scenarios=""))
    code = main(["--agent", str(agent), "--routes", str(routes), "--checkpoint", str(tmp_path / "r.json"),
                 "--weather", "Sunny", "--no-progress"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: unknown weather 'Sunny'")
