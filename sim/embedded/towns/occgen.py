"""Seeded town generator: `OccGen-<seed>` is an unlimited supply of CARLA-compatible OpenDRIVE towns.

Why: a learned driver needs many towns to train on and fresh ones to be evaluated on. Each seed gives one town,
byte-identical on every machine (only `random.Random(seed)` draws and the deterministic writer of `generate.py`).

A town is a jittered grid: a ring road whose corners are rounded with varied radii, crossed by interior streets
(the grid lines), so interior crossings are 4-way junctions and the ring's meeting points are T junctions.
Dropping some interior blocks' edges turns 4-ways into T junctions; some edges bend through S-curves. Every grid
line draws its own cross-section: 1-3 lanes per direction, 30-70 km/h, optionally a parking lane along the kerb.
Some 4-way (and a few T) junctions get traffic lights, the rest are unsignalised (all-way stops in SUMO).

Some towns (a share of the seeds with at least two interior grid lines across) also get a highway stretch: a
multi-lane road at 90 km/h that leaves the ring on the west, runs north of the town and rejoins the ring on the
east, with 60-70 km/h curved links at both ends. An off-ramp leaves it over a deceleration lane down to the ring's
first northern T junction and an on-ramp from the ring's last northern T junction joins it over an acceleration
lane: each ramp meets the outermost lane, one carriageway beside the highway, and the merge itself is a lane change
before the acceleration lane ends.

    python -m sim.embedded.towns.occgen 7 --out /some/dir     # write OccGen-7.xodr there
"""

from __future__ import annotations

import dataclasses

import argparse
import math
import random
import re
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from sim.embedded.towns.generate import EdgeSpec, RoadStyle, TownSpec, build_network, write_xodr

PREFIX = "OccGen-"
GENERATOR_VERSION = 2  # bump whenever the same seed would produce a different town (part of cache keys)
_NAME_RE = re.compile(r"^OccGen-(.*)$")
MAX_SEED = 2**63 - 1


class TownNameError(ValueError):
    """A name that looks like a generated town but is not a valid one (`OccGen-x`, `OccGen--1`)."""


def is_generated_name(base: str) -> bool:
    """True for names in the generated-town namespace (valid or not): they start with `OccGen-`."""
    return _NAME_RE.match(base) is not None


def parse_seed(base: str) -> int:
    """`OccGen-42` -> 42. Raises TownNameError (one line) for a seed that is not a non-negative integer."""
    m = _NAME_RE.match(base)
    if m is None:
        raise TownNameError(f"{base!r} is not a generated town name (expected {PREFIX}<seed>)")
    text = m.group(1)
    if not text.isdigit() or not text.isascii():
        raise TownNameError(
            f"bad generated town name {base!r}: the seed must be a non-negative integer, e.g. {PREFIX}0"
        )
    seed = int(text)
    if seed > MAX_SEED:
        raise TownNameError(f"bad generated town name {base!r}: the seed must be at most {MAX_SEED}")
    return seed


def town_name(seed: int) -> str:
    return f"{PREFIX}{seed}"


# ----------------------------------------------------------------------------- cross-sections
@dataclass(frozen=True)
class Profile:
    """A kind of street the generator draws a grid line from: lane count and speed choices."""

    name: str
    lanes: tuple[int, ...]
    speeds_kmh: tuple[float, ...]
    lane_width: tuple[float, ...]
    sidewalk: tuple[float, ...]
    parking_p: float  # probability of a parking lane along the kerb


RESIDENTIAL = Profile("residential", (1,), (30.0, 40.0), (3.25, 3.5), (2.0, 2.5), 0.5)
STREET = Profile("street", (1, 2), (40.0, 50.0), (3.5,), (2.5, 3.0), 0.4)
AVENUE = Profile("avenue", (2,), (50.0, 60.0), (3.5,), (3.0,), 0.3)
ARTERIAL = Profile("arterial", (3,), (60.0, 70.0), (3.5, 3.75), (3.0, 3.5), 0.0)
PARKING_WIDTH = 2.4


@dataclass(frozen=True)
class HighwayConfig:
    """The highway stretch of some towns (metres, km/h). Drawn from its own random stream, so adding it leaves
    the rest of a town exactly as without it."""

    share: float = 0.5  # chance that a town with >= 4 grid lines across gets one
    lanes: tuple[int, ...] = (2, 2, 3)
    lane_width: float = 3.75
    speed_kmh: float = 90.0  # the straight between the ramps
    link_speeds_kmh: tuple[float, ...] = (60.0, 70.0)  # the curved links to the ring
    ramp_speed_kmh: float = 60.0
    north: float = 80.0  # the highway runs this far north of the ring's northern side
    side: float = 140.0  # and this far west / east of the ring
    link_radius: float = 60.0
    ramp_radius: float = 30.0
    ramp_parallel: float = 10.0  # a ramp runs straight beside the highway this long outside the junction
    aux_length: float = 50.0  # acceleration / deceleration lane at full width
    aux_taper: float = 30.0


def _style(p: Profile, rng: random.Random) -> RoadStyle:
    lanes = rng.choice(p.lanes)
    parking = lanes <= 2 and rng.random() < p.parking_p
    centre = "broken" if lanes == 1 and p is RESIDENTIAL else ("solid" if lanes == 1 else "solid solid")
    return RoadStyle(
        lanes=lanes,
        lane_width=rng.choice(p.lane_width),
        shoulder=PARKING_WIDTH if parking else 0.5,
        sidewalk=rng.choice(p.sidewalk),
        centre_mark=centre,
        speed_kmh=rng.choice(p.speeds_kmh),
        parking=parking,
    )


# ----------------------------------------------------------------------------- the layout
@dataclass(frozen=True)
class OccGenConfig:
    """Ranges the generator draws from (metres unless noted)."""

    grid_lines: tuple[int, int] = (3, 5)  # grid lines per axis, the ring's two sides included
    block: tuple[float, float] = (75.0, 150.0)  # distance between neighbouring grid lines
    max_extent: float = 480.0  # the town fits in this square
    drop_edge_p: float = 0.25  # chance an interior edge is dropped (two 4-ways become T junctions)
    bend_p: float = 0.3  # chance an edge gets an S-curve
    signal_p: float = 0.6  # chance a 4-way junction is signalised (at least one is, at least one is not)
    signal_t_p: float = 0.15  # chance a T junction is signalised
    corner_radius: tuple[float, float] = (15.0, 60.0)


def _gaps(n: int, cfg: OccGenConfig, rng: random.Random) -> list[float]:
    gaps = [round(rng.uniform(*cfg.block), 1) for _ in range(n - 1)]
    scale = min(1.0, cfg.max_extent / sum(gaps))
    return [max(cfg.block[0], round(g * scale, 1)) if scale < 1 else g for g in gaps]


def occgen_spec(seed: int, cfg: OccGenConfig | None = None) -> TownSpec:
    """The town of a seed, as a graph spec for the OpenDRIVE writer (deterministic for (seed, cfg))."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise TownNameError(f"the seed of a generated town must be a non-negative integer, got {seed!r}")
    cfg = cfg or OccGenConfig()
    rng = random.Random(f"occgen-v1-{seed}")  # the layout stream (v1: towns without a highway are unchanged)
    nx, ny = rng.randint(*cfg.grid_lines), rng.randint(*cfg.grid_lines)
    xs = [0.0]
    for g in _gaps(nx, cfg, rng):
        xs.append(round(xs[-1] + g, 1))
    ys = [0.0]
    for g in _gaps(ny, cfg, rng):
        ys.append(round(ys[-1] + g, 1))

    # one profile per interior grid line; one interior line is an arterial (2-3 lanes), the ring a street
    ring = _style(rng.choice((RESIDENTIAL, STREET)), rng)
    lines = [("x", i) for i in range(1, nx - 1)] + [("y", j) for j in range(1, ny - 1)]
    arterial = rng.choice(lines)
    styles: dict[tuple[str, int], RoadStyle] = {}
    for line in lines:
        prof = (
            ARTERIAL
            if line == arterial and rng.random() < 0.75
            else (AVENUE if line == arterial else rng.choice((RESIDENTIAL, STREET, STREET, AVENUE)))
        )
        styles[line] = _style(prof, rng)

    def nid(i: int, j: int) -> str:
        return f"J{i}_{j}"

    corners = {(0, 0), (nx - 1, 0), (0, ny - 1), (nx - 1, ny - 1)}
    nodes = {nid(i, j): (xs[i], ys[j]) for i in range(nx) for j in range(ny) if (i, j) not in corners}
    edges: list[tuple[str, str, RoadStyle, tuple[tuple[float, float], ...], float]] = []

    # interior edges along the grid lines, including the spokes that meet the ring
    for i in range(1, nx - 1):  # north-south line x = xs[i]
        for j in range(ny - 1):
            edges.append((nid(i, j), nid(i, j + 1), styles[("x", i)], (), 25.0))
    for j in range(1, ny - 1):  # east-west line y = ys[j]
        for i in range(nx - 1):
            edges.append((nid(i, j), nid(i + 1, j), styles[("y", j)], (), 25.0))

    # drop some edges between two interior nodes (each node keeps >= 3 arms), keeping the graph connected
    interior = {nid(i, j) for i in range(1, nx - 1) for j in range(1, ny - 1)}
    degree: dict[str, int] = {}
    for a, b, *_ in edges:
        degree[a] = degree.get(a, 0) + 1
        degree[b] = degree.get(b, 0) + 1
    kept = []
    for e in edges:
        a, b = e[0], e[1]
        if (
            a in interior
            and b in interior
            and degree[a] >= 4
            and degree[b] >= 4
            and rng.random() < cfg.drop_edge_p
        ):
            degree[a] -= 1
            degree[b] -= 1
            continue
        kept.append(e)
    edges = kept

    # the ring: straight sides between T junctions, rounded corners
    ring_nodes = (
        [nid(i, 0) for i in range(1, nx - 1)]
        + [nid(nx - 1, j) for j in range(1, ny - 1)]
        + [nid(i, ny - 1) for i in range(nx - 2, 0, -1)]
        + [nid(0, j) for j in range(ny - 2, 0, -1)]
    )
    corner_after = {
        nid(nx - 2, 0): (xs[-1], ys[0]),
        nid(nx - 1, ny - 2): (xs[-1], ys[-1]),
        nid(1, ny - 1): (xs[0], ys[-1]),
        nid(0, 1): (xs[0], ys[0]),
    }
    for k, a in enumerate(ring_nodes):
        b = ring_nodes[(k + 1) % len(ring_nodes)]
        if a in corner_after:
            c = corner_after[a]
            room = min(math.dist(nodes[a], c), math.dist(c, nodes[b])) - 22.0
            radius = round(
                rng.uniform(cfg.corner_radius[0], max(cfg.corner_radius[0], min(cfg.corner_radius[1], room))),
                1,
            )
            edges.append((a, b, ring, (c,), radius))
        else:
            edges.append((a, b, ring, (), 25.0))

    # S-curves on some straight edges
    out: list[EdgeSpec] = []
    for a, b, style, via, fillet in edges:
        if not via and rng.random() < cfg.bend_p:
            bent = _s_curve(nodes[a], nodes[b], style, rng)
            if bent is not None:
                via, fillet = bent
        out.append(EdgeSpec(a, b, style, via=via, fillet=fillet))

    # traffic lights
    arms: dict[str, int] = {}
    for e in out:
        arms[e.a] = arms.get(e.a, 0) + 1
        arms[e.b] = arms.get(e.b, 0) + 1
    four = [n for n in nodes if arms.get(n, 0) >= 4]
    three = [n for n in nodes if arms.get(n, 0) == 3]
    signalised = {n for n in four if rng.random() < cfg.signal_p}
    if four and not signalised:
        signalised.add(rng.choice(four))
    if len(four) >= 2 and signalised == set(four):
        signalised.discard(rng.choice(four))
    signalised |= {n for n in three if rng.random() < cfg.signal_t_p}
    highway = _highway(seed, xs, ys, nodes, HighwayConfig()) if nx >= 4 else []
    if highway:  # where the highway's links meet the ring, traffic lights (SUMO would guess them anyway)
        out += highway
        signalised |= {highway[0].a, highway[2].b}
    used = {n for e in out for n in (e.a, e.b)}
    spec = TownSpec(
        town_name(seed),
        {n: p for n, p in nodes.items() if n in used},
        tuple(out),
        signalised=tuple(n for n in nodes if n in signalised),
        description=f"OccVLA-Drive generated town, seed {seed}, generator v{GENERATOR_VERSION}",
        speed_signs=True,
        lane_speeds=True,
    )
    _check_connected(spec)
    return spec


def _highway(
    seed: int, xs: list[float], ys: list[float], nodes: dict[str, tuple[float, float]], hw: HighwayConfig
) -> list[EdgeSpec]:
    """The highway edges and ramps of a town (adds nodes D, M), or [] when this seed draws none.

    CARLA frame (y south): the highway runs east at y = ys[0] - north. Eastbound: link from the ring's west node
    J0_1, the diverge D (off-ramp to J1_0), the 90 km/h straight, the merge M (on-ramp from J<nx-2>_0), link to
    the ring's east node.
    """
    rng = random.Random(f"occgen-highway-v1-{seed}")
    if rng.random() >= hw.share:
        return []
    nx = len(xs)
    lanes = rng.choice(hw.lanes)
    style = RoadStyle(
        lanes=lanes,
        lane_width=hw.lane_width,
        shoulder=0.0,
        sidewalk=0.0,
        centre_mark="solid solid",
        speed_kmh=hw.speed_kmh,
    )
    link = dataclasses.replace(style, speed_kmh=rng.choice(hw.link_speeds_kmh))
    ramp = RoadStyle(
        lanes=1,
        lane_width=hw.lane_width,
        shoulder=0.5,
        sidewalk=0.0,
        centre_mark="solid",
        speed_kmh=hw.ramp_speed_kmh,
        oneway=True,
    )
    off = lanes * hw.lane_width  # a ramp's reference line is the highway's outer lane border
    y = round(ys[0] - hw.north, 1)
    # junction trims at D and M: the widest other arm (the highway) plus the writer's 3 m margin
    trim = style.half_width + 3.0
    reach = trim + hw.ramp_parallel + hw.ramp_radius
    x_d, x_m = round(xs[1] - reach, 1), round(xs[nx - 2] + reach, 1)
    nodes["D"], nodes["M"] = (x_d, y), (x_m, y)
    west, east = round(xs[0] - hw.side, 1), round(xs[-1] + hw.side, 1)
    return [
        EdgeSpec(
            "J0_1",
            "D",
            link,
            via=((west, ys[1]), (west, y)),
            fillet=hw.link_radius,
            aux_end=hw.aux_length,
            aux_taper=hw.aux_taper,
            name="Highway W",
        ),
        EdgeSpec("D", "M", style, name="Highway"),
        EdgeSpec(
            "M",
            f"J{nx - 1}_1",
            link,
            via=((east, y), (east, ys[1])),
            fillet=hw.link_radius,
            aux_start=hw.aux_length,
            aux_taper=hw.aux_taper,
            name="Highway E",
        ),
        EdgeSpec(
            "D",
            "J1_0",
            ramp,
            via=((xs[1], y + off),),
            fillet=hw.ramp_radius,
            shift_a=(0.0, off),
            name="Off-ramp",
        ),
        EdgeSpec(
            f"J{nx - 2}_0",
            "M",
            ramp,
            via=((xs[nx - 2], y + off),),
            fillet=hw.ramp_radius,
            shift_b=(0.0, off),
            name="On-ramp",
        ),
    ]


def _s_curve(
    a: tuple[float, float], b: tuple[float, float], style: RoadStyle, rng: random.Random
) -> tuple[tuple[tuple[float, float], ...], float] | None:
    """Via points of a lateral S-bend in the middle of edge a-b, and a fillet radius that fits (None: no room)."""
    length = math.dist(a, b)
    clear = 20.0 + style.half_width  # keep the bend out of the junction trims
    usable = length - 2 * clear
    if usable < 40.0:
        return None
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    nx_, ny_ = -uy, ux
    offset = rng.choice((-1.0, 1.0)) * round(rng.uniform(4.0, min(14.0, usable / 5)), 1)
    ramp = usable / 4
    t = [clear + ramp * k for k in (0.5, 1.5, 2.5, 3.5)]
    lat = [0.0, offset, offset, 0.0]
    via = tuple(
        (round(a[0] + ux * s + nx_ * o, 2), round(a[1] + uy * s + ny_ * o, 2)) for s, o in zip(t, lat)
    )
    turn = math.atan2(abs(offset), ramp)
    # each corner's tangent length r*tan(turn/2) must fit in half the shorter neighbouring segment
    seg = min(ramp * 0.5, math.hypot(ramp, offset) / 2, ramp)
    r_max = seg / math.tan(turn / 2)
    radius = round(rng.uniform(0.5, 0.95) * r_max, 1)
    if radius < 12.0:
        return None
    return via, radius


def _check_connected(spec: TownSpec) -> None:
    adj: dict[str, set[str]] = {n: set() for n in spec.nodes}
    for e in spec.edges:
        adj[e.a].add(e.b)
        adj[e.b].add(e.a)
    start = next(iter(adj))
    seen, todo = {start}, deque([start])
    while todo:
        for m in adj[todo.popleft()]:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    if len(seen) != len(adj):
        raise ValueError(f"{spec.name}: generated road graph is not connected")


def occgen_xodr(seed: int, cfg: OccGenConfig | None = None) -> str:
    """The OpenDRIVE text of `OccGen-<seed>` (byte-identical for a seed on every machine)."""
    spec = occgen_spec(seed, cfg)
    try:
        build_network(spec)  # geometry checks raise ValueError with the reason
    except ValueError as exc:
        raise TownNameError(f"cannot build {spec.name}: {exc}") from None
    return write_xodr(spec)


def features(spec: TownSpec) -> dict[str, int]:
    """Counts of what a town has (for tests, the gallery and the README): junction kinds, lane counts."""
    arms: dict[str, int] = {}
    for e in spec.edges:
        arms[e.a] = arms.get(e.a, 0) + 1
        arms[e.b] = arms.get(e.b, 0) + 1
    sig = set(spec.signalised or ())
    out = {
        "signalised_4way": sum(1 for n, k in arms.items() if k >= 4 and n in sig),
        "unsignalised_4way": sum(1 for n, k in arms.items() if k >= 4 and n not in sig),
        "signalised_t": sum(1 for n, k in arms.items() if k == 3 and n in sig),
        "unsignalised_t": sum(1 for n, k in arms.items() if k == 3 and n not in sig),
        "curved_edges": sum(1 for e in spec.edges if e.via),
        "parking_edges": sum(1 for e in spec.edges if e.style.parking),
        "on_ramps": sum(
            1 for e in spec.edges if e.style.oneway and any(f.aux_start for f in spec.edges if f.a == e.b)
        ),
        "off_ramps": sum(
            1 for e in spec.edges if e.style.oneway and any(f.aux_end for f in spec.edges if f.b == e.a)
        ),
    }
    for k in (1, 2, 3):
        out[f"lanes{k}_edges"] = sum(1 for e in spec.edges if e.style.lanes == k)
    speeds = sorted({e.style.speed_kmh for e in spec.edges})
    out["min_speed_kmh"], out["max_speed_kmh"] = int(speeds[0]), int(speeds[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the OpenDRIVE file of generated towns OccGen-<seed>.")
    ap.add_argument("seeds", nargs="+", type=int, help="non-negative integer seeds")
    ap.add_argument("--out", type=Path, default=Path("."), help="output folder (default: current folder)")
    args = ap.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            text = occgen_xodr(seed)
            path = args.out / f"{town_name(seed)}.xodr"
            tmp = path.with_suffix(".xodr.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            print(f"{town_name(seed)}: {path} {features(occgen_spec(seed))}")
    except (TownNameError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
