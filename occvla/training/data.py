"""Datasets for training from the ``data`` config section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from occvla.data import NuScenesOccDataset, make_synthetic_dataset
from occvla.data.format import CARD_JSON
from occvla.training.distributed import barrier, is_main


def ensure_synthetic(data_cfg: Any, image_size: int) -> Path:
    """Write the synthetic dataset under ``data.root`` unless a dataset is already there."""
    root = Path(data_cfg.root)
    if not any(root.glob("v1.0-*/scene.json")):
        s = data_cfg.synthetic
        h = int(image_size)
        make_synthetic_dataset(root, n_scenes=s.n_scenes, n_samples=s.n_samples,
                               image_size=(h, max(8, round(h * 16 / 9))), seed=s.seed)
    return root


def card_splits(root: Path) -> tuple[list[str], list[str]] | None:
    """(train, val) scene names from a collected dataset's card (its splits are by town), or None without one."""
    path = root / CARD_JSON
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"corrupt dataset card {path}: {e}") from None
    splits, scenes = card.get("splits") or {}, card.get("scenes") or []
    if not splits.get("train") or not scenes:
        return None
    by_split = {k: [s["name"] for s in scenes if s.get("town") in set(splits.get(k, []))] for k in ("train", "val")}
    return by_split["train"], by_split["val"]


def build_datasets(
    data_cfg: Any, image_size: int, occ_grid: tuple[int, int, int], load_images: bool = True,
    require_occupancy: bool = False,
) -> tuple[NuScenesOccDataset, NuScenesOccDataset, str]:
    """(train, eval, eval_split_name). Splits: ``data.train_scenes`` / ``val_scenes`` when given, else the town
    splits of a collected dataset's card (``dataset_card.json``), else a hash of scene names (``val_fraction``).
    When a split is empty (tiny datasets) both use every scene, split "train"."""
    if data_cfg.kind not in ("synthetic", "nuscenes"):
        raise ValueError(f"data.kind must be 'synthetic' or 'nuscenes', got {data_cfg.kind!r}")
    root = Path(data_cfg.root)
    if data_cfg.kind == "synthetic":
        if is_main():  # one writer under torchrun; the others wait for it
            ensure_synthetic(data_cfg, image_size)
        barrier()
    common = {"version": data_cfg.version, "image_size": image_size, "occ_grid": occ_grid,
              "occ_root": data_cfg.occ_root, "val_fraction": data_cfg.val_fraction, "load_images": load_images,
              "require_occupancy": require_occupancy, "trajectory_source": data_cfg.trajectory_source,
              "drop_stuck": data_cfg.drop_stuck, "route_plan": data_cfg.route_plan}
    train_scenes, val_scenes = data_cfg.train_scenes, data_cfg.val_scenes
    from_card = card_splits(root) if train_scenes is None and val_scenes is None else None
    if from_card is not None:
        train_scenes, val_scenes = from_card
    if train_scenes is not None:
        train = NuScenesOccDataset(root, scenes=list(train_scenes), **common)
    else:
        train = NuScenesOccDataset(root, split="train", **common)
    if val_scenes is not None:
        val = NuScenesOccDataset(root, scenes=list(val_scenes), **common)
    else:
        val = NuScenesOccDataset(root, split="val", **common)
    if len(val) == 0 or len(train) == 0:  # too few scenes to hold some out: train and evaluate on all
        everything = NuScenesOccDataset(root, **common)
        return everything, everything, "train"
    return train, val, "val"
