"""carla.WeatherParameters -> lighting, sky, fog, wet-road and rain parameters for the shaders.

A small analytic model, not a physical sky: it is tuned so each field moves the image the way it does in
CARLA (sun position and colour, a greyer and darker sky under clouds and rain, exponential height fog that
starts at fog_distance, a darker glossy road when wet, street lights and headlights at night).
Sun direction convention: azimuth measured like yaw (from world +x towards +y), altitude above the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def _smoothstep(e0: float, e1: float, x: float) -> float:
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _mix(a, b, t: float) -> np.ndarray:
    return np.asarray(a, float) * (1.0 - t) + np.asarray(b, float) * t


@dataclass
class Atmosphere:
    """Frame-constant shading inputs derived from one weather (all colours linear-ish RGB 0..~1.5)."""

    sun_dir: np.ndarray  # (3,) world unit vector towards the sun
    sun_col: np.ndarray  # (3,) direct light
    amb_sky: np.ndarray  # (3,) ambient from above
    amb_ground: np.ndarray  # (3,) ambient from below
    zenith: np.ndarray  # (3,) sky colour straight up
    horizon: np.ndarray  # (3,) sky colour at the horizon
    sun_glow: np.ndarray  # (3,) halo colour around the sun
    sun_disk: float  # disk brightness (0 at night / overcast)
    cloud_col: np.ndarray  # (3,)
    cloudiness: float  # 0..1
    fog_col: np.ndarray  # (3,)
    fog_k: float  # extinction per metre at ground level
    fog_start: float  # metres (fog_distance)
    fog_falloff: float  # per metre of height
    haze_col: np.ndarray  # (3,) aerial perspective colour
    haze_k: float  # extinction per metre (scattering, rain, dust)
    wet: float  # 0..1 road wetness
    puddles: float  # 0..1 puddle coverage (precipitation_deposits)
    lights_on: float  # 0..1 street lights and headlights
    rain: float  # 0..1 precipitation
    wind: float  # 0..1 wind_intensity (slants rain)
    rain_col: np.ndarray  # (3,) streak colour
    glare: float = 0.0  # 0..1 veiling glare of a low, unclouded sun on a camera facing it
    glare_col: np.ndarray = field(default_factory=lambda: np.ones(3))  # (3,) colour the glare lifts pixels to


def atmosphere(w) -> Atmosphere:
    """Derive shading parameters from a carla.WeatherParameters (or anything with the same fields)."""
    alt = float(w.sun_altitude_angle)
    az = math.radians(float(w.sun_azimuth_angle))
    cloud = float(w.cloudiness) / 100.0
    rain = float(w.precipitation) / 100.0
    dust = float(w.dust_storm) / 100.0
    alt_r = math.radians(alt)
    sun_dir = np.array([math.cos(alt_r) * math.cos(az), math.cos(alt_r) * math.sin(az), math.sin(alt_r)])

    day = _smoothstep(-8.0, 12.0, alt)  # 0 night .. 1 full day
    low = _smoothstep(35.0, 3.0, alt) * _smoothstep(-6.0, 2.0, alt)  # sunset / sunrise warmth
    ray = min(float(w.rayleigh_scattering_scale) / 0.0331, 3.0)  # 1 at CARLA's default
    mie = min(float(w.mie_scattering_scale) / 0.03, 5.0)
    scat = min(float(w.scattering_intensity), 5.0)

    # clear-sky colours: day blue (more saturated with rayleigh), warm horizon at sunset, dark blue night
    zen_day = _mix((0.55, 0.65, 0.8), (0.18, 0.38, 0.82), min(ray, 1.5) / 1.5)
    hor_day = _mix((0.75, 0.82, 0.92), (0.95, 0.9, 0.85), min(0.3 * mie, 1.0))
    zen = _mix(_mix((0.012, 0.016, 0.035), zen_day, day), (0.28, 0.3, 0.5), low * 0.6)
    hor = _mix(_mix((0.025, 0.03, 0.05), hor_day, day), (1.0, 0.55, 0.3), low * 0.8)
    glow = _mix((1.0, 0.95, 0.85), (1.0, 0.5, 0.2), low) * day * (0.35 + 0.25 * mie)

    # clouds grey the sky and flatten it; rain darkens everything
    overcast = _mix((0.62, 0.64, 0.67), (0.07, 0.075, 0.085), 1.0 - day) * _mix(1.0, 0.85, low)
    gloom = 1.0 - 0.5 * rain
    zen = _mix(zen, overcast * 0.95, 0.85 * cloud) * gloom
    hor = _mix(hor, overcast, 0.75 * cloud) * gloom
    cloud_col = overcast * gloom * _mix(1.0, 1.15, day)
    glow = glow * (1.0 - 0.85 * cloud) * gloom
    disk = day * (1.0 - cloud) ** 2 * (1.0 - rain)

    sun_int = day * (1.0 - 0.75 * cloud) * (1.0 - 0.6 * rain) * _smoothstep(-2.0, 8.0, alt)
    sun_col = _mix((1.0, 0.96, 0.9), (1.0, 0.6, 0.35), low) * 0.85 * sun_int
    amb_sky = _mix((0.06, 0.07, 0.1), _mix((0.42, 0.46, 0.55), (0.5, 0.5, 0.52), cloud), day) * gloom
    amb_sky = _mix(amb_sky, amb_sky * np.array([1.1, 0.85, 0.7]), low * 0.5)
    amb_ground = amb_sky * 0.45

    if dust > 0:
        brown = np.array([0.62, 0.48, 0.32]) * _mix(0.1, 1.0, day)
        zen, hor = _mix(zen, brown, 0.8 * dust), _mix(hor, brown, 0.9 * dust)
        sun_col = sun_col * (1.0 - 0.6 * dust)

    # fog: CARLA's fog_density 0..100 -> extinction up to 0.05 /m (visibility ~60 m at 100); superlinear so
    # the presets' 2-7 are a light haze; fog colour follows the horizon
    fog_k = 0.05 * (float(w.fog_density) / 100.0) ** 1.5
    fog_col = _mix(hor, np.array([0.7, 0.72, 0.75]) * max(day, 0.04), 0.4)
    haze_k = 0.0012 * scat * (0.5 + 0.5 * mie) * day + 0.012 * rain + 0.03 * dust
    haze_col = _mix(hor, fog_col, 0.5)
    if dust > 0:
        haze_col = _mix(haze_col, np.array([0.62, 0.48, 0.32]) * max(day, 0.1), dust)

    # veiling glare: a low sun in a clear sky, stronger with more Mie (aerosol) scattering; CARLA's presets
    # (mie 0.03) get a faint one at sunset, a hazy low-sun weather (mie >= 0.09) the full effect
    glare = disk * _smoothstep(22.0, 4.0, alt) * _smoothstep(-1.5, 1.5, alt) * min(mie / 3.0, 1.0)
    glare_col = _mix((1.0, 0.97, 0.9), (1.0, 0.8, 0.6), low)

    return Atmosphere(
        sun_dir=sun_dir,
        sun_col=sun_col,
        amb_sky=amb_sky,
        amb_ground=amb_ground,
        zenith=zen,
        horizon=hor,
        sun_glow=glow,
        sun_disk=disk,
        cloud_col=cloud_col,
        cloudiness=cloud,
        fog_col=fog_col,
        fog_k=fog_k,
        fog_start=max(float(w.fog_distance), 0.0),
        fog_falloff=0.5 * max(float(w.fog_falloff), 0.0),
        haze_col=haze_col,
        haze_k=haze_k,
        wet=min(float(w.wetness) / 100.0 + 0.5 * float(w.precipitation_deposits) / 100.0 + 0.3 * rain, 1.0),
        puddles=float(w.precipitation_deposits) / 100.0,
        lights_on=_smoothstep(4.0, -4.0, alt),
        rain=rain,
        wind=float(w.wind_intensity) / 100.0,
        rain_col=np.array([0.75, 0.78, 0.82]) * (0.12 + 0.88 * day),
        glare=glare,
        glare_col=glare_col,
    )


def noise_texture(size: int = 256, seed: int = 7) -> np.ndarray:
    """(size, size) uint8 tileable multi-octave value noise (clouds, puddles); fixed seed: deterministic."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((size, size))
    amp, total = 1.0, 0.0
    for cells in (4, 8, 16, 32, 64):
        lattice = rng.random((cells, cells))
        t = np.arange(size) * cells / size
        i0 = np.floor(t).astype(np.int64)
        f = t - i0
        f = f * f * (3.0 - 2.0 * f)
        i1 = (i0 + 1) % cells
        rows = lattice[i0] * (1 - f)[:, None] + lattice[i1] * f[:, None]  # (size, cells)
        acc += amp * (rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :])
        total += amp
        amp *= 0.5
    acc /= total
    lo, hi = np.percentile(acc, [1.0, 99.0])
    return np.round(np.clip((acc - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)
