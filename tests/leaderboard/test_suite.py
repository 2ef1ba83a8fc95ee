"""The robustness suite end to end (`run.py --suite`): cells never collide, the same seed gives identical cell
results, a killed suite resumed gives the same table; and the summary's arithmetic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leaderboard.run import main
from leaderboard.suite import Cell, SuiteConfig, SuiteError, load_suite, markdown_table, summarise

ROOT = Path(__file__).resolve().parents[2]
TINY = """
routes_subset: "0"
weathers: [ClearNoon]
scenarios: [DynamicObjectCrossing]
faults: [delayed_control]
severities: [3]
max_ticks: 240
vehicles: 4
walkers: 2
"""
EXPERT = ["--agent", "expert", "--agent-config", str(ROOT / "configs" / "agent" / "expert_eval.yaml")]


def records(path: Path) -> list[dict]:
    return json.loads(path.read_text())["_checkpoint"]["records"]


def comparable(rec: dict) -> dict:
    """A record without its wall-clock fields."""
    rec = json.loads(json.dumps(rec))
    rec["meta"].pop("duration_system", None)
    return rec


def table(path: Path) -> str:
    return (path.parent / "robustness.md").read_text().split("\nCommand:")[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("suite")
    (d / "tiny.yaml").write_text(TINY)
    return d


@pytest.fixture(scope="module")
def first_run(tiny) -> Path:
    out = tiny / "a" / "results.json"
    assert main([*EXPERT, "--suite", str(tiny / "tiny.yaml"), "--checkpoint", str(out), "--no-progress"]) == 0
    return out


def test_every_record_carries_its_cell_and_ids_never_collide(first_run) -> None:
    recs = records(first_run)
    cells = [Cell(**r["cell"]) for r in recs]
    assert cells == [
        Cell(),
        Cell("ClearNoon", "DynamicObjectCrossing"),
        Cell("ClearNoon", "none", "delayed_control", 3),
    ]
    assert len({r["route_id"] for r in recs}) == len(recs)
    assert all(c.key in r["route_id"] for c, r in zip(cells, recs))
    summary = json.loads((first_run.parent / "robustness_summary.json").read_text())
    assert summary["cells"][0]["resilience"] == pytest.approx(1.0)
    for name in ("robustness.md", "heatmap_weather_scenario.png", "heatmap_fault_severity.png"):
        assert (first_run.parent / name).stat().st_size > 0


def test_same_seed_gives_identical_cell_results(tiny, first_run) -> None:
    out = tiny / "b" / "results.json"
    assert main([*EXPERT, "--suite", str(tiny / "tiny.yaml"), "--checkpoint", str(out), "--no-progress"]) == 0
    assert [comparable(r) for r in records(out)] == [comparable(r) for r in records(first_run)]
    assert table(out) == table(first_run)


def test_killed_suite_resumed_gives_the_same_table(tiny, first_run) -> None:
    out = tiny / "c" / "results.json"
    cmd = [
        sys.executable,
        str(ROOT / "leaderboard" / "run.py"),
        *EXPERT,
        "--suite",
        str(tiny / "tiny.yaml"),
        "--checkpoint",
        str(out),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # kill it once the first cell is written
            if out.exists():
                try:
                    if len(records(out)) >= 1:
                        break
                except (json.JSONDecodeError, KeyError):
                    pass
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    n_done = len(records(out))
    assert 1 <= n_done < 3, f"killed after {n_done} of 3 runs"
    assert (
        main(
            [
                *EXPERT,
                "--suite",
                str(tiny / "tiny.yaml"),
                "--checkpoint",
                str(out),
                "--resume",
                "--no-progress",
            ]
        )
        == 0
    )
    assert table(out) == table(first_run)
    assert [comparable(r) for r in records(out)] == [comparable(r) for r in records(first_run)]


def _rec(cell: Cell, route: str, ds: float, collided: bool = False) -> dict:
    return {
        "route_id": f"RouteScenario_{route}[{cell.key}]_rep0",
        "cell": cell.as_dict(),
        "scores": {"score_composed": ds, "score_route": 100.0, "score_penalty": ds / 100.0},
        "infractions": {"collisions_pedestrian": [{"x": 0}] if collided else []},
    }


def test_summary_is_relative_to_the_same_routes_in_the_baseline() -> None:
    suite = SuiteConfig(
        "t",
        weathers=["ClearNoon", "HardRainNight"],
        scenarios=["DynamicObjectCrossing"],
        faults=["motion_blur"],
        severities=[1, 3],
    )
    cells = suite.cells()
    assert cells[0] == Cell() and len(cells) == 1 + 3 + 2
    recs = [
        _rec(Cell(), "0", 80.0),
        _rec(Cell(), "1", 100.0),
        _rec(Cell("ClearNoon", "DynamicObjectCrossing"), "0", 40.0, collided=True),
        _rec(Cell("ClearNoon", "DynamicObjectCrossing"), "1", 50.0),
        _rec(Cell("HardRainNight"), "0", 90.0),
        _rec(Cell("HardRainNight"), "1", 90.0),
        _rec(Cell("ClearNoon", "none", "motion_blur", 1), "0", 45.0),
    ]  # one route of two: incomplete
    s = summarise(recs, cells, ["0", "1"])
    rows = {r["key"]: r for r in s["cells"]}
    assert s["baseline_driving_score"] == 90.0
    assert rows[Cell("ClearNoon", "DynamicObjectCrossing").key]["resilience"] == pytest.approx(0.5)
    assert rows[Cell("ClearNoon", "DynamicObjectCrossing").key]["collision_rate"] == 0.5
    assert rows[Cell("HardRainNight").key]["resilience"] == pytest.approx(1.0)
    assert rows[Cell("ClearNoon", "none", "motion_blur", 1).key]["resilience"] is None  # incomplete
    assert s["mean_resilience"] == pytest.approx((0.5 + 1.0) / 2)
    md = markdown_table(suite, s, "agent")
    assert "| ClearNoon | 1.00 (90.0) | 0.50 (45.0) |" in md and "| motion_blur | - | - |" not in md


def test_cells_run_coarse_to_fine() -> None:
    from leaderboard.suite import run_order

    suite = SuiteConfig(
        "t",
        weathers=["ClearNoon", "HardRainNight"],
        scenarios=["ParkingCutIn"],
        faults=["motion_blur"],
        severities=[1, 3],
    )
    assert run_order(suite, suite.cells()) == [
        Cell(),
        Cell("ClearNoon", "ParkingCutIn"),
        Cell("ClearNoon", "none", "motion_blur", 3),
        Cell("HardRainNight"),
        Cell("ClearNoon", "none", "motion_blur", 1),
        Cell("HardRainNight", "ParkingCutIn"),
    ]


def test_bad_suites_are_one_line_errors(tmp_path, capsys) -> None:
    with pytest.raises(SuiteError, match="unknown suite"):
        load_suite("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("weathers: [Sunny]\n")
    with pytest.raises(SuiteError, match="unknown weather 'Sunny'"):
        load_suite(str(bad))
    bad.write_text("faults: [blur]\n")
    with pytest.raises(SuiteError, match="unknown fault 'blur'"):
        load_suite(str(bad))
    bad.write_text("severities: [one]\n")
    with pytest.raises(SuiteError, match="could not be converted to Integer"):
        load_suite(str(bad))
    bad.write_text("wheathers: [ClearNoon]\n")
    with pytest.raises(SuiteError, match="unknown key"):
        load_suite(str(bad))
    assert load_suite("robustness").cells()[0] == Cell()
    quick = load_suite("robustness-quick")
    assert len(quick.cells()) == 2 * 3 + 3 * 2  # the baseline is ClearNoon x none
    code = main([*EXPERT, "--suite", "robustness-quick", "--weather", "ClearNoon"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --suite sets")
