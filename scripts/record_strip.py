"""A strip of frames from a `--record` video, for the README: evenly spaced frames (or given seconds), stacked.

    python scripts/record_strip.py videos/RouteScenario_0_rep0.mp4 --out docs/img/occvla_record_strip.jpg
    python scripts/record_strip.py VIDEO --at 12 30 48 --width 1100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np


def read_frames(path: Path, seconds: list[float] | None, count: int) -> list[np.ndarray]:
    """The frames at ``seconds`` (video time), or ``count`` evenly spaced ones that skip the first and last 5 %."""
    cap = cv2.VideoCapture(str(path))
    total, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS) or 10.0
    if total <= 0:
        raise ValueError(f"{path}: not a readable video")
    if seconds:
        idx = [min(total - 1, max(0, round(s * fps))) for s in seconds]
    else:
        idx = np.linspace(total * 0.05, total * 0.95, count).round().astype(int).tolist()
    frames = []
    for i in idx:
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, img = cap.read()
        if not ok:
            raise ValueError(f"{path}: frame {i} of {total} unreadable")
        frames.append(img)
    return frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video")
    ap.add_argument("--out", required=True, help="image file (.jpg / .png)")
    ap.add_argument("--frames", type=int, default=3, help="evenly spaced frames (without --at)")
    ap.add_argument("--at", type=float, nargs="*", help="video seconds of the frames")
    ap.add_argument("--width", type=int, default=1100, help="output width in pixels")
    args = ap.parse_args(argv)
    try:
        frames = read_frames(Path(args.video), args.at, max(1, args.frames))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    h, w = frames[0].shape[:2]
    size = (args.width, round(h * args.width / w))
    strip = np.vstack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, strip, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{args.out}: {len(frames)} frames, {strip.shape[1]}x{strip.shape[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
