"""Plane geometry shared by the expert's planner modules: angles, projections onto polylines, box overlap.

CARLA world frame (x east, y south, yaw in radians here); arrays are numpy float64."""

from __future__ import annotations

import numpy as np


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def polygon_distance(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance of (M, 2) points to a simple polygon (K, 2); 0 inside. (M,)"""
    a, b = poly, np.roll(poly, -1, axis=0)  # (K, 2) edges a -> b
    ab = b - a
    ap = points[:, None, :] - a[None]  # (M, K, 2)
    t = np.clip(np.sum(ap * ab[None], axis=2) / np.maximum(np.sum(ab * ab, axis=1), 1e-12)[None], 0.0, 1.0)
    d = np.hypot(*np.moveaxis(ap - t[..., None] * ab[None], 2, 0)).min(axis=1)  # (M,)
    # even-odd rule: a ray towards +x crosses the edges that straddle the point's y left of the point
    px, py = points[:, 0:1], points[:, 1:2]
    straddle = (a[None, :, 1] > py) != (b[None, :, 1] > py)
    x_cross = a[None, :, 0] + (py - a[None, :, 1]) * ab[None, :, 0] / np.where(ab[:, 1] == 0, 1e-12, ab[:, 1])[None]
    inside = (np.sum(straddle & (x_cross > px), axis=1) % 2) == 1
    return np.where(inside, 0.0, d)


def project_onto_segments(
    pts: np.ndarray, a: np.ndarray, b: np.ndarray, s0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project points (M, 2) onto segments a->b (K, 2). Returns arc length (M,), |lateral| (M,), segment (M,),
    and the signed lateral offset (M,), + = left of the travel direction (CARLA frame, y south)."""
    # x and y as separate (M, K) planes: the expert projects ~100 predicted positions onto ~50 segments many
    # times per tick, and (M, K, 2) temporaries with sums over their last axis cost twice as much (same values)
    d = b - a  # (K, 2)
    dx, dy = d[:, 0], d[:, 1]  # (K,)
    l2 = np.maximum(dx * dx + dy * dy, 1e-12)  # (K,)
    px, py = pts[:, 0:1], pts[:, 1:2]  # (M, 1)
    rx, ry = px - a[None, :, 0], py - a[None, :, 1]  # (M, K)
    t = np.clip((rx * dx + ry * dy) / l2, 0.0, 1.0)  # (M, K)
    dist = np.hypot(px - (a[:, 0] + t * dx), py - (a[:, 1] + t * dy))  # (M, K)
    k = np.argmin(dist, axis=1)  # (M,)
    rows = np.arange(len(pts))
    tk, dk = t[rows, k], dist[rows, k]
    s = s0[k] + tk * np.sqrt(l2[k])
    cross = dx[k] * ry[rows, k] - dy[k] * rx[rows, k]  # > 0: right of travel (y points south)
    signed = np.where(cross > 0, -dk, dk)
    return s, dk, k, signed


def box_overlap(box: tuple[float, float, float, float, float], others: np.ndarray) -> np.ndarray:
    """Separating-axis test of one 2D box (x, y, half_x, half_y, yaw rad) against M boxes (M, 5). (M,) bool."""

    def corners(b: np.ndarray) -> np.ndarray:  # (M, 5) -> (M, 4, 2)
        c, s = np.cos(b[:, 4]), np.sin(b[:, 4])
        sx = np.array([1.0, 1.0, -1.0, -1.0])[None] * b[:, 2:3]
        sy = np.array([1.0, -1.0, -1.0, 1.0])[None] * b[:, 3:4]
        return np.stack(
            [b[:, :1] + sx * c[:, None] - sy * s[:, None], b[:, 1:2] + sx * s[:, None] + sy * c[:, None]],
            axis=-1,
        )

    m = len(others)
    a = corners(np.asarray([box], np.float64))[0]  # (4, 2)
    o = corners(others)  # (M, 4, 2)
    yaws = np.concatenate([np.full((m, 1), box[4]), others[:, 4:5]], axis=1)  # (M, 2)
    axes = np.concatenate(
        [np.stack([np.cos(yaws), np.sin(yaws)], -1), np.stack([-np.sin(yaws), np.cos(yaws)], -1)], axis=1
    )  # (M, 4, 2)
    pa = np.einsum("kd,mad->mak", a, axes)  # (M, 4 axes, 4 corners)
    po = np.einsum("mkd,mad->mak", o, axes)
    separated = (pa.max(-1) < po.min(-1)) | (po.max(-1) < pa.min(-1))
    return ~separated.any(-1)
