"""Weather: CARLA's presets by name, validation, route-XML dicts and interpolation.

Everything speaks `carla.WeatherParameters` so one weather value drives both backends unchanged. Route files of
the CARLA leaderboard carry `<weather route_percentage="..." cloudiness="..." .../>` tags whose attribute names are
exactly the WeatherParameters fields; leaderboard 2.0 interpolates between them by route percentage, which
`interpolate_weather` does here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import carla

# Every WeatherParameters field, in the constructor's order.
WEATHER_FIELDS: tuple[str, ...] = (
    "cloudiness",
    "precipitation",
    "precipitation_deposits",
    "wind_intensity",
    "sun_azimuth_angle",
    "sun_altitude_angle",
    "fog_density",
    "fog_distance",
    "fog_falloff",
    "wetness",
    "scattering_intensity",
    "mie_scattering_scale",
    "rayleigh_scattering_scale",
    "dust_storm",
)

# Valid ranges (inclusive), as CARLA documents them. CARLA's own presets use sun_azimuth_angle = -1, so azimuth
# accepts any angle in [-360, 360] (it wraps); unbounded fields use math.inf.
WEATHER_RANGES: dict[str, tuple[float, float]] = {
    "cloudiness": (0.0, 100.0),
    "precipitation": (0.0, 100.0),
    "precipitation_deposits": (0.0, 100.0),
    "wind_intensity": (0.0, 100.0),
    "sun_azimuth_angle": (-360.0, 360.0),
    "sun_altitude_angle": (-90.0, 90.0),
    "fog_density": (0.0, 100.0),
    "fog_distance": (0.0, math.inf),
    "fog_falloff": (0.0, math.inf),
    "wetness": (0.0, 100.0),
    "scattering_intensity": (0.0, math.inf),
    "mie_scattering_scale": (0.0, math.inf),
    "rayleigh_scattering_scale": (0.0, math.inf),
    "dust_storm": (0.0, 100.0),
}

# CARLA 0.9.16 preset names (note CARLA's own spelling: MidRainSunset but MidRainyNoon / MidRainyNight).
PRESET_NAMES: tuple[str, ...] = (
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
    "ClearNight",
    "CloudyNight",
    "WetNight",
    "WetCloudyNight",
    "MidRainyNight",
    "HardRainNight",
    "SoftRainNight",
    "DustStorm",
)

# Keys a route-XML <weather> tag may carry besides the fields (the leaderboard's interpolation key).
_ROUTE_KEYS = ("route_percentage",)


class WeatherError(ValueError):
    """A weather value CARLA would not accept (one line, names the field and value)."""


def _copy(w: carla.WeatherParameters) -> carla.WeatherParameters:
    return carla.WeatherParameters(**{f: float(getattr(w, f)) for f in WEATHER_FIELDS})


PRESETS: dict[str, carla.WeatherParameters] = {
    name: _copy(getattr(carla.WeatherParameters, name))
    for name in PRESET_NAMES
    if hasattr(carla.WeatherParameters, name)
}


def weather_from_name(name: str) -> carla.WeatherParameters:
    """A fresh copy of a CARLA preset (callers may mutate it without touching PRESETS)."""
    if name not in PRESETS:
        raise ValueError(f"unknown weather preset '{name}' (valid: {', '.join(PRESETS)})")
    return _copy(PRESETS[name])


def weather_to_dict(w: carla.WeatherParameters) -> dict[str, float]:
    """All fields as plain floats (for configs, JSON results and route XML)."""
    return {f: float(getattr(w, f)) for f in WEATHER_FIELDS}


def weather_from_dict(
    d: Mapping[str, Any], base: carla.WeatherParameters | None = None
) -> carla.WeatherParameters:
    """Weather from route-XML `<weather>` attributes (strings or numbers); unspecified fields keep `base`.

    `base` defaults to all-zero fields, as carla.WeatherParameters() and the leaderboard's route parser do.
    `route_percentage` is accepted and ignored (it keys interpolation, see `interpolate_weather`).
    """
    values = weather_to_dict(base if base is not None else carla.WeatherParameters())
    for key, raw in d.items():
        if key in _ROUTE_KEYS:
            continue
        if key not in WEATHER_RANGES:
            raise WeatherError(f"unknown weather field '{key}' (valid: {', '.join(WEATHER_FIELDS)})")
        try:
            values[key] = float(raw)
        except (TypeError, ValueError):
            raise WeatherError(f"weather field '{key}' must be a number, got {raw!r}") from None
    w = carla.WeatherParameters(**values)
    validate_weather(w)
    return w


def validate_weather(w: carla.WeatherParameters) -> None:
    """Raise WeatherError naming the first field outside CARLA's range (or not finite)."""
    if not isinstance(w, carla.WeatherParameters):
        raise WeatherError(f"weather must be a carla.WeatherParameters, got {type(w).__name__}")
    for name, (lo, hi) in WEATHER_RANGES.items():
        v = float(getattr(w, name))
        if not math.isfinite(v):
            raise WeatherError(f"weather {name}={v} is not finite")
        if v < lo or v > hi:
            span = f"[{lo:g}, {hi:g}]" if math.isfinite(hi) else f">= {lo:g}"
            raise WeatherError(f"weather {name}={v:g} out of range {span}")


def interpolate_weather(
    a: carla.WeatherParameters, b: carla.WeatherParameters, t: float
) -> carla.WeatherParameters:
    """Linear blend of every field, t=0 -> a, t=1 -> b (t clipped to [0, 1]).

    Azimuth takes the short way round the circle, so 350 -> 10 passes through 0, not 180.
    """
    if not math.isfinite(t):
        raise WeatherError(f"interpolation parameter t={t} is not finite")
    t = min(max(float(t), 0.0), 1.0)
    da, db = weather_to_dict(a), weather_to_dict(b)
    out = {f: da[f] + (db[f] - da[f]) * t for f in WEATHER_FIELDS}
    delta = (db["sun_azimuth_angle"] - da["sun_azimuth_angle"] + 180.0) % 360.0 - 180.0
    az = da["sun_azimuth_angle"] + delta * t
    out["sun_azimuth_angle"] = az if -360.0 <= az <= 360.0 else az % 360.0
    return carla.WeatherParameters(**out)


def weather_at_route_percentage(
    keyframes: list[tuple[float, carla.WeatherParameters]], pct: float
) -> carla.WeatherParameters:
    """Leaderboard-2.0 weather along a route: keyframes (route_percentage 0..100, weather), interpolated."""
    if not keyframes:
        raise WeatherError("no weather keyframes given")
    keys = sorted(keyframes, key=lambda kv: kv[0])
    if pct <= keys[0][0]:
        return _copy(keys[0][1])
    for (p0, w0), (p1, w1) in itertools.pairwise(keys):
        if pct <= p1:
            return interpolate_weather(w0, w1, 0.0 if p1 == p0 else (pct - p0) / (p1 - p0))
    return _copy(keys[-1][1])
