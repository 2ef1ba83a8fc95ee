"""Camera geometry in CARLA's frames: pose matrices, the GL view/projection, frustum planes.

CARLA world: x east, y south, z up (left-handed), yaw/pitch/roll in degrees. A pose matrix maps local
(forward, right, up) to world; its columns are the forward, right and up vectors, exactly as
`carla.Transform.get_matrix()` builds them.
"""

from __future__ import annotations

import math

import numpy as np

from sim.sensors import CameraSpec
from sim.types import Pose

NEAR, FAR = 0.2, 1000.0  # metres; FAR is also CARLA's depth-camera range (formats.DEPTH_RANGE)

# OpenGL eye space from camera local (forward, right, up): x_gl = right, y_gl = up, z_gl = -forward.
_AXES = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def pose_matrix(x: float, y: float, z: float, roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(4, 4) float64 local->parent transform, identical to carla.Transform(...).get_matrix()."""
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    cr, sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    return np.array(
        [
            [cp * cy, cy * sp * sr - sy * cr, -cy * sp * cr - sy * sr, x],
            [cp * sy, sy * sp * sr + cy * cr, -sy * sp * cr + cy * sr, y],
            [sp, -cp * sr, cp * cr, z],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def camera_to_world(ego: Pose, cam: CameraSpec) -> np.ndarray:
    """(4, 4) camera local (forward, right, up) -> world."""
    m_ego = pose_matrix(ego.x, ego.y, ego.z, ego.roll, ego.pitch, ego.yaw)
    return m_ego @ pose_matrix(cam.x, cam.y, cam.z, cam.roll, cam.pitch, cam.yaw)


def projection(cam: CameraSpec, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """(4, 4) GL projection from the pinhole (f = W / (2 tan(fov/2)), principal point at the centre).

    The y row is negated so that GL's bottom-up framebuffer rows come out top-down: row 0 of the read-back is
    the top of the image, as CARLA delivers it, with no flip on the CPU. (This mirrors triangle winding; the
    renderer does not cull faces.)
    """
    f = cam.focal
    p = np.zeros((4, 4))
    p[0, 0] = 2.0 * f / cam.width
    p[1, 1] = -2.0 * f / cam.height
    p[2, 2] = -(far + near) / (far - near)
    p[2, 3] = -2.0 * far * near / (far - near)
    p[3, 2] = -1.0
    return p


def view_projection(ego: Pose, cam: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """(world->clip (4, 4), camera->world (4, 4)) for one camera at an ego pose."""
    c2w = camera_to_world(ego, cam)
    view = _AXES @ np.linalg.inv(c2w)
    return projection(cam) @ view, c2w


def frustum_planes(vp: np.ndarray) -> np.ndarray:
    """(6, 4) planes (a, b, c, d), inside where a x + b y + c z + d >= 0 (Gribb-Hartmann), normalised."""
    r = vp
    planes = np.stack([r[3] + r[0], r[3] - r[0], r[3] + r[1], r[3] - r[1], r[3] + r[2], r[3] - r[2]])
    return planes / np.linalg.norm(planes[:, :3], axis=1, keepdims=True)


def boxes_in_frustum(planes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N,) bool: axis-aligned boxes lo/hi (N, 3) touching the frustum (conservative: may keep a few extra)."""
    n = planes[:, :3]  # (6, 3)
    # the box corner farthest along each plane normal ("positive vertex")
    pv = np.where(n[None, :, :] >= 0, hi[:, None, :], lo[:, None, :])  # (N, 6, 3)
    dist = np.einsum("npk,pk->np", pv, n) + planes[None, :, 3]  # (N, 6)
    return np.all(dist >= 0.0, axis=1)


def project_points(ego: Pose, cam: CameraSpec, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of world points (N, 3) -> (pixels (N, 2) as (u, v) with v down, planar depth (N,)).

    Continuous pixel coordinates: pixel (col, row) covers [col, col+1) x [row, row+1).
    """
    w2c = np.linalg.inv(camera_to_world(ego, cam))
    local = (w2c[:3, :3] @ np.asarray(pts, float).T + w2c[:3, 3:4]).T  # (N, 3) forward, right, up
    depth = local[:, 0]
    f = cam.focal
    u = cam.width / 2.0 + f * local[:, 1] / depth
    v = cam.height / 2.0 - f * local[:, 2] / depth
    return np.stack([u, v], axis=1), depth
