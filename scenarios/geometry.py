"""Map geometry for placing scenario actors: polylines, lane paths, road cross-sections, junction connectors.

Everything is in CARLA's world frame (x east, y south, yaw degrees, left-handed). "Right of a heading" is the
direction yaw + 90 degrees: `lateral > 0` means right of the path, as a driver sees it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import carla
import numpy as np


def wrap180(a: float) -> float:
    """An angle in degrees wrapped to [-180, 180)."""
    return (a + 180.0) % 360.0 - 180.0


@dataclass
class Polyline:
    """A 2D path with arc length; points closer than 1 cm are merged."""

    xy: np.ndarray  # (N, 2) world x, y
    s: np.ndarray  # (N,) arc length from the first point, metres

    @classmethod
    def from_points(cls, pts: Sequence[tuple[float, float]] | np.ndarray) -> Polyline:
        a = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        if len(a) == 0:
            raise ValueError("a polyline needs at least one point")
        keep = [0]
        for i in range(1, len(a)):
            if np.hypot(*(a[i] - a[keep[-1]])) > 0.01:
                keep.append(i)
        a = a[keep]
        if len(a) == 1:  # a degenerate path: a point with a tiny stub so headings exist
            a = np.vstack([a, a + [0.01, 0.0]])
        seg = np.hypot(*np.diff(a, axis=0).T)  # (N-1,)
        return cls(a, np.concatenate([[0.0], np.cumsum(seg)]))

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def _seg(self, s: float) -> int:
        return int(np.clip(np.searchsorted(self.s, s, side="right") - 1, 0, len(self.s) - 2))

    def point_at(self, s: float) -> tuple[float, float, float]:
        """(x, y, yaw) at arc length s (clamped to the path; yaw of the segment there)."""
        s = float(np.clip(s, 0.0, self.length))
        i = self._seg(s)
        p, q = self.xy[i], self.xy[i + 1]
        t = (s - self.s[i]) / max(self.s[i + 1] - self.s[i], 1e-9)
        x, y = p + t * (q - p)
        return float(x), float(y), math.degrees(math.atan2(q[1] - p[1], q[0] - p[0]))

    def offset_point(self, s: float, lateral: float) -> tuple[float, float, float]:
        """The point `lateral` metres right of the path at s (negative = left), with the path's yaw there."""
        x, y, yaw = self.point_at(s)
        r = math.radians(yaw + 90.0)
        return x + lateral * math.cos(r), y + lateral * math.sin(r), yaw

    def project(self, x: float, y: float, s_min: float = 0.0, s_max: float = math.inf) -> tuple[float, float]:
        """(s, signed lateral) of the nearest point of the path between s_min and s_max (lateral > 0: right)."""
        p = np.array([x, y])
        a, b = self.xy[:-1], self.xy[1:]  # (N-1, 2)
        d = b - a
        L2 = np.maximum((d * d).sum(1), 1e-12)
        t = np.clip(((p - a) * d).sum(1) / L2, 0.0, 1.0)
        s = self.s[:-1] + t * np.sqrt(L2)  # (N-1,)
        c = a + t[:, None] * d
        dist = np.hypot(*(p - c).T)
        dist = np.where((s >= s_min - 1e-6) & (s <= s_max + 1e-6), dist, np.inf)
        i = int(np.argmin(dist))
        cross = d[i, 0] * (p[1] - a[i, 1]) - d[i, 1] * (p[0] - a[i, 0])  # > 0: right in the y-down frame
        return float(s[i]), float(math.copysign(dist[i], cross) if np.isfinite(dist[i]) else math.inf)

    def sub(self, s0: float, s1: float) -> Polyline:
        """The part of the path between arc lengths s0 < s1."""
        s0, s1 = max(0.0, s0), min(self.length, s1)
        inner = self.xy[(self.s > s0) & (self.s < s1)]
        pts = [self.point_at(s0)[:2], *map(tuple, inner), self.point_at(s1)[:2]]
        return Polyline.from_points(pts)


def first_intersection(a: Polyline, b: Polyline) -> tuple[float, float] | None:
    """(s_a, s_b) of the first crossing of `a` with `b` along `a`, or None."""
    best: tuple[float, float] | None = None
    pa, pb = a.xy, b.xy
    for i in range(len(pa) - 1):
        p, r = pa[i], pa[i + 1] - pa[i]
        q, sv = pb[:-1], pb[1:] - pb[:-1]  # (M, 2)
        denom = r[0] * sv[:, 1] - r[1] * sv[:, 0]
        ok = np.abs(denom) > 1e-12
        qp = q - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (qp[:, 0] * sv[:, 1] - qp[:, 1] * sv[:, 0]) / denom
            u = (qp[:, 0] * r[1] - qp[:, 1] * r[0]) / denom
        hit = ok & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
        if hit.any():
            j = int(np.flatnonzero(hit)[np.argmin(t[hit])])
            seg_a = float(np.hypot(*r))
            best = (float(a.s[i] + t[j] * seg_a), float(b.s[j] + u[j] * np.hypot(*sv[j])))
            return best
    return best


# ---------------------------------------------------------------------- lanes
def _straightest(cands: list[carla.Waypoint], yaw: float) -> carla.Waypoint:
    return min(cands, key=lambda w: abs(wrap180(w.transform.rotation.yaw - yaw)))


def connector_end(wp: carla.Waypoint, step: float = 1.0, limit: float = 120.0) -> tuple[list[carla.Waypoint], float]:
    """Waypoints of the junction lane starting at `wp` up to where it leaves the junction, and the exit yaw."""
    out = [wp]
    w, travelled = wp, 0.0
    while travelled < limit:
        nxt = w.next(step)
        if not nxt:
            break
        w = _straightest(nxt, w.transform.rotation.yaw)
        out.append(w)
        travelled += step
        if not w.is_junction:
            break
    return out, out[-1].transform.rotation.yaw


def turn_of(entry_yaw: float, exit_yaw: float) -> str:
    """'straight' | 'left' | 'right' | 'uturn' for a heading change (CARLA frame: a right turn adds yaw)."""
    d = wrap180(exit_yaw - entry_yaw)
    if abs(d) < 30.0:
        return "straight"
    if abs(d) > 150.0:
        return "uturn"
    return "right" if d > 0 else "left"


def lane_path(wp: carla.Waypoint, ahead: float, turn: str | None = None, step: float = 1.0) -> Polyline:
    """The lane centre from `wp` for `ahead` metres; at the first junction the branch of `turn`
    ('left' | 'right' | 'straight', else the straightest) is taken, later ones straightest."""
    pts = [(wp.transform.location.x, wp.transform.location.y)]
    w, travelled, turned = wp, 0.0, turn is None
    while travelled < ahead:
        nxt = w.next(step)
        if not nxt:
            break
        yaw = w.transform.rotation.yaw
        if len(nxt) > 1 and not turned:
            turned = True
            kinds = {}
            for c in nxt:
                kinds.setdefault(turn_of(yaw, connector_end(c)[1]), c)
            w = kinds.get(turn) or _straightest(nxt, yaw)
        else:
            w = _straightest(nxt, yaw)
        pts.append((w.transform.location.x, w.transform.location.y))
        travelled += step
    return Polyline.from_points(pts)


def lane_behind(wp: carla.Waypoint, back: float, step: float = 1.0) -> Polyline:
    """The lane centre leading into `wp` from `back` metres upstream (stops early at another junction)."""
    pts = [(wp.transform.location.x, wp.transform.location.y)]
    w, travelled = wp, 0.0
    while travelled < back:
        prev = w.previous(step)
        if not prev:
            break
        w = _straightest(prev, w.transform.rotation.yaw)
        if w.is_junction and travelled > 2.0:
            break
        pts.append((w.transform.location.x, w.transform.location.y))
        travelled += step
    return Polyline.from_points(pts[::-1])


def lane_type_at(cmap: carla.Map, x: float, y: float) -> carla.LaneType | None:
    """The lane type under a world point (None off every lane)."""
    w = cmap.get_waypoint(carla.Location(x, y, 0.0), project_to_road=False, lane_type=carla.LaneType.Any)
    return None if w is None else w.lane_type


@dataclass
class CrossSection:
    """Where the road surface ends either side of a path point, measured along its right normal (metres)."""

    right_drive_edge: float  # > 0: from the path to the right edge of the drivable lanes
    left_drive_edge: float  # < 0: to the left edge of the drivable lanes (opposite lanes included)
    right_outer: float  # > 0: outer edge of shoulder + sidewalk on the right (== right_drive_edge if none)
    left_outer: float  # < 0
    right_sidewalk: tuple[float, float] | None  # (inner, outer) offsets of a sidewalk on the right
    left_sidewalk: tuple[float, float] | None


def _outward(w: carla.Waypoint, side: float, ego_sign: int) -> carla.Waypoint | None:
    """The next lane outward on the ego's right (side > 0) or left (side < 0), whatever its direction."""
    same = (w.lane_id > 0) == (ego_sign > 0)
    return (w.get_right_lane() if (side > 0) == same else w.get_left_lane())


def cross_section(cmap: carla.Map, path: Polyline, s: float) -> CrossSection:
    """The lanes beside the path's lane at s, from the map's lane widths (exact off junctions)."""
    x, y, _ = path.point_at(s)
    wp = cmap.get_waypoint(carla.Location(x, y, 0.0), project_to_road=True, lane_type=carla.LaneType.Driving)
    if wp is None:
        raise ValueError(f"no driving lane near ({x:.1f}, {y:.1f})")
    sign = 1 if wp.lane_id > 0 else -1

    def scan(side: float) -> tuple[float, float, tuple[float, float] | None]:
        edge = wp.lane_width / 2.0
        drive_edge, walk = None, None
        w, seen = wp, {wp.lane_id}
        while True:
            w = _outward(w, side, sign)
            if w is None or w.lane_id in seen or w.lane_type == carla.LaneType.NONE:
                break
            seen.add(w.lane_id)
            if drive_edge is None and w.lane_type not in (carla.LaneType.Driving, carla.LaneType.Bidirectional):
                drive_edge = edge
            if w.lane_type == carla.LaneType.Sidewalk and walk is None:
                walk = (edge, edge + w.lane_width)
            edge += w.lane_width
        return (drive_edge if drive_edge is not None else edge), edge, walk

    r_edge, r_out, r_walk = scan(1.0)
    l_edge, l_out, l_walk = scan(-1.0)
    return CrossSection(r_edge, -l_edge, r_out, -l_out, r_walk,
                        None if l_walk is None else (-l_walk[0], -l_walk[1]))


def is_junction_at(cmap: carla.Map, x: float, y: float) -> bool:
    w = cmap.get_waypoint(carla.Location(x, y, 0.0), project_to_road=True, lane_type=carla.LaneType.Driving)
    return bool(w is not None and w.is_junction)


def junction_span(cmap: carla.Map, path: Polyline, s_from: float, max_ahead: float,
                  step: float = 0.5) -> tuple[carla.Junction, float, float] | None:
    """The first junction the path enters after s_from (within max_ahead): (junction, s_entry, s_exit)."""
    s, entry, junction, left_start = s_from, None, None, False  # a junction the path starts in does not count
    end = min(path.length, s_from + max_ahead)
    while s <= path.length:
        x, y, _ = path.point_at(s)
        w = cmap.get_waypoint(carla.Location(x, y, 0.0), project_to_road=True, lane_type=carla.LaneType.Driving)
        inside = w is not None and w.is_junction
        left_start = left_start or not inside
        if entry is None:
            if inside and left_start:
                entry, junction = s, w.get_junction()
            elif s > end:
                return None
        elif not inside:
            return junction, entry, s
        s += step
    return (junction, entry, path.length) if entry is not None else None


@dataclass
class Connector:
    """One lane-to-lane movement through a junction, with the approach lane before it."""

    entry: carla.Waypoint
    exit: carla.Waypoint
    path: Polyline  # approach (upstream `back` metres) + the movement + `after` metres past the exit
    s_entry: float  # arc length of the junction entry on `path`
    s_exit: float
    entry_yaw: float
    exit_yaw: float

    @property
    def turn(self) -> str:
        return turn_of(self.entry_yaw, self.exit_yaw)


def junction_connectors(junction: carla.Junction, back: float = 40.0, after: float = 40.0) -> list[Connector]:
    """Every driving movement through a junction (deterministic order: by entry then exit position)."""
    out = []
    pairs = junction.get_waypoints(carla.LaneType.Driving)
    pairs = sorted(pairs, key=lambda p: (round(p[0].transform.location.x, 2), round(p[0].transform.location.y, 2),
                                         round(p[1].transform.location.x, 2), round(p[1].transform.location.y, 2)))
    for entry, exit_ in pairs:
        inner, exit_yaw = connector_end(entry)
        before = lane_behind(entry, back)
        last = inner[-1]
        tail = lane_path(last, after) if not last.is_junction else Polyline.from_points(
            [(last.transform.location.x, last.transform.location.y)])
        pts = [*map(tuple, before.xy), *[(w.transform.location.x, w.transform.location.y) for w in inner[1:]],
               *map(tuple, tail.xy[1:])]
        path = Polyline.from_points(pts)
        s_entry = before.length
        s_exit = s_entry + (len(inner) - 1) * 1.0
        out.append(Connector(entry, exit_, path, s_entry, min(s_exit, path.length), entry.transform.rotation.yaw,
                             exit_yaw))
    return out


def approach_side(ego_entry_yaw: float, other_entry_yaw: float) -> str:
    """Where another approach comes from, seen from the ego's approach: 'same' | 'opposite' | 'left' | 'right'.

    CARLA frame: a vehicle from the ego's left drives in direction ego_yaw + 90.
    """
    d = wrap180(other_entry_yaw - ego_entry_yaw)
    if abs(d) < 45.0:
        return "same"
    if abs(d) > 135.0:
        return "opposite"
    return "left" if d > 0 else "right"
