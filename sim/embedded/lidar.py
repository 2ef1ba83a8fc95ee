"""A ray-cast LiDAR through the occupancy label grid: Occ3D's `mask_lidar` and a 'sensor.lidar.ray_cast' feed.

The rays of a fixed sensor are fixed in the ego frame, and so is the grid, so each ray's voxel traversal
(a 3D DDA, Amanatides & Woo) is computed once; a scan then only gathers the grid along the stored traversals,
in short segments, dropping rays as soon as they hit something. For the observed mask the rays' first 32 steps
are merged into a prefix tree (near the sensor many rays cross the same voxels). Everything here is in the ego frame
(nuScenes: x forward, y left, z up) except `points`, which are in CARLA's sensor frame (x forward, y right,
z up), as CARLA's ray-cast LiDAR returns them.

Limits: the scan sees only what is inside the grid (returns stop at its 40 m edges and 5.4 m top); hits land on
voxel faces (0.4 m quantisation); intensity follows CARLA's model exp(-attenuation * distance).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.embedded.vec import rows_times
from sim.sensors import LEADERBOARD_LIDAR
from sim.types import FIXED_DELTA_SECONDS, FREE

if TYPE_CHECKING:
    from sim.embedded.occupancy import OccGridSpec

_SEGMENT = 16  # voxels gathered per ray per step of the scan loop (two 64-bit words of bools: see _cast)
_TRIE_BLOCKS = 2  # the first 2 * _SEGMENT steps of all rays are merged into a prefix tree (observed_mask)


@dataclass(frozen=True)
class LidarSpec:
    """A spinning LiDAR (nuScenes' HDL-32E-like defaults). mount is in the ego frame (y left), metres; yaw and
    azimuths in CARLA's convention (degrees, clockwise seen from above: positive to the right)."""

    channels: int = 32
    lower_fov: float = -30.0  # degrees, lowest beam elevation
    upper_fov: float = 10.0
    azimuth_step: float = 1.0  # degrees between firings of one beam: 360 per turn, ~ the 1.29 deg beam spacing
    mount: tuple[float, float, float] = (0.0, 0.0, 1.84)
    attenuation: float = 0.004  # CARLA's atmosphere_attenuation_rate, 1/m
    yaw: float = 0.0  # the sensor's rotation on the vehicle (degrees); points come back in its frame
    pitch: float = 0.0
    roll: float = 0.0
    azimuth_start: float = 0.0  # the part of the turn this scan covers, from the sensor's x axis
    azimuth_span: float = 360.0
    range: float = 100.0  # metres; the grid's edge (40 m) usually comes first

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"LiDAR channels must be >= 1, got {self.channels}")
        if not (-90.0 <= self.lower_fov <= self.upper_fov <= 90.0):
            raise ValueError(f"LiDAR fov [{self.lower_fov}, {self.upper_fov}] must be increasing within [-90, 90]")
        if not (0.0 < self.azimuth_step <= 90.0):
            raise ValueError(f"LiDAR azimuth_step {self.azimuth_step} must be in (0, 90] degrees")
        if not (0.0 < self.azimuth_span <= 360.0) or not self.range > 0:
            raise ValueError(f"LiDAR azimuth_span {self.azimuth_span} must be in (0, 360] degrees and range "
                             f"{self.range} positive")

    @staticmethod
    def from_sensor_dict(s: dict[str, Any], tick: int = 0) -> LidarSpec:
        """The scan of tick `tick` of a leaderboard 'sensor.lidar.ray_cast' dict.

        Attributes the dict leaves out are the leaderboard's (sim.sensors.LEADERBOARD_LIDAR: 64 channels, 85 m,
        10 Hz). At 10 Hz and 20 ticks a second a scan covers half a turn, alternating halves, as CARLA's does.
        CARLA vehicle frame: y right, so ego y = -y.
        """
        def get(key: str) -> float:
            return float(s.get(key, LEADERBOARD_LIDAR[key]))

        span = min(360.0, 360.0 * get("rotation_frequency") * FIXED_DELTA_SECONDS)
        return LidarSpec(channels=int(get("channels")), lower_fov=get("lower_fov"), upper_fov=get("upper_fov"),
                         mount=(float(s.get("x", 0.0)), -float(s.get("y", 0.0)), float(s.get("z", 1.84))),
                         attenuation=get("atmosphere_attenuation_rate"), yaw=float(s.get("yaw", 0.0)),
                         pitch=float(s.get("pitch", 0.0)), roll=float(s.get("roll", 0.0)),
                         azimuth_start=(tick * span) % 360.0, azimuth_span=span, range=get("range"))

    def rotation(self) -> np.ndarray:
        """Sensor -> vehicle rotation (3, 3), both CARLA frames (y right)."""
        from sim.embedded.occupancy import carla_rotation  # occupancy imports this module

        return carla_rotation(self.pitch, self.yaw, self.roll)

    def directions(self) -> np.ndarray:
        """Unit ray directions (R, 3) in the ego frame (y left)."""
        elev = np.radians(np.linspace(self.lower_fov, self.upper_fov, self.channels))
        n_az = max(1, round(self.azimuth_span / self.azimuth_step))
        az = np.radians(self.azimuth_start + np.arange(n_az) * (self.azimuth_span / n_az))  # sensor frame, right +
        e, a = np.meshgrid(elev, az, indexing="ij")  # (C, A)
        d = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
        d = rows_times(d, self.rotation().T)  # vehicle frame, y right
        d[:, 1] *= -1.0
        return d


NUSCENES_LIDAR = LidarSpec()


@dataclass
class LidarScan:
    """One scan: per-ray first hits inside the grid."""

    ray: np.ndarray  # (N,) int ray index of each return
    voxel: np.ndarray  # (N, 3) int voxel index [i, j, k] hit
    distance: np.ndarray  # (N,) float32 metres from the sensor to the hit voxel's face
    points_ego: np.ndarray  # (N, 3) float32 hit points, ego frame
    classes: np.ndarray  # (N,) uint8 Occ3D class of the hit voxel


class LidarModel:
    """Precomputed traversals of one LidarSpec through one OccGridSpec; scans any label grid of that spec."""

    def __init__(self, spec: LidarSpec, grid: OccGridSpec) -> None:
        self.spec, self.grid = spec, grid
        self.shape = grid.shape
        self.n_vox = int(np.prod(self.shape))
        self.origin = np.asarray(spec.mount, np.float64)
        o_idx = grid.index_of(self.origin[None])[0]
        if np.any(o_idx < 0) or np.any(o_idx >= np.array(self.shape)):
            raise ValueError(f"LiDAR mount {spec.mount} lies outside the occupancy grid")
        self.dirs = spec.directions()  # (R, 3)
        trav, t_in = _traverse(self.origin, self.dirs, grid)  # (R, L) voxel ids (padded n_vox), entry metres
        n_rays, n_seg = len(trav), -(-(trav.shape[1] + 1) // _SEGMENT)  # +1: every ray ends on a sentinel
        width = n_seg * _SEGMENT
        pad = width - trav.shape[1]
        trav = np.pad(trav, ((0, 0), (0, pad)), constant_values=self.n_vox)
        t_in = np.pad(t_in, ((0, 0), (0, pad)), constant_values=np.inf)
        self._blocks = np.ascontiguousarray(trav.reshape(n_rays, n_seg, _SEGMENT).transpose(1, 0, 2))  # (n_seg, R, S)
        self._t_in = t_in.astype(np.float16)  # (R, n_seg * S) entry distance of each step, metres
        self._occ = np.empty(self.n_vox + 1, bool)  # reused: occupied flags + an always-occupied sentinel
        self._build_trie(trav, min(_TRIE_BLOCKS, n_seg) * _SEGMENT)

    def _build_trie(self, trav: np.ndarray, depth: int) -> None:
        """Merge the rays' first `depth` steps into a prefix tree: near the sensor dozens of rays cross the same
        voxels in the same order, and one node per distinct prefix decides their visibility once."""
        base = self.n_vox + 1
        parents, voxels, levels = [], [], []
        prev = np.full(len(trav), -1, np.int64)  # each ray's node at the previous level (-1: the root)
        start = 0
        for level in range(depth):
            key = (prev + 1) * base + trav[:, level]
            uniq, inv = np.unique(key, return_inverse=True)
            parents.append(uniq // base - 1)
            voxels.append(uniq % base)
            levels.append((start, start + len(uniq)))
            prev = start + inv.reshape(-1)
            start += len(uniq)
        self._trie_parent = np.concatenate(parents).astype(np.int64)  # (N,) parent node (-1 at level 0)
        self._trie_vox = np.concatenate(voxels).astype(np.int64)  # (N,) voxel of each node
        self._trie_levels = levels  # [(start, end)] node ranges per level
        self._trie_leaf = prev  # (R,) each ray's node at the last level
        self._trie_blocks = depth // _SEGMENT  # traversal blocks the trie covers

    @property
    def n_rays(self) -> int:
        return int(self._blocks.shape[1])

    # -------------------------------------------------------------- scanning
    def _cast(self, semantics: np.ndarray, want_mask: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Per ray: the step and flat voxel id of the first occupied voxel (n_vox, the sentinel past the grid,
        when none is); when asked, the observed mask (nx, ny, nz)."""
        if semantics.shape != self.shape:
            raise ValueError(f"semantics has shape {semantics.shape}, expected {self.shape}")
        occ = self._occ
        np.not_equal(semantics.reshape(-1), FREE, out=occ[:-1])
        occ[-1] = True
        hit_step = np.zeros(self.n_rays, np.int64)
        hit_vox = np.zeros(self.n_rays, np.int64)
        mask = np.zeros(self.n_vox + 1, bool) if want_mask else None
        alive = np.arange(self.n_rays)
        steps = np.arange(_SEGMENT)
        for s, block in enumerate(self._blocks):  # (R, S)
            idx = np.take(block, alive, axis=0)  # (A, S) voxel ids along each live ray
            o = np.take(occ, idx)  # (A, S) bool
            words = o.view(np.uint64)  # (A, S / 8): a fast row-wise any()
            done = (words[:, 0] | words[:, 1]) != 0
            rows = np.nonzero(done)[0]
            first = o[rows].argmax(1)
            if mask is not None:
                np.put(mask, np.compress(~done, idx, axis=0), True)  # rays still free: the whole segment is seen
                stopped = idx[rows]
                np.put(mask, stopped[steps[None, :] <= first[:, None]], True)  # up to and including the first hit
            hit_step[alive[rows]] = s * _SEGMENT + first
            hit_vox[alive[rows]] = idx[rows, first]
            alive = alive[~done]
            if len(alive) == 0:
                break
        return hit_step, hit_vox, (mask[:-1].reshape(self.shape) if mask is not None else None)

    def observed_mask(self, semantics: np.ndarray) -> np.ndarray:
        """(nx, ny, nz) bool: voxels a ray crosses before its first hit, and the hit voxel.

        The same result as casting every ray (`_cast(..., want_mask=True)`), with the rays' shared first steps
        evaluated once in the prefix tree and only the rays still free past it cast further."""
        if semantics.shape != self.shape:
            raise ValueError(f"semantics has shape {semantics.shape}, expected {self.shape}")
        occ = self._occ
        np.not_equal(semantics.reshape(-1), FREE, out=occ[:-1])
        occ[-1] = True
        free = ~np.take(occ, self._trie_vox)  # (N,)
        seen = np.empty(len(free), bool)  # node observed: every earlier voxel on its path is free
        clear = np.empty(len(free), bool)  # node observed and free itself
        s0, e0 = self._trie_levels[0]
        seen[s0:e0] = True
        clear[s0:e0] = free[s0:e0]
        for s, e in self._trie_levels[1:]:
            np.take(clear, self._trie_parent[s:e], out=seen[s:e])
            np.logical_and(seen[s:e], free[s:e], out=clear[s:e])
        mask = np.zeros(self.n_vox + 1, bool)
        np.put(mask, np.compress(seen, self._trie_vox), True)
        alive = np.nonzero(np.take(clear, self._trie_leaf))[0]
        steps = np.arange(_SEGMENT)
        for block in self._blocks[self._trie_blocks:]:  # (R, S): the rays still free, per ray as in _cast
            if len(alive) == 0:
                break
            idx = np.take(block, alive, axis=0)  # (A, S)
            o = np.take(occ, idx)
            words = o.view(np.uint64)
            done = (words[:, 0] | words[:, 1]) != 0
            rows = np.nonzero(done)[0]
            first = o[rows].argmax(1)
            np.put(mask, np.compress(~done, idx, axis=0), True)
            np.put(mask, idx[rows][steps[None, :] <= first[:, None]], True)
            alive = alive[~done]
        return mask[:-1].reshape(self.shape)

    def scan(self, semantics: np.ndarray) -> LidarScan:
        """Per-ray first returns inside the grid."""
        step, flat_all, _ = self._cast(semantics, False)
        ray = np.nonzero(flat_all < self.n_vox)[0]
        flat = flat_all[ray]
        t = self._t_in[ray, step[ray]].astype(np.float32)  # metres to the hit voxel's entry face
        pts = (self.origin + t[:, None] * self.dirs[ray]).astype(np.float32)
        vox = np.stack(np.unravel_index(flat, self.shape), -1)
        return LidarScan(ray, vox, t, pts, semantics.reshape(-1)[flat].astype(np.uint8))

    def points(self, semantics: np.ndarray) -> np.ndarray:
        """(N, 4) float32 x, y, z, intensity in CARLA's sensor frame (x fwd, y right, z up), as ray_cast gives."""
        s = self.scan(semantics)
        keep = s.distance <= self.spec.range
        rel = s.points_ego[keep] - self.origin.astype(np.float32)
        rel[:, 1] *= -1.0  # vehicle frame, y right
        out = np.empty((len(rel), 4), np.float32)
        out[:, :3] = rows_times(rel, self.spec.rotation())  # the sensor's frame (R^T p, row vectors)
        out[:, 3] = np.exp(-self.spec.attenuation * s.distance[keep])
        return out


def _traverse(origin: np.ndarray, dirs: np.ndarray, grid: OccGridSpec) -> tuple[np.ndarray, np.ndarray]:
    """3D DDA of each ray from `origin` until it leaves the grid.

    Returns (R, L) int32 flat voxel ids (padded with n_vox) and (R, L) float32 distances at which the ray
    enters each voxel (0 for the sensor's own voxel, inf on padding).
    """
    shape = np.array(grid.shape)
    nx, ny, nz = grid.shape
    n_vox = nx * ny * nz
    g = (origin - grid.mins) / grid.voxel  # origin in voxel units
    n = len(dirs)
    cell = np.broadcast_to(np.floor(g).astype(np.int64), (n, 3)).copy()
    step = np.sign(dirs).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(dirs != 0, 1.0 / np.abs(dirs), np.inf)  # voxel units of t per voxel crossed
        frac = np.where(step > 0, cell + 1 - g, g - cell)  # distance to the next face, voxel units
        t_max = np.where(dirs != 0, frac * inv, np.inf)
    cap = int(shape.sum()) + 2
    out = np.full((n, cap), n_vox, np.int32)
    t_out = np.full((n, cap), np.inf, np.float32)
    t_enter = np.zeros(n)
    alive = np.arange(n)
    used = cap
    for s in range(cap):
        c = cell[alive]
        inside = np.all((c >= 0) & (c < shape), axis=1)
        alive, c = alive[inside], c[inside]
        if len(alive) == 0:
            used = s + 1
            break
        out[alive, s] = (c[:, 0] * ny + c[:, 1]) * nz + c[:, 2]
        t_out[alive, s] = t_enter[alive] * grid.voxel
        axis = np.argmin(t_max[alive], axis=1)
        t_enter[alive] = t_max[alive, axis]
        cell[alive, axis] += step[alive, axis]
        t_max[alive, axis] += inv[alive, axis]
    return out[:, :used], t_out[:, :used]


def lidar_model(spec: LidarSpec | None = None, grid: OccGridSpec | None = None) -> LidarModel:
    """The shared LidarModel of a (spec, grid) pair (built once: ~0.2 s and ~20 MB for the defaults)."""
    from sim.embedded.occupancy import OCC3D_GRID
    return _cached_model(spec or NUSCENES_LIDAR, grid or OCC3D_GRID)


@functools.lru_cache(maxsize=8)
def _cached_model(spec: LidarSpec, grid: OccGridSpec) -> LidarModel:
    return LidarModel(spec, grid)


def lidar_points(semantics: np.ndarray, spec: LidarSpec | None = None, grid: OccGridSpec | None = None
                 ) -> np.ndarray:
    """Serve 'sensor.lidar.ray_cast' from a label grid: (N, 4) float32 x, y, z, intensity, CARLA sensor frame."""
    return lidar_model(spec, grid).points(semantics)
