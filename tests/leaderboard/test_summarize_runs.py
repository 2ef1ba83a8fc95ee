"""scripts/summarize_runs.py: seed tables and failure causes from real results files."""

from __future__ import annotations

from leaderboard.run import main as run_main
from tests.leaderboard.conftest import CRASHING_AGENT, SLOW_AGENT, load_script

ROUTES = """<routes>
  <route id="1" town="OccTown01"><waypoints><position x="98.25" y="209.5" z="0"/>
    <position x="98.25" y="229.5" z="0"/></waypoints></route>
  <route id="2" town="OccTown01"><waypoints><position x="98.25" y="209.5" z="0"/>
    <position x="98.25" y="239.5" z="0"/></waypoints></route>
</routes>
"""


def test_summary_of_two_seeds_and_a_crashing_agent(tmp_path, capsys):
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTES)
    files = []
    for name, text, seed in (("slow", SLOW_AGENT, 0), ("slow", SLOW_AGENT, 1), ("crash", CRASHING_AGENT, 0)):
        agent = tmp_path / f"{name}.py"
        agent.write_text(text)
        out = tmp_path / f"{name}_seed{seed}.json"
        assert (
            run_main(
                [
                    "--agent",
                    str(agent),
                    "--routes",
                    str(routes),
                    "--checkpoint",
                    str(out),
                    "--seed",
                    str(seed),
                    "--vehicles",
                    "0",
                    "--walkers",
                    "0",
                    "--no-progress",
                    "--no-report",
                ]
            )
            == 0
        )
        files.append(out)
    mod = load_script("summarize_runs")
    slow = mod.summarize(files[0])
    assert slow["routes"] == 2 and slow["completed"] == 2 and slow["ds"] == 100.0
    assert 0.04 < slow["km"] < 0.06 and slow["collisions_per_km"] == 0.0
    crash = mod.summarize(files[2])
    assert crash["completed"] < 2 and sum(crash["causes"].values()) >= 1  # the crash is a failure cause
    capsys.readouterr()
    assert mod.main(["--label", "slow", str(files[0]), str(files[1]), "--label", "crash", str(files[2])]) == 0
    text = capsys.readouterr().out
    assert "| **slow: mean ± sd** | 2 | **100.00 ± 0.00** |" in text
    assert "| crash |" in text and "| slow | none |" in text
    assert mod.main([str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
