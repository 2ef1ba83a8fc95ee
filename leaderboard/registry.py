"""Agents by registered name or by file path, loaded the way the CARLA leaderboard loads them.

`--agent expert` / `--agent occvla` / `--agent plan-follower` name the project's agents; anything else is a path to a Python file with a
module-level `get_entry_point()` returning the name of an AutonomousAgent subclass in that file.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from leaderboard.autoagents.autonomous_agent import AutonomousAgent

ROOT = Path(__file__).resolve().parents[1]
# name -> (module, file it lives in, what is missing when the file is absent)
REGISTERED_AGENTS: dict[str, tuple[str, Path, str]] = {
    "expert": ("agent.expert", ROOT / "agent" / "expert.py", "the expert agent is not installed"),
    "occvla": (
        "agent.occvla_agent",
        ROOT / "agent" / "occvla_agent.py",
        "the OccVLA agent (and its checkpoint) is not available yet",
    ),
    "plan-follower": (
        "agent.plan_follower",
        ROOT / "agent" / "plan_follower.py",
        "the plan-follower diagnostic agent is not installed",
    ),
}


class AgentLoadError(ValueError):
    """The agent cannot be loaded (one line, names the agent)."""


def load_agent_class(spec: str) -> type:
    """The agent class for a registered name or an agent file path (AgentLoadError on bad input)."""
    if spec in REGISTERED_AGENTS:
        module_name, path, missing = REGISTERED_AGENTS[spec]
        if not path.is_file():
            raise AgentLoadError(
                f"agent '{spec}' is not available: {missing} ({path.relative_to(ROOT)} not found)"
            )
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise AgentLoadError(f"agent '{spec}' failed to import: {type(exc).__name__}: {exc}") from exc
        where = f"agent '{spec}'"
    else:
        path = Path(spec)
        if not path.is_file():
            raise AgentLoadError(
                f"agent '{spec}' is neither a registered name ({', '.join(REGISTERED_AGENTS)}) nor an existing file"
            )
        if path.suffix != ".py":
            raise AgentLoadError(f"agent file '{spec}' is not a Python file")
        # As the leaderboard: the agent's folder goes on sys.path so it can import its siblings.
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = f"_leaderboard_agent_{path.stem}"
        mspec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mspec)
        sys.modules[name] = module
        try:
            mspec.loader.exec_module(module)
        except Exception as exc:
            raise AgentLoadError(
                f"agent file '{spec}' failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        where = f"agent file '{spec}'"
    entry = getattr(module, "get_entry_point", None)
    if not callable(entry):
        raise AgentLoadError(f"{where} has no module-level get_entry_point() function")
    class_name = entry()
    cls = getattr(module, str(class_name), None)
    if cls is None:
        raise AgentLoadError(
            f"{where}: get_entry_point() returned '{class_name}', which the module does not define"
        )
    if not (isinstance(cls, type) and issubclass(cls, AutonomousAgent)):
        raise AgentLoadError(
            f"{where}: class '{class_name}' does not subclass "
            "leaderboard.autoagents.autonomous_agent.AutonomousAgent"
        )
    return cls
