"""The CARLA helper modules published leaderboard agents import, served when CARLA's own are not installed.

Agents written for CARLA's leaderboard import three things beyond the leaderboard package:
`srunner.scenariomanager.carla_data_provider.CarlaDataProvider`, `srunner.scenariomanager.timer.GameTime` and
`agents.navigation.local_planner.RoadOption` (scenario_runner and CARLA's PythonAPI, neither on PyPI).
`install()` appends an import finder to the END of sys.meta_path: Python asks it only for module names no other
finder found, so a real scenario_runner / PythonAPI on sys.path always wins and is never shadowed. The modules it
serves are backed by the simulator of the route being driven (data_provider.py lists the supported calls).

`RouteHelpers` is the evaluator's side, once per route: it binds our CarlaDataProvider to the simulator and
restarts GameTime; with a real scenario_runner and the CARLA backend it sets CarlaDataProvider's client, world
and hero as CARLA's evaluator does; every tick it advances GameTime (and the real CarlaDataProvider's caches).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

from sim.types import FIXED_DELTA_SECONDS

# module path -> our implementation module (None: an empty package)
MODULES: dict[str, str | None] = {
    "srunner": None,
    "srunner.scenariomanager": None,
    "srunner.scenariomanager.carla_data_provider": "leaderboard.carla_helpers.data_provider",
    "srunner.scenariomanager.timer": "leaderboard.carla_helpers.timer",
    "agents": None,
    "agents.navigation": None,
    "agents.navigation.local_planner": "leaderboard.carla_helpers.local_planner",
}
PUBLIC: dict[str, tuple[str, ...]] = {
    "srunner.scenariomanager.carla_data_provider": ("CarlaDataProvider",),
    "srunner.scenariomanager.timer": ("GameTime",),
    "agents.navigation.local_planner": ("RoadOption",),
}
MARKER = "__occvla_carla_helper__"  # set on every module we serve


def is_ours(module: Any) -> bool:
    """True for a module served by this finder (not a real scenario_runner / PythonAPI)."""
    return bool(getattr(module, MARKER, False))


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        name = module.__name__
        setattr(module, MARKER, True)
        target = MODULES[name]
        if target is None:
            module.__path__ = []  # a package: its submodules come from this finder too
            return
        impl = importlib.import_module(target)
        for attr in PUBLIC[name]:
            setattr(module, attr, getattr(impl, attr))
        supported = PUBLIC[name]

        def __getattr__(attr: str) -> Any:  # one line naming what an agent wanted
            raise AttributeError(
                f"{name}.{attr} is not provided by the embedded simulator's CARLA helpers "
                f"(provided: {', '.join(supported)}; install scenario_runner / CARLA's PythonAPI for the rest)"
            )

        module.__getattr__ = __getattr__  # type: ignore[method-assign]


class HelperFinder(importlib.abc.MetaPathFinder):
    """Serves MODULES for names no other finder resolved; never a submodule of a real package."""

    _loader = _Loader()

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        parent = fullname.rpartition(".")[0]
        if parent and not is_ours(sys.modules.get(parent)):
            return None  # the parent is a real installation: its submodules are its own
        return importlib.machinery.ModuleSpec(fullname, self._loader, is_package=MODULES[fullname] is None)


def install() -> None:
    """Make the helper module paths importable (idempotent; a real installation keeps precedence)."""
    if not any(isinstance(f, HelperFinder) for f in sys.meta_path):
        sys.meta_path.append(HelperFinder())


def uninstall() -> None:
    """Remove the finder and forget the modules it served (tests)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, HelperFinder)]
    for name in list(sys.modules):
        if name in MODULES and is_ours(sys.modules[name]):
            del sys.modules[name]


class _Timestamp:
    """What GameTime.on_carla_tick reads (carla.Timestamp's fields)."""

    def __init__(self, frame: int, elapsed_seconds: float) -> None:
        self.frame = frame
        self.elapsed_seconds = elapsed_seconds
        self.delta_seconds = FIXED_DELTA_SECONDS


class RouteHelpers:
    """Feeds whichever CarlaDataProvider / GameTime the agent imported for one route (see the module doc)."""

    def __init__(self, sim: Any, route: list | None = None, seed: int = 0) -> None:
        install()
        self._real_hero: Any = None
        self._timer_mod: Any = None
        self.ours = False
        try:
            self._provider_mod = importlib.import_module("srunner.scenariomanager.carla_data_provider")
            self._timer_mod = importlib.import_module("srunner.scenariomanager.timer")
        except Exception as exc:  # noqa: BLE001 - a broken real install: agents importing it fail on their own
            print(
                f"note: scenario_runner is installed but does not import ({exc}); GameTime not fed",
                file=sys.stderr,
            )
            return
        self.ours = is_ours(self._provider_mod)
        if self.ours:
            from leaderboard.carla_helpers import data_provider

            data_provider.bind(sim, route, seed)
        elif hasattr(sim, "client") and hasattr(sim, "world"):
            self._bind_real(sim, route)
        self._timer_mod.GameTime.restart()

    def _bind_real(self, sim: Any, route: list | None) -> None:
        """A real scenario_runner with the CARLA backend: client, world, map and hero as CARLA's evaluator sets
        them (request_new_actor would register the hero in the actor pool; ours is spawned by the backend)."""
        cdp = self._provider_mod.CarlaDataProvider
        cdp.set_client(sim.client)
        cdp.set_world(sim.world)
        hero = getattr(sim, "ego_actor", None)
        if hero is not None:
            cdp._carla_actor_pool[hero.id] = hero  # noqa: SLF001 - what request_new_actor does
            cdp.register_actor(hero)
            self._real_hero = hero
        if route and hasattr(cdp, "set_ego_vehicle_route"):
            cdp.set_ego_vehicle_route([(t.location, o) for t, o in route])

    def tick(self, frame: int, elapsed_seconds: float) -> None:
        """After every simulator tick, before the agent runs."""
        if self._timer_mod is None:
            return
        self._timer_mod.GameTime.on_carla_tick(_Timestamp(frame, elapsed_seconds))
        if not self.ours and self._real_hero is not None:
            self._provider_mod.CarlaDataProvider.on_carla_tick()

    def release(self) -> None:
        """After the route: unbind ours; take the hero out of a real provider's caches (the backend destroys it)."""
        if self.ours:
            from leaderboard.carla_helpers import data_provider

            data_provider.unbind()
        elif self._real_hero is not None:
            cdp = self._provider_mod.CarlaDataProvider
            cdp._carla_actor_pool.pop(self._real_hero.id, None)  # noqa: SLF001
            for cache in (cdp._actor_velocity_map, cdp._actor_location_map, cdp._actor_transform_map):  # noqa: SLF001
                cache.pop(self._real_hero, None)
            self._real_hero = None
