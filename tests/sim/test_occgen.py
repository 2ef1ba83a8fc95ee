"""Generated towns OccGen-<seed>: determinism, variety, carla.Map + netconvert, SUMO alignment, names, caches.

Everything runs the real generator, carla.Map, netconvert and sumolib; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import carla
import numpy as np
import pytest

from sim.embedded.cache import cached_static_scene
from sim.embedded.maps import load_town, resolve_town
from sim.embedded.sumo_net import SumoCoords, convert_network
from sim.embedded.towns.occgen import features, occgen_spec, occgen_xodr
from sim.protocol import TownNotFoundError
from sim.types import OCC

REPO = Path(__file__).resolve().parents[2]
SEEDS = range(20)
MULTI_LANE_SEED = 0  # 3-lane arterial, 2-lane ring, parking lanes, signalised and unsignalised junctions
HIGHWAY_SEED = 1  # a 3+3-lane highway at 90 km/h with an off-ramp and an on-ramp


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("occvla_cache")


def test_same_seed_is_byte_identical_and_seeds_differ(cache: Path) -> None:
    a = occgen_xodr(7)
    assert a == occgen_xodr(7)
    # a fresh interpreter (new hash seed, nothing cached) writes the same bytes
    code = "import sys; from sim.embedded.towns.occgen import occgen_xodr; sys.stdout.write(occgen_xodr(7))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    assert out.stdout == a
    # resolving the name writes exactly that text to the cache
    assert resolve_town("OccGen-7", cache_dir=cache).read_text(encoding="utf-8") == a
    digests = {hashlib.sha256(occgen_xodr(s).encode()).hexdigest() for s in SEEDS}
    assert len(digests) == len(SEEDS)


def test_features_across_seeds() -> None:
    """Over seeds 0-19: signalised and unsignalised 4-ways, T junctions, 1/2/3-lane roads, curves, parking,
    speed limits from 30 up to at least 60 km/h; and each town has junctions of more than one kind."""
    total: dict[str, int] = {}
    speeds = set()
    for s in SEEDS:
        f = features(occgen_spec(s))
        assert f["signalised_4way"] + f["signalised_t"] >= 1, f"OccGen-{s} has no traffic light"
        assert f["unsignalised_t"] + f["unsignalised_4way"] >= 1, f"OccGen-{s} has no unsignalised junction"
        speeds |= {f["min_speed_kmh"], f["max_speed_kmh"]}
        for k, v in f.items():
            total[k] = total.get(k, 0) + v
    for key in (
        "signalised_4way",
        "unsignalised_4way",
        "signalised_t",
        "unsignalised_t",
        "curved_edges",
        "parking_edges",
        "lanes1_edges",
        "lanes2_edges",
        "lanes3_edges",
    ):
        assert total[key] > 0, f"no {key} in seeds 0-19"
    assert min(speeds) == 30 and max(speeds) == 90
    assert total["on_ramps"] > 0 and total["off_ramps"] > 0, "no highway ramps in seeds 0-19"
    assert features(occgen_spec(HIGHWAY_SEED))["on_ramps"] == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_town_parses_in_carla_map_and_converts(seed: int, cache: Path) -> None:
    town = load_town(f"OccGen-{seed}", cache_dir=cache)
    cmap = town.map
    wps = cmap.generate_waypoints(5.0)
    assert len(wps) > 200
    # every driving lane continues: no dead ends in a generated town, but where an acceleration lane has
    # tapered away (its last metres are narrower than a car)
    assert all(w.next(3.0) or w.lane_width < 1.2 for w in wps if w.lane_type == carla.LaneType.Driving)
    spec = occgen_spec(seed)
    lights = cmap.get_all_landmarks_of_type("1000001")
    signs = cmap.get_all_landmarks_of_type("274")
    assert len(lights) >= 3 and len(signs) == sum(1 if e.style.oneway else 2 for e in spec.edges)
    assert {round(lm.value) for lm in signs} == {round(e.style.speed_kmh) for e in spec.edges}
    net = convert_network(town.xodr_path, cache / "sumo")
    assert net.stat().st_size > 0


@pytest.mark.parametrize("seed", [MULTI_LANE_SEED, HIGHWAY_SEED])
def test_sumo_lanes_align_with_carla_map_on_a_multi_lane_town(seed: int, cache: Path) -> None:
    """SUMO lane centre lines lie within 0.5 m of the carla.Map lane polylines, lane counts match the spec and
    no SUMO vehicle lane lies on a parking lane; on the highway town too (ramps, acceleration lanes)."""
    import sumolib

    town = load_town(f"OccGen-{seed}", cache_dir=cache)
    spec = occgen_spec(seed)
    f = features(spec)
    assert f["lanes3_edges"] > 0 and (f["parking_edges"] > 0 or f["on_ramps"] > 0)
    net_path = convert_network(town.xodr_path, cache / "sumo")
    coords = SumoCoords.from_net_file(net_path)
    net = sumolib.net.readNet(str(net_path))
    seg_a, seg_b, seg_w = [], [], []
    for wp in town.map.generate_waypoints(1.0):
        for nxt in wp.next(1.0):
            seg_a.append((wp.transform.location.x, wp.transform.location.y))
            seg_b.append((nxt.transform.location.x, nxt.transform.location.y))
            seg_w.append(wp.lane_width)
    a, b, w = np.array(seg_a), np.array(seg_b), np.array(seg_w)
    lanes_per_road = {
        str(i + 1): e.style.lanes for i, e in enumerate(spec.edges) if not (e.aux_start or e.aux_end)
    }
    pts, widths, checked = [], [], 0
    for edge in net.getEdges():
        if edge.getFunction() == "internal":
            continue
        car_lanes = [ln for ln in edge.getLanes() if "passenger" in ln.getPermissions()]
        road = edge.getID().lstrip("-").split(".")[0]
        if road in lanes_per_road:
            assert len(car_lanes) == lanes_per_road[road], f"SUMO edge {edge.getID()}"
            checked += 1
        for ln in car_lanes:
            shape = coords.to_carla_xy(np.array(ln.getShape()))
            seg = np.hypot(*np.diff(shape, axis=0).T)
            cum = np.concatenate([[0.0], np.cumsum(seg)])
            # skip the last metre at each end: carla's 1 m waypoint polylines start up to 1 m into a lane that
            # no connector feeds (the middle lane leaving a T junction), where SUMO's shape starts at s = 0
            t = np.arange(1.0, cum[-1] - 1.0, 1.0)
            pts.append(np.stack([np.interp(t, cum, shape[:, 0]), np.interp(t, cum, shape[:, 1])], 1))
            widths.append(np.full(len(t), ln.getWidth()))
    assert checked >= sum(
        1 if e.style.oneway else 2 for e in spec.edges if str(spec.edges.index(e) + 1) in lanes_per_road
    )
    p, sumo_w = np.concatenate(pts), np.concatenate(widths)  # (N, 2), (N,)
    d = b - a
    dd = np.maximum((d**2).sum(1), 1e-12)
    dist, near = np.empty(len(p)), np.empty(len(p), int)
    for s in range(0, len(p), 256):
        q = p[s : s + 256, None, :]
        tt = np.clip(((q - a) * d).sum(-1) / dd, 0.0, 1.0)
        all_d = np.sqrt(((a + tt[..., None] * d - q) ** 2).sum(-1))  # (256, S)
        dist[s : s + 256], near[s : s + 256] = all_d.min(1), all_d.argmin(1)
    assert np.median(dist) < 0.1
    # on the taper of an auxiliary lane (width going to or from 0) SUMO keeps a constant-width lane beside the
    # same inner border: its centre is then half the width difference out; everywhere else within 0.5 m
    excess = dist - np.maximum(sumo_w - w[near], 0.0) / 2
    assert excess.max() < 0.5, f"max SUMO-CARLA lane distance {dist[excess.argmax()]:.2f} m"


@pytest.mark.parametrize(
    "name", ["OccGen-x", "OccGen--1", "OccGen-", "OccGen-1.5", "/Game/Carla/Maps/OccGen-ab"]
)
def test_bad_generated_names_give_one_line(name: str, cache: Path) -> None:
    with pytest.raises(TownNotFoundError) as exc:
        resolve_town(name, cache_dir=cache)
    msg = str(exc.value)
    assert "\n" not in msg and "seed must be a non-negative integer" in msg


def test_cli_bad_seed_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sim.embedded.towns.occgen", "3", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0 and (tmp_path / "OccGen-3.xodr").read_text() == occgen_xodr(3)
    proc = subprocess.run(
        [sys.executable, "-m", "sim.embedded.towns.occgen", "-5", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1


def test_map_dir_wins_over_the_generator(tmp_path: Path, cache: Path) -> None:
    own = tmp_path / "OccGen-3.xodr"
    own.write_text(occgen_xodr(4), encoding="utf-8")  # a user's file of that name shadows the generated town
    assert resolve_town("OccGen-3", map_dir=tmp_path, cache_dir=cache) == own


def test_static_scene_is_cached_on_disk_with_parked_cars(cache: Path) -> None:
    town = load_town(f"OccGen-{MULTI_LANE_SEED}", cache_dir=cache)
    built = cached_static_scene(town, 0, cache)
    files = list((cache / "scenes").glob(f"OccGen-{MULTI_LANE_SEED}-*.npz"))
    assert len(files) == 1
    loaded = cached_static_scene(town, 0, cache)
    assert loaded is not built
    np.testing.assert_array_equal(loaded.ground.classes, built.ground.classes)
    np.testing.assert_array_equal(loaded.mesh.positions, built.mesh.positions)
    np.testing.assert_array_equal(loaded.props.centers, built.props.centers)
    assert loaded.bounds == built.bounds
    cars = loaded.props.centers[loaded.props.classes == OCC["car"]]
    assert len(cars) > 5
    for x, y, _ in cars:  # parked cars stand on parking lanes, clear of every driving lane
        wp = town.map.get_waypoint(
            carla.Location(float(x), float(y), 0.0), project_to_road=False, lane_type=carla.LaneType.Any
        )
        assert wp is not None and wp.lane_type == carla.LaneType.Parking


def _sampled_vehicles(town, cfg, cache: Path, ego):
    """(SUMO vehicle, its carla.Map driving waypoint or None) every 0.5 s over 120 s of traffic, the ego held at
    ``ego``; the traffic's lane limits must come from the map."""
    from sim.embedded.traffic import TrafficSim

    with TrafficSim(town.xodr_path, cfg, cache / "sumo") as ts:
        assert ts.lane_limits
        for k in range(2400):  # 120 s
            ts.set_ego(ego, 0.0)
            ts.step()
            if k % 10:
                continue
            for a in ts.actors():
                if a.category == "vehicle":
                    yield a, town.map.get_waypoint(carla.Location(a.x, a.y, 0.0), lane_type=carla.LaneType.Driving)


def test_sumo_traffic_flows_and_changes_lanes_on_a_multi_lane_town(cache: Path) -> None:
    """NPCs keep moving and change lanes on the multi-lane roads of a generated town (lanes read from carla.Map)."""
    from sim.protocol import TrafficConfig
    from sim.types import Pose

    town = load_town(f"OccGen-{MULTI_LANE_SEED}", cache_dir=cache)
    cfg = TrafficConfig(vehicles=40, walkers=0, seed=1, radius=120.0)
    lanes: dict[int, tuple[int, int]] = {}
    changes, speeds = 0, []
    for a, wp in _sampled_vehicles(town, cfg, cache, Pose(200.0, 236.0, 0.0, 0.0)):
        if wp is None or wp.is_junction:
            continue
        prev = lanes.get(a.id)
        if prev and prev[0] == wp.road_id and prev[1] != wp.lane_id and prev[1] * wp.lane_id > 0:
            changes += 1  # same road, same direction, another lane
        lanes[a.id] = (wp.road_id, wp.lane_id)
        speeds.append(a.speed)
    assert changes >= 10, changes
    assert float(np.mean(speeds)) > 1.5  # moving, not jammed at the junctions


def _road_id(spec, name: str) -> int:
    """The OpenDRIVE road id of a spec edge (road ids follow spec.edges)."""
    return next(i + 1 for i, e in enumerate(spec.edges) if e.name == name)


def _outermost(wp: carla.Waypoint) -> bool:
    right = wp.get_right_lane()
    return right is None or right.lane_type != carla.LaneType.Driving


def test_highway_speed_limit_is_read_by_carla_map_and_sumo(cache: Path) -> None:
    """The 90 km/h of the highway stretch: a '274' landmark ahead of a highway lane in carla.Map, and the speed
    of the SUMO lanes under it."""
    import sumolib

    town = load_town(f"OccGen-{HIGHWAY_SEED}", cache_dir=cache)
    spec = occgen_spec(HIGHWAY_SEED)
    road = _road_id(spec, "Highway")
    wp = town.map.get_waypoint_xodr(road, -1, 1.0)
    assert wp is not None and wp.lane_type == carla.LaneType.Driving
    marks = wp.get_landmarks_of_type(10.0, "274", False)
    assert marks and round(marks[0].value) == 90
    net_path = convert_network(town.xodr_path, cache / "sumo")
    coords = SumoCoords.from_net_file(net_path)
    net = sumolib.net.readNet(str(net_path))
    loc = wp.next(50.0)[0].transform.location
    x, y = coords.to_sumo_xy(np.array([[loc.x, loc.y]]))[0]
    lane, dist = min(
        (
            (ln, d)
            for ln, d in net.getNeighboringLanes(float(x), float(y), 3.0)
            if "passenger" in ln.getPermissions()
        ),
        key=lambda p: p[1],
    )
    assert dist < 1.0 and lane.getSpeed() == pytest.approx(90 / 3.6, abs=0.01)
    # town lanes keep their own, lower limits
    speeds = {
        round(ln.getSpeed() * 3.6)
        for e in net.getEdges()
        for ln in e.getLanes()
        if "passenger" in ln.getPermissions()
    }
    assert 90 in speeds and {round(e.style.speed_kmh) for e in spec.edges} <= speeds


def test_ramps_meet_the_outermost_lane_over_auxiliary_lanes(cache: Path) -> None:
    """The off-ramp is reached only from a deceleration lane right of the through lanes; the on-ramp leads into
    an acceleration lane, the outermost lane, that ends after a taper (so merging is a lane change). In SUMO the
    ramp junctions have no conflicting movements and stay priority junctions (no stop on the highway)."""
    import xml.etree.ElementTree as ET

    town = load_town(f"OccGen-{HIGHWAY_SEED}", cache_dir=cache)
    spec = occgen_spec(HIGHWAY_SEED)
    cmap = town.map
    lanes = next(e.style.lanes for e in spec.edges if e.name == "Highway")

    off = cmap.get_waypoint_xodr(_road_id(spec, "Off-ramp"), -1, 0.5)
    (conn,) = off.previous(1.0)
    assert conn.is_junction
    (decel,) = conn.previous(conn.s + 1.0)  # through the connector onto the road before it
    assert (
        decel.road_id == _road_id(spec, "Highway W") and decel.lane_id == -(lanes + 1) and _outermost(decel)
    )
    assert decel.get_left_lane().lane_id == -lanes  # the through lanes go on beside it
    on = cmap.get_waypoint_xodr(_road_id(spec, "On-ramp"), -1, 0.5)
    ahead = on
    while ahead.road_id == on.road_id or ahead.is_junction:
        (ahead,) = ahead.next(2.0)
    assert (
        ahead.road_id == _road_id(spec, "Highway E") and ahead.lane_id == -(lanes + 1) and _outermost(ahead)
    )
    assert ahead.lane_change & carla.LaneChange.Left and ahead.get_left_lane().lane_id == -lanes
    travelled = 0.0
    while ahead.next(2.0) and ahead.lane_id == -(lanes + 1):
        (ahead,) = ahead.next(2.0)
        travelled += 2.0
    assert 60.0 < travelled < 100.0 and ahead.lane_width < 1.2  # the acceleration lane tapers away and ends

    net_path = convert_network(town.xodr_path, cache / "sumo")
    root = ET.parse(net_path).getroot()
    ids = {n: str(1000 + i) for i, n in enumerate(spec.nodes)}
    kinds = {j.get("id"): j.get("type") for j in root.iter("junction")}
    assert kinds[ids["D"]] == "priority" and kinds[ids["M"]] == "priority"
    assert not any(
        ln.get("allow") == "pedestrian"
        for e in root.iter("edge")
        if e.get("id") == str(_road_id(spec, "Highway"))
        for ln in e.iter("lane")
    )


def test_speed_signs_face_their_own_lanes(cache: Path) -> None:
    """Every road's '274' sign is read by carla.Map at the start of that road for each direction of travel (a sign
    given to the opposite direction would set the limit at the road's far end)."""
    town = load_town(f"OccGen-{HIGHWAY_SEED}", cache_dir=cache)
    spec = occgen_spec(HIGHWAY_SEED)
    for i, e in enumerate(spec.edges):
        right = town.map.get_waypoint_xodr(i + 1, -1, 0.5)
        ends = [right]
        if not e.style.oneway:
            ends.append(town.map.get_waypoint_xodr(i + 1, 1, _road_length(town, i + 1) - 0.5))
        for wp in ends:
            marks = wp.get_landmarks_of_type(5.0, "274", False)
            assert [round(m.value) for m in marks] == [round(e.style.speed_kmh)], (
                e.name or f"{e.a}-{e.b}",
                wp.lane_id,
            )


def _road_length(town, road_id: int) -> float:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(town.xodr_path.read_text(encoding="utf-8"))
    return float(next(r for r in root.iter("road") if r.get("id") == str(road_id)).get("length"))


def test_sumo_traffic_keeps_lane_limits_and_merges_from_the_on_ramp(cache: Path) -> None:
    """SUMO's NPCs drive speed_fraction of each lane's own limit (90 km/h highway, 60-70 km/h links), and traffic
    from the on-ramp flows through the acceleration lane onto the through lanes (no stop at the ramp junction)."""
    from sim.protocol import TrafficConfig
    from sim.types import Pose

    town = load_town(f"OccGen-{HIGHWAY_SEED}", cache_dir=cache)
    spec = occgen_spec(HIGHWAY_SEED)
    names = {i + 1: e.name for i, e in enumerate(spec.edges) if e.name}
    limits = {e.name: e.style.speed_kmh / 3.6 for e in spec.edges if e.name}
    lanes = next(e.style.lanes for e in spec.edges if e.name == "Highway")
    mx, my = spec.nodes["M"]
    cfg = TrafficConfig(vehicles=40, walkers=0, seed=1, radius=150.0)
    speeds: dict[str, list[float]] = {}
    from_ramp: set[int] = set()
    merged: set[int] = set()
    for a, wp in _sampled_vehicles(town, cfg, cache, Pose(mx - 60.0, my - 40.0, 0.0, 0.0)):  # off the road
        name = names.get(wp.road_id) if wp is not None else None
        if name is None:
            continue
        speeds.setdefault(name, []).append(a.speed)
        if name == "On-ramp":
            from_ramp.add(a.id)
        elif name == "Highway E" and a.id in from_ramp and -lanes <= wp.lane_id < 0:
            merged.add(a.id)
    for name in ("Highway", "Highway E"):
        top = float(np.percentile(speeds[name], 90))
        assert top == pytest.approx(cfg.speed_fraction * limits[name], rel=0.05), (name, top)
    assert len(merged) >= 3, (len(from_ramp), len(merged))


def test_writer_refuses_ramps_it_cannot_build_in_one_line() -> None:
    """Auxiliary lanes longer than their road, or on a one-way ramp, are refused with one line naming the edge."""
    import dataclasses

    from sim.embedded.towns.generate import build_network

    spec = occgen_spec(HIGHWAY_SEED)
    for change in ({"aux_start": 5000.0}, {"style": dataclasses.replace(spec.edges[0].style, oneway=True)}):
        edges = tuple(dataclasses.replace(e, **change) if e.name == "Highway E" else e for e in spec.edges)
        with pytest.raises(ValueError) as exc:
            build_network(dataclasses.replace(spec, edges=edges))
        msg = str(exc.value)
        assert "\n" not in msg and "M-J3_1" in msg
