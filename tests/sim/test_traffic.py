"""SUMO traffic for the embedded simulator: network conversion, SUMO<->CARLA alignment, NPC behaviour.

Uses CARLA's Town01 from ../shared/carla (skipped when absent) and the project's own towns when they exist.
Everything runs the real netconvert, libsumo and carla.Map; nothing is mocked.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import carla
import libsumo
import numpy as np
import pytest

from sim.embedded.sumo_net import NetConvertError, SumoCoords, convert_network
from sim.embedded.traffic import VEHICLE_CLASSES, TrafficError, TrafficSim
from sim.protocol import TrafficConfig
from sim.types import DEFAULT_EXTENTS, EGO_EXTENT, Pose

REPO = Path(__file__).resolve().parents[2]
SHARED_MAPS = REPO.parent / "shared" / "carla" / "maps"
TOWN01 = SHARED_MAPS / "Town01.xodr"
TOWN01_NET = SHARED_MAPS / "Town01.net.xml"
OWN_TOWN = REPO / "sim" / "embedded" / "towns" / "OccTown01.xodr"
ROUTE0_START = Pose(338.70, 226.75, 0.0, 270.0)  # leaderboard-1.0 route 0 start, on a Town01 lane

needs_town01 = pytest.mark.skipif(not TOWN01.is_file(), reason=f"{TOWN01} not present")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sumo_cache")


@pytest.fixture(scope="module")
def town01_map() -> carla.Map:
    return carla.Map("Town01", TOWN01.read_text())


def _some_town() -> Path:
    if OWN_TOWN.is_file():
        return OWN_TOWN
    if TOWN01.is_file():
        return TOWN01
    pytest.skip("no town available (neither the project's OccTown01 nor CARLA's Town01)")


def _polyline_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point (N, 2) to the nearest of the segments a[i]-b[i] (M, 2)."""
    d = b - a  # (M, 2)
    dd = np.maximum((d**2).sum(1), 1e-12)  # (M,)
    out = np.empty(len(points))
    for s in range(0, len(points), 256):
        p = points[s : s + 256, None, :]  # (C, 1, 2)
        t = np.clip(((p - a) * d).sum(-1) / dd, 0.0, 1.0)  # (C, M)
        proj = a + t[..., None] * d  # (C, M, 2)
        out[s : s + 256] = np.sqrt(((proj - p) ** 2).sum(-1)).min(1)
    return out


def _resample(shape: np.ndarray, step: float) -> np.ndarray:
    seg = np.hypot(*np.diff(shape, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.arange(0.0, cum[-1], step)
    return np.stack([np.interp(t, cum, shape[:, 0]), np.interp(t, cum, shape[:, 1])], axis=1)


def _corners(x: float, y: float, yaw: float, hx: float, hy: float) -> np.ndarray:
    c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    f, r = np.array([c, s]) * hx, np.array([-s, c]) * hy
    p = np.array([x, y])
    return np.array([p + f + r, p + f - r, p - f - r, p - f + r])  # (4, 2)


def _boxes_overlap(p: np.ndarray, q: np.ndarray) -> bool:
    """Separating-axis test for two convex quads (4, 2)."""
    for poly in (p, q):
        for i in range(4):
            e = poly[(i + 1) % 4] - poly[i]
            n = np.array([-e[1], e[0]])
            a, b = p @ n, q @ n
            if a.max() < b.min() or b.max() < a.min():
                return False
    return True


# ----------------------------------------------------------------------------- network conversion
@needs_town01
def test_convert_network_caches_and_keeps_carla_net_offset(cache_dir: Path) -> None:
    net = convert_network(TOWN01, cache_dir)
    assert net.is_file() and net.parent == cache_dir
    mtime = net.stat().st_mtime_ns
    assert convert_network(TOWN01, cache_dir) == net and net.stat().st_mtime_ns == mtime  # cache hit
    ours = SumoCoords.from_net_file(net)
    assert (ours.off_x, ours.off_y) == pytest.approx((0.06, 328.61), abs=1e-6)
    if TOWN01_NET.is_file():  # CARLA's own conversion uses the same convention
        theirs = SumoCoords.from_net_file(TOWN01_NET)
        assert (ours.off_x, ours.off_y) == pytest.approx((theirs.off_x, theirs.off_y), abs=1e-6)


def test_convert_network_bad_input(tmp_path: Path) -> None:
    with pytest.raises(NetConvertError, match="not found"):
        convert_network(tmp_path / "missing.xodr", tmp_path)
    bad = tmp_path / "broken.xodr"
    bad.write_text("<OpenDRIVE><header/><road id='1' length='oops'>")
    with pytest.raises(NetConvertError, match="netconvert failed on .*broken.xodr") as err:
        convert_network(bad, tmp_path)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.glob("*.net.xml")) and not list(
        tmp_path.glob(".*net.xml")
    )  # nothing half-written


def test_sumo_coords_round_trip() -> None:
    c = SumoCoords(0.06, 328.61)
    assert c.to_carla(0.06, 328.61) == (0.0, 0.0)
    assert c.to_carla(10.06, 318.61) == pytest.approx((10.0, 10.0))  # SUMO south (-y) is CARLA +y
    pts = np.array([[1.0, 2.0], [300.0, -50.0]])
    np.testing.assert_allclose(c.to_sumo_xy(c.to_carla_xy(pts)), pts)
    assert c.to_sumo(*c.to_carla(5.0, 7.0)) == pytest.approx((5.0, 7.0))
    # SUMO 0 deg = north = CARLA -y = yaw -90; SUMO 90 (east) = yaw 0; SUMO 180 (south) = yaw 90
    assert [c.to_carla_yaw(a) for a in (0.0, 90.0, 180.0, 270.0)] == pytest.approx([-90.0, 0.0, 90.0, -180.0])
    yaws = np.array([-179.0, -90.0, 0.0, 45.0, 179.0])
    np.testing.assert_allclose(c.to_carla_yaw(c.to_sumo_angle(yaws)), yaws)


@needs_town01
def test_sumo_lanes_align_with_carla_map(cache_dir: Path, town01_map: carla.Map) -> None:
    """SUMO lane centre lines (via SumoCoords) lie on the carla.Map lane polylines; sidewalks on sidewalks."""
    import sumolib

    net_path = convert_network(TOWN01, cache_dir)
    coords = SumoCoords.from_net_file(net_path)
    net = sumolib.net.readNet(str(net_path))
    drive, side = [], []
    for edge in net.getEdges():
        for lane in edge.getLanes():
            pts = _resample(coords.to_carla_xy(np.array(lane.getShape())), 1.0)
            if lane.getPermissions() == {"pedestrian"}:
                side.append(pts)
            elif "passenger" in lane.getPermissions():
                drive.append(pts)
    drive_pts = np.concatenate(drive)  # (N, 2)
    seg_a, seg_b = [], []
    for wp in town01_map.generate_waypoints(1.0):  # the lane polylines: each waypoint joined to wp.next(1 m)
        for nxt in wp.next(1.0):
            seg_a.append((wp.transform.location.x, wp.transform.location.y))
            seg_b.append((nxt.transform.location.x, nxt.transform.location.y))
    dist = _polyline_distance(drive_pts, np.array(seg_a), np.array(seg_b))
    print(
        f"\nTown01 SUMO->CARLA lane alignment over {len(dist)} points: "
        f"median {np.median(dist):.3f} m, p99 {np.percentile(dist, 99):.3f} m, max {dist.max():.3f} m"
    )
    assert np.median(dist) < 0.1
    assert dist.max() < 0.5

    # Sidewalk centre lines coincide with carla's (not merely overlap them): SUMO must keep the shoulders
    # between road and sidewalk, or its pedestrians walk on the road edge.
    side_pts = np.concatenate(side)[::5]
    centred = 0
    for x, y in side_pts:
        wp = town01_map.get_waypoint(
            carla.Location(float(x), float(y), 0.0), project_to_road=True, lane_type=carla.LaneType.Sidewalk
        )
        loc = wp.transform.location
        centred += math.hypot(loc.x - x, loc.y - y) <= 0.1
    assert centred / len(side_pts) > 0.95, (
        f"{centred}/{len(side_pts)} SUMO sidewalk points within 0.1 m of a carla sidewalk centre line"
    )


# ----------------------------------------------------------------------------- traffic lights
@needs_town01
def test_traffic_lights_cycle_and_sit_on_lanes(cache_dir: Path, town01_map: carla.Map) -> None:
    with TrafficSim(TOWN01, TrafficConfig(vehicles=0, walkers=0, seed=0), cache_dir) as ts:
        lights = ts.traffic_lights()
        assert len(lights) >= 12 and [tl.id for tl in lights] == list(range(len(lights)))
        for tl in lights:
            (ax, ay), (bx, by) = tl.stop_line
            mx, my = (ax + bx) / 2, (ay + by) / 2
            wp = town01_map.get_waypoint(
                carla.Location(mx, my, 0.0), project_to_road=True, lane_type=carla.LaneType.Driving
            )
            loc = wp.transform.location
            assert math.hypot(loc.x - mx, loc.y - my) < 2.0, f"light {tl.id} stop line off the driving lanes"
            dyaw = (wp.transform.rotation.yaw - tl.lane_yaw + 180.0) % 360.0 - 180.0
            assert abs(dyaw) < 15.0, (
                f"light {tl.id}: lane_yaw {tl.lane_yaw:.1f} vs waypoint {wp.transform.rotation.yaw:.1f}"
            )
            d = np.array([math.cos(math.radians(tl.lane_yaw)), math.sin(math.radians(tl.lane_yaw))])
            right = np.array([-d[1], d[0]])  # CARLA: y south, so right of travel is (-dy, dx)
            line = np.array([bx - ax, by - ay])
            assert abs(line @ d) < 0.2 * np.linalg.norm(line)  # across the lane
            to_pole = np.array([tl.x - mx, tl.y - my])
            assert to_pole @ right > 1.0 and to_pole @ d < 0.0  # right-hand side, before the stop line
            assert abs((tl.yaw - tl.lane_yaw) % 360.0 - 180.0) < 1e-6  # head faces approaching traffic
            # It guards a junction, as in CARLA's Town01: the lane a few metres past its line is in one
            # (no lights at the bends of the outer loop).
            ahead = town01_map.get_waypoint(carla.Location(mx + 4.0 * d[0], my + 4.0 * d[1], 0.0))
            assert ahead.is_junction, f"light {tl.id} at ({mx:.1f}, {my:.1f}) guards no junction"

        history: list[list[str]] = [[tl.state] for tl in lights]
        for _ in range(int(120 / 0.05)):  # longer than every Town01 programme
            ts.step()
            for h, tl in zip(history, ts.traffic_lights()):
                if tl.state != h[-1]:
                    h.append(tl.state)
    cycled = sum("".join(s[0] for s in h).find("GYRG") >= 0 for h in history)
    assert cycled >= 1, "no light went Green -> Yellow -> Red -> Green in 120 s"
    both = sum({"Green", "Red"} <= set(h) for h in history)
    assert both >= 0.9 * len(history), f"only {both}/{len(history)} lights showed both Red and Green"


def test_traffic_lights_cycle_one_approach_at_a_time_as_carla(cache_dir: Path) -> None:
    """CARLA's junction lights: one approach at a time shows Green (10 s) then Yellow (3 s), then all are Red for
    2 s before the next approach's turn; SUMO's default would pair opposite approaches (unprotected turns)."""
    town = _some_town()
    cmap = carla.Map(town.stem, town.read_text())
    with TrafficSim(town, TrafficConfig(vehicles=0, walkers=0, seed=0), cache_dir) as ts:
        junction_of: dict[int, int] = {}
        for tl in ts.traffic_lights():
            (ax, ay), (bx, by) = tl.stop_line
            d = np.array([math.cos(math.radians(tl.lane_yaw)), math.sin(math.radians(tl.lane_yaw))])
            ahead = cmap.get_waypoint(carla.Location((ax + bx) / 2 + 4.0 * d[0], (ay + by) / 2 + 4.0 * d[1], 0.0))
            junction_of[tl.id] = ahead.get_junction().id
        runs: dict[int, list[list]] = {tl_id: [] for tl_id in junction_of}  # [state, ticks] per light
        for _ in range(int(130 / 0.05)):
            ts.step()
            lights = ts.traffic_lights()
            for j in set(junction_of.values()):
                active = [tl.id for tl in lights if junction_of[tl.id] == j and tl.state in ("Green", "Yellow")]
                assert len(active) <= 1, f"junction {j}: approaches {active} go at once"
            for tl in lights:
                r = runs[tl.id]
                if r and r[-1][0] == tl.state:
                    r[-1][1] += 1
                else:
                    r.append([tl.state, 1])
    for tl_id, r in runs.items():
        inner = r[1:-1]  # whole phases only
        greens = [n * 0.05 for st, n in inner if st == "Green"]
        yellows = [n * 0.05 for st, n in inner if st == "Yellow"]
        reds = [n * 0.05 for st, n in inner if st == "Red"]
        assert greens and all(g == pytest.approx(10.0, abs=0.1) for g in greens), (tl_id, greens)
        assert yellows and all(y == pytest.approx(3.0, abs=0.1) for y in yellows), (tl_id, yellows)
        n_approaches = sum(1 for j in junction_of.values() if j == junction_of[tl_id])
        assert all(rd == pytest.approx(2.0 + 15.0 * (n_approaches - 1), abs=0.1) for rd in reds), (tl_id, reds)


def test_npcs_stop_at_unsignalised_junctions_as_carla(cache_dir: Path) -> None:
    """CARLA's Traffic Manager gives no right of way at junctions without lights: every vehicle stands >= 2 s at
    the junction, then they enter in order of arrival. Under SUMO's default `priority` junctions the major road
    drives straight through and can starve the side road."""
    town = _some_town()
    with TrafficSim(town, TrafficConfig(vehicles=40, walkers=0, seed=3), cache_dir) as ts:
        net = ts.net_path.read_text()
        kinds = {j: k for j, k in re.findall(r'<junction id="([^:"][^"]*)" type="([^"]*)"', net)}
        stops = [j for j, k in kinds.items() if k == "allway_stop"]
        assert stops and "priority" not in {kinds[j] for j in stops}
        run: dict[str, float] = {}  # vehicle -> seconds standing in a row
        stood: dict[str, float] = {}  # vehicle -> its longest stand since it last left a junction
        last_lane: dict[str, str] = {}
        entries: list[float] = []  # the stand before each entry into an all-way stop
        for _ in range(int(90 / 0.05)):
            ts.step()
            for vid in libsumo.vehicle.getIDList():
                lane = libsumo.vehicle.getLaneID(vid)
                prev = last_lane.get(vid, "")
                junction = lane[1:].rsplit("_", 2)[0] if lane.startswith(":") else ""
                if junction in stops and prev and not prev.startswith(":"):
                    entries.append(stood.get(vid, 0.0))
                run[vid] = run.get(vid, 0.0) + 0.05 if libsumo.vehicle.getSpeed(vid) < 0.1 else 0.0
                stood[vid] = 0.0 if junction else max(stood.get(vid, 0.0), run[vid])
                last_lane[vid] = lane
    assert len(entries) >= 10, entries
    assert min(entries) >= 1.95, sorted(entries)[:5]


@needs_town01
def test_set_and_freeze_traffic_lights(cache_dir: Path) -> None:
    with TrafficSim(TOWN01, TrafficConfig(vehicles=0, walkers=0, seed=0), cache_dir) as ts:
        ts.step()
        target = next(tl for tl in ts.traffic_lights() if tl.state == "Green")
        ts.freeze_traffic_lights(True)
        before = [tl.state for tl in ts.traffic_lights()]
        ts.set_traffic_light_state(target.id, "Red")
        expected = list(before)
        expected[target.id] = "Red"
        for _ in range(int(100 / 0.05)):
            ts.step()
            assert [tl.state for tl in ts.traffic_lights()] == expected
        ts.freeze_traffic_lights(False)
        seen = set()
        for _ in range(int(100 / 0.05)):
            ts.step()
            seen.add(ts.traffic_lights()[target.id].state)
        assert {"Green", "Red"} <= seen  # the programme runs again

        # without freezing: the forced state shows at once, and the programme takes over again later
        ts.set_traffic_light_state(target.id, "Yellow")
        ts.step()
        assert ts.traffic_lights()[target.id].state == "Yellow"
        states = set()
        for _ in range(int(100 / 0.05)):
            ts.step()
            states.add(ts.traffic_lights()[target.id].state)
        assert {"Green", "Red"} <= states

        with pytest.raises(TrafficError, match="unknown traffic light id 9999"):
            ts.set_traffic_light_state(9999, "Red")
        with pytest.raises(TrafficError, match="unknown traffic light state 'Blue'"):
            ts.set_traffic_light_state(target.id, "Blue")


# ----------------------------------------------------------------------------- NPCs
@needs_town01
def test_npcs_stop_behind_a_parked_ego(cache_dir: Path, town01_map: carla.Map) -> None:
    ego = ROUTE0_START
    yaw = math.radians(ego.yaw)
    fwd = np.array([math.cos(yaw), math.sin(yaw)])
    right = np.array([-fwd[1], fwd[0]])
    ego_box = _corners(ego.x, ego.y, ego.yaw, EGO_EXTENT[0], EGO_EXTENT[1])
    queued = False
    with TrafficSim(TOWN01, TrafficConfig(vehicles=50, walkers=0, seed=1), cache_dir) as ts:
        for _ in range(int(60 / 0.05)):
            ts.set_ego(ego, 0.0)
            ts.step()
            for a in ts.actors():
                assert not _boxes_overlap(ego_box, _corners(a.x, a.y, a.yaw, a.extent[0], a.extent[1])), (
                    f"NPC {a.id} ({a.vclass}) drove into the parked ego"
                )
                rel = np.array([a.x - ego.x, a.y - ego.y])
                same_dir = abs((a.yaw - ego.yaw + 180.0) % 360.0 - 180.0) < 10.0
                gap = -(rel @ fwd) - EGO_EXTENT[0] - a.extent[0]
                if same_dir and abs(rel @ right) < 1.0 and 0.0 < gap < 5.0 and a.speed < 0.1:
                    queued = True
        final = ts.actors()
    assert queued, "no NPC stopped behind the parked ego within 60 s"
    # NPC boxes sit on their lanes, heading along them (checks the front-bumper -> centre and angle maps)
    on_lane = 0
    for a in final:
        wp = town01_map.get_waypoint(carla.Location(a.x, a.y, 0.0), project_to_road=True)
        if wp.is_junction or a.vclass == "bicycle":  # turning, or riding at the lane's edge
            continue
        loc = wp.transform.location
        dyaw = (wp.transform.rotation.yaw - a.yaw + 180.0) % 360.0 - 180.0
        assert math.hypot(loc.x - a.x, loc.y - a.y) < 0.6 and abs(dyaw) < 10.0, (a, wp.transform)
        on_lane += 1
    assert on_lane >= 10


def _left_turn_points(cmap: carla.Map, start: tuple[float, float]) -> list[Pose]:
    """Poses every 4 m through the junction ahead of `start`, taking its leftmost turn (carla.Map lanes)."""
    wp = cmap.get_waypoint(carla.Location(start[0], start[1], 0.0))
    poses = []
    for k in range(44):
        t = wp.transform
        if k >= 15 and k % 4 == 3:
            poses.append(Pose(t.location.x, t.location.y, 0.0, t.rotation.yaw))
        wp = min(wp.next(1.0), key=lambda w: (w.transform.rotation.yaw - t.rotation.yaw + 180.0) % 360.0 - 180.0)
    return poses


def test_npcs_brake_for_an_ego_stalled_mid_turn(cache_dir: Path) -> None:
    """The ego stalls at points along the left turns of a signalised four-way junction: NPCs must stop short of
    it (as CARLA's Traffic Manager does), not drive their fronts into it. SUMO alone only sees it on one lane."""
    if not OWN_TOWN.is_file():
        pytest.skip(f"{OWN_TOWN} not present")
    cmap = carla.Map(OWN_TOWN.stem, OWN_TOWN.read_text())
    # OccTown01's junction at (100, 100), entered from each side
    stalls = [p for s in ((98.4, 75.0), (125.0, 98.4), (101.6, 125.0), (75.0, 101.6)) for p in _left_turn_points(cmap, s)]
    assert len(stalls) == 32
    rammed: set[int] = set()
    with TrafficSim(OWN_TOWN, TrafficConfig(vehicles=40, walkers=0, seed=1), cache_dir) as ts:
        for ego in stalls:
            ego_box = _corners(ego.x, ego.y, ego.yaw, EGO_EXTENT[0], EGO_EXTENT[1])
            for tick in range(100):  # 5 s at each point
                ts.set_ego(ego, 0.0)
                ts.step()
                if tick < 40:  # the ego appeared here: an NPC already on the spot is not driving into it
                    continue
                for a in ts.actors():
                    fwd = np.array([math.cos(math.radians(a.yaw)), math.sin(math.radians(a.yaw))])
                    ahead = float(np.array([ego.x - a.x, ego.y - a.y]) @ fwd) > 0.0
                    box = _corners(a.x, a.y, a.yaw, a.extent[0], a.extent[1])
                    if a.category == "vehicle" and a.speed > 0.3 and ahead and _boxes_overlap(ego_box, box):
                        rammed.add(a.id)
    assert not rammed, f"NPCs {sorted(rammed)} drove into the stalled ego"


def test_npc_turning_right_beside_a_waiting_ego_is_not_held(cache_dir: Path) -> None:
    """The ego waits at the entry of an all-way stop; an NPC from its left turns right into the lane beside it.
    Mid-turn the NPC points at the ego, but its lanes pass it: it must not be held for the ego (which waited for
    it in turn: built-in route 4, seed 0 stood 75 s there)."""
    town = _some_town()
    with TrafficSim(town, TrafficConfig(vehicles=0, walkers=0, seed=0), cache_dir) as ts:
        kinds = dict(re.findall(r'<junction id="([^:"][^"]*)" type="([^"]*)"', ts.net_path.read_text()))
        edges = [e for e in libsumo.edge.getIDList() if not e.startswith(":")]

        def leftmost_driving_lane(edge: str) -> str:  # next to the lanes the other way
            lanes = [f"{edge}_{i}" for i in range(libsumo.edge.getLaneNumber(edge))]
            return [ln for ln in lanes if "passenger" not in libsumo.lane.getDisallowed(ln)][-1]

        cases = []  # (gap between the ego's lane end and the NPC's exit lane start, ego lane, NPC from, NPC to)
        for j in (j for j, k in kinds.items() if k == "allway_stop"):
            for a in (e for e in edges if libsumo.edge.getToJunction(e) == j):
                back = [e for e in edges if libsumo.edge.getFromJunction(e) == j
                        and libsumo.edge.getToJunction(e) == libsumo.edge.getFromJunction(a)]  # fmt: skip
                lane_a = leftmost_driving_lane(a)
                for c in (e for e in edges if libsumo.edge.getToJunction(e) == j and e != a and back):
                    for i in range(libsumo.edge.getLaneNumber(c)):
                        for link in libsumo.lane.getLinks(f"{c}_{i}"):
                            if link[6] == "r" and libsumo.lane.getEdgeID(link[0]) == back[0]:
                                gap = np.linalg.norm(ts._lane_shape(lane_a)[-1] - ts._lane_shape(link[0])[0])
                                cases.append((float(gap), lane_a, c, back[0]))
        assert cases, "no junction where a right turn ends beside an approach"
        _, lane_a, c, out = min(cases)
        shape = ts._lane_shape(lane_a)  # the ego: front 1 m before the end of its lane, along it
        d = shape[-1] - shape[-2]
        d /= np.linalg.norm(d)
        centre = shape[-1] - d * (1.0 + EGO_EXTENT[0])
        ego = Pose(float(centre[0]), float(centre[1]), 0.0, math.degrees(math.atan2(d[1], d[0])))
        libsumo.route.add("turn", [c, out])
        start = max(libsumo.lane.getLength(f"{c}_0") - 25.0, 0.0)
        libsumo.vehicle.add("npc_turn", "turn", typeID="occvla_car", departPos=f"{start:.1f}", departSpeed="0")
        # one of TrafficSim's own NPCs from here on (as _spawn_vehicles registers them)
        ts._vehicles["npc_turn"] = ts._new_npc("car", VEHICLE_CLASSES["car"].type_id, np.ones((1, 3)))
        ts._pending["npc_turn"] = (ts._tick, 0.0, 0.0)
        held = 0.0
        for _ in range(int(40 / 0.05)):
            ts.set_ego(ego, 0.0)
            ts.step()
            if "npc_turn" in ts._yielding:
                held += 0.05
            assert "npc_turn" in libsumo.vehicle.getIDList(), f"the NPC was removed (held {held:.1f} s)"
            if libsumo.vehicle.getRoadID("npc_turn") == out and libsumo.vehicle.getLanePosition("npc_turn") > 15:
                break
        else:
            pytest.fail("the NPC did not make its right turn within 40 s")
        assert held < 1.0, held


def test_npc_lane_path_meets_an_ego_on_it_and_misses_one_off_it(cache_dir: Path) -> None:
    """The lane check behind the braking layer, on every NPC of a busy town (signalised, all-way and priority
    links): an ego 12 m ahead on the NPC's own lanes meets them; one 12 m to the side of them does not."""
    town = _some_town()
    with TrafficSim(town, TrafficConfig(vehicles=40, walkers=0, seed=4), cache_dir) as ts:
        checked = 0
        for tick in range(int(60 / 0.05)):
            ts.step()
            if tick % 100:
                continue
            for vid in [v for v in libsumo.vehicle.getIDList() if v in ts._vehicles and v not in ts._pending]:
                lane, pos = libsumo.vehicle.getLaneID(vid), libsumo.vehicle.getLanePosition(vid)
                if lane.startswith(":") or libsumo.lane.getLength(lane) - pos < 14.0:
                    continue  # 12 m ahead on the same lane
                edge, index = lane.rsplit("_", 1)
                sx, sy = libsumo.simulation.convert2D(edge, pos + 12.0, int(index))
                x, y = ts.coords.to_carla(sx, sy)
                yaw = ts.coords.to_carla_yaw(libsumo.lane.getAngle(lane, pos + 12.0))
                ts.set_ego(Pose(x, y, 0.0, yaw), 0.0)
                assert ts._path_meets_ego(vid, 30.0, 1.4), vid
                side = math.radians(yaw + 90.0)
                ts.set_ego(Pose(x + 12.0 * math.cos(side), y + 12.0 * math.sin(side), 0.0, yaw), 0.0)
                assert not ts._path_meets_ego(vid, 11.0, 1.4), vid
                checked += 1
    assert checked >= 20


def test_walkers_do_not_walk_into_a_moving_ego(cache_dir: Path) -> None:
    """A moving ego parked broadside 0.6 m ahead of a walking pedestrian: they stand (CARLA's walkers check for
    cars) instead of walking into its side. Once the ego stands still, they walk on."""
    town = _some_town()
    checked = 0
    with TrafficSim(town, TrafficConfig(vehicles=0, walkers=30, seed=2), cache_dir) as ts:
        home = Pose(100.0, 60.0, 0.0, 0.0) if town == OWN_TOWN else ROUTE0_START
        for _ in range(100):
            ts.set_ego(home, 0.0)
            ts.step()
        done: set[int] = set()
        while checked < 5:
            walking = [a for a in ts.actors() if a.category == "walker" and a.speed > 0.8 and a.id not in done]
            assert walking, "no walking pedestrian left to test with"
            w = walking[0]
            done.add(w.id)
            fwd = np.array([math.cos(math.radians(w.yaw)), math.sin(math.radians(w.yaw))])
            front = np.array([w.x, w.y]) + fwd * w.extent[0]
            centre = front + fwd * (0.6 + EGO_EXTENT[1])
            ego = Pose(float(centre[0]), float(centre[1]), 0.0, w.yaw + 90.0)
            ego_box = _corners(ego.x, ego.y, ego.yaw, EGO_EXTENT[0], EGO_EXTENT[1])
            for _ in range(40):  # 2 s with the (moving) ego in the way
                ts.set_ego(ego, 3.0)
                ts.step()
                a = next((a for a in ts.actors() if a.id == w.id), None)
                if a is None:
                    break  # walked out of the simulation (end of its walk)
                box = _corners(a.x, a.y, a.yaw, a.extent[0], a.extent[1])
                assert not _boxes_overlap(ego_box, box), f"walker {w.id} walked into the moving ego"
            else:
                assert a.speed < 0.05
                ts.set_ego(ego, 0.0)  # it has just stopped: moving on the tick before, a contact would count
                ts.step()
                a = next((a for a in ts.actors() if a.id == w.id), None)
                assert a is None or a.speed < 0.05, f"walker {w.id} walked on the tick the ego stopped"
                start = np.array([a.x, a.y]) if a is not None else None
                for _ in range(60):  # the ego stands: the walker goes on (through where the car is)
                    ts.set_ego(ego, 0.0)
                    ts.step()
                a = next((a for a in ts.actors() if a.id == w.id), None)
                assert a is None or start is None or math.dist(start, (a.x, a.y)) > 0.5, f"walker {w.id} kept standing"
                checked += 1


def test_npc_deadlocked_with_the_ego_in_a_junction_is_removed(cache_dir: Path) -> None:
    """The ego stands across the path of an NPC in the middle of a junction: the NPC brakes for it and both would
    wait for each other. It is removed after _EGO_DEADLOCK_SECONDS (15 s), not the general 60 s."""
    town = _some_town()
    with TrafficSim(town, TrafficConfig(vehicles=40, walkers=0, seed=4), cache_dir) as ts:
        home = Pose(100.0, 60.0, 0.0, 0.0) if town == OWN_TOWN else ROUTE0_START
        target = None
        for _ in range(int(120 / 0.05)):
            ts.set_ego(home, 0.0)
            ts.step()
            for a in ts.actors():
                if a.category == "vehicle" and a.speed > 2.0 and a.type_id == "vehicle.lincoln.mkz_2017":
                    if libsumo.vehicle.getLaneID(f"npc{a.id}").startswith(":"):
                        target = a
                        break
            if target is not None:
                break
        assert target is not None, "no NPC crossed a junction in 120 s"
        fwd = np.array([math.cos(math.radians(target.yaw)), math.sin(math.radians(target.yaw))])
        centre = np.array([target.x, target.y]) + fwd * (target.extent[0] + 5.0 + EGO_EXTENT[1])
        ego = Pose(float(centre[0]), float(centre[1]), 0.0, target.yaw + 90.0)  # broadside across its way
        gone_after = None
        for tick in range(int(40 / 0.05)):
            ts.set_ego(ego, 0.0)
            ts.step()
            if all(a.id != target.id for a in ts.actors()):
                gone_after = tick * 0.05
                break
    assert gone_after is not None and 15.0 <= gone_after <= 25.0, gone_after


def test_determinism_counts_and_classes(cache_dir: Path) -> None:
    town = _some_town()
    cmap = carla.Map(town.stem, town.read_text())
    wps = [w for w in cmap.generate_waypoints(5.0) if not w.is_junction]
    xy = np.array([(w.transform.location.x, w.transform.location.y) for w in wps])
    wp = wps[int(np.argmin(np.hypot(*(xy - xy.mean(0)).T)))]
    poses = []
    for _ in range(300):  # the ego drives its lane at 5 m/s
        t = wp.transform
        poses.append(Pose(t.location.x, t.location.y, 0.0, t.rotation.yaw))
        wp = (wp.next(0.25) or [wp])[0]
    cfg = TrafficConfig(vehicles=30, walkers=15, seed=7, radius=100.0)

    targets: list[int] = []

    def run() -> list:
        frames = []
        with TrafficSim(town, cfg, cache_dir) as ts:
            for p in poses:
                ts.set_ego(p, 5.0)
                ts.step()
                frames.append((ts.actors(), ts.traffic_lights()))
                targets.append(ts.vehicle_target)
        return frames

    a, b = run(), run()
    assert a == b, "same seed and ego inputs gave different traffic"

    vehicles = [sum(x.category == "vehicle" for x in actors) for actors, _ in a[150:]]
    walkers = [sum(x.category == "walker" for x in actors) for actors, _ in a[150:]]
    target = min(targets)
    assert 10 <= target <= cfg.vehicles, targets  # the density cap may hold it below cfg.vehicles
    assert np.median(vehicles) >= target and min(vehicles) >= target - 3, vehicles
    assert np.median(walkers) >= cfg.walkers and min(walkers) >= cfg.walkers - 3, walkers
    for (actors, _), p in zip(a[150:], poses[150:]):
        for x in actors:
            assert math.hypot(x.x - p.x, x.y - p.y) < cfg.radius + 15.0  # culled every 0.5 s

    seen_ids: dict[int, tuple[str, str]] = {}
    classes = set()
    for actors, _ in a:
        for x in actors:
            assert seen_ids.setdefault(x.id, (x.type_id, x.vclass)) == (x.type_id, x.vclass)  # stable ids
            assert x.extent == DEFAULT_EXTENTS[x.vclass]
            assert (x.category == "walker") == (x.vclass == "pedestrian")
            assert x.type_id.startswith("walker.pedestrian." if x.category == "walker" else "vehicle.")
            classes.add(x.vclass)
    assert {"car", "pedestrian"} <= classes and len(classes) >= 4, classes


def test_npc_lane_changes_are_continuous(cache_dir: Path) -> None:
    """NPCs change lanes over a couple of seconds, as CARLA's Traffic Manager, never 3.5 m sideways in one tick
    (SUMO's default, seen also on a junction's internal lanes beside a turning ego)."""
    town = _some_town()
    cfg = TrafficConfig(vehicles=40, walkers=0, seed=3, radius=100.0)
    prev: dict[int, object] = {}
    worst = 0.0
    changes = 0
    with TrafficSim(town, cfg, cache_dir) as ts:
        for _ in range(1200):
            ts.set_ego(Pose(150.0, 150.0, 0.0, 0.0), 0.0)
            ts.step()
            for a in ts.actors():
                p = prev.get(a.id)
                if p is not None and a.category == "vehicle":
                    h = math.radians(p.yaw)
                    lateral = abs(-(a.x - p.x) * math.sin(h) + (a.y - p.y) * math.cos(h))  # sideways this tick
                    worst = max(worst, lateral)
                    changes += lateral > 0.05
                prev[a.id] = a
    assert changes > 0  # sideways motion happens (turns, lane changes) ...
    assert worst < 1.0, worst  # ... but never a jump


def test_vehicle_density_cap(cache_dir: Path) -> None:
    """`vehicles` is capped at max_vehicles_per_km x the lane km within the radius; None lifts the cap."""
    town = _some_town()
    cmap = carla.Map(town.stem, town.read_text())
    wp = cmap.generate_waypoints(10.0)[0]
    ego = Pose(wp.transform.location.x, wp.transform.location.y, 0.0, wp.transform.rotation.yaw)
    counts = {}
    for density in (5.0, None):
        cfg = TrafficConfig(vehicles=30, walkers=0, seed=2, radius=80.0, max_vehicles_per_km=density)
        with TrafficSim(town, cfg, cache_dir) as ts:
            for _ in range(40):
                ts.set_ego(ego, 0.0)
                ts.step()
            # lane metres within the radius, measured independently on the SUMO lane shapes
            metres = 0.0
            for lane in ts._veh_lanes:
                shape = ts._lane_shape(lane)
                mid = (shape[1:] + shape[:-1]) / 2
                inside = np.hypot(mid[:, 0] - ego.x, mid[:, 1] - ego.y) <= cfg.radius
                metres += float(np.hypot(*np.diff(shape, axis=0).T)[inside].sum())
            counts[density] = (ts.vehicle_target, sum(a.category == "vehicle" for a in ts.actors()), metres)
    target, live, metres = counts[5.0]
    assert target == pytest.approx(5.0 * metres / 1000.0, abs=1.5) and target < 30
    assert live <= target
    assert counts[None][0] == 30 and counts[None][1] > target
    with pytest.raises(TrafficError, match="max_vehicles_per_km"):
        TrafficSim(town, TrafficConfig(max_vehicles_per_km=0.0), cache_dir)


@needs_town01
def test_walkers_use_sidewalks_and_crossings(cache_dir: Path, town01_map: carla.Map) -> None:
    checked, bad = 0, []
    with TrafficSim(TOWN01, TrafficConfig(vehicles=0, walkers=30, seed=3), cache_dir) as ts:
        for tick in range(600):
            ts.set_ego(Pose(200.0, 199.1, 0.0, 0.0), 0.0)
            ts.step()
            if tick % 20:
                continue
            for a in ts.actors():
                loc = carla.Location(a.x, a.y, 0.0)
                wp = town01_map.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Sidewalk)
                w = wp.transform.location
                on_sidewalk = math.hypot(w.x - a.x, w.y - a.y) <= wp.lane_width / 2 + 0.1
                road = town01_map.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Driving)
                if not (on_sidewalk or road.is_junction):  # crossings lie inside junction areas
                    bad.append((round(a.x, 1), round(a.y, 1)))
                checked += 1
    assert checked > 300 and len(bad) <= 0.02 * checked, bad[:10]


def test_crosswalks_span_the_roads_where_walkers_cross(cache_dir: Path) -> None:
    """Every crosswalk is a 4-corner polygon across a driving lane (at its junction), and the walkers that cross
    a road do it on one of them."""
    town = _some_town()
    cmap = carla.Map(town.stem, town.read_text())
    with TrafficSim(town, TrafficConfig(vehicles=0, walkers=40, seed=2), cache_dir) as ts:
        walks = ts.crosswalks()
        assert len(walks) >= 4
        for poly in walks:
            assert poly.shape == (4, 2) and np.all(np.isfinite(poly))
            sides = np.hypot(*np.diff(np.vstack([poly, poly[:1]]), axis=0).T)  # (4,)
            assert 2.0 < sides.min() and sides.max() < 30.0
            c = poly.mean(axis=0)
            wp = cmap.get_waypoint(carla.Location(float(c[0]), float(c[1]), 0.0), project_to_road=True)
            assert math.hypot(wp.transform.location.x - c[0], wp.transform.location.y - c[1]) < 5.0
        on_road_walkers, on_crosswalk = 0, 0
        c = walks[0].mean(axis=0) + 40.0  # walkers live around the ego: park it near (not on) a crosswalk
        for tick in range(800):
            ts.set_ego(Pose(float(c[0]), float(c[1]), 0.0, 0.0), 0.0)
            ts.step()
            if tick % 10:
                continue
            for a in ts.actors():
                wp = cmap.get_waypoint(carla.Location(a.x, a.y, 0.0), project_to_road=False)
                if wp is None or math.hypot(wp.transform.location.x - a.x, wp.transform.location.y - a.y) > 1.0:
                    continue  # only walkers near the middle of a driving lane: kerbs and corners are sidewalk
                on_road_walkers += 1
                on_crosswalk += min(_polygon_distance(np.array([a.x, a.y]), p) for p in walks) < 1.0
        assert on_road_walkers > 20 and on_crosswalk == on_road_walkers


def _polygon_distance(p: np.ndarray, poly: np.ndarray) -> float:
    """Distance of a point to a convex polygon's area (0 inside)."""
    a, b = poly, np.roll(poly, -1, axis=0)
    cross = (b[:, 0] - a[:, 0]) * (p[1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (p[0] - a[:, 0])
    if np.all(cross >= 0) or np.all(cross <= 0):
        return 0.0
    return float(_polyline_distance(p[None], a, b)[0])


def test_many_live_instances_and_restart(cache_dir: Path) -> None:
    """libsumo runs one simulation per process: the second live TrafficSim runs SUMO over TraCI, with the same
    states for the same seed and ego inputs."""
    town = _some_town()
    cfg = TrafficConfig(vehicles=5, walkers=2, seed=0)
    first = TrafficSim(town, cfg, cache_dir)
    try:
        with TrafficSim(town, cfg, cache_dir) as other:
            assert (first.backend, other.backend) == ("libsumo", "traci")
            for _ in range(60):
                first.step()
                other.step()
            assert first.actors() and first.actors() == other.actors()
            assert first.traffic_lights() == other.traffic_lights()
    finally:
        first.close()
    first.close()  # idempotent
    with pytest.raises(TrafficError, match="closed"):
        first.step()
    with TrafficSim(town, cfg, cache_dir) as second:  # libsumo starts again in the same process
        for _ in range(40):
            second.step()
        assert second.actors()
        with pytest.raises(TrafficError, match="ego pose/speed must be finite"):
            second.set_ego(Pose(float("nan"), 0.0, 0.0, 0.0), 0.0)
    with pytest.raises(TrafficError, match="vehicles must be an int >= 0"):
        TrafficSim(town, TrafficConfig(vehicles=-1), cache_dir)
    with pytest.raises(TrafficError, match="radius must be > 0"):
        TrafficSim(town, TrafficConfig(radius=0.0), cache_dir)


def test_npcs_never_spawn_where_they_cannot_stop_behind_the_ego(cache_dir: Path) -> None:
    """A standing ego on a fast arterial (OccGen-13, 70 km/h lanes: NPCs depart at 49 km/h): no NPC is inserted on
    its lane line behind it closer than its reaction plus braking distance (+ the spawn clearance). One inserted
    18 m behind at 49 km/h could not stop and ran into the ego at its route's start (OccGen-13 route 27)."""
    from sim.embedded.maps import load_town

    town = load_town("OccGen-13", cache_dir=cache_dir)
    ego = Pose(131.1, 209.8, 0.0, -90.0)  # the start of that route, on a lane of the arterial
    fwd = np.array([math.cos(math.radians(ego.yaw)), math.sin(math.radians(ego.yaw))])
    left = np.array([fwd[1], -fwd[0]])
    close = []
    for seed in range(8):
        with TrafficSim(town.xodr_path, TrafficConfig(vehicles=40, walkers=0, seed=seed), cache_dir) as ts:
            ts.set_ego(ego, 0.0)
            ts.step()  # the initial population
            for _ in range(int(0.5 / 0.05)):  # ... and those still pending insertion
                ts.set_ego(ego, 0.0)
                ts.step()
            for a in ts.actors():
                if a.category != "vehicle" or abs((a.yaw - ego.yaw + 180.0) % 360.0 - 180.0) > 30.0:
                    continue
                rel = np.array([a.x - ego.x, a.y - ego.y])
                gap = -(rel @ fwd) - EGO_EXTENT[0] - a.extent[0]  # bumper to bumper, NPC behind the ego
                stop = a.speed * 0.5 + a.speed**2 / (2.0 * 4.5)
                if abs(rel @ left) < 1.5 and 0.0 < gap < stop + 2.0 and a.speed > 1.0:
                    close.append((seed, a.id, round(gap, 1), round(a.speed, 1)))
    assert not close, (
        f"NPCs (seed, id, gap m, speed m/s) closing on the standing ego faster than they can stop: {close}"
    )


def test_npcs_alongside_the_ego_keep_their_lane_while_it_is_there(cache_dir: Path) -> None:
    """SUMO places the ego on one lane by its front bumper (on a junction's internal lane while its body still
    stands on the approach), so its lane-change model may move an NPC into the ego's side (OccGen-13 route 27).
    An NPC with the ego alongside it, in the next lane, makes no lane change of its own; once the ego is away it
    changes lanes as before."""
    from sim.embedded.maps import load_town

    town = load_town("OccGen-13", cache_dir=cache_dir)
    with TrafficSim(town.xodr_path, TrafficConfig(vehicles=40, walkers=0, seed=1), cache_dir) as ts:
        far = Pose(131.1, 209.8, 0.0, -90.0)
        for _ in range(40):
            ts.set_ego(far, 0.0)
            ts.step()
        checked = 0
        for vid in [v for v in libsumo.vehicle.getIDList() if v in ts._vehicles and v not in ts._pending]:
            lane = libsumo.vehicle.getLaneID(vid)
            edge, index = lane.rsplit("_", 1)
            if lane.startswith(":") or f"{edge}_{int(index) + 1}" not in ts._veh_lanes:
                continue
            mode = libsumo.vehicle.getLaneChangeMode(vid)
            pos = min(libsumo.vehicle.getLanePosition(vid), libsumo.lane.getLength(lane)) - 2.4  # its centre
            sx, sy = libsumo.simulation.convert2D(edge, max(pos, 0.0), int(index) + 1)  # the next lane
            x, y = ts.coords.to_carla(sx, sy)
            yaw = ts.coords.to_carla_yaw(libsumo.lane.getAngle(f"{edge}_{int(index) + 1}", max(pos, 0.0)))
            ts.set_ego(Pose(x, y, 0.0, yaw), 0.0)
            ts._hold_lanes_beside_ego()
            assert libsumo.vehicle.getLaneChangeMode(vid) == 0, vid
            ts.set_ego(far, 0.0)
            ts._hold_lanes_beside_ego()
            assert libsumo.vehicle.getLaneChangeMode(vid) == mode, vid
            checked += 1
        assert checked >= 3
