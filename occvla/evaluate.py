"""`occvla-eval`: open-loop metrics of a trained run directory on a dataset, beside a constant-velocity baseline.

    occvla-eval checkpoints/occvla-small --data /data/occvla-heldout [--max-samples 400] [--json out.json]

The model runs as the agent runs it (``OccVLAModel.generate``: constrained meta-action decoding, then the planning
head); the occupancy branch runs too when the dataset has labels (its mIoU is a training-time diagnostic: the agent
never runs it). Metrics (``occvla/metrics``): L2 at 1/2/3 s in the UniAD and ST-P3 conventions, collision rates
against the future agent boxes, meta-action accuracy, teacher-forced QA accuracy, occupancy mIoU. The baseline keeps
the current speed straight ahead for 3 s, scored on the same samples. Every scene of the dataset is used (pass a
dataset of towns the model never trained on: the collected datasets' cards name their towns).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_RUN_DIR = Path(__file__).resolve().parents[1] / "checkpoints" / "occvla-small"
ROWS = (  # (metric key, label)
    ("l2_uniad_1s", "L2 1 s (UniAD) m"),
    ("l2_uniad_2s", "L2 2 s (UniAD) m"),
    ("l2_uniad_3s", "L2 3 s (UniAD) m"),
    ("l2_uniad_avg", "L2 avg (UniAD) m"),
    ("l2_stp3_1s", "L2 1 s (ST-P3) m"),
    ("l2_stp3_2s", "L2 2 s (ST-P3) m"),
    ("l2_stp3_3s", "L2 3 s (ST-P3) m"),
    ("l2_stp3_avg", "L2 avg (ST-P3) m"),
    ("col_uniad_avg", "collision rate avg (UniAD)"),
    ("col_stp3_avg", "collision rate avg (ST-P3)"),
    ("meta_exact", "meta-action accuracy"),
    ("vqa_accuracy", "QA accuracy (teacher-forced)"),
    ("occ_miou", "occupancy mIoU"),
)


def constant_velocity(speeds: np.ndarray, steps: int = 6, dt: float = 0.5) -> np.ndarray:
    """(N,) m/s -> (N, steps, 2) ego-frame waypoints straight ahead at the current speed."""
    t = dt * np.arange(1, steps + 1)  # (T,)
    out = np.zeros((len(speeds), steps, 2))
    out[:, :, 0] = speeds[:, None] * t[None]
    return out


def evaluate(
    run_dir: str | Path,
    data_root: str | Path,
    max_samples: int = 400,
    batch_size: int = 4,
    threads: int | None = None,
) -> dict[str, Any]:
    """{"model": metrics, "constant_velocity": metrics, "samples": n, "towns": [...], "run_dir", "data"}."""
    import torch
    from omegaconf import OmegaConf

    from occvla.data import NuScenesOccDataset
    from occvla.data.format import CARD_JSON
    from occvla.metrics import OpenLoopMetrics
    from occvla.metrics.planning import occupancy_to_bev
    from occvla.run_dir import load_run_dir
    from occvla.training.vla import _pad_boxes, evaluate_vla

    if threads:
        torch.set_num_threads(threads)
    model, processor, _ = load_run_dir(run_dir)
    grid = tuple(model.config.occ.grid)
    ds = NuScenesOccDataset(
        data_root, image_size=processor.image_size, occ_grid=grid, require_occupancy=False
    )
    if len(ds) == 0:
        raise ValueError(f"dataset {data_root} has no complete samples")
    n = min(len(ds), max_samples)
    idx = np.linspace(0, len(ds) - 1, n).round().astype(int)  # spread over every scene, not the first ones
    subset = _Subset(ds, idx)
    cfg = OmegaConf.create(
        {"train": {"eval_max_samples": n, "eval_batch_size": batch_size, "bf16": False}, "device": "cpu"}
    )
    model_metrics = evaluate_vla(model, processor, subset, cfg)

    light = _Subset(
        NuScenesOccDataset(data_root, image_size=None, occ_grid=grid, load_images=False, generate_qa=False),
        idx,
    )
    cv = OpenLoopMetrics()
    for start in range(0, n, 64):
        samples = [light[i] for i in range(start, min(n, start + 64))]
        speeds = np.array([s["speed"] for s in samples], np.float64)
        gt = np.stack([s["trajectory"] for s in samples])
        bev = (
            occupancy_to_bev(np.stack([s["occupancy"] for s in samples]))
            if all("occupancy" in s for s in samples)
            else None
        )
        boxes, valid = _pad_boxes(samples) if all("agent_boxes" in s for s in samples) else (None, None)
        cv.add_trajectories(
            constant_velocity(speeds), gt, obstacle_bev=bev, agent_boxes=boxes, agent_valid=valid
        )
    towns: list[str] = []
    card = Path(data_root) / CARD_JSON
    if card.is_file():
        towns = sorted({s.get("town", "?") for s in json.loads(card.read_text()).get("scenes", [])})
    return {
        "run_dir": str(run_dir),
        "data": str(data_root),
        "samples": int(n),
        "towns": towns,
        "model": model_metrics,
        "constant_velocity": cv.compute(),
    }


class _Subset:
    """The dataset at the given indices (list-like, as evaluate_vla reads it)."""

    def __init__(self, ds: Any, idx: np.ndarray) -> None:
        self.ds, self.idx = ds, [int(i) for i in idx]

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.ds[self.idx[i]]


def format_table(result: dict[str, Any]) -> str:
    """A markdown table: metric | OccVLA | constant velocity | OccVLA vs CV."""
    m, b = result["model"], result["constant_velocity"]
    lines = ["| metric | OccVLA | constant velocity | OccVLA vs CV |", "|---|---:|---:|---:|"]
    for key, label in ROWS:
        if key not in m and key not in b:
            continue
        mv, bv = m.get(key, math.nan), b.get(key, math.nan)
        rel = ""
        if key.startswith(("l2_", "col_")) and bv and math.isfinite(bv) and math.isfinite(mv):
            rel = f"{100.0 * (mv - bv) / bv:+.0f} %"
        lines.append(f"| {label} | {_fmt(mv)} | {_fmt(bv)} | {rel} |")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="occvla-eval", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "run_dir",
        nargs="?",
        default=str(DEFAULT_RUN_DIR),
        help="a run directory (default: the shipped checkpoints/occvla-small)",
    )
    ap.add_argument(
        "--data", required=True, help="a dataset in the collected nuScenes layout (occvla-collect)"
    )
    ap.add_argument("--max-samples", type=int, default=400, help="samples spread evenly over the dataset")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", default=None, help="also write the metrics here (atomically)")
    args = ap.parse_args(argv)
    if args.max_samples < 1:
        ap.error("--max-samples must be >= 1")
    try:
        result = evaluate(args.run_dir, args.data, args.max_samples, args.batch_size, args.threads)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    towns = ", ".join(result["towns"]) or "?"
    print(
        f"open loop: {result['run_dir']} on {result['samples']} samples of {result['data']} (towns: {towns})"
    )
    print(format_table(result))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
