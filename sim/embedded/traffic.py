"""NPC traffic for the embedded simulator: libsumo drives vehicles, pedestrians and traffic lights.

The SUMO network is converted from the same OpenDRIVE file the world's carla.Map reads
(sim/embedded/sumo_net.py), so lanes coincide. Every tick the world pushes the ego pose into SUMO
(`set_ego`, moveToXY) so NPCs brake behind it and yield to it, then calls `step()` and reads
`actors()` / `traffic_lights()` in CARLA world coordinates.

Population: `config.vehicles` vehicles of mixed classes (at most `config.max_vehicles_per_km` per km of
driving lane within the radius) and `config.walkers` pedestrians are kept within `config.radius` of the ego. Vehicles follow random walks over the network that are extended before they
end; NPCs that leave the radius, finish their walk or get removed by SUMO are replaced by new ones spawned
in the outer ring of the radius (so they do not pop up in front of the cameras).

libsumo is one simulation per process: the first live TrafficSim of a process runs in it; any further one runs
SUMO as a subprocess over TraCI (the same API over a socket, slower per call), so any number of simulators and
gymnasium envs can live in one process. `close()` frees either.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from typing import Any

import libsumo
import numpy as np
import sumolib
import traci

from sim.embedded.sumo_net import SumoCoords, convert_network
from sim.protocol import SimulatorError, TrafficConfig
from sim.types import DEFAULT_EXTENTS, EGO_EXTENT, FIXED_DELTA_SECONDS, ActorState, Pose, TrafficLightState


class TrafficError(SimulatorError):
    """A traffic-simulation failure (bad config, libsumo already in use, unknown light id, ...)."""


@dataclass(frozen=True)
class VehicleClassSpec:
    """How one renderer/occupancy vehicle class maps to SUMO (vClass, dynamics) and CARLA (blueprint id)."""

    sumo_vclass: str
    type_id: str  # CARLA-style blueprint id
    share: float  # fraction of spawned NPC vehicles
    max_speed: float  # m/s
    accel: float  # m/s^2
    decel: float  # m/s^2
    min_gap: float  # m, standstill gap to the leader


VEHICLE_CLASSES: dict[str, VehicleClassSpec] = {
    # max_speed: what the vehicle drives at most on a fast road (a 90 km/h highway at speed_fraction 1.0)
    "car": VehicleClassSpec("passenger", "vehicle.lincoln.mkz_2017", 0.70, 30.0, 2.6, 4.5, 2.0),
    "van": VehicleClassSpec("delivery", "vehicle.mercedes.sprinter", 0.10, 27.0, 2.0, 4.0, 2.0),
    "truck": VehicleClassSpec("truck", "vehicle.carlamotors.carlacola", 0.07, 25.0, 1.3, 4.0, 2.5),
    "bus": VehicleClassSpec("bus", "vehicle.mitsubishi.fusorosa", 0.04, 25.0, 1.2, 4.0, 2.5),
    "motorcycle": VehicleClassSpec(
        "motorcycle", "vehicle.harley-davidson.low_rider", 0.09, 30.0, 3.0, 6.0, 1.5
    ),
    # Cyclists ride in scenarios only: like CARLA's leaderboard background traffic (four-wheeled vehicles and
    # motorbikes), road NPCs are no bicycles, which nobody could overtake on 1+1 streets.
    "bicycle": VehicleClassSpec("bicycle", "vehicle.diamondback.century", 0.0, 5.5, 1.2, 3.0, 1.0),
}
WALKER_TYPE_IDS: tuple[str, ...] = tuple(f"walker.pedestrian.{i:04d}" for i in range(1, 15))
WALKER_SPEED = 1.3  # m/s mean walking speed (SUMO applies its per-person speed factor)

EGO_SUMO_ID = "ego"
_EGO_TYPE = "occvla_ego"
_CROSSING_RE = re.compile(r"^:.+_c\d+$")  # netconvert names crossings ':<node>_c<k>'
_WALKER_TYPE = "occvla_walker"
_SIGNAL_TO_STATE = {
    "r": "Red",
    "s": "Red",
    "u": "Red",
    "y": "Yellow",
    "Y": "Yellow",
    "G": "Green",
    "g": "Green",
    "o": "Off",
    "O": "Off",
}
_STATE_TO_SIGNAL = {"Red": "r", "Yellow": "y", "Green": "G", "Off": "O"}
_SUBSCRIBED = (libsumo.VAR_POSITION3D, libsumo.VAR_ANGLE, libsumo.VAR_SPEED, libsumo.VAR_WAITING_TIME)
# NPCs brake for the ego in their way (see TrafficSim._yield_to_ego): the corridor is the NPC's width plus the
# margin each side, as long as its reaction distance plus its stopping distance at `_YIELD_DECEL` (SUMO's
# passenger decel) plus the standoff it keeps from the ego.
_YIELD_LATERAL_MARGIN_M = 0.4
_YIELD_REACTION_S = 0.5
_YIELD_DECEL = 4.5
_YIELD_STANDOFF_M = 1.5
# NPCs alongside the ego (see TrafficSim._hold_lanes_beside_ego) keep their lane: their length plus this each way
# overlaps the ego's box, and their side is less than this laterally from the ego's (an adjacent lane's car: ~1.4 m)
_BESIDE_MARGIN_M = 2.0
_BESIDE_LATERAL_M = 2.0
# Pedestrians do not walk into a moving ego (CARLA's walkers stop and check for cars before they cross): one with
# the ego's box in a corridor ahead of it, its width plus the margin each side and `_WALKER_YIELD_REACH_S` of
# walking at its top speed long, stands until the box is out of it. SUMO's own crossing logic ignores the ego.
_WALKER_YIELD_MARGIN_M = 0.3
_WALKER_YIELD_REACH_S = 1.0
# m/s: an ego standing (below this now and on the tick before, as the leaderboard's collision criterion measures
# "at rest") is walked past: it cannot be at fault
_WALKER_YIELD_EGO_SPEED = 0.1
_MAINTAIN_EVERY = 10  # ticks between radius culls / route extensions (0.5 s)
_PENDING_TICKS = 4  # a vehicle SUMO could not insert within this many ticks is dropped and re-drawn
_ROUTE_HOPS = 25  # edges per random-walk route (extended before it runs out)
_SPAWN_SPACING = 5.0  # m between candidate spawn points along a lane
_EGO_CLEARANCE = 15.0  # m: never spawn closer than this to the ego
# ... and never on a lane leading into the ego (it within this of the spawn point's lane line, ahead of it) closer
# than that plus the stopping distance at the departure speed (reaction and _YIELD_DECEL): a van inserted at
# 49 km/h 18 m behind the ego standing at its route's start could not stop (OccGen-13 route 27)
_SPAWN_EGO_LATERAL_M = 3.0
_SPAWN_SEPARATION = 10.0  # m between a new vehicle and any other vehicle (front to front)
# An NPC vehicle standing this long is in a deadlock (a jammed junction, or waiting for an ego that waits for
# it) and is removed, near the ego too: longer than any red phase of the signal programmes (<= 47 s), so queues
# at lights stay, and well before the leaderboard's 'agent blocked' (180 s).
_STUCK_SECONDS = 60.0
# An NPC standing inside a junction across the ego's way, held by the braking layer for the ego this long, is in a
# deadlock with it (the ego waits for the NPC, the NPC for the ego) and is removed sooner. Queues behind the ego
# are on plain lanes and point the ego's way: they stay.
_EGO_DEADLOCK_SECONDS = 15.0
_EGO_DEADLOCK_MIN_ANGLE_DEG = 30.0

_VEHICLE_COLORS = np.array(
    [  # albedo 0..1: white, black, silver, grey, red, blue, dark blue, green, beige, yellow
        (0.92, 0.92, 0.92),
        (0.05, 0.05, 0.06),
        (0.7, 0.71, 0.73),
        (0.38, 0.39, 0.41),
        (0.7, 0.08, 0.07),
        (0.1, 0.25, 0.6),
        (0.06, 0.1, 0.25),
        (0.12, 0.35, 0.18),
        (0.78, 0.72, 0.58),
        (0.9, 0.75, 0.1),
    ],
    np.float64,
)
_WALKER_COLORS = np.array(
    [
        (0.15, 0.15, 0.2),
        (0.55, 0.1, 0.1),
        (0.2, 0.3, 0.55),
        (0.8, 0.8, 0.75),
        (0.35, 0.45, 0.25),
        (0.6, 0.45, 0.3),
        (0.85, 0.55, 0.15),
        (0.4, 0.2, 0.45),
    ],
    np.float64,
)

_SUMO_OPTIONS: dict[str, str] = {
    "--step-length": str(FIXED_DELTA_SECONDS),
    "--no-step-log": "true",
    "--no-warnings": "true",
    "--duration-log.disable": "true",
    "--collision.action": "none",  # the world detects the ego's collisions itself
    "--time-to-teleport": "-1",  # no jumps; TrafficSim removes long-stuck NPCs away from the ego instead
    "--ignore-route-errors": "true",
    "--xml-validation": "never",
    # Drivers waiting at a junction grow impatient over 30 s (SUMO's default: 180 s) and then take gaps that make
    # other traffic brake. (Unsignalised junctions are all-way stops, as under CARLA's Traffic Manager, which has
    # no right of way there: see sumo_net.py.)
    "--time-to-impatience": "30",
    # SUMO changes lanes in one step (3.5 m sideways in 0.05 s, even on a junction's internal lanes); CARLA's Traffic
    # Manager drives a lane change as a path over a few metres. Spread every change over 2 s.
    "--lanechange.duration": "2",
}
_NPC_TYPES_FILE = Path(__file__).with_name("sumo_vtypes.add.xml")
_NPC_BASE_TYPE = "occvla_npc_base"  # defined there
# a refused call (libsumo or TraCI) / any SUMO failure
_CALL_ERRORS = (libsumo.TraCIException, traci.TraCIException, traci.exceptions.TraCIException)
_SUMO_ERRORS = (*_CALL_ERRORS, libsumo.FatalTraCIError, traci.FatalTraCIError)
_LIVE: TrafficSim | None = None  # the TrafficSim holding libsumo (one simulation per process)
_TRACI_COUNT = itertools.count()


def _start_sumo(args: list[str], net_path: Path) -> tuple[Any, str]:
    """Start SUMO: in-process libsumo when this process has none running, else a SUMO subprocess over TraCI.

    libsumo allows one simulation per process; TraCI (the same API over a socket) allows any number, at the
    cost of a round trip per call (benchmarks/traffic_backends.py measures both). Returns (api, 'libsumo'|'traci').
    """
    if _LIVE is None:
        try:
            libsumo.start(args)
        except _SUMO_ERRORS as exc:
            with contextlib.suppress(*_SUMO_ERRORS):
                libsumo.close()
            raise TrafficError(f"libsumo failed to start on {net_path}: {exc}") from exc
        return libsumo, "libsumo"
    label = f"occvla-{os.getpid()}-{next(_TRACI_COUNT)}"
    try:
        # traci prints "Retrying in 1 seconds" while the SUMO process starts
        with contextlib.redirect_stdout(io.StringIO()):
            traci.start([sumolib.checkBinary("sumo"), *args[1:]], label=label)
    except (*_SUMO_ERRORS, OSError) as exc:
        raise TrafficError(f"SUMO (TraCI) failed to start on {net_path}: {exc}") from exc
    return traci.getConnection(label), "traci"


@dataclass
class _Npc:
    id: int
    vclass: str
    type_id: str
    extent: tuple[float, float, float]
    color: tuple[float, float, float]


@dataclass
class _Approach:
    """One signalised incoming edge of a SUMO traffic-light junction (static geometry + link indices)."""

    id: int
    tls: str
    edge: str
    link_idx: np.ndarray  # (L,) int, every controlled link from this edge
    state_idx: np.ndarray  # (S,) int, the links whose signal is shown (straight ones when there are any)
    x: float
    y: float
    z: float
    yaw: float
    stop_line: tuple[tuple[float, float], tuple[float, float]]
    lane_yaw: float


@dataclass
class _Held:
    """A traffic light taken off its programme (frozen or state set by a scenario)."""

    program: str
    phase: int
    remaining: float  # s left in `phase` when it was taken over
    release_time: float  # sim time to resume the programme at the next phase (when not frozen)


def _spawn_points(shapes: list[np.ndarray], spacing: float, margin: float) -> tuple[np.ndarray, ...]:
    """Candidate points every `spacing` m along each lane shape (CARLA coords), `margin` m from lane ends.

    Returns (lane_index (P,), pos_along_lane (P,), xy (P, 2)).
    """
    lane_idx, pos, xy = [], [], []
    for i, s in enumerate(shapes):
        seg = np.hypot(*np.diff(s, axis=0).T)  # (K-1,)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        if cum[-1] < 2 * margin + 1.0:
            continue
        t = np.arange(margin, cum[-1] - margin, spacing)
        lane_idx.append(np.full(len(t), i))
        pos.append(t)
        xy.append(np.stack([np.interp(t, cum, s[:, 0]), np.interp(t, cum, s[:, 1])], axis=1))
    if not lane_idx:
        return np.zeros(0, int), np.zeros(0), np.zeros((0, 2))
    return np.concatenate(lane_idx), np.concatenate(pos), np.concatenate(xy)


def _spawn_directions(shapes: list[np.ndarray], lane_idx: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """(P, 2) unit travel directions of the lanes at spawn points (`_spawn_points`' lane_idx and pos)."""
    out = np.zeros((len(pos), 2))
    for i, s in enumerate(shapes):
        rows = np.nonzero(lane_idx == i)[0]
        if len(rows) == 0:
            continue
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(s, axis=0).T))])  # (K,)
        seg = np.clip(np.searchsorted(cum, pos[rows], side="right") - 1, 0, len(s) - 2)  # (R,)
        d = s[seg + 1] - s[seg]  # (R, 2)
        out[rows] = d / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    return out


def _leads_into(xy: np.ndarray, direction: np.ndarray, speed: np.ndarray, ego: np.ndarray) -> np.ndarray:
    """(C,) whether a vehicle departing at `xy` (C, 2) along `direction` (C, 2) at `speed` (C,) m/s would come up
    behind the ego before it could stop: the ego ahead on its line (within `_SPAWN_EGO_LATERAL_M`) closer than
    `_EGO_CLEARANCE` plus its reaction and braking distance."""
    rel = ego[None, :] - xy  # (C, 2)
    along = np.sum(rel * direction, axis=1)  # (C,)
    lateral = np.abs(rel[:, 0] * direction[:, 1] - rel[:, 1] * direction[:, 0])  # (C,)
    need = _EGO_CLEARANCE + speed * _YIELD_REACTION_S + speed**2 / (2.0 * _YIELD_DECEL)  # (C,)
    return (along > 0.0) & (along < need) & (lateral < _SPAWN_EGO_LATERAL_M)


_LANE_SPEED_RE = re.compile(r"<speed\s+sOffset=")


def map_has_lane_speeds(xodr_path: Path) -> bool:
    """True when the OpenDRIVE file gives lane speed limits (`<lane>...<speed sOffset= max= unit=/>`), which
    netconvert turns into SUMO lane speeds (a road <type>'s speed it does not read)."""
    return _LANE_SPEED_RE.search(xodr_path.read_text(encoding="utf-8", errors="replace")) is not None


def _wrap_deg(a: float) -> float:
    return (a + 180.0) % 360.0 - 180.0


class TrafficSim:
    """SUMO NPC vehicles, pedestrians and traffic lights on one OpenDRIVE town (CARLA world frame in/out).

    Per tick: `set_ego(pose, speed)` (optional but expected), `step()`, then `actors()` and
    `traffic_lights()`. Same xodr + config (seed) + ego inputs -> identical actor states.
    """

    def __init__(
        self,
        xodr_path: Path,
        config: TrafficConfig,
        cache_dir: Path | None = None,
        first_actor_id: int = 100_000,
    ) -> None:
        global _LIVE
        for name in ("vehicles", "walkers"):
            v = getattr(config, name)
            if not isinstance(v, int) or v < 0:
                raise TrafficError(f"TrafficConfig.{name} must be an int >= 0, got {v!r}")
        if not 0.0 < config.speed_fraction <= 2.0:
            raise TrafficError(
                f"TrafficConfig.speed_fraction must be in (0, 2], got {config.speed_fraction!r}"
            )
        if not config.speed_limit > 0:
            raise TrafficError(f"TrafficConfig.speed_limit must be > 0 m/s, got {config.speed_limit!r}")
        if not config.radius > 0:
            raise TrafficError(f"TrafficConfig.radius must be > 0, got {config.radius!r}")
        if config.max_vehicles_per_km is not None and not config.max_vehicles_per_km > 0:
            raise TrafficError(
                f"TrafficConfig.max_vehicles_per_km must be > 0 or None, got {config.max_vehicles_per_km!r}"
            )
        self.config = config
        self.net_path = convert_network(Path(xodr_path), cache_dir)
        # A map whose lanes carry OpenDRIVE <speed> records (the generated towns) gives every SUMO lane its limit,
        # and NPCs drive speed_fraction of it, as CARLA's Traffic Manager drives a fraction of each road's sign.
        # Other maps (CARLA's towns give road-type speeds, which netconvert ignores) keep `speed_limit` everywhere.
        self.lane_limits = map_has_lane_speeds(Path(xodr_path))
        self.coords = SumoCoords.from_net_file(self.net_path)
        self._rng = np.random.default_rng(config.seed)
        args = ["sumo", "-n", str(self.net_path), "-a", str(_NPC_TYPES_FILE)]
        args += ["--seed", str(int(config.seed) % (2**31))]
        for key, value in _SUMO_OPTIONS.items():
            args += [key, value]
        self._sumo, self.backend = _start_sumo(args, self.net_path)
        if self.backend == "libsumo":
            _LIVE = self
        self._closed = False
        try:
            self._setup(first_actor_id)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ setup
    def _setup(self, first_actor_id: int) -> None:
        self._next_id = first_actor_id
        self._tick = 0
        self._route_seq = 0
        self._ego_pose: Pose | None = None
        self._ego_speed = 0.0
        self._walker_prev_ego_speed = 0.0  # the ego speed the walkers saw on the previous step
        self._ego_in_sumo = False
        self._vehicles: dict[str, _Npc] = {}  # SUMO id -> NPC, inserted or pending
        self._walkers: dict[str, _Npc] = {}
        self._retry_tick = 0  # no spawning before this tick (after a spawn attempt fell short)
        # SUMO id -> (tick added, x, y) of vehicles SUMO has not inserted yet
        self._pending: dict[str, tuple[int, float, float]] = {}
        self._define_types()
        self._read_network()
        self._read_traffic_lights()
        self._frozen = False
        self._held: dict[str, _Held] = {}
        self._shapes: dict[str, np.ndarray] = {}  # lane id -> (K, 2) CARLA-frame centre line
        self._yielding: set[str] = set()  # NPCs braking for the ego (their speed is ours until released)
        self._lane_held: dict[str, int] = {}  # NPCs alongside the ego kept in their lane -> their lane-change mode
        self._yielding_since: dict[str, int] = {}  # tick each of them began to
        self._waiting_walkers: set[str] = set()  # pedestrians standing for the moving ego (ditto)

    def _define_types(self) -> None:
        vt = self._sumo.vehicletype
        for vclass, spec in VEHICLE_CLASSES.items():
            ext = DEFAULT_EXTENTS[vclass]
            tid = f"occvla_{vclass}"
            vt.copy(_NPC_BASE_TYPE, tid)
            vt.setVehicleClass(tid, spec.sumo_vclass)
            vt.setShapeClass(tid, spec.sumo_vclass)
            vt.setLength(tid, 2 * ext[0])
            vt.setWidth(tid, 2 * ext[1])
            vt.setHeight(tid, 2 * ext[2])
            if self.lane_limits:  # each lane's own limit (SUMO: lane speed x speedFactor), as the TM per sign
                vt.setMaxSpeed(tid, spec.max_speed)
                vt.setSpeedFactor(tid, self.config.speed_fraction)
                vt.setSpeedDeviation(tid, 0.0)
            else:  # CARLA's default limit everywhere
                vt.setMaxSpeed(tid, min(spec.max_speed, self.config.speed_limit * self.config.speed_fraction))
            vt.setAccel(tid, spec.accel)
            vt.setDecel(tid, spec.decel)
            vt.setMinGap(tid, spec.min_gap)
        vt.copy("DEFAULT_VEHTYPE", _EGO_TYPE)
        vt.setLength(_EGO_TYPE, 2 * EGO_EXTENT[0])
        vt.setWidth(_EGO_TYPE, 2 * EGO_EXTENT[1])
        vt.setHeight(_EGO_TYPE, 2 * EGO_EXTENT[2])
        vt.setMaxSpeed(_EGO_TYPE, 100.0)
        vt.setMinGap(_EGO_TYPE, 0.5)
        ped = DEFAULT_EXTENTS["pedestrian"]
        vt.copy("DEFAULT_PEDTYPE", _WALKER_TYPE)
        vt.setLength(_WALKER_TYPE, 2 * ped[0])
        vt.setWidth(_WALKER_TYPE, 2 * ped[1])
        vt.setHeight(_WALKER_TYPE, 2 * ped[2])
        vt.setMaxSpeed(_WALKER_TYPE, WALKER_SPEED)

    def _read_network(self) -> None:
        """Lane tables, successor edges and candidate spawn points (all from libsumo, CARLA coords)."""
        edges = sorted(e for e in self._sumo.edge.getIDList() if not e.startswith(":"))
        if not edges:
            raise TrafficError(f"SUMO network {self.net_path} has no edges")
        veh_lanes: list[str] = []
        ped_lanes: list[str] = []
        succ: dict[str, list[str]] = {}
        self._lane_succ: dict[str, list[str]] = {}
        for e in edges:
            nxt: list[str] = []
            for i in range(self._sumo.edge.getLaneNumber(e)):
                lane = f"{e}_{i}"
                allowed = self._sumo.lane.getAllowed(lane)
                if allowed == ("pedestrian",):
                    ped_lanes.append(lane)
                    continue
                if "passenger" not in allowed:  # bike-only lanes, closed shoulders (allowed == ())
                    continue
                veh_lanes.append(lane)
                lane_next = []
                for link in self._sumo.lane.getLinks(lane):
                    to_edge = self._sumo.lane.getEdgeID(link[0])
                    if link[6] != "t" and not to_edge.startswith(":") and to_edge not in lane_next:
                        lane_next.append(to_edge)
                self._lane_succ[lane] = lane_next
                nxt += [t for t in lane_next if t not in nxt]
            succ[e] = sorted(nxt)
        self._succ = succ
        self._veh_lanes = veh_lanes
        self._ped_lanes = ped_lanes
        self._veh_sp = _spawn_points([self._lane_shape(ln) for ln in veh_lanes], _SPAWN_SPACING, 6.0)
        self._veh_sp_dir = _spawn_directions(
            [self._lane_shape(ln) for ln in veh_lanes], self._veh_sp[0], self._veh_sp[1]
        )  # (P, 2)
        # m/s an NPC departs at on each lane ("max": the lane's speed x speedFactor, or the capped type speed)
        fraction = self.config.speed_fraction
        self._veh_lane_speed = np.array(
            [
                self._sumo.lane.getMaxSpeed(ln) * fraction
                if self.lane_limits
                else self.config.speed_limit * fraction
                for ln in veh_lanes
            ]
        )  # (L,)
        # one point per metre of driving lane: lane length within the radius = points within it
        self._lane_metres = _spawn_points([self._lane_shape(ln) for ln in veh_lanes], 1.0, 0.0)[2]  # (L, 2)
        self._vehicle_target = self._vehicle_cap()
        self._ped_sp = _spawn_points([self._lane_shape(ln) for ln in ped_lanes], 4.0, 1.0)
        self._crosswalks = self._read_crosswalks()

    def _read_crosswalks(self) -> list[np.ndarray]:
        """The network's pedestrian crossings (internal edges ':<node>_c<k>') as (4, 2) CARLA-frame corners."""
        out: list[np.ndarray] = []
        for e in sorted(self._sumo.edge.getIDList()):
            if not _CROSSING_RE.match(e):
                continue
            lane = f"{e}_0"
            shape = self._lane_shape(lane)  # (K, 2) centre line across the road
            a, b = shape[0], shape[-1]
            d = b - a
            n = float(np.hypot(*d))
            if n < 1e-6:
                continue
            half = 0.5 * self._sumo.lane.getWidth(lane) * np.array([-d[1], d[0]]) / n  # (2,) across the walk
            out.append(np.stack([a + half, b + half, b - half, a - half]))
        return out

    def crosswalks(self) -> list[np.ndarray]:
        """(4, 2) corner polygons of every pedestrian crossing, CARLA frame (the list is shared: do not mutate)."""
        return self._crosswalks

    def _lane_shape(self, lane: str) -> np.ndarray:
        """(K, 2) lane centre line in CARLA coords."""
        return self.coords.to_carla_xy(np.array(self._sumo.lane.getShape(lane), np.float64))

    def _read_traffic_lights(self) -> None:
        """Group each tls's controlled links by incoming edge: one light head per approach."""
        self._approaches: list[_Approach] = []
        self._tls_ids = sorted(self._sumo.trafficlight.getIDList())
        self._tls_phases: dict[str, int] = {}
        for tls in self._tls_ids:
            prog = self._sumo.trafficlight.getProgram(tls)
            logics = [lg for lg in self._sumo.trafficlight.getAllProgramLogics(tls) if lg.programID == prog]
            self._tls_phases[tls] = len(logics[0].phases) if logics else 1
            groups: dict[str, tuple[list[int], list[int], list[str]]] = {}
            for idx, links in enumerate(self._sumo.trafficlight.getControlledLinks(tls)):
                for in_lane, _out_lane, via in links:
                    if in_lane.startswith(":") or in_lane not in self._lane_succ:
                        continue  # pedestrian crossings (from walking areas) and non-vehicle lanes
                    edge = self._sumo.lane.getEdgeID(in_lane)
                    all_idx, straight_idx, lanes = groups.setdefault(edge, ([], [], []))
                    if idx not in all_idx:
                        all_idx.append(idx)
                    if in_lane not in lanes:
                        lanes.append(in_lane)
                    dirs = [lk[6] for lk in self._sumo.lane.getLinks(in_lane) if lk[4] == via]
                    if dirs and dirs[0] == "s" and idx not in straight_idx:
                        straight_idx.append(idx)
            for edge in sorted(groups):
                all_idx, straight_idx, lanes = groups[edge]
                self._approaches.append(
                    self._approach_geometry(
                        len(self._approaches), tls, edge, all_idx, straight_idx or all_idx, lanes
                    )
                )

    def _approach_geometry(
        self, aid: int, tls: str, edge: str, all_idx: list[int], state_idx: list[int], lanes: list[str]
    ) -> _Approach:
        ends, dirs, widths = [], [], []
        for ln in lanes:
            s = self._lane_shape(ln)  # (K, 2)
            d = s[-1] - s[-2]
            dirs.append(d / max(np.hypot(*d), 1e-9))
            ends.append(s[-1])
            widths.append(self._sumo.lane.getWidth(ln))
        d = np.mean(dirs, axis=0)
        d /= max(np.hypot(*d), 1e-9)
        n = np.array([-d[1], d[0]])  # right of travel in CARLA's frame (y south)
        ends_a = np.array(ends)  # (L, 2)
        c = ends_a.mean(axis=0)
        lat = (ends_a - c) @ n  # (L,)
        w = np.array(widths)
        s_min, s_max = float((lat - w / 2).min()), float((lat + w / 2).max())
        a, b = c + n * s_min, c + n * s_max
        pole = c + n * (s_max + 1.0) - d * 1.0
        lane_yaw = math.degrees(math.atan2(d[1], d[0]))
        return _Approach(
            id=aid,
            tls=tls,
            edge=edge,
            link_idx=np.array(sorted(all_idx)),
            state_idx=np.array(sorted(state_idx)),
            x=float(pole[0]),
            y=float(pole[1]),
            z=0.0,
            yaw=_wrap_deg(lane_yaw + 180.0),
            stop_line=((float(a[0]), float(a[1])), (float(b[0]), float(b[1]))),
            lane_yaw=lane_yaw,
        )

    # ------------------------------------------------------------------ per tick
    def set_ego(self, pose: Pose, speed: float) -> None:
        """Where the ego is (CARLA world frame, box-centre origin) and its speed; applied at the next step().

        The first call adds the ego to SUMO (id 'ego', Lincoln MKZ size); later calls move it there
        (moveToXY, keepRoute=2: any lane or off the road), so NPCs follow, brake behind and yield to it.
        """
        self._check_open()
        if not all(math.isfinite(v) for v in (pose.x, pose.y, pose.yaw, speed)):
            raise TrafficError(f"ego pose/speed must be finite, got {pose!r}, speed={speed!r}")
        self._ego_pose = pose
        self._ego_speed = float(speed)

    def step(self) -> None:
        """Advance SUMO by 0.05 s, then keep the NPC population up around the ego."""
        self._check_open()
        if self._ego_pose is not None:
            self._push_ego()
            self._yield_to_ego()
            self._hold_lanes_beside_ego()
            self._walkers_yield_to_ego()
        # population changes go in before the SUMO step, so removed and replacement NPCs swap in one tick
        if self._tick % _MAINTAIN_EVERY == 0:
            self._maintain(initial=self._tick == 0)
        elif self._pending or self._population_short():
            self._drop_stale_pending()
            self._top_up(initial=False)
        self._sumo.simulationStep()
        self._tick += 1
        self._after_step()
        if self._held and not self._frozen:
            self._release_lights()

    def _push_ego(self) -> None:
        p = self._ego_pose
        yaw = math.radians(p.yaw)
        fx = p.x + EGO_EXTENT[0] * math.cos(yaw)  # SUMO positions a vehicle by its front bumper
        fy = p.y + EGO_EXTENT[0] * math.sin(yaw)
        sx, sy = self.coords.to_sumo(fx, fy)
        angle = self.coords.to_sumo_angle(p.yaw)
        if not self._ego_in_sumo:
            edge, _pos, _lane = self._sumo.simulation.convertRoad(sx, sy, False, "passenger")
            rid = self._new_route_id()
            self._sumo.route.add(rid, [edge])
            self._sumo.vehicle.add(EGO_SUMO_ID, rid, typeID=_EGO_TYPE, depart="now")
            self._sumo.vehicle.setSpeedMode(EGO_SUMO_ID, 0)
            self._sumo.vehicle.setLaneChangeMode(EGO_SUMO_ID, 0)
            self._ego_in_sumo = True
        # SUMO would otherwise derive the speed from the displacement (huge on the first tick after insertion)
        self._sumo.vehicle.setSpeed(EGO_SUMO_ID, max(self._ego_speed, 0.0))
        self._sumo.vehicle.moveToXY(
            EGO_SUMO_ID, "", -1, sx, sy, angle=angle, keepRoute=2, matchThreshold=100.0
        )

    def _yield_to_ego(self) -> None:
        """Collision stage of CARLA's Traffic Manager: an NPC vehicle with the ego's box in the lane ahead of it
        brakes to stop short of it.

        SUMO's own car following only sees the ego as a leader on the NPC's lane; across a junction (the ego
        mid-turn on an internal lane SUMO does not match to the NPC's path) it would drive into the ego. The check
        is a straight corridor ahead of each NPC, as long as its stopping distance plus a standoff.
        """
        p = self._ego_pose
        braking: set[str] = set()
        results = self._sumo.vehicle.getAllSubscriptionResults()
        ids = [k for k in results if k in self._vehicles]
        if p is not None and ids:
            speed = np.array([results[k][libsumo.VAR_SPEED] for k in ids], np.float64)  # (N,)
            along, lat = self._ego_box_seen_from(results, ids)  # (N, 4): ahead of / left of each NPC's front
            half_w = np.array([self._vehicles[k].extent[1] for k in ids]) + _YIELD_LATERAL_MARGIN_M  # (N,)
            reach = (
                speed * _YIELD_REACTION_S + speed**2 / (2.0 * _YIELD_DECEL) + _YIELD_STANDOFF_M + 1.0
            )  # (N,)
            # Only an ego wholly ahead of the NPC's front: one beside it (the NPC already crossing in front of the
            # ego) is the ego's to wait for, else both would wait for each other.
            hit = (
                (along.min(1) >= -0.5)
                & (along.min(1) <= reach)
                & (lat.max(1) >= -half_w)
                & (lat.min(1) <= half_w)
            )  # (N,)
            allowed = np.sqrt(2.0 * _YIELD_DECEL * np.maximum(along.min(1) - _YIELD_STANDOFF_M, 0.0))  # (N,)
            # else SUMO's own acceleration keeps it below the limit anyway
            for i in np.nonzero(hit & (allowed < speed + 0.5))[0]:
                if not self._path_meets_ego(ids[i], float(reach[i]), float(half_w[i])):
                    continue  # turning away: its lanes pass the ego (held, it waited for the ego and the ego for it)
                self._sumo.vehicle.setSpeed(ids[i], float(allowed[i]))
                braking.add(ids[i])
        for vid in self._yielding - braking:
            if vid in self._vehicles and vid not in self._pending:
                self._sumo.vehicle.setSpeed(vid, -1.0)  # back to SUMO's own speed control
        self._yielding = braking
        self._yielding_since = {vid: self._yielding_since.get(vid, self._tick) for vid in braking}

    def _hold_lanes_beside_ego(self) -> None:
        """NPCs alongside the ego keep their lane (no lane change of their own) while it is there.

        SUMO places the ego on one lane by its front bumper: on a junction's internal lane while its body still
        stands on the approach, on one of two lanes while it changes lane. Its lane-change model then sees room
        where the ego's body is and moves an NPC into its side (OccGen-13 route 27: an NPC that stopped beside the
        ego at a junction entry swung into it as the ego crept on). Alongside: the NPC's length plus
        `_BESIDE_MARGIN_M` each way overlaps the ego's box, sides less than `_BESIDE_LATERAL_M` apart.
        """
        held: set[str] = set()
        results = self._sumo.vehicle.getAllSubscriptionResults()
        ids = [k for k in results if k in self._vehicles and k not in self._pending]
        if self._ego_pose is not None and ids:
            along, lat = self._ego_box_seen_from(results, ids)  # (N, 4) each
            length = np.array([2.0 * self._vehicles[k].extent[0] for k in ids])  # (N,)
            half_w = np.array([self._vehicles[k].extent[1] for k in ids])  # (N,)
            beside = (along.max(1) > -length - _BESIDE_MARGIN_M) & (along.min(1) < _BESIDE_MARGIN_M)  # (N,)
            side_gap = np.where(lat.min(1) > 0.0, lat.min(1), np.where(lat.max(1) < 0.0, -lat.max(1), 0.0))
            beside &= side_gap - half_w < _BESIDE_LATERAL_M
            held = {ids[i] for i in np.nonzero(beside)[0]}
        for vid in held - self._lane_held.keys():
            with contextlib.suppress(*_CALL_ERRORS):
                self._lane_held[vid] = self._sumo.vehicle.getLaneChangeMode(vid)
                self._sumo.vehicle.setLaneChangeMode(vid, 0)  # no lane changes but TraCI's
        for vid in self._lane_held.keys() - held:
            mode = self._lane_held.pop(vid)
            if vid in self._vehicles and vid not in self._pending:
                with contextlib.suppress(*_CALL_ERRORS):
                    self._sumo.vehicle.setLaneChangeMode(vid, mode)

    def _path_meets_ego(self, vid: str, reach: float, half_w: float) -> bool:
        """Whether the NPC's own lanes ahead (the rest of its lane, then the lanes of its next links), `reach`
        metres of them, come within `half_w` of the ego's box. The straight corridor of `_yield_to_ego` points
        off the road for an NPC in a turn: one turning right beside a waiting ego was held for it."""
        p = self._ego_pose
        lane = self._sumo.vehicle.getLaneID(vid)
        if p is None or not lane:
            return True
        shape = self._lane_shape_cached(lane)
        pos = self._sumo.vehicle.getLanePosition(vid)
        seg = np.hypot(*np.diff(shape, axis=0).T)  # (K-1,)
        cum = np.concatenate([[0.0], np.cumsum(seg)])  # (K,)
        scale = cum[-1] / max(self._sumo.lane.getLength(lane), 1e-6)  # shapes and lane lengths may differ
        start = min(pos * scale, cum[-1])
        pts = [np.array([np.interp(start, cum, shape[:, 0]), np.interp(start, cum, shape[:, 1])])[None]]
        pts.append(shape[cum > start])
        length = cum[-1] - start
        for nxt in self._sumo.vehicle.getNextLinks(vid):
            if length >= reach:
                break
            for ln in (
                nxt[4],
                nxt[0],
            ):  # the internal lane through the junction ('via'), then the lane after it
                if ln:
                    more = self._lane_shape_cached(ln)
                    pts.append(more)
                    length += float(np.hypot(*np.diff(more, axis=0).T).sum())
        path = np.concatenate(pts)  # (P, 2) CARLA frame, from the NPC's front on
        # sample every 0.5 m up to `reach`; distance of each sample to the ego's box
        d = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])  # (P,)
        s = np.arange(0.0, min(reach, d[-1]) + 1e-9, 0.5)  # (S,)
        xy = np.stack([np.interp(s, d, path[:, 0]), np.interp(s, d, path[:, 1])], axis=1)  # (S, 2)
        yaw = math.radians(p.yaw)
        rel = xy - np.array([p.x, p.y])
        fx = np.abs(rel @ np.array([math.cos(yaw), math.sin(yaw)])) - EGO_EXTENT[0]  # (S,)
        fy = np.abs(rel @ np.array([-math.sin(yaw), math.cos(yaw)])) - EGO_EXTENT[1]  # (S,)
        return bool((np.hypot(np.maximum(fx, 0.0), np.maximum(fy, 0.0)) <= half_w).any())

    def _lane_shape_cached(self, lane: str) -> np.ndarray:
        shape = self._shapes.get(lane)
        if shape is None:
            shape = self._shapes[lane] = self._lane_shape(lane)
        return shape

    def _ego_box_seen_from(self, results: dict, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ego box's corners in the frame of each subscribed NPC (vehicle or walker) `ids`: (N, 4) metres
        ahead of its front (SUMO reports fronts) and (N, 4) metres to its left."""
        p = self._ego_pose
        front = self.coords.to_carla_xy(
            np.array([results[k][libsumo.VAR_POSITION3D][:2] for k in ids], np.float64)
        )  # (N, 2) CARLA frame
        angle = np.array([results[k][libsumo.VAR_ANGLE] for k in ids])  # (N,) SUMO degrees
        yaw = np.radians(self.coords.to_carla_yaw(angle))  # (N,)
        ey = math.radians(p.yaw)
        f = np.array([math.cos(ey), math.sin(ey)]) * EGO_EXTENT[0]
        r = np.array([-math.sin(ey), math.cos(ey)]) * EGO_EXTENT[1]
        ego = np.array([p.x, p.y]) + np.array([f + r, f - r, -f - r, -f + r])  # (4, 2) ego box corners
        fwd = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)  # (N, 2)
        rel = ego[None, :, :] - front[:, None, :]  # (N, 4, 2)
        along = np.einsum("nkd,nd->nk", rel, fwd)  # (N, 4)
        lat = np.einsum("nkd,nd->nk", rel, np.stack([-fwd[:, 1], fwd[:, 0]], axis=1))  # (N, 4)
        return along, lat

    def _walkers_yield_to_ego(self) -> None:
        """Pedestrians stand while the moving ego's box is in a short corridor ahead of them (see
        `_WALKER_YIELD_MARGIN_M`): without it a pedestrian whose crossing turns green steps into the side of a
        car still clearing the junction."""
        p = self._ego_pose
        hold: set[str] = set()
        results = self._sumo.person.getAllSubscriptionResults()
        ids = [k for k in results if k in self._walkers]
        moving = max(self._ego_speed, self._walker_prev_ego_speed) >= _WALKER_YIELD_EGO_SPEED
        self._walker_prev_ego_speed = self._ego_speed
        if p is not None and ids and moving:
            along, lat = self._ego_box_seen_from(results, ids)  # (N, 4) each
            half_w = DEFAULT_EXTENTS["pedestrian"][1] + _WALKER_YIELD_MARGIN_M
            reach = WALKER_SPEED * _WALKER_YIELD_REACH_S
            # the box overlaps the corridor [0, reach] x [-half_w, half_w] (corners on both sides count)
            hit = (
                (along.max(1) >= 0.0)
                & (along.min(1) <= reach)
                & (lat.max(1) >= -half_w)
                & (lat.min(1) <= half_w)
            )
            for i in np.nonzero(hit)[0]:
                self._sumo.person.setSpeed(ids[i], 0.0)
                hold.add(ids[i])
        for pid in self._waiting_walkers - hold:
            if pid in self._walkers:
                self._sumo.person.setSpeed(pid, -1.0)  # back to its own speed
        self._waiting_walkers = hold

    def _after_step(self) -> None:
        for vid in self._sumo.simulation.getDepartedIDList():
            if vid in self._vehicles:
                self._sumo.vehicle.subscribe(vid, _SUBSCRIBED)
                self._pending.pop(vid, None)
        for pid in self._sumo.simulation.getDepartedPersonIDList():
            if pid in self._walkers:
                self._sumo.person.subscribe(pid, _SUBSCRIBED)
        for vid in self._sumo.simulation.getArrivedIDList():
            if vid == EGO_SUMO_ID:
                self._ego_in_sumo = False
            self._vehicles.pop(vid, None)
        for pid in self._sumo.simulation.getArrivedPersonIDList():
            self._walkers.pop(pid, None)

    def _population_short(self) -> bool:
        return len(self._vehicles) < self._vehicle_target or len(self._walkers) < self.config.walkers

    def _vehicle_cap(self) -> int:
        """config.vehicles, capped by max_vehicles_per_km x the driving-lane km within the radius of the ego."""
        density = self.config.max_vehicles_per_km
        if density is None:
            return self.config.vehicles
        ego = self._ego_xy()
        pts = self._lane_metres
        metres = (
            len(pts) if ego is None else int(np.count_nonzero(np.hypot(*(pts - ego).T) <= self.config.radius))
        )
        return min(self.config.vehicles, int(round(density * metres / 1000.0)))

    @property
    def vehicle_target(self) -> int:
        """How many NPC vehicles are kept around the ego now (config.vehicles after the density cap)."""
        return self._vehicle_target

    # ------------------------------------------------------------------ population
    def _ego_xy(self) -> np.ndarray | None:
        return None if self._ego_pose is None else np.array([self._ego_pose.x, self._ego_pose.y])

    def _maintain(self, initial: bool) -> None:
        """Every 0.5 s: drop NPCs outside the radius and long-stuck ones, extend routes, top up."""
        ego = self._ego_xy()
        if not initial:
            r2 = self.config.radius**2
            for vid, res in self._sumo.vehicle.getAllSubscriptionResults().items():
                if vid not in self._vehicles:
                    continue
                d2 = math.inf
                if ego is not None:
                    x, y = self.coords.to_carla(*res[libsumo.VAR_POSITION3D][:2])
                    d2 = (x - ego[0]) ** 2 + (y - ego[1]) ** 2
                wait = res[libsumo.VAR_WAITING_TIME]
                stuck = wait > _STUCK_SECONDS or (
                    wait > _EGO_DEADLOCK_SECONDS and self._ego_deadlock(vid, res)
                )
                if (ego is not None and d2 > r2) or stuck:
                    self._remove_vehicle(vid)
            if ego is not None:
                for pid, res in self._sumo.person.getAllSubscriptionResults().items():
                    if pid in self._walkers:
                        x, y = self.coords.to_carla(*res[libsumo.VAR_POSITION3D][:2])
                        if (x - ego[0]) ** 2 + (y - ego[1]) ** 2 > r2:
                            # libsumo errors on every later step for a removed id still subscribed
                            self._sumo.person.unsubscribe(pid)
                            self._sumo.person.remove(pid)
                            del self._walkers[pid]
        self._drop_stale_pending()
        if not initial:
            self._extend_routes()
        self._vehicle_target = self._vehicle_cap()
        self._top_up(initial)

    def _drop_stale_pending(self) -> None:
        for vid, (t0, _, _) in list(self._pending.items()):
            if self._tick - t0 > _PENDING_TICKS:
                self._remove_vehicle(vid)

    def _ego_deadlock(self, vid: str, res: dict) -> bool:
        """The NPC has been held for the ego for _EGO_DEADLOCK_SECONDS, inside a junction, pointing across it."""
        since = self._yielding_since.get(vid)
        if since is None or (self._tick - since) * FIXED_DELTA_SECONDS < _EGO_DEADLOCK_SECONDS:
            return False
        if not self._sumo.vehicle.getLaneID(vid).startswith(":") or self._ego_pose is None:
            return False
        yaw = self.coords.to_carla_yaw(res[libsumo.VAR_ANGLE])
        diff = abs((yaw - self._ego_pose.yaw + 180.0) % 360.0 - 180.0)
        return diff > _EGO_DEADLOCK_MIN_ANGLE_DEG

    def _remove_vehicle(self, vid: str) -> None:
        if vid not in self._pending:
            # libsumo errors on every later step for a removed id still subscribed
            self._sumo.vehicle.unsubscribe(vid)
        self._sumo.vehicle.remove(vid)
        self._pending.pop(vid, None)
        del self._vehicles[vid]

    def _extend_routes(self) -> None:
        """Append random-walk edges to vehicles near the end of their route, so they drive on instead of vanishing."""
        for vid in self._vehicles:
            if vid in self._pending:
                continue
            if self._sumo.vehicle.getRoadID(vid).startswith(":"):
                continue
            route = self._sumo.vehicle.getRoute(vid)
            idx = self._sumo.vehicle.getRouteIndex(vid)
            if len(route) - idx > 3:
                continue
            tail = self._random_walk(route[-1], _ROUTE_HOPS)
            if len(tail) > 1:
                with contextlib.suppress(*_CALL_ERRORS):  # e.g. mid lane change onto another edge
                    self._sumo.vehicle.setRoute(vid, list(route[idx:]) + tail[1:])

    def _candidates(self, xy: np.ndarray, initial: bool) -> np.ndarray:
        """Spawn-point indices allowed now, in the order to try them (shuffled within each tier).

        Within the radius and clear of the ego. After start-up, points in the outer ring of the radius come
        first (new NPCs should not appear in front of the cameras), then nearer ones where the ring is
        sparse (the ego near the edge of the map).
        """
        ego = self._ego_xy()
        if ego is None:
            return self._rng.permutation(len(xy))
        d = np.hypot(*(xy - ego).T)  # (P,)
        r = self.config.radius
        inside = (d <= r) & (d >= _EGO_CLEARANCE)
        if initial:
            return self._rng.permutation(np.flatnonzero(inside))
        ring = inside & (d >= max(0.6 * r, r - 40.0))
        far = inside & ~ring & (d >= min(40.0, 0.6 * r))
        near = inside & ~ring & ~far
        return np.concatenate([self._rng.permutation(np.flatnonzero(m)) for m in (ring, far, near)])

    def _top_up(self, initial: bool) -> None:
        """Spawn up to the configured counts. Where the roads near the ego cannot take them all (the map's
        edge), the next try waits for the next maintenance tick instead of searching again every tick."""
        if self._tick < self._retry_tick:
            return
        need_v = self._vehicle_target - len(self._vehicles)
        if need_v > 0 and len(self._veh_sp[0]):
            self._spawn_vehicles(need_v, initial)
        need_w = self.config.walkers - len(self._walkers)
        if need_w > 0 and len(self._ped_sp[0]):
            self._spawn_walkers(need_w, initial)
        if self._population_short():
            self._retry_tick = (self._tick // _MAINTAIN_EVERY + 1) * _MAINTAIN_EVERY

    def _new_route_id(self) -> str:
        self._route_seq += 1
        return f"occvla_r{self._route_seq}"

    def _new_npc(self, vclass: str, type_id: str, palette: np.ndarray) -> _Npc:
        color = palette[self._rng.integers(len(palette))] * self._rng.uniform(0.85, 1.05)
        npc = _Npc(
            self._next_id,
            vclass,
            type_id,
            DEFAULT_EXTENTS[vclass],
            tuple(float(c) for c in np.clip(color, 0.0, 1.0)),
        )
        self._next_id += 1
        return npc

    def _random_walk(self, start: str, hops: int, first: list[str] | None = None) -> list[str]:
        route = [start]
        options = first if first is not None else self._succ.get(start, [])
        for _ in range(hops):
            if not options:
                break
            nxt = options[int(self._rng.integers(len(options)))]
            route.append(nxt)
            options = self._succ.get(nxt, [])
        return route

    def _spawn_vehicles(self, n: int, initial: bool) -> None:
        lane_idx, pos, xy = self._veh_sp
        cand = self._candidates(xy, initial)
        if len(cand) == 0:
            return
        subs = [
            (r, self._vehicles[k])
            for k, r in self._sumo.vehicle.getAllSubscriptionResults().items()
            if k in self._vehicles
        ]
        front = self.coords.to_carla_xy(
            np.array([r[libsumo.VAR_POSITION3D][:2] for r, _ in subs]).reshape(-1, 2)
        )
        yaw = np.radians(np.array([r[libsumo.VAR_ANGLE] for r, _ in subs]) - 90.0)  # (M,) CARLA yaw
        length = np.array([2.0 * npc.extent[0] for _, npc in subs])  # (M,)
        rear = front - length[:, None] * np.stack([np.cos(yaw), np.sin(yaw)], axis=1)
        live = np.concatenate([front, rear])  # (2M, 2) both bumpers of live NPC vehicles
        if self._ego_pose is not None:
            live = np.concatenate([live, [[self._ego_pose.x, self._ego_pose.y]]])
        live = np.concatenate([live, np.array([p[1:] for p in self._pending.values()]).reshape(-1, 2)])
        if len(live):
            d_live = np.min(np.hypot(*(xy[cand, None, :] - live[None]).transpose(2, 0, 1)), axis=1)  # (C,)
            cand = cand[d_live >= _SPAWN_SEPARATION]
        if self._ego_pose is not None and len(cand):
            ego = np.array([self._ego_pose.x, self._ego_pose.y])
            cand = cand[
                ~_leads_into(xy[cand], self._veh_sp_dir[cand], self._veh_lane_speed[lane_idx[cand]], ego)
            ]
        picks: list[int] = []
        for p in cand:  # greedy, in priority order: keep new vehicles on one lane apart
            if len(picks) == n:
                break
            if all(lane_idx[q] != lane_idx[p] or abs(pos[q] - pos[p]) >= _SPAWN_SEPARATION for q in picks):
                picks.append(int(p))
        # front-most first on each lane: SUMO inserts in order and checks a new vehicle against its follower
        picks.sort(key=lambda p: (lane_idx[p], -pos[p]))
        names = list(VEHICLE_CLASSES)
        shares = np.array([VEHICLE_CLASSES[k].share for k in names])
        classes = self._rng.choice(len(names), size=len(picks), p=shares / shares.sum())
        for p, c in zip(picks, classes):
            lane = self._veh_lanes[lane_idx[p]]
            edge, lane_no = lane.rsplit("_", 1)
            route = self._random_walk(edge, _ROUTE_HOPS, first=self._lane_succ.get(lane, []))
            vclass = names[int(c)]
            npc = self._new_npc(vclass, VEHICLE_CLASSES[vclass].type_id, _VEHICLE_COLORS)
            vid = f"npc{npc.id}"
            rid = self._new_route_id()
            try:
                self._sumo.route.add(rid, route)
                self._sumo.vehicle.add(
                    vid,
                    rid,
                    typeID=f"occvla_{vclass}",
                    depart="now",
                    departLane=lane_no,
                    departPos=f"{pos[p]:.2f}",
                    departSpeed="max",
                )
            except _CALL_ERRORS:
                continue
            self._vehicles[vid] = npc
            self._pending[vid] = (self._tick, float(xy[p, 0]), float(xy[p, 1]))

    def _spawn_walkers(self, n: int, initial: bool) -> None:
        lane_idx, pos, xy = self._ped_sp
        cand = self._candidates(xy, initial)
        if len(cand) == 0:
            return
        ego = self._ego_xy()
        dest_pool = (
            np.arange(len(xy))
            if ego is None
            else np.flatnonzero(np.hypot(*(xy - ego).T) <= self.config.radius)
        )
        if len(dest_pool) == 0:
            dest_pool = np.arange(len(xy))
        picks = cand[:n]
        for p in picks:
            edge = self._ped_lanes[lane_idx[p]].rsplit("_", 1)[0]
            edges: list[str] = []
            arrival = 0.0
            for _ in range(4):  # a few destinations; some sidewalks are not connected to each other
                q = dest_pool[int(self._rng.integers(len(dest_pool)))]
                dest = self._ped_lanes[lane_idx[q]].rsplit("_", 1)[0]
                if dest == edge:
                    continue
                try:
                    stages = self._sumo.simulation.findIntermodalRoute(
                        edge,
                        dest,
                        modes="",
                        departPos=float(pos[p]),
                        arrivalPos=float(pos[q]),
                        pType=_WALKER_TYPE,
                    )
                except _CALL_ERRORS:  # e.g. an arrival position past a short edge's end
                    continue
                if stages and stages[0].edges:
                    edges, arrival = list(stages[0].edges), float(pos[q])
                    break
            if not edges:
                continue
            wt = WALKER_TYPE_IDS[int(self._rng.integers(len(WALKER_TYPE_IDS)))]
            npc = self._new_npc("pedestrian", wt, _WALKER_COLORS)
            pid = f"ped{npc.id}"
            try:
                self._sumo.person.add(pid, edge, float(pos[p]), typeID=_WALKER_TYPE)
            except _CALL_ERRORS:
                continue
            try:
                self._sumo.person.appendWalkingStage(pid, edges, arrival)
            except _CALL_ERRORS:
                self._sumo.person.remove(pid)
                continue
            self._walkers[pid] = npc

    # ------------------------------------------------------------------ ground truth
    def actors(self) -> list[ActorState]:
        """Every live NPC (vehicles, then walkers; each ordered by id) in the CARLA world frame.

        (x, y, z) is the box centre on the ground (SUMO reports the front bumper), yaw CARLA degrees,
        (vx, vy) world velocity along the heading.
        """
        self._check_open()
        out: list[ActorState] = []
        for results, table, category in (
            (self._sumo.vehicle.getAllSubscriptionResults(), self._vehicles, "vehicle"),
            (self._sumo.person.getAllSubscriptionResults(), self._walkers, "walker"),
        ):
            ids = [k for k in results if k in table]
            if not ids:
                continue
            npcs = [table[k] for k in ids]
            order = np.argsort([n.id for n in npcs], kind="stable")
            pos = np.array([results[k][libsumo.VAR_POSITION3D] for k in ids], np.float64)  # (N, 3) SUMO
            ang = np.array([results[k][libsumo.VAR_ANGLE] for k in ids], np.float64)  # (N,) SUMO degrees
            spd = np.array([results[k][libsumo.VAR_SPEED] for k in ids], np.float64)  # (N,)
            half_len = np.array([n.extent[0] for n in npcs])  # (N,)
            xy = self.coords.to_carla_xy(pos[:, :2])  # (N, 2) front bumper
            yaw = (ang + 90.0) % 360.0 - 180.0  # CARLA degrees
            c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
            cx, cy = xy[:, 0] - half_len * c, xy[:, 1] - half_len * s  # box centre
            vx, vy = spd * c, spd * s
            for i in order:
                n = npcs[i]
                out.append(
                    ActorState(
                        id=n.id,
                        type_id=n.type_id,
                        category=category,
                        vclass=n.vclass,
                        x=float(cx[i]),
                        y=float(cy[i]),
                        z=float(pos[i, 2]),
                        yaw=float(yaw[i]),
                        extent=n.extent,
                        vx=float(vx[i]),
                        vy=float(vy[i]),
                        color=n.color,
                        source="traffic",
                    )
                )
        return out

    def traffic_lights(self) -> list[TrafficLightState]:
        """One head per signalised incoming approach (SUMO tls links grouped by incoming edge).

        Ids are stable for the town (0..K-1, sorted by SUMO tls id then edge id). The state is that of the
        approach's straight-on links when it has any (else of all its links): Green if any may go, else
        Yellow, else Red ('Off' only when every shown link is off). The stop line spans the approach's
        lanes where they end at the junction; the pole stands 1 m right of the rightmost lane, 1 m before.
        """
        self._check_open()
        states = {tls: self._sumo.trafficlight.getRedYellowGreenState(tls) for tls in self._tls_ids}
        out = []
        for a in self._approaches:
            s = states[a.tls]
            shown = {_SIGNAL_TO_STATE.get(s[i], "Red") for i in a.state_idx if i < len(s)}
            # a head shows Green if any of its shown links may go, then Yellow; Off only if all are off
            st = next((k for k in ("Green", "Yellow", "Red") if k in shown), "Off" if shown else "Red")
            out.append(
                TrafficLightState(
                    id=a.id,
                    state=st,
                    x=a.x,
                    y=a.y,
                    z=a.z,
                    yaw=a.yaw,
                    stop_line=a.stop_line,
                    lane_yaw=a.lane_yaw,
                )
            )
        return out

    # ------------------------------------------------------------------ traffic-light control
    def _take_over(self, tls: str) -> None:
        if tls in self._held:
            return
        now = self._sumo.simulation.getTime()
        remaining = max(self._sumo.trafficlight.getNextSwitch(tls) - now, 0.0)
        self._held[tls] = _Held(
            self._sumo.trafficlight.getProgram(tls),
            self._sumo.trafficlight.getPhase(tls),
            remaining,
            now + remaining,
        )
        self._sumo.trafficlight.setRedYellowGreenState(
            tls, self._sumo.trafficlight.getRedYellowGreenState(tls)
        )

    def set_traffic_light_state(self, tl_id: int, state: str) -> None:
        """Force one light ('Red' | 'Yellow' | 'Green' | 'Off').

        As carla.TrafficLight.set_state: unless lights are frozen, its junction resumes the programme
        (at the next phase) when the phase that was running at the time of the call would have ended.
        """
        self._check_open()
        if not (isinstance(tl_id, int) and 0 <= tl_id < len(self._approaches)):
            raise TrafficError(f"unknown traffic light id {tl_id!r} (valid: 0..{len(self._approaches) - 1})")
        if state not in _STATE_TO_SIGNAL:
            raise TrafficError(f"unknown traffic light state {state!r} (valid: {sorted(_STATE_TO_SIGNAL)})")
        a = self._approaches[tl_id]
        self._take_over(a.tls)
        cur = list(self._sumo.trafficlight.getRedYellowGreenState(a.tls))
        for i in a.link_idx:
            cur[i] = _STATE_TO_SIGNAL[state]
        self._sumo.trafficlight.setRedYellowGreenState(a.tls, "".join(cur))

    def freeze_traffic_lights(self, frozen: bool) -> None:
        """Hold every light in its current state (True) or resume the programmes where they were (False)."""
        self._check_open()
        if frozen:
            for tls in self._tls_ids:
                self._take_over(tls)
            self._frozen = True
            return
        self._frozen = False
        for tls, h in list(self._held.items()):
            self._sumo.trafficlight.setProgram(tls, h.program)
            self._sumo.trafficlight.setPhase(tls, h.phase)
            self._sumo.trafficlight.setPhaseDuration(tls, max(h.remaining, FIXED_DELTA_SECONDS))
        self._held.clear()

    def _release_lights(self) -> None:
        now = self._sumo.simulation.getTime()
        for tls, h in list(self._held.items()):
            if now + 1e-6 >= h.release_time:
                self._sumo.trafficlight.setProgram(tls, h.program)
                self._sumo.trafficlight.setPhase(tls, (h.phase + 1) % self._tls_phases[tls])
                del self._held[tls]

    # ------------------------------------------------------------------ lifecycle
    @property
    def time(self) -> float:
        """SUMO simulation time, s."""
        return float(self._sumo.simulation.getTime())

    def _check_open(self) -> None:
        if self._closed:
            raise TrafficError("TrafficSim is closed")

    def close(self) -> None:
        """End the libsumo simulation (idempotent); a new TrafficSim may start afterwards."""
        global _LIVE
        if getattr(self, "_closed", True) and _LIVE is not self:
            return
        self._closed = True
        if self.backend == "libsumo":
            with contextlib.suppress(*_SUMO_ERRORS):
                # libsumo keeps subscription results across close/start until the next step: drop them
                for vid in self._sumo.vehicle.getAllSubscriptionResults():
                    self._sumo.vehicle.unsubscribe(vid)
                for pid in self._sumo.person.getAllSubscriptionResults():
                    self._sumo.person.unsubscribe(pid)
        with contextlib.suppress(*_SUMO_ERRORS):
            self._sumo.close()
        if _LIVE is self:
            _LIVE = None

    def __enter__(self) -> TrafficSim:  # noqa: PYI034 (py3.10 target: no typing.Self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if _LIVE is self or (getattr(self, "backend", "") == "traci" and not getattr(self, "_closed", True)):
            self.close()
