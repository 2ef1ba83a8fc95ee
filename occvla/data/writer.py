"""Writes key frames into the dataset format of occvla/data/format.py, atomically and resumably.

Why a journal: nuScenes keeps each table in one json file, so a table cannot grow by appending. Each key frame's
files (six jpgs, labels.npz) are written to temporary names and renamed; then one json line with the key frame's
records is appended to its scene's journal (``.occvla/journal/<scene>.jsonl``). The tables are rebuilt from the
journals (each table written to a temporary file and renamed) at the end of every scene, every
``flush_every_s`` seconds, and on close: the tables always parse, and they hold every key frame up to the last
flush; a killed run's journals still hold every finished key frame, and ``--resume`` (or `DatasetWriter.flush`)
brings the tables up to date. A scene is finished when its journal ends with an ``end`` line; ``--resume`` skips
finished scenes and repeats unfinished ones from their start (tokens are hashes of what a record is, so the repeat
writes the same records). A flush costs what changed since the last one (``TableBuilder``: journals are read on
from where the last flush stopped, unchanged scenes keep their serialised records), not the whole dataset again.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import tempfile
import time
import zipfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from occvla.data.format import (
    ATTRIBUTES,
    CAMERAS,
    CARD_JSON,
    DEFAULT_VERSION,
    EXTRA_TABLE,
    JOURNAL_DIR,
    NUSCENES_CATEGORIES,
    TABLES,
    VISIBILITY,
    camera_filename,
    is_dataset_dir,
    make_token,
    occ3d_relpath,
)


class DatasetWriteError(RuntimeError):
    """A dataset cannot be written (one line: full disk, unwritable path, a folder that is not a dataset)."""


@dataclass
class CameraCalib:
    """One camera of the rig in the nuScenes ego frame."""

    channel: str
    translation: list[float]  # metres, ego frame (x fwd, y left, z up)
    rotation: list[float]  # [w, x, y, z], camera (x right, y down, z fwd) -> ego
    intrinsic: list[list[float]]  # (3, 3)
    width: int
    height: int


@dataclass
class Annotation:
    """One 3D box of a key frame, in nuScenes' global frame."""

    instance_key: str  # stable per actor within a scene (becomes the instance token)
    category: str  # a NUSCENES_CATEGORIES name
    translation: list[float]  # box centre, global, metres
    size: list[float]  # [width, length, height], metres
    rotation: list[float]  # [w, x, y, z]
    velocity: list[float]  # global (vx, vy), m/s
    attributes: list[str]
    visibility_token: str  # "1".."4"
    num_pts: int = 0  # camera sample points that saw the box (nuScenes' num_lidar_pts stand-in)


@dataclass
class Keyframe:
    """Everything of one key frame the writer stores (plain data: no simulator types)."""

    frame: int  # simulator tick
    timestamp: int  # microseconds
    ego_translation: list[float]  # global, metres
    ego_rotation: list[float]  # [w, x, y, z]
    images: dict[str, np.ndarray]  # channel -> (H, W, 3) uint8 BGR
    annotations: list[Annotation]
    semantics: np.ndarray  # (200, 200, 16) uint8
    mask_lidar: np.ndarray  # (200, 200, 16) bool
    mask_camera: np.ndarray  # (200, 200, 16) bool
    extra: dict[str, Any] = field(default_factory=dict)  # the EXTRA_TABLE fields (json-serialisable)


def occ3d_npz_bytes(semantics: np.ndarray, mask_lidar: np.ndarray, mask_camera: np.ndarray) -> bytes:
    """Occ3D's labels.npz (uint8 arrays, deflate-compressed as np.savez_compressed writes them) at zlib level 1:
    ~4x faster than savez_compressed's default level for a file ~10 % larger; np.load reads both alike."""
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in (("semantics", semantics), ("mask_lidar", mask_lidar), ("mask_camera", mask_camera)):
            with zf.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr, dtype=np.uint8), allow_pickle=False)
    return bio.getvalue()


def _disk_error(exc: OSError, what: str) -> DatasetWriteError:
    if exc.errno == errno.ENOSPC:
        return DatasetWriteError(f"no space left on the device while writing {what}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DatasetWriteError(f"cannot write {what}: permission denied")
    return DatasetWriteError(f"cannot write {what}: {exc.strerror or exc}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def check_output_dir(root: Path, resume: bool) -> None:
    """Refuse, in one line, a root that is a file, not writable, or a non-empty folder that is not a dataset, and an
    existing dataset unless resuming."""
    if root.exists() and not root.is_dir():
        raise DatasetWriteError(f"output path {root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not is_dataset_dir(root):
            raise DatasetWriteError(
                f"output folder {root} is not empty and holds no dataset; choose another folder"
            )
        if not resume:
            raise DatasetWriteError(
                f"output folder {root} already holds a dataset; pass --resume to continue it"
            )
        # a killed writer leaves the temporary file of the write it was in (atomic_write_bytes): resuming, no
        # writer of this dataset runs yet, so every one is stale
        for tmp in root.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".occvla-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _disk_error(exc, f"the output folder {root}") from None


class DatasetWriter:
    """One dataset root; scenes are written one at a time (several writers may share a root: one per worker).

    background=True encodes and writes key frames on a thread, in order, while the caller goes on (JPEG and
    deflate release the GIL, so a simulator's Python runs beside them on the other core); at most
    `max_pending` key frames wait. An error of a queued key frame is raised by the next call (add, end_scene,
    flush, wait); each file is still written atomically and its journal line after it.
    """

    def __init__(
        self,
        root: str | Path,
        version: str = DEFAULT_VERSION,
        flush_every_s: float = 30.0,
        jpeg_quality: int = 90,
        background: bool = False,
        max_pending: int = 4,
    ) -> None:
        self.root = Path(root)
        self.version = version
        self.flush_every_s = flush_every_s
        self.jpeg_quality = int(jpeg_quality)
        self.journal_dir = self.root / JOURNAL_DIR
        self._scene: str | None = None
        self._last_flush = time.monotonic()
        self._added = 0  # key frames added by this writer
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dataset-writer") if background else None
        self._pending: deque[Future] = deque()
        self.max_pending = max(1, int(max_pending))
        self._builder = TableBuilder()

    # ------------------------------------------------------------------ scenes
    def finished_scenes(self) -> set[str]:
        """Scene names whose journal ends with an ``end`` line."""
        out = set()
        for path in sorted(self.journal_dir.glob("*.jsonl")):
            lines = self._builder.journals.lines(path)
            if lines and lines[-1].get("kind") == "end":
                out.add(path.stem)
        return out

    def begin_scene(
        self,
        name: str,
        town: str,
        description: str,
        cameras: list[CameraCalib],
        log: dict[str, Any] | None = None,
    ) -> None:
        """Start (or restart from scratch) scene ``name``: its header line names the town, rig and log fields."""
        if self._scene is not None:
            raise RuntimeError(f"scene {self._scene} is still open")
        self._scene = name
        header = {
            "kind": "scene",
            "name": name,
            "town": town,
            "description": description,
            "cameras": [c.__dict__ for c in cameras],
            "log": log or {},
        }
        try:
            atomic_write_bytes(self._journal(name), (json.dumps(header) + "\n").encode())
        except OSError as exc:
            raise _disk_error(exc, f"the journal of scene {name}") from None

    def add(self, kf: Keyframe) -> str:
        """Write one key frame (files first, then its journal line); returns its sample token."""
        scene = self._require_scene()
        if self._pool is None:
            return self._add(scene, kf)
        self._reap(keep=self.max_pending - 1)
        self._pending.append(self._pool.submit(self._add, scene, kf))
        return make_token("sample", scene, kf.frame)

    def wait(self) -> None:
        """Block until every queued key frame is written; raise the first error of one."""
        self._reap(keep=0)

    def close(self) -> None:
        """Finish the queued key frames and stop the writer thread."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _reap(self, keep: int) -> None:
        """Wait for queued key frames until at most `keep` remain (finished ones are always collected)."""
        while self._pending and (len(self._pending) > keep or self._pending[0].done()):
            fut = self._pending.popleft()
            try:
                fut.result()
            except BaseException:
                for rest in self._pending:  # later key frames of a failed scene are not worth writing
                    rest.cancel()
                for rest in self._pending:
                    if not rest.cancelled():
                        rest.exception()
                self._pending.clear()
                raise

    def _add(self, scene: str, kf: Keyframe) -> str:
        sample_token = make_token("sample", scene, kf.frame)
        pose_token = make_token("ego_pose", scene, kf.frame)
        rec: dict[str, Any] = {
            "kind": "keyframe",
            "frame": kf.frame,
            "timestamp": kf.timestamp,
            "sample_token": sample_token,
        }
        try:
            for ch in CAMERAS:
                img = kf.images[ch]
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                if not ok:
                    raise DatasetWriteError(f"JPEG encoding failed for {ch} of frame {kf.frame}")
                atomic_write_bytes(self.root / camera_filename(scene, ch, kf.timestamp), buf.tobytes())
            atomic_write_bytes(
                self.root / occ3d_relpath(scene, sample_token),
                occ3d_npz_bytes(kf.semantics, kf.mask_lidar, kf.mask_camera),
            )
        except OSError as exc:
            raise _disk_error(exc, f"key frame {kf.frame} of scene {scene}") from None
        rec["ego_pose"] = {
            "token": pose_token,
            "timestamp": kf.timestamp,
            "translation": kf.ego_translation,
            "rotation": kf.ego_rotation,
        }
        rec["sample_data"] = [
            {
                "channel": ch,
                "token": make_token("sample_data", scene, kf.frame, ch),
                "filename": camera_filename(scene, ch, kf.timestamp),
                "height": int(kf.images[ch].shape[0]),
                "width": int(kf.images[ch].shape[1]),
            }
            for ch in CAMERAS
        ]
        rec["annotations"] = [
            {
                "token": make_token("sample_annotation", scene, kf.frame, a.instance_key),
                "instance_token": make_token("instance", scene, a.instance_key),
                **a.__dict__,
            }
            for a in kf.annotations
        ]
        rec["extra"] = {"sample_token": sample_token, **kf.extra}
        self._append(scene, rec)
        self._added += 1
        if self._added == 1 or time.monotonic() - self._last_flush > self.flush_every_s:
            self._flush()  # the first key frame at once: a dataset has its tables from its first key frame on
        return sample_token

    def end_scene(self) -> None:
        scene = self._require_scene()
        self.wait()
        self._append(scene, {"kind": "end"})
        self._scene = None
        self._flush()

    def abort_scene(self) -> None:
        """Drop the open scene's journal (a failed episode leaves nothing in the tables)."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001, S110 - the scene is dropped either way
            pass
        if self._scene is not None:
            self._journal(self._scene).unlink(missing_ok=True)
            self._scene = None

    # ------------------------------------------------------------------ tables
    def flush(self) -> dict[str, int]:
        """Rebuild every table from the journals (atomic per table); returns record counts.

        Writers of several processes (Ray workers) share a root: a lock serialises their flushes, so the last one
        reads every journal after the others' lines landed and no older table set replaces a newer one."""
        self.wait()
        return self._flush()

    def _flush(self) -> dict[str, int]:
        tdir = self.root / self.version
        try:
            self.journal_dir.mkdir(parents=True, exist_ok=True)
            lock = open(self.journal_dir.parent / "flush.lock", "a+b")  # noqa: SIM115 - held across the flush
        except OSError as exc:
            raise _disk_error(exc, f"the tables in {tdir}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._flush_locked(tdir)

    def _flush_locked(self, tdir: Path) -> dict[str, int]:
        scenes = self._builder.scenes(self.journal_dir)
        shared = self._builder.shared_tables(scenes)
        counts = {
            n: len(shared[n]) if n in shared else sum(len(sc.tables[n]) for sc in scenes)
            for n in (*TABLES, EXTRA_TABLE)
        }
        try:
            for name in counts:
                atomic_write_bytes(tdir / f"{name}.json", self._builder.table_bytes(scenes, name, shared))
            for m in shared["map"]:
                path = self.root / m["filename"]
                if not path.is_file():
                    ok, buf = cv2.imencode(".png", np.zeros((1, 1), np.uint8))
                    atomic_write_bytes(path, buf.tobytes())
            write_card(self.root, self.version, counts, self.journal_dir, self._builder)
        except OSError as exc:
            raise _disk_error(exc, f"the tables in {tdir}") from None
        self._last_flush = time.monotonic()
        return counts

    # ------------------------------------------------------------------ internals
    def _journal(self, scene: str) -> Path:
        return self.journal_dir / f"{scene}.jsonl"

    def _require_scene(self) -> str:
        if self._scene is None:
            raise RuntimeError("no scene open: call begin_scene() first")
        return self._scene

    def _append(self, scene: str, rec: dict[str, Any]) -> None:
        line = (json.dumps(rec) + "\n").encode()
        try:
            with open(self._journal(scene), "r+b") as f:
                end = f.seek(0, os.SEEK_END)
                if end:
                    f.seek(end - 1)
                    if f.read(1) != b"\n":  # a torn line of a killed writer: drop it, never glue onto it
                        f.seek(0)
                        f.truncate(f.read().rfind(b"\n") + 1)
                f.seek(0, os.SEEK_END)
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise _disk_error(exc, f"the journal of scene {scene}") from None


class _JournalReader:
    """Journal lines (a torn last line, a kill mid-append, ignored), cached per file and read on from where the
    last read stopped: a journal only grows by whole lines (a torn tail is cut back to its last newline), so each
    flush parses what was appended since the last one instead of the whole dataset again. A restarted scene is a
    new file: another inode, or (an inode number reused) another first line, or a shorter file."""

    def __init__(self) -> None:
        # path -> (inode, its first line's bytes, offset after the last parsed line, the lines)
        self._cache: dict[Path, tuple[int, bytes, int, list[dict[str, Any]]]] = {}

    def lines(self, path: Path) -> list[dict[str, Any]]:
        st = path.stat()
        with open(path, "rb") as f:
            ino, head, off, lines = self._cache.get(path, (st.st_ino, b"", 0, []))
            if ino != st.st_ino or st.st_size < off or (head and f.read(len(head)) != head):
                ino, head, off, lines = st.st_ino, b"", 0, []
            if st.st_size > off:
                f.seek(off)
                data = f.read(st.st_size - off)
                new = []
                for raw in data[: data.rfind(b"\n") + 1].splitlines(keepends=True):
                    try:
                        new.append(json.loads(raw))
                    except json.JSONDecodeError:
                        break  # never past a bad line: a torn one is only ever the last
                    head = head or raw
                    off += len(raw)
                lines = lines + new
        self._cache[path] = (ino, head, off, lines)
        return lines


# Tables with records of one scene only, assembled in scene-name order; the others are shared by all scenes.
_PER_SCENE = (
    "log",
    "scene",
    "sample",
    "ego_pose",
    "sample_data",
    "sample_annotation",
    "instance",
    EXTRA_TABLE,
)
_CAT_TOKEN = {c: make_token("category", c) for c in NUSCENES_CATEGORIES}
_ATTR_TOKEN = {a: make_token("attribute", a) for a in ATTRIBUTES}


@dataclass
class _SceneRecords:
    """One scene's share of the tables, built once per journal length, with its records serialised once."""

    name: str
    town: str
    finished: bool
    meta: dict[str, Any]  # the card's entry
    tables: dict[str, list[dict[str, Any]]]  # _PER_SCENE tables
    sensors: dict[str, dict[str, Any]]
    calibs: dict[str, dict[str, Any]]
    map_token: str
    log_token: str
    files: list[str]  # key-frame files relative to the root (for the size on disk)
    chunks: dict[str, bytes] = field(default_factory=dict)
    size: int | None = None

    def chunk(self, table: str) -> bytes:
        """The records as json.dumps(records, indent=0) writes them inside a list: '[\n' + chunk + '\n]'."""
        if table not in self.chunks:
            recs = self.tables[table]
            self.chunks[table] = json.dumps(recs, indent=0)[2:-2].encode() if recs else b""
        return self.chunks[table]

    def size_on_disk(self, root: Path) -> int:
        if self.size is not None:
            return self.size
        total = 0
        for rel in self.files:
            try:
                total += (root / rel).stat().st_size
            except FileNotFoundError:
                pass
        if self.finished:  # an open scene still grows: counted again on the next flush
            self.size = total
        return total


def _scene_records(lines: list[dict[str, Any]]) -> _SceneRecords | None:
    """A scene's records from its journal lines (None for a journal without a header or a key frame)."""
    if not lines or lines[0].get("kind") != "scene":
        return None
    head = lines[0]
    scene = head["name"]
    meta = {
        "name": scene,
        "town": head["town"],
        "keyframes": sum(1 for ln in lines if ln.get("kind") == "keyframe"),
        "finished": lines[-1].get("kind") == "end",
        **head["log"].get("provenance", {}),
    }
    kfs = sorted((ln for ln in lines[1:] if ln.get("kind") == "keyframe"), key=lambda r: r["frame"])
    t: dict[str, list[dict[str, Any]]] = {n: [] for n in _PER_SCENE}
    rec_of = _SceneRecords(scene, head["town"], meta["finished"], meta, t, {}, {}, "", "", [])
    if not kfs:
        return rec_of
    calib_of = {}
    for c in head["cameras"]:
        s_tok = make_token("sensor", c["channel"])
        rec_of.sensors[s_tok] = {"token": s_tok, "channel": c["channel"], "modality": "camera"}
        c_tok = make_token("calibrated_sensor", c["channel"], c["translation"], c["rotation"], c["intrinsic"])
        rec_of.calibs[c_tok] = {
            "token": c_tok,
            "sensor_token": s_tok,
            "translation": c["translation"],
            "rotation": c["rotation"],
            "camera_intrinsic": c["intrinsic"],
        }
        calib_of[c["channel"]] = c_tok
    town = head["town"]
    log_token = make_token("log", scene)
    rec_of.log_token, rec_of.map_token = log_token, make_token("map", town)
    t["log"].append(
        {
            "token": log_token,
            "logfile": scene,
            "vehicle": head["log"].get("vehicle", "ego"),
            "date_captured": head["log"].get("date_captured", "2026-01-01"),
            "location": town,
        }
    )
    scene_token = make_token("scene", scene)
    samples = [k["sample_token"] for k in kfs]
    t["scene"].append(
        {
            "token": scene_token,
            "log_token": log_token,
            "nbr_samples": len(kfs),
            "first_sample_token": samples[0],
            "last_sample_token": samples[-1],
            "name": scene,
            "description": head["description"],
        }
    )
    prev_sd = {ch: "" for ch in CAMERAS}
    sd_recs: dict[str, list[dict]] = {ch: [] for ch in CAMERAS}
    inst_anns: dict[str, list[dict]] = {}
    inst_cat: dict[str, str] = {}
    for i, k in enumerate(kfs):
        st = k["sample_token"]
        rec_of.files.append(occ3d_relpath(scene, st))
        t["sample"].append(
            {
                "token": st,
                "timestamp": k["timestamp"],
                "scene_token": scene_token,
                "prev": samples[i - 1] if i else "",
                "next": samples[i + 1] if i + 1 < len(kfs) else "",
            }
        )
        t["ego_pose"].append(k["ego_pose"])
        for sd in k["sample_data"]:
            ch = sd["channel"]
            rec = {
                "token": sd["token"],
                "sample_token": st,
                "ego_pose_token": k["ego_pose"]["token"],
                "calibrated_sensor_token": calib_of[ch],
                "timestamp": k["timestamp"],
                "fileformat": "jpg",
                "is_key_frame": True,
                "height": sd["height"],
                "width": sd["width"],
                "filename": sd["filename"],
                "prev": prev_sd[ch],
                "next": "",
            }
            rec_of.files.append(sd["filename"])
            if sd_recs[ch]:
                sd_recs[ch][-1]["next"] = rec["token"]
            prev_sd[ch] = rec["token"]
            sd_recs[ch].append(rec)
        for a in k["annotations"]:
            rec = {
                "token": a["token"],
                "sample_token": st,
                "instance_token": a["instance_token"],
                "visibility_token": a["visibility_token"],
                "attribute_tokens": [_ATTR_TOKEN[x] for x in a["attributes"]],
                "translation": a["translation"],
                "size": a["size"],
                "rotation": a["rotation"],
                "velocity": a["velocity"],
                "prev": "",
                "next": "",
                "num_lidar_pts": int(a.get("num_pts", 0)),
                "num_radar_pts": 0,
            }
            anns = inst_anns.setdefault(a["instance_token"], [])
            if anns:
                anns[-1]["next"], rec["prev"] = rec["token"], anns[-1]["token"]
            anns.append(rec)
            inst_cat[a["instance_token"]] = a["category"]
            t["sample_annotation"].append(rec)
        t[EXTRA_TABLE].append(
            {
                "token": make_token(EXTRA_TABLE, st),
                "scene": scene,
                "town": town,
                "frame": k["frame"],
                **k["extra"],
            }
        )
    for recs in sd_recs.values():
        t["sample_data"] += recs
    for inst, anns in inst_anns.items():
        t["instance"].append(
            {
                "token": inst,
                "category_token": _CAT_TOKEN[inst_cat[inst]],
                "nbr_annotations": len(anns),
                "first_annotation_token": anns[0]["token"],
                "last_annotation_token": anns[-1]["token"],
            }
        )
    return rec_of


class TableBuilder:
    """The tables and the card's scene list from the journals, incrementally: journals are read on from where
    the last flush stopped and a scene whose journal did not change keeps its records and their serialised
    bytes, so a flush costs what changed plus writing the files (rebuilding everything made a collection's
    flushes quadratic in its size: 4 s per flush at 2880 key frames)."""

    def __init__(self) -> None:
        self.journals = _JournalReader()
        self._scenes: dict[Path, tuple[int, _SceneRecords | None]] = {}

    def scenes(self, journal_dir: Path) -> list[_SceneRecords]:
        """Every journal's scene, in name order (journals without a header left out)."""
        out = []
        for path in sorted(journal_dir.glob("*.jsonl")) if journal_dir.is_dir() else []:
            lines = self.journals.lines(path)
            n, rec = self._scenes.get(path, (-1, None))
            if n != len(lines):
                rec = _scene_records(lines)
                self._scenes[path] = (len(lines), rec)
            if rec is not None:
                out.append(rec)
        return out

    @staticmethod
    def shared_tables(scenes: list[_SceneRecords]) -> dict[str, list[dict[str, Any]]]:
        sensors: dict[str, dict] = {}
        calibs: dict[str, dict] = {}
        maps: dict[str, dict] = {}
        for sc in scenes:
            if not sc.tables["sample"]:
                continue
            sensors.update({k: v for k, v in sc.sensors.items() if k not in sensors})
            calibs.update({k: v for k, v in sc.calibs.items() if k not in calibs})
            maps.setdefault(
                sc.map_token,
                {
                    "token": sc.map_token,
                    "log_tokens": [],
                    "category": "semantic_prior",
                    "filename": f"maps/{sc.map_token}.png",
                },
            )["log_tokens"].append(sc.log_token)
        return {
            "category": [
                {"token": _CAT_TOKEN[c], "name": c, "description": c.replace(".", " ").replace("_", " ")}
                for c in NUSCENES_CATEGORIES
            ],
            "attribute": [
                {"token": _ATTR_TOKEN[a], "name": a, "description": a.replace(".", ": ").replace("_", " ")}
                for a in ATTRIBUTES
            ],
            "visibility": [
                {"token": tok, "level": level, "description": f"visibility of whole object is {level[1:]} %"}
                for tok, level, _ in VISIBILITY
            ],
            "sensor": list(sensors.values()),
            "calibrated_sensor": list(calibs.values()),
            "map": list(maps.values()),
        }

    def tables(self, journal_dir: Path) -> dict[str, list[dict[str, Any]]]:
        """Every nuScenes table + EXTRA_TABLE as record lists."""
        scenes = self.scenes(journal_dir)
        shared = self.shared_tables(scenes)
        return {
            n: shared[n] if n in shared else [r for sc in scenes for r in sc.tables[n]]
            for n in (*TABLES, EXTRA_TABLE)
        }

    def table_bytes(self, scenes: list[_SceneRecords], name: str, shared: dict[str, list]) -> bytes:
        """A table's file, byte for byte what json.dumps(records, indent=0) writes."""
        if name in shared:
            return json.dumps(shared[name], indent=0).encode()
        chunks = [c for c in (sc.chunk(name) for sc in scenes) if c]
        return b"[\n" + b",\n".join(chunks) + b"\n]" if chunks else b"[]"


def build_tables(journal_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every nuScenes table + EXTRA_TABLE from the journals under ``journal_dir`` (scenes in name order)."""
    return TableBuilder().tables(journal_dir)


def _size_on_disk(root: Path, scenes: list[_SceneRecords]) -> int:
    """Bytes of the dataset: every scene's key-frame files (cached once a scene is finished) and the files
    outside samples/ and gts/ (tables, card, maps), not the journals."""
    total = sum(sc.size_on_disk(root) for sc in scenes)
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in ("samples", "gts", ".occvla")]
        total += sum(os.stat(os.path.join(dirpath, f)).st_size for f in filenames)
    return total


def write_card(
    root: Path,
    version: str,
    tables: dict[str, list[dict[str, Any]]] | dict[str, int],
    journal_dir: Path,
    builder: TableBuilder | None = None,
) -> dict:
    """The dataset card: ``dataset_card.json`` (machine-readable) and ``README.md``, from the tables and the
    provenance each scene's journal header records (simulator, project version, town, route, weather, traffic,
    scenarios, seed, driving agent). Splits are by town: the towns of each split are listed. ``builder``: the
    writer's TableBuilder, whose cached journals and scene sizes spare re-reading the dataset. ``tables``: the
    tables, or their record counts."""
    count = {k: v if isinstance(v, int) else len(v) for k, v in tables.items()}
    records = (builder or TableBuilder()).scenes(journal_dir)
    scenes = [sc.meta for sc in records]

    def values(key: str) -> list:
        return sorted(
            {
                json.dumps(s[key]) if isinstance(s.get(key), (dict, list)) else s[key]
                for s in scenes
                if key in s
            },
            key=str,
        )

    before = json.loads((root / CARD_JSON).read_text()) if (root / CARD_JSON).is_file() else {}
    splits = before.get("splits", {})
    plan = before.get(
        "plan"
    )  # written by occvla-collect before its first episode: its name and episode count
    finished = sum(s["finished"] for s in scenes)
    card = {
        "format": "nuScenes tables + Occ3D labels (occvla/data/format.py)",
        "version": version,
        "simulator": values("simulator"),
        "project_version": values("project_version"),
        "towns": sorted({s["town"] for s in scenes}),
        "routes": values("route"),
        "weathers": values("weather"),
        "traffic": values("traffic"),
        "scenarios": values("scenarios"),
        "seeds": values("seed"),
        "agents": values("agent"),
        "splits": splits,
        "plan": plan,
        # every episode of the plan finished (None without a plan: a --collect run of a route file)
        "complete": (finished == plan["episodes"] and finished == len(scenes)) if plan else None,
        "counts": {
            "scenes": count["scene"],
            "samples": count["sample"],
            "annotations": count["sample_annotation"],
            "instances": count["instance"],
            "unfinished_scenes": sum(not s["finished"] for s in scenes),
        },
        "size_bytes": _size_on_disk(root, records),
        "scenes": scenes,
    }
    atomic_write_bytes(root / CARD_JSON, json.dumps(card, indent=1).encode())
    split_lines = "".join(f"- {k}: {', '.join(v)}\n" for k, v in splits.items()) or "- (none recorded)\n"
    readme = (
        f"# OccVLA collected driving dataset\n\n"
        f"Closed-loop driving in the project's simulator, written by `--collect` / `occvla-collect`.\n"
        f"Layout: nuScenes tables in `{version}/` (open with `NuScenes(version='{version}', dataroot=...)`), "
        f"six cameras per key frame (2 Hz) in `samples/CAM_*/`, Occ3D labels in "
        f"`gts/<scene>/<sample_token>/labels.npz`, per-sample speed, route command, meta-action, future "
        f"waypoints, the expert's 3 s plan and driving QA in `{version}/occvla_sample_info.json`.\n\n"
        f"| | |\n|---|---|\n"
        f"| scenes / key frames | {card['counts']['scenes']} / {card['counts']['samples']} |\n"
        f"| annotations / instances | {card['counts']['annotations']} / {card['counts']['instances']} |\n"
        f"| towns | {', '.join(card['towns'])} |\n| weathers | {', '.join(map(str, card['weathers']))} |\n"
        f"| seeds | {', '.join(map(str, card['seeds']))} |\n| agents | {', '.join(map(str, card['agents']))} |\n"
        f"| simulator | {', '.join(map(str, card['simulator']))} |\n"
        f"| project version | {', '.join(map(str, card['project_version']))} |\n"
        f"| size on disk | {card['size_bytes'] / 1e6:.1f} MB |\n\n"
        f"Splits (by town):\n{split_lines}\nEverything is synthetic: simulated roads, traffic and renders, "
        f"labelled from the simulator's ground truth. Details: `{CARD_JSON}`.\n"
    )
    atomic_write_bytes(root / "README.md", readme.encode())
    return card


def merge_datasets(sources: list[str | Path], dest: str | Path, version: str | None = None) -> dict:
    """One dataset from several collected ones (e.g. expert driving + recovery data), without copying images:
    every key-frame file is hard-linked (copied across file systems), the scene journals too, and the tables and
    the card are rebuilt from the journals as after a collection. Splits are merged by name; a scene name in two
    sources, or a town in two splits, is refused. Returns the card."""
    import shutil

    from occvla.data.nuscenes import find_version

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"merge destination {dest} exists and is not empty")
    srcs = [Path(s) for s in sources]
    if len(srcs) < 2:
        raise ValueError("merging needs two datasets or more")
    splits: dict[str, list[str]] = {}
    seen: dict[str, Path] = {}
    for src in srcs:
        if not (src / JOURNAL_DIR).is_dir():
            raise ValueError(f"{src} is not a collected dataset (no {JOURNAL_DIR}/)")
        for j in (src / JOURNAL_DIR).glob("*.jsonl"):
            if j.name in seen:
                raise ValueError(f"scene {j.stem} is in both {seen[j.name]} and {src}")
            seen[j.name] = src
        card = json.loads((src / CARD_JSON).read_text()) if (src / CARD_JSON).is_file() else {}
        for name, towns in (card.get("splits") or {}).items():
            splits[name] = sorted(set(splits.get(name, [])) | set(towns))
    owners: dict[str, str] = {}
    for name, towns in splits.items():
        for town in towns:
            if owners.setdefault(town, name) != name:
                raise ValueError(
                    f"town {town} is in split '{owners[town]}' of one source and '{name}' of another"
                )
    version = version or find_version(srcs[0])
    dest.mkdir(parents=True, exist_ok=True)
    for src in srcs:
        for path in src.rglob("*"):
            rel = path.relative_to(src)
            if (
                path.is_dir()
                or rel.parts[0] in (version, CARD_JSON, "README.md")
                or path.name == "flush.lock"
            ):
                continue
            target = dest / rel
            if target.exists():
                if target.stat().st_size != path.stat().st_size:
                    raise ValueError(f"{rel} differs between the sources")
                continue  # shared files (map masks) are the same
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    atomic_write_bytes(dest / CARD_JSON, json.dumps({"splits": splits}).encode())
    writer = DatasetWriter(dest, version)
    writer.flush()
    return json.loads((dest / CARD_JSON).read_text())
