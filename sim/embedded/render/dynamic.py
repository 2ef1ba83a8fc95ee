"""Per-frame dynamic state as flat arrays: actor/traffic-light/lamp instances and night light sources."""

from __future__ import annotations

import math

import numpy as np

from sim.embedded.render.meshes import FAR_TEMPLATE, LIGHT_VCLASSES, VCLASS_TEMPLATE
from sim.types import EGO_EXTENT, OCC, ActorState, Pose, TrafficLightState

BULB = {"Red": 0.0, "Yellow": 1.0, "Green": 2.0}  # other states ('Off', 'Unknown') light no bulb
INSTANCE_FLOATS = 12  # origin (3), yaw, extent (3), colour (3), class, state


def instances(
    ego: Pose,
    actors: list[ActorState],
    lights: list[TrafficLightState],
    lamps: np.ndarray,
    lamps_on: bool,
    template_index: dict[str, int],
    view_distance: float,
    lod_distance: float,
) -> np.ndarray:
    """(M, 1 + INSTANCE_FLOATS) float32 rows sorted by template: template index, then the instance attributes.

    Actors beyond `lod_distance` use their class's few-box stand-in; everything beyond `view_distance` is
    dropped. Street-lamp heads are instances too (lit at night).
    """
    ti = template_index
    rows = [
        (
            ti[VCLASS_TEMPLATE.get(a.vclass, "crate")],
            ti[FAR_TEMPLATE.get(VCLASS_TEMPLATE.get(a.vclass, ""), VCLASS_TEMPLATE.get(a.vclass, "crate"))],
            a.x,
            a.y,
            a.z,
            a.yaw,
            *a.extent,
            *a.color,
            a.occ_class,
            0.0,
        )
        for a in actors
    ]
    tl, manmade = ti["traffic_light"], OCC["manmade"]
    rows += [
        (tl, tl, t.x, t.y, t.z, t.yaw, 1.0, 1.0, 1.0, 0.3, 0.3, 0.3, manmade, BULB.get(t.state, -1.0))
        for t in lights
    ]
    inst = np.asarray(rows, np.float64).reshape(-1, 2 + INSTANCE_FLOATS)
    if lamps_on and len(lamps):
        lamp_rows = np.zeros((len(lamps), 2 + INSTANCE_FLOATS))
        lamp_rows[:, :2] = ti["lamp"]
        lamp_rows[:, 2:5] = lamps
        lamp_rows[:, 6:9] = 1.0
        lamp_rows[:, 12] = manmade
        inst = np.concatenate([inst, lamp_rows])
    dist = np.hypot(inst[:, 2] - ego.x, inst[:, 3] - ego.y)
    inst[:, 0] = np.where(dist > lod_distance, inst[:, 1], inst[:, 0])
    inst = np.delete(inst[dist <= view_distance], 1, axis=1)
    return inst[np.argsort(inst[:, 0], kind="stable")].astype(np.float32)


def street_lights(ego: Pose, lamps: np.ndarray, n: int, max_distance: float) -> np.ndarray:
    """(P, 3) the n lamps nearest the ego within max_distance (nearest first)."""
    if not len(lamps) or n <= 0:
        return np.zeros((0, 3))
    d = np.hypot(lamps[:, 0] - ego.x, lamps[:, 1] - ego.y)
    idx = np.argsort(d, kind="stable")[:n]
    return lamps[idx[d[idx] <= max_distance]]


def headlights(
    ego: Pose,
    actors: list[ActorState],
    n: int,
    max_distance: float,
    half_angle: float = 24.0,
    tilt: float = 7.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Spot lights of the ego (always first) and the nearest other vehicles: positions (S, 3), directions (S, 4).

    A vehicle's two headlights are merged into one spot at its front centre, 0.7 m up, aimed `tilt` degrees
    down; directions carry the cosine of the cone's half angle in their 4th column.
    """
    cars = [(ego.x, ego.y, ego.z, ego.yaw, EGO_EXTENT[0], 0.0)]
    cars += [
        (a.x, a.y, a.z, a.yaw, a.extent[0], math.hypot(a.x - ego.x, a.y - ego.y))
        for a in actors
        if a.vclass in LIGHT_VCLASSES
    ]
    veh = np.asarray(cars, np.float64)
    veh = veh[veh[:, 5] <= max_distance]
    veh = veh[np.argsort(veh[:, 5], kind="stable")][: max(n, 0)]
    yaw = np.radians(veh[:, 3])
    fx, fy = np.cos(yaw), np.sin(yaw)
    pos = np.stack([veh[:, 0] + fx * veh[:, 4], veh[:, 1] + fy * veh[:, 4], veh[:, 2] + 0.7], axis=1)
    t = math.radians(tilt)
    dirs = np.stack(
        [
            fx * math.cos(t),
            fy * math.cos(t),
            np.full(len(veh), -math.sin(t)),
            np.full(len(veh), math.cos(math.radians(half_angle))),
        ],
        axis=1,
    )
    return pos, dirs
