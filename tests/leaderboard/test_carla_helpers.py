"""Agents importing scenario_runner's CarlaDataProvider / GameTime and CARLA's RoadOption run unchanged."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leaderboard import carla_helpers
from leaderboard.run import main
from tests.leaderboard.conftest import STRAIGHT, route_xml

# An agent as published leaderboard agents are written: helpers from their usual module paths. It is privileged
# only so that it can compare what the helpers say with the simulator's own ground truth, every step.
HELPER_AGENT = """
import math

import carla
from agents.navigation.local_planner import RoadOption
from srunner.scenariomanager.carla_data_provider import CarlaDataProvider
from srunner.scenariomanager.timer import GameTime

from leaderboard.autoagents import autonomous_agent


def get_entry_point():
    return 'HelperAgent'


class HelperAgent(autonomous_agent.AutonomousAgent):
    privileged = True

    def setup(self, path_to_conf_file):
        self.track = autonomous_agent.Track.SENSORS
        self.hero = CarlaDataProvider.get_hero_actor()  # available from set-up on, as in CARLA
        assert self.hero is not None and self.hero.attributes['role_name'] == 'hero'
        self.steps = 0

    def set_privileged(self, sim, route):
        self.sim = sim

    def sensors(self):
        return [{'type': 'sensor.speedometer', 'reading_frequency': 20, 'id': 'SPEED'}]

    def run_step(self, input_data, timestamp):
        ego = self.sim.ground_truth().ego
        t = self.hero.get_transform()
        same = lambda a, b: all(math.isclose(x, y, abs_tol=1e-3) for x, y in zip(a, b))  # carla floats: 32 bit
        assert same((t.location.x, t.location.y, t.rotation.yaw), (ego.pose.x, ego.pose.y, ego.pose.yaw))
        assert CarlaDataProvider.get_location(self.hero).distance(t.location) == 0.0
        v = self.hero.get_velocity()
        assert same((v.x, v.y), (ego.vx, ego.vy))
        assert math.isclose(CarlaDataProvider.get_velocity(self.hero), math.hypot(ego.vx, ego.vy), abs_tol=1e-3)
        assert GameTime.get_time() == timestamp and GameTime.get_frame() == input_data['SPEED'][0]
        assert CarlaDataProvider.get_map().name == self.sim.map.name
        world = CarlaDataProvider.get_world()
        lights = world.get_actors().filter('*traffic_light*')
        assert all(l.get_state() in (carla.TrafficLightState.Red, carla.TrafficLightState.Yellow,
                                     carla.TrafficLightState.Green, carla.TrafficLightState.Off) for l in lights)
        assert len(world.get_actors().filter('vehicle.*')) == 1 + sum(
            a.category == 'vehicle' for a in self.sim.ground_truth().actors)
        assert all(isinstance(o, RoadOption) for _, o in self._global_plan_world_coord)
        assert RoadOption.LANEFOLLOW.value == 4 and RoadOption.CHANGELANELEFT.value == 5
        self.steps += 1
        control = carla.VehicleControl()
        control.throttle = 0.5 if input_data['SPEED'][1]['speed'] < 5.0 else 0.0
        return control
"""


@pytest.fixture
def fresh_helpers():
    carla_helpers.uninstall()
    yield
    carla_helpers.uninstall()


def test_an_agent_using_the_carla_helpers_runs_unchanged(tmp_path, fresh_helpers):
    agent = tmp_path / "helper_agent.py"
    agent.write_text(HELPER_AGENT)
    routes = tmp_path / "routes.xml"
    routes.write_text(route_xml([("1", "OccTown01", STRAIGHT)]))
    code = main(
        [
            "--agent",
            str(agent),
            "--routes",
            str(routes),
            "--checkpoint",
            str(tmp_path / "r.json"),
            "--debug-checkpoint",
            "",
            "--vehicles",
            "3",
            "--walkers",
            "0",
            "--no-progress",
            "--no-report",
        ]
    )
    assert code == 0
    rec = json.loads((tmp_path / "r.json").read_text())["_checkpoint"]["records"][0]
    assert rec["status"] == "Completed" and rec["scores"]["score_route"] == 100.0  # every assertion held


def test_an_unsupported_call_is_one_line_naming_it(fresh_helpers):
    carla_helpers.install()
    from srunner.scenariomanager.carla_data_provider import CarlaDataProvider

    with pytest.raises(NotImplementedError, match=r"^CarlaDataProvider\.request_new_actor is not supported"):
        CarlaDataProvider.request_new_actor("vehicle.audi.a2", None)
    with pytest.raises(ImportError, match="LocalPlanner"):
        from agents.navigation.local_planner import LocalPlanner  # noqa: F401
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("agents.navigation.global_route_planner")


def test_a_real_installation_is_never_shadowed(tmp_path):
    """A scenario_runner on sys.path wins over ours, submodules included."""
    pkg = tmp_path / "srunner" / "scenariomanager"
    pkg.mkdir(parents=True)
    (tmp_path / "srunner" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "timer.py").write_text("class GameTime:\n    REAL = True\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from leaderboard import carla_helpers; carla_helpers.install()\n"
        "from srunner.scenariomanager.timer import GameTime; assert GameTime.REAL\n"
        "try:\n"
        "    import srunner.scenariomanager.carla_data_provider\n"
        "except ModuleNotFoundError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('served a submodule of a real scenario_runner')\n"
        "from agents.navigation.local_planner import RoadOption; assert RoadOption.LEFT.value == 1\n"
    )
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )
    assert r.returncode == 0, r.stdout + r.stderr
