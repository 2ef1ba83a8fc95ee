"""Scenarios, sensor faults and weather sets registered by id, built by one factory (Gymnasium-style).

    register_scenario("Scenario3", "scenarios.leaderboard1:DynamicObjectCrossing")
    scenario = make_scenario("Scenario3", distance=20.0)

Ids are explicit strings: leaderboard-1.0 JSON names ('Scenario1' ... 'Scenario10'), 'occlusion/<name>',
'fault/<name>', 'weather/<name>'. Nothing is discovered by globbing folders or matching class names, so a typo is
a one-line error naming the id, never a silently skipped scenario. The built-in entries are registered when the
`scenarios` package is imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("scenario", "fault", "weather")


class ScenarioRegistryError(ValueError):
    """An unknown or duplicate id, or a bad entry point (one line, names the id)."""


@dataclass(frozen=True)
class ScenarioSpec:
    """One registered id: what to build (a 'module:attr' string or a callable) and its fixed keyword arguments."""

    id: str
    entry_point: str | Callable[..., Any]
    kind: str = "scenario"  # 'scenario' | 'fault' | 'weather'
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def load(self) -> Callable[..., Any]:
        """The class / factory behind the entry point."""
        if callable(self.entry_point):
            return self.entry_point
        module_name, sep, attr = self.entry_point.partition(":")
        if not sep or not module_name or not attr:
            raise ScenarioRegistryError(
                f"scenario '{self.id}': entry point '{self.entry_point}' is not of the form 'module:attr'")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ScenarioRegistryError(f"scenario '{self.id}': cannot import '{module_name}': {exc}") from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ScenarioRegistryError(
                f"scenario '{self.id}': module '{module_name}' has no attribute '{attr}'") from None


_REGISTRY: dict[str, ScenarioSpec] = {}


def register_scenario(id: str, entry_point: str | Callable[..., Any], *, kind: str = "scenario",
                      description: str = "", **kwargs: Any) -> None:
    """Register `id`; `kwargs` are passed to the entry point on every make_scenario(id) (callers may override)."""
    if not isinstance(id, str) or not id or id != id.strip():
        raise ScenarioRegistryError(f"scenario id must be a non-empty string without outer spaces, got {id!r}")
    if id in _REGISTRY:
        raise ScenarioRegistryError(f"scenario id '{id}' is already registered")
    if kind not in KINDS:
        raise ScenarioRegistryError(f"scenario '{id}': unknown kind '{kind}' (valid: {', '.join(KINDS)})")
    if not (callable(entry_point) or isinstance(entry_point, str)):
        raise ScenarioRegistryError(f"scenario '{id}': entry point must be 'module:attr' or a callable")
    _REGISTRY[id] = ScenarioSpec(id, entry_point, kind, dict(kwargs), description)


def unregister_scenario(id: str) -> None:
    """Remove an id (tests and plugins that re-register)."""
    if _REGISTRY.pop(id, None) is None:
        raise ScenarioRegistryError(f"no scenario registered as '{id}'")


def scenario_spec(id: str) -> ScenarioSpec:
    """The spec of a registered id (ScenarioRegistryError listing near ids when unknown)."""
    try:
        return _REGISTRY[id]
    except KeyError:
        prefix = id.split("/")[0] if "/" in id else ""
        near = [k for k in _REGISTRY if prefix and k.startswith(prefix + "/")] or sorted(_REGISTRY)
        raise ScenarioRegistryError(f"unknown scenario id '{id}' (registered: {', '.join(near)})") from None


def is_registered(id: str) -> bool:
    return id in _REGISTRY


def registered_ids(kind: str | None = None) -> list[str]:
    """Registered ids in registration order, optionally of one kind."""
    if kind is not None and kind not in KINDS:
        raise ScenarioRegistryError(f"unknown kind '{kind}' (valid: {', '.join(KINDS)})")
    return [k for k, s in _REGISTRY.items() if kind is None or s.kind == kind]


def make_scenario(id: str, **params: Any) -> Any:
    """Build a fresh scenario / fault / weather set by id; `params` override the registered kwargs."""
    spec = scenario_spec(id)
    factory = spec.load()
    obj = factory(**{**spec.kwargs, **params})
    if hasattr(obj, "__dict__"):
        try:
            obj.id = id
        except AttributeError:
            pass
    return obj
