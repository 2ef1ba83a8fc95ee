"""`occvla/Drive-v0`: a gymnasium env around any simulator backend (embedded by default).

Observation: the six nuScenes cameras (RGB uint8), the ego's signed forward speed and the navigation command
(CARLA RoadOption) of the route ahead. Action: Box(throttle, steer, brake). Reward: metres of route progress minus
infraction penalties. Terminated on a collision or at the route's end; truncated after `max_steps`.

Any number of envs may live in one process (the first simulator runs libsumo, the others SUMO over TraCI), so
gymnasium's full check_env and `gymnasium.make_vec(..., vectorization_mode="sync" | "async")` work.

For leaderboard agents (leaderboard/gym_adapter.py): `reset(options={"sensors": agent.sensors()})` attaches the
agent's sensors too and every `info["input_data"]` then holds their readings in the leaderboard's
`{id: (frame, data)}` format; `env.unwrapped.dense_route` / `gps_route` are the episode's dense route (the plans an
agent is given) and `env.unwrapped.simulator` the simulator (for privileged agents).
"""

from __future__ import annotations

import math
from typing import Any

import carla
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.protocol import SimConfig, Simulator, TrafficConfig
from sim.sensors import CAMERA_ORDER, rig_sensor_dicts

# Reward shaping (metres of progress are the unit).
COLLISION_PENALTY = 50.0
OFF_ROAD_PENALTY = 5.0
LANE_INVASION_PENALTY = 1.0
ROUTE_END_TOLERANCE = 5.0  # metres from the last route point counts as arrived
DEFAULT_ROUTE_LENGTH = 300.0


class DriveEnv(gym.Env):
    """Closed-loop driving with six cameras. Every argument has a default."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, town: str = "OccTown01", route: str | None = None, route_id: str | None = None,
                 weather: str | carla.WeatherParameters = "ClearNoon", seed: int = 0, map_dir: str | None = None,
                 width: int = 400, height: int = 225, vehicles: int = 20, walkers: int = 10, max_steps: int = 2000,
                 simulator: str = "embedded", render_mode: str | None = None) -> None:
        from sim.weather import weather_from_name

        self.town, self.route, self.route_id, self.map_dir = town, route, route_id, map_dir
        self.weather = weather_from_name(weather) if isinstance(weather, str) else weather
        self.width, self.height, self.max_steps = width, height, max_steps
        self.simulator_kind = simulator
        self.render_mode = render_mode
        self._seed = seed
        self._traffic = TrafficConfig(vehicles=vehicles, walkers=walkers, seed=seed)
        self._sim: Simulator | None = None
        self._plan: np.ndarray = np.zeros((0, 2))  # (P, 2) dense route points, world frame
        self.dense_route: list = []  # [(carla.Transform, RoadOption)] dense route of the episode
        self.gps_route: list = []  # [({'lat', 'lon', 'z'}, RoadOption)] the same points
        self._extra_ids: list[str] = []  # ids of sensors attached through reset(options={"sensors": ...})
        self._commands: np.ndarray = np.zeros((0,), np.int64)
        self._progress_idx = 0
        self._steps = 0
        self._last_frame: dict[str, Any] = {}
        self.observation_space = spaces.Dict({
            "images": spaces.Box(0, 255, (len(CAMERA_ORDER), height, width, 3), np.uint8),
            "speed": spaces.Box(-100.0, 100.0, (1,), np.float32),  # signed forward speed, m/s
            "command": spaces.Discrete(8, start=-1),  # RoadOption -1..6
        })
        self.action_space = spaces.Box(np.array([0.0, -1.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))

    # ---------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        from sim.factory import make_simulator

        if seed is not None:
            self._seed = seed
            self._traffic = TrafficConfig(self._traffic.vehicles, self._traffic.walkers, seed, self._traffic.radius)
        if self._sim is not None:
            self._sim.close()
        self._sim = make_simulator(self.simulator_kind, SimConfig(town=self.town, map_dir=self.map_dir,
                                                                  seed=self._seed, traffic=self._traffic))
        cmap = self._sim.load_town(self.town, self.map_dir)
        start, plan, commands = self._make_route(cmap)
        self._plan, self._commands = plan, commands
        self._sim.set_weather(self.weather)
        self._sim.spawn_ego(start)
        sensors = rig_sensor_dicts(self.width, self.height) + [{"type": "sensor.speedometer", "id": "speed"}]
        self._extra_ids = []
        for s in (options or {}).get("sensors") or []:
            same = next((r for r in sensors if r["id"] == s.get("id")), None)
            if same is None:
                sensors.append(dict(s))
            elif any(s.get(k, same.get(k)) != same.get(k) for k in ("type", "width", "height", "fov")):
                raise ValueError(
                    f"sensor '{s.get('id')}' clashes with the env's own (type {same['type']}, "
                    f"{same.get('width')}x{same.get('height')}): rename it or make the env at that size"
                )
            self._extra_ids.append(s["id"])
        self._sim.attach_sensors(sensors)
        self._progress_idx, self._steps = 0, 0
        data = self._sim.tick()
        return self._observe(data), self._info(data, {"route_length": self._route_length()})

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (3,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 3 finite numbers (throttle, steer, brake), got {action!r}")
        a = np.clip(a, self.action_space.low, self.action_space.high)
        self._sim.apply_control(carla.VehicleControl(throttle=float(a[0]), steer=float(a[1]), brake=float(a[2])))
        data = self._sim.tick()
        self._steps += 1
        gt = self._sim.ground_truth()
        progress = self._advance(gt.ego.pose.x, gt.ego.pose.y)
        collided = any(e.kind == "collision" for e in gt.events)
        reward = progress
        reward -= COLLISION_PENALTY * collided
        reward -= OFF_ROAD_PENALTY * sum(e.kind == "off_road" for e in gt.events)
        reward -= LANE_INVASION_PENALTY * sum(e.kind == "lane_invasion" for e in gt.events)
        end = self._plan[-1]
        arrived = math.hypot(gt.ego.pose.x - end[0], gt.ego.pose.y - end[1]) < ROUTE_END_TOLERANCE and \
            self._progress_idx >= len(self._plan) - 10
        terminated = bool(collided or arrived)
        truncated = bool(self._steps >= self.max_steps and not terminated)
        info = {"events": [e.kind for e in gt.events], "route_completion": self._progress_idx / max(1, len(self._plan) - 1),
                "arrived": arrived}
        return self._observe(data), float(reward), terminated, truncated, self._info(data, info)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or not self._last_frame:
            return None
        imgs = self._last_frame
        top = np.concatenate([imgs[c] for c in CAMERA_ORDER[:3]], axis=1)
        bottom = np.concatenate([imgs[c] for c in CAMERA_ORDER[3:]], axis=1)
        return np.concatenate([top, bottom], axis=0)

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim = None

    @property
    def simulator(self) -> Simulator | None:
        """The episode's simulator (ground truth for privileged agents); None before reset()."""
        return self._sim

    # ---------------------------------------------------------------- internals
    def _info(self, data: dict[str, tuple[int, Any]], info: dict[str, Any]) -> dict[str, Any]:
        if self._extra_ids:
            info["input_data"] = {k: data[k] for k in self._extra_ids if k in data}
        return info

    def _observe(self, data: dict[str, tuple[int, Any]]) -> dict[str, Any]:
        self._last_frame = {c: data[c][1][:, :, 2::-1] for c in CAMERA_ORDER}  # BGRA -> RGB
        images = np.stack([self._last_frame[c] for c in CAMERA_ORDER]).astype(np.uint8)  # (6, H, W, 3)
        speed = np.clip([data["speed"][1]["speed"]], -100.0, 100.0).astype(np.float32)
        idx = min(self._progress_idx + 5, len(self._commands) - 1)
        return {"images": images, "speed": speed, "command": int(self._commands[idx])}

    def _make_route(self, cmap: carla.Map) -> tuple[carla.Transform, np.ndarray, np.ndarray]:
        from sim.geo import geo_reference
        from sim.route_planner import GlobalRoutePlanner, RoadOption, interpolate_trajectory

        planner = GlobalRoutePlanner(cmap, 1.0)
        if self.route is not None:
            from sim.routes import parse_routes_file

            routes = parse_routes_file(self.route)
            chosen = next((r for r in routes if self.route_id is None or str(r.id) == str(self.route_id)), None)
            if chosen is None:
                raise ValueError(f"route id '{self.route_id}' not in {self.route}")
            if chosen.town != self.town:
                raise ValueError(f"route {chosen.id} of {self.route} is in {chosen.town}, the env's town is {self.town}")
            keypoints = chosen.keypoint_locations()
        else:
            from sim.embedded.maps import spawn_points

            rng = np.random.default_rng(self._seed)
            spawns = spawn_points(cmap)
            start = spawns[int(rng.integers(len(spawns)))]
            wp = cmap.get_waypoint(start.location)
            keypoints, travelled = [wp.transform.location], 0.0
            while travelled < DEFAULT_ROUTE_LENGTH:
                nxt = wp.next(10.0)
                if not nxt:
                    break
                wp = nxt[int(rng.integers(len(nxt)))]
                travelled += 10.0
                keypoints.append(wp.transform.location)
            keypoints = [keypoints[0], keypoints[-1]] if len(keypoints) > 1 else keypoints
        if len(keypoints) < 2:
            raise ValueError("could not plan a route: fewer than 2 keypoints")
        self.gps_route, self.dense_route = interpolate_trajectory(
            cmap, keypoints, 1.0, geo_reference(cmap.to_opendrive()), planner=planner
        )
        if len(self.dense_route) < 2:
            raise ValueError("could not plan a route between the route's keypoints")
        plan = np.array([[t.location.x, t.location.y] for t, _ in self.dense_route])
        commands = np.array([int(o) if o != RoadOption.VOID else int(RoadOption.LANEFOLLOW) for _, o in self.dense_route])
        first = self.dense_route[0][0]
        start = carla.Transform(carla.Location(first.location.x, first.location.y, first.location.z + 0.5),
                                carla.Rotation(yaw=first.rotation.yaw))
        return start, plan, commands

    def _advance(self, x: float, y: float) -> float:
        lo, hi = self._progress_idx, min(len(self._plan), self._progress_idx + 50)
        d = np.hypot(self._plan[lo:hi, 0] - x, self._plan[lo:hi, 1] - y)
        best = lo + int(np.argmin(d))
        if best <= self._progress_idx:
            return 0.0
        seg = np.diff(self._plan[self._progress_idx:best + 1], axis=0)
        self._progress_idx = best
        return float(np.hypot(seg[:, 0], seg[:, 1]).sum())

    def _route_length(self) -> float:
        seg = np.diff(self._plan, axis=0)
        return float(np.hypot(seg[:, 0], seg[:, 1]).sum())
