"""scripts/record_strip.py: frames of a video stacked in order, at the asked width; a bad file is one line."""

from __future__ import annotations

import cv2
import numpy as np

from tests.leaderboard.conftest import load_script


def test_strip_stacks_frames_in_time_order(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 180))
    for k in range(40):  # brightness encodes the frame index
        writer.write(np.full((180, 320, 3), 5 * k, np.uint8))
    writer.release()
    mod = load_script("record_strip")
    out = tmp_path / "strip.png"
    assert mod.main([str(video), "--out", str(out), "--frames", "3", "--width", "160"]) == 0
    strip = cv2.imread(str(out))
    assert strip.shape == (270, 160, 3)  # three 160x90 frames
    means = [strip[i * 90 : (i + 1) * 90].mean() for i in range(3)]
    assert means[0] < means[1] < means[2]
    assert mod.main([str(video), "--out", str(out), "--at", "0.0", "3.0", "--width", "160"]) == 0
    two = cv2.imread(str(out))
    assert two.shape[0] == 180 and two[:90].mean() < 10 < 140 < two[90:].mean()
    capsys.readouterr()
    assert mod.main([str(tmp_path / "none.mp4"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
