"""Open-loop metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occvla.metrics import (
    OccupancyIoU,
    OpenLoopMetrics,
    boxes_overlap,
    collision_rates,
    collisions_with_boxes,
    collisions_with_occupancy,
    l2_errors,
    meta_action_accuracy,
    normalize_answer,
    occupancy_miou,
    occupancy_to_bev,
    vqa_accuracy,
)

STRAIGHT = np.stack([2.5 * np.arange(1, 7), np.zeros(6)], axis=1)  # 5 m/s along x


def test_l2_both_conventions() -> None:
    gt = np.zeros((2, 6, 2))
    pred = np.zeros((2, 6, 2))
    k = np.arange(1, 7)
    pred[0, :, 0], pred[0, :, 1] = 3 * k, 4 * k  # errors 5, 10, ..., 30 m; sample 1 exact
    r = l2_errors(torch.tensor(pred), gt)
    # UniAD at waypoints 2, 4, 6: (10, 20, 30) / 2 samples
    assert r["l2_uniad_1s"] == pytest.approx(5.0)
    assert r["l2_uniad_2s"] == pytest.approx(10.0)
    assert r["l2_uniad_3s"] == pytest.approx(15.0)
    assert r["l2_uniad_avg"] == pytest.approx(10.0)
    # ST-P3: mean over waypoints up to the horizon: (5+10)/2, (5+..+20)/4, (5+..+30)/6, halved
    assert r["l2_stp3_1s"] == pytest.approx(3.75)
    assert r["l2_stp3_2s"] == pytest.approx(6.25)
    assert r["l2_stp3_3s"] == pytest.approx(8.75)
    assert r["l2_stp3_avg"] == pytest.approx(6.25)


def test_l2_valid_mask_and_errors() -> None:
    pred = np.zeros((2, 6, 2))
    pred[0, :, 0] = 1.0
    pred[1, :, 0] = 3.0
    valid = np.ones((2, 6), bool)
    valid[1, 4:] = False  # sample 1 lacks its last second
    r = l2_errors(pred, np.zeros((2, 6, 2)), valid)
    assert r["l2_uniad_1s"] == pytest.approx(2.0)
    assert r["l2_uniad_3s"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        l2_errors(np.zeros((2, 6, 2)), np.zeros((2, 5, 2)))


def test_oriented_box_overlap() -> None:
    a = np.array([0, 0, 2, 2, 0.0])
    assert boxes_overlap(a, np.array([1.9, 0, 2, 2, 0.0]))
    assert not boxes_overlap(a, np.array([2.1, 0, 2, 2, 0.0]))
    assert boxes_overlap(a, np.array([2.3, 0, 2, 2, np.pi / 4]))  # diamond tip reaches x=0.886
    assert not boxes_overlap(a, np.array([2.5, 0, 2, 2, np.pi / 4]))
    # bounding boxes overlap, rotated boxes do not (edge x + y = 2.386 clears corner (1, 1))
    assert not boxes_overlap(a, np.array([1.9, 1.9, 2, 2, np.pi / 4]))


def test_collision_with_boxes_and_rates() -> None:
    agent = np.zeros((1, 6, 2, 5))
    agent[0, :, 0] = [10.0, 0.0, 4.0, 2.0, 0.0]  # parked ahead, spans x in [8, 12]
    agent[0, :, 1] = [10.0, 3.0, 4.0, 2.0, 0.0]  # in the next lane: y in [2, 4], ego half-width 1.05
    col = collisions_with_boxes(STRAIGHT, agent)
    # ego 4.9 m long at x = 2.5 .. 15: overlaps [8, 12] at x = 7.5, 10, 12.5
    assert col.tolist() == [[False, False, True, True, True, False]]
    r = collision_rates(col)
    assert (r["col_uniad_1s"], r["col_uniad_2s"], r["col_uniad_3s"]) == (0.0, 1.0, 0.0)
    assert r["col_stp3_1s"] == 0.0 and r["col_stp3_2s"] == 0.5 and r["col_stp3_3s"] == 0.5
    valid = np.ones((1, 6, 2), bool)
    valid[0, :, 0] = False
    assert not collisions_with_boxes(STRAIGHT, agent, valid).any()


def test_collision_with_occupancy() -> None:
    sem = np.full((1, 200, 200, 16), 17, np.uint8)
    sem[0, 125, 100, 3] = 4  # a car voxel, centre x = -40 + 125.5 * 0.4 = 10.2, y = 0.2
    sem[0, 50, 50, 0] = 11  # road: not an obstacle
    bev = occupancy_to_bev(sem)
    assert bev.sum() == 1
    col = collisions_with_occupancy(STRAIGHT, bev)
    # ego box x-spans: at 10 -> [7.55, 12.45], at 12.5 -> [10.05, 14.95] contain 10.2; at 7.5 -> up to 9.95 not
    assert col.tolist() == [[False, False, False, True, True, False]]
    with pytest.raises(ValueError, match="bev"):
        collisions_with_occupancy(STRAIGHT, np.zeros((2, 3, 200, 200), bool))


def test_occupancy_miou_hand_computed() -> None:
    gt = np.array([4, 4, 11, 17]).reshape(1, 1, 1, 4)
    pred = np.array([4, 11, 11, 17]).reshape(1, 1, 1, 4)
    r = occupancy_miou(pred, gt)
    # car: TP 1, FN 1 -> 0.5; driveable: TP 1, FP 1 -> 0.5; free excluded; absent classes NaN
    assert r["miou"] == pytest.approx(0.5)
    assert r["iou_per_class"][4] == pytest.approx(0.5) and np.isnan(r["iou_per_class"][0])
    assert r["iou_geo"] == pytest.approx(1.0)
    mask = np.array([True, False, True, True]).reshape(1, 1, 1, 4)
    assert occupancy_miou(pred, gt, mask)["miou"] == pytest.approx(1.0)
    # a class predicted but absent in gt counts with IoU 0; geometry: pred occupies a free voxel
    pred2 = np.array([4, 4, 11, 7]).reshape(1, 1, 1, 4)
    r2 = occupancy_miou(pred2, gt)
    assert r2["miou"] == pytest.approx((1 + 1 + 0) / 3)
    assert r2["iou_geo"] == pytest.approx(3 / 4)


def test_occupancy_accumulates_over_batches_and_accepts_logits() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 18, (4, 6, 6, 3))
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 18, gt.shape))
    acc = OccupancyIoU()
    for i in range(4):
        acc.update(pred[i : i + 1], gt[i : i + 1])
    assert acc.compute()["miou"] == pytest.approx(occupancy_miou(pred, gt)["miou"])
    logits = torch.nn.functional.one_hot(torch.tensor(pred), 18).permute(0, 4, 1, 2, 3).float()
    assert occupancy_miou(logits, gt)["miou"] == pytest.approx(occupancy_miou(pred, gt)["miou"])
    with pytest.raises(ValueError, match=r"\[0, 17\]"):
        occupancy_miou(np.full((1, 2), 18), np.zeros((1, 2), int))


def test_text_metrics() -> None:
    r = meta_action_accuracy(
        ["turn left, stop", "Keep lane, keep speed.", "blah"],
        ["turn left, decelerate", "keep lane, keep speed", "turn right, stop"],
    )
    assert r == pytest.approx({"meta_exact": 1 / 3, "meta_lateral": 2 / 3, "meta_longitudinal": 1 / 3})
    assert normalize_answer("The  Car!") == "car"
    assert normalize_answer("Two pedestrians.") == "2 pedestrians"
    assert vqa_accuracy(["The car.", "two", "no", "maybe"], ["car", "2", ["No", "nope"], "yes"]) == 0.75
    with pytest.raises(ValueError, match="predictions"):
        vqa_accuracy(["a"], [])


def test_open_loop_accumulator() -> None:
    m = OpenLoopMetrics()
    agent = np.zeros((1, 6, 1, 5))
    agent[0, :, 0] = [10.0, 0.0, 4.0, 2.0, 0.0]
    m.add_trajectories(STRAIGHT[None] + [1.0, 0.0], STRAIGHT[None], obstacle_bev=np.zeros((1, 50, 50), bool),
                       agent_boxes=agent, agent_valid=np.ones((1, 6, 1), bool))
    m.add_meta_actions(["keep lane, keep speed"], ["keep lane, keep speed"])
    m.add_occupancy(np.zeros((1, 2, 2, 2), int) + 17, np.zeros((1, 2, 2, 2), int) + 17)
    m.add_vqa(["yes"], ["yes"])
    r = m.compute()
    assert r["l2_uniad_3s"] == pytest.approx(1.0) and r["col_occ_stp3_avg"] == 0.0
    # planned x = 3.5, 6, .., 16 m (box +-2.45 m): the agent spanning 8..12 m is hit at x = 6, 8.5, 11, 13.5
    assert (r["col_uniad_1s"], r["col_uniad_2s"], r["col_uniad_3s"]) == (1.0, 1.0, 0.0)
    assert r["meta_exact"] == 1.0 and r["vqa_accuracy"] == 1.0 and np.isnan(r["occ_miou"])
