"""`srunner.scenariomanager.carla_data_provider.CarlaDataProvider`, backed by our simulator (no CARLA server).

Published leaderboard agents (TransFuser, TCP, InterFuser, PlanT, LMDrive, ...) read the hero vehicle, the map and
the world's actors through scenario_runner's class-level CarlaDataProvider. When scenario_runner is not installed
the evaluator serves this class under that module path (leaderboard/carla_helpers/importer.py), bound to the
simulator of the route being driven. Only the calls listed in SUPPORTED (and on the actor, world and actor-list
stand-ins, SUPPORTED_ACTOR / SUPPORTED_WORLD) exist; any other fails with one line naming the call. Values are read
from the simulator's ground truth of the current tick, the state the agent's sensors saw.
"""

from __future__ import annotations

import datetime
import fnmatch
import math
from typing import Any

import carla

from sim.protocol import Simulator
from sim.types import FIXED_DELTA_SECONDS, GroundTruth

# The hero's actor id with the embedded simulator, apart from its traffic lights (0...), traffic (100000...) and
# scenario actors (1000000...); with the CARLA backend the hero keeps its server id.
HERO_ID = 99_999
_TL_STATE = {
    "Red": carla.TrafficLightState.Red,
    "Yellow": carla.TrafficLightState.Yellow,
    "Green": carla.TrafficLightState.Green,
    "Off": carla.TrafficLightState.Off,
}

SUPPORTED = (
    "get_hero_actor", "get_world", "get_map", "get_client", "get_location", "get_transform", "get_velocity",
    "get_actors", "get_all_actors", "get_actor_by_id", "actor_id_exists", "get_ego_vehicle_route",
    "is_sync_mode", "get_traffic_manager_port", "get_random_seed",
)  # fmt: skip
SUPPORTED_ACTOR = (
    "id", "type_id", "attributes", "is_alive", "bounding_box", "get_transform", "get_location", "get_velocity",
    "get_acceleration", "get_angular_velocity", "get_control", "get_world", "get_state", "state",
)  # fmt: skip
SUPPORTED_WORLD = ("get_map", "get_actors", "get_actor", "get_snapshot", "get_settings", "get_weather", "id")


class UnsupportedCall(NotImplementedError):
    """An API call the embedded backing of the CARLA helpers does not provide."""


def _unsupported(owner: str, name: str, supported: tuple[str, ...]) -> UnsupportedCall:
    return UnsupportedCall(
        f"{owner}.{name} is not supported by the embedded simulator's CARLA helpers "
        f"(supported: {', '.join(supported)}; docs/leaderboard.md)"
    )


class _Binding:
    """What the helpers read: the simulator of the route being driven, its dense route and the tick count."""

    def __init__(self, sim: Simulator, route: list | None = None, seed: int = 0) -> None:
        self.sim = sim
        self.route = route or []
        self.seed = seed

    def gt(self) -> GroundTruth:
        return self.sim.ground_truth()

    @property
    def hero_id(self) -> int:
        ego = getattr(self.sim, "ego_actor", None)
        return int(ego.id) if ego is not None else HERO_ID


_BOUND: _Binding | None = None


def bind(sim: Simulator, route: list | None = None, seed: int = 0) -> None:
    """Serve the helpers from `sim` (the evaluator calls this before the agent is built, for every route)."""
    global _BOUND
    _BOUND = _Binding(sim, route, seed)


def unbind() -> None:
    global _BOUND
    _BOUND = None


def _binding() -> _Binding:
    if _BOUND is None:
        raise RuntimeError(
            "CarlaDataProvider has no simulator: it is served while the evaluator (or the gymnasium adapter) "
            "drives a route"
        )
    return _BOUND


def _vec(x: float, y: float, z: float = 0.0) -> carla.Vector3D:
    return carla.Vector3D(float(x), float(y), float(z))


class Actor:
    """A stand-in for carla.Actor over one ground-truth entity (the hero, a vehicle, walker, prop or light)."""

    def __init__(self, actor_id: int, type_id: str, role_name: str = "") -> None:
        self.id = int(actor_id)
        self.type_id = type_id
        self.attributes = {"role_name": role_name}
        self._hero = role_name == "hero"

    def _state(self) -> Any:
        gt = _binding().gt()
        if self._hero:
            return gt.ego
        pool = gt.traffic_lights if self.type_id.startswith("traffic.traffic_light") else gt.actors
        return next((a for a in pool if a.id == self.id), None)

    @property
    def is_alive(self) -> bool:
        return self._state() is not None

    def get_transform(self) -> carla.Transform:
        s = self._state()
        if self._hero:
            p = s.pose
            return carla.Transform(carla.Location(p.x, p.y, p.z), carla.Rotation(p.pitch, p.yaw, p.roll))
        return carla.Transform(carla.Location(s.x, s.y, s.z), carla.Rotation(yaw=s.yaw))

    def get_location(self) -> carla.Location:
        return self.get_transform().location

    def get_velocity(self) -> carla.Vector3D:
        s = self._state()
        return _vec(getattr(s, "vx", 0.0), getattr(s, "vy", 0.0))

    def get_acceleration(self) -> carla.Vector3D:
        """World-frame acceleration (the hero's; other actors: 0)."""
        if not self._hero:
            return _vec(0.0, 0.0)
        s = self._state()
        ax, ay, az = s.accel  # body frame (forward, right, up)
        yaw = math.radians(s.pose.yaw)
        return _vec(ax * math.cos(yaw) - ay * math.sin(yaw), ax * math.sin(yaw) + ay * math.cos(yaw), az)

    def get_angular_velocity(self) -> carla.Vector3D:
        """Degrees per second about (x, y, z) (the hero's yaw rate; other actors: 0)."""
        return _vec(0.0, 0.0, self._state().yaw_rate if self._hero else 0.0)

    def get_control(self) -> carla.VehicleControl:
        s = self._state()
        if not self._hero:
            raise _unsupported("carla.Actor", "get_control (of a non-hero actor)", SUPPORTED_ACTOR)
        return carla.VehicleControl(throttle=float(s.throttle), steer=float(s.steer), brake=float(s.brake))

    @property
    def bounding_box(self) -> carla.BoundingBox:
        ext = getattr(self._state(), "extent", (0.2, 0.2, 2.0))
        return carla.BoundingBox(carla.Location(0.0, 0.0, float(ext[2])), _vec(*ext))

    def get_state(self) -> carla.TrafficLightState:
        """A traffic light's state."""
        s = self._state()
        if not hasattr(s, "stop_line"):
            raise _unsupported("carla.Actor", "get_state (of a non-traffic-light actor)", SUPPORTED_ACTOR)
        return _TL_STATE.get(s.state, carla.TrafficLightState.Unknown)

    @property
    def state(self) -> carla.TrafficLightState:
        return self.get_state()

    def get_world(self) -> World:
        return World()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Actor) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Actor(id={self.id}, type={self.type_id})"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise _unsupported("carla.Actor", name, SUPPORTED_ACTOR)


class ActorList(list):
    """A stand-in for carla.ActorList: a list with filter(wildcard) and find(id)."""

    def filter(self, wildcard_pattern: str) -> ActorList:
        return ActorList(a for a in self if fnmatch.fnmatchcase(a.type_id, wildcard_pattern))

    def find(self, actor_id: int) -> Actor | None:
        return next((a for a in self if a.id == actor_id), None)


class _Timestamp:
    def __init__(self, frame: int, elapsed: float) -> None:
        self.frame = frame
        self.elapsed_seconds = elapsed
        self.delta_seconds = FIXED_DELTA_SECONDS
        self.platform_timestamp = datetime.datetime.now().timestamp()


class _Snapshot:
    def __init__(self, gt: GroundTruth) -> None:
        self.frame = gt.frame
        self.timestamp = _Timestamp(gt.frame, gt.timestamp)


class World:
    """A stand-in for carla.World: the map, the actors of this tick, a snapshot, the (synchronous) settings."""

    id = 0

    def get_map(self) -> carla.Map:
        return _binding().sim.map

    def get_actors(self, actor_ids: list[int] | None = None) -> ActorList:
        actors = _all_actors()
        if actor_ids is not None:
            wanted = set(actor_ids)
            actors = ActorList(a for a in actors if a.id in wanted)
        return actors

    def get_actor(self, actor_id: int) -> Actor | None:
        return _all_actors().find(actor_id)

    def get_snapshot(self) -> _Snapshot:
        return _Snapshot(_binding().gt())

    def get_settings(self) -> carla.WorldSettings:
        return carla.WorldSettings(synchronous_mode=True, fixed_delta_seconds=FIXED_DELTA_SECONDS)

    def get_weather(self) -> carla.WeatherParameters:
        return _binding().sim.get_weather()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise _unsupported("carla.World", name, SUPPORTED_WORLD)


def _all_actors() -> ActorList:
    gt = _binding().gt()
    out = ActorList([_hero()])
    out += [Actor(a.id, a.type_id, "scenario" if a.source == "scenario" else "") for a in gt.actors]
    seen: set[int] = set()
    for tl in gt.traffic_lights:  # one entry per light (the CARLA backend lists one per stop line)
        if tl.id not in seen:
            seen.add(tl.id)
            out.append(Actor(tl.id, "traffic.traffic_light"))
    return out


def _hero() -> Actor:
    return Actor(_binding().hero_id, "vehicle.lincoln.mkz_2017", "hero")


def _key(actor: Any) -> int:
    return int(actor.id) if hasattr(actor, "id") else int(actor)


class _ProviderMeta(type):
    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise _unsupported("CarlaDataProvider", name, SUPPORTED)


class CarlaDataProvider(metaclass=_ProviderMeta):
    """scenario_runner's CarlaDataProvider calls agents make, answered from the simulator's ground truth."""

    @staticmethod
    def get_hero_actor() -> Actor | None:
        return _hero() if _BOUND is not None else None

    @staticmethod
    def get_world() -> World:
        _binding()
        return World()

    @staticmethod
    def get_map(world: Any = None) -> carla.Map:
        return _binding().sim.map

    @staticmethod
    def get_client() -> None:
        """No CARLA client exists with the embedded simulator."""
        return None

    @staticmethod
    def get_location(actor: Any) -> carla.Location | None:
        a = _all_actors().find(_key(actor))
        return a.get_location() if a is not None else None

    @staticmethod
    def get_transform(actor: Any) -> carla.Transform | None:
        a = _all_actors().find(_key(actor))
        return a.get_transform() if a is not None else None

    @staticmethod
    def get_velocity(actor: Any) -> float:
        """The actor's horizontal speed in m/s (a scalar, as scenario_runner's)."""
        a = _all_actors().find(_key(actor))
        if a is None:
            return 0.0
        v = a.get_velocity()
        return math.sqrt(v.x**2 + v.y**2)

    @staticmethod
    def get_actors() -> Any:
        """(id, actor) pairs of the actors the scenario owns: the hero (and scenario actors)."""
        return iter([(a.id, a) for a in _all_actors() if a.attributes["role_name"] in ("hero", "scenario")])

    @staticmethod
    def get_all_actors() -> ActorList:
        return _all_actors()

    @staticmethod
    def get_actor_by_id(actor_id: int) -> Actor | None:
        return _all_actors().find(int(actor_id))

    @staticmethod
    def actor_id_exists(actor_id: int) -> bool:
        return _all_actors().find(int(actor_id)) is not None

    @staticmethod
    def get_ego_vehicle_route() -> list[tuple[carla.Location, Any]]:
        """The dense route as (carla.Location, RoadOption) pairs, as the leaderboard sets it."""
        return [(t.location, o) for t, o in _binding().route]

    @staticmethod
    def is_sync_mode() -> bool:
        return True

    @staticmethod
    def get_traffic_manager_port() -> int:
        return 8000

    @staticmethod
    def get_random_seed() -> int:
        return _binding().seed
