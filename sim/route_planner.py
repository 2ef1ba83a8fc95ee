"""Global route planning on a carla.Map, with CARLA's RoadOption commands.

The planner follows the behaviour of CARLA's `agents.navigation.global_route_planner` (which the leaderboard
uses to densify route files): the map topology becomes a directed networkx graph whose edges are lane
segments sampled every `sampling_resolution` metres plus lane-change links between neighbouring driving lanes;
A* finds the shortest path; each junction crossing gets LEFT / RIGHT / STRAIGHT from the angle between the
incoming lane and the crossing, lane-change links give CHANGELANELEFT / CHANGELANERIGHT, everything else is
LANEFOLLOW. Written from scratch for this project (no CARLA server, no `agents` package needed).

Frames: CARLA world frame (x east, y south, z up, yaw degrees clockwise seen from above).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import carla
import networkx as nx
import numpy as np

from sim.geo import location_to_gnss


class RoadOption(IntEnum):
    """Navigation commands, with the values of CARLA's `agents.navigation.local_planner.RoadOption`."""

    VOID = -1
    LEFT = 1
    RIGHT = 2
    STRAIGHT = 3
    LANEFOLLOW = 4
    CHANGELANELEFT = 5
    CHANGELANERIGHT = 6


LANE_CHANGES = (RoadOption.CHANGELANELEFT, RoadOption.CHANGELANERIGHT)
TURN_THRESHOLD_DEG = 33.0  # deviation below which a junction crossing is STRAIGHT (as CARLA)
LANE_CHANGE_COST = 2.0  # metres added per lane change so routes do not weave without a reason
LANE_CHANGE_AHEAD = 6.0  # metres along the target lane where a lane change lands
NODE_TOLERANCE = 0.3  # metres: segment end points closer than this are one graph node


class RoutePlanningError(ValueError):
    """No route exists between two locations (one line, names them)."""


@dataclass
class _Segment:
    """One lane of one road section, from its start waypoint to its end waypoint."""

    entry: carla.Waypoint
    exit: carla.Waypoint
    points: list[carla.Waypoint]  # dense samples entry..exit inclusive
    key: tuple[int, int, int]  # (road_id, section_id, lane_id)
    is_junction: bool
    length: float
    n_entry: int = -1
    n_exit: int = -1
    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (P, 2) sample positions


def _vec(t: carla.Transform) -> np.ndarray:
    f = t.get_forward_vector()
    return np.array([f.x, f.y, 0.0])


def _xyz(wp: carla.Waypoint) -> tuple[float, float, float]:
    loc = wp.transform.location
    return (loc.x, loc.y, loc.z)


class GlobalRoutePlanner:
    """Shortest lane-level routes between world locations, as CARLA's GlobalRoutePlanner plans them.

    Args:
        cmap: the town's carla.Map (a server map or `carla.Map(name, xodr_text)`).
        sampling_resolution: metres between consecutive waypoints of a traced route.
    """

    def __init__(self, cmap: carla.Map, sampling_resolution: float = 2.0) -> None:
        if not sampling_resolution > 0:
            raise ValueError(f"sampling_resolution must be > 0, got {sampling_resolution}")
        self._map = cmap
        self._res = float(sampling_resolution)
        self._segments: list[_Segment] = []
        self._by_key: dict[tuple[int, int, int], int] = {}
        self._nodes: list[tuple[float, float, float]] = []
        self._node_grid: dict[tuple[int, int], list[int]] = {}
        self.graph = nx.DiGraph()
        self._build()

    # ------------------------------------------------------------------ graph
    def _node(self, p: tuple[float, float, float]) -> int:
        cx, cy = int(math.floor(p[0])), int(math.floor(p[1]))
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for nid in self._node_grid.get((cx + dx, cy + dy), ()):
                    q = self._nodes[nid]
                    if math.dist(p, q) < NODE_TOLERANCE:
                        return nid
        nid = len(self._nodes)
        self._nodes.append(p)
        self._node_grid.setdefault((cx, cy), []).append(nid)
        self.graph.add_node(nid, vertex=p)
        return nid

    def _sample(self, entry: carla.Waypoint, exit_: carla.Waypoint) -> list[carla.Waypoint]:
        points = [entry]
        end = exit_.transform.location
        key = (entry.road_id, entry.section_id, entry.lane_id)
        w = entry
        while True:
            nxt = [n for n in w.next(self._res) if (n.road_id, n.section_id, n.lane_id) == key] or w.next(
                self._res
            )
            if not nxt:
                break
            w = nxt[0]
            if (
                w.transform.location.distance(end) < 0.5 * self._res
                or (w.road_id, w.section_id, w.lane_id) != key
            ):
                break
            points.append(w)
            if len(points) > 100000:  # pragma: no cover - corrupt map guard
                break
        points.append(exit_)
        return points

    def _build(self) -> None:
        for entry, exit_ in self._map.get_topology():
            key = (entry.road_id, entry.section_id, entry.lane_id)
            pts = self._sample(entry, exit_)
            xy = np.array([[p.transform.location.x, p.transform.location.y] for p in pts])
            length = float(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1))) if len(xy) > 1 else 0.0
            seg = _Segment(entry, exit_, pts, key, bool(entry.is_junction), length, xy=xy)
            seg.n_entry, seg.n_exit = self._node(_xyz(entry)), self._node(_xyz(exit_))
            idx = len(self._segments)
            self._segments.append(seg)
            self._by_key[key] = idx
            if seg.n_entry != seg.n_exit:
                self.graph.add_edge(
                    seg.n_entry,
                    seg.n_exit,
                    seg=idx,
                    kind=RoadOption.LANEFOLLOW,
                    length=max(length, 1e-3),
                    junction=seg.is_junction,
                )
        self._link_lane_changes()

    def _ending_lanes(self) -> dict[int, int]:
        """Segment -> the last segment of its lane, for lanes that end (an acceleration lane that tapers away):
        the segments that lead, without a branch, into a segment with no successor."""
        last: dict[int, int] = {}
        enters: dict[int, list[int]] = {}
        for idx, seg in enumerate(self._segments):
            enters.setdefault(seg.n_entry, []).append(idx)
            if not seg.is_junction and self.graph.out_degree(seg.n_exit) == 0:
                last[idx] = idx
        todo = list(last)
        while todo:
            k = todo.pop()
            for idx, seg in enumerate(self._segments):
                if idx in last or seg.is_junction or seg.n_exit != self._segments[k].n_entry:
                    continue
                if self.graph.out_degree(seg.n_exit) == 1:
                    last[idx] = last[k]
                    todo.append(idx)
        return last

    def _link_lane_changes(self) -> None:
        """Zero-length links to the neighbouring driving lane of the same road (where markings allow).

        A lane that ends (an acceleration lane) is left from its last segment where that allows it: a merge
        then uses the whole acceleration lane to reach the traffic's speed, as a driver does, instead of
        hopping over at its start."""
        ending = self._ending_lanes()
        for idx, seg in enumerate(self._segments):
            if seg.is_junction:
                continue
            if idx in ending and ending[idx] != idx and self._can_change(self._segments[ending[idx]]):
                continue
            for side, flag, kind in (
                ("right", carla.LaneChange.Right, RoadOption.CHANGELANERIGHT),
                ("left", carla.LaneChange.Left, RoadOption.CHANGELANELEFT),
            ):
                for wp in seg.points[:-1]:
                    if not bool(wp.lane_change & flag):
                        continue
                    other = wp.get_right_lane() if side == "right" else wp.get_left_lane()
                    if (
                        other is None
                        or other.lane_type != carla.LaneType.Driving
                        or other.road_id != wp.road_id
                    ):
                        continue
                    if (other.lane_id > 0) != (wp.lane_id > 0):
                        continue  # never into oncoming traffic
                    tgt = self._by_key.get((other.road_id, other.section_id, other.lane_id))
                    if tgt is None:
                        continue
                    t = self._segments[tgt]
                    if not self.graph.has_edge(seg.n_entry, t.n_entry) and seg.n_entry != t.n_entry:
                        self.graph.add_edge(
                            seg.n_entry,
                            t.n_entry,
                            seg=tgt,
                            kind=kind,
                            length=LANE_CHANGE_COST,
                            junction=False,
                            from_seg=idx,
                        )
                    break

    @staticmethod
    def _can_change(seg: _Segment) -> bool:
        """Some point of the segment allows a lane change to a driving lane beside it."""
        for wp in seg.points[:-1]:
            for flag, side in (
                (carla.LaneChange.Left, wp.get_left_lane),
                (carla.LaneChange.Right, wp.get_right_lane),
            ):
                if bool(wp.lane_change & flag):
                    other = side()
                    if other is not None and other.lane_type == carla.LaneType.Driving:
                        return True
        return False

    # ------------------------------------------------------------------ localisation
    def _localize(self, location: carla.Location) -> tuple[int, int]:
        """(segment index, index of the nearest sample on it) for a world location."""
        wp = self._map.get_waypoint(location, project_to_road=True, lane_type=carla.LaneType.Driving)
        if wp is None:
            raise RoutePlanningError(
                f"location ({location.x:.1f}, {location.y:.1f}) is not near any driving lane"
            )
        idx = self._by_key.get((wp.road_id, wp.section_id, wp.lane_id))
        if idx is None:
            raise RoutePlanningError(
                f"location ({location.x:.1f}, {location.y:.1f}) snaps to road {wp.road_id} lane {wp.lane_id}, "
                "which is not in the map topology"
            )
        seg = self._segments[idx]
        d = np.hypot(seg.xy[:, 0] - location.x, seg.xy[:, 1] - location.y)
        return idx, int(np.argmin(d))

    def _heuristic(self, a: int, b: int) -> float:
        return math.dist(self._nodes[a], self._nodes[b])

    def _astar(self, src: int, dst: int, origin: carla.Location, destination: carla.Location) -> list[int]:
        try:
            return nx.astar_path(self.graph, src, dst, heuristic=self._heuristic, weight="length")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            raise RoutePlanningError(
                f"no drivable route from ({origin.x:.1f}, {origin.y:.1f}) to ({destination.x:.1f}, "
                f"{destination.y:.1f})"
            ) from None

    # ------------------------------------------------------------------ turn decisions
    def _turn_decision(self, prev_seg: _Segment | None, junction_edges: list[tuple[int, int]]) -> RoadOption:
        """LEFT / RIGHT / STRAIGHT for crossing a junction along `junction_edges` (consecutive graph edges)."""
        first = self._segments[self.graph.edges[junction_edges[0]]["seg"]]
        last = self._segments[self.graph.edges[junction_edges[-1]]["seg"]]
        if prev_seg is not None:
            cv = _vec(prev_seg.exit.transform)
        else:  # the route starts inside the junction: use the lane that leads into it
            before = first.entry.previous(2.0)
            cv = _vec(before[0].transform) if before else _vec(first.entry.transform)
        nv = np.array(
            [
                last.exit.transform.location.x - first.entry.transform.location.x,
                last.exit.transform.location.y - first.entry.transform.location.y,
                0.0,
            ]
        )
        if np.linalg.norm(nv) < 1e-6:
            return RoadOption.STRAIGHT
        cross_list = []
        start_node, chosen = junction_edges[0]
        for nb in self.graph.successors(start_node):
            e = self.graph.edges[start_node, nb]
            if e["kind"] != RoadOption.LANEFOLLOW or nb == chosen:
                continue
            s = self._segments[e["seg"]]
            sv = np.array(
                [
                    s.exit.transform.location.x - s.entry.transform.location.x,
                    s.exit.transform.location.y - s.entry.transform.location.y,
                    0.0,
                ]
            )
            cross_list.append(float(np.cross(cv, sv)[2]))
        next_cross = float(np.cross(cv, nv)[2])
        cosang = float(np.dot(cv, nv) / (np.linalg.norm(cv) * np.linalg.norm(nv)))
        deviation = math.degrees(math.acos(max(-1.0, min(1.0, cosang))))
        if deviation < TURN_THRESHOLD_DEG:
            return RoadOption.STRAIGHT
        if cross_list and next_cross < min(cross_list):
            return RoadOption.LEFT
        if cross_list and next_cross > max(cross_list):
            return RoadOption.RIGHT
        return RoadOption.LEFT if next_cross < 0 else RoadOption.RIGHT

    # ------------------------------------------------------------------ tracing
    def trace_route(
        self, origin: carla.Location, destination: carla.Location
    ) -> list[tuple[carla.Waypoint, RoadOption]]:
        """Dense (waypoint, RoadOption) pairs every ~sampling_resolution metres from origin to destination."""
        o_idx, o_pt = self._localize(origin)
        d_idx, d_pt = self._localize(destination)
        o_seg, d_seg = self._segments[o_idx], self._segments[d_idx]

        # Graph edges of the route, as (u, v) pairs.
        if o_idx == d_idx and d_pt >= o_pt:
            edges = [(o_seg.n_entry, o_seg.n_exit)]
        else:
            if o_idx == d_idx:  # destination behind the origin on the same lane: loop around
                nodes = self._astar(o_seg.n_exit, d_seg.n_entry, origin, destination)
                nodes = [o_seg.n_entry] + nodes
            else:
                nodes = self._astar(o_seg.n_entry, d_seg.n_entry, origin, destination)
            nodes = nodes + [d_seg.n_exit]
            edges = list(zip(nodes[:-1], nodes[1:]))

        options = self._edge_options(edges)
        trace: list[tuple[carla.Waypoint, RoadOption]] = []
        current_loc = origin
        n_edges = len(edges)
        for i, ((u, v), option) in enumerate(zip(edges, options)):
            e = self.graph.edges[u, v]
            seg = self._segments[e["seg"]]
            if e["kind"] in LANE_CHANGES:
                # Leave the current lane where we are; land a few metres ahead on the target lane.
                if trace:
                    trace.append((trace[-1][0], option))
                else:
                    trace.append((o_seg.points[o_pt], option))
                d = np.hypot(seg.xy[:, 0] - current_loc.x, seg.xy[:, 1] - current_loc.y)
                k = int(np.argmin(d)) + max(1, int(round(LANE_CHANGE_AHEAD / self._res)))
                if e["seg"] == d_idx and i == n_edges - 2:
                    k = min(k, d_pt)  # never land beyond the destination
                k = min(k, len(seg.points) - 1)
                trace.append((seg.points[k], option))
                current_loc = seg.points[k].transform.location
                continue
            d = np.hypot(seg.xy[:, 0] - current_loc.x, seg.xy[:, 1] - current_loc.y)
            start = o_pt if (i == 0 and e["seg"] == o_idx) else int(np.argmin(d))
            stop = len(seg.points)
            if i == n_edges - 1 and e["seg"] == d_idx:
                stop = d_pt + 1
            for wp in seg.points[start:stop]:
                loc = wp.transform.location
                if trace and trace[-1][0].transform.location.distance(loc) < 0.1:
                    continue
                trace.append((wp, option))
                current_loc = loc
        return trace

    def _edge_options(self, edges: list[tuple[int, int]]) -> list[RoadOption]:
        """RoadOption per route edge: turns across junctions, lane changes, LANEFOLLOW elsewhere."""
        options: list[RoadOption] = []
        i = 0
        while i < len(edges):
            e = self.graph.edges[edges[i]]
            if e["kind"] in LANE_CHANGES:
                options.append(RoadOption(e["kind"]))
                i += 1
                continue
            if e["junction"]:
                j = i
                while (
                    j < len(edges)
                    and self.graph.edges[edges[j]]["junction"]
                    and self.graph.edges[edges[j]]["kind"] == RoadOption.LANEFOLLOW
                ):
                    j += 1
                prev_seg = None
                if i > 0:
                    pe = self.graph.edges[edges[i - 1]]
                    if pe["kind"] == RoadOption.LANEFOLLOW:
                        prev_seg = self._segments[pe["seg"]]
                decision = self._turn_decision(prev_seg, edges[i:j])
                options.extend([decision] * (j - i))
                i = j
                continue
            options.append(RoadOption.LANEFOLLOW)
            i += 1
        return options


# ---------------------------------------------------------------------- leaderboard route helpers
def beside_sidewalk(wp: carla.Waypoint, max_lanes: int = 6) -> bool:
    """A sidewalk lies right of this driving lane (within `max_lanes` lanes: other lanes, parking, shoulders): a
    town street, as against a highway or a ramp."""
    lane = wp.get_right_lane()
    for _ in range(max_lanes):
        if lane is None:
            return False
        if lane.lane_type == carla.LaneType.Sidewalk:
            return True
        lane = lane.get_right_lane()
    return False


def interpolate_trajectory(
    cmap: carla.Map,
    keypoints: Sequence[carla.Location],
    hop_resolution: float = 1.0,
    geo_reference: tuple[float, float] = (0.0, 0.0),
    planner: GlobalRoutePlanner | None = None,
) -> tuple[list[tuple[dict[str, float], RoadOption]], list[tuple[carla.Transform, RoadOption]]]:
    """Dense route through the keypoints of a route file, as the leaderboard's interpolate_trajectory.

    Returns (gps_route, route): route is [(carla.Transform, RoadOption)] every ~hop_resolution metres;
    gps_route the same points as ({'lat', 'lon', 'z'}, RoadOption) with the map's geoReference.
    """
    if len(keypoints) < 2:
        raise RoutePlanningError(f"a route needs at least 2 keypoints, got {len(keypoints)}")
    grp = planner or GlobalRoutePlanner(cmap, hop_resolution)
    route: list[tuple[carla.Transform, RoadOption]] = []
    for a, b in zip(keypoints[:-1], keypoints[1:]):
        for wp, option in grp.trace_route(a, b):
            t = wp.transform
            if route and route[-1][0].location.distance(t.location) < 0.1:
                continue
            route.append(
                (
                    carla.Transform(
                        carla.Location(t.location.x, t.location.y, t.location.z),
                        carla.Rotation(t.rotation.pitch, t.rotation.yaw, t.rotation.roll),
                    ),
                    option,
                )
            )
    return location_route_to_gps(route, *geo_reference), route


def location_route_to_gps(
    route: Sequence[tuple[carla.Transform, RoadOption]], lat_ref: float, lon_ref: float
) -> list[tuple[dict[str, float], RoadOption]]:
    """World-coordinate plan -> GPS plan ({'lat', 'lon', 'z'}) with CARLA's mercator convention."""
    out = []
    for transform, option in route:
        loc = transform.location
        lat, lon, z = location_to_gnss(loc.x, loc.y, loc.z, lat_ref, lon_ref)
        out.append(({"lat": lat, "lon": lon, "z": z}, option))
    return out


def downsample_route(route: Sequence[tuple[carla.Transform, RoadOption]], sample_factor: float) -> list[int]:
    """Indices of a sparse version of a dense route, with the leaderboard's rule.

    Kept: every lane-change point, every point where the RoadOption changes (unless it follows a lane change),
    a point whenever more than `sample_factor` metres were travelled since the last kept one, and the last point.
    """
    ids: list[int] = []
    prev_option = None
    dist = 0.0
    for i, (transform, option) in enumerate(route):
        if (
            option in LANE_CHANGES
            or prev_option != option
            and prev_option not in LANE_CHANGES
            or dist > sample_factor
            or i == len(route) - 1
        ):
            ids.append(i)
            dist = 0.0
        else:
            dist += transform.location.distance(route[i - 1][0].location)
        prev_option = option
    return ids


def route_length(route: Sequence[tuple[carla.Transform, RoadOption]]) -> float:
    """Length of a dense route in metres (sum of consecutive point distances)."""
    return float(sum(route[i][0].location.distance(route[i - 1][0].location) for i in range(1, len(route))))
