"""Towns for the embedded simulator: find an OpenDRIVE file by name and load it through `carla.Map`.

Search order (issue 2): an explicit map directory, then a CARLA install's OpenDRIVE folder
(`$CARLA_ROOT/CarlaUE4/Content/Carla/Maps/OpenDrive`), then the project's built-in towns, then generated
towns: any `OccGen-<seed>` (a non-negative integer) is built from its seed (sim.embedded.towns.occgen) and
cached under the cache folder. Names may be given as CARLA route files write them ('Town01',
'/Game/Carla/Maps/Town01') or with a '.xodr' suffix.
"""

from __future__ import annotations

import hashlib
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import carla

from sim.embedded.cache import cache_root, write_atomic
from sim.embedded.towns import TOWNS_DIR
from sim.embedded.towns.occgen import GENERATOR_VERSION, TownNameError, is_generated_name, occgen_xodr, parse_seed
from sim.protocol import SimulatorError, TownNotFoundError

CARLA_OPENDRIVE_SUBDIR = Path("CarlaUE4") / "Content" / "Carla" / "Maps" / "OpenDrive"
SPAWN_Z_OFFSET = 0.5  # metres above the lane, as CARLA's recommended spawn points
JUNCTION_CLEARANCE = 4.0  # spawn points keep this far (metres along the lane) from junctions


@dataclass
class Town:
    """A loaded town: its OpenDRIVE source and the parsed `carla.Map`."""

    name: str
    xodr_path: Path
    xodr_text: str
    map: carla.Map


def builtin_towns() -> list[str]:
    """Names of the towns shipped with the project (generated .xodr files beside sim/embedded/towns)."""
    return sorted(p.stem for p in TOWNS_DIR.glob("*.xodr"))


def town_basename(name: str) -> str:
    """'/Game/Carla/Maps/Town01' -> 'Town01'; 'Town01.xodr' -> 'Town01'."""
    base = str(name).strip().replace("\\", "/").rstrip("/").split("/")[-1]
    return base[:-5] if base.lower().endswith(".xodr") else base


def _search_dirs(map_dir: str | Path | None) -> list[Path]:
    dirs: list[Path] = []
    if map_dir:
        dirs.append(Path(map_dir).expanduser())
    carla_root = os.environ.get("CARLA_ROOT")
    if carla_root:
        dirs.append(Path(carla_root).expanduser() / CARLA_OPENDRIVE_SUBDIR)
    dirs.append(TOWNS_DIR)
    return dirs


def generated_town_path(name: str, cache_dir: str | Path | None = None) -> Path:
    """The cached .xodr of a generated town `OccGen-<seed>`, written on first use (atomically).

    Raises TownNotFoundError (one line) for a bad seed (`OccGen-x`, `OccGen--1`) or a town the generator
    cannot build.
    """
    base = town_basename(name)
    try:
        seed = parse_seed(base)
        path = cache_root(cache_dir) / "towns" / f"v{GENERATOR_VERSION}" / f"{base}.xodr"
        if not path.is_file():
            write_atomic(path, occgen_xodr(seed).encode("utf-8"))
    except TownNameError as exc:
        raise TownNotFoundError(str(exc)) from None
    except OSError as exc:
        raise TownNotFoundError(f"cannot write generated town {base} to the cache: {exc}") from None
    return path


def resolve_town(name: str, map_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """The .xodr file for a town name: map_dir, then $CARLA_ROOT's OpenDrive folder, then built-in towns, then
    a generated town `OccGen-<seed>` (built and cached under `cache_dir`, default ~/.cache/occvla-drive).

    A name that is itself an existing .xodr path is returned as is. Raises TownNotFoundError (one line:
    the town, every place searched and the available towns) when nothing matches.
    """
    if not name or not str(name).strip():
        raise TownNotFoundError(f"empty town name; built-in towns: {', '.join(builtin_towns())}")
    direct = Path(str(name)).expanduser()
    if direct.suffix.lower() == ".xodr" and direct.is_file():
        return direct
    base = town_basename(name)
    dirs = _search_dirs(map_dir)
    for d in dirs:
        cand = d / f"{base}.xodr"
        if cand.is_file():
            return cand
        # CARLA installs also nest maps in sub-folders of OpenDrive on some versions
        if d.is_dir():
            for nested in sorted(d.glob(f"*/{base}.xodr")):
                return nested
    if is_generated_name(base):
        return generated_town_path(base, cache_dir)
    available = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.xodr")})
    raise TownNotFoundError(
        f"town {name!r} not found; searched {', '.join(str(d) for d in dirs)}; "
        f"available: {', '.join(available) or 'none'}, or any generated town OccGen-<seed>")


_TOWNS: dict[tuple[str, str], Town] = {}  # (path, sha256 of its text) -> the parsed town, oldest first
_MAX_TOWNS = 4


def load_town(name: str, map_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> Town:
    """Resolve and parse a town. Malformed OpenDRIVE raises SimulatorError naming the file.

    The XML is validated with ElementTree before carla.Map sees it (carla prints to stderr and raises
    a bare RuntimeError on garbage), and a map without driving waypoints is refused. A file parsed before with the
    same text gives the same Town (carla.Map is read-only): the routes of a run re-load their town for free.
    """
    path = resolve_town(name, map_dir, cache_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulatorError(f"cannot read OpenDRIVE file {path}: {exc}") from exc
    key = (str(path.resolve()), hashlib.sha256(text.encode()).hexdigest())
    if key in _TOWNS:
        return _TOWNS[key]
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SimulatorError(f"malformed OpenDRIVE file {path}: not XML ({exc})") from exc
    if root.tag != "OpenDRIVE":
        raise SimulatorError(f"malformed OpenDRIVE file {path}: root element is <{root.tag}>, not <OpenDRIVE>")
    if root.find("road") is None:
        raise SimulatorError(f"malformed OpenDRIVE file {path}: no <road> element")
    try:
        cmap = carla.Map(town_basename(path.stem), text)
    except RuntimeError as exc:
        raise SimulatorError(f"malformed OpenDRIVE file {path}: carla.Map failed ({exc})") from exc
    if not cmap.generate_waypoints(5.0):
        raise SimulatorError(f"malformed OpenDRIVE file {path}: no driving-lane waypoints")
    if len(_TOWNS) >= _MAX_TOWNS:
        _TOWNS.pop(next(iter(_TOWNS)))
    town = _TOWNS[key] = Town(town_basename(path.stem), path, text, cmap)
    return town


def spawn_points(cmap: carla.Map, spacing: float = 20.0) -> list[carla.Transform]:
    """Spawn transforms every `spacing` metres along driving lanes, clear of junctions, 0.5 m up.

    A carla.Map built from OpenDRIVE text has no recommended spawn points (those come from the UE4
    level), so derive them from waypoints. The order is deterministic (road, lane, s).
    """
    if not math.isfinite(spacing) or spacing <= 0:
        raise ValueError(f"spawn point spacing must be a positive number of metres, got {spacing!r}")
    def clear(w: carla.Waypoint) -> bool:  # a car (~5 m) placed here does not reach into a junction
        near = [w, *w.next(JUNCTION_CLEARANCE), *w.previous(JUNCTION_CLEARANCE)]
        return not any(n.is_junction for n in near)

    wps = [w for w in cmap.generate_waypoints(spacing) if clear(w)]
    wps.sort(key=lambda w: (w.road_id, w.section_id, w.lane_id, w.s))
    out = []
    for w in wps:
        t = w.transform
        loc = carla.Location(t.location.x, t.location.y, t.location.z + SPAWN_Z_OFFSET)
        out.append(carla.Transform(loc, carla.Rotation(pitch=t.rotation.pitch, yaw=t.rotation.yaw,
                                                       roll=t.rotation.roll)))
    return out
