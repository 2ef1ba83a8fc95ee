"""--record DIR: an mp4 per route of the six surround cameras and a top view (OpenCV only).

The six nuScenes rig cameras are rendered for the video under private sensor ids (the agent never sees them);
cameras the agent already has with the rig's ids are reused. The top view draws the map lanes, the route, the
actors and the ego, north up, 40 m around the ego.

What the agent decided is drawn when it says so: an agent with a ``debug_overlay()`` method returning
``{"waypoints": (N, 2) ego-frame metres (x forward, y left), "caption": str}`` (or None) gets its planned trajectory
projected onto the front camera (ground plane, the rig's pinhole) and drawn in the top view, and the caption
(e.g. the meta-action) written under the frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import carla
import cv2
import numpy as np

from sim.sensors import CAMERA_ORDER, NUSCENES_RIG, rig_sensor_dicts
from sim.types import GroundTruth

CAM_W, CAM_H = 320, 180  # per camera tile
TOP = 360  # top-view size in pixels (square)
TOP_RANGE = 40.0  # metres from the ego to the top view's edge
FPS = 10  # video frames per second (every other 20 Hz tick)
GRID = (  # as nuScenes shows a sample: the front three on top, the back three below, left to right
    ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT"),
    ("CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"),
)
PLAN_COLOR = (255, 0, 255)  # BGR magenta: the agent's planned trajectory


def agent_overlay(agent: Any) -> dict[str, Any] | None:
    """The agent's ``debug_overlay()`` (see the module docstring), or None when it has none or it fails."""
    fn = getattr(agent, "debug_overlay", None)
    if fn is None:
        return None
    try:
        out = fn()
    except Exception:  # noqa: BLE001 - a video must never end a route
        return None
    return out if isinstance(out, dict) else None


def project_to_front(waypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """Ego-frame ground points (N, 2) (x forward, y left) -> (M, 2) pixels in the front camera of the rig at
    ``width`` x ``height``; points less than 1 m in front of the camera are dropped."""
    cx, cy, cz, _, fov = NUSCENES_RIG["CAM_FRONT"]
    f = width / (2.0 * np.tan(np.radians(fov) / 2.0))
    depth = waypoints[:, 0] - cx  # (N,) metres ahead of the camera
    keep = depth > 1.0
    u = width / 2 + f * (-(waypoints[keep, 1]) - cy) / depth[keep]  # image x grows to the right (-y left)
    v = height / 2 + f * cz / depth[keep]  # the ground is cz below the camera
    return np.stack([u, v], 1)


def ego_to_world(waypoints: np.ndarray, x: float, y: float, yaw_deg: float) -> np.ndarray:
    """Ego-frame points (N, 2) (x forward, y left) -> CARLA world x, y (left-handed: y to the right)."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    fx, ry = waypoints[:, 0], -waypoints[:, 1]  # CARLA vehicle frame: y to the right
    return np.stack([x + fx * c - ry * s, y + fx * s + ry * c], 1)


def recording_cameras(prefix: str) -> list[dict[str, Any]]:
    """The six rig cameras at video resolution, ids prefixed so they never reach the agent."""
    cams = rig_sensor_dicts(CAM_W, CAM_H)
    for c in cams:
        c["id"] = prefix + c["id"]
    return cams


class RouteRecorder:
    """Accumulates frames of one route and writes `<dir>/<route_id>.mp4`."""

    def __init__(
        self,
        out_dir: str | Path,
        route_id: str,
        cmap: carla.Map,
        route_xy: np.ndarray,
        prefix: str = "_record_",
    ) -> None:
        self.path = Path(out_dir) / f"{route_id}.mp4"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.route_xy = route_xy  # (N, 2)
        self.lanes = [
            np.array([[w.transform.location.x, w.transform.location.y] for w in seg])
            for seg in _lane_polylines(cmap)
        ]
        self.writer: cv2.VideoWriter | None = None
        self.n = 0

    def add(
        self,
        input_data: dict[str, tuple[int, Any]],
        gt: GroundTruth,
        frame: int,
        overlay: dict[str, Any] | None = None,
    ) -> None:
        if frame % max(1, int(20 / FPS)):
            return
        plan = None
        if overlay is not None and overlay.get("waypoints") is not None:
            plan = np.asarray(overlay["waypoints"], np.float64).reshape(-1, 2)
            plan = np.concatenate([np.zeros((1, 2)), plan])  # the trajectory starts at the ego
        tiles: dict[str, np.ndarray] = {}
        for cid in CAMERA_ORDER:
            item = input_data.get(self.prefix + cid) or input_data.get(cid)
            img = np.zeros((CAM_H, CAM_W, 3), np.uint8)
            if item is not None and isinstance(item[1], np.ndarray) and item[1].ndim == 3:
                img = cv2.resize(np.ascontiguousarray(item[1][:, :, :3]), (CAM_W, CAM_H))
            if plan is not None and cid == "CAM_FRONT":
                _draw_plan(img, project_to_front(plan, CAM_W, CAM_H))
            cv2.putText(img, cid, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            tiles[cid] = img
        grid = np.vstack([np.hstack([tiles[c] for c in row]) for row in GRID])  # (2H, 3W, 3)
        top = cv2.resize(self._top_view(gt, plan), (grid.shape[0], grid.shape[0]))
        canvas = np.hstack([grid, top])
        text = f"t={gt.timestamp:6.1f}s v={gt.ego.speed * 3.6:5.1f}km/h"
        if overlay is not None and overlay.get("caption"):
            text += f"  {overlay['caption']}"
        cv2.putText(canvas, text, (8, canvas.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1,
                    cv2.LINE_AA)
        if self.writer is None:
            h, w = canvas.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
        self.writer.write(canvas)
        self.n += 1

    def _top_view(self, gt: GroundTruth, plan: np.ndarray | None = None) -> np.ndarray:
        img = np.full((TOP, TOP, 3), 30, np.uint8)
        ex, ey = gt.ego.pose.x, gt.ego.pose.y
        s = TOP / (2 * TOP_RANGE)

        def px(xy: np.ndarray) -> np.ndarray:
            return np.stack([(xy[:, 0] - ex) * s + TOP / 2, (xy[:, 1] - ey) * s + TOP / 2], 1).astype(
                np.int32
            )

        for lane in self.lanes:
            if len(lane) > 1 and np.min(np.abs(lane - (ex, ey)).max(1)) < TOP_RANGE * 1.5:
                cv2.polylines(img, [px(lane)], False, (90, 90, 90), 1, cv2.LINE_AA)
        cv2.polylines(img, [px(self.route_xy)], False, (200, 120, 0), 2, cv2.LINE_AA)
        for tl in gt.traffic_lights:
            color = {"Red": (0, 0, 255), "Yellow": (0, 200, 255), "Green": (0, 255, 0)}.get(
                tl.state, (128, 128, 128)
            )
            cv2.polylines(img, [px(np.array(tl.stop_line))], False, color, 2)
        for a in gt.actors:
            color = (
                (0, 200, 255)
                if a.category == "walker"
                else (200, 200, 200)
                if a.category == "vehicle"
                else (100, 160, 100)
            )
            cv2.fillPoly(img, [px(_box(a.x, a.y, a.yaw, a.extent[0], a.extent[1]))], color)
        e = gt.ego
        cv2.fillPoly(img, [px(_box(ex, ey, e.pose.yaw, e.extent[0], e.extent[1]))], (60, 60, 255))
        if plan is not None:
            _draw_plan(img, px(ego_to_world(plan, ex, ey, e.pose.yaw)))
        return img

    def close(self) -> str | None:
        if self.writer is None:
            return None
        self.writer.release()
        return str(self.path)


def _draw_plan(img: np.ndarray, pts: np.ndarray) -> None:
    """A polyline with a dot per waypoint."""
    if len(pts) == 0:
        return
    pts = np.round(pts).astype(np.int32)
    cv2.polylines(img, [pts], False, PLAN_COLOR, 2, cv2.LINE_AA)
    for p in pts[1:]:
        cv2.circle(img, (int(p[0]), int(p[1])), 3, PLAN_COLOR, -1, cv2.LINE_AA)


def _box(x: float, y: float, yaw: float, hx: float, hy: float) -> np.ndarray:
    c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    corners = np.array([[hx, hy], [hx, -hy], [-hx, -hy], [-hx, hy]])
    return np.stack([x + corners[:, 0] * c - corners[:, 1] * s, y + corners[:, 0] * s + corners[:, 1] * c], 1)


def _lane_polylines(cmap: carla.Map, step: float = 2.0) -> list[list[carla.Waypoint]]:
    """Every topology lane segment as a waypoint polyline (for drawing)."""
    out = []
    for a, b in cmap.get_topology():
        pts = [a]
        w = a
        for _ in range(2000):
            nxt = w.next(step)
            if not nxt or w.transform.location.distance(b.transform.location) < step:
                break
            w = nxt[0]
            pts.append(w)
        pts.append(b)
        out.append(pts)
    return out
