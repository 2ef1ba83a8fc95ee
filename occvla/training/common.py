"""Pieces shared by every training stage: seeding, data order, LR schedule, logging, resumable checkpoints.

Resumability: a checkpoint holds the trainable weights (+ buffers), optimiser, scheduler, step and every RNG state;
the data order is a pure function of (seed, epoch), so a resumed run sees exactly the batches an uninterrupted run
would have seen, and ends with the same weights.
"""

from __future__ import annotations

import csv
import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CKPT_DIR = "checkpoints"
CKPT_FILE = "last.pt"
METRICS_CSV = "metrics.csv"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def batch_indices(n: int, batch_size: int, seed: int, start_step: int) -> Iterator[list[int]]:
    """Endless batches of dataset indices; epoch e is a permutation seeded by (seed, e). Starts at ``start_step``."""
    if n == 0:
        raise ValueError("the training dataset is empty (no sample has 6 future key frames / labels)")
    per_epoch = max(1, n // batch_size) if n >= batch_size else 1
    step = start_step
    while True:
        epoch, k = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        if n < batch_size:  # tiny datasets: repeat samples to fill a batch
            order = np.resize(order, batch_size)
        yield order[k * batch_size : (k + 1) * batch_size].tolist()
        step += 1


def lr_lambda(warmup: int, total: int, min_ratio: float):
    """Linear warm-up then cosine decay to ``min_ratio``."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        prog = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * prog))

    return f


class MetricLogger:
    """Long-format CSV (step, split, name, value) + TensorBoard scalars under the run directory."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = run_dir / METRICS_CSV
        new = not self.path.exists()
        self._f = self.path.open("a", newline="")
        self._w = csv.writer(self._f)
        if new:
            self._w.writerow(["step", "split", "name", "value"])
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))

    def log(self, step: int, split: str, values: dict[str, float]) -> None:
        for k, v in values.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            self._w.writerow([step, split, k, f"{float(v):.6g}"])
            if self.tb is not None:
                self.tb.add_scalar(f"{split}/{k}", float(v), step)
        self._f.flush()

    def close(self) -> None:
        self._f.close()
        if self.tb is not None:
            self.tb.close()


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters + all buffers (what a resumed run cannot rebuild from its config)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n for n, _ in model.named_buffers()}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names or k in buffers}


def save_checkpoint(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, sched: Any, step: int,
                    extra: dict | None = None) -> Path:
    """Atomically write ``<run_dir>/checkpoints/last.pt``."""
    d = run_dir / CKPT_DIR
    d.mkdir(parents=True, exist_ok=True)
    path = d / CKPT_FILE
    tmp = d / (CKPT_FILE + ".tmp")
    torch.save({"step": step, "model": trainable_state(model), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng": rng_state(), "extra": extra or {}}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, sched: Any) -> int:
    """Restore a checkpoint written by ``save_checkpoint``; returns its step."""
    path = run_dir / CKPT_DIR / CKPT_FILE
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - corrupt/truncated file, any error type
        raise ValueError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    missing = set(ck["model"]) - set(model.state_dict())
    if missing:
        raise ValueError(f"checkpoint {path} does not fit this model/config (unknown keys {sorted(missing)[:3]})")
    model.load_state_dict(ck["model"], strict=False)
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    set_rng_state(ck["rng"])
    return int(ck["step"])


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / CKPT_DIR / CKPT_FILE).is_file()


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over trainable parameters; no weight decay on biases and norms (1-D tensors) and embedding tables."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 and id(p) not in embeddings else no_decay).append(p)
    if not decay and not no_decay:
        raise ValueError("no trainable parameters for this stage")
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
