"""Shared fixtures: tiny routes on the built-in town and agent files written to the CARLA leaderboard contract."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    """A file of scripts/ (not a package) imported as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SHARED = Path(__file__).resolve().parents[3] / "shared" / "carla"
LB1 = SHARED / "leaderboard-1.0"
MAPS = SHARED / "maps"

# A straight 30 m stretch of OccTown01 (road 20, lane -1, heading +y), used for closed-loop tests.
STRAIGHT = ((98.25, 209.5), (98.25, 239.5))
SHORT = ((98.25, 209.5), (98.25, 229.5))  # the crashing agent fails on routes ending before y=232

SLOW_AGENT = '''
import carla
from leaderboard.autoagents import autonomous_agent


def get_entry_point():
    return 'SlowAgent'


class SlowAgent(autonomous_agent.AutonomousAgent):
    """Written exactly to the CARLA leaderboard contract: sensors only, drives slowly straight ahead."""

    def setup(self, path_to_conf_file):
        self.track = autonomous_agent.Track.SENSORS

    def sensors(self):
        return [
            {'type': 'sensor.camera.rgb', 'x': 1.3, 'y': 0.0, 'z': 2.3, 'roll': 0.0, 'pitch': 0.0, 'yaw': 0.0,
             'width': 160, 'height': 90, 'fov': 100, 'id': 'Center'},
            {'type': 'sensor.other.imu', 'x': 0.0, 'y': 0.0, 'z': 0.0, 'roll': 0.0, 'pitch': 0.0, 'yaw': 0.0,
             'sensor_tick': 0.05, 'id': 'IMU'},
            {'type': 'sensor.other.gnss', 'x': 0.0, 'y': 0.0, 'z': 0.0, 'roll': 0.0, 'pitch': 0.0, 'yaw': 0.0,
             'sensor_tick': 0.01, 'id': 'GPS'},
            {'type': 'sensor.speedometer', 'reading_frequency': 20, 'id': 'SPEED'},
        ]

    def run_step(self, input_data, timestamp):
        frame, image = input_data['Center']
        assert image.shape == (90, 160, 4) and image.dtype.name == 'uint8'
        assert len(input_data['GPS'][1]) == 3 and len(input_data['IMU'][1]) == 7
        assert self._global_plan and self._global_plan_world_coord
        speed = input_data['SPEED'][1]['speed']
        control = carla.VehicleControl()
        control.steer = 0.0
        control.throttle = 0.5 if speed < 5.0 else 0.0
        control.brake = 0.0
        return control
'''

CRASHING_AGENT = (
    SLOW_AGENT.replace("'SlowAgent'", "'CrashAgent'")
    .replace("class SlowAgent", "class CrashAgent")
    .replace(
        "        speed = input_data['SPEED'][1]['speed']",
        "        if timestamp > 0.5 and self._global_plan_world_coord[-1][0].location.y < 232.0:\n"
        "            raise RuntimeError('boom')\n"
        "        speed = input_data['SPEED'][1]['speed']",
    )
)


def route_xml(routes: list[tuple[str, str, tuple]], fmt: str = "1.0") -> str:
    """A route file of (id, town, ((x0, y0), (x1, y1))) routes."""
    out = ['<?xml version="1.0"?>', "<routes>"]
    for rid, town, ((x0, y0), (x1, y1)) in routes:
        out.append(f'  <route id="{rid}" town="{town}">')
        if fmt == "1.0":
            out.append(f'    <waypoint x="{x0}" y="{y0}" z="0.0" pitch="0" roll="0" yaw="90"/>')
            out.append(f'    <waypoint x="{x1}" y="{y1}" z="0.0" pitch="0" roll="0" yaw="90"/>')
        else:
            out.append(
                f'    <waypoints><position x="{x0}" y="{y0}" z="0"/><position x="{x1}" y="{y1}" z="0"/>'
                "</waypoints>"
            )
        out.append("  </route>")
    out.append("</routes>")
    return "\n".join(out) + "\n"


@pytest.fixture
def slow_agent_file(tmp_path: Path) -> Path:
    p = tmp_path / "slow_agent.py"
    p.write_text(SLOW_AGENT)
    return p


def requires_shared(*paths: Path):
    return pytest.mark.skipif(not all(p.exists() for p in paths), reason="shared CARLA data not present")
