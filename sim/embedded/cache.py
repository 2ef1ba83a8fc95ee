"""On-disk caches of derived town data: generated towns' OpenDRIVE, SUMO networks and static scenes.

Why: a generated town (`OccGen-<seed>`) is rebuilt from its seed, and every town's SUMO network and static scene
are derived from its .xodr; caching them under the user's cache folder (never in the repository) makes a second
load of any town fast. Keys are content hashes, so a changed map or a changed builder never serves stale data.
The default root is `~/.cache/occvla-drive`; `SimConfig.cache_dir` (or `--cache-dir` where a CLI offers it)
moves it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.types import BoxSet, GroundRaster, Mesh, StaticScene

if TYPE_CHECKING:
    from sim.embedded.maps import Town

DEFAULT_CACHE_ROOT = Path.home() / ".cache" / "occvla-drive"
_SCENE_FORMAT = "1"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache root: `cache_dir` when given, else ~/.cache/occvla-drive."""
    return Path(cache_dir).expanduser() if cache_dir else DEFAULT_CACHE_ROOT


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to `path` through a temporary file in the same folder (readers never see a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def scene_key(xodr_text: str, seed: int, builder_source: bytes) -> str:
    """Content key of a static scene: the map, the placement seed and the builder's own source code."""
    h = hashlib.sha256()
    for part in (_SCENE_FORMAT.encode(), xodr_text.encode(), str(seed).encode(), builder_source):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:20]


def save_scene(path: Path, scene: StaticScene) -> None:
    """A static scene as one .npz (atomically)."""
    g, p, m = scene.ground, scene.props, scene.mesh
    arrays = {
        "town": np.array(scene.town),
        "ground_classes": g.classes,
        "ground_origin": np.array([g.x_min, g.y_min, g.resolution], np.float64),
        "props_centers": p.centers,
        "props_extents": p.extents,
        "props_yaws": p.yaws,
        "props_classes": p.classes,
        "mesh_positions": m.positions,
        "mesh_normals": m.normals,
        "mesh_colors": m.colors,
        "mesh_semantic": m.semantic,
        "street_lights": scene.street_lights,
        "bounds": np.array(scene.bounds, np.float64),
    }
    if g.height is not None:
        arrays["ground_height"] = g.height
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def load_scene(path: Path) -> StaticScene | None:
    """A scene saved by `save_scene`, or None when the file is missing or unreadable (then rebuild)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ox, oy, res = (float(v) for v in z["ground_origin"])
            height = z["ground_height"] if "ground_height" in z.files else None
            ground = GroundRaster(z["ground_classes"], ox, oy, res, height)
            props = BoxSet(z["props_centers"], z["props_extents"], z["props_yaws"], z["props_classes"])
            mesh = Mesh(z["mesh_positions"], z["mesh_normals"], z["mesh_colors"], z["mesh_semantic"])
            b = tuple(float(v) for v in z["bounds"])
            return StaticScene(
                town=str(z["town"]),
                ground=ground,
                props=props,
                mesh=mesh,
                street_lights=z["street_lights"],
                bounds=b,
            )  # type: ignore[arg-type]
    except (OSError, KeyError, ValueError, EOFError):
        return None


def cached_static_scene(town: Town, seed: int = 0, cache_dir: str | Path | None = None) -> StaticScene:
    """The static scene of a town (sim.embedded.scene.build_static_scene), from the disk cache when built before.

    Keyed by the .xodr text, the seed and the source of the scene builder, so an edited builder rebuilds.
    """
    from sim.embedded import scene as scene_mod

    key = scene_key(town.xodr_text, seed, Path(scene_mod.__file__).read_bytes())
    path = cache_root(cache_dir) / "scenes" / f"{town.name}-{key}.npz"
    if path.is_file():
        loaded = load_scene(path)
        if loaded is not None:
            return loaded
    built = scene_mod.build_static_scene(town, seed=seed)
    try:
        save_scene(path, built)
    except OSError:
        pass  # a read-only cache only costs the rebuild next time
    return built
