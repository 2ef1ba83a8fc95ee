"""The expert closed loop on a generated town: a short generated route that changes lane, in SUMO traffic, run the
way a user runs it (`leaderboard/run.py --routes <generated file>`). Real simulator, traffic, planner, criteria."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scenarios.make_routes import RouteSpec, generate_routes
from sim.embedded.maps import load_town
from sim.route_planner import LANE_CHANGES, interpolate_trajectory
from sim.routes import write_routes_xml

REPO = Path(__file__).resolve().parents[2]
TOWN = "OccGen-0"


def test_expert_completes_a_generated_route_with_a_lane_change_in_traffic(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cmap = load_town(TOWN, cache_dir=cache).map
    routes = generate_routes(TOWN, RouteSpec(count=1, length=220.0, seed=2, min_lane_changes=1), cmap=cmap)
    dense = interpolate_trajectory(cmap, routes[0].keypoint_locations(), 1.0)[1]
    assert any(o in LANE_CHANGES for _, o in dense)
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
