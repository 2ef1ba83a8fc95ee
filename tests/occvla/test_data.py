"""Dataset round trip: synthetic nuScenes-layout writer -> reader -> contract sample dicts; pooling; bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from occvla.commands import Command
from occvla.data import (
    NuScenesOccDataset,
    command_from_trajectory,
    load_occ3d_labels,
    make_synthetic_dataset,
    occ3d_label_path,
    pool_occupancy,
    pool_occupancy_to,
)
from occvla.data.geometry import yaw_to_quat
from occvla.meta_actions import META_ACTIONS


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    # scenes 0..2 with seed 0: straight, turn left, lane change left
    return make_synthetic_dataset(tmp_path_factory.mktemp("syn") / "ds", n_scenes=3, n_samples=8,
                                  image_size=(32, 48), seed=0)


def test_round_trip_shapes(dataset_root: Path) -> None:
    ds = NuScenesOccDataset(dataset_root, image_size=32, occ_grid=(50, 50, 16))
    assert len(ds) == 3 * (8 - 6)  # samples with 6 future key frames
    s = ds[0]
    assert s["images"].shape == (6, 32, 32, 3) and s["images"].dtype == np.uint8
    assert s["trajectory"].shape == (6, 2) and s["trajectory"].dtype == np.float32
    assert s["occupancy"].shape == (50, 50, 16) and s["occupancy"].dtype == np.uint8
    assert s["mask_camera"].shape == (50, 50, 16) and s["mask_camera"].dtype == bool
    assert isinstance(s["speed"], float) and s["command"] in [int(c) for c in Command]
    assert s["meta_action"] in META_ACTIONS and isinstance(s["token"], str)
    assert s["agent_boxes"].shape[0] == 6 and s["agent_boxes"].shape[-1] == 5
    assert all(isinstance(q, str) and isinstance(a, str) for q, a in s["qa"])
    full = load_occ3d_labels(occ3d_label_path(dataset_root, s["scene"], s["token"]))
    assert full["semantics"].shape == (200, 200, 16)
    no_img = NuScenesOccDataset(dataset_root, load_images=False, load_occupancy=False, generate_qa=False)
    assert set(no_img[0]) >= {"trajectory", "speed", "command", "meta_action"} and "images" not in no_img[0]


def test_synthetic_manoeuvres_are_labelled(dataset_root: Path) -> None:
    ds = NuScenesOccDataset(dataset_root, load_images=False, load_occupancy=False)
    by_scene = {}
    for i in range(len(ds)):
        s = ds[i]
        by_scene.setdefault(s["scene"], []).append(s)
    straight, turn, _ = (by_scene[k] for k in sorted(by_scene))
    s = straight[0]  # constant speed along the road, random global pose: the frame conversion must undo it
    t = np.arange(1, 7) * 0.5
    np.testing.assert_allclose(s["trajectory"][:, 0], s["speed"] * t, rtol=1e-3)
    np.testing.assert_allclose(s["trajectory"][:, 1], 0.0, atol=1e-3)
    assert s["meta_action"] == "keep lane, keep speed"
    assert s["command"] == int(Command.LANEFOLLOW)
    assert turn[0]["meta_action"].startswith("turn left") and turn[0]["command"] == int(Command.LEFT)


def test_trajectory_in_ego_frame_for_known_motion(dataset_root: Path, tmp_path: Path) -> None:
    """Ego facing global +y (yaw 90 deg) and moving along global +x at 3 m per key frame: it moves to its right."""
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(dataset_root, root)
    tdir = root / "v1.0-mini"
    ds = NuScenesOccDataset(root, load_images=False, load_occupancy=False)
    scene_tokens = [tok for tok in ds.index if ds.scene_of[tok]["name"] == ds.scene_of[ds.index[0]]["name"]]
    chain = [scene_tokens[0], *ds.future[scene_tokens[0]]]
    pose_of = {ds._pose(tok)["token"]: i for i, tok in enumerate(chain)}
    poses = json.loads((tdir / "ego_pose.json").read_text())
    for p in poses:
        if p["token"] in pose_of:
            i = pose_of[p["token"]]
            p["translation"] = [100.0 + 3.0 * i, -50.0, 0.0]
            p["rotation"] = yaw_to_quat(math.pi / 2)
    (tdir / "ego_pose.json").write_text(json.dumps(poses))
    info = json.loads((tdir / "occvla_sample_info.json").read_text())
    for r in info:
        del r["speed"]  # as real nuScenes: no speedometer reading stored
    (tdir / "occvla_sample_info.json").write_text(json.dumps(info))
    ds = NuScenesOccDataset(root, load_images=False, load_occupancy=False)
    s = ds.get(chain[0])
    expected = np.stack([np.zeros(6), -3.0 * np.arange(1, 7)], 1)
    np.testing.assert_allclose(s["trajectory"], expected, atol=1e-5)
    assert s["speed"] == 0.0  # the scene start has no past key frame, and the future is never used
    assert ds.get(chain[1])["speed"] == pytest.approx(6.0)  # backward difference: 3 m / 0.5 s
    assert s["meta_action"] == "keep lane, keep speed" or s["meta_action"].startswith("turn right")


def test_pooling_rules() -> None:
    sem = np.full((4, 4, 2), 17, np.uint8)
    sem[0, 0, 0] = 7  # one pedestrian voxel survives pooling (any occupied voxel)
    sem[2:4, 2:4, 0] = 11
    sem[3, 3, 0] = 4
    mask = np.zeros_like(sem, bool)
    mask[1, 1, 1] = True
    p, m = pool_occupancy(sem, mask, 2)
    assert p.shape == (2, 2, 2)
    assert p[0, 0, 0] == 7 and p[1, 1, 0] == 11 and p[0, 1, 0] == 17 and p[1, 1, 1] == 17
    assert m[0, 0, 1] and m.sum() == 1
    p2, _ = pool_occupancy_to(np.random.default_rng(0).integers(0, 18, (200, 200, 16)), None, (32, 32, 8))
    assert p2.shape == (32, 32, 8)
    with pytest.raises(ValueError, match="divisible"):
        pool_occupancy(sem, mask, 3)


def test_command_from_trajectory() -> None:
    t = np.zeros((6, 2))
    assert command_from_trajectory(t) == Command.LANEFOLLOW
    t[-1, 1] = 5.0
    assert command_from_trajectory(t) == Command.LEFT
    t[-1, 1] = -5.0
    assert command_from_trajectory(t) == Command.RIGHT


def test_bad_input_errors_name_the_file(dataset_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(dataset_root, root)
    ds = NuScenesOccDataset(root)
    s0 = ds.index[0]
    # wrong label shape
    lab = occ3d_label_path(root, ds.scene_of[s0]["name"], s0)
    np.savez(lab, semantics=np.zeros((10, 10, 2), np.uint8), mask_camera=np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError, match=r"labels\.npz.*shape"):
        ds[0]
    # missing image
    img = root / ds.sd_by_sample[ds.index[1]]["CAM_BACK"]["filename"]
    img.unlink()
    with pytest.raises(FileNotFoundError, match="CAM_BACK"):
        ds[1]
    # missing table
    (root / "v1.0-mini" / "ego_pose.json").unlink()
    with pytest.raises(FileNotFoundError, match="ego_pose.json"):
        NuScenesOccDataset(root)
    with pytest.raises(ValueError, match="v1.0"):
        NuScenesOccDataset(tmp_path)


def test_trajectory_source_relabels_perturbed_futures_with_the_expert_plan(dataset_root: Path, tmp_path: Path) -> None:
    """Recovery data: where a --perturb excursion lies in a sample's 3 s future, the driven future is not a label
    to learn; 'expert_plan_when_perturbed' puts the expert's plan from the same state there (meta-action follows),
    'expert_plan' everywhere, 'driven' nowhere; a bad name is refused."""
    import json
    import shutil

    from occvla.data.nuscenes import NuScenesOccDataset as DS

    root = tmp_path / "ds"
    shutil.copytree(dataset_root, root)
    info_path = next(root.glob("v1.0-*/occvla_sample_info.json"))
    info = json.loads(info_path.read_text())
    base = DS(root, load_images=False, load_occupancy=False, drop_incomplete=False)
    scene0 = [t for t in base.index if base.scene_of[t]["name"] == base.scene_of[base.index[0]]["name"]]
    perturbed = scene0[6]  # the 7th key frame: in the future of samples 0..5, not of 7
    plan = [[1.0 * k, 0.5 * k] for k in range(1, 7)]  # a left-drifting plan unlike every driven future
    for rec in info:
        rec["expert_plan"] = plan
        rec["perturbed"] = rec["sample_token"] == perturbed
    info_path.write_text(json.dumps(info))

    def labels(source: str) -> dict[str, bool]:
        ds = DS(root, load_images=False, load_occupancy=False, drop_incomplete=False, trajectory_source=source)
        return {t: np.allclose(ds.get(t)["trajectory"], plan) for t in scene0}

    when = labels("expert_plan_when_perturbed")
    assert [when[t] for t in scene0] == [True] * 7 + [False] * (len(scene0) - 7)
    assert all(labels("expert_plan").values()) and not any(labels("driven").values())
    ds = DS(root, load_images=False, load_occupancy=False, drop_incomplete=False, trajectory_source="expert_plan")
    driven = DS(root, load_images=False, load_occupancy=False, drop_incomplete=False)
    assert driven.get(scene0[0])["meta_action"].startswith("keep lane")  # scene 0 drives straight
    assert "left" in ds.get(scene0[0])["meta_action"]  # the meta-action follows the plan
    with pytest.raises(ValueError, match="trajectory_source must be one of"):
        DS(root, trajectory_source="plan")


def test_drop_stuck_leaves_out_frames_where_the_expert_wanted_to_go_but_stood(dataset_root: Path, tmp_path: Path) -> None:
    """A stuck expert (target speed up, speed zero, no motion in its 3 s future) labels "stop" for no visible
    reason; standing at a red light (target speed zero) is a real label and stays; without the fields, nothing
    is dropped."""
    import json
    import shutil

    from occvla.data.nuscenes import NuScenesOccDataset as DS

    root = tmp_path / "ds"
    shutil.copytree(dataset_root, root)
    tables = next(root.glob("v1.0-*"))
    base = DS(root, load_images=False, load_occupancy=False)
    first_scene = base.scene_of[base.index[0]]["name"]
    scene0 = [t for t, sc in base.scene_of.items() if sc["name"] == first_scene]
    # the ego of scene 0 stands still at its first pose
    poses = {p["token"]: p for p in json.loads((tables / "ego_pose.json").read_text())}
    pose_tokens = {base.sd_by_sample[t][c]["ego_pose_token"] for t in scene0 for c in base.sd_by_sample[t]}
    anchor = poses[base.sd_by_sample[scene0[0]]["CAM_FRONT"]["ego_pose_token"]]
    for tok in pose_tokens:
        poses[tok]["translation"], poses[tok]["rotation"] = anchor["translation"], anchor["rotation"]
    (tables / "ego_pose.json").write_text(json.dumps(list(poses.values())))
    info_path = tables / "occvla_sample_info.json"
    info = json.loads(info_path.read_text())
    red_light = set(scene0[1::2])
    for rec in info:
        if rec["sample_token"] in scene0:
            rec["speed"] = 0.0
            rec["expert_target_speed"] = 0.0 if rec["sample_token"] in red_light else 5.0
    info_path.write_text(json.dumps(info))
    learner = tmp_path / "learner"  # the same, but a learned agent stood there (DAgger): the state to relabel
    shutil.copytree(root, learner)
    plan = [[1.0 * k, 0.0] for k in range(1, 7)]
    for rec in info:
        rec["expert_drove"], rec["expert_plan"] = False, plan
    (learner / info_path.relative_to(root)).write_text(json.dumps(info))

    kept = DS(root, load_images=False, load_occupancy=False, drop_stuck=True)
    everything = DS(root, load_images=False, load_occupancy=False)
    standing = [t for t in everything.index if t in scene0]
    assert standing and all(everything.get(t)["meta_action"].endswith("stop") for t in standing)
    assert {t for t in kept.index if t in scene0} == {t for t in standing if t in red_light}
    assert kept.dropped_stuck == len([t for t in standing if t not in red_light]) > 0
    assert set(kept.index) - set(scene0) == set(everything.index) - set(scene0)  # moving scenes untouched
    dagger = DS(learner, load_images=False, load_occupancy=False, drop_stuck=True,
                trajectory_source="expert_plan_when_perturbed")
    assert dagger.dropped_stuck == 0 and len(dagger) == len(everything)
    assert all(dagger.get(t)["meta_action"] == "keep lane, accelerate" for t in standing)
    untouched = DS(dataset_root, load_images=False, load_occupancy=False, drop_stuck=True)
    assert untouched.dropped_stuck == 0 and len(untouched) == len(DS(dataset_root, load_images=False))
