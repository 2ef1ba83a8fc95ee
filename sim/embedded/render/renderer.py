"""Camera renderer of the embedded simulator: moderngl on headless EGL (Mesa llvmpipe), CARLA's camera formats.

One standalone GL context per Renderer. All cameras render into one atlas framebuffer (each camera its own
viewport), so a call is: upload one frame-constants block, then per camera three draw calls (static town via
multi-draw-indirect over the visible tiles, all actors via one instanced multi-draw-indirect, the sky) and a
read-back of its viewport. The projection is mirrored in y so read-backs come out top row first, and the
fragment shader writes B, G, R, A so the bytes are already CARLA's BGRA: no CPU-side flips or swizzles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

from sim.embedded.render.atmosphere import Atmosphere, atmosphere
from sim.embedded.render.math3d import FAR, boxes_in_frustum, frustum_planes, view_projection
from sim.embedded.render.meshes import LIGHT_VCLASSES, VCLASS_TEMPLATE, build_templates
from sim.sensors import CameraSpec
from sim.types import OCC, ActorState, Pose, StaticScene, TrafficLightState

_SHADERS = Path(__file__).with_name("shaders")
CAMERA_KINDS = ("rgb", "depth", "semantic_segmentation")
SKY_CLASS = 17  # Occ3D 'free': what the semantic output holds where a pixel sees the sky
_BULB = {"Red": 0.0, "Yellow": 1.0, "Green": 2.0}  # other states ('Off', 'Unknown') light no bulb
_SKY_VERTICES = 16 * 9 * 6  # GRID_X * GRID_Y quads in sky.vert
_CMD_WORDS = 5  # moderngl's indirect command stride is 20 bytes: (count, instances, first, base_instance, pad)


@dataclass
class CameraFrame:
    """One camera's output for one render call."""

    bgra: np.ndarray  # (H, W, 4) uint8, CARLA's camera format (depth/semantic cameras: CARLA's encodings)
    depth: np.ndarray | None = None  # (H, W) float32 planar depth along the camera axis, metres (sky: 1000)
    semantic: np.ndarray | None = None  # (H, W) uint8 Occ3D class ids, 17 where the sky is seen


@dataclass
class RenderConfig:
    """Quality/speed knobs; the defaults meet ~13 ms for six 400x225 cameras on a 2-core llvmpipe."""

    tile_size: float = 50.0  # metres; static geometry is culled per tile
    view_distance: float = 150.0  # metres from the ego; farther tiles and actors are not drawn
    max_point_lights: int = 16  # nearest street lights lit at night (shader limit 16)
    max_spot_lights: int = 8  # nearest headlights (ego first) at night (shader limit 8)
    light_distance: float = 60.0  # metres; lights beyond this are ignored
    rain_streaks: int = 900  # streaks per 400x225 camera at precipitation 100 (scaled by image area)
    # Static triangles are drawn from the side their normal points to only (Mesh normals face outward). This
    # halves what llvmpipe rasterises for closed shapes; set False for a mesh with two-sided surfaces.
    cull_backfaces: bool = True


def _set(prog: moderngl.Program, **values) -> None:
    """Set uniforms, skipping those the GLSL compiler optimised out of this variant."""
    for name, value in values.items():
        if name in prog:
            prog[name].value = value


def _source(name: str) -> str:
    return (_SHADERS / name).read_text()


def encode_depth(depth: np.ndarray) -> np.ndarray:
    """CARLA depth-camera BGRA from planar depth in metres: (R + 256 G + 65536 B) / (256^3 - 1) * 1000 m."""
    v = np.round(np.clip(depth / FAR, 0.0, 1.0) * (256.0**3 - 1.0)).astype(np.uint32)  # (H, W)
    out = np.empty(depth.shape + (4,), np.uint8)
    out[..., 0] = (v >> 16) & 255  # B
    out[..., 1] = (v >> 8) & 255  # G
    out[..., 2] = v & 255  # R
    out[..., 3] = 255
    return out


def decode_depth(bgra: np.ndarray) -> np.ndarray:
    """Inverse of encode_depth (CARLA's formula): (H, W, 4) uint8 -> (H, W) float32 metres."""
    b, g, r = (bgra[..., i].astype(np.float64) for i in (0, 1, 2))
    return ((r + g * 256.0 + b * 65536.0) / (256.0**3 - 1.0) * FAR).astype(np.float32)


def encode_semantic(semantic: np.ndarray) -> np.ndarray:
    """CARLA semantic-camera BGRA: the class id in the red channel (array index 2)."""
    out = np.zeros(semantic.shape + (4,), np.uint8)
    out[..., 2] = semantic
    out[..., 3] = 255
    return out


def noise_texture(size: int = 256, seed: int = 7) -> np.ndarray:
    """(size, size) uint8 tileable multi-octave value noise (clouds, puddles); fixed seed: deterministic."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((size, size))
    amp, total = 1.0, 0.0
    for cells in (4, 8, 16, 32, 64):
        lattice = rng.random((cells, cells))
        t = np.arange(size) * cells / size
        i0 = np.floor(t).astype(np.int64)
        f = t - i0
        f = f * f * (3.0 - 2.0 * f)
        i1 = (i0 + 1) % cells
        rows = lattice[i0] * (1 - f)[:, None] + lattice[i1] * f[:, None]  # (size, cells)
        acc += amp * (rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :])
        total += amp
        amp *= 0.5
    acc /= total
    lo, hi = np.percentile(acc, [1.0, 99.0])
    return np.round(np.clip((acc - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def _validate_cameras(cameras: list[CameraSpec]) -> None:
    if not cameras:
        raise ValueError("Renderer needs at least one camera")
    seen: set[str] = set()
    for c in cameras:
        if c.id in seen:
            raise ValueError(f"camera id '{c.id}' is used more than once")
        seen.add(c.id)
        if c.kind not in CAMERA_KINDS:
            raise ValueError(f"camera '{c.id}': unknown kind '{c.kind}' (known: {', '.join(CAMERA_KINDS)})")
        if not (1 <= c.width <= 8192 and 1 <= c.height <= 8192):
            raise ValueError(f"camera '{c.id}': size {c.width}x{c.height} out of range 1..8192")
        if not (0.0 < c.fov < 180.0):
            raise ValueError(f"camera '{c.id}': fov {c.fov} out of range (0, 180)")


def _atlas_layout(cameras: list[CameraSpec], max_size: int) -> tuple[list[tuple[int, int, int, int]], int, int]:
    """Stack cameras in columns no taller than max_size: viewports (x, y, w, h) and the atlas size."""
    rects, x, y, col_w, height = [], 0, 0, 0, 0
    for c in cameras:
        if y + c.height > max_size:
            x, y, col_w = x + col_w, 0, 0
        rects.append((x, y, c.width, c.height))
        y += c.height
        col_w = max(col_w, c.width)
        height = max(height, y)
    width = x + col_w
    if width > max_size:
        raise ValueError(f"cameras need a {width}x{height} atlas; this GL allows {max_size}x{max_size}")
    return rects, width, height


class _StaticTiles:
    """The static mesh sorted into square tiles with per-tile vertex ranges and bounding boxes."""

    def __init__(self, scene: StaticScene, tile: float) -> None:
        m = scene.mesh
        n = len(m.positions)
        if n % 3:
            raise ValueError(f"StaticScene.mesh has {n} vertices, not a multiple of 3 (a triangle list)")
        if n == 0:
            self.data = np.zeros((0, 10), np.float32)
            self.first = self.count = np.zeros(0, np.int64)
            self.lo = self.hi = np.zeros((0, 3))
            return
        data = np.concatenate([m.positions, m.normals, m.colors, m.semantic[:, None].astype(np.float32)],
                              axis=1).astype(np.float32).reshape(-1, 3, 10)  # (T, 3 vertices, 10)
        tri = m.positions.reshape(-1, 3, 3).astype(np.float64)  # (T, 3, 3)
        # wind every triangle counter-clockwise around its (mean vertex) normal, so face culling keeps the
        # side the normal points to
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        flip = np.einsum("tk,tk->t", cross, m.normals.reshape(-1, 3, 3).sum(axis=1)) < 0
        data[flip] = data[flip][:, [0, 2, 1]]
        key = np.floor(tri.mean(axis=1)[:, :2] / tile).astype(np.int64)  # (T, 2)
        order = np.lexsort((key[:, 1], key[:, 0]))  # stable: deterministic vertex order
        key = key[order]
        tri = tri[order]
        self.data = data[order].reshape(-1, 10)
        change = np.any(key[1:] != key[:-1], axis=1)
        starts = np.concatenate([[0], np.nonzero(change)[0] + 1])  # first triangle of each tile
        counts = np.diff(np.concatenate([starts, [len(key)]]))
        self.first = starts * 3
        self.count = counts * 3
        self.lo = np.minimum.reduceat(tri.min(axis=1), starts)  # (K, 3)
        self.hi = np.maximum.reduceat(tri.max(axis=1), starts)  # (K, 3)

    def __len__(self) -> int:
        return len(self.first)


class Renderer:
    """Renders a set of cameras rigidly attached to the ego, in CARLA's output formats.

    Args:
        scene: the town's static geometry (drawn), street lights (lit at night).
        cameras: camera specs relative to the ego origin (CARLA vehicle frame); any sizes, kinds 'rgb',
            'depth', 'semantic_segmentation'.
        config: culling and lighting limits.
    """

    def __init__(self, scene: StaticScene, cameras: list[CameraSpec], config: RenderConfig | None = None) -> None:
        _validate_cameras(cameras)
        self.scene = scene
        self.cameras = list(cameras)
        self.config = config or RenderConfig()
        self._lamps = np.asarray(scene.street_lights, np.float64).reshape(-1, 3)
        self.ctx = moderngl.create_standalone_context(backend="egl")
        try:
            with self.ctx:
                self._build()
        except Exception:
            self.ctx.release()
            raise

    # ------------------------------------------------------------------ setup
    _SOURCES = {"scene": ("scene.vert", "surface.frag"), "actor": ("actor.vert", "surface.frag"),
                "sky": ("sky.vert", "sky.frag"), "rain": ("rain.vert", "rain.frag")}

    def _program(self, kind: str, aux: bool, night: bool, gloss: bool) -> moderngl.Program:
        """Compile (once) one shader variant: AUX adds the depth/class target, NIGHT the light loops, GLOSS
        per-pixel reflections (wet weather), and for the sky, `gloss` selects CLOUDS. llvmpipe executes both
        sides of a branch under a mask, so unused features must be compiled out, not branched around."""
        key = (kind, aux, night, gloss)
        if key not in self._progs:
            vert, frag = self._SOURCES[kind]
            head = "#version 330 core\n"
            if aux:
                head += "#define AUX 1\n"
            if night:
                head += f"#define NIGHT 1\n#define N_POINT {self.config.max_point_lights}\n"
                head += f"#define N_SPOT {self.config.max_spot_lights}\n"
            if gloss:
                head += "#define GLOSS 1\n#define CLOUDS 1\n"
            head += _source("common.glsl") + "\n"
            vs = head + (_source("surface_vs.glsl") + "\n" if kind in ("scene", "actor") else "") + _source(vert)
            prog = self.ctx.program(vertex_shader=vs, fragment_shader=head + _source(frag))
            if "Frame" in prog:
                prog["Frame"].binding = 0
            if "u_noise" in prog:
                prog["u_noise"].value = 0
            self._progs[key] = prog
        return self._progs[key]

    def _vao(self, kind: str, aux: bool = False, night: bool = False, gloss: bool = False
             ) -> tuple[moderngl.Program, moderngl.VertexArray]:
        key = (kind, aux, night, gloss)
        if key not in self._vaos:
            prog = self._program(kind, aux, night, gloss)
            if kind == "scene":
                content = [(self._scene_vbo, "3f 3f 3f 1f", "in_pos", "in_nrm", "in_col", "in_sem")]
            elif kind == "actor":
                content = [
                    (self._template_vbo, "3f 3f 3f 1f", "in_pos", "in_nrm", "in_col", "in_part"),
                    (self._inst_vbo, "3f 1f 3f 3f 1f 1f /i", "i_pos", "i_yaw", "i_ext", "i_col", "i_sem", "i_state"),
                ]
            else:
                content = []
            self._vaos[key] = (prog, self.ctx.vertex_array(prog, content, skip_errors=True))
        return self._vaos[key]

    def _build(self) -> None:
        ctx = self.ctx
        cfg = self.config
        if not (0 <= cfg.max_point_lights <= 16 and 0 <= cfg.max_spot_lights <= 8):
            raise ValueError(f"light limits {cfg.max_point_lights}/{cfg.max_spot_lights} exceed 16 points/8 spots")
        max_size = min(int(ctx.info["GL_MAX_TEXTURE_SIZE"]), int(ctx.info["GL_MAX_VIEWPORT_DIMS"][0]))
        self._rects, aw, ah = _atlas_layout(self.cameras, max_size)
        self._color = ctx.texture((aw, ah), 4)  # stores B, G, R, A
        self._aux = ctx.texture((aw, ah), 2, dtype="f4")  # planar depth, class id
        self._depth = ctx.depth_renderbuffer((aw, ah))
        self._fbo_rgb = ctx.framebuffer([self._color], self._depth)
        self._fbo_aux = ctx.framebuffer([self._color, self._aux], self._depth)
        self._ubo = ctx.buffer(reserve=47 * 16)
        self._noise = ctx.texture((256, 256), 1, noise_texture(256).tobytes())
        self._progs: dict[tuple, moderngl.Program] = {}
        self._vaos: dict[tuple, tuple[moderngl.Program, moderngl.VertexArray]] = {}

        self._tiles = _StaticTiles(self.scene, cfg.tile_size)
        self._scene_vbo = ctx.buffer(self._tiles.data.tobytes()) if len(self._tiles) else None
        self._scene_cmds = ctx.buffer(reserve=max(len(self._tiles), 1) * len(self.cameras) * _CMD_WORDS * 4)

        tdata, self._templates = build_templates()
        self._template_names = list(self._templates)
        self._template_index = {n: i for i, n in enumerate(self._template_names)}
        self._template_vbo = ctx.buffer(tdata.tobytes())
        self._inst_capacity = 0
        self._inst_vbo = None
        self._actor_cmds = ctx.buffer(reserve=len(self._templates) * _CMD_WORDS * 4)
        self._ensure_instances(256)
        for aux in (False, True):  # compile the dry-day variants up front; others on first use
            for kind in ("scene", "actor", "sky"):
                self._program(kind, aux, False, False)

    def _ensure_instances(self, n: int) -> None:
        if n <= self._inst_capacity:
            return
        cap = max(n, 2 * self._inst_capacity)
        for key in [k for k in self._vaos if k[0] == "actor"]:
            self._vaos.pop(key)[1].release()
        if self._inst_vbo is not None:
            self._inst_vbo.release()
        self._inst_vbo = self.ctx.buffer(reserve=cap * 12 * 4)
        self._inst_capacity = cap

    # ------------------------------------------------------------------ per frame
    def _instances(self, ego: Pose, actors: list[ActorState], lights: list[TrafficLightState],
                   atm: Atmosphere) -> np.ndarray:
        """(M, 13) float32 rows: template index, origin (3), yaw, extent (3), colour (3), class, state."""
        ti = self._template_index
        rows = [(ti[VCLASS_TEMPLATE.get(a.vclass, "crate")], a.x, a.y, a.z, a.yaw, *a.extent, *a.color,
                 a.occ_class, 0.0) for a in actors]
        tl, manmade = ti["traffic_light"], OCC["manmade"]
        rows += [(tl, t.x, t.y, t.z, t.yaw, 1.0, 1.0, 1.0, 0.3, 0.3, 0.3, manmade, _BULB.get(t.state, -1.0))
                 for t in lights]
        inst = np.asarray(rows, np.float64).reshape(-1, 13)
        if atm.lights_on > 0.0 and len(self._lamps):
            lamps = self._lamps[np.hypot(self._lamps[:, 0] - ego.x, self._lamps[:, 1] - ego.y)
                                <= self.config.view_distance]
            lamp_rows = np.zeros((len(lamps), 13))
            lamp_rows[:, 0] = ti["lamp"]
            lamp_rows[:, 1:4] = lamps
            lamp_rows[:, 5:8] = 1.0
            lamp_rows[:, 11] = manmade
            inst = np.concatenate([inst, lamp_rows])
        keep = np.hypot(inst[:, 1] - ego.x, inst[:, 2] - ego.y) <= self.config.view_distance
        inst = inst[keep]
        return inst[np.argsort(inst[:, 0], kind="stable")].astype(np.float32)

    def _upload_actors(self, inst: np.ndarray) -> int:
        """Write instances and one indirect command per template; returns the command count."""
        if not len(inst):
            return 0
        self._ensure_instances(len(inst))
        self._inst_vbo.write(np.ascontiguousarray(inst[:, 1:]).tobytes())
        tidx = inst[:, 0].astype(np.int64)
        present, base, n = np.unique(tidx, return_index=True, return_counts=True)
        cmds = np.zeros((len(present), _CMD_WORDS), np.uint32)
        for k, (t, b, c) in enumerate(zip(present, base, n)):
            first, count = self._templates[self._template_names[t]]
            cmds[k, :4] = (count, c, first, b)
        self._actor_cmds.write(cmds.tobytes())
        return len(cmds)

    def _lights(self, ego: Pose, actors: list[ActorState], atm: Atmosphere) -> tuple[np.ndarray, np.ndarray,
                                                                                        np.ndarray]:
        """Night light sources: street-lamp points (P, 3), headlight spot positions (S, 3), directions (S, 4)."""
        cfg = self.config
        if atm.lights_on <= 0.0:
            return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4))
        pts = np.zeros((0, 3))
        if len(self._lamps):
            d = np.hypot(self._lamps[:, 0] - ego.x, self._lamps[:, 1] - ego.y)
            idx = np.argsort(d, kind="stable")[:cfg.max_point_lights]
            pts = self._lamps[idx[d[idx] <= cfg.light_distance]]
        cars = [(ego.x, ego.y, ego.z, ego.yaw, 2.45, 0.0)]
        cars += [(a.x, a.y, a.z, a.yaw, a.extent[0], math.hypot(a.x - ego.x, a.y - ego.y)) for a in actors
                 if a.vclass in LIGHT_VCLASSES]
        veh = np.asarray(cars, np.float64)
        veh = veh[veh[:, 5] <= cfg.light_distance]
        veh = veh[np.argsort(veh[:, 5], kind="stable")][:cfg.max_spot_lights]
        yaw = np.radians(veh[:, 3])
        fwd = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)  # (S, 2)
        pos = np.stack([veh[:, 0] + fwd[:, 0] * veh[:, 4], veh[:, 1] + fwd[:, 1] * veh[:, 4], veh[:, 2] + 0.7],
                       axis=1)
        tilt = math.radians(7.0)  # headlights aim slightly down
        dirs = np.stack([fwd[:, 0] * math.cos(tilt), fwd[:, 1] * math.cos(tilt),
                         np.full(len(veh), -math.sin(tilt)), np.full(len(veh), math.cos(math.radians(24.0)))],
                        axis=1)
        return pts, pos, dirs

    def _frame_ubo(self, atm: Atmosphere, ego: Pose, frame: int, pts: np.ndarray, spos: np.ndarray,
                   sdir: np.ndarray) -> None:
        u = np.zeros((47, 4), np.float32)
        u[0, :3] = atm.sun_dir
        u[1, :3] = atm.sun_col
        u[2, :3] = atm.amb_sky
        u[3, :3] = atm.amb_ground
        u[4, :3] = atm.zenith
        u[5, :3] = atm.horizon
        u[6] = (*atm.sun_glow, atm.sun_disk)
        # surfaces blend haze and fog towards one colour, weighted by their extinctions
        wsum = atm.haze_k + atm.fog_k
        fog_rgb = (atm.haze_k * atm.haze_col + atm.fog_k * atm.fog_col) / wsum if wsum > 0 else atm.fog_col
        u[7] = (*fog_rgb, atm.fog_k)
        u[8] = (*atm.haze_col, atm.haze_k)
        u[9] = (atm.fog_start, atm.fog_falloff, ego.z, atm.lights_on)
        u[10] = (atm.wet, atm.puddles, atm.cloudiness, (frame % 100000) * 0.0005)
        u[11, :3] = atm.cloud_col
        u[12, :2] = (len(pts), len(spos))
        u[13] = (*(np.array([1.0, 0.85, 0.6]) * 1.4 * atm.lights_on), 9.0)
        u[14] = (*(np.array([1.0, 0.96, 0.85]) * 1.6 * atm.lights_on), 50.0)
        u[15:31, :3] = u[31:39, :3] = 1e6  # unused slots: far away, contribute nothing
        u[39:47, 3] = 2.0  # ... and a cone nothing falls into
        u[15:15 + len(pts), :3] = pts
        u[31:31 + len(spos), :3] = spos
        u[39:39 + len(sdir)] = sdir
        self._ubo.write(u.tobytes())

    def _visible_tiles(self, ego: Pose, vps: list[np.ndarray], cam_pos: list[np.ndarray]
                       ) -> tuple[list[int], list[int]]:
        """Write each camera's tile commands (near to far) into one buffer: per camera (first cmd, n cmds)."""
        t = self._tiles
        if not len(t):
            return [0] * len(vps), [0] * len(vps)
        dx = np.maximum(np.maximum(t.lo[:, 0] - ego.x, ego.x - t.hi[:, 0]), 0.0)
        dy = np.maximum(np.maximum(t.lo[:, 1] - ego.y, ego.y - t.hi[:, 1]), 0.0)
        near = np.nonzero(np.hypot(dx, dy) <= self.config.view_distance)[0]
        lo, hi = t.lo[near], t.hi[near]
        centre = (lo + hi) / 2.0
        blocks, firsts, counts, off = [], [], [], 0
        for vp, cp in zip(vps, cam_pos):
            inside = boxes_in_frustum(frustum_planes(vp), lo, hi)
            d = np.linalg.norm(centre[inside] - cp, axis=1)
            sel = near[inside][np.argsort(d, kind="stable")]  # near to far: early depth rejects more
            cmds = np.zeros((len(sel), _CMD_WORDS), np.uint32)
            cmds[:, 0] = t.count[sel]
            cmds[:, 1] = 1
            cmds[:, 2] = t.first[sel]
            blocks.append(cmds)
            firsts.append(off)
            counts.append(len(sel))
            off += len(sel)
        if off:
            self._scene_cmds.write(np.concatenate(blocks).tobytes())
        return firsts, counts

    def render(self, ego: Pose, actors: list[ActorState], lights: list[TrafficLightState], weather,
               frame: int = 0, want_depth: bool = False, want_semantic: bool = False) -> dict[str, CameraFrame]:
        """Render every camera at the ego pose.

        Args:
            ego: ego pose (world frame); the ego itself is not drawn.
            actors: every other actor (drawn within `view_distance`).
            lights: traffic-light heads (pole + housing, the active bulb lit).
            weather: carla.WeatherParameters (or any object with its fields).
            frame: seeds the rain streaks (same frame -> same image).
            want_depth / want_semantic: also return planar depth / Occ3D ids for the RGB cameras.
        Returns:
            camera id -> CameraFrame (depth cameras always carry `depth`, semantic cameras `semantic`).
        """
        atm = atmosphere(weather)
        with self.ctx:
            return self._render(ego, actors, lights, atm, int(frame), want_depth, want_semantic)

    def _render(self, ego: Pose, actors: list[ActorState], lights: list[TrafficLightState], atm: Atmosphere,
                frame: int, want_depth: bool, want_semantic: bool) -> dict[str, CameraFrame]:
        ctx = self.ctx
        pts, spos, sdir = self._lights(ego, actors, atm)
        self._frame_ubo(atm, ego, frame, pts, spos, sdir)
        n_actor_cmds = self._upload_actors(self._instances(ego, actors, lights, atm))

        mats = [view_projection(ego, c) for c in self.cameras]
        vps = [vp for vp, _ in mats]
        cam_pos = [c2w[:3, 3] for _, c2w in mats]
        firsts, counts = self._visible_tiles(ego, vps, cam_pos)

        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
        ctx.depth_func = "<="
        self._fbo_rgb.use()
        ctx.scissor = None
        # depth only: the sky pass writes every pixel no geometry covers
        self._fbo_rgb.color_mask = False, False, False, False
        self._fbo_rgb.clear(depth=1.0)
        self._fbo_rgb.color_mask = True, True, True, True
        need_aux = [want_depth or want_semantic or c.kind != "rgb" for c in self.cameras]

        night = atm.lights_on > 0.0
        gloss = atm.wet > 0.0 or atm.puddles > 0.0
        clouds = atm.cloudiness >= 0.1  # thinner cover shows no clouds (sky.frag's threshold)
        self._ubo.bind_to_uniform_block(0)
        self._noise.use(0)
        for i, cam in enumerate(self.cameras):
            aux = need_aux[i]
            (self._fbo_aux if aux else self._fbo_rgb).use()
            ctx.viewport = self._rects[i]
            vp_bytes = vps[i].T.astype(np.float32).tobytes()  # GL wants column-major
            c2w = mats[i][1]
            pos = tuple(float(v) for v in c2w[:3, 3])
            fwd = tuple(float(v) for v in c2w[:3, 0])
            # faces are CCW around their normal; the two mirrorings (CARLA -> GL eye, projection y) cancel
            ctx.enable(moderngl.CULL_FACE)
            ctx.front_face = "ccw"
            if counts[i]:
                if not self.config.cull_backfaces:
                    ctx.disable(moderngl.CULL_FACE)
                prog, vao = self._vao("scene", aux, night, gloss)
                prog["u_vp"].write(vp_bytes)
                _set(prog, u_cam_pos=pos, u_cam_fwd=fwd)
                vao.render_indirect(self._scene_cmds, moderngl.TRIANGLES, count=counts[i], first=firsts[i])
            if n_actor_cmds:
                ctx.enable(moderngl.CULL_FACE)
                prog, vao = self._vao("actor", aux, night, gloss)
                prog["u_vp"].write(vp_bytes)
                _set(prog, u_cam_pos=pos, u_cam_fwd=fwd)
                vao.render_indirect(self._actor_cmds, moderngl.TRIANGLES, count=n_actor_cmds)
            ctx.disable(moderngl.CULL_FACE)
            prog, vao = self._vao("sky", aux, False, clouds)
            tx = cam.width / (2.0 * cam.focal)
            ty = cam.height / (2.0 * cam.focal)
            _set(prog, u_cam_fwd=fwd, u_cam_pos=pos, u_ray_x=tuple(float(v) for v in c2w[:3, 1] * tx),
                 u_ray_y=tuple(float(v) for v in -c2w[:3, 2] * ty))
            vao.render(moderngl.TRIANGLES, vertices=_SKY_VERTICES)
            if atm.rain > 0.0 and cam.kind == "rgb":
                self._draw_rain(i, cam, atm, frame)

        return self._read_back(need_aux, want_depth, want_semantic)

    def _draw_rain(self, i: int, cam: CameraSpec, atm: Atmosphere, frame: int) -> None:
        ctx = self.ctx
        self._fbo_rgb.use()
        ctx.viewport = self._rects[i]
        ctx.scissor = self._rects[i]
        ctx.disable(moderngl.DEPTH_TEST)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA, moderngl.ZERO, moderngl.ONE
        prog, vao = self._vao("rain")
        prog["u_seed"].value = (frame * 2654435761 + i * 40503 + 12345) % (1 << 32)
        prog["u_len"].value = 0.12 + 0.08 * atm.rain
        slant = 0.5 * atm.wind
        d = np.array([slant * cam.height / cam.width, 1.0])
        prog["u_slant"].value = tuple(float(v) for v in d / np.linalg.norm(d))
        prog["u_col"].value = (*(float(v) for v in atm.rain_col), 0.22 + 0.25 * atm.rain)
        n = int(self.config.rain_streaks * atm.rain * cam.width * cam.height / (400 * 225))
        ctx.line_width = max(1.0, cam.height / 450.0)
        if n > 0:
            vao.render(moderngl.LINES, vertices=2, instances=n)
        ctx.disable(moderngl.BLEND)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.scissor = None

    def _read_back(self, need_aux: list[bool], want_depth: bool, want_semantic: bool) -> dict[str, CameraFrame]:
        out: dict[str, CameraFrame] = {}
        for i, cam in enumerate(self.cameras):
            rect = self._rects[i]
            h, w = cam.height, cam.width
            depth = semantic = None
            if need_aux[i]:
                aux = np.empty((h, w, 2), np.float32)
                self._fbo_aux.read_into(aux, viewport=rect, components=2, attachment=1, dtype="f4")
                if want_depth or cam.kind == "depth":
                    depth = np.ascontiguousarray(aux[..., 0])
                if want_semantic or cam.kind == "semantic_segmentation":
                    semantic = aux[..., 1].astype(np.uint8)
            if cam.kind == "depth":
                bgra = encode_depth(depth)
            elif cam.kind == "semantic_segmentation":
                bgra = encode_semantic(semantic)
            else:
                bgra = np.empty((h, w, 4), np.uint8)
                self._fbo_rgb.read_into(bgra, viewport=rect, components=4, attachment=0)
            out[cam.id] = CameraFrame(bgra=bgra, depth=depth, semantic=semantic)
        return out

    # ------------------------------------------------------------------ lifetime
    def release(self) -> None:
        """Free the GL context (the renderer is unusable afterwards)."""
        if self.ctx is not None:
            self.ctx.release()
            self.ctx = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
