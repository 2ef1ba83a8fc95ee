"""The agent base class, sensor validation and agent loading behave as the CARLA leaderboard's."""

from __future__ import annotations

import carla
import pytest

from leaderboard.autoagents.agent_wrapper import validate_sensor_configuration
from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track
from leaderboard.envs.sensor_interface import SensorConfigurationInvalid, SensorReceivedNoData
from leaderboard.registry import AgentLoadError, load_agent_class
from leaderboard.utils.route_manipulation import downsample_route
from sim.route_planner import RoadOption
from tests.leaderboard.conftest import SLOW_AGENT

CAM = {
    "type": "sensor.camera.rgb",
    "x": 0.7,
    "y": 0.0,
    "z": 1.6,
    "roll": 0.0,
    "pitch": 0.0,
    "yaw": 0.0,
    "width": 64,
    "height": 48,
    "fov": 90,
    "id": "Center",
}


def test_base_agent_contract():
    agent = AutonomousAgent("localhost", 2000, False)
    assert agent.track == Track.SENSORS and agent.sensors() == [] and agent.get_ros_version() == -1
    route = [(carla.Transform(carla.Location(float(i), 0, 0)), RoadOption.LANEFOLLOW) for i in range(500)]
    gps = [({"lat": 0.0, "lon": i * 1e-5, "z": 0.0}, o) for i, (_, o) in enumerate(route)]
    agent.set_global_plan(gps, route)
    ids = downsample_route(route, 200)
    assert len(agent._global_plan_world_coord) == len(agent._global_plan) == len(ids) < 10
    assert agent._global_plan[-1] == gps[-1]
    agent.sensor_interface.register_sensor("Center", "sensor.camera.rgb")
    with pytest.raises(SensorReceivedNoData):
        agent()
    agent.sensor_interface.update_all({"Center": (3, "data")}, 3, 0.15)
    control = agent()
    assert isinstance(control, carla.VehicleControl) and control.manual_gear_shift is False


@pytest.mark.parametrize(
    "sensors, message",
    [
        ([CAM, dict(CAM)], "Duplicated sensor tag"),
        ([dict(CAM, id=f"c{i}") for i in range(9)], "Too many sensor.camera.rgb"),
        ([dict(CAM, x=3.5)], "Max allowed radius is 3.0m"),
        ([dict(CAM, type="sensor.camera.thermal")], "Illegal sensor 'sensor.camera.thermal'"),
        (
            [{"type": "sensor.opendrive_map", "reading_frequency": 1, "id": "map"}],
            "Illegal sensor 'sensor.opendrive_map'",
        ),
    ],
)
def test_sensor_validation_rejects(sensors, message):
    with pytest.raises(SensorConfigurationInvalid, match=message):
        validate_sensor_configuration(sensors, Track.SENSORS, "SENSORS")


def test_sensor_validation_accepts_and_checks_track():
    validate_sensor_configuration([CAM, {"type": "sensor.speedometer", "id": "s"}], Track.SENSORS, "SENSORS")
    validate_sensor_configuration(
        [{"type": "sensor.opendrive_map", "reading_frequency": 1, "id": "m"}], Track.MAP, "MAP"
    )
    with pytest.raises(SensorConfigurationInvalid, match="wrong track"):
        validate_sensor_configuration([CAM], Track.SENSORS, "MAP")


def test_agent_loading(tmp_path):
    good = tmp_path / "good_agent.py"
    good.write_text(SLOW_AGENT)
    cls = load_agent_class(str(good))
    assert cls.__name__ == "SlowAgent" and issubclass(cls, AutonomousAgent)
    no_entry = tmp_path / "no_entry.py"
    no_entry.write_text("x = 1\n")
    with pytest.raises(AgentLoadError, match="has no module-level get_entry_point"):
        load_agent_class(str(no_entry))
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def get_entry_point():\n    return 'Nope'\n")
    with pytest.raises(AgentLoadError, match="returned 'Nope'"):
        load_agent_class(str(wrong))
    with pytest.raises(AgentLoadError, match="neither a registered name"):
        load_agent_class(str(tmp_path / "missing.py"))
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    with pytest.raises(AgentLoadError, match="failed to import: ModuleNotFoundError"):
        load_agent_class(str(broken))


def test_registered_names():
    from leaderboard.registry import REGISTERED_AGENTS

    assert set(REGISTERED_AGENTS) == {"expert", "occvla", "plan-follower"}
    for name, (_, path, _) in REGISTERED_AGENTS.items():
        if not path.exists():
            with pytest.raises(AgentLoadError, match=f"agent '{name}' is not available"):
                load_agent_class(name)
