"""Named weathers and weather sets for robustness sweeps.

Named weathers: CARLA's presets (sim.weather.PRESETS) plus custom ones registered here by name (fog at three
densities, a foggy night, a low sun with glare, nights without street lights). `named_weather(name)` resolves
any of them (`--weather NAME` accepts every one); `weather_names()` lists them. A custom weather may also switch
the town's street lights off and aim the sun along the route's first heading, so a camera faces it.

Weather sets ('weather/all_presets', 'weather/fog', ...) are ordered lists of (name, carla.WeatherParameters),
registered as scenario ids. Every weather is validated against CARLA's ranges when it is built, so a sweep never
starts with a value a server refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import carla

from sim.weather import PRESETS, validate_weather, weather_from_dict, weather_from_name, weather_to_dict


@dataclass
class WeatherSet:
    """An ordered, named list of weathers."""

    kind: ClassVar[str] = "weather"
    name: str
    weathers: list[tuple[str, carla.WeatherParameters]]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.weathers:
            raise ValueError(f"weather set '{self.name}' is empty")
        names = [n for n, _ in self.weathers]
        if len(set(names)) != len(names):
            raise ValueError(f"weather set '{self.name}' repeats a name")
        for _, w in self.weathers:
            validate_weather(w)

    def __iter__(self) -> Iterator[tuple[str, carla.WeatherParameters]]:
        return iter(self.weathers)

    def __len__(self) -> int:
        return len(self.weathers)

    def names(self) -> list[str]:
        return [n for n, _ in self.weathers]

    def get(self, name: str) -> carla.WeatherParameters:
        for n, w in self.weathers:
            if n == name:
                return w
        raise KeyError(f"weather '{name}' is not in set '{self.name}' (has: {', '.join(self.names())})")

    def as_dicts(self) -> list[dict[str, Any]]:
        """Plain data (name + every field) for configs and results."""
        return [{"name": n, **weather_to_dict(w)} for n, w in self.weathers]


def _variant(base: str, **fields: float) -> carla.WeatherParameters:
    return weather_from_dict(fields, weather_from_name(base))


def fog_variants() -> list[tuple[str, carla.WeatherParameters]]:
    """Noon and sunset fog at three densities (fog starting close, low falloff: it hangs over the road)."""
    out = []
    for base in ("ClearNoon", "CloudySunset"):
        for label, density, distance in (("Light", 25.0, 10.0), ("Medium", 50.0, 5.0), ("Dense", 85.0, 0.0)):
            out.append((f"{base}Fog{label}", _variant(base, fog_density=density, fog_distance=distance,
                                                       fog_falloff=0.5, wetness=min(density, 40.0))))
    return out


@dataclass(frozen=True)
class NamedWeather:
    """A weather by name: CARLA's fields plus what WeatherParameters cannot say."""

    name: str
    params: carla.WeatherParameters
    street_lights: bool = True  # the town's street lights at night (CARLA's light manager)
    sun_along_route: bool = False  # sun azimuth := the route's first heading (the low sun ahead of the ego)
    description: str = ""

    def for_heading(self, yaw: float) -> carla.WeatherParameters:
        """The parameters for a route starting with heading `yaw` (degrees, CARLA world frame)."""
        if not self.sun_along_route:
            return weather_from_dict({}, self.params)
        return weather_from_dict({"sun_azimuth_angle": ((yaw + 180.0) % 360.0) - 180.0}, self.params)


def _glare() -> carla.WeatherParameters:
    # CARLA's ClearSunset with the sun 4 degrees above the horizon and a hazy aerosol (5x CARLA's Mie
    # scattering), which is what makes a real low sun blind a camera
    return _variant("ClearSunset", sun_altitude_angle=4.0, cloudiness=5.0, mie_scattering_scale=0.15,
                    scattering_intensity=1.5)


# name -> (factory of the parameters, street lights, sun along the route, description)
CUSTOM_WEATHERS: dict[str, tuple[Any, bool, bool, str]] = {
    "ClearNightFog": (lambda: _variant("ClearNight", fog_density=40.0, fog_distance=5.0, fog_falloff=0.5), True,
                      False, "clear night with fog"),
    "LowSunGlare": (_glare, True, True, "sun 4 degrees up, straight ahead at the route start: glare, washed-out "
                    "contrast"),
    "LowSunGlareFixed": (_glare, True, False, "the same low sun at a fixed azimuth (CARLA's ClearSunset)"),
    "ClearNightNoStreetLights": (lambda: weather_from_name("ClearNight"), False, False,
                                 "clear night, street lights off (headlights only)"),
    "WetCloudyNightNoStreetLights": (lambda: weather_from_name("WetCloudyNight"), False, False,
                                     "wet cloudy night, street lights off (headlights only)"),
}


def _register_fog() -> None:
    for n, w in fog_variants():
        CUSTOM_WEATHERS[n] = ((lambda w=w: weather_from_dict({}, w)), True, False, "fog variant of a preset")


def weather_names() -> list[str]:
    """Every name `named_weather` resolves: CARLA's presets, then the custom weathers."""
    return [*PRESETS, *CUSTOM_WEATHERS]


def named_weather(name: str) -> NamedWeather:
    """A preset or custom weather by name (ValueError listing every valid name when unknown)."""
    if name in PRESETS:
        return NamedWeather(name, weather_from_name(name), description="CARLA preset")
    if name in CUSTOM_WEATHERS:
        factory, lights, along, description = CUSTOM_WEATHERS[name]
        params = factory()
        validate_weather(params)
        return NamedWeather(name, params, lights, along, description)
    raise ValueError(f"unknown weather '{name}' (valid: {', '.join(weather_names())})")


def presets(*names: str) -> list[tuple[str, carla.WeatherParameters]]:
    return [(n, weather_from_name(n)) for n in names]


def _night_names() -> list[str]:
    return [n for n in PRESETS if n.endswith("Night")]


def _rain_names() -> list[str]:
    return [n for n in PRESETS if "Rain" in n]


# id -> (factory of the weathers, description)
WEATHER_SETS: dict[str, tuple[Any, str]] = {
    "weather/all_presets": (lambda: presets(*PRESETS), "every CARLA 0.9.16 preset"),
    "weather/noon": (lambda: presets(*[n for n in PRESETS if n.endswith("Noon")]), "the daytime presets"),
    "weather/sunset": (lambda: presets(*[n for n in PRESETS if n.endswith("Sunset")]), "the low-sun presets"),
    "weather/night": (lambda: presets(*_night_names()) + _custom("ClearNightFog", "ClearNightNoStreetLights"),
                      "the night presets plus a foggy night and a night without street lights"),
    "weather/glare": (lambda: _custom("LowSunGlareFixed"), "a low sun with glare (fixed azimuth)"),
    "weather/rain": (lambda: presets(*_rain_names()), "every rain preset (soft, mid, hard; noon, sunset, night)"),
    "weather/fog": (fog_variants, "fog at three densities at noon and sunset (variants of the presets)"),
    "weather/adverse": (lambda: presets("HardRainNoon", "HardRainNight", "DustStorm") + [fog_variants()[2]],
                        "one of each hard condition"),
}


def _custom(*names: str) -> list[tuple[str, carla.WeatherParameters]]:
    return [(n, named_weather(n).params) for n in names]


_register_fog()


def make_weather_set(name: str) -> WeatherSet:
    """Build a registered set by its id (used as the registry's entry point)."""
    if name not in WEATHER_SETS:
        raise ValueError(f"unknown weather set '{name}' (valid: {', '.join(WEATHER_SETS)})")
    factory, description = WEATHER_SETS[name]
    return WeatherSet(name, factory(), description)
