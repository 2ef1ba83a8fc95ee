#!/usr/bin/env python
"""Evaluate an agent on leaderboard routes: `python leaderboard/run.py --agent expert`.

The flags are the CARLA leaderboard evaluator's (--routes, --routes-subset, --repetitions, --agent,
--agent-config, --track, --checkpoint, --resume, --debug-checkpoint, --host, --port, --traffic-manager-port,
--traffic-manager-seed, --timeout, --debug) plus --leaderboard 1.0|2.0 (rule set; default: the route file's
format), --simulator embedded|carla, --map-dir, --weather, --seed,
--record DIR (mp4 per route), --workers N (Ray), --scenarios (1.0 trigger JSON), --vehicles / --walkers,
and robustness options: --scenarios-mode off|route, --occlusion ID, --sensor-fault ID (ids of scenarios/).
With no --routes the project's built-in routes on its own towns run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

# Run as a script, this file's folder is sys.path[0]; drop it so `leaderboard` is the package, not a sibling.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from leaderboard.evaluator import EvalConfig, run_evaluation
from leaderboard.route_runner import RouteOptions
from leaderboard.utils.signals import sigterm_as_interrupt
from sim.protocol import TrafficConfig


def _bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "y", "on"):
        return True
    if v.lower() in ("0", "false", "no", "n", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got '{v}'")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Closed-loop evaluation of a CARLA-leaderboard agent "
        "(embedded simulator or a CARLA server).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("simulator")
    g.add_argument(
        "--simulator", choices=("embedded", "carla"), default="embedded",
        help="the in-process simulator, or a CARLA server at --host/--port",
    )
    g.add_argument("--host", default="localhost", help="CARLA server host (--simulator carla)")
    g.add_argument("--port", type=int, default=2000, help="CARLA server port (--simulator carla)")
    g.add_argument("--traffic-manager-port", type=int, default=8000, help="CARLA Traffic Manager port")
    g.add_argument("--traffic-manager-seed", type=int, default=None, help="traffic seed (default: --seed)")
    g.add_argument("--timeout", type=float, default=300.0, help="seconds an agent set-up or step may take")
    g.add_argument("--map-dir", default=None, help="folder with <Town>.xodr files (e.g. CARLA's Town01)")
    g.add_argument(
        "--weather", default=None, help="a named weather overriding the routes': a CARLA preset (HardRainNoon) or "
        "a custom one (ClearNoonFogDense, LowSunGlare, ClearNightNoStreetLights; all: --weather list)"
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the traffic, pedestrians and scenarios")
    g.add_argument(
        "--vehicles", type=int, default=40,
        help="NPC vehicles kept within 100 m of the ego (capped by --max-vehicles-per-km)",
    )
    g.add_argument(
        "--max-vehicles-per-km", type=float, default=TrafficConfig.max_vehicles_per_km,
        help="cap on NPC density per km of driving lane within 100 m (default: CARLA's leaderboard Town01 "
        "background, 120 vehicles on 4.89 km); 0 = no cap",
    )
    g.add_argument(
        "--traffic-speed", type=float, default=TrafficConfig.speed_fraction,
        help="NPC vehicle speed as a fraction of the speed limit (default: the Traffic Manager's default, 30 %% "
        "below the limit, as leaderboard 1.0; leaderboard 2.0's background activity drives at the limit: 1.0)",
    )
    g.add_argument("--walkers", type=int, default=20, help="NPC pedestrians around the ego")
    g.add_argument(
        "--debug", type=int, default=0,
        help="> 0: agent tracebacks, Ray worker logs, every simulator note (passed to the agent as debug)",
    )
    g.add_argument("--record", default="", help="folder for an mp4 per route (six cameras + top view)")
    c = p.add_argument_group("data collection")
    c.add_argument("--collect", default="", metavar="OUT_DIR",
                   help="write a nuScenes/Occ3D dataset of the driven routes to OUT_DIR (key frames at 2 Hz)")
    c.add_argument("--collect-size", default="400x225", metavar="WxH",
                   help="camera size of the collected images (nuScenes native: 1600x900)")
    c.add_argument("--collect-version", default="v1.0-trainval", help="the dataset's table folder name")
    c.add_argument("--perturb", action="store_true",
                   help="with --collect: seeded recovery perturbations of the driving controls")
    r = p.add_argument_group("routes")
    r.add_argument(
        "--routes", default=None, help="route XML (leaderboard 1.0 or 2.0); default: built-in routes"
    )
    r.add_argument("--routes-subset", default="", help="route ids: '3', '0-5', '1,3,7-9'")
    r.add_argument(
        "--leaderboard", choices=("1.0", "2.0"), default=None,
        help="rules and results format of CARLA leaderboard 1.0 or 2.x (criteria, timeout, agent construction, "
        "sensor limits, scores); default: the route file's format, 2.0 for the built-in routes (docs/leaderboard.md)",
    )
    r.add_argument("--repetitions", type=int, default=1, help="runs of each route (route ids get _rep<k>)")
    r.add_argument(
        "--scenarios", default=None, help="leaderboard 1.0 scenario JSON (default: the one beside --routes)"
    )
    r.add_argument(
        "--scenarios-mode",
        choices=("off", "route"),
        default="route",
        help="'route': spawn the scenarios matched to each route (trigger JSON / <scenarios>); 'off': none",
    )
    r.add_argument(
        "--occlusion", default=None, help="an occlusion scenario id added along every route "
        "(e.g. occlusion/parked_truck_pedestrian)"
    )
    r.add_argument(
        "--sensor-fault", default=None, help="sensor faults applied to what the agent gets, in order, each "
        "NAME:SEVERITY (1-3), e.g. 'motion_blur:2,gnss_noise:1'; names: camera_blackout, lens_occlusion, "
        "gaussian_noise, motion_blur, frozen_camera, low_frame_rate, extrinsic_miscalibration, gnss_noise, "
        "delayed_control, or any fault/ id"
    )
    r.add_argument(
        "--suite", default=None, help="run a robustness suite instead of --routes: 'robustness', "
        "'robustness-quick' (configs/suite/) or a suite .yaml; results, table and heatmaps go beside --checkpoint "
        "(default robustness_<suite>/results.json)"
    )
    a = p.add_argument_group("agent")
    a.add_argument(
        "-a", "--agent", required=True, help="agent .py file, or a registered name: expert, occvla, plan-follower"
    )
    a.add_argument("--agent-config", default="", help="passed to the agent's setup()")
    a.add_argument("--track", default="SENSORS", help="SENSORS or MAP")
    o = p.add_argument_group("results")
    o.add_argument(
        "--checkpoint", default="./simulation_results.json", help="results JSON (leaderboard format)"
    )
    o.add_argument(
        "--debug-checkpoint", default="./live_results.txt", help="text file with the last finished route's scores"
    )
    o.add_argument(
        "--resume",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="skip routes already finished in --checkpoint",
    )
    o.add_argument(
        "--workers", type=int, default=1, help="routes in parallel on local Ray (one simulator each)"
    )
    o.add_argument("--no-report", action="store_true", help="skip the markdown report and plots")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _check_scenario_ids(occlusion: str | None, sensor_fault: str | None) -> str:
    """'' when the ids are registered scenarios / faults, else the one-line problem."""
    if not occlusion and not sensor_fault:
        return ""
    from scenarios import registered_ids

    if occlusion and occlusion not in registered_ids("scenario"):
        valid = [i for i in registered_ids("scenario") if i.startswith("occlusion/")]
        return f"--occlusion '{occlusion}' is not a registered scenario id (valid: {', '.join(valid)})"
    if sensor_fault:
        from scenarios.sensor_faults import SensorFaultError, parse_faults

        try:
            parse_faults(sensor_fault)
        except SensorFaultError as exc:
            return f"--sensor-fault '{sensor_fault}': {exc}"
    return ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    if not args.max_vehicles_per_km >= 0:  # also rejects NaN
        print(f"error: --max-vehicles-per-km must be >= 0, got {args.max_vehicles_per_km}", file=sys.stderr)
        return 2
    if not 0.0 < args.traffic_speed <= 2.0:  # also rejects NaN
        print(f"error: --traffic-speed must be in (0, 2], got {args.traffic_speed}", file=sys.stderr)
        return 2
    seed = args.seed if args.traffic_manager_seed is None else args.traffic_manager_seed
    opts = RouteOptions(
        agent=args.agent,
        agent_config=args.agent_config,
        track=args.track,
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        debug=args.debug,
        map_dir=args.map_dir,
        weather=args.weather,
        seed=seed,
        record_dir=args.record or None,
        scenarios_mode=args.scenarios_mode,
        occlusion=args.occlusion,
        sensor_fault=args.sensor_fault,
        leaderboard=args.leaderboard,
    )
    if args.collect:
        from agent.collector import collect_options_from_args

        try:
            opts.collect = collect_options_from_args(
                args.collect, args.collect_size, args.collect_version, args.perturb, args.resume
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    bad = _check_scenario_ids(args.occlusion, args.sensor_fault)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    if args.weather:
        from scenarios.weather_sets import named_weather, weather_names

        if args.weather == "list":
            print("\n".join(weather_names()))
            return 0
        try:
            named_weather(args.weather)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    cfg = EvalConfig(
        agent=args.agent,
        routes=args.routes,
        routes_subset=args.routes_subset,
        repetitions=args.repetitions,
        scenarios=args.scenarios,
        checkpoint=args.checkpoint,
        debug_checkpoint=args.debug_checkpoint,
        resume=args.resume,
        simulator=args.simulator,
        workers=args.workers,
        traffic_manager_port=args.traffic_manager_port,
        vehicles=args.vehicles,
        walkers=args.walkers,
        max_vehicles_per_km=args.max_vehicles_per_km or None,
        traffic_speed=args.traffic_speed,
        report=not args.no_report,
        progress=not args.no_progress,
        command="python leaderboard/run.py " + shlex.join(argv),
        options=opts,
    )
    try:
        with sigterm_as_interrupt():
            return _run_suite(args, cfg) if args.suite else run_evaluation(cfg)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished routes are in {args.checkpoint}; continue with --resume", file=sys.stderr)
        return 130


def _run_suite(args: argparse.Namespace, cfg: EvalConfig) -> int:
    import dataclasses

    from leaderboard.suite import SuiteError, load_suite, run_suite

    if args.routes or args.weather or args.occlusion or args.sensor_fault:
        print("error: --suite sets the routes, weathers, scenarios and faults itself; drop --routes, "
              "--weather, --occlusion and --sensor-fault (--routes-subset picks among the suite's routes)",
              file=sys.stderr)
        return 2
    try:
        suite = load_suite(args.suite)
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.routes_subset:
        suite = dataclasses.replace(suite, routes_subset=args.routes_subset)
    if args.checkpoint == build_parser().get_default("checkpoint"):
        cfg = dataclasses.replace(cfg, checkpoint=str(Path(f"robustness_{suite.name}") / "results.json"))
    return run_suite(suite, cfg)


if __name__ == "__main__":
    sys.exit(main())
