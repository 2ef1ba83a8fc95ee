"""The data collector: turns the simulator's ground truth of a driven route into dataset key frames.

It observes the route loop as the criteria and the recorder do (the RouteObserver hooks of
leaderboard/route_runner.py, by duck typing: agent/ does not import leaderboard/), and writes through
occvla.data.writer in the format of occvla/data/format.py. Per key frame (2 Hz): the six rig cameras (private
cameras with a `sensor_tick`, so they render only on key frames, unless the driving agent already has the rig),
the ego pose, the boxes of every actor within 50 m (nuScenes categories, instance tokens kept across frames,
visibility from depth renders of the rig), the speedometer, the route command (derived as the OccVLA agent derives
it: GNSS position against the GPS plan, never the future), the next 6 ego poses (ego frame), the meta-action, Occ3D
labels, QA, and the expert's own 3 s plan from that state.

Labels never come from the driving agent: a shadow expert (agent/expert_planner.py on the same ground truth) runs
beside whatever drives and gives the plan and the reason for the "what should the ego do and why" answer. With
`perturb`, seeded short steering / braking excursions are added to the driving controls (recovery data); the labels
still come from the shadow expert's plan from the perturbed state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import carla
import cv2
import numpy as np

from agent.controllers import ego_to_world, world_to_ego
from agent.expert_config import ExpertConfig
from agent.expert_planner import Decision, ExpertPlanner, decide
from agent.occvla_agent import RouteCommands
from agent.route_plan import RoutePlan
from occvla.data.format import (
    CAMERAS,
    KEYFRAME_HZ,
    NUM_FUTURE,
    attribute_of,
    camera_extrinsics,
    carla_to_global,
    carla_yaw_to_global,
    category_of,
    intrinsics,
    make_token,
    visibility_token,
    yaw_quat,
)
from occvla.data.geometry import rot_to_quat
from occvla.data.qa import annotation_qa
from occvla.data.writer import Annotation, CameraCalib, DatasetWriter, Keyframe
from occvla.meta_actions import meta_action_from_trajectory
from occvla.planning import ROUTE_PLAN_SPACINGS
from sim.geo import geo_reference, location_to_gnss
from sim.route_planner import downsample_route
from sim.sensors import NUSCENES_RIG
from sim.types import FIXED_DELTA_SECONDS, ActorState, GroundTruth

PREFIX = "_collect_"
DEPTH_SIZE = (
    200,
    113,
)  # width, height of the depth rig (visibility, the simulator's mask_camera) beside an agent's own cameras
DEPTH_RANGE_M = 1000.0
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds: the time base of every scene


@dataclass
class CollectOptions:
    """What --collect sets (plain data: it travels to Ray workers inside RouteOptions)."""

    out_dir: str
    width: int = 400
    height: int = 225
    version: str = "v1.0-trainval"
    box_radius: float = 50.0
    perturb: bool = False  # recovery perturbations of the driving controls
    perturb_rate: float = 0.1  # excursions started per second (on average)
    flush_every_s: float = 30.0
    jpeg_quality: int = 90
    plan_response_s: float = (
        0.45  # s: how fast the ego's speed follows the expert's target (the plan's rollout)
    )


def scene_name(town: str, route_id: str, weather: str, seed: int) -> str:
    """The scene (episode) name: unique per town, route (with repetition), weather and seed; filesystem-safe."""
    raw = f"{town}_{route_id}_{weather}_s{seed}"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in raw)


def _same_view(s: dict[str, Any], rig: tuple[float, float, float, float, float]) -> bool:
    """A sensor dict mounted and aimed as a rig camera (same position, yaw, zero pitch/roll, same fov)."""
    vals = (s.get("x", 0.0), s.get("y", 0.0), s.get("z", 0.0), s.get("yaw", 0.0), s.get("fov", 90.0))
    flat = abs(float(s.get("pitch", 0.0))) < 1e-6 and abs(float(s.get("roll", 0.0))) < 1e-6
    return flat and all(abs(float(a) - b) < 1e-6 for a, b in zip(vals, rig, strict=True))


def decode_depth(bgra: np.ndarray) -> np.ndarray:
    """CARLA's depth camera encoding: (H, W, 4) uint8 BGRA -> (H, W) float32 metres."""
    b, g, r = (bgra[..., i].astype(np.float64) for i in range(3))
    return ((r + g * 256.0 + b * 65536.0) / (256.0**3 - 1.0) * DEPTH_RANGE_M).astype(np.float32)


def box_sample_points(a: ActorState) -> np.ndarray:
    """(9, 3) world points inside an actor's box: its centre and the 8 corners pulled 20 % in."""
    ex, ey, ez = a.extent
    c, s = math.cos(math.radians(a.yaw)), math.sin(math.radians(a.yaw))
    local = np.array(
        [[0.0, 0.0, 0.0]]
        + [[sx * ex, sy * ey, sz * ez] for sx in (-0.8, 0.8) for sy in (-0.8, 0.8) for sz in (-0.8, 0.8)]
    )
    wx = a.x + local[:, 0] * c - local[:, 1] * s
    wy = a.y + local[:, 0] * s + local[:, 1] * c
    return np.stack([wx, wy, a.z + ez + local[:, 2]], 1)


VISIBILITY_TOLERANCE_M = 0.3  # depth-buffer and sampling slack when comparing with the box's own surface


def visible_fraction(actor: ActorState, ego_pose: Any, depths: dict[str, np.ndarray]) -> float:
    """The fraction of an actor's box sample points that some rig camera sees.

    A point is seen by a camera when it projects into the image and nothing was rendered in front of the box along
    that ray: the rendered depth is not shorter than the depth where the ray (camera -> point) enters the box
    (a slab test in the box's frame), so the box's own near side never counts as an occluder.
    """
    points = box_sample_points(actor)  # (P, 3) world
    yaw = math.radians(ego_pose.yaw)
    ce, se = math.cos(yaw), math.sin(yaw)
    dx, dy = points[:, 0] - ego_pose.x, points[:, 1] - ego_pose.y
    vx, vy = ce * dx + se * dy, -se * dx + ce * dy  # vehicle frame: fwd, right
    vz = points[:, 2] - ego_pose.z
    ext = np.asarray(actor.extent, np.float64)
    cb, sb = math.cos(math.radians(actor.yaw)), math.sin(math.radians(actor.yaw))
    centre = np.array([actor.x, actor.y, actor.z + ext[2]])
    seen = np.zeros(len(points), bool)
    for ch, depth in depths.items():
        mx, my, mz, myaw, fov = NUSCENES_RIG[ch]
        h, w = depth.shape
        cy, sy = math.cos(math.radians(myaw)), math.sin(math.radians(myaw))
        px, py, pz = vx - mx, vy - my, vz - mz
        fwd, right = cy * px + sy * py, -sy * px + cy * py
        f = w / (2.0 * math.tan(math.radians(fov) / 2.0))
        ok = fwd > 0.1
        u = np.where(ok, w / 2.0 + f * right / np.maximum(fwd, 0.1), -1).astype(np.int64)
        v = np.where(ok, h / 2.0 - f * pz / np.maximum(fwd, 0.1), -1).astype(np.int64)
        ok &= (u >= 0) & (u < w) & (v >= 0) & (v < h)
        idx = np.nonzero(ok)[0]
        if not len(idx):
            continue
        # where the ray camera -> point enters the box, as a fraction of the way (slab test in the box's frame)
        cam = np.array([ego_pose.x + ce * mx - se * my, ego_pose.y + se * mx + ce * my, ego_pose.z + mz])
        c_rel = cam - centre
        d = points[idx] - cam  # (n, 3)
        c_l = np.array([cb * c_rel[0] + sb * c_rel[1], -sb * c_rel[0] + cb * c_rel[1], c_rel[2]])
        d_l = np.stack([cb * d[:, 0] + sb * d[:, 1], -sb * d[:, 0] + cb * d[:, 1], d[:, 2]], 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-ext - c_l) / d_l, (ext - c_l) / d_l
        t_in = np.clip(np.nan_to_num(np.minimum(t1, t2), nan=-np.inf).max(1), 0.0, 1.0)  # (n,)
        seen[idx] |= depth[v[idx], u[idx]] >= t_in * fwd[idx] - VISIBILITY_TOLERANCE_M
    return float(seen.mean()) if len(points) else 0.0


def expert_plan(
    planner: ExpertPlanner, gt: GroundTruth, cfg: ExpertConfig, response_s: float = 0.45
) -> tuple[np.ndarray, Decision]:
    """The expert's own 3 s plan from this state: its decision law (agent/expert_planner.decide) rolled out.

    Every 0.5 s the expert decides again on the ground truth moved forward (the ego along its path at the rolled-out
    speed, other actors at constant velocity); in between the speed follows the decision's target as the expert's
    speed controller does (the acceleration (target - v) / idm_tau). Returns (6, 2) ego-frame waypoints (x forward,
    y left) at 0.5 .. 3 s and the first decision (the one the expert takes now).
    """
    e = gt.ego
    mem = planner.memory.copy()
    v, s = max(e.speed, 0.0), 0.0
    dt = FIXED_DELTA_SECONDS
    sub = round(1.0 / (KEYFRAME_HZ * dt))
    cur = gt
    out_s: list[float] = []
    first: Decision | None = None
    path_local = cum = None
    for k in range(NUM_FUTURE):
        # now: the decision the expert takes on this tick (memoised, so the driving expert does not decide twice)
        decision, mem = planner.decide_now(gt) if k == 0 and cfg is planner.cfg else decide(cur, planner.route, mem, cfg)
        if k == 0:
            first = decision
            path = planner.path_ahead(decision.route_index, length=60.0, offset=decision.nudge_offset)
            path_local = world_to_ego(path, e.pose.x, e.pose.y, e.pose.yaw)  # (K, 2)
            cum, s0 = _arc_length_at_origin(path_local)
        acc = float(
            np.clip(
                (decision.target_speed - v) / response_s,
                -2.0 * cfg.idm_comfort_decel,
                2.0 * cfg.idm_max_accel,
            )
        )
        for _ in range(sub):
            v = max(0.0, v + acc * dt)
            s += v * dt
        out_s.append(s)
        x = float(np.interp(s0 + s, cum, path_local[:, 0]))
        y = float(np.interp(s0 + s, cum, path_local[:, 1]))
        x2 = float(np.interp(s0 + s + 1.0, cum, path_local[:, 0]))
        y2 = float(np.interp(s0 + s + 1.0, cum, path_local[:, 1]))
        wx, wy = ego_to_world(np.array([[x, y], [x2, y2]]), e.pose.x, e.pose.y, e.pose.yaw)
        yaw = math.degrees(math.atan2(wy[1] - wx[1], wy[0] - wx[0]))
        t = (k + 1) / KEYFRAME_HZ
        ego = replace(
            e,
            pose=replace(e.pose, x=float(wx[0]), y=float(wx[1]), yaw=yaw),
            speed=v,
            vx=v * math.cos(math.radians(yaw)),
            vy=v * math.sin(math.radians(yaw)),
        )
        actors = [replace(a, x=a.x + a.vx * t, y=a.y + a.vy * t) for a in gt.actors]
        cur = replace(
            gt, frame=gt.frame + (k + 1) * sub, timestamp=gt.timestamp + t, ego=ego, actors=actors, events=[]
        )
    ss = s0 + np.asarray(out_s)
    wps = np.stack([np.interp(ss, cum, path_local[:, 0]), np.interp(ss, cum, path_local[:, 1])], 1)
    return wps.astype(np.float32), first


def _arc_length_at_origin(pts: np.ndarray) -> tuple[np.ndarray, float]:
    """(cumulative arc length (K,), arc length of the ego's (the origin's) projection onto the polyline)."""
    d = np.diff(pts, axis=0)  # (K-1, 2)
    seg = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.clip(np.einsum("ij,ij->i", -pts[:-1], d) / seg**2, 0.0, 1.0)
    foot = pts[:-1] + t[:, None] * d
    j = int(np.argmin(np.hypot(foot[:, 0], foot[:, 1])))
    return cum, float(cum[j] + t[j] * seg[j])


class DataCollector:
    """A route observer (see leaderboard/route_runner.py RouteObserver) that writes one scene per route."""

    done = False

    def __init__(self, options: CollectOptions, seed: int = 0) -> None:
        self.o = options
        self.seed = seed
        self.writer = DatasetWriter(
            options.out_dir, options.version, options.flush_every_s, options.jpeg_quality, background=True
        )  # key frames are encoded and written on a thread while the simulator drives on
        self.cam_ids: dict[str, str] = {}
        self.keyframe_every = round(1.0 / (KEYFRAME_HZ * FIXED_DELTA_SECONDS))
        self.n_keyframes = 0
        self.on_keyframe: Any = None  # optional callback(n) for progress bars

    # ------------------------------------------------------------------ hooks
    def extra_sensors(self, ctx: Any, taken: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Private rig cameras at the dataset size that capture on key frames only, a depth rig for visibility and
        the simulator's mask_camera, and a speedometer. A driving agent's own rig cameras of the same size are
        reused instead (they already render every tick)."""
        w, h, period = self.o.width, self.o.height, 1.0 / KEYFRAME_HZ
        have = {s["id"]: s for s in ctx.agent_sensors if s.get("type") == "sensor.camera.rgb"}
        extra: list[dict[str, Any]] = []
        for ch, (x, y, z, yaw, fov) in NUSCENES_RIG.items():
            s = have.get(ch)
            if (
                s is not None
                and _same_view(s, (x, y, z, yaw, fov))
                and int(s.get("width", 0)) >= w
                and int(s.get("height", 0)) >= h
                and abs(int(s["width"]) * h - int(s["height"]) * w) <= w
            ):
                self.cam_ids[ch] = ch  # the agent's own rig camera, downscaled to the dataset size
                continue
            self.cam_ids[ch] = PREFIX + ch
            extra.append(
                {
                    "type": "sensor.camera.rgb",
                    "id": PREFIX + ch,
                    "x": x,
                    "y": y,
                    "z": z,
                    "roll": 0.0,
                    "pitch": 0.0,
                    "yaw": yaw,
                    "width": w,
                    "height": h,
                    "fov": fov,
                    "sensor_tick": period,
                }
            )
        for ch, (x, y, z, yaw, fov) in NUSCENES_RIG.items():
            # beside a private camera the depth camera takes its size: the embedded renderer fills both in one
            # pass (a stacked view); beside an agent's camera (rendered every tick) a small depth view is cheaper
            dw, dh = (w, h) if self.cam_ids[ch] == PREFIX + ch else DEPTH_SIZE
            extra.append(
                {
                    "type": "sensor.camera.depth",
                    "id": PREFIX + "depth_" + ch,
                    "x": x,
                    "y": y,
                    "z": z,
                    "roll": 0.0,
                    "pitch": 0.0,
                    "yaw": yaw,
                    "width": dw,
                    "height": dh,
                    "fov": fov,
                    "sensor_tick": period,
                }
            )
        extra.append({"type": "sensor.speedometer", "id": PREFIX + "SPEED"})
        return extra

    def on_route_start(self, ctx: Any) -> None:
        cfg = ctx.config
        weather = ctx.opts.weather or "route-" + make_token("weather", cfg.weathers)[:6]
        self.scene = scene_name(cfg.town, cfg.route_id, str(weather), ctx.opts.seed)
        self.sim = ctx.sim
        driver = getattr(ctx.agent, "planner", None)
        if isinstance(driver, ExpertPlanner):  # the expert drives: its own planner is the label source
            self.planner, self.expert_cfg, self.shadow = driver, driver.cfg, False
        else:  # another agent drives: the expert runs beside it in shadow mode, on the same ground truth
            self.expert_cfg = ExpertConfig()
            route_plan = RoutePlan.from_dense_route(ctx.route, ctx.cmap, self.expert_cfg)
            self.planner, self.shadow = ExpertPlanner(route_plan, self.expert_cfg), True
        self.geo = geo_reference(ctx.cmap.to_opendrive())
        self.commands = RouteCommands(ctx.gps_route)  # as the agent does on its downsampled plan
        # the plan points the agent reads (OccVLA's planner.route_input), on both leaderboards' plans: 1.0 gives
        # the agent a point every 50 m, 2.x every 200 m (and every turn and lane change on both)
        self.route_plans = {
            f"{d:g}": RouteCommands([ctx.gps_route[i] for i in downsample_route(ctx.route, d)])
            for d in ROUTE_PLAN_SPACINGS
        }
        self.poses: dict[int, tuple[float, float, float, float]] = {}  # frame -> x, y, z, yaw (CARLA)
        self.pending: list[dict[str, Any]] = []
        self.rng = np.random.default_rng([self.seed, sum(map(ord, self.scene))])
        self.perturb_left = 0
        self.perturb_ctl = (0.0, 0.0)  # steer offset, brake
        cams = []
        for ch in CAMERAS:
            x, y, z, yaw, fov = NUSCENES_RIG[ch]
            trans, rot = camera_extrinsics(x, y, z, yaw)
            cams.append(
                CameraCalib(
                    ch,
                    trans,
                    rot_to_quat(rot),
                    intrinsics(self.o.width, self.o.height, fov),
                    self.o.width,
                    self.o.height,
                )
            )
        desc = f"{cfg.town}, route {cfg.route_id}, weather {weather}, seed {ctx.opts.seed}"
        sim_cfg = getattr(ctx.sim, "config", None)
        traffic = getattr(sim_cfg, "traffic", None)
        provenance = {
            "simulator": type(ctx.sim).__name__,
            "project_version": _project_version(),
            "route": cfg.route_id,
            "weather": str(weather),
            "seed": ctx.opts.seed,
            "agent": ctx.opts.agent,
            "traffic": {"vehicles": traffic.vehicles, "walkers": traffic.walkers}
            if traffic is not None
            else {},
            "scenarios": ctx.opts.scenarios_mode if cfg.scenarios else "none",
            "perturb": self.o.perturb,
        }
        self.writer.begin_scene(
            self.scene, cfg.town, desc, cams, {"vehicle": "lincoln.mkz_2017", "provenance": provenance}
        )

    def on_tick(self, ctx: Any, input_data: dict[str, tuple[int, Any]], gt: GroundTruth) -> None:
        p = gt.ego.pose
        self.poses[gt.frame] = (p.x, p.y, p.z, p.yaw)
        lat, lon, _ = location_to_gnss(p.x, p.y, p.z, *self.geo)
        command = self.commands.command(lat, lon)
        if self.shadow:
            self.planner.step(gt)  # keeps the shadow expert's memory and controllers in step with the drive
        if gt.frame % self.keyframe_every == 0:
            route = {k: rc.route_points(lat, lon, p.yaw) for k, rc in self.route_plans.items()}  # each (3, 2)
            self.pending.append(self._capture(input_data, gt, command, route))
        while self.pending and self.pending[0]["frame"] + NUM_FUTURE * self.keyframe_every <= gt.frame:
            self._write(self.pending.pop(0))

    def on_control(self, ctx: Any, control: carla.VehicleControl, frame: int) -> carla.VehicleControl:
        if not self.o.perturb:
            return control
        if self.perturb_left <= 0 and self.rng.random() < self.o.perturb_rate * FIXED_DELTA_SECONDS:
            self.perturb_left = int(self.rng.integers(10, 30))  # 0.5 .. 1.5 s
            if self.rng.random() < 0.7:
                self.perturb_ctl = (float(self.rng.choice([-1, 1]) * self.rng.uniform(0.1, 0.3)), 0.0)
            else:
                self.perturb_ctl = (0.0, float(self.rng.uniform(0.3, 0.6)))
        if self.perturb_left <= 0:
            return control
        self.perturb_left -= 1
        steer, brake = self.perturb_ctl
        out = carla.VehicleControl(
            throttle=0.0 if brake else control.throttle,
            steer=float(np.clip(control.steer + steer, -1, 1)),
            brake=max(control.brake, brake),
            hand_brake=control.hand_brake,
            reverse=control.reverse,
        )
        return out

    def on_route_end(self, ctx: Any) -> None:
        """Write the key frames still waiting for their future (partial trajectories) and close the scene."""
        try:
            for kf in self.pending:
                self._write(kf)
            self.pending = []
            self.writer.end_scene()
        except Exception:
            self.pending = []
            try:  # the tables still list every key frame the journal holds (e.g. a full disk for images only)
                self.writer.flush()
            except Exception:  # noqa: BLE001, S110 - the first error is the one to report
                pass
            raise
        finally:
            self.writer.close()

    # ------------------------------------------------------------------ key frames
    def _capture(
        self, input_data: dict[str, tuple[int, Any]], gt: GroundTruth, command: int, route: dict[str, np.ndarray]
    ) -> dict[str, Any]:
        """Everything of a key frame that is known now (its future is filled in 3 s later)."""
        images = {}
        for ch in CAMERAS:
            item = input_data.get(self.cam_ids[ch])
            if item is None:
                raise RuntimeError(f"camera {self.cam_ids[ch]} gave no image on key frame {gt.frame}")
            img = cv2.cvtColor(item[1], cv2.COLOR_BGRA2BGR) if item[1].shape[2] == 4 else np.ascontiguousarray(item[1])
            if img.shape[:2] != (self.o.height, self.o.width):
                img = cv2.resize(img, (self.o.width, self.o.height), interpolation=cv2.INTER_AREA)
            images[ch] = img
        depths = {
            ch: decode_depth(input_data[PREFIX + "depth_" + ch][1])
            for ch in CAMERAS
            if PREFIX + "depth_" + ch in input_data
        }
        occ = self.sim.occupancy()
        e = gt.ego.pose
        objects, anns = [], []
        for a in gt.actors:
            if math.hypot(a.x - e.x, a.y - e.y) > self.o.box_radius:
                continue
            cat = category_of(a.vclass, a.type_id)
            ex, ey, ez = a.extent
            frac = visible_fraction(a, e, depths) if depths else 1.0
            anns.append(
                Annotation(
                    instance_key=str(a.id),
                    category=cat,
                    translation=carla_to_global(a.x, a.y, a.z + ez),
                    size=[2 * ey, 2 * ex, 2 * ez],
                    rotation=yaw_quat(carla_yaw_to_global(a.yaw)),
                    velocity=[float(a.vx), float(-a.vy)],
                    attributes=attribute_of(cat, a.speed, a.source == "parked"),
                    visibility_token=visibility_token(frac),
                    num_pts=int(round(frac * 9)),
                )
            )
            xy = world_to_ego(np.array([[a.x, a.y]]), e.x, e.y, e.yaw)[0]
            objects.append({"category": cat, "x": float(xy[0]), "y": float(xy[1]), "moving": a.speed > 0.5})
        speed_item = input_data.get(PREFIX + "SPEED")
        speed = float(speed_item[1]["speed"]) if speed_item is not None else abs(gt.ego.speed)
        plan, decision = expert_plan(self.planner, gt, self.expert_cfg, self.o.plan_response_s)
        return {
            "frame": gt.frame,
            "images": images,
            "anns": anns,
            "objects": objects,
            "occ": occ,
            "speed": speed,
            "command": int(command),
            "route": {k: v.round(3).tolist() for k, v in route.items()},
            "plan": plan,
            "reason": decision.reason,
            "target_speed": float(decision.target_speed),
            "perturbed": bool(self.o.perturb and self.perturb_left > 0),
            "pose": (e.x, e.y, e.z, e.yaw),
        }

    def _write(self, kf: dict[str, Any]) -> None:
        x, y, z, yaw = kf["pose"]
        fut_frames = [kf["frame"] + k * self.keyframe_every for k in range(1, NUM_FUTURE + 1)]
        valid = [f in self.poses for f in fut_frames]
        last = kf["pose"]
        pts = []
        for f, ok in zip(fut_frames, valid, strict=True):
            if ok:
                last = self.poses[f]
            pts.append(last[:2])
        traj = world_to_ego(np.array(pts), x, y, yaw).astype(np.float32)  # (6, 2) ego frame
        meta = meta_action_from_trajectory(traj, kf["speed"])
        expert_meta = meta_action_from_trajectory(np.asarray(kf["plan"]), kf["speed"])
        extra = {
            "speed": kf["speed"],
            "command": kf["command"],
            "route_points": kf["route"],
            "meta_action": meta,
            "trajectory": traj.round(4).tolist(),
            "trajectory_valid": valid,
            "expert_plan": np.asarray(kf["plan"]).round(4).tolist(),
            "expert_meta_action": expert_meta,
            "expert_reason": kf["reason"],
            "expert_target_speed": kf["target_speed"],
            "perturbed": kf["perturbed"],
            # False where another agent drove (DAgger): its driven future is no label, the shadow expert's plan is
            "expert_drove": not self.shadow,
            "qa": [list(p) for p in annotation_qa(kf["objects"], expert_meta if self.shadow else meta, kf["reason"])],
        }
        occ = kf["occ"]
        self.writer.add(
            Keyframe(
                frame=kf["frame"],
                timestamp=T0_US + int(round(kf["frame"] * FIXED_DELTA_SECONDS * 1e6)),
                ego_translation=carla_to_global(x, y, z),
                ego_rotation=yaw_quat(carla_yaw_to_global(yaw)),
                images=kf["images"],
                annotations=kf["anns"],
                semantics=occ.semantics,
                mask_lidar=occ.mask_lidar,
                mask_camera=occ.mask_camera,
                extra=extra,
            )
        )
        self.n_keyframes += 1
        if self.on_keyframe is not None:
            self.on_keyframe(self.n_keyframes)


def _project_version() -> str:
    try:
        from importlib.metadata import version

        return version("occvla-drive")
    except Exception:  # noqa: BLE001 - not installed: a source checkout
        return "source"


def collect_options_from_args(
    out_dir: str, size: str, version: str, perturb: bool, resume: bool
) -> CollectOptions:
    """CollectOptions from run.py's flags; checks the output folder now (ValueError: one line)."""
    from pathlib import Path

    from occvla.data.writer import DatasetWriteError, check_output_dir

    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--collect-size must look like 400x225, got {size!r}") from None
    if not (16 <= w <= 4096 and 9 <= h <= 4096):
        raise ValueError(f"--collect-size {w}x{h} out of range")
    try:
        check_output_dir(Path(out_dir), resume)
    except DatasetWriteError as exc:
        raise ValueError(str(exc)) from None
    return CollectOptions(
        out_dir=str(Path(out_dir).resolve()), width=w, height=h, version=version, perturb=perturb
    )
