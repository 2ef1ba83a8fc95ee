"""Occ3D-nuScenes occupancy ground truth from the embedded simulator's exact scene geometry.

The grid is Occ3D's: array index [i, j, k] in the ego frame (nuScenes axes: x forward, y LEFT, z up, origin at
the ego vehicle origin on the ground), voxel centre at (x_min + (i + 0.5) * voxel, ...). The world is CARLA's
(x east, y south, z up, left-handed, yaw in degrees), so the ego <-> world conversion flips y; it lives in
`ego_to_world` / `world_to_ego` and nowhere else in this module.

The grid follows the ego's position, yaw and height (ego.z); pitch and roll are ignored (gravity-aligned
grid), as on the flat towns the embedded simulator builds. The ego vehicle itself is not labelled (Occ3D
drops it too); pass only the other actors.

Masks:
- `mask_camera`: a voxel is seen when its centre projects inside some camera image and lies no farther than
  the depth buffer at that pixel plus half a voxel diagonal. Without depth buffers it is all False.
- `mask_lidar`: voxels a simulated 32-beam ray-cast LiDAR traverses up to and including its first hit
  (sim/embedded/lidar.py), cast through the label grid itself.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from sim.embedded.lidar import NUSCENES_LIDAR, LidarModel, LidarSpec, lidar_model
from sim.embedded.vec import rows_times
from sim.protocol import OccupancyFrame
from sim.sensors import CameraSpec, nuscenes_rig
from sim.types import FREE, OCC, ActorState, BoxSet, GroundRaster, Pose, StaticScene

_EPS = 1e-6  # voxel units: a centre exactly on a box face counts as inside
_MAX_RIGS = 4  # camera lookups kept per process (~7 MB each for six cameras)
# Camera lookups depend only on the rig, the grid and the margin: shared by every builder of a process, so a new
# town (a new builder per load_town) does not pay the ~2.5 s build again.
_LUTS: dict[tuple, _CameraLUT] = {}


class OccupancyError(ValueError):
    """Bad input to the occupancy builder (one line, names the value)."""


@dataclass(frozen=True)
class OccGridSpec:
    """The voxel grid in the ego frame (Occ3D-nuScenes defaults: 200 x 200 x 16 voxels of 0.4 m)."""

    x_range: tuple[float, float] = (-40.0, 40.0)
    y_range: tuple[float, float] = (-40.0, 40.0)
    z_range: tuple[float, float] = (-1.0, 5.4)
    voxel: float = 0.4

    def __post_init__(self) -> None:
        if not (self.voxel > 0 and math.isfinite(self.voxel)):
            raise OccupancyError(f"voxel size must be a positive number, got {self.voxel}")
        for name, (lo, hi) in (("x_range", self.x_range), ("y_range", self.y_range), ("z_range", self.z_range)):
            n = (hi - lo) / self.voxel
            if not (hi > lo) or abs(n - round(n)) > 1e-6:
                raise OccupancyError(f"{name} {(lo, hi)} must be increasing and a whole number of "
                                     f"{self.voxel} m voxels")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(round((hi - lo) / self.voxel)  # type: ignore[return-value]
                     for lo, hi in (self.x_range, self.y_range, self.z_range))

    @property
    def mins(self) -> np.ndarray:
        return np.array([self.x_range[0], self.y_range[0], self.z_range[0]], np.float64)

    def centres(self, axis: int) -> np.ndarray:
        """Voxel-centre coordinates along one axis (0 x, 1 y, 2 z), ego frame, metres."""
        return self.mins[axis] + (np.arange(self.shape[axis]) + 0.5) * self.voxel

    def index_of(self, points_ego: np.ndarray) -> np.ndarray:
        """Voxel index (N, 3) int64 containing each ego-frame point (N, 3); may lie outside the grid."""
        return np.floor((np.asarray(points_ego, np.float64) - self.mins) / self.voxel).astype(np.int64)


OCC3D_GRID = OccGridSpec()  # Occ3D-nuScenes: 200 x 200 x 16 voxels of 0.4 m


# ---------------------------------------------------------------- frames (the one place the y flip lives)
def ego_to_world(points_ego: np.ndarray, ego: Pose) -> np.ndarray:
    """Ego-frame points (..., 3) (x fwd, y left, z up) -> CARLA world points (..., 3). Yaw and z only."""
    p = np.asarray(points_ego, np.float64)
    c, s = math.cos(math.radians(ego.yaw)), math.sin(math.radians(ego.yaw))
    # ego y left = -(vehicle y right); vehicle -> world is a rotation by yaw in CARLA's x-east/y-south plane
    wx = ego.x + p[..., 0] * c + p[..., 1] * s
    wy = ego.y + p[..., 0] * s - p[..., 1] * c
    return np.stack([wx, wy, ego.z + p[..., 2]], axis=-1)


def world_to_ego(points_world: np.ndarray, ego: Pose) -> np.ndarray:
    """CARLA world points (..., 3) -> ego-frame points (..., 3); the inverse of `ego_to_world`."""
    p = np.asarray(points_world, np.float64)
    c, s = math.cos(math.radians(ego.yaw)), math.sin(math.radians(ego.yaw))
    dx, dy = p[..., 0] - ego.x, p[..., 1] - ego.y
    return np.stack([dx * c + dy * s, dx * s - dy * c, p[..., 2] - ego.z], axis=-1)


def carla_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """CARLA local -> parent rotation (3, 3) for angles in degrees (the rotation part of Transform.get_matrix)."""
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cr, sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    return np.array([
        [cp * cy, cy * sp * sr - sy * cr, -cy * sp * cr - sy * sr],
        [cp * sy, sy * sp * sr + cy * cr, -sy * sp * cr + cy * sr],
        [sp, -cp * sr, cp * cr],
    ])


# ---------------------------------------------------------------- camera visibility lookup
@dataclass
class _CameraLUT:
    """Per-voxel (camera, pixel, depth) entries for a fixed rig, split into layers of unique voxels.

    Layer 0 covers every voxel (pixel = a sentinel that is never 'seen' where no camera sees it) so the
    common case is one gather and one compare; voxels in the view of 2+ cameras add (vox, pix, depth) rows.
    """

    pix0: np.ndarray  # (V,) int32 index into the concatenated depth buffer (sentinel = last element)
    depth0: np.ndarray  # (V,) float32 voxel planar depth minus the margin
    extra: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # [(vox (n,), pix (n,), depth (n,))]
    offsets: list[int]  # start of each camera in the concatenated buffer
    buffer: np.ndarray  # (sum H*W + 1,) float32, reused every frame


def _build_camera_lut(cameras: tuple[CameraSpec, ...], spec: OccGridSpec, margin: float) -> _CameraLUT:
    nx, ny, nz = spec.shape
    n_vox = nx * ny * nz
    # voxel centres in CARLA's vehicle frame (x fwd, y RIGHT, z up): flip the ego y
    xs, ys, zs = spec.centres(0), -spec.centres(1), spec.centres(2)
    pts = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1).reshape(-1, 3)  # (V, 3)
    entries_vox, entries_pix, entries_d = [], [], []
    offsets, off = [], 0
    for cam in cameras:
        rot = carla_rotation(cam.pitch, cam.yaw, cam.roll)
        pc = rows_times(pts - np.array([cam.x, cam.y, cam.z]), rot)  # (V, 3) camera axes: x fwd, y right, z up
        depth = pc[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = cam.width / 2.0 + cam.focal * pc[:, 1] / depth
            v = cam.height / 2.0 - cam.focal * pc[:, 2] / depth
        ok = (depth > 0.05) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
        vox = np.nonzero(ok)[0]
        pix = off + np.floor(v[ok]).astype(np.int64) * cam.width + np.floor(u[ok]).astype(np.int64)
        entries_vox.append(vox)
        entries_pix.append(pix)
        entries_d.append(depth[ok] - margin)
        offsets.append(off)
        off += cam.width * cam.height
    sentinel = off
    vox = np.concatenate(entries_vox) if entries_vox else np.zeros(0, np.int64)
    pix = np.concatenate(entries_pix) if entries_pix else np.zeros(0, np.int64)
    dep = np.concatenate(entries_d) if entries_d else np.zeros(0)
    order = np.argsort(vox, kind="stable")
    vox, pix, dep = vox[order], pix[order], dep[order]
    # rank of each entry among the entries of its voxel -> layer
    first = np.ones(len(vox), bool)
    first[1:] = vox[1:] != vox[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(vox)), 0))
    rank = np.arange(len(vox)) - start
    pix0 = np.full(n_vox, sentinel, np.int32)
    depth0 = np.zeros(n_vox, np.float32)
    pix0[vox[rank == 0]] = pix[rank == 0]
    depth0[vox[rank == 0]] = dep[rank == 0]
    extra = []
    for r in range(1, int(rank.max(initial=0)) + 1):
        sel = rank == r
        extra.append((vox[sel].astype(np.int32), pix[sel].astype(np.int32), dep[sel].astype(np.float32)))
    buffer = np.empty(off + 1, np.float32)
    buffer[-1] = -np.inf  # the sentinel pixel sees nothing
    return _CameraLUT(pix0, depth0, extra, offsets, buffer)


# ---------------------------------------------------------------- box rasterisation
def _fill_boxes(sem: np.ndarray, spec: OccGridSpec, centre_e: np.ndarray, half: np.ndarray, rel_yaw: np.ndarray,
                classes: np.ndarray) -> None:
    """Write `classes` into every voxel whose centre lies in an oriented box (ego frame), plus the voxel column
    holding the box centre so thin things (poles, pedestrians) never vanish.

    centre_e (M, 3) ego-frame box centres; half (M, 3) half sizes (forward, right, up); rel_yaw (M,) box yaw
    minus ego yaw, radians (CARLA sense: towards the right); classes (M,) uint8.

    Boxes only turn about z, so a box is a z span over a 2D footprint. Per grid row i the footprint's cells are
    one interval of j, found from the box's two slabs; the cost grows with the rows a box covers, not its area.
    Where boxes of different z spans overlap, the later span wins.
    """
    m = len(centre_e)
    if m == 0:
        return
    nx, ny, nz = spec.shape
    v = spec.voxel
    mins = spec.mins
    cu = (centre_e[:, 0] - mins[0]) / v - 0.5  # box centre in voxel-index units (voxel i has its centre at i)
    cv = (centre_e[:, 1] - mins[1]) / v - 0.5
    hx, hy = half[:, 0] / v + _EPS, half[:, 1] / v + _EPS
    c, s = np.cos(rel_yaw), np.sin(rel_yaw)
    # in the ego frame (y left) the box forward axis is (c, -s) and its right axis (-s, -c)
    aw = np.abs(c) * hx + np.abs(s) * hy  # half width of the footprint's bounding box along i
    ic, jc = np.floor(cu + 0.5).astype(np.int64), np.floor(cv + 0.5).astype(np.int64)  # the centre's cell
    zlo = (centre_e[:, 2] - half[:, 2] - mins[2]) / v - 0.5
    zhi = (centre_e[:, 2] + half[:, 2] - mins[2]) / v - 0.5
    kc = np.floor((centre_e[:, 2] - mins[2]) / v).astype(np.int64)
    k0 = np.clip(np.minimum(np.ceil(zlo - _EPS).astype(np.int64), kc), 0, None)
    k1 = np.clip(np.maximum(np.floor(zhi + _EPS).astype(np.int64), kc), None, nz - 1)
    i0 = np.clip(np.minimum(np.ceil(cu - aw).astype(np.int64), ic), 0, None)
    i1 = np.clip(np.maximum(np.floor(cu + aw).astype(np.int64), ic), None, nx - 1)
    keep = (i0 <= i1) & (k0 <= k1)
    # boxes in order of z span, so each span's columns are one contiguous run
    order = np.nonzero(keep)[0]
    order = order[np.argsort((k0 * nz + k1)[order], kind="stable")]
    if len(order) == 0:
        return
    n_rows = i1[order] - i0[order] + 1
    box = np.repeat(order, n_rows)  # (P,) one entry per (box, grid row)
    first = np.cumsum(n_rows) - n_rows
    i = i0[box] + (np.arange(len(box)) - np.repeat(first, n_rows))
    du = i - cu[box]
    # each slab |alpha * du + beta * dv| <= h bounds dv to an interval (all or nothing where beta == 0)
    lo = np.full(len(box), -np.inf)
    hi = np.full(len(box), np.inf)
    for alpha, beta, h in ((c[box], -s[box], hx[box]), (s[box], c[box], hy[box])):
        flat = np.abs(beta) < 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            e1 = (-h - alpha * du) / beta
            e2 = (h - alpha * du) / beta
        lo = np.where(flat, np.where(np.abs(alpha * du) <= h, lo, np.inf), np.maximum(lo, np.minimum(e1, e2)))
        hi = np.where(flat, hi, np.minimum(hi, np.maximum(e1, e2)))
    j_lo = np.ceil(cv[box] + lo)
    j_hi = np.floor(cv[box] + hi)
    on_centre = i == ic[box]  # the centre's cell joins its row's interval
    j_lo = np.where(on_centre, np.minimum(j_lo, jc[box]), j_lo)
    j_hi = np.where(on_centre, np.maximum(j_hi, jc[box]), j_hi)
    j_lo = np.clip(j_lo, 0, ny).astype(np.int64)
    j_hi = np.clip(j_hi, -1, ny - 1).astype(np.int64)
    n_cols = np.maximum(j_hi - j_lo + 1, 0)
    # expand the row intervals into columns
    col_box = np.repeat(box, n_cols)
    start = np.cumsum(n_cols) - n_cols
    j = np.repeat(j_lo, n_cols) + (np.arange(len(col_box)) - np.repeat(start, n_cols))
    col = np.repeat(i, n_cols) * ny + j  # (n,) flat column index
    if len(col) == 0:
        return
    sem2d = sem.reshape(nx * ny, nz)
    span = (k0 * nz + k1)[col_box]
    cuts = np.concatenate([[0], np.nonzero(np.diff(span))[0] + 1, [len(span)]])
    for a, b in itertools.pairwise(cuts):  # one slice assignment per distinct (k0, k1)
        sem2d[col[a:b], k0[col_box[a]]:k1[col_box[a]] + 1] = classes[col_box[a:b], None]


# ---------------------------------------------------------------- the builder
class OccupancyBuilder:
    """Builds Occ3D labels (semantics + camera and LiDAR masks) around the ego for one StaticScene.

    Everything constant is precomputed once: voxel-column centres, the LiDAR's ray traversals and, per camera
    rig geometry (cached, a few rigs at most), each voxel's pixel and depth, since the rig is fixed to the ego.
    Static props are culled by distance every frame, so a town may hold any number of them.
    """

    def __init__(self, scene: StaticScene, spec: OccGridSpec = OCC3D_GRID, lidar: LidarSpec = NUSCENES_LIDAR,
                 depth_margin: float | None = None) -> None:
        self.scene = scene
        self.spec = spec
        self.lidar_spec = lidar
        self.depth_margin = 0.5 * math.sqrt(3.0) * spec.voxel if depth_margin is None else float(depth_margin)
        xs, ys = spec.centres(0), spec.centres(1)
        col_x, col_y = np.meshgrid(xs, ys, indexing="ij")  # (nx, ny) ego-frame column centres
        self._col_x, self._col_y = col_x.astype(np.float32), col_y.astype(np.float32)
        half_x = max(abs(spec.x_range[0]), abs(spec.x_range[1]))
        half_y = max(abs(spec.y_range[0]), abs(spec.y_range[1]))
        self._reach = math.hypot(half_x, half_y) + spec.voxel  # farther box centres + radius cannot touch
        props = scene.props
        self._prop_xy = np.asarray(props.centers, np.float64)[:, :2] if len(props) else np.zeros((0, 2))
        self._prop_radius = (np.hypot(props.extents[:, 0], props.extents[:, 1]).astype(np.float64)
                             if len(props) else np.zeros(0))
        self._lidar: LidarModel | None = None

    # -------------------------------------------------------------- public
    def compute(self, ego: Pose, actors: list[ActorState],
                depth_views: list[tuple[CameraSpec, np.ndarray]] | None = None,
                with_lidar_mask: bool = True) -> OccupancyFrame:
        """Occ3D labels around `ego` (world pose) with `actors` (the ego excluded).

        depth_views: (camera, planar depth (H, W) metres along the camera's x axis, row 0 at the top; inf or
        far values for sky) per camera; None gives an all-False mask_camera. with_lidar_mask=False skips the
        LiDAR cast (mask_lidar all False), e.g. when only the semantics are wanted.
        """
        sem = self.semantics(ego, actors)
        mask_cam = (self.camera_mask(depth_views) if depth_views is not None
                    else np.zeros(self.spec.shape, bool))
        mask_lidar = (self.lidar_model.observed_mask(sem) if with_lidar_mask
                      else np.zeros(self.spec.shape, bool))
        return OccupancyFrame(semantics=sem, mask_camera=mask_cam, mask_lidar=mask_lidar)

    @property
    def lidar_model(self) -> LidarModel:
        if self._lidar is None:
            self._lidar = lidar_model(self.lidar_spec, self.spec)
        return self._lidar

    def semantics(self, ego: Pose, actors: list[ActorState]) -> np.ndarray:
        """The (nx, ny, nz) uint8 class grid: ground layer, static props, then actors (later ones win)."""
        for name in ("x", "y", "z", "yaw"):
            if not math.isfinite(getattr(ego, name)):
                raise OccupancyError(f"ego pose {name}={getattr(ego, name)} is not finite")
        sem = np.full(self.spec.shape, FREE, np.uint8)
        self._fill_ground(sem, ego)
        self._fill_props(sem, ego)
        self._fill_actors(sem, ego, actors)
        return sem

    def camera_mask(self, depth_views: list[tuple[CameraSpec, np.ndarray]]) -> np.ndarray:
        """(nx, ny, nz) bool: voxel centres inside some image no farther than its depth + margin."""
        if not depth_views:
            return np.zeros(self.spec.shape, bool)
        cams = tuple(cam for cam, _ in depth_views)
        key = tuple((c.x, c.y, c.z, c.roll, c.pitch, c.yaw, c.width, c.height, c.fov) for c in cams)  # geometry
        key = (key, self.spec.x_range, self.spec.y_range, self.spec.z_range, self.spec.voxel, self.depth_margin)
        lut = _LUTS.get(key)
        if lut is None:
            if len(_LUTS) >= _MAX_RIGS:
                _LUTS.pop(next(iter(_LUTS)))
            lut = _LUTS[key] = _build_camera_lut(cams, self.spec, self.depth_margin)
        buf = lut.buffer
        for (cam, depth), off in zip(depth_views, lut.offsets):
            d = np.asarray(depth)
            if d.shape != (cam.height, cam.width):
                raise OccupancyError(f"depth buffer for camera '{cam.id}' has shape {d.shape}, "
                                     f"expected ({cam.height}, {cam.width})")
            buf[off:off + d.size] = d.reshape(-1)
        seen = np.take(buf, lut.pix0) >= lut.depth0  # (V,) NaN depth never sees
        for vox, pix, dep in lut.extra:  # voxels in the view of a second (third) camera
            np.put(seen, np.compress(np.take(buf, pix) >= dep, vox), True)
        return seen.reshape(self.spec.shape)

    # -------------------------------------------------------------- parts
    def _fill_ground(self, sem: np.ndarray, ego: Pose) -> None:
        """Label the layer holding the ground surface under each column (what GroundRaster.lookup returns)."""
        g: GroundRaster = self.scene.ground
        c, s = math.cos(math.radians(ego.yaw)), math.sin(math.radians(ego.yaw))
        a, b = self._col_x / g.resolution, self._col_y / g.resolution  # (nx, ny) float32, raster cells
        # world position of each column centre (ego_to_world), in raster cells
        fc = a * np.float32(c) + b * np.float32(s) + np.float32((ego.x - g.x_min) / g.resolution)
        fr = a * np.float32(s) - b * np.float32(c) + np.float32((ego.y - g.y_min) / g.resolution)
        col = np.floor(fc, out=fc).astype(np.int64)
        row = np.floor(fr, out=fr).astype(np.int64)
        h, w = g.classes.shape
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        lin = np.where(inside, row * w + col, 0)
        cls = g.classes.reshape(-1)[lin]
        cls[~inside] = FREE
        nz = self.spec.shape[2]
        if g.height is None:  # flat ground at world z 0: one layer
            k = math.floor((0.0 - ego.z - self.spec.z_range[0]) / self.spec.voxel)
            if 0 <= k < nz:
                np.copyto(sem[:, :, k], cls, where=cls != FREE)
            return
        z = g.height.reshape(-1)[lin].astype(np.float64)
        k = np.floor((z - ego.z - self.spec.z_range[0]) / self.spec.voxel).astype(np.int64)
        ok = (cls != FREE) & (k >= 0) & (k < nz)
        ii, jj = np.nonzero(ok)
        sem[ii, jj, k[ok]] = cls[ok]

    def _near_props(self, ego: Pose) -> np.ndarray:
        if len(self._prop_xy) == 0:
            return np.zeros(0, np.int64)
        d = np.hypot(self._prop_xy[:, 0] - ego.x, self._prop_xy[:, 1] - ego.y)
        return np.nonzero(d - self._prop_radius <= self._reach)[0]

    def _fill_props(self, sem: np.ndarray, ego: Pose) -> None:
        idx = self._near_props(ego)
        if len(idx) == 0:
            return
        props: BoxSet = self.scene.props
        centre_e = world_to_ego(props.centers[idx], ego)
        rel = np.radians(props.yaws[idx].astype(np.float64) - ego.yaw)
        _fill_boxes(sem, self.spec, centre_e, props.extents[idx].astype(np.float64), rel,
                    props.classes[idx].astype(np.uint8))

    def _fill_actors(self, sem: np.ndarray, ego: Pose, actors: list[ActorState]) -> None:
        if not actors:
            return
        arr = np.array([(a.x, a.y, a.z + a.extent[2], a.extent[0], a.extent[1], a.extent[2], a.yaw)
                        for a in actors], np.float64)  # (M, 7)
        d = np.hypot(arr[:, 0] - ego.x, arr[:, 1] - ego.y) - np.hypot(arr[:, 3], arr[:, 4])
        near = d <= self._reach
        if not near.any():
            return
        arr = arr[near]
        classes = np.array([a.occ_class for a, n in zip(actors, near) if n], np.uint8)
        _fill_boxes(sem, self.spec, world_to_ego(arr[:, :3], ego), arr[:, 3:6], np.radians(arr[:, 6] - ego.yaw),
                    classes)


# ---------------------------------------------------------------- timing (python -m sim.embedded.occupancy)
def synthetic_town(seed: int = 0, size: float = 400.0, n_props: int = 3000) -> StaticScene:
    """A flat random town for timing: a ground raster of road/sidewalk/terrain and props of every size."""
    from sim.types import Mesh
    rng = np.random.default_rng(seed)
    res = 0.5
    n = int(size / res)
    cls = np.full((n, n), OCC["terrain"], np.uint8)
    for r0 in range(0, n, 120):  # a road grid with sidewalks
        cls[r0:r0 + 30, :] = OCC["sidewalk"]
        cls[r0 + 4:r0 + 26, :] = OCC["driveable_surface"]
        cls[:, r0:r0 + 30] = OCC["sidewalk"]
        cls[:, r0 + 4:r0 + 26] = OCC["driveable_surface"]
    ground = GroundRaster(cls, -size / 2, -size / 2, res)
    kind = rng.choice(3, n_props, p=[0.15, 0.5, 0.35])  # building, tree, pole
    lo = np.array([[4, 4, 3], [1, 1, 2], [0.1, 0.1, 2.5]])[kind]
    hi = np.array([[8, 8, 10], [2.5, 2.5, 4], [0.1, 0.1, 2.5]])[kind]
    ext = rng.uniform(lo, hi)
    ctr = np.column_stack([rng.uniform(-size / 2, size / 2, (n_props, 2)), ext[:, 2]])
    props = BoxSet(ctr.astype(np.float32), ext.astype(np.float32), rng.uniform(0, 360, n_props).astype(np.float32),
                   np.array([OCC["manmade"], OCC["vegetation"], OCC["manmade"]], np.uint8)[kind])
    z3 = np.zeros((0, 3), np.float32)
    return StaticScene("synthetic", ground, props, Mesh(z3, z3, z3, np.zeros(0, np.uint8)), z3,
                       (-size / 2, -size / 2, size / 2, size / 2))


def synthetic_actors(ego: Pose, n: int = 80, seed: int = 0) -> list[ActorState]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        vclass = ("car", "truck", "pedestrian", "bicycle")[i % 4]
        r, a = rng.uniform(5, 40), rng.uniform(0, 2 * math.pi)
        out.append(ActorState(i, "vehicle.x", "vehicle", vclass, ego.x + r * math.cos(a), ego.y + r * math.sin(a),
                              ego.z, float(rng.uniform(0, 360)), (2.4, 1.0, 0.8) if vclass != "pedestrian"
                              else (0.25, 0.25, 0.9)))
    return out


def benchmark(iterations: int = 40, width: int = 400, height: int = 225) -> dict[str, float]:
    """Median wall-clock milliseconds of each phase on a synthetic town: ~230 props near the ego, 80 actors,
    six depth buffers. Also the median CPU ms of the whole (wall time on shared cores includes waiting)."""
    scene = synthetic_town()
    builder = OccupancyBuilder(scene)
    rig = nuscenes_rig(width, height, kind="depth")
    rng = np.random.default_rng(1)
    views = [(cam, rng.uniform(3.0, 60.0, (height, width)).astype(np.float32)) for cam in rig]
    ego = Pose(5.0, 7.0, 0.0, 30.0)
    actors = synthetic_actors(ego)
    t0 = time.perf_counter()
    builder.compute(ego, actors, views)  # builds the camera lookup and the LiDAR traversals
    setup = time.perf_counter() - t0
    phases = ("semantics", "mask_camera", "mask_lidar", "total", "total_cpu", "compute", "lidar_points")
    times: dict[str, list[float]] = {k: [] for k in phases}
    for it in range(iterations):
        pose = Pose(ego.x + 0.3 * it, ego.y, ego.z, ego.yaw + it)
        c0, t0 = time.process_time(), time.perf_counter()
        sem = builder.semantics(pose, actors)
        t1 = time.perf_counter()
        builder.camera_mask(views)
        t2 = time.perf_counter()
        builder.lidar_model.observed_mask(sem)
        t3, c3 = time.perf_counter(), time.process_time()
        builder.compute(pose, actors, views)
        t4 = time.perf_counter()
        builder.lidar_model.points(sem)
        t5 = time.perf_counter()
        for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t3 - t0, c3 - c0, t4 - t3, t5 - t4)):
            times[k].append(dt)
    out = {f"ms_{k}_median": round(1000 * float(np.median(v)), 2) for k, v in times.items()}
    out["s_setup"] = round(setup, 2)
    out["n_props_near"] = float(len(builder._near_props(ego)))
    return out


if __name__ == "__main__":
    import json
    print(json.dumps(benchmark()))
