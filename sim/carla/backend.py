"""The real-CARLA backend: the same Simulator protocol over a CARLA 0.9.x server (synchronous mode, 20 Hz).

Not exercised in CI (no server can run there); tests marked `carla_server` run it against `--host/--port`.
Occupancy ground truth needs the embedded backend's exact static geometry and is not available here.
"""

from __future__ import annotations

import math
import queue
from pathlib import Path
from typing import Any

import carla
import numpy as np

from sim.blueprints import classify
from sim.protocol import Behaviour, OccupancyFrame, SimConfig, Simulator, SimulatorError
from sim.sensors import CAMERA_TYPES, carla_sensor_attributes, validate_sensors
from sim.types import (
    FIXED_DELTA_SECONDS,
    ActorState,
    EgoState,
    GroundTruth,
    Pose,
    SimEvent,
    TrafficLightState,
)

EGO_BLUEPRINT = "vehicle.lincoln.mkz_2017"
_TL_STATE = {carla.TrafficLightState.Red: "Red", carla.TrafficLightState.Yellow: "Yellow",
             carla.TrafficLightState.Green: "Green", carla.TrafficLightState.Off: "Off",
             carla.TrafficLightState.Unknown: "Off"}


def forward_speed(velocity: carla.Vector3D, rotation: carla.Rotation) -> float:
    """The leaderboard speedometer's reading: velocity along the vehicle's forward axis (pitch and yaw), m/s,
    negative when reversing."""
    pitch, yaw = math.radians(rotation.pitch), math.radians(rotation.yaw)
    return float(
        velocity.x * math.cos(pitch) * math.cos(yaw)
        + velocity.y * math.cos(pitch) * math.sin(yaw)
        + velocity.z * math.sin(pitch)
    )


def _pose(t: carla.Transform) -> Pose:
    return Pose(t.location.x, t.location.y, t.location.z, t.rotation.yaw, t.rotation.pitch, t.rotation.roll)


def crosswalk_polygons(points: list[carla.Location]) -> list[np.ndarray]:
    """carla.Map.get_crosswalks() -> one (K, 2) polygon per crosswalk.

    CARLA lists the corners of every crosswalk one after the other, each polygon closed by repeating its first
    corner; the repeat ends it.
    """
    out: list[np.ndarray] = []
    cur: list[tuple[float, float]] = []
    for loc in points:
        xy = (float(loc.x), float(loc.y))
        if len(cur) >= 3 and math.dist(xy, cur[0]) < 1e-3:
            out.append(np.array(cur, np.float64))
            cur = []
        else:
            cur.append(xy)
    return out


class CarlaSimulator(Simulator):
    """Drives a CARLA server; one client per process, like the leaderboard."""

    def __init__(self, config: SimConfig | None = None, host: str = "localhost", port: int = 2000,
                 timeout: float = 10.0, traffic_manager_port: int = 8000) -> None:
        self.config = config or SimConfig()
        self.client = carla.Client(host, port)
        self.client.set_timeout(timeout)
        try:
            self._server_version = self.client.get_server_version()
        except RuntimeError as exc:
            raise SimulatorError(f"cannot reach a CARLA server at {host}:{port} ({exc})") from None
        self._tm_port = traffic_manager_port
        self.world: carla.World | None = None
        self._ego: carla.Actor | None = None
        self._sensors: list[carla.Actor] = []
        self._queues: dict[str, queue.Queue] = {}
        self._pseudo: list[dict[str, Any]] = []
        self._scripted: dict[int, tuple[carla.Actor, Behaviour | None]] = {}
        self._npcs: list[carla.Actor] = []
        self._events: list[SimEvent] = []
        self._frame = 0
        self._frame0 = 0  # the server frame when the town was loaded: game time counts from there
        self._gt: GroundTruth | None = None
        self._crosswalks: list[np.ndarray] = []

    def load_town(self, name: str, map_dir: str | Path | None = None) -> carla.Map:
        try:
            self.world = self.client.load_world(Path(name).name)
        except RuntimeError as exc:
            raise SimulatorError(f"CARLA could not load town '{name}' ({exc})") from None
        settings = self.world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = FIXED_DELTA_SECONDS
        self.world.apply_settings(settings)
        tm = self.client.get_trafficmanager(self._tm_port)
        tm.set_synchronous_mode(True)
        tm.set_random_device_seed(self.config.seed)
        self._map = self.world.get_map()
        self._crosswalks = crosswalk_polygons(self._map.get_crosswalks())
        self._frame0 = self._frame = self.world.get_snapshot().frame
        return self._map

    @property
    def map(self) -> carla.Map:
        if self.world is None:
            raise SimulatorError("no town loaded: call load_town() first")
        return self._map

    @property
    def frame(self) -> int:
        return self._frame

    @property
    def ego_actor(self) -> carla.Actor | None:
        """The hero vehicle (scenario_runner's CarlaDataProvider is given it, as CARLA's evaluator does)."""
        return self._ego

    def spawn_ego(self, transform: carla.Transform) -> None:
        bp = self.world.get_blueprint_library().find(EGO_BLUEPRINT)
        bp.set_attribute("role_name", "hero")
        self._ego = self.world.try_spawn_actor(bp, transform)
        if self._ego is None:
            raise SimulatorError(f"CARLA could not spawn the ego at {transform} (blocked?)")
        lib = self.world.get_blueprint_library()
        col = self.world.spawn_actor(lib.find("sensor.other.collision"), carla.Transform(), attach_to=self._ego)
        lane = self.world.spawn_actor(lib.find("sensor.other.lane_invasion"), carla.Transform(), attach_to=self._ego)
        col.listen(self._on_collision)
        lane.listen(self._on_lane_invasion)
        self._sensors += [col, lane]
        self._spawn_traffic()

    def _spawn_traffic(self) -> None:
        rng = np.random.default_rng(self.config.seed)
        lib = self.world.get_blueprint_library()
        vehicles = [bp for bp in lib.filter("vehicle.*") if int(bp.get_attribute("number_of_wheels")) == 4]
        spawns = self._map.get_spawn_points()
        rng.shuffle(spawns)
        for t in spawns[: self.config.traffic.vehicles]:
            a = self.world.try_spawn_actor(vehicles[int(rng.integers(len(vehicles)))], t)
            if a is not None:
                a.set_autopilot(True, self._tm_port)
                self._npcs.append(a)

    def _on_collision(self, event: carla.CollisionEvent) -> None:
        other = event.other_actor
        cat = "vehicle" if other.type_id.startswith("vehicle") else "walker" if other.type_id.startswith(
            "walker") else "static"
        loc = self._ego.get_location()
        self._events.append(SimEvent(event.frame, "collision", loc.x, loc.y, other.id, cat, other.type_id))

    def _on_lane_invasion(self, event: carla.LaneInvasionEvent) -> None:
        loc = self._ego.get_location()
        detail = ",".join(str(m.type) for m in event.crossed_lane_markings)
        self._events.append(SimEvent(event.frame, "lane_invasion", loc.x, loc.y, detail=detail))

    def attach_sensors(self, sensors: list[dict[str, Any]]) -> None:
        validate_sensors(sensors)
        lib = self.world.get_blueprint_library()
        for s in sensors:
            if s["type"] in ("sensor.speedometer", "sensor.opendrive_map"):
                self._pseudo.append(s)
                continue
            bp = lib.find(s["type"])
            for key, value in carla_sensor_attributes(s).items():
                if bp.has_attribute(key):
                    bp.set_attribute(key, value)
            tf = carla.Transform(carla.Location(s.get("x", 0.0), s.get("y", 0.0), s.get("z", 0.0)),
                                 carla.Rotation(s.get("pitch", 0.0), s.get("yaw", 0.0), s.get("roll", 0.0)))
            actor = self.world.spawn_actor(bp, tf, attach_to=self._ego)
            q: queue.Queue = queue.Queue()
            actor.listen(q.put)
            self._queues[s["id"]] = q
            self._sensors.append(actor)
        self._sensor_types = {s["id"]: s["type"] for s in sensors}

    def set_weather(self, weather: carla.WeatherParameters) -> None:
        self.world.set_weather(weather)

    def get_weather(self) -> carla.WeatherParameters:
        return self.world.get_weather()

    def set_street_lights(self, on: bool) -> None:
        lm = self.world.get_lightmanager()
        lights = lm.get_all_lights(carla.LightGroup.Street)
        (lm.turn_on if on else lm.turn_off)(lights)

    def set_traffic_light_state(self, tl_id: int, state: str) -> None:
        tl = self.world.get_actor(tl_id)
        if tl is None:
            raise SimulatorError(f"no traffic light with id {tl_id}")
        states = {v: k for k, v in _TL_STATE.items() if k != carla.TrafficLightState.Unknown}
        if state not in states:
            raise SimulatorError(f"traffic light state must be one of {', '.join(states)}, got {state!r}")
        tl.set_state(states[state])

    def freeze_traffic_lights(self, frozen: bool) -> None:
        self.world.freeze_all_traffic_lights(bool(frozen))

    def spawn_actor(self, type_id: str, transform: carla.Transform, behaviour: Behaviour | None = None,
                    source: str = "scenario") -> int:
        classify(type_id)  # same validation as the embedded backend
        bp = self.world.get_blueprint_library().find(type_id)
        actor = self.world.try_spawn_actor(bp, transform)
        if actor is None:
            raise SimulatorError(f"CARLA could not spawn '{type_id}' at {transform}")
        if behaviour is not None:
            actor.set_simulate_physics(False)
        self._scripted[actor.id] = (actor, behaviour)
        return actor.id

    def destroy_actor(self, actor_id: int) -> None:
        actor, _ = self._scripted.pop(actor_id, (None, None))
        if actor is None:
            raise SimulatorError(f"no scenario actor with id {actor_id}")
        actor.destroy()

    def open_vehicle_door(self, actor_id: int) -> None:
        actor, _ = self._scripted.get(actor_id, (None, None))
        if actor is None or not actor.type_id.startswith("vehicle."):
            raise SimulatorError(f"no scenario vehicle with id {actor_id}")
        actor.open_door(carla.VehicleDoor.FL)

    def apply_control(self, control: carla.VehicleControl) -> None:
        self._ego.apply_control(control)

    def tick(self) -> dict[str, tuple[int, Any]]:
        for actor, behaviour in self._scripted.values():
            if behaviour is not None:
                pose, _ = behaviour.step(_pose(actor.get_transform()), self._gt, FIXED_DELTA_SECONDS)
                actor.set_transform(carla.Transform(carla.Location(pose.x, pose.y, pose.z), carla.Rotation(yaw=pose.yaw)))
        self._frame = self.world.tick()
        data: dict[str, tuple[int, Any]] = {}
        for sid, q in self._queues.items():
            while True:
                m = q.get(timeout=10.0)
                if m.frame >= self._frame:
                    break
            stype = self._sensor_types[sid]
            if stype in CAMERA_TYPES:
                arr = np.frombuffer(m.raw_data, dtype=np.uint8).reshape(m.height, m.width, 4).copy()
                data[sid] = (m.frame, arr)
            elif stype == "sensor.other.imu":
                data[sid] = (m.frame, np.array([m.accelerometer.x, m.accelerometer.y, m.accelerometer.z,
                                                m.gyroscope.x, m.gyroscope.y, m.gyroscope.z, m.compass]))
            elif stype == "sensor.other.gnss":
                data[sid] = (m.frame, np.array([m.latitude, m.longitude, m.altitude]))
            elif stype == "sensor.lidar.ray_cast":
                data[sid] = (m.frame, np.frombuffer(m.raw_data, dtype=np.float32).reshape(-1, 4).copy())
            elif stype == "sensor.other.radar":  # raw [velocity, azimuth, altitude, depth] -> the leaderboard's order
                data[sid] = (m.frame, np.flip(np.frombuffer(m.raw_data, dtype=np.float32).reshape(-1, 4), 1).copy())
        v, t = self._ego.get_velocity(), self._ego.get_transform()
        for s in self._pseudo:
            if s["type"] == "sensor.speedometer":
                data[s["id"]] = (self._frame, {"speed": forward_speed(v, t.rotation)})
            else:
                data[s["id"]] = (self._frame, {"opendrive": self._map.to_opendrive()})
        self._gt = self._read_ground_truth()
        return data

    def _read_ground_truth(self) -> GroundTruth:
        actors: list[ActorState] = []
        for a in self.world.get_actors():
            if a.id == self._ego.id or not (a.type_id.startswith("vehicle") or a.type_id.startswith("walker")
                                             or a.type_id.startswith("static.prop")):
                continue
            try:
                cat, vclass, _ = classify(a.type_id)
            except ValueError:
                continue
            t, bb, vel = a.get_transform(), a.bounding_box, a.get_velocity()
            actors.append(ActorState(a.id, a.type_id, cat, vclass, t.location.x, t.location.y, t.location.z,
                                     t.rotation.yaw, (bb.extent.x, bb.extent.y, bb.extent.z), vel.x, vel.y,
                                     source="scenario" if a.id in self._scripted else "traffic"))
        lights: list[TrafficLightState] = []
        for tl in self.world.get_actors().filter("traffic.traffic_light"):
            t = tl.get_transform()
            for wp in tl.get_stop_waypoints():
                c, yaw = wp.transform.location, wp.transform.rotation.yaw
                r, hw = math.radians(yaw + 90.0), wp.lane_width / 2.0
                line = ((c.x - hw * math.cos(r), c.y - hw * math.sin(r)), (c.x + hw * math.cos(r), c.y + hw * math.sin(r)))
                lights.append(TrafficLightState(tl.id, _TL_STATE.get(tl.get_state(), "Off"), t.location.x,
                                                t.location.y, t.location.z, t.rotation.yaw, line, yaw))
        et, v = self._ego.get_transform(), self._ego.get_velocity()
        yaw = math.radians(et.rotation.yaw)
        ctrl, bb = self._ego.get_control(), self._ego.bounding_box
        ego = EgoState(_pose(et), v.x, v.y, v.x * math.cos(yaw) + v.y * math.sin(yaw),
                       extent=(bb.extent.x, bb.extent.y, bb.extent.z), steer=ctrl.steer, throttle=ctrl.throttle,
                       brake=ctrl.brake)
        events, self._events = self._events, []
        game_time = (self._frame - self._frame0) * FIXED_DELTA_SECONDS  # from 0 per town load, as GameTime
        return GroundTruth(self._frame, game_time, ego, actors, lights, [], events,
                           crosswalks=self._crosswalks)

    def ground_truth(self) -> GroundTruth:
        if self._gt is None:
            raise SimulatorError("no tick yet: call tick() first")
        return self._gt

    def occupancy(self) -> OccupancyFrame:
        raise SimulatorError("occupancy ground truth needs the embedded simulator's static geometry; "
                             "collect occupancy data with --simulator embedded")

    def close(self) -> None:
        for a in self._sensors:
            if a.is_alive:
                a.stop() if hasattr(a, "stop") else None
                a.destroy()
        for a in self._npcs + [a for a, _ in self._scripted.values()] + ([self._ego] if self._ego else []):
            if a is not None and a.is_alive:
                a.destroy()
        self._sensors, self._npcs, self._scripted, self._ego = [], [], {}, None
        if self.world is not None:
            settings = self.world.get_settings()
            settings.synchronous_mode = False
            self.world.apply_settings(settings)
