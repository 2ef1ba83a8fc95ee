"""Open-loop metrics for OccVLA: planning L2 / collision, occupancy mIoU, meta-action and VQA accuracy.

``OpenLoopMetrics`` accumulates everything an evaluation pass produces and returns one flat dict of floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from occvla.metrics._util import to_numpy
from occvla.metrics.occupancy import CLASS_NAMES, FREE_CLASS, NUM_CLASSES, OccupancyIoU, occupancy_miou
from occvla.metrics.planning import (
    DYNAMIC_OBSTACLE_CLASSES,
    EGO_LENGTH_M,
    EGO_WIDTH_M,
    boxes_overlap,
    collision_rates,
    collisions_with_boxes,
    collisions_with_occupancy,
    ego_boxes,
    l2_errors,
    occupancy_to_bev,
)
from occvla.metrics.text import meta_action_accuracy, normalize_answer, vqa_accuracy

__all__ = [
    "CLASS_NAMES", "DYNAMIC_OBSTACLE_CLASSES", "EGO_LENGTH_M", "EGO_WIDTH_M", "FREE_CLASS", "NUM_CLASSES",
    "OccupancyIoU", "OpenLoopMetrics", "boxes_overlap", "collision_rates", "collisions_with_boxes",
    "collisions_with_occupancy", "ego_boxes", "l2_errors", "meta_action_accuracy", "normalize_answer",
    "occupancy_miou", "occupancy_to_bev", "vqa_accuracy",
]


class OpenLoopMetrics:
    """Accumulator for an open-loop evaluation pass; every ``add_*`` is optional."""

    def __init__(self) -> None:
        self._pred: list[np.ndarray] = []
        self._gt: list[np.ndarray] = []
        self._col: list[np.ndarray] = []
        self._col_box: list[np.ndarray] = []
        self._meta_pred: list[str] = []
        self._meta_gt: list[str] = []
        self._vqa_pred: list[str] = []
        self._vqa_ref: list[Any] = []
        self.occ = OccupancyIoU()
        self._has_occ = False

    def add_trajectories(
        self,
        pred: Any,
        gt: Any,
        obstacle_bev: Any | None = None,
        agent_boxes: Any | None = None,
        agent_valid: Any | None = None,
    ) -> None:
        """pred, gt (B, 6, 2). Collisions (optional): ``obstacle_bev`` (B, X, Y) or (B, 6, X, Y) bool over the Occ3D
        [-40, 40] m range at any pooling -> ``col_occ_*``; ``agent_boxes`` (B, 6, M, 5) + ``agent_valid`` (B, 6, M)
        -> ``col_*``."""
        p, g = to_numpy(pred, np.float64), to_numpy(gt, np.float64)
        self._pred.append(p.reshape(-1, *p.shape[-2:]))
        self._gt.append(g.reshape(-1, *g.shape[-2:]))
        if obstacle_bev is not None:
            bev = to_numpy(obstacle_bev, bool)
            x = bev.shape[-2]
            voxel = 80.0 / x  # the Occ3D [-40, 40] m range at whatever pooling
            self._col.append(collisions_with_occupancy(p, bev, voxel_size=voxel))
        if agent_boxes is not None:
            self._col_box.append(collisions_with_boxes(p, agent_boxes, agent_valid))

    def add_meta_actions(self, preds: list[str], refs: list[str]) -> None:
        self._meta_pred += list(preds)
        self._meta_gt += list(refs)

    def add_vqa(self, preds: list[str], refs: list[Any]) -> None:
        self._vqa_pred += list(preds)
        self._vqa_ref += list(refs)

    def add_occupancy(self, pred: Any, gt: Any, mask: Any | None = None) -> None:
        self.occ.update(pred, gt, mask)
        self._has_occ = True

    def compute(self) -> dict[str, float]:
        """Flat dict of every metric that had data."""
        out: dict[str, float] = {}
        if self._pred:
            out.update(l2_errors(np.concatenate(self._pred), np.concatenate(self._gt)))
        if self._col_box:
            out.update(collision_rates(np.concatenate(self._col_box)))
        if self._col:
            out.update({k.replace("col_", "col_occ_", 1): v for k, v in collision_rates(np.concatenate(self._col)).items()})
        if self._meta_pred:
            out.update(meta_action_accuracy(self._meta_pred, self._meta_gt))
        if self._vqa_pred:
            out["vqa_accuracy"] = vqa_accuracy(self._vqa_pred, self._vqa_ref)
        if self._has_occ:
            r = self.occ.compute()
            out["occ_miou"] = r["miou"]
            out["occ_iou_geo"] = r["iou_geo"]
        return out
