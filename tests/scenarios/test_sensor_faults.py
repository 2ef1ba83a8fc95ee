"""Sensor faults change the agent's input_data deterministically and leave every other sensor untouched."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios import make_scenario, registered_ids
from scenarios.sensor_faults import SensorFaultError, is_camera
from sim.sensors import CAMERA_ORDER

FAULT_IDS = registered_ids("fault")


def input_data(frame: int, seed: int = 0) -> dict:
    """Leaderboard-format input: six rig cameras (H, W, 4) BGRA uint8 with structure, GNSS, IMU, speedometer."""
    rng = np.random.default_rng(seed + frame)
    h, w = 45, 80
    grad = np.linspace(0, 200, w, dtype=np.float32)[None, :, None]  # (1, W, 1)
    data = {}
    for k, cam in enumerate(CAMERA_ORDER):
        img = np.empty((h, w, 4), np.uint8)
        img[..., :3] = np.clip(grad + 10 * k + rng.integers(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
        img[..., 3] = 255
        data[cam] = (frame, img)
    data["GPS"] = (frame, np.array([49.001, 8.002, 1.5]))
    data["IMU"] = (frame, np.array([0.1, 0.0, 9.81, 0.0, 0.0, 0.01, 1.0]))
    data["SPEED"] = (frame, {"speed": 5.0})
    return data


# which ids each fault may change
INPUT_IDENTITY = {"fault/extrinsic_miscalibration", "fault/delayed_control"}  # act on sensors / control only


def expected_targets(fid: str) -> set[str]:
    if fid.startswith("fault/camera_black_"):
        return {fid.removeprefix("fault/camera_black_")}
    if fid == "fault/camera_blackout":
        return {"CAM_FRONT"}
    if fid in INPUT_IDENTITY:
        return set()
    return {"fault/gnss_noise": {"GPS"}, "fault/speedometer_bias": {"SPEED"}, "fault/imu_noise": {"IMU"}}.get(
        fid, set(CAMERA_ORDER))


def run(fault, frames: range, seed: int = 0) -> list[dict]:
    return [fault.apply(input_data(f, seed), f) for f in frames]


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a == b
    return np.array_equal(a, b)


@pytest.mark.parametrize("fid", FAULT_IDS)
def test_fault_is_deterministic_and_targeted(fid):
    frames = range(60)
    a = run(make_scenario(fid, seed=5), frames)
    b = run(make_scenario(fid, seed=5), frames)
    targets = expected_targets(fid)
    changed: set[str] = set()
    for f, (out_a, out_b) in zip(frames, zip(a, b)):
        original = input_data(f)
        assert set(out_a) == set(original)
        for sid, (fr, data) in out_a.items():
            assert fr == f or (fid == "fault/low_frame_rate" and f - 2 <= fr < f)  # a stale frame keeps its number
            assert same(data, out_b[sid][1]), f"{fid}: {sid} differs between two runs with the same seed"
            if not same(data, original[sid][1]):
                changed.add(sid)
                if is_camera(data):
                    assert data.shape == original[sid][1].shape and data.dtype == np.uint8
    assert changed <= targets, f"{fid} changed {sorted(changed)}, may change {sorted(targets)}"
    assert changed or fid in INPUT_IDENTITY, f"{fid} changed nothing"


@pytest.mark.parametrize("fid", FAULT_IDS)
def test_fault_never_mutates_its_input(fid):
    fault = make_scenario(fid, seed=1)
    for f in range(30):
        data = input_data(f)
        keep = {k: (v[1].copy() if isinstance(v[1], np.ndarray) else dict(v[1])) for k, v in data.items()}
        out = fault.apply(data, f)
        for k, v in data.items():
            assert same(v[1], keep[k]), f"{fid} modified its input {k} in place"
        for k in set(out) - expected_targets(fid):
            assert out[k] is data[k]  # non-targeted entries pass through as the same objects


def test_fault_parameters_and_windows():
    noisy = make_scenario("fault/gaussian_noise", seed=0, sigma=20.0, start_frame=10, end_frame=20)
    for f in (5, 25):
        d = input_data(f)
        assert all(noisy.apply(d, f)[c] is d[c] for c in CAMERA_ORDER)
    d = input_data(15)
    assert not np.array_equal(noisy.apply(d, 15)["CAM_FRONT"][1], d["CAM_FRONT"][1])
    other = make_scenario("fault/gaussian_noise", seed=1, sigma=20.0)
    assert not np.array_equal(other.apply(d, 15)["CAM_FRONT"][1], noisy.apply(d, 15)["CAM_FRONT"][1])
    only = make_scenario("fault/gaussian_noise", sensors=["CAM_BACK"])
    out = only.apply(d, 0)
    assert [c for c in CAMERA_ORDER if out[c] is not d[c]] == ["CAM_BACK"]
    black = make_scenario("fault/camera_black_CAM_FRONT").apply(d, 0)["CAM_FRONT"][1]
    assert black[..., :3].max() == 0 and (black[..., 3] == 255).all()
    with pytest.raises(SensorFaultError, match="p must be in"):
        make_scenario("fault/camera_dropout", p=1.5)
    with pytest.raises(SensorFaultError, match="unknown parameter"):
        make_scenario("fault/gnss_noise", sigmaa=1.0)


def test_gnss_and_speed_faults_have_the_intended_size():
    gnss = make_scenario("fault/gnss_noise", seed=0, sigma=2.0, drift=0.0)
    errs = []
    for f in range(200):
        d = input_data(f)
        lat, lon, _ = gnss.apply(d, f)["GPS"][1]
        north = np.radians(lat - 49.001) * 6378137.0
        east = np.radians(lon - 8.002) * 6378137.0 * np.cos(np.radians(49.001))
        errs.append((north, east))
    std = np.std(np.array(errs), axis=0)
    assert np.all((std > 1.6) & (std < 2.4)), std
    speed = make_scenario("fault/speedometer_bias", scale=0.1, offset=0.3).apply(input_data(0), 0)["SPEED"][1]
    assert speed == {"speed": pytest.approx(5.0 * 1.1 + 0.3)}


def test_frozen_frame_repeats_the_last_image():
    fault = make_scenario("fault/frozen_frame", seed=0, period=10, duration=4)
    outs = run(fault, range(30))
    repeats = sum(np.array_equal(outs[f]["CAM_FRONT"][1], outs[f - 1]["CAM_FRONT"][1]) for f in range(1, 30))
    assert 8 <= repeats <= 12  # about duration out of every period frames
