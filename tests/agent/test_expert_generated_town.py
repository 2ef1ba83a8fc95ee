"""The expert closed loop on a generated town: a short generated route that changes lane and an on-ramp merge onto a
highway, in SUMO traffic, run the way a user runs it (`leaderboard/run.py --routes <generated file>`). Real simulator, traffic, planner, criteria."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scenarios.make_routes import RouteSpec, generate_routes
from sim.embedded.maps import load_town
from sim.embedded.towns.occgen import occgen_spec
from sim.route_planner import LANE_CHANGES, interpolate_trajectory
from sim.routes import RouteConfig, write_routes_xml
from sim.weather import weather_from_name, weather_to_dict

REPO = Path(__file__).resolve().parents[2]
TOWN = "OccGen-0"
HIGHWAY_SEED = 1  # a 3+3-lane highway with an on-ramp (tests/sim/test_occgen.py)


def test_expert_completes_a_generated_route_with_a_lane_change_in_traffic(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cmap = load_town(TOWN, cache_dir=cache).map
    routes = generate_routes(TOWN, RouteSpec(count=1, length=220.0, seed=2, min_lane_changes=1), cmap=cmap)
    dense = interpolate_trajectory(cmap, routes[0].keypoint_locations(), 1.0)[1]
    assert any(o in LANE_CHANGES for _, o in dense)
    _run_clean(routes, tmp_path)


def test_expert_merges_from_an_on_ramp_into_highway_traffic(tmp_path: Path) -> None:
    """Down the on-ramp of a generated highway town, into the acceleration lane and over into the outermost
    through lane (gap acceptance against the SUMO traffic on it, driving its lane limit) without a collision."""
    cache = tmp_path / "cache"
    town = f"OccGen-{HIGHWAY_SEED}"
    cmap = load_town(town, cache_dir=cache).map
    spec = occgen_spec(HIGHWAY_SEED)
    road = {e.name: i + 1 for i, e in enumerate(spec.edges) if e.name}
    link = next(e for e in spec.edges if e.name == "Highway E")
    start = cmap.get_waypoint_xodr(road["On-ramp"], -1, 15.0)
    end = cmap.get_waypoint_xodr(road["Highway E"], -link.style.lanes, link.aux_start + link.aux_taper + 40.0)
    kps = [start.transform, end.transform]
    dense = interpolate_trajectory(cmap, [t.location for t in kps], 1.0)[1]
    assert sum(1 for _, o in dense if o in LANE_CHANGES) == 1  # the merge
    weather = weather_to_dict(weather_from_name("ClearNoon"))
    route = RouteConfig(
        id="0",
        town=town,
        keypoints=[(t.location.x, t.location.y, 0.0) for t in kps],
        keypoint_yaws=[t.rotation.yaw for t in kps],
        weathers=[(0.0, weather)],
        format="1.0",
    )
    _run_clean([route], tmp_path)


def _run_clean(routes: list[RouteConfig], tmp_path: Path) -> None:
    """Run the expert on `routes` with `leaderboard/run.py` in traffic; the route must finish with no infraction."""
    route_file = tmp_path / "routes.xml"
    write_routes_xml(routes, route_file)
    (tmp_path / "expert.yaml").write_text(
        "cameras: false\n"
    )  # driving from ground truth: no rendering needed
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "leaderboard" / "run.py"),
            "--agent",
            "expert",
            "--agent-config",
            str(tmp_path / "expert.yaml"),
            "--routes",
            str(route_file),
            "--scenarios-mode",
            "off",
            "--vehicles",
            "40",
            "--seed",
            "0",
            "--checkpoint",
            str(tmp_path / "res.json"),
            "--no-progress",
            "--no-report",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "res.json").read_text())["_checkpoint"]["records"][0]
    inf = record["infractions"]
    assert record["scores"]["score_route"] == 100.0, record
    assert not inf["collisions_vehicle"] and not inf["collisions_pedestrian"] and not inf["collisions_layout"]
    assert not inf["red_light"] and not inf["outside_route_lanes"]


def test_expert_route_limits_follow_the_map_up_to_90_on_highways_and_stay_capped_in_town(
    tmp_path: Path,
) -> None:
    """The expert's speed limits along a route over a highway town: the map's 90 km/h on the highway stretch (read
    from the map's lane limits, though the route starts past the road's sign), the links' own limits, and its town
    cap on streets with a sidewalk (faster town streets included)."""
    from agent.expert_config import ExpertConfig
    from agent.route_plan import RoutePlan

    cmap = load_town(f"OccGen-{HIGHWAY_SEED}", cache_dir=tmp_path / "cache").map
    spec = occgen_spec(HIGHWAY_SEED)
    road = {e.name: i + 1 for i, e in enumerate(spec.edges) if e.name}
    kmh = {i + 1: e.style.speed_kmh for i, e in enumerate(spec.edges)}
    # the west link, the highway from past its sign, through the merge junction onto the east link
    kps = [
        cmap.get_waypoint_xodr(road[n], -1, s)
        for n, s in (("Highway W", 5.0), ("Highway", 30.0), ("Highway E", 20.0))
    ]
    dense = interpolate_trajectory(cmap, [w.transform.location for w in kps], 1.0)[1]
    cfg = ExpertConfig()
    plan = RoutePlan.from_dense_route(dense, cmap, cfg)
    town_route = generate_routes(
        f"OccGen-{HIGHWAY_SEED}", RouteSpec(count=1, length=300.0, seed=3), cmap=cmap
    )[0]
    town_dense = interpolate_trajectory(cmap, town_route.keypoint_locations(), 1.0)[1]
    town_plan = RoutePlan.from_dense_route(town_dense, cmap, cfg)
    assert (
        max(kmh.get(cmap.get_waypoint(t.location).road_id, 0.0) for t, _ in town_dense)
        > cfg.town_max_speed_kmh
    )
    for t, _ in dense:
        wp = cmap.get_waypoint(t.location)
        if wp.is_junction:
            continue
        near = np.hypot(plan.xy[:, 0] - t.location.x, plan.xy[:, 1] - t.location.y)  # (N,)
        got = plan.speed_limit[int(np.argmin(near))] * 3.6
        assert got == pytest.approx(min(kmh[wp.road_id], cfg.max_speed_kmh), abs=0.01), (wp.road_id, got)
    assert plan.speed_limit.max() * 3.6 == pytest.approx(90.0)
    assert town_plan.speed_limit.max() * 3.6 <= cfg.town_max_speed_kmh + 1e-6
