"""occvla-collect: plans compose, the train plan avoids the evaluation towns, a plan runs, merges and resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leaderboard.collect import episodes, load_plan
from leaderboard.collect import main as collect_main

REPO = Path(__file__).resolve().parents[2]
TEST_TOWNS = {"OccTown01", "OccTown02", "Town01"}


def test_plans_compose_and_train_small_uses_generated_towns_only() -> None:
    tiny = load_plan("tiny", ["max_ticks=50"])
    assert tiny.max_ticks == 50 and tiny.towns == ["OccTown01"]
    train = load_plan("train-small")
    assert train.towns and all(t.startswith("OccGen-") for t in train.towns)
    assert not TEST_TOWNS & set(train.towns)
    split_towns = [t for towns in train.splits.values() for t in towns]
    assert sorted(split_towns) == sorted(train.towns) and len(set(split_towns)) == len(split_towns)
    with pytest.raises(ValueError, match="no collection plan 'nope'"):
        load_plan("nope")
    # every plan field is overridable, also one the file leaves at its default; a typo is one line
    held = load_plan("heldout", ["towns=[Town01]", "splits={test:[Town01]}", "map_dir=maps"])
    assert held.towns == ["Town01"] and held.splits == {"test": ["Town01"]} and held.map_dir == "maps"
    with pytest.raises(ValueError, match="unknown collection plan key 'town'"):
        load_plan("heldout", ["town=Town01"])
    heldout = load_plan("heldout")  # the open-loop evaluation data: the evaluation towns only
    assert heldout.towns and set(heldout.towns) <= TEST_TOWNS
    # a DAgger round: the learner drives the training towns under 2.x rules (six cameras), never a test town
    dagger = load_plan("dagger")
    assert dagger.agent == "occvla" and dagger.leaderboard == "2.0" and not TEST_TOWNS & set(dagger.towns)
    with pytest.raises(ValueError, match="leaderboard must be '1.0', '2.0' or null, got '3.0'"):
        load_plan("tiny", ["leaderboard='3.0'"])


def test_episode_scenes_are_unique() -> None:
    plan = load_plan("tiny", ["weathers=[ClearNoon,HardRainNight]", "seeds=[0,1]", "traffic=[[0,0],[4,4]]"])
    eps = episodes(plan)
    assert len(eps) == plan.routes_per_town * 2 * 2 * 2
    assert len({e.scene for e in eps}) == len(eps)


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "leaderboard.collect",
        "--plan",
        "tiny",
        "--out",
        str(out),
        "--no-progress",
        *extra,
        "max_ticks=60",
    ]
    return subprocess.run(
        cmd,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _tables(root: Path) -> dict[str, list]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "v1.0-trainval").glob("*.json"))}


def test_occvla_collect_tiny_runs_merges_and_resumes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    r = _run(out)
    assert r.returncode == 0, r.stderr[-3000:]
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["counts"]["scenes"] == 2 and card["counts"]["samples"] == 2 * 6
    assert card["splits"] == {"train": ["OccTown01"]} and card["towns"] == ["OccTown01"]
    assert card["weathers"] == ["ClearNoon"] and card["seeds"] == [0] and card["size_bytes"] > 0
    assert card["plan"] == {"name": "tiny", "episodes": 2} and card["complete"] is True
    assert "2 scenes" in (out / "README.md").read_text().replace(
        "| scenes / key frames | 2 / 12 |", "2 scenes"
    )
    tables = _tables(out)
    for name, recs in tables.items():
        toks = [r["token"] for r in recs if "token" in r]
        assert len(toks) == len(set(toks)), name
    from occvla.data import NuScenesOccDataset

    train = NuScenesOccDataset(
        out, split="train", load_images=False, load_occupancy=False, drop_incomplete=False
    )
    assert len(train) == 12 and {train.scene_of[k]["name"].split("_")[0] for k in train.index} == {
        "OccTown01"
    }
    val = NuScenesOccDataset(out, split="val", load_images=False, load_occupancy=False, drop_incomplete=False)
    assert len(val) == 0  # the card lists no val towns
    card["splits"] = {"train": [], "val": ["OccTown01"]}
    (out / "dataset_card.json").write_text(json.dumps(card))
    assert len(NuScenesOccDataset(out, split="train", load_images=False, load_occupancy=False)) == 0
    r = _run(out, "--resume")
    assert r.returncode == 0 and "2 of 2 episodes already collected" in r.stderr
    assert _tables(out) == tables
    r = _run(out)  # without --resume an existing dataset is refused in one line
    assert r.returncode == 2 and "pass --resume" in r.stderr and r.stderr.strip().count("\n") == 0

    # --merge: a second collection (other seed) and the first one as one dataset, images hard-linked
    card["splits"] = {"train": ["OccTown01"]}
    (out / "dataset_card.json").write_text(json.dumps(card))
    other = tmp_path / "seed1"
    assert _run(other, "seeds=[1]", "routes_per_town=1").returncode == 0
    both = tmp_path / "both"
    assert collect_main(["--merge", str(out), str(other), "--out", str(both)]) == 0
    merged = json.loads((both / "dataset_card.json").read_text())
    assert merged["counts"]["scenes"] == 3 and merged["counts"]["samples"] == 18 and merged["seeds"] == [0, 1]
    assert merged["splits"] == {"train": ["OccTown01"]}
    for name, recs in _tables(both).items():
        toks = [r["token"] for r in recs if "token" in r]
        assert len(toks) == len(set(toks)), name
    jpg = next((both / "samples" / "CAM_FRONT").iterdir())
    assert jpg.stat().st_nlink == 2  # linked, not copied
    ds = NuScenesOccDataset(both, image_size=32, drop_incomplete=False)
    assert len(ds) == 18 and ds[17]["images"].shape == (6, 32, 32, 3) and "occupancy" in ds[17]
    assert collect_main(["--merge", str(out), str(both), "--out", str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err  # the same scenes twice: one line
    assert "is in both" in err and err.strip().count("\n") == 0


@pytest.mark.slow
def test_two_ray_workers_write_the_same_dataset(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert _run(one).returncode == 0
    r = _run(two, "--workers", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert _tables(two) == _tables(one)
