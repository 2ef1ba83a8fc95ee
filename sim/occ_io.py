"""Occ3D `labels.npz` files: the on-disk occupancy label format of Occ3D-nuScenes.

Occ3D ships one `gts/<scene>/<sample_token>/labels.npz` per sample with three (200, 200, 16) uint8 arrays:
`semantics` (class ids, 17 = free), `mask_lidar` and `mask_camera` (0/1). Files written here open with the
same `np.load(path)['semantics']` code that reads the real dataset, and real Occ3D files load here.
"""

from __future__ import annotations

import os
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np

from sim.protocol import OccupancyFrame
from sim.types import FREE

OCC3D_SHAPE = (200, 200, 16)
OCC3D_KEYS = ("semantics", "mask_lidar", "mask_camera")


class Occ3DFormatError(ValueError):
    """A labels.npz that is not a valid Occ3D label file (one line, names the file and the problem)."""


def save_occ3d(path: str | Path, frame: OccupancyFrame) -> Path:
    """Write `frame` as an Occ3D labels.npz (compressed, uint8 arrays), atomically: a reader never sees a
    half-written file. Creates parent folders. Returns the path written."""
    path = Path(path)
    sem = np.asarray(frame.semantics)
    for name in OCC3D_KEYS:
        arr = np.asarray(getattr(frame, name))
        if arr.ndim != 3 or arr.shape != sem.shape:
            raise Occ3DFormatError(f"{path}: '{name}' has shape {arr.shape}, expected a 3D grid like semantics "
                                   f"{sem.shape}")
    if sem.size and int(sem.max()) > FREE:
        raise Occ3DFormatError(f"{path}: semantics holds class id {int(sem.max())} > {FREE}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # umask permissions, not 0600
    try:
        with open(tmp, "xb") as f:
            np.savez_compressed(f, semantics=sem.astype(np.uint8),
                                mask_lidar=np.asarray(frame.mask_lidar).astype(np.uint8),
                                mask_camera=np.asarray(frame.mask_camera).astype(np.uint8))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_occ3d(path: str | Path, shape: tuple[int, int, int] | None = OCC3D_SHAPE) -> OccupancyFrame:
    """Read an Occ3D labels.npz. `shape=None` accepts any 3D grid (all three arrays must agree).

    Raises FileNotFoundError for a missing file and Occ3DFormatError for a corrupt file, a missing key, a
    wrong shape or a class id above 17.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Occ3D labels not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in OCC3D_KEYS if k not in z.files]
            if missing:
                raise Occ3DFormatError(f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(z.files)})")
            arrays = {k: z[k] for k in OCC3D_KEYS}
    except Occ3DFormatError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise Occ3DFormatError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    sem = arrays["semantics"]
    for k, arr in arrays.items():
        want = shape if shape is not None else sem.shape
        if arr.ndim != 3 or arr.shape != tuple(want):
            raise Occ3DFormatError(f"{path}: '{k}' has shape {arr.shape}, expected {tuple(want)}")
    if sem.size and int(sem.max()) > FREE:
        raise Occ3DFormatError(f"{path}: semantics holds class id {int(sem.max())} > {FREE}")
    return OccupancyFrame(semantics=sem.astype(np.uint8, copy=False),
                          mask_camera=arrays["mask_camera"].astype(bool),
                          mask_lidar=arrays["mask_lidar"].astype(bool))
