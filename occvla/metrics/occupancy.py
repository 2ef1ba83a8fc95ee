"""Semantic occupancy IoU in the Occ3D-nuScenes convention.

Occ3D evaluates on voxels with ``mask_camera`` only, accumulates one confusion matrix over the whole evaluation
set, computes IoU = TP / (TP + FP + FN) per class and reports mIoU as the mean over the 17 semantic classes
(0..16) that occur (in the prediction or ground truth); the free class (17) is excluded from the mean. We also
report the geometric IoU (occupied vs free), which Occ3D-style papers often give beside mIoU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from occvla.metrics._util import to_numpy

NUM_CLASSES = 18
FREE_CLASS = 17
CLASS_NAMES: tuple[str, ...] = (
    "others", "barrier", "bicycle", "bus", "car", "construction_vehicle", "motorcycle", "pedestrian",
    "traffic_cone", "trailer", "truck", "driveable_surface", "other_flat", "sidewalk", "terrain", "manmade",
    "vegetation", "free",
)


class OccupancyIoU:
    """Accumulates a confusion matrix over batches; ``compute()`` gives mIoU, per-class IoU and geometric IoU."""

    def __init__(self, num_classes: int = NUM_CLASSES, free_class: int = FREE_CLASS) -> None:
        self.num_classes = num_classes
        self.free_class = free_class
        self.confusion = np.zeros((num_classes, num_classes), np.int64)  # [gt, pred]

    def update(self, pred: Any, gt: Any, mask: Any | None = None) -> None:
        """pred, gt: (..., X, Y, Z) int labels (pred may also be logits (B, K, X, Y, Z)); mask: bool like gt."""
        p, g = to_numpy(pred), to_numpy(gt)
        if p.ndim == g.ndim + 1 and p.shape[1] == self.num_classes:
            p = p.argmax(1)
        if p.shape != g.shape:
            raise ValueError(f"occupancy pred shape {p.shape} != gt shape {g.shape}")
        p, g = p.astype(np.int64).ravel(), g.astype(np.int64).ravel()
        if mask is not None:
            m = to_numpy(mask, bool)
            if m.shape != to_numpy(gt).shape:
                raise ValueError(f"mask shape {m.shape} != gt shape {to_numpy(gt).shape}")
            m = m.ravel()
            p, g = p[m], g[m]
        k = self.num_classes
        bad = (g < 0) | (g >= k) | (p < 0) | (p >= k)
        if bad.any():
            raise ValueError(f"occupancy labels must lie in [0, {k - 1}], found {np.unique(np.r_[g[bad], p[bad]])[:5]}")
        self.confusion += np.bincount(g * k + p, minlength=k * k).reshape(k, k)

    def compute(self) -> dict[str, Any]:
        """``miou`` (0..1, NaN when no semantic class occurs), ``iou_per_class`` (K,) with NaN for absent classes,
        ``iou_geo`` (occupied vs free)."""
        cm = self.confusion.astype(np.float64)
        tp = np.diag(cm)
        union = cm.sum(0) + cm.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
        sem = np.delete(iou, self.free_class)
        miou = float(np.nanmean(sem)) if np.isfinite(sem).any() else float("nan")
        f = self.free_class
        occ_tp = cm.sum() - cm[f, :].sum() - cm[:, f].sum() + cm[f, f]  # gt occupied & pred occupied
        occ_union = cm.sum() - cm[f, f]
        iou_geo = float(occ_tp / occ_union) if occ_union > 0 else float("nan")
        return {"miou": miou, "iou_per_class": iou, "iou_geo": iou_geo}


def occupancy_miou(pred: Any, gt: Any, mask: Any | None = None) -> dict[str, Any]:
    """One-shot ``OccupancyIoU`` over a batch (see the class)."""
    m = OccupancyIoU()
    m.update(pred, gt, mask)
    return m.compute()
