"""The static town mesh prepared for drawing: long triangles split, winding fixed, sorted into square tiles."""

from __future__ import annotations

import numpy as np

from sim.types import Mesh

VERTEX_FLOATS = 10  # position (3), normal (3), colour (3), class (1)


def split_long_triangles(data: np.ndarray, max_edge: float) -> np.ndarray:
    """Halve triangles at the midpoint of their longest edge until no edge exceeds max_edge metres.

    data: (T, 3, VERTEX_FLOATS) float32. Winding is preserved. Why: light fog and haze are evaluated per
    vertex, which is only accurate when vertices are not hundreds of metres apart.
    """
    done = []
    while len(data):
        p = data[:, :, :3].astype(np.float64)
        edges = np.stack([np.linalg.norm(p[:, (k + 1) % 3] - p[:, k], axis=1) for k in range(3)], 1)  # (T, 3)
        longest = edges.argmax(axis=1)
        big = edges.max(axis=1) > max_edge
        done.append(data[~big])
        data, longest = data[big], longest[big]
        if not len(data):
            break
        # rotate so the longest edge is v0 -> v1, then (v0, m, v2) + (m, v1, v2)
        idx = (longest[:, None] + np.arange(3)[None, :]) % 3  # (T, 3)
        r = np.take_along_axis(data, idx[:, :, None], axis=1)
        mid = (r[:, 0] + r[:, 1]) / 2.0
        mid[:, 9] = r[:, 0, 9]  # the class is not averaged
        n = mid[:, 3:6]
        mid[:, 3:6] = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        a = np.stack([r[:, 0], mid, r[:, 2]], 1)
        b = np.stack([mid, r[:, 1], r[:, 2]], 1)
        data = np.concatenate([a, b]).astype(np.float32)
    return np.concatenate(done) if done else np.zeros((0, 3, VERTEX_FLOATS), np.float32)


class StaticTiles:
    """Triangles grouped by square tile (of their centroid): vertex ranges and bounding boxes per tile.

    Every triangle is wound counter-clockwise around its normal so back-face culling keeps the side the
    normal points to. Vertex order is deterministic (stable sorts only).
    """

    def __init__(self, mesh: Mesh, tile: float, max_edge: float) -> None:
        n = len(mesh.positions)
        if n % 3:
            raise ValueError(f"StaticScene.mesh has {n} vertices, not a multiple of 3 (a triangle list)")
        data = (
            np.concatenate(
                [mesh.positions, mesh.normals, mesh.colors, mesh.semantic[:, None].astype(np.float32)], axis=1
            )
            .astype(np.float32)
            .reshape(-1, 3, VERTEX_FLOATS)
        )  # (T, 3, 10)
        data = split_long_triangles(data, max_edge)
        if not len(data):
            self.data = np.zeros((0, VERTEX_FLOATS), np.float32)
            self.first = self.count = np.zeros(0, np.int64)
            self.lo = self.hi = np.zeros((0, 3))
            return
        tri = data[:, :, :3].astype(np.float64)  # (T, 3, 3)
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        flip = np.einsum("tk,tk->t", cross, data[:, :, 3:6].sum(axis=1)) < 0
        data[flip] = data[flip][:, [0, 2, 1]]
        key = np.floor(tri.mean(axis=1)[:, :2] / tile).astype(np.int64)  # (T, 2)
        order = np.lexsort((key[:, 1], key[:, 0]))
        key, tri = key[order], tri[order]
        self.data = data[order].reshape(-1, VERTEX_FLOATS)
        change = np.any(key[1:] != key[:-1], axis=1)
        starts = np.concatenate([[0], np.nonzero(change)[0] + 1])  # first triangle of each tile
        counts = np.diff(np.concatenate([starts, [len(key)]]))
        self.first = starts * 3  # (K,) first vertex
        self.count = counts * 3  # (K,) vertex count
        self.lo = np.minimum.reduceat(tri.min(axis=1), starts)  # (K, 3)
        self.hi = np.maximum.reduceat(tri.max(axis=1), starts)  # (K, 3)

    def __len__(self) -> int:
        return len(self.first)

    def near(self, x: float, y: float, radius: float) -> np.ndarray:
        """Indices of tiles whose box comes within `radius` metres (2D) of (x, y)."""
        dx = np.maximum(np.maximum(self.lo[:, 0] - x, x - self.hi[:, 0]), 0.0)
        dy = np.maximum(np.maximum(self.lo[:, 1] - y, y - self.hi[:, 1]), 0.0)
        return np.nonzero(np.hypot(dx, dy) <= radius)[0]
