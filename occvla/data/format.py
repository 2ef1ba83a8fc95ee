"""The dataset format, written down once: nuScenes tables + Occ3D labels + the project's per-sample table.

Used by the writer (occvla/data/writer.py, fed by the simulator's collector in agent/collector.py) and by the reader
(occvla/data/nuscenes.py). A dataset root holds:

    <root>/<version>/<table>.json     nuScenes json tables (TABLES) + EXTRA_TABLE, each a json list
    <root>/samples/CAM_*/<scene>__<CAM>__<timestamp>.jpg   key-frame camera images
    <root>/gts/<scene>/<sample_token>/labels.npz          Occ3D labels (semantics, mask_lidar, mask_camera)
    <root>/maps/<map_token>.png                           per town: a 1x1 placeholder (the devkit's map table
                                                          needs a file; the town's map is its OpenDRIVE file)
    <root>/README.md, <root>/dataset_card.json            the dataset card
    <root>/.occvla/journal/<scene>.jsonl                  the writer's per-keyframe journal (resume, repair)

Frames: nuScenes' global frame is right-handed (x east, y north, z up). The simulator's world is CARLA's
(left-handed, y south): global = (x, -y, z), yaw_global = -yaw_carla. The ego frame is nuScenes' axes (x forward,
y left, z up) with its origin at the vehicle's centre on the ground (CARLA's actor origin; nuScenes uses the rear
axle).
Boxes: ``translation`` = box centre, ``size`` = [width, length, height], ``rotation`` = [w, x, y, z] about +z.
Tokens: 32 hex characters, a hash of what a record is (`make_token`), so two runs of one plan write identical
tables and datasets of different plans merge without clashes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_VERSION = "v1.0-trainval"
CAMERAS: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_LEFT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)
TABLES: tuple[str, ...] = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)
EXTRA_TABLE = "occvla_sample_info"  # our per-sample fields (ExtraFields below)
JOURNAL_DIR = ".occvla/journal"
CARD_JSON = "dataset_card.json"
KEYFRAME_HZ = 2.0
NUM_FUTURE = 6  # waypoints, 0.5 s apart (3 s)
BOX_RADIUS_M = 50.0  # annotate every actor within this distance of the ego

# nuScenes' 23 detection categories (their v1.0 category.json names); we write all of them, so tools that
# enumerate categories find the usual list.
NUSCENES_CATEGORIES: tuple[str, ...] = (
    "animal",
    "human.pedestrian.adult",
    "human.pedestrian.child",
    "human.pedestrian.construction_worker",
    "human.pedestrian.personal_mobility",
    "human.pedestrian.police_officer",
    "human.pedestrian.stroller",
    "human.pedestrian.wheelchair",
    "movable_object.barrier",
    "movable_object.debris",
    "movable_object.pushable_pullable",
    "movable_object.trafficcone",
    "static_object.bicycle_rack",
    "vehicle.bicycle",
    "vehicle.bus.bendy",
    "vehicle.bus.rigid",
    "vehicle.car",
    "vehicle.construction",
    "vehicle.emergency.ambulance",
    "vehicle.emergency.police",
    "vehicle.motorcycle",
    "vehicle.trailer",
    "vehicle.truck",
)
ATTRIBUTES: tuple[str, ...] = (
    "cycle.with_rider",
    "cycle.without_rider",
    "pedestrian.moving",
    "pedestrian.sitting_lying_down",
    "pedestrian.standing",
    "vehicle.moving",
    "vehicle.parked",
    "vehicle.stopped",
)
# nuScenes visibility: the fraction of an annotation visible in the six cameras; tokens "1".."4" as theirs
VISIBILITY: tuple[tuple[str, str, float], ...] = (
    ("1", "v0-40", 0.0),
    ("2", "v40-60", 0.4),
    ("3", "v60-80", 0.6),
    ("4", "v80-100", 0.8),
)
MOVING_SPEED = 0.5  # m/s: faster counts as moving (vehicle.moving, pedestrian.moving)


def make_token(*parts: object) -> str:
    """A 32-hex token from what a record is (e.g. ``make_token("sample", scene, frame)``)."""
    return hashlib.sha1("/".join(str(p) for p in parts).encode()).hexdigest()[:32]


def visibility_token(fraction: float) -> str:
    """The nuScenes visibility token of a visible fraction in [0, 1]."""
    tok = VISIBILITY[0][0]
    for t, _, lo in VISIBILITY:
        if fraction >= lo:
            tok = t
    return tok


def category_of(vclass: str, type_id: str = "") -> str:
    """The nuScenes category of a simulator actor class (sim.types.VCLASS_TO_OCC keys)."""
    if vclass == "pedestrian" and "child" in type_id:
        return "human.pedestrian.child"
    return {
        "car": "vehicle.car",
        "van": "vehicle.car",
        "truck": "vehicle.truck",
        "bus": "vehicle.bus.rigid",
        "motorcycle": "vehicle.motorcycle",
        "bicycle": "vehicle.bicycle",
        "pedestrian": "human.pedestrian.adult",
        "trailer": "vehicle.trailer",
        "construction": "vehicle.construction",
        "cone": "movable_object.trafficcone",
        "barrier": "movable_object.barrier",
    }.get(vclass, "movable_object.debris")


def attribute_of(category: str, speed: float, parked: bool = False) -> list[str]:
    """nuScenes attribute names of an annotation (empty for objects without attributes)."""
    if category in ("vehicle.bicycle", "vehicle.motorcycle"):
        return ["cycle.with_rider"]
    if category.startswith("vehicle."):
        if parked:
            return ["vehicle.parked"]
        return ["vehicle.moving" if speed > MOVING_SPEED else "vehicle.stopped"]
    if category.startswith("human.pedestrian"):
        return ["pedestrian.moving" if speed > MOVING_SPEED else "pedestrian.standing"]
    return []


def camera_filename(scene: str, channel: str, timestamp: int) -> str:
    """Path of a key-frame image relative to the root (nuScenes' samples/<CAM>/ naming)."""
    return f"samples/{channel}/{scene}__{channel}__{timestamp}.jpg"


def occ3d_relpath(scene: str, sample_token: str) -> str:
    return f"gts/{scene}/{sample_token}/labels.npz"


# ------------------------------------------------------------------ frames
def yaw_quat(yaw_rad: float) -> list[float]:
    """[w, x, y, z] of a rotation about +z."""
    return [math.cos(yaw_rad / 2.0), 0.0, 0.0, math.sin(yaw_rad / 2.0)]


def carla_to_global(x: float, y: float, z: float) -> list[float]:
    """A CARLA world point (left-handed, y south) -> nuScenes global (right-handed, y north)."""
    return [float(x), float(-y), float(z)]


def carla_yaw_to_global(yaw_deg: float) -> float:
    """A CARLA yaw (degrees, clockwise seen from above) -> global yaw (radians, counter-clockwise)."""
    return -math.radians(yaw_deg)


# camera axes (x right, y down, z forward) in the nuScenes ego frame for a camera looking along ego +x
_CAM_AXES = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_extrinsics(x: float, y: float, z: float, yaw_deg: float) -> tuple[list[float], np.ndarray]:
    """A camera mounted at CARLA vehicle coordinates (x fwd, y right, z up; yaw clockwise, degrees) ->
    (translation in the nuScenes ego frame, (3, 3) rotation camera -> ego)."""
    a = carla_yaw_to_global(yaw_deg)
    rz = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return [float(x), float(-y), float(z)], rz @ _CAM_AXES


def intrinsics(width: int, height: int, fov_deg: float) -> list[list[float]]:
    """A pinhole camera matrix (CARLA: f = W / (2 tan(fov / 2)), principal point at the centre)."""
    f = width / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
    return [[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]]


def to_ego_xy(points_global: np.ndarray, ego_xy: Sequence[float], ego_yaw_rad: float) -> np.ndarray:
    """(N, 2) global x, y -> (N, 2) ego frame (x forward, y left) of an ego at ``ego_xy`` with global yaw."""
    p = np.asarray(points_global, np.float64).reshape(-1, 2) - np.asarray(ego_xy, np.float64)[:2]
    c, s = math.cos(ego_yaw_rad), math.sin(ego_yaw_rad)
    return np.stack([c * p[:, 0] + s * p[:, 1], -s * p[:, 0] + c * p[:, 1]], axis=1)


def is_dataset_dir(root: Path) -> bool:
    """True when ``root`` holds one of our datasets (a card or a journal) or nuScenes tables."""
    return (
        (root / CARD_JSON).is_file() or (root / JOURNAL_DIR).is_dir() or any(root.glob("v1.0-*/sample.json"))
    )
