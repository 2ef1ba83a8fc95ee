"""Meta-action rules on hand-made trajectories (ego frame: x forward, y left, 0.5 s .. 3 s)."""

from __future__ import annotations

import numpy as np
import pytest

from occvla.meta_actions import (
    LATERAL,
    LONGITUDINAL,
    META_ACTIONS,
    meta_action_from_trajectory,
    meta_action_index,
    parse_meta_action,
)

T = np.arange(1, 7) * 0.5  # (6,) seconds


def _traj(x, y) -> np.ndarray:
    return np.stack([np.asarray(x, float) * np.ones(6), np.asarray(y, float) * np.ones(6)], axis=1)


def _arc(v: float, radius: float, left: bool) -> np.ndarray:
    phi = v * T / radius
    y = radius * (1 - np.cos(phi))
    return _traj(radius * np.sin(phi), y if left else -y)


def _braking(v0: float, a: float) -> np.ndarray:
    t_stop = v0 / a
    tt = np.minimum(T, t_stop)
    return _traj(v0 * tt - 0.5 * a * tt**2, 0.0)


CASES = {
    "straight constant speed": (_traj(10 * T, 0), 10.0, "keep lane, keep speed"),
    "braking to a stop": (_braking(8.0, 3.2), 8.0, "keep lane, stop"),
    "slowing 10 -> 6 m/s": (_traj(10 * T - (4 / 6) * T**2, 0), 10.0, "keep lane, decelerate"),
    "left turn r=10 m at 5 m/s": (_arc(5, 10, left=True), 5.0, "turn left, keep speed"),
    "right turn r=10 m at 5 m/s": (_arc(5, 10, left=False), 5.0, "turn right, keep speed"),
    "lane change left": (_traj(10 * T, 3.5 * (1 - np.cos(np.pi * T / 3)) / 2), 10.0, "change lane left, keep speed"),
    "lane change right": (_traj(10 * T, -3.5 * (1 - np.cos(np.pi * T / 3)) / 2), 10.0,
                          "change lane right, keep speed"),
    "gentle curve r=200 m stays in lane": (_arc(10, 200, left=True), 10.0, "keep lane, keep speed"),
    "accelerate from standstill": (_traj(T**2, 0), 0.0, "keep lane, accelerate"),
    "standing still": (np.zeros((6, 2)), 0.0, "keep lane, stop"),
    "reversing slowly": (_traj(-1.0 * T, 0), 1.0, "keep lane, keep speed"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rules_on_hand_made_trajectories(name: str) -> None:
    traj, speed, expected = CASES[name]
    got = meta_action_from_trajectory(traj.astype(np.float32), speed)
    assert got == expected, f"{name}: {got!r}"
    assert got in META_ACTIONS


def test_vocabulary() -> None:
    assert len(META_ACTIONS) == len(LATERAL) * len(LONGITUDINAL) == 20
    for i, a in enumerate(META_ACTIONS):
        assert parse_meta_action(a) == tuple(a.split(", "))
        assert meta_action_index(a) == i


def test_parse_generated_text() -> None:
    assert parse_meta_action("Meta action:  Turn   Left, Decelerate.") == ("turn left", "decelerate")
    assert parse_meta_action("change lane right keep speed") == ("change lane right", "keep speed")
    assert parse_meta_action("I will drive") is None
    assert meta_action_index("garbage") == -1


@pytest.mark.parametrize(
    "traj, speed, match",
    [
        (np.zeros((5, 2)), 1.0, "shape"),
        (np.full((6, 2), np.nan), 1.0, "non-finite"),
        (np.zeros((6, 2)), -1.0, "speed"),
        (np.zeros((6, 2)), float("nan"), "speed"),
    ],
)
def test_degenerate_input_errors(traj, speed, match) -> None:
    with pytest.raises(ValueError, match=match):
        meta_action_from_trajectory(traj, speed)
