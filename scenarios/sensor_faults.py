"""Sensor faults: deterministic transforms of the agent's input_data (never of the ground truth).

    fault = make_scenario("fault/gaussian_noise", seed=3, sigma=12.0)
    agent_input = fault.apply(input_data, frame)     # {id: (frame, data)} -> a new dict

A fault touches only its target sensors: by default every sensor of its kind, recognised by the CARLA
leaderboard's data formats (camera HxWx4 uint8; GNSS array (3,); IMU array (7,); speedometer {'speed'}), or the
ids named in `sensors=`. Untouched entries are passed through as the very same objects; touched data are copies,
so the simulator's buffers (and a recorder reading them) never change. Randomness is drawn from
`np.random.default_rng([seed, frame, crc32(sensor id)])`, so a frame's corruption does not depend on which
frames were seen before, except for faults that are stateful by nature (frozen frames, GNSS drift).
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from sim.sensors import CAMERA_ORDER

EARTH_RADIUS = 6378137.0  # metres, CARLA's GNSS sphere


class SensorFaultError(ValueError):
    """A bad fault parameter (one line, names it)."""


def is_camera(data: Any) -> bool:
    return isinstance(data, np.ndarray) and data.ndim == 3 and data.shape[2] in (3, 4) and data.dtype == np.uint8


def is_gnss(data: Any) -> bool:
    return isinstance(data, np.ndarray) and data.shape == (3,)


def is_imu(data: Any) -> bool:
    return isinstance(data, np.ndarray) and data.shape == (7,)


def is_speedometer(data: Any) -> bool:
    return isinstance(data, dict) and "speed" in data


@dataclass
class FaultParams:
    seed: int = 0
    sensors: Sequence[str] | None = None  # target ids; None = every sensor of the fault's kind
    start_frame: int = 0  # active from this frame ...
    end_frame: int | None = None  # ... up to (excluding) this one; None = to the end


class SensorFault:
    """Base: subclasses set `Config`, `target` (a data predicate) and implement `_corrupt`."""

    Config: ClassVar[type] = FaultParams
    kind: ClassVar[str] = "fault"
    description: ClassVar[str] = ""
    target: ClassVar[Any] = staticmethod(is_camera)

    def __init__(self, **params: Any) -> None:
        self.id = type(self).__name__
        names = {f.name for f in dataclasses.fields(self.Config)}
        bad = sorted(set(params) - names)
        if bad:
            raise SensorFaultError(f"sensor fault {type(self).__name__}: unknown parameter(s) {', '.join(bad)} "
                                   f"(valid: {', '.join(sorted(names))})")
        self.config = self.Config(**params)
        self._check()

    def _check(self) -> None:
        pass

    def targets(self, sensor_id: str, data: Any) -> bool:
        if self.config.sensors is not None:
            return sensor_id in self.config.sensors
        return bool(self.target(data))

    def active(self, frame: int) -> bool:
        c = self.config
        return frame >= c.start_frame and (c.end_frame is None or frame < c.end_frame)

    def rng(self, frame: int, sensor_id: str) -> np.random.Generator:
        return np.random.default_rng([self.config.seed & 0xFFFFFFFF, frame & 0xFFFFFFFF,
                                      zlib.crc32(sensor_id.encode())])

    def apply(self, input_data: dict[str, tuple[int, Any]], frame: int) -> dict[str, tuple[int, Any]]:
        """A new input_data with the target sensors corrupted for this frame."""
        out = dict(input_data)
        for sid, (f, data) in input_data.items():
            if not self.targets(sid, data):
                continue
            new = self._corrupt(sid, data, frame) if self.active(frame) else self._pass(sid, data, frame)
            if new is not data:
                out[sid] = (f, new)
        return out

    def _pass(self, sensor_id: str, data: Any, frame: int) -> Any:
        """What an inactive fault does with a target's data (stateful faults may record it)."""
        return data

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- cameras
def _black(img: np.ndarray) -> np.ndarray:
    out = np.zeros_like(img)
    if img.shape[2] == 4:
        out[..., 3] = 255
    return out


@dataclass
class DropoutParams(FaultParams):
    p: float = 0.2  # probability that a camera frame is lost (delivered black)


class CameraDropout(SensorFault):
    """Each camera frame is lost with probability p (a black image, as a dead link delivers nothing)."""

    Config = DropoutParams
    description = "camera frames lost at random (black)"

    def _check(self) -> None:
        if not 0.0 <= self.config.p <= 1.0:
            raise SensorFaultError(f"fault/camera_dropout: p must be in [0, 1], got {self.config.p}")

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        return _black(data) if self.rng(frame, sensor_id).random() < self.config.p else data


@dataclass
class FrozenParams(FaultParams):
    period: int = 40  # frames between freezes
    duration: int = 15  # frames each freeze lasts


class FrozenFrame(SensorFault):
    """Cameras periodically freeze: for `duration` frames of every `period` they repeat their last image."""

    Config = FrozenParams
    description = "cameras periodically repeat a stale frame"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._last: dict[str, np.ndarray] = {}

    def _check(self) -> None:
        c = self.config
        if c.period < 1 or not 0 <= c.duration <= c.period:
            raise SensorFaultError(f"fault/frozen_frame: need period >= 1 and 0 <= duration <= period, "
                                   f"got period={c.period}, duration={c.duration}")

    def _frozen(self, sensor_id: str, frame: int) -> bool:
        phase = zlib.crc32(f"{self.config.seed}:{sensor_id}".encode()) % self.config.period
        return (frame + phase) % self.config.period < self.config.duration

    def _pass(self, sensor_id: str, data: Any, frame: int) -> Any:
        self._last[sensor_id] = data
        return data

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        if self._frozen(sensor_id, frame) and sensor_id in self._last:
            return self._last[sensor_id].copy()
        self._last[sensor_id] = data
        return data


@dataclass
class NoiseParams(FaultParams):
    sigma: float = 10.0  # std of additive noise, in 0..255 intensity units


class GaussianNoise(SensorFault):
    """Additive Gaussian pixel noise on the colour channels (sensor read noise, low light)."""

    Config = NoiseParams
    description = "additive Gaussian pixel noise"

    def _check(self) -> None:
        if not (math.isfinite(self.config.sigma) and self.config.sigma >= 0):
            raise SensorFaultError(f"fault/gaussian_noise: sigma must be >= 0, got {self.config.sigma}")

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        rgb = data[..., :3].astype(np.float32)
        noise = self.rng(frame, sensor_id).normal(0.0, self.config.sigma, rgb.shape).astype(np.float32)
        out = data.copy()
        out[..., :3] = np.clip(rgb + noise, 0, 255).astype(np.uint8)
        return out


@dataclass
class LensParams(FaultParams):
    blobs: int = 4  # mud / droplet spots per camera
    coverage: float = 0.12  # approximate fraction of the image each camera loses
    blur: int = 31  # kernel of the blur inside the spots (odd pixels at 400 px width)


class LensOcclusion(SensorFault):
    """Dirt on the lens: fixed, soft-edged dark spots per camera (seeded per camera id, constant in time)."""

    Config = LensParams
    description = "fixed mud/droplet spots on each lens"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._masks: dict[tuple[str, tuple[int, int]], np.ndarray] = {}

    def _check(self) -> None:
        c = self.config
        if c.blobs < 1 or not 0.0 < c.coverage < 1.0:
            raise SensorFaultError(f"fault/lens_occlusion: need blobs >= 1 and 0 < coverage < 1, "
                                   f"got blobs={c.blobs}, coverage={c.coverage}")

    def mask(self, sensor_id: str, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) float32 opacity in 0..1 of the dirt on this camera."""
        key = (sensor_id, shape)
        if key not in self._masks:
            h, w = shape
            rng = self.rng(0, sensor_id)
            m = np.zeros((h, w), np.float32)
            r_mean = math.sqrt(self.config.coverage * h * w / (math.pi * self.config.blobs))
            for _ in range(self.config.blobs):
                cx, cy = int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.15, 0.95) * h)
                ax, ay = (max(2, int(r_mean * rng.uniform(0.7, 1.4))) for _ in range(2))
                cv2.ellipse(m, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
            k = max(3, round(r_mean * 0.6) | 1)
            self._masks[key] = np.clip(cv2.GaussianBlur(m, (k, k), 0), 0.0, 1.0)
        return self._masks[key]

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        a = self.mask(sensor_id, data.shape[:2])[..., None]  # (H, W, 1)
        rgb = data[..., :3]
        k = self.config.blur | 1
        blurred = cv2.GaussianBlur(rgb, (k, k), 0).astype(np.float32) * 0.25 + 20.0  # dark, smeared dirt
        out = data.copy()
        out[..., :3] = np.clip(rgb.astype(np.float32) * (1.0 - a) + blurred * a, 0, 255).astype(np.uint8)
        return out


@dataclass
class BlackParams(FaultParams):
    camera: str = "CAM_FRONT"


class CameraBlack(SensorFault):
    """One named camera delivers black images from start_frame on (a dead camera)."""

    Config = BlackParams
    description = "one camera dead (black)"

    def _check(self) -> None:
        if not self.config.camera:
            raise SensorFaultError("fault/camera_black: camera id must be non-empty")

    def targets(self, sensor_id: str, data: Any) -> bool:
        return sensor_id == self.config.camera and is_camera(data)

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        return _black(data)


# ---------------------------------------------------------------------------------------------- other sensors
@dataclass
class GnssParams(FaultParams):
    sigma: float = 1.5  # m, white noise per fix (horizontal)
    drift: float = 0.05  # m per frame (std), random-walk bias (horizontal)
    alt_sigma: float = 2.0  # m


class GnssNoise(SensorFault):
    """GNSS fixes with white noise and a slow random-walk bias, in metres converted to degrees."""

    Config = GnssParams
    description = "GNSS white noise + random-walk bias"
    target = staticmethod(is_gnss)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._bias: dict[str, np.ndarray] = {}
        self._last_frame: dict[str, int] = {}

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        c = self.config
        rng = self.rng(frame, sensor_id)
        bias = self._bias.get(sensor_id, np.zeros(2))
        if self._last_frame.get(sensor_id) != frame:  # the bias walks one step per new frame
            bias = bias + rng.normal(0.0, c.drift, 2)
            self._bias[sensor_id], self._last_frame[sensor_id] = bias, frame
        north, east = bias + rng.normal(0.0, c.sigma, 2)  # metres
        lat, lon, alt = (float(v) for v in data)
        dlat = math.degrees(north / EARTH_RADIUS)
        dlon = math.degrees(east / (EARTH_RADIUS * max(math.cos(math.radians(lat)), 1e-6)))
        return np.array([lat + dlat, lon + dlon, alt + rng.normal(0.0, c.alt_sigma)], dtype=np.asarray(data).dtype)


@dataclass
class SpeedBiasParams(FaultParams):
    scale: float = 0.1  # relative error: reported = true * (1 + scale) + offset
    offset: float = 0.3  # m/s
    sigma: float = 0.0  # m/s white noise


class SpeedometerBias(SensorFault):
    """A miscalibrated speedometer: a scale error, an offset and optional noise (never negative)."""

    Config = SpeedBiasParams
    description = "speedometer scale/offset bias"
    target = staticmethod(is_speedometer)

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        c = self.config
        speed = float(data["speed"]) * (1.0 + c.scale) + c.offset
        if c.sigma > 0:
            speed += float(self.rng(frame, sensor_id).normal(0.0, c.sigma))
        return {**data, "speed": max(0.0, speed)}


@dataclass
class ImuParams(FaultParams):
    accel_sigma: float = 0.3  # m/s^2
    gyro_sigma: float = 0.02  # rad/s
    compass_sigma: float = 0.05  # rad


class ImuNoise(SensorFault):
    """White noise on the IMU's accelerometer, gyroscope and compass."""

    Config = ImuParams
    description = "IMU white noise"
    target = staticmethod(is_imu)

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        c = self.config
        sig = np.array([c.accel_sigma] * 3 + [c.gyro_sigma] * 3 + [c.compass_sigma])
        out = np.asarray(data, dtype=np.float64) + self.rng(frame, sensor_id).normal(0.0, 1.0, 7) * sig
        out[6] %= 2.0 * math.pi
        return out.astype(np.asarray(data).dtype)


class ComposedFault:
    """Several faults applied in order (e.g. night noise + a dead camera)."""

    kind: ClassVar[str] = "fault"

    def __init__(self, faults: Sequence[SensorFault]) -> None:
        self.faults = list(faults)

    def apply(self, input_data: dict[str, tuple[int, Any]], frame: int) -> dict[str, tuple[int, Any]]:
        for f in self.faults:
            input_data = f.apply(input_data, frame)
        return input_data


# id -> (class, fixed kwargs)
FAULTS: dict[str, tuple[type[SensorFault], dict[str, Any]]] = {
    "fault/camera_dropout": (CameraDropout, {}),
    "fault/frozen_frame": (FrozenFrame, {}),
    "fault/gaussian_noise": (GaussianNoise, {}),
    "fault/lens_occlusion": (LensOcclusion, {}),
    **{f"fault/camera_black_{cam}": (CameraBlack, {"camera": cam}) for cam in CAMERA_ORDER},
    "fault/gnss_noise": (GnssNoise, {}),
    "fault/speedometer_bias": (SpeedometerBias, {}),
    "fault/imu_noise": (ImuNoise, {}),
}
