"""Generate the built-in OpenDRIVE towns (OccTown01, OccTown02) with a small, deterministic writer.

Why our own writer: the towns need exact control over junction connectors (one connecting road per
lane-to-lane movement, sidewalk corners on right turns) and byte-identical output on regeneration,
which a generic API with timestamps and float noise does not give.

A town is a graph: junction nodes (degree >= 3) and edges (roads) between them, optionally bent
through `via` points whose corners are rounded with circular fillets. Node positions are given in
CARLA's world frame (x east, y south); the writer flips y into OpenDRIVE's frame (y north).
Right-hand traffic: OpenDRIVE right lanes (negative ids) drive along the road's reference direction.

    python -m sim.embedded.towns.generate            # rewrite the .xodr files beside this module
    python -m sim.embedded.towns.generate --check    # exit 1 if a committed file is out of date
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from sim.embedded.towns import TOWNS_DIR

EPS = 1e-9
GEO_REFERENCE = "+proj=tmerc +lat_0=49.000000 +lon_0=8.000000 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


# ----------------------------------------------------------------------------- specification
@dataclass(frozen=True)
class RoadStyle:
    """Cross-section of a road: `lanes` driving lanes per direction, then shoulder, then sidewalk."""

    lanes: int = 1
    lane_width: float = 3.5
    shoulder: float = 0.5  # 0 = no shoulder lane
    sidewalk: float = 2.5
    centre_mark: str = "solid"  # OpenDRIVE roadMark type of the yellow centre line
    speed_kmh: float = 50.0
    parking: bool = False  # the shoulder is a parking lane (OpenDRIVE type `parking`, `shoulder` m wide)
    oneway: bool = False  # lanes only along the reference direction (a -> b): ramps

    @property
    def half_width(self) -> float:
        return self.lanes * self.lane_width + self.shoulder + self.sidewalk


@dataclass(frozen=True)
class EdgeSpec:
    """A road from node `a` to node `b` (CARLA frame), bent through `via` points with `fillet` radius."""

    a: str
    b: str
    style: RoadStyle
    via: tuple[tuple[float, float], ...] = ()
    fillet: float = 25.0
    name: str = ""
    # Auxiliary lane right of the outermost driving lane (a -> b direction), for ramps on a multi-lane road:
    # `aux_start` m of an acceleration lane from node a (an on-ramp joins it there) that then tapers over
    # `aux_taper` m and ends; `aux_end` m of a deceleration lane into node b (an off-ramp leaves from it) that
    # opens over `aux_taper` m before. Each is a lane that begins or ends inside the road (OpenDRIVE lane
    # sections), so the merge itself is a lane change, as on a real motorway.
    aux_start: float = 0.0
    aux_end: float = 0.0
    aux_taper: float = 30.0
    # where the road meets its nodes, relative to the node centre (CARLA frame): a ramp runs beside the main
    # road, one carriageway over, so its lane continues straight into or out of the auxiliary lane
    shift_a: tuple[float, float] = (0.0, 0.0)
    shift_b: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class TownSpec:
    name: str
    nodes: dict[str, tuple[float, float]]  # junction centres, CARLA frame (x east, y south), metres
    edges: tuple[EdgeSpec, ...]
    junction_margin: float = 3.0  # extra distance between a crossing road's edge and the junction border
    signalised: tuple[str, ...] | None = None  # nodes with traffic lights; None = every 4-way node
    description: str = ""
    speed_signs: bool = False  # a '274' speed-limit sign at the start of every road, each direction
    # a <speed> record on every driving lane (the road's limit): netconvert takes lane speeds from these, not from
    # the road <type>, so SUMO's traffic then keeps to each road's limit
    lane_speeds: bool = False


# ----------------------------------------------------------------------------- plane geometry
@dataclass
class Geom:
    """One planView record in OpenDRIVE's frame: a line (curvature 0) or an arc."""

    x: float
    y: float
    hdg: float
    length: float
    curvature: float = 0.0

    def end(self) -> tuple[float, float, float]:
        k, s, h = self.curvature, self.length, self.hdg
        if abs(k) < EPS:
            return self.x + s * math.cos(h), self.y + s * math.sin(h), h
        return (self.x + (math.sin(h + k * s) - math.sin(h)) / k,
                self.y - (math.cos(h + k * s) - math.cos(h)) / k, h + k * s)


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _chain(start: tuple[float, float, float], pieces: list[tuple[float, float]]) -> list[Geom]:
    """Geoms from a start pose and (length, curvature) pieces, skipping zero-length pieces."""
    out: list[Geom] = []
    x, y, h = start
    for length, k in pieces:
        if length < 1e-6:
            continue
        g = Geom(x, y, h, length, k)
        out.append(g)
        x, y, h = g.end()
    return out


def fillet_path(points: list[tuple[float, float]], radius: float) -> list[Geom]:
    """Lines through `points` (OpenDRIVE frame) with every interior corner rounded by a `radius` arc."""
    dirs = [math.atan2(q[1] - p[1], q[0] - p[0]) for p, q in pairwise(points)]
    seg = [math.dist(p, q) for p, q in pairwise(points)]
    turns = [_wrap(d1 - d0) for d0, d1 in pairwise(dirs)]
    tang = [radius * math.tan(abs(t) / 2) for t in turns]
    pieces: list[tuple[float, float]] = []
    for i, length in enumerate(seg):
        straight = length - (tang[i - 1] if i > 0 else 0.0) - (tang[i] if i < len(tang) else 0.0)
        if straight < -1e-6:
            raise ValueError(f"fillet radius {radius} too large for the corner at {points[i + 1]}")
        pieces.append((max(straight, 0.0), 0.0))
        if i < len(turns) and abs(turns[i]) > 1e-9:
            pieces.append((radius * abs(turns[i]), math.copysign(1.0 / radius, turns[i])))
    return _chain((points[0][0], points[0][1], dirs[0]), pieces)


def connector_path(a: tuple[float, float, float], b: tuple[float, float, float]) -> list[Geom]:
    """Line-arc-line from pose `a` to pose `b` (the arc tangent to both headings), or a line if aligned."""
    turn = _wrap(b[2] - a[2])
    ca, sa = math.cos(a[2]), math.sin(a[2])
    dx, dy = b[0] - a[0], b[1] - a[1]
    if abs(turn) < 1e-6:
        lateral = -sa * dx + ca * dy
        ahead = ca * dx + sa * dy
        if abs(lateral) <= 1e-4:
            return _chain(a, [(ahead, 0.0)])
        if ahead < 4 * abs(lateral):  # lanes of different widths meeting straight: a gentle S of two arcs
            raise ValueError(f"parallel connector with lateral offset {lateral:.3f} m over {ahead:.3f} m")
        r = (ahead**2 + lateral**2) / (4 * abs(lateral))
        phi = math.asin(ahead / (2 * r))
        k = math.copysign(1.0 / r, lateral)
        return _chain(a, [(r * phi, k), (r * phi, -k)])
    cb, sb = math.cos(b[2]), math.sin(b[2])
    den = ca * sb - sa * cb  # intersection of the two tangent rays: a + ta*da = b - tb*db
    ta = (dx * sb - dy * cb) / den
    tb = (ca * dy - sa * dx) / den
    if ta < -1e-6 or tb < -1e-6:
        raise ValueError("connector end poses do not meet ahead of each other")
    t = min(ta, tb)
    r = t / math.tan(abs(turn) / 2)
    return _chain(a, [(ta - t, 0.0), (r * abs(turn), math.copysign(1.0 / r, turn)), (tb - t, 0.0)])


def path_end(geoms: list[Geom]) -> tuple[float, float, float]:
    return geoms[-1].end()


# ----------------------------------------------------------------------------- the road network
@dataclass
class _Lane:
    id: int
    type: str  # driving | shoulder | sidewalk
    width: float
    mark: str = "none"  # roadMark at the lane's outer border
    mark_color: str = "standard"
    pred: int | None = None
    succ: int | None = None
    width_end: float | None = None  # linear width change along the road (junction sidewalk corners)


@dataclass
class _Road:
    id: int
    name: str
    geoms: list[Geom]
    lanes: list[_Lane]  # non-zero ids
    centre_mark: str = "none"
    speed_kmh: float = 50.0
    junction: int = -1
    pred: tuple[str, int, str | None] | None = None  # (elementType, elementId, contactPoint)
    succ: tuple[str, int, str | None] | None = None
    signals: list[tuple[float, float, str]] = field(default_factory=list)  # traffic lights: (s, t, orientation)
    signs: list[tuple[float, float, str, float]] = field(default_factory=list)  # speed limits: (s, t, orient., km/h)
    # lane sections after the first (s, lanes, lane width slopes by id) when the cross-section changes along the
    # road (an auxiliary lane that begins or ends); the first section is `lanes`
    sections: list[tuple[float, list[_Lane]]] = field(default_factory=list)

    @property
    def length(self) -> float:
        return sum(g.length for g in self.geoms)


@dataclass
class _Approach:
    """One road end at a junction; `h_in` points into the junction (OpenDRIVE frame)."""

    road: _Road
    contact: str  # 'start' | 'end'
    x: float
    y: float
    h_in: float
    style: RoadStyle
    aux: bool = False  # an auxiliary lane (right of the outermost driving lane) touches the junction here

    @property
    def incoming(self) -> bool:
        """Traffic enters the junction from this road (a one-way road only where it ends)."""
        return not self.style.oneway or self.contact == "end"

    @property
    def outgoing(self) -> bool:
        return not self.style.oneway or self.contact == "start"

    def lane_id(self, k: int, incoming: bool) -> int:
        sign = -1 if (self.contact == "end") == incoming else 1
        return sign * k

    def border(self, k: int, incoming: bool) -> tuple[float, float, float]:
        """Pose of the left border of incoming/outgoing lane k (1 = next to the centre line)."""
        rx, ry = math.sin(self.h_in), -math.cos(self.h_in)  # right of h_in
        off = (k - 1) * self.style.lane_width * (1 if incoming else -1)
        h = self.h_in if incoming else self.h_in + math.pi
        return self.x + off * rx, self.y + off * ry, _wrap(h)


@dataclass
class _Junction:
    id: int
    name: str
    connections: list[tuple[int, int, str, list[tuple[int, int]]]] = field(default_factory=list)
    # (incomingRoad, connectingRoad, contactPoint, [(from lane, to lane)])


def _road_lanes(style: RoadStyle, aux: bool = False) -> list[_Lane]:
    """Lanes of a cross-section; `aux` adds an auxiliary driving lane right of the right-hand driving lanes."""
    lanes: list[_Lane] = []
    for side in (-1,) if style.oneway else (1, -1):
        k = 0
        extra = 1 if aux and side == -1 else 0
        for i in range(1, style.lanes + extra + 1):
            k += 1
            outer = i == style.lanes + extra
            lanes.append(_Lane(side * k, "driving", style.lane_width, "solid" if outer else "broken"))
        if style.shoulder > 0:
            k += 1
            lanes.append(_Lane(side * k, "parking" if style.parking else "shoulder", style.shoulder, "curb"))
        if style.sidewalk > 0:
            k += 1
            lanes.append(_Lane(side * k, "sidewalk", style.sidewalk))
    return lanes


def _aux_sections(e: EdgeSpec, length: float) -> tuple[list[_Lane], list[tuple[float, list[_Lane]]]]:
    """The first lane section and the later ones (s, lanes) of a road with auxiliary lanes (see EdgeSpec).

    The auxiliary lane is right lane -(lanes+1) while it exists; lanes outside it shift one id out. Lanes are
    linked section to section (predecessor/successor ids); a lane that begins or ends has no link there.
    """
    st, w, taper = e.style, e.style.lane_width, e.aux_taper
    if e.aux_start + e.aux_end + (taper if e.aux_start else 0) + (taper if e.aux_end else 0) > length - 1.0:
        raise ValueError(f"auxiliary lanes of {e.a}-{e.b} do not fit its {length:.1f} m")
    n = st.lanes
    cuts: list[tuple[float, str]] = []  # (s, state of the aux lane from s on: full | closing | none | opening)
    cuts.append((0.0, "full" if e.aux_start else "none"))
    if e.aux_start:
        # a section boundary halfway along the acceleration lane: route planners (lane-level graphs over lane
        # sections) then merge from its second half, after accelerating along the first, not at its very start
        cuts += [(e.aux_start / 2, "full"), (e.aux_start, "closing"), (e.aux_start + taper, "none")]
    if e.aux_end:
        cuts += [(length - e.aux_end - taper, "opening"), (length - e.aux_end, "full")]
    sections: list[tuple[float, str, list[_Lane]]] = []
    for s0, state in cuts:
        lanes = _road_lanes(st, aux=state != "none")
        if state in ("closing", "opening"):
            for ln in lanes:
                if ln.id == -(n + 1):
                    ln.width, ln.width_end = (w, 0.0) if state == "closing" else (0.0, w)
        sections.append((s0, state, lanes))
    for (_, st0, prev), (_, st1, nxt) in pairwise(sections):
        shift0, shift1 = (st0 != "none"), (st1 != "none")
        for ln in prev:
            if ln.id > 0 or -ln.id <= n:
                ln.succ = ln.id
            elif -ln.id == n + 1 and shift0:
                ln.succ = ln.id if shift1 else None  # the auxiliary lane ends here
            else:  # shoulder / sidewalk, one id further out while the auxiliary lane exists
                ln.succ = ln.id + (1 if shift0 and not shift1 else -1 if shift1 and not shift0 else 0)
        for ln in nxt:
            if ln.id > 0 or -ln.id <= n:
                ln.pred = ln.id
            elif -ln.id == n + 1 and shift1:
                ln.pred = ln.id if shift0 else None  # the auxiliary lane begins here
            else:
                ln.pred = ln.id + (1 if shift1 and not shift0 else -1 if shift0 and not shift1 else 0)
    # the lane marks of the through lanes: broken towards a present auxiliary lane
    for _, state, lanes in sections:
        for ln in lanes:
            if ln.id == -n and state != "none":
                ln.mark = "broken"
    first = sections[0][2]
    return first, [(s0, lanes) for s0, _, lanes in sections[1:]]


def _classify(turn: float) -> str:
    if abs(turn) < math.radians(30):
        return "straight"
    if abs(turn) > math.radians(150):
        return "uturn"
    return "left" if turn > 0 else "right"  # OpenDRIVE frame is counter-clockwise positive


def build_network(spec: TownSpec) -> tuple[list[_Road], list[_Junction]]:
    """Roads (edges trimmed at junction borders) plus connecting roads and junction records."""
    degree: dict[str, list[int]] = {n: [] for n in spec.nodes}
    for i, e in enumerate(spec.edges):
        for n in (e.a, e.b):
            if n not in spec.nodes:
                raise ValueError(f"{spec.name}: edge {e.a}-{e.b} names unknown node {n!r}")
            degree[n].append(i)
    for n, inc in degree.items():
        if len(inc) < 3:
            raise ValueError(f"{spec.name}: node {n!r} has degree {len(inc)}; junctions need >= 3")

    def trim(node: str, edge_idx: int) -> float:
        """Distance from a node to where edge `edge_idx` ends: clear of every crossing road's sidewalk."""
        others = [spec.edges[i].style.half_width for i in degree[node] if i != edge_idx]
        return max(others) + spec.junction_margin

    def odr(p):  # CARLA (y south) -> OpenDRIVE (y north)
        return (float(p[0]), -float(p[1]))

    roads: list[_Road] = []
    approaches: dict[str, list[_Approach]] = {n: [] for n in spec.nodes}
    junction_ids = {n: 1000 + i for i, n in enumerate(spec.nodes)}
    for i, e in enumerate(spec.edges):
        na_, nb_ = spec.nodes[e.a], spec.nodes[e.b]
        pts = [odr((na_[0] + e.shift_a[0], na_[1] + e.shift_a[1])), *(odr(v) for v in e.via),
               odr((nb_[0] + e.shift_b[0], nb_[1] + e.shift_b[1]))]
        da, db = trim(e.a, i), trim(e.b, i)
        (x0, y0), (x1, y1) = pts[0], pts[1]
        l0 = math.dist(pts[0], pts[1])
        pts[0] = (x0 + (x1 - x0) * da / l0, y0 + (y1 - y0) * da / l0)
        (x0, y0), (x1, y1) = pts[-1], pts[-2]
        l1 = math.dist(pts[-1], pts[-2])
        pts[-1] = (x0 + (x1 - x0) * db / l1, y0 + (y1 - y0) * db / l1)
        geoms = fillet_path(pts, e.fillet)
        length = sum(g.length for g in geoms)
        if e.aux_start or e.aux_end:
            if e.style.oneway:
                raise ValueError(f"{spec.name}: one-way edge {e.a}-{e.b} cannot have auxiliary lanes")
            lanes, sections = _aux_sections(e, length)
        else:
            lanes, sections = _road_lanes(e.style), []
        road = _Road(i + 1, e.name or f"{e.a}-{e.b}", geoms, lanes, e.style.centre_mark,
                     e.style.speed_kmh, pred=("junction", junction_ids[e.a], None),
                     succ=("junction", junction_ids[e.b], None), sections=sections)
        roads.append(road)
        g0 = geoms[0]
        approaches[e.a].append(_Approach(road, "start", g0.x, g0.y, _wrap(g0.hdg + math.pi), e.style,
                                         aux=e.aux_start > 0))
        xe, ye, he = path_end(geoms)
        approaches[e.b].append(_Approach(road, "end", xe, ye, _wrap(he), e.style, aux=e.aux_end > 0))

    signalised = spec.signalised
    if signalised is None:
        signalised = tuple(n for n, apps in approaches.items() if len(apps) >= 4)
    for node in signalised:
        for a in approaches[node]:  # one traffic light per approach, on the right, at the stop line
            if not a.incoming:
                continue
            t = a.style.lanes * a.style.lane_width + a.style.shoulder + 0.5
            if a.contact == "end":
                a.road.signals.append((a.road.length - 0.5, -t, "+"))
            else:
                a.road.signals.append((0.5, t, "-"))

    # On the sidewalk's kerb side, 2 m into the road, for each direction of travel. The orientation follows
    # CARLA's maps and carla.Map (a sign right of the reference line, t < 0, facing the right lanes' traffic, is
    # "-"): with OpenDRIVE's "+" carla.Map would give each sign to the opposite direction, at the road's far end.
    if spec.speed_signs:
        for r, e in zip(roads, spec.edges, strict=True):
            t = e.style.lanes * e.style.lane_width + e.style.shoulder + 0.5
            r.signs.append((min(2.0, r.length / 2), -t, "-", e.style.speed_kmh))
            if not e.style.oneway:
                r.signs.append((max(r.length - 2.0, r.length / 2), t, "+", e.style.speed_kmh))

    junctions: list[_Junction] = []
    next_id = 1 + len(roads)
    for node, apps in approaches.items():
        junc = _Junction(junction_ids[node], node)
        interchange = any(a.aux or a.style.oneway for a in apps) and any(a.aux for a in apps)
        for a in apps:
            if not a.incoming:
                continue
            moves = {id(b): _classify(_wrap((b.h_in + math.pi) - a.h_in)) for b in apps if b is not a}
            kinds = set(moves.values())
            walk_move = "right" if "right" in kinds else "straight"  # which move carries the sidewalk
            plan: list[tuple[_Approach, str, list[tuple[int, int]]]] = []
            for b in apps:
                if b is a or not b.outgoing or moves[id(b)] == "uturn":
                    continue
                kind = moves[id(b)]
                na, nb = a.style.lanes, b.style.lanes
                if interchange:  # a ramp node: through lanes go straight on, ramps only to/from the aux lane
                    if a.style.oneway:
                        pairs = [(1, nb + 1)] if b.aux and b.contact == "start" else []
                    elif b.style.oneway:
                        pairs = [(na + 1, 1)] if a.aux and a.contact == "end" else []
                    else:
                        pairs = [(k, k) for k in range(1, min(na, nb) + 1)] if kind == "straight" else []
                    if pairs:
                        plan.append((b, kind, pairs))
                    continue
                if kind == "straight":
                    pairs = [(k, k) for k in range(1, min(na, nb) + 1)]  # lanes that end turn instead
                elif kind == "right":
                    pairs = [(na, nb)]
                else:
                    pairs = [(1, 1)]
                plan.append((b, kind, pairs))
            # an incoming lane with no movement would be a dead end: let it turn (left first) instead
            covered = {ka for _, _, pairs in plan for ka, _ in pairs}
            n_in = a.style.lanes + (1 if a.aux and a.contact == "end" else 0)
            for ka in range(1, n_in + 1):
                if ka in covered:
                    continue
                if interchange:
                    raise ValueError(f"{spec.name}: lane {ka} into ramp junction {node} has no movement")
                for b, kind, pairs in sorted(plan, key=lambda p: ("left", "right").index(p[1])
                                             if p[1] != "straight" else 2):
                    if kind != "straight":
                        pairs.append((ka, min(ka, b.style.lanes)))
                        break
                else:
                    raise ValueError(f"{spec.name}: lane {ka} into junction {node} has no movement")
            for b, kind, pairs in plan:
                na, nb = a.style.lanes, b.style.lanes
                for ka, kb in pairs:
                    geoms = connector_path(a.border(ka, True), b.border(kb, False))
                    lanes = [_Lane(-1, "driving", a.style.lane_width, pred=a.lane_id(ka, True),
                                   succ=b.lane_id(kb, False))]
                    if kind == walk_move and ka == na and kb == nb and not interchange:
                        extra = [("shoulder", a.style.shoulder, b.style.shoulder),
                                 ("sidewalk", a.style.sidewalk, b.style.sidewalk)]
                        ia, ib = na, nb
                        for typ, wa, wb in extra:
                            if wa <= 0:
                                continue
                            ia, ib = ia + 1, ib + (1 if wb > 0 else 0)
                            lanes.append(_Lane(-len(lanes) - 1, typ, wa, pred=a.lane_id(ia, True),
                                               succ=b.lane_id(ib, False) if wb > 0 else None,
                                               width_end=wb if wb > 0 else wa))
                    conn = _Road(next_id, f"{node}:{a.road.id}>{b.road.id}:{ka}>{kb}", geoms, lanes,
                                 speed_kmh=min(a.style.speed_kmh, b.style.speed_kmh), junction=junc.id,
                                 pred=("road", a.road.id, a.contact), succ=("road", b.road.id, b.contact))
                    roads.append(conn)
                    junc.connections.append((a.road.id, conn.id, "start",
                                             [(ln.pred, ln.id) for ln in lanes if ln.pred is not None]))
                    next_id += 1
        junctions.append(junc)
    return roads, junctions


# ----------------------------------------------------------------------------- XML writer
def _f(v: float) -> str:
    s = f"{v:.6f}"
    return "0.000000" if s == "-0.000000" else s


def _link_xml(tag: str, ref: tuple[str, int, str | None]) -> str:
    kind, rid, contact = ref
    cp = f' contactPoint="{contact}"' if contact else ""
    return f'<{tag} elementType="{kind}" elementId="{rid}"{cp}/>'


def _side_xml(tag: str, lanes: list, length: float, speed_kmh: float | None) -> list[str]:
    """<left> or <right> of a lane section, lanes ordered by id from the largest; nothing when empty."""
    if not lanes:
        return []
    out = [f"        <{tag}>"]
    for ln in sorted(lanes, key=lambda ln: -ln.id):
        out += _lane_xml(ln, length, "          ", speed_kmh)
    return [*out, f"        </{tag}>"]


def _lane_xml(lane: _Lane, length: float, ind: str, speed_kmh: float | None = None) -> list[str]:
    out = [f'{ind}<lane id="{lane.id}" type="{lane.type}" level="false">']
    links = []
    if lane.pred is not None:
        links.append(f'<predecessor id="{lane.pred}"/>')
    if lane.succ is not None:
        links.append(f'<successor id="{lane.succ}"/>')
    out.append(f"{ind}  <link>{''.join(links)}</link>" if links else f"{ind}  <link/>")
    slope = 0.0 if lane.width_end is None else (lane.width_end - lane.width) / length
    out.append(f'{ind}  <width sOffset="0.000000" a="{_f(lane.width)}" b="{slope:.9f}" c="0.000000" '
               f'd="0.000000"/>')
    color = "standard" if lane.mark in ("none", "curb") else lane.mark_color
    width = "0.150000" if lane.mark not in ("none",) else "0.000000"
    out.append(f'{ind}  <roadMark sOffset="0.000000" type="{lane.mark}" weight="standard" color="{color}" '
               f'width="{width}" laneChange="{"both" if lane.mark == "broken" else "none"}"/>')
    if speed_kmh is not None and lane.type == "driving":
        out.append(f'{ind}  <speed sOffset="0.000000" max="{_f(speed_kmh)}" unit="km/h"/>')
    out.append(f"{ind}</lane>")
    return out


def write_xodr(spec: TownSpec) -> str:
    """The OpenDRIVE 1.4 text of a town (deterministic: same spec, same bytes)."""
    roads, junctions = build_network(spec)
    xs = [v for r in roads for g in r.geoms for v in (g.x, g.end()[0])]
    ys = [v for r in roads for g in r.geoms for v in (g.y, g.end()[1])]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<OpenDRIVE>",
             (f'  <header revMajor="1" revMinor="4" name="{spec.name}" version="1" date="2026-01-01T00:00:00" '
              f'north="{_f(max(ys))}" south="{_f(min(ys))}" east="{_f(max(xs))}" west="{_f(min(xs))}" '
              f'vendor="OccVLA-Drive">'),
             f"    <geoReference><![CDATA[{GEO_REFERENCE}]]></geoReference>",
             "  </header>"]
    if spec.description:
        lines.insert(2, f"  <!-- {spec.description} -->")
    for r in roads:
        lines.append(f'  <road name="{r.name}" length="{_f(r.length)}" id="{r.id}" junction="{r.junction}">')
        links = [_link_xml(t, ref) for t, ref in (("predecessor", r.pred), ("successor", r.succ)) if ref]
        lines.append(f"    <link>{''.join(links)}</link>")
        lines.append(f'    <type s="0.000000" type="town"><speed max="{_f(r.speed_kmh)}" unit="km/h"/></type>')
        lines.append("    <planView>")
        s = 0.0
        for g in r.geoms:
            shape = "<line/>" if abs(g.curvature) < EPS else f'<arc curvature="{g.curvature:.9f}"/>'
            lines.append(f'      <geometry s="{_f(s)}" x="{_f(g.x)}" y="{_f(g.y)}" hdg="{g.hdg:.9f}" '
                         f'length="{_f(g.length)}">{shape}</geometry>')
            s += g.length
        lines.append("    </planView>")
        lines.append('    <elevationProfile><elevation s="0.000000" a="0.000000" b="0.000000" c="0.000000" '
                     'd="0.000000"/></elevationProfile>')
        lines.append("    <lateralProfile/>")
        lines.append("    <lanes>")
        bounds = [(0.0, r.lanes), *r.sections]
        for k, (s0, sec_lanes) in enumerate(bounds):
            s1 = bounds[k + 1][0] if k + 1 < len(bounds) else r.length
            lines.append(f'      <laneSection s="{_f(s0)}">')
            lane_speed = r.speed_kmh if spec.lane_speeds else None
            lines += _side_xml("left", [ln for ln in sec_lanes if ln.id > 0], s1 - s0, lane_speed)
            lines.append("        <center>")
            cmark = r.centre_mark
            ccolor = "yellow" if cmark != "none" else "standard"
            lines.append(f'          <lane id="0" type="none" level="false"><link/><roadMark sOffset="0.000000" '
                         f'type="{cmark}" weight="standard" color="{ccolor}" '
                         f'width="{"0.150000" if cmark != "none" else "0.000000"}" laneChange="none"/></lane>')
            lines.append("        </center>")
            lines += _side_xml("right", [ln for ln in sec_lanes if ln.id < 0], s1 - s0, lane_speed)
            lines.append("      </laneSection>")
        lines.append("    </lanes>")
        if r.signals or r.signs:
            lines.append("    <signals>")
            for sid, (ss, tt, orient) in enumerate(r.signals):
                lines.append(f'      <signal s="{_f(ss)}" t="{_f(tt)}" id="{r.id * 10 + sid}" '
                             f'name="TrafficLight{r.id}_{sid}" dynamic="yes" orientation="{orient}" '
                             f'zOffset="0.000000" country="OpenDRIVE" type="1000001" subtype="-1" '
                             f'value="-1" height="3.000000" width="0.500000" hOffset="0.000000"/>')
            for k, (ss, tt, orient, kmh) in enumerate(r.signs):
                lines.append(f'      <signal s="{_f(ss)}" t="{_f(tt)}" id="{r.id * 10 + len(r.signals) + k}" '
                             f'name="Speed_{kmh:g}" dynamic="no" orientation="{orient}" zOffset="0.000000" '
                             f'country="DE" type="274" subtype="-1" value="{kmh:g}" unit="km/h" '
                             f'height="2.000000" width="0.600000" hOffset="0.000000"/>')
            lines.append("    </signals>")
        lines.append("  </road>")
    for j in junctions:
        lines.append(f'  <junction id="{j.id}" name="{j.name}">')
        for cid, (inc, conn, cp, lane_links) in enumerate(j.connections):
            lines.append(f'    <connection id="{cid}" incomingRoad="{inc}" connectingRoad="{conn}" '
                         f'contactPoint="{cp}">')
            for fr, to in lane_links:
                lines.append(f'      <laneLink from="{fr}" to="{to}"/>')
            lines.append("    </connection>")
        lines.append("  </junction>")
    lines.append("</OpenDRIVE>")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the towns
STREET = RoadStyle(lanes=1, lane_width=3.5, shoulder=0.5, sidewalk=2.5, centre_mark="solid", speed_kmh=40.0)
AVENUE = RoadStyle(lanes=2, lane_width=3.5, shoulder=0.5, sidewalk=3.0, centre_mark="solid solid",
                   speed_kmh=50.0)
SUBURB = RoadStyle(lanes=1, lane_width=3.25, shoulder=0.0, sidewalk=2.0, centre_mark="broken", speed_kmh=30.0)


def occtown01() -> TownSpec:
    """A 300 m x 300 m grid: 4 signalised 4-way junctions, 8 T-junctions, curved corners, 2+2 avenues."""
    nodes = {"C11": (100.0, 100.0), "C21": (200.0, 100.0), "C12": (100.0, 200.0), "C22": (200.0, 200.0),
             "N1": (100.0, 0.0), "N2": (200.0, 0.0), "E1": (300.0, 100.0), "E2": (300.0, 200.0),
             "S2": (200.0, 300.0), "S1": (100.0, 300.0), "W2": (0.0, 200.0), "W1": (0.0, 100.0)}
    E = EdgeSpec
    edges = (
        # boundary ring: straight sides, rounded corners, a gentle bend on the north side
        E("N1", "N2", STREET, via=((125.0, 0.0), (150.0, -10.0), (175.0, 0.0)), fillet=40.0, name="North Rd"),
        E("N2", "E1", STREET, via=((300.0, 0.0),), fillet=30.0, name="NE Bend"),
        E("E1", "E2", STREET, name="East Rd"),
        E("E2", "S2", STREET, via=((300.0, 300.0),), fillet=25.0, name="SE Bend"),
        E("S2", "S1", STREET, name="South Rd"),
        E("S1", "W2", STREET, via=((0.0, 300.0),), fillet=25.0, name="SW Bend"),
        E("W2", "W1", STREET, name="West Rd"),
        E("W1", "N1", STREET, via=((0.0, 0.0),), fillet=25.0, name="NW Bend"),
        # the 2+2 avenues: y = 100 (east-west) and x = 200 (north-south)
        E("W1", "C11", AVENUE, name="Main Ave W"),
        E("C11", "C21", AVENUE, name="Main Ave"),
        E("C21", "E1", AVENUE, name="Main Ave E"),
        E("N2", "C21", AVENUE, name="Second Ave N"),
        E("C21", "C22", AVENUE, name="Second Ave"),
        E("C22", "S2", AVENUE, name="Second Ave S"),
        # 1+1 streets
        E("W2", "C12", STREET, name="Park St W"),
        E("C12", "C22", STREET, name="Park St"),
        E("C22", "E2", STREET, name="Park St E"),
        E("N1", "C11", STREET, name="First St N"),
        E("C11", "C12", STREET, name="First St"),
        E("C12", "S1", STREET, name="First St S"),
    )
    return TownSpec("OccTown01", nodes, edges, description="OccVLA-Drive grid town, generated")


def occtown02() -> TownSpec:
    """A ~200 m x 140 m suburban loop: curved corners, an S-bend, T-junctions and one 4-way."""
    nodes = {"N": (100.0, 0.0), "S": (100.0, 140.0), "W": (0.0, 70.0), "C": (100.0, 70.0), "E": (200.0, 70.0)}
    E = EdgeSpec
    edges = (
        E("W", "N", SUBURB, via=((0.0, 0.0),), fillet=30.0, name="Maple Crescent NW"),
        E("N", "E", SUBURB, via=((200.0, 0.0),), fillet=30.0, name="Maple Crescent NE"),
        E("E", "S", SUBURB, via=((200.0, 140.0),), fillet=30.0, name="Maple Crescent SE"),
        E("S", "W", SUBURB, via=((0.0, 140.0),), fillet=30.0, name="Maple Crescent SW"),
        E("N", "C", SUBURB, name="Oak Lane N"),
        E("C", "S", SUBURB, name="Oak Lane S"),
        E("W", "C", SUBURB, name="Elm Way"),
        E("C", "E", SUBURB, via=((120.0, 70.0), (140.0, 58.0), (160.0, 82.0), (180.0, 70.0)), fillet=15.0,
          name="Willow Bend"),
    )
    return TownSpec("OccTown02", nodes, edges, junction_margin=2.5,
                    description="OccVLA-Drive suburban town, generated")


TOWNS = {"OccTown01": occtown01, "OccTown02": occtown02}


def generate(out_dir: Path = TOWNS_DIR) -> dict[str, Path]:
    """Write every built-in town to `out_dir`; returns name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, make in TOWNS.items():
        path = out_dir / f"{name}.xodr"
        path.write_text(write_xodr(make()), encoding="utf-8")
        paths[name] = path
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=TOWNS_DIR, help="output folder (default: beside this module)")
    ap.add_argument("--check", action="store_true", help="only verify the files in --out are up to date")
    args = ap.parse_args(argv)
    if args.check:
        stale = [n for n, make in TOWNS.items()
                 if not (args.out / f"{n}.xodr").is_file()
                 or (args.out / f"{n}.xodr").read_text(encoding="utf-8") != write_xodr(make())]
        if stale:
            print(f"out of date in {args.out}: {', '.join(stale)}; run python -m sim.embedded.towns.generate")
            return 1
        print("built-in towns are up to date")
        return 0
    for name, path in generate(args.out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
