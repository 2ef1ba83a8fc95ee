"""The static scene of a town: ground classes, drawable mesh and solid props, from a carla.Map.

Everything is in CARLA's world frame (x east, y south, z up, metres). Lanes are sampled from the map
with `get_waypoint_xodr` (every lane type, not just driving), so the ground raster, the road mesh and
the markings follow the OpenDRIVE geometry exactly. Buildings, trees and street lamps are procedural
and seeded; the same (town, seed) gives bit-identical arrays. Props (BoxSet) are the collision and
occupancy proxies of exactly the solid things the mesh draws.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass

import carla
import cv2
import numpy as np

from sim.embedded.maps import Town
from sim.types import OCC, BoxSet, GroundRaster, Mesh, StaticScene

DRIVE, FLAT, SIDEWALK, TERRAIN = OCC["driveable_surface"], OCC["other_flat"], OCC["sidewalk"], OCC["terrain"]
MANMADE, VEG, CAR = OCC["manmade"], OCC["vegetation"], OCC["car"]

# albedo colours, 0..1
ASPHALT = (0.20, 0.20, 0.21)
SHOULDER = (0.29, 0.29, 0.29)
PAVEMENT = (0.58, 0.56, 0.53)
CURB = (0.70, 0.70, 0.68)
GRASS = (0.24, 0.40, 0.17)
WHITE = (0.92, 0.92, 0.90)
YELLOW = (0.90, 0.72, 0.10)
WINDOW = (0.12, 0.14, 0.18)
TRUNK = (0.33, 0.24, 0.16)
METAL = (0.35, 0.36, 0.38)
LAMP = (0.95, 0.93, 0.80)
FACADES = ((0.72, 0.66, 0.58), (0.62, 0.52, 0.44), (0.80, 0.78, 0.74), (0.55, 0.57, 0.60),
           (0.68, 0.45, 0.35), (0.85, 0.80, 0.65), (0.45, 0.47, 0.50))


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of the static scene; defaults are tuned for ~300 m towns at <= 150k triangles."""

    resolution: float = 0.2  # ground raster, metres per cell
    margin: float = 30.0  # raster and terrain extend this far beyond the outermost lane
    fine_step: float = 1.0  # lane sampling before simplification, metres
    max_step: float = 6.0  # longest straight piece kept in lane strips
    max_turn_deg: float = 4.0  # keep a sample once the heading has turned this much
    sidewalk_height: float = 0.15
    marking_width: float = 0.15
    dash_length: float = 3.0
    dash_gap: float = 5.0
    stop_line_width: float = 0.4
    terrain_tile: float = 25.0
    lamp_spacing: float = 30.0
    tree_spacing: float = 14.0
    building_setback: tuple[float, float] = (2.5, 6.0)
    building_width: tuple[float, float] = (9.0, 22.0)
    building_depth: tuple[float, float] = (8.0, 16.0)
    building_height: tuple[float, float] = (5.0, 24.0)
    floor_height: float = 3.2
    park_tree_density: float = 1.0 / 500.0  # trees per m^2 of open terrain
    parked_car_spacing: float = 7.0  # parking-lane slots, metres apart
    parked_car_fill: float = 0.55  # share of parking slots that hold a car


# ----------------------------------------------------------------------------- lane sampling
@dataclass
class LaneStrip:
    """One lane of one lane section, sampled along its centre line (CARLA frame)."""

    road_id: int
    lane_id: int
    lane_type: str  # OpenDRIVE type: driving, sidewalk, shoulder, parking, ...
    junction: int  # -1 outside junctions
    center: np.ndarray  # (n, 3) float64
    yaw: np.ndarray  # (n,) radians, the waypoints' heading (travel direction for driving lanes)
    width: np.ndarray  # (n,)
    left_mark: list[tuple[str, str]]  # per sample (type, colour) names of carla.LaneMarking
    right_mark: list[tuple[str, str]]

    @property
    def cls(self) -> int:
        """Occ3D ground class: driving lanes are driveable, sidewalks sidewalk, the rest other_flat."""
        return DRIVE if self.lane_type == "driving" else SIDEWALK if self.lane_type == "sidewalk" else FLAT

    @property
    def right(self) -> np.ndarray:  # (n, 3) unit vectors to the right of the heading
        return np.stack([-np.sin(self.yaw), np.cos(self.yaw), np.zeros_like(self.yaw)], 1)

    @property
    def left_edge(self) -> np.ndarray:  # (n, 3)
        return self.center - self.right * (self.width[:, None] / 2)

    @property
    def right_edge(self) -> np.ndarray:  # (n, 3)
        return self.center + self.right * (self.width[:, None] / 2)


def _lane_table(xodr_text: str) -> list[tuple[int, int, str, float, float, int]]:
    """(road_id, junction, lane_type, s0, s1, lane_id) for every lane of every lane section."""
    root = ET.fromstring(xodr_text)
    out = []
    for road in root.findall("road"):
        rid, length = int(road.get("id")), float(road.get("length"))
        junction = int(road.get("junction", "-1"))
        sections = road.findall("lanes/laneSection")
        starts = [float(ls.get("s", "0")) for ls in sections] + [length]
        for i, ls in enumerate(sections):
            for lane in ls.iter("lane"):
                lid, typ = int(lane.get("id")), lane.get("type", "none")
                if lid != 0 and typ != "none" and starts[i + 1] - starts[i] > 1e-3:
                    out.append((rid, junction, typ, starts[i], starts[i + 1], lid))
    return out


def _simplify(pos: np.ndarray, yaw: np.ndarray, width: np.ndarray, cfg: SceneConfig) -> np.ndarray:
    """Indices of samples to keep: enough to follow curves and width changes within tolerance."""
    keep = [0]
    acc = 0.0
    for i in range(1, len(pos)):
        acc += float(np.linalg.norm(pos[i, :2] - pos[i - 1, :2]))
        j = keep[-1]
        turn = abs((yaw[i] - yaw[j] + math.pi) % (2 * math.pi) - math.pi)
        if (i == len(pos) - 1 or acc >= cfg.max_step - 1e-6 or turn > math.radians(cfg.max_turn_deg)
                or abs(width[i] - width[j]) > 0.1 or abs(pos[i, 2] - pos[j, 2]) > 0.2):
            keep.append(i)
            acc = 0.0
    return np.asarray(keep)


def sample_lanes(town: Town, cfg: SceneConfig | None = None) -> list[LaneStrip]:
    """Every lane of the town as a strip of samples (lane types other than 'none')."""
    cfg = cfg or SceneConfig()
    cmap = town.map
    strips = []
    for rid, junction, typ, s0, s1, lid in _lane_table(town.xodr_text):
        n = max(2, math.ceil((s1 - s0) / cfg.fine_step) + 1)
        ss = np.linspace(s0, s1 - 1e-3, n)
        wps = [cmap.get_waypoint_xodr(rid, lid, float(s)) for s in ss]
        wps = [w for w in wps if w is not None]
        if len(wps) < 2:
            continue
        pos = np.array([(w.transform.location.x, w.transform.location.y, w.transform.location.z) for w in wps])
        yaw = np.radians([w.transform.rotation.yaw for w in wps])
        width = np.array([w.lane_width for w in wps])
        idx = _simplify(pos, yaw, width, cfg)
        marks_l = [(wps[i].left_lane_marking.type.name, wps[i].left_lane_marking.color.name) for i in idx]
        marks_r = [(wps[i].right_lane_marking.type.name, wps[i].right_lane_marking.color.name) for i in idx]
        strips.append(LaneStrip(rid, lid, typ, junction, pos[idx], np.unwrap(yaw[idx]), width[idx],
                                marks_l, marks_r))
    return strips


# ----------------------------------------------------------------------------- mesh building
class _MeshBuilder:
    """Collects flat-shaded triangles; fixes every triangle's winding to agree with its normal."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, tris: np.ndarray, normals: np.ndarray, color, sem: int) -> None:
        """tris (T, 3, 3); normals (T, 3) or (3,); color (3,) or (T, 3)."""
        tris = np.asarray(tris, np.float64).reshape(-1, 3, 3)
        if not len(tris):
            return
        nrm = np.broadcast_to(np.asarray(normals, np.float64), (len(tris), 3)).copy()
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
        cross = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
        flip = np.einsum("ij,ij->i", cross, nrm) < 0
        tris[flip] = tris[flip][:, [0, 2, 1]]
        col = np.broadcast_to(np.asarray(color, np.float64), (len(tris), 3))
        self.parts.append((tris, nrm, col, np.full(len(tris), sem, np.uint8)))

    def quads(self, a, b, c, d, normals, color, sem: int) -> None:
        """Quads a-b-c-d (each (T, 3), in order around the quad) as two triangles each."""
        a, b, c, d = (np.asarray(v, np.float64).reshape(-1, 3) for v in (a, b, c, d))
        tris = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
        nrm = np.asarray(normals, np.float64)
        if nrm.ndim == 2:
            nrm = np.concatenate([nrm, nrm])
        col = np.asarray(color, np.float64)
        if col.ndim == 2:
            col = np.concatenate([col, col])
        self.add(tris, nrm, col, sem)

    def ribbon(self, left: np.ndarray, right: np.ndarray, color, sem: int) -> None:
        """A horizontal-ish strip between two (n, 3) polylines, facing up."""
        if len(left) < 2:
            return
        a, b, c, d = left[:-1], left[1:], right[1:], right[:-1]
        up = np.cross(d - a, b - a)  # right x forward points up in this left-handed frame
        up[np.linalg.norm(up, axis=1) < 1e-9] = (0.0, 0.0, 1.0)
        up[up[:, 2] < 0] *= -1
        self.quads(a, b, c, d, up, color, sem)

    def wall(self, bottom: np.ndarray, top: np.ndarray, outward: np.ndarray, color, sem: int) -> None:
        """A vertical strip between polylines `bottom` and `top` (n, 3), facing `outward` (n-1, 3)."""
        if len(bottom) < 2:
            return
        self.quads(bottom[:-1], bottom[1:], top[1:], top[:-1], outward, color, sem)

    def box(self, center, extent, yaw_deg: float, color, sem: int, bottom: bool = False) -> None:
        """An oriented box (half sizes `extent` along forward, right, up)."""
        c, e = np.asarray(center, np.float64), np.asarray(extent, np.float64)
        y = math.radians(yaw_deg)
        f = np.array([math.cos(y), math.sin(y), 0.0])
        r = np.array([-math.sin(y), math.cos(y), 0.0])
        u = np.array([0.0, 0.0, 1.0])
        axes = (f * e[0], r * e[1], u * e[2])
        faces = [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1)] + ([(2, -1)] if bottom else [])
        for ax, sign in faces:
            n = axes[ax] / np.linalg.norm(axes[ax]) * sign
            o1, o2 = [axes[k] for k in range(3) if k != ax]
            base = c + axes[ax] * sign
            self.quads(base - o1 - o2, base + o1 - o2, base + o1 + o2, base - o1 + o2, n, color, sem)

    def icosphere(self, center, radius: float, color, sem: int, squash: float = 1.0) -> None:
        """A 20-triangle low-poly sphere (flat shaded), optionally squashed vertically."""
        t = (1 + 5 ** 0.5) / 2
        v = np.array([(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t),
                      (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)], np.float64)
        v = v / np.linalg.norm(v[0]) * radius
        v[:, 2] *= squash
        tri = _ICO_FACES
        tris = v[tri] + np.asarray(center, np.float64)
        nrm = tris.mean(1) - np.asarray(center, np.float64)
        self.add(tris, nrm, color, sem)

    def build(self) -> Mesh:
        if not self.parts:
            return Mesh.concatenate([])
        tris = np.concatenate([p[0] for p in self.parts])  # (T, 3, 3)
        nrm = np.concatenate([p[1] for p in self.parts])  # (T, 3)
        col = np.concatenate([p[2] for p in self.parts])  # (T, 3)
        sem = np.concatenate([p[3] for p in self.parts])  # (T,)
        return Mesh(tris.reshape(-1, 3).astype(np.float32), np.repeat(nrm, 3, 0).astype(np.float32),
                    np.repeat(col, 3, 0).astype(np.float32), np.repeat(sem, 3).astype(np.uint8))


_ICO_FACES = np.array([(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
                       (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
                       (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)])


def _polyline_piece(pts: np.ndarray, cum: np.ndarray, s0: float, s1: float) -> np.ndarray:
    """The part of polyline `pts` (n, 3) with arc length `cum` (n,) between s0 and s1."""
    inner = pts[(cum > s0) & (cum < s1)]
    a = np.array([np.interp(s0, cum, pts[:, k]) for k in range(3)])
    b = np.array([np.interp(s1, cum, pts[:, k]) for k in range(3)])
    return np.vstack([a, inner, b])


def _offset_ribbon(line: np.ndarray, half_width: float, lift: float) -> tuple[np.ndarray, np.ndarray]:
    """Left and right borders of a ribbon of `half_width` around polyline `line` (n, 3), lifted by `lift`."""
    d = np.gradient(line[:, :2], axis=0) if len(line) > 2 else np.repeat(line[1:, :2] - line[:1, :2], 2, 0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    r = np.stack([-d[:, 1], d[:, 0], np.zeros(len(d))], 1)
    up = np.array([0.0, 0.0, lift])
    return line - r * half_width + up, line + r * half_width + up


# ----------------------------------------------------------------------------- the scene
def _rng(town: Town, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(town.name.encode())])


class _Raster:
    """World <-> raster cell helpers for cv2 drawing (4 bits of sub-pixel precision)."""

    SHIFT = 4

    def __init__(self, x_min: float, y_min: float, res: float, h: int, w: int) -> None:
        self.x_min, self.y_min, self.res, self.h, self.w = x_min, y_min, res, h, w

    def px(self, xy: np.ndarray) -> np.ndarray:
        p = (np.asarray(xy)[..., :2] - (self.x_min, self.y_min)) / self.res - 0.5
        return np.round(p * (1 << self.SHIFT)).astype(np.int32)

    def cell(self, xy) -> tuple[int, int]:
        """(row, col) of a world point, clipped into the raster."""
        col = min(max(int((xy[0] - self.x_min) / self.res), 0), self.w - 1)
        row = min(max(int((xy[1] - self.y_min) / self.res), 0), self.h - 1)
        return row, col

    def fill(self, img: np.ndarray, poly: np.ndarray, value) -> None:
        cv2.fillPoly(img, [self.px(poly).reshape(-1, 1, 2)], value, lineType=cv2.LINE_8, shift=self.SHIFT)


def _strip_quads(s: LaneStrip) -> list[np.ndarray]:
    le, re = s.left_edge, s.right_edge
    return [np.array([le[i], le[i + 1], re[i + 1], re[i]]) for i in range(len(le) - 1)]


def build_static_scene(town: Town, seed: int = 0, cfg: SceneConfig | None = None) -> StaticScene:
    """Ground raster, drawable mesh, solid props and street lights of a town (seeded, deterministic)."""
    cfg = cfg or SceneConfig()
    rng = _rng(town, seed)
    strips = sample_lanes(town, cfg)
    if not strips:
        raise ValueError(f"town {town.name!r} has no lanes to build a scene from")

    # --- bounds and raster grid
    pts = np.concatenate([np.concatenate([s.left_edge, s.right_edge]) for s in strips])
    x_min = math.floor((pts[:, 0].min() - cfg.margin) / cfg.resolution) * cfg.resolution
    y_min = math.floor((pts[:, 1].min() - cfg.margin) / cfg.resolution) * cfg.resolution
    x_max = math.ceil((pts[:, 0].max() + cfg.margin) / cfg.resolution) * cfg.resolution
    y_max = math.ceil((pts[:, 1].max() + cfg.margin) / cfg.resolution) * cfg.resolution
    w = round((x_max - x_min) / cfg.resolution)
    h = round((y_max - y_min) / cfg.resolution)
    ras = _Raster(x_min, y_min, cfg.resolution, h, w)
    classes = np.full((h, w), TERRAIN, np.uint8)  # (H, W)

    junction_hulls: dict[int, np.ndarray] = {}
    for s_ in strips:
        if s_.junction >= 0 and s_.cls == DRIVE:
            junction_hulls.setdefault(s_.junction, []).append(np.concatenate([s_.left_edge, s_.right_edge]))
    for j, parts in list(junction_hulls.items()):
        allp = np.concatenate(parts)
        hull = cv2.convexHull(allp[:, :2].astype(np.float32)).reshape(-1, 2).astype(np.float64)
        junction_hulls[j] = np.column_stack([hull, np.full(len(hull), allp[:, 2].mean())])
        ras.fill(classes, hull, int(DRIVE))
    for cls in (FLAT, SIDEWALK, DRIVE):
        for s_ in strips:
            if s_.cls == cls:
                for q in _strip_quads(s_):
                    ras.fill(classes, q, int(cls))

    height = _height_raster(strips, ras) if float(np.abs(pts[:, 2]).max()) > 0.05 else None
    ground = GroundRaster(classes, float(x_min), float(y_min), float(cfg.resolution), height)

    mb = _MeshBuilder()
    _road_mesh(mb, strips, junction_hulls, cfg)
    _marking_mesh(mb, strips, town.map, cfg)
    _terrain_mesh(mb, ground, (x_min, y_min, x_max, y_max), cfg, rng)
    props: list[tuple[tuple[float, float, float], tuple[float, float, float], float, int]] = []
    lights: list[tuple[float, float, float]] = []
    masks = _masks(classes, cfg)
    _place_lamps(mb, strips, props, lights, masks, ras, cfg, rng)
    _place_buildings(mb, strips, props, masks, ras, cfg, rng)
    _place_trees(mb, strips, props, masks, ras, cfg, rng, ground)
    _place_parked_cars(mb, strips, props, masks, ras, cfg, rng)

    if props:
        boxes = BoxSet(np.array([p[0] for p in props], np.float32), np.array([p[1] for p in props], np.float32),
                       np.array([p[2] for p in props], np.float32), np.array([p[3] for p in props], np.uint8))
    else:
        boxes = BoxSet.empty()
    return StaticScene(town=town.name, ground=ground, props=boxes, mesh=mb.build(),
                       street_lights=np.array(lights, np.float32).reshape(-1, 3),
                       bounds=(float(x_min), float(y_min), float(x_max), float(y_max)))


def _height_raster(strips: list[LaneStrip], ras: _Raster) -> np.ndarray:
    """Ground z per cell: lane heights where lanes are, the nearest lane's height elsewhere."""
    from scipy import ndimage

    z = np.zeros((ras.h, ras.w), np.float32)
    known = np.zeros((ras.h, ras.w), np.uint8)
    for s_ in strips:
        for q in _strip_quads(s_):
            ras.fill(z, q, float(q[:, 2].mean()))
            ras.fill(known, q, 1)
    if known.any():
        idx = ndimage.distance_transform_edt(known == 0, return_distances=False, return_indices=True)
        z = z[idx[0], idx[1]]
    return z.astype(np.float32)


def _road_mesh(mb: _MeshBuilder, strips, hulls, cfg: SceneConfig) -> None:
    for hull in hulls.values():  # junction floors: one asphalt fan each
        c = hull.mean(0)
        n = len(hull)
        tris = np.stack([np.repeat(c[None], n, 0), hull, np.roll(hull, -1, 0)], 1)
        mb.add(tris, (0.0, 0.0, 1.0), ASPHALT, DRIVE)
    up = np.array([0.0, 0.0, 1.0])
    for s_ in strips:
        le, re = s_.left_edge, s_.right_edge
        if s_.cls == DRIVE:
            if s_.junction < 0:
                mb.ribbon(le, re, ASPHALT, DRIVE)
        elif s_.cls == FLAT:
            mb.ribbon(le + up * 0.004, re + up * 0.004, SHOULDER, FLAT)
        else:  # sidewalk: raised top plus curb faces on both sides
            top = up * cfg.sidewalk_height
            mb.ribbon(le + top, re + top, PAVEMENT, SIDEWALK)
            r = s_.right[:-1]
            mb.wall(le, le + top, -r, CURB, SIDEWALK)
            mb.wall(re, re + top, r, CURB, SIDEWALK)


_MARK_COLORS = {"Yellow": YELLOW, "Standard": WHITE, "White": WHITE, "Other": WHITE, "Blue": WHITE,
                "Green": WHITE, "Red": WHITE}


def _marking_lines(edge: np.ndarray, mtype: str, cfg: SceneConfig) -> list[tuple[np.ndarray, float]]:
    """Polyline pieces (and lateral offsets) to paint for one lane border of marking type `mtype`."""
    seg = np.linalg.norm(np.diff(edge[:, :2], axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = float(cum[-1])
    if total < 0.5:
        return []
    solid = [(edge, 0.0)]
    period = cfg.dash_length + cfg.dash_gap
    dashes = [(_polyline_piece(edge, cum, s0, min(s0 + cfg.dash_length, total)), 0.0)
              for s0 in np.arange(cfg.dash_gap / 2, total - 0.3, period)]
    gap = cfg.marking_width * 1.2
    if mtype == "Solid":
        return solid
    if mtype == "Broken":
        return dashes
    if mtype == "SolidSolid":
        return [(edge, -gap), (edge, gap)]
    if mtype == "SolidBroken":
        return [(edge, -gap)] + [(d, gap) for d, _ in dashes]
    if mtype == "BrokenSolid":
        return [(d, -gap) for d, _ in dashes] + [(edge, gap)]
    if mtype == "BrokenBroken":
        return [(d, -gap) for d, _ in dashes] + [(d, gap) for d, _ in dashes]
    return []


def _shift(line: np.ndarray, off: float) -> np.ndarray:
    if off == 0.0:
        return line
    le, re = _offset_ribbon(line, abs(off), 0.0)
    return re if off > 0 else le


def _marking_mesh(mb: _MeshBuilder, strips, cmap: carla.Map, cfg: SceneConfig) -> None:
    lift = 0.02
    driving = [s_ for s_ in strips if s_.cls == DRIVE and s_.junction < 0]
    has_neg_road = {s_.road_id for s_ in driving if s_.lane_id == -1}
    hw = cfg.marking_width / 2
    for s_ in driving:
        borders = [(s_.right_edge, s_.right_mark[0])]
        if abs(s_.lane_id) == 1 and (s_.lane_id < 0 or s_.road_id not in has_neg_road):
            borders.append((s_.left_edge, s_.left_mark[0]))
        for edge, (mtype, mcolor) in borders:
            color = _MARK_COLORS.get(mcolor, WHITE)
            for line, off in _marking_lines(edge, mtype, cfg):
                line = _shift(line, off)
                le, re = _offset_ribbon(line, hw, lift)
                mb.ribbon(le, re, color, DRIVE)
    # stop lines: across each lane where it enters a junction, except on through lanes of T-junctions
    seen = set()
    for a, b in cmap.get_topology():
        if a.is_junction or not b.is_junction:
            continue
        if _is_through(a, b, cmap):
            continue
        loc = b.transform.location
        key = (a.road_id, a.lane_id, round(loc.x, 1), round(loc.y, 1))
        if key in seen:
            continue
        seen.add(key)
        yaw = math.radians(b.transform.rotation.yaw)
        f = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        r = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        c = np.array([loc.x, loc.y, loc.z + lift]) - f * (cfg.stop_line_width / 2 + 0.3)
        half = b.lane_width / 2 - 0.1
        le = np.array([c - r * half - f * cfg.stop_line_width / 2, c - r * half + f * cfg.stop_line_width / 2])
        re = np.array([c + r * half - f * cfg.stop_line_width / 2, c + r * half + f * cfg.stop_line_width / 2])
        mb.ribbon(le, re, WHITE, DRIVE)


def _is_through(a: carla.Waypoint, b: carla.Waypoint, cmap: carla.Map) -> bool:
    """True when lane `a` enters a 3-way junction on its through road (no stop line there)."""
    junction = b.get_junction()
    if junction is None:
        return False
    pairs = junction.get_waypoints(carla.LaneType.Driving)
    entries = {(round(p[0].transform.location.x), round(p[0].transform.location.y)) for p in pairs}
    approach_dirs = set()
    for p, _ in pairs:
        approach_dirs.add(round(((p.transform.rotation.yaw + 360) % 360) / 45) % 8)
    if len(approach_dirs) > 3 or len(entries) < 2:
        return False
    # a through movement: some connector from this entry leaves with (almost) the same heading
    for p, q in pairs:
        if p.transform.location.distance(b.transform.location) < 0.5:
            turn = (q.transform.rotation.yaw - p.transform.rotation.yaw + 180) % 360 - 180
            if abs(turn) < 20:
                return True
    return False


def _terrain_mesh(mb: _MeshBuilder, ground: GroundRaster, bounds, cfg: SceneConfig, rng) -> None:
    x_min, y_min, x_max, y_max = bounds
    xs = np.arange(x_min, x_max + 1e-6, cfg.terrain_tile)
    ys = np.arange(y_min, y_max + 1e-6, cfg.terrain_tile)
    if xs[-1] < x_max:
        xs = np.append(xs, x_max)
    if ys[-1] < y_max:
        ys = np.append(ys, y_max)

    def z_at(x, y):
        if ground.height is None:
            return -0.05
        col = min(max(int((x - ground.x_min) / ground.resolution), 0), ground.height.shape[1] - 1)
        row = min(max(int((y - ground.y_min) / ground.resolution), 0), ground.height.shape[0] - 1)
        return float(ground.height[row, col]) - 0.05

    a, b, c, d, cols = [], [], [], [], []
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            x0, x1, y0, y1 = xs[i], xs[i + 1], ys[j], ys[j + 1]
            a.append((x0, y0, z_at(x0, y0)))
            b.append((x1, y0, z_at(x1, y0)))
            c.append((x1, y1, z_at(x1, y1)))
            d.append((x0, y1, z_at(x0, y1)))
            cols.append(np.clip(np.asarray(GRASS) * (0.9 + 0.2 * rng.random()), 0, 1))
    mb.quads(np.array(a), np.array(b), np.array(c), np.array(d), (0.0, 0.0, 1.0), np.array(cols), TERRAIN)


@dataclass
class _Masks:
    """Placement masks on the raster grid (uint8 0/1, (H, W))."""

    ground: np.ndarray  # any non-terrain ground grown by 1 m: buildings and trunks stay off it
    road: np.ndarray  # driveable and other_flat ground grown by 0.5 m: no canopy above it
    things: np.ndarray  # footprints already claimed by props
    drive: np.ndarray  # driveable and other_flat ground, not grown: poles stay off it


def _masks(classes: np.ndarray, cfg: SceneConfig) -> _Masks:
    def grow(m: np.ndarray, metres: float) -> np.ndarray:
        k = max(1, round(metres / cfg.resolution))
        return cv2.dilate(m.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8))

    drive = ((classes == DRIVE) | (classes == FLAT)).astype(np.uint8)
    return _Masks(grow(classes != TERRAIN, 1.0), grow(drive, 0.5), np.zeros(classes.shape, np.uint8), drive)


def _footprint(center, half_fwd: float, half_right: float, yaw: float) -> np.ndarray:
    f = np.array([math.cos(yaw), math.sin(yaw)])
    r = np.array([-math.sin(yaw), math.cos(yaw)])
    c = np.asarray(center[:2], np.float64)
    return np.array([c - f * half_fwd - r * half_right, c + f * half_fwd - r * half_right,
                     c + f * half_fwd + r * half_right, c - f * half_fwd + r * half_right])


def _try_claim(check: np.ndarray, things: np.ndarray, ras: _Raster, poly: np.ndarray, pad: float = 0.0) -> bool:
    """Claim a footprint polygon (grown by `pad`) if it is inside the raster and free in `check` and
    `things`; the claimed cells are then marked in `things`."""
    p = ras.px(poly) >> _Raster.SHIFT
    x0, y0 = p.min(0) - int(pad / ras.res) - 1
    x1, y1 = p.max(0) + int(pad / ras.res) + 2
    if x0 < 0 or y0 < 0 or x1 > ras.w or y1 > ras.h:
        return False
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    local = _Raster(ras.x_min + x0 * ras.res, ras.y_min + y0 * ras.res, ras.res, y1 - y0, x1 - x0)
    local.fill(mask, poly, 1)
    if pad > 0:
        k = max(1, round(pad / ras.res))
        mask = cv2.dilate(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    win = things[y0:y1, x0:x1]
    if ((check[y0:y1, x0:x1] | win) & mask).any():
        return False
    win |= mask
    return True


def _walk(strip: LaneStrip, spacing: float, offset: float, skip_ends: float = 4.0):
    """Yield (index-interpolated centre, yaw, width) every `spacing` m along a strip, starting at `offset`."""
    seg = np.linalg.norm(np.diff(strip.center[:, :2], axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    for s in np.arange(skip_ends + offset, cum[-1] - skip_ends, spacing):
        c = np.array([np.interp(s, cum, strip.center[:, k]) for k in range(3)])
        yaw = float(np.interp(s, cum, strip.yaw))
        wdt = float(np.interp(s, cum, strip.width))
        yield c, yaw, wdt


def _place_lamps(mb, strips, props, lights, masks: _Masks, ras, cfg: SceneConfig, rng) -> None:
    """Street lamps near the curb of every sidewalk, the arm reaching over the road."""
    for s_ in strips:
        if s_.cls != SIDEWALK or s_.junction >= 0:
            continue
        for c, yaw, wdt in _walk(s_, cfg.lamp_spacing, float(rng.uniform(0, cfg.lamp_spacing / 2)), 6.0):
            left = np.array([math.sin(yaw), -math.cos(yaw), 0.0])  # towards the road
            base = c + left * (wdt / 2 - 0.45)
            base[2] += cfg.sidewalk_height
            if not _try_claim(masks.drive, masks.things, ras, _footprint(base, 0.2, 0.2, yaw)):
                continue
            hgt = 7.0
            pole_c = base + (0, 0, hgt / 2)
            mb.box(pole_c, (0.09, 0.09, hgt / 2), math.degrees(yaw), METAL, MANMADE)
            props.append((tuple(pole_c), (0.09, 0.09, hgt / 2), math.degrees(yaw), MANMADE))
            arm_c = base + left * 0.9 + (0, 0, hgt - 0.1)
            mb.box(arm_c, (0.05, 0.9, 0.05), math.degrees(yaw), METAL, MANMADE)
            head = base + left * 1.7 + (0, 0, hgt - 0.25)
            mb.box(head, (0.25, 0.35, 0.08), math.degrees(yaw), LAMP, MANMADE)
            lights.append(tuple(head))


CAR_PAINTS = ((0.75, 0.75, 0.78), (0.10, 0.10, 0.12), (0.55, 0.08, 0.08), (0.12, 0.22, 0.45), (0.85, 0.85, 0.82),
              (0.35, 0.37, 0.40), (0.20, 0.35, 0.22))


def _place_parked_cars(mb, strips, props, masks: _Masks, ras, cfg: SceneConfig, rng) -> None:
    """Parked cars (static, class car) in the slots of every parking lane outside junctions.

    They are props like any other: drawn, in the occupancy ground truth and solid for collisions; SUMO keeps
    its traffic off parking lanes, so they never block a driving lane.
    """
    for s_ in strips:
        if s_.lane_type != "parking" or s_.junction >= 0:
            continue
        for c, yaw, wdt in _walk(s_, cfg.parked_car_spacing, float(rng.uniform(0, 3.0)), 8.0):
            if rng.random() > cfg.parked_car_fill or wdt < 2.0:
                continue
            half = (2.3, 0.95, 0.75)
            c = c + np.array([0.0, 0.0, half[2]])
            if not _try_claim(np.zeros_like(masks.things), masks.things, ras, _footprint(c, half[0], half[1], yaw)):
                continue
            paint = CAR_PAINTS[int(rng.integers(len(CAR_PAINTS)))]
            mb.box(c, half, math.degrees(yaw), paint, CAR)
            cabin = c + np.array([-0.2 * math.cos(yaw), -0.2 * math.sin(yaw), half[2] + 0.3])
            mb.box(cabin, (1.2, 0.85, 0.3), math.degrees(yaw), WINDOW, CAR)
            props.append((tuple(c), half, math.degrees(yaw), CAR))


def _place_buildings(mb, strips, props, masks: _Masks, ras, cfg: SceneConfig, rng) -> None:
    """Boxes of varied size and colour behind the sidewalks, with darker window bands per floor."""
    for s_ in strips:
        if s_.cls != SIDEWALK or s_.junction >= 0:
            continue
        seg = np.linalg.norm(np.diff(s_.center[:, :2], axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        s = float(rng.uniform(0, 6))
        while s < cum[-1]:
            width = float(rng.uniform(*cfg.building_width))
            sc = min(s + width / 2, cum[-1])
            c = np.array([np.interp(sc, cum, s_.center[:, k]) for k in range(3)])
            yaw = float(np.interp(sc, cum, s_.yaw))
            wdt = float(np.interp(sc, cum, s_.width))
            right = np.array([-math.sin(yaw), math.cos(yaw), 0.0])  # away from the road
            depth = float(rng.uniform(*cfg.building_depth))
            setback = float(rng.uniform(*cfg.building_setback))
            height = float(rng.uniform(*cfg.building_height))
            color = np.asarray(FACADES[int(rng.integers(len(FACADES)))]) * float(rng.uniform(0.85, 1.05))
            s += width + float(rng.uniform(1.0, 8.0))
            for d in (depth, depth * 0.6):
                center = c + right * (wdt / 2 + setback + d / 2)
                if _try_claim(masks.ground, masks.things, ras, _footprint(center, width / 2, d / 2, yaw),
                              pad=1.0):
                    _building(mb, props, center, width / 2, d / 2, height, yaw, np.clip(color, 0, 1), cfg)
                    break


def _building(mb, props, center, hx: float, hy: float, height: float, yaw: float, color, cfg) -> None:
    c = np.array([center[0], center[1], center[2] + height / 2])
    mb.box(c, (hx, hy, height / 2), math.degrees(yaw), color, MANMADE)
    props.append((tuple(c), (hx, hy, height / 2), math.degrees(yaw), MANMADE))
    floors = int(height // cfg.floor_height)
    if floors < 1:
        return
    f = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    r = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
    a_, b_, c_, d_, nrm = [], [], [], [], []
    for axis, half, other, oh in ((r, hy, f, hx), (-r, hy, f, hx), (f, hx, r, hy), (-f, hx, r, hy)):
        if oh < 1.5:
            continue
        face = np.asarray(center, np.float64) + axis * (half + 0.03)
        for k in range(floors):
            z0 = center[2] + k * cfg.floor_height + 1.0
            z1 = z0 + 1.3
            if z1 > center[2] + height - 0.3:
                break
            a_.append(face - other * (oh - 0.8) + (0, 0, z0 - center[2]))
            b_.append(face + other * (oh - 0.8) + (0, 0, z0 - center[2]))
            c_.append(face + other * (oh - 0.8) + (0, 0, z1 - center[2]))
            d_.append(face - other * (oh - 0.8) + (0, 0, z1 - center[2]))
            nrm.append(axis)
    if a_:
        mb.quads(np.array(a_), np.array(b_), np.array(c_), np.array(d_), np.array(nrm), WINDOW, MANMADE)


def _tree(mb, props, base, rng, small: bool = False) -> None:
    if small:  # bush
        r = float(rng.uniform(0.5, 0.9))
        c = np.array([base[0], base[1], base[2] + r * 0.7])
        green = np.array([0.16, 0.34, 0.12]) * float(rng.uniform(0.8, 1.2))
        mb.icosphere(c, r, np.clip(green, 0, 1), VEG, squash=0.75)
        props.append((tuple(c), (0.75 * r, 0.75 * r, 0.6 * r), 0.0, VEG))
        return
    trunk_h = float(rng.uniform(2.0, 3.5))
    r = float(rng.uniform(1.6, 2.8))
    tc = np.array([base[0], base[1], base[2] + trunk_h / 2])
    mb.box(tc, (0.15, 0.15, trunk_h / 2), 0.0, TRUNK, VEG)
    props.append((tuple(tc), (0.15, 0.15, trunk_h / 2), 0.0, VEG))
    cc = np.array([base[0], base[1], base[2] + trunk_h + r * 0.8])
    green = np.array([0.18, 0.38, 0.13]) * float(rng.uniform(0.8, 1.25))
    mb.icosphere(cc, r, np.clip(green, 0, 1), VEG)
    props.append((tuple(cc), (0.75 * r, 0.75 * r, 0.75 * r), 0.0, VEG))


def _place_trees(mb, strips, props, masks: _Masks, ras, cfg: SceneConfig, rng, ground: GroundRaster) -> None:
    """Street trees and bushes just beyond the sidewalks, then park trees in the open terrain."""
    for s_ in strips:
        if s_.cls != SIDEWALK or s_.junction >= 0:
            continue
        for c, yaw, wdt in _walk(s_, cfg.tree_spacing, float(rng.uniform(0, cfg.tree_spacing)), 5.0):
            right = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
            small = bool(rng.random() < 0.35)
            base = c + right * (wdt / 2 + (1.2 if small else 2.0))
            rad = 0.7 if small else 2.1  # canopy box half size (see _tree)
            if (masks.ground[ras.cell(base)] == 0
                    and _try_claim(masks.road, masks.things, ras, _footprint(base, rad, rad, 0.0))):
                _tree(mb, props, base, rng, small)
    h, w = ground.classes.shape
    x_min, y_min = ground.x_min, ground.y_min
    x_max, y_max = x_min + w * ground.resolution, y_min + h * ground.resolution
    n = int((x_max - x_min) * (y_max - y_min) * cfg.park_tree_density)
    xy = np.column_stack([rng.uniform(x_min + 3, x_max - 3, n), rng.uniform(y_min + 3, y_max - 3, n)])
    for x, y in xy:
        base = np.array([x, y, 0.0 if ground.height is None else float(ground.height[ras.cell((x, y))])])
        if _try_claim(masks.ground, masks.things, ras, _footprint(base, 2.2, 2.2, 0.0)):
            _tree(mb, props, base, rng, small=bool(rng.random() < 0.25))
