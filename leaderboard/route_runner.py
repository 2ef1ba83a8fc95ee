"""Run one route: load the town, densify the route, set up the agent, tick until a criterion ends it, score it.

Failures follow the leaderboard: an agent that cannot be set up or that raises while driving fails its own route
('Failed - Agent couldn't be set up' / 'Failed - Agent crashed') and the run goes on; invalid sensors fail the
route as 'Agent's sensors were invalid' and stop the run (entry status Rejected); a simulator error fails the
route as 'Simulation crashed' and stops the run (entry status Crashed; --resume repeats that route).
"""

from __future__ import annotations

import hashlib
import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import carla
import numpy as np

from leaderboard.autoagents.agent_wrapper import AgentError, validate_sensor_configuration
from leaderboard.carla_helpers import RouteHelpers
from leaderboard.criteria import RouteCriteria
from leaderboard.envs.sensor_interface import SensorConfigurationInvalid, SensorReceivedNoData
from leaderboard.rules import LeaderboardRules, construct_agent, get_rules
from leaderboard.scores import FAILURE_MESSAGES, TrafficEventType
from scenarios.weather_sets import named_weather
from sim.geo import geo_reference
from sim.protocol import Simulator
from sim.route_planner import GlobalRoutePlanner, RoutePlanningError, interpolate_trajectory, route_length
from sim.routes import RouteConfig, ScenarioConfig, match_scenarios_to_route
from sim.sensors import SensorConfigError
from sim.types import FIXED_DELTA_SECONDS, GroundTruth

HOP_RESOLUTION = 1.0  # metres between dense route points, as the leaderboard's interpolate_trajectory
MAX_TRACE_POINTS = 4000


@dataclass
class RouteOptions:
    """What every route of a run shares (plain data: it travels to Ray workers)."""

    agent: str  # registered name or file path
    agent_config: str = ""
    track: str = "SENSORS"
    host: str = "localhost"
    port: int = 2000
    timeout: float = 300.0  # seconds an agent step (or set-up) may take
    debug: int = 0
    map_dir: str | None = None
    weather: str | None = None  # a named weather (preset or custom, scenarios.weather_sets) overriding the route's
    seed: int = 0
    record_dir: str | None = None
    scenario_annotations: dict[str, list[dict[str, Any]]] | None = None  # leaderboard 1.0 trigger points
    max_ticks: int | None = None  # hard cap on ticks (tests); None = criteria decide
    scenarios_mode: str = "route"  # 'route': spawn the route's scenarios (registered types); 'off': none
    occlusion: str | None = None  # a registered occlusion scenario id added along every route
    sensor_fault: str | None = None  # faults at severities, 'motion_blur:2,gnss_noise:1' (scenarios.sensor_faults)
    collect: Any = None  # agent.collector.CollectOptions: write a dataset of the driven routes (--collect)
    leaderboard: str | None = None  # rules: '1.0' | '2.0'; None = each route file's own format


@dataclass
class RouteOutcome:
    """A finished route: its results-JSON record plus what the report draws (plain, picklable data)."""

    record: dict[str, Any]
    entry_status: str = "Started"  # 'Started' (ok / agent failure), 'Rejected', 'Crashed'
    stop_run: bool = False
    message: str = ""  # one line when something failed
    town: str = ""
    route_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (N, 2) dense route
    trace_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (T, 2) driven path
    infractions: list[tuple[str, float, float]] = field(default_factory=list)  # (kind, x, y)
    sensors: list[dict[str, Any]] | None = None
    scenarios: list[ScenarioConfig] = field(default_factory=list)
    video: str | None = None
    key: str = ""  # the run's unique route key ('RouteScenario_<id>_rep<k>'; 1.0 record ids have no _rep)


@dataclass
class RouteContext:
    """What an observer of one route may read: the simulator, the town, the dense route and the run's options."""

    sim: Simulator
    cmap: carla.Map
    route: list  # [(carla.Transform, RoadOption)], 1 m apart
    route_xy: np.ndarray  # (N, 2) world x, y of the dense route
    config: RouteConfig
    opts: RouteOptions
    agent_sensors: list[dict[str, Any]] = field(default_factory=list)
    gps_route: list = field(default_factory=list)  # [({'lat', 'lon', 'z'}, RoadOption)] as the agent receives it
    agent: Any = None  # the driving agent (set up); observers must not drive it


class RouteObserver:
    """One watcher of the route loop, called as Lightning calls its callbacks (every hook is optional).

    The loop calls, in list order: `extra_sensors` once before the sensors are attached (private sensor dicts the
    observer reads; their ids never reach the agent), `on_route_start` once before the first tick, `on_tick` after
    every simulator tick with that tick's sensor data and ground truth, `on_control` with the control about to be
    applied (it may return a changed one), and `on_route_end` once, also after a failure. The route ends after a
    tick where any observer's `done` is true. Observers outside leaderboard/ (the data collector in agent/) do not
    subclass this; they implement the same methods (duck typing keeps the import layering).
    """

    done: bool = False

    def extra_sensors(self, ctx: RouteContext, taken: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Private sensors to attach besides `taken` (the agent's and earlier observers' sensors)."""
        return []

    def on_route_start(self, ctx: RouteContext) -> None:
        pass

    def on_tick(self, ctx: RouteContext, input_data: dict[str, tuple[int, Any]], gt: GroundTruth) -> None:
        pass

    def on_control(self, ctx: RouteContext, control: carla.VehicleControl, frame: int) -> carla.VehicleControl:
        return control

    def on_route_end(self, ctx: RouteContext) -> None:
        pass


class CriteriaObserver(RouteObserver):
    """The leaderboard criteria: updated every tick; they end the route."""

    def __init__(self, route: list, cmap: carla.Map, rules: LeaderboardRules | None = None) -> None:
        self.criteria = RouteCriteria(route, cmap, rules=rules)

    @property
    def done(self) -> bool:  # type: ignore[override]
        return self.criteria.done

    def on_tick(self, ctx: RouteContext, input_data: dict[str, tuple[int, Any]], gt: GroundTruth) -> None:
        self.criteria.update(gt)

    def on_route_end(self, ctx: RouteContext) -> None:
        self.criteria.terminate()


class ScenarioObserver(RouteObserver):
    """The route's scenario manager: ticks with the world, may override the agent's control, cleans up."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def on_tick(self, ctx: RouteContext, input_data: dict[str, tuple[int, Any]], gt: GroundTruth) -> None:
        self.manager.tick(gt)

    def on_control(self, ctx: RouteContext, control: carla.VehicleControl, frame: int) -> carla.VehicleControl:
        return self.manager.control_hook(control, frame)

    def on_route_end(self, ctx: RouteContext) -> None:
        try:
            self.manager.cleanup()
        except Exception as exc:  # noqa: BLE001 - the simulator may be gone after a crash
            print(f"warning: scenario clean-up failed: {_one_line(exc)}", file=sys.stderr)


class ProgressObserver(RouteObserver):
    """The driven trace, the progress callback and the route's weather changes along its completion."""

    def __init__(self, criteria: RouteCriteria, progress: Callable[[float], None] | None) -> None:
        self.criteria = criteria
        self.progress = progress
        self.trace: list[tuple[float, float]] = []
        self._last_pct = -1

    def on_tick(self, ctx: RouteContext, input_data: dict[str, tuple[int, Any]], gt: GroundTruth) -> None:
        self.trace.append((gt.ego.pose.x, gt.ego.pose.y))
        pct = self.criteria.completion.actual_value
        if self.progress is not None:
            self.progress(pct)
        if len(ctx.config.weathers) > 1 and not ctx.opts.weather and int(pct) != self._last_pct:
            self._last_pct = int(pct)
            ctx.sim.set_weather(ctx.config.weather_at(pct))


class RecorderObserver(RouteObserver):
    """--record: the six rig cameras under private ids and an mp4 per route (leaderboard/recording.py)."""

    def __init__(self, ctx: RouteContext) -> None:
        from leaderboard.recording import RouteRecorder

        self.recorder = RouteRecorder(ctx.opts.record_dir, ctx.config.route_id, ctx.cmap, ctx.route_xy)
        self.video: str | None = None
        self.pending: tuple[dict[str, tuple[int, Any]], GroundTruth] | None = None

    def extra_sensors(self, ctx: RouteContext, taken: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rig cameras the agent lacks; none when they would pass the RGB camera limit (the video then shows
        the agent's own cameras only)."""
        from leaderboard.recording import recording_cameras
        from sim.sensors import MAX_RGB_CAMERAS

        have = {s["id"] for s in ctx.agent_sensors}
        extra = [c for c in recording_cameras(_REC_PREFIX) if c["id"][len(_REC_PREFIX) :] not in have]
        n_rgb = sum(1 for s in taken if s.get("type") == "sensor.camera.rgb")
        return [] if n_rgb + len(extra) > MAX_RGB_CAMERAS else extra

    def on_tick(self, ctx: RouteContext, input_data: dict[str, tuple[int, Any]], gt: GroundTruth) -> None:
        self.pending = (input_data, gt)  # drawn once the agent has decided on this tick (on_control)

    def on_control(self, ctx: RouteContext, control: carla.VehicleControl, frame: int) -> carla.VehicleControl:
        from leaderboard.recording import agent_overlay

        if self.pending is not None:
            input_data, gt = self.pending
            self.recorder.add(input_data, gt, gt.frame, overlay=agent_overlay(ctx.agent))
            self.pending = None
        return control

    def on_route_end(self, ctx: RouteContext) -> None:
        if self.pending is not None:  # the last tick ended the route before the agent ran
            input_data, gt = self.pending
            self.recorder.add(input_data, gt, gt.frame)
        self.video = self.recorder.close()


def route_seed(seed: int, config: RouteConfig) -> int:
    """A per-route seed that does not depend on which worker runs the route or in which order."""
    h = hashlib.sha256(f"{seed}:{config.seed_key or config.id}:{config.repetition_index}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


@contextmanager
def _deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise AgentError when the body runs longer than `seconds` (SIGALRM in the main thread; else checked after)."""
    t0 = time.monotonic()
    use_alarm = (
        threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer") and seconds > 0
    )

    def _fire(signum: int, frame: Any) -> None:
        raise AgentError(f"{what} took longer than {seconds:g} s")

    old = None
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _fire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    if seconds > 0 and time.monotonic() - t0 > seconds:
        raise AgentError(f"{what} took longer than {seconds:g} s")


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


_PLANNER: tuple[Any, GlobalRoutePlanner] | None = None  # (carla.Map, its planner) of the last route


def _route_planner(cmap: Any) -> GlobalRoutePlanner:
    """The last route's planner when the map is the same object (the embedded simulator hands the same carla.Map
    to every route on a town): the lane graph is built once per town, not per route."""
    global _PLANNER
    if _PLANNER is None or _PLANNER[0] is not cmap:
        _PLANNER = (cmap, GlobalRoutePlanner(cmap, HOP_RESOLUTION))
    return _PLANNER[1]


def run_route(
    sim: Simulator,
    agent_class: type,
    config: RouteConfig,
    opts: RouteOptions,
    progress: Callable[[float], None] | None = None,
    observers: list[Any] | None = None,
) -> RouteOutcome:
    """Drive one route with a fresh agent on `sim` and return its scored outcome.

    `observers`: more RouteObserver-like watchers of this route (e.g. a data collector built by the caller).
    """
    rules = get_rules(opts.leaderboard, config.format)
    rid = rules.route_name(config.name, config.repetition_index)

    # --------------------------------------------------------------- world and route
    try:
        if hasattr(sim, "config") and hasattr(sim.config, "traffic"):
            sim.config.seed = opts.seed
            sim.config.traffic.seed = route_seed(opts.seed, config)
        cmap = sim.load_town(config.town, opts.map_dir)
        lat0, lon0 = geo_reference(cmap.to_opendrive())
        planner = _route_planner(cmap)
        gps_route, route = interpolate_trajectory(
            cmap, config.keypoint_locations(), HOP_RESOLUTION, (lat0, lon0), planner=planner
        )
        if len(route) < 2:
            raise RoutePlanningError(f"route {config.id} densifies to {len(route)} point(s)")
        length = route_length(route)
        scenarios = list(config.scenarios)
        if config.format == "1.0" and opts.scenario_annotations:
            scenarios = match_scenarios_to_route(config.town, route, opts.scenario_annotations)
        start = route[0][0]
        if opts.weather:
            named = named_weather(opts.weather)
            sim.set_weather(named.for_heading(start.rotation.yaw))
            sim.set_street_lights(named.street_lights)
        else:
            sim.set_weather(config.weather_at(0.0))
            sim.set_street_lights(True)
        sim.spawn_ego(
            carla.Transform(
                carla.Location(start.location.x, start.location.y, start.location.z + 0.5),
                carla.Rotation(yaw=start.rotation.yaw),
            )
        )
    except Exception as exc:  # noqa: BLE001 - the scenario could not be loaded: the run stops
        entry, msg = FAILURE_MESSAGES["Simulation"]
        return RouteOutcome(
            rules.failed_route_record(rid, config.index, msg),
            entry,
            True,
            f"{rid}: the route could not be loaded: {_one_line(exc)}",
            config.town,
            key=config.route_id,
        )
    route_xy = np.array([[t.location.x, t.location.y] for t, _ in route])
    record_length = rules.record_route_length(config.keypoints, length)

    # CarlaDataProvider / GameTime for agents importing them, bound to this route (leaderboard/carla_helpers)
    helpers = RouteHelpers(sim, route, route_seed(opts.seed, config))

    def fail(kind: str, message: str, stop: bool = False, sensors: list | None = None) -> RouteOutcome:
        helpers.release()
        entry, msg = FAILURE_MESSAGES[kind]
        return RouteOutcome(
            rules.failed_route_record(rid, config.index, msg, record_length),
            entry,
            stop,
            f"{rid}: {message}",
            config.town,
            route_xy,
            sensors=sensors,
            scenarios=scenarios,
            key=config.route_id,
        )

    # --------------------------------------------------------------- agent
    agent = None
    try:
        with _deadline(opts.timeout, "agent set-up"):
            # 2.x: Agent(host, port, debug), plan, setup(); 1.0: Agent(conf) runs setup(), then the plan
            agent = construct_agent(agent_class, rules, opts.agent_config, opts.host, opts.port, opts.debug)
            agent.set_global_plan(gps_route, route)
            if rules.version != "1.0":
                agent.setup(opts.agent_config)
            sensors = agent.sensors()
            limits = rules.sensor_limits if rules.version == "1.0" else None
            validate_sensor_configuration(sensors, agent.track, opts.track, limits)
    except SensorConfigurationInvalid as exc:
        _destroy(agent)
        hint = " (leaderboard 1.0 rules; --leaderboard 2.0 allows 8 RGB cameras)" if rules.version == "1.0" else ""
        return fail("Sensors", f"the agent's sensors are invalid: {exc}{hint}", stop=True)
    except Exception as exc:  # noqa: BLE001
        if opts.debug:
            traceback.print_exc()
        _destroy(agent)
        return fail("Agent_init", f"the agent could not be set up: {_one_line(exc)}")
    ctx = RouteContext(sim, cmap, route, route_xy, config, opts, list(sensors), gps_route, agent)
    criteria_obs = CriteriaObserver(route, cmap, rules)
    progress_obs = ProgressObserver(criteria_obs.criteria, progress)
    recorder_obs = RecorderObserver(ctx) if opts.record_dir else None
    extra_obs = observers
    observers = [criteria_obs, progress_obs]
    observers += [o for o in (*make_extra_observers(ctx), *(extra_obs or ()), recorder_obs) if o is not None]
    faults = None
    try:
        for s in sensors:
            agent.sensor_interface.register_sensor(s["id"], s["type"])
        attached = list(sensors)
        for obs in observers:
            attached += obs.extra_sensors(ctx, attached)
        if opts.sensor_fault:  # the agent's sensors and the video's cameras get the faults (e.g. a rotated mount)
            from scenarios.sensor_faults import FaultedRoute

            faults = FaultedRoute(opts.sensor_fault, route_seed(opts.seed, config), {s["id"] for s in sensors},
                                  _REC_PREFIX)
            attached = faults.configure_sensors(attached)
        sim.attach_sensors(attached)
    except (SensorConfigError, SensorConfigurationInvalid) as exc:
        _destroy(agent)
        return fail("Sensors", f"the agent's sensors are invalid: {exc}", stop=True, sensors=sensors)
    agent_ids = {s["id"] for s in sensors}
    try:
        if getattr(agent, "privileged", False) and hasattr(agent, "set_privileged"):
            agent.set_privileged(sim, route)
    except Exception as exc:  # noqa: BLE001
        _destroy(agent)
        return fail("Agent_init", f"the agent could not be set up: {_one_line(exc)}", sensors=sensors)

    # --------------------------------------------------------------- scenarios and sensor faults
    try:
        manager = _setup_scenarios(sim, cmap, route, scenarios, config, opts)
    except Exception as exc:  # noqa: BLE001 - a scenario bug: the simulation of this route is broken
        _destroy(agent)
        return fail("Simulation", f"the route's scenarios failed to set up: {_one_line(exc)}", stop=True,
                    sensors=sensors)
    if manager is not None:
        observers.insert(1, ScenarioObserver(manager))  # ticks right after the criteria, as the leaderboard's tree

    # --------------------------------------------------------------- drive
    failure_kind = ""
    failure_text = ""
    frame = sim.frame
    ticks = 0
    game_time = 0.0  # from 0 every route on every backend, summed tick by tick as the leaderboard's GameTime
    t_start = time.time()  # duration_system times the driving loop only, as 2.x does
    started: list[Any] = []
    try:
        for obs in observers:
            obs.on_route_start(ctx)
            started.append(obs)
        while True:
            try:
                input_data = sim.tick()
                gt = sim.ground_truth()
            except Exception as exc:  # noqa: BLE001
                failure_kind, failure_text = "Simulation", f"the simulator failed: {_one_line(exc)}"
                break
            frame = gt.frame
            ticks += 1
            game_time += FIXED_DELTA_SECONDS
            helpers.tick(frame, game_time)
            if faults is not None:  # the agent and the video see the faulted input
                input_data = faults.apply(input_data, frame)
            try:
                for obs in observers:
                    obs.on_tick(ctx, input_data, gt)
            except Exception as exc:  # noqa: BLE001 - e.g. the data collector on a full disk: the run stops
                if opts.debug:
                    traceback.print_exc()
                failure_kind, failure_text = "Simulation", f"{type(obs).__name__} failed: {_one_line(exc)}"
                break
            if any(obs.done for obs in observers) or (opts.max_ticks is not None and ticks >= opts.max_ticks):
                break
            agent_data = {k: v for k, v in input_data.items() if k in agent_ids}
            try:
                agent.sensor_interface.update_all(agent_data, frame, game_time)
                with _deadline(opts.timeout, "agent step"):
                    control = agent()
                if not isinstance(control, carla.VehicleControl):
                    raise AgentError(f"run_step returned {type(control).__name__}, not carla.VehicleControl")
            except SensorReceivedNoData as exc:  # not the agent's fault: the simulation is broken (as 2.x)
                failure_kind, failure_text = "Simulation", f"a sensor sent no data: {_one_line(exc)}"
                break
            except Exception as exc:  # noqa: BLE001
                if opts.debug:
                    traceback.print_exc()
                failure_kind, failure_text = "Agent_runtime", f"the agent crashed: {_one_line(exc)}"
                break
            if faults is not None:
                control = faults.control(control, frame)  # e.g. action latency
            for obs in observers:
                control = obs.on_control(ctx, control, frame)
            sim.apply_control(control)
    finally:
        duration_system = time.time() - t_start
        _destroy(agent)
        helpers.release()
        for obs in started:
            try:
                obs.on_route_end(ctx)
            except Exception as exc:  # noqa: BLE001 - the route fails in one line (the first failure wins)
                if not failure_kind:
                    failure_kind, failure_text = "Simulation", f"{type(obs).__name__} failed: {_one_line(exc)}"
    criteria = criteria_obs.criteria
    trace = progress_obs.trace
    video = recorder_obs.video if recorder_obs is not None else None
    events = criteria.events()
    entry, msg = FAILURE_MESSAGES[failure_kind] if failure_kind else ("Started", "")
    record = rules.compute_route_record(
        rid,
        config.index,
        events,
        criteria.completion.actual_value,
        record_length,
        game_time,
        duration_system,
        timed_out=criteria.timeout.timed_out,
        failure_message=msg,
    )
    infractions = [
        (ev.type.name, float(ev.data["x"]), float(ev.data["y"]))
        for ev in events
        if "x" in ev.data and ev.type != TrafficEventType.ROUTE_COMPLETION
    ]
    if criteria.outside_lanes.event is not None and trace:
        infractions.append((TrafficEventType.OUTSIDE_ROUTE_LANES_INFRACTION.name, *trace[-1]))
    stride = max(1, math.ceil(len(trace) / MAX_TRACE_POINTS))
    return RouteOutcome(
        record,
        entry,
        failure_kind == "Simulation",
        f"{rid}: {failure_text}" if failure_text else "",
        config.town,
        route_xy,
        np.array(trace[::stride] or np.zeros((0, 2))),
        infractions,
        sensors=sensors,
        scenarios=scenarios,
        video=video,
        key=config.route_id,
    )


_REC_PREFIX = "_record_"
_NOTED: set[str] = set()  # skip notes already printed by this process


def _setup_scenarios(sim: Simulator, cmap: carla.Map, route: list, scenarios: list[ScenarioConfig],
                     config: RouteConfig, opts: RouteOptions) -> Any:
    """The route's scenario manager (None when nothing runs)."""
    manager = None
    seed = route_seed(opts.seed, config)
    if (opts.scenarios_mode != "off" and scenarios) or opts.occlusion:
        from scenarios.manager import setup_route_scenarios

        manager = setup_route_scenarios(sim, cmap, route, scenarios, seed, opts.scenarios_mode, opts.occlusion)
        for what, reason in manager.skipped:
            note = f"note: scenario {what} skipped: {reason}"
            key = f"{what.split('_')[0]}:{reason}" if reason == "no implementation registered" else note
            if key not in _NOTED or opts.debug:
                _NOTED.add(key)
                print(f"{config.route_id}: {note}", file=sys.stderr)
    return manager


def make_extra_observers(ctx: RouteContext) -> list[Any]:
    """Observers the run's options add beyond the leaderboard's own criteria, progress and recorder."""
    out: list[Any] = []
    if ctx.opts.collect is not None:
        from agent.collector import DataCollector

        out.append(DataCollector(ctx.opts.collect, seed=ctx.opts.seed))
    return out


def _destroy(agent: Any) -> None:
    if agent is None:
        return
    try:
        agent.destroy()
    except Exception as exc:  # noqa: BLE001 - as the leaderboard: report and go on
        print(f"warning: the agent's destroy() failed: {_one_line(exc)}")
