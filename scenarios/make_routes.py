"""Generate the built-in leaderboard route set on the project's towns (OccTown01, OccTown02).

    python -m scenarios.make_routes                     # rewrite scenarios/routes/routes_occtown.xml
    python -m scenarios.make_routes --check             # exit 1 if the committed file is out of date

Routes are drawn deterministically (seeded) from start/end pairs on driving lanes that the global route planner
connects with 300-800 m of road and at least one turn at a junction. The file is leaderboard 1.0 format
(`<waypoint x y z pitch roll yaw>` keypoints + one `<weather>`): keypoints are the start, every point where the
planned route turns at a junction (so the evaluator re-plans the same path), and the end. Each route gets one of
CARLA's weather presets, cycling through noon / sunset / night and dry / wet / rain.

Routes for any town (a generated `OccGen-<seed>`, a built-in town, or any OpenDRIVE town by --map-dir):

    python -m scenarios.make_routes --town OccGen-3 --count 2 --length 800 --seed 0 --out DIR/routes_occgen3.xml

writes N seeded routes of about the given length (turns at junctions; the lane changes that multi-lane roads ask
for are planned by the global route planner between keypoints), and the leaderboard-1.0 scenario trigger JSON
beside them (`all_towns_traffic_scenarios_public.json`, merged with what is there), which `leaderboard/run.py
--routes DIR/routes_occgen3.xml` reads on its own. From Python: `generate_routes(...)` and `scenario_triggers(...)`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import carla

from scenarios.leaderboard1 import lane_change_free_span
from sim.embedded.towns import TOWNS_DIR
from sim.protocol import SimulatorError
from sim.route_planner import (
    LANE_CHANGES,
    GlobalRoutePlanner,
    RoadOption,
    RoutePlanningError,
    beside_sidewalk,
    interpolate_trajectory,
    route_length,
)
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


def _candidates(cmap: carla.Map, street: bool = True) -> list[carla.Waypoint]:
    """Start/end candidates: driving-lane waypoints away from junctions (lane centres, every 10 m), on town
    streets (a sidewalk beside the lane): a route never starts or ends standing on a highway or a ramp, in the
    way of fast traffic (it may drive over them in between). `street=False`: the highway and ramp lanes instead
    (via points of routes asked to use them)."""
    out = []
    for w in cmap.generate_waypoints(10.0):
        if w.lane_type != carla.LaneType.Driving or w.is_junction or beside_sidewalk(w) != street:
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


# ----------------------------------------------------------------------------- routes for any town
SCENARIO_FILE = (
    "all_towns_traffic_scenarios_public.json"  # the name leaderboard/run.py looks for beside routes
)
JUNCTION_OPTIONS = (RoadOption.LEFT, RoadOption.RIGHT, RoadOption.STRAIGHT)


class RouteGenerationError(ValueError):
    """The town cannot give the routes asked for (one line: the town and what was missing)."""


@dataclass(frozen=True)
class RouteSpec:
    """What `generate_routes` draws: `count` routes of `length` m (+- `tolerance` of it), seeded."""

    count: int = 2
    length: float = 800.0
    tolerance: float = 0.15
    seed: int = 0
    min_turns: int = 1  # left/right turns at junctions per route
    min_lane_changes: int = 0  # lane changes the route must ask for (multi-lane towns)
    min_highway_m: float = 0.0  # metres the route must drive on highways and ramps (roads without a sidewalk)
    min_start_spacing: float = 30.0  # metres between the starts of two routes
    max_legs: int = 3  # a route may pass through up to max_legs - 1 via points (small towns, long routes)
    max_tries: int = 4000

    def check(self) -> None:
        if not isinstance(self.count, int) or self.count < 1:
            raise RouteGenerationError(f"route count must be a positive integer, got {self.count!r}")
        if not (math.isfinite(self.length) and self.length >= 50.0):
            raise RouteGenerationError(f"route length must be at least 50 m, got {self.length!r}")
        if not 0.0 < self.tolerance < 1.0:
            raise RouteGenerationError(f"length tolerance must be in (0, 1), got {self.tolerance!r}")


def _load_map(town: str, map_dir: str | Path | None, cache_dir: str | Path | None) -> carla.Map:
    from sim.embedded.maps import load_town  # the resolver of the embedded backend: map dir, CARLA_ROOT, ...

    return load_town(town, map_dir, cache_dir).map


def generate_routes(
    town: str,
    spec: RouteSpec | None = None,
    map_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    cmap: carla.Map | None = None,
    first_id: int = 0,
) -> list[RouteConfig]:
    """`spec.count` seeded random routes on `town`, leaderboard 1.0 style (keypoints + one weather each).

    Each route is a shortest lane-level path between two lane points away from junctions, `spec.length` m long
    (within the tolerance) with at least `spec.min_turns` turns at junctions and `spec.min_lane_changes` lane
    changes. Keypoints: the start, a lane point ahead of every junction crossing (on the lane the turn leaves
    from, so re-planning keeps the turns and the lane changes before them) and the end. Deterministic for
    (town, spec). Raises RouteGenerationError when the town cannot give such routes.
    """
    spec = spec or RouteSpec()
    spec.check()
    if cmap is None:
        cmap = _load_map(town, map_dir, cache_dir)
    rng = random.Random(f"routes-{town}-{spec.seed}")
    grp = GlobalRoutePlanner(cmap, 1.0)
    cands = _candidates(cmap)
    if len(cands) < 2:
        raise RouteGenerationError(f"{town}: no driving lanes away from junctions to start a route on")
    via = _candidates(cmap, street=False) if spec.min_highway_m > 0 else None
    if via is not None and not via:
        raise RouteGenerationError(
            f"{town}: no highway or ramp to route over (min_highway_m={spec.min_highway_m})"
        )
    lo, hi = spec.length * (1 - spec.tolerance), spec.length * (1 + spec.tolerance)
    made: list[RouteConfig] = []
    for _ in range(spec.max_tries):
        if len(made) >= spec.count:
            break
        a = rng.choice(cands)
        la = a.transform.location
        legs = _draw_legs(grp, cands, a, lo, hi, spec.max_legs, rng, first=via)
        if legs is None:
            continue
        trace = [step for leg in legs for step in leg]
        if via is not None and _highway_metres(trace) < spec.min_highway_m:
            continue
        turns = _count_turns(trace)
        changes = sum(
            1
            for i in range(1, len(trace))
            if trace[i][1] in LANE_CHANGES and trace[i - 1][1] not in LANE_CHANGES
        )
        if turns < spec.min_turns or changes < spec.min_lane_changes:
            continue
        if any(math.dist(r.keypoints[0][:2], (la.x, la.y)) < spec.min_start_spacing for r in made):
            continue
        kps = _keypoints(legs[0])
        for leg in legs[1:]:  # each via point stays a keypoint, so re-planning goes through it
            kps += _keypoints(leg)[1:]
        if _late_lane_change(cmap, grp, kps):
            continue
        w = weather_to_dict(weather_from_name(WEATHERS[(spec.seed + len(made)) % len(WEATHERS)]))
        made.append(
            RouteConfig(
                id=str(first_id + len(made)),
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
    if len(made) < spec.count:
        raise RouteGenerationError(
            f"{town}: found only {len(made)} of {spec.count} routes of {lo:.0f}-{hi:.0f} m with "
            f">= {spec.min_turns} turn(s) and >= {spec.min_lane_changes} lane change(s) in {spec.max_tries} tries"
        )
    return made


def _arc_lengths(dense: list[tuple[carla.Transform, RoadOption]]) -> list[float]:
    """Metres along a densified route at each of its points."""
    s = [0.0]
    for (a, _), (b, _) in zip(dense[:-1], dense[1:]):
        s.append(s[-1] + math.dist((a.location.x, a.location.y), (b.location.x, b.location.y)))
    return s


def _late_lane_change(cmap: carla.Map, grp: GlobalRoutePlanner, kps: list[carla.Waypoint]) -> bool:
    """The route as the evaluator densifies it (between its keypoints) changes lane less than
    LANE_CHANGE_JUNCTION_CLEARANCE_M before a junction it crosses: a change at the stop line, which a driver
    cannot make while the target lane queues at the light (OccGen-15 route 31: blocked 3 min at a red light)."""
    try:
        _, dense = interpolate_trajectory(cmap, [k.transform.location for k in kps], 1.0, planner=grp)
    except RoutePlanningError:
        return True
    entries = [i for i in range(1, len(dense)) if dense[i][1] in JUNCTION_OPTIONS and dense[i - 1][1] not in
               JUNCTION_OPTIONS]
    changes = [i for i in range(len(dense)) if dense[i][1] in LANE_CHANGES]
    if not entries or not changes:
        return False
    s = _arc_lengths(dense)
    return any(0.0 <= s[e] - s[c] < LANE_CHANGE_JUNCTION_CLEARANCE_M for c in changes for e in entries)


def _draw_legs(
    grp: GlobalRoutePlanner,
    cands: list[carla.Waypoint],
    start: carla.Waypoint,
    lo: float,
    hi: float,
    max_legs: int,
    rng: random.Random,
    first: list[carla.Waypoint] | None = None,
) -> list[list[tuple[carla.Waypoint, RoadOption]]] | None:
    """Shortest-path legs start -> via ... -> end whose total length is in [lo, hi]; None if this draw misses.

    Legs may not run over much of the same lane twice (a route, not a shuttle). `first`: the first via point is
    drawn from these (a highway lane), and the route then goes on to an end drawn from `cands`."""
    legs: list[list[tuple[carla.Waypoint, RoadOption]]] = []
    seen: set[tuple[int, int, int]] = set()
    total, here = 0.0, start
    for k in range(max_legs):
        loc = here.transform.location
        room = hi - total
        pool = first if first is not None and k == 0 else cands
        near = [w for w in pool if min(lo - total, room) / 4 <= loc.distance(w.transform.location) <= room]
        if not near:
            return None
        nxt = rng.choice(near)
        try:
            leg = grp.trace_route(loc, nxt.transform.location)
        except RoutePlanningError:
            return None
        if legs:
            leg = leg[1:]  # the via point ends the previous leg
        keys = {(w.road_id, w.lane_id, int(w.s // 5)) for w, _ in leg}
        if len(keys & seen) > 0.2 * max(len(keys), 1):
            return None
        seen |= keys
        legs.append(leg)
        total += route_length([(w.transform, o) for w, o in ([legs[-2][-1]] if len(legs) > 1 else []) + leg])
        if total > hi:
            return None
        if total >= lo and (first is None or k > 0):
            return legs
        here = nxt
    return None


def _highway_metres(trace: list[tuple[carla.Waypoint, RoadOption]]) -> float:
    """Metres of the (1 m) trace on highway and ramp lanes: outside junctions, no sidewalk beside them."""
    return float(sum(1 for w, _ in trace if not w.is_junction and not beside_sidewalk(w)))


def _count_turns(trace: list[tuple[carla.Waypoint, RoadOption]]) -> int:
    return sum(1 for i in range(1, len(trace)) if trace[i][1] in TURNS and trace[i - 1][1] not in TURNS)


# scenario types that fit each trigger site (leaderboard-1.0 names; scenarios/leaderboard1.py implements them)
LANE_CHANGE_JUNCTION_CLEARANCE_M = 20.0  # no lane change of a route closer than this before a junction
TRIGGER_MIN_GAP_M = 40.0  # between any two triggers of a town
LANE_SCENARIOS = ("Scenario1", "Scenario2", "Scenario3", "Scenario5")
ONE_LANE_SCENARIOS = ("Scenario6",)  # passing a broken-down car needs the opposite lane right beside the ego
SIGNALISED_SCENARIOS = {
    RoadOption.LEFT: ("Scenario7", "Scenario8", "Scenario4"),
    RoadOption.RIGHT: ("Scenario7", "Scenario9", "Scenario4"),
    RoadOption.STRAIGHT: ("Scenario7",),
}
UNSIGNALISED_SCENARIOS = {
    RoadOption.LEFT: ("Scenario10", "Scenario4"),
    RoadOption.RIGHT: ("Scenario10", "Scenario4"),
    RoadOption.STRAIGHT: ("Scenario10",),
}


def scenario_triggers(
    routes: list[RouteConfig],
    cmap: carla.Map,
    seed: int = 0,
    spacing: float = 120.0,
    junction_lead: float = 12.0,
) -> dict[str, list[dict[str, Any]]]:
    """Leaderboard-1.0 trigger points along the routes: town -> [{scenario_type, available_event_configurations}].

    Sites are at least `spacing` m apart along each route: `junction_lead` m before a junction the route crosses
    (scenarios 4, 7-10, picked by the turn and by whether the junction has traffic lights) or on a lane stretch
    clear of junctions (scenarios 1, 2, 3, 5; 6 on one-lane roads). One seeded type per site. The trigger
    transforms are route points, so `match_scenarios_to_route` attaches each to its route.
    """
    rng = random.Random(f"triggers-{seed}")
    grp = GlobalRoutePlanner(cmap, 1.0)
    by_type: dict[str, list[dict[str, Any]]] = {}
    town = routes[0].town if routes else ""
    # town-wide: a junction has one site, and no two triggers stand close (a route crossing another's site would
    # run both, and their actors would spawn on each other)
    placed: list[tuple[float, float]] = []
    junctions: set[int] = set()
    for r in routes:
        _, dense = interpolate_trajectory(cmap, r.keypoint_locations(), 1.0, planner=grp)
        s = _arc_lengths(dense)
        changes = [s[k] for k, (_, o) in enumerate(dense) if o in LANE_CHANGES]
        last = -spacing / 2  # the first site no earlier than spacing/2 into the route
        i = 0
        while i < len(dense):
            t, option = dense[i]
            site: tuple[int, tuple[str, ...]] | None = None
            entry = (
                i + 1 < len(dense) and dense[i + 1][1] in JUNCTION_OPTIONS and option not in JUNCTION_OPTIONS
            )
            if entry:
                j = max(0, i - round(junction_lead))
                wp = cmap.get_waypoint(dense[j][0].location, lane_type=carla.LaneType.Driving)
                junction = _junction_id(cmap, dense[i + 1][0].location)
                if (wp is not None and not wp.is_junction and s[j] - last >= spacing
                        and junction not in junctions):
                    lit = bool(wp.get_landmarks_of_type(junction_lead + 2.0, "1000001", False))
                    table = SIGNALISED_SCENARIOS if lit else UNSIGNALISED_SCENARIOS
                    types = table[RoadOption(dense[i + 1][1])]
                    if _junction_arms(cmap, dense[i + 1][0].location) < 4:  # a T: often no crossing traffic
                        types = tuple(t for t in types if t != "Scenario10") or ("Scenario4",) * (
                            dense[i + 1][1] != RoadOption.STRAIGHT
                        )
                    site = (j, types) if types else None
            elif option == RoadOption.LANEFOLLOW and s[i] - last >= spacing and s[-1] - s[i] > 60.0:
                wp = cmap.get_waypoint(t.location, lane_type=carla.LaneType.Driving)
                clear = wp is not None and all(
                    not n.is_junction for n in (*wp.next(45.0), *wp.previous(10.0))
                )
                clear = clear and not any(o != RoadOption.LANEFOLLOW for _, o in dense[i : i + 45])
                if clear:
                    left, right = wp.get_left_lane(), wp.get_right_lane()
                    one_lane = (left is None or left.lane_id * wp.lane_id < 0) and (
                        right is None or right.lane_type != carla.LaneType.Driving
                    )
                    types = LANE_SCENARIOS + (ONE_LANE_SCENARIOS if one_lane else ())
                    site = (i, tuple(k for k in types if _fits_lane_changes(k, s[i], changes)))
            if site is not None and not _near(placed, dense[site[0]][0].location, TRIGGER_MIN_GAP_M):
                j, types = site
                tj = dense[j][0]
                placed.append((tj.location.x, tj.location.y))
                if entry and junction >= 0:
                    junctions.add(junction)
                by_type.setdefault(rng.choice(types), []).append(
                    {
                        "transform": {
                            "x": f"{tj.location.x:.3f}",
                            "y": f"{tj.location.y:.3f}",
                            "z": f"{tj.location.z:.3f}",
                            "pitch": "0.0",
                            "yaw": f"{tj.rotation.yaw:.3f}",
                        }
                    }
                )
                last = s[j]
            i += 1
    return {
        town: [{"scenario_type": k, "available_event_configurations": v} for k, v in sorted(by_type.items())]
    }


def _junction_id(cmap: carla.Map, loc: carla.Location) -> int:
    wp = cmap.get_waypoint(loc, lane_type=carla.LaneType.Driving)
    j = wp.get_junction() if wp is not None and wp.is_junction else None
    return j.id if j is not None else -1


def _near(points: list[tuple[float, float]], loc: carla.Location, gap: float) -> bool:
    return any(math.hypot(loc.x - x, loc.y - y) < gap for x, y in points)


def _fits_lane_changes(scenario_type: str, s_site: float, changes: list[float]) -> bool:
    """False where the route changes lane within the span the scenario type keeps free of lane changes (a lead
    vehicle standing in the lane the ego must change into: the scenario would refuse the trigger)."""
    span = lane_change_free_span(scenario_type)
    return span is None or not any(-span[0] <= c - s_site <= span[1] for c in changes)


def _junction_arms(cmap: carla.Map, loc: carla.Location) -> int:
    """How many roads enter the junction at `loc` (4 for a crossing, 3 for a T)."""
    wp = cmap.get_waypoint(loc, lane_type=carla.LaneType.Driving)
    if wp is None or not wp.is_junction:
        return 0
    roads = set()
    for entry, _ in wp.get_junction().get_waypoints(carla.LaneType.Driving):
        before = entry.previous(1.0)
        if before:
            roads.add(before[0].road_id)
    return len(roads)


def write_scenario_json(path: Path, triggers: dict[str, list[dict[str, Any]]]) -> None:
    """Merge trigger points into a leaderboard-1.0 scenario JSON (other towns kept, same points not repeated),
    written atomically."""
    data: dict[str, Any] = {"available_scenarios": [{}]}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RouteGenerationError(f"existing scenario file {path} is not valid JSON: {exc}") from None
        if not isinstance(data.get("available_scenarios"), list) or not data["available_scenarios"]:
            raise RouteGenerationError(f"existing scenario file {path} has no 'available_scenarios' list")
    block = data["available_scenarios"][0]
    for town, scenarios in triggers.items():
        have = {sc["scenario_type"]: sc for sc in block.setdefault(town, [])}
        for sc in scenarios:
            cur = have.get(sc["scenario_type"])
            if cur is None:
                block[town].append(sc)
                have[sc["scenario_type"]] = sc
                continue
            seen = {json.dumps(e["transform"], sort_keys=True) for e in cur["available_event_configurations"]}
            for e in sc["available_event_configurations"]:
                if json.dumps(e["transform"], sort_keys=True) not in seen:
                    cur["available_event_configurations"].append(e)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_generated(
    towns: str | list[str],
    spec: RouteSpec,
    out: Path,
    map_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    scenarios: bool = True,
) -> tuple[list[RouteConfig], Path]:
    """Generate `spec.count` routes on each town (ids numbered through all of them) and write one route XML
    (atomically) and, beside it, the merged trigger JSON."""
    routes: list[RouteConfig] = []
    triggers: dict[str, list[dict[str, Any]]] = {}
    for town in [towns] if isinstance(towns, str) else towns:
        cmap = _load_map(town, map_dir, cache_dir)
        made = generate_routes(town, spec, cmap=cmap, first_id=len(routes))
        routes += made
        if scenarios:
            triggers.update(scenario_triggers(made, cmap, spec.seed))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    write_routes_xml(routes, tmp, fmt="1.0")
    os.replace(tmp, out)
    json_path = out.with_name(SCENARIO_FILE)
    if scenarios:
        write_scenario_json(json_path, triggers)
    return routes, json_path


def _expand_towns(arg: str) -> list[str]:
    """'OccGen-0..19' -> OccGen-0 ... OccGen-19 (inclusive); any other name as it is."""
    head, sep, tail = arg.rpartition("..")
    if sep and head.startswith("OccGen-") and head[7:].isdigit() and tail.isdigit():
        lo, hi = int(head[7:]), int(tail)
        if hi < lo:
            raise RouteGenerationError(f"empty town range {arg!r}")
        return [f"OccGen-{k}" for k in range(lo, hi + 1)]
    return [arg]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help=f"route XML to write (default: {OUT})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--check", action="store_true", help="exit 1 if --out differs from what would be generated"
    )
    g = p.add_argument_group("routes for any town (instead of the built-in set)")
    g.add_argument(
        "--town",
        nargs="+",
        default=None,
        help="one or more towns, e.g. OccGen-3 (or OccGen-0..19), OccTown02, a town in --map-dir / $CARLA_ROOT",
    )
    g.add_argument("--count", type=int, default=2, help="number of routes (default 2)")
    g.add_argument("--length", type=float, default=800.0, help="route length in metres (default 800)")
    g.add_argument(
        "--tolerance", type=float, default=0.15, help="allowed relative length error (default 0.15)"
    )
    g.add_argument("--min-turns", type=int, default=1, help="turns at junctions per route (default 1)")
    g.add_argument("--min-lane-changes", type=int, default=0, help="lane changes per route (default 0)")
    g.add_argument(
        "--min-highway-m",
        type=float,
        default=0.0,
        help="metres per route on highways and ramps (towns that have them; default 0)",
    )
    g.add_argument("--map-dir", default=None, help="folder of .xodr towns searched first")
    g.add_argument(
        "--cache-dir", default=None, help="cache root for generated towns (default ~/.cache/occvla-drive)"
    )
    g.add_argument(
        "--no-scenarios", action="store_true", help=f"do not write/merge {SCENARIO_FILE} beside --out"
    )
    args = p.parse_args(argv)
    if args.town is not None:
        if args.out is None:
            p.error("--town needs --out (the route XML to write)")
        spec = RouteSpec(
            count=args.count,
            length=args.length,
            tolerance=args.tolerance,
            seed=args.seed,
            min_turns=args.min_turns,
            min_lane_changes=args.min_lane_changes,
            min_highway_m=args.min_highway_m,
        )
        try:
            towns = [t for arg in args.town for t in _expand_towns(arg)]
            routes, json_path = write_generated(
                towns, spec, args.out, args.map_dir, args.cache_dir, not args.no_scenarios
            )
        except (RouteGenerationError, SimulatorError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        extra = "" if args.no_scenarios else f" and scenario triggers to {json_path}"
        print(f"wrote {len(routes)} routes on {', '.join(towns)} to {args.out}{extra}")
        return 0
    args.out = args.out or OUT
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
