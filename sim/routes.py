"""Route files of the CARLA leaderboard: parsing (1.0 and 2.0 formats), route subsets, scenario triggers, writing.

Leaderboard 1.0: `<route id town>` holding `<waypoint x y z pitch roll yaw/>` keypoints and at most one
`<weather .../>`; scenarios come from a separate JSON of trigger points per town
(`all_towns_traffic_scenarios_public.json`), matched to the densified route.
Leaderboard 2.0: `<route id town>` holding `<weathers><weather route_percentage=.../></weathers>`,
`<waypoints><position x y z/></waypoints>` and `<scenarios><scenario name type><trigger_point .../>
<param value=.../></scenario></scenarios>`.

Everything here is plain, picklable data (floats and dicts) so route configs cross process boundaries (Ray);
`RouteConfig.keypoint_locations()` / `weather_at()` build the carla objects on demand.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import carla

from sim.route_planner import RoadOption
from sim.weather import WEATHER_FIELDS, WeatherError, interpolate_weather, weather_from_dict, weather_to_dict

# Default weathers of the two parsers (the leaderboard's values).
DEFAULT_WEATHER_V1 = {"sun_altitude_angle": 70.0, "cloudiness": 30.0}
DEFAULT_WEATHER_V2 = {"sun_altitude_angle": 70.0, "cloudiness": 50.0}
# A 1.0 JSON trigger point belongs to a route when a route point is this close in position and yaw.
TRIGGER_DIST_THRESHOLD = 2.0  # metres
TRIGGER_ANGLE_THRESHOLD = 10.0  # degrees


class RouteFileError(ValueError):
    """A missing or malformed route / scenario file (one line, names the file and the problem)."""


@dataclass
class ScenarioConfig:
    """One scenario attached to a route: where it triggers and its parameters (strings, as in the XML)."""

    name: str
    type: str
    trigger_points: list[tuple[float, float, float, float]]  # (x, y, z, yaw) world frame
    other_actors: list[dict[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)  # 2.0: tag -> attributes; 1.0: {'subtype': ...}


@dataclass
class RouteConfig:
    """One route of a route file, as plain data."""

    id: str
    town: str
    keypoints: list[tuple[float, float, float]]  # world frame, metres
    keypoint_yaws: list[float | None]  # 1.0 files give a yaw per keypoint; 2.0 files do not
    weathers: list[tuple[float, dict[str, float]]]  # (route percentage 0..100, every WeatherParameters field)
    scenarios: list[ScenarioConfig] = field(default_factory=list)
    format: str = "2.0"  # '1.0' | '2.0'
    source: str = ""  # the file it came from
    index: int = 0  # position in the run (route x repetition), set by the indexer
    repetition_index: int = 0
    seed_key: str = ""  # the id the per-route seed derives from ('' = `id`); a suite runs one route in many cells

    @property
    def name(self) -> str:
        """The leaderboard's scenario name, e.g. 'RouteScenario_3'."""
        return f"RouteScenario_{self.id}"

    @property
    def route_id(self) -> str:
        """The results-JSON id, e.g. 'RouteScenario_3_rep0'."""
        return f"{self.name}_rep{self.repetition_index}"

    def keypoint_locations(self) -> list[carla.Location]:
        return [carla.Location(x, y, z) for x, y, z in self.keypoints]

    def start_transform(self) -> carla.Transform:
        x, y, z = self.keypoints[0]
        yaw = self.keypoint_yaws[0] if self.keypoint_yaws and self.keypoint_yaws[0] is not None else 0.0
        return carla.Transform(carla.Location(x, y, z), carla.Rotation(yaw=yaw))

    def weather_at(self, route_percentage: float) -> carla.WeatherParameters:
        """Weather at a route percentage, interpolated between keyframes as leaderboard 2.0 does.

        Below the first keyframe the first weather holds; above the last, the last one.
        """
        keys = sorted(self.weathers, key=lambda kv: kv[0])
        if not keys:
            return weather_from_dict(DEFAULT_WEATHER_V2)
        p = float(route_percentage)
        if p <= keys[0][0]:
            return weather_from_dict(keys[0][1])
        for (p0, w0), (p1, w1) in zip(keys[:-1], keys[1:]):
            if p <= p1:
                t = 0.0 if p1 == p0 else (p - p0) / (p1 - p0)
                return interpolate_weather(weather_from_dict(w0), weather_from_dict(w1), t)
        return weather_from_dict(keys[-1][1])


# ---------------------------------------------------------------------- parsing
def _float(elem: ET.Element, key: str, where: str, default: float | None = None) -> float:
    raw = elem.attrib.get(key)
    if raw is None:
        if default is not None:
            return default
        raise RouteFileError(f"{where}: <{elem.tag}> has no '{key}' attribute")
    try:
        v = float(raw)
    except ValueError:
        raise RouteFileError(f"{where}: <{elem.tag}> {key}={raw!r} is not a number") from None
    if not math.isfinite(v):
        raise RouteFileError(f"{where}: <{elem.tag}> {key}={raw!r} is not finite")
    return v


def _weather_dict(attrs: dict[str, str], base: dict[str, float], where: str) -> dict[str, float]:
    d = {k: v for k, v in attrs.items() if k in WEATHER_FIELDS}
    try:
        return weather_to_dict(weather_from_dict(d, weather_from_dict(base)))
    except WeatherError as exc:
        raise RouteFileError(f"{where}: {exc}") from None


def parse_routes_subset(subset: str, ids: Sequence[str]) -> list[str]:
    """Route ids selected by a CARLA-style subset string: '3', '0-5', '1,3,7-9' (ids in file order)."""
    chosen: list[str] = []
    ids = list(ids)
    for group in subset.replace(" ", "").split(","):
        if not group:
            continue
        if "-" in group and group not in ids:
            start, _, end = group.partition("-")
            if start not in ids:
                raise RouteFileError(f"route subset '{subset}': no route with id '{start}'")
            if end not in ids:
                raise RouteFileError(f"route subset '{subset}': no route with id '{end}'")
            i0, i1 = ids.index(start), ids.index(end)
            if i1 < i0:
                raise RouteFileError(f"route subset '{subset}': group '{group}' ends before it starts")
            block = ids[i0 : i1 + 1]
        else:
            if group not in ids:
                raise RouteFileError(f"route subset '{subset}': no route with id '{group}'")
            block = [group]
        for rid in block:
            if rid in chosen:
                raise RouteFileError(f"route subset '{subset}': route '{rid}' is selected twice")
            chosen.append(rid)
    if not chosen:
        raise RouteFileError(f"route subset '{subset}' selects no route")
    order = {rid: i for i, rid in enumerate(ids)}
    return sorted(chosen, key=order.__getitem__)


def parse_routes_file(path: str | Path, routes_subset: str = "") -> list[RouteConfig]:
    """Parse a leaderboard 1.0 or 2.0 route file (format detected per route). RouteFileError on bad input."""
    p = Path(path)
    if not p.is_file():
        raise RouteFileError(f"route file '{p}' does not exist")
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise RouteFileError(f"route file '{p}' is not valid XML: {exc}") from None
    elems = list(root.iter("route"))
    if not elems:
        raise RouteFileError(f"route file '{p}' has no <route> elements")
    ids = []
    for e in elems:
        rid = e.attrib.get("id")
        if rid is None:
            raise RouteFileError(f"route file '{p}': a <route> has no 'id' attribute")
        if rid in ids:
            raise RouteFileError(f"route file '{p}': route id '{rid}' appears twice")
        ids.append(rid)
    wanted = set(parse_routes_subset(routes_subset, ids)) if routes_subset else set(ids)
    return [_parse_route(e, p) for e in elems if e.attrib["id"] in wanted]


def _parse_route(elem: ET.Element, path: Path) -> RouteConfig:
    rid = elem.attrib["id"]
    where = f"route file '{path}', route {rid}"
    town = elem.attrib.get("town")
    if not town:
        raise RouteFileError(f"{where}: no 'town' attribute")
    wps = elem.find("waypoints")
    if wps is not None:  # leaderboard 2.0
        keypoints = [
            (_float(q, "x", where), _float(q, "y", where), _float(q, "z", where, 0.0))
            for q in wps.iter("position")
        ]
        yaws: list[float | None] = [None] * len(keypoints)
        weathers = []
        wel = elem.find("weathers")
        for w in wel.iter("weather") if wel is not None else ():
            weathers.append(
                (_float(w, "route_percentage", where), _weather_dict(w.attrib, DEFAULT_WEATHER_V2, where))
            )
        if not weathers:
            weathers = [(0.0, _weather_dict({}, DEFAULT_WEATHER_V2, where))]
        scenarios = _parse_v2_scenarios(elem, where)
        fmt = "2.0"
    else:  # leaderboard 1.0
        pts = list(elem.iter("waypoint"))
        keypoints = [(_float(q, "x", where), _float(q, "y", where), _float(q, "z", where, 0.0)) for q in pts]
        yaws = [_float(q, "yaw", where) if "yaw" in q.attrib else None for q in pts]
        w = elem.find("weather")
        # 1.0: a <weather> starts from all-zero fields; no <weather> gives the parser's default
        weather = (
            _weather_dict(w.attrib, {}, where)
            if w is not None
            else _weather_dict({}, DEFAULT_WEATHER_V1, where)
        )
        weathers = [(0.0, weather)]
        scenarios = []
        fmt = "1.0"
    weathers.sort(key=lambda kv: kv[0])
    if len(keypoints) < 2:
        raise RouteFileError(f"{where}: needs at least 2 waypoints, found {len(keypoints)}")
    return RouteConfig(rid, town, keypoints, yaws, weathers, scenarios, fmt, str(path))


def _parse_v2_scenarios(elem: ET.Element, where: str) -> list[ScenarioConfig]:
    out = []
    sel = elem.find("scenarios")
    for s in sel.iter("scenario") if sel is not None else ():
        name, stype = s.attrib.get("name", ""), s.attrib.get("type", "")
        if not stype:
            raise RouteFileError(f"{where}: scenario '{name}' has no 'type'")
        cfg = ScenarioConfig(name or stype, stype, [])
        for child in s:
            if child.tag == "trigger_point":
                cfg.trigger_points.append(
                    (
                        _float(child, "x", where),
                        _float(child, "y", where),
                        _float(child, "z", where, 0.0),
                        _float(child, "yaw", where, 0.0),
                    )
                )
            elif child.tag == "other_actor":
                cfg.other_actors.append(dict(child.attrib))
            else:
                cfg.parameters[child.tag] = dict(child.attrib)
        if not cfg.trigger_points:
            raise RouteFileError(f"{where}: scenario '{cfg.name}' has no <trigger_point>")
        out.append(cfg)
    return out


# ---------------------------------------------------------------------- leaderboard 1.0 scenario JSON
def load_scenario_annotations(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Town -> scenario definitions from a leaderboard 1.0 scenario JSON ('available_scenarios')."""
    p = Path(path)
    if not p.is_file():
        raise RouteFileError(f"scenario file '{p}' does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise RouteFileError(f"scenario file '{p}' is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("available_scenarios"), list):
        raise RouteFileError(f"scenario file '{p}' has no 'available_scenarios' list")
    towns: dict[str, list[dict[str, Any]]] = {}
    for block in data["available_scenarios"]:
        for town, scenarios in block.items():
            towns.setdefault(town, []).extend(scenarios)
    return towns


def _scenario_subtype(
    name: str, match: int, route: Sequence[tuple[carla.Transform, RoadOption]]
) -> str | None:
    """The route-dependent variant of a 1.0 scenario (S4left, S7opposite, ...), None if it cannot happen here."""
    table = {
        "Scenario4": {RoadOption.LEFT: "S4left", RoadOption.RIGHT: "S4right"},
        "Scenario7": {
            RoadOption.LEFT: "S7left",
            RoadOption.RIGHT: "S7right",
            RoadOption.STRAIGHT: "S7opposite",
        },
        "Scenario8": {RoadOption.LEFT: "S8left"},
        "Scenario9": {RoadOption.RIGHT: "S9right"},
    }
    if name not in table:
        return "valid"
    for _, option in route[match:]:
        if option in (RoadOption.LEFT, RoadOption.RIGHT, RoadOption.STRAIGHT, RoadOption.VOID):
            return table[name].get(RoadOption(option))
    return None


def match_scenarios_to_route(
    town: str,
    route: Sequence[tuple[carla.Transform, RoadOption]],
    annotations: dict[str, list[dict[str, Any]]],
) -> list[ScenarioConfig]:
    """1.0 scenarios whose trigger point lies on the dense route (within 2 m and 10 degrees of a route point)."""
    out: list[ScenarioConfig] = []
    pts = [(t.location.x, t.location.y, t.location.z, t.rotation.yaw) for t, _ in route]
    for scenario in annotations.get(town, []):
        sname = scenario.get("scenario_type", "")
        for k, event in enumerate(scenario.get("available_event_configurations", [])):
            tr = event.get("transform", {})
            try:
                x, y, z, yaw = (float(tr[key]) for key in ("x", "y", "z", "yaw"))
            except (KeyError, ValueError):
                continue
            match = None
            for i, (px, py, pz, pyaw) in enumerate(pts):
                dpos = math.sqrt((x - px) ** 2 + (y - py) ** 2 + (z - pz) ** 2)
                dyaw = (yaw - pyaw) % 360.0
                if dpos < TRIGGER_DIST_THRESHOLD and (
                    dyaw < TRIGGER_ANGLE_THRESHOLD or dyaw > 360.0 - TRIGGER_ANGLE_THRESHOLD
                ):
                    match = i
                    break
            if match is None:
                continue
            subtype = _scenario_subtype(sname, match, route)
            if subtype is None:
                continue
            actors = event.get("other_actors") or {}
            out.append(
                ScenarioConfig(
                    f"{sname}_{k}",
                    sname,
                    [(x, y, z, yaw)],
                    other_actors=[{"group": g, **a} for g, lst in actors.items() for a in lst],
                    parameters={"subtype": subtype, "route_index": match},
                )
            )
    return out


# ---------------------------------------------------------------------- writing
def write_routes_xml(routes: Sequence[RouteConfig], path: str | Path, fmt: str = "1.0") -> None:
    """Write routes as a leaderboard route file ('1.0': <waypoint>s + one <weather>; '2.0': <waypoints>)."""
    if fmt not in ("1.0", "2.0"):
        raise ValueError(f"unknown route format '{fmt}' (choose 1.0 or 2.0)")
    root = ET.Element("routes")
    for r in routes:
        re_ = ET.SubElement(root, "route", id=str(r.id), town=r.town)
        if fmt == "1.0":
            if r.weathers:
                ET.SubElement(re_, "weather", {k: f"{v:g}" for k, v in r.weathers[0][1].items()})
            for (x, y, z), yaw in zip(r.keypoints, r.keypoint_yaws or [None] * len(r.keypoints)):
                attrs = {
                    "x": f"{x:.3f}",
                    "y": f"{y:.3f}",
                    "z": f"{z:.3f}",
                    "pitch": "0.0",
                    "roll": "0.0",
                    "yaw": f"{(yaw or 0.0):.3f}",
                }
                ET.SubElement(re_, "waypoint", attrs)
        else:
            wel = ET.SubElement(re_, "weathers")
            for pct, w in r.weathers:
                ET.SubElement(
                    wel, "weather", {"route_percentage": f"{pct:g}", **{k: f"{v:g}" for k, v in w.items()}}
                )
            wps = ET.SubElement(re_, "waypoints")
            for x, y, z in r.keypoints:
                ET.SubElement(wps, "position", x=f"{x:.3f}", y=f"{y:.3f}", z=f"{z:.3f}")
            sel = ET.SubElement(re_, "scenarios")
            for s in r.scenarios:
                se = ET.SubElement(sel, "scenario", name=s.name, type=s.type)
                for x, y, z, yaw in s.trigger_points:
                    ET.SubElement(
                        se, "trigger_point", x=f"{x:.3f}", y=f"{y:.3f}", z=f"{z:.3f}", yaw=f"{yaw:.3f}"
                    )
                for tag, attrs in s.parameters.items():
                    if isinstance(attrs, dict):
                        ET.SubElement(se, tag, {k: str(v) for k, v in attrs.items()})
    ET.indent(root, space="   ")
    Path(path).write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    )
