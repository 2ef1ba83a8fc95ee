"""Camera renderer (sim/embedded/render): projection, depth, encodings, weather effects, determinism.

Every test builds its own tiny StaticScene (a flat ground, a few boxes) and renders with the real moderngl
on headless EGL; expected pixels come from carla.Transform matrices and the pinhole model, independently
of the renderer's own maths.
"""

from __future__ import annotations

import math

import carla
import numpy as np
import pytest

from sim.embedded.render import SKY_CLASS, CameraFrame, Renderer, decode_depth
from sim.sensors import CameraSpec, nuscenes_rig
from sim.types import OCC, ActorState, BoxSet, GroundRaster, Mesh, Pose, StaticScene, TrafficLightState
from sim.weather import weather_from_name

W, H = 400, 225
EGO = Pose(x=12.0, y=-7.0, z=0.0, yaw=30.0)  # deliberately not at the origin nor axis-aligned
ROAD, TERRAIN = OCC["driveable_surface"], OCC["terrain"]


# ----------------------------------------------------------------------------- scene helpers
def _quad(x0: float, y0: float, x1: float, y1: float, z: float, color, sem: int) -> Mesh:
    p = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y0, z], [x1, y1, z], [x0, y1, z]], np.float32)
    return Mesh(
        p,
        np.tile([0.0, 0.0, 1.0], (6, 1)).astype(np.float32),
        np.tile(color, (6, 1)).astype(np.float32),
        np.full(6, sem, np.uint8),
    )


def _box(cx: float, cy: float, half: tuple[float, float, float], color, sem: int) -> Mesh:
    """Axis-aligned box standing on z=0 (five faces, outward normals)."""
    hx, hy, hz = half
    lo, hi = np.array([cx - hx, cy - hy, 0.0]), np.array([cx + hx, cy + hy, 2 * hz])
    pos, nrm = [], []
    for ax in range(3):
        for side in (0, 1):
            if ax == 2 and side == 0:
                continue
            o1, o2 = (ax + 1) % 3, (ax + 2) % 3
            corners = []
            for a, b in ((0, 0), (1, 0), (1, 1), (0, 1)):
                p = np.zeros(3)
                p[ax] = (lo, hi)[side][ax]
                p[o1] = (lo, hi)[a][o1]
                p[o2] = (lo, hi)[b][o2]
                corners.append(p)
            pos += [corners[i] for i in (0, 1, 2, 0, 2, 3)]
            n = np.zeros(3)
            n[ax] = 1.0 if side else -1.0
            nrm += [n] * 6
    return Mesh(
        np.array(pos, np.float32),
        np.array(nrm, np.float32),
        np.tile(color, (len(pos), 1)).astype(np.float32),
        np.full(len(pos), sem, np.uint8),
    )


def _scene(extra: list[Mesh] | None = None, lamps: np.ndarray | None = None) -> StaticScene:
    """Terrain everywhere, a road strip along the ego's heading through the ego."""
    ground = _quad(-300, -300, 300, 300, 0.0, (0.35, 0.45, 0.3), TERRAIN)
    mesh = Mesh.concatenate([ground] + (extra or []))
    raster = GroundRaster(np.full((4, 4), TERRAIN, np.uint8), -300.0, -300.0, 150.0)
    lamps = np.zeros((0, 3), np.float32) if lamps is None else np.asarray(lamps, np.float32)
    return StaticScene("test", raster, BoxSet.empty(), mesh, lamps, (-300.0, -300.0, 300.0, 300.0))


def _ego_to_world(fx: float, fy: float) -> tuple[float, float]:
    m = np.array(
        carla.Transform(carla.Location(EGO.x, EGO.y, EGO.z), carla.Rotation(yaw=EGO.yaw)).get_matrix()
    )
    p = m @ np.array([fx, fy, 0.0, 1.0])
    return float(p[0]), float(p[1])


def _road_scene() -> StaticScene:
    """A 7 m wide road along the ego's heading (built as a rotated strip of quads)."""
    tris, yaw = [], math.radians(EGO.yaw)
    f, r = np.array([math.cos(yaw), math.sin(yaw), 0.0]), np.array([-math.sin(yaw), math.cos(yaw), 0.0])
    c = np.array([EGO.x, EGO.y, 0.01])
    for s in range(-100, 200, 10):
        a, b = c + f * s - r * 3.5, c + f * (s + 10) - r * 3.5
        tris += [a, b, b + 7 * r, a, b + 7 * r, a + 7 * r]
    n = len(tris)
    road = Mesh(
        np.array(tris, np.float32),
        np.tile([0.0, 0.0, 1.0], (n, 1)).astype(np.float32),
        np.tile([0.32, 0.32, 0.34], (n, 1)).astype(np.float32),
        np.full(n, ROAD, np.uint8),
    )
    return _scene([road])


def _actor(
    fx: float, fy: float, vclass: str = "prop", half=(0.5, 0.5, 0.5), color=(0.8, 0.1, 0.1)
) -> ActorState:
    x, y = _ego_to_world(fx, fy)
    return ActorState(1, "static.prop.box", "static", vclass, x, y, 0.0, EGO.yaw, half, color=color)


def _expected_pixel(cam: CameraSpec, world: np.ndarray) -> tuple[float, float, float]:
    """Pinhole projection with CARLA's own transform matrices: (u, v, planar depth)."""
    m_ego = np.array(
        carla.Transform(
            carla.Location(EGO.x, EGO.y, EGO.z), carla.Rotation(pitch=EGO.pitch, yaw=EGO.yaw, roll=EGO.roll)
        ).get_matrix()
    )
    m_cam = np.array(
        carla.Transform(
            carla.Location(cam.x, cam.y, cam.z), carla.Rotation(pitch=cam.pitch, yaw=cam.yaw, roll=cam.roll)
        ).get_matrix()
    )
    fwd, right, up = (np.linalg.inv(m_ego @ m_cam) @ np.append(world, 1.0))[:3]
    f = cam.width / (2.0 * math.tan(math.radians(cam.fov) / 2.0))
    return cam.width / 2.0 + f * right / fwd, cam.height / 2.0 - f * up / fwd, fwd


def _lum(bgra: np.ndarray) -> np.ndarray:
    return 0.114 * bgra[..., 0] + 0.587 * bgra[..., 1] + 0.299 * bgra[..., 2]


@pytest.fixture(scope="module")
def rig() -> list[CameraSpec]:
    return nuscenes_rig(W, H)


@pytest.fixture(scope="module")
def renderer(rig) -> Renderer:
    r = Renderer(_road_scene(), rig)
    yield r
    r.release()


def _render(r: Renderer, actors=(), weather="ClearNoon", **kw) -> dict[str, CameraFrame]:
    w = weather_from_name(weather) if isinstance(weather, str) else weather
    return r.render(EGO, list(actors), kw.pop("lights", []), w, **kw)


# ----------------------------------------------------------------------------- geometry
def test_box_appears_where_the_pinhole_model_predicts(renderer, rig) -> None:
    actor = _actor(15.0, 2.0)
    out = _render(renderer, [actor], want_semantic=True)
    cam = rig[0]
    assert cam.id == "CAM_FRONT"
    mask = out["CAM_FRONT"].semantic == OCC["others"]
    assert mask.sum() > 50
    rows, cols = np.nonzero(mask)
    # the projected box: its 8 corners' bounding rectangle and its centre
    corners = np.array(
        [
            [actor.x + sx * 0.5, actor.y + sy * 0.5, sz]
            for sx in (-1, 1)
            for sy in (-1, 1)
            for sz in (0.0, 1.0)
        ]
    )
    # the box is yawed with the ego: rotate the corner offsets
    c, s = math.cos(math.radians(EGO.yaw)), math.sin(math.radians(EGO.yaw))
    off = corners[:, :2] - [actor.x, actor.y]
    corners[:, :2] = np.stack([c * off[:, 0] - s * off[:, 1], s * off[:, 0] + c * off[:, 1]], 1) + [
        actor.x,
        actor.y,
    ]
    uv = np.array([_expected_pixel(cam, p)[:2] for p in corners])
    assert cols.min() == pytest.approx(uv[:, 0].min(), abs=1.5)
    assert cols.max() + 1 == pytest.approx(uv[:, 0].max(), abs=1.5)
    assert rows.min() == pytest.approx(uv[:, 1].min(), abs=1.5)
    assert rows.max() + 1 == pytest.approx(uv[:, 1].max(), abs=1.5)
    u, v, _ = _expected_pixel(cam, np.array([actor.x, actor.y, 0.5]))
    assert cols.mean() + 0.5 == pytest.approx(u, abs=3.0)
    assert rows.mean() + 0.5 == pytest.approx(v, abs=3.0)
    # 15 m ahead, 2 m right: not visible in the rear cameras
    for cid in ("CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT", "CAM_FRONT_LEFT"):
        assert not (out[cid].semantic == OCC["others"]).any(), cid


def test_box_behind_shows_in_back_camera_only(renderer) -> None:
    out = _render(renderer, [_actor(-15.0, 0.0)], want_semantic=True)
    assert (out["CAM_BACK"].semantic == OCC["others"]).sum() > 50
    for cid in ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT"):
        assert not (out[cid].semantic == OCC["others"]).any(), cid
    # the back camera looks backwards: a box 15 m behind and 3 m to the ego's right appears left of centre
    out = _render(renderer, [_actor(-15.0, 3.0)], want_semantic=True)
    cols = np.nonzero(out["CAM_BACK"].semantic == OCC["others"])[1]
    assert cols.mean() < W / 2 - 20


def test_ground_depth_is_planar_depth(renderer, rig) -> None:
    out = _render(renderer, want_depth=True, want_semantic=True)
    cam = rig[0]
    f = cam.focal
    frame = out["CAM_FRONT"]
    for row in (130, 150, 180, 220):
        for col in (50, 200, 390):
            v = row + 0.5  # pixel centre
            expected = f * cam.z / (v - H / 2.0)  # flat ground, level camera at height z
            assert frame.depth[row, col] == pytest.approx(expected, rel=0.02), (row, col)
    assert frame.semantic[200, 200] == ROAD and frame.semantic[200, 5] == TERRAIN
    # above the horizon: sky, at CARLA's 1000 m
    assert frame.semantic[10, 200] == SKY_CLASS and frame.depth[10, 200] == pytest.approx(1000.0)


def test_ego_is_not_drawn(renderer) -> None:
    out = _render(renderer, want_depth=True)
    for cid, frame in out.items():
        assert frame.depth.min() > 1.0, cid  # nothing inside the ego's box: the rig sees past its own car


def test_pose_matrix_matches_carla() -> None:
    from sim.embedded.render.math3d import pose_matrix

    for x, y, z, roll, pitch, yaw in [(1, 2, 3, 5, 10, 30), (-4, 0.5, 0, -20, 7, 200), (0, 0, 0, 0, 0, -90)]:
        t = carla.Transform(carla.Location(x, y, z), carla.Rotation(pitch=pitch, yaw=yaw, roll=roll))
        np.testing.assert_allclose(
            pose_matrix(x, y, z, roll, pitch, yaw), np.array(t.get_matrix()), atol=1e-5
        )


def test_far_actors_keep_their_class(renderer) -> None:
    """Beyond lod_distance actors are few-box stand-ins, still drawn with their class."""
    near = _render(renderer, [_actor(20.0, 0.0, "car", (2.45, 1.07, 0.76))], want_semantic=True)["CAM_FRONT"]
    far = _render(renderer, [_actor(60.0, 0.0, "car", (2.45, 1.07, 0.76))], want_semantic=True)["CAM_FRONT"]
    n_near, n_far = ((f.semantic == OCC["car"]).sum() for f in (near, far))
    assert n_far > 20
    assert n_far == pytest.approx(n_near * (20.0 / 60.0) ** 2, rel=0.35)  # same silhouette, 3x farther


# ----------------------------------------------------------------------------- formats and cameras
def test_mixed_camera_sizes_and_encodings() -> None:
    cams = [
        CameraSpec("rgb_small", 0.8, 0.0, 1.6, 0.0, 0.0, 0.0, 320, 180, 90.0, "rgb"),
        CameraSpec("depth", 0.8, 0.0, 1.6, 0.0, -10.0, 0.0, 200, 100, 90.0, "depth"),
        CameraSpec("sem", 0.8, 0.0, 1.6, 0.0, 0.0, 0.0, 160, 90, 90.0, "semantic_segmentation"),
        CameraSpec("tall", 0.0, 0.0, 2.0, 0.0, 0.0, 90.0, 64, 300, 60.0, "rgb"),
    ]
    with Renderer(_road_scene(), cams) as r:
        out = _render(r, [_actor(10.0, 0.0)])
    for c in cams:
        assert out[c.id].bgra.shape == (c.height, c.width, 4) and out[c.id].bgra.dtype == np.uint8
        assert (out[c.id].bgra[..., 3] == 255).all()
    assert out["rgb_small"].depth is None and out["rgb_small"].semantic is None
    d = out["depth"]
    assert d.depth.shape == (100, 200) and d.depth.dtype == np.float32
    # CARLA's depth decoding of the BGRA equals the float depth (24-bit quantisation of 1000 m: 0.06 mm)
    np.testing.assert_allclose(decode_depth(d.bgra), d.depth, atol=1e-3)
    s = out["sem"]
    assert s.semantic.dtype == np.uint8
    np.testing.assert_array_equal(s.bgra[..., 2], s.semantic)  # tag in red, as CARLA
    assert not s.bgra[..., :2].any()
    assert {ROAD, TERRAIN, SKY_CLASS, OCC["others"]} <= set(np.unique(s.semantic).tolist())


def test_stacked_cameras_share_one_pass_and_see_what_lone_cameras_see() -> None:
    """An RGB, a depth and a semantic camera on one mount with one size (a collection rig) render in one view of
    the atlas, and each gives exactly what it gives alone; in rain the depth and classes carry no streaks."""
    rgb = CameraSpec("rgb", 0.8, 0.0, 1.6, 0.0, 0.0, 0.0, 160, 90, 90.0, "rgb")
    depth = CameraSpec("d", 0.8, 0.0, 1.6, 0.0, 0.0, 0.0, 160, 90, 90.0, "depth")
    sem = CameraSpec("s", 0.8, 0.0, 1.6, 0.0, 0.0, 0.0, 160, 90, 90.0, "semantic_segmentation")
    actors = [_actor(10.0, 0.0)]
    with Renderer(_road_scene(), [rgb, depth, sem]) as stacked:
        assert stacked._color.size == (160, 90)  # one view, not three
        both = _render(stacked, actors, weather="HardRainNoon", frame=3)
    for cam in (rgb, depth, sem):
        with Renderer(_road_scene(), [cam]) as alone:
            one = _render(alone, actors, weather="HardRainNoon", frame=3)[cam.id]
        np.testing.assert_array_equal(both[cam.id].bgra, one.bgra)
    assert both["rgb"].depth is None
    assert np.isfinite(both["d"].depth).any() and both["s"].semantic.max() > 0


def test_bad_cameras_rejected() -> None:
    scene = _scene()
    with pytest.raises(ValueError, match="unknown kind 'lidar'"):
        Renderer(scene, [CameraSpec("x", 0, 0, 1, 0, 0, 0, 10, 10, 90, "lidar")])
    with pytest.raises(ValueError, match="at least one camera"):
        Renderer(scene, [])
    with pytest.raises(ValueError, match="'a' is used more than once"):
        Renderer(scene, [CameraSpec("a", 0, 0, 1, 0, 0, 0, 10, 10, 90)] * 2)
    with pytest.raises(ValueError, match="fov 180"):
        Renderer(scene, [CameraSpec("a", 0, 0, 1, 0, 0, 0, 10, 10, 180)])


def test_actor_classes_and_traffic_light_state(renderer) -> None:
    actors = [
        _actor(12.0, -2.0 + 1.0 * i, vclass=v, half=h)
        for i, (v, h) in enumerate(
            [("car", (2.45, 1.07, 0.76)), ("pedestrian", (0.25, 0.25, 0.9)), ("bicycle", (0.9, 0.3, 0.8))]
        )
    ]
    out = _render(renderer, actors[:1], want_semantic=True)
    assert (out["CAM_FRONT"].semantic == OCC["car"]).sum() > 200
    x, y = _ego_to_world(12.0, 0.0)
    # a light 12 m ahead facing the ego (yaw + 180)
    for state, channel in (("Red", 2), ("Green", 1)):
        tl = TrafficLightState(7, state, x, y, 0.0, EGO.yaw + 180.0, ((x, y), (x, y)), EGO.yaw)
        img = _render(renderer, lights=[tl])["CAM_FRONT"].bgra.astype(int)
        other = 1 if channel == 2 else 2
        lit = (img[..., channel] > 200) & (img[..., other] < 120)
        assert lit.sum() >= 2, state


# ----------------------------------------------------------------------------- weather
def test_night_is_darker_than_noon(renderer) -> None:
    noon = _lum(_render(renderer, weather="ClearNoon")["CAM_FRONT"].bgra).mean()
    night = _lum(_render(renderer, weather="ClearNight")["CAM_FRONT"].bgra).mean()
    assert night < 0.35 * noon


def test_street_lights_and_headlights_light_the_night(rig) -> None:
    x, y = _ego_to_world(8.0, 4.0)
    dark = Renderer(_road_scene(), rig[:1])
    lit = Renderer(_scene([_road_scene().mesh], lamps=np.array([[x, y, 7.0]])), rig[:1])
    try:
        a = _lum(_render(dark, weather="ClearNight")["CAM_FRONT"].bgra)
        b = _lum(_render(lit, weather="ClearNight")["CAM_FRONT"].bgra)
    finally:
        dark.release()
        lit.release()
    assert b[150:].mean() > a[150:].mean() + 3.0  # the ground near the lamp is lit
    # the ego's own headlights light the road just ahead more than its sides
    assert a[200:, 170:230].mean() > a[200:, :40].mean() + 5.0


def test_fog_lowers_far_contrast(rig) -> None:
    far = _box(*_ego_to_world(120.0, 0.0), (3.0, 3.0, 6.0), (0.05, 0.05, 0.05), OCC["manmade"])
    with Renderer(_scene([far]), rig[:1]) as r:
        clear = weather_from_name("ClearNoon")
        foggy = weather_from_name("ClearNoon")
        foggy.fog_density, foggy.fog_distance = 100.0, 0.0
        out = {
            k: _render(r, weather=w, want_semantic=True)["CAM_FRONT"] for k, w in (("c", clear), ("f", foggy))
        }
    box = out["c"].semantic == OCC["manmade"]
    sky = out["c"].semantic == SKY_CLASS
    assert box.sum() > 10

    def contrast(frame: CameraFrame) -> float:
        lum = _lum(frame.bgra)
        return abs(lum[box].mean() - lum[sky].mean())

    assert contrast(out["f"]) < 0.3 * contrast(out["c"])
    # near ground keeps more of its contrast than the far box
    assert _lum(out["f"].bgra)[box].mean() > _lum(out["c"].bgra)[box].mean() + 40


def test_rain_streaks_are_deterministic_per_frame(renderer) -> None:
    rain = weather_from_name("HardRainNoon")
    dry = weather_from_name("HardRainNoon")
    dry.precipitation = 0.0
    a = _render(renderer, weather=rain, frame=5)["CAM_FRONT"].bgra
    b = _render(renderer, weather=rain, frame=5)["CAM_FRONT"].bgra
    c = _render(renderer, weather=rain, frame=6)["CAM_FRONT"].bgra
    d = _render(renderer, weather=dry, frame=5)["CAM_FRONT"].bgra
    np.testing.assert_array_equal(a, b)
    assert (a != c).any(axis=2).mean() > 0.005  # the streaks moved
    assert (a != d).any(axis=2).mean() > 0.01  # streaks present
    assert _lum(d).mean() < _lum(_render(renderer, weather="ClearNoon")["CAM_FRONT"].bgra).mean()  # gloomier


def test_wetness_and_puddles_change_the_road(renderer) -> None:
    dry = weather_from_name("ClearNoon")
    wet = weather_from_name("ClearNoon")
    wet.wetness = 100.0
    puddly = weather_from_name("ClearNoon")
    puddly.precipitation_deposits = 100.0
    frames = {
        k: _render(renderer, weather=w, want_semantic=True)["CAM_FRONT"]
        for k, w in (("dry", dry), ("wet", wet), ("puddly", puddly))
    }
    road = frames["dry"].semantic == ROAD
    terrain = frames["dry"].semantic == TERRAIN
    near = road.copy()
    near[:170] = False  # the road close ahead (seen steeply, little sky reflection)
    lum = {k: _lum(f.bgra) for k, f in frames.items()}
    assert lum["wet"][near].mean() < lum["dry"][near].mean() - 10  # darker asphalt
    assert (np.abs(lum["wet"] - lum["dry"])[road] > 3).mean() > 0.8  # every part of the road looks different
    np.testing.assert_allclose(
        lum["wet"][terrain].mean(), lum["dry"][terrain].mean(), atol=1.0
    )  # grass unchanged
    changed = np.abs(lum["puddly"] - lum["dry"]) > 8
    assert changed[road].mean() > 0.2  # puddles over a good part of the road


def test_sun_and_clouds_change_the_sky(renderer) -> None:
    noon, sunset, cloudy = (
        _render(renderer, weather=n)["CAM_FRONT"].bgra[:80].astype(float).mean(axis=(0, 1))
        for n in ("ClearNoon", "ClearSunset", "CloudyNoon")
    )
    assert noon[0] > noon[2] + 20  # blue sky (B > R)
    assert sunset[2] / sunset[0] > noon[2] / noon[0] + 0.2  # warmer at sunset
    assert abs(cloudy[0] - cloudy[2]) < abs(noon[0] - noon[2])  # greyer under clouds


# ----------------------------------------------------------------------------- determinism
def test_bit_identical_across_calls_and_instances(rig) -> None:
    actors = [_actor(15.0, 2.0, vclass="car", half=(2.45, 1.07, 0.76)), _actor(-9.0, -3.0, vclass="bus")]
    weather = weather_from_name("SoftRainSunset")
    with Renderer(_road_scene(), rig) as a, Renderer(_road_scene(), rig) as b:
        first = a.render(EGO, actors, [], weather, frame=3, want_depth=True, want_semantic=True)
        again = a.render(EGO, actors, [], weather, frame=3, want_depth=True, want_semantic=True)
        other = b.render(EGO, actors, [], weather, frame=3, want_depth=True, want_semantic=True)
    for cid in first:
        for out in (again, other):
            np.testing.assert_array_equal(first[cid].bgra, out[cid].bgra)
            np.testing.assert_array_equal(first[cid].depth, out[cid].depth)
            np.testing.assert_array_equal(first[cid].semantic, out[cid].semantic)


# ----------------------------------------------------------------------------- robustness weathers
def test_low_sun_glare_washes_out_the_camera_facing_it(renderer) -> None:
    """The low sun straight ahead (LowSunGlare): a bright bloom around the sun, blacks lifted, contrast lower;
    the back camera, facing away, keeps its contrast."""
    from scenarios.weather_sets import named_weather

    from sim.embedded.render.atmosphere import atmosphere

    glare = named_weather("LowSunGlare")
    assert glare.sun_along_route and atmosphere(glare.params).glare > 0.5
    assert atmosphere(weather_from_name("ClearNoon")).glare == 0.0
    box = _actor(25.0, 4.0, half=(0.5, 1.5, 1.0), color=(0.05, 0.05, 0.05))
    ahead = _render(renderer, [box], weather=glare.for_heading(EGO.yaw))  # sun straight ahead
    behind = _render(renderer, [box], weather=glare.for_heading(EGO.yaw + 180.0))  # same sun behind the ego
    fa, fb = _lum(behind["CAM_FRONT"].bgra), _lum(ahead["CAM_FRONT"].bgra)
    v = H // 2 - round(W / 2 / math.tan(math.radians(35.0)) * math.tan(math.radians(4.0)))  # the sun's row
    assert fb[v - 5 : v + 5, W // 2 - 10 : W // 2 + 10].mean() > 235  # a saturated bloom around the sun
    assert np.percentile(fb, 5) > np.percentile(fa, 5) + 25  # blacks lifted (the dark box, the road)
    sem = _render(renderer, [box], weather=glare.params, want_semantic=True)["CAM_FRONT"].semantic
    on_box, on_road = sem == box.occ_class, sem == ROAD
    assert on_box.sum() > 50

    def contrast(lum: np.ndarray) -> float:  # Michelson contrast of the dark box against the road
        b, r = lum[on_box].mean(), lum[on_road].mean()
        return abs(r - b) / (r + b)

    assert contrast(fb) < 0.75 * contrast(fa)  # washed-out contrast (0.67x measured)
    # the camera facing away keeps its image: the glare is a lens effect of the camera that sees the sun
    assert abs(np.percentile(_lum(ahead["CAM_BACK"].bgra), 5) - np.percentile(_lum(behind["CAM_FRONT"].bgra), 5)) < 20


def test_night_without_street_lights_is_darker(rig) -> None:
    from scenarios.weather_sets import named_weather

    x, y = _ego_to_world(8.0, 4.0)
    r = Renderer(_scene([_road_scene().mesh], lamps=np.array([[x, y, 7.0]])), rig[:1])
    try:
        night = named_weather("ClearNightNoStreetLights")
        assert not night.street_lights
        lit = _lum(_render(r, weather=night.params)["CAM_FRONT"].bgra)
        dark = _lum(_render(r, weather=night.params, street_lights=night.street_lights)["CAM_FRONT"].bgra)
    finally:
        r.release()
    assert lit[150:].mean() > dark[150:].mean() + 3.0
    # the ego's headlights still light the road ahead
    assert dark[200:, 170:230].mean() > dark[200:, :40].mean() + 5.0
