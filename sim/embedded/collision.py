"""Vectorised 2D oriented-box overlap (separating axes), for ego-vs-actor and ego-vs-prop collisions."""

from __future__ import annotations

import numpy as np


def box_corners(cx: np.ndarray, cy: np.ndarray, ex: np.ndarray, ey: np.ndarray, yaw_deg: np.ndarray) -> np.ndarray:
    """Corners (M, 4, 2) of boxes centred at (cx, cy) with half sizes (ex, ey) rotated by yaw (degrees)."""
    yaw = np.radians(yaw_deg)
    c, s = np.cos(yaw), np.sin(yaw)
    sx = np.array([1.0, 1.0, -1.0, -1.0])
    sy = np.array([1.0, -1.0, -1.0, 1.0])
    lx = sx[None, :] * np.asarray(ex)[:, None]  # (M, 4)
    ly = sy[None, :] * np.asarray(ey)[:, None]
    x = np.asarray(cx)[:, None] + lx * c[:, None] - ly * s[:, None]
    y = np.asarray(cy)[:, None] + lx * s[:, None] + ly * c[:, None]
    return np.stack([x, y], axis=-1)


def obb_overlap(ego: tuple[float, float, float, float, float], cx: np.ndarray, cy: np.ndarray, ex: np.ndarray,
                ey: np.ndarray, yaw_deg: np.ndarray) -> np.ndarray:
    """Which of M boxes overlap the ego box (x, y, ex, ey, yaw). Returns (M,) bool."""
    m = len(cx)
    if m == 0:
        return np.zeros((0,), bool)
    ego_c = box_corners(np.array([ego[0]]), np.array([ego[1]]), np.array([ego[2]]), np.array([ego[3]]),
                        np.array([ego[4]]))[0]  # (4, 2)
    oth = box_corners(cx, cy, ex, ey, yaw_deg)  # (M, 4, 2)
    ey_r = np.radians(ego[4])
    oy_r = np.radians(np.asarray(yaw_deg))
    axes = np.concatenate([
        np.broadcast_to(np.array([[np.cos(ey_r), np.sin(ey_r)], [-np.sin(ey_r), np.cos(ey_r)]]), (m, 2, 2)),
        np.stack([np.stack([np.cos(oy_r), np.sin(oy_r)], -1), np.stack([-np.sin(oy_r), np.cos(oy_r)], -1)], 1),
    ], axis=1)  # (M, 4, 2)
    pe = np.einsum("kd,mad->mak", ego_c, axes)  # (M, 4 axes, 4 corners)
    po = np.einsum("mkd,mad->mak", oth, axes)
    separated = (pe.max(-1) < po.min(-1)) | (po.max(-1) < pe.min(-1))  # (M, 4)
    return ~separated.any(-1)
