"""The robustness faults at severities 1-3: each changes what it specifies, by the specified amount, and nothing
else; faults compose in the order written; the CLI list parses to exactly that."""

from __future__ import annotations

import math

import carla
import numpy as np
import pytest

from scenarios.sensor_faults import (
    SEVERITIES,
    FaultedRoute,
    SensorFaultError,
    make_fault,
    parse_fault_items,
    parse_faults,
)
from sim.sensors import CAMERA_ORDER, rig_sensor_dicts

H, W = 90, 160
GPS0 = np.array([49.001, 8.002, 1.5])


def scene(frame: int) -> dict:
    """Six cameras with structure (a moving vertical bar on a gradient, mid-grey so noise is not clipped),
    GNSS, IMU and a speedometer, as the leaderboard delivers them."""
    data = {}
    for k, cam in enumerate(CAMERA_ORDER):
        img = np.empty((H, W, 4), np.uint8)
        img[..., :3] = (60 + np.linspace(0, 100, W)[None, :, None] + 5 * k).astype(np.uint8)
        x = (frame * 3 + 20 * k) % (W - 8)
        img[:, x : x + 8, :3] = 240
        img[..., 3] = 255
        data[cam] = (frame, img)
    data["GPS"] = (frame, GPS0.copy())
    data["IMU"] = (frame, np.array([0.1, 0.0, 9.81, 0.0, 0.0, 0.01, 1.0]))
    data["SPEED"] = (frame, {"speed": 5.0})
    return data


def run(fault, n: int = 80) -> tuple[list[dict], list[dict]]:
    ins = [scene(f) for f in range(n)]
    return ins, [fault.apply(d, f) for f, d in enumerate(ins)]


def changed_ids(ins: list[dict], outs: list[dict]) -> set[str]:
    out = set()
    for a, b in zip(ins, outs):
        for k in a:
            if b[k] is not a[k]:
                va, vb = a[k][1], b[k][1]
                if isinstance(va, dict) and va != vb:
                    out.add(k)
                elif isinstance(va, np.ndarray) and (a[k][0] != b[k][0] or not np.array_equal(va, vb)):
                    out.add(k)
    return out


CAMERA_FAULTS = ["lens_occlusion", "gaussian_noise", "motion_blur", "frozen_camera", "low_frame_rate"]


@pytest.mark.parametrize("severity", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(SEVERITIES))
def test_each_fault_touches_only_its_targets(name: str, severity: int) -> None:
    ins, outs = run(make_fault(name, severity, seed=3))
    targets = {
        "camera_blackout": set(SEVERITIES["camera_blackout"][1][severity - 1]["cameras"]),
        "gnss_noise": {"GPS"},
        "extrinsic_miscalibration": set(),  # acts on the sensor set-up only
        "delayed_control": set(),  # acts on the control only
    }.get(name, set(CAMERA_ORDER))
    got = changed_ids(ins, outs)
    assert got == targets, f"{name}:{severity} changed {sorted(got)}, expected {sorted(targets)}"
    for a, b in zip(ins, outs):
        for k in set(a) - targets:
            assert b[k] is a[k]  # untouched entries are the very same objects


def test_camera_blackout_levels() -> None:
    for sev, dead in (
        (1, {"CAM_FRONT_RIGHT"}),
        (2, {"CAM_FRONT"}),
        (3, {"CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT"}),
    ):
        out = make_fault("camera_blackout", sev).apply(scene(5), 5)
        for cam in CAMERA_ORDER:
            img = out[cam][1]
            assert (img[..., :3].max() == 0) == (cam in dead)
            assert (img[..., 3] == 255).all()


def test_lens_occlusion_covers_more_with_severity_and_leaves_clear_glass_alone() -> None:
    covered = []
    for sev in (1, 2, 3):
        f = make_fault("lens_occlusion", sev, seed=1)
        d = scene(0)
        out = f.apply(d, 0)["CAM_FRONT"][1]
        m = f.mask("CAM_FRONT", (H, W))
        clear = m == 0.0
        assert np.array_equal(out[clear], d["CAM_FRONT"][1][clear])
        assert np.abs(out[m > 0.9].astype(int) - d["CAM_FRONT"][1][m > 0.9]).mean() > 30
        covered.append(float((m > 0.5).mean()))
    assert covered[0] < covered[1] < covered[2]
    assert covered[2] == pytest.approx(0.25, abs=0.12)


def test_gaussian_noise_has_the_severity_sigma() -> None:
    for sev in (1, 2, 3):
        sigma = SEVERITIES["gaussian_noise"][1][sev - 1]["sigma"]
        d = scene(0)
        d["CAM_FRONT"] = (0, np.full((H, W, 4), 128, np.uint8))
        out = make_fault("gaussian_noise", sev, seed=2).apply(d, 0)["CAM_FRONT"][1]
        res = out[..., :3].astype(float) - 128.0
        assert res.std() == pytest.approx(sigma, rel=0.08)
        assert abs(res.mean()) < 0.1 * sigma + 0.5
        assert (out[..., 3] == 128).all()  # alpha untouched


def test_motion_blur_spreads_a_vertical_edge_by_the_severity_length() -> None:
    widths = []
    for sev in (1, 2, 3):
        f = make_fault("motion_blur", sev)
        img = np.zeros((H, W, 4), np.uint8)
        img[:, W // 2 :, :3] = 200
        img[..., 3] = 255
        out = f.apply({"CAM_FRONT": (0, img)}, 0)["CAM_FRONT"][1]
        row = out[H // 2, :, 0].astype(int)
        ramp = int(((row > 5) & (row < 195)).sum())  # pixels on the blurred edge
        k = f.kernel(W).shape[0]
        assert ramp == pytest.approx(k - 1, abs=2)
        assert np.array_equal(out[:, :, 0], np.tile(out[:1, :, 0], (H, 1)))  # horizontal: rows stay alike
        widths.append(ramp)
    assert widths[0] < widths[1] < widths[2]


def test_frozen_camera_repeats_frames_in_the_severity_share() -> None:
    for sev, share in ((1, 10 / 60), (2, 30 / 60), (3, 1.0)):
        ins, outs = run(make_fault("frozen_camera", sev, seed=4), n=240)
        rep = np.mean(
            [np.array_equal(outs[f]["CAM_FRONT"][1], outs[f - 1]["CAM_FRONT"][1]) for f in range(1, 240)]
        )
        assert rep == pytest.approx(share, abs=0.03 if sev < 3 else 0.0)


def test_low_frame_rate_delivers_at_the_severity_rate() -> None:
    for sev, hz in ((1, 10.0), (2, 5.0), (3, 2.0)):
        ins, outs = run(make_fault("low_frame_rate", sev), n=200)  # 10 s at 20 Hz
        delivered = {outs[f]["CAM_FRONT"][0] for f in range(200)}
        assert len(delivered) == pytest.approx(hz * 10, abs=1)
        stamps = sorted(delivered)
        assert set(np.diff(stamps)) == {round(20 / hz)}  # evenly spaced
        for f in range(200):  # the image is the one of its frame number
            fr, img = outs[f]["CAM_FRONT"]
            assert np.array_equal(img, ins[fr]["CAM_FRONT"][1])


def test_extrinsic_miscalibration_rotates_the_mounts_by_the_severity_angles() -> None:
    rig = rig_sensor_dicts(400, 225) + [{"type": "sensor.other.gnss", "id": "GPS", "x": 0, "y": 0, "z": 0}]
    for sev in (1, 2, 3):
        p = SEVERITIES["extrinsic_miscalibration"][1][sev - 1]
        f = make_fault("extrinsic_miscalibration", sev, seed=9)
        out = f.configure_sensors(rig)
        assert rig[0]["yaw"] == 0.0  # the agent's list is not changed
        for a, b in zip(rig, out):
            if a["type"] == "sensor.camera.rgb":
                assert abs(b["yaw"] - a["yaw"]) == pytest.approx(p["yaw"])
                assert abs(b["pitch"] - a["pitch"]) == pytest.approx(p["pitch"])
                assert (b["x"], b["y"], b["z"], b["fov"]) == (a["x"], a["y"], a["z"], a["fov"])
            else:
                assert b == a
        d = scene(0)
        assert all(f.apply(d, 0)[k] is d[k] for k in d)  # the images are rendered, never warped
    # the same seed rotates the same way; the signs differ between cameras
    again = make_fault("extrinsic_miscalibration", 2, seed=9).configure_sensors(rig)
    assert again == make_fault("extrinsic_miscalibration", 2, seed=9).configure_sensors(rig)
    assert len({math.copysign(1, b["yaw"] - a["yaw"]) for a, b in zip(rig[:6], again[:6])}) == 2


def test_extrinsic_miscalibration_is_rendered_from_the_rotated_pose(tmp_path) -> None:
    """The embedded simulator renders the rotated camera: the image equals one from a camera mounted there."""
    import sim
    from sim.protocol import SimConfig, TrafficConfig

    f = make_fault("extrinsic_miscalibration", 3, seed=0)
    front = [s for s in rig_sensor_dicts(160, 90) if s["id"] == "CAM_FRONT"]
    rotated = f.configure_sensors(front)
    s = sim.make_simulator("embedded", SimConfig(seed=0, traffic=TrafficConfig(vehicles=0, walkers=0)))
    try:
        cmap = s.load_town("OccTown01")
        wp = cmap.generate_waypoints(20.0)[0]
        tf = wp.transform
        s.spawn_ego(carla.Transform(carla.Location(tf.location.x, tf.location.y, 0.5), tf.rotation))
        s.attach_sensors(
            front
            + [
                {**rotated[0], "id": "CAM_ROT"},
                {**front[0], "id": "CAM_SAME", "yaw": rotated[0]["yaw"], "pitch": rotated[0]["pitch"]},
            ]
        )
        data = s.tick()
    finally:
        s.close()
    diff = np.abs(data["CAM_ROT"][1].astype(int) - data["CAM_SAME"][1])
    assert (
        diff > 0
    ).mean() < 1e-3  # the same image up to a few edge pixels (their place in the atlas differs)
    assert np.abs(data["CAM_ROT"][1].astype(int) - data["CAM_FRONT"][1]).mean() > 2.0


def test_gnss_noise_has_the_severity_size() -> None:
    for sev in (1, 2, 3):
        p = SEVERITIES["gnss_noise"][1][sev - 1]
        f = make_fault("gnss_noise", sev, seed=5)
        errs = []
        for fr in range(400):
            lat, lon, _ = f.apply(scene(fr), fr)["GPS"][1]
            errs.append(
                (
                    math.radians(lat - GPS0[0]) * 6378137.0,
                    math.radians(lon - GPS0[1]) * 6378137.0 * math.cos(math.radians(GPS0[0])),
                )
            )
        e = np.array(errs)
        resid = e - np.cumsum(np.zeros_like(e), axis=0)
        # white part: frame-to-frame differences have std sigma * sqrt(2) (plus the tiny drift step)
        step = np.diff(resid, axis=0).std(axis=0) / math.sqrt(2.0)
        assert np.all(np.abs(step - p["sigma"]) < 0.15 * p["sigma"] + p["drift"]), (sev, step)


def test_delayed_control_arrives_the_severity_ticks_late() -> None:
    for sev, ticks in ((1, 2), (2, 5), (3, 10)):
        f = make_fault("delayed_control", sev)
        sent = [carla.VehicleControl(throttle=0.01 * k, steer=0.001 * k) for k in range(40)]
        got = [f.control(c, k) for k, c in enumerate(sent)]
        for k in range(40):
            want = sent[k - ticks] if k >= ticks else carla.VehicleControl()
            assert (got[k].throttle, got[k].steer, got[k].brake) == (want.throttle, want.steer, want.brake)


def test_faults_compose_in_the_order_written() -> None:
    d = scene(0)
    noise_then_black = parse_faults("gaussian_noise:2,camera_blackout:2", seed=0).apply(d, 0)["CAM_FRONT"][1]
    black_then_noise = parse_faults("camera_blackout:2,gaussian_noise:2", seed=0).apply(d, 0)["CAM_FRONT"][1]
    assert noise_then_black[..., :3].max() == 0  # the dead camera delivers black, noise or not
    assert black_then_noise[..., :3].std() > 5  # noise on the black frame
    # a composition is exactly its members applied one after the other
    comp = parse_faults("motion_blur:2,gnss_noise:1,low_frame_rate:2", seed=7)
    members = comp.faults
    fresh = parse_faults("motion_blur:2,gnss_noise:1,low_frame_rate:2", seed=7).faults
    for fr in range(30):
        x = scene(fr)
        a = comp.apply(x, fr)
        b = x
        for m in fresh:
            b = m.apply(b, fr)
        for k in x:
            va, vb = a[k][1], b[k][1]
            assert (va == vb) if isinstance(va, dict) else np.array_equal(va, vb)
    assert [type(m).__name__ for m in members] == ["MotionBlur", "GnssNoise", "LowFrameRate"]
    # sensor set-up and control compose too
    both = parse_faults("extrinsic_miscalibration:1,delayed_control:1,extrinsic_miscalibration:1")
    cams = both.configure_sensors(rig_sensor_dicts(400, 225))
    assert all(abs(c["yaw"] - r["yaw"]) in (0.0, 2.0) for c, r in zip(cams, rig_sensor_dicts(400, 225)))


def test_cli_list_parses_and_bad_items_are_one_line_errors() -> None:
    assert parse_fault_items("motion_blur:2,gnss_noise:1") == [("motion_blur", 2), ("gnss_noise", 1)]
    assert parse_fault_items("fault/gaussian_noise") == [("fault/gaussian_noise", 1)]
    for bad, msg in (
        ("motion_blur:4", "severity must be 1, 2 or 3"),
        ("blur:1", "unknown sensor fault"),
        ("motion_blur:x", "severity"),
        ("motion_blur:1,,gnss_noise", "empty item"),
    ):
        with pytest.raises(SensorFaultError, match=msg):
            parse_faults(bad)


def test_video_sees_what_the_agent_sees() -> None:
    """FaultedRoute: the private recording cameras get the same faults as the agent's cameras; other private
    sensors are left alone."""
    fr = FaultedRoute(
        "camera_blackout:2,frozen_camera:3,extrinsic_miscalibration:3",
        seed=1,
        agent_ids=set(CAMERA_ORDER),
        video_prefix="_rec_",
    )
    rig = rig_sensor_dicts(64, 36)
    other = {**rig[0], "id": "_collect_CAM_FRONT"}
    sensors = fr.configure_sensors(
        rig + [{**s, "id": "_rec_" + s["id"]} for s in rig_sensor_dicts(32, 18)] + [other]
    )
    by_id = {s["id"]: s for s in sensors}
    assert by_id["CAM_FRONT"]["yaw"] == by_id["_rec_CAM_FRONT"]["yaw"] != 0.0  # the same rotated mount
    assert by_id["_collect_CAM_FRONT"] == other
    for f in range(5):
        d = scene(f)
        d.update({"_rec_" + k: v for k, v in scene(f).items() if k in CAMERA_ORDER})
        d["_collect_CAM_FRONT"] = scene(f)["CAM_FRONT"]
        out = fr.apply(d, f)
        assert out["CAM_FRONT"][1][..., :3].max() == 0 and out["_rec_CAM_FRONT"][1][..., :3].max() == 0
        assert np.array_equal(out["_rec_CAM_BACK"][1], scene(0)["CAM_BACK"][1])  # frozen since frame 0
        assert np.array_equal(out["CAM_BACK"][1], scene(0)["CAM_BACK"][1])
        assert out["_collect_CAM_FRONT"] is d["_collect_CAM_FRONT"]
