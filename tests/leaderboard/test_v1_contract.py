"""Agents written to leaderboard 1.0's contract run under 1.0 rules; timing and plans follow each version."""

from __future__ import annotations

import json
from pathlib import Path

import carla

from leaderboard.autoagents.autonomous_agent import AutonomousAgent
from leaderboard.run import main
from sim.route_planner import RoadOption
from tests.leaderboard.conftest import SHORT, STRAIGHT, route_xml

# An agent file as leaderboard-1.0 agents are written: a custom __init__(path_to_conf_file) calling the base class,
# which calls setup(); the plan arrives after set-up. It checks every contract point itself and fails loudly.
V1_AGENT = """
import carla
from leaderboard.autoagents import autonomous_agent


def get_entry_point():
    return 'V1Agent'


class V1Agent(autonomous_agent.AutonomousAgent):
    def __init__(self, path_to_conf_file):
        self.conf_seen = None
        super().__init__(path_to_conf_file)
        assert self.conf_seen == path_to_conf_file  # setup() ran inside __init__

    def setup(self, path_to_conf_file):
        assert self._global_plan is None  # 1.0 gives the plan after set-up
        self.conf_seen = path_to_conf_file
        self.track = autonomous_agent.Track.SENSORS
        self.first_timestamp = None

    def sensors(self):
        return [{'type': 'sensor.speedometer', 'reading_frequency': 20, 'id': 'SPEED'}]

    def run_step(self, input_data, timestamp):
        assert self._global_plan and self._global_plan_world_coord
        if self.first_timestamp is None:
            self.first_timestamp = timestamp
            assert abs(timestamp - 0.05) < 1e-9, timestamp  # game time restarts every route
        control = carla.VehicleControl()
        control.throttle = 0.5 if input_data['SPEED'][1]['speed'] < 5.0 else 0.0
        return control
"""


def _run(tmp_path: Path, agent: Path, routes: Path, name: str, *extra: str) -> dict:
    code = main(
        ["--agent", str(agent), "--agent-config", "my_conf.yaml", "--routes", str(routes),
         "--checkpoint", str(tmp_path / name), "--debug-checkpoint", "", "--vehicles", "0", "--walkers", "0",
         "--no-progress", "--no-report", *extra]
    )  # fmt: skip
    assert code == 0
    return json.loads((tmp_path / name).read_text())


def test_a_1_0_agent_runs_under_1_0_rules_and_writes_a_1_0_results_file(tmp_path):
    agent = tmp_path / "v1_agent.py"
    agent.write_text(V1_AGENT)
    routes = tmp_path / "routes.xml"
    routes.write_text(route_xml([("1", "OccTown01", STRAIGHT), ("2", "OccTown01", SHORT)], fmt="1.0"))
    data = _run(tmp_path, agent, routes, "v1.json")  # 1.0 rules: the route file's format
    ck = data["_checkpoint"]
    assert [r["route_id"] for r in ck["records"]] == ["RouteScenario_1", "RouteScenario_2"]
    assert [r["status"] for r in ck["records"]] == ["Completed", "Completed"]
    assert "num_infractions" not in ck["records"][0]
    assert ck["records"][0]["meta"]["route_length"] == 30.0  # the keypoints' distance
    assert 0 < ck["records"][0]["meta"]["duration_game"] < int(0.8 * 31 + 5)
    assert set(ck["global_record"]) == {"route_id", "index", "status", "infractions", "scores", "meta",
                                        "scores_std_dev"}  # fmt: skip
    assert data["entry_status"] == "Finished" and data["eligible"] is True
    assert len(data["values"]) == 12 and data["values"][0] == "100.000"
    assert list(json.loads((tmp_path / "v1.json").read_text())) == sorted(data)

    # the same agent under 2.x rules: Agent(host, port, debug) does not fit its __init__, as in CARLA's 2.x
    data = _run(tmp_path, agent, routes, "v2.json", "--leaderboard", "2.0")
    assert [r["status"] for r in data["_checkpoint"]["records"]] == ["Failed - Agent couldn't be set up"] * 2
    assert [r["route_id"] for r in data["_checkpoint"]["records"]] == [
        "RouteScenario_1_rep0",
        "RouteScenario_2_rep0",
    ]


def test_2x_agents_also_get_game_time_from_zero_every_route(tmp_path):
    agent = tmp_path / "v2_agent.py"
    agent.write_text(
        V1_AGENT.replace(
            "    def __init__(self, path_to_conf_file):\n", "    def _unused(self, path_to_conf_file):\n"
        ).replace("        assert self._global_plan is None  # 1.0 gives the plan after set-up\n", "")
    )
    routes = tmp_path / "routes.xml"
    routes.write_text(route_xml([("1", "OccTown01", SHORT), ("2", "OccTown01", SHORT)], fmt="2.0"))
    data = _run(tmp_path, agent, routes, "v2.json")  # a 2.0 file: 2.x rules
    recs = data["_checkpoint"]["records"]
    assert [r["status"] for r in recs] == [
        "Perfect",
        "Perfect",
    ]  # run_step's timestamp checks held on route 2
    assert recs[0]["meta"]["duration_game"] == recs[1]["meta"]["duration_game"]


def _straight(n: int) -> tuple[list, list]:
    route = [(carla.Transform(carla.Location(float(i), 0, 0)), RoadOption.LANEFOLLOW) for i in range(n)]
    gps = [({"lat": 0.0, "lon": i * 1e-5, "z": 0.0}, o) for i, (_, o) in enumerate(route)]
    return gps, route


def test_plan_downsampling_per_version():
    gps, route = _straight(301)
    v1 = AutonomousAgent("")  # 1.0's constructor: (path_to_conf_file)
    v2 = AutonomousAgent("localhost", 2000, 0)
    for a in (v1, v2):
        a.set_global_plan(gps, route)
    xs = [t.location.x for t, _ in v1._global_plan_world_coord]
    assert xs == [0.0, 52.0, 104.0, 156.0, 208.0, 260.0, 300.0]  # a point once more than 50 m were travelled
    assert [t.location.x for t, _ in v2._global_plan_world_coord] == [0.0, 202.0, 300.0]


def test_a_sensor_without_data_is_a_simulation_crash_with_the_empty_global_record(tmp_path):
    """As 2.x: SensorReceivedNoData is not the agent's fault; the run stops as Crashed, global record {}."""
    agent = tmp_path / "ghost_agent.py"
    agent.write_text(
        V1_AGENT.replace("    def __init__(self, path_to_conf_file):\n", "    def _unused(self, path_to_conf_file):\n")
        .replace("        assert self._global_plan is None  # 1.0 gives the plan after set-up\n", "")
        .replace(
            "        self.first_timestamp = None\n",
            "        self.first_timestamp = None\n"
            "        self.sensor_interface.register_sensor('GHOST', 'sensor.other.gnss')  # never attached\n",
        )
    )
    routes = tmp_path / "routes.xml"
    routes.write_text(route_xml([("1", "OccTown01", SHORT), ("2", "OccTown01", SHORT)], fmt="2.0"))
    code = main(
        ["--agent", str(agent), "--routes", str(routes), "--checkpoint", str(tmp_path / "c.json"),
         "--debug-checkpoint", "", "--vehicles", "0", "--walkers", "0", "--no-progress", "--no-report"]
    )  # fmt: skip
    assert code == 1
    data = json.loads((tmp_path / "c.json").read_text())
    assert [r["status"] for r in data["_checkpoint"]["records"]] == ["Failed - Simulation crashed"]
    assert data["entry_status"] == "Crashed" and data["eligible"] is False
    assert data["_checkpoint"]["global_record"] == {} and data["values"] == [] and data["labels"] == []
    assert data["_checkpoint"]["progress"] == [1, 2]


SIX_CAMERA_AGENT = """
import carla
from leaderboard.autoagents import autonomous_agent


def get_entry_point():
    return 'SixCameras'


class SixCameras(autonomous_agent.AutonomousAgent):
    def setup(self, path_to_conf_file):
        self.track = autonomous_agent.Track.SENSORS

    def sensors(self):
        return [{'type': 'sensor.camera.rgb', 'id': f'CAM{i}', 'x': 0.0, 'y': 0.0, 'z': 1.6, 'roll': 0.0,
                 'pitch': 0.0, 'yaw': 60.0 * i, 'width': 64, 'height': 36, 'fov': 70} for i in range(6)]

    def run_step(self, input_data, timestamp):
        return carla.VehicleControl()
"""


def test_six_cameras_under_1_0_rules_are_refused_with_the_way_out(tmp_path, capsys):
    """1.0 allows four RGB cameras (as CARLA's 1.0 evaluator); the one-line error names --leaderboard 2.0."""
    agent = tmp_path / "six.py"
    agent.write_text(SIX_CAMERA_AGENT)
    routes = tmp_path / "routes.xml"
    routes.write_text(route_xml([("1", "OccTown01", SHORT)], fmt="1.0"))
    main(["--agent", str(agent), "--routes", str(routes), "--checkpoint", str(tmp_path / "r.json"),
          "--debug-checkpoint", "", "--vehicles", "0", "--walkers", "0", "--no-progress", "--no-report"])  # fmt: skip
    err = capsys.readouterr().err
    assert "sensors are invalid" in err and "--leaderboard 2.0" in err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["entry_status"] != "Finished"
