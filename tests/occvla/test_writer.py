"""The dataset writer's robustness: a torn journal line, a full disk, tables that always parse."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from occvla.data import load_occ3d_labels
from occvla.data.format import CAMERAS, JOURNAL_DIR, make_token
from occvla.data.writer import (
    Annotation,
    CameraCalib,
    DatasetWriteError,
    DatasetWriter,
    Keyframe,
    check_output_dir,
)


def _kf(frame: int) -> Keyframe:
    grid = np.full((200, 200, 16), 17, np.uint8)
    grid[100, 100, 2] = 4
    ann = Annotation(
        "7",
        "vehicle.car",
        [10.0 + frame, 0.0, 0.8],
        [1.9, 4.5, 1.6],
        [1.0, 0, 0, 0],
        [0.0, 0.0],
        ["vehicle.stopped"],
        "4",
    )
    return Keyframe(
        frame,
        1_000_000 + frame * 50_000,
        [float(frame), 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        {c: np.zeros((9, 16, 3), np.uint8) for c in CAMERAS},
        [ann],
        grid,
        grid < 17,
        grid < 17,
        {"speed": 1.0, "command": 4},
    )


def _cams() -> list[CameraCalib]:
    return [
        CameraCalib(c, [0.0, 0.0, 1.6], [0.5, -0.5, 0.5, -0.5], [[8, 0, 8], [0, 8, 4.5], [0, 0, 1]], 16, 9)
        for c in CAMERAS
    ]


def test_torn_journal_line_is_ignored_and_tables_parse(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path, flush_every_s=0.0)
    w.begin_scene("s0", "OccGen-1", "test", _cams())
    tokens = [w.add(_kf(f)) for f in (10, 20, 30)]
    journal = tmp_path / JOURNAL_DIR / "s0.jsonl"
    with open(journal, "ab") as f:
        f.write(b'{"kind": "keyframe", "frame": 40, "timest')  # a kill mid-append
    counts = w.flush()
    assert counts["sample"] == 3 and counts["sample_annotation"] == 3 and counts["instance"] == 1
    samples = json.loads((tmp_path / "v1.0-trainval" / "sample.json").read_text())
    assert [s["token"] for s in samples] == tokens == [make_token("sample", "s0", f) for f in (10, 20, 30)]
    assert samples[0]["next"] == tokens[1] and samples[-1]["next"] == ""
    lab = load_occ3d_labels(tmp_path / "gts" / "s0" / tokens[0] / "labels.npz")
    assert lab["semantics"][100, 100, 2] == 4
    assert w.finished_scenes() == set()
    with pytest.raises(RuntimeError, match="still open"):  # one open scene per writer
        w.begin_scene("s1", "OccGen-1", "test", _cams())
    w.end_scene()
    assert w.finished_scenes() == {"s0"}


def test_full_disk_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = DatasetWriter(tmp_path)
    w.begin_scene("s0", "OccGen-1", "test", _cams())

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DatasetWriteError, match="^no space left on the device while writing key frame 10"):
        w.add(_kf(10))


def test_output_dir_checks(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(DatasetWriteError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "f", resume=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    with pytest.raises(DatasetWriteError, match="not empty and holds no dataset"):
        check_output_dir(tmp_path / "mine", resume=True)
    check_output_dir(tmp_path / "new", resume=False)
    assert (tmp_path / "new").is_dir()


def _files(root: Path) -> dict[str, bytes]:
    skip = ("dataset_card.json", "README.md", "flush.lock")  # the card holds sizes and times
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def test_background_writer_writes_what_the_direct_one_writes(tmp_path: Path) -> None:
    for name, background in (("direct", False), ("thread", True)):
        w = DatasetWriter(tmp_path / name, background=background, max_pending=2)
        w.begin_scene("s0", "OccGen-1", "test", _cams())
        tokens = [w.add(_kf(f)) for f in range(10, 100, 10)]
        assert tokens == [make_token("sample", "s0", f) for f in range(10, 100, 10)]
        w.end_scene()
        w.close()
    direct, thread = _files(tmp_path / "direct"), _files(tmp_path / "thread")
    assert len(direct) > 9 * 7 and direct == thread


def test_background_writer_raises_a_queued_failure_on_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = DatasetWriter(tmp_path, background=True)
    w.begin_scene("s0", "OccGen-1", "test", _cams())
    w.add(_kf(10))
    w.wait()

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    w.add(_kf(20))  # queued: the failure shows on the next call
    with pytest.raises(DatasetWriteError, match="^no space left on the device while writing key frame 20"):
        w.end_scene()
    monkeypatch.undo()
    w.close()
    assert w.flush()["sample"] == 1  # the finished key frame stays in the tables


def test_resuming_removes_the_temporary_files_of_a_killed_writer(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path)
    w.begin_scene("s0", "OccGen-1", "test", _cams())
    w.add(_kf(10))
    stale = tmp_path / "samples" / CAMERAS[0] / ".s0__x.jpg.k3j2.tmp"  # a write a SIGKILL cut short
    stale.write_bytes(b"half a jpeg")
    check_output_dir(tmp_path, resume=True)
    assert not stale.exists() and any((tmp_path / "samples" / CAMERAS[0]).iterdir())


def test_incremental_flushes_write_what_a_rebuild_from_the_journals_writes(tmp_path: Path) -> None:
    """The writer rebuilds only what changed between flushes (journals read on, unchanged scenes cached): after
    each step (key frames added, a second writer's scene beside it, a torn tail, a scene restarted from scratch)
    its tables must be byte for byte json.dumps of build_tables from the journals, and the card's size the
    bytes of the dataset's files."""
    from occvla.data.format import CARD_JSON, TABLES, EXTRA_TABLE
    from occvla.data.writer import build_tables

    def check(size_too: bool = True) -> None:
        tables = build_tables(tmp_path / JOURNAL_DIR)
        for name in (*TABLES, EXTRA_TABLE):
            on_disk = (tmp_path / "v1.0-trainval" / f"{name}.json").read_bytes()
            assert on_disk == json.dumps(tables[name], indent=0).encode(), name
        if not size_too:
            return
        size = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file() and JOURNAL_DIR not in str(p))
        card = json.loads((tmp_path / CARD_JSON).read_text())
        assert abs(card["size_bytes"] - size) < 2048  # the card's own rewrite may change its length a little

    w = DatasetWriter(tmp_path, flush_every_s=1e9)
    w.begin_scene("s1", "OccGen-1", "test", _cams())
    for f in (10, 20):
        w.add(_kf(f))
    w.flush()
    check()
    other = DatasetWriter(tmp_path, flush_every_s=1e9)  # another worker's scene, sorted before s1
    other.begin_scene("s0", "OccGen-2", "test", _cams())
    other.add(_kf(10))
    other.end_scene()
    w.add(_kf(30))
    w.flush()
    check()
    with open(tmp_path / JOURNAL_DIR / "s1.jsonl", "ab") as f:
        f.write(b'{"kind": "keyframe", "frame": 40, "timest')  # a kill mid-append
    w.flush()
    check()
    w.add(_kf(40))  # the torn tail is cut back before the next line
    w.end_scene()
    check()
    assert json.loads((tmp_path / CARD_JSON).read_text())["counts"]["samples"] == 5
    w.begin_scene(
        "s1", "OccGen-1", "test", _cams()
    )  # restarted from scratch (--resume of an unfinished scene)
    w.add(_kf(10))
    w.flush()
    check(size_too=False)  # the old run's later frames still lie on disk until the repeat rewrites them
    assert json.loads((tmp_path / CARD_JSON).read_text())["counts"]["samples"] == 2


def test_journal_reader_rereads_a_file_replaced_under_the_same_inode(tmp_path: Path) -> None:
    """The flush's journal cache reads on from its last offset; a journal rewritten in place (an inode number
    reused by a restarted scene) with another first line is read again from its start, not glued on."""
    from occvla.data.writer import _JournalReader

    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"kind": "scene", "name": "a"}\n{"kind": "keyframe", "frame": 10}\n')
    reader = _JournalReader()
    assert [ln.get("frame") for ln in reader.lines(path)] == [None, 10]
    with open(path, "r+b") as f:  # same inode, new content at least as long
        f.write(b'{"kind": "scene", "name": "b"}\n{"kind": "keyframe", "frame": 20}\n{"kind": "end"}\n')
    lines = reader.lines(path)
    assert lines[0]["name"] == "b" and [ln.get("frame") for ln in lines] == [None, 20, None]
    with open(path, "ab") as f:
        f.write(b'{"kind": "keyfr')  # a torn tail: left for the next read
    assert len(reader.lines(path)) == 3
