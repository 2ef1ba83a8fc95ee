"""Camera renderer of the embedded simulator: moderngl on headless EGL (Mesa llvmpipe), CARLA's camera formats.

One standalone GL context per Renderer. All cameras render into one atlas framebuffer (each view its own
viewport). Cameras with the same mount, fov and size (an RGB, a depth and a semantic camera stacked, as data
collection rigs attach them) share one view: one pass fills the colour and the depth / class attachments.
A call uploads one block of frame constants (sun, sky, fog, lights), the actor instances, and per view issues
three draws: the static town (one multi-draw-indirect over its visible tiles, near to far), every
actor (one instanced multi-draw-indirect, a command per template), and the sky behind them; then reads the
viewport back. The projection is mirrored in y so the read-back comes out top row first, and the fragment
shaders write B, G, R, A so the bytes already are CARLA's BGRA: no flips or swizzles on the CPU.

llvmpipe facts this design follows (measured here): cost is per rasterised triangle (~0.2-0.5 us each on the
calling thread) plus per shaded pixel; triangles outside the view are nearly free; both sides of a shader
branch run under a mask, so optional features (night lights, wet gloss, dense fog, clouds) are compiled-in
variants chosen per frame, never runtime branches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import moderngl
import numpy as np

from sim.embedded.render import dynamic
from sim.embedded.render.atmosphere import Atmosphere, atmosphere, noise_texture
from sim.embedded.render.formats import encode_depth, encode_semantic
from sim.embedded.render.math3d import FAR as _FAR
from sim.embedded.render.math3d import boxes_in_frustum, frustum_planes, view_projection
from sim.embedded.render.meshes import build_templates
from sim.embedded.render.tiles import StaticTiles
from sim.sensors import CameraSpec
from sim.types import ActorState, Pose, StaticScene, TrafficLightState

_SHADERS = Path(__file__).with_name("shaders")
CAMERA_KINDS = ("rgb", "depth", "semantic_segmentation")
SKY_CLASS = 17  # Occ3D 'free': what the semantic output holds where a pixel sees the sky
_SKY_VERTICES = 8 * 6 * 6  # GRID_X * GRID_Y quads in sky.vert
_CMD_WORDS = (
    5  # moderngl's indirect command stride is 20 bytes: (count, instances, first, base_instance, pad)
)
_UBO_ROWS = 47  # vec4 rows of the Frame block in common.glsl
_SUN_RADIUS_DEG = 0.8
_SOURCES = {
    "scene": ("scene.vert", "surface.frag"),
    "actor": ("actor.vert", "surface.frag"),
    "sky": ("sky.vert", "sky.frag"),
    "sun": ("sun.vert", "sun.frag"),
    "rain": ("rain.vert", "rain.frag"),
    "glare": ("glare.vert", "glare.frag"),
}
_GLARE_REACH_DEG = 25.0  # the sun this far outside a camera's field of view still veils its image


@dataclass
class CameraFrame:
    """One camera's output for one render call."""

    bgra: np.ndarray  # (H, W, 4) uint8, CARLA's camera format (depth/semantic cameras: CARLA's encodings)
    depth: np.ndarray | None = None  # (H, W) float32 planar depth along the camera axis, metres (sky: 1000)
    semantic: np.ndarray | None = None  # (H, W) uint8 Occ3D class ids, 17 where the sky is seen


@dataclass
class RenderConfig:
    """Culling, level-of-detail and lighting limits."""

    tile_size: float = 50.0  # metres; static geometry is culled per tile
    view_distance: float = 150.0  # metres from the ego; farther tiles and actors are not drawn
    lod_distance: float = (
        40.0  # metres; farther actors are drawn as a few boxes (wheels, limbs are sub-pixel)
    )
    max_edge: float = 40.0  # metres; longer static triangles are split (per-vertex haze needs it)
    # Night lights cost every pixel a loop iteration each (~4 ms per light for six 400x225 cameras)
    max_point_lights: int = 4  # nearest street lights lit at night (at most 16)
    max_spot_lights: int = 2  # nearest headlights, the ego's first, at night (at most 8)
    light_distance: float = 60.0  # metres; lights beyond this are ignored
    rain_streaks: int = 450  # streaks per 400x225 camera at precipitation 100 (scaled by image area)
    # Static triangles are drawn from the side their normal points to only (Mesh normals face outward). This
    # halves what llvmpipe rasterises for closed shapes; set False for a mesh with two-sided surfaces.
    cull_backfaces: bool = True


def _set(prog: moderngl.Program, **values) -> None:
    """Set uniforms, skipping those the GLSL compiler optimised out of this variant."""
    for name, value in values.items():
        if name in prog:
            prog[name].value = value


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


def _geometry(c: CameraSpec) -> tuple:
    """What a camera's pass depends on: its mount, field of view and size (not its kind or id)."""
    return (c.x, c.y, c.z, c.roll, c.pitch, c.yaw, c.fov, c.width, c.height)


def _atlas_layout(
    cameras: list[CameraSpec], max_size: int
) -> tuple[list[tuple[int, int, int, int]], int, int]:
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


def _smoothstep_deg(e0: float, e1: float, x: float) -> float:
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _vec(v: np.ndarray) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


def _fork_safe_multiprocessing() -> None:
    """Once Mesa's llvmpipe has started its render threads, a forked child that renders deadlocks (the threads do
    not survive fork). Before the first GL context of a program that has not chosen a start method, make
    multiprocessing default to 'forkserver' (Python 3.14's default), so gymnasium's AsyncVectorEnv and other
    multiprocessing users start clean workers."""
    import multiprocessing

    if multiprocessing.get_start_method(allow_none=True) is None:
        multiprocessing.set_start_method("forkserver")


class Renderer:
    """Renders cameras rigidly attached to the ego, in CARLA's output formats.

    Args:
        scene: the town's static geometry (drawn) and street lights (lit at night).
        cameras: camera specs relative to the ego origin (CARLA vehicle frame); any sizes; kinds 'rgb',
            'depth', 'semantic_segmentation'.
        config: culling, level-of-detail and lighting limits.
    """

    def __init__(
        self, scene: StaticScene, cameras: list[CameraSpec], config: RenderConfig | None = None
    ) -> None:
        _validate_cameras(cameras)
        self.cameras = list(cameras)
        # cameras with one geometry share a view (one pass): view index per camera, and each view's members
        groups: dict[tuple, int] = {}
        self._view_of = [groups.setdefault(_geometry(c), len(groups)) for c in self.cameras]
        self._members: list[list[int]] = [[] for _ in groups]
        for i, v in enumerate(self._view_of):
            self._members[v].append(i)
        self._views = [self.cameras[m[0]] for m in self._members]  # the geometry each view renders
        self._view_rgb = [any(self.cameras[i].kind == "rgb" for i in m) for m in self._members]
        self._view_aux = [any(self.cameras[i].kind != "rgb" for i in m) for m in self._members]
        self.config = cfg = config or RenderConfig()
        if not (0 <= cfg.max_point_lights <= 16 and 0 <= cfg.max_spot_lights <= 8):
            raise ValueError(
                f"light limits {cfg.max_point_lights} points / {cfg.max_spot_lights} spots exceed 16 / 8"
            )
        self._lamps = np.asarray(scene.street_lights, np.float64).reshape(-1, 3)
        self._tiles = StaticTiles(scene.mesh, cfg.tile_size, cfg.max_edge)
        _fork_safe_multiprocessing()
        self.ctx = moderngl.create_standalone_context(backend="egl")
        try:
            with self.ctx:
                self._build()
        except Exception:
            self.ctx.release()
            raise

    # ------------------------------------------------------------------ setup
    def _build(self) -> None:
        ctx = self.ctx
        max_size = min(int(ctx.info["GL_MAX_TEXTURE_SIZE"]), int(ctx.info["GL_MAX_VIEWPORT_DIMS"][0]))
        self._rects, aw, ah = _atlas_layout(self._views, max_size)
        self._color = ctx.texture((aw, ah), 4)  # holds B, G, R, A
        self._aux = ctx.texture((aw, ah), 2, dtype="f4")  # planar depth, class id
        self._depth = ctx.depth_renderbuffer((aw, ah))
        self._fbo_rgb = ctx.framebuffer([self._color], self._depth)
        self._fbo_aux = ctx.framebuffer([self._color, self._aux], self._depth)
        self._ubo = ctx.buffer(reserve=_UBO_ROWS * 16)
        self._noise = ctx.texture((256, 256), 1, noise_texture(256).tobytes())
        self._progs: dict[tuple, moderngl.Program] = {}
        self._ground_z = 0.0
        self._vaos: dict[tuple, tuple[moderngl.Program, moderngl.VertexArray]] = {}

        self._scene_vbo = ctx.buffer(self._tiles.data.tobytes()) if len(self._tiles) else None
        self._scene_cmds = ctx.buffer(reserve=max(len(self._tiles), 1) * len(self._views) * _CMD_WORDS * 4)

        tdata, self._templates = build_templates()
        self._template_names = list(self._templates)
        self._template_index = {n: i for i, n in enumerate(self._template_names)}
        self._template_vbo = ctx.buffer(tdata.tobytes())
        self._inst_capacity = 0
        self._inst_vbo: moderngl.Buffer | None = None
        self._actor_cmds = ctx.buffer(reserve=len(self._templates) * _CMD_WORDS * 4)
        self._ensure_instances(256)
        for aux in (False, True):  # the clear-day variants up front; the others compile on first use
            for kind in ("scene", "actor", "sky"):
                self._program(kind, aux, ())

    def _program(self, kind: str, aux: bool, features: tuple[str, ...]) -> moderngl.Program:
        """Compile (once) a shader variant: AUX adds the depth/class target; features are NIGHT (light loops),
        PUDDLES (per-pixel puddle shapes), FOG (per-pixel fog), CLOUDS."""
        key = (kind, aux, features)
        if key not in self._progs:
            vert, frag = _SOURCES[kind]
            head = "#version 330 core\n" + "".join(
                f"#define {f} 1\n" for f in (("AUX",) if aux else ()) + features
            )
            head += f"#define N_POINT {self.config.max_point_lights}\n#define N_SPOT {self.config.max_spot_lights}\n"
            head += (_SHADERS / "common.glsl").read_text() + "\n"
            vs = head + (
                (_SHADERS / "surface_vs.glsl").read_text() + "\n" if kind in ("scene", "actor") else ""
            )
            prog = self.ctx.program(
                vertex_shader=vs + (_SHADERS / vert).read_text(),
                fragment_shader=head + (_SHADERS / frag).read_text(),
            )
            if "Frame" in prog:
                prog["Frame"].binding = 0
            if "u_noise" in prog:
                prog["u_noise"].value = 0
            self._progs[key] = prog
        return self._progs[key]

    def _vao(
        self, kind: str, aux: bool = False, features: tuple[str, ...] = ()
    ) -> tuple[moderngl.Program, moderngl.VertexArray]:
        key = (kind, aux, features)
        if key not in self._vaos:
            prog = self._program(kind, aux, features)
            content: list = []
            if kind == "scene":
                content = [(self._scene_vbo, "3f 3f 3f 1f", "in_pos", "in_nrm", "in_col", "in_sem")]
            elif kind == "actor":
                content = [
                    (self._template_vbo, "3f 3f 3f 1f", "in_pos", "in_nrm", "in_col", "in_part"),
                    (
                        self._inst_vbo,
                        "3f 1f 3f 3f 1f 1f /i",
                        "i_pos",
                        "i_yaw",
                        "i_ext",
                        "i_col",
                        "i_sem",
                        "i_state",
                    ),
                ]
            self._vaos[key] = (prog, self.ctx.vertex_array(prog, content, skip_errors=True))
        return self._vaos[key]

    def _ensure_instances(self, n: int) -> None:
        if n <= self._inst_capacity:
            return
        cap = max(n, 2 * self._inst_capacity)
        for key in [k for k in self._vaos if k[0] == "actor"]:
            self._vaos.pop(key)[1].release()
        if self._inst_vbo is not None:
            self._inst_vbo.release()
        self._inst_vbo = self.ctx.buffer(reserve=cap * dynamic.INSTANCE_FLOATS * 4)
        self._inst_capacity = cap

    # ------------------------------------------------------------------ per frame
    def _upload_actors(self, inst: np.ndarray) -> int:
        """Write instances and one indirect command per template present; returns the command count."""
        if not len(inst):
            return 0
        self._ensure_instances(len(inst))
        self._inst_vbo.write(np.ascontiguousarray(inst[:, 1:]).tobytes())
        present, base, n = np.unique(inst[:, 0].astype(np.int64), return_index=True, return_counts=True)
        cmds = np.zeros((len(present), _CMD_WORDS), np.uint32)
        for k, (t, b, c) in enumerate(zip(present, base, n)):
            first, count = self._templates[self._template_names[t]]
            cmds[k, :4] = (count, c, first, b)
        self._actor_cmds.write(cmds.tobytes())
        return len(cmds)

    def _frame_ubo(
        self, atm: Atmosphere, ego: Pose, frame: int, pts: np.ndarray, spos: np.ndarray, sdir: np.ndarray
    ) -> None:
        """Fill the Frame uniform block (layout: common.glsl)."""
        u = np.zeros((_UBO_ROWS, 4), np.float32)
        u[0, :3] = atm.sun_dir
        u[1, :3] = atm.sun_col
        u[2, :3] = atm.amb_sky
        u[3, :3] = atm.amb_ground
        u[4, :3] = atm.zenith
        u[5, :3] = atm.horizon
        u[6] = (*atm.sun_glow, atm.sun_disk)
        wsum = atm.haze_k + atm.fog_k  # surfaces blend haze and fog towards one colour
        fog_rgb = (atm.haze_k * atm.haze_col + atm.fog_k * atm.fog_col) / wsum if wsum > 0 else atm.fog_col
        u[7] = (*fog_rgb, atm.fog_k)
        u[8] = (*atm.haze_col, atm.haze_k)
        u[9] = (atm.fog_start, atm.fog_falloff, ego.z, atm.lights_on)
        u[10] = (atm.wet, atm.puddles, atm.cloudiness, (frame % 100000) * 0.0005)
        u[11, :3] = atm.cloud_col
        u[12, :2] = (len(pts), len(spos))
        u[13] = (*(np.array([1.0, 0.85, 0.6]) * 1.4 * atm.lights_on), 9.0)
        u[14] = (*(np.array([1.0, 0.96, 0.85]) * 1.6 * atm.lights_on), 50.0)
        u[15:39, :3] = 1e6  # unused light slots: far away, they contribute nothing
        u[39:47, 3] = 2.0  # ... and a cone nothing falls into
        u[15 : 15 + len(pts), :3] = pts
        u[31 : 31 + len(spos), :3] = spos
        u[39 : 39 + len(sdir)] = sdir
        self._ubo.write(u.tobytes())

    def _visible_tiles(
        self, ego: Pose, vps: list[np.ndarray], cam_pos: list[np.ndarray]
    ) -> tuple[list[int], list[int]]:
        """Write each camera's tile commands (near to far) into one buffer; per camera (first command, count)."""
        t = self._tiles
        if not len(t):
            return [0] * len(vps), [0] * len(vps)
        near = t.near(ego.x, ego.y, self.config.view_distance)
        lo, hi = t.lo[near], t.hi[near]
        centre = (lo + hi) / 2.0
        blocks, firsts, counts, off = [], [], [], 0
        for vp, cp in zip(vps, cam_pos):
            inside = boxes_in_frustum(frustum_planes(vp), lo, hi)
            sel = near[inside][np.argsort(np.linalg.norm(centre[inside] - cp, axis=1), kind="stable")]
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

    def render(
        self,
        ego: Pose,
        actors: list[ActorState],
        lights: list[TrafficLightState],
        weather,
        frame: int = 0,
        want_depth: bool = False,
        want_semantic: bool = False,
        street_lights: bool = True,
    ) -> dict[str, CameraFrame]:
        """Render every camera at the ego pose.

        Args:
            ego: ego pose (world frame); the ego itself is not drawn (its headlights shine at night).
            actors: every other actor (drawn within `view_distance`).
            lights: traffic-light heads (pole + housing, the active bulb lit).
            weather: carla.WeatherParameters (or any object with its fields).
            frame: seeds the rain streaks (same frame, same image).
            want_depth / want_semantic: also return planar depth / Occ3D ids for the RGB cameras.
            street_lights: whether the town's street lamps light up at night (CARLA's light manager can switch
                them off; vehicles' headlights stay on).
        Returns:
            camera id -> CameraFrame (depth cameras always carry `depth`, semantic cameras `semantic`).
        """
        if self.ctx is None:
            raise RuntimeError("Renderer was released")
        atm = atmosphere(weather)
        with self.ctx:
            return self._render(ego, actors, lights, atm, int(frame), want_depth, want_semantic, street_lights)

    def _render(
        self,
        ego: Pose,
        actors: list[ActorState],
        lights: list[TrafficLightState],
        atm: Atmosphere,
        frame: int,
        want_depth: bool,
        want_semantic: bool,
        street_lights: bool = True,
    ) -> dict[str, CameraFrame]:
        ctx, cfg = self.ctx, self.config
        night = atm.lights_on > 0.0
        lamps_lit = night and street_lights
        pts, spos, sdir = np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4))
        if lamps_lit:
            pts = dynamic.street_lights(ego, self._lamps, cfg.max_point_lights, cfg.light_distance)
        if night:
            spos, sdir = dynamic.headlights(ego, actors, cfg.max_spot_lights, cfg.light_distance)
        self._frame_ubo(atm, ego, frame, pts, spos, sdir)
        inst = dynamic.instances(
            ego, actors, lights, self._lamps, lamps_lit, self._template_index, cfg.view_distance, cfg.lod_distance
        )
        n_actor_cmds = self._upload_actors(inst)

        self._ground_z = ego.z
        mats = [view_projection(ego, c) for c in self._views]
        firsts, counts = self._visible_tiles(ego, [m[0] for m in mats], [m[1][:3, 3] for m in mats])
        # per-frame shader features: see the module docstring for why these are variants
        surface = tuple(
            f
            for f, on in (
                ("NIGHT", night),
                ("PUDDLES", atm.puddles > 0.0),
                # per-vertex fog is exact enough while a 25 m triangle dims < 10 %
                ("FOG", (atm.fog_k + atm.haze_k) * 25.0 > 0.1),
            )
            if on
        )
        sky = ("CLOUDS",) if atm.cloudiness >= 0.1 else ()  # thinner cover shows no clouds (sky.frag)

        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.BLEND)
        ctx.depth_func = "<="
        ctx.front_face = (
            "ccw"  # faces are CCW around their normal; both mirrorings (CARLA->GL, y flip) cancel
        )
        ctx.scissor = None
        self._fbo_rgb.use()
        self._fbo_rgb.clear(depth=1.0)
        self._ubo.bind_to_uniform_block(0)
        self._noise.use(0)
        need_aux = [want_depth or want_semantic or a for a in self._view_aux]  # per view

        for i, cam in enumerate(self._views):
            aux = need_aux[i]
            (self._fbo_aux if aux else self._fbo_rgb).use()
            ctx.viewport = self._rects[i]
            vp, c2w = mats[i]
            vp_bytes = vp.T.astype(np.float32).tobytes()  # GL wants column-major
            pos, fwd = _vec(c2w[:3, 3]), _vec(c2w[:3, 0])
            if counts[i]:
                if cfg.cull_backfaces:
                    ctx.enable(moderngl.CULL_FACE)
                else:
                    ctx.disable(moderngl.CULL_FACE)
                prog, vao = self._vao("scene", aux, surface)
                prog["u_vp"].write(vp_bytes)
                _set(prog, u_cam_pos=pos, u_cam_fwd=fwd)
                vao.render_indirect(self._scene_cmds, moderngl.TRIANGLES, count=counts[i], first=firsts[i])
            if n_actor_cmds:
                ctx.enable(moderngl.CULL_FACE)
                prog, vao = self._vao("actor", aux, surface)
                prog["u_vp"].write(vp_bytes)
                _set(prog, u_cam_pos=pos, u_cam_fwd=fwd)
                vao.render_indirect(self._actor_cmds, moderngl.TRIANGLES, count=n_actor_cmds)
            ctx.disable(moderngl.CULL_FACE)
            prog, vao = self._vao("sky", aux, sky)
            _set(
                prog,
                u_cam_fwd=fwd,
                u_cam_pos=pos,
                u_ray_x=_vec(c2w[:3, 1] * cam.width / (2.0 * cam.focal)),
                u_ray_y=_vec(-c2w[:3, 2] * cam.height / (2.0 * cam.focal)),
            )
            vao.render(moderngl.TRIANGLES, vertices=_SKY_VERTICES)
            self._draw_sun(i, c2w, atm, aux)
            if atm.rain > 0.0 and self._view_rgb[i]:  # colour only: a stacked depth camera sees no streaks
                self._draw_rain(i, cam, atm, frame)
            if atm.glare > 0.0 and self._view_rgb[i]:
                self._draw_glare(i, c2w, atm)
        return self._read_back(need_aux, want_depth, want_semantic)

    def _draw_sun(self, i: int, c2w: np.ndarray, atm: Atmosphere, aux: bool) -> None:
        """The sun disk as a small octagon behind everything (a per-pixel disk test would cost ~2 ms)."""
        cam = self._views[i]
        local = c2w[:3, :3].T @ atm.sun_dir  # (forward, right, up)
        if atm.sun_disk <= 0.0 or local[0] <= 1e-3:
            return
        f = cam.focal
        u = cam.width / 2.0 + f * local[1] / local[0]
        v = cam.height / 2.0 - f * local[2] / local[0]
        r = f * math.tan(math.radians(_SUN_RADIUS_DEG))
        if not (-r < u < cam.width + r and -r < v < cam.height + r):
            return
        # haze + height fog towards the horizon along the sun's direction, as sky.vert does per vertex
        a, h0 = atm.fog_falloff, max(float(c2w[2, 3]) - self._ground_z, 0.0)
        h1 = max(h0 + atm.sun_dir[2] * _FAR, 0.0)
        avg = (
            (math.exp(-a * h0) - math.exp(-a * h1)) / (a * (h1 - h0))
            if abs(a * (h1 - h0)) > 1e-4
            else math.exp(-a * h0)
        )
        trans = math.exp(-atm.haze_k * _FAR - atm.fog_k * max(_FAR - atm.fog_start, 0.0) * avg)
        prog, vao = self._vao("sun", aux)
        prog["u_sun_ndc"].value = (2.0 * u / cam.width - 1.0, 2.0 * v / cam.height - 1.0)
        prog["u_sun_radius"].value = (2.0 * r / cam.width, 2.0 * r / cam.height)
        prog["u_col"].value = (6.0 * atm.sun_disk * trans,) * 3
        vao.render(moderngl.TRIANGLES, vertices=24)

    def _draw_glare(self, i: int, c2w: np.ndarray, atm: Atmosphere) -> None:
        """Veiling glare on an RGB camera that faces the low sun (glare.frag): a bloom around the sun and a
        uniform veil that lifts blacks and washes out contrast; fades out as the sun leaves the view."""
        cam = self._views[i]
        local = c2w[:3, :3].T @ atm.sun_dir  # (forward, right, up)
        half_x = math.atan(cam.width / (2.0 * cam.focal))
        half_y = math.atan(cam.height / (2.0 * cam.focal))
        # angle of the sun outside the image rectangle (0 inside), per axis
        if local[0] <= 1e-6:
            return
        ax = max(abs(math.atan2(local[1], local[0])) - half_x, 0.0)
        ay = max(abs(math.atan2(local[2], local[0])) - half_y, 0.0)
        outside = math.degrees(math.hypot(ax, ay))
        facing = _smoothstep_deg(_GLARE_REACH_DEG, 0.0, outside)
        if facing <= 0.0:
            return
        ctx = self.ctx
        self._fbo_rgb.use()
        ctx.viewport = ctx.scissor = self._rects[i]
        ctx.disable(moderngl.DEPTH_TEST)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA, moderngl.ZERO, moderngl.ONE
        prog, vao = self._vao("glare")
        _set(
            prog,
            u_cam_fwd=_vec(c2w[:3, 0]),
            u_ray_x=_vec(c2w[:3, 1] * cam.width / (2.0 * cam.focal)),
            u_ray_y=_vec(-c2w[:3, 2] * cam.height / (2.0 * cam.focal)),
        )
        prog["u_glare_col"].value = _vec(atm.glare_col)
        prog["u_veil"].value = 0.45 * atm.glare * facing
        prog["u_bloom"].value = 0.9 * atm.glare * facing
        prog["u_width"].value = math.radians(8.0)
        vao.render(moderngl.TRIANGLES, vertices=6)
        ctx.disable(moderngl.BLEND)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.scissor = None

    def _draw_rain(self, i: int, cam: CameraSpec, atm: Atmosphere, frame: int) -> None:
        """Screen-space streaks (RGB cameras only, as in CARLA); positions hash (frame, camera): deterministic."""
        ctx = self.ctx
        n = int(self.config.rain_streaks * atm.rain * cam.width * cam.height / (400 * 225))
        if n <= 0:
            return
        self._fbo_rgb.use()
        ctx.viewport = ctx.scissor = self._rects[i]
        ctx.disable(moderngl.DEPTH_TEST)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA, moderngl.ZERO, moderngl.ONE
        prog, vao = self._vao("rain")
        prog["u_seed"].value = (frame * 2654435761 + i * 40503 + 12345) % (1 << 32)
        prog["u_len"].value = 0.12 + 0.08 * atm.rain
        d = np.array([0.5 * atm.wind * cam.height / cam.width, 1.0])
        prog["u_slant"].value = _vec(d / np.linalg.norm(d))
        prog["u_col"].value = (*_vec(atm.rain_col), 0.22 + 0.25 * atm.rain)
        ctx.line_width = max(1.0, cam.height / 450.0)
        vao.render(moderngl.LINES, vertices=2, instances=n)
        ctx.disable(moderngl.BLEND)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.scissor = None

    def _read_back(
        self, need_aux: list[bool], want_depth: bool, want_semantic: bool
    ) -> dict[str, CameraFrame]:
        """One read per attachment for the whole atlas (llvmpipe reads a viewport ~10x slower per pixel than a
        full texture), then each camera's slice (contiguous when the camera spans the atlas width)."""
        aw, ah = self._color.size
        color = aux = None
        if any(c.kind == "rgb" for c in self.cameras):
            color = np.empty((ah, aw, 4), np.uint8)
            self._fbo_rgb.read_into(color, components=4, attachment=0)
        if any(need_aux):
            aux = np.empty((ah, aw, 2), np.float32)
            self._fbo_aux.read_into(aux, components=2, attachment=1, dtype="f4")
        out: dict[str, CameraFrame] = {}
        for i, cam in enumerate(self.cameras):
            view = self._view_of[i]
            x, y, w, h = self._rects[view]
            depth = semantic = None
            if need_aux[view]:
                a = aux[y : y + h, x : x + w]
                if want_depth or cam.kind == "depth":
                    depth = np.ascontiguousarray(a[..., 0])
                if want_semantic or cam.kind == "semantic_segmentation":
                    semantic = a[..., 1].astype(np.uint8)
            if cam.kind == "depth":
                bgra = encode_depth(depth)
            elif cam.kind == "semantic_segmentation":
                bgra = encode_semantic(semantic)
            else:
                bgra = np.ascontiguousarray(color[y : y + h, x : x + w])
            out[cam.id] = CameraFrame(bgra=bgra, depth=depth, semantic=semantic)
        return out

    # ------------------------------------------------------------------ lifetime
    def release(self) -> None:
        """Free the GL context (the renderer cannot render afterwards)."""
        if self.ctx is not None:
            self.ctx.release()
            self.ctx = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
