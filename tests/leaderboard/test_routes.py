"""Route files (both leaderboard formats, the shared 1.0 files included), subsets, planner and downsampling."""

from __future__ import annotations

import itertools
from pathlib import Path

import carla
import pytest

from sim.geo import gnss_to_location
from sim.route_planner import (
    GlobalRoutePlanner,
    RoadOption,
    downsample_route,
    interpolate_trajectory,
    route_length,
)
from sim.routes import (
    RouteFileError,
    load_scenario_annotations,
    match_scenarios_to_route,
    parse_routes_file,
    parse_routes_subset,
    write_routes_xml,
)
from tests.leaderboard.conftest import LB1, MAPS, requires_shared

TOWNS = Path(__file__).resolve().parents[2] / "sim" / "embedded" / "towns"

V2 = """<routes>
 <route id="7" town="OccTown01">
  <weathers>
   <weather route_percentage="0" cloudiness="0" sun_altitude_angle="90" precipitation="0"/>
   <weather route_percentage="100" cloudiness="100" sun_altitude_angle="10" precipitation="80"/>
  </weathers>
  <waypoints><position x="98.25" y="209.5" z="0"/><position x="98.25" y="239.5" z="0"/></waypoints>
  <scenarios>
   <scenario name="ParkedObstacle_1" type="ParkedObstacle">
     <trigger_point x="98.25" y="215.0" z="0" yaw="90"/>
     <distance value="40"/>
   </scenario>
  </scenarios>
 </route>
</routes>
"""


def test_road_option_values_are_carlas():
    assert [o.value for o in RoadOption] == [-1, 1, 2, 3, 4, 5, 6]
    assert RoadOption.CHANGELANELEFT.name == "CHANGELANELEFT"


@requires_shared(LB1)
def test_shared_leaderboard_1_files_parse():
    train = parse_routes_file(LB1 / "routes_training.xml")
    assert len(train) == 50 and {r.format for r in train} == {"1.0"}
    assert [r.id for r in train if r.town == "Town01"] == [str(i) for i in range(10)]
    assert train[0].route_id == "RouteScenario_0_rep0" and len(train[0].keypoints) >= 2
    assert train[0].weathers[0][1]["sun_altitude_angle"] == 70.0
    assert len(parse_routes_file(LB1 / "routes_devtest.xml")) >= 1
    ann = load_scenario_annotations(LB1 / "all_towns_traffic_scenarios_public.json")
    assert "Town01" in ann


def test_leaderboard_2_format(tmp_path):
    p = tmp_path / "r.xml"
    p.write_text(V2)
    (r,) = parse_routes_file(p)
    assert r.format == "2.0" and r.id == "7" and r.town == "OccTown01" and len(r.keypoints) == 2
    assert r.scenarios[0].type == "ParkedObstacle" and r.scenarios[0].parameters["distance"] == {
        "value": "40"
    }
    assert r.scenarios[0].trigger_points == [(98.25, 215.0, 0.0, 90.0)]
    mid = r.weather_at(50.0)  # interpolated by route percentage
    assert mid.cloudiness == pytest.approx(50.0) and mid.precipitation == pytest.approx(40.0)
    assert r.weather_at(0.0).cloudiness == 0.0 and r.weather_at(100.0).sun_altitude_angle == pytest.approx(
        10.0
    )
    out = tmp_path / "w.xml"  # write -> read round trip in both formats
    for fmt in ("1.0", "2.0"):
        write_routes_xml([r], out, fmt)
        (r2,) = parse_routes_file(out)
        assert r2.format == fmt and r2.keypoints == r.keypoints


def test_routes_subset_syntax():
    ids = [str(i) for i in range(10)]
    assert parse_routes_subset("0-3", ids) == ["0", "1", "2", "3"]
    assert parse_routes_subset("7,1", ids) == ["1", "7"]
    assert parse_routes_subset("1,3,5-6", ids) == ["1", "3", "5", "6"]
    for bad, text in (
        ("12", "no route with id '12'"),
        ("5-2", "ends before it starts"),
        ("1,1", "selected twice"),
    ):
        with pytest.raises(RouteFileError, match=text):
            parse_routes_subset(bad, ids)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("<routes><route id='0' town='X'>", "not valid XML"),
        ("<routes></routes>", "no <route> elements"),
        (
            "<routes><route id='0' town='Town01'><waypoint x='1' y='2' z='0'/></route></routes>",
            "at least 2 waypoints",
        ),
        ("<routes><route id='0'><waypoint x='1' y='2' z='0'/></route></routes>", "no 'town'"),
        (
            "<routes><route id='0' town='T'><waypoint x='a' y='2'/><waypoint x='1' y='2'/></route></routes>",
            "x='a' is not a number",
        ),
        (
            "<routes><route id='0' town='T'><weather cloudiness='500'/><waypoint x='1' y='2'/><waypoint x='3' y='2'/>"
            "</route></routes>",
            "cloudiness=500 out of range",
        ),
    ],
)
def test_malformed_route_files(tmp_path, content, message):
    p = tmp_path / "bad.xml"
    if content is not None:
        p.write_text(content)
    with pytest.raises(RouteFileError, match=message) as exc:
        parse_routes_file(p)
    assert "\n" not in str(exc.value)


@requires_shared(LB1, MAPS)
def test_town01_routes_densify_with_turns():
    cmap = carla.Map("Town01", (MAPS / "Town01.xodr").read_text())
    grp = GlobalRoutePlanner(cmap, 1.0)
    ann = load_scenario_annotations(LB1 / "all_towns_traffic_scenarios_public.json")
    seen: set[RoadOption] = set()
    for r in parse_routes_file(LB1 / "routes_training.xml", "0-9"):
        gps, route = interpolate_trajectory(cmap, r.keypoint_locations(), 1.0, planner=grp)
        gaps = [route[i][0].location.distance(route[i - 1][0].location) for i in range(1, len(route))]
        assert max(gaps) < 1.6, r.id  # dense: about one point per metre
        end = carla.Location(*r.keypoints[-1])
        assert route[-1][0].location.distance(end) < 2.0
        assert route[0][0].location.distance(carla.Location(*r.keypoints[0])) < 2.0
        seen |= {o for _, o in route}
        assert route_length(route) > 300
        lat, lon, z = gps[10][0]["lat"], gps[10][0]["lon"], gps[10][0]["z"]
        x, y, _ = gnss_to_location(lat, lon, z)
        assert abs(x - route[10][0].location.x) < 1e-3 and abs(y - route[10][0].location.y) < 1e-3
    assert {RoadOption.LEFT, RoadOption.RIGHT, RoadOption.STRAIGHT, RoadOption.LANEFOLLOW} <= seen
    sc = match_scenarios_to_route("Town01", route, ann)
    assert all(s.parameters["subtype"] for s in sc)


def test_route_0_of_town01_turns_left_first():
    if not (MAPS / "Town01.xodr").exists() or not (LB1 / "routes_training.xml").exists():
        pytest.skip("shared CARLA data not present")
    cmap = carla.Map("Town01", (MAPS / "Town01.xodr").read_text())
    (r,) = parse_routes_file(LB1 / "routes_training.xml", "0")
    _, route = interpolate_trajectory(cmap, r.keypoint_locations())
    seq = [k for k, _ in itertools.groupby(o for _, o in route)]
    assert seq[:2] == [
        RoadOption.LANEFOLLOW,
        RoadOption.LEFT,
    ]  # north, then left (west) at the first junction


def test_lane_changes_on_the_builtin_town():
    cmap = carla.Map("OccTown01", (TOWNS / "OccTown01.xodr").read_text())
    grp = GlobalRoutePlanner(cmap, 1.0)
    lane_changes = [(u, v) for u, v, d in grp.graph.edges(data=True) if d["kind"] != RoadOption.LANEFOLLOW]
    assert lane_changes, "OccTown01 has multi-lane roads"
    wps = [
        w for w in cmap.generate_waypoints(4.0) if w.lane_type == carla.LaneType.Driving and not w.is_junction
    ]
    seen = set()
    for a, b in zip(wps[::7], wps[3::7]):
        trace = grp.trace_route(a.transform.location, b.transform.location)
        assert trace and trace[-1][0].transform.location.distance(b.transform.location) < 8.0
        seen |= {o for _, o in trace}
    assert {RoadOption.CHANGELANELEFT, RoadOption.CHANGELANERIGHT} & seen
    assert {RoadOption.LEFT, RoadOption.RIGHT, RoadOption.STRAIGHT} <= seen


def test_downsample_route_rules():
    def pt(x: float, o: RoadOption):
        return (carla.Transform(carla.Location(x, 0, 0)), o)

    lf, left, cl = RoadOption.LANEFOLLOW, RoadOption.LEFT, RoadOption.CHANGELANELEFT
    route = (
        [pt(i, lf) for i in range(30)]
        + [pt(30 + i, left) for i in range(5)]
        + [pt(35, cl), pt(36, cl)]
        + [pt(37 + i, lf) for i in range(20)]
    )
    ids = downsample_route(route, 10)
    assert ids[0] == 0 and 30 in ids and 35 in ids and 36 in ids and ids[-1] == len(route) - 1
    assert 37 not in ids  # the option change right after a lane change is not kept
    assert 12 in ids and 24 in ids  # every time more than 10 m were travelled
