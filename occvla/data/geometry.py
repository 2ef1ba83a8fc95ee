"""Pose maths for nuScenes records: quaternions are [w, x, y, z], translations metres, frames right-handed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def quat_to_rot(q: Sequence[float]) -> np.ndarray:
    """[w, x, y, z] -> (3, 3) rotation matrix (normalised first)."""
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rot_to_quat(r: np.ndarray) -> list[float]:
    """(3, 3) rotation matrix -> [w, x, y, z] with w >= 0."""
    m = np.asarray(r, np.float64)
    t = np.trace(m)
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k]) * 2
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    q = q if q[0] >= 0 else -q
    return (q / np.linalg.norm(q)).tolist()


def yaw_to_quat(yaw: float) -> list[float]:
    """Rotation about +z by ``yaw`` radians as [w, x, y, z]."""
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def quat_yaw(q: Sequence[float]) -> float:
    """Yaw (rad, about +z) of a [w, x, y, z] rotation."""
    r = quat_to_rot(q)
    return math.atan2(r[1, 0], r[0, 0])


def global_to_ego_xy(points: np.ndarray, ego_translation: Sequence[float], ego_rotation: Sequence[float]) -> np.ndarray:
    """(N, 2|3) global points -> (N, 2) ego-frame (x forward, y left) coordinates of the given ego pose."""
    p = np.asarray(points, np.float64)
    if p.shape[-1] == 2:
        p = np.concatenate([p, np.zeros((*p.shape[:-1], 1))], -1)
    r = quat_to_rot(ego_rotation)
    local = (p - np.asarray(ego_translation, np.float64)) @ r  # R^T (p - t), row-vector form
    return local[..., :2]
