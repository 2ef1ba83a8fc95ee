"""occvla-train's data splits: a collected dataset's card (splits by town) decides train and val scenes."""

from __future__ import annotations

import json
from pathlib import Path

from occvla.data import make_synthetic_dataset
from occvla.train import compose_config
from occvla.training.data import build_datasets


def test_the_dataset_card_splits_by_town(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "syn", n_scenes=3, n_samples=8, image_size=(32, 48), seed=0)
    names = [s["name"] for s in json.loads(next(root.glob("v1.0-*/scene.json")).read_text())]
    towns = ["OccGen-1", "OccGen-2", "OccGen-6"]
    card = {"splits": {"train": towns[:2], "val": towns[2:]},
            "scenes": [{"name": n, "town": t} for n, t in zip(names, towns, strict=True)]}
    (root / "dataset_card.json").write_text(json.dumps(card))
    cfg = compose_config(["model=tiny", "data=nuscenes", f"data.root={root}"]).data
    train, val, split = build_datasets(cfg, image_size=32, occ_grid=(16, 16, 8), load_images=False)
    assert split == "val"
    assert {train[i]["scene"] for i in range(len(train))} == set(names[:2])
    assert {val[i]["scene"] for i in range(len(val))} == {names[2]}
