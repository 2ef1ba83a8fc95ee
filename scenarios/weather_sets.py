"""Named weather sets for robustness sweeps, registered by id ('weather/all_presets', 'weather/fog', ...).

A set is an ordered list of (name, carla.WeatherParameters): CARLA's presets by name (sim.weather.PRESETS) and
variants built from them with carla.WeatherParameters fields (fog at several densities, dusk). Every weather is
validated against CARLA's ranges when the set is built, so a sweep never starts with a value a server refuses.
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
    "weather/night": (lambda: presets(*_night_names()) + [
        ("ClearNightFog", _variant("ClearNight", fog_density=40.0, fog_distance=5.0, fog_falloff=0.5))],
        "the night presets plus a foggy night"),
    "weather/rain": (lambda: presets(*_rain_names()), "every rain preset (soft, mid, hard; noon, sunset, night)"),
    "weather/fog": (fog_variants, "fog at three densities at noon and sunset (variants of the presets)"),
    "weather/adverse": (lambda: presets("HardRainNoon", "HardRainNight", "DustStorm") + [fog_variants()[2]],
                        "one of each hard condition"),
}


def make_weather_set(name: str) -> WeatherSet:
    """Build a registered set by its id (used as the registry's entry point)."""
    if name not in WEATHER_SETS:
        raise ValueError(f"unknown weather set '{name}' (valid: {', '.join(WEATHER_SETS)})")
    factory, description = WEATHER_SETS[name]
    return WeatherSet(name, factory(), description)
