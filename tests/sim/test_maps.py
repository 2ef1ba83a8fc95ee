"""Towns: name resolution, bad input, the built-in generated towns (topology, SUMO conversion, determinism)."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import carla
import networkx as nx
import pytest

from sim.embedded.maps import builtin_towns, load_town, resolve_town, spawn_points, town_basename
from sim.embedded.towns import TOWNS_DIR
from sim.embedded.towns import generate as gen
from sim.protocol import SimulatorError, TownNotFoundError

SHARED_MAPS = Path(__file__).resolve().parents[3] / "shared" / "carla" / "maps"
TOWN01 = SHARED_MAPS / "Town01.xodr"


def _netconvert() -> str | None:
    exe = Path(sys.executable).parent / "netconvert"
    if exe.is_file():
        return str(exe)
    try:
        import sumo

        cand = Path(sumo.SUMO_HOME) / "bin" / "netconvert"
        if cand.is_file():
            return str(cand)
    except ImportError:
        pass
    return shutil.which("netconvert")


def _topology_graph(cmap: carla.Map) -> nx.DiGraph:
    """Lane segments as edges between their end points (rounded locations), as CARLA's route planner does."""
    def key(w: carla.Waypoint) -> tuple[float, float]:
        loc = w.transform.location
        return round(loc.x, 1), round(loc.y, 1)

    g = nx.DiGraph()
    for a, b in cmap.get_topology():
        g.add_edge(key(a), key(b), length=a.transform.location.distance(b.transform.location))
    return g


def _movements_per_junction(cmap: carla.Map, objects: bool = False) -> dict:
    """Junction id (or carla.Junction) -> number of driving connector roads (lane-to-lane movements)."""
    junctions = {w.get_junction().id: w.get_junction() for w in cmap.generate_waypoints(2.0) if w.is_junction}
    return {(j if objects else jid): len({a.road_id for a, _ in j.get_waypoints(carla.LaneType.Driving)})
            for jid, j in junctions.items()}


# ----------------------------------------------------------------------------- resolution
def test_builtin_towns_listed():
    assert {"OccTown01", "OccTown02"} <= set(builtin_towns())


@pytest.mark.parametrize("name,base", [("Town01", "Town01"), ("/Game/Carla/Maps/Town01", "Town01"),
                                       ("OccTown02.xodr", "OccTown02"), (" Town03/ ", "Town03")])
def test_town_basename(name, base):
    assert town_basename(name) == base


def test_builtin_resolution_and_carla_route_names():
    assert resolve_town("OccTown01") == TOWNS_DIR / "OccTown01.xodr"
    assert resolve_town("/Game/Carla/Maps/OccTown02") == TOWNS_DIR / "OccTown02.xodr"


def test_map_dir_beats_carla_root_beats_builtin(tmp_path, monkeypatch):
    src = (TOWNS_DIR / "OccTown02.xodr").read_text()
    carla_dir = tmp_path / "carla" / "CarlaUE4" / "Content" / "Carla" / "Maps" / "OpenDrive"
    carla_dir.mkdir(parents=True)
    (carla_dir / "OccTown02.xodr").write_text(src)
    (carla_dir / "TownX.xodr").write_text(src)
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "OccTown02.xodr").write_text(src)

    monkeypatch.delenv("CARLA_ROOT", raising=False)
    assert resolve_town("OccTown02", user_dir) == user_dir / "OccTown02.xodr"
    monkeypatch.setenv("CARLA_ROOT", str(tmp_path / "carla"))
    assert resolve_town("OccTown02") == carla_dir / "OccTown02.xodr"
    assert resolve_town("/Game/Carla/Maps/TownX") == carla_dir / "TownX.xodr"
    assert resolve_town("OccTown02", user_dir) == user_dir / "OccTown02.xodr"
    assert resolve_town("OccTown01", user_dir) == TOWNS_DIR / "OccTown01.xodr"  # falls through to built-in
    assert load_town("TownX").name == "TownX"


def test_a_town_parsed_before_is_reused_until_its_file_changes(tmp_path):
    src = (TOWNS_DIR / "OccTown02.xodr").read_text()
    (tmp_path / "OccTown02.xodr").write_text(src)
    first = load_town("OccTown02", tmp_path)
    assert load_town("OccTown02", tmp_path) is first  # the next route on the town: no second parse
    assert load_town("OccTown02") is not first  # the built-in file is another file
    (tmp_path / "OccTown02.xodr").write_text(src.replace("<OpenDRIVE>", "<OpenDRIVE>\n", 1))
    again = load_town("OccTown02", tmp_path)
    assert again is not first and again.xodr_text != first.xodr_text  # edited: parsed afresh


def test_unknown_town_error_is_one_line_naming_everything(tmp_path, monkeypatch):
    monkeypatch.delenv("CARLA_ROOT", raising=False)
    with pytest.raises(TownNotFoundError) as err:
        load_town("Town99", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert "Town99" in msg and str(tmp_path) in msg and str(TOWNS_DIR) in msg
    assert "OccTown01" in msg and "OccTown02" in msg


@pytest.mark.parametrize("text,why", [
    ("this is not xml <", "not XML"),
    ("<OpenDRIVE><header/></OpenDRIVE>", "no <road>"),
    ("<Other><road/></Other>", "root element"),
    ('<OpenDRIVE><header/><road id="1" length="10" junction="-1"></road></OpenDRIVE>', "no driving-lane"),
])
def test_malformed_xodr_raises_one_line_naming_file(tmp_path, text, why):
    (tmp_path / "Broken.xodr").write_text(text)
    with pytest.raises(SimulatorError) as err:
        load_town("Broken", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "Broken.xodr" in msg and why in msg


# ----------------------------------------------------------------------------- the built-in towns
@pytest.mark.parametrize("name", ["OccTown01", "OccTown02"])
def test_builtin_town_loads_and_is_strongly_connected(name):
    town = load_town(name)
    assert town.xodr_path.parent == TOWNS_DIR
    g = _topology_graph(town.map)
    assert g.number_of_nodes() > 20
    assert nx.is_strongly_connected(g), f"{name}: {nx.number_strongly_connected_components(g)} components"


def test_occtown01_layout_size_and_long_routes():
    cmap = load_town("OccTown01").map
    wps = cmap.generate_waypoints(2.0)
    xs = [w.transform.location.x for w in wps]
    ys = [w.transform.location.y for w in wps]
    assert 280 < max(xs) - min(xs) < 340 and 280 < max(ys) - min(ys) < 340
    lanes_per_road = {}
    for w in wps:
        if not w.is_junction:
            lanes_per_road.setdefault(w.road_id, set()).add(w.lane_id)
    assert {2, 4} <= {len(v) for v in lanes_per_road.values()}  # 1+1 streets and 2+2 avenues
    curved = [w for w in wps if not w.is_junction and abs(math.sin(math.radians(2 * w.transform.rotation.yaw))) > 0.3]
    assert curved  # headings that are neither axis-aligned: curved corners and bends
    # junction kinds: 4 signalised 4-way junctions (>= 12 movements) and 8 T-junctions (6 movements)
    kinds = sorted("4-way" if n >= 10 else "T" for n in _movements_per_junction(cmap).values())
    assert kinds.count("4-way") == 4 and kinds.count("T") == 8
    assert len(cmap.get_all_landmarks_of_type("1000001")) == 16  # one light per approach of the 4-ways
    g = _topology_graph(cmap)
    lengths = dict(nx.single_source_dijkstra_path_length(g, next(iter(g.nodes)), weight="length"))
    assert max(lengths.values()) > 300


def test_spawn_points_outside_junctions_and_raised():
    cmap = load_town("OccTown02").map
    pts = spawn_points(cmap, spacing=15.0)
    assert len(pts) > 20
    for t in pts[::7]:
        wp = cmap.get_waypoint(t.location)
        assert not wp.is_junction
        assert abs(t.location.z - wp.transform.location.z - 0.5) < 1e-3
        assert wp.transform.location.distance(carla.Location(t.location.x, t.location.y, wp.transform.location.z)) < 0.05
    with pytest.raises(ValueError, match="-1"):
        spawn_points(cmap, -1)


@pytest.mark.parametrize("name,n_tls", [("OccTown01", 4), ("OccTown02", 1)])
def test_netconvert_converts_with_traffic_lights_at_four_way_junctions(tmp_path, name, n_tls):
    exe = _netconvert()
    if exe is None:
        pytest.skip("netconvert not installed")
    xodr = TOWNS_DIR / f"{name}.xodr"
    out = tmp_path / f"{name}.net.xml"
    proc = subprocess.run([exe, "--opendrive", str(xodr), "-o", str(out), "--junctions.join",
                           "--tls.guess", "true", "--sidewalks.guess", "true"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Error" not in proc.stderr
    net = ET.parse(out).getroot()
    off = [float(v) for v in net.find("location").get("netOffset").split(",")]
    tls = [j for j in net.findall("junction") if j.get("type") == "traffic_light"]
    assert len(tls) == n_tls
    # each traffic-light junction sits at a 4-way junction of the carla.Map (SUMO -> CARLA: y flipped)
    cmap = load_town(name).map
    centres = [(j.bounding_box.location.x, j.bounding_box.location.y)
               for j, n in _movements_per_junction(cmap, objects=True).items() if n >= 10]
    assert len(centres) == n_tls
    for j in tls:
        x, y = float(j.get("x")) - off[0], -(float(j.get("y")) - off[1])
        assert min(math.hypot(x - cx, y - cy) for cx, cy in centres) < 3.0


def test_generation_is_deterministic_and_committed_files_are_current(tmp_path):
    for make in gen.TOWNS.values():
        assert gen.write_xodr(make()) == gen.write_xodr(make())
    paths = gen.generate(tmp_path)
    for name, path in paths.items():
        assert path.read_bytes() == (TOWNS_DIR / f"{name}.xodr").read_bytes(), f"{name}: regenerate the towns"
    assert gen.main(["--check"]) == 0


def test_generator_rejects_bad_specs():
    style = gen.STREET
    spec = gen.TownSpec("Bad", {"a": (0.0, 0.0), "b": (100.0, 0.0)}, (gen.EdgeSpec("a", "b", style),))
    with pytest.raises(ValueError, match="degree"):
        gen.write_xodr(spec)
    spec = gen.TownSpec("Bad", {"a": (0.0, 0.0)}, (gen.EdgeSpec("a", "zz", style),))
    with pytest.raises(ValueError, match="zz"):
        gen.write_xodr(spec)


@pytest.mark.skipif(not TOWN01.is_file(), reason="CARLA Town01 not in ../shared")
def test_carla_town01_loads_from_map_dir():
    town = load_town("/Game/Carla/Maps/Town01", SHARED_MAPS)
    assert town.name == "Town01" and town.xodr_path == TOWN01
    assert len(town.map.generate_waypoints(2.0)) > 3000
    assert len(spawn_points(town.map)) > 100
