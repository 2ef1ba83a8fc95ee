import math

import pytest

from sim.geo import geo_reference, gnss_to_location, location_to_gnss
from sim.sensors import SensorConfigError, nuscenes_rig, rig_sensor_dicts, validate_sensors


def test_gnss_round_trip_and_north_is_minus_y():
    lat, lon, alt = location_to_gnss(0.0, -1000.0, 0.0, 49.0, 8.0)
    lat0, lon0, _ = location_to_gnss(0.0, 0.0, 0.0, 49.0, 8.0)
    assert lat > lat0 and math.isclose(lon, lon0)  # moving to -y goes north
    assert lat - lat0 == pytest.approx(1000.0 / 111_320, rel=0.02)  # ~111 km per degree of latitude
    x, y, z = gnss_to_location(*location_to_gnss(123.4, -56.7, 8.9, 49.0, 8.0), 49.0, 8.0)
    assert (x, y, z) == pytest.approx((123.4, -56.7, 8.9), abs=1e-6)


def test_geo_reference_parses_proj_string():
    assert geo_reference("<geoReference><![CDATA[+proj=tmerc +lat_0=49.0 +lon_0=8.5 +k=1]]></geoReference>") == (49.0, 8.5)
    assert geo_reference("<header/>") == (42.0, 2.0)  # the leaderboard's default reference


def test_rig_is_valid_and_matches_nuscenes_fovs():
    validate_sensors(rig_sensor_dicts())
    rig = {c.id: c for c in nuscenes_rig(1600, 900)}
    assert rig["CAM_BACK"].fov == 110 and rig["CAM_FRONT"].fov == 70
    assert rig["CAM_FRONT"].focal == pytest.approx(1600 / (2 * math.tan(math.radians(35))))


@pytest.mark.parametrize("bad, needle", [
    ([{"type": "sensor.camera.thermal", "id": "T"}], "sensor.camera.thermal"),
    ([{"type": "sensor.camera.rgb", "id": "A", "x": 3.5}], "3.50 m"),
    ([{"type": "sensor.camera.rgb", "id": "A"}, {"type": "sensor.other.imu", "id": "A"}], "'A'"),
    ([{"type": "sensor.camera.rgb", "id": f"C{i}"} for i in range(9)], "9 RGB cameras"),
    ([{"type": "sensor.camera.rgb", "id": "A", "fov": 200}], "fov 200"),
])
def test_bad_sensor_dicts_name_the_value(bad, needle):
    with pytest.raises(SensorConfigError) as err:
        validate_sensors(bad)
    assert needle in str(err.value) and "\n" not in str(err.value)
