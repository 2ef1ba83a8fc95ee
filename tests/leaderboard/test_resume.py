"""A run killed with SIGKILL and resumed with --resume ends with the same results as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.leaderboard.conftest import SHORT, STRAIGHT, route_xml

ROOT = Path(__file__).resolve().parents[2]


def cmd(tmp_path: Path, agent: Path, routes: Path, checkpoint: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "leaderboard" / "run.py"),
        "--agent",
        str(agent),
        "--routes",
        str(routes),
        "--checkpoint",
        str(tmp_path / checkpoint),
        "--debug-checkpoint",
        str(tmp_path / "live.txt"),
        "--vehicles",
        "3",
        "--walkers",
        "0",
        "--no-progress",
        "--no-report",
        *extra,
    ]


def strip_wallclock(data: dict) -> dict:
    """Everything but system durations (wall-clock time differs between runs)."""
    data = json.loads(json.dumps(data))
    for r in data["_checkpoint"]["records"]:
        r["meta"].pop("duration_system")
    data["_checkpoint"]["global_record"]["meta"].pop("duration_system")
    return data


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, slow_agent_file):
    routes = tmp_path / "routes.xml"
    routes.write_text(
        route_xml([("1", "OccTown01", STRAIGHT), ("2", "OccTown01", SHORT), ("3", "OccTown01", STRAIGHT)])
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    full = subprocess.run(
        cmd(tmp_path, slow_agent_file, routes, "full.json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert full.returncode == 0, full.stderr[-2000:]

    proc = subprocess.Popen(
        cmd(tmp_path, slow_agent_file, routes, "killed.json"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed_at = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        p = tmp_path / "killed.json"
        if p.exists():
            try:
                done = json.loads(p.read_text())["_checkpoint"]["progress"][0]
            except (json.JSONDecodeError, KeyError):
                done = 0  # never happens with atomic writes, but do not fail the poll on it
            if done >= 1:
                proc.send_signal(signal.SIGKILL)
                killed_at = done
                break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert killed_at is not None and killed_at < 3, "the run finished before it could be killed"
    partial = json.loads((tmp_path / "killed.json").read_text())  # the file is whole after a SIGKILL
    assert partial["entry_status"] == "Started" and len(partial["_checkpoint"]["records"]) == killed_at

    resumed = subprocess.run(
        cmd(tmp_path, slow_agent_file, routes, "killed.json", "--resume"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming: {killed_at} of 3 routes already finished" in resumed.stderr
    a = strip_wallclock(json.loads((tmp_path / "full.json").read_text()))
    b = strip_wallclock(json.loads((tmp_path / "killed.json").read_text()))
    assert a == b


def _route_workers() -> set[int]:
    """PIDs of Ray route-worker processes (Ray titles them ray::RouteWorker...)."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(b"ray::RouteWorker"):
                    out.add(int(d.name))
            except OSError:
                pass
    return out


def test_sigterm_stops_the_ray_workers_at_once_and_keeps_the_results(tmp_path, slow_agent_file):
    """A terminated run (kill, a batch system's time limit) must not leave its Ray workers driving on."""
    routes = tmp_path / "routes.xml"
    routes.write_text(route_xml([(str(i), "OccTown01", STRAIGHT) for i in range(1, 13)]))  # more than 2 s of work
    before = _route_workers()
    proc = subprocess.Popen(
        cmd(tmp_path, slow_agent_file, routes, "term.json", "--workers", "2"),
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(_route_workers() - before) < 2:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before its workers started"
    time.sleep(2.0)  # the workers are driving their first routes
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: the finished routes are in" in err and "--resume" in err
    deadline = time.time() + 20
    while time.time() < deadline and _route_workers() - before:
        time.sleep(0.2)
    assert not _route_workers() - before, "Ray route workers outlived the terminated run"
    assert json.loads((tmp_path / "term.json").read_text())["entry_status"] == "Started"  # whole, resumable
