"""--collect end to end: a short route on the built-in town, tiny cameras, read back by nuscenes-devkit and by the
occvla reader. Each collection runs in a subprocess (libsumo allows one simulation per process)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from occvla.data import NuScenesOccDataset, load_occ3d_labels
from occvla.data.format import EXTRA_TABLE, to_ego_xy
from occvla.data.geometry import quat_yaw
from occvla.data.qa import annotation_qa

REPO = Path(__file__).resolve().parents[2]
VERSION = "v1.0-trainval"

# The ego starts on OccTown01 road 20 heading +y; a parked car is placed 10 m ahead and 4 m to the ego's left,
# a pedestrian 6 m ahead on the right and another one hidden right behind the car. The agent waits 1 s, then creeps ahead.
PLACE = """
import sys
import carla
from agent.collector import CollectOptions
from leaderboard.autoagents import autonomous_agent
from leaderboard.route_runner import RouteOptions, run_route
from sim.factory import make_simulator
from sim.protocol import SimConfig, TrafficConfig
from sim.routes import RouteConfig


class Placer(autonomous_agent.AutonomousAgent):
    privileged = True

    def setup(self, path_to_conf_file):
        self.track = autonomous_agent.Track.SENSORS

    def sensors(self):
        return [{"type": "sensor.speedometer", "id": "SPEED"}]

    def set_privileged(self, sim, route):
        t = route[0][0]
        yaw = t.rotation.yaw  # CARLA: forward (cos, sin), left (sin, -cos)
        import math
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        x, y = t.location.x, t.location.y
        sim.spawn_actor("vehicle.lincoln.mkz_2017",
                        carla.Transform(carla.Location(x + 10 * c + 4 * s, y + 10 * s - 4 * c, 0), t.rotation),
                        source="parked")
        sim.spawn_actor("walker.pedestrian.0001",
                        carla.Transform(carla.Location(x + 6 * c - 3 * s, y + 6 * s + 3 * c, 0), t.rotation))
        sim.spawn_actor("walker.pedestrian.0002",
                        carla.Transform(carla.Location(x + 14.8 * c + 4 * s, y + 14.8 * s - 4 * c, 0), t.rotation))

    def run_step(self, input_data, timestamp):
        go = timestamp > 1.0 and input_data["SPEED"][1]["speed"] < 2.0
        return carla.VehicleControl(throttle=0.3 if go else 0.0, brake=0.0 if go else 1.0)


out, ticks = sys.argv[1], int(sys.argv[2])
config = RouteConfig(id="0", town="OccTown01", keypoints=[(98.25, 209.5, 0.0), (98.25, 259.5, 0.0)], keypoint_yaws=[90.0, 90.0],
                     weathers=[])
sim = make_simulator("embedded", SimConfig(seed=0, traffic=TrafficConfig(vehicles=0, walkers=0, seed=0)))
opts = RouteOptions(agent="placer", seed=0, max_ticks=ticks, weather="ClearNoon",
                    collect=CollectOptions(out_dir=out, width=96, height=54))
outcome = run_route(sim, Placer, config, opts)
sim.close()
print(outcome.record["status"], outcome.message)
"""


def _python() -> str:
    return sys.executable


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _tables(root: Path) -> dict[str, list[dict]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / VERSION).glob("*.json"))}


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("placed") / "ds"
    script = out.parent / "place.py"
    script.write_text(PLACE)
    r = subprocess.run(
        [_python(), str(script), str(out), "130"], env=_env(), capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_tables_and_labels(placed: Path) -> None:
    t = _tables(placed)
    assert len(t["scene"]) == 1 and len(t["sample"]) == 13  # key frames at ticks 10, 20, ..., 130
    assert len(t["sample_data"]) == 6 * 13
    cats = {c["token"]: c["name"] for c in t["category"]}
    inst = {i["token"]: cats[i["category_token"]] for i in t["instance"]}
    assert sorted(inst.values()) == ["human.pedestrian.adult", "human.pedestrian.adult", "vehicle.car"]
    # instance tokens kept across frames: one annotation per instance per sample, linked prev/next
    assert len(t["sample_annotation"]) == 3 * 13
    for i in t["instance"]:
        assert i["nbr_annotations"] == 13
    first = t["sample"][0]
    labels = load_occ3d_labels(placed / "gts" / t["scene"][0]["name"] / first["token"] / "labels.npz")
    assert labels["semantics"].shape == (200, 200, 16) and labels["semantics"].dtype == np.uint8
    assert labels["semantics"].max() <= 17 and labels["mask_camera"].shape == (200, 200, 16)
    raw = np.load(placed / "gts" / t["scene"][0]["name"] / first["token"] / "labels.npz")
    assert set(raw.files) == {"semantics", "mask_lidar", "mask_camera"}
    assert (labels["semantics"] == 4).any() and (labels["semantics"] == 7).any()  # the car and the pedestrian


def test_future_waypoints_are_the_logged_poses(placed: Path) -> None:
    t = _tables(placed)
    pose = {p["token"]: p for p in t["ego_pose"]}
    cam_front = {
        sd["sample_token"]: pose[sd["ego_pose_token"]]
        for sd in t["sample_data"]
        if sd["filename"].startswith("samples/CAM_FRONT/")
    }
    samples = t["sample"]
    info = {r["sample_token"]: r for r in t[EXTRA_TABLE]}
    checked = 0
    for i, s in enumerate(samples):
        rec = info[s["token"]]
        cur = cam_front[s["token"]]
        for k, (wp, ok) in enumerate(zip(rec["trajectory"], rec["trajectory_valid"], strict=True)):
            if not ok:
                assert i + k + 1 >= len(samples)
                continue
            fut = cam_front[samples[i + k + 1]["token"]]
            xy = to_ego_xy(np.array([fut["translation"][:2]]), cur["translation"], quat_yaw(cur["rotation"]))[
                0
            ]
            np.testing.assert_allclose(wp, xy, atol=1e-3)
            checked += 1
    assert checked >= 6 * 7
    moving = [info[s["token"]] for s in samples[3:]]
    assert all(r["speed"] > 0.0 for r in moving)  # the speedometer reading, stored


def test_devkit_opens_and_box_lands_10m_ahead(placed: Path, tmp_path: Path) -> None:
    py = nuscenes_python()
    fig = tmp_path / "six.png"
    r = subprocess.run(
        [
            str(py),
            str(REPO / "scripts" / "nuscenes_check.py"),
            "--dataroot",
            str(placed),
            "--version",
            VERSION,
            "--render",
            str(fig),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["scenes"] == 1 and len(rep["samples"]) == 13 and fig.stat().st_size > 10_000
    s0 = rep["samples"][0]
    assert s0["cams"] == sorted(
        ["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"]
    )
    assert s0["anns"] == 3 and s0["front_cam_boxes"] >= 1
    car = next(b for b in s0["boxes"] if b["category"] == "vehicle.car")
    assert car["ego_xyz"][0] == pytest.approx(10.0, abs=0.2)  # the ego stands at the route start at 0.5 s
    assert car["ego_xyz"][1] == pytest.approx(4.0, abs=0.2)  # left is +y in nuScenes' ego frame
    ped = min(
        (b for b in s0["boxes"] if b["category"] == "human.pedestrian.adult"), key=lambda b: b["ego_xyz"][0]
    )
    assert ped["ego_xyz"][0] == pytest.approx(6.0, abs=0.2) and ped["ego_xyz"][1] == pytest.approx(
        -3.0, abs=0.2
    )


def test_occvla_reader_reads_collected_data(placed: Path, tmp_path: Path) -> None:
    ds = NuScenesOccDataset(placed, image_size=32, occ_grid=(50, 50, 16), cache_dir=tmp_path / "cache")
    assert len(ds) == 13 - 6
    s = ds[0]
    assert s["images"].shape == (6, 32, 32, 3) and s["occupancy"].shape == (50, 50, 16)
    info = {r["sample_token"]: r for r in json.loads((placed / VERSION / f"{EXTRA_TABLE}.json").read_text())}
    rec = info[s["token"]]
    assert s["speed"] == pytest.approx(rec["speed"]) and s["command"] == rec["command"]
    np.testing.assert_allclose(s["trajectory"], rec["trajectory"], atol=1e-3)
    assert s["qa"] == [tuple(p) for p in rec["qa"]]
    np.testing.assert_array_equal(ds[0]["images"], s["images"])  # second read from the cache
    assert list((tmp_path / "cache" / "32x32").glob("*.npy"))
    # the route's plan points as the agent reads them, on both leaderboards' plans
    for plan in ("50", "200"):
        ds_plan = NuScenesOccDataset(placed, image_size=32, load_images=False, load_occupancy=False, route_plan=plan)
        np.testing.assert_allclose(ds_plan[0]["route"], rec["route_points"][plan], atol=1e-6)
    with pytest.raises(ValueError, match="route_plan must be one of"):
        NuScenesOccDataset(placed, route_plan="100")


def test_route_points_follow_the_ego_down_the_route(placed: Path) -> None:
    """The 50 m straight heading +y: in the ego frame every plan point lies on the x axis, the route's end
    (the last point) comes closer by the distance driven, and the segment starts at most a metre ahead (the route
    starts where the first waypoint snaps onto its lane)."""
    t = _tables(placed)
    pose = {p["token"]: p for p in t["ego_pose"]}
    sd = {r["sample_token"]: r for r in t["sample_data"] if r["is_key_frame"]}
    info = {r["sample_token"]: r for r in t[EXTRA_TABLE]}
    start_y = None
    for s in t["sample"]:
        y = pose[sd[s["token"]]["ego_pose_token"]]["translation"][1]
        start_y = y if start_y is None else start_y
        for plan in ("50", "200"):
            pts = np.asarray(info[s["token"]]["route_points"][plan])  # (3, 2)
            assert pts.shape == (3, 2)
            assert np.abs(pts[:, 1]).max() < 0.3, pts  # the ego drives on the route's line
            assert pts[0, 0] <= 1.0 and pts[2, 0] == pytest.approx(50.0 - abs(y - start_y), abs=0.3)


def test_qa_agrees_with_annotations(placed: Path) -> None:
    t = _tables(placed)
    cats = {c["token"]: c["name"] for c in t["category"]}
    inst = {i["token"]: cats[i["category_token"]] for i in t["instance"]}
    pose = {p["token"]: p for p in t["ego_pose"]}
    cam_front = {
        sd["sample_token"]: pose[sd["ego_pose_token"]]
        for sd in t["sample_data"]
        if sd["filename"].startswith("samples/CAM_FRONT/")
    }
    moving_tokens = {
        a["token"] for a in t["attribute"] if a["name"] in ("vehicle.moving", "pedestrian.moving")
    }
    for rec in t[EXTRA_TABLE]:
        cur = cam_front[rec["sample_token"]]
        objs = []
        for a in t["sample_annotation"]:
            if a["sample_token"] != rec["sample_token"]:
                continue
            x, y = to_ego_xy(np.array([a["translation"][:2]]), cur["translation"], quat_yaw(cur["rotation"]))[
                0
            ]
            objs.append(
                {
                    "category": inst[a["instance_token"]],
                    "x": x,
                    "y": y,
                    "moving": bool(set(a["attribute_tokens"]) & moving_tokens),
                }
            )
        meta = rec["meta_action"] if rec["expert_drove"] else rec["expert_meta_action"]  # a learner drove: expert's
        assert [tuple(p) for p in rec["qa"]] == annotation_qa(objs, meta, rec["expert_reason"])
        qa = dict(map(tuple, rec["qa"]))
        assert qa["Are there any pedestrians within 30 meters?"] == "yes"
        assert qa["How many vehicles are within 20 meters?"] == str(
            sum(o["category"].startswith("vehicle.") and math.hypot(o["x"], o["y"]) <= 20 for o in objs)
        )


def test_output_folder_errors(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    r = subprocess.run(
        [_python(), "leaderboard/run.py", "--agent", "expert", "--collect", str(other)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "not empty and holds no dataset" in r.stderr
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    r = subprocess.run(
        [_python(), "leaderboard/run.py", "--agent", "expert", "--collect", str(blocked / "ds")],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("error: cannot write the output folder")


def test_read_only_folder_is_one_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        r = subprocess.run(
            [_python(), "leaderboard/run.py", "--agent", "expert", "--collect", str(ro / "ds")],
            cwd=REPO,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and "permission denied" in r.stderr and r.stderr.strip().count("\n") == 0
    finally:
        ro.chmod(0o700)


ROUTES = """<?xml version="1.0"?>
<routes>
  <route id="0" town="OccTown01">
    <waypoint x="98.25" y="209.5" z="0.0" pitch="0" roll="0" yaw="90"/>
    <waypoint x="36.4" y="298.2" z="0.0" pitch="0" roll="0" yaw="180"/>
  </route>
  <route id="1" town="OccTown01">
    <waypoint x="98.25" y="214.5" z="0.0" pitch="0" roll="0" yaw="90"/>
    <waypoint x="98.25" y="244.5" z="0.0" pitch="0" roll="0" yaw="90"/>
  </route>
</routes>
"""


def _collect_cmd(routes: Path, out: Path, resume: bool = False) -> list[str]:
    """The expert on an empty road, its own cameras off (the collector's render on key frames only)."""
    conf = out.parent / "expert.yaml"
    conf.write_text("cameras: false\n")
    cmd = [
        _python(),
        "leaderboard/run.py",
        "--agent",
        "expert",
        "--agent-config",
        str(conf),
        "--routes",
        str(routes),
        "--collect",
        str(out),
        "--collect-size",
        "64x36",
        "--vehicles",
        "0",
        "--walkers",
        "0",
        "--checkpoint",
        str(out.parent / f"{out.name}.json"),
        "--no-report",
        "--no-progress",
    ]
    return cmd + (["--resume"] if resume else [])


def test_killed_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTES)
    full, cut = tmp_path / "full", tmp_path / "cut"
    r = subprocess.run(
        _collect_cmd(routes, full), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    proc = subprocess.Popen(
        _collect_cmd(routes, cut),
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    journal = cut / ".occvla" / "journal"
    t0 = time.monotonic()
    try:  # kill it in the second route, after a few of its key frames
        while time.monotonic() - t0 < 300 and proc.poll() is None:
            files = sorted(journal.glob("*.jsonl")) if journal.is_dir() else []
            if len(files) == 2 and any(
                f.read_text().count("\n") >= 4 for f in files if "_RouteScenario_1_" in f.name
            ):
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = _tables(cut)  # the tables parse after the kill
    assert 1 <= len(partial["scene"]) <= 2
    r = subprocess.run(
        _collect_cmd(routes, cut, resume=True),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert _tables(cut) == _tables(full)
    _check_expert_plan(_tables(full))
    _check_commands(_tables(full))
    names = sorted(p.relative_to(full) for p in full.rglob("*") if p.is_file() and ".occvla" not in p.parts)
    assert names == sorted(
        p.relative_to(cut) for p in cut.rglob("*") if p.is_file() and ".occvla" not in p.parts
    )


def nuscenes_python() -> Path:
    """The devkit's venv (`make nuscenes-venv`); built here when missing, skipped only when it cannot be built."""
    venv = REPO / ".venv-nuscenes"
    py = venv / "bin" / "python"
    if not py.exists():
        r = subprocess.run(
            ["make", "-C", str(REPO), "nuscenes-venv"], capture_output=True, text=True, timeout=900
        )
        if r.returncode != 0 or not py.exists():
            pytest.skip(
                f"cannot build the nuscenes-devkit venv (make nuscenes-venv): {r.stderr.strip()[-200:]}"
            )
    return py


def _check_expert_plan(t: dict[str, list[dict]]) -> None:
    """On an empty road at a steady speed the expert's 3 s plan is the future it then drives (within 0.3 m)."""
    assert all(r["expert_drove"] is True for r in t[EXTRA_TABLE])
    steady = 0
    by_scene: dict[str, list[dict]] = {}
    for r in t[EXTRA_TABLE]:
        by_scene.setdefault(r["scene"], []).append(r)
    for recs in by_scene.values():
        recs.sort(key=lambda r: r["frame"])
        for i, r in enumerate(recs[:-6]):
            if (
                r["expert_reason"] in ("cruise", "speed_limit")
                and abs(recs[i + 6]["speed"] - r["speed"]) < 0.3
                and all(r["trajectory_valid"])
            ):
                err = np.hypot(*(np.asarray(r["expert_plan"][-1]) - np.asarray(r["trajectory"][-1])))
                assert err < 0.3, (r["frame"], r["expert_plan"][-1], r["trajectory"][-1])
                steady += 1
    assert steady >= 3


def test_visibility_and_shadow_expert(placed: Path) -> None:
    """At the first key frame the car and the pedestrian in plain view are v80-100, the pedestrian right behind the
    car is mostly hidden (its head shows above the roof); the agent that drives is not the expert, so the labels
    come from the shadow expert's plan."""
    t = _tables(placed)
    first = t["sample"][0]["token"]
    anns = [a for a in t["sample_annotation"] if a["sample_token"] == first]
    car = [a["visibility_token"] for a in anns if a["size"][1] > 4.0]
    peds = sorted((a for a in anns if a["size"][1] < 1.0), key=lambda a: a["num_lidar_pts"])
    assert car == ["4"] and peds[-1]["visibility_token"] == "4" and peds[0]["visibility_token"] in ("1", "2")
    info = {r["sample_token"]: r for r in t[EXTRA_TABLE]}[first]
    plan = np.asarray(info["expert_plan"])
    assert plan.shape == (6, 2) and np.all(np.diff(plan[:, 0]) >= 0)  # forward along the route
    assert info["expert_reason"] and not info["perturbed"]
    assert all(r["expert_drove"] is False for r in t[EXTRA_TABLE])  # the reader then labels with the plan


def test_perturbations_are_seeded() -> None:
    import carla

    from agent.collector import CollectOptions, DataCollector

    def run(seed: int) -> list[tuple[float, float]]:
        dc = DataCollector(CollectOptions(out_dir="unused", perturb=True, perturb_rate=1.0), seed=seed)
        dc.rng = np.random.default_rng(seed)
        dc.perturb_left = 0
        out = []
        for f in range(400):
            c = dc.on_control(None, carla.VehicleControl(throttle=0.5, steer=0.0), f)
            out.append((round(c.steer, 6), round(c.brake, 6)))
        return out

    a, b, c = run(0), run(0), run(1)
    assert a == b and a != c
    changed = [x for x in a if x != (0.0, 0.0)]
    assert 0.1 * len(a) < len(changed) < len(a)  # excursions, not a constant offset
    assert all(abs(s) <= 0.3 + 1e-6 and 0.0 <= br <= 0.6 + 1e-6 for s, br in a)


FULL_DISK = """
import errno, os, sys
real = os.replace


def replace(a, b):
    if "/samples/" in str(b) and len(os.listdir(os.path.dirname(str(b)))) > 2:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(a, b)


os.replace = replace
from leaderboard.run import main
sys.exit(main(sys.argv[1:]))
"""


def test_full_disk_stops_the_run_in_one_line(tmp_path: Path) -> None:
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTES)
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    cmd = [_python(), str(script), *_collect_cmd(routes, tmp_path / "ds")[2:]]
    r = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if "no space left" in ln]
    assert (
        len(lines) == 1 and "DataCollector failed: DatasetWriteError: no space left on the device" in lines[0]
    )
    assert "Traceback" not in r.stderr
    assert json.loads((tmp_path / "ds" / VERSION / "sample.json").read_text())  # the finished key frames stay


def _check_commands(t: dict[str, list[dict]]) -> None:
    """Route 0 turns right at one junction: its stored commands (the OccVLA agent's RouteCommands on the GPS plan)
    follow the lane, then say RIGHT where the route turns."""
    recs = sorted((r for r in t[EXTRA_TABLE] if "_RouteScenario_0_" in r["scene"]), key=lambda r: r["frame"])
    cmds = [r["command"] for r in recs]
    assert set(cmds) == {2, 4} and cmds[0] == 4
    first_right = cmds.index(2)
    assert all(c == 4 for c in cmds[:first_right])
