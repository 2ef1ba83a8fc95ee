"""Run a route's scenarios: build them from route configs (or add one along the route), tick, clean up.

The evaluator (leaderboard/route_runner.py) owns one ScenarioManager per route. Scenario types without a
registered implementation, and scenarios that cannot be placed on this map, are skipped with a reason,
never an error: a route still runs and scores without them.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import carla
import numpy as np

from scenarios.base import Scenario, ScenarioError
from scenarios.geometry import Polyline, junction_span
from scenarios.registry import ScenarioRegistryError, is_registered, make_scenario, scenario_spec
from sim.blueprints import classify
from sim.embedded.collision import obb_overlap  # pure geometry (numpy)
from sim.protocol import Simulator
from sim.routes import ScenarioConfig
from sim.types import GroundTruth

SCENARIOS_MODES = ("off", "route")
CLASH_MARGIN_M = 0.25  # added to each half size: actors closer than this stand on each other


def scenario_params(cfg: ScenarioConfig) -> tuple[dict[str, Any], list[str]]:
    """A route scenario's parameters as keyword arguments of its registered type, converted to the field types
    (route XML 2.0 `<distance value="22"/>`), and the names it does not take (leaderboard-2.0 parameters with
    no meaning here, e.g. background-traffic flows), sorted."""
    spec = scenario_spec(cfg.type)
    config_cls = getattr(spec.load(), "Config", None)
    fields = {f.name: f for f in dataclasses.fields(config_cls)} if config_cls is not None else {}
    out: dict[str, Any] = {}
    ignored = []
    for name, attrs in cfg.parameters.items():
        raw = attrs.get("value") if isinstance(attrs, dict) else attrs
        f = fields.get(name)
        if f is None or raw is None:
            ignored.append(name)
            continue
        kind = type(f.default) if f.default is not dataclasses.MISSING and f.default is not None else str
        try:
            out[name] = kind(float(raw)) if kind in (int, float) else str(raw)
        except ValueError:
            raise ScenarioError(f"scenario {cfg.name}: parameter {name}={raw!r} is not a number") from None
    return out, sorted(ignored)
ALONG_ROUTE_MIN_S = 25.0  # an added scenario triggers no earlier than this far into the route (metres)


@dataclass
class ActiveScenario:
    name: str
    type: str
    scenario: Scenario


@dataclass
class ScenarioManager:
    """Scenarios of one route on one simulator (build with `setup_route_scenarios`)."""

    sim: Simulator
    cmap: carla.Map
    route: Sequence[tuple[carla.Transform, Any]]
    seed: int = 0
    active: list[ActiveScenario] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (scenario name or type, reason)

    def rng(self, name: str) -> np.random.Generator:
        """A generator per scenario name: adding or dropping one scenario leaves the others' draws unchanged."""
        return np.random.default_rng([self.seed & 0xFFFFFFFF, zlib.crc32(name.encode())])

    def add_config(self, cfg: ScenarioConfig) -> bool:
        """Build and set up one route scenario (1.0 JSON or 2.0 XML); False (and a skip reason) if it cannot be."""
        if not is_registered(cfg.type) or scenario_spec(cfg.type).kind != "scenario":
            self.skipped.append((cfg.type, "no implementation registered"))
            return False
        x, y, z, yaw = cfg.trigger_points[0]
        trigger = carla.Transform(carla.Location(x, y, z), carla.Rotation(yaw=yaw))
        try:
            params, _ = scenario_params(cfg)
        except ScenarioError as exc:
            self.skipped.append((cfg.name, str(exc)))
            return False
        return self._setup(cfg.name, cfg.type, trigger, params=params)

    def add_along_route(self, scenario_id: str) -> bool:
        """Add a registered scenario at the first place along the route where it fits (deterministic order)."""
        try:
            spec = scenario_spec(scenario_id)
        except ScenarioRegistryError as exc:
            self.skipped.append((scenario_id, str(exc)))
            return False
        if spec.kind != "scenario":
            self.skipped.append((scenario_id, f"'{scenario_id}' is a {spec.kind}, not a scenario"))
            return False
        for s, tf in self._candidate_triggers(spec.load()):
            if self._setup(scenario_id, scenario_id, tf, quiet=True):
                self.active[-1].name = f"{scenario_id}@{s:.0f}m"
                return True
        self.skipped.append((scenario_id, "no place along the route fits it"))
        return False

    def _setup(self, name: str, type_: str, trigger: carla.Transform, quiet: bool = False,
               params: dict[str, Any] | None = None) -> bool:
        try:
            sc = make_scenario(type_, route=self.route, **(params or {}))
            sc.setup(self.sim, self.cmap, trigger, self.rng(name))
            clash = self._clash(name, sc)
            if clash:
                sc.cleanup()
                raise ScenarioError(clash)
        except ScenarioError as exc:
            if not quiet:
                self.skipped.append((name, str(exc)))
            return False
        self.active.append(ActiveScenario(name, type_, sc))
        return True

    def _clash(self, name: str, sc: Scenario) -> str:
        """'' unless one of `sc`'s actors stands on an actor of a scenario already set up: two triggers of one
        junction (or one stretch) would each spawn their actors there, and the twins wait for each other forever."""
        mine = sc.placements
        theirs = [(a.name, q) for a in self.active for q in a.scenario.placements]
        if not mine or not theirs:
            return ""
        ext = np.array([classify(q.type_id)[2][:2] for _, q in theirs]) + CLASH_MARGIN_M  # (M, 2) half sizes
        cx = np.array([q.x for _, q in theirs])
        cy = np.array([q.y for _, q in theirs])
        yaw = np.array([q.yaw for _, q in theirs])
        for p in mine:
            ex, ey, _ = classify(p.type_id)[2]
            hit = obb_overlap((p.x, p.y, ex + CLASH_MARGIN_M, ey + CLASH_MARGIN_M, p.yaw), cx, cy, ext[:, 0], ext[:, 1], yaw)
            if hit.any():
                other, q = theirs[int(np.argmax(hit))]
                return (f"scenario {name}: its {p.role} would stand on the {q.role} of scenario {other} at "
                        f"({q.x:.1f}, {q.y:.1f})")
        return ""

    def _candidate_triggers(self, cls: type) -> list[tuple[float, carla.Transform]]:
        pts = np.array([[t.location.x, t.location.y] for t, _ in self.route])  # (N, 2)
        path = Polyline.from_points(pts)
        out = []
        s_list = np.arange(ALONG_ROUTE_MIN_S, max(path.length - 40.0, ALONG_ROUTE_MIN_S), 5.0)
        if getattr(cls, "placement", "straight") == "junction":
            good = []
            for s in s_list:  # a junction 35..60 m ahead
                span = junction_span(self.cmap, path, float(s), 60.0)
                if span is not None and 35.0 <= span[1] - s <= 60.0:
                    good.append(float(s))
            s_list = good
        for s in s_list:
            x, y, yaw = path.point_at(float(s))
            out.append((float(s), carla.Transform(carla.Location(x, y, 0.0), carla.Rotation(yaw=yaw))))
        return out

    # ------------------------------------------------------------------ per tick
    def tick(self, gt: GroundTruth) -> None:
        for a in self.active:
            a.scenario.tick(gt)

    def control_hook(self, control: carla.VehicleControl, frame: int) -> carla.VehicleControl:
        for a in self.active:
            control = a.scenario.control_hook(control, frame)
        return control

    def cleanup(self) -> None:
        for a in self.active:
            a.scenario.cleanup()

    def summary(self) -> str:
        names = ", ".join(a.name for a in self.active) or "none"
        return f"scenarios: {names}" + (f"; skipped: {len(self.skipped)}" if self.skipped else "")


def setup_route_scenarios(sim: Simulator, cmap: carla.Map, route: Sequence[tuple[carla.Transform, Any]],
                          configs: Sequence[ScenarioConfig], seed: int, mode: str = "route",
                          occlusion: str | None = None) -> ScenarioManager:
    """Everything a route runs: its matched scenarios (mode 'route'), plus one occlusion scenario if asked."""
    if mode not in SCENARIOS_MODES:
        raise ValueError(f"unknown scenarios mode '{mode}' (valid: {', '.join(SCENARIOS_MODES)})")
    mgr = ScenarioManager(sim, cmap, route, seed)
    if mode == "route":
        for cfg in configs:
            mgr.add_config(cfg)
    if occlusion:
        mgr.add_along_route(occlusion)
    return mgr

