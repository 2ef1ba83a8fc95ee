"""A small, valid nuScenes-layout dataset with Occ3D labels, generated from seeded random-but-consistent scenes.

Why: tests and smoke training need real files on the real code path (the reader cannot tell this data from
nuScenes). Content is simple but consistent across modalities: one road (three 3.5 m lanes, sidewalks, terrain),
an ego that drives a manoeuvre (straight, turn left/right, lane change left/right, brake to a stop, accelerate from
standstill), other cars on the adjacent lanes, buildings and trees beside the road. The same world produces the
ego poses, the annotations, the Occ3D labels (ego frame, 0.4 m voxels) and the six camera images (a per-pixel
ground ray cast into the label grid plus projected object boxes, pinhole cameras on the nuScenes rig).

Written tables: log, map, scene, sample, sample_data (CAM_* + LIDAR_TOP with empty point files), ego_pose,
calibrated_sensor, sensor, category, attribute, visibility, instance, sample_annotation, and the project's
``occvla_sample_info.json`` (the route command of each sample, as a route planner would give it, and the speed).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from occvla.commands import Command
from occvla.data.geometry import rot_to_quat, yaw_to_quat
from occvla.data.format import CAMERAS, EXTRA_TABLE
from occvla.data.occupancy import FREE, OCC3D_GRID, OCC3D_VOXEL_M, occ3d_label_path, save_occ3d_labels

KINDS = ("straight", "turn_left", "lane_change_left", "stop", "turn_right", "accelerate", "lane_change_right")
SIM_HZ = 20
SAMPLE_DT = 0.5
LANE_W = 3.5
ROAD_HALF_W = 1.5 * LANE_W  # three lanes, ego in the middle one
SIDEWALK_W = 2.25
GROUND_Z = 2  # voxel index holding the ground surface (z in [-0.2, 0.2) m)
# camera rig in the nuScenes ego frame (x fwd, y left, z up): (x, y, z, yaw deg, horizontal fov deg)
RIG = {
    "CAM_FRONT": (0.80, 0.0, 1.60, 0.0, 70.0),
    "CAM_FRONT_LEFT": (0.27, 0.55, 1.60, 55.0, 70.0),
    "CAM_FRONT_RIGHT": (0.27, -0.55, 1.60, -55.0, 70.0),
    "CAM_BACK": (-2.0, 0.0, 1.60, 180.0, 110.0),
    "CAM_BACK_LEFT": (-0.32, 0.55, 1.60, 110.0, 70.0),
    "CAM_BACK_RIGHT": (-0.32, -0.55, 1.60, -110.0, 70.0),
}
COLORS = {  # RGB
    11: (90, 90, 95), 13: (170, 170, 165), 14: (95, 140, 60), 4: (200, 40, 35), 15: (150, 110, 80),
    16: (40, 110, 45), "sky": (135, 180, 235),
}
CAM_TO_EGO_AXES = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # cam (right, down, fwd) -> ego


@dataclass
class _Box:
    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float
    cls: int


class _Tokens:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self) -> str:
        return self.rng.bytes(16).hex()


def _rz(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _drive(kind: str, duration: float, rng: np.random.Generator) -> dict:
    """Integrate the ego manoeuvre at SIM_HZ: returns arrays t, s (arclength), curvature-integrated centreline
    (cx, cy, cyaw), lateral offset d, speed v, plus the time the manoeuvre ends (for the route command)."""
    n = round(duration * SIM_HZ) + 1
    t = np.arange(n) / SIM_HZ
    v = np.full(n, rng.uniform(4.0, 9.0))
    kappa = np.zeros(n)
    d = np.zeros(n)
    t_end = -1.0
    if kind == "stop":
        t_brake, dec = rng.uniform(0.5, 2.0), rng.uniform(2.5, 3.5)
        v = np.clip(v[0] - dec * np.clip(t - t_brake, 0, None), 0, None)
    elif kind == "accelerate":
        v = np.minimum(rng.uniform(1.2, 2.0) * np.clip(t - rng.uniform(0.0, 0.5), 0, None), 10.0)
    elif kind.startswith("turn"):
        v[:] = rng.uniform(4.0, 6.0)
        radius, t0 = rng.uniform(8.0, 12.0), rng.uniform(0.5, 2.0)
        t_end = t0 + (math.pi / 2) * radius / v[0]
        kappa[(t >= t0) & (t < t_end)] = (1.0 if kind == "turn_left" else -1.0) / radius
    elif kind.startswith("lane_change"):
        t0, span = rng.uniform(0.5, 2.0), rng.uniform(3.0, 4.0)
        t_end = t0 + span
        u = np.clip((t - t0) / span, 0, 1)
        d = (1.0 if kind == "lane_change_left" else -1.0) * LANE_W * (1 - np.cos(np.pi * u)) / 2
    s = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) / SIM_HZ)])
    cyaw = np.concatenate([[0.0], np.cumsum(kappa[:-1] * np.diff(s))])
    cx = np.concatenate([[0.0], np.cumsum(np.cos(cyaw[:-1]) * np.diff(s))])
    cy = np.concatenate([[0.0], np.cumsum(np.sin(cyaw[:-1]) * np.diff(s))])
    return {"t": t, "s": s, "v": v, "cx": cx, "cy": cy, "cyaw": cyaw, "d": d, "t_end": t_end}


def _route_points(line: np.ndarray, s_line: np.ndarray, ego: np.ndarray, spacing: float = 20.0) -> np.ndarray:
    """The route as an agent's sparse plan gives it: centreline points every ``spacing`` m; the one starting the
    segment the ego is on and the next two, in the ego frame (x forward, y left). (3, 2)"""
    plan_s = np.arange(s_line[0], s_line[-1], spacing)  # (P,)
    s_ego = s_line[np.argmin(np.hypot(line[:, 0] - ego[0], line[:, 1] - ego[1]))]
    k = int(np.clip(np.searchsorted(plan_s, s_ego, side="right") - 1, 0, len(plan_s) - 1))
    ks = np.minimum([k, k + 1, k + 2], len(plan_s) - 1)
    pts = np.stack([np.interp(plan_s[ks], s_line, line[:, 0]), np.interp(plan_s[ks], s_line, line[:, 1])], 1)
    c, s = math.cos(ego[2]), math.sin(ego[2])
    d = pts - ego[None, :2]
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], 1)  # scene frame is y-left


def _centreline(m: dict, ext: float = 80.0, step: float = 0.5) -> np.ndarray:
    """Road centreline (N, 3) [x, y, yaw] in the scene frame, 1 point per ``step`` m, extended straight at both ends."""
    s, cx, cy, cyaw = m["s"], m["cx"], m["cy"], m["cyaw"]
    grid = np.arange(0.0, max(s[-1], step) + step, step)
    x, y = np.interp(grid, s, cx), np.interp(grid, s, cy)
    yaw = np.interp(grid, s, cyaw)
    back = np.arange(ext, 0, -step)
    front = np.arange(step, ext + step, step)
    xb, yb = x[0] - back * math.cos(yaw[0]), y[0] - back * math.sin(yaw[0])
    xf, yf = x[-1] + front * math.cos(yaw[-1]), y[-1] + front * math.sin(yaw[-1])
    pts = np.stack([np.r_[xb, x, xf], np.r_[yb, y, yf], np.r_[np.full(len(back), yaw[0]), yaw,
                                                               np.full(len(front), yaw[-1])]], 1)
    return pts


def _occupancy(ego: np.ndarray, line: np.ndarray, boxes: list[_Box]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occ3D labels of the world seen from ego pose [x, y, yaw] (scene frame)."""
    nx, ny, nz = OCC3D_GRID
    c = -40.0 + (np.arange(nx) + 0.5) * OCC3D_VOXEL_M
    ex, ey = np.meshgrid(c, c, indexing="ij")  # (X, Y) ego-frame cell centres
    cos, sin = math.cos(ego[2]), math.sin(ego[2])
    wx, wy = ego[0] + cos * ex - sin * ey, ego[1] + sin * ex + cos * ey
    # ground: rasterise the centreline (ego frame) as thick polylines; array rows = x index, cols = y index
    dx, dy = line[:, 0] - ego[0], line[:, 1] - ego[1]
    lx, ly = cos * dx + sin * dy, -sin * dx + cos * dy
    shift = 4
    pts = np.stack([(ly + 40.0) / OCC3D_VOXEL_M - 0.5, (lx + 40.0) / OCC3D_VOXEL_M - 0.5], 1)  # (col, row)
    pts = np.round(pts * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
    ground = np.full((nx, ny), 14, np.uint8)
    for cls, half in ((13, ROAD_HALF_W + SIDEWALK_W), (11, ROAD_HALF_W)):
        cv2.polylines(ground, [pts], False, cls, thickness=round(2 * half / OCC3D_VOXEL_M), shift=shift)
    sem = np.full(OCC3D_GRID, FREE, np.uint8)
    sem[..., GROUND_Z] = ground
    for b in boxes:
        dx, dy = wx - b.x, wy - b.y
        lon = dx * math.cos(b.yaw) + dy * math.sin(b.yaw)
        la = -dx * math.sin(b.yaw) + dy * math.cos(b.yaw)
        inside = (np.abs(lon) <= b.length / 2) & (np.abs(la) <= b.width / 2)
        top = GROUND_Z + 1 + round(b.height / OCC3D_VOXEL_M)
        sem[inside, GROUND_Z + 1 : min(top, nz)] = b.cls
    r = np.hypot(ex, ey)
    mask_camera = np.broadcast_to((r <= 38.0)[..., None], OCC3D_GRID).copy()
    mask_camera[..., 13:] = False  # nothing seen above ~4.2 m
    mask_lidar = np.broadcast_to((r <= 30.0)[..., None], OCC3D_GRID).copy()
    return sem, mask_lidar, mask_camera


def _intrinsics(fov_deg: float, h: int, w: int) -> np.ndarray:
    f = (w / 2) / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])


def _render(cam: str, h: int, w: int, sem: np.ndarray, ego: np.ndarray, boxes: list[_Box]) -> np.ndarray:
    """RGB (H, W, 3) image of one camera: ground classes by ray casting into the label grid, then object boxes."""
    x0, y0, z0, yaw_deg, fov = RIG[cam]
    k = _intrinsics(fov, h, w)
    r = _rz(math.radians(yaw_deg)) @ CAM_TO_EGO_AXES  # cam -> ego
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1) @ r.T  # (H, W, 3)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = COLORS["sky"]
    down = rays[..., 2] < -1e-3
    tt = np.where(down, -z0 / np.where(down, rays[..., 2], -1.0), 0.0)
    gx, gy = x0 + tt * rays[..., 0], y0 + tt * rays[..., 1]
    ix = np.floor((gx + 40.0) / OCC3D_VOXEL_M).astype(int)
    iy = np.floor((gy + 40.0) / OCC3D_VOXEL_M).astype(int)
    inside = down & (ix >= 0) & (ix < sem.shape[0]) & (iy >= 0) & (iy < sem.shape[1])
    ground = np.full((h, w), 14, np.uint8)
    ground[inside] = sem[ix[inside], iy[inside], GROUND_Z]
    for cls in (11, 13, 14):
        img[down & (ground == cls)] = COLORS[cls]
    # objects, far to near; boxes in the ego frame
    cam_pos = np.array([x0, y0, z0])
    cos, sin = math.cos(-ego[2]), math.sin(-ego[2])
    items = []
    for b in boxes:
        bx, by = b.x - ego[0], b.y - ego[1]
        ex, ey = cos * bx - sin * by, sin * bx + cos * by
        items.append((math.hypot(ex - x0, ey - y0), ex, ey, b.yaw - ego[2], b))
    for _, ex, ey, yaw, b in sorted(items, key=lambda it: -it[0]):
        if math.hypot(ex, ey) > 60.0:
            continue
        corners = []
        for sx in (-0.5, 0.5):
            for sy in (-0.5, 0.5):
                px = ex + math.cos(yaw) * sx * b.length - math.sin(yaw) * sy * b.width
                py = ey + math.sin(yaw) * sx * b.length + math.cos(yaw) * sy * b.width
                corners += [(px, py, 0.0), (px, py, b.height)]
        pc = (np.asarray(corners) - cam_pos) @ r  # (8, 3) camera frame
        if (pc[:, 2] < 0.3).any():
            continue
        pix = (pc @ k.T)[:, :2] / pc[:, 2:3]
        hull = cv2.convexHull(np.round(pix * 16).astype(np.int32))
        cv2.fillConvexPoly(img, hull, COLORS[b.cls], lineType=cv2.LINE_AA, shift=4)
    return img


def make_synthetic_dataset(
    root: str | Path,
    n_scenes: int = 2,
    n_samples: int = 10,
    image_size: int | tuple[int, int] = (64, 112),
    seed: int = 0,
    version: str = "v1.0-mini",
) -> Path:
    """Write a nuScenes-layout dataset with Occ3D labels under ``root`` and return ``root``.

    Args:
        n_scenes: scenes; manoeuvres cycle through ``KINDS`` (offset by the seed).
        n_samples: key frames per scene at 2 Hz (a sample needs 6 future key frames to have a full trajectory).
        image_size: int (square) or (H, W) of the written camera jpgs.
        seed: everything (tokens included) is a function of the seed.
    """
    if n_scenes < 1 or n_samples < 1:
        raise ValueError(f"make_synthetic_dataset needs n_scenes >= 1 and n_samples >= 1, got {n_scenes}, {n_samples}")
    h, w = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    if h < 8 or w < 8:
        raise ValueError(f"image_size must be at least 8x8, got {h}x{w}")
    root = Path(root)
    tdir = root / version
    tdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tok = _Tokens(np.random.default_rng([seed, 1]))

    tables: dict[str, list[dict]] = {k: [] for k in (
        "log", "map", "scene", "sample", "sample_data", "ego_pose", "calibrated_sensor", "sensor", "category",
        "attribute", "visibility", "instance", "sample_annotation", EXTRA_TABLE)}
    cat_tokens = {}
    for name, desc in (("vehicle.car", "Vehicle designed primarily for personal use."),
                       ("human.pedestrian.adult", "Adult subcategory.")):
        cat_tokens[name] = tok()
        tables["category"].append({"token": cat_tokens[name], "name": name, "description": desc})
    attr_token = tok()
    tables["attribute"].append({"token": attr_token, "name": "vehicle.moving", "description": "Vehicle is moving."})
    vis_token = "4"
    tables["visibility"].append({"token": vis_token, "level": "v80-100", "description": "visibility of whole object"})
    calib_tokens = {}
    for ch in (*CAMERAS, "LIDAR_TOP"):
        s_tok = tok()
        modality = "lidar" if ch == "LIDAR_TOP" else "camera"
        tables["sensor"].append({"token": s_tok, "channel": ch, "modality": modality})
        if ch == "LIDAR_TOP":
            trans, rot, intr = [0.94, 0.0, 1.84], yaw_to_quat(-math.pi / 2), []
        else:
            x, y, z, yaw, fov = RIG[ch]
            trans = [x, y, z]
            rot = rot_to_quat(_rz(math.radians(yaw)) @ CAM_TO_EGO_AXES)
            intr = _intrinsics(fov, h, w).tolist()
        calib_tokens[ch] = tok()
        tables["calibrated_sensor"].append({"token": calib_tokens[ch], "sensor_token": s_tok, "translation": trans,
                                            "rotation": rot, "camera_intrinsic": intr})
    log_token, map_token = tok(), tok()
    tables["log"].append({"token": log_token, "logfile": f"synthetic-seed{seed}", "vehicle": "synthetic",
                          "date_captured": "2026-01-01", "location": "synthetic-town"})
    (root / "maps").mkdir(exist_ok=True)
    cv2.imwrite(str(root / "maps" / f"{map_token}.png"), np.zeros((2, 2), np.uint8))
    tables["map"].append({"token": map_token, "log_tokens": [log_token], "category": "semantic_prior",
                          "filename": f"maps/{map_token}.png"})

    for sc in range(n_scenes):
        kind = KINDS[(sc + seed) % len(KINDS)]
        srng = np.random.default_rng([seed, 100 + sc])
        duration = (n_samples - 1) * SAMPLE_DT
        m = _drive(kind, duration, srng)
        line = _centreline(m)
        # scene -> global transform
        g = np.array([rng.uniform(-500, 500), rng.uniform(-500, 500)])
        gyaw = rng.uniform(-math.pi, math.pi)
        gr = _rz(gyaw)[:2, :2]

        def to_global(x: float, y: float, yaw: float, gr=gr, g=g, gyaw=gyaw) -> tuple[float, float, float]:
            p = gr @ np.array([x, y]) + g
            return float(p[0]), float(p[1]), yaw + gyaw

        # ego pose track (scene frame): centreline point + lateral offset
        ego_yaw_extra = np.arctan2(np.gradient(m["d"]), np.maximum(np.gradient(m["s"]), 1e-6))
        ego_x = m["cx"] - m["d"] * np.sin(m["cyaw"])
        ego_y = m["cy"] + m["d"] * np.cos(m["cyaw"])
        ego_yaw = m["cyaw"] + np.where(m["v"] > 0.1, ego_yaw_extra, 0.0)
        # other actors: cars on the lanes away from a lane change; static objects beside the road
        s_line = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(line[:, :2], axis=0).T))])
        s_ego0 = s_line[np.argmin(np.hypot(line[:, 0] - ego_x[0], line[:, 1] - ego_y[0]))]
        lanes = {"lane_change_left": [-LANE_W], "lane_change_right": [LANE_W]}.get(kind, [-LANE_W, LANE_W])
        agents = [(float(srng.uniform(-10, 35)) + s_ego0, float(srng.choice(lanes)), float(srng.uniform(2.0, 9.0)),
                   tok()) for _ in range(int(srng.integers(1, 5)))]
        statics = []
        for s_pos in np.arange(s_line[0] + 5.0, s_line[-1], 12.0):
            for side in (-1.0, 1.0):
                if srng.random() < 0.6:
                    i = int(np.searchsorted(s_line, s_pos))
                    i = min(i, len(line) - 1)
                    off = side * srng.uniform(ROAD_HALF_W + SIDEWALK_W + 3.0, ROAD_HALF_W + SIDEWALK_W + 8.0)
                    px = line[i, 0] - off * math.sin(line[i, 2])
                    py = line[i, 1] + off * math.cos(line[i, 2])
                    cls = 15 if srng.random() < 0.5 else 16
                    size = srng.uniform(3.0, 7.0)
                    statics.append(_Box(px, py, line[i, 2], size, size, 4.0 if cls == 15 else 3.0, cls))

        def agent_box(a: tuple, t: float, s_line=s_line, line=line) -> _Box:
            s_pos = a[0] + a[2] * t
            x = np.interp(s_pos, s_line, line[:, 0])
            y = np.interp(s_pos, s_line, line[:, 1])
            yaw = float(np.interp(s_pos, s_line, line[:, 2]))
            return _Box(x - a[1] * math.sin(yaw), y + a[1] * math.cos(yaw), yaw, 4.5, 1.9, 1.6, 4)

        scene_name = f"scene-{seed:03d}{sc:04d}"
        scene_token = tok()
        sample_tokens = [tok() for _ in range(n_samples)]
        t0 = 1_600_000_000_000_000 + sc * 100_000_000
        inst_anns: dict[str, list[str]] = {a[3]: [] for a in agents}
        prev_sd = {ch: "" for ch in (*CAMERAS, "LIDAR_TOP")}
        sd_records: dict[str, list[dict]] = {ch: [] for ch in prev_sd}
        for i, st in enumerate(sample_tokens):
            ts = t0 + int(i * SAMPLE_DT * 1e6)
            j = round(i * SAMPLE_DT * SIM_HZ)
            ego_scene = np.array([ego_x[j], ego_y[j], ego_yaw[j]])
            gx, gy, gyw = to_global(*ego_scene)
            pose_token = tok()
            tables["ego_pose"].append({"token": pose_token, "timestamp": ts, "rotation": yaw_to_quat(gyw),
                                       "translation": [gx, gy, 0.0]})
            tables["sample"].append({"token": st, "timestamp": ts, "scene_token": scene_token,
                                     "prev": sample_tokens[i - 1] if i else "",
                                     "next": sample_tokens[i + 1] if i + 1 < n_samples else ""})
            t_now = i * SAMPLE_DT
            cmd = Command.LANEFOLLOW
            if t_now < m["t_end"]:
                cmd = {"turn_left": Command.LEFT, "turn_right": Command.RIGHT,
                       "lane_change_left": Command.CHANGELANELEFT,
                       "lane_change_right": Command.CHANGELANERIGHT}.get(kind, Command.LANEFOLLOW)
            route = _route_points(line, s_line, ego_scene).round(3).tolist()
            tables[EXTRA_TABLE].append({"sample_token": st, "command": int(cmd), "speed": float(abs(m["v"][j])),
                                        "route_points": {"50": route, "200": route}})
            boxes_now = [agent_box(a, t_now) for a in agents]
            for a, b in zip(agents, boxes_now, strict=True):
                ann_token = tok()
                bx, by, byaw = to_global(b.x, b.y, b.yaw)
                inst_anns[a[3]].append(ann_token)
                tables["sample_annotation"].append({
                    "token": ann_token, "sample_token": st, "instance_token": a[3], "visibility_token": vis_token,
                    "attribute_tokens": [attr_token], "translation": [bx, by, b.height / 2],
                    "size": [b.width, b.length, b.height], "rotation": yaw_to_quat(byaw), "prev": "", "next": "",
                    "num_lidar_pts": 10, "num_radar_pts": 0})
            sem, mask_lidar, mask_camera = _occupancy(ego_scene, line, boxes_now + statics)
            save_occ3d_labels(occ3d_label_path(root, scene_name, st), sem, mask_lidar, mask_camera)
            for ch in (*CAMERAS, "LIDAR_TOP"):
                ext = "pcd.bin" if ch == "LIDAR_TOP" else "jpg"
                rel = f"samples/{ch}/{scene_name}__{ch}__{ts}.{ext}"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if ch == "LIDAR_TOP":
                    path.write_bytes(b"")  # zero points (x, y, z, intensity, ring as float32 x5)
                else:
                    img = _render(ch, h, w, sem, ego_scene, boxes_now + statics)
                    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
                sd = {"token": tok(), "sample_token": st, "ego_pose_token": pose_token,
                      "calibrated_sensor_token": calib_tokens[ch], "timestamp": ts, "fileformat": ext.split(".")[0],
                      "is_key_frame": True, "height": 0 if ch == "LIDAR_TOP" else h,
                      "width": 0 if ch == "LIDAR_TOP" else w, "filename": rel, "prev": prev_sd[ch], "next": ""}
                if sd_records[ch]:
                    sd_records[ch][-1]["next"] = sd["token"]
                prev_sd[ch] = sd["token"]
                sd_records[ch].append(sd)
        for recs in sd_records.values():
            tables["sample_data"] += recs
        ann_by_token = {a["token"]: a for a in tables["sample_annotation"]}
        for a in agents:
            anns = inst_anns[a[3]]
            for p, n in itertools.pairwise(anns):
                ann_by_token[p]["next"], ann_by_token[n]["prev"] = n, p
            tables["instance"].append({"token": a[3], "category_token": cat_tokens["vehicle.car"],
                                       "nbr_annotations": len(anns), "first_annotation_token": anns[0],
                                       "last_annotation_token": anns[-1]})
        tables["scene"].append({"token": scene_token, "log_token": log_token, "nbr_samples": n_samples,
                                "first_sample_token": sample_tokens[0], "last_sample_token": sample_tokens[-1],
                                "name": scene_name, "description": f"synthetic {kind.replace('_', ' ')}"})
    for name, recs in tables.items():
        tmp = tdir / f"{name}.json.tmp"
        tmp.write_text(json.dumps(recs, indent=0))
        tmp.replace(tdir / f"{name}.json")
    (root / "README.md").write_text(
        f"# Synthetic OccVLA dataset\n\nWritten by `occvla.data.make_synthetic_dataset` (seed {seed}): {n_scenes} "
        f"scenes x {n_samples} key frames at 2 Hz, six {h}x{w} cameras, Occ3D labels under `gts/`.\n"
        "nuScenes layout (tables in `" + version + "/`); content is procedurally generated, not real driving.\n"
    )
    return root
