"""--record DIR: an mp4 per route of the six surround cameras and a top view (OpenCV only).

The six nuScenes rig cameras are rendered for the video under private sensor ids (the agent never sees them);
cameras the agent already has with the rig's ids are reused. The top view draws the map lanes, the route, the
actors and the ego, north up, 40 m around the ego.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import carla
import cv2
import numpy as np

from sim.sensors import CAMERA_ORDER, rig_sensor_dicts
from sim.types import GroundTruth

CAM_W, CAM_H = 320, 180  # per camera tile
TOP = 360  # top-view size in pixels (square)
TOP_RANGE = 40.0  # metres from the ego to the top view's edge
FPS = 10  # video frames per second (every other 20 Hz tick)


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

    def add(self, input_data: dict[str, tuple[int, Any]], gt: GroundTruth, frame: int) -> None:
        if frame % max(1, int(20 / FPS)):
            return
        tiles = []
        for cid in CAMERA_ORDER:
            item = input_data.get(self.prefix + cid) or input_data.get(cid)
            img = np.zeros((CAM_H, CAM_W, 3), np.uint8)
            if item is not None and isinstance(item[1], np.ndarray) and item[1].ndim == 3:
                img = cv2.resize(np.ascontiguousarray(item[1][:, :, :3]), (CAM_W, CAM_H))
            cv2.putText(img, cid, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(img)
        grid = np.vstack([np.hstack(tiles[:3]), np.hstack([tiles[4], tiles[3], tiles[5]])])  # (2H, 3W, 3)
        top = cv2.resize(self._top_view(gt), (grid.shape[0], grid.shape[0]))
        canvas = np.hstack([grid, top])
        cv2.putText(
            canvas,
            f"t={gt.timestamp:6.1f}s v={gt.ego.speed * 3.6:5.1f}km/h",
            (8, canvas.shape[0] - 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 255, 255),
            1,
            cv2.LINE_AA,
        )
        if self.writer is None:
            h, w = canvas.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
        self.writer.write(canvas)
        self.n += 1

    def _top_view(self, gt: GroundTruth) -> np.ndarray:
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
        return img

    def close(self) -> str | None:
        if self.writer is None:
            return None
        self.writer.release()
        return str(self.path)


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
