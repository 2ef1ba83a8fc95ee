"""The plan-follower diagnostic: the expert's plan through OccVLA's control path (rate, dead reckoning, controller)
must drive a route cleanly, or a learned agent's failures could be the control path's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leaderboard.registry import load_agent_class
from scenarios.make_routes import RouteSpec, generate_routes
from sim.embedded.maps import load_town
from sim.routes import write_routes_xml

REPO = Path(__file__).resolve().parents[2]


def test_plan_follower_completes_a_generated_route_at_occvlas_rate(tmp_path: Path) -> None:
    cmap = load_town("OccGen-0", cache_dir=tmp_path / "cache").map
    routes = generate_routes("OccGen-0", RouteSpec(count=1, length=200.0, seed=3), cmap=cmap)
    write_routes_xml(routes, tmp_path / "routes.xml")
    proc = subprocess.run(
        [sys.executable, str(REPO / "leaderboard" / "run.py"), "--agent", "plan-follower", "--routes",
         str(tmp_path / "routes.xml"), "--scenarios-mode", "off", "--seed", "0", "--checkpoint",
         str(tmp_path / "res.json"), "--no-progress", "--no-report"],
        capture_output=True, text=True, cwd=tmp_path, timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "res.json").read_text())["_checkpoint"]["records"][0]
    inf = record["infractions"]
    assert record["scores"]["score_route"] == 100.0, record
    assert not inf["collisions_vehicle"] and not inf["collisions_pedestrian"] and not inf["collisions_layout"], inf
    assert not inf["outside_route_lanes"], inf


def test_plan_follower_config_errors_are_one_line(tmp_path: Path) -> None:
    cls = load_agent_class("plan-follower")
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy_every: 0\n")
    with pytest.raises(ValueError, match="policy_every must be >= 1"):
        cls(str(bad))
    bad.write_text("policy_evry: 6\n")
    with pytest.raises(ValueError, match="unknown expert config key"):
        cls(str(bad))
    bad.write_text("policy_every: [3\n")
    with pytest.raises(ValueError, match="not valid YAML") as err:
        cls(str(bad))
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="config file not found"):
        cls(str(tmp_path / "missing.yaml"))
    ok = tmp_path / "ok.yaml"
    ok.write_text("policy_every: 3\n")
    agent = cls(str(ok))
    assert agent.policy_every == 3 and not agent.config.cameras
    assert all(s["type"] != "sensor.camera.rgb" for s in agent.sensors())
