"""Open-loop planning metrics: L2 displacement and collision rate, in the UniAD and ST-P3 conventions.

Both conventions report values at the 1 s, 2 s and 3 s horizons of a 6-waypoint trajectory at 0.5 s steps
(waypoint indices 1, 3, 5):
- UniAD: the value *at* the horizon waypoint, averaged over samples.
- ST-P3 (also used by VAD, OccVLA's 0.28 m): the per-waypoint values averaged over all waypoints *up to* the
  horizon (1 s -> mean of 0.5 s and 1.0 s), averaged over samples.
``*_avg`` is the mean of the three horizons.

Collision: the planned ego box (Lincoln MKZ, ``EGO_LENGTH_M`` x ``EGO_WIDTH_M``, centred on the waypoint, yaw along
the trajectory) is tested against future agent boxes at the same timestep (oriented-box separating-axis test)
and/or against obstacle cells of a bird's-eye occupancy grid (a cell collides when its centre lies in the box).
Per-timestep collision indicators are aggregated with the same two conventions as L2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from occvla.metrics._util import to_numpy

DT_S = 0.5
HORIZONS_S: tuple[float, ...] = (1.0, 2.0, 3.0)
EGO_LENGTH_M = 4.9  # Lincoln MKZ-size box (project contract); pass length/width to change it
EGO_WIDTH_M = 2.1
STATIC_YAW_MIN_STEP_M = 0.05  # below this step length the yaw of the previous step is kept
# Occ3D classes treated as obstacles for the occupancy collision check: bicycle, bus, car, construction vehicle,
# motorcycle, pedestrian, trailer, truck (plus barrier and traffic cone when ``include_static``).
DYNAMIC_OBSTACLE_CLASSES: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 9, 10)
STATIC_OBSTACLE_CLASSES: tuple[int, ...] = (1, 8)


def _horizon_indices(num_steps: int) -> list[int]:
    idx = [round(h / DT_S) - 1 for h in HORIZONS_S]
    if idx[-1] >= num_steps:
        raise ValueError(f"trajectories need {idx[-1] + 1} waypoints for the 3 s horizon, got {num_steps}")
    return idx


def _aggregate(per_step: np.ndarray, valid: np.ndarray, name: str) -> dict[str, float]:
    """per_step (N, T) values, valid (N, T) bool -> UniAD and ST-P3 values at each horizon."""
    out: dict[str, float] = {}
    idx = _horizon_indices(per_step.shape[1])
    for conv in ("uniad", "stp3"):
        vals = []
        for h, k in zip(HORIZONS_S, idx, strict=True):
            if conv == "uniad":
                v, m = per_step[:, k], valid[:, k]
                val = float(v[m].mean()) if m.any() else float("nan")
            else:
                v, m = per_step[:, : k + 1], valid[:, : k + 1]
                step_means = [v[:, j][m[:, j]].mean() for j in range(k + 1) if m[:, j].any()]
                val = float(np.mean(step_means)) if step_means else float("nan")
            out[f"{name}_{conv}_{int(h)}s"] = val
            vals.append(val)
        out[f"{name}_{conv}_avg"] = float(np.mean(vals))
    return out


def _check_traj(x: Any, name: str) -> np.ndarray:
    a = to_numpy(x, np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (N, T, 2) or (T, 2), got {a.shape}")
    return a


def l2_errors(pred: Any, gt: Any, valid: Any | None = None) -> dict[str, float]:
    """L2 (m) between planned and true waypoints.

    Args:
        pred, gt: (N, 6, 2) or (6, 2) ego-frame waypoints.
        valid: optional (N, 6) bool; False for waypoints without ground truth (end of a scene).
    Returns:
        ``l2_uniad_{1,2,3}s``, ``l2_uniad_avg``, ``l2_stp3_{1,2,3}s``, ``l2_stp3_avg``.
    """
    p, g = _check_traj(pred, "pred"), _check_traj(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} != gt shape {g.shape}")
    err = np.linalg.norm(p - g, axis=-1)  # (N, T)
    m = np.ones(err.shape, bool) if valid is None else to_numpy(valid, bool).reshape(err.shape)
    return _aggregate(err, m, "l2")


def trajectory_yaws(traj: Any) -> np.ndarray:
    """(N, T, 2) -> (N, T) yaw (rad, CCW from ego x) of each step's motion; stationary steps keep the last yaw."""
    t = _check_traj(traj, "traj")
    path = np.concatenate([np.zeros_like(t[:, :1]), t], axis=1)  # (N, T+1, 2)
    d = np.diff(path, axis=1)  # (N, T, 2)
    yaw = np.arctan2(d[..., 1], d[..., 0])
    moving = np.linalg.norm(d, axis=-1) >= STATIC_YAW_MIN_STEP_M
    out = np.zeros_like(yaw)
    last = np.zeros(t.shape[0])
    for j in range(t.shape[1]):
        last = np.where(moving[:, j], yaw[:, j], last)
        out[:, j] = last
    return out


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """(..., 5) boxes [x, y, length, width, yaw] -> (..., 4, 2) corners, counter-clockwise."""
    x, y, length, w, yaw = np.moveaxis(np.asarray(boxes, np.float64), -1, 0)
    c, s = np.cos(yaw), np.sin(yaw)
    lx = np.array([0.5, -0.5, -0.5, 0.5])
    wy = np.array([0.5, 0.5, -0.5, -0.5])
    dx = lx * length[..., None]  # (..., 4)
    dy = wy * w[..., None]
    cx = x[..., None] + c[..., None] * dx - s[..., None] * dy
    cy = y[..., None] + s[..., None] * dx + c[..., None] * dy
    return np.stack([cx, cy], axis=-1)


def boxes_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Separating-axis test for oriented rectangles; a, b broadcastable (..., 5) -> (...) bool (touching = overlap)."""
    ca, cb = box_corners(a), box_corners(b)  # (..., 4, 2)
    ca, cb = np.broadcast_arrays(ca, cb)
    sep = np.zeros(ca.shape[:-2], bool)
    for corners in (ca, cb):
        for e in range(2):  # two edge directions per rectangle
            edge = corners[..., e + 1, :] - corners[..., e, :]
            axis = np.stack([-edge[..., 1], edge[..., 0]], axis=-1)[..., None, :]  # (..., 1, 2)
            pa = (ca * axis).sum(-1)  # (..., 4)
            pb = (cb * axis).sum(-1)
            sep |= (pa.max(-1) < pb.min(-1) - 1e-9) | (pb.max(-1) < pa.min(-1) - 1e-9)
    return ~sep


def ego_boxes(traj: Any, length: float = EGO_LENGTH_M, width: float = EGO_WIDTH_M) -> np.ndarray:
    """(N, T, 2) waypoints -> (N, T, 5) ego boxes [x, y, l, w, yaw] oriented along the trajectory."""
    t = _check_traj(traj, "traj")
    yaw = trajectory_yaws(t)
    lw = np.broadcast_to(np.array([length, width]), t.shape)
    return np.concatenate([t, lw, yaw[..., None]], axis=-1)


def collisions_with_boxes(traj: Any, agent_boxes: Any, agent_valid: Any | None = None) -> np.ndarray:
    """Per-timestep collision of the ego box with agent boxes.

    Args:
        traj: (N, T, 2) planned waypoints.
        agent_boxes: (N, T, M, 5) future agent boxes [x, y, length, width, yaw] in the current ego frame.
        agent_valid: optional (N, T, M) bool.
    Returns:
        (N, T) bool.
    """
    ego = ego_boxes(traj)  # (N, T, 5)
    boxes = to_numpy(agent_boxes, np.float64)
    if boxes.ndim != 4 or boxes.shape[:2] != ego.shape[:2] or boxes.shape[-1] != 5:
        raise ValueError(f"agent_boxes must have shape (N, T, M, 5) with (N, T)={ego.shape[:2]}, got {boxes.shape}")
    hit = boxes_overlap(ego[:, :, None, :], boxes)  # (N, T, M)
    if agent_valid is not None:
        hit &= to_numpy(agent_valid, bool)
    return hit.any(-1)


def occupancy_to_bev(sem: Any, classes: tuple[int, ...] = DYNAMIC_OBSTACLE_CLASSES) -> np.ndarray:
    """(..., X, Y, Z) Occ3D labels -> (..., X, Y) bool: a column holds an obstacle voxel of ``classes``."""
    s = to_numpy(sem)
    return np.isin(s, np.asarray(classes)).any(-1)


def collisions_with_occupancy(
    traj: Any,
    bev: Any,
    voxel_size: float = 0.4,
    x_range: tuple[float, float] = (-40.0, 40.0),
    y_range: tuple[float, float] = (-40.0, 40.0),
) -> np.ndarray:
    """Per-timestep collision of the ego box with occupied bird's-eye cells.

    Args:
        traj: (N, T, 2) planned waypoints (ego frame now).
        bev: (N, T, X, Y) per-timestep or (N, X, Y) static obstacle maps (bool), indexed [x, y] with cell centres
            at ``range_min + (i + 0.5) * voxel_size``. A static map is applied to every timestep (a conservative
            check when only the current occupancy is known).
    Returns:
        (N, T) bool.
    """
    ego = ego_boxes(traj)  # (N, T, 5)
    n, t = ego.shape[:2]
    occ = to_numpy(bev, bool)
    if occ.ndim == 3:
        occ = np.broadcast_to(occ[:, None], (occ.shape[0], t, *occ.shape[1:]))
    if occ.ndim != 4 or occ.shape[:2] != (n, t):
        raise ValueError(f"bev must have shape (N, X, Y) or (N, T, X, Y) with N={n}, T={t}, got {to_numpy(bev).shape}")
    out = np.zeros((n, t), bool)
    half_diag = 0.5 * np.hypot(EGO_LENGTH_M, EGO_WIDTH_M) + voxel_size
    for i in range(n):
        for j in range(t):
            xs, ys = np.nonzero(occ[i, j])
            if xs.size == 0:
                continue
            cx = x_range[0] + (xs + 0.5) * voxel_size
            cy = y_range[0] + (ys + 0.5) * voxel_size
            bx, by, bl, bw, yaw = ego[i, j]
            near = np.hypot(cx - bx, cy - by) <= half_diag
            if not near.any():
                continue
            dx, dy = cx[near] - bx, cy[near] - by
            lon = dx * np.cos(yaw) + dy * np.sin(yaw)  # into the box frame
            lat = -dx * np.sin(yaw) + dy * np.cos(yaw)
            out[i, j] = bool(((np.abs(lon) <= bl / 2) & (np.abs(lat) <= bw / 2)).any())
    return out


def collision_rates(collisions: Any, valid: Any | None = None) -> dict[str, float]:
    """(N, T) per-timestep collision indicators -> ``col_{uniad,stp3}_{1,2,3}s`` / ``_avg`` rates in [0, 1]."""
    c = to_numpy(collisions, bool)
    if c.ndim != 2:
        raise ValueError(f"collisions must have shape (N, T), got {c.shape}")
    m = np.ones(c.shape, bool) if valid is None else to_numpy(valid, bool).reshape(c.shape)
    return _aggregate(c.astype(np.float64), m, "col")
