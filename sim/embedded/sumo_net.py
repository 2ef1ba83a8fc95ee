"""SUMO networks from OpenDRIVE towns, and the SUMO <-> CARLA coordinate transform.

netconvert turns the same .xodr that `carla.Map` reads into a SUMO network, so SUMO lanes coincide with
CARLA lanes (measured on Town01: driving-lane centre lines within 0.06 m of the carla.Map lane polylines,
see tests/sim/test_traffic.py). Conversions are cached by the content hash of the .xodr and the options.

Frames: SUMO nets are right-handed (x east, y north) and shifted by `netOffset` so the network's
bounding box starts at (0, 0); CARLA is left-handed (x east, y south). SUMO angles are degrees clockwise
from north; CARLA yaw is degrees from +x towards +y (south), i.e. also clockwise seen from above.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.protocol import SimulatorError

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "occvla-drive" / "sumo"
_CACHE_VERSION = "3"  # bump when the conversion semantics change without an option change


class NetConvertError(SimulatorError):
    """netconvert is missing or failed on a map."""


def sumo_home() -> Path:
    """SUMO's data/tools root: $SUMO_HOME, else the one bundled with the `sumo` (eclipse-sumo) package."""
    env = os.environ.get("SUMO_HOME")
    if env and Path(env, "data").is_dir():
        return Path(env)
    try:
        import sumo  # eclipse-sumo wheel
    except ImportError as exc:
        raise NetConvertError("SUMO not found: set SUMO_HOME or `pip install eclipse-sumo`") from exc
    return Path(sumo.SUMO_HOME)


def _typemap_files() -> list[Path]:
    """Standard OpenDRIVE lane-type map plus its pedestrian add-on (the map's own sidewalk lanes are kept) and
    ours, which keeps shoulders as closed lanes so sidewalks stay at their carla.Map offsets."""
    typemap = sumo_home() / "data" / "typemap"
    files = [
        typemap / "opendriveNetconvert.typ.xml",
        typemap / "opendriveNetconvertPedestrians.typ.xml",
        Path(__file__).with_name("sumo_shoulder.typ.xml"),
    ]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise NetConvertError(f"SUMO type map not found: {missing[0]}")
    return files


# Why each option:
# --type-files (opendrive + pedestrians): import the map's own `sidewalk` lanes (default netconvert drops them);
#     on Town01 every SUMO sidewalk point then lies on a carla.Map sidewalk lane.
# --sidewalks.guess: towns without sidewalk lanes still get sidewalks (edges that have one are left alone).
# --crossings.guess: zebra crossings at junctions, so pedestrians can cross (signalled where a tls is).
# --junctions.join: OpenDRIVE junctions often become clusters of nodes; one SUMO junction per real junction.
# --tls.guess: signalise junctions the map leaves unsignalled (OpenDRIVE signals are imported as well).
# --no-turnarounds.except-deadend: no U-turn connections mid-network (as CARLA's own Town01.net.xml).
# --tls.discard-simple: no traffic lights at geometry-like nodes (two roads meeting at a bend). netconvert
#     places an OpenDRIVE signal at the far end of its road when its orientation says so; on Town01 that gave
#     four lights at the corners of the outer loop, where CARLA has none.
# --tls.layout incoming, --tls.green.time 10, --tls.yellow.time 3, --tls.allred.time 2: CARLA's signal semantics. The
#     lights of a CARLA junction cycle one approach at a time (green 10 s, yellow 3 s, red 2 s with all red), so
#     every turn is protected; SUMO's default pairs opposite approaches, and its left turners then wait for gaps
#     in the oncoming stream. Pedestrian crossings keep SUMO's timing within each approach's phase.
# After the conversion, every unsignalised junction of three or more arms becomes an `allway_stop` (see
# `_allway_stop_patch`). netOffset normalisation stays ON: CARLA's Town01.net.xml uses the normalised
# 0.06,328.61 offset, and SumoCoords reads whatever offset the net has.
NETCONVERT_OPTIONS: tuple[str, ...] = (
    "--junctions.join",
    "true",
    "--tls.guess",
    "true",
    "--sidewalks.guess",
    "true",
    "--crossings.guess",
    "true",
    "--no-turnarounds.except-deadend",
    "true",
    "--tls.discard-simple",
    "true",
    "--tls.layout",
    "incoming",
    "--tls.green.time",
    "10",
    "--tls.yellow.time",
    "3",
    "--tls.allred.time",
    "2",
)


def _sumo_version() -> str:
    """The installed eclipse-sumo version (part of the cache key: a new netconvert may convert differently)."""
    try:
        return importlib.metadata.version("eclipse-sumo")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def find_netconvert() -> Path:
    """The netconvert binary: $SUMO_HOME/bin, the `sumo` package's bin, the venv's bin, then $PATH."""
    candidates = []
    env = os.environ.get("SUMO_HOME")
    if env:
        candidates.append(Path(env) / "bin" / "netconvert")
    try:
        import sumo

        candidates.append(Path(sumo.SUMO_HOME) / "bin" / "netconvert")
    except ImportError:
        pass
    candidates.append(Path(sys.executable).parent / "netconvert")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    found = shutil.which("netconvert")
    if found:
        return Path(found)
    raise NetConvertError("netconvert not found: set SUMO_HOME or `pip install eclipse-sumo`")


def convert_network(xodr_path: Path, cache_dir: Path | None = None) -> Path:
    """Convert an OpenDRIVE file to a SUMO .net.xml (cached by content hash; written atomically).

    Returns the path of the cached network. Raises NetConvertError (one line, with netconvert's last
    error line) when the file is missing or netconvert fails.
    """
    xodr_path = Path(xodr_path)
    if not xodr_path.is_file():
        raise NetConvertError(f"OpenDRIVE file not found: {xodr_path}")
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    typemaps = _typemap_files()
    h = hashlib.sha256()
    h.update(xodr_path.read_bytes())
    h.update("\0".join((_CACHE_VERSION, _sumo_version(), *NETCONVERT_OPTIONS)).encode())
    for f in typemaps:
        h.update(f.read_bytes())
    out = cache_dir / f"{xodr_path.stem}-{h.hexdigest()[:16]}.net.xml"
    if out.is_file():
        return out

    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{xodr_path.stem}-", suffix=".net.xml", dir=cache_dir)
    os.close(fd)
    first, patch = Path(tmp_name + ".first.net.xml"), Path(tmp_name + ".nod.xml")
    try:
        convert = ["--opendrive", str(xodr_path), "--type-files", ",".join(str(f) for f in typemaps)]
        _netconvert([*convert, *NETCONVERT_OPTIONS], first, f"{xodr_path}")
        fast = _fast_edges_with_guessed_sidewalks(first)
        if fast:
            exclude = ["--sidewalks.guess.exclude", ",".join(fast)]
            _netconvert(
                [*convert, *NETCONVERT_OPTIONS, *exclude], first, f"{xodr_path} (no sidewalks on fast roads)"
            )
        if _allway_stop_patch(first, patch):
            _netconvert(["-s", str(first), "-n", str(patch)], Path(tmp_name), f"{xodr_path} (all-way stops)")
        else:
            os.replace(first, tmp_name)
        os.replace(tmp_name, out)
    finally:
        for name in (tmp_name, first, patch):
            if os.path.exists(name):
                os.unlink(name)
    return out


def _netconvert(args: list[str], out: Path, what: str) -> None:
    cmd = [
        str(find_netconvert()),
        *args,
        "-o",
        str(out),
        "--no-warnings",
        "true",
        "--xml-validation",
        "never",
    ]
    env = {**os.environ, "SUMO_HOME": str(sumo_home())}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        raise NetConvertError(f"netconvert failed on {what}: {_error_summary(proc)}")


FAST_ROAD_KMH = 50.0  # no guessed sidewalk (and so no pedestrians or crossings) on roads faster than this


def _fast_edges_with_guessed_sidewalks(net_path: Path) -> list[str]:
    """Edges whose car lanes are faster than FAST_ROAD_KMH and that got a guessed sidewalk (one not imported
    from an OpenDRIVE `sidewalk` lane): highways and ramps, where netconvert's guess (from the edge type's
    default speed, not the lanes' limits) would put pedestrians beside 90 km/h traffic."""
    out: list[str] = []
    for _, el in ET.iterparse(net_path, events=("end",)):
        if el.tag == "edge":
            if el.get("function") is None:
                lanes = el.findall("lane")
                car = [float(ln.get("speed", 0)) for ln in lanes if _carries_cars(ln)]
                guessed = any(
                    ln.get("allow") == "pedestrian" and ln.get("type") != "sidewalk" for ln in lanes
                )
                if car and max(car) > FAST_ROAD_KMH / 3.6 + 0.01 and guessed:
                    out.append(el.get("id", ""))
            el.clear()
    return sorted(out)


def _allway_stop_patch(net_path: Path, patch_path: Path) -> list[str]:
    """Write a node patch turning the net's unsignalised junctions (three or more road arms) into all-way stops.

    CARLA's Traffic Manager (0.9.14 on, the leaderboard 2.0 servers) has no right of way at a junction without
    lights: each vehicle stops at the junction for at least 2 s, then they enter one at a time in their order of
    arrival. SUMO's `allway_stop` is that rule (a full stop, then first come first served; it lets movements
    that do not conflict enter together, where the TM admits one vehicle at a time); its `priority` junctions
    instead let a major-road stream starve the side roads for minutes. Two-arm nodes (where roads
    merely join) stay as they are, and so do junctions where no two movements cross or merge (a highway's ramp
    junctions: every ramp lane continues in its own auxiliary lane, so nobody needs to stop there). Returns the
    ids patched ([] writes nothing).
    """
    arms: dict[str, set[str]] = {}
    priority: list[str] = []
    for _, el in ET.iterparse(net_path, events=("end",)):
        if el.tag == "edge" and el.get("function") is None:
            if any(_carries_cars(ln) for ln in el.findall("lane")):
                a, b = el.get("from", ""), el.get("to", "")
                arms.setdefault(a, set()).add(b)
                arms.setdefault(b, set()).add(a)
        elif el.tag == "junction" and el.get("type") == "priority":
            if any("1" in r.get("foes", "") for r in el.findall("request")):
                priority.append(el.get("id", ""))
        if el.tag in ("edge", "junction"):
            el.clear()
    ids = sorted(j for j in priority if len(arms.get(j, ())) >= 3)
    if ids:
        nodes = "".join(f'  <node id="{j}" type="allway_stop"/>\n' for j in ids)
        patch_path.write_text(f"<nodes>\n{nodes}</nodes>\n", encoding="utf-8")
    return ids


def _carries_cars(lane: ET.Element) -> bool:
    allow, disallow = lane.get("allow"), lane.get("disallow", "")
    if allow is not None:
        return "passenger" in allow.split()
    return disallow != "all" and "passenger" not in disallow.split()


def _error_summary(proc: subprocess.CompletedProcess) -> str:
    """One line: netconvert's first error (the cause) and its last stderr line (where it gave up)."""
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    last = lines[-1] if lines else f"exit code {proc.returncode}"
    if errors and errors[0] != last:
        return f"{errors[0]} ... {last}"
    return last


_LOCATION_RE = re.compile(r"<location\b[^>]*\bnetOffset=\"([-\d.eE+]+),([-\d.eE+]+)\"")


@dataclass(frozen=True)
class SumoCoords:
    """SUMO net coordinates <-> CARLA world coordinates for one network.

    carla_x = sumo_x - off_x, carla_y = -(sumo_y - off_y); carla_yaw = sumo_angle - 90 (wrapped to
    [-180, 180)), sumo_angle = carla_yaw + 90 (wrapped to [0, 360)).
    """

    off_x: float
    off_y: float

    @staticmethod
    def from_net_file(net_path: Path) -> SumoCoords:
        """Read `<location netOffset="x,y">` from the head of a .net.xml."""
        with open(net_path, encoding="utf-8") as f:
            head = f.read(1 << 16)  # the location element comes first, before any edge
        m = _LOCATION_RE.search(head)
        if m is None:
            raise NetConvertError(f"no <location netOffset=...> in SUMO network {net_path}")
        return SumoCoords(float(m.group(1)), float(m.group(2)))

    # ---- points
    def to_carla(self, x: float, y: float) -> tuple[float, float]:
        return x - self.off_x, -(y - self.off_y)

    def to_sumo(self, x: float, y: float) -> tuple[float, float]:
        return x + self.off_x, self.off_y - y

    def to_carla_xy(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) SUMO points -> (N, 2) CARLA points (float64)."""
        xy = np.asarray(xy, np.float64)
        return np.stack([xy[..., 0] - self.off_x, self.off_y - xy[..., 1]], axis=-1)

    def to_sumo_xy(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) CARLA points -> (N, 2) SUMO points (float64)."""
        xy = np.asarray(xy, np.float64)
        return np.stack([xy[..., 0] + self.off_x, self.off_y - xy[..., 1]], axis=-1)

    # ---- angles (degrees); scalars or arrays
    @staticmethod
    def to_carla_yaw(sumo_angle: float | np.ndarray) -> float | np.ndarray:
        """SUMO angle (clockwise from north) -> CARLA yaw in [-180, 180)."""
        if isinstance(sumo_angle, np.ndarray):
            return (sumo_angle.astype(np.float64) + 90.0) % 360.0 - 180.0
        return (float(sumo_angle) + 90.0) % 360.0 - 180.0

    @staticmethod
    def to_sumo_angle(carla_yaw: float | np.ndarray) -> float | np.ndarray:
        """CARLA yaw -> SUMO angle in [0, 360)."""
        if isinstance(carla_yaw, np.ndarray):
            return (carla_yaw.astype(np.float64) + 90.0) % 360.0
        return (float(carla_yaw) + 90.0) % 360.0
