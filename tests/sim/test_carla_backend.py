"""The real-CARLA backend. Without a server only the connection error can be checked here; the
`carla_server` tests run against a live server (`pytest -m carla_server --carla-port 2000`)."""

import math
import os

import carla
import pytest

from sim.factory import make_simulator
from sim.protocol import SimulatorError
from sim.sensors import rig_sensor_dicts


def test_no_server_gives_one_line_error():
    with pytest.raises(SimulatorError) as err:
        make_simulator("carla", host="127.0.0.1", port=2999, timeout=1.0)
    msg = str(err.value)
    assert "127.0.0.1:2999" in msg and "\n" not in msg


def test_unknown_backend_is_named():
    with pytest.raises(SimulatorError, match="unknown simulator 'unity'"):
        make_simulator("unity")


def test_crosswalk_polygons_split_carlas_flat_corner_list():
    from sim.carla.backend import crosswalk_polygons

    square = [(0.0, 0.0), (4.0, 0.0), (4.0, 8.0), (0.0, 8.0)]
    tri = [(10.0, 0.0), (12.0, 0.0), (11.0, 3.0)]
    flat = [carla.Location(x, y, 0.0) for x, y in square + square[:1] + tri + tri[:1]]
    polys = crosswalk_polygons(flat)
    assert [p.shape for p in polys] == [(4, 2), (3, 2)]
    assert polys[1].tolist() == [list(p) for p in tri]
    assert crosswalk_polygons([]) == []


@pytest.mark.carla_server
def test_real_server_ticks_the_rig():
    sim = make_simulator("carla", port=int(os.environ.get("CARLA_PORT", "2000")))
    try:
        cmap = sim.load_town("Town01")
        sim.spawn_ego(cmap.get_spawn_points()[0])
        sim.attach_sensors(rig_sensor_dicts(400, 225))
        sim.set_weather(carla.WeatherParameters.ClearNoon)
        data = sim.tick()
        assert data["CAM_FRONT"][1].shape == (225, 400, 4)
        assert sim.ground_truth().ego.extent[0] > 2.0
    finally:
        sim.close()


def test_sensors_get_the_leaderboards_blueprint_attributes():
    from sim.embedded.radar import RadarSpec
    from sim.sensors import carla_sensor_attributes

    radar = {"type": "sensor.other.radar", "id": "R", "x": 0.7, "y": -0.4, "z": 1.6, "roll": 0.0, "pitch": 0.0,
             "yaw": -45.0, "horizontal_fov": 35.0, "vertical_fov": 20.0}
    attrs = carla_sensor_attributes(radar)
    assert attrs == {"horizontal_fov": "35.0", "vertical_fov": "20.0", "points_per_second": "1500", "range": "100"}
    # the embedded radar reads the same numbers from the dict the agent wrote
    spec = RadarSpec.from_sensor_dict(radar)
    assert (spec.horizontal_fov, spec.vertical_fov, spec.points_per_second, spec.range) == (35.0, 20.0, 1500, 100.0)
    cam = rig_sensor_dicts(320, 180)[0]
    assert carla_sensor_attributes(cam) == {"image_size_x": "320", "image_size_y": "180", "fov": "70.0"}
    lidar = carla_sensor_attributes({"type": "sensor.lidar.ray_cast", "id": "L"})
    assert (lidar["channels"], lidar["range"], lidar["rotation_frequency"]) == ("64", "85", "10")
    assert carla_sensor_attributes({"type": "sensor.speedometer", "id": "S"}) == {}


def test_carla_speedometer_is_the_signed_forward_speed():
    from sim.carla.backend import forward_speed

    assert forward_speed(carla.Vector3D(0.0, 5.0, 0.0), carla.Rotation(yaw=90.0)) == pytest.approx(5.0)
    assert forward_speed(carla.Vector3D(0.0, -5.0, 0.0), carla.Rotation(yaw=90.0)) == pytest.approx(-5.0)  # reversing
    assert forward_speed(carla.Vector3D(3.0, 4.0, 0.0), carla.Rotation(yaw=0.0)) == pytest.approx(3.0)  # sideways slip
    v = carla.Vector3D(math.cos(math.radians(10)) * 2, 0.0, math.sin(math.radians(10)) * 2)
    assert forward_speed(v, carla.Rotation(pitch=10.0)) == pytest.approx(2.0)  # up a slope
