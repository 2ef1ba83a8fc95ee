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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataroot", required=True)
    p.add_argument("--version", default="v1.0-trainval")
    p.add_argument("--render", default="", help="write a 2x3 figure of the six cameras with boxes of one sample")
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
            boxes.append({"instance": ann["instance_token"], "category": ann["category_name"],
                          "ego_xyz": [float(v) for v in box.center], "visibility": ann["visibility_token"]})
        # the devkit's camera path: boxes in each camera frame, the image path it resolves
        _, cam_boxes, _ = nusc.get_sample_data(sample["data"]["CAM_FRONT"])
        out["samples"].append({"token": sample["token"], "cams": cams, "anns": len(sample["anns"]),
                               "boxes": boxes, "front_cam_boxes": len(cam_boxes)})
    if args.render:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sample = nusc.sample[args.sample if args.sample >= 0 else len(nusc.sample) // 2]
        order = ["CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"]
        fig, axes = plt.subplots(2, 3, figsize=(15, 5.6))
        for ax, ch in zip(axes.ravel(), order):
            nusc.render_sample_data(sample["data"][ch], with_anns=True, ax=ax, verbose=False)
            ax.set_title(ch, fontsize=9)
        fig.tight_layout()
        fig.savefig(args.render, dpi=80)
        out["rendered"] = sample["token"]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
