"""Low-poly actor templates (vehicles by class, riders, pedestrians, props, traffic lights, lamps).

Each template is built in metres around its class's default extent and then normalised to the unit box
x, y in [-1, 1], z in [0, 2] (actor origin on the ground), so the vertex shader scales it by each actor's
`extent` and a default-sized actor comes out metrically exact. Every vertex carries a `part` id the shader
uses for colour and emission (PART_* below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.types import DEFAULT_EXTENTS

# Vertex part ids (must match the GLSL in shaders/).
PART_BODY = 0.0  # instance colour
PART_FIXED = 1.0  # the vertex colour
PART_HEADLIGHT = 2.0  # emissive white when lights are on
PART_TAILLIGHT = 3.0  # emissive red when lights are on
PART_BULB_RED, PART_BULB_YELLOW, PART_BULB_GREEN = 4.0, 5.0, 6.0  # lit when the instance state selects them
PART_LAMP = 7.0  # street-lamp head, emissive when lights are on
PART_GLASS = 8.0  # dark windows with a sky reflection

TYRE = (0.05, 0.05, 0.05)
GLASS = (0.08, 0.10, 0.12)
SKIN = (0.80, 0.62, 0.50)
TROUSERS = (0.15, 0.16, 0.22)
METAL = (0.35, 0.36, 0.38)
HOUSING = (0.08, 0.08, 0.08)


@dataclass
class _Builder:
    """Accumulates flat-shaded triangles: positions, normals, colours, parts."""

    pos: list
    nrm: list
    col: list
    part: list

    @classmethod
    def new(cls) -> _Builder:
        return cls([], [], [], [])

    def tri(self, a, b, c, n, color, part) -> None:
        """One triangle wound counter-clockwise around its outward normal n (back faces get culled)."""
        a, b, c, n = (np.asarray(p, float) for p in (a, b, c, n))
        if np.dot(np.cross(b - a, c - a), n) < 0:
            b, c = c, b
        for p in (a, b, c):
            self.pos.append(p)
            self.nrm.append(n)
            self.col.append(color)
            self.part.append(part)

    def quad(self, a, b, c, d, centre, color, part) -> None:
        """A planar quad a-b-c-d (in order around it), facing away from `centre`."""
        a, b, c, d = (np.asarray(p, float) for p in (a, b, c, d))
        n = np.cross(c - a, d - b)
        norm = np.linalg.norm(n)
        if norm < 1e-12:
            return
        n /= norm
        if np.dot(n, (a + b + c + d) / 4.0 - centre) < 0:
            n = -n
        self.tri(a, b, c, n, color, part)
        self.tri(a, c, d, n, color, part)

    def hexa(self, corners, color, part=PART_FIXED, bottom=False) -> None:
        """A convex hexahedron: corners (8, 3), bottom face then top face, each in order around the face.

        The bottom face is left out unless asked for: actors stand on the ground, nobody sees it.
        """
        c = np.asarray(corners, float)
        ctr = c.mean(axis=0)
        b, t = c[:4], c[4:]
        if bottom:
            self.quad(b[0], b[1], b[2], b[3], ctr, color, part)
        self.quad(t[0], t[1], t[2], t[3], ctr, color, part)
        for i in range(4):
            j = (i + 1) % 4
            self.quad(b[i], b[j], t[j], t[i], ctr, color, part)

    def box(self, lo, hi, color, part=PART_FIXED, bottom=False) -> None:
        (x0, y0, z0), (x1, y1, z1) = lo, hi
        self.hexa(
            [
                (x0, y0, z0),
                (x1, y0, z0),
                (x1, y1, z0),
                (x0, y1, z0),
                (x0, y0, z1),
                (x1, y0, z1),
                (x1, y1, z1),
                (x0, y1, z1),
            ],
            color,
            part,
            bottom,
        )

    def panel(self, x, y0, y1, z0, z1, color, part) -> None:
        """A flat quad in the plane x = const facing +x if x > 0 else -x (lamps on a body face)."""
        n = (1.0 if x > 0 else -1.0, 0.0, 0.0)
        self.tri((x, y0, z0), (x, y1, z0), (x, y1, z1), n, color, part)
        self.tri((x, y0, z0), (x, y1, z1), (x, y0, z1), n, color, part)

    def taper(self, x0, x1, y, z0, z1, top_x0, top_x1, top_y, color, part=PART_FIXED) -> None:
        """A box whose top face is narrowed to [top_x0, top_x1] x [-top_y, top_y] (cabins, cones)."""
        self.hexa(
            [
                (x0, -y, z0),
                (x1, -y, z0),
                (x1, y, z0),
                (x0, y, z0),
                (top_x0, -top_y, z1),
                (top_x1, -top_y, z1),
                (top_x1, top_y, z1),
                (top_x0, top_y, z1),
            ],
            color,
            part,
        )

    def wheel(self, cx, cy, r, width, color=TYRE, n=6, outer=1.0) -> None:
        """An n-sided prism along y (a tyre) centred at (cx, cy, r); only the cap on the `outer` side (+1/-1/0
        for both) is built, the inner one hides under the body."""
        angles = [2 * math.pi * (i + 0.5) / n for i in range(n)]
        ring = [(cx + r * math.cos(a), r + r * math.sin(a)) for a in angles]
        y0, y1 = cy - width / 2, cy + width / 2
        ctr = np.array([cx, cy, r])
        for i in range(n):
            (xa, za), (xb, zb) = ring[i], ring[(i + 1) % n]
            self.quad((xa, y0, za), (xb, y0, zb), (xb, y1, zb), (xa, y1, za), ctr, color, PART_FIXED)
        for y, side in ((y0, -1.0), (y1, 1.0)):
            if outer != 0.0 and side != outer:
                continue
            for i in range(1, n - 1):  # fan
                self.tri(
                    (ring[0][0], y, ring[0][1]),
                    (ring[i][0], y, ring[i][1]),
                    (ring[i + 1][0], y, ring[i + 1][1]),
                    (0.0, side, 0.0),
                    color,
                    PART_FIXED,
                )

    def person(self, x, y, z0, height, shirt_part=PART_BODY, shirt=(0.5, 0.5, 0.5), legs=True) -> None:
        """Legs, torso, arms and head of a person `height` tall standing (or sitting, legs=False) at z0."""
        s = height / 1.8
        if legs:
            for side in (-1, 1):
                self.box(
                    (x - 0.09 * s, y + side * 0.11 * s - 0.07 * s, z0),
                    (x + 0.09 * s, y + side * 0.11 * s + 0.07 * s, z0 + 0.85 * s),
                    TROUSERS,
                )
        zt = z0 + (0.85 * s if legs else 0.0)
        self.box(
            (x - 0.12 * s, y - 0.2 * s, zt), (x + 0.12 * s, y + 0.2 * s, zt + 0.6 * s), shirt, shirt_part
        )
        for side in (-1, 1):
            self.box(
                (x - 0.06 * s, y + side * 0.26 * s - 0.05 * s, zt + 0.05 * s),
                (x + 0.06 * s, y + side * 0.26 * s + 0.05 * s, zt + 0.58 * s),
                shirt,
                shirt_part,
            )
        self.box((x - 0.1 * s, y - 0.09 * s, zt + 0.62 * s), (x + 0.1 * s, y + 0.09 * s, zt + 0.86 * s), SKIN)

    def arrays(self, extent: tuple[float, float, float]) -> np.ndarray:
        """(N, 10) float32 rows: unit position (3), unit-space normal (3), colour (3), part (1)."""
        e = np.asarray(extent, float)
        pos = np.asarray(self.pos, float) / e  # z in [0, 2] when the template spans [0, 2 e_z]
        nrm = np.asarray(self.nrm, float) * e  # inverse-transpose of the 1/e scale
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
        col = np.array(
            [(0.0, 0.0, 0.0) if c is None else c for c in self.col], float
        )  # None: instance colour
        return np.concatenate([pos, nrm, col, np.asarray(self.part, float)[:, None]], axis=1).astype(
            np.float32
        )


def _lights(b: _Builder, ex: float, ey: float, z: float, h: float) -> None:
    """Headlight and tail-light panels just proud of the front (+x) and rear (-x) faces."""
    for side in (-1, 1):
        yc = side * (ey - 0.28)
        b.panel(ex + 0.01, yc - 0.16, yc + 0.16, z, z + h, (0.95, 0.95, 0.9), PART_HEADLIGHT)
        yc = side * (ey - 0.22)
        b.panel(-ex - 0.01, yc - 0.14, yc + 0.14, z, z + h, (0.6, 0.05, 0.05), PART_TAILLIGHT)


UNDERBODY = (0.04, 0.04, 0.045)


def _underbody(b: _Builder, ex: float, ey: float, top: float) -> None:
    """A dark closed underbody between the wheels down to the road: at camera resolution the gap under a vehicle
    is a few pixels, through which hidden pedestrians' feet leaked (a scenario's hidden actor must be hidden)."""
    b.box((-ex + 0.1, -ey + 0.3, 0.0), (ex - 0.1, ey - 0.3, top), UNDERBODY, PART_FIXED)


def _car() -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS["car"]
    b = _Builder.new()
    r = 0.34
    b.box((-ex, -ey, 0.25), (ex, ey, 0.8), None, PART_BODY)
    _underbody(b, ex, ey, 0.26)
    b.taper(-ex + 0.55, ex - 0.95, ey - 0.06, 0.8, 2 * ez, -ex + 0.85, ex - 1.55, ey - 0.2, GLASS, PART_GLASS)
    b.box(
        (-ex + 0.9, -ey + 0.22, 2 * ez - 0.02), (ex - 1.6, ey - 0.22, 2 * ez + 0.01), None, PART_BODY
    )  # roof
    for fx in (ex - 0.75, -ex + 0.7):
        for side in (-1, 1):
            b.wheel(fx, side * (ey - 0.12), r, 0.24, outer=side)
    _lights(b, ex, ey, 0.55, 0.14)
    return b.arrays((ex, ey, ez))


def _van() -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS["van"]
    b = _Builder.new()
    b.box((-ex, -ey, 0.3), (ex - 0.7, ey, 2 * ez), None, PART_BODY)
    b.taper(ex - 0.7, ex, ey, 0.3, 1.0, ex - 0.7, ex, ey, None, PART_BODY)  # bonnet
    _underbody(b, ex, ey, 0.31)
    b.taper(
        ex - 0.7, ex - 0.05, ey - 0.04, 1.0, 2 * ez - 0.05, ex - 0.7, ex - 0.6, ey - 0.1, GLASS, PART_GLASS
    )
    for side in (-1, 1):  # side windows of the cab
        b.box((ex - 1.5, side * ey - 0.02, 1.1), (ex - 0.75, side * ey + 0.02, 1.8), GLASS, PART_GLASS)
    for fx in (ex - 0.8, -ex + 0.75):
        for side in (-1, 1):
            b.wheel(fx, side * (ey - 0.12), 0.36, 0.26, outer=side)
    _lights(b, ex, ey, 0.65, 0.16)
    return b.arrays((ex, ey, ez))


def _truck() -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS["truck"]
    b = _Builder.new()
    cab = 2.2
    b.box((ex - cab, -ey + 0.1, 0.5), (ex, ey - 0.1, 2.9), None, PART_BODY)  # cab
    b.box((ex - 0.02, -ey + 0.25, 1.9), (ex + 0.01, ey - 0.25, 2.7), GLASS, PART_GLASS)  # windscreen
    b.box((-ex, -ey, 0.9), (ex - cab - 0.15, ey, 2 * ez), (0.85, 0.85, 0.82), PART_FIXED)  # cargo box
    b.box((-ex, -0.3, 0.45), (ex - cab, 0.3, 0.9), METAL)  # chassis
    _underbody(b, ex, ey, 0.91)
    for fx in (ex - 0.9, -ex + 2.2, -ex + 1.0):
        for side in (-1, 1):
            b.wheel(fx, side * (ey - 0.2), 0.5, 0.35, outer=side)
    _lights(b, ex, ey, 0.7, 0.2)
    return b.arrays((ex, ey, ez))


def _bus() -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS["bus"]
    b = _Builder.new()
    b.box((-ex, -ey, 0.35), (ex, ey, 2 * ez), None, PART_BODY)
    _underbody(b, ex, ey, 0.36)
    for side in (-1, 1):
        b.box((-ex + 0.4, side * ey - 0.02, 1.3), (ex - 0.4, side * ey + 0.02, 2.6), GLASS, PART_GLASS)
    b.box((ex - 0.02, -ey + 0.15, 1.2), (ex + 0.02, ey - 0.15, 2.8), GLASS, PART_GLASS)
    for fx in (ex - 1.3, -ex + 1.5):
        for side in (-1, 1):
            b.wheel(fx, side * (ey - 0.2), 0.5, 0.35, outer=side)
    _lights(b, ex, ey, 0.6, 0.2)
    return b.arrays((ex, ey, ez))


def _two_wheeler(kind: str) -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS[kind]
    b = _Builder.new()
    r = 0.3 if kind == "motorcycle" else 0.34
    w = 0.12 if kind == "motorcycle" else 0.05
    for fx in (ex - r, -ex + r):
        b.wheel(fx, 0.0, r, w, n=6, outer=0.0)
    if kind == "motorcycle":
        b.box((-ex + 0.35, -0.16, 0.35), (ex - 0.35, 0.16, 0.8), None, PART_BODY)  # tank/engine
        b.panel(ex - 0.3, -0.08, 0.08, 0.65, 0.8, (0.95, 0.95, 0.9), PART_HEADLIGHT)
        b.person(-0.15, 0.0, 0.75, 1.5, PART_FIXED, (0.12, 0.12, 0.14), legs=False)
    else:
        b.box((-ex + r, -0.03, 0.55), (ex - r, 0.03, 0.62), None, PART_BODY)  # top tube
        b.box((-0.1, -0.03, r), (0.0, 0.03, 0.85), None, PART_BODY)  # seat tube
        b.box((ex - r - 0.05, -0.25, 0.9), (ex - r + 0.02, 0.25, 0.95), METAL)  # handlebar
        b.person(-0.1, 0.0, 0.85, 1.45, PART_FIXED, (0.2, 0.3, 0.5), legs=False)
    return b.arrays((ex, ey, ez))


def _pedestrian() -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS["pedestrian"]
    b = _Builder.new()
    b.person(0.0, 0.0, 0.0, 2 * ez, PART_BODY)
    return b.arrays((ex, ey, ez))


def _cone() -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS["cone"]
    b = _Builder.new()
    b.box((-ex, -ey, 0.0), (ex, ey, 0.04), (0.9, 0.35, 0.05))
    b.taper(-0.15, 0.15, 0.15, 0.04, 0.4, -0.07, 0.07, 0.07, (0.95, 0.4, 0.05))
    b.taper(-0.09, 0.09, 0.09, 0.4, 0.62, -0.06, 0.06, 0.06, (0.95, 0.95, 0.95))
    b.taper(-0.06, 0.06, 0.06, 0.62, 2 * ez, -0.02, 0.02, 0.02, (0.95, 0.4, 0.05))
    return b.arrays((ex, ey, ez))


def _barrier() -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS["barrier"]
    b = _Builder.new()
    b.taper(-ex, ex, ey, 0.0, 2 * ez, -ex, ex, ey * 0.4, None, PART_BODY)
    for i in range(4):
        x0 = -ex + (2 * i + 0.5) * ex / 4
        b.box((x0, -ey * 0.72 - 0.01, 0.55), (x0 + ex / 4, ey * 0.72 + 0.01, 0.75), (0.95, 0.95, 0.95))
    return b.arrays((ex, ey, ez))


def _crate() -> np.ndarray:
    """Generic box for classes without a dedicated shape (prop, others)."""
    b = _Builder.new()
    b.box((-1, -1, 0), (1, 1, 2), None, PART_BODY)
    return b.arrays((1.0, 1.0, 1.0))


def _trailer() -> np.ndarray:
    ex, ey, ez = DEFAULT_EXTENTS["trailer"]
    b = _Builder.new()
    b.box((-ex, -ey, 0.9), (ex, ey, 2 * ez), None, PART_BODY)
    for fx in (-ex + 1.0, -ex + 2.1):
        for side in (-1, 1):
            b.wheel(fx, side * (ey - 0.2), 0.45, 0.3, outer=side)
    return b.arrays((ex, ey, ez))


def _traffic_light() -> np.ndarray:
    """Pole + housing (metres, extent 1): the head faces +x (towards approaching traffic), bulbs top to bottom."""
    b = _Builder.new()
    b.box((-0.08, -0.08, 0.0), (0.08, 0.08, 4.0), METAL)
    b.box((-0.15, -0.22, 3.0), (0.15, 0.22, 4.1), HOUSING)
    for i, part in enumerate((PART_BULB_RED, PART_BULB_YELLOW, PART_BULB_GREEN)):
        zc = 3.88 - i * 0.33
        b.box((0.15, -0.12, zc - 0.12), (0.2, 0.12, zc + 0.12), (0.0, 0.0, 0.0), part)
    return b.arrays((1.0, 1.0, 1.0))


def _lamp() -> np.ndarray:
    """A street-lamp head hanging below its lamp position (extent 1)."""
    b = _Builder.new()
    b.box((-0.35, -0.2, -0.15), (0.35, 0.2, 0.0), (1.0, 0.9, 0.7), PART_LAMP)
    return b.arrays((1.0, 1.0, 1.0))


def _far(kind: str) -> np.ndarray:
    """A few-box stand-in drawn beyond RenderConfig.lod_distance, where wheels and limbs are sub-pixel."""
    ex, ey, ez = DEFAULT_EXTENTS[kind]
    b = _Builder.new()
    if kind == "pedestrian":
        b.box((-0.1, -0.18, 0.0), (0.1, 0.18, 1.0), TROUSERS)
        b.box((-0.12, -0.22, 1.0), (0.12, 0.22, 1.8), None, PART_BODY)
    elif kind in ("motorcycle", "bicycle"):
        b.box((-ex, -0.08, 0.0), (ex, 0.08, 0.8), TYRE)
        b.box((-0.25, -0.2, 0.8), (0.15, 0.2, 2 * ez), None, PART_BODY)
    elif kind == "car":
        b.box((-ex, -ey, 0.1), (ex, ey, 0.8), None, PART_BODY)
        b.box((-ex + 0.7, -ey + 0.12, 0.8), (ex - 1.2, ey - 0.12, 2 * ez), GLASS, PART_GLASS)
    elif kind == "van":
        b.box((-ex, -ey, 0.15), (ex, ey, 2 * ez), None, PART_BODY)
    elif kind == "truck":
        b.box((ex - 2.2, -ey + 0.1, 0.2), (ex, ey - 0.1, 2.9), None, PART_BODY)
        b.box((-ex, -ey, 0.2), (ex - 2.35, ey, 2 * ez), (0.85, 0.85, 0.82))
    else:  # bus, trailer
        b.box((-ex, -ey, 0.15), (ex, ey, 2 * ez), None, PART_BODY)
    return b.arrays((ex, ey, ez))


# template name -> builder; a vclass maps to a template via VCLASS_TEMPLATE, far away to FAR_TEMPLATE
_BUILDERS = {
    "car": _car,
    "van": _van,
    "truck": _truck,
    "bus": _bus,
    "motorcycle": lambda: _two_wheeler("motorcycle"),
    "bicycle": lambda: _two_wheeler("bicycle"),
    "pedestrian": _pedestrian,
    "cone": _cone,
    "barrier": _barrier,
    "trailer": _trailer,
    "crate": _crate,
    "traffic_light": _traffic_light,
    "lamp": _lamp,
}
_BUILDERS.update(
    {
        f"{k}_far": (lambda k=k: _far(k))
        for k in ("car", "van", "truck", "bus", "motorcycle", "bicycle", "pedestrian", "trailer")
    }
)
TEMPLATE_NAMES: tuple[str, ...] = tuple(_BUILDERS)
VCLASS_TEMPLATE: dict[str, str] = {
    "car": "car",
    "van": "van",
    "truck": "truck",
    "bus": "bus",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
    "pedestrian": "pedestrian",
    "cone": "cone",
    "barrier": "barrier",
    "trailer": "trailer",
    "construction": "truck",
    "prop": "crate",
}
FAR_TEMPLATE: dict[str, str] = {
    k: f"{k}_far" for k in ("car", "van", "truck", "bus", "motorcycle", "bicycle", "pedestrian", "trailer")
}
LIGHT_VCLASSES = ("car", "van", "truck", "bus", "motorcycle", "construction")  # vehicles with headlights


def build_templates() -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """All templates in one array (N, 10) float32 and name -> (first vertex, vertex count)."""
    parts, table, first = [], {}, 0
    for name in TEMPLATE_NAMES:
        arr = _BUILDERS[name]()
        table[name] = (first, len(arr))
        parts.append(arr)
        first += len(arr)
    return np.concatenate(parts), table
