"""Datasets for training from the ``data`` config section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from occvla.data import NuScenesOccDataset, make_synthetic_dataset
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


def build_datasets(
    data_cfg: Any, image_size: int, occ_grid: tuple[int, int, int], load_images: bool = True,
    require_occupancy: bool = False,
) -> tuple[NuScenesOccDataset, NuScenesOccDataset, str]:
    """(train, eval, eval_split_name). When a split is empty (tiny datasets) both use every scene, split "train"."""
    if data_cfg.kind not in ("synthetic", "nuscenes"):
        raise ValueError(f"data.kind must be 'synthetic' or 'nuscenes', got {data_cfg.kind!r}")
    root = Path(data_cfg.root)
    if data_cfg.kind == "synthetic":
        if is_main():  # one writer under torchrun; the others wait for it
            ensure_synthetic(data_cfg, image_size)
        barrier()
    common = {"version": data_cfg.version, "image_size": image_size, "occ_grid": occ_grid,
              "occ_root": data_cfg.occ_root, "val_fraction": data_cfg.val_fraction, "load_images": load_images,
              "require_occupancy": require_occupancy}
    if data_cfg.train_scenes is not None:
        train = NuScenesOccDataset(root, scenes=list(data_cfg.train_scenes), **common)
    else:
        train = NuScenesOccDataset(root, split="train", **common)
    if data_cfg.val_scenes is not None:
        val = NuScenesOccDataset(root, scenes=list(data_cfg.val_scenes), **common)
    else:
        val = NuScenesOccDataset(root, split="val", **common)
    if len(val) == 0 or len(train) == 0:  # too few scenes to hold some out: train and evaluate on all
        everything = NuScenesOccDataset(root, **common)
        return everything, everything, "train"
    return train, val, "val"
