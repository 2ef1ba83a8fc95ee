"""A reader for the nuScenes layout + Occ3D labels that yields OccVLA sample dicts (format: occvla/data/format.py).

The same code path reads real nuScenes (v1.0-trainval / v1.0-mini + Occ3D-nuScenes ``gts/``) and the datasets this
project writes (``make_synthetic_dataset``, the simulator's data collector). It reads the json tables directly
(nuscenes-devkit needs numpy<2) and only the tables it needs:
scene, sample, sample_data, ego_pose, calibrated_sensor, sensor (+ sample_annotation, instance, category when
present, for future agent boxes).

Per key-frame sample:
- ``images``: the six CAM_* key-frame jpgs, RGB, resized (stretched) to ``image_size``.
- ``trajectory``: positions of the next 6 key frames (2 Hz -> 0.5 s .. 3 s) from their ego poses (the LIDAR_TOP
  sample_data pose, as Occ3D uses; CAM_FRONT when there is no lidar), in the current ego frame (x fwd, y left).
  Samples with fewer than 6 future key frames are dropped (``drop_incomplete``) or padded by repeating the last
  pose with ``trajectory_valid`` False.
- ``speed``: the stored speedometer reading of the extra table ``occvla_sample_info.json`` (occvla/data/format.py);
  without one (real nuScenes), a backward difference over the previous key frame's ego pose: the input never
  sees the future.
- ``command``: the stored route command of the extra table; without one, LANEFOLLOW, or with
  ``future_command=True`` the UniAD/ST-P3 open-loop habit of deriving it from the ground-truth future (y at 3 s >
  ``COMMAND_LATERAL_M`` -> LEFT, < -``COMMAND_LATERAL_M`` -> RIGHT), which leaks the future: opt in knowingly.
- ``meta_action``: ``occvla.meta_actions.meta_action_from_trajectory(trajectory, speed)``.
- ``occupancy`` / ``mask_camera``: Occ3D labels pooled to ``occ_grid``; ``agent_boxes`` (6, M, 5) [x, y, l, w, yaw]
  and ``agent_valid`` (6, M) in the current ego frame when annotations exist.
- ``current_boxes`` (M, 5) / ``current_categories``: the key frame's own boxes (vehicles and pedestrians) in the
  ego frame; the vehicle-count QA counts vehicles among these.
- ``qa``: from ``occvla_sample_info.json`` when present, else rule-generated (``occvla.data.qa``) if ``generate_qa``.

Images: decoded and resized in ``__getitem__`` (so in DataLoader workers); with ``cache_dir`` the resized images
are kept as one ``.npy`` per sample and size, so later epochs skip JPEG decoding and resizing.

Splits: ``scenes`` (explicit names) or ``split`` ("train"/"val"): a collected dataset whose card
(``dataset_card.json``) lists splits takes the scenes of that split's towns (none when the card does not list it:
splits by town, so a model is never evaluated on a town it trained on); otherwise a deterministic hash of the scene name puts ``val_fraction`` of scenes
in val (nuScenes' official split lists live in nuscenes-devkit; pass them as ``scenes``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from occvla.commands import Command
from occvla.data.format import CARD_JSON, EXTRA_TABLE
from occvla.data.geometry import global_to_ego_xy, quat_yaw
from occvla.data.occupancy import OCC3D_GRID, load_occ3d_labels, occ3d_label_path, pool_occupancy_to
from occvla.meta_actions import meta_action_from_trajectory

CAMERAS: tuple[str, ...] = (
    "CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT",
)
REQUIRED_TABLES = ("scene", "sample", "sample_data", "ego_pose", "calibrated_sensor", "sensor")
OPTIONAL_TABLES = ("sample_annotation", "instance", "category", "log", "map")
NUM_FUTURE = 6
COMMAND_LATERAL_M = 2.0
VEHICLE_PREFIXES = ("vehicle.", "human.pedestrian")


def find_version(root: str | Path) -> str:
    """The single ``v1.0-*`` table folder under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root not found: {root}")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("v1.0-"))
    if len(found) != 1:
        raise ValueError(f"expected exactly one v1.0-* table folder in {root}, found {found}; pass version=")
    return found[0]


def load_table(table_dir: Path, name: str, required: bool = True) -> list[dict] | None:
    """Read ``<table_dir>/<name>.json`` (a list of records)."""
    path = table_dir / f"{name}.json"
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"nuScenes table missing: {path}")
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"nuScenes table {path} is not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise ValueError(f"nuScenes table {path} must hold a JSON list, got {type(data).__name__}")  # noqa: TRY004
    return data


def command_from_trajectory(traj: np.ndarray) -> int:
    """LEFT / RIGHT / LANEFOLLOW from the lateral offset at 3 s (see module docstring)."""
    y = float(np.asarray(traj)[-1, 1])
    if y > COMMAND_LATERAL_M:
        return int(Command.LEFT)
    if y < -COMMAND_LATERAL_M:
        return int(Command.RIGHT)
    return int(Command.LANEFOLLOW)


def _in_val(scene_name: str, val_fraction: float) -> bool:
    h = int(hashlib.sha1(scene_name.encode()).hexdigest()[:8], 16)
    return (h / 0xFFFFFFFF) < val_fraction


def _card_split_towns(root: Path, split: str | None) -> set[str] | None:
    """The towns of ``split`` in a collected dataset's card, or None (no card, or it does not name the split)."""
    if split not in ("train", "val"):
        return None
    path = root / CARD_JSON
    if not path.is_file():
        return None
    try:
        splits = json.loads(path.read_text()).get("splits") or {}
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"dataset card {path} is not a valid JSON object") from None
    return set(splits.get(split) or []) if splits else None  # a split the card does not list is empty


# Where a sample's trajectory label comes from: the driven future (any nuScenes-layout data), the expert's stored
# 3 s plan (collected data), or the plan only where the driven future is not the expert's own driving: it holds a
# --perturb excursion, or another agent drove and the expert ran in shadow mode (a DAgger episode).
TRAJECTORY_SOURCES = ("driven", "expert_plan", "expert_plan_when_perturbed")
# A collected key frame where the expert wanted to move (its target speed above this, m/s) ...
STUCK_TARGET_SPEED = 0.5
# ... but stood (speed below this, m/s) and moved less than STUCK_FUTURE_M over its whole 3 s future was stuck
# (wedged against a prop after a perturbation, or a traffic deadlock): its "stop" label teaches standing still
# for no visible reason, the inertia a closed-loop imitation learner suffers from most.
ROUTE_PLANS = ("50", "200", "mixed")  # keys of a collected sample's route_points, or a mix of them
STUCK_SPEED = 0.3
STUCK_FUTURE_M = 0.5


class NuScenesOccDataset(Dataset):
    """OccVLA samples from a nuScenes-layout dataset with Occ3D labels (see module docstring).

    Args:
        root: dataset root (holds ``v1.0-*/``, ``samples/``, and ``gts/`` for Occ3D; ``occ_root`` overrides the latter).
        version: table folder name; None picks the only ``v1.0-*`` folder.
        image_size: int (square) or (H, W) the images are resized to; None keeps the file size.
        occ_grid: (X, Y, Z) to pool Occ3D labels to; None keeps (200, 200, 16).
        load_images / load_occupancy: skip the expensive parts (e.g. stage 0 needs only occupancy).
        require_occupancy: drop samples without a labels file (else they come without ``occupancy``).
        trajectory_source: one of ``TRAJECTORY_SOURCES`` (the meta-action follows the chosen trajectory).
        drop_stuck: leave out collected key frames where the expert was stuck (see ``STUCK_TARGET_SPEED``); data
            without the expert's target speed (real nuScenes) keeps every frame.
        route_plan: which of the collected route plans gives ``route`` (``ROUTE_PLANS``): "50" (leaderboard 1.0's),
            "200" (2.x's), or "mixed" (each sample one of the two, fixed by its token). Data without route points
            (real nuScenes, older collections) give no ``route``.
    """

    def __init__(
        self,
        root: str | Path,
        version: str | None = None,
        image_size: int | Sequence[int] | None = None,
        occ_grid: Sequence[int] | None = None,
        occ_root: str | Path | None = None,
        split: str | None = None,
        scenes: Sequence[str] | None = None,
        val_fraction: float = 0.2,
        load_images: bool = True,
        load_occupancy: bool = True,
        require_occupancy: bool = False,
        drop_incomplete: bool = True,
        generate_qa: bool = True,
        cameras: Sequence[str] = CAMERAS,
        future_command: bool = False,
        cache_dir: str | Path | None = None,
        trajectory_source: str = "driven",
        drop_stuck: bool = False,
        route_plan: str = "mixed",
    ) -> None:
        if trajectory_source not in TRAJECTORY_SOURCES:
            raise ValueError(f"trajectory_source must be one of {TRAJECTORY_SOURCES}, got {trajectory_source!r}")
        if route_plan not in ROUTE_PLANS:
            raise ValueError(f"route_plan must be one of {ROUTE_PLANS}, got {route_plan!r}")
        self.route_plan = route_plan
        self.trajectory_source = trajectory_source
        self.root = Path(root)
        self.version = version or find_version(self.root)
        self.table_dir = self.root / self.version
        if not self.table_dir.is_dir():
            raise FileNotFoundError(f"nuScenes table folder not found: {self.table_dir}")
        if isinstance(image_size, (int, np.integer)):
            image_size = (int(image_size), int(image_size))
        self.image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self.occ_grid = tuple(int(g) for g in occ_grid) if occ_grid is not None else OCC3D_GRID
        self.occ_root = Path(occ_root) if occ_root is not None else self.root
        self.load_images, self.load_occupancy = load_images, load_occupancy
        self.generate_qa = generate_qa
        self.cameras = tuple(cameras)
        self.future_command = future_command
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if split not in (None, "train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val', 'all' or None, got {split!r}")

        t = {n: load_table(self.table_dir, n) for n in REQUIRED_TABLES}
        opt = {n: load_table(self.table_dir, n, required=False) for n in OPTIONAL_TABLES}
        self.samples = {r["token"]: r for r in t["sample"]}
        self.ego_poses = {r["token"]: r for r in t["ego_pose"]}
        calib = {r["token"]: r for r in t["calibrated_sensor"]}
        sensors = {r["token"]: r for r in t["sensor"]}
        # key-frame sample_data per sample and channel
        self.sd_by_sample: dict[str, dict[str, dict]] = {}
        for sd in t["sample_data"]:
            if not sd.get("is_key_frame", True):
                continue
            cs = calib.get(sd["calibrated_sensor_token"])
            if cs is None:
                raise ValueError(f"sample_data {sd['token']} names unknown calibrated_sensor "
                                 f"{sd['calibrated_sensor_token']} ({self.table_dir / 'sample_data.json'})")
            channel = sensors[cs["sensor_token"]]["channel"]
            self.sd_by_sample.setdefault(sd["sample_token"], {})[channel] = sd
        self.extra: dict[str, dict] = {
            r["sample_token"]: r for r in (load_table(self.table_dir, EXTRA_TABLE, required=False) or [])
        }
        self.anns_by_sample: dict[str, list[dict]] = {}
        self.category_of_ann: dict[str, str] = {}
        if opt["sample_annotation"] and opt["instance"] and opt["category"]:
            cat = {r["token"]: r["name"] for r in opt["category"]}
            inst_cat = {r["token"]: cat.get(r["category_token"], "") for r in opt["instance"]}
            for a in opt["sample_annotation"]:
                name = inst_cat.get(a["instance_token"], "")
                if name.startswith(VEHICLE_PREFIXES):
                    self.anns_by_sample.setdefault(a["sample_token"], []).append(a)
                    self.category_of_ann[a["token"]] = name

        # ordered key frames per scene, then the index of usable samples
        self.scene_of: dict[str, dict] = {}
        self.index: list[str] = []
        self.dropped_stuck = 0
        self.future: dict[str, list[str]] = {}
        wanted = set(scenes) if scenes is not None else None
        split_towns = _card_split_towns(self.root, split) if wanted is None else None
        town_of_log = {r["token"]: r.get("location", "") for r in (opt["log"] or [])}
        for scene in t["scene"]:
            name = scene["name"]
            if wanted is not None and name not in wanted:
                continue
            if split_towns is not None:
                if town_of_log.get(scene.get("log_token", "")) not in split_towns:
                    continue
            elif wanted is None and split in ("train", "val") and (_in_val(name, val_fraction) != (split == "val")):
                continue
            chain, tok = [], scene["first_sample_token"]
            while tok:
                if tok not in self.samples:
                    raise ValueError(f"scene {name} links to unknown sample {tok} ({self.table_dir / 'sample.json'})")
                chain.append(tok)
                tok = self.samples[tok]["next"]
            for i, tok in enumerate(chain):
                self.scene_of[tok] = scene
                self.future[tok] = chain[i + 1 : i + 1 + NUM_FUTURE]
                self.samples[tok]["_prev_key"] = chain[i - 1] if i > 0 else ""
                self.samples[tok]["_next_key"] = chain[i + 1] if i + 1 < len(chain) else ""
                if drop_incomplete and len(self.future[tok]) < NUM_FUTURE:
                    continue
                if require_occupancy and not occ3d_label_path(self.occ_root, name, tok).is_file():
                    continue
                if drop_stuck and self.expert_stuck(tok):
                    self.dropped_stuck += 1
                    continue
                self.index.append(tok)
        if wanted is not None:
            missing = wanted - {s["name"] for s in t["scene"]}
            if missing:
                raise ValueError(f"scenes not in {self.table_dir / 'scene.json'}: {sorted(missing)[:5]}")

    # ---- poses ---------------------------------------------------------------------------------------------------
    def _pose(self, sample_token: str) -> dict:
        sds = self.sd_by_sample.get(sample_token, {})
        sd = sds.get("LIDAR_TOP") or sds.get("CAM_FRONT")
        if sd is None:
            raise ValueError(f"sample {sample_token} has no LIDAR_TOP or CAM_FRONT key-frame sample_data")
        pose = self.ego_poses.get(sd["ego_pose_token"])
        if pose is None:
            raise ValueError(f"sample_data {sd['token']} names unknown ego_pose {sd['ego_pose_token']}")
        return pose

    def trajectory(self, sample_token: str) -> tuple[np.ndarray, np.ndarray]:
        """(6, 2) future ego-frame waypoints and (6,) validity of a sample."""
        cur = self._pose(sample_token)
        fut = [self._pose(t)["translation"] for t in self.future[sample_token]]
        valid = np.zeros(NUM_FUTURE, bool)
        valid[: len(fut)] = True
        if not fut:
            fut = [cur["translation"]]
        fut += [fut[-1]] * (NUM_FUTURE - len(fut))
        xy = global_to_ego_xy(np.asarray(fut), cur["translation"], cur["rotation"])  # (6, 2)
        return xy.astype(np.float32), valid

    def _expert_label(self, token: str, extra: dict) -> bool:
        """Does ``trajectory_source`` put the expert's stored plan in place of the driven future here?"""
        if self.trajectory_source == "driven" or "expert_plan" not in extra:
            return False
        if self.trajectory_source == "expert_plan":
            return True
        # 'expert_plan_when_perturbed': the driven future holds a recovery excursion (--perturb) the model must not
        # learn, or a learner drove (DAgger); the expert's plan from the same state is the label
        if extra.get("expert_drove") is False:
            return True
        return any(self.extra.get(t, {}).get("perturbed") for t in (token, *self.future[token]))

    def expert_stuck(self, sample_token: str) -> bool:
        """Was the expert stuck at this collected key frame (wants to go, stands, and stays for 3 s)?"""
        extra = self.extra.get(sample_token, {})
        if extra.get("expert_drove") is False:
            return False  # a learner stood where the expert would go: the very state DAgger relabels
        target = extra.get("expert_target_speed")
        if target is None or float(target) <= STUCK_TARGET_SPEED or float(extra.get("speed", 0.0)) >= STUCK_SPEED:
            return False
        traj, valid = self.trajectory(sample_token)
        return bool(valid.all()) and float(np.hypot(*traj[-1])) < STUCK_FUTURE_M

    def speed(self, sample_token: str) -> float:
        """Ego speed (m/s): the stored speedometer reading, else from the previous key frame's ego pose (never the
        next one: that would put the future into the model's input)."""
        extra = self.extra.get(sample_token, {})
        if "speed" in extra:
            return float(extra["speed"])
        s = self.samples[sample_token]
        a = s["_prev_key"] or sample_token
        b = sample_token
        if a == b:
            return 0.0
        pa, pb = self._pose(a), self._pose(b)
        dt = (pb["timestamp"] - pa["timestamp"]) * 1e-6
        if dt <= 0:
            raise ValueError(f"non-increasing ego_pose timestamps around sample {sample_token}")
        d = np.asarray(pb["translation"][:2], float) - np.asarray(pa["translation"][:2], float)
        return float(np.hypot(*d) / dt)

    def agent_boxes(self, sample_token: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Future agent boxes (6, M, 5) [x, y, l, w, yaw] in the current ego frame + validity (6, M), or None."""
        if not self.anns_by_sample:
            return None
        cur = self._pose(sample_token)
        cur_yaw = quat_yaw(cur["rotation"])
        per_step = [self.anns_by_sample.get(t, []) for t in self.future[sample_token]]
        m = max((len(a) for a in per_step), default=0)
        boxes = np.zeros((NUM_FUTURE, max(m, 1), 5), np.float32)
        valid = np.zeros((NUM_FUTURE, max(m, 1)), bool)
        for k, anns in enumerate(per_step):
            for j, a in enumerate(anns):
                xy = global_to_ego_xy(np.asarray([a["translation"]]), cur["translation"], cur["rotation"])[0]
                w, length = a["size"][0], a["size"][1]  # nuScenes size = [width, length, height]
                boxes[k, j] = (xy[0], xy[1], length, w, quat_yaw(a["rotation"]) - cur_yaw)
                valid[k, j] = True
        return boxes, valid

    def current_boxes(self, sample_token: str) -> tuple[np.ndarray, list[str]]:
        """The key frame's own boxes (M, 5) [x, y, l, w, yaw] in its ego frame and their category names."""
        cur = self._pose(sample_token)
        cur_yaw = quat_yaw(cur["rotation"])
        anns = self.anns_by_sample.get(sample_token, [])
        boxes = np.zeros((len(anns), 5), np.float32)
        for j, a in enumerate(anns):
            xy = global_to_ego_xy(np.asarray([a["translation"]]), cur["translation"], cur["rotation"])[0]
            boxes[j] = (xy[0], xy[1], a["size"][1], a["size"][0], quat_yaw(a["rotation"]) - cur_yaw)
        return boxes, [self.category_of_ann[a["token"]] for a in anns]

    # ---- sample --------------------------------------------------------------------------------------------------
    def _images(self, sample_token: str) -> np.ndarray:
        if self.cache_dir is None:
            return self._decode_images(sample_token)
        size = "x".join(map(str, self.image_size)) if self.image_size else "native"
        path = self.cache_dir / size / f"{sample_token}.npy"
        if path.is_file():
            try:
                return np.load(path)
            except (OSError, ValueError):
                pass  # a torn cache file: decode again
        images = self._decode_images(sample_token)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, images)
        os.replace(tmp, path)
        return images

    def _decode_images(self, sample_token: str) -> np.ndarray:
        sds = self.sd_by_sample.get(sample_token, {})
        out = []
        for cam in self.cameras:
            sd = sds.get(cam)
            if sd is None:
                raise ValueError(f"sample {sample_token} has no key-frame {cam} image in sample_data.json")
            path = self.root / sd["filename"]
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"camera image missing or unreadable: {path}")
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            if self.image_size is not None and img.shape[:2] != self.image_size:
                img = cv2.resize(img, (self.image_size[1], self.image_size[0]), interpolation=cv2.INTER_AREA)
            out.append(img)
        shapes = {im.shape for im in out}
        if len(shapes) != 1:
            raise ValueError(f"sample {sample_token}: camera images differ in size {sorted(shapes)}; set image_size")
        return np.stack(out)  # (6, H, W, 3)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        token = self.index[i]
        return self.get(token)

    def route(self, token: str, extra: dict[str, Any]) -> np.ndarray | None:
        """The route's plan points (3, 2) in the ego frame (``route_plan`` picks the plan), or None without them."""
        plans = extra.get("route_points")
        if not plans:
            return None
        key = self.route_plan
        if key == "mixed":
            key = ROUTE_PLANS[zlib.crc32(token.encode()) % 2]
        if key not in plans:
            raise ValueError(f"sample {token}: no route points on the {key} m plan (has {sorted(plans)})")
        return np.asarray(plans[key], np.float32).reshape(3, 2)

    def get(self, token: str) -> dict[str, Any]:
        """The sample dict of a sample token (see module docstring)."""
        traj, valid = self.trajectory(token)
        speed = self.speed(token)
        extra = self.extra.get(token, {})
        if self._expert_label(token, extra):
            traj, valid = np.asarray(extra["expert_plan"], np.float32).reshape(NUM_FUTURE, 2), np.ones(NUM_FUTURE, bool)
        if "command" in extra:
            command = int(extra["command"])
        elif self.future_command:
            command = command_from_trajectory(traj)
        else:
            command = int(Command.LANEFOLLOW)
        sample: dict[str, Any] = {
            "token": token,
            "scene": self.scene_of[token]["name"],
            "speed": speed,
            "command": command,
            "trajectory": traj,
            "trajectory_valid": valid,
            "meta_action": meta_action_from_trajectory(traj, speed),
        }
        route = self.route(token, extra)
        if route is not None:
            sample["route"] = route
        if self.load_images:
            sample["images"] = self._images(token)
        if self.load_occupancy:
            path = occ3d_label_path(self.occ_root, self.scene_of[token]["name"], token)
            if path.is_file():
                labels = load_occ3d_labels(path)
                sem, mask = pool_occupancy_to(labels["semantics"], labels["mask_camera"], self.occ_grid)
                sample["occupancy"], sample["mask_camera"] = sem, mask
        if self.anns_by_sample:
            sample["current_boxes"], sample["current_categories"] = self.current_boxes(token)
        boxes = self.agent_boxes(token)
        if boxes is not None:
            sample["agent_boxes"], sample["agent_valid"] = boxes
        if "qa" in extra:
            sample["qa"] = [(str(q), str(a)) for q, a in extra["qa"]]
        elif self.generate_qa:
            from occvla.data.qa import generate_qa

            sample["qa"] = generate_qa(sample)
        return sample
