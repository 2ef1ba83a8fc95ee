"""Weather presets, validation, route-XML dicts and interpolation (sim/weather.py)."""

from __future__ import annotations

import math

import carla
import pytest

from sim.weather import (
    PRESETS,
    WEATHER_FIELDS,
    WeatherError,
    interpolate_weather,
    validate_weather,
    weather_at_route_percentage,
    weather_from_dict,
    weather_from_name,
    weather_to_dict,
)

CARLA_14 = (
    "ClearNoon",
    "CloudyNoon",
    "WetNoon",
    "WetCloudyNoon",
    "MidRainyNoon",
    "HardRainNoon",
    "SoftRainNoon",
    "ClearSunset",
    "CloudySunset",
    "WetSunset",
    "WetCloudySunset",
    "MidRainSunset",
    "HardRainSunset",
    "SoftRainSunset",
)
NIGHTS = (
    "ClearNight",
    "CloudyNight",
    "WetNight",
    "WetCloudyNight",
    "MidRainyNight",
    "HardRainNight",
    "SoftRainNight",
)


@pytest.mark.parametrize("name", CARLA_14 + NIGHTS)
def test_every_carla_preset_by_name(name: str) -> None:
    w = weather_from_name(name)
    assert weather_to_dict(w) == weather_to_dict(getattr(carla.WeatherParameters, name))
    validate_weather(w)


def test_presets_cover_every_named_carla_preset() -> None:
    named = {a for a in dir(carla.WeatherParameters) if a[0].isupper() and a != "Default"}
    assert named == set(PRESETS)


def test_preset_copies_are_independent() -> None:
    w = weather_from_name("ClearNoon")
    w.cloudiness = 99.0
    assert PRESETS["ClearNoon"].cloudiness == carla.WeatherParameters.ClearNoon.cloudiness


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown weather preset 'SunnyMorning'.*ClearNoon"):
        weather_from_name("SunnyMorning")


@pytest.mark.parametrize(
    "field,value",
    [
        ("cloudiness", 101.0),
        ("precipitation", -1.0),
        ("precipitation_deposits", 150.0),
        ("wind_intensity", -5.0),
        ("fog_density", 100.5),
        ("wetness", 200.0),
        ("sun_altitude_angle", 95.0),
        ("sun_altitude_angle", -91.0),
        ("sun_azimuth_angle", 400.0),
        ("fog_distance", -1.0),
        ("fog_falloff", -0.1),
        ("scattering_intensity", -1.0),
        ("mie_scattering_scale", -0.5),
        ("rayleigh_scattering_scale", -0.5),
        ("dust_storm", 101.0),
    ],
)
def test_out_of_range_names_field_and_value(field: str, value: float) -> None:
    w = weather_from_name("ClearNoon")
    setattr(w, field, value)
    with pytest.raises(WeatherError, match=f"{field}={value:g}"):
        validate_weather(w)


def test_non_finite_and_wrong_type() -> None:
    w = weather_from_name("ClearNoon")
    w.fog_distance = math.inf
    with pytest.raises(WeatherError, match="fog_distance=inf"):
        validate_weather(w)
    with pytest.raises(WeatherError, match="dict"):
        validate_weather({"cloudiness": 0})  # type: ignore[arg-type]


def test_dict_round_trip_and_route_xml_strings() -> None:
    for name in ("HardRainNight", "ClearSunset", "DustStorm"):
        w = weather_from_name(name)
        assert weather_to_dict(weather_from_dict(weather_to_dict(w))) == weather_to_dict(w)
    # a leaderboard-2.0 route tag: strings, plus route_percentage, unspecified fields default to 0
    w = weather_from_dict({"route_percentage": "0", "cloudiness": "5.0", "sun_altitude_angle": "45.0"})
    assert (w.cloudiness, w.sun_altitude_angle, w.precipitation) == (5.0, 45.0, 0.0)
    assert set(weather_to_dict(w)) == set(WEATHER_FIELDS)


def test_dict_errors() -> None:
    with pytest.raises(WeatherError, match="unknown weather field 'fogginess'"):
        weather_from_dict({"fogginess": 3})
    with pytest.raises(WeatherError, match="'cloudiness' must be a number, got 'lots'"):
        weather_from_dict({"cloudiness": "lots"})
    with pytest.raises(WeatherError, match="wetness=120"):
        weather_from_dict({"wetness": 120})


def test_interpolation() -> None:
    a, b = weather_from_name("ClearNoon"), weather_from_name("HardRainNight")
    assert weather_to_dict(interpolate_weather(a, b, 0.0)) == weather_to_dict(a)
    assert weather_to_dict(interpolate_weather(a, b, 1.0)) == weather_to_dict(b)
    mid = interpolate_weather(a, b, 0.5)
    assert mid.precipitation == pytest.approx(50.0)
    assert mid.sun_altitude_angle == pytest.approx((45.0 - 90.0) / 2)
    validate_weather(mid)
    # clipped outside [0, 1]; azimuth the short way round
    assert interpolate_weather(a, b, 2.0).precipitation == pytest.approx(100.0)
    a.sun_azimuth_angle, b.sun_azimuth_angle = 350.0, 10.0
    assert interpolate_weather(a, b, 0.5).sun_azimuth_angle % 360.0 == pytest.approx(0.0, abs=1e-4)


def test_route_percentage_keyframes() -> None:
    a, b = weather_from_name("ClearNoon"), weather_from_name("CloudySunset")
    keys = [(100.0, b), (0.0, a)]
    assert weather_at_route_percentage(keys, 0.0).cloudiness == pytest.approx(a.cloudiness)
    assert weather_at_route_percentage(keys, 50.0).cloudiness == pytest.approx(
        (a.cloudiness + b.cloudiness) / 2
    )
    assert weather_at_route_percentage(keys, 150.0).cloudiness == pytest.approx(b.cloudiness)
    with pytest.raises(WeatherError, match="no weather keyframes"):
        weather_at_route_percentage([], 10.0)
