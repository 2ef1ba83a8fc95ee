"""DESIGN.md layering: occvla imports no simulator/agent code; sim imports no agent/leaderboard/scenarios code."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "occvla": {"sim", "agent", "leaderboard", "scenarios"},
    "sim": {"agent", "leaderboard", "scenarios"},
    "scenarios": {"agent", "leaderboard"},
    "agent": {"leaderboard"},  # except the agent base class module path, identical to CARLA's
}
ALLOWED = {"leaderboard.autoagents.autonomous_agent", "leaderboard.autoagents"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
    return mods


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package):
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for mod in imported_modules(path):
            if mod in ALLOWED:
                continue
            if mod.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)
