"""Sensor faults: deterministic transforms of what the agent gets (never of the ground truth).

    fault = make_scenario("fault/gaussian_noise", seed=3, sigma=12.0)
    agent_input = fault.apply(input_data, frame)     # {id: (frame, data)} -> a new dict

    fault = parse_faults("motion_blur:2,gnss_noise:1", seed=3)   # the CLI's --sensor-fault: name:severity, ...
    sensors = fault.configure_sensors(agent.sensors())            # before attaching (extrinsic miscalibration)
    agent_input = fault.apply(input_data, frame)                  # every tick
    control = fault.control(agent_control, frame)                 # action latency (delayed control)

A fault acts at one or more of three points: the sensor set-up (a camera mounted rotated: the simulator renders
from the rotated pose, nothing is warped), the input of each tick, and the agent's control. Faults compose in the
order given. SEVERITIES holds each robustness fault's parameters at severities 1-3 (light, medium, strong).

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
    """Base: subclasses set `Config`, `target` (a data predicate) and implement `_corrupt`; faults acting on the
    sensor set-up or on the control override `configure_sensors` / `control` (identities here)."""

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

    def configure_sensors(self, sensors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The sensor dicts to attach instead of the agent's (new dicts; the agent's list is not changed)."""
        return [dict(x) for x in sensors]

    def control(self, control: Any, frame: int) -> Any:
        """The control that reaches the vehicle for the agent's `control` at `frame`."""
        return control

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
    cameras: Sequence[str] | None = None  # several dead cameras (overrides `camera`)


class CameraBlack(SensorFault):
    """Named cameras deliver black images from start_frame on (dead cameras, nuScenes-C's camera crash)."""

    Config = BlackParams
    description = "cameras dead (black)"

    def _check(self) -> None:
        cams = self.dead_cameras()
        if not cams or not all(cams):
            raise SensorFaultError("fault/camera_black: camera ids must be non-empty")

    def dead_cameras(self) -> tuple[str, ...]:
        c = self.config
        return tuple(c.cameras) if c.cameras is not None else (c.camera,)

    def targets(self, sensor_id: str, data: Any) -> bool:
        return sensor_id in self.dead_cameras() and is_camera(data)

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        return _black(data)


@dataclass
class MotionBlurParams(FaultParams):
    length: float = 0.03  # blur streak length as a fraction of the image width (0.03 = 12 px at 400 px)
    angle: float = 0.0  # streak direction in the image, degrees (0 = horizontal)


class MotionBlur(SensorFault):
    """Linear motion blur (a long exposure while the camera moves): each pixel averages a streak of the scene."""

    Config = MotionBlurParams
    description = "linear motion blur"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._kernels: dict[int, np.ndarray] = {}

    def _check(self) -> None:
        if not 0.0 < self.config.length < 0.5:
            raise SensorFaultError(f"fault/motion_blur: length must be in (0, 0.5) of the width, "
                                   f"got {self.config.length}")

    def kernel(self, width: int) -> np.ndarray:
        """(k, k) float32 line kernel summing to 1 for an image `width` pixels wide."""
        if width not in self._kernels:
            k = max(3, round(self.config.length * width) | 1)
            ker = np.zeros((k, k), np.float32)
            c = k // 2
            a = math.radians(self.config.angle)
            dx, dy = math.cos(a) * c, -math.sin(a) * c
            cv2.line(ker, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
            self._kernels[width] = ker / ker.sum()
        return self._kernels[width]

    def _corrupt(self, sensor_id: str, data: Any, frame: int) -> Any:
        out = data.copy()
        out[..., :3] = cv2.filter2D(data[..., :3], -1, self.kernel(data.shape[1]), borderType=cv2.BORDER_REFLECT)
        return out


@dataclass
class FrameRateParams(FaultParams):
    hz: float = 10.0  # frames delivered per second (the simulator ticks at 20 Hz)


class LowFrameRate(SensorFault):
    """Cameras deliver frames at a fixed lower rate: between two deliveries the agent gets the last delivered
    image again, with that image's frame number (as a slower sensor's latest measurement)."""

    Config = FrameRateParams
    description = "cameras at a lower frame rate (stale frames in between)"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._last: dict[str, tuple[int, np.ndarray]] = {}

    def _check(self) -> None:
        if not 0.0 < self.config.hz <= 20.0:
            raise SensorFaultError(f"fault/low_frame_rate: hz must be in (0, 20], got {self.config.hz}")

    def delivers(self, frame: int) -> bool:
        """Whether `frame` (20 Hz ticks) is one the slower camera captures: floor(t * hz) steps at it."""
        hz = self.config.hz
        return math.floor(frame * hz / 20.0 + 1e-9) != math.floor((frame - 1) * hz / 20.0 + 1e-9)

    def apply(self, input_data: dict[str, tuple[int, Any]], frame: int) -> dict[str, tuple[int, Any]]:
        out = dict(input_data)
        for sid, (f, data) in input_data.items():
            if not self.targets(sid, data):
                continue
            if not self.active(frame) or self.delivers(frame) or sid not in self._last:
                self._last[sid] = (f, data)
            else:
                out[sid] = self._last[sid]
        return out


@dataclass
class ExtrinsicParams(FaultParams):
    yaw: float = 1.0  # degrees each camera is turned (sign drawn per camera from the seed)
    pitch: float = 0.5  # degrees
    roll: float = 0.0  # degrees


class ExtrinsicMiscalibration(SensorFault):
    """Cameras mounted slightly rotated from where the agent believes: the simulator renders each camera from
    its rotated pose (nothing is warped); the agent keeps its own sensor list, so its calibration is wrong.
    The signs are drawn per camera id from the seed; the angles are fixed for the whole route."""

    Config = ExtrinsicParams
    description = "cameras rotated by a small angle (rendered from the rotated pose)"

    def _check(self) -> None:
        c = self.config
        if not all(math.isfinite(v) and abs(v) <= 30.0 for v in (c.yaw, c.pitch, c.roll)):
            raise SensorFaultError(f"fault/extrinsic_miscalibration: angles must be within 30 degrees, "
                                   f"got yaw={c.yaw}, pitch={c.pitch}, roll={c.roll}")

    def offsets(self, sensor_id: str) -> tuple[float, float, float]:
        """(roll, pitch, yaw) degrees added to this camera's mount."""
        signs = np.where(self.rng(0, sensor_id).random(3) < 0.5, -1.0, 1.0)
        c = self.config
        return float(signs[0] * c.roll), float(signs[1] * c.pitch), float(signs[2] * c.yaw)

    def configure_sensors(self, sensors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for s in sensors:
            s = dict(s)
            sid = str(s.get("id", ""))
            if str(s.get("type", "")).startswith("sensor.camera") and (
                    self.config.sensors is None or sid in self.config.sensors):
                dr, dp, dy = self.offsets(sid)
                s["roll"] = float(s.get("roll", 0.0)) + dr
                s["pitch"] = float(s.get("pitch", 0.0)) + dp
                s["yaw"] = float(s.get("yaw", 0.0)) + dy
            out.append(s)
        return out

    def apply(self, input_data: dict[str, tuple[int, Any]], frame: int) -> dict[str, tuple[int, Any]]:
        return dict(input_data)


@dataclass
class DelayParams(FaultParams):
    ticks: int = 2  # the vehicle applies the control the agent sent this many 0.05 s ticks earlier


class DelayedControl(SensorFault):
    """Action latency: the agent's control reaches the vehicle `ticks` ticks late (coasting until the first)."""

    Config = DelayParams
    description = "control applied with a fixed delay (action latency)"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._queue: list[Any] = []

    def _check(self) -> None:
        if not 0 <= self.config.ticks <= 100:
            raise SensorFaultError(f"fault/delayed_control: ticks must be in [0, 100], got {self.config.ticks}")

    def apply(self, input_data: dict[str, tuple[int, Any]], frame: int) -> dict[str, tuple[int, Any]]:
        return dict(input_data)

    def control(self, control: Any, frame: int) -> Any:
        if not self.active(frame):
            return control
        self._queue.append(control)
        if len(self._queue) <= self.config.ticks:
            import carla

            return carla.VehicleControl()  # nothing has arrived yet: no throttle, no brake
        return self._queue.pop(0)


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
    """Several faults applied in the order given, at each of the three points (sensors, input, control)."""

    kind: ClassVar[str] = "fault"

    def __init__(self, faults: Sequence[SensorFault], label: str = "") -> None:
        self.faults = list(faults)
        self.label = label

    def configure_sensors(self, sensors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = [dict(x) for x in sensors]
        for f in self.faults:
            out = f.configure_sensors(out)
        return out

    def apply(self, input_data: dict[str, tuple[int, Any]], frame: int) -> dict[str, tuple[int, Any]]:
        for f in self.faults:
            input_data = f.apply(input_data, frame)
        return input_data

    def control(self, control: Any, frame: int) -> Any:
        for f in self.faults:
            control = f.control(control, frame)
        return control


# id -> (class, fixed kwargs)
FAULTS: dict[str, tuple[type[SensorFault], dict[str, Any]]] = {
    "fault/camera_blackout": (CameraBlack, {}),
    "fault/motion_blur": (MotionBlur, {}),
    "fault/low_frame_rate": (LowFrameRate, {}),
    "fault/extrinsic_miscalibration": (ExtrinsicMiscalibration, {}),
    "fault/delayed_control": (DelayedControl, {}),
    "fault/camera_dropout": (CameraDropout, {}),
    "fault/frozen_frame": (FrozenFrame, {}),
    "fault/gaussian_noise": (GaussianNoise, {}),
    "fault/lens_occlusion": (LensOcclusion, {}),
    **{f"fault/camera_black_{cam}": (CameraBlack, {"camera": cam}) for cam in CAMERA_ORDER},
    "fault/gnss_noise": (GnssNoise, {}),
    "fault/speedometer_bias": (SpeedometerBias, {}),
    "fault/imu_noise": (ImuNoise, {}),
}


# ---------------------------------------------------------------------------------------------- severities
FRONT3 = ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT")

# robustness fault name -> (registered id, parameters at severity 1, 2, 3). Severities follow nuScenes-C/RoboBEV
# in spirit (three levels, light to strong), sized for 400x225 cameras and 20 Hz.
SEVERITIES: dict[str, tuple[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]] = {
    "camera_blackout": ("fault/camera_blackout", (
        {"cameras": ("CAM_FRONT_RIGHT",)}, {"cameras": ("CAM_FRONT",)}, {"cameras": FRONT3})),
    "lens_occlusion": ("fault/lens_occlusion", ({"coverage": 0.05}, {"coverage": 0.12}, {"coverage": 0.25})),
    "gaussian_noise": ("fault/gaussian_noise", ({"sigma": 8.0}, {"sigma": 20.0}, {"sigma": 40.0})),
    "motion_blur": ("fault/motion_blur", ({"length": 0.015}, {"length": 0.035}, {"length": 0.07})),
    "frozen_camera": ("fault/frozen_frame", (
        {"period": 60, "duration": 10}, {"period": 60, "duration": 30}, {"period": 60, "duration": 60})),
    "low_frame_rate": ("fault/low_frame_rate", ({"hz": 10.0}, {"hz": 5.0}, {"hz": 2.0})),
    "extrinsic_miscalibration": ("fault/extrinsic_miscalibration", (
        {"yaw": 1.0, "pitch": 0.5}, {"yaw": 2.5, "pitch": 1.0}, {"yaw": 5.0, "pitch": 2.0})),
    "gnss_noise": ("fault/gnss_noise", (
        {"sigma": 1.0, "drift": 0.02}, {"sigma": 3.0, "drift": 0.05}, {"sigma": 8.0, "drift": 0.1})),
    "delayed_control": ("fault/delayed_control", ({"ticks": 2}, {"ticks": 5}, {"ticks": 10})),
}


def make_fault(name: str, severity: int = 1, seed: int = 0) -> SensorFault:
    """One robustness fault at a severity (1-3), or any registered fault id ('fault/...') with its defaults."""
    from scenarios.registry import ScenarioRegistryError, make_scenario, registered_ids

    if name.startswith("fault/"):
        if name not in registered_ids("fault"):
            raise SensorFaultError(f"unknown sensor fault '{name}' (valid: {', '.join(fault_names())})")
        if name in {fid for fid, _ in SEVERITIES.values()}:
            short = next(k for k, (fid, _) in SEVERITIES.items() if fid == name)
            return make_fault(short, severity, seed)
        try:
            return make_scenario(name, seed=seed)
        except ScenarioRegistryError as exc:
            raise SensorFaultError(str(exc)) from None
    if name not in SEVERITIES:
        raise SensorFaultError(f"unknown sensor fault '{name}' (valid: {', '.join(fault_names())})")
    if severity not in (1, 2, 3):
        raise SensorFaultError(f"sensor fault {name}: severity must be 1, 2 or 3, got {severity}")
    fid, levels = SEVERITIES[name]
    return make_scenario(fid, seed=seed, **levels[severity - 1])


def fault_names() -> list[str]:
    """The robustness faults (with severities) first, then every registered fault id."""
    from scenarios.registry import registered_ids

    return [*SEVERITIES, *registered_ids("fault")]


def parse_fault_items(spec: str) -> list[tuple[str, int]]:
    """'motion_blur:2,gnss_noise:1' -> [('motion_blur', 2), ('gnss_noise', 1)]; a missing severity is 1."""
    items = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            raise SensorFaultError(f"empty item in sensor-fault list '{spec}'")
        name, sep, sev = part.partition(":")
        try:
            severity = int(sev) if sep else 1
        except ValueError:
            raise SensorFaultError(f"sensor fault '{part}': severity must be 1, 2 or 3") from None
        items.append((name.strip(), severity))
    return items


def parse_faults(spec: str, seed: int = 0) -> ComposedFault:
    """The faults of a CLI list, composed in the order written; each gets its own seed stream."""
    faults = [make_fault(name, sev, seed=(seed * 1000003 + 7919 * k) & 0x7FFFFFFF)
              for k, (name, sev) in enumerate(parse_fault_items(spec))]
    return ComposedFault(faults, label=spec)


class FaultedRoute:
    """A route's faults at the evaluator's three points, for the agent's sensors and for the private recording
    cameras alike (a second, identically seeded copy), so a --record video shows what the agent saw. Other
    sensors (other observers' private ones) are left alone."""

    def __init__(self, spec: str, seed: int, agent_ids: set[str], video_prefix: str) -> None:
        self.agent = parse_faults(spec, seed)
        self.video = parse_faults(spec, seed)
        self.agent_ids = set(agent_ids)
        self.prefix = video_prefix

    def configure_sensors(self, sensors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The sensors to attach: the agent's and the video's cameras as the faults mount them, in order."""
        n = len(self.prefix)
        mine = self.agent.configure_sensors([s for s in sensors if s["id"] in self.agent_ids])
        video = self.video.configure_sensors([{**s, "id": s["id"][n:]} for s in sensors
                                              if str(s["id"]).startswith(self.prefix)])
        by_id = {s["id"]: s for s in mine} | {self.prefix + s["id"]: {**s, "id": self.prefix + s["id"]}
                                               for s in video}
        return [by_id.get(s["id"], dict(s)) for s in sensors]

    def apply(self, input_data: dict[str, tuple[int, Any]], frame: int) -> dict[str, tuple[int, Any]]:
        """The tick's sensor data with the agent's sensors and the video's cameras faulted."""
        n = len(self.prefix)
        out = dict(input_data)
        out.update(self.agent.apply({k: v for k, v in input_data.items() if k in self.agent_ids}, frame))
        video = {k[n:]: v for k, v in input_data.items() if k.startswith(self.prefix)}
        if video:
            out.update({self.prefix + k: v for k, v in self.video.apply(video, frame).items()})
        return out

    def control(self, control: Any, frame: int) -> Any:
        return self.agent.control(control, frame)
