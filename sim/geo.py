"""GNSS <-> CARLA world conversion, with CARLA's spherical-mercator convention.

CARLA's GNSS sensor and the leaderboard's route GPS plans use the map's geoReference origin (lat0, lon0)
and a mercator projection scaled at lat0; world y points south, so north = -y.
"""

from __future__ import annotations

import math
import re

EARTH_RADIUS = 6378137.0  # metres, as CARLA uses


def location_to_gnss(x: float, y: float, z: float, lat0: float = 0.0, lon0: float = 0.0,
                     alt0: float = 0.0) -> tuple[float, float, float]:
    """World location (CARLA frame) -> (lat, lon, alt) in degrees / metres."""
    scale = math.cos(math.radians(lat0))
    mx = scale * math.radians(lon0) * EARTH_RADIUS
    my = scale * EARTH_RADIUS * math.log(math.tan(math.radians(90.0 + lat0) / 2.0))
    mx += x
    my -= y
    lon = math.degrees(mx / (EARTH_RADIUS * scale))
    lat = math.degrees(2.0 * math.atan(math.exp(my / (EARTH_RADIUS * scale)))) - 90.0
    return lat, lon, z + alt0


def gnss_to_location(lat: float, lon: float, alt: float, lat0: float = 0.0, lon0: float = 0.0,
                     alt0: float = 0.0) -> tuple[float, float, float]:
    """Inverse of location_to_gnss."""
    scale = math.cos(math.radians(lat0))
    mx0 = scale * math.radians(lon0) * EARTH_RADIUS
    my0 = scale * EARTH_RADIUS * math.log(math.tan(math.radians(90.0 + lat0) / 2.0))
    mx = scale * math.radians(lon) * EARTH_RADIUS
    my = scale * EARTH_RADIUS * math.log(math.tan(math.radians(90.0 + lat) / 2.0))
    return mx - mx0, -(my - my0), alt - alt0


DEFAULT_GEO_REFERENCE = (42.0, 2.0)  # the leaderboard's (lat0, lon0) for a map without a geoReference


def geo_reference(xodr_text: str) -> tuple[float, float]:
    """(lat0, lon0) from an OpenDRIVE header's geoReference (+lat_0 / +lon_0), each defaulting as the
    leaderboard's `_get_latlon_ref` does (42.0, 2.0) when the map does not state it."""
    lat = re.search(r"\+lat_0=([-+0-9.eE]+)", xodr_text)
    lon = re.search(r"\+lon_0=([-+0-9.eE]+)", xodr_text)
    return (
        float(lat.group(1)) if lat else DEFAULT_GEO_REFERENCE[0],
        float(lon.group(1)) if lon else DEFAULT_GEO_REFERENCE[1],
    )
