"""leaderboard/run.py spawns a route's scenarios, adds occlusion scenarios and applies sensor faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


PLANNING_AGENT = SLOW_AGENT + """

    def debug_overlay(self):
        import numpy as np
        return {'waypoints': np.array([[2.0 * k, 0.0] for k in range(1, 7)]), 'caption': 'keep lane | cmd LANEFOLLOW'}
"""


def test_record_draws_the_agents_plan_on_the_front_camera_and_top_view(tmp_path):
    """An agent's debug_overlay(): its trajectory (straight ahead) in magenta on the front tile, below the
    horizon and about the image's centre column, and in the top view; no overlay, no magenta."""
    import cv2

    from leaderboard.recording import CAM_H, CAM_W, project_to_front

    def magenta(img):  # (H, W) bool: the plan colour survives mp4 compression roughly
        b, g, r = (img[..., i].astype(int) for i in range(3))
        return (b > 180) & (r > 180) & (g < 90)

    def middle_frame(rec_dir):  # the last one ends the route before the agent decides
        cap = cv2.VideoCapture(str(rec_dir / "RouteScenario_1_rep0.mp4"))
        frames = []
        while True:
            ok, img = cap.read()
            if not ok:
                return frames[len(frames) // 2]
            frames.append(img)

    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTE.format(end=229.5, scenarios=""))
    for name, text in (("plan", PLANNING_AGENT), ("plain", SLOW_AGENT)):
        agent = tmp_path / f"{name}_agent.py"
        agent.write_text(text)
        run(tmp_path, routes, agent, "--record", str(tmp_path / name))
    frame = middle_frame(tmp_path / "plan")
    front = magenta(frame[:CAM_H, CAM_W:2 * CAM_W])  # the top row is FRONT_LEFT, FRONT, FRONT_RIGHT
    ys, xs = np.nonzero(front)
    assert len(xs) > 30
    assert abs(np.median(xs) - CAM_W / 2) < 8 and ys.min() > CAM_H / 2  # straight ahead, on the ground
    assert magenta(frame[:, frame.shape[1] - frame.shape[0]:]).sum() > 20  # the top view
    assert magenta(middle_frame(tmp_path / "plain")).sum() == 0
    uv = project_to_front(np.array([[0.0, 0.0], [10.8, 0.0], [10.8, 2.0]]), 320, 180)
    assert len(uv) == 2  # the ego's own position is behind the camera
    np.testing.assert_allclose(uv[0], [160.0, 90.0 + 1.6 * 160.0 / np.tan(np.radians(35.0)) / 10.0])
    assert uv[1, 0] < uv[0, 0]  # a point to the left is drawn left


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


def test_a_scenario_whose_actors_stand_on_another_scenarios_is_skipped(tmp_path, agent, capsys, monkeypatch):
    # two triggers of one stretch (two generated routes' trigger files merged, or a hand-written file): the second
    # would spawn its hidden walker and its prop on the first one's, and the twins would wait for each other
    monkeypatch.setattr(route_runner, "_NOTED", set())
    twin = CROSSING.replace("DynamicObjectCrossing_1", "DynamicObjectCrossing_2").replace('y="212.0"', 'y="212.5"')
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTE.format(end=249.5, scenarios=CROSSING + twin))
    rec = run(tmp_path, routes, agent)
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "skipped" in ln]
    assert len(notes) == 1 and "DynamicObjectCrossing_2" in notes[0] and "DynamicObjectCrossing_1" in notes[0], notes
    assert "would stand on" in notes[0]
    assert len(rec["infractions"]["collisions_pedestrian"]) == 1  # the first one still runs
