"""Generate the built-in leaderboard route set on the project's towns (OccTown01, OccTown02).

    python -m scenarios.make_routes                     # rewrite scenarios/routes/routes_occtown.xml
    python -m scenarios.make_routes --check             # exit 1 if the committed file is out of date

Routes are drawn deterministically (seeded) from start/end pairs on driving lanes that the global route planner
connects with 300-800 m of road and at least one turn at a junction. The file is leaderboard 1.0 format
(`<waypoint x y z pitch roll yaw>` keypoints + one `<weather>`): keypoints are the start, every point where the
planned route turns at a junction (so the evaluator re-plans the same path), and the end. Each route gets one of
CARLA's weather presets, cycling through noon / sunset / night and dry / wet / rain.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import carla

from sim.embedded.towns import TOWNS_DIR
from sim.route_planner import GlobalRoutePlanner, RoadOption, RoutePlanningError, route_length
from sim.routes import RouteConfig, write_routes_xml
from sim.weather import weather_from_name, weather_to_dict

OUT = Path(__file__).resolve().parent / "routes" / "routes_occtown.xml"
ROUTES_PER_TOWN = {"OccTown01": 5, "OccTown02": 3}
MIN_LENGTH, MAX_LENGTH = 300.0, 800.0
WEATHERS = (
    "ClearNoon",
    "WetCloudySunset",
    "CloudyNoon",
    "ClearNight",
    "SoftRainNoon",
    "ClearSunset",
    "WetNoon",
    "MidRainSunset",
)
TURNS = (RoadOption.LEFT, RoadOption.RIGHT)


def _candidates(cmap: carla.Map) -> list[carla.Waypoint]:
    """Start/end candidates: driving-lane waypoints away from junctions (lane centres, every 10 m)."""
    out = []
    for w in cmap.generate_waypoints(10.0):
        if w.lane_type != carla.LaneType.Driving or w.is_junction:
            continue
        ahead, behind = w.next(12.0), w.previous(12.0)
        if not ahead or not behind or ahead[0].is_junction or behind[0].is_junction:
            continue
        out.append(w)
    return out


def _keypoints(trace: list[tuple[carla.Waypoint, RoadOption]], before: int = 8) -> list[carla.Waypoint]:
    """Start, a lane point `before` metres ahead of every junction crossing, and the end.

    Keypoints stay on plain lanes (never inside a junction), so re-planning between them gives the same turns.
    """
    keep = [0]
    for i in range(1, len(trace)):
        if trace[i][1] in TURNS + (RoadOption.STRAIGHT,) and trace[i - 1][1] == RoadOption.LANEFOLLOW:
            j = i - before
            if j > keep[-1] + before and all(o == RoadOption.LANEFOLLOW for _, o in trace[j:i]):
                keep.append(j)
    keep.append(len(trace) - 1)
    return [trace[i][0] for i in keep]


def make_routes(seed: int = 0) -> list[RouteConfig]:
    """The built-in route set (deterministic for a seed)."""
    rng = random.Random(seed)
    routes: list[RouteConfig] = []
    weather_i = 0
    for town, count in ROUTES_PER_TOWN.items():
        cmap = carla.Map(town, (TOWNS_DIR / f"{town}.xodr").read_text())
        grp = GlobalRoutePlanner(cmap, 1.0)
        cands = _candidates(cmap)
        made: list[RouteConfig] = []
        for _ in range(5000):
            if len(made) >= count:
                break
            a, b = rng.sample(cands, 2)
            try:
                trace = grp.trace_route(a.transform.location, b.transform.location)
            except RoutePlanningError:
                continue
            dense = [(wp.transform, o) for wp, o in trace]
            length = route_length(dense)
            options = {o for _, o in trace}
            if not (MIN_LENGTH <= length <= MAX_LENGTH) or not (options & set(TURNS)):
                continue
            starts = [r.keypoints[0] for r in made]
            if any(
                abs(s[0] - a.transform.location.x) + abs(s[1] - a.transform.location.y) < 30 for s in starts
            ):
                continue  # spread the starts
            kps = _keypoints(trace)
            w = weather_to_dict(weather_from_name(WEATHERS[weather_i % len(WEATHERS)]))
            weather_i += 1
            made.append(
                RouteConfig(
                    id=str(len(routes) + len(made)),
                    town=town,
                    keypoints=[
                        (
                            round(k.transform.location.x, 3),
                            round(k.transform.location.y, 3),
                            round(k.transform.location.z, 3),
                        )
                        for k in kps
                    ],
                    keypoint_yaws=[round(k.transform.rotation.yaw, 3) for k in kps],
                    weathers=[(0.0, w)],
                    format="1.0",
                )
            )
        if len(made) < count:
            raise RuntimeError(
                f"{town}: found only {len(made)} of {count} routes of {MIN_LENGTH:g}-{MAX_LENGTH:g} m"
            )
        routes.extend(made)
    return routes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--check", action="store_true", help="exit 1 if --out differs from what would be generated"
    )
    args = p.parse_args(argv)
    routes = make_routes(args.seed)
    tmp = args.out.with_suffix(".tmp")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_routes_xml(routes, tmp, fmt="1.0")
    if args.check:
        same = args.out.exists() and args.out.read_text() == tmp.read_text()
        tmp.unlink()
        print(f"{args.out}: {'up to date' if same else 'OUT OF DATE'}")
        return 0 if same else 1
    tmp.replace(args.out)
    print(f"wrote {len(routes)} routes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
