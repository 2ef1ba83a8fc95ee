"""Closed-loop runs of leaderboard/run.py on the embedded simulator (tiny routes on the built-in town)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leaderboard.run import main
from tests.leaderboard.conftest import CRASHING_AGENT, SHORT, SLOW_AGENT, STRAIGHT, route_xml

# Every key of the official leaderboard results JSON (leaderboard 2.0 statistics manager).
TOP_KEYS = {"_checkpoint", "entry_status", "eligible", "sensors", "values", "labels"}
CHECKPOINT_KEYS = {"global_record", "progress", "records"}
RECORD_KEYS = {"index", "route_id", "status", "num_infractions", "infractions", "scores", "meta"}
INFRACTION_KEYS = {
    "collisions_layout",
    "collisions_pedestrian",
    "collisions_vehicle",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "min_speed_infractions",
    "yield_emergency_vehicle_infractions",
    "scenario_timeouts",
    "route_dev",
    "vehicle_blocked",
    "route_timeout",
}
GLOBAL_KEYS = {"index", "route_id", "status", "infractions", "scores_mean", "scores_std_dev", "meta"}


def run(
    tmp_path: Path,
    agent: Path | str,
    routes: Path | str,
    *extra: str,
    checkpoint: str = "res.json",
    leaderboard: str = "2.0",
) -> int:
    """leaderboard/run.py under 2.x rules unless told (the route files here are 1.0 files)."""
    return main(
        [
            "--leaderboard",
            leaderboard,
            "--agent",
            str(agent),
            "--routes",
            str(routes),
            "--checkpoint",
            str(tmp_path / checkpoint),
            "--debug-checkpoint",
            str(tmp_path / "live.txt"),
            "--vehicles",
            "3",
            "--walkers",
            "0",
            "--no-progress",
            *extra,
        ]
    )


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    p = tmp_path / "routes.xml"
    p.write_text(route_xml([("1", "OccTown01", STRAIGHT), ("2", "OccTown01", SHORT)]))
    return p


def test_carla_contract_agent_runs_unchanged(tmp_path, slow_agent_file, routes_file):
    assert run(tmp_path, slow_agent_file, routes_file) == 0
    data = json.loads((tmp_path / "res.json").read_text())
    assert set(data) == TOP_KEYS
    ck = data["_checkpoint"]
    assert set(ck) == CHECKPOINT_KEYS and ck["progress"] == [2, 2]
    assert set(ck["global_record"]) == GLOBAL_KEYS
    assert set(ck["global_record"]["infractions"]) == INFRACTION_KEYS
    assert set(ck["global_record"]["meta"]) == {
        "total_length",
        "duration_game",
        "duration_system",
        "exceptions",
    }
    assert len(data["values"]) == len(data["labels"]) == 15
    assert data["entry_status"] == "Finished" and data["eligible"] is True
    assert data["sensors"] == ["carla_camera", "carla_imu", "carla_gnss", "carla_speedometer"]
    assert [r["route_id"] for r in ck["records"]] == ["RouteScenario_1_rep0", "RouteScenario_2_rep0"]
    for r in ck["records"]:
        assert set(r) == RECORD_KEYS and set(r["infractions"]) == INFRACTION_KEYS
        assert set(r["scores"]) == {"score_route", "score_penalty", "score_composed"}
        assert set(r["meta"]) == {"route_length", "duration_game", "duration_system"}
        assert r["scores"]["score_route"] == 100.0  # drove the straight route to its end
        assert r["status"] in ("Perfect", "Completed")
        assert not any(r["infractions"][k] for k in INFRACTION_KEYS - {"min_speed_infractions"})
    assert ck["records"][0]["meta"]["route_length"] == pytest.approx(30.0, abs=1.5)
    report = tmp_path / "res_report.md"
    assert report.exists() and "RouteScenario_2_rep0" in report.read_text()
    assert (tmp_path / "res_report" / "RouteScenario_1_rep0.png").stat().st_size > 10_000


# Every sensor type the CARLA leaderboard allows, declared as its own dummy_agent.py does (MAP track).
ALL_SENSORS = """[
            {'type': 'sensor.camera.rgb', 'x': 0.7, 'y': 0.0, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0, 'yaw': 0.0,
             'width': 160, 'height': 90, 'fov': 100, 'id': 'Center'},
            {'type': 'sensor.lidar.ray_cast', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0,
             'yaw': -45.0, 'id': 'LIDAR'},
            {'type': 'sensor.other.radar', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0,
             'yaw': -45.0, 'fov': 30, 'id': 'RADAR', 'horizontal_fov': 30.0, 'vertical_fov': 30.0},
            {'type': 'sensor.other.gnss', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'id': 'GPS'},
            {'type': 'sensor.other.imu', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0,
             'yaw': -45.0, 'id': 'IMU'},
            {'type': 'sensor.opendrive_map', 'reading_frequency': 1, 'id': 'OpenDRIVE'},
            {'type': 'sensor.speedometer', 'reading_frequency': 20, 'id': 'SPEED'},
        ]
        return ["""


def test_an_agent_with_every_leaderboard_sensor_type_runs(tmp_path):
    head, tail = SLOW_AGENT.split("        return [", 1)
    body = head + "        sensors = " + ALL_SENSORS.removesuffix("        return [") + "        return sensors\n"
    body += tail[tail.index("    def run_step"):]
    body = body.replace("Track.SENSORS", "Track.MAP").replace(
        "        assert self._global_plan and",
        "        assert input_data['LIDAR'][1].shape[1] == 4 and input_data['RADAR'][1].shape[1] == 4\n"
        "        assert input_data['RADAR'][1].dtype.name == 'float32' and len(input_data['RADAR'][1]) <= 75\n"
        "        assert '<OpenDRIVE' in input_data['OpenDRIVE'][1]['opendrive']\n"
        "        assert self._global_plan and",
    )
    agent = tmp_path / "all_sensors_agent.py"
    agent.write_text(body)
    routes = tmp_path / "routes.xml"
    routes.write_text(route_xml([("1", "OccTown01", SHORT)]))
    assert run(tmp_path, agent, routes, "--track", "MAP") == 0
    data = json.loads((tmp_path / "res.json").read_text())
    assert data["_checkpoint"]["records"][0]["status"] in ("Perfect", "Completed")
    assert set(data["sensors"]) >= {"carla_camera", "carla_lidar", "carla_radar", "carla_opendrive_map"}


def test_crashing_agent_fails_only_its_own_route(tmp_path):
    agent = tmp_path / "crash_agent.py"
    agent.write_text(CRASHING_AGENT)
    routes = tmp_path / "routes.xml"
    routes.write_text(
        route_xml([("1", "OccTown01", STRAIGHT), ("2", "OccTown01", SHORT), ("3", "OccTown01", STRAIGHT)])
    )
    assert run(tmp_path, agent, routes) == 0
    data = json.loads((tmp_path / "res.json").read_text())
    status = [r["status"] for r in data["_checkpoint"]["records"]]
    assert status[1] == "Failed - Agent crashed"
    assert status[0] in ("Perfect", "Completed") and status[2] in ("Perfect", "Completed")
    assert data["entry_status"] == "Finished"
    g = data["_checkpoint"]["global_record"]
    assert g["meta"]["exceptions"] == [["RouteScenario_2_rep0", 1, "Failed - Agent crashed"]]


def test_a_hanging_agent_times_out_and_fails_only_its_own_route(tmp_path):
    agent = tmp_path / "hang_agent.py"
    agent.write_text(CRASHING_AGENT.replace("raise RuntimeError('boom')", "import time; time.sleep(30)"))
    routes = tmp_path / "routes.xml"
    routes.write_text(route_xml([("1", "OccTown01", SHORT), ("2", "OccTown01", STRAIGHT)]))
    assert run(tmp_path, agent, routes, "--timeout", "2") == 0
    recs = json.loads((tmp_path / "res.json").read_text())["_checkpoint"]["records"]
    assert recs[0]["status"] == "Failed - Agent crashed"  # as the leaderboard: a step past --timeout
    assert recs[0]["meta"]["duration_system"] < 20  # interrupted, not waited out
    assert recs[1]["status"] in ("Perfect", "Completed")


def test_bad_inputs_give_one_line_and_keep_results(tmp_path, slow_agent_file, routes_file, capsys):
    assert run(tmp_path, slow_agent_file, routes_file, "--routes-subset", "1") == 0
    kept = (tmp_path / "res.json").read_bytes()
    capsys.readouterr()

    def error_line(*args: str, agent=slow_agent_file, routes=routes_file) -> str:
        assert run(tmp_path, agent, routes, *args) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("error: "), err
        assert (tmp_path / "res.json").read_bytes() == kept
        return err[0]

    assert "does not exist" in error_line(routes=tmp_path / "missing.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<routes><route id='0' town='OccTown01'>")
    assert "not valid XML" in error_line(routes=bad)
    unknown = tmp_path / "unknown.xml"
    unknown.write_text(route_xml([("0", "Town99", STRAIGHT)]))
    assert "Town99" in error_line(routes=unknown)
    no_entry = tmp_path / "no_entry.py"
    no_entry.write_text(SLOW_AGENT.replace("def get_entry_point", "def entry_point"))
    assert "get_entry_point" in error_line(agent=no_entry)
    assert "route subset" in error_line("--routes-subset", "9")
    assert "--traffic-speed" in error_line("--traffic-speed", "0")
    from leaderboard.registry import REGISTERED_AGENTS

    if not REGISTERED_AGENTS["occvla"][1].exists():
        assert "agent 'occvla' is not available" in error_line(agent="occvla")
    else:  # no checkpoint: one line before any route, not a failed set-up on every route
        (tmp_path / "empty_run").mkdir()
        line = error_line("--agent-config", str(tmp_path / "empty_run"), agent="occvla")
        assert "cannot be set up" in line and "model.safetensors" in line
        assert "neither a run directory" in error_line("--agent-config", str(tmp_path / "nothing"), agent="occvla")

    # Sensors failing validation on the 2nd route: it fails as the leaderboard's, the run stops there and the
    # route finished before it keeps its record.
    bad_sensors = tmp_path / "bad_sensors.py"
    bad_sensors.write_text(
        SLOW_AGENT.replace(
            "        return [",
            "        far = self._global_plan_world_coord[-1][0].location.y < 232.0\n        return [",
        ).replace("'x': 1.3, 'y': 0.0, 'z': 2.3", "'x': 4.0 if far else 1.3, 'y': 0.0, 'z': 2.3")
    )
    three = tmp_path / "three.xml"
    three.write_text(
        route_xml([("1", "OccTown01", STRAIGHT), ("2", "OccTown01", SHORT), ("3", "OccTown01", STRAIGHT)])
    )
    assert run(tmp_path, bad_sensors, three, checkpoint="rejected.json") == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if "Max allowed radius" in ln]
    assert len(err) == 1
    data = json.loads((tmp_path / "rejected.json").read_text())
    recs = data["_checkpoint"]["records"]
    assert [r["route_id"] for r in recs] == ["RouteScenario_1_rep0", "RouteScenario_2_rep0"]
    assert recs[0]["scores"]["score_route"] == 100.0
    assert recs[1]["status"] == "Failed - Agent's sensors were invalid"
    assert data["entry_status"] == "Rejected" and data["_checkpoint"]["progress"] == [2, 3]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unreachable_carla_server_is_one_line_and_a_crashed_entry(
    tmp_path, slow_agent_file, routes_file, capsys, workers
):
    args = ("--simulator", "carla", "--port", str(_free_port()), "--timeout", "1", "--workers", workers)
    assert run(tmp_path, slow_agent_file, routes_file, *args) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "Ray" not in ln]
    assert err[0].startswith("error: cannot reach a CARLA server at localhost:"), err
    assert not any("Traceback" in ln for ln in err), err
    data = json.loads((tmp_path / "res.json").read_text())
    assert data["entry_status"] == "Crashed" and not data["eligible"]
    assert data["_checkpoint"]["progress"] == [0, 2]


def test_a_route_worker_dying_at_start_is_one_line_and_a_crashed_entry(tmp_path, slow_agent_file, routes_file, capsys):
    # the agent module kills the process that imports it inside a Ray actor (the driver imports it too, and lives)
    dying = tmp_path / "dying_agent.py"
    dying.write_text(
        "import os\nimport ray\n"
        "if ray.is_initialized() and ray.get_runtime_context().get_actor_id():\n    os._exit(3)\n"
        + slow_agent_file.read_text()
    )
    assert run(tmp_path, dying, routes_file, "--workers", "2") == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert err == ["error: a route worker died while starting its simulator (ActorDiedError)"], err
    data = json.loads((tmp_path / "res.json").read_text())
    assert data["entry_status"] == "Crashed" and data["_checkpoint"]["progress"] == [0, 2]


def test_a_route_worker_dying_mid_route_crashes_that_route_and_keeps_the_others(
    tmp_path, slow_agent_file, routes_file, capsys
):
    # route 2 (the short one) kills its worker's process on its 5th step; route 1 runs on the other worker
    dying = tmp_path / "dying_agent.py"
    dying.write_text(
        slow_agent_file.read_text().replace(
            "    def run_step(self, input_data, timestamp):\n",
            "    def run_step(self, input_data, timestamp):\n"
            "        import os\n"
            "        self._n = getattr(self, '_n', 0) + 1\n"
            "        if self._n == 5 and self._global_plan_world_coord[-1][0].location.y < 232.0:\n"
            "            os._exit(3)\n",
        )
    )
    assert "os._exit" in dying.read_text()
    assert run(tmp_path, dying, routes_file, "--workers", "2") == 1
    err = capsys.readouterr().err.splitlines()
    assert [ln for ln in err if "its route worker died" in ln] == [
        "Failed - Simulation crashed: RouteScenario_2_rep0: its route worker died (ActorDiedError: killed, out of "
        "memory or a crash)"
    ], err
    data = json.loads((tmp_path / "res.json").read_text())
    recs = {r["route_id"]: r for r in data["_checkpoint"]["records"]}
    assert recs["RouteScenario_1_rep0"]["scores"]["score_route"] == 100.0
    assert recs["RouteScenario_2_rep0"]["status"] == "Failed - Simulation crashed"
    assert data["entry_status"] == "Crashed"


def test_ray_workers_give_the_records_of_a_single_process(tmp_path, slow_agent_file, routes_file):
    assert run(tmp_path, slow_agent_file, routes_file, checkpoint="one.json") == 0
    assert run(tmp_path, slow_agent_file, routes_file, "--workers", "2", checkpoint="two.json") == 0

    def records(name: str) -> list[dict]:
        recs = json.loads((tmp_path / name).read_text())["_checkpoint"]["records"]
        for r in recs:
            r["meta"].pop("duration_system")
        return recs

    one, two = records("one.json"), records("two.json")
    assert [r["route_id"] for r in two] == ["RouteScenario_1_rep0", "RouteScenario_2_rep0"]  # in route order
    assert two == one
    assert (tmp_path / "two_report" / "RouteScenario_2_rep0.png").is_file()  # plots drawn on the workers
