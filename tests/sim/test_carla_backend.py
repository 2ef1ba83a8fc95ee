"""The real-CARLA backend. Without a server only the connection error can be checked here; the
`carla_server` tests run against a live server (`pytest -m carla_server --carla-port 2000`)."""

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
