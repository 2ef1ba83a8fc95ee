"""The evaluation loop: routes x repetitions, one simulator per process, resumable results, report at the end.

Sequential by default (one simulator in this process); `workers > 1` fans routes out over local Ray actors,
each owning its own simulator (libsumo is a per-process singleton). Results are written by this process only,
atomically, after every finished route.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard import carla_helpers
from leaderboard.registry import AgentLoadError, load_agent_class
from leaderboard.report import lane_polylines, save_route_artifacts, write_markdown_report
from leaderboard.results import ResultsFile
from leaderboard.rules import rules_of_run
from leaderboard.route_runner import RouteOptions, RouteOutcome, run_route
from leaderboard.scores import FAILURE_MESSAGES
from leaderboard.utils.signals import reclaim_sigterm
from sim.protocol import SimConfig, SimulatorError, TrafficConfig
from sim.routes import RouteConfig, RouteFileError, load_scenario_annotations, parse_routes_file

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_ROUTES = ROOT / "scenarios" / "routes" / "routes_occtown.xml"
V1_SCENARIO_FILE = "all_towns_traffic_scenarios_public.json"


class EvaluationError(RuntimeError):
    """A bad input detected before any route runs (one line)."""


@dataclass
class EvalConfig:
    """Everything `leaderboard/run.py` controls."""

    agent: str
    routes: str | None = None  # None: the built-in route set
    routes_subset: str = ""
    repetitions: int = 1
    scenarios: str | None = None  # leaderboard 1.0 scenario JSON (default: the one beside a 1.0 route file)
    checkpoint: str = "./simulation_results.json"
    debug_checkpoint: str = "./live_results.txt"
    resume: bool = False
    simulator: str = "embedded"
    workers: int = 1
    traffic_manager_port: int = 8000
    vehicles: int = 40
    walkers: int = 20
    max_vehicles_per_km: float | None = TrafficConfig.max_vehicles_per_km
    traffic_speed: float = TrafficConfig.speed_fraction  # NPC speed / speed limit
    report: bool = True
    progress: bool = True
    command: str = ""
    options: RouteOptions = field(default_factory=lambda: RouteOptions(agent=""))


def build_route_list(cfg: EvalConfig) -> list[RouteConfig]:
    """Parse the route file and expand repetitions, numbering runs as the leaderboard's RouteIndexer."""
    path = Path(cfg.routes) if cfg.routes else BUILTIN_ROUTES
    if cfg.repetitions < 1:
        raise EvaluationError(f"--repetitions must be >= 1, got {cfg.repetitions}")
    routes = parse_routes_file(path, cfg.routes_subset)
    out = []
    for i, r in enumerate(routes):
        for rep in range(cfg.repetitions):
            out.append(dataclasses.replace(r, index=i * cfg.repetitions + rep, repetition_index=rep))
    return out


def _check_towns(routes: list[RouteConfig], cfg: EvalConfig) -> None:
    if cfg.simulator != "embedded":
        return
    from sim.embedded.maps import resolve_town

    for town in sorted({r.town for r in routes}):
        try:
            resolve_town(town, cfg.options.map_dir)
        except SimulatorError as exc:
            raise EvaluationError(f"{exc}") from None


def _preflight(agent_class: type, opts: RouteOptions) -> None:
    """An agent's optional `preflight(path_to_conf_file)` (not part of CARLA's contract): config checks that
    would otherwise fail every route's setup the same way, run once before the first route."""
    check = getattr(agent_class, "preflight", None)
    if not callable(check):
        return
    try:
        check(opts.agent_config)
    except Exception as exc:  # noqa: BLE001 - any failure of the agent's own check is bad input
        raise EvaluationError(f"agent '{opts.agent}' cannot be set up: {exc}") from None


def _scenario_annotations(cfg: EvalConfig, routes: list[RouteConfig]) -> dict[str, Any] | None:
    if cfg.scenarios:
        return load_scenario_annotations(cfg.scenarios)
    if any(r.format == "1.0" for r in routes) and cfg.routes:
        beside = Path(cfg.routes).with_name(V1_SCENARIO_FILE)
        if beside.is_file():
            return load_scenario_annotations(beside)
    return None


def _make_sim(cfg: EvalConfig):
    from sim.factory import make_simulator

    o = cfg.options
    sc = SimConfig(
        map_dir=o.map_dir,
        seed=o.seed,
        traffic=TrafficConfig(
            vehicles=cfg.vehicles,
            walkers=cfg.walkers,
            seed=o.seed,
            max_vehicles_per_km=cfg.max_vehicles_per_km,
            speed_fraction=cfg.traffic_speed,
        ),
    )
    return make_simulator(
        cfg.simulator,
        sc,
        host=o.host,
        port=o.port,
        timeout=o.timeout,
        traffic_manager_port=cfg.traffic_manager_port,
    )


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_evaluation(cfg: EvalConfig) -> int:
    """Run every route; return the exit code (0 ok, 1 the run stopped on a crash/rejection, 2 bad input)."""
    try:
        routes = build_route_list(cfg)
        _check_towns(routes, cfg)
        carla_helpers.install()  # agents importing srunner / agents.navigation load (real installs win)
        agent_class = load_agent_class(cfg.options.agent)
        _preflight(agent_class, cfg.options)
        annotations = _scenario_annotations(cfg, routes)
        try:
            # the built-in routes (written in 1.0's format) are the project's own benchmark: 2.x rules by default
            version = cfg.options.leaderboard or (None if cfg.routes else "2.0")
            rules = rules_of_run(version, [r.format for r in routes])
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
    except (RouteFileError, AgentLoadError, EvaluationError) as exc:
        _say(f"error: {exc}")
        return 2
    opts = dataclasses.replace(cfg.options, scenario_annotations=annotations, leaderboard=rules.version)
    results = ResultsFile(cfg.checkpoint, [r.route_id for r in routes], resume=cfg.resume, rules=rules)
    if results.resume_note:
        _say(results.resume_note)
    todo = [r for r in routes if not results.done(r.route_id)]
    if cfg.resume and len(todo) < len(routes):
        _say(f"resuming: {len(routes) - len(todo)} of {len(routes)} routes already finished")
    results.write()
    if cfg.workers > 1 and len(todo) > 1:
        stopped = _run_ray(cfg, opts, todo, results)
    else:
        stopped = _run_local(cfg, opts, agent_class, todo, results)
    data = results.write(final=True)
    if results.invalid_reason:
        _say(f"the results are badly formed, entry status Invalid: {results.invalid_reason}")
    if not data["_checkpoint"]["records"]:
        _say(f"no route finished (entry status {data['entry_status']}); results: {cfg.checkpoint}")
        return 1 if stopped else 0
    if cfg.report:
        md = write_markdown_report(cfg.checkpoint, data, cfg.command)
        _say(f"results: {cfg.checkpoint}   report: {md}")
    print_score_table(data)
    return 1 if stopped else 0


def _finish(
    results: ResultsFile, outcome: RouteOutcome, cfg: EvalConfig, lanes_cache: dict[str, Any], cmap=None
) -> bool:
    """Store one outcome (results JSON, trace, plot); True when the run must stop."""
    results.add(outcome.record, outcome.key or None)
    results.save_sensors(outcome.sensors)
    results.write()
    if outcome.message:
        _say(f"{outcome.record['status']}: {outcome.message}")
    if cfg.report and cmap is not None:
        if outcome.town not in lanes_cache:
            lanes_cache[outcome.town] = lane_polylines(cmap)
        save_route_artifacts(cfg.checkpoint, outcome, lanes_cache[outcome.town])
    _write_live(cfg.debug_checkpoint, outcome)
    return outcome.stop_run


def _write_live(path: str, outcome: RouteOutcome) -> None:
    """The leaderboard's live-results text file (last finished route)."""
    if not path:
        return
    r = outcome.record
    try:
        Path(path).write_text(
            f"Route id: {r['route_id']}\n\nScores:\n    Driving score:      {r['scores']['score_composed']:.3f}\n"
            f"    Route completion:   {r['scores']['score_route']:.3f}\n"
            f"    Infraction penalty: {r['scores']['score_penalty']:.3f}\n\n"
            f"    Route length:    {r['meta']['route_length']:.3f}\n    Game duration:   {r['meta']['duration_game']:.3f}\n"
            f"    System duration: {r['meta']['duration_system']:.3f}\n\nStatus: {r['status']}\n"
            f"Total infractions: {r.get('num_infractions', sum(map(len, r['infractions'].values())))}\n"
        )
    except OSError:
        pass


def _run_local(
    cfg: EvalConfig, opts: RouteOptions, agent_class: type, todo: list[RouteConfig], results: ResultsFile
) -> bool:
    if not todo:
        return False
    try:
        sim = _make_sim(cfg)
    except SimulatorError as exc:
        _say(f"error: {exc}")
        results.crashed = True
        return True
    lanes: dict[str, Any] = {}
    try:
        for config in todo:
            bar = _bar(cfg, config)
            try:
                outcome = run_route(sim, agent_class, config, opts, progress=bar.update_to if bar else None)
            finally:
                if bar:
                    bar.close()
            try:
                cmap = sim.map
            except SimulatorError:
                cmap = None
            if _finish(results, outcome, cfg, lanes, cmap):
                return True
    finally:
        sim.close()
    return False


class _Bar:
    """A tqdm bar of route completion (percent)."""

    def __init__(self, desc: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=100.0,
            desc=desc,
            unit="%",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/100 [{elapsed}<{remaining}]",
            leave=True,
            file=sys.stderr,
            mininterval=0.1 if sys.stderr.isatty() else 10.0,  # a log file gets a line every 10 s, not 200
        )
        self._last = 0.0

    def update_to(self, pct: float) -> None:
        if pct - self._last >= 0.5 or (pct >= 100 and self._last < 100):
            self._bar.update(pct - self._last)
            self._last = pct

    def close(self) -> None:
        self._bar.close()


def _bar(cfg: EvalConfig, config: RouteConfig) -> _Bar | None:
    return _Bar(f"{config.route_id} ({config.town})") if cfg.progress else None


def _unreachable_server(cfg: EvalConfig) -> str:
    """'' unless --simulator carla names a host:port nothing listens on: then the one line the workers would say,
    found before Ray starts any of them."""
    if cfg.simulator != "carla":
        return ""
    o = cfg.options
    try:
        socket.create_connection((o.host, o.port), timeout=max(float(o.timeout), 0.1)).close()
    except OSError as exc:
        return f"cannot reach a CARLA server at {o.host}:{o.port} ({exc.strerror or exc})"
    return ""


def _stop_at_start(results: ResultsFile, workers: list[Any], error: str) -> bool:
    _say(f"error: {error}")
    results.crashed = True
    for w in workers:
        _ray_kill(w)
    return True


def _ray_kill(actor: Any) -> None:
    import ray

    try:
        ray.kill(actor)
    except Exception:  # noqa: BLE001 - it may be dead already
        pass


def _run_ray(cfg: EvalConfig, opts: RouteOptions, todo: list[RouteConfig], results: ResultsFile) -> bool:
    import ray

    unreachable = _unreachable_server(cfg)
    if unreachable:
        return _stop_at_start(results, [], unreachable)
    n = min(cfg.workers, len(todo))
    if not ray.is_initialized():
        ray.init(
            num_cpus=n,
            include_dashboard=False,
            log_to_driver=bool(opts.debug),
            ignore_reinit_error=True,
            configure_logging=False,
        )
    reclaim_sigterm()
    worker_cls = ray.remote(num_cpus=1)(RouteWorker)
    workers = [worker_cls.remote(cfg) for _ in range(n)]
    try:
        errors = [e for e in ray.get([w.startup_error.remote() for w in workers]) if e]
    except ray.exceptions.RayActorError as exc:  # a worker process died (killed, out of memory, a crash)
        errors = [f"a route worker died while starting its simulator ({type(exc).__name__})"]
    reclaim_sigterm()  # again once the workers run: Ray may install its handler as it starts them
    if errors:
        return _stop_at_start(results, workers, errors[0])
    pending: dict[Any, Any] = {}
    queue = list(todo)
    idle = list(workers)
    stopped = False
    done_bar = None
    if cfg.progress:
        from tqdm import tqdm

        done_bar = tqdm(total=len(todo), desc=f"routes on {n} workers", unit="route", file=sys.stderr)
    try:
        while (queue and not stopped) or pending:
            while idle and queue and not stopped:
                w = idle.pop()
                config = queue.pop(0)
                pending[w.run.remote(config, opts)] = (w, config)
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                w, config = pending.pop(ref)
                try:
                    outcome: RouteOutcome = ray.get(ref)
                    idle.append(w)
                except ray.exceptions.RayActorError as exc:  # its process died: the simulation crashed
                    outcome = _worker_died(results, config, exc)
                if _finish(results, outcome, cfg, {}, None):
                    stopped = True
                if done_bar:
                    done_bar.update(1)
    except BaseException:
        # Ctrl-C, SIGTERM or a failure: stop the workers now (a graceful close would wait for their routes to
        # end); the results file holds every finished route, so --resume continues from there
        close_workers(workers, graceful=False)
        raise
    finally:
        if done_bar:
            done_bar.close()
    close_workers(workers)
    return stopped


def _worker_died(results: ResultsFile, config: RouteConfig, exc: Exception) -> RouteOutcome:
    """The route whose worker process died ends as 'Simulation crashed' and stops the run (--resume repeats it)."""
    entry, msg = FAILURE_MESSAGES["Simulation"]
    rid = results.rules.route_name(config.name, config.repetition_index)
    record = results.rules.failed_route_record(rid, config.index, msg)
    line = f"{rid}: its route worker died ({type(exc).__name__}: killed, out of memory or a crash)"
    return RouteOutcome(record, entry, True, line, config.town, key=config.route_id)


def close_workers(workers: list[Any], graceful: bool = True) -> None:
    """Close each Ray route worker's simulator (best effort: it may have died) and kill the actor; not graceful:
    kill at once, whatever route a worker is running."""
    import ray

    for w in workers:
        if graceful:
            try:
                ray.get(w.close.remote())
            except Exception:  # noqa: BLE001
                pass
        ray.kill(w)


class RouteWorker:
    """A Ray actor owning one simulator; routes run on it one after another. Plots are drawn here."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg = cfg
        self.sim = None
        self.error = ""
        try:  # kept, not raised: an actor that dies in its constructor reaches the driver as a Ray traceback
            self.sim = _make_sim(cfg)
        except SimulatorError as exc:
            self.error = str(exc)
        carla_helpers.install()
        self.agent_class = load_agent_class(cfg.options.agent)
        self.lanes: dict[str, Any] = {}

    def startup_error(self) -> str:
        """'' when the simulator came up, else its one-line error."""
        return self.error

    def run(self, config: RouteConfig, opts: RouteOptions) -> RouteOutcome:
        outcome = run_route(self.sim, self.agent_class, config, opts)
        if self.cfg.report and outcome.route_xy is not None and len(outcome.route_xy):
            try:
                if outcome.town not in self.lanes:
                    self.lanes[outcome.town] = lane_polylines(self.sim.map)
                save_route_artifacts(self.cfg.checkpoint, outcome, self.lanes[outcome.town])
            except Exception as exc:  # noqa: BLE001 - a plot never fails a route
                print(f"warning: could not plot {config.route_id}: {exc}")
        return outcome

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()


def print_score_table(data: dict[str, Any]) -> None:
    """The run's scores as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Leaderboard results", show_lines=False)
    for col in ("route", "status", "DS", "RC", "IP", "length m", "infractions"):
        numeric = col in ("DS", "RC", "IP", "length m")
        t.add_column(col, justify="right" if numeric else "left", overflow="fold", no_wrap=col == "route")
    for r in data["_checkpoint"]["records"]:
        s = r["scores"]
        inf = ", ".join(f"{k.removesuffix('_infractions')}:{len(v)}" for k, v in r["infractions"].items() if v)
        t.add_row(
            r["route_id"].removeprefix("RouteScenario_"),  # '3_rep0': the table must fit 80 columns
            r["status"],
            f"{s['score_composed']:.2f}",
            f"{s['score_route']:.2f}",
            f"{s['score_penalty']:.3f}",
            f"{r['meta']['route_length']:.0f}",
            inf or "-",
        )
    g = data["_checkpoint"].get("global_record") or {}
    if g:
        m = g.get("scores_mean") or g["scores"]  # 2.x / 1.0
        t.add_row(
            "mean",
            g["status"],
            f"{m['score_composed']:.2f}",
            f"{m['score_route']:.2f}",
            f"{m['score_penalty']:.3f}",
            f"{g['meta']['total_length']:.0f}",
            "",
            style="bold",
        )
    Console().print(t)
