"""The embedded backend: a CARLA-compatible world on one CPU process.

carla.Map parses the OpenDRIVE town, libsumo drives NPC traffic and traffic lights, a kinematic bicycle drives
the ego, moderngl renders the cameras and numpy builds Occ3D occupancy. Everything is seeded: the same seed
and the same controls give bit-identical frames and actor states.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import carla
import numpy as np

from sim.blueprints import classify
from sim.embedded.collision import obb_overlap
from sim.embedded.vehicle import VehicleModel
from sim.geo import geo_reference, location_to_gnss
from sim.protocol import Behaviour, OccupancyFrame, SimConfig, Simulator, SimulatorError
from sim.sensors import (
    CAMERA_TYPES,
    NUSCENES_RIG,
    CameraSpec,
    camera_spec_from_dict,
    nuscenes_rig,
    validate_sensors,
)
from sim.types import (
    FIXED_DELTA_SECONDS,
    OCC,
    ActorState,
    EgoState,
    GroundTruth,
    Pose,
    SimEvent,
    StaticScene,
    StopSign,
)
from sim.weather import validate_weather

GRAVITY = 9.81
_OCC_DEPTH_SIZE = (200, 113)  # width, height of the depth-only rig used for mask_camera when no rig is attached
_OCC_RIG = tuple(nuscenes_rig(*_OCC_DEPTH_SIZE))
_STATIC_CATEGORY_CLASSES = {OCC["manmade"], OCC["vegetation"], OCC["barrier"], OCC["others"], OCC["traffic_cone"]}

# Static scenes are costly to build and immutable: share them between simulators of one process.
CONTACT_MEMORY_TICKS = 20  # touching the same thing again within 1 s is the same collision
_SCENE_CACHE: dict[tuple[str, int], StaticScene] = {}

# what a collision with a scene prop reports, by its occupancy class (a parked car is a prop of the scene)
PROP_TYPE_IDS = {OCC["manmade"]: "static.prop.building", OCC["vegetation"]: "static.prop.vegetation",
                 OCC["car"]: "static.prop.parkedcar"}


def _capture_period(sensor: dict[str, Any]) -> int:
    """Ticks between captures of a sensor from its CARLA `sensor_tick` (seconds; 0 or absent: every tick)."""
    return max(1, round(float(sensor.get("sensor_tick", 0.0) or 0.0) / FIXED_DELTA_SECONDS))


def _same_mount(a: CameraSpec, b: CameraSpec) -> bool:
    return all(abs(u - v) < 1e-6 for u, v in zip((a.x, a.y, a.z, a.roll, a.pitch, a.yaw, a.fov),
                                                   (b.x, b.y, b.z, b.roll, b.pitch, b.yaw, b.fov), strict=True))


@dataclass
class _ScriptedActor:
    state: ActorState
    behaviour: Behaviour | None


def _seeded_color(seed: int, actor_id: int) -> tuple[float, float, float]:
    h = hashlib.sha256(f"{seed}:{actor_id}".encode()).digest()
    return (0.15 + 0.7 * h[0] / 255.0, 0.15 + 0.7 * h[1] / 255.0, 0.15 + 0.7 * h[2] / 255.0)


class EmbeddedSimulator(Simulator):
    """The default simulator. Any number per process (the first drives traffic through libsumo, the others through
    SUMO over TraCI: sim/embedded/traffic.py)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._town = None
        self._scene: StaticScene | None = None
        self._traffic = None
        self._renderer = None  # cameras read every tick
        self._tick_renderers: dict[int, Any] = {}  # period in ticks -> renderer of cameras with that sensor_tick
        self._occ_builder = None
        self._renderer_pool: dict[tuple[CameraSpec, ...], Any] = {}  # cameras -> renderer of this town's scene
        self._ego: VehicleModel | None = None
        self._control = carla.VehicleControl()
        self._weather = carla.WeatherParameters.ClearNoon
        self._street_lights = True
        self._sensors: list[dict[str, Any]] = []
        self._cameras: list[CameraSpec] = []
        self._frame = 0
        self._scripted: dict[int, _ScriptedActor] = {}
        self._next_id = 1_000_000  # scenario actor ids never clash with traffic ids
        self._gt: GroundTruth | None = None
        self._last_render: dict[str, Any] = {}
        self._sensor_sem: tuple[GroundTruth, np.ndarray] | None = None  # LiDAR/radar label grid of that tick
        self._contacts: dict[int, int] = {}  # other id -> last frame in contact
        self._lane_key: tuple[int, int, int] | None = None
        self._off_road = False
        self._stop_signs: list[StopSign] = []
        self._geo = (0.0, 0.0)
        self._closed = False
        self._prev_pose = Pose()
        self.timings: dict[str, float] = {}  # seconds per phase of the last tick (for benchmarks)

    # ------------------------------------------------------------------ world set-up
    def load_town(self, name: str, map_dir: str | Path | None = None) -> carla.Map:
        from sim.embedded.cache import cache_root, cached_static_scene
        from sim.embedded.maps import load_town
        from sim.embedded.occupancy import OccupancyBuilder
        from sim.embedded.traffic import TrafficSim

        if self._traffic is not None:
            self._traffic.close()
            self._traffic = None
        map_dir = map_dir if map_dir is not None else self.config.map_dir
        cache_dir = self.config.cache_dir
        town = load_town(name, map_dir, cache_dir)
        key = (hashlib.sha256(town.xodr_text.encode()).hexdigest(), self.config.seed)
        if key not in _SCENE_CACHE:
            _SCENE_CACHE[key] = cached_static_scene(town, self.config.seed, cache_dir)
        if self._scene is not _SCENE_CACHE[key]:  # another scene: the renderers kept for the last one go
            self._release_renderers(keep=())
        self._town, self._scene = town, _SCENE_CACHE[key]
        self._geo = geo_reference(town.xodr_text)
        sumo_dir = cache_root(cache_dir) / "sumo" if cache_dir else None
        self._traffic = TrafficSim(Path(town.xodr_path), self.config.traffic, cache_dir=sumo_dir)
        self._occ_builder = OccupancyBuilder(self._scene)
        self._renderer = None
        self._tick_renderers = {}
        self._stop_signs = self._find_stop_signs(town.map)
        self._frame = 0
        self._scripted.clear()
        self._gt = None
        return town.map

    @property
    def map(self) -> carla.Map:
        if self._town is None:
            raise SimulatorError("no town loaded: call load_town() first")
        return self._town.map

    @property
    def town_name(self) -> str:
        return self._town.name if self._town else ""

    @property
    def frame(self) -> int:
        return self._frame

    def static_scene(self) -> StaticScene | None:
        return self._scene

    def spawn_ego(self, transform: carla.Transform) -> None:
        self._require_town()
        loc, rot = transform.location, transform.rotation
        if not all(math.isfinite(v) for v in (loc.x, loc.y, loc.z, rot.yaw)):
            raise SimulatorError(f"ego transform is not finite: {transform}")
        ground_z = 0.0
        wp = self.map.get_waypoint(loc, project_to_road=True)
        if wp is not None:
            ground_z = wp.transform.location.z
        self._ego = VehicleModel(Pose(loc.x, loc.y, ground_z, rot.yaw))
        self._control = carla.VehicleControl()
        self._contacts.clear()
        self._lane_key = None
        self._traffic.set_ego(self._ego.pose, 0.0)
        self._gt = self._make_gt([])

    def attach_sensors(self, sensors: list[dict[str, Any]]) -> None:
        from sim.embedded.render import Renderer

        self._require_town()
        validate_sensors(sensors)
        self._sensors = [dict(s) for s in sensors]
        self._cameras = [camera_spec_from_dict(s) for s in sensors if s["type"] in CAMERA_TYPES]
        # A camera with a CARLA `sensor_tick` (seconds) captures only every round(sensor_tick / 0.05) ticks and
        # is absent from the tick's data otherwise; each capture period renders in its own pass.
        groups: dict[int, list[CameraSpec]] = {}
        for s, cam in zip((s for s in sensors if s["type"] in CAMERA_TYPES), self._cameras, strict=True):
            groups.setdefault(_capture_period(s), []).append(cam)
        # the same cameras on the same town (the next route of a run) reuse their renderer: no new GL context,
        # shaders and geometry upload per route; renderers no longer attached are released
        keys = {period: tuple(cams) for period, cams in groups.items()}
        self._release_renderers(keep=(*keys.values(), _OCC_RIG))
        for key in keys.values():
            if key not in self._renderer_pool:
                self._renderer_pool[key] = Renderer(self._scene, list(key))
        self._renderer = self._renderer_pool[keys.pop(1)] if 1 in keys else None
        self._tick_renderers = {period: self._renderer_pool[key] for period, key in keys.items()}

    def set_weather(self, weather: carla.WeatherParameters) -> None:
        validate_weather(weather)
        self._weather = weather

    def get_weather(self) -> carla.WeatherParameters:
        return self._weather

    def set_street_lights(self, on: bool) -> None:
        self._street_lights = bool(on)

    # ------------------------------------------------------------------ scenario actors
    def spawn_actor(self, type_id: str, transform: carla.Transform, behaviour: Behaviour | None = None,
                    source: str = "scenario") -> int:
        self._require_town()
        category, vclass, extent = classify(type_id)
        actor_id = self._next_id
        self._next_id += 1
        loc, rot = transform.location, transform.rotation
        state = ActorState(actor_id, type_id, category, vclass, loc.x, loc.y, 0.0, rot.yaw, extent,
                           color=_seeded_color(self.config.seed, actor_id), source=source)
        self._scripted[actor_id] = _ScriptedActor(state, behaviour)
        return actor_id

    def destroy_actor(self, actor_id: int) -> None:
        if self._scripted.pop(actor_id, None) is None:
            raise SimulatorError(f"no scenario actor with id {actor_id}")

    def open_vehicle_door(self, actor_id: int) -> None:
        """The door as its own static actor: 1.1 m long, hinged at the front of the cabin, opened 60 degrees."""
        sa = self._scripted.get(actor_id)
        if sa is None or sa.state.category != "vehicle":
            raise SimulatorError(f"no scenario vehicle with id {actor_id}")
        st = sa.state
        ex, ey = st.extent[0], st.extent[1]
        yaw = math.radians(st.yaw)
        open_deg = 60.0
        d = math.radians(180.0 - open_deg)  # from the hinge, backwards and out to the left (-y in CARLA's frame)
        hx, hy = 0.25 * ex, -ey  # hinge, vehicle frame
        cx, cy = hx + 0.55 * math.cos(d), hy - 0.55 * math.sin(d)
        wx = st.x + cx * math.cos(yaw) - cy * math.sin(yaw)
        wy = st.y + cx * math.sin(yaw) + cy * math.cos(yaw)
        door_yaw = st.yaw - (180.0 - open_deg)
        self.spawn_actor("static.prop.vehicledoor", carla.Transform(carla.Location(wx, wy, 0.3),
                                                                    carla.Rotation(yaw=door_yaw)), source="parked")

    def set_traffic_light_state(self, tl_id: int, state: str) -> None:
        self._traffic.set_traffic_light_state(tl_id, state)

    def freeze_traffic_lights(self, frozen: bool) -> None:
        self._traffic.freeze_traffic_lights(frozen)

    # ------------------------------------------------------------------ stepping
    def apply_control(self, control: carla.VehicleControl) -> None:
        self._control = control

    def tick(self) -> dict[str, tuple[int, Any]]:
        self._require_ego()
        dt = FIXED_DELTA_SECONDS
        t0 = time.perf_counter()
        self._prev_pose = Pose(self._ego.pose.x, self._ego.pose.y, self._ego.pose.z, self._ego.pose.yaw)
        self._ego.step(self._control, dt)
        for sa in self._scripted.values():
            if sa.behaviour is None:
                continue
            s = sa.state
            pose, (vx, vy) = sa.behaviour.step(Pose(s.x, s.y, s.z, s.yaw), self._gt, dt)
            s.x, s.y, s.yaw, s.vx, s.vy = pose.x, pose.y, pose.yaw, vx, vy
        t1 = time.perf_counter()
        self._traffic.set_ego(self._ego.pose, self._ego.speed)
        self._traffic.step()
        self._frame += 1
        actors = self._traffic.actors() + [sa.state for sa in self._scripted.values()]
        t2 = time.perf_counter()
        events = self._detect_events(actors)
        self._gt = self._make_gt(actors, events)
        t3 = time.perf_counter()
        data = self._read_sensors()
        t4 = time.perf_counter()
        self.timings = {"vehicles": t1 - t0, "traffic": t2 - t1, "events": t3 - t2, "sensors": t4 - t3}
        return data

    def ground_truth(self) -> GroundTruth:
        self._require_ego()
        return self._gt

    def occupancy(self) -> OccupancyFrame:
        """Occ3D labels around the ego; mask_camera from depth of the six nuScenes rig cameras."""
        self._require_ego()
        gt = self._gt
        depth_views = self._rig_depth_views(gt)
        return self._occ_builder.compute(gt.ego.pose, gt.actors, depth_views)

    def close(self) -> None:
        if self._traffic is not None:
            self._traffic.close()
            self._traffic = None
        self._release_renderers(keep=())
        self._renderer = None
        self._tick_renderers = {}
        self._closed = True

    def _release_renderers(self, keep: tuple[tuple[CameraSpec, ...], ...]) -> None:
        """Free the GL contexts of pooled renderers whose cameras are not in `keep`."""
        for key in [k for k in self._renderer_pool if k not in keep]:
            self._renderer_pool.pop(key).release()

    # ------------------------------------------------------------------ internals
    def _require_town(self) -> None:
        if self._town is None:
            raise SimulatorError("no town loaded: call load_town() first")

    def _require_ego(self) -> None:
        self._require_town()
        if self._ego is None:
            raise SimulatorError("no ego vehicle: call spawn_ego() first")

    def _make_gt(self, actors: list[ActorState], events: list[SimEvent] | None = None) -> GroundTruth:
        return GroundTruth(
            frame=self._frame, timestamp=self._frame * FIXED_DELTA_SECONDS, ego=self._ego.state(),
            actors=actors, traffic_lights=self._traffic.traffic_lights(), stop_signs=self._stop_signs,
            events=events or [], crosswalks=self._traffic.crosswalks(),
        )

    def _find_stop_signs(self, cmap: carla.Map) -> list[StopSign]:
        signs: list[StopSign] = []
        for i, lm in enumerate(cmap.get_all_landmarks_of_type("206")):
            loc = lm.transform.location
            wp = cmap.get_waypoint(loc, project_to_road=True, lane_type=carla.LaneType.Driving)
            if wp is None:
                continue
            c, yaw = wp.transform.location, wp.transform.rotation.yaw
            r = math.radians(yaw + 90.0)
            hw = wp.lane_width / 2.0
            line = ((c.x - hw * math.cos(r), c.y - hw * math.sin(r)), (c.x + hw * math.cos(r), c.y + hw * math.sin(r)))
            signs.append(StopSign(i, loc.x, loc.y, loc.z, lm.transform.rotation.yaw, line, yaw))
        return signs

    def _detect_events(self, actors: list[ActorState]) -> list[SimEvent]:
        ego = self._ego
        p = ego.pose
        ex, ey, _ = ego.params.extent
        events: list[SimEvent] = []
        contacts = self._contacts
        recent = self._frame - CONTACT_MEMORY_TICKS
        solid: list[tuple[float, float]] = []  # centres of vehicles / static things the ego touches
        near = [a for a in actors if abs(a.x - p.x) < 12.0 and abs(a.y - p.y) < 12.0]
        if near:
            hit = obb_overlap((p.x, p.y, ex, ey, p.yaw), np.array([a.x for a in near]), np.array([a.y for a in near]),
                              np.array([a.extent[0] for a in near]), np.array([a.extent[1] for a in near]),
                              np.array([a.yaw for a in near]))
            for a, h in zip(near, hit):
                if h:
                    if a.category != "walker":
                        solid.append((a.x, a.y))
                    if contacts.get(a.id, -10**9) < recent:
                        events.append(SimEvent(self._frame, "collision", p.x, p.y, a.id, a.category, a.type_id))
                    contacts[a.id] = self._frame
        props = self._scene.props
        if len(props):
            c = props.centers
            sel = np.nonzero((np.abs(c[:, 0] - p.x) < 20.0) & (np.abs(c[:, 1] - p.y) < 20.0)
                             & (c[:, 2] - props.extents[:, 2] < 1.5))[0]
            if len(sel):
                hit = obb_overlap((p.x, p.y, ex, ey, p.yaw), c[sel, 0], c[sel, 1], props.extents[sel, 0],
                                  props.extents[sel, 1], props.yaws[sel])
                for i in sel[hit]:
                    key = -1 - int(i)  # props get negative ids
                    new = contacts.get(key, -10**9) < recent
                    contacts[key] = self._frame
                    solid.append((float(c[i, 0]), float(c[i, 1])))
                    if new:
                        events.append(SimEvent(self._frame, "collision", p.x, p.y, key, "static",
                                               PROP_TYPE_IDS.get(int(props.classes[i]), "static.prop")))
        if solid:
            self._block(solid)

        loc = carla.Location(p.x, p.y, p.z)
        wp = self.map.get_waypoint(loc, project_to_road=False, lane_type=carla.LaneType.Any)
        if wp is not None:
            key = (wp.road_id, wp.section_id, wp.lane_id)
            prev = self._lane_key
            if prev is not None and key != prev and key[0] == prev[0] and key[1] == prev[1] and wp.lane_type == carla.LaneType.Driving:
                marking = wp.left_lane_marking if abs(key[2]) > abs(prev[2]) else wp.right_lane_marking
                if (key[2] > 0) != (prev[2] > 0):
                    marking = wp.left_lane_marking
                events.append(SimEvent(self._frame, "lane_invasion", p.x, p.y, detail=str(marking.type)))
            self._lane_key = key
        ground = int(self._scene.ground.lookup(np.array([p.x]), np.array([p.y]))[0])
        off = ground != OCC["driveable_surface"]
        if off and not self._off_road:
            events.append(SimEvent(self._frame, "off_road", p.x, p.y, detail=f"ground class {ground}"))
        self._off_road = off
        return events

    def _block(self, solid: list[tuple[float, float]]) -> None:
        """Rigid obstacles: an inelastic crash stops the ego, and it cannot drive further into them.

        A move that brings the ego centre closer to any touched obstacle is undone; backing away is allowed.
        """
        p, q = self._ego.pose, self._prev_pose
        closer = any(math.hypot(p.x - x, p.y - y) < math.hypot(q.x - x, q.y - y) for x, y in solid)
        if closer:
            p.x, p.y, p.yaw = q.x, q.y, q.yaw
            self._ego.stop()

    def _render(self, want_depth: bool) -> dict[str, Any]:
        gt = self._gt
        out: dict[str, Any] = {}
        for period, renderer in ((1, self._renderer), *self._tick_renderers.items()):
            if renderer is not None and self._frame % period == 0:
                out.update(renderer.render(gt.ego.pose, gt.actors, gt.traffic_lights, self._weather,
                                           frame=self._frame, want_depth=want_depth,
                                           street_lights=self._street_lights))
        return out

    def _rig_depth_views(self, gt: GroundTruth) -> list[tuple[CameraSpec, np.ndarray]]:
        frames = self._last_render
        # any camera of this tick with the rig's mount and fov and a depth buffer (a private id or a depth camera
        # of another size too) serves: no second render
        views: dict[str, tuple[CameraSpec, np.ndarray]] = {}
        for rig_cam in nuscenes_rig():
            for c in self._cameras:
                f = frames.get(c.id)
                if f is not None and f.depth is not None and _same_mount(c, rig_cam):
                    views[rig_cam.id] = (c, f.depth)
                    break
        if len(views) == len(NUSCENES_RIG):
            return list(views.values())
        from sim.embedded.render import Renderer
        if _OCC_RIG not in self._renderer_pool:
            self._renderer_pool[_OCC_RIG] = Renderer(self._scene, list(_OCC_RIG))
        out = self._renderer_pool[_OCC_RIG].render(gt.ego.pose, gt.actors, gt.traffic_lights, self._weather,
                                                   frame=self._frame, want_depth=True)
        return [(spec, out[spec.id].depth) for spec in _OCC_RIG]

    def _read_sensors(self) -> dict[str, tuple[int, Any]]:
        f = self._frame
        data: dict[str, tuple[int, Any]] = {}
        frames = self._render(self.config.render_depth) if self._cameras else {}
        self._last_render = frames
        ego = self._ego.state()
        for s in self._sensors:
            sid, stype = s["id"], s["type"]
            if stype in CAMERA_TYPES:
                if sid in frames:  # not captured this tick: a camera with a sensor_tick
                    data[sid] = (f, frames[sid].bgra)
            elif stype == "sensor.speedometer":
                data[sid] = (f, {"speed": float(ego.speed)})  # signed forward speed, as the leaderboard's
            elif stype == "sensor.other.imu":
                data[sid] = (f, self._imu(ego))
            elif stype == "sensor.other.gnss":
                x, y, z = self._sensor_world(s, ego.pose)
                data[sid] = (f, np.array(location_to_gnss(x, y, z, *self._geo), dtype=np.float64))
            elif stype == "sensor.lidar.ray_cast":
                data[sid] = (f, self._lidar(s))
            elif stype == "sensor.other.radar":
                data[sid] = (f, self._radar(s, ego))
            elif stype == "sensor.opendrive_map":
                data[sid] = (f, {"opendrive": self._town.xodr_text})
        return data

    @staticmethod
    def _sensor_world(s: dict[str, Any], pose: Pose) -> tuple[float, float, float]:
        yaw = math.radians(pose.yaw)
        sx, sy = float(s.get("x", 0.0)), float(s.get("y", 0.0))
        return (pose.x + sx * math.cos(yaw) - sy * math.sin(yaw), pose.y + sx * math.sin(yaw) + sy * math.cos(yaw),
                pose.z + float(s.get("z", 0.0)))

    @staticmethod
    def _imu(ego) -> np.ndarray:
        """CARLA IMU: accelerometer (m/s^2, with gravity), gyroscope (rad/s), compass (rad, 0 = north = -y)."""
        compass = math.radians(ego.pose.yaw + 90.0) % (2.0 * math.pi)
        ax, ay, _ = ego.accel
        return np.array([ax, ay, GRAVITY, 0.0, 0.0, math.radians(ego.yaw_rate), compass], dtype=np.float64)

    def _lidar(self, sensor: dict[str, Any]) -> np.ndarray:
        """A ray-cast LiDAR through the occupancy grid: (N, 4) x, y, z, intensity in the sensor frame."""
        from sim.embedded.lidar import LidarSpec, lidar_points

        return lidar_points(self._sensor_semantics(), LidarSpec.from_sensor_dict(sensor, tick=self._frame))

    def _radar(self, sensor: dict[str, Any], ego: EgoState) -> np.ndarray:
        """A radar through the occupancy grid: (N, 4) depth, altitude, azimuth, velocity (sim/embedded/radar.py)."""
        from sim.embedded.radar import RadarSpec, radar_detections

        return radar_detections(self._sensor_semantics(), RadarSpec.from_sensor_dict(sensor), ego, self._gt.actors)

    def _sensor_semantics(self) -> np.ndarray:
        """The label grid around the ego this tick, built once for all LiDARs and radars."""
        if self._sensor_sem is None or self._sensor_sem[0] is not self._gt:
            self._sensor_sem = (self._gt, self._occ_builder.semantics(self._gt.ego.pose, self._gt.actors))
        return self._sensor_sem[1]
