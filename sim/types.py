"""Plain data types shared by every simulator backend and their consumers.

Frames: everything here is in CARLA's world frame (x east, y south, z up, left-handed, yaw in degrees,
metres) unless a field says otherwise. These types are the contract between backends (sim/embedded,
sim/carla) and the criteria, the expert and the data collector; they carry no simulator handles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FIXED_DELTA_SECONDS = 0.05  # 20 Hz synchronous ticks, as the CARLA leaderboard runs

# Occ3D-nuScenes classes (DESIGN.md "Occupancy labels")
OCC_CLASSES: tuple[str, ...] = (
    "others", "barrier", "bicycle", "bus", "car", "construction_vehicle", "motorcycle", "pedestrian",
    "traffic_cone", "trailer", "truck", "driveable_surface", "other_flat", "sidewalk", "terrain", "manmade",
    "vegetation", "free",
)
OCC = {name: i for i, name in enumerate(OCC_CLASSES)}
FREE = OCC["free"]  # 17

# Vehicle / actor classes the renderer draws and the Occ3D class each one maps to.
VCLASS_TO_OCC: dict[str, int] = {
    "car": OCC["car"], "van": OCC["car"], "truck": OCC["truck"], "bus": OCC["bus"],
    "motorcycle": OCC["motorcycle"], "bicycle": OCC["bicycle"], "pedestrian": OCC["pedestrian"],
    "trailer": OCC["trailer"], "construction": OCC["construction_vehicle"], "cone": OCC["traffic_cone"],
    "barrier": OCC["barrier"], "prop": OCC["others"],
}

# Default half-extents (x length, y width, z height) per class, metres.
DEFAULT_EXTENTS: dict[str, tuple[float, float, float]] = {
    "car": (2.45, 1.07, 0.76),  # Lincoln MKZ 2017 as in CARLA (also the ego)
    "van": (2.6, 1.05, 1.0),
    "truck": (4.2, 1.4, 1.9),
    "bus": (5.6, 1.4, 1.6),
    "motorcycle": (1.1, 0.4, 0.75),
    "bicycle": (0.9, 0.3, 0.8),
    "pedestrian": (0.25, 0.25, 0.9),
    "trailer": (4.0, 1.3, 1.8),
    "construction": (3.5, 1.4, 1.6),
    "cone": (0.2, 0.2, 0.4),
    "barrier": (1.0, 0.3, 0.5),
    "prop": (0.5, 0.5, 0.5),
}
EGO_EXTENT = DEFAULT_EXTENTS["car"]


@dataclass
class Pose:
    """A rigid pose in the CARLA world frame; x, y, z in metres, angles in degrees."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0


@dataclass
class ActorState:
    """One non-ego actor as ground truth.

    (x, y, z) is the actor origin on the ground; the 3D box is centred at (x, y, z + extent[2]) with
    half-sizes `extent` along the actor's (forward, right, up) axes, rotated by `yaw`.
    """

    id: int
    type_id: str  # CARLA-style blueprint id, e.g. 'vehicle.lincoln.mkz_2017', 'walker.pedestrian.0001'
    category: str  # 'vehicle' | 'walker' | 'static' (the kind CARLA's collision criteria report)
    vclass: str  # a key of VCLASS_TO_OCC: car, van, truck, bus, motorcycle, bicycle, pedestrian, ...
    x: float
    y: float
    z: float
    yaw: float  # degrees
    extent: tuple[float, float, float]  # half sizes (forward, right, up), metres
    vx: float = 0.0  # world-frame velocity, m/s
    vy: float = 0.0
    color: tuple[float, float, float] = (0.6, 0.6, 0.6)  # albedo 0..1, for rendering
    source: str = "traffic"  # 'traffic' (SUMO NPC) | 'scenario' (scripted) | 'parked'

    @property
    def speed(self) -> float:
        return float(np.hypot(self.vx, self.vy))

    @property
    def occ_class(self) -> int:
        return VCLASS_TO_OCC.get(self.vclass, OCC["others"])


@dataclass
class EgoState:
    """The ego vehicle's ground-truth state (CARLA world frame)."""

    pose: Pose
    vx: float = 0.0  # world-frame velocity, m/s
    vy: float = 0.0
    speed: float = 0.0  # signed along heading, m/s (negative when reversing)
    accel: tuple[float, float, float] = (0.0, 0.0, 0.0)  # body-frame acceleration (forward, right, up), m/s^2
    yaw_rate: float = 0.0  # deg/s
    extent: tuple[float, float, float] = EGO_EXTENT
    steer: float = 0.0  # the control last applied
    throttle: float = 0.0
    brake: float = 0.0


@dataclass
class TrafficLightState:
    """A traffic light head governing one incoming approach.

    The stop line is a segment across the approach lane(s); crossing it while `state == 'Red'` in the
    direction `lane_yaw` is a red-light infraction.
    """

    id: int
    state: str  # 'Red' | 'Yellow' | 'Green' | 'Off' (carla.TrafficLightState names)
    x: float  # pole base position
    y: float
    z: float
    yaw: float  # direction the light head faces (towards approaching traffic), degrees
    stop_line: tuple[tuple[float, float], tuple[float, float]]  # two world points
    lane_yaw: float  # travel direction of the approach at the stop line, degrees


@dataclass
class StopSign:
    id: int
    x: float
    y: float
    z: float
    yaw: float
    stop_line: tuple[tuple[float, float], tuple[float, float]]
    lane_yaw: float


@dataclass
class SimEvent:
    """Something that happened to the ego during one tick.

    kind: 'collision' (other_category says 'vehicle' | 'walker' | 'static'), 'lane_invasion'
    (detail names the marking, e.g. 'Solid', 'Broken', 'SolidSolid'), 'off_road'.
    """

    frame: int
    kind: str
    x: float
    y: float
    other_id: int = -1
    other_category: str = ""
    other_type_id: str = ""
    detail: str = ""


@dataclass
class GroundTruth:
    """Privileged state for the expert, the criteria and the data collector. Agents never see it."""

    frame: int
    timestamp: float
    ego: EgoState
    actors: list[ActorState]
    traffic_lights: list[TrafficLightState]
    stop_signs: list[StopSign]
    events: list[SimEvent] = field(default_factory=list)
    # pedestrian crossings: (4, 2) corner polygons in the CARLA world frame (static; the same list every tick)
    crosswalks: list[np.ndarray] = field(default_factory=list)


# ---------------------------------------------------------------- static scene (embedded backend)
@dataclass
class Mesh:
    """A non-indexed triangle list (N divisible by 3) in the CARLA world frame."""

    positions: np.ndarray  # (N, 3) float32
    normals: np.ndarray  # (N, 3) float32, unit
    colors: np.ndarray  # (N, 3) float32 albedo in 0..1
    semantic: np.ndarray  # (N,) uint8 Occ3D class id

    @staticmethod
    def concatenate(meshes: list[Mesh]) -> Mesh:
        meshes = [m for m in meshes if len(m.positions)]
        if not meshes:
            z3 = np.zeros((0, 3), np.float32)
            return Mesh(z3, z3.copy(), z3.copy(), np.zeros((0,), np.uint8))
        return Mesh(
            np.concatenate([m.positions for m in meshes]).astype(np.float32),
            np.concatenate([m.normals for m in meshes]).astype(np.float32),
            np.concatenate([m.colors for m in meshes]).astype(np.float32),
            np.concatenate([m.semantic for m in meshes]).astype(np.uint8),
        )


@dataclass
class BoxSet:
    """Oriented 3D boxes (world frame): box i spans centers[i] +- extents[i] in its own axes, yaw degrees."""

    centers: np.ndarray  # (M, 3) float32, box centres
    extents: np.ndarray  # (M, 3) float32, half sizes (forward, right, up)
    yaws: np.ndarray  # (M,) float32, degrees
    classes: np.ndarray  # (M,) uint8 Occ3D class

    def __len__(self) -> int:
        return len(self.centers)

    @staticmethod
    def empty() -> BoxSet:
        return BoxSet(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32),
                      np.zeros((0,), np.float32), np.zeros((0,), np.uint8))


@dataclass
class GroundRaster:
    """Top-down map of ground classes in the world frame.

    classes[row, col] covers world x in [x_min + col*res, x_min + (col+1)*res) and world y in
    [y_min + row*res, y_min + (row+1)*res). Values are Occ3D ids: driveable_surface, other_flat,
    sidewalk, terrain; FREE (17) where there is no ground surface (off the map).
    """

    classes: np.ndarray  # (H, W) uint8
    x_min: float
    y_min: float
    resolution: float  # metres per cell
    height: np.ndarray | None = None  # (H, W) float32 ground z, None = flat at z 0

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class at world points (nearest cell); FREE outside the raster."""
        col = np.floor((np.asarray(x) - self.x_min) / self.resolution).astype(np.int64)
        row = np.floor((np.asarray(y) - self.y_min) / self.resolution).astype(np.int64)
        h, w = self.classes.shape
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        out = np.full(np.shape(col), FREE, np.uint8)
        out[inside] = self.classes[row[inside], col[inside]]
        return out


@dataclass
class StaticScene:
    """Everything static in a town: what cameras draw, what occupancy and collisions test against."""

    town: str
    ground: GroundRaster
    props: BoxSet  # solid static things above ground: buildings, trees, poles, barriers, walls
    mesh: Mesh  # everything static to draw: ground, markings, curbs, props
    street_lights: np.ndarray  # (K, 3) float32 lamp positions, lit at night
    bounds: tuple[float, float, float, float]  # x_min, y_min, x_max, y_max
