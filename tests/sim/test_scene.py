"""Static scene: ground classes follow the lanes, props stay off the road, the mesh is well formed and seeded."""

from __future__ import annotations

import math
import time
from pathlib import Path

import carla
import cv2
import numpy as np
import pytest

from sim.embedded.maps import load_town
from sim.embedded.scene import SceneConfig, build_static_scene, sample_lanes
from sim.types import FREE, OCC, StaticScene

TOWN01 = Path(__file__).resolve().parents[3] / "shared" / "carla" / "maps" / "Town01.xodr"
DRIVE, SIDEWALK, TERRAIN = OCC["driveable_surface"], OCC["sidewalk"], OCC["terrain"]


@pytest.fixture(scope="module")
def occ01():
    town = load_town("OccTown01")
    return town, build_static_scene(town, seed=0)


@pytest.fixture(scope="module")
def town01():
    if not TOWN01.is_file():
        pytest.skip("CARLA Town01 not in ../shared")
    town = load_town("Town01", TOWN01.parent)
    t0 = time.perf_counter()
    scene = build_static_scene(town, seed=0)
    return town, scene, time.perf_counter() - t0


def _driving_waypoints(cmap: carla.Map) -> list[carla.Waypoint]:
    return [w for w in cmap.generate_waypoints(3.0)]


def _footprint_cells(scene: StaticScene, i: int) -> np.ndarray:
    """Ground classes of every raster cell under prop i's footprint."""
    g = scene.ground
    c, e, yaw = scene.props.centers[i], scene.props.extents[i], math.radians(float(scene.props.yaws[i]))
    f, r = np.array([math.cos(yaw), math.sin(yaw)]), np.array([-math.sin(yaw), math.cos(yaw)])
    corners = np.array([c[:2] + f * e[0] * sx + r * e[1] * sy for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    px = np.round((corners - (g.x_min, g.y_min)) / g.resolution - 0.5).astype(np.int32)
    mask = np.zeros(g.classes.shape, np.uint8)
    cv2.fillPoly(mask, [px.reshape(-1, 1, 2)], 1)
    return g.classes[mask.astype(bool)]


def _check_scene(town, scene: StaticScene) -> None:
    g = scene.ground
    # ground under the centre of every driving lane is driveable
    wps = _driving_waypoints(town.map)
    xs = np.array([w.transform.location.x for w in wps])
    ys = np.array([w.transform.location.y for w in wps])
    cls = g.lookup(xs, ys)
    assert (cls == DRIVE).mean() > 0.995, np.unique(cls, return_counts=True)
    # sidewalks: the sidewalk lane beside driving lanes is class sidewalk in the raster
    side = []
    for w in wps[::5]:
        n = w
        for _ in range(4):
            n = n.get_right_lane()
            if n is None:
                break
            if n.lane_type == carla.LaneType.Sidewalk:
                side.append((n.transform.location.x, n.transform.location.y))
                break
    assert len(side) > 20
    side = np.array(side)
    assert (g.lookup(side[:, 0], side[:, 1]) == SIDEWALK).mean() > 0.97
    # the raster holds only ground classes, FREE outside
    assert set(np.unique(g.classes).tolist()) <= {DRIVE, OCC["other_flat"], SIDEWALK, TERRAIN}
    assert g.lookup(np.array([g.x_min - 5.0]), np.array([g.y_min - 5.0]))[0] == FREE
    x0, y0, x1, y1 = scene.bounds
    assert x0 < xs.min() and y0 < ys.min() and x1 > xs.max() and y1 > ys.max()
    # props never stand on the road
    assert len(scene.props) > 50
    assert set(np.unique(scene.props.classes).tolist()) == {OCC["manmade"], OCC["vegetation"]}
    for i in range(len(scene.props)):
        under = _footprint_cells(scene, i)
        assert not (under == DRIVE).any(), f"prop {i} at {scene.props.centers[i]} overlaps the road"
    # street lamps: heads above the sidewalks, ~7 m up
    assert scene.street_lights.shape[1] == 3 and len(scene.street_lights) > 20
    assert np.all(scene.street_lights[:, 2] > 5.0)


def _check_mesh(scene: StaticScene) -> None:
    m = scene.mesh
    n = len(m.positions)
    assert n % 3 == 0 and 0 < n // 3 <= 150_000
    assert m.positions.shape == (n, 3) and m.positions.dtype == np.float32
    assert m.normals.shape == (n, 3) and m.normals.dtype == np.float32
    assert m.colors.shape == (n, 3) and m.colors.dtype == np.float32
    assert m.semantic.shape == (n,) and m.semantic.dtype == np.uint8
    assert np.all(np.isfinite(m.positions))
    assert np.allclose(np.linalg.norm(m.normals, axis=1), 1.0, atol=1e-4)
    assert m.colors.min() >= 0.0 and m.colors.max() <= 1.0
    sem = set(np.unique(m.semantic).tolist())
    assert {DRIVE, SIDEWALK, TERRAIN, OCC["manmade"], OCC["vegetation"]} <= sem
    tri = m.positions.reshape(-1, 3, 3).astype(np.float64)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(cross, axis=1)
    ok = area2 > 1e-8
    facing = np.einsum("ij,ij->i", cross[ok], m.normals[0::3][ok].astype(np.float64))
    assert np.all(facing > 0)  # winding agrees with the normals
    # mesh and props agree: every prop box has drawn geometry of its class inside it
    inside = np.zeros(len(scene.props), bool)
    cen = tri.mean(1)
    for i, (c, e, cl) in enumerate(zip(scene.props.centers, scene.props.extents, scene.props.classes)):
        near = (np.abs(cen[:, :2] - c[:2]).max(1) < np.hypot(e[0], e[1]) + 0.5) & (m.semantic[0::3] == cl)
        inside[i] = near.any()
    assert inside.all()
    # x east, y south, z up: the ground lies at z ~ 0 and nothing is underground
    assert m.positions[:, 2].min() > -0.5


def test_occtown01_scene(occ01):
    town, scene = occ01
    assert scene.town == "OccTown01"
    _check_scene(town, scene)
    _check_mesh(scene)
    # lane markings: thin white and yellow quads on the road
    drive = scene.mesh.semantic == DRIVE
    cols = scene.mesh.colors[drive]
    assert (cols.min(1) > 0.85).any()  # white
    assert ((cols[:, 0] > 0.8) & (cols[:, 2] < 0.3)).any()  # yellow centre line
    # sidewalks are raised
    side = scene.mesh.positions[scene.mesh.semantic == SIDEWALK]
    assert abs(float(side[:, 2].max()) - 0.15) < 1e-3


def test_scene_is_deterministic_per_seed():
    town = load_town("OccTown02")
    a, b = build_static_scene(town, seed=3), build_static_scene(town, seed=3)
    for f in ("positions", "normals", "colors", "semantic"):
        assert np.array_equal(getattr(a.mesh, f), getattr(b.mesh, f))
    assert np.array_equal(a.props.centers, b.props.centers)
    assert np.array_equal(a.ground.classes, b.ground.classes)
    assert np.array_equal(a.street_lights, b.street_lights)
    c = build_static_scene(town, seed=4)
    assert np.array_equal(a.ground.classes, c.ground.classes)  # the ground comes from the map only
    assert len(a.props) != len(c.props) or not np.array_equal(a.props.centers, c.props.centers)


def test_lane_sampling_covers_every_lane_type():
    strips = sample_lanes(load_town("OccTown02"), SceneConfig())
    types = {s.lane_type for s in strips}
    assert {"driving", "sidewalk"} <= types
    for s in strips:
        assert s.center.shape[1] == 3 and len(s.center) == len(s.yaw) == len(s.width) >= 2
        assert np.all(s.width > 0)


def test_carla_town01_scene(town01):
    town, scene, seconds = town01
    assert seconds < 15.0
    _check_scene(town, scene)
    _check_mesh(scene)
