"""Open a collected dataset with the PyPI nuscenes-devkit and report what it sees (one JSON line on stdout).

Runs in the devkit's own environment (nuscenes-devkit 1.2 needs numpy<2: `make nuscenes-venv` builds
.venv-nuscenes), never in the project's venv:

    .venv-nuscenes/bin/python scripts/nuscenes_check.py --dataroot OUT_DIR [--render FIG.png]

Reports, per sample: its six CAM sample_data, the number of annotations, and every box's centre in the ego frame
of the sample's CAM_FRONT ego pose through the devkit's own transforms (Box.translate / Box.rotate, as
NuScenes.get_sample_data does). With --render, draws the six cameras of the middle sample with the devkit's
projected boxes (NuScenes.render_sample_data).
"""

from __future__ import annotations

import argparse
import json
import sys


# Occ3D class colours (RGB 0-255) for the top view: 0 others .. 16 vegetation; 17 free is not drawn
OCC_COLORS = [
    (0, 0, 0),
    (255, 120, 50),
    (255, 192, 203),
    (255, 255, 0),
    (0, 150, 245),
    (0, 255, 255),
    (200, 180, 0),
    (255, 0, 0),
    (255, 240, 150),
    (135, 60, 0),
    (160, 32, 240),
    (255, 0, 255),
    (139, 137, 137),
    (75, 0, 75),
    (150, 240, 80),
    (230, 230, 250),
    (0, 175, 0),
]


def _occupancy_top_view(ax, path) -> None:  # noqa: ANN001 - a matplotlib axis
    """The top non-free class of each column of an Occ3D labels.npz (x forward up, y left to the left)."""
    import numpy as np

    sem = np.load(path)["semantics"]  # (200, 200, 16) [x, y, z]
    occupied = sem != 17
    top = np.where(
        occupied.any(2),
        sem[np.arange(200)[:, None], np.arange(200)[None, :], 15 - np.argmax(occupied[:, :, ::-1], axis=2)],
        17,
    )
    rgb = np.full((200, 200, 3), 255, np.uint8)
    for c, col in enumerate(OCC_COLORS):
        rgb[top == c] = col
    ax.imshow(
        rgb[::-1, ::-1], extent=(40, -40, -40, 40)
    )  # rows: x from +40 (top); columns: y from +40 (left)
    ax.plot([0], [0], marker="^", color="k", markersize=8)
    ax.set_title("Occ3D labels (top view, ego at the centre)", fontsize=9)
    ax.set_xlabel("y (m, left +)")
    ax.set_ylabel("x (m, forward +)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataroot", required=True)
    p.add_argument("--version", default="v1.0-trainval")
    p.add_argument(
        "--render", default="", help="write a 2x3 figure of the six cameras with boxes of one sample"
    )
    p.add_argument("--sample", type=int, default=-1, help="sample index to render (default: the middle one)")
    args = p.parse_args()

    from nuscenes.nuscenes import NuScenes
    from pyquaternion import Quaternion

    nusc = NuScenes(version=args.version, dataroot=args.dataroot, verbose=False)
    out = {"scenes": len(nusc.scene), "samples": [], "categories": sorted({c["name"] for c in nusc.category})}
    for sample in nusc.sample:
        cams = sorted(k for k in sample["data"] if k.startswith("CAM_"))
        sd = nusc.get("sample_data", sample["data"]["CAM_FRONT"])
        pose = nusc.get("ego_pose", sd["ego_pose_token"])
        boxes = []
        for ann_token in sample["anns"]:
            box = nusc.get_box(ann_token)
            box.translate(-1 * __import__("numpy").array(pose["translation"]))
            box.rotate(Quaternion(pose["rotation"]).inverse)
            ann = nusc.get("sample_annotation", ann_token)
            boxes.append(
                {
                    "instance": ann["instance_token"],
                    "category": ann["category_name"],
                    "ego_xyz": [float(v) for v in box.center],
                    "visibility": ann["visibility_token"],
                }
            )
        # the devkit's camera path: boxes in each camera frame, the image path it resolves
        _, cam_boxes, _ = nusc.get_sample_data(sample["data"]["CAM_FRONT"])
        out["samples"].append(
            {
                "token": sample["token"],
                "cams": cams,
                "anns": len(sample["anns"]),
                "boxes": boxes,
                "front_cam_boxes": len(cam_boxes),
            }
        )
    if args.render:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sample = nusc.sample[args.sample if args.sample >= 0 else len(nusc.sample) // 2]
        order = [
            "CAM_FRONT_LEFT",
            "CAM_FRONT",
            "CAM_FRONT_RIGHT",
            "CAM_BACK_LEFT",
            "CAM_BACK",
            "CAM_BACK_RIGHT",
        ]
        fig = plt.figure(figsize=(19, 5.6))
        grid = fig.add_gridspec(2, 4, width_ratios=[1, 1, 1, 0.62])
        for i, ch in enumerate(order):
            ax = fig.add_subplot(grid[i // 3, i % 3])
            nusc.render_sample_data(sample["data"][ch], with_anns=True, ax=ax, verbose=False)
            ax.set_title(ch, fontsize=9)
        scene = nusc.get("scene", sample["scene_token"])["name"]
        labels = __import__("pathlib").Path(args.dataroot) / "gts" / scene / sample["token"] / "labels.npz"
        if labels.is_file():
            _occupancy_top_view(fig.add_subplot(grid[:, 3]), labels)
        fig.tight_layout()
        fig.savefig(args.render, dpi=80)
        out["rendered"] = sample["token"]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
