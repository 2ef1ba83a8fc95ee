"""What OccVLA sees at its input size: a red light 30 m ahead and a pedestrian 20 m ahead, at candidate sizes.

    python scripts/input_size_study.py [--out docs/img/input_sizes.png] [--town OccTown01]

Renders the front camera of the DESIGN.md rig (70 deg FOV, 16:9) with the embedded simulator at 400x225 (the agent's
render size), the ego about 30 m before a stop line (ticking until its light is red) and a pedestrian standing on the lane 20 m ahead;
then shows what the model gets at each candidate input: the whole frame resized to a square (112, 168, 224 px) and
a centre crop. Prints, per candidate, the pixel size of the pedestrian (1.8 m x 0.5 m) and of a light's lamp
(0.25 m) from the pinhole geometry, and ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import carla
import cv2
import numpy as np

from sim.factory import make_simulator
from sim.protocol import SimConfig, TrafficConfig
from sim.sensors import rig_sensor_dicts

RENDER_W, RENDER_H, FOV_DEG = 400, 225, 70.0
PEDESTRIAN_M = (1.8, 0.5)  # height, width
LAMP_M = 0.25  # one lamp of a signal head
CANDIDATES = {  # name: (crop box as fractions (x0, y0, x1, y1) of the render, square output size)
    "full 112": ((0.0, 0.0, 1.0, 1.0), 112),
    "full 168": ((0.0, 0.0, 1.0, 1.0), 168),
    "full 224": ((0.0, 0.0, 1.0, 1.0), 224),
    "centre crop 112": ((0.21875, 0.0, 0.78125, 1.0), 112),  # the middle 225x225 square (39 deg of 70)
}


def pixel_sizes(box: tuple[float, float, float, float], size: int, dist_ped: float, dist_light: float) -> dict:
    """Pinhole footprint (px) at the model input: focal lengths scale with the crop's resize factors."""
    f = (RENDER_W / 2) / math.tan(math.radians(FOV_DEG / 2))  # px at the render (square pixels)
    sx = size / ((box[2] - box[0]) * RENDER_W)
    sy = size / ((box[3] - box[1]) * RENDER_H)
    return {
        "pedestrian_h_px": round(f * sy * PEDESTRIAN_M[0] / dist_ped, 1),
        "pedestrian_w_px": round(f * sx * PEDESTRIAN_M[1] / dist_ped, 1),
        "lamp_px": round(f * min(sx, sy) * LAMP_M / dist_light, 2),
        "horizontal_fov_deg": round(2 * math.degrees(math.atan((box[2] - box[0]) * math.tan(math.radians(35)))), 1),
    }


def _scene(town: str) -> tuple[np.ndarray, float, float]:
    """The front camera frame, the distance to the light's pole and to the pedestrian."""
    sim = make_simulator("embedded", SimConfig(traffic=TrafficConfig(vehicles=0, walkers=0)))
    try:
        cmap = sim.load_town(town)
        sim.spawn_ego(carla.Transform(carla.Location(0, 0, 0.5)))
        lights = sim.ground_truth().traffic_lights
        if not lights:
            raise SystemExit(f"{town} has no traffic lights")
        light = lights[0]
        mid = carla.Location((light.stop_line[0][0] + light.stop_line[1][0]) / 2,
                             (light.stop_line[0][1] + light.stop_line[1][1]) / 2, 0.0)
        stop_wp = cmap.get_waypoint(mid)
        ego_wp = stop_wp.previous(30.0)[0]
        ped_wp = ego_wp.next(20.0)[0]
        t = ego_wp.transform
        sim.spawn_ego(carla.Transform(carla.Location(t.location.x, t.location.y, 0.5), t.rotation))
        p = ped_wp.transform
        sim.spawn_actor("walker.pedestrian.0001", carla.Transform(carla.Location(p.location.x, p.location.y, 0.9),
                                                                  carla.Rotation(yaw=p.rotation.yaw + 90)))
        sim.attach_sensors([s for s in rig_sensor_dicts(RENDER_W, RENDER_H) if s["id"] == "CAM_FRONT"])
        data = sim.tick()
        for _ in range(2400):  # up to 2 min of simulated time: wait for this approach's light to turn red
            state = next(tl.state for tl in sim.ground_truth().traffic_lights if tl.id == light.id)
            if state == "Red":
                break
            data = sim.tick()
        frame = np.ascontiguousarray(data["CAM_FRONT"][1][:, :, :3])  # BGR
        d_light = math.hypot(light.x - t.location.x, light.y - t.location.y)
        return frame, d_light, 20.0
    finally:
        sim.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img/input_sizes.png"))
    ap.add_argument("--town", default="OccTown01")
    args = ap.parse_args(argv)
    frame, d_light, d_ped = _scene(args.town)
    tiles, result = [], {"light_distance_m": round(d_light, 1), "pedestrian_distance_m": d_ped}
    show = 300  # every tile is shown at this height, nearest-neighbour, so pixels stay visible
    ref = cv2.resize(frame, (round(show * RENDER_W / RENDER_H), show), interpolation=cv2.INTER_AREA)
    cv2.putText(ref, f"render {RENDER_W}x{RENDER_H}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    tiles.append(ref)
    for name, (box, size) in CANDIDATES.items():
        x0, y0, x1, y1 = (round(box[0] * RENDER_W), round(box[1] * RENDER_H), round(box[2] * RENDER_W),
                          round(box[3] * RENDER_H))
        model_in = cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
        tile = cv2.resize(model_in, (show, show), interpolation=cv2.INTER_NEAREST)
        cv2.putText(tile, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        tiles.append(tile)
        sizes = pixel_sizes(box, size, d_ped, d_light)
        result[name.replace(" ", "_")] = sizes
        print(f"{name:<16} pedestrian {sizes['pedestrian_h_px']:>5} x {sizes['pedestrian_w_px']:>4} px, "
              f"lamp {sizes['lamp_px']:>5} px, horizontal FOV {sizes['horizontal_fov_deg']} deg")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.concatenate(tiles, axis=1))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
