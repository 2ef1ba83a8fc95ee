"""Occ3D label files and occupancy pooling.

Occ3D-nuScenes stores one ``labels.npz`` per sample at ``gts/<scene name>/<sample token>/labels.npz`` with
``semantics`` (200, 200, 16) uint8 classes (17 = free), ``mask_lidar`` and ``mask_camera`` (same shape, 0/1), indexed
[x, y, z] in the ego frame: x, y in [-40, 40] m, z in [-1, 5.4] m, 0.4 m voxels.

Pooling (for small presets): the grid is cut into blocks (a block may be non-integer sized: source index i goes to
target index i * n // N). A block takes the most frequent *occupied* class among its voxels when its occupied
fraction exceeds ``occupied_threshold`` (default 0: any occupied voxel; keeps thin objects such as pedestrians and
poles, conservative for planning), else free. A pooled voxel is visible (mask) when any of its voxels is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OCC3D_GRID = (200, 200, 16)
OCC3D_VOXEL_M = 0.4
OCC3D_RANGE = ((-40.0, 40.0), (-40.0, 40.0), (-1.0, 5.4))
NUM_CLASSES = 18
FREE = 17
LABEL_KEYS = ("semantics", "mask_lidar", "mask_camera")


def occ3d_label_path(root: str | Path, scene_name: str, sample_token: str) -> Path:
    """Where Occ3D keeps a sample's labels."""
    return Path(root) / "gts" / scene_name / sample_token / "labels.npz"


def load_occ3d_labels(path: str | Path, grid: tuple[int, int, int] = OCC3D_GRID) -> dict[str, np.ndarray]:
    """Read ``labels.npz`` -> semantics uint8, mask_lidar bool, mask_camera bool, each ``grid``-shaped.

    Raises:
        FileNotFoundError / ValueError with the file name on a missing file, key, wrong shape or class range.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Occ3D labels not found: {path}")
    try:
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
    except Exception as e:  # noqa: BLE001 - any corrupt-file error becomes one line naming the file
        raise ValueError(f"cannot read Occ3D labels {path}: {type(e).__name__}: {e}") from None
    for key in ("semantics", "mask_camera"):
        if key not in data:
            raise ValueError(f"Occ3D labels {path} lack the {key!r} array (has {sorted(data)})")
    out: dict[str, np.ndarray] = {}
    for key in LABEL_KEYS:
        if key not in data:
            continue
        a = data[key]
        if a.shape != tuple(grid):
            raise ValueError(f"Occ3D labels {path}: {key!r} has shape {a.shape}, expected {tuple(grid)}")
        out[key] = a.astype(np.uint8) if key == "semantics" else a.astype(bool)
    if out["semantics"].max(initial=0) >= NUM_CLASSES:
        raise ValueError(f"Occ3D labels {path}: semantics hold class {int(out['semantics'].max())} >= {NUM_CLASSES}")
    return out


def save_occ3d_labels(path: str | Path, semantics: np.ndarray, mask_lidar: np.ndarray, mask_camera: np.ndarray) -> None:
    """Write an Occ3D ``labels.npz`` (compressed, atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        tmp, semantics=semantics.astype(np.uint8), mask_lidar=mask_lidar.astype(np.uint8),
        mask_camera=mask_camera.astype(np.uint8),
    )
    tmp.replace(path)


def _bins(n_src: int, n_dst: int) -> np.ndarray:
    return (np.arange(n_src) * n_dst) // n_src


def pool_occupancy_to(
    sem: np.ndarray, mask: np.ndarray | None, grid: tuple[int, int, int], occupied_threshold: float = 0.0
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pool (X, Y, Z) labels (and mask) to ``grid`` (see module docstring for the rule)."""
    sem = np.asarray(sem)
    if sem.ndim != 3:
        raise ValueError(f"pool_occupancy expects (X, Y, Z) labels, got shape {sem.shape}")
    grid = tuple(int(g) for g in grid)
    if len(grid) != 3 or any(g < 1 or g > s for g, s in zip(grid, sem.shape, strict=True)):
        raise ValueError(f"cannot pool occupancy of shape {sem.shape} to grid {grid}")
    if grid == sem.shape:
        return sem.astype(np.uint8), None if mask is None else np.asarray(mask, bool)
    bx, by, bz = (_bins(s, g) for s, g in zip(sem.shape, grid, strict=True))
    cell = (bx[:, None, None] * grid[1] + by[None, :, None]) * grid[2] + bz[None, None, :]  # (X, Y, Z) target id
    n_cells = grid[0] * grid[1] * grid[2]
    counts = np.bincount((cell * NUM_CLASSES + sem.astype(np.int64)).ravel(), minlength=n_cells * NUM_CLASSES)
    counts = counts.reshape(n_cells, NUM_CLASSES)
    total = counts.sum(1)
    occ_counts = counts[:, :FREE]
    occupied = occ_counts.sum(1) > occupied_threshold * total
    occupied &= occ_counts.sum(1) > 0
    out = np.where(occupied, occ_counts.argmax(1), FREE).astype(np.uint8).reshape(grid)
    if mask is None:
        return out, None
    m = np.bincount(cell.ravel(), weights=np.asarray(mask, bool).ravel().astype(np.float64), minlength=n_cells)
    return out, (m > 0).reshape(grid)


def pool_occupancy(
    sem: np.ndarray, mask: np.ndarray | None, factor: int | tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pool (X, Y, Z) labels by ``factor``: an int pools X and Y only (Z kept, as the presets' (50, 50, 16)); a
    triple gives per-axis factors. Each axis must divide evenly (use ``pool_occupancy_to`` otherwise)."""
    f = (factor, factor, 1) if isinstance(factor, (int, np.integer)) else tuple(int(v) for v in factor)
    if len(f) != 3 or min(f) < 1:
        raise ValueError(f"pool factor must be a positive int or three positive ints, got {factor!r}")
    shape = np.asarray(sem).shape
    if len(shape) != 3 or any(s % k for s, k in zip(shape, f, strict=True)):
        raise ValueError(f"occupancy shape {shape} is not divisible by pool factor {f}")
    return pool_occupancy_to(sem, mask, tuple(s // k for s, k in zip(shape, f, strict=True)))
